/* watcher.c - the watcher's engine (watcher.h): the move journal, a pass
 * over the drop folder, one study from its scan to its moves, loose files,
 * and what a watcher that died of a fatal signal left behind.
 *
 * Built this way on purpose:
 *   - It is library code under the command line, not part of it, so that
 *     the invariants below are pinned by unit tests (tests/test_watcher.c)
 *     and not only end to end. It never prints and never calls getenv:
 *     errors and -v notes go to the caller's message callback, readings to
 *     its reading callback, and the test hooks are configuration fields.
 *   - Every file operation goes through the journal: planned (one
 *     transaction) before the first file of a study moves, marked finished
 *     after each file, and finished first thing by the next run
 *     (hs_watcher_finish_pending). Together with the one-transaction
 *     recording of a study (audit.h), that is why kill -9 at any instant
 *     loses no file and reads no study from part of its files: a study
 *     recorded but not yet journaled is found "already read" by the next
 *     run, and its files are moved then.
 *   - The crash note (crash_note.h) is armed with the study in hand
 *     (process_study) and, by the listing, with each file whose header it
 *     reads; the listing asks skip_crashed first. So a study or file that
 *     killed a watcher is failed or made a loose file (quarantined) by the
 *     next run instead of killing it too, and one bad study cannot stop
 *     every run behind it. The study's check comes before its scan, since
 *     the scan reads headers with DCMTK and could be where it crashed.
 *   - Phases (listing, reading, recording, reviewing, moving, idle) are
 *     set on the crash note always and reach the message callback with
 *     -v: the reliability test tells from them where its kills landed. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hemoscan/audit.h"
#include "hemoscan/clock.h"
#include "hemoscan/crash_note.h"
#include "hemoscan/fileio.h"
#include "hemoscan/grow.h"
#include "hemoscan/path.h"
#include "hemoscan/review_store.h"
#include "hemoscan/study.h"
#include "hemoscan/watch.h"
#include "hemoscan/watcher.h"

struct hs_watcher {
    hs_watcher_config cfg;
    int note_open;              /* this watcher opened the crash note */
    hs_audit_watch_counts c;
    long long loose_seen;       /* loose files seen at the last pass (new or known) */
    int failed_any;             /* an error was reported */
    const char *exclude[3];     /* done, quarantine, review: kept out of the listing */
    int n_exclude;
    double next_due;            /* when the earliest waiting study becomes stable */
    hs_watch_listing previous;  /* the last pass's listing: unchanged headers are not read again */
    /* study UIDs and loose paths whose journaled moves could not be
     * finished: left alone until a later run manages them */
    char **blocked;
    int n_blocked, cap_blocked;
};

static int stop_requested(const hs_watcher *w)
{
    return w->cfg.stop != NULL && *w->cfg.stop != 0;
}

/* A line to the message callback. Errors are cut at 1200 bytes (as
 * hemoscan always printed them); notes hold a full path or two. */
static void vsay(const hs_watcher *w, hs_watcher_message_kind kind, const char *fmt, va_list ap)
{
    char line[2 * HS_PATH_MAX + 808];
    size_t cap = kind == HS_WATCHER_ERROR ? 1200 : sizeof line;
    vsnprintf(line, cap, fmt, ap);
    if (w->cfg.on_message != NULL)
        w->cfg.on_message(w->cfg.ctx, kind, line);
}

/* An error: the message callback, and the run fails. */
static void report(hs_watcher *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(hs_watcher *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(w, HS_WATCHER_ERROR, fmt, ap);
    va_end(ap);
    w->failed_any = 1;
}

/* A -v note. */
static void note(const hs_watcher *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const hs_watcher *w, const char *fmt, ...)
{
    if (w->cfg.verbose <= 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsay(w, HS_WATCHER_NOTE, fmt, ap);
    va_end(ap);
}

static void phase(const hs_watcher *w, const char *name, const char *what)
{
    hs_crash_note_phase(name);
    if (w->cfg.verbose <= 0 || w->cfg.on_message == NULL)
        return;
    char line[HS_PATH_MAX + 128]; /* "phase NAME " and a path */
    snprintf(line, sizeof line, "phase %s %s", name, what);
    w->cfg.on_message(w->cfg.ctx, HS_WATCHER_PHASE, line);
}

/* Something becomes stable (or due again) at time due. */
static void due_at(hs_watcher *w, double due)
{
    if (w->next_due == 0 || due < w->next_due)
        w->next_due = due;
}

static void block(hs_watcher *w, const char *key)
{
    for (int i = 0; i < w->n_blocked; i++)
        if (strcmp(w->blocked[i], key) == 0)
            return;
    if (hs_grow((void **)&w->blocked, &w->cap_blocked, w->n_blocked + 1, sizeof *w->blocked) != 0)
        return;
    char *copy = strdup(key);
    if (copy != NULL)
        w->blocked[w->n_blocked++] = copy;
}

static int is_blocked(const hs_watcher *w, const char *key)
{
    for (int i = 0; i < w->n_blocked; i++)
        if (strcmp(w->blocked[i], key) == 0)
            return 1;
    return 0;
}

/* ---- carrying out journaled file operations ----------------------------------- */

static int write_text(FILE *f, void *ctx)
{
    return fputs(ctx, f) < 0 ? EIO : 0;
}

/* One operation of the journal: move to done or quarantine (with the
 * reason written beside a quarantined file), or delete. Idempotent. */
static hs_status carry_out(const hs_watcher *w, const hs_audit_file_action *a, hs_error *err)
{
    if (strcmp(a->action, "delete") == 0)
        return hs_watch_remove(a->source, err);
    hs_status st = hs_watch_move(a->source, a->dest, w->cfg.force_copy, err);
    if (st == HS_OK && strcmp(a->action, "quarantine") == 0 && a->reason != NULL) {
        char path[HS_PATH_MAX], text[1200];
        st = hs_path_printf(path, sizeof path, err, "%s.reason.txt", a->dest);
        snprintf(text, sizeof text, "%s\nwas: %s\n", a->reason, a->source);
        if (st == HS_OK)
            st = hs_file_write_atomic_with(path, 0640, write_text, text, err);
    }
    return st;
}

static void count_done(hs_watcher *w, const char *action)
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
static int carry_out_all(hs_watcher *w, hs_audit_file_action *acts, int n)
{
    int failures = 0;
    for (int i = 0; i < n; i++) {
        hs_error err = {0};
        hs_status st = carry_out(w, &acts[i], &err);
        if (st == HS_OK)
            st = hs_audit_finish_file(w->cfg.audit, w->cfg.run_id, acts[i].id, &err);
        if (st != HS_OK) {
            report(w, "%s", err.msg);
            block(w, acts[i].study_uid != NULL ? acts[i].study_uid : acts[i].source);
            failures++;
            continue;
        }
        count_done(w, acts[i].action);
        hs_watch_prune_dirs(w->cfg.drop_dir, acts[i].source);
    }
    return failures;
}

void hs_watcher_finish_pending(hs_watcher *w)
{
    hs_audit_file_action *acts = NULL;
    int n = 0;
    hs_error err = {0};
    if (hs_audit_pending_files(w->cfg.audit, &acts, &n, &err) != HS_OK) {
        report(w, "%s", err.msg);
        return;
    }
    if (n > 0) {
        phase(w, "moving", "files an earlier run left pending");
        note(w, "finishing %d file operations an earlier run left pending", n);
        w->c.failed += carry_out_all(w, acts, n);
    }
    hs_audit_file_actions_free(acts, n);
}

/* Journals and carries out one action for the given files of the listing. */
static void dispose(hs_watcher *w, const hs_watch_listing *l, const int *files, int n,
                    const char *study_uid, const char *action, const char *reason)
{
    const char *root = strcmp(action, "done") == 0 ? w->cfg.done_dir
                       : strcmp(action, "quarantine") == 0 ? w->cfg.quarantine_dir : NULL;
    hs_audit_file_action *acts = calloc((size_t)(n > 0 ? n : 1), sizeof *acts);
    char (*dest)[HS_PATH_MAX] = calloc((size_t)(n > 0 ? n : 1), sizeof *dest);
    if (acts == NULL || dest == NULL) {
        free(acts);
        free(dest);
        report(w, "out of memory planning the moves of %s", study_uid ? study_uid : "a file");
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
        st = hs_audit_plan_files(w->cfg.audit, w->cfg.run_id, acts, n, &err);
    if (st != HS_OK) {
        report(w, "%s: cannot plan the %s of its files: %s",
               study_uid != NULL ? study_uid : l->files[files[0]].path, action, err.msg);
        w->c.failed++;
    } else {
        phase(w, "moving", study_uid ? study_uid : l->files[files[0]].path);
        if (carry_out_all(w, acts, n) > 0)
            w->c.failed++;
    }
    free(acts);
    free(dest);
}

/* ---- one study -------------------------------------------------------------------- */

/* The folder the study's drop files share (its storescp folder), or the
 * drop folder itself. */
static void study_label(const hs_watch_listing *l, const hs_watch_study *s, const char *drop,
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

static void record_failure(hs_watcher *w, const char *where, const char *uid, const char *stage,
                           const char *msg)
{
    hs_error err = {0};
    if (hs_audit_record_failure(w->cfg.audit, w->cfg.run_id, where, uid, stage, msg, &err) != HS_OK)
        report(w, "%s", err.msg);
}

/* A study that could not be read: recorded, reported, and quarantined when
 * the fault is the study's own (not the disk's or the database's). */
static void study_failed(hs_watcher *w, const hs_watch_listing *l, const hs_watch_study *s,
                         const char *label, const char *stage, const char *msg, int its_own)
{
    report(w, "%s (%s): %s", s->study_uid, label, msg);
    record_failure(w, label, s->study_uid, stage, msg);
    w->c.failed++;
    if (its_own && w->cfg.quarantine_dir != NULL) {
        char reason[700];
        snprintf(reason, sizeof reason, "study %s failed (%s): %s", s->study_uid, stage, msg);
        dispose(w, l, s->file, s->n, s->study_uid, "quarantine", reason);
    }
}

/* Drop files plus every file of the study known from before that is still
 * there (hs_audit_study_files): in the done folder, or wherever an earlier
 * reading found it. A study that gains instances, in this folder or
 * another, is read whole, and a reading never sees less than it could.
 * Free with hs_audit_study_files_free(paths, *n_out, s->n). */
static char **study_paths(hs_watcher *w, const hs_watch_listing *l, const hs_watch_study *s,
                          int *n_out, int *read_before)
{
    char **drop = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *drop);
    char **paths = NULL;
    int added = 0;
    hs_error err = {0};
    for (int i = 0; drop != NULL && i < s->n; i++)
        drop[i] = l->files[s->file[i]].path;
    if (drop == NULL)
        report(w, "%s: out of memory listing its files", s->study_uid);
    else if (hs_audit_study_files(w->cfg.audit, s->study_uid, drop, s->n, &paths, n_out, &added,
                                  read_before, &err) != HS_OK)
        report(w, "%s", err.msg);
    free(drop);
    return paths;
}

/* The disposal of a study's drop files once it is recorded (or found
 * recorded already). */
static void dispose_study(hs_watcher *w, const hs_watch_listing *l, const hs_watch_study *s)
{
    if (w->cfg.done_dir != NULL)
        dispose(w, l, s->file, s->n, s->study_uid, "done", NULL);
    else if (w->cfg.delete_done)
        dispose(w, l, s->file, s->n, s->study_uid, "delete", NULL);
}

/* What the scan of a study decided. */
enum { SCAN_FAILED, SCAN_READ_ALREADY, SCAN_TO_READ };

/* Scans the study's files into *study and asks the database whether
 * exactly these instances were read with this model. A failure is
 * reported, recorded and counted (its files quarantined when it is the
 * study's own fault); a study read already has its drop files disposed
 * of. A file that cannot be read now may be readable later: the study
 * then waits, failed, rather than get a verdict from part of its files. */
static int scan_study(hs_watcher *w, const hs_watch_listing *l, const hs_watch_study *s,
                      const char *label, char **paths, int n, hs_study *study)
{
    hs_error err = {0};
    char sha[65] = "";
    int found = 0;
    hs_status st = hs_study_scan_files(label, paths, n, w->cfg.study.threads, study, &err);
    /* The scan takes the UID from accepted slices; a study of only MR,
     * corrupt or scout files still has the UID its files were grouped by,
     * so that it too is read once and superseded, never read every pass. */
    if (st == HS_OK && study->study_uid[0] == '\0')
        snprintf(study->study_uid, sizeof study->study_uid, "%s", s->study_uid);
    if (st == HS_OK)
        st = hs_study_instances_sha256(study, sha, &err);
    if (st == HS_OK)
        st = hs_audit_already_read(w->cfg.audit, s->study_uid, sha, w->cfg.model->sha256, &found,
                                   &err);
    if (st != HS_OK) {
        study_failed(w, l, s, label, "scan", err.msg, st == HS_ERR_ARG || st == HS_ERR_FORMAT);
        return SCAN_FAILED;
    }
    if (found) {
        w->c.already_read++;
        note(w, "%s (%s): read already (same instances, same model)", s->study_uid, label);
        dispose_study(w, l, s); /* a run killed after recording it did not move it */
        return SCAN_READ_ALREADY;
    }
    for (int i = 0; i < study->n_skipped; i++) {
        if (strcmp(study->skipped[i].verdict, "unreadable") == 0) {
            char msg[700];
            snprintf(msg, sizeof msg, "%.300s: %.255s; the study waits until every file can be read",
                     study->skipped[i].path, study->skipped[i].reason);
            study_failed(w, l, s, label, "scan", msg, 0);
            return SCAN_FAILED;
        }
    }
    return SCAN_TO_READ;
}

/* A reading made from files that did not change meanwhile: recorded (one
 * transaction), its review pictures written, counted, handed to the
 * reading callback, and its drop files disposed of. */
static void record_reading(hs_watcher *w, const hs_watch_listing *l, const hs_watch_study *s,
                           const char *label, const hs_study_reading *r)
{
    const hs_watcher_config *cfg = &w->cfg;
    hs_error err = {0};
    phase(w, "recording", s->study_uid);
    long long verdict_id = 0;
    hs_status st = hs_audit_record_study(cfg->audit, cfg->run_id, r, cfg->model, &verdict_id, &err);
    if (st != HS_OK) {
        study_failed(w, l, s, label, "record", err.msg, st == HS_ERR_ARG);
        return;
    }
    /* Review pictures after the verdict is recorded: a review that fails
     * is reported and recorded, and the verdict stands. A run killed in
     * between leaves that study without pictures; its verdict has no
     * review_files row, which says so. */
    hs_review_file review;
    memset(&review, 0, sizeof review);
    if (cfg->review_dir != NULL) {
        phase(w, "reviewing", s->study_uid);
        if (hs_review_store(cfg->audit, verdict_id, r, cfg->model, cfg->review_dir, &cfg->review,
                            &review, &err) != HS_OK) {
            report(w, "%s (%s): review: %s", s->study_uid, label, err.msg);
            record_failure(w, label, s->study_uid, "review", err.msg);
        }
    }
    w->c.studies_read++;
    if (r->verdict.verdict == HS_VERDICT_HEMORRHAGE)
        w->c.hemorrhage++;
    else if (r->verdict.verdict == HS_VERDICT_NO_HEMORRHAGE)
        w->c.no_hemorrhage++;
    else
        w->c.not_assessable++;
    if (cfg->on_reading != NULL)
        cfg->on_reading(cfg->ctx, r, verdict_id, &review);
    dispose_study(w, l, s);
}

/* Reads a scanned study (taking *study over) and records it, unless its
 * files changed while it was read: then it waits for a later pass. */
static void read_scanned(hs_watcher *w, const hs_watch_listing *l, const hs_watch_study *s,
                         const char *label, hs_study *study, int read_before)
{
    /* A study read before is read with every eligible series, so the
     * verdict comes from everything known of it and covers whatever
     * series an earlier verdict was read from (audit.h). */
    hs_study_options opt = w->cfg.study;
    if (read_before)
        opt.all_series = 1;
    hs_error err = {0};
    phase(w, "reading", s->study_uid);
    if (w->cfg.crash_study_uid != NULL && strcmp(w->cfg.crash_study_uid, s->study_uid) == 0)
        abort(); /* the tests' stand-in for a library that asserts */
    hs_study_reading r;
    hs_status st = hs_study_read_scanned(label, study, w->cfg.model, &opt, &r, &err);
    if (st != HS_OK) {
        study_failed(w, l, s, label, "read", err.msg, st == HS_ERR_ARG || st == HS_ERR_FORMAT);
    } else if (!hs_watch_unchanged(l, s)) {
        /* Files were added, rewritten or removed while it was read. */
        note(w, "%s (%s): changed while being read; read again later", s->study_uid, label);
        w->c.waiting++;
        due_at(w, hs_clock_now() + w->cfg.stable_age_s);
    } else {
        record_reading(w, l, s, label, &r);
    }
    hs_study_reading_free(&r);
}

/* A complete study, from its scan to its moves. */
static void read_study(hs_watcher *w, const hs_watch_listing *l, const hs_watch_study *s,
                       const char *label)
{
    int n = 0, read_before = 0;
    char **paths = study_paths(w, l, s, &n, &read_before);
    if (paths == NULL) {
        w->c.failed++;
        return;
    }
    hs_study study;
    memset(&study, 0, sizeof study);
    if (scan_study(w, l, s, label, paths, n, &study) == SCAN_TO_READ)
        read_scanned(w, l, s, label, &study, read_before);
    hs_study_free(&study); /* emptied already when it was read */
    hs_audit_study_files_free(paths, n, s->n);
}

/* One study of the listing: waits while it is not complete, is failed
 * without being read when a watcher died reading the same files before
 * (watch_crashes), and is otherwise read with the crash note armed. */
static void process_study(hs_watcher *w, const hs_watch_listing *l, const hs_watch_study *s,
                          double now)
{
    if (is_blocked(w, s->study_uid))
        return; /* its earlier moves are unfinished: reported already */
    if (!hs_watch_is_stable(s->newest, now, w->cfg.stable_age_s)) {
        w->c.waiting++;
        due_at(w, s->newest + w->cfg.stable_age_s);
        return;
    }
    char label[HS_PATH_MAX];
    study_label(l, s, w->cfg.drop_dir, label, sizeof label);
    hs_error err = {0};
    long long crashed_run = 0;
    int sig = 0;
    if (hs_audit_watch_crashed(w->cfg.audit, s->study_uid, s->n, s->newest, &crashed_run, &sig,
                               &err) != HS_OK) {
        study_failed(w, l, s, label, "scan", err.msg, 0);
        return;
    }
    if (crashed_run > 0) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "hemoscan died of %s reading these %d files in run %lld (table watch_crashes); "
                 "not read again until they change",
                 hs_crash_note_signal_name(sig), s->n, crashed_run);
        study_failed(w, l, s, label, "crash", msg, 1);
        return;
    }
    hs_crash_note_arm(s->study_uid, s->n, s->newest, label);
    read_study(w, l, s, label);
    hs_crash_note_disarm();
}

/* ---- loose files ----------------------------------------------------------------- */

/* A stable loose file: recorded once (by path, size and mtime), and
 * quarantined with its reason when there is a quarantine folder. */
static void process_loose(hs_watcher *w, const hs_watch_listing *l, int idx, double now)
{
    const hs_watch_file *f = &l->files[idx];
    if (is_blocked(w, f->path))
        return;
    if (!hs_watch_is_stable(f->newest, now, w->cfg.stable_age_s)) {
        /* maybe the first bytes of a DICOM file still being written */
        due_at(w, f->newest + w->cfg.stable_age_s);
        return;
    }
    w->loose_seen++;
    int is_new = 0;
    hs_error err = {0};
    if (hs_audit_loose_file(w->cfg.audit, w->cfg.run_id, f->path, f->size, f->mtime, f->verdict,
                            f->reason, &is_new, &err) != HS_OK) {
        report(w, "%s", err.msg);
        w->c.failed++;
        return;
    }
    if (is_new) {
        w->c.loose_files++;
        note(w, "%s: not part of a study: %s: %s", f->path, f->verdict, f->reason);
    }
    if (w->cfg.quarantine_dir != NULL) {
        char reason[400];
        snprintf(reason, sizeof reason, "%s: %s", f->verdict, f->reason);
        dispose(w, l, &idx, 1, NULL, "quarantine", reason);
    }
}

/* ---- crashes ----------------------------------------------------------------------- */

/* The listing's question before it reads a header (hs_watch_skip_fn): did
 * a watcher die reading this file, unchanged, before? Then it is a loose
 * file, quarantined with a quarantine folder, and its header is not read. */
static int skip_crashed(void *ctx, const hs_watch_file *f, char *reason, size_t cap)
{
    hs_watcher *w = ctx;
    if (w->cfg.crash_file != NULL) {
        const char *slash = strrchr(f->path, '/');
        if (strcmp(slash != NULL ? slash + 1 : f->path, w->cfg.crash_file) == 0)
            abort(); /* the tests' stand-in for a header reader that crashes */
    }
    hs_error err = {0};
    long long crashed_run = 0;
    int sig = 0;
    if (hs_audit_watch_file_crashed(w->cfg.audit, f->path, f->size, hs_watch_file_changed(f),
                                    &crashed_run, &sig, &err) != HS_OK) {
        report(w, "%s: %s", f->path, err.msg);
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
 * with the same files (process_study), the file skipped by the listing
 * (skip_crashed). A note that cannot be recorded now is kept for the next
 * run. */
static void take_crash_note(hs_watcher *w)
{
    const char *path = w->cfg.crash_note_path;
    hs_crash_note cn;
    int found = 0;
    hs_error err = {0};
    hs_status st = hs_crash_note_read(&cn, &found, &err);
    if (st != HS_OK) {
        report(w, "%s: %s", path, err.msg);
        if (st == HS_ERR_FORMAT && hs_crash_note_clear(&err) != HS_OK)
            report(w, "%s: %s", path, err.msg);
        return;
    }
    if (!found)
        return;
    hs_audit_watch_crash c = {cn.run_id,
                              cn.is_file ? NULL : cn.study_uid,
                              cn.is_file ? cn.label : NULL,
                              cn.label,
                              cn.phase,
                              cn.signal,
                              hs_crash_note_signal_name(cn.signal),
                              cn.n_files,
                              cn.bytes,
                              cn.newest};
    char who[HS_UID_KEY_MAX + HS_PATH_MAX + 8]; /* a study UID key and its folder, or a file */
    if (cn.is_file)
        snprintf(who, sizeof who, "%s", cn.label);
    else
        snprintf(who, sizeof who, "%s (%s)", cn.study_uid, cn.label);
    if (hs_audit_record_watch_crash(w->cfg.audit, w->cfg.run_id, &c, &err) != HS_OK) {
        report(w, "%s: the crash of run %lld is not recorded (%s); its note %s is kept", who,
               cn.run_id, err.msg, path);
        return;
    }
    char msg[300];
    snprintf(msg, sizeof msg, "hemoscan (run %lld) died of %s while %s %s", cn.run_id,
             hs_crash_note_signal_name(cn.signal), cn.phase,
             cn.is_file ? "the drop folder, reading this file's header" : "this study");
    report(w, "%s: %s", who, msg);
    record_failure(w, cn.label, cn.is_file ? NULL : cn.study_uid, "crash", msg);
    w->c.failed++; /* the dead run's failure, which it could not count itself */
    if (hs_crash_note_clear(&err) != HS_OK)
        report(w, "%s: %s", path, err.msg);
}

/* ---- change times in the future ------------------------------------------------------ */

/* How far ahead of the clock a change time may be before it is "in the
 * future": file servers' clocks drift by a second or two. */
#define FUTURE_SLACK_S 5.0

/* Files (or folders above them) whose change time lies in the future
 * would keep their study waiting until that time comes, maybe for years.
 * Each counts as changed when a watcher first saw it so (kept in the
 * database, so a cron run the next night still knows), and is reported
 * once. The studies' newest times are made again from their files'. */
static void tame_future_times(hs_watcher *w, hs_watch_listing *l, double now)
{
    int any = 0;
    for (int i = 0; i < l->n_files; i++) {
        hs_watch_file *f = &l->files[i];
        if (f->kind == HS_WATCH_ERROR || f->newest <= now + FUTURE_SLACK_S)
            continue;
        double first_seen = now;
        int is_new = 0;
        hs_error err = {0};
        if (hs_audit_watch_future_file(w->cfg.audit, w->cfg.run_id, f->path, f->size, f->newest, now,
                                       &first_seen, &is_new, &err) != HS_OK) {
            report(w, "%s", err.msg);
            continue; /* the pass goes on; the file is counted as changed now */
        }
        if (is_new) {
            char msg[200];
            snprintf(msg, sizeof msg, "its change time (or its folder's) is %.0f s in the future; "
                     "counted as changed when first seen", f->newest - now);
            report(w, "%s: %s", f->path, msg);
            record_failure(w, f->path, f->kind == HS_WATCH_STUDY_FILE ? f->study_uid : NULL, "list",
                           msg);
        }
        f->newest = first_seen;
        any = 1;
    }
    for (int s = 0; any && s < l->n_studies; s++) {
        hs_watch_study *st = &l->studies[s];
        st->newest = 0;
        for (int k = 0; k < st->n; k++)
            if (l->files[st->file[k]].newest > st->newest)
                st->newest = l->files[st->file[k]].newest;
    }
}

/* ---- the watcher -------------------------------------------------------------------- */

void hs_watcher_config_default(hs_watcher_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->stable_age_s = 60;
    hs_study_options_default(&cfg->study);
    hs_review_options_default(&cfg->review);
}

/* 1 when dir names the same folder as drop. */
static int same_folder(const char *dir, const char *drop)
{
    struct stat a, b;
    return stat(dir, &a) == 0 && stat(drop, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

/* The target folders, kept out of the listing; none may be the drop folder. */
static hs_status set_targets(hs_watcher *w, hs_error *err)
{
    const char *dirs[3] = {w->cfg.done_dir, w->cfg.quarantine_dir, w->cfg.review_dir};
    for (int i = 0; i < 3; i++) {
        if (dirs[i] == NULL)
            continue;
        if (same_folder(dirs[i], w->cfg.drop_dir))
            return hs_fail(err, HS_ERR_ARG, "%s is the drop folder itself", dirs[i]);
        w->exclude[w->n_exclude++] = dirs[i];
    }
    return HS_OK;
}

hs_status hs_watcher_create(const hs_watcher_config *cfg, hs_watcher **out, hs_error *err)
{
    if (out == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_watcher_create: out is NULL");
    *out = NULL;
    if (cfg == NULL || cfg->drop_dir == NULL || cfg->model == NULL || cfg->audit == NULL ||
        cfg->run_id <= 0)
        return hs_fail(err, HS_ERR_ARG,
                       "hs_watcher_create: a drop folder, a model, an audit database and a run "
                       "are needed");
    hs_watcher *w = calloc(1, sizeof *w);
    if (w == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for the watcher");
    w->cfg = *cfg;
    hs_status st = set_targets(w, err);
    if (st == HS_OK && cfg->crash_note_path != NULL) {
        st = hs_crash_note_open(cfg->crash_note_path, cfg->run_id, err);
        w->note_open = st == HS_OK;
    }
    if (st != HS_OK) {
        hs_watcher_free(w);
        return st;
    }
    if (w->note_open)
        take_crash_note(w);
    *out = w;
    return HS_OK;
}

void hs_watcher_free(hs_watcher *w)
{
    if (w == NULL)
        return;
    if (w->note_open)
        hs_crash_note_close();
    hs_watch_listing_free(&w->previous);
    for (int i = 0; i < w->n_blocked; i++)
        free(w->blocked[i]);
    free(w->blocked);
    free(w);
}

void hs_watcher_pass(hs_watcher *w)
{
    const char *drop = w->cfg.drop_dir;
    hs_watch_listing l;
    hs_error err = {0};
    w->c.passes++;
    w->c.waiting = 0;
    w->loose_seen = 0;
    w->next_due = 0;
    phase(w, "listing", drop);
    if (hs_watch_list(drop, w->exclude, w->n_exclude, &w->previous, skip_crashed, w, &l, &err) !=
        HS_OK) {
        report(w, "%s", err.msg);
        w->c.failed++;
        hs_watch_listing_free(&l);
        return;
    }
    double now = hs_clock_now();
    tame_future_times(w, &l, now);
    for (int i = 0; i < l.n_errors; i++) {
        const hs_watch_file *f = &l.files[l.errors[i]];
        /* a path of thousands of bytes must not push its reason off the line */
        report(w, "%.600s%s: %s", f->path, strlen(f->path) > 600 ? "..." : "", f->reason);
        record_failure(w, f->path, NULL, "list", f->reason);
        w->c.failed++;
    }
    for (int i = 0; i < l.n_loose && !stop_requested(w); i++)
        process_loose(w, &l, l.loose[i], now);
    for (int i = 0; i < l.n_studies && !stop_requested(w); i++)
        process_study(w, &l, &l.studies[i], hs_clock_now());
    phase(w, "idle", drop);
    hs_watch_listing_free(&w->previous);
    w->previous = l;
}

double hs_watcher_next_due(const hs_watcher *w)
{
    return w->next_due;
}

const hs_audit_watch_counts *hs_watcher_counts(const hs_watcher *w)
{
    return &w->c;
}

long long hs_watcher_loose_seen(const hs_watcher *w)
{
    return w->loose_seen;
}

int hs_watcher_failed(const hs_watcher *w)
{
    return w->failed_any;
}
