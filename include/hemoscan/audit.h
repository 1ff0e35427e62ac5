/* audit.h - the audit database: everything a study reading produced,
 * written to SQLite so that auditors can answer "which study, which series,
 * which model, which score, which verdict, what went wrong and why" with
 * plain SQL.
 *
 * The schema lives in sql/schema/ (NNN-name.sql), one file per version; the
 * files are compiled into the program and applied in order inside one
 * transaction, so an older database is upgraded in place and PRAGMA
 * user_version always says which version a file has. A database newer than
 * this build is refused, never written.
 *
 * Every study is written in one transaction (BEGIN IMMEDIATE ... COMMIT):
 * a crash leaves the study either fully recorded or absent. The database
 * runs in WAL mode with a busy timeout, so report queries can read while a
 * run writes, and two writers wait for each other instead of failing. A new
 * database file is created readable and writable by its owner only: it
 * holds patient identifiers. */
#ifndef HEMOSCAN_AUDIT_H
#define HEMOSCAN_AUDIT_H

#include "hemoscan/model.h"
#include "hemoscan/status.h"
#include "hemoscan/study.h"

/* The schema version this build writes (the highest sql/schema file; the
 * build stops when the two disagree). */
#define HS_AUDIT_SCHEMA_VERSION 9
/* The first version with validation runs (runs.purpose, validation_labels). */
#define HS_AUDIT_VERSION_VALIDATION 7
/* The first version with notifications (--on-positive) and negative
 * verdicts always labelled 'low'. */
#define HS_AUDIT_VERSION_NOTIFICATIONS 8
/* The first version that lists what each reading saw (reading_instances) and
 * lets a fuller verdict outrank a newer one that saw less. */
#define HS_AUDIT_VERSION_IDENTITY 9
/* PRAGMA application_id of every hemoscan audit database, "HSAU": tells
 * hemoscan's databases from other programs' SQLite files. */
#define HS_AUDIT_APPLICATION_ID 0x48534155
/* How long a writer waits for another one, milliseconds. */
#define HS_AUDIT_BUSY_TIMEOUT_MS 30000

typedef struct hs_audit hs_audit;

/* What a run records about itself. Strings may be NULL (stored as NULL). */
typedef struct {
    const char *mode;         /* "study", "watch", ... */
    const char *command;      /* the options as typed, without argv[0] */
    const char *model_path;
    const char *model_sha256; /* hex */
    const char *model_name;   /* e.g. the file name, or the provenance note */
} hs_audit_run;

/* Open (creating it with mode 0600 if absent) and upgrade the database at
 * path. Enables foreign keys, WAL, synchronous=FULL, the busy timeout.
 * Errors, each naming the file; a refused file is not written to, and
 * *out is NULL:
 *   HS_ERR_IO       the file cannot be created or opened, or cannot use WAL
 *   HS_ERR_VERSION  its user_version is newer than HS_AUDIT_SCHEMA_VERSION
 *   HS_ERR_FORMAT   not a hemoscan database (not SQLite, tables but
 *                   user_version 0, another application_id), or an
 *                   upgrade step failed */
hs_status hs_audit_open(const char *path, hs_audit **out, hs_error *err);
void hs_audit_close(hs_audit *a);

/* The user_version of the open database; -1 when it cannot be read. */
int hs_audit_schema_version(hs_audit *a);

/* A run: started now (UTC), on this host (gethostname), by this hemoscan
 * version (PACKAGE_VERSION). *run_id receives its id. */
hs_status hs_audit_run_begin(hs_audit *a, const hs_audit_run *run, long long *run_id,
                             hs_error *err);
/* Finish a run: end time and exit status (0..255). HS_ERR_ARG when the run
 * does not exist or has ended already. */
hs_status hs_audit_run_end(hs_audit *a, long long run_id, int exit_status, hs_error *err);

/* Record a reading in one transaction: the study (UIDs, accession, study
 * date, patient id as stored), every series of the scan (chosen or not and
 * why, geometry, gaps), every slice of the series read (position, instance,
 * probability or why not scored), every skipped file with its reason, and
 * the verdict (probability, threshold, verdict, confidence, key slice,
 * model checksum, reason), and the model (checksum, threshold,
 * provenance, class names) when it is new to the database, and every
 * accepted instance the scan found (reading_instances: UID, frame, file,
 * size, SHA-256, lossy).
 *
 * What supersedes what. The study's current production verdict is marked
 * superseded by the new one, never deleted, when the new reading read
 * (scored, in the series it chose) every instance the current one read,
 * each in a copy no worse (a lossless copy where it read a lossless one).
 * When it read less, the new verdict is recorded outranked instead
 * (outranked_by, outranked_reason): the fuller verdict stands. A hemorrhage verdict always
 * supersedes a current verdict that is not one, whatever it saw: a positive
 * is never held back. A current verdict recorded before schema 9 is
 * superseded as before; a study without a UID never supersedes anything;
 * a validation verdict neither supersedes nor is outranked.
 * *verdict_id (may be NULL) receives the new verdict's id.
 *
 * The schema checks every value (verdict names, probabilities in [0, 1],
 * one of probability and error per slice, a verdict consistent with its
 * threshold, ...); indexes that point inside r are checked here first. Any
 * failure rolls the whole study back: HS_ERR_ARG for a value the schema
 * refuses (the message names the rule), HS_ERR_IO for the disk or a lock
 * held beyond HS_AUDIT_BUSY_TIMEOUT_MS. */
hs_status hs_audit_record_study(hs_audit *a, long long run_id, const hs_study_reading *r,
                                const hs_model *model, long long *verdict_id, hs_error *err);

/* Where a verdict stands (hs_audit_record_study): current, or superseded
 * by a later verdict, or outranked by the fuller verdict that stands. */
typedef struct {
    int current;              /* 1: it is the study's current verdict */
    long long superseded_by;  /* 0 when not superseded */
    long long outranked_by;   /* 0 when not outranked */
    char outranked_verdict[16]; /* hs_verdict_name of the verdict that stands; "" */
    char reason[300];         /* why it is outranked; "" */
} hs_audit_standing;

hs_status hs_audit_verdict_standing(hs_audit *a, long long verdict_id, hs_audit_standing *out,
                                    hs_error *err);

/* Every file a production reading of study_uid read an instance from, and
 * every file of it the watcher moved to its done folder, each path once,
 * sorted: where the rest of a study is when more of it arrives. The files
 * may since have gone or changed; the caller looks. Free each path and the
 * array. Before schema 9, the done files only. */
hs_status hs_audit_study_known_files(hs_audit *a, const char *study_uid, char ***paths, int *n,
                                     hs_error *err);

/* The files to read study_uid from: the n_given paths (given[i], not
 * copied) and then every known file of hs_audit_study_known_files that is
 * not among them and is still there as a regular file (a link put in its
 * place is not followed): a study that gains instances, in this folder or
 * another, is read whole. *n_added: how many known files were added;
 * *read_before: whether the study has any known file at all (it was read
 * or moved before). Free with hs_audit_study_files_free(paths, *n, n_given). */
hs_status hs_audit_study_files(hs_audit *a, const char *study_uid, char *const *given, int n_given,
                               char ***paths, int *n, int *n_added, int *read_before, hs_error *err);
void hs_audit_study_files_free(char **paths, int n, int n_given);

/* Record that a study folder could not be read at all (stage: "scan",
 * "model", ...; message: the error line). study_uid may be NULL. */
hs_status hs_audit_record_failure(hs_audit *a, long long run_id, const char *study_dir,
                                  const char *study_uid, const char *stage, const char *message,
                                  hs_error *err);

/* *found = 1 when the study UID has a current verdict made with the model
 * whose checksum is model_sha256 from exactly the instances identified by
 * instances_sha256 (hs_study_reading.instances_sha256); else 0 (always 0
 * for a NULL or empty study_uid). */
hs_status hs_audit_already_read(hs_audit *a, const char *study_uid, const char *instances_sha256,
                                const char *model_sha256, int *found, hs_error *err);

/* ---- the drop-folder watcher (schema step 003-watch, hemoscan --watch) ---- */

/* How long a writer waits for a lock held by another connection (the
 * default is HS_AUDIT_BUSY_TIMEOUT_MS); 0 fails at once. */
void hs_audit_set_busy_timeout(hs_audit *a, int ms);

/* A watch run's settings (the watch_runs row of run_id). */
typedef struct {
    const char *drop_dir, *done_dir, *quarantine_dir; /* the last two may be NULL */
    const char *disposal;                             /* "leave", "done" or "delete" */
    double stable_age_s;
    int follow;
} hs_audit_watch_run;

hs_status hs_audit_watch_run_begin(hs_audit *a, long long run_id, const hs_audit_watch_run *w,
                                   hs_error *err);

/* What a watch run did, as its summary line says. */
typedef struct {
    long long passes, studies_read, hemorrhage, no_hemorrhage, not_assessable, already_read,
        waiting, failed, loose_files, files_done, files_deleted, files_quarantined;
} hs_audit_watch_counts;

hs_status hs_audit_watch_run_counts(hs_audit *a, long long run_id, const hs_audit_watch_counts *c,
                                    hs_error *err);

/* Record a loose file (one that belongs to no study) unless the same path,
 * size and modification time (Unix seconds) were recorded before; *is_new
 * (may be NULL) says whether a row was added. */
hs_status hs_audit_loose_file(hs_audit *a, long long run_id, const char *path, long long size,
                              double mtime, const char *verdict, const char *reason, int *is_new,
                              hs_error *err);

/* One planned file operation of the journal (table watch_files). */
typedef struct {
    long long id;          /* watch_file_id, set by hs_audit_plan_files */
    const char *study_uid; /* NULL for a loose file */
    const char *action;    /* "done", "delete" or "quarantine" */
    const char *source;    /* path in the drop folder */
    const char *dest;      /* NULL for "delete" */
    const char *reason;    /* why it is quarantined; NULL otherwise */
} hs_audit_file_action;

/* Journal n file operations as 'pending', in one transaction, before any
 * of them is carried out; each acts[i].id receives its row id. */
hs_status hs_audit_plan_files(hs_audit *a, long long run_id, hs_audit_file_action *acts, int n,
                              hs_error *err);

/* Mark a planned operation carried out (by run run_id). */
hs_status hs_audit_finish_file(hs_audit *a, long long run_id, long long id, hs_error *err);

/* Every operation still 'pending' (a run died before finishing it), in
 * the order planned. Free *out with hs_audit_file_actions_free. */
hs_status hs_audit_pending_files(hs_audit *a, hs_audit_file_action **out, int *n, hs_error *err);
void hs_audit_file_actions_free(hs_audit_file_action *acts, int n);

/* Where the files of study_uid went in the done folder (finished 'done'
 * operations), in the order moved: a study that gains instances later is
 * read again together with them. Free each path and the array. */
hs_status hs_audit_study_done_files(hs_audit *a, const char *study_uid, char ***paths, int *n,
                                    hs_error *err);

/* ---- studies and files a watcher died reading (schema step 006-watch-crashes) ---- */

/* What a dead watcher's crash note said (crash_note.h), as recorded:
 * either a study (study_uid set, file_path NULL) or a file whose header
 * was being read while listing (file_path set, study_uid NULL). */
typedef struct {
    long long crashed_run_id; /* the run that died */
    const char *study_uid, *file_path;
    const char *study_dir;    /* the study's folder, or the file */
    const char *phase;
    int signal;               /* its number */
    const char *signal_name;  /* its name ("SIGSEGV"; crash_note.h); NULL: "signal" */
    int n_files;              /* the study's files in the drop folder; 1 for a file */
    long long bytes;          /* the file's size (files only) */
    double newest;            /* the newest change time, Unix seconds */
} hs_audit_watch_crash;

/* Record the crash (found by run run_id), in its own statement. HS_ERR_ARG
 * for a value the schema refuses (an unknown run, phase or count, both or
 * neither of study_uid and file_path). */
hs_status hs_audit_record_watch_crash(hs_audit *a, long long run_id, const hs_audit_watch_crash *c,
                                      hs_error *err);

/* *crashed_run = the latest run that died reading study_uid when it had
 * exactly n_files files whose newest change time was newest (0 when no
 * run did); *signal = the signal it died of. */
hs_status hs_audit_watch_crashed(hs_audit *a, const char *study_uid, int n_files, double newest,
                                 long long *crashed_run, int *signal, hs_error *err);

/* The same for a file whose header was being read: path, size and the
 * larger of its own mtime and ctime. */
hs_status hs_audit_watch_file_crashed(hs_audit *a, const char *path, long long bytes, double newest,
                                      long long *crashed_run, int *signal, hs_error *err);

/* A drop-folder file whose change time (changed, Unix seconds) lies in
 * the future at time now: *first_seen receives when a watcher first saw
 * this path with this size and change time (now, the first time; it is
 * then recorded for run_id in watch_future_files), and *is_new (may be
 * NULL) whether that was now. Before schema 9 nothing is kept and
 * *first_seen is now. */
hs_status hs_audit_watch_future_file(hs_audit *a, long long run_id, const char *path, long long bytes,
                                     double changed, double now, double *first_seen, int *is_new,
                                     hs_error *err);

/* ---- review pictures (schema step 004-review, hemoscan --review) ---- */

/* Record the review file (review.h) of verdict verdict_id: path as
 * written, its SHA-256 (hex), TIFF pages, slice pages, size, and the
 * saliency method (e.g. "grad-cam layer 8 (5x5)"). Its own statement
 * (autocommit), called after hs_audit_record_study and after the file is
 * complete: a crash between the two leaves a file without a row, never a
 * row without a file, and a failure here never loses the verdict.
 * HS_ERR_ARG for a value the schema refuses (an unknown verdict, a path
 * recorded before). */
/* The review's key image as a DICOM Secondary Capture (schema step
 * 005-review-dicom, --review-dicom): the file and the UIDs PACS will show. */
typedef struct {
    const char *path, *sha256;
    long long bytes;
    const char *study_uid, *series_uid, *sop_uid;
} hs_audit_review_dicom;

/* dicom: the capture written with the TIFF, recorded in the same row;
 * NULL when there is none. */
hs_status hs_audit_record_review(hs_audit *a, long long verdict_id, const char *path, const char *sha256,
                                 int pages, int slice_pages, long long bytes, const char *saliency,
                                 const hs_audit_review_dicom *dicom, hs_error *err);

/* ---- validation runs (schema step 007-validation, hemoscan --validate) ---- */

/* hs_audit_run_begin for a validation run (runs.purpose 'validation'):
 * the studies it records get verdicts like any run's, but they never
 * supersede a verdict, are never superseded, and are not in the
 * current_verdicts view nor "already read" for the watcher. HS_ERR_FORMAT
 * on a database opened at a schema older than HS_AUDIT_VERSION_VALIDATION. */
hs_status hs_audit_validation_run_begin(hs_audit *a, const hs_audit_run *run, long long *run_id,
                                        hs_error *err);

/* One row of a label file given to a validation run (validation_labels):
 * either a study label (study set, sop_instance_uid NULL) or a slice label
 * (sop_instance_uid set, study, subtypes and verdict_id NULL/0). */
typedef struct {
    const char *labels_file;      /* the file as given */
    int line;                     /* 1-based line in it */
    const char *study;            /* the study column as written */
    const char *sop_instance_uid; /* the slice label's SOPInstanceUID */
    int label;                    /* 1 hemorrhage, 0 normal */
    const char *subtypes;         /* ';'-separated; NULL or "" when none */
    long long verdict_id;         /* the run's verdict of the matched study; 0: none */
} hs_audit_validation_label;

/* Records n labels of validation run run_id in one transaction (all or
 * none). HS_ERR_ARG for a value the schema refuses: run_id is not a
 * validation run, verdict_id is not a verdict of that run, the same file
 * and line twice, a label not 0/1. */
hs_status hs_audit_record_validation_labels(hs_audit *a, long long run_id,
                                            const hs_audit_validation_label *labels, int n,
                                            hs_error *err);

/* ---- notifications (schema step 008-notifications, hemoscan --on-positive) ---- */

/* How one run of the --on-positive command ended (notifications.outcome). */
typedef enum {
    HS_NOTIFY_OK = 0,          /* exit status 0 */
    HS_NOTIFY_EXIT_STATUS = 1, /* another exit status */
    HS_NOTIFY_SIGNAL = 2,      /* killed by a signal hemoscan did not send */
    HS_NOTIFY_TIMEOUT = 3,     /* still running at the time limit: killed */
    HS_NOTIFY_NOT_STARTED = 4  /* the shell could not be started */
} hs_notify_outcome;

/* "ok", "exit_status", "signal", "timeout", "not_started" (stored). */
const char *hs_notify_outcome_name(hs_notify_outcome o);

typedef struct {
    long long verdict_id;      /* the hemorrhage verdict it was run for */
    const char *command;       /* as given */
    double started, finished;  /* Unix times, seconds */
    hs_notify_outcome outcome;
    int exit_status;           /* HS_NOTIFY_OK and HS_NOTIFY_EXIT_STATUS */
    int signal;                /* HS_NOTIFY_SIGNAL */
    double timeout_s;          /* the time limit it ran under */
    const char *message;       /* one line, NULL for HS_NOTIFY_OK */
} hs_audit_notification;

/* Records one run of the command, in its own statement (autocommit), after
 * the command has ended. HS_ERR_ARG for a value the schema refuses (a
 * verdict that is not a hemorrhage verdict, an outcome without its exit
 * status or signal); HS_ERR_FORMAT on a database opened at a schema older
 * than HS_AUDIT_VERSION_NOTIFICATIONS. */
hs_status hs_audit_record_notification(hs_audit *a, const hs_audit_notification *n, hs_error *err);

/* ---- the schema steps (src/store/audit_schema.c, generated from sql/schema) ---- */

/* One schema version: the statements that turn a database of version - 1
 * into one of version. Applied in a transaction together with the PRAGMA
 * user_version that records it, so a failed step leaves nothing behind. */
typedef struct {
    int version;      /* 1, 2, ...: the number the file name starts with */
    const char *name; /* the file name, e.g. "001-initial.sql" */
    const char *sql;  /* its text */
} hs_audit_migration;

extern const hs_audit_migration hs_audit_schema[];
extern const int hs_audit_schema_count;

/* hs_audit_open with another list of schema steps (versions 1..n in
 * order): what hs_audit_open does with hs_audit_schema. For tests of the
 * upgrade path, which need a version this build does not have. */
hs_status hs_audit_open_schema(const char *path, const hs_audit_migration *steps, int n,
                               hs_audit **out, hs_error *err);

#endif
