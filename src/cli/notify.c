/* notify.c - what a positive study sets off beyond its verdict (issue 20,
 * case 8): a syslog line at LOG_CRIT and the --on-positive command, so
 * that a bleed found by an unattended run (cron, the storescp hand-off,
 * --watch -q) reaches a person without anyone running SQL.
 *
 * Built this way on purpose:
 *   - The command runs after the verdict is recorded, and nothing it does
 *     can change the verdict: its failure is recorded beside it (the
 *     notifications table), said on stderr and syslog, and makes the exit
 *     status 1 like any failed operation; the reading's own status is
 *     otherwise untouched.
 *   - It runs as storescp's --exec-on-eostudy does, through /bin/sh -c,
 *     but the study's values go into its environment only, never into the
 *     command text: a header is written by whoever sent the study, and an
 *     accession number like "x;rm -rf ~" must stay a string. Values have
 *     their control bytes made '?' (a newline in a header cannot forge a
 *     second line in a log or a mail).
 *   - The environment is built before fork and the child only calls
 *     async-signal-safe functions (dup2, setpgid, execve, write, _exit):
 *     the study's worker threads may have held malloc's lock.
 *   - The child leads its own process group, so the time limit kills the
 *     shell and whatever it started (SIGTERM, then SIGKILL 2 s later).
 *     stdin is /dev/null and its output goes to stderr: stdout is
 *     hemoscan's own, one line per positive with -q.
 *   - A close-on-exec pipe tells "the shell could not be started" (execve
 *     failed: its errno comes through the pipe) from "the shell ran and
 *     found no such command" (exit status 127).
 *   - The wait polls waitpid every 10 ms rather than catching SIGCHLD:
 *     hemoscan installs no SIGCHLD handler and a positive is rare. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/audit.h"
#include "hemoscan/clock.h"
#include "hemoscan/verdict.h"
#include "modes.h"

extern char **environ;

/* The variables the command gets; any of the same name hemoscan inherited
 * is replaced. */
enum {
    V_VERDICT, V_VERDICT_ID, V_ACCESSION, V_STUDY_UID, V_PATIENT_ID, V_STUDY_DATE, V_PROBABILITY,
    V_THRESHOLD, V_KEY_INSTANCE, V_KEY_SOP_UID, V_KEY_FILE, V_DB, V_STUDY_DIR, V_REVIEW_FILE, V_COUNT
};
static const char *const var_name[V_COUNT] = {
    "HEMOSCAN_VERDICT",        "HEMOSCAN_VERDICT_ID",   "HEMOSCAN_ACCESSION",
    "HEMOSCAN_STUDY_UID",      "HEMOSCAN_PATIENT_ID",   "HEMOSCAN_STUDY_DATE",
    "HEMOSCAN_STUDY_PROBABILITY", "HEMOSCAN_THRESHOLD", "HEMOSCAN_KEY_INSTANCE",
    "HEMOSCAN_KEY_SOP_UID",    "HEMOSCAN_KEY_FILE",     "HEMOSCAN_DB",
    "HEMOSCAN_STUDY_DIR",      "HEMOSCAN_REVIEW_FILE",
};

/* NAME=value with value cleaned (cli_clean_text); NULL when out of memory. */
static char *env_entry(const char *name, const char *value)
{
    size_t nl = strlen(name), vl = value != NULL ? strlen(value) : 0;
    char *e = malloc(nl + vl + 2);
    if (e == NULL)
        return NULL;
    memcpy(e, name, nl);
    e[nl] = '=';
    cli_clean_text(value != NULL ? value : "", e + nl + 1, vl + 1);
    return e;
}

static int is_ours(const char *entry)
{
    for (int i = 0; i < V_COUNT; i++) {
        size_t n = strlen(var_name[i]);
        if (strncmp(entry, var_name[i], n) == 0 && entry[n] == '=')
            return 1;
    }
    return 0;
}

static void free_env(char **env)
{
    if (env == NULL)
        return;
    for (char **e = env; *e != NULL; e++)
        free(*e);
    free(env);
}

/* hemoscan's environment without our names, then ours; NULL when out of
 * memory. */
static char **build_env(const char *value[V_COUNT])
{
    size_t n = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++)
        n++;
    char **env = calloc(n + V_COUNT + 1, sizeof *env);
    if (env == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_ours(environ[i]))
            continue;
        env[k] = strdup(environ[i]);
        if (env[k++] == NULL) {
            free_env(env);
            return NULL;
        }
    }
    for (int i = 0; i < V_COUNT; i++) {
        env[k] = env_entry(var_name[i], value[i]);
        if (env[k++] == NULL) {
            free_env(env);
            return NULL;
        }
    }
    return env;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The child: its own process group, stdin /dev/null, stdout to stderr,
 * then the shell; execve's errno to the pipe if it fails. */
static void child(const char *command, char **env, int report_fd)
{
    setpgid(0, 0);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0 && null != STDIN_FILENO) {
        dup2(null, STDIN_FILENO);
        close(null);
    }
    dup2(STDERR_FILENO, STDOUT_FILENO);
    char *argv[] = {"sh", "-c", (char *)command, NULL};
    execve("/bin/sh", argv, env);
    int e = errno;
    if (write(report_fd, &e, sizeof e) < 0) {
        /* the parent then sees exit status 127 */
    }
    _exit(127);
}

/* Runs command under env with the time limit; fills n's times, outcome,
 * exit status or signal, and msg. */
static void run(const char *command, char **env, double timeout_s, hs_audit_notification *n, char *msg,
                size_t cap)
{
    fflush(stdout);
    fflush(stderr);
    n->started = hs_clock_now();
    int p[2] = {-1, -1};
    pid_t pid = -1;
    if (pipe(p) == 0) {
        fcntl(p[0], F_SETFD, FD_CLOEXEC);
        fcntl(p[1], F_SETFD, FD_CLOEXEC);
        pid = fork();
        if (pid == 0)
            child(command, env, p[1]);
    }
    int fork_errno = errno;
    if (p[1] >= 0)
        close(p[1]);
    if (pid < 0) {
        if (p[0] >= 0)
            close(p[0]);
        snprintf(msg, cap, "cannot start /bin/sh: %s", strerror(fork_errno));
        n->outcome = HS_NOTIFY_NOT_STARTED;
        n->finished = hs_clock_now();
        return;
    }
    setpgid(pid, pid); /* as the child does: whichever runs first */
    int exec_errno = 0;
    ssize_t got;
    do {
        got = read(p[0], &exec_errno, sizeof exec_errno);
    } while (got < 0 && errno == EINTR);
    close(p[0]);

    int ws = 0, timed_out = 0;
    double deadline = n->started + timeout_s, kill_at = 0;
    for (;;) {
        pid_t w = waitpid(pid, &ws, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
        double now = hs_clock_now();
        if (!timed_out && now >= deadline) {
            timed_out = 1;
            kill(-pid, SIGTERM);
            kill_at = now + 2.0;
        } else if (timed_out && kill_at > 0 && now >= kill_at) {
            kill(-pid, SIGKILL);
            kill_at = 0;
        }
        sleep_ms(10);
    }
    if (timed_out)
        kill(-pid, SIGKILL); /* what the shell started and left behind */
    n->finished = hs_clock_now();
    if (got == (ssize_t)sizeof exec_errno) {
        n->outcome = HS_NOTIFY_NOT_STARTED;
        snprintf(msg, cap, "cannot start /bin/sh: %s", strerror(exec_errno));
    } else if (timed_out) {
        n->outcome = HS_NOTIFY_TIMEOUT;
        snprintf(msg, cap, "still running after %g s: killed", timeout_s);
    } else if (WIFSIGNALED(ws)) {
        n->outcome = HS_NOTIFY_SIGNAL;
        n->signal = WTERMSIG(ws);
        snprintf(msg, cap, "killed by signal %d (%s)", n->signal, strsignal(n->signal));
    } else {
        n->exit_status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 255;
        n->outcome = n->exit_status == 0 ? HS_NOTIFY_OK : HS_NOTIFY_EXIT_STATUS;
        snprintf(msg, cap, "exited with status %d%s", n->exit_status,
                 n->exit_status == 127 ? " (the shell found no such command)" : "");
    }
}

/* The time limit: $HEMOSCAN_ON_POSITIVE_TIMEOUT_S when it is a positive
 * number, else CLI_ON_POSITIVE_TIMEOUT_S. */
static double timeout_s(void)
{
    const char *env = getenv("HEMOSCAN_ON_POSITIVE_TIMEOUT_S");
    if (env != NULL && env[0] != '\0') {
        char *end = NULL;
        double t = strtod(env, &end);
        if (end != env && *end == '\0' && t > 0 && t < 86400)
            return t;
        fprintf(stderr, "hemoscan: warning: HEMOSCAN_ON_POSITIVE_TIMEOUT_S '%s' is not a number of "
                "seconds; using %g\n", env, CLI_ON_POSITIVE_TIMEOUT_S);
    }
    return CLI_ON_POSITIVE_TIMEOUT_S;
}

/* The failure line on stderr and, with --syslog, at LOG_ERR. */
static void complain(const options *o, const char *line)
{
    fprintf(stderr, "hemoscan: %s\n", line);
    if (o->use_syslog)
        syslog(LOG_ERR, "%s", line);
}

int cli_on_positive(const options *o, hs_audit *audit, const char *db_path, const hs_study_reading *r,
                    long long verdict_id, const hs_review_file *review)
{
    if (r->verdict.verdict != HS_VERDICT_HEMORRHAGE)
        return EXIT_OK;
    char line[2 * HS_PATH_MAX];
    cli_positive_line(r, verdict_id, line, sizeof line);
    if (o->use_syslog)
        syslog(LOG_CRIT, "%s", line);
    if (o->on_positive == NULL)
        return EXIT_OK;

    /* the study's identity, as the command gets it */
    const hs_study *s = &r->study;
    char id[24], prob[32], thr[32], instance[16] = "";
    snprintf(id, sizeof id, "%lld", verdict_id);
    snprintf(prob, sizeof prob, "%.6f", r->verdict.probability);
    snprintf(thr, sizeof thr, "%.6f", r->verdict.threshold);
    const hs_dicom_header *key = NULL;
    if (r->decisive >= 0 && r->verdict.key_slice >= 0) {
        const hs_series *se = &s->series[r->result[r->decisive].series_index];
        key = &se->slices[r->verdict.key_slice].header;
        if (key->has_instance_number)
            snprintf(instance, sizeof instance, "%d", key->instance_number);
    }
    const char *value[V_COUNT] = {
        [V_VERDICT] = hs_verdict_name(r->verdict.verdict),
        [V_VERDICT_ID] = id,
        [V_ACCESSION] = s->accession,
        [V_STUDY_UID] = s->study_uid,
        [V_PATIENT_ID] = s->patient_id,
        [V_STUDY_DATE] = s->study_date,
        [V_PROBABILITY] = prob,
        [V_THRESHOLD] = thr,
        [V_KEY_INSTANCE] = instance,
        [V_KEY_SOP_UID] = key != NULL ? key->sop_uid : "",
        [V_KEY_FILE] = key != NULL ? key->path : "",
        [V_DB] = db_path,
        [V_STUDY_DIR] = r->dir,
        [V_REVIEW_FILE] = review != NULL ? review->path : "",
    };
    hs_audit_notification n = {.verdict_id = verdict_id, .command = o->on_positive,
                               .timeout_s = timeout_s()};
    char msg[256] = "";
    char **env = build_env(value);
    if (env == NULL) {
        n.started = n.finished = hs_clock_now();
        n.outcome = HS_NOTIFY_NOT_STARTED;
        snprintf(msg, sizeof msg, "out of memory for its environment");
    } else {
        run(o->on_positive, env, n.timeout_s, &n, msg, sizeof msg);
        free_env(env);
    }
    n.message = msg;

    int status = EXIT_OK;
    char uid[sizeof s->study_uid];
    cli_clean_text(s->study_uid, uid, sizeof uid);
    if (n.outcome != HS_NOTIFY_OK) {
        char text[1024];
        snprintf(text, sizeof text, "--on-positive for study %s (verdict id %lld, which stands): %s",
                 uid[0] ? uid : "-", verdict_id, msg);
        complain(o, text);
        status = EXIT_FAILED;
    }
    hs_error err = {0};
    if (hs_audit_record_notification(audit, &n, &err) != HS_OK) {
        char text[1024];
        snprintf(text, sizeof text, "--on-positive for study %s: not recorded: %s", uid[0] ? uid : "-",
                 err.msg);
        complain(o, text);
        status = EXIT_FAILED;
    }
    return status;
}
