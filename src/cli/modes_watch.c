/* modes_watch.c - hemoscan --watch DIR: the unattended job. Reads every
 * complete study of a drop folder exactly once, records it, then moves,
 * deletes or leaves its files; once (cron) or until SIGTERM (--follow).
 *
 * One run:
 *   1. lock (watch.h): a second watcher on the same database or drop
 *      folder says who holds it and exits with status 5;
 *   2. open the audit database, begin the run, and finish every file
 *      move a killed run left 'pending' in its journal (watch_files)
 *      before looking at the drop folder;
 *   3. a pass: list and group the drop folder; record new loose files
 *      (quarantined with --quarantine); for each complete study: scan its
 *      files (plus, with --done, the files it already has in the done
 *      folder), skip it when the database has a current verdict from the
 *      same instances and model, else read it, check nothing changed
 *      meanwhile, record it (one transaction), journal its moves, move;
 *   4. --follow: wait for inotify events, the next study to become
 *      stable, a periodic rescan or a signal, and pass again;
 *   5. the summary line (stdout, and syslog with --syslog), the run's
 *      counts in watch_runs, the exit status.
 *
 * Why it survives kill -9 at any instant: a reading is recorded in one
 * transaction or not at all; a study's moves are journaled before the
 * first file moves and finished first thing by the next run; a study
 * recorded but not yet journaled is found "already read" by the next run
 * and its files are then moved. A study is therefore never read from part
 * of its files, and no file is lost or left twice.
 *
 * Why one crashing study cannot stop every run: while a study is in hand
 * the crash note (crash_note.h) is armed with it, and while the listing
 * reads a header, with that file (watch.c), so a fatal signal from
 * hemoscan or a library leaves its identity beside the database. The next
 * run records that in watch_crashes before its first pass; a study with
 * the same files as when it crashed is failed (and quarantined) instead
 * of read, and such a file is not read but made a loose file (asked by
 * the listing through hs_skip_crashed). The study check comes before the
 * scan, since the scan reads headers with DCMTK and could be where it
 * crashed.
 *
 * Errors go to stderr (and syslog) as one line naming the file or study;
 * the run goes on with the next study. With -v, "phase" lines on stderr
 * say what is in hand (reading, recording, moving): the reliability test
 * uses them to tell where its kills landed. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/audit.h"
#include "hemoscan/crash_note.h"
#include "hemoscan/fileio.h"
#include "hemoscan/review_store.h"
#include "hemoscan/study.h"
#include "hemoscan/watch.h"
#include "modes.h"

/* Set by SIGTERM and SIGINT: finish the study in hand, then stop. */
static volatile sig_atomic_t hs_stop_requested;
static int hs_signal_pipe[2] = {-1, -1};

static void hs_on_signal(int sig)
{
    (void)sig;
    hs_stop_requested = 1;
    int saved = errno;
    if (hs_signal_pipe[1] >= 0) {
        char c = 1;
        if (write(hs_signal_pipe[1], &c, 1) < 0) {
            /* the pipe is full: a wake-up is pending anyway */
        }
    }
    errno = saved;
}

typedef struct {
    const options *o;
    hs_model model;
    const char *model_path;
    const char *db_path;
    hs_audit *audit;
    long long run_id;
    hs_study_options sopt;
    hs_review_options ropt;
    hs_audit_watch_counts c;
    long long loose_seen;   /* loose files seen at the last pass (new or known) */
    int failed_any;
    int force_copy;         /* HEMOSCAN_TEST_FORCE_COPY: copy as across file systems */
    const char *crash_uid;  /* HEMOSCAN_TEST_CRASH_STUDY: abort() when reading this study */
    const char *crash_file; /* HEMOSCAN_TEST_CRASH_FILE: abort() when listing a file of this name */
    char crash_note_path[4200]; /* DB.watch-crash (crash_note.h) */
    const char *exclude[3]; /* --done, --quarantine, --review */
    int n_exclude;
    double next_due;        /* follow: when the earliest waiting study becomes stable */
    /* study UIDs and loose paths whose journaled moves could not be
     * finished: left alone until a later run manages them */
    char **blocked;
    int n_blocked, cap_blocked;
} hs_watcher;

static double hs_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* An error: stderr, syslog with --syslog, and the run fails. */
static void hs_report(hs_watcher *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hs_report(hs_watcher *w, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "hemoscan: %s\n", line);
    if (w->o->use_syslog)
        syslog(LOG_ERR, "%s", line);
    w->failed_any = 1;
}

static void hs_phase(const hs_watcher *w, const char *phase, const char *what)
{
    hs_crash_note_phase(phase);
    if (w->o->verbose > 0)
        fprintf(stderr, "hemoscan: phase %s %s\n", phase, what);
}

static void hs_block(hs_watcher *w, const char *key)
{
    for (int i = 0; i < w->n_blocked; i++)
        if (strcmp(w->blocked[i], key) == 0)
            return;
    if (w->n_blocked == w->cap_blocked) {
        int cap = w->cap_blocked > 0 ? 2 * w->cap_blocked : 16;
        char **grown = realloc(w->blocked, (size_t)cap * sizeof *grown);
        if (grown == NULL)
            return;
        w->blocked = grown;
        w->cap_blocked = cap;
    }
    char *copy = strdup(key);
    if (copy != NULL)
        w->blocked[w->n_blocked++] = copy;
}

static int hs_is_blocked(const hs_watcher *w, const char *key)
{
    for (int i = 0; i < w->n_blocked; i++)
        if (strcmp(w->blocked[i], key) == 0)
            return 1;
    return 0;
}

/* ---- carrying out journaled file operations ----------------------------------- */

static int hs_write_text(FILE *f, void *ctx)
{
    return fputs(ctx, f) < 0 ? EIO : 0;
}

/* One operation of the journal: move to done or quarantine (with the
 * reason written beside a quarantined file), or delete. Idempotent. */
static hs_status hs_carry_out(hs_watcher *w, const hs_audit_file_action *a, hs_error *err)
{
    if (strcmp(a->action, "delete") == 0)
        return hs_watch_remove(a->source, err);
    hs_status st = hs_watch_move(a->source, a->dest, w->force_copy, err);
    if (st == HS_OK && strcmp(a->action, "quarantine") == 0 && a->reason != NULL) {
        char path[4200], text[1200];
        snprintf(path, sizeof path, "%s.reason.txt", a->dest);
        snprintf(text, sizeof text, "%s\nwas: %s\n", a->reason, a->source);
        st = hs_file_write_atomic_with(path, 0640, hs_write_text, text, err);
    }
    return st;
}

static void hs_count_done(hs_watcher *w, const char *action)
{
    if (strcmp(action, "done") == 0)
        w->c.files_done++;
    else if (strcmp(action, "delete") == 0)
        w->c.files_deleted++;
    else
        w->c.files_quarantined++;
}

/* Carries out journaled operations and marks them finished; a failure is
 * reported, its row stays pending and its study (or file) is blocked.
 * Returns how many failed. */
static int hs_carry_out_all(hs_watcher *w, const char *drop, hs_audit_file_action *acts, int n)
{
    int failures = 0;
    for (int i = 0; i < n; i++) {
        hs_error err = {0};
        hs_status st = hs_carry_out(w, &acts[i], &err);
        if (st == HS_OK)
            st = hs_audit_finish_file(w->audit, w->run_id, acts[i].id, &err);
        if (st != HS_OK) {
            hs_report(w, "%s", err.msg);
            hs_block(w, acts[i].study_uid != NULL ? acts[i].study_uid : acts[i].source);
            failures++;
            continue;
        }
        hs_count_done(w, acts[i].action);
        hs_watch_prune_dirs(drop, acts[i].source);
    }
    return failures;
}

/* Step 2: what a killed run left half done. */
static void hs_finish_pending(hs_watcher *w)
{
    hs_audit_file_action *acts = NULL;
    int n = 0;
    hs_error err = {0};
    if (hs_audit_pending_files(w->audit, &acts, &n, &err) != HS_OK) {
        hs_report(w, "%s", err.msg);
        return;
    }
    if (n > 0) {
        hs_phase(w, "moving", "files an earlier run left pending");
        if (w->o->verbose > 0)
            fprintf(stderr, "hemoscan: finishing %d file operations an earlier run left pending\n", n);
        int failures = hs_carry_out_all(w, w->o->watch_dir, acts, n);
        w->c.failed += failures;
    }
    hs_audit_file_actions_free(acts, n);
}

/* Journals and carries out one action for the given files of the listing. */
static void hs_dispose(hs_watcher *w, const hs_watch_listing *l, const int *files, int n,
                       const char *study_uid, const char *action, const char *reason)
{
    const char *root = strcmp(action, "done") == 0 ? w->o->done_dir
                       : strcmp(action, "quarantine") == 0 ? w->o->quarantine_dir : NULL;
    hs_audit_file_action *acts = calloc((size_t)(n > 0 ? n : 1), sizeof *acts);
    char (*dest)[4096] = calloc((size_t)(n > 0 ? n : 1), sizeof *dest);
    if (acts == NULL || dest == NULL) {
        free(acts);
        free(dest);
        hs_report(w, "out of memory planning the moves of %s", study_uid ? study_uid : "a file");
        return;
    }
    hs_error err = {0};
    hs_status st = HS_OK;
    for (int i = 0; st == HS_OK && i < n; i++) {
        const hs_watch_file *f = &l->files[files[i]];
        acts[i].study_uid = study_uid;
        acts[i].action = action;
        acts[i].source = f->path;
        acts[i].reason = reason;
        if (root != NULL) {
            st = hs_watch_dest_path(root, f->rel, dest[i], sizeof dest[i], &err);
            acts[i].dest = dest[i];
        }
    }
    if (st == HS_OK)
        st = hs_audit_plan_files(w->audit, w->run_id, acts, n, &err);
    if (st != HS_OK) {
        hs_report(w, "%s: cannot plan the %s of its files: %s",
                  study_uid != NULL ? study_uid : l->files[files[0]].path, action, err.msg);
        w->c.failed++;
    } else {
        hs_phase(w, "moving", study_uid ? study_uid : l->files[files[0]].path);
        if (hs_carry_out_all(w, w->o->watch_dir, acts, n) > 0)
            w->c.failed++;
    }
    free(acts);
    free(dest);
}

/* ---- one study -------------------------------------------------------------------- */

/* The folder the study's drop files share (its storescp folder), or the
 * drop folder itself. */
static void hs_study_label(const hs_watch_listing *l, const hs_watch_study *s, const char *drop,
                           char *out, size_t cap)
{
    const char *first = l->files[s->file[0]].path;
    size_t common = strlen(first);
    for (int i = 1; i < s->n; i++) {
        const char *p = l->files[s->file[i]].path;
        size_t k = 0;
        while (k < common && p[k] == first[k])
            k++;
        common = k;
    }
    while (common > 0 && first[common - 1] != '/')
        common--; /* back to a folder boundary */
    if (common > 1)
        common--; /* without its slash */
    if (common <= strlen(drop))
        snprintf(out, cap, "%s", drop);
    else
        snprintf(out, cap, "%.*s", (int)common, first);
}

static void hs_record_failure(hs_watcher *w, const char *where, const char *uid, const char *stage,
                              const char *msg)
{
    hs_error err = {0};
    if (hs_audit_record_failure(w->audit, w->run_id, where, uid, stage, msg, &err) != HS_OK)
        hs_report(w, "%s", err.msg);
}

/* A study that could not be read: recorded, reported, and quarantined when
 * the fault is the study's own (not the disk's or the database's). */
static void hs_study_failed(hs_watcher *w, const hs_watch_listing *l, const hs_watch_study *s,
                            const char *label, const char *stage, const char *msg, int its_own)
{
    hs_report(w, "%s (%s): %s", s->study_uid, label, msg);
    hs_record_failure(w, label, s->study_uid, stage, msg);
    w->c.failed++;
    if (its_own && w->o->quarantine_dir != NULL) {
        char reason[700];
        snprintf(reason, sizeof reason, "study %s failed (%s): %s", s->study_uid, stage, msg);
        hs_dispose(w, l, s->file, s->n, s->study_uid, "quarantine", reason);
    }
}

/* Drop files plus, with --done, the study's files already in the done
 * folder (a study that gains instances is read whole). */
static char **hs_study_paths(hs_watcher *w, const hs_watch_listing *l, const hs_watch_study *s,
                             int *n_out)
{
    char **done = NULL;
    int n_done = 0;
    hs_error err = {0};
    if (w->o->done_dir != NULL &&
        hs_audit_study_done_files(w->audit, s->study_uid, &done, &n_done, &err) != HS_OK) {
        hs_report(w, "%s", err.msg);
        return NULL;
    }
    char **paths = malloc((size_t)(s->n + n_done) * sizeof *paths);
    int n = 0;
    if (paths != NULL) {
        for (int i = 0; i < s->n; i++)
            paths[n++] = l->files[s->file[i]].path;
        for (int i = 0; i < n_done; i++) {
            struct stat sb;
            if (lstat(done[i], &sb) == 0 && S_ISREG(sb.st_mode))
                paths[n++] = done[i]; /* owned by paths now */
            else
                free(done[i]);
        }
    } else {
        for (int i = 0; i < n_done; i++)
            free(done[i]);
    }
    free(done);
    *n_out = n;
    return paths;
}

static void hs_free_study_paths(char **paths, int n, int n_drop)
{
    for (int i = n_drop; paths != NULL && i < n; i++)
        free(paths[i]);
    free(paths);
}

/* The disposal of a study's drop files once it is recorded (or found
 * recorded already). */
static void hs_dispose_study(hs_watcher *w, const hs_watch_listing *l, const hs_watch_study *s)
{
    if (w->o->done_dir != NULL)
        hs_dispose(w, l, s->file, s->n, s->study_uid, "done", NULL);
    else if (w->o->delete_done)
        hs_dispose(w, l, s->file, s->n, s->study_uid, "delete", NULL);
}

/* A complete study, from its scan to its moves. */
static void hs_read_study(hs_watcher *w, const hs_watch_listing *l, const hs_watch_study *s,
                          const char *label)
{
    const options *o = w->o;
    int n = 0;
    char **paths = hs_study_paths(w, l, s, &n);
    if (paths == NULL) {
        w->c.failed++;
        return;
    }
    hs_error err = {0};
    hs_study study;
    char sha[65] = "";
    int found = 0;
    hs_status st = hs_study_scan_files(label, paths, n, o->threads, &study, &err);
    /* The scan takes the UID from accepted slices; a study of only MR,
     * corrupt or scout files still has the UID its files were grouped by,
     * so that it too is read once and superseded, never read every pass. */
    if (st == HS_OK && study.study_uid[0] == '\0')
        snprintf(study.study_uid, sizeof study.study_uid, "%s", s->study_uid);
    if (st == HS_OK)
        st = hs_study_instances_sha256(&study, sha, &err);
    if (st == HS_OK)
        st = hs_audit_already_read(w->audit, s->study_uid, sha, w->model.sha256, &found, &err);
    if (st != HS_OK) {
        hs_study_failed(w, l, s, label, "scan", err.msg, st == HS_ERR_ARG || st == HS_ERR_FORMAT);
        hs_study_free(&study);
        hs_free_study_paths(paths, n, s->n);
        return;
    }
    if (found) {
        hs_study_free(&study);
        hs_free_study_paths(paths, n, s->n);
        w->c.already_read++;
        if (o->verbose > 0)
            fprintf(stderr, "hemoscan: %s (%s): read already (same instances, same model)\n",
                    s->study_uid, label);
        hs_dispose_study(w, l, s); /* a run killed after recording it did not move it */
        return;
    }
    /* A file of the study that cannot be read now may be readable later:
     * no verdict from part of the study. */
    for (int i = 0; i < study.n_skipped; i++) {
        if (strcmp(study.skipped[i].verdict, "unreadable") == 0) {
            char msg[700];
            snprintf(msg, sizeof msg, "%.300s: %.255s; the study waits until every file can be read",
                     study.skipped[i].path, study.skipped[i].reason);
            hs_study_failed(w, l, s, label, "scan", msg, 0);
            hs_study_free(&study);
            hs_free_study_paths(paths, n, s->n);
            return;
        }
    }
    hs_phase(w, "reading", s->study_uid);
    if (w->crash_uid != NULL && strcmp(w->crash_uid, s->study_uid) == 0)
        abort(); /* the tests' stand-in for a library that asserts */
    hs_study_reading r;
    st = hs_study_read_scanned(label, &study, &w->model, &w->sopt, &r, &err);
    hs_free_study_paths(paths, n, s->n);
    if (st != HS_OK) {
        hs_study_failed(w, l, s, label, "read", err.msg, st == HS_ERR_ARG || st == HS_ERR_FORMAT);
        hs_study_reading_free(&r);
        return;
    }
    if (!hs_watch_unchanged(l, s)) {
        /* Files were added, rewritten or removed while it was read. */
        if (o->verbose > 0)
            fprintf(stderr, "hemoscan: %s (%s): changed while being read; read again later\n",
                    s->study_uid, label);
        w->c.waiting++;
        double due = hs_now() + o->stable_age_s;
        if (w->next_due == 0 || due < w->next_due)
            w->next_due = due;
        hs_study_reading_free(&r);
        return;
    }
    hs_phase(w, "recording", s->study_uid);
    long long verdict_id = 0;
    st = hs_audit_record_study(w->audit, w->run_id, &r, &w->model, &verdict_id, &err);
    if (st != HS_OK) {
        hs_study_failed(w, l, s, label, "record", err.msg, st == HS_ERR_ARG);
        hs_study_reading_free(&r);
        return;
    }
    /* Review pictures after the verdict is recorded: a review that fails
     * is reported and recorded, and the verdict stands. A run killed in
     * between leaves that study without pictures; its verdict has no
     * review_files row, which says so. */
    hs_review_file review;
    memset(&review, 0, sizeof review);
    if (o->review_dir != NULL) {
        hs_phase(w, "reviewing", s->study_uid);
        if (hs_review_store(w->audit, verdict_id, &r, &w->model, o->review_dir, &w->ropt, &review, &err) !=
            HS_OK) {
            hs_report(w, "%s (%s): review: %s", s->study_uid, label, err.msg);
            hs_record_failure(w, label, s->study_uid, "review", err.msg);
        }
    }
    w->c.studies_read++;
    if (r.verdict.verdict == HS_VERDICT_HEMORRHAGE)
        w->c.hemorrhage++;
    else if (r.verdict.verdict == HS_VERDICT_NO_HEMORRHAGE)
        w->c.no_hemorrhage++;
    else
        w->c.not_assessable++;
    cli_emit_reading(o, 1, &r, &w->model, w->model_path, w->db_path, verdict_id, &review);
    if (!o->json && o->verbose > 0) {
        printf("\n");
        fflush(stdout);
    }
    hs_study_reading_free(&r);
    hs_dispose_study(w, l, s);
}

/* One study of the listing: waits while it is not complete, is failed
 * without being read when a watcher died reading the same files before
 * (watch_crashes), and is otherwise read with the crash note armed. */
static void hs_process_study(hs_watcher *w, const hs_watch_listing *l, const hs_watch_study *s,
                             double now)
{
    const options *o = w->o;
    if (hs_is_blocked(w, s->study_uid))
        return; /* its earlier moves are unfinished: reported already */
    if (!hs_watch_is_stable(s->newest, now, o->stable_age_s)) {
        w->c.waiting++;
        double due = s->newest + o->stable_age_s;
        if (w->next_due == 0 || due < w->next_due)
            w->next_due = due;
        return;
    }
    char label[4096];
    hs_study_label(l, s, o->watch_dir, label, sizeof label);
    hs_error err = {0};
    long long crashed_run = 0;
    int sig = 0;
    if (hs_audit_watch_crashed(w->audit, s->study_uid, s->n, s->newest, &crashed_run, &sig, &err) !=
        HS_OK) {
        hs_study_failed(w, l, s, label, "scan", err.msg, 0);
        return;
    }
    if (crashed_run > 0) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "hemoscan died of %s reading these %d files in run %lld (table watch_crashes); "
                 "not read again until they change",
                 hs_crash_note_signal_name(sig), s->n, crashed_run);
        hs_study_failed(w, l, s, label, "crash", msg, 1);
        return;
    }
    hs_crash_note_arm(s->study_uid, s->n, s->newest, label);
    hs_read_study(w, l, s, label);
    hs_crash_note_disarm();
}

/* ---- loose files and errors ------------------------------------------------------- */

static void hs_process_loose(hs_watcher *w, const hs_watch_listing *l, int idx, double now)
{
    const hs_watch_file *f = &l->files[idx];
    if (hs_is_blocked(w, f->path))
        return;
    double newest = f->newest;
    if (!hs_watch_is_stable(newest, now, w->o->stable_age_s)) {
        /* maybe the first bytes of a DICOM file still being written */
        double due = newest + w->o->stable_age_s;
        if (w->next_due == 0 || due < w->next_due)
            w->next_due = due;
        return;
    }
    w->loose_seen++;
    int is_new = 0;
    hs_error err = {0};
    if (hs_audit_loose_file(w->audit, w->run_id, f->path, f->size, f->mtime, f->verdict, f->reason,
                            &is_new, &err) != HS_OK) {
        hs_report(w, "%s", err.msg);
        w->c.failed++;
        return;
    }
    if (is_new) {
        w->c.loose_files++;
        if (w->o->verbose > 0)
            fprintf(stderr, "hemoscan: %s: not part of a study: %s: %s\n", f->path, f->verdict,
                    f->reason);
    }
    if (w->o->quarantine_dir != NULL) {
        char reason[400];
        snprintf(reason, sizeof reason, "%s: %s", f->verdict, f->reason);
        hs_dispose(w, l, &idx, 1, NULL, "quarantine", reason);
    }
}

/* ---- passes ------------------------------------------------------------------------- */

/* The listing's question before it reads a header (hs_watch_skip_fn): did
 * a watcher die reading this file, unchanged, before? Then it is a loose
 * file, quarantined with --quarantine, and its header is not read. */
static int hs_skip_crashed(void *ctx, const hs_watch_file *f, char *reason, size_t cap)
{
    hs_watcher *w = ctx;
    if (w->crash_file != NULL) {
        const char *slash = strrchr(f->path, '/');
        if (strcmp(slash != NULL ? slash + 1 : f->path, w->crash_file) == 0)
            abort(); /* the tests' stand-in for a header reader that crashes */
    }
    hs_error err = {0};
    long long crashed_run = 0;
    int sig = 0;
    if (hs_audit_watch_file_crashed(w->audit, f->path, f->size, hs_watch_file_changed(f),
                                    &crashed_run, &sig, &err) != HS_OK) {
        hs_report(w, "%s: %s", f->path, err.msg);
        return 0; /* a lookup that fails must not hide the file: its header is read */
    }
    if (crashed_run <= 0)
        return 0;
    snprintf(reason, cap, "hemoscan died of %s reading its header in run %lld (table watch_crashes); "
             "not read again until it changes", hs_crash_note_signal_name(sig), crashed_run);
    return 1;
}

/* What a watcher that died reading a study or a file's header left
 * (crash_note.h): recorded in watch_crashes and in failures, reported,
 * counted, then emptied. The study itself is failed when a pass meets it
 * with the same files (hs_process_study), the file skipped by the listing
 * (hs_skip_crashed). A note that cannot be recorded now is kept for the
 * next run. */
static void hs_take_crash_note(hs_watcher *w)
{
    hs_crash_note note;
    int found = 0;
    hs_error err = {0};
    hs_status st = hs_crash_note_read(&note, &found, &err);
    if (st != HS_OK) {
        hs_report(w, "%s: %s", w->crash_note_path, err.msg);
        if (st == HS_ERR_FORMAT && hs_crash_note_clear(&err) != HS_OK)
            hs_report(w, "%s: %s", w->crash_note_path, err.msg);
        return;
    }
    if (!found)
        return;
    hs_audit_watch_crash c = {note.run_id,
                              note.is_file ? NULL : note.study_uid,
                              note.is_file ? note.label : NULL,
                              note.label,
                              note.phase,
                              note.signal,
                              hs_crash_note_signal_name(note.signal),
                              note.n_files,
                              note.bytes,
                              note.newest};
    char who[4200];
    if (note.is_file)
        snprintf(who, sizeof who, "%s", note.label);
    else
        snprintf(who, sizeof who, "%s (%s)", note.study_uid, note.label);
    if (hs_audit_record_watch_crash(w->audit, w->run_id, &c, &err) != HS_OK) {
        hs_report(w, "%s: the crash of run %lld is not recorded (%s); its note %s is kept", who,
                  note.run_id, err.msg, w->crash_note_path);
        return;
    }
    char msg[300];
    snprintf(msg, sizeof msg, "hemoscan (run %lld) died of %s while %s %s", note.run_id,
             hs_crash_note_signal_name(note.signal), note.phase,
             note.is_file ? "the drop folder, reading this file's header" : "this study");
    hs_report(w, "%s: %s", who, msg);
    hs_record_failure(w, note.label, note.is_file ? NULL : note.study_uid, "crash", msg);
    w->c.failed++; /* the dead run's failure, which it could not count itself */
    if (hs_crash_note_clear(&err) != HS_OK)
        hs_report(w, "%s: %s", w->crash_note_path, err.msg);
}

/* One pass over the drop folder; previous is the last pass's listing (or
 * empty), replaced by this one's. */
static void hs_pass(hs_watcher *w, hs_watch_listing *previous)
{
    hs_watch_listing l;
    hs_error err = {0};
    w->c.passes++;
    w->c.waiting = 0;
    w->loose_seen = 0;
    w->next_due = 0;
    hs_phase(w, "listing", w->o->watch_dir);
    if (hs_watch_list(w->o->watch_dir, w->exclude, w->n_exclude, previous, hs_skip_crashed, w, &l,
                      &err) != HS_OK) {
        hs_report(w, "%s", err.msg);
        w->c.failed++;
        hs_watch_listing_free(&l);
        return;
    }
    double now = hs_now();
    for (int i = 0; i < l.n_errors; i++) {
        const hs_watch_file *f = &l.files[l.errors[i]];
        hs_report(w, "%s: %s", f->path, f->reason);
        hs_record_failure(w, f->path, NULL, "list", f->reason);
        w->c.failed++;
    }
    for (int i = 0; i < l.n_loose && !hs_stop_requested; i++)
        hs_process_loose(w, &l, l.loose[i], now);
    for (int i = 0; i < l.n_studies && !hs_stop_requested; i++)
        hs_process_study(w, &l, &l.studies[i], hs_now());
    hs_phase(w, "idle", w->o->watch_dir);
    hs_watch_listing_free(previous);
    *previous = l;
}

/* ---- --follow ------------------------------------------------------------------------ */

/* Watches dir and every folder below it (inotify_add_watch on a folder
 * watched already only renews it). */
static void hs_add_watches(hs_watcher *w, int ifd, const char *dir, int depth)
{
    const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                          IN_ATTRIB | IN_ONLYDIR;
    if (inotify_add_watch(ifd, dir, mask) < 0) {
        if (errno == ENOSPC && depth == 0)
            hs_report(w, "%s: out of inotify watches (fs.inotify.max_user_watches); relying on "
                      "the periodic rescan", dir);
        return;
    }
    if (depth >= 64)
        return;
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (hs_watch_is_temp_name(e->d_name))
            continue;
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
            continue;
        struct stat sb;
        if (lstat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        int excluded = 0;
        for (int i = 0; i < w->n_exclude; i++) {
            struct stat xb;
            if (stat(w->exclude[i], &xb) == 0 && xb.st_dev == sb.st_dev && xb.st_ino == sb.st_ino)
                excluded = 1;
        }
        if (!excluded)
            hs_add_watches(w, ifd, path, depth + 1);
    }
    closedir(d);
}

/* Waits until the next pass is due: an event plus the stable age, the
 * earliest waiting study, the periodic rescan, or a signal. */
static void hs_wait(hs_watcher *w, int ifd)
{
    double stable = w->o->stable_age_s;
    double rescan = stable / 2 > 1 ? stable / 2 : 1;
    double due = hs_now() + rescan;
    if (w->next_due > 0 && w->next_due + 0.05 < due)
        due = w->next_due + 0.05;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (!hs_stop_requested) {
        double left = due - hs_now();
        if (left <= 0)
            return;
        struct pollfd p[2] = {{ifd, POLLIN, 0}, {hs_signal_pipe[0], POLLIN, 0}};
        int timeout_ms = left > 3600 ? 3600000 : (int)ceil(left * 1000);
        int n = poll(p, 2, timeout_ms); /* a negative fd (no inotify) is ignored */
        if (n < 0 && errno != EINTR)
            return;
        if (n <= 0)
            continue;
        if (ifd >= 0 && (p[0].revents & POLLIN)) {
            ssize_t len;
            int changes = 0;
            while ((len = read(ifd, buf, sizeof buf)) > 0) {
                for (char *q = buf; q < buf + len;) {
                    const struct inotify_event *ev = (const struct inotify_event *)q;
                    if (ev->mask & IN_Q_OVERFLOW)
                        due = hs_now(); /* events were lost: look now */
                    else if (ev->len == 0 || !hs_watch_is_temp_name(ev->name))
                        changes = 1;
                    q += sizeof *ev + ev->len;
                }
            }
            if (changes) {
                /* the new files become stable after the stable age */
                double t = hs_now() + stable + 0.05;
                if (t < due)
                    due = t;
                hs_add_watches(w, ifd, w->o->watch_dir, 0); /* new folders */
            }
        }
    }
}

/* ---- the mode ------------------------------------------------------------------------- */

static void hs_summary(hs_watcher *w, double seconds)
{
    const hs_audit_watch_counts *c = &w->c;
    char line[1024];
    int n = snprintf(line, sizeof line,
                     "hemoscan watch %s: %lld studies read (%lld hemorrhage, %lld no hemorrhage, "
                     "%lld not assessable), %lld already read, %lld waiting (not stable), "
                     "%lld failed, %lld loose files (%lld new)",
                     w->o->watch_dir, c->studies_read, c->hemorrhage, c->no_hemorrhage,
                     c->not_assessable, c->already_read, c->waiting, c->failed, w->loose_seen,
                     c->loose_files);
    if (c->files_done > 0 && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, ", %lld files moved to done",
                      c->files_done);
    if (c->files_deleted > 0 && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, ", %lld files deleted", c->files_deleted);
    if (c->files_quarantined > 0 && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, ", %lld files quarantined",
                      c->files_quarantined);
    if (n > 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, ", %.1f s", seconds);
    if (w->o->json) {
        json_t *j = json_object();
        json_t *s = json_object();
        json_object_set_new(s, "drop_dir", json_string(w->o->watch_dir));
        json_object_set_new(s, "run_id", json_integer(w->run_id));
        json_object_set_new(s, "passes", json_integer(c->passes));
        json_object_set_new(s, "studies_read", json_integer(c->studies_read));
        json_object_set_new(s, "hemorrhage", json_integer(c->hemorrhage));
        json_object_set_new(s, "no_hemorrhage", json_integer(c->no_hemorrhage));
        json_object_set_new(s, "not_assessable", json_integer(c->not_assessable));
        json_object_set_new(s, "already_read", json_integer(c->already_read));
        json_object_set_new(s, "waiting", json_integer(c->waiting));
        json_object_set_new(s, "failed", json_integer(c->failed));
        json_object_set_new(s, "loose_files", json_integer(w->loose_seen));
        json_object_set_new(s, "loose_files_new", json_integer(c->loose_files));
        json_object_set_new(s, "files_done", json_integer(c->files_done));
        json_object_set_new(s, "files_deleted", json_integer(c->files_deleted));
        json_object_set_new(s, "files_quarantined", json_integer(c->files_quarantined));
        json_object_set_new(s, "seconds", json_real(seconds));
        json_object_set_new(j, "watch_summary", s);
        json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
        fputc('\n', stdout);
        json_decref(j);
    } else if (w->o->verbose >= 0) {
        printf("%s\n", line);
    }
    fflush(stdout);
    if (w->o->use_syslog)
        syslog(w->failed_any ? LOG_WARNING : LOG_INFO, "%s", line);
}

/* Creates an optional target folder (missing folders with mode), refuses
 * one that is the drop folder itself and keeps the listing out of it. */
static int hs_prepare_target(hs_watcher *w, const char *dir, const char *opt, unsigned mode)
{
    hs_error err = {0};
    if (dir == NULL)
        return 0;
    if (hs_make_dirs(dir, mode, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: %s: %s\n", opt, err.msg);
        return -1;
    }
    struct stat a, b;
    if (stat(dir, &a) == 0 && stat(w->o->watch_dir, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
        fprintf(stderr, "hemoscan: %s %s is the drop folder itself\n", opt, dir);
        return -1;
    }
    w->exclude[w->n_exclude++] = dir;
    return 0;
}

int cli_mode_watch(const options *o)
{
    hs_watcher w;
    memset(&w, 0, sizeof w);
    w.o = o;
    double started = hs_now();
    if (!hs_path_is_dir(o->watch_dir)) {
        fprintf(stderr, "hemoscan: --watch %s: not a folder\n", o->watch_dir);
        return EXIT_FAILED;
    }
    /* the review pictures show patients: for the owner only */
    if (hs_prepare_target(&w, o->done_dir, "--done", 0750) != 0 ||
        hs_prepare_target(&w, o->quarantine_dir, "--quarantine", 0750) != 0 ||
        hs_prepare_target(&w, o->review_dir, "--review", 0700) != 0)
        return EXIT_FAILED;
    const char *force = getenv("HEMOSCAN_TEST_FORCE_COPY");
    w.force_copy = force != NULL && strcmp(force, "1") == 0;
    if (o->use_syslog)
        openlog("hemoscan", LOG_PID, LOG_DAEMON);

    hs_error err = {0};
    char db_buf[4096], lock_path[4200];
    w.db_path = cli_audit_path(o, db_buf, sizeof db_buf, &err);
    if (w.db_path == NULL) {
        hs_report(&w, "audit database: %s", err.msg);
        return EXIT_FAILED;
    }
    snprintf(lock_path, sizeof lock_path, "%s.watch-lock", w.db_path);
    hs_watch_lock lock;
    int busy = 0;
    if (hs_watch_lock_take(lock_path, o->watch_dir, &lock, &busy, &err) != HS_OK) {
        hs_report(&w, "%s", err.msg);
        return busy ? EXIT_LOCKED : EXIT_FAILED;
    }
    if (cli_load_model(o, &w.model, &w.model_path) != EXIT_OK) {
        hs_watch_lock_release(&lock);
        return EXIT_FAILED;
    }
    int status = EXIT_OK;
    if (hs_audit_open(w.db_path, &w.audit, &err) != HS_OK) {
        hs_report(&w, "audit database: %s", err.msg);
        status = EXIT_FAILED;
        goto out;
    }
    const char *busy_ms = getenv("HEMOSCAN_BUSY_TIMEOUT_MS");
    if (busy_ms != NULL && busy_ms[0] != '\0')
        hs_audit_set_busy_timeout(w.audit, atoi(busy_ms));
    hs_audit_run run = {"watch", o->command, w.model_path, w.model.sha256, w.model.provenance.note};
    hs_audit_watch_run wr = {o->watch_dir, o->done_dir, o->quarantine_dir,
                             o->done_dir ? "done" : o->delete_done ? "delete" : "leave",
                             o->stable_age_s, o->follow};
    if (hs_audit_run_begin(w.audit, &run, &w.run_id, &err) != HS_OK ||
        hs_audit_watch_run_begin(w.audit, w.run_id, &wr, &err) != HS_OK) {
        hs_report(&w, "audit database: %s", err.msg);
        status = EXIT_FAILED;
        goto out;
    }
    cli_study_options(o, &w.sopt);
    cli_review_options(o, &w.ropt);
    snprintf(w.crash_note_path, sizeof w.crash_note_path, "%s.watch-crash", w.db_path);
    if (hs_crash_note_open(w.crash_note_path, w.run_id, &err) != HS_OK) {
        hs_report(&w, "%s", err.msg);
        status = EXIT_FAILED;
        goto out;
    }
    hs_take_crash_note(&w);
    w.crash_uid = getenv("HEMOSCAN_TEST_CRASH_STUDY");
    w.crash_file = getenv("HEMOSCAN_TEST_CRASH_FILE");

    /* SIGTERM / SIGINT: finish the study in hand, then stop. */
    int ifd = -1;
    if (pipe(hs_signal_pipe) == 0) {
        for (int i = 0; i < 2; i++)
            fcntl(hs_signal_pipe[i], F_SETFL, fcntl(hs_signal_pipe[i], F_GETFL) | O_NONBLOCK);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = hs_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (o->follow) {
        ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (ifd < 0)
            hs_report(&w, "inotify: %s; relying on the periodic rescan", strerror(errno));
        else
            hs_add_watches(&w, ifd, o->watch_dir, 0);
    }

    hs_finish_pending(&w);
    hs_watch_listing previous;
    memset(&previous, 0, sizeof previous);
    while (!hs_stop_requested) {
        hs_pass(&w, &previous);
        if (!o->follow || hs_stop_requested)
            break;
        if (o->verbose > 0 || w.c.studies_read > 0)
            fflush(stdout);
        hs_wait(&w, ifd);
    }
    hs_watch_listing_free(&previous);
    if (ifd >= 0)
        close(ifd);

    status = w.failed_any || w.c.failed > 0 ? EXIT_FAILED : EXIT_OK;
    hs_summary(&w, hs_now() - started);
    if (hs_audit_watch_run_counts(w.audit, w.run_id, &w.c, &err) != HS_OK ||
        hs_audit_run_end(w.audit, w.run_id, status, &err) != HS_OK) {
        hs_report(&w, "audit database: %s", err.msg);
        status = EXIT_FAILED;
    }
out:
    hs_crash_note_close();
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    for (int i = 0; i < 2; i++) {
        if (hs_signal_pipe[i] >= 0)
            close(hs_signal_pipe[i]);
        hs_signal_pipe[i] = -1;
    }
    for (int i = 0; i < w.n_blocked; i++)
        free(w.blocked[i]);
    free(w.blocked);
    hs_audit_close(w.audit);
    hs_model_free(&w.model);
    hs_watch_lock_release(&lock);
    if (o->use_syslog)
        closelog();
    return status;
}
