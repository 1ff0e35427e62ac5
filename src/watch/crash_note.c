/* crash_note.c - the note a watcher leaves when it dies of a fatal signal
 * (see crash_note.h for why).
 *
 * Built this way on purpose:
 *   - Everything the handler writes is prepared beforehand, when the study
 *     is armed: the handler only copies bytes it already has, appends the
 *     phase (an index into constant names, set with an atomic store) and
 *     the signal's digits, and calls pwrite and fdatasync, which POSIX
 *     lists as async-signal-safe. No malloc, no stdio, no locks.
 *   - The handler is installed with SA_RESETHAND and re-raises its signal,
 *     so after writing the note the process dies exactly as it would have
 *     (same signal, same core dump, same exit status for systemd or
 *     cron). Only the first fatal signal writes.
 *   - The note is NUL-separated text ("hemoscan-crash-note 1", run id,
 *     "study" or "file", study UID, file count, bytes, newest change time
 *     with 17 significant digits so that it compares equal after the round
 *     trip, label, phase, signal), each field NUL-terminated: the label is
 *     a path, which may hold any byte but NUL. A note cut short (disk full at the crash)
 *     does not parse and is reported as such. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/crash_note.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HS_NOTE_MAGIC "hemoscan-crash-note 1"
#define HS_NOTE_CAP 8192

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS};
#define HS_N_FATAL ((int)(sizeof fatal_signals / sizeof fatal_signals[0]))

static const char *const phase_names[] = {"other",   "listing",   "scanning", "reading",
                                             "recording", "reviewing", "moving"};
#define HS_N_PHASES ((int)(sizeof phase_names / sizeof phase_names[0]))

static int note_fd = -1;
static long long note_run_id;
static char note_prepared[HS_NOTE_CAP]; /* everything up to the phase */
static size_t note_prepared_len;
static char note_scratch[HS_NOTE_CAP + 64]; /* the handler's composition */
static int note_armed;                        /* atomic */
static int note_phase;                        /* atomic: index into phase_names */
static int note_written;                      /* atomic: the first fatal signal only */
static struct sigaction note_previous[HS_N_FATAL];
static int note_installed;

static void crash_handler(int sig)
{
    int saved = errno;
    if (note_fd >= 0 && __atomic_load_n(&note_armed, __ATOMIC_ACQUIRE) &&
        !__atomic_exchange_n(&note_written, 1, __ATOMIC_ACQ_REL)) {
        size_t n = 0;
        for (size_t i = 0; i < note_prepared_len; i++)
            note_scratch[n++] = note_prepared[i];
        int p = __atomic_load_n(&note_phase, __ATOMIC_RELAXED);
        const char *phase = phase_names[p >= 0 && p < HS_N_PHASES ? p : 0];
        while (*phase != '\0')
            note_scratch[n++] = *phase++;
        note_scratch[n++] = '\0';
        char digits[12];
        int k = 0;
        unsigned v = sig > 0 ? (unsigned)sig : 0;
        do {
            digits[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (v > 0 && k < (int)sizeof digits);
        while (k > 0)
            note_scratch[n++] = digits[--k];
        note_scratch[n++] = '\0';
        size_t off = 0;
        while (off < n) {
            ssize_t w = pwrite(note_fd, note_scratch + off, n - off, (off_t)off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        (void)fdatasync(note_fd);
    }
    errno = saved;
    /* SA_RESETHAND put the default action back: delivered when this
     * handler returns (a fault also recurs at the faulting instruction). */
    raise(sig);
}

hs_status hs_crash_note_open(const char *path, long long run_id, hs_error *err)
{
    if (path == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_crash_note_open: NULL path");
    if (note_fd >= 0)
        return hs_fail(err, HS_ERR_ARG, "hs_crash_note_open: a note is open already");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return hs_fail(err, HS_ERR_IO, "%s: cannot open the crash note: %s", path, strerror(errno));
    note_fd = fd;
    note_run_id = run_id;
    __atomic_store_n(&note_armed, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&note_written, 0, __ATOMIC_RELEASE);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = crash_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    for (int i = 0; i < HS_N_FATAL; i++)
        sigaction(fatal_signals[i], &sa, &note_previous[i]);
    note_installed = 1;
    return HS_OK;
}

/* The next NUL-terminated field of buf[*pos..n), or NULL. */
static const char *crash_note_field(const char *buf, size_t n, size_t *pos)
{
    if (*pos >= n)
        return NULL;
    const char *start = buf + *pos;
    const char *end = memchr(start, '\0', n - *pos);
    if (end == NULL)
        return NULL;
    *pos = (size_t)(end - buf) + 1;
    return start;
}

hs_status hs_crash_note_read(hs_crash_note *note, int *found, hs_error *err)
{
    if (note == NULL || found == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_crash_note_read: NULL argument");
    memset(note, 0, sizeof *note);
    *found = 0;
    if (note_fd < 0)
        return hs_fail(err, HS_ERR_ARG, "hs_crash_note_read: no note is open");
    char buf[HS_NOTE_CAP + 64];
    size_t n = 0;
    while (n < sizeof buf) {
        ssize_t r = pread(note_fd, buf + n, sizeof buf - n, (off_t)n);
        if (r < 0)
            return hs_fail(err, HS_ERR_IO, "cannot read the crash note: %s", strerror(errno));
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n == 0)
        return HS_OK;
    /* magic, run, kind, UID, files, bytes, newest, label, phase, signal */
    size_t pos = 0;
    const char *f[10];
    for (int i = 0; i < 10; i++)
        f[i] = crash_note_field(buf, n, &pos);
    char *end_run = NULL, *end_n = NULL, *end_bytes = NULL, *end_newest = NULL, *end_sig = NULL;
    int ok = f[9] != NULL && pos == n && strcmp(f[0], HS_NOTE_MAGIC) == 0;
    if (ok) {
        errno = 0;
        note->run_id = strtoll(f[1], &end_run, 10);
        note->is_file = strcmp(f[2], "file") == 0;
        long files = strtol(f[4], &end_n, 10);
        note->bytes = strtoll(f[5], &end_bytes, 10);
        note->newest = strtod(f[6], &end_newest);
        long sig = strtol(f[9], &end_sig, 10);
        ok = errno == 0 && *end_run == '\0' && *end_n == '\0' && *end_bytes == '\0' &&
             *end_newest == '\0' && *end_sig == '\0' && note->run_id > 0 && files > 0 &&
             files < 1000000000L && note->bytes >= 0 && sig > 0 && sig < 256 &&
             (note->is_file || strcmp(f[2], "study") == 0) &&
             (note->is_file ? f[3][0] == '\0' && f[7][0] != '\0' : f[3][0] != '\0') &&
             strlen(f[3]) < sizeof note->study_uid && strlen(f[7]) < sizeof note->label &&
             strlen(f[8]) < sizeof note->phase;
        int known_phase = 0;
        for (int i = 0; ok && i < HS_N_PHASES; i++)
            known_phase |= strcmp(f[8], phase_names[i]) == 0;
        ok = ok && known_phase;
        if (ok) {
            note->n_files = (int)files;
            note->signal = (int)sig;
            snprintf(note->study_uid, sizeof note->study_uid, "%s", f[3]);
            snprintf(note->label, sizeof note->label, "%s", f[7]);
            snprintf(note->phase, sizeof note->phase, "%s", f[8]);
        }
    }
    if (!ok) {
        memset(note, 0, sizeof *note);
        return hs_fail(err, HS_ERR_FORMAT,
                       "the crash note holds %zu bytes that are not a complete note", n);
    }
    *found = 1;
    return HS_OK;
}

hs_status hs_crash_note_clear(hs_error *err)
{
    if (note_fd < 0)
        return hs_fail(err, HS_ERR_ARG, "hs_crash_note_clear: no note is open");
    if (ftruncate(note_fd, 0) != 0 || fdatasync(note_fd) != 0)
        return hs_fail(err, HS_ERR_IO, "cannot empty the crash note: %s", strerror(errno));
    return HS_OK;
}

/* Prepares the note's bytes up to the phase, then arms it. */
static void crash_note_prepare(const char *kind, const char *study_uid, int n_files, long long bytes,
                               double newest, const char *label, const char *phase)
{
    __atomic_store_n(&note_armed, 0, __ATOMIC_RELEASE);
    if (note_fd < 0)
        return;
    int len = snprintf(note_prepared, sizeof note_prepared,
                       "%s%c%lld%c%s%c%.*s%c%d%c%lld%c%.17g%c%.4000s%c", HS_NOTE_MAGIC, 0,
                       note_run_id, 0, kind, 0, HS_UID_KEY_MAX - 1, study_uid, 0, n_files, 0, bytes, 0, newest, 0,
                       label, 0);
    if (len <= 0 || (size_t)len >= sizeof note_prepared)
        return; /* cannot happen with the caps above; then no note */
    note_prepared_len = (size_t)len;
    hs_crash_note_phase(phase);
    __atomic_store_n(&note_armed, 1, __ATOMIC_RELEASE);
}

void hs_crash_note_arm(const char *study_uid, int n_files, double newest, const char *label)
{
    crash_note_prepare("study", study_uid ? study_uid : "", n_files, 0, newest, label ? label : "",
                       "scanning");
}

void hs_crash_note_arm_file(const char *path, long long bytes, double newest)
{
    crash_note_prepare("file", "", 1, bytes, newest, path ? path : "", "listing");
}

void hs_crash_note_phase(const char *phase)
{
    int p = 0;
    for (int i = 1; phase != NULL && i < HS_N_PHASES; i++)
        if (strcmp(phase, phase_names[i]) == 0)
            p = i;
    __atomic_store_n(&note_phase, p, __ATOMIC_RELAXED);
}

void hs_crash_note_disarm(void)
{
    __atomic_store_n(&note_armed, 0, __ATOMIC_RELEASE);
}

void hs_crash_note_close(void)
{
    hs_crash_note_disarm();
    if (note_installed) {
        for (int i = 0; i < HS_N_FATAL; i++)
            sigaction(fatal_signals[i], &note_previous[i], NULL);
        note_installed = 0;
    }
    if (note_fd >= 0)
        close(note_fd);
    note_fd = -1;
}

const char *hs_crash_note_signal_name(int signal)
{
    switch (signal) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGABRT:
        return "SIGABRT";
    case SIGSYS:
        return "SIGSYS";
    default:
        return "signal";
    }
}
