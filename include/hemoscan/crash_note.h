/* crash_note.h - what a watcher that dies of a fatal signal leaves behind:
 * the study it had in hand, or the file whose header it was reading while
 * it listed the drop folder, so that the next run does not read it again
 * and die the same way.
 *
 * hemoscan's own code reports bad input and goes on, but a library it
 * calls (DCMTK, a codec, libtiff) can still assert or crash on a file no
 * one has seen yet. Without a note, a watcher restarted by systemd or run
 * again by cron would read the same study first, die again, and never
 * reach the studies behind it. With it, the next run records the crash in
 * the audit database (table watch_crashes), and the study is failed and
 * quarantined instead of read while its files stay as they were (a file
 * becomes a loose file, quarantined, instead of having its header read).
 *
 * How: hs_crash_note_open creates the note file (beside the database) and
 * installs a handler for SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT and
 * SIGSYS. Before each study the watcher arms the note with the study's
 * identity, and the listing before each header it reads with the file's;
 * the handler, if armed, writes the prepared bytes and the
 * signal number with async-signal-safe calls only (pwrite, fdatasync),
 * then lets the signal kill the process as before (exit status, core
 * dump and systemd's restart are unchanged). SIGKILL cannot be caught: a
 * watcher killed with kill -9 or by the OOM killer leaves no note, and
 * the study is simply read again (see watcher.h for why that is safe).
 * One note per process: the state is global, as a signal handler needs
 * it. */
#ifndef HEMOSCAN_CRASH_NOTE_H
#define HEMOSCAN_CRASH_NOTE_H

#include "hemoscan/dicom.h"
#include "hemoscan/path.h"
#include "hemoscan/status.h"

/* What a note says. */
typedef struct {
    long long run_id;   /* the run that died */
    int is_file;        /* 0: a study in hand; 1: a file whose header was being read */
    char study_uid[HS_UID_KEY_MAX]; /* a study's UID key (dicom.h); "" for a file */
    int n_files;        /* the study's files in the drop folder; 1 for a file */
    long long bytes;    /* a file's size; 0 for a study */
    double newest;      /* the newest change time (Unix seconds): hs_watch_study.newest,
                           or the larger of a file's own mtime and ctime */
    char phase[16];     /* what it was doing: "listing", "scanning", "reading", ... */
    char label[HS_PATH_MAX]; /* the study's folder as the watcher names it, or the file's path */
    int signal;         /* the signal it died of */
} hs_crash_note;

/* Opens (creating it 0600) the note file at path for run run_id and
 * installs the handlers. HS_ERR_IO naming the file when it cannot be
 * opened. */
hs_status hs_crash_note_open(const char *path, long long run_id, hs_error *err);

/* What the file held when it was opened: *found is 0 for an empty file
 * (no crash). HS_ERR_FORMAT when the file holds something that is not a
 * complete note (a write cut short); the caller reports it and clears it. */
hs_status hs_crash_note_read(hs_crash_note *note, int *found, hs_error *err);

/* Empties the file (after its note was recorded). */
hs_status hs_crash_note_clear(hs_error *err);

/* From now on a fatal signal writes a note of this study (phase: see
 * hs_crash_note_phase). Called by the thread that runs the watcher, never
 * from a handler. Does nothing measurable when no note is open. */
void hs_crash_note_arm(const char *study_uid, int n_files, double newest, const char *label);

/* The same for one file whose header is about to be read (phase
 * "listing"). */
void hs_crash_note_arm_file(const char *path, long long bytes, double newest);

/* The phase the note names if the process dies now; one of "listing",
 * "scanning", "reading", "recording", "reviewing", "moving" (anything
 * else is recorded as "other"). */
void hs_crash_note_phase(const char *phase);

/* The study or file is finished: a fatal signal now writes nothing. */
void hs_crash_note_disarm(void);

/* Restores the default signal actions and closes the file. */
void hs_crash_note_close(void);

/* "SIGSEGV" for SIGSEGV and so on for the signals handled; "signal" for
 * any other. */
const char *hs_crash_note_signal_name(int signal);

#endif
