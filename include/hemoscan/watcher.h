/* watcher.h - the watcher's engine: every complete study of a drop folder
 * read exactly once and recorded, then its files moved, deleted or left;
 * what a killed or crashed run left behind finished first. hemoscan
 * --watch (src/cli/modes_watch.c) is a thin command line over it: the
 * options, the lock, the model, the database and its run, signals,
 * inotify and the summary line are the mode's; everything between "the
 * run has begun" and "the run's counts" is here, so that it can be tested
 * without a process (tests/test_watcher.c).
 *
 * It strings together the drop folder (watch.h), the crash note
 * (crash_note.h), the study reader (study.h), the audit database
 * (audit.h) and the review pictures (review_store.h). It never prints and
 * never reads the environment: what it has to say goes to the caller's
 * message callback, each reading to its reading callback, and the test
 * hooks are plain fields of the configuration.
 *
 * A run:
 *   1. hs_watcher_create opens the crash note (when a path is given) and
 *      takes what a watcher that died of a fatal signal left in it: the
 *      crash is recorded in watch_crashes and failures, reported and
 *      counted, and the note emptied;
 *   2. hs_watcher_finish_pending carries out every file operation a
 *      killed run left 'pending' in the journal (watch_files), before
 *      anything looks at the drop folder;
 *   3. hs_watcher_pass, once (cron) or again and again (--follow): list
 *      and group the drop folder; record new loose files (quarantined
 *      with a quarantine folder); for each complete study: scan its files
 *      (plus, with a done folder, the files it already has there), skip
 *      it when the database has a current verdict from the same
 *      instances and model, else read it, check nothing changed
 *      meanwhile, record it (one transaction), journal its moves, move.
 *
 * Why it survives kill -9 at any instant:
 *   - a reading is recorded in one transaction or not at all;
 *   - a study's moves are journaled before the first file moves, and
 *     finished first thing by the next run (step 2);
 *   - a study recorded but not yet journaled is found "already read" by
 *     the next run, and its files are then moved.
 * A study is therefore never read from part of its files, and no file is
 * lost or left twice.
 *
 * Why one crashing study cannot stop every run: while a study is in hand
 * the crash note is armed with it, and while the listing reads a header,
 * with that file (watch.c), so a fatal signal from hemoscan or a library
 * leaves its identity beside the database. The next run records it (step
 * 1); a study with the same files as when it crashed is failed (and
 * quarantined) instead of read, and such a file is not read but made a
 * loose file (the listing asks before it reads a header). The study check
 * comes before the scan, since the scan reads headers with DCMTK and could
 * be where it crashed.
 *
 * Errors name the file or study, reach the message callback as one line,
 * and the pass goes on with the next study. A study whose journaled moves
 * cannot be finished (a full or read-only disk) is blocked: left alone for
 * the rest of this watcher's life, so that it is neither read nor moved
 * again until a later run manages its moves.
 *
 * Limits:
 *   - one watcher with a crash note per process (the note's state is
 *     global, as a signal handler needs it);
 *   - a watcher is not thread-safe: one thread calls it;
 *   - one watcher per drop folder and database at a time, which the
 *     caller ensures (hs_watch_lock_take). */
#ifndef HEMOSCAN_WATCHER_H
#define HEMOSCAN_WATCHER_H

#include <signal.h>

#include "hemoscan/audit.h"
#include "hemoscan/model.h"
#include "hemoscan/review.h"
#include "hemoscan/status.h"
#include "hemoscan/study.h"

typedef struct hs_watcher hs_watcher;

/* What a message is. */
typedef enum {
    HS_WATCHER_ERROR = 0, /* something failed; the run fails (hs_watcher_failed) */
    HS_WATCHER_NOTE,      /* verbose only: what was decided about a study or file */
    HS_WATCHER_PHASE      /* verbose only: "phase PHASE WHAT", what is in hand now (one of
                             listing, reading, recording, reviewing, moving, idle) */
} hs_watcher_message_kind;

/* One line without a trailing newline, e.g. "STUDY_UID (FOLDER): MESSAGE";
 * hemoscan prints it as "hemoscan: LINE". */
typedef void (*hs_watcher_message_fn)(void *ctx, hs_watcher_message_kind kind, const char *line);

/* A study was read and recorded as verdict_id (review: its review
 * pictures; review->path is "" when none were written). Called once per
 * reading, after the verdict and the review pictures are recorded and
 * before the study's files are moved. r and review are the watcher's:
 * valid during the call only. */
typedef void (*hs_watcher_reading_fn)(void *ctx, const hs_study_reading *r, long long verdict_id,
                                      const hs_review_file *review);

typedef struct {
    const char *drop_dir;       /* the drop folder (required) */
    const char *done_dir;       /* files of a recorded study go here (NULL: not moved) */
    const char *quarantine_dir; /* loose files and studies that fail by their own fault go here,
                                   each with FILE.reason.txt (NULL: left in place) */
    const char *review_dir;     /* review pictures of each reading (NULL: none) */
    int delete_done;            /* without done_dir: files of a recorded study are deleted */
    double stable_age_s;        /* a study or loose file is complete once its newest change
                                   is this old (watch.h) */
    int verbose;                /* > 0: notes and phase lines reach on_message */
    hs_study_options study;     /* how studies are read; study.threads also scans */
    hs_review_options review;   /* how review pictures are written */
    const hs_model *model;      /* required; the caller's */
    hs_audit *audit;            /* required, open; the caller's */
    long long run_id;           /* the run that records (hs_audit_run_begin, then
                                   hs_audit_watch_run_begin), > 0 */
    const char *crash_note_path; /* the crash note (crash_note.h), conventionally
                                    DB.watch-crash; NULL: none is kept or taken */
    volatile sig_atomic_t *stop; /* when nonzero, a pass stops before its next loose file or
                                    study, never inside one; may be NULL */
    hs_watcher_reading_fn on_reading; /* may be NULL */
    hs_watcher_message_fn on_message; /* may be NULL: messages are dropped (errors are
                                         still counted) */
    void *ctx;                  /* passed to both callbacks */
    /* Test hooks (hemoscan sets them from HEMOSCAN_TEST_*): */
    int force_copy;              /* move as across file systems (hs_watch_move) */
    const char *crash_study_uid; /* abort() when about to read this study */
    const char *crash_file;      /* abort() when the listing is about to read the header of a
                                    file of this name (the last path component) */
} hs_watcher_config;

/* Zero, except a stable age of 60 s, hs_study_options_default and
 * hs_review_options_default. */
void hs_watcher_config_default(hs_watcher_config *cfg);

/* A watcher for cfg (copied; the strings, the model, the audit database,
 * the stop flag and ctx must outlive the watcher). The done, quarantine
 * and review folders are kept out of the listing (compared by device and
 * inode) and must not be the drop folder itself. The caller creates them
 * with the permissions it wants; a missing one is created when first
 * needed (0750 for moves, 0700 for review pictures).
 *
 * With cfg->crash_note_path, opens the note for cfg->run_id (installing
 * its signal handlers until hs_watcher_free) and takes what it held
 * (step 1 above). Trouble with its content is reported through
 * on_message, not returned: a note that cannot be recorded now is kept
 * for the next run, one cut short is reported and emptied.
 *
 * Fails, with *out NULL, with:
 *   - HS_ERR_ARG when a required field is missing, a folder is the drop
 *     folder, or a crash note is open already in this process;
 *   - HS_ERR_IO when the crash note cannot be opened;
 *   - HS_ERR_NOMEM. */
hs_status hs_watcher_create(const hs_watcher_config *cfg, hs_watcher **out, hs_error *err);

/* Frees w and closes its crash note (restoring the previous handlers).
 * NULL is fine. */
void hs_watcher_free(hs_watcher *w);

/* Carries out, in the order planned, every journaled file operation that
 * is still 'pending', and marks each finished by this run. One that fails
 * is reported, stays pending and blocks its study (or loose file); each
 * counts as a failed study. Call it once, before the first pass. */
void hs_watcher_finish_pending(hs_watcher *w);

/* One pass over the drop folder, as step 3 above. Headers of files
 * unchanged since the watcher's previous pass are not read again. A
 * failure to list the drop folder itself is reported and counted, and
 * the pass ends. Studies and loose files not yet stable are left for a
 * later pass and set hs_watcher_next_due. */
void hs_watcher_pass(hs_watcher *w);

/* When (Unix seconds) the earliest study or loose file the last pass left
 * waiting becomes stable, or a study that changed while it was read is
 * due again; 0 when nothing waits. For --follow's wait. */
double hs_watcher_next_due(const hs_watcher *w);

/* What the watcher did since it was created, as hs_audit_watch_run_counts
 * records it: passes, studies read (by verdict), already read, failed,
 * new loose files, files moved, deleted and quarantined add up over every
 * call; waiting is the last pass's. */
const hs_audit_watch_counts *hs_watcher_counts(const hs_watcher *w);

/* Loose files the last pass saw, new or recorded before (stable ones). */
long long hs_watcher_loose_seen(const hs_watcher *w);

/* 1 once any error was reported through on_message (including ones that
 * are no study's failure, such as a crash note that could not be
 * recorded), else 0. */
int hs_watcher_failed(const hs_watcher *w);

#endif
