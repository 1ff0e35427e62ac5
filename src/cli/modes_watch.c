/* modes_watch.c - hemoscan --watch DIR: the unattended job's command
 * line. Reads every complete study of a drop folder exactly once, records
 * it, then moves, deletes or leaves its files; once (cron) or until
 * SIGTERM (--follow). The reading, recording and moving is the library's
 * watcher engine (watcher.h, src/watch/watcher.c), which holds the
 * invariants: why a run survives kill -9 at any instant, why one crashing
 * study cannot stop every run. This file is what is about the process.
 *
 * One run:
 *   1. the options: DIR must be a folder; --done, --quarantine and
 *      --review are created when missing and must not be DIR itself;
 *   2. the lock (watch.h): a second watcher on the same database or drop
 *      folder says who holds it and exits with status 5;
 *   3. the model, the audit database (HEMOSCAN_BUSY_TIMEOUT_MS sets its
 *      busy timeout), the run and its watch_runs row;
 *   4. the engine, given the crash note DB.watch-crash (whose note of a
 *      watcher that died of a fatal signal it takes first) and the test
 *      hooks HEMOSCAN_TEST_FORCE_COPY, HEMOSCAN_TEST_CRASH_STUDY and
 *      HEMOSCAN_TEST_CRASH_FILE, which are read here, not in the library;
 *   5. SIGTERM and SIGINT set the flag the engine checks between studies,
 *      and wake the --follow wait through a pipe;
 *   6. with --follow, inotify watches DIR and every folder below it;
 *   7. the journal's pending moves finished, then a pass; with --follow,
 *      a wait for inotify events, the next study to become stable, a
 *      periodic rescan or a signal, and another pass;
 *   8. the summary line (stdout, text or JSON, and syslog with --syslog,
 *      which main.c opens), the run's counts in watch_runs, the exit
 *      status.
 *
 * The engine prints nothing: each reading reaches on_reading, which
 * prints it as --study does (cli_emit_reading) and lets a positive make
 * its noise (cli_on_positive: syslog at LOG_CRIT, --on-positive; a
 * failure there fails the run, never the verdict), and each error or -v note
 * reaches on_message, which prints "hemoscan: LINE" on stderr and sends
 * errors to syslog with --syslog. The -v "phase" lines say what is in
 * hand (reading, recording, moving): the reliability test uses them to
 * tell where its kills landed. */
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

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/audit.h"
#include "hemoscan/clock.h"
#include "hemoscan/dirwalk.h"
#include "hemoscan/fileio.h"
#include "hemoscan/path.h"
#include "hemoscan/watch.h"
#include "hemoscan/watcher.h"
#include "modes.h"

/* Set by SIGTERM and SIGINT: finish the study in hand, then stop. */
static volatile sig_atomic_t stop_requested;
static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    int saved = errno;
    if (signal_pipe[1] >= 0) {
        char c = 1;
        if (write(signal_pipe[1], &c, 1) < 0) {
            /* the pipe is full: a wake-up is pending anyway */
        }
    }
    errno = saved;
}

/* One run of the mode. */
typedef struct {
    const options *o;
    hs_model model;
    const char *model_path;
    char db_buf[HS_PATH_MAX];
    const char *db_path;
    hs_watch_lock lock;
    int locked;
    hs_audit *audit;
    long long run_id;
    char crash_note_path[HS_PATH_MAX]; /* DB.watch-crash (crash_note.h) */
    const char *exclude[3];     /* --done, --quarantine, --review: not watched */
    int n_exclude;
    int failed_any;             /* the mode reported an error of its own */
    hs_watcher *engine;
} watch_run;

/* The engine's messages: stderr; errors also to syslog with --syslog. */
static void on_message(void *ctx, hs_watcher_message_kind kind, const char *line)
{
    const watch_run *m = ctx;
    fprintf(stderr, "hemoscan: %s\n", line);
    if (kind == HS_WATCHER_ERROR && m->o->use_syslog)
        syslog(LOG_ERR, "%s", line);
}

/* An error of the mode's own: as the engine's, and the run fails. */
static void report(watch_run *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(watch_run *m, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    on_message(m, HS_WATCHER_ERROR, line);
    m->failed_any = 1;
}

/* A recorded reading: the one line (or with -v the block, then a blank
 * line; with -q a positive's line only) on stdout, or a JSON line; then a
 * positive's syslog line and --on-positive command (notify.c), before the
 * engine moves the study's files. A failed command fails the run. */
static void on_reading(void *ctx, const hs_study_reading *r, long long verdict_id,
                       const hs_review_file *review)
{
    watch_run *m = ctx;
    cli_emit_reading(m->o, 1, r, &m->model, m->model_path, m->db_path, verdict_id, review);
    cli_say_standing(m->audit, r->dir, r, verdict_id);
    if (!m->o->json && m->o->verbose > 0) {
        printf("\n");
        fflush(stdout);
    }
    if (cli_on_positive(m->o, m->audit, m->db_path, r, verdict_id, review) != EXIT_OK)
        m->failed_any = 1;
}

/* ---- --follow ------------------------------------------------------------------------ */

static int add_watch(int ifd, const char *dir)
{
    const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                          IN_ATTRIB | IN_ONLYDIR;
    return inotify_add_watch(ifd, dir, mask);
}

typedef struct {
    const watch_run *m;
    int ifd;
} watch_walk;

/* A folder below the drop folder: watched, unless it is a target folder
 * (--done, --quarantine, --review) or cannot be watched; then it is not
 * entered either. Files, and what cannot be read, are the listing's. */
static hs_status watch_visit(void *ctx, hs_dirwalk_entry *e, hs_error *err)
{
    (void)err;
    const watch_walk *ww = ctx;
    if (e->kind != HS_DIRWALK_DIR)
        return HS_OK;
    for (int i = 0; i < ww->m->n_exclude; i++) {
        struct stat xb;
        if (stat(ww->m->exclude[i], &xb) == 0 && xb.st_dev == e->st->st_dev && xb.st_ino == e->st->st_ino)
            e->prune = 1;
    }
    if (!e->prune && add_watch(ww->ifd, e->path) < 0)
        e->prune = 1;
    return HS_OK;
}

/* Watches the drop folder and every folder below it, down to the depth
 * the listing reads (inotify_add_watch on a folder watched already only
 * renews it). The walk is the listing's (dirwalk.h): links not followed,
 * temporary names left out; a watch at depth 64 sees the files there,
 * so folders are entered down to depth 63. */
static void add_watches(watch_run *m, int ifd)
{
    if (add_watch(ifd, m->o->watch_dir) < 0) {
        if (errno == ENOSPC)
            report(m, "%s: out of inotify watches (fs.inotify.max_user_watches); relying on "
                   "the periodic rescan", m->o->watch_dir);
        return;
    }
    const hs_dirwalk_options opt = {.max_depth = 63, .skip_name = hs_watch_is_temp_name};
    watch_walk ww = {m, ifd};
    hs_dirwalk(m->o->watch_dir, &opt, watch_visit, &ww, NULL);
}

/* Waits until the next pass is due: an event plus the stable age, the
 * earliest waiting study, the periodic rescan, or a signal. */
static void wait_for_pass(watch_run *m, int ifd)
{
    double stable = m->o->stable_age_s;
    double rescan = stable / 2 > 1 ? stable / 2 : 1;
    double due = hs_clock_now() + rescan;
    double next_due = hs_watcher_next_due(m->engine);
    if (next_due > 0 && next_due + 0.05 < due)
        due = next_due + 0.05;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (!stop_requested) {
        double left = due - hs_clock_now();
        if (left <= 0)
            return;
        struct pollfd p[2] = {{ifd, POLLIN, 0}, {signal_pipe[0], POLLIN, 0}};
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
                        due = hs_clock_now(); /* events were lost: look now */
                    else if (ev->len == 0 || !hs_watch_is_temp_name(ev->name))
                        changes = 1;
                    q += sizeof *ev + ev->len;
                }
            }
            if (changes) {
                /* the new files become stable after the stable age */
                double t = hs_clock_now() + stable + 0.05;
                if (t < due)
                    due = t;
                add_watches(m, ifd); /* new folders */
            }
        }
    }
}

/* ---- the summary ------------------------------------------------------------------------- */

static void summary_json(const watch_run *m, const hs_audit_watch_counts *c, double seconds)
{
    json_t *j = json_object();
    json_t *s = json_object();
    json_object_set_new(s, "drop_dir", json_string(m->o->watch_dir));
    json_object_set_new(s, "run_id", json_integer(m->run_id));
    json_object_set_new(s, "passes", json_integer(c->passes));
    json_object_set_new(s, "studies_read", json_integer(c->studies_read));
    json_object_set_new(s, "hemorrhage", json_integer(c->hemorrhage));
    json_object_set_new(s, "no_hemorrhage", json_integer(c->no_hemorrhage));
    json_object_set_new(s, "not_assessable", json_integer(c->not_assessable));
    json_object_set_new(s, "already_read", json_integer(c->already_read));
    json_object_set_new(s, "waiting", json_integer(c->waiting));
    json_object_set_new(s, "failed", json_integer(c->failed));
    json_object_set_new(s, "loose_files", json_integer(hs_watcher_loose_seen(m->engine)));
    json_object_set_new(s, "loose_files_new", json_integer(c->loose_files));
    json_object_set_new(s, "files_done", json_integer(c->files_done));
    json_object_set_new(s, "files_deleted", json_integer(c->files_deleted));
    json_object_set_new(s, "files_quarantined", json_integer(c->files_quarantined));
    json_object_set_new(s, "seconds", json_real(seconds));
    json_object_set_new(j, "watch_summary", s);
    json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
    fputc('\n', stdout);
    json_decref(j);
}

/* The summary line: stdout (JSON with --json, nothing with -q), and
 * syslog with --syslog (a warning when the run failed). */
static void summary(const watch_run *m, double seconds, int failed)
{
    const hs_audit_watch_counts *c = hs_watcher_counts(m->engine);
    char line[1024];
    int n = snprintf(line, sizeof line,
                     "hemoscan watch %s: %lld studies read (%lld hemorrhage, %lld no hemorrhage, "
                     "%lld not assessable), %lld already read, %lld waiting (not stable), "
                     "%lld failed, %lld loose files (%lld new)",
                     m->o->watch_dir, c->studies_read, c->hemorrhage, c->no_hemorrhage,
                     c->not_assessable, c->already_read, c->waiting, c->failed,
                     hs_watcher_loose_seen(m->engine), c->loose_files);
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
    if (m->o->json)
        summary_json(m, c, seconds);
    else if (m->o->verbose >= 0)
        printf("%s\n", line);
    fflush(stdout);
    if (m->o->use_syslog)
        syslog(failed ? LOG_WARNING : LOG_INFO, "%s", line);
}

/* ---- the mode ------------------------------------------------------------------------- */

/* Creates an optional target folder (missing folders with mode), refuses
 * one that is the drop folder itself and keeps the inotify watches out of
 * it (the engine keeps its listing out of it). */
static int prepare_target(watch_run *m, const char *dir, const char *opt, unsigned mode)
{
    hs_error err = {0};
    if (dir == NULL)
        return 0;
    if (hs_make_dirs(dir, mode, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: %s: %s\n", opt, err.msg);
        return -1;
    }
    struct stat a, b;
    if (stat(dir, &a) == 0 && stat(m->o->watch_dir, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
        fprintf(stderr, "hemoscan: %s %s is the drop folder itself\n", opt, dir);
        return -1;
    }
    m->exclude[m->n_exclude++] = dir;
    return 0;
}

/* Steps 2 and 3: the lock, the model, the database and the run. EXIT_OK,
 * or the exit status (the reason reported); the caller releases whatever
 * was taken. */
static int begin_run(watch_run *m)
{
    const options *o = m->o;
    hs_error err = {0};
    m->db_path = cli_audit_path(o, m->db_buf, sizeof m->db_buf, &err);
    if (m->db_path == NULL) {
        report(m, "audit database: %s", err.msg);
        return EXIT_FAILED;
    }
    char lock_path[HS_PATH_MAX];
    if (hs_path_printf(lock_path, sizeof lock_path, &err, "%s.watch-lock", m->db_path) != HS_OK ||
        hs_path_printf(m->crash_note_path, sizeof m->crash_note_path, &err, "%s.watch-crash", m->db_path) !=
            HS_OK) {
        report(m, "audit database: %s", err.msg);
        return EXIT_FAILED;
    }
    int busy = 0;
    if (hs_watch_lock_take(lock_path, o->watch_dir, &m->lock, &busy, &err) != HS_OK) {
        report(m, "%s", err.msg);
        return busy ? EXIT_LOCKED : EXIT_FAILED;
    }
    m->locked = 1;
    if (cli_load_model(o, &m->model, &m->model_path) != EXIT_OK)
        return EXIT_FAILED;
    if (hs_audit_open(m->db_path, &m->audit, &err) != HS_OK) {
        report(m, "audit database: %s", err.msg);
        return EXIT_FAILED;
    }
    const char *busy_ms = getenv("HEMOSCAN_BUSY_TIMEOUT_MS");
    if (busy_ms != NULL && busy_ms[0] != '\0')
        hs_audit_set_busy_timeout(m->audit, atoi(busy_ms));
    hs_audit_run run = {"watch", o->command, m->model_path, m->model.sha256,
                        m->model.provenance.note};
    hs_audit_watch_run wr = {o->watch_dir, o->done_dir, o->quarantine_dir,
                             o->done_dir ? "done" : o->delete_done ? "delete" : "leave",
                             o->stable_age_s, o->follow};
    if (hs_audit_run_begin(m->audit, &run, &m->run_id, &err) != HS_OK ||
        hs_audit_watch_run_begin(m->audit, m->run_id, &wr, &err) != HS_OK) {
        report(m, "audit database: %s", err.msg);
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

/* Step 4: the engine, configured from the options and the test hooks. */
static int start_engine(watch_run *m)
{
    const options *o = m->o;
    hs_watcher_config cfg;
    hs_watcher_config_default(&cfg);
    cfg.drop_dir = o->watch_dir;
    cfg.done_dir = o->done_dir;
    cfg.quarantine_dir = o->quarantine_dir;
    cfg.review_dir = o->review_dir;
    cfg.delete_done = o->delete_done;
    cfg.stable_age_s = o->stable_age_s;
    cfg.verbose = o->verbose;
    cli_study_options(o, &cfg.study);
    cli_review_options(o, &cfg.review);
    cfg.model = &m->model;
    cfg.audit = m->audit;
    cfg.run_id = m->run_id;
    cfg.crash_note_path = m->crash_note_path;
    cfg.stop = &stop_requested;
    cfg.on_reading = on_reading;
    cfg.on_message = on_message;
    cfg.ctx = m;
    const char *force = getenv("HEMOSCAN_TEST_FORCE_COPY");
    cfg.force_copy = force != NULL && strcmp(force, "1") == 0;
    cfg.crash_study_uid = getenv("HEMOSCAN_TEST_CRASH_STUDY");
    cfg.crash_file = getenv("HEMOSCAN_TEST_CRASH_FILE");
    hs_error err = {0};
    if (hs_watcher_create(&cfg, &m->engine, &err) != HS_OK) {
        report(m, "%s", err.msg);
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

/* SIGTERM / SIGINT: finish the study in hand, then stop. */
static void catch_signals(void)
{
    if (pipe(signal_pipe) == 0) {
        for (int i = 0; i < 2; i++) {
            fcntl(signal_pipe[i], F_SETFL, fcntl(signal_pipe[i], F_GETFL) | O_NONBLOCK);
            fcntl(signal_pipe[i], F_SETFD, FD_CLOEXEC); /* not the --on-positive command's */
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

static void release_signals(void)
{
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    for (int i = 0; i < 2; i++) {
        if (signal_pipe[i] >= 0)
            close(signal_pipe[i]);
        signal_pipe[i] = -1;
    }
}

/* Steps 5 to 8: signals, inotify, the passes, the summary and the run's
 * end; returns the exit status. */
static int watch(watch_run *m, double started)
{
    const options *o = m->o;
    int ifd = -1;
    catch_signals();
    if (o->follow) {
        ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (ifd < 0)
            report(m, "inotify: %s; relying on the periodic rescan", strerror(errno));
        else
            add_watches(m, ifd);
    }
    hs_watcher_finish_pending(m->engine);
    while (!stop_requested) {
        hs_watcher_pass(m->engine);
        if (!o->follow || stop_requested)
            break;
        if (o->verbose > 0 || hs_watcher_counts(m->engine)->studies_read > 0)
            fflush(stdout);
        wait_for_pass(m, ifd);
    }
    if (ifd >= 0)
        close(ifd);

    const hs_audit_watch_counts *c = hs_watcher_counts(m->engine);
    int failed = m->failed_any || hs_watcher_failed(m->engine);
    int status = failed || c->failed > 0 ? EXIT_FAILED : EXIT_OK;
    summary(m, hs_clock_now() - started, failed);
    hs_error err = {0};
    if (hs_audit_watch_run_counts(m->audit, m->run_id, c, &err) != HS_OK ||
        hs_audit_run_end(m->audit, m->run_id, status, &err) != HS_OK) {
        report(m, "audit database: %s", err.msg);
        status = EXIT_FAILED;
    }
    return status;
}

int cli_mode_watch(const options *o)
{
    watch_run m;
    memset(&m, 0, sizeof m);
    m.o = o;
    double started = hs_clock_now();
    if (!hs_path_is_dir(o->watch_dir)) {
        fprintf(stderr, "hemoscan: --watch %s: not a folder\n", o->watch_dir);
        return EXIT_FAILED;
    }
    /* the review pictures show patients: for the owner only */
    if (prepare_target(&m, o->done_dir, "--done", 0750) != 0 ||
        prepare_target(&m, o->quarantine_dir, "--quarantine", 0750) != 0 ||
        prepare_target(&m, o->review_dir, "--review", 0700) != 0)
        return EXIT_FAILED;
    int status = begin_run(&m);
    if (status == EXIT_OK)
        status = start_engine(&m);
    if (status == EXIT_OK)
        status = watch(&m, started);
    hs_watcher_free(m.engine); /* closes the crash note */
    release_signals();
    hs_audit_close(m.audit);
    hs_model_free(&m.model);
    if (m.locked)
        hs_watch_lock_release(&m.lock);
    return status;
}
