/* test_watcher.c - CUnit tests of the watcher's engine (watcher.c),
 * registered by hs_register_watcher_tests().
 *
 * What hemoscan --watch promises, pinned without a process around it:
 *   - a pass reads each complete study once (one reading callback, one
 *     verdict), and the next pass, or the next run, finds it read already
 *     (and moves its files, which a run killed after recording it did
 *     not);
 *   - with a done folder the files move and the journal keeps nothing
 *     pending, and a study that gains instances is read again with the
 *     files it has in the done folder; with delete_done the files go;
 *   - a study or loose file still arriving waits and says when it is due;
 *   - a loose file is recorded once, and quarantined with its reason;
 *   - moves a killed run journaled are finished before the pass, and moves
 *     that fail block their study until a later run finishes them;
 *   - a study, or a file, whose reading killed a watcher is failed and
 *     quarantined unread, and a changed copy is read: the watcher that
 *     dies is a child process aborted through the test hooks, and the
 *     crash note it leaves is what the next watcher takes;
 *   - the stop flag stops a pass between studies;
 *   - errors and -v lines reach the message callback.
 *
 * Every test has its own folder and database. Studies are 128 x 128 x 2
 * (too few slices for a verdict either way, which the watcher does not
 * mind) and read with one network (HEMOSCAN_QUICK) and no mirror pass, so
 * the suite takes seconds and stays usable under valgrind; without the
 * generator or the default model those tests say they are skipped. Under
 * valgrind the aborted children print their own leak summary, with what
 * a process that dies holds (SQLite's page cache, OpenBLAS's threads) as
 * possibly lost; the exit status is the parent's. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <sqlite3.h>

#include "hemoscan/audit.h"
#include "hemoscan/watch.h"
#include "hemoscan/watcher.h"
#include "test_util.h"

int hs_register_watcher_tests(void);

#define PATH_CAP 4200
#define MAX_READINGS 8
/* Slices (files) of each generated study. */
#define SLICES 2

static char tmp_dir[4096];
static hs_model model;
static int have_model;

static int suite_init(void)
{
    have_model = hs_test_load_default_model(&model, "watcher");
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "watcher");
}

static int suite_clean(void)
{
    if (have_model)
        hs_model_free(&model);
    return hs_test_tmpdir_remove(tmp_dir);
}

/* ---- what the callbacks saw -------------------------------------------------------- */

typedef struct {
    int readings;
    char uid[MAX_READINGS][HS_UID_KEY_MAX];
    long long verdict_id[MAX_READINGS];
    int files[MAX_READINGS];    /* hs_study.n_files of each reading */
    int errors, notes, phases;
    char log[16384];            /* every message, "E: ", "N: " or "P: " and a newline */
    volatile sig_atomic_t stop;
    int stop_after;             /* > 0: set stop at this many readings */
} seen;

static void on_reading(void *ctx, const hs_study_reading *r, long long verdict_id,
                       const hs_review_file *review)
{
    seen *s = ctx;
    CU_ASSERT_PTR_NOT_NULL(review);
    if (s->readings < MAX_READINGS) {
        snprintf(s->uid[s->readings], sizeof s->uid[0], "%s", r->study.study_uid);
        s->verdict_id[s->readings] = verdict_id;
        s->files[s->readings] = r->study.n_files;
    }
    s->readings++;
    if (s->stop_after > 0 && s->readings >= s->stop_after)
        s->stop = 1;
}

static void on_message(void *ctx, hs_watcher_message_kind kind, const char *line)
{
    seen *s = ctx;
    const char *tag = kind == HS_WATCHER_ERROR ? "E" : kind == HS_WATCHER_NOTE ? "N" : "P";
    if (kind == HS_WATCHER_ERROR)
        s->errors++;
    else if (kind == HS_WATCHER_NOTE)
        s->notes++;
    else
        s->phases++;
    size_t used = strlen(s->log);
    snprintf(s->log + used, sizeof s->log - used, "%s: %s\n", tag, line);
}

/* 1 when reading number i..readings-1 was of study uid. */
static int was_read(const seen *s, const char *uid)
{
    for (int i = 0; i < s->readings && i < MAX_READINGS; i++)
        if (strcmp(s->uid[i], uid) == 0)
            return 1;
    return 0;
}

/* ---- a test's folders, database and run ----------------------------------------------- */

typedef struct {
    char dir[PATH_CAP], drop[PATH_CAP], done[PATH_CAP], quarantine[PATH_CAP], db[PATH_CAP],
        note[PATH_CAP];
    hs_audit *audit;
    long long run_id;
    seen seen;
} fixture;

/* A folder NAME in the suite's folder holding an empty drop folder; the
 * database and crash note paths beside it. */
static int fixture_make(fixture *f, const char *name)
{
    memset(f, 0, sizeof *f);
    hs_test_path(f->dir, sizeof f->dir, tmp_dir, name);
    snprintf(f->drop, sizeof f->drop, "%.4000s/drop", f->dir);
    snprintf(f->done, sizeof f->done, "%.4000s/done", f->dir);
    snprintf(f->quarantine, sizeof f->quarantine, "%.4000s/quarantine", f->dir);
    snprintf(f->db, sizeof f->db, "%.4000s/audit.db", f->dir);
    snprintf(f->note, sizeof f->note, "%.4000s/audit.db.watch-crash", f->dir);
    return mkdir(f->dir, 0700) == 0 && mkdir(f->drop, 0700) == 0 ? 0 : -1;
}

/* Opens the database (unless open) and begins a watch run, as the mode
 * does; done and quarantine as the watcher will be given them. */
static int begin_run(fixture *f, const char *done, const char *quarantine, int delete_done)
{
    hs_error err = {0};
    if (f->audit == NULL && hs_audit_open(f->db, &f->audit, &err) != HS_OK)
        return -1;
    hs_audit_run run = {"watch", "test_watcher", "default.hsm", model.sha256, "test"};
    hs_audit_watch_run wr = {f->drop, done, quarantine,
                             done != NULL ? "done" : delete_done ? "delete" : "leave", 0, 0};
    if (hs_audit_run_begin(f->audit, &run, &f->run_id, &err) != HS_OK ||
        hs_audit_watch_run_begin(f->audit, f->run_id, &wr, &err) != HS_OK)
        return -1;
    memset(&f->seen, 0, sizeof f->seen);
    return 0;
}

/* The configuration of most tests: stable at once, one thread, no mirror
 * pass, -v, both callbacks into f->seen, its stop flag. */
static void config(fixture *f, hs_watcher_config *cfg)
{
    hs_watcher_config_default(cfg);
    cfg->drop_dir = f->drop;
    cfg->stable_age_s = 0;
    cfg->verbose = 1;
    cfg->study.threads = 1;
    cfg->study.tta = 0;
    cfg->model = &model;
    cfg->audit = f->audit;
    cfg->run_id = f->run_id;
    cfg->stop = &f->seen.stop;
    cfg->on_reading = on_reading;
    cfg->on_message = on_message;
    cfg->ctx = &f->seen;
}

/* Ends the run with the watcher's counts, as the mode does: the schema
 * checks that they add up. Frees the watcher. */
static void end_run(fixture *f, hs_watcher *w)
{
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_audit_watch_run_counts(f->audit, f->run_id, hs_watcher_counts(w), &err),
                    HS_OK);
    CU_ASSERT_EQUAL(hs_audit_run_end(f->audit, f->run_id, 0, &err), HS_OK);
    hs_watcher_free(w);
}

static void fixture_close(fixture *f)
{
    hs_audit_close(f->audit);
    f->audit = NULL;
}

static int need_model(void)
{
    if (!have_model)
        printf("\n  skipped: the default model did not load (set HEMOSCAN_SRCDIR)\n");
    return have_model;
}

/* A study NAME (may hold a slash) of SLICES slices and seed in the drop
 * folder, with extra generator options; its UID into uid (65 bytes, may
 * be NULL). As hs_test_generate returns. */
static int add_study(const fixture *f, const char *name, int seed, const char *opts, char *uid)
{
    char dir[PATH_CAP], all[1024];
    snprintf(all, sizeof all, "--slices %d --seed %d %s", SLICES, seed, opts != NULL ? opts : "");
    int rc = hs_test_generate_study(f->drop, name, all, dir, sizeof dir);
    if (rc != 0 || uid == NULL)
        return rc;
    /* its UID: the listing of that folder alone */
    hs_watch_listing l;
    hs_error err = {0};
    rc = hs_watch_list(dir, NULL, 0, NULL, NULL, NULL, &l, &err) == HS_OK && l.n_studies == 1 ? 0 : -1;
    if (rc == 0)
        snprintf(uid, HS_UID_KEY_MAX, "%s", l.studies[0].study_uid);
    hs_watch_listing_free(&l);
    return rc;
}

/* The result of a one-number query, or -1. */
static long long sql_count(const fixture *f, const char *query)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long n = -1;
    if (sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, query, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Regular files below dir (any depth), or -1 when it cannot be read. */
static int count_files(const char *dir)
{
    hs_watch_listing l;
    hs_error err = {0};
    int n = hs_watch_list(dir, NULL, 0, NULL, NULL, NULL, &l, &err) == HS_OK ? l.n_files : -1;
    hs_watch_listing_free(&l);
    return n;
}

static int pending(const fixture *f)
{
    hs_audit_file_action *acts = NULL;
    int n = -1;
    hs_error err = {0};
    if (hs_audit_pending_files(f->audit, &acts, &n, &err) != HS_OK)
        return -1;
    hs_audit_file_actions_free(acts, n);
    return n;
}

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* ---- the tests ----------------------------------------------------------------------- */

/* One pass reads each complete study once; the next pass and the next run
 * find them read already. */
static void test_reads_once(void)
{
    fixture f;
    char a[HS_UID_KEY_MAX], b[HS_UID_KEY_MAX];
    if (!need_model())
        return;
    CU_ASSERT_EQUAL_FATAL(fixture_make(&f, "once"), 0);
    int rc = add_study(&f, "a", 11, NULL, a);
    if (rc == 1)
        return;
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(add_study(&f, "deep/er/b", 12, "--shuffle", b), 0);
    CU_ASSERT_EQUAL_FATAL(begin_run(&f, NULL, NULL, 0), 0);
    hs_watcher_config cfg;
    config(&f, &cfg);
    hs_watcher *w = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    hs_watcher_finish_pending(w);
    hs_watcher_pass(w);
    const hs_audit_watch_counts *c = hs_watcher_counts(w);
    CU_ASSERT_EQUAL(f.seen.readings, 2);
    CU_ASSERT(was_read(&f.seen, a) && was_read(&f.seen, b));
    CU_ASSERT(f.seen.verdict_id[0] > 0 && f.seen.verdict_id[1] > f.seen.verdict_id[0]);
    CU_ASSERT_EQUAL(f.seen.files[0], SLICES);
    CU_ASSERT_EQUAL(c->passes, 1);
    CU_ASSERT_EQUAL(c->studies_read, 2);
    CU_ASSERT_EQUAL(c->hemorrhage + c->no_hemorrhage + c->not_assessable, 2);
    CU_ASSERT_EQUAL(c->already_read, 0);
    CU_ASSERT_EQUAL(c->failed, 0);
    CU_ASSERT_EQUAL(c->waiting, 0);
    CU_ASSERT_EQUAL(hs_watcher_next_due(w), 0);
    CU_ASSERT_EQUAL(hs_watcher_failed(w), 0);
    CU_ASSERT_EQUAL(f.seen.errors, 0);
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM verdicts"), 2);
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM current_verdicts"), 2);
    /* -v: what was in hand, in order, for the reliability test's phases */
    char want[PATH_CAP + 200];
    snprintf(want, sizeof want, "P: phase reading %s\nP: phase recording %s\n", a, a);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen.log, want));
    CU_ASSERT(strncmp(f.seen.log, "P: phase listing ", 17) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen.log, "P: phase idle "));
    CU_ASSERT_PTR_NULL(strstr(f.seen.log, "phase moving")); /* files are left */

    /* The next pass: same instances, same model. */
    f.seen.log[0] = '\0';
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(f.seen.readings, 2);
    CU_ASSERT_EQUAL(c->passes, 2);
    CU_ASSERT_EQUAL(c->studies_read, 2);
    CU_ASSERT_EQUAL(c->already_read, 2);
    snprintf(want, sizeof want, "N: %s (%.4000s/a): read already (same instances, same model)\n",
             a, f.drop);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen.log, want));
    end_run(&f, w);

    CU_ASSERT_EQUAL(count_files(f.drop), 2 * SLICES); /* left in place */

    /* The next run, quiet and with a done folder (as after a run killed
     * between recording and journaling the moves): nothing read, nothing
     * said, the files of the studies read already moved. */
    CU_ASSERT_EQUAL_FATAL(begin_run(&f, f.done, NULL, 0), 0);
    config(&f, &cfg);
    cfg.verbose = 0;
    cfg.done_dir = f.done;
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(f.seen.readings, 0);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->already_read, 2);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->studies_read, 0);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->files_done, 2 * SLICES);
    CU_ASSERT_EQUAL(f.seen.log[0], '\0');
    end_run(&f, w);
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM verdicts"), 2);
    CU_ASSERT_EQUAL(count_files(f.drop), 0);
    CU_ASSERT_EQUAL(count_files(f.done), 2 * SLICES);
    fixture_close(&f);
}

/* With a done folder the files move and the journal keeps nothing
 * pending; late instances are read with the files in the done folder;
 * with delete_done the files go. */
static void test_done_and_delete(void)
{
    fixture f;
    char a[HS_UID_KEY_MAX], p[PATH_CAP];
    if (!need_model())
        return;
    CU_ASSERT_EQUAL_FATAL(fixture_make(&f, "done"), 0);
    int rc = add_study(&f, "a", 21, NULL, a);
    if (rc == 1)
        return;
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(begin_run(&f, f.done, NULL, 0), 0);
    hs_watcher_config cfg;
    config(&f, &cfg);
    cfg.done_dir = f.done;
    hs_watcher *w = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(f.seen.readings, 1);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->files_done, SLICES);
    CU_ASSERT_EQUAL(count_files(f.drop), 0);
    CU_ASSERT_EQUAL(count_files(f.done), SLICES);
    snprintf(p, sizeof p, "%.4000s/a/IM0001.dcm", f.done);
    CU_ASSERT(exists(p));
    snprintf(p, sizeof p, "%.4000s/a", f.drop);
    CU_ASSERT(!exists(p)); /* its emptied folder pruned */
    CU_ASSERT_EQUAL(pending(&f), 0);
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM watch_files WHERE state = 'finished' "
                                  "AND action = 'done'"), SLICES);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen.log, "P: phase moving "));

    /* Late instances of the same study: read whole, with its done files. */
    char opts[200];
    snprintf(opts, sizeof opts, "--study-uid %s --series-number 5", a);
    CU_ASSERT_EQUAL_FATAL(add_study(&f, "late", 22, opts, NULL), 0);
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(f.seen.readings, 2);
    CU_ASSERT_STRING_EQUAL(f.seen.uid[1], a);
    CU_ASSERT_EQUAL(f.seen.files[1], 2 * SLICES);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->files_done, 2 * SLICES);
    CU_ASSERT_EQUAL(count_files(f.done), 2 * SLICES);
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM verdicts WHERE superseded_by IS NOT NULL"), 1);
    CU_ASSERT_EQUAL(pending(&f), 0);
    end_run(&f, w);

    /* delete_done: read, then gone. */
    CU_ASSERT_EQUAL_FATAL(add_study(&f, "b", 23, NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(begin_run(&f, NULL, NULL, 1), 0);
    config(&f, &cfg);
    cfg.delete_done = 1;
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(f.seen.readings, 1);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->files_deleted, SLICES);
    CU_ASSERT_EQUAL(count_files(f.drop), 0);
    CU_ASSERT_EQUAL(count_files(f.done), 2 * SLICES);
    CU_ASSERT_EQUAL(pending(&f), 0);
    CU_ASSERT_EQUAL(f.seen.errors, 0);
    end_run(&f, w);
    fixture_close(&f);
}

/* A study, or a loose file, newer than the stable age waits and says when
 * it is due. */
static void test_waits_until_stable(void)
{
    fixture f;
    char p[PATH_CAP];
    if (!need_model())
        return;
    CU_ASSERT_EQUAL_FATAL(fixture_make(&f, "stable"), 0);
    int rc = add_study(&f, "a", 31, NULL, NULL);
    if (rc == 1)
        return;
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(begin_run(&f, NULL, NULL, 0), 0);
    hs_watcher_config cfg;
    config(&f, &cfg);
    cfg.stable_age_s = 3600;
    hs_watcher *w = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec;
    hs_watcher_pass(w);
    const hs_audit_watch_counts *c = hs_watcher_counts(w);
    CU_ASSERT_EQUAL(f.seen.readings, 0);
    CU_ASSERT_EQUAL(c->waiting, 1);
    CU_ASSERT_EQUAL(c->studies_read, 0);
    double due = hs_watcher_next_due(w);
    CU_ASSERT(due >= now + 3600 - 120 && due <= now + 3600 + 120);
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM verdicts"), 0);

    /* The study gone, a loose file just written: it waits too. */
    snprintf(p, sizeof p, "%.4000s/a", f.drop);
    CU_ASSERT_EQUAL_FATAL(hs_test_tmpdir_remove(p), 0);
    snprintf(p, sizeof p, "%.4000s/notes.txt", f.drop);
    CU_ASSERT_EQUAL_FATAL(hs_test_write_file(p, "a note\n", 7), 0);
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(c->waiting, 0);
    CU_ASSERT_EQUAL(c->loose_files, 0);
    CU_ASSERT_EQUAL(hs_watcher_loose_seen(w), 0);
    due = hs_watcher_next_due(w);
    CU_ASSERT(due >= now + 3600 - 120 && due <= now + 3600 + 120);
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM loose_files"), 0);

    /* Nothing left: nothing due. */
    CU_ASSERT_EQUAL(unlink(p), 0);
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(hs_watcher_next_due(w), 0);
    CU_ASSERT_EQUAL(c->failed, 0);
    end_run(&f, w);
    fixture_close(&f);
}

/* A loose file is recorded once, and quarantined with its reason. */
static void test_loose_file(void)
{
    fixture f;
    char p[PATH_CAP], q[PATH_CAP];
    if (!need_model())
        return;
    CU_ASSERT_EQUAL_FATAL(fixture_make(&f, "loose"), 0);
    snprintf(p, sizeof p, "%.4000s/notes.txt", f.drop);
    CU_ASSERT_EQUAL_FATAL(hs_test_write_file(p, "not DICOM\n", 10), 0);
    CU_ASSERT_EQUAL_FATAL(begin_run(&f, NULL, NULL, 0), 0);
    hs_watcher_config cfg;
    config(&f, &cfg);
    hs_watcher *w = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    hs_watcher_pass(w);
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(hs_watcher_loose_seen(w), 1);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->loose_files, 1); /* new once */
    CU_ASSERT_EQUAL(f.seen.notes, 1);
    char want[PATH_CAP + 100];
    snprintf(want, sizeof want, "N: %.4000s: not part of a study: not_dicom: ", p);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen.log, want));
    CU_ASSERT(exists(p));
    end_run(&f, w);
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM loose_files"), 1);

    /* With a quarantine folder: not recorded again, moved with its reason. */
    CU_ASSERT_EQUAL_FATAL(begin_run(&f, NULL, f.quarantine, 0), 0);
    config(&f, &cfg);
    cfg.quarantine_dir = f.quarantine;
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(hs_watcher_loose_seen(w), 1);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->loose_files, 0);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->files_quarantined, 1);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->failed, 0);
    CU_ASSERT(!exists(p));
    snprintf(q, sizeof q, "%.4000s/notes.txt", f.quarantine);
    size_t n = 0;
    char *text = (char *)hs_test_read_file(q, &n);
    CU_ASSERT(text != NULL && strcmp(text, "not DICOM\n") == 0);
    free(text);
    snprintf(q, sizeof q, "%.4000s/notes.txt.reason.txt", f.quarantine);
    text = (char *)hs_test_read_file(q, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT(strncmp(text, "not_dicom: ", 11) == 0);
    snprintf(want, sizeof want, "\nwas: %.4000s\n", p);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
    free(text);
    CU_ASSERT_EQUAL(pending(&f), 0);
    end_run(&f, w);
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM loose_files"), 1);
    fixture_close(&f);
}

/* A run killed after journaling a study's moves, one file moved: the next
 * watcher finishes them before it lists the drop folder. */
static void test_finish_pending(void)
{
    fixture f;
    char a[HS_UID_KEY_MAX];
    if (!need_model())
        return;
    CU_ASSERT_EQUAL_FATAL(fixture_make(&f, "pending"), 0);
    int rc = add_study(&f, "a", 41, NULL, a);
    if (rc == 1)
        return;
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    /* the killed run: journaled the study's moves, moved one file */
    CU_ASSERT_EQUAL_FATAL(begin_run(&f, f.done, NULL, 0), 0);
    hs_error err = {0};
    hs_watch_listing l;
    CU_ASSERT_EQUAL_FATAL(hs_watch_list(f.drop, NULL, 0, NULL, NULL, NULL, &l, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(l.n_files, SLICES);
    hs_audit_file_action acts[SLICES];
    char dest[SLICES][PATH_CAP];
    memset(acts, 0, sizeof acts);
    for (int i = 0; i < SLICES; i++) {
        CU_ASSERT_EQUAL(hs_watch_dest_path(f.done, l.files[i].rel, dest[i], sizeof dest[i], &err),
                        HS_OK);
        acts[i] = (hs_audit_file_action){0, a, "done", l.files[i].path, dest[i], NULL};
    }
    CU_ASSERT_EQUAL_FATAL(hs_audit_plan_files(f.audit, f.run_id, acts, SLICES, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_watch_move(l.files[0].path, dest[0], 0, &err), HS_OK);
    hs_watch_listing_free(&l);
    CU_ASSERT_EQUAL(pending(&f), SLICES);

    CU_ASSERT_EQUAL_FATAL(begin_run(&f, f.done, NULL, 0), 0);
    hs_watcher_config cfg;
    config(&f, &cfg);
    cfg.done_dir = f.done;
    hs_watcher *w = NULL;
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    hs_watcher_finish_pending(w);
    const char *first = "P: phase moving files an earlier run left pending\n";
    CU_ASSERT(strncmp(f.seen.log, first, strlen(first)) == 0);
    CU_ASSERT_EQUAL(pending(&f), 0);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->files_done, SLICES);
    CU_ASSERT_EQUAL(count_files(f.drop), 0);
    CU_ASSERT_EQUAL(count_files(f.done), SLICES);
    char want[200];
    snprintf(want, sizeof want, "N: finishing %d file operations an earlier run left pending\n",
             SLICES);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen.log, want));
    char query[200];
    snprintf(query, sizeof query, "SELECT count(*) FROM watch_files WHERE finished_by_run = %lld",
             f.run_id);
    CU_ASSERT_EQUAL(sql_count(&f, query), SLICES);
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(f.seen.readings, 0);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->failed, 0);
    CU_ASSERT_EQUAL(f.seen.errors, 0);
    end_run(&f, w);
    fixture_close(&f);
}

/* Moves that fail (the done folder is a dangling symbolic link, which
 * stops a root user too) are reported, stay pending
 * and block their study for the watcher's life: not moved or read again,
 * nor reported again, until a later run finishes them. */
static void test_blocked_moves(void)
{
    fixture f;
    char a[HS_UID_KEY_MAX], bad[PATH_CAP];
    if (!need_model())
        return;
    CU_ASSERT_EQUAL_FATAL(fixture_make(&f, "blocked"), 0);
    int rc = add_study(&f, "a", 45, NULL, a);
    if (rc == 1)
        return;
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    snprintf(bad, sizeof bad, "%.4000s/done-link", f.dir);
    CU_ASSERT_EQUAL_FATAL(symlink("nowhere/at-all", bad), 0); /* dangling: no folder below */
    CU_ASSERT_EQUAL_FATAL(begin_run(&f, bad, NULL, 0), 0);
    hs_watcher_config cfg;
    config(&f, &cfg);
    cfg.done_dir = bad;
    hs_watcher *w = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    hs_watcher_pass(w);
    const hs_audit_watch_counts *c = hs_watcher_counts(w);
    CU_ASSERT_EQUAL(f.seen.readings, 1);
    CU_ASSERT_EQUAL(c->studies_read, 1);
    CU_ASSERT_EQUAL(c->failed, 1);
    CU_ASSERT_EQUAL(c->files_done, 0);
    CU_ASSERT_EQUAL(f.seen.errors, SLICES); /* one per file */
    CU_ASSERT_EQUAL(hs_watcher_failed(w), 1);
    CU_ASSERT_EQUAL(pending(&f), SLICES);
    CU_ASSERT_EQUAL(count_files(f.drop), SLICES);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen.log, "is not a folder"));
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(f.seen.errors, SLICES);
    CU_ASSERT_EQUAL(c->already_read, 0);
    CU_ASSERT_EQUAL(c->failed, 1);
    CU_ASSERT_EQUAL(pending(&f), SLICES);
    end_run(&f, w);

    /* The way cleared: the next run finishes them first. */
    CU_ASSERT_EQUAL_FATAL(unlink(bad), 0);
    CU_ASSERT_EQUAL_FATAL(begin_run(&f, bad, NULL, 0), 0);
    config(&f, &cfg);
    cfg.done_dir = bad;
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    hs_watcher_finish_pending(w);
    CU_ASSERT_EQUAL(pending(&f), 0);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->files_done, SLICES);
    CU_ASSERT_EQUAL(count_files(f.drop), 0);
    CU_ASSERT_EQUAL(count_files(bad), SLICES);
    CU_ASSERT_EQUAL(f.seen.errors, 0);
    end_run(&f, w);
    fixture_close(&f);
}

/* A child process that runs a watcher over f's drop folder with the crash
 * note and the given test hook, which aborts it; returns the signal it
 * died of, or -1. */
static int die_watching(const fixture *f, const char *crash_study, const char *crash_file)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core); /* no core file, also under valgrind */
        fixture child = *f;
        child.audit = NULL;
        if (begin_run(&child, NULL, NULL, 0) != 0)
            _exit(3);
        hs_watcher_config cfg;
        config(&child, &cfg);
        cfg.verbose = 0;
        cfg.crash_note_path = child.note;
        cfg.crash_study_uid = crash_study;
        cfg.crash_file = crash_file;
        hs_watcher *w = NULL;
        hs_error err = {0};
        if (hs_watcher_create(&cfg, &w, &err) != HS_OK)
            _exit(4);
        hs_watcher_pass(w);
        _exit(5);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status))
        return -1;
    return WTERMSIG(status);
}

/* A study whose reading killed a watcher: the next run records the crash,
 * fails and quarantines the study unread while its files are the same,
 * and reads it once they changed. */
static void test_crashed_study(void)
{
    fixture f;
    char a[HS_UID_KEY_MAX], b[HS_UID_KEY_MAX];
    if (!need_model())
        return;
    CU_ASSERT_EQUAL_FATAL(fixture_make(&f, "crash"), 0);
    int rc = add_study(&f, "a", 51, NULL, a);
    if (rc == 1)
        return;
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(add_study(&f, "b", 52, NULL, b), 0);
    CU_ASSERT_EQUAL_FATAL(die_watching(&f, a, NULL), SIGABRT);

    CU_ASSERT_EQUAL_FATAL(begin_run(&f, NULL, f.quarantine, 0), 0);
    long long dead_run = f.run_id - 1;
    hs_watcher_config cfg;
    config(&f, &cfg);
    cfg.quarantine_dir = f.quarantine;
    cfg.crash_note_path = f.note;
    hs_watcher *w = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    /* the note, taken at creation: recorded, reported, counted, emptied */
    char want[PATH_CAP + HS_UID_KEY_MAX + 200];
    snprintf(want, sizeof want, "E: %s (%.4000s/a): hemoscan (run %lld) died of SIGABRT while reading "
             "this study\n", a, f.drop, dead_run);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen.log, want));
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->failed, 1);
    CU_ASSERT_EQUAL(hs_watcher_failed(w), 1);
    char query[HS_UID_KEY_MAX + 200];
    snprintf(query, sizeof query, "SELECT count(*) FROM watch_crashes WHERE study_uid = '%s' "
             "AND phase = 'reading' AND file_count = %d", a, SLICES);
    CU_ASSERT_EQUAL(sql_count(&f, query), 1);
    struct stat sb;
    CU_ASSERT(stat(f.note, &sb) == 0 && sb.st_size == 0);

    hs_watcher_pass(w);
    CU_ASSERT(!was_read(&f.seen, a));
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->failed, 2);
    snprintf(want, sizeof want, "died of SIGABRT reading these %d files in run %lld", SLICES,
             dead_run);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen.log, want));
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->files_quarantined, SLICES);
    char p[PATH_CAP];
    snprintf(p, sizeof p, "%.4000s/a/IM0001.dcm.reason.txt", f.quarantine);
    size_t n = 0;
    char *text = (char *)hs_test_read_file(p, &n);
    CU_ASSERT(text != NULL && strstr(text, "failed (crash)") != NULL);
    free(text);
    /* b is read, by the dead run (it came first) or now */
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM current_verdicts"), 1);
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM failures WHERE stage = 'crash'"), 2);

    /* The same study dropped again: its files changed, so it is read. */
    CU_ASSERT_EQUAL_FATAL(add_study(&f, "a again", 51, NULL, NULL), 0);
    hs_watcher_pass(w);
    CU_ASSERT(was_read(&f.seen, a));
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->failed, 2);
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM current_verdicts"), 2);
    end_run(&f, w);
    fixture_close(&f);
}

/* A file whose header killed a watcher while it listed the drop folder:
 * the next run makes it a loose "crashed_reader" file, quarantined unread. */
static void test_crashed_file(void)
{
    fixture f;
    char p[PATH_CAP];
    if (!need_model())
        return;
    CU_ASSERT_EQUAL_FATAL(fixture_make(&f, "crashfile"), 0);
    snprintf(p, sizeof p, "%.4000s/sub/poison.dcm", f.drop);
    char sub[PATH_CAP];
    snprintf(sub, sizeof sub, "%.4000s/sub", f.drop);
    CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0700), 0);
    CU_ASSERT_EQUAL_FATAL(hs_test_write_file(p, "DICM?", 5), 0);
    CU_ASSERT_EQUAL_FATAL(die_watching(&f, NULL, "poison.dcm"), SIGABRT);

    CU_ASSERT_EQUAL_FATAL(begin_run(&f, NULL, f.quarantine, 0), 0);
    long long dead_run = f.run_id - 1;
    hs_watcher_config cfg;
    config(&f, &cfg);
    cfg.quarantine_dir = f.quarantine;
    cfg.crash_note_path = f.note;
    hs_watcher *w = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    char want[PATH_CAP + 200];
    snprintf(want, sizeof want, "E: %.4000s: hemoscan (run %lld) died of SIGABRT while listing the "
             "drop folder, reading this file's header\n", p, dead_run);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen.log, want));
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM watch_crashes WHERE file_path IS NOT NULL "
                                  "AND file_bytes = 5"), 1);
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->loose_files, 1);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->files_quarantined, 1);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->failed, 1); /* the dead run's, only */
    CU_ASSERT(!exists(p));
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM loose_files WHERE verdict = 'crashed_reader'"),
                    1);
    snprintf(p, sizeof p, "%.4000s/sub/poison.dcm.reason.txt", f.quarantine);
    size_t n = 0;
    char *text = (char *)hs_test_read_file(p, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    snprintf(want, sizeof want, "crashed_reader: hemoscan died of SIGABRT reading its header in run "
             "%lld", dead_run);
    CU_ASSERT(strncmp(text, want, strlen(want)) == 0);
    free(text);
    end_run(&f, w);
    fixture_close(&f);
}

/* The stop flag is honoured between studies: set while the first study is
 * in hand, the pass ends after it; set before a pass, nothing is read. */
static void test_stop(void)
{
    fixture f;
    char a[HS_UID_KEY_MAX], b[HS_UID_KEY_MAX];
    if (!need_model())
        return;
    CU_ASSERT_EQUAL_FATAL(fixture_make(&f, "stop"), 0);
    int rc = add_study(&f, "a", 61, NULL, a);
    if (rc == 1)
        return;
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(add_study(&f, "b", 62, NULL, b), 0);
    CU_ASSERT_EQUAL_FATAL(begin_run(&f, NULL, NULL, 0), 0);
    hs_watcher_config cfg;
    config(&f, &cfg);
    hs_watcher *w = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    f.seen.stop_after = 1;
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(f.seen.readings, 1);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->studies_read, 1);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->waiting, 0);
    CU_ASSERT_EQUAL(sql_count(&f, "SELECT count(*) FROM verdicts"), 1);
    /* still set: the next pass lists, and reads nothing */
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(f.seen.readings, 1);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->passes, 2);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->already_read, 0);
    /* cleared: the other one */
    f.seen.stop = 0;
    f.seen.stop_after = 0;
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(f.seen.readings, 2);
    CU_ASSERT(was_read(&f.seen, a) && was_read(&f.seen, b));
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->already_read, 1);
    end_run(&f, w);
    fixture_close(&f);
}

/* Errors reach the message callback (and count without one); a bad
 * configuration is refused. */
static void test_errors(void)
{
    fixture f;
    if (!need_model())
        return;
    CU_ASSERT_EQUAL_FATAL(fixture_make(&f, "errors"), 0);
    CU_ASSERT_EQUAL_FATAL(begin_run(&f, NULL, NULL, 0), 0);
    hs_watcher_config cfg;
    config(&f, &cfg);
    char missing[PATH_CAP];
    snprintf(missing, sizeof missing, "%.4000s/missing", f.dir);
    cfg.drop_dir = missing;
    hs_watcher *w = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(f.seen.errors, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen.log, "E: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(f.seen.log, missing));
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->failed, 1);
    CU_ASSERT_EQUAL(hs_watcher_failed(w), 1);
    hs_watcher_free(w);
    /* without a message callback: counted all the same */
    cfg.on_message = NULL;
    CU_ASSERT_EQUAL_FATAL(hs_watcher_create(&cfg, &w, &err), HS_OK);
    hs_watcher_pass(w);
    CU_ASSERT_EQUAL(hs_watcher_failed(w), 1);
    CU_ASSERT_EQUAL(hs_watcher_counts(w)->failed, 1);
    hs_watcher_free(w);

    /* refused: a target that is the drop folder; no model; no run; a crash
     * note that cannot be opened */
    config(&f, &cfg);
    cfg.done_dir = f.drop;
    w = (hs_watcher *)&f; /* must come back NULL */
    CU_ASSERT_EQUAL(hs_watcher_create(&cfg, &w, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NULL(w);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "is the drop folder itself"));
    config(&f, &cfg);
    cfg.model = NULL;
    CU_ASSERT_EQUAL(hs_watcher_create(&cfg, &w, &err), HS_ERR_ARG);
    config(&f, &cfg);
    cfg.run_id = 0;
    CU_ASSERT_EQUAL(hs_watcher_create(&cfg, &w, &err), HS_ERR_ARG);
    config(&f, &cfg);
    snprintf(missing, sizeof missing, "%.4000s/missing/audit.db.watch-crash", f.dir);
    cfg.crash_note_path = missing;
    CU_ASSERT_EQUAL(hs_watcher_create(&cfg, &w, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NULL(w);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "crash note"));
    hs_watcher_free(NULL);
    hs_error end = {0};
    CU_ASSERT_EQUAL(hs_audit_run_end(f.audit, f.run_id, 1, &end), HS_OK);
    fixture_close(&f);
}

int hs_register_watcher_tests(void)
{
    static const hs_test_case cases[] = {
        {"a pass reads each study once; the next pass and run find it read", test_reads_once},
        {"done moves with nothing pending; late instances; delete", test_done_and_delete},
        {"a study or loose file newer than the stable age waits; the next due time",
         test_waits_until_stable},
        {"a loose file is recorded once and quarantined with its reason", test_loose_file},
        {"moves a killed run journaled are finished first", test_finish_pending},
        {"moves that fail block their study until a later run finishes them", test_blocked_moves},
        {"a study a watcher died reading is failed unread until it changes", test_crashed_study},
        {"a file whose header killed a watcher becomes a quarantined loose file",
         test_crashed_file},
        {"the stop flag stops a pass between studies", test_stop},
        {"errors reach the message callback; bad configurations are refused", test_errors},
    };
    return hs_test_add_suite("watcher", suite_init, suite_clean, cases,
                             sizeof cases / sizeof cases[0]);
}
