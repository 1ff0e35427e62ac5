/* crash_note.h - what a watcher that dies of a fatal signal leaves behind:
 * the study it had in hand, so that the next run does not read that study
 * again and die the same way.
 *
 * hemoscan's own code reports bad input and goes on, but a library it
 * calls (DCMTK, a codec, libtiff) can still assert or crash on a file no
 * one has seen yet. Without a note, a watcher restarted by systemd or run
 * again by cron would read the same study first, die again, and never
 * reach the studies behind it. With it, the next run records the crash in
 * the audit database (table watch_crashes), and the study is failed and
 * quarantined instead of read while its files stay as they were.
 *
 * How: hs_crash_note_open creates the note file (beside the database) and
 * installs a handler for SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT and
 * SIGSYS. Before each study the watcher arms the note with the study's
 * identity; the handler, if armed, writes the prepared bytes and the
 * signal number with async-signal-safe calls only (pwrite, fdatasync),
 * then lets the signal kill the process as before (exit status, core
 * dump and systemd's restart are unchanged). SIGKILL cannot be caught: a
 * watcher killed with kill -9 or by the OOM killer leaves no note, and
 * the study is simply read again (see modes_watch.c for why that is
 * safe). One note per process: the state is global, as a signal handler
 * needs it. */
#ifndef HEMOSCAN_CRASH_NOTE_H
#define HEMOSCAN_CRASH_NOTE_H

#include "hemoscan/status.h"

/* What a note says. */
typedef struct {
    long long run_id;   /* the run that died */
    char study_uid[65];
    int n_files;        /* the study's files in the drop folder */
    double newest;      /* their newest change time (Unix seconds, hs_watch_study) */
    char phase[16];     /* what it was doing: "scanning", "reading", ... */
    char label[4096];   /* the study's folder, as the watcher names it */
    int signal;         /* the signal it died of */
} hs_crash_note;

/* Opens (creating it 0600) the note file at path and installs the
 * handlers. HS_ERR_IO naming the file when it cannot be opened. */
hs_status hs_crash_note_open(const char *path, hs_error *err);

/* What the file held when it was opened: *found is 0 for an empty file
 * (no crash). HS_ERR_FORMAT when the file holds something that is not a
 * complete note (a write cut short); the caller reports it and clears it. */
hs_status hs_crash_note_read(hs_crash_note *note, int *found, hs_error *err);

/* Empties the file (after its note was recorded). */
hs_status hs_crash_note_clear(hs_error *err);

/* From now on a fatal signal writes this note (its signal field is
 * ignored; phase is set by hs_crash_note_phase). Called by the thread
 * that runs the watcher, never from a handler. */
void hs_crash_note_arm(long long run_id, const char *study_uid, int n_files, double newest,
                       const char *label);

/* The phase the note names if the process dies now; one of "scanning",
 * "reading", "recording", "reviewing", "moving" (anything else is
 * recorded as "other"). */
void hs_crash_note_phase(const char *phase);

/* The study is finished: a fatal signal now writes nothing. */
void hs_crash_note_disarm(void);

/* Restores the default signal actions and closes the file. */
void hs_crash_note_close(void);

/* "SIGSEGV" for SIGSEGV and so on for the signals handled; "signal" for
 * any other. */
const char *hs_crash_note_signal_name(int signal);

#endif
