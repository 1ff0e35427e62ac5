/* audit.c - the audit database (see audit.h and hemoscan-db(5)): every
 * reading of a study, written to SQLite so that auditors can query it with
 * plain SQL, years later, with nothing but the sqlite3 shell.
 *
 * Built this way on purpose:
 *   - Every statement of the module is in one table below and is prepared
 *     once, when the database is opened; data only ever reaches SQLite as
 *     bound parameters, never formatted into SQL. Preparing at open also
 *     checks every statement against the schema before anything is written.
 *   - The schema is compiled in (src/store/audit_schema.c, generated from
 *     sql/schema/NNN-*.sql) and applied step by step in one BEGIN IMMEDIATE
 *     transaction together with PRAGMA user_version, so a database is always
 *     exactly at one version. Everything about the file is checked before
 *     anything is written to it: a newer, foreign or non-SQLite file is
 *     refused untouched.
 *   - A new file is created with open(O_CREAT | O_EXCL, 0600) before SQLite
 *     sees it: it holds patient identifiers. SQLite gives its -wal and -shm
 *     files the permissions of the database file. An existing file keeps
 *     whatever permissions its owner chose.
 *   - WAL, so report queries read while a run writes; a busy timeout, so
 *     two writers wait for each other. synchronous=FULL rather than NORMAL:
 *     with NORMAL a power cut can undo the last committed studies, and an
 *     audit trail must not lose a verdict that was already shown to
 *     someone. FULL costs one fsync per study, milliseconds against the
 *     seconds a study takes to decode.
 *   - One transaction per study: BEGIN IMMEDIATE takes the write lock
 *     first (so the commit cannot fail on a lock), any error rolls back,
 *     and a study is either fully recorded or absent.
 *   - The schema lets each study have at most one current verdict (a
 *     unique index on verdicts where superseded_by is NULL). The new
 *     verdict's id is chosen before it is inserted, the old verdict is
 *     pointed at it, then the new one is inserted; the foreign key of
 *     superseded_by is checked at commit. From schema 9 a reading lists
 *     what it found and read (reading_instances), and a new verdict that
 *     read less than the current one is inserted outranked by it instead
 *     (standing_of): the database compares the two instance lists.
 *   - Times are taken here (hs_clock_now, clock.h) and written by SQLite's own
 *     strftime('%Y-%m-%dT%H:%M:%fZ', t, 'unixepoch'): one format for every
 *     time in the database, the one the schema's CHECKs demand. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hemoscan/clock.h"
#include "hemoscan/verdict.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* SQL that turns a bound Unix time (seconds) into the stored text. */
#define HS_SQL_TIME "strftime('%Y-%m-%dT%H:%M:%fZ', ?, 'unixepoch')"

/* A run's row; the purpose column (schema 007) is optional. */
#define HS_SQL_RUN_BEGIN(purpose_column, purpose_value)                                        \
    "INSERT INTO runs (started_at, host, hemoscan_version, mode, command, model_path,"         \
    " model_sha256, model_name" purpose_column ") VALUES (" HS_SQL_TIME ", ?, ?, ?, ?, ?, ?, ?" \
    purpose_value ") RETURNING run_id"

enum {
    Q_BEGIN, Q_COMMIT, Q_RUN_BEGIN, Q_RUN_END, Q_MODEL, Q_MODEL_CLASS, Q_STUDY, Q_READING,
    Q_SERIES, Q_SLICE, Q_SERIES_VERDICT, Q_SKIPPED, Q_NEXT_VERDICT, Q_SUPERSEDE, Q_VERDICT,
    Q_FAILURE, Q_ALREADY_READ, Q_SUPERSEDED_BY, Q_COUNT
};

/* What each statement does (for messages) and its text. */
static const struct {
    const char *what;
    const char *sql;
} audit_query[Q_COUNT] = {
    [Q_BEGIN] = {"starting a transaction", "BEGIN IMMEDIATE"},
    [Q_COMMIT] = {"committing", "COMMIT"},
    [Q_RUN_BEGIN] = {"recording the run", HS_SQL_RUN_BEGIN("", "")},
    [Q_RUN_END] = {"finishing the run",
                   "UPDATE runs SET finished_at = " HS_SQL_TIME ", exit_status = ?"
                   " WHERE run_id = ? AND finished_at IS NULL"},
    [Q_MODEL] = {"recording the model",
                 "INSERT INTO models (model_sha256, threshold, members, trained_at,"
                 " trained_by_version, training_data_sha256, seed, epochs, note,"
                 " first_recorded_at)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, " HS_SQL_TIME ")"
                 " ON CONFLICT (model_sha256) DO NOTHING"},
    [Q_MODEL_CLASS] = {"recording the model's classes",
                       "INSERT INTO model_classes (model_sha256, class_index, name)"
                       " VALUES (?, ?, ?) ON CONFLICT DO NOTHING"},
    /* The study row follows the latest reading; a StudyDate that is not
     * 8 digits stays out of it (readings keeps it as stored). */
    [Q_STUDY] = {"recording the study",
                 "INSERT INTO studies (study_uid, accession, patient_id, study_date,"
                 " first_read_at, last_read_at)"
                 " VALUES (?1, ?2, ?3,"
                 " CASE WHEN length(?4) = 8 AND ?4 NOT GLOB '*[^0-9]*' THEN ?4 END,"
                 " strftime('%Y-%m-%dT%H:%M:%fZ', ?5, 'unixepoch'),"
                 " strftime('%Y-%m-%dT%H:%M:%fZ', ?5, 'unixepoch'))"
                 " ON CONFLICT (study_uid) DO UPDATE SET accession = excluded.accession,"
                 " patient_id = excluded.patient_id, study_date = excluded.study_date,"
                 " last_read_at = excluded.last_read_at"
                 " RETURNING study_id"},
    [Q_READING] = {"recording the reading",
                   "INSERT INTO readings (run_id, study_id, study_dir, accession, patient_id,"
                   " study_date, instances_sha256, files, note, started_at, finished_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, " HS_SQL_TIME ", " HS_SQL_TIME ")"
                   " RETURNING reading_id"},
    [Q_SERIES] = {"recording a series",
                  "INSERT INTO series (reading_id, series_index, series_uid, description,"
                  " chosen, why, slice_count, slice_thickness_mm, spacing_mm, gantry_tilt_deg,"
                  " missing_slices, inconsistent_spacing, sort_method, sort_note, contrast)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING series_id"},
    [Q_SLICE] = {"recording a slice",
                 "INSERT INTO slices (series_id, slice_index, position_mm, instance_number,"
                 " sop_instance_uid, file_path, probability, error, frame_number)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING slice_id"},
    [Q_SERIES_VERDICT] = {"recording a series verdict",
                          "UPDATE series SET read_rank = ?, verdict = ?, probability = ?,"
                          " confidence = ?, confidence_label = ?, key_slice_id = ?,"
                          " scored_slices = ?, reason = ? WHERE series_id = ?"},
    [Q_SKIPPED] = {"recording a skipped file",
                   "INSERT INTO skipped_files (reading_id, file_path, verdict, reason)"
                   " VALUES (?, ?, ?, ?)"},
    [Q_NEXT_VERDICT] = {"numbering the verdict",
                        "SELECT coalesce(max(verdict_id), 0) + 1 FROM verdicts"},
    [Q_SUPERSEDE] = {"superseding the earlier verdict",
                     "UPDATE verdicts SET superseded_by = ?, superseded_at = " HS_SQL_TIME
                     " WHERE study_id = ? AND superseded_by IS NULL"},
    [Q_VERDICT] = {"recording the verdict",
                   "INSERT INTO verdicts (verdict_id, reading_id, study_id, verdict, probability,"
                   " threshold, confidence, confidence_label, key_slice_id, key_slice_instance,"
                   " decisive_series_id, scored_slices, reason, model_sha256, recorded_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " HS_SQL_TIME ")"},
    [Q_FAILURE] = {"recording the failure",
                   "INSERT INTO failures (run_id, study_dir, study_uid, stage, message,"
                   " recorded_at) VALUES (?, ?, ?, ?, ?, " HS_SQL_TIME ")"},
    [Q_SUPERSEDED_BY] = {"looking up a verdict's standing",
                         "SELECT coalesce(superseded_by, 0) FROM verdicts WHERE verdict_id = ?"},
    [Q_ALREADY_READ] = {"looking up earlier readings",
                        "SELECT EXISTS (SELECT 1 FROM verdicts AS v"
                        " JOIN studies AS s ON s.study_id = v.study_id"
                        " JOIN readings AS r ON r.reading_id = v.reading_id"
                        " WHERE s.study_uid = ? AND r.instances_sha256 = ?"
                        " AND v.model_sha256 = ? AND v.superseded_by IS NULL)"},
};

/* The statements of later schema steps (the watcher's, 003-watch; the
 * review files', 004-review; the watcher's crashes, 006-watch-crashes;
 * --on-positive's runs, 008-notifications): prepared when first used, so that a
 * database opened with a shorter schema list (the upgrade tests) still
 * opens. They run through exec like the others, numbered after Q_COUNT. */
enum {
    W_RUN = Q_COUNT, W_RUN_COUNTS, W_LOOSE, W_PLAN, W_PENDING, W_FINISH, W_DONE_FILES,
    W_REVIEW, W_CRASH, W_CRASHED, W_FILE_CRASHED, V_RUN_BEGIN, V_SUPERSEDE, V_VERDICT,
    V_ALREADY_READ, V_LABEL, N_NOTIFICATION,
    I_INSTANCE, I_CURRENT, I_COVER, I_VERDICT, I_KNOWN, I_STANDING, I_PRODUCTION, I_FUTURE_ADD,
    I_FUTURE_GET, W_END
};

/* From schema 007 on, a verdict carries its run's purpose, and only
 * production verdicts supersede, are superseded or count as read; these
 * replace Q_SUPERSEDE, Q_VERDICT and Q_ALREADY_READ there (a->version). */

static const struct {
    const char *what;
    const char *sql;
} later_query[W_END - Q_COUNT] = {
    [W_RUN - Q_COUNT] = {"recording the watch run",
                         "INSERT INTO watch_runs (run_id, drop_dir, done_dir, quarantine_dir,"
                         " disposal, stable_age_s, follow) VALUES (?, ?, ?, ?, ?, ?, ?)"},
    [W_RUN_COUNTS - Q_COUNT] = {"recording the watch run's counts",
                                "UPDATE watch_runs SET passes = ?, studies_read = ?,"
                                " hemorrhage = ?, no_hemorrhage = ?, not_assessable = ?,"
                                " already_read = ?, waiting = ?, failed = ?, loose_files = ?,"
                                " files_done = ?, files_deleted = ?, files_quarantined = ?"
                                " WHERE run_id = ?"},
    [W_LOOSE - Q_COUNT] = {"recording a loose file",
                           "INSERT INTO loose_files (run_id, file_path, size_bytes, modified_at,"
                           " verdict, reason, recorded_at)"
                           " VALUES (?, ?, ?, " HS_SQL_TIME ", ?, ?, " HS_SQL_TIME ")"
                           " ON CONFLICT (file_path, size_bytes, modified_at) DO NOTHING"},
    [W_PLAN - Q_COUNT] = {"planning a file move",
                          "INSERT INTO watch_files (run_id, study_uid, action, source_path,"
                          " dest_path, reason, state, planned_at)"
                          " VALUES (?, ?, ?, ?, ?, ?, 'pending', " HS_SQL_TIME ")"
                          " RETURNING watch_file_id"},
    [W_PENDING - Q_COUNT] = {"listing unfinished file moves",
                             "SELECT watch_file_id, study_uid, action, source_path, dest_path,"
                             " reason FROM watch_files WHERE state = 'pending'"
                             " ORDER BY watch_file_id"},
    [W_FINISH - Q_COUNT] = {"marking a file move finished",
                            "UPDATE watch_files SET state = 'finished', finished_at = " HS_SQL_TIME
                            ", finished_by_run = ? WHERE watch_file_id = ? AND state = 'pending'"},
    [W_DONE_FILES - Q_COUNT] = {"listing a study's files in the done folder",
                                "SELECT dest_path FROM watch_files WHERE study_uid = ?"
                                " AND action = 'done' AND state = 'finished'"
                                " ORDER BY watch_file_id"},
    [W_CRASH - Q_COUNT] = {"recording the crash",
                           "INSERT INTO watch_crashes (crashed_run_id, recorded_by_run, study_uid,"
                           " file_path, study_dir, phase, signal, signal_name, file_count,"
                           " file_bytes, files_changed_unix, files_changed_at, recorded_at)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
                           " strftime('%Y-%m-%dT%H:%M:%fZ', ?11, 'unixepoch'), " HS_SQL_TIME ")"},
    [W_CRASHED - Q_COUNT] = {"looking up earlier crashes",
                             "SELECT crashed_run_id, signal FROM watch_crashes WHERE study_uid = ?"
                             " AND file_count = ? AND files_changed_unix = ?"
                             " ORDER BY watch_crash_id DESC LIMIT 1"},
    [W_FILE_CRASHED - Q_COUNT] = {"looking up earlier crashes",
                                  "SELECT crashed_run_id, signal FROM watch_crashes WHERE file_path = ?"
                                  " AND file_bytes = ? AND files_changed_unix = ?"
                                  " ORDER BY watch_crash_id DESC LIMIT 1"},
    [W_REVIEW - Q_COUNT] = {"recording the review file",
                  "INSERT INTO review_files (verdict_id, path, sha256, pages, slice_pages, bytes,"
                  " key_slice_id, saliency, dicom_path, dicom_sha256, dicom_bytes, dicom_study_uid,"
                  " dicom_series_uid, dicom_sop_uid, created_at)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
                  " CASE WHEN ?5 > 0 THEN (SELECT key_slice_id FROM verdicts WHERE verdict_id = ?1) END,"
                  " ?7, ?8, ?9, ?10, ?11, ?12, ?13, " HS_SQL_TIME ")"},
    [V_RUN_BEGIN - Q_COUNT] = {"recording the validation run",
                               HS_SQL_RUN_BEGIN(", purpose", ", 'validation'")},
    [V_SUPERSEDE - Q_COUNT] = {"superseding the earlier verdict",
                               "UPDATE verdicts SET superseded_by = ?1, superseded_at = "
                               "strftime('%Y-%m-%dT%H:%M:%fZ', ?2, 'unixepoch')"
                               " WHERE study_id = ?3 AND superseded_by IS NULL"
                               " AND purpose = 'production'"
                               " AND (SELECT purpose FROM runs WHERE run_id = ?4) = 'production'"},
    [V_VERDICT - Q_COUNT] = {"recording the verdict",
                             "INSERT INTO verdicts (verdict_id, reading_id, study_id, verdict,"
                             " probability, threshold, confidence, confidence_label, key_slice_id,"
                             " key_slice_instance, decisive_series_id, scored_slices, reason,"
                             " model_sha256, recorded_at, purpose)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " HS_SQL_TIME ","
                             " (SELECT purpose FROM runs WHERE run_id = ?))"},
    [V_ALREADY_READ - Q_COUNT] = {"looking up earlier readings",
                                  "SELECT EXISTS (SELECT 1 FROM verdicts AS v"
                                  " JOIN studies AS s ON s.study_id = v.study_id"
                                  " JOIN readings AS r ON r.reading_id = v.reading_id"
                                  " WHERE s.study_uid = ? AND r.instances_sha256 = ?"
                                  " AND v.model_sha256 = ? AND v.superseded_by IS NULL"
                                  " AND v.purpose = 'production')"},
    [V_LABEL - Q_COUNT] = {"recording a validation label",
                           "INSERT INTO validation_labels (run_id, labels_file, line, study_key,"
                           " sop_instance_uid, label, subtypes, verdict_id, recorded_at)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, " HS_SQL_TIME ")"},
    [N_NOTIFICATION - Q_COUNT] = {"recording the --on-positive command",
                                  "INSERT INTO notifications (verdict_id, command, started_at,"
                                  " finished_at, outcome, exit_status, signal, timeout_s, message)"
                                  " VALUES (?, ?, " HS_SQL_TIME ", " HS_SQL_TIME ", ?, ?, ?, ?, ?)"},
    /* From schema 009 on: what each reading saw, and who outranks whom. */
    [I_INSTANCE - Q_COUNT] = {"recording an instance of the reading",
                              "INSERT INTO reading_instances (reading_id, instance_key,"
                              " frame_number, file_path, file_size, file_sha256, lossy, series_read)"
                              " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE"
                              " SET series_read = max(series_read, excluded.series_read)"},
    [I_CURRENT - Q_COUNT] = {"looking up the current verdict",
                             "SELECT v.verdict_id, v.reading_id, v.verdict = 'hemorrhage',"
                             " (SELECT count(*) FROM reading_instances AS i"
                             "  WHERE i.reading_id = v.reading_id AND i.series_read = 1)"
                             " FROM verdicts AS v WHERE v.study_id = ? AND v.superseded_by IS NULL"
                             " AND v.outranked_by IS NULL AND v.purpose = 'production'"},
    [I_COVER - Q_COUNT] = {"comparing what two readings saw",
                           "SELECT coalesce(sum(NOT EXISTS (SELECT 1 FROM reading_instances AS n"
                           "  WHERE n.reading_id = ?2 AND n.instance_key = o.instance_key"
                           "  AND n.frame_number = o.frame_number AND n.series_read = 1)), 0),"
                           " coalesce(sum(EXISTS (SELECT 1 FROM reading_instances AS n"
                           "  WHERE n.reading_id = ?2 AND n.instance_key = o.instance_key"
                           "  AND n.frame_number = o.frame_number AND n.series_read = 1"
                           "  AND n.lossy > o.lossy)), 0)"
                           " FROM reading_instances AS o WHERE o.reading_id = ?1 AND o.series_read = 1"},
    [I_VERDICT - Q_COUNT] = {"recording the verdict",
                             "INSERT INTO verdicts (verdict_id, reading_id, study_id, verdict,"
                             " probability, threshold, confidence, confidence_label, key_slice_id,"
                             " key_slice_instance, decisive_series_id, scored_slices, reason,"
                             " model_sha256, recorded_at, purpose, outranked_by, outranked_reason)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " HS_SQL_TIME ","
                             " (SELECT purpose FROM runs WHERE run_id = ?), ?, ?)"},
    [I_KNOWN - Q_COUNT] = {"listing the files of a study read before",
                           "SELECT i.file_path FROM reading_instances AS i"
                           " JOIN readings AS r ON r.reading_id = i.reading_id"
                           " JOIN studies AS s ON s.study_id = r.study_id"
                           " JOIN runs AS u ON u.run_id = r.run_id"
                           " WHERE s.study_uid = ?1 AND u.purpose = 'production'"
                           " UNION SELECT dest_path FROM watch_files WHERE study_uid = ?1"
                           " AND action = 'done' AND state = 'finished' ORDER BY 1"},
    [I_FUTURE_ADD - Q_COUNT] = {"recording a file changed in the future",
                                "INSERT INTO watch_future_files (file_path, size_bytes, changed_unix,"
                                " first_seen_unix, first_seen_at, run_id)"
                                " VALUES (?1, ?2, ?3, ?4, strftime('%Y-%m-%dT%H:%M:%fZ', ?4,"
                                " 'unixepoch'), ?5) ON CONFLICT DO NOTHING RETURNING 1"},
    [I_FUTURE_GET - Q_COUNT] = {"looking up a file changed in the future",
                                "SELECT CAST(round(first_seen_unix * 1000) AS INTEGER)"
                                " FROM watch_future_files WHERE file_path = ? AND size_bytes = ?"
                                " AND changed_unix = ?"},
    [I_PRODUCTION - Q_COUNT] = {"looking up the run's purpose",
                                "SELECT purpose = 'production' FROM runs WHERE run_id = ?"},
    [I_STANDING - Q_COUNT] = {"looking up a verdict's standing",
                              "SELECT v.superseded_by IS NULL AND v.outranked_by IS NULL,"
                              " coalesce(v.outranked_by, 0), coalesce(v.superseded_by, 0),"
                              " coalesce(v.outranked_reason, ''),"
                              " coalesce((SELECT verdict FROM verdicts AS o"
                              "  WHERE o.verdict_id = v.outranked_by), '')"
                              " FROM verdicts AS v WHERE v.verdict_id = ?"},
};

struct hs_audit {
    sqlite3 *db;
    char *path;
    int version; /* the schema version it was opened at */
    sqlite3_stmt *stmt[W_END];
};

/* ---- errors ----------------------------------------------------------------- */

/* What an SQLite result code means for the caller. */
static hs_status status_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return HS_ERR_NOMEM;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
        return HS_ERR_ARG; /* the values given break the schema's rules */
    case SQLITE_ERROR:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_SCHEMA:
    case SQLITE_FORMAT:
        return HS_ERR_FORMAT; /* the file is not the database we expect */
    default:
        return HS_ERR_IO; /* locks, disk, permissions */
    }
}

/* Fails with SQLite's message for rc, naming the database and the step. */
static hs_status db_fail(sqlite3 *db, const char *path, int rc, const char *what,
                         hs_error *err)
{
    return hs_fail(err, status_of(rc), "audit database %s: %s: %s", path, what,
                   db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* ---- running the prepared statements ------------------------------------------ */

static hs_status prepare_later(hs_audit *a, int q, hs_error *err);

static const char *audit_what(int q)
{
    return q < Q_COUNT ? audit_query[q].what : later_query[q - Q_COUNT].what;
}

/* Statement q in *out: the later schema steps' statements are prepared
 * here on first use. */
static hs_status audit_statement(hs_audit *a, int q, sqlite3_stmt **out, hs_error *err)
{
    if (q >= Q_COUNT && a->stmt[q] == NULL) {
        hs_status ps = prepare_later(a, q, err);
        if (ps != HS_OK)
            return ps;
    }
    *out = a->stmt[q];
    return HS_OK;
}

/* Binds the arguments to statement q, one per letter of types, runs it to
 * the end and resets it. The letters:
 *   s  const char *, text (NULL pointer: NULL)
 *   t  const char *, text, or NULL when NULL or "" (DICOM's "absent")
 *   i  int
 *   l  long long
 *   L  long long, NULL unless > 0 (a row id, or none)
 *   j  const int *, NULL when the pointer is NULL
 *   J  const long long *, NULL when the pointer is NULL
 *   d  double, NULL when NaN or infinite (SQLite would store NaN as NULL
 *      anyway; this says so)
 *   p  double, NULL unless > 0 (the structs' "0 when unknown")
 * When the statement returns a row and first is not NULL, *first receives
 * its first column. */
static hs_status vexec(hs_audit *a, hs_error *err, int q, long long *cols, int n_cols,
                       const char *types, va_list ap);

static hs_status exec(hs_audit *a, hs_error *err, int q, long long *first, const char *types,
                      ...)
{
    va_list ap;
    va_start(ap, types);
    hs_status st = vexec(a, err, q, first, first != NULL, types, ap);
    va_end(ap);
    return st;
}

/* exec with the first n_cols columns of the first row into cols (left as
 * they were when there is no row). */
static hs_status exec_row(hs_audit *a, hs_error *err, int q, long long *cols, int n_cols,
                          const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    hs_status st = vexec(a, err, q, cols, n_cols, types, ap);
    va_end(ap);
    return st;
}

static hs_status vexec(hs_audit *a, hs_error *err, int q, long long *cols, int n_cols,
                       const char *types, va_list ap)
{
    sqlite3_stmt *st = NULL;
    hs_status ps = audit_statement(a, q, &st, err);
    if (ps != HS_OK)
        return ps;
    if ((int)strlen(types) != sqlite3_bind_parameter_count(st))
        return hs_fail(err, HS_ERR_ARG, "audit database %s: %s: %d values for %d parameters "
                       "(a bug in audit.c)", a->path, audit_what(q), (int)strlen(types),
                       sqlite3_bind_parameter_count(st));
    int rc = SQLITE_OK;
    for (int i = 1; types[i - 1] != '\0' && rc == SQLITE_OK; i++) {
        switch (types[i - 1]) {
        case 's':
        case 't': {
            const char *s = va_arg(ap, const char *);
            if (s == NULL || (types[i - 1] == 't' && s[0] == '\0'))
                rc = sqlite3_bind_null(st, i);
            else
                rc = sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
            break;
        }
        case 'i':
            rc = sqlite3_bind_int(st, i, va_arg(ap, int));
            break;
        case 'l':
        case 'L': {
            long long v = va_arg(ap, long long);
            rc = types[i - 1] == 'L' && v <= 0 ? sqlite3_bind_null(st, i)
                                               : sqlite3_bind_int64(st, i, v);
            break;
        }
        case 'j': {
            const int *v = va_arg(ap, const int *);
            rc = v == NULL ? sqlite3_bind_null(st, i) : sqlite3_bind_int(st, i, *v);
            break;
        }
        case 'J': {
            const long long *v = va_arg(ap, const long long *);
            rc = v == NULL ? sqlite3_bind_null(st, i) : sqlite3_bind_int64(st, i, *v);
            break;
        }
        case 'd':
        case 'p': {
            double v = va_arg(ap, double);
            int known = isfinite(v) && (types[i - 1] == 'd' || v > 0);
            rc = known ? sqlite3_bind_double(st, i, v) : sqlite3_bind_null(st, i);
            break;
        }
        default:
            rc = SQLITE_MISUSE;
        }
    }
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            for (int c = 0; c < n_cols; c++)
                cols[c] = sqlite3_column_int64(st, c);
            n_cols = 0;
        }
    }
    hs_status status = HS_OK;
    if (rc != SQLITE_DONE)
        status = db_fail(a->db, a->path, rc, audit_what(q), err);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st); /* no pointer to the caller's strings stays behind */
    return status;
}

/* ---- opening and upgrading ----------------------------------------------------- */

/* The integer a one-value PRAGMA or query returns, into *out. */
static int query_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* What the file says about itself: schema version, application id and
 * whether anything at all is defined in it. Reads only. */
typedef struct {
    int version, application_id, objects;
} db_state;

static hs_status read_state(sqlite3 *db, const char *path, db_state *s, hs_error *err)
{
    int rc = query_int(db, "PRAGMA user_version", &s->version);
    if (rc == SQLITE_OK)
        rc = query_int(db, "PRAGMA application_id", &s->application_id);
    if (rc == SQLITE_OK)
        rc = query_int(db, "SELECT count(*) FROM sqlite_master", &s->objects);
    if ((rc & 0xff) == SQLITE_NOTADB)
        return hs_fail(err, HS_ERR_FORMAT, "%s: not an SQLite database, so not a hemoscan audit "
                       "database", path);
    if (rc != SQLITE_OK)
        return db_fail(db, path, rc, "reading the schema version", err);
    return HS_OK;
}

/* Refuses what this build must not write: a newer schema, another
 * program's database. */
static hs_status check_state(const db_state *s, const char *path, int newest,
                             hs_error *err)
{
    if (s->version > newest)
        return hs_fail(err, HS_ERR_VERSION,
                       "%s: audit database schema version %d is newer than this hemoscan %s "
                       "writes (%d); use a newer hemoscan, the file was left untouched",
                       path, s->version, PACKAGE_VERSION, newest);
    if (s->version == 0 && s->objects > 0)
        return hs_fail(err, HS_ERR_FORMAT,
                       "%s: an SQLite database with tables but no schema version, not a "
                       "hemoscan audit database; the file was left untouched", path);
    if (s->version > 0 && s->application_id != HS_AUDIT_APPLICATION_ID)
        return hs_fail(err, HS_ERR_FORMAT,
                       "%s: not a hemoscan audit database (application_id %#x, expected %#x); "
                       "the file was left untouched",
                       path, (unsigned)s->application_id, (unsigned)HS_AUDIT_APPLICATION_ID);
    return HS_OK;
}

/* Runs one statement without parameters (a PRAGMA, a transaction verb,
 * a whole schema file). */
static hs_status run_sql(sqlite3 *db, const char *path, const char *sql, const char *what,
                         hs_error *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? HS_OK : db_fail(db, path, rc, what, err);
}

static void audit_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db)) /* some errors have rolled back already */
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* Brings the database from its version to the newest of steps, in one
 * transaction, looking again once the write lock is held (another process
 * may have upgraded it meanwhile). */
static hs_status migrate(sqlite3 *db, const char *path, const hs_audit_migration *steps,
                         int n, hs_error *err)
{
    hs_status st = run_sql(db, path, "BEGIN IMMEDIATE", "starting the schema upgrade", err);
    if (st != HS_OK)
        return st;
    db_state s;
    st = read_state(db, path, &s, err);
    if (st == HS_OK)
        st = check_state(&s, path, n, err);
    for (int v = s.version + 1; st == HS_OK && v <= n; v++) {
        char what[160], pragmas[128];
        snprintf(what, sizeof what, "applying schema step %.64s", steps[v - 1].name);
        /* Integers of this build's own table, not data: formatting is safe. */
        snprintf(pragmas, sizeof pragmas, "PRAGMA user_version = %d; PRAGMA application_id = %d",
                 v, HS_AUDIT_APPLICATION_ID);
        st = run_sql(db, path, steps[v - 1].sql, what, err);
        if (st == HS_OK)
            st = run_sql(db, path, pragmas, what, err);
    }
    if (st == HS_OK)
        st = run_sql(db, path, "COMMIT", "committing the schema upgrade", err);
    if (st != HS_OK)
        audit_rollback(db);
    return st;
}

/* Creates path with mode 0600 when it does not exist; leaves an existing
 * file alone. */
static hs_status create_private(const char *path, hs_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        return HS_OK;
    }
    if (errno == EEXIST)
        return HS_OK;
    return hs_fail(err, HS_ERR_IO, "%s: cannot create the audit database: %s", path,
                   strerror(errno));
}

/* The connection's settings; the file's version state was checked before. */
static hs_status audit_configure(sqlite3 *db, const char *path, hs_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        rc = mode != NULL && strcmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_CANTOPEN)
        return hs_fail(err, HS_ERR_IO, "%s: the audit database cannot use write-ahead logging "
                       "(WAL); keep it on a local file system", path);
    if (rc != SQLITE_OK)
        return db_fail(db, path, rc, "switching to write-ahead logging", err);
    hs_status s = run_sql(db, path, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL",
                          "setting up the connection", err);
    if (s != HS_OK)
        return s;
    int fk = 0;
    rc = query_int(db, "PRAGMA foreign_keys", &fk);
    if (rc != SQLITE_OK || fk != 1)
        return hs_fail(err, HS_ERR_IO, "%s: this SQLite does not enforce foreign keys", path);
    return HS_OK;
}

hs_status hs_audit_open_schema(const char *path, const hs_audit_migration *steps, int n,
                               hs_audit **out, hs_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (path == NULL || steps == NULL || n < 1 || out == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_open: NULL argument or no schema");
    for (int i = 0; i < n; i++)
        if (steps[i].version != i + 1 || steps[i].sql == NULL || steps[i].name == NULL)
            return hs_fail(err, HS_ERR_ARG, "hs_audit_open: schema step %d is not version %d",
                           i, i + 1);
    hs_status st = create_private(path, err);
    if (st != HS_OK)
        return st;
    hs_audit *a = calloc(1, sizeof *a);
    if (a == NULL || (a->path = strdup(path)) == NULL) {
        free(a);
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory opening the audit database", path);
    }
    int rc = sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK) {
        st = hs_fail(err, rc == SQLITE_NOMEM ? HS_ERR_NOMEM : HS_ERR_IO,
                     "%s: cannot open the audit database: %s", path,
                     a->db != NULL ? sqlite3_errmsg(a->db) : sqlite3_errstr(rc));
        hs_audit_close(a);
        return st;
    }
    sqlite3_busy_timeout(a->db, HS_AUDIT_BUSY_TIMEOUT_MS);
    /* Look before touching anything: WAL mode writes to the file header. */
    db_state s;
    st = read_state(a->db, path, &s, err);
    if (st == HS_OK)
        st = check_state(&s, path, n, err);
    if (st == HS_OK)
        st = audit_configure(a->db, path, err);
    if (st == HS_OK && s.version < n)
        st = migrate(a->db, path, steps, n, err);
    a->version = n;
    for (int q = 0; st == HS_OK && q < Q_COUNT; q++) {
        rc = sqlite3_prepare_v3(a->db, audit_query[q].sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &a->stmt[q], NULL);
        if (rc != SQLITE_OK)
            st = db_fail(a->db, path, rc, "checking the schema", err);
    }
    if (st != HS_OK) {
        hs_audit_close(a);
        return st;
    }
    *out = a;
    return HS_OK;
}

hs_status hs_audit_open(const char *path, hs_audit **out, hs_error *err)
{
    return hs_audit_open_schema(path, hs_audit_schema, hs_audit_schema_count, out, err);
}

void hs_audit_close(hs_audit *a)
{
    if (a == NULL)
        return;
    for (int q = 0; q < W_END; q++)
        sqlite3_finalize(a->stmt[q]);
    sqlite3_close(a->db);
    free(a->path);
    free(a);
}

int hs_audit_schema_version(hs_audit *a)
{
    int v = -1;
    if (a == NULL || query_int(a->db, "PRAGMA user_version", &v) != SQLITE_OK)
        return -1;
    return v;
}

/* ---- runs ---------------------------------------------------------------------- */

/* The run's row, by statement q (Q_RUN_BEGIN or V_RUN_BEGIN). */
static hs_status run_insert(hs_audit *a, int q, const hs_audit_run *run, long long *run_id,
                            hs_error *err)
{
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0'; /* gethostname may not terminate a cut name */
    *run_id = 0;
    return exec(a, err, q, run_id, "dssttttt", hs_clock_now(), host, PACKAGE_VERSION, run->mode,
                run->command, run->model_path, run->model_sha256, run->model_name);
}

hs_status hs_audit_run_begin(hs_audit *a, const hs_audit_run *run, long long *run_id,
                             hs_error *err)
{
    if (a == NULL || run == NULL || run_id == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_run_begin: NULL argument");
    return run_insert(a, Q_RUN_BEGIN, run, run_id, err);
}

hs_status hs_audit_run_end(hs_audit *a, long long run_id, int exit_status, hs_error *err)
{
    if (a == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_run_end: NULL argument");
    hs_status st = exec(a, err, Q_RUN_END, NULL, "dil", hs_clock_now(), exit_status, run_id);
    if (st == HS_OK && sqlite3_changes(a->db) != 1)
        return hs_fail(err, HS_ERR_ARG, "audit database %s: run %lld does not exist or has "
                       "ended already", a->path, run_id);
    return st;
}

/* ---- studies ------------------------------------------------------------------- */

static const char *sort_name(hs_sort_method m)
{
    switch (m) {
    case HS_SORT_POSITION:
        return "position";
    case HS_SORT_INSTANCE:
        return "instance_number";
    case HS_SORT_FILENAME:
        return "file_name";
    }
    return "unknown"; /* refused by the schema's CHECK */
}

/* The indexes inside a reading point where they should: everything the
 * database cannot check by itself. */
static hs_status check_reading(const hs_study_reading *r, hs_error *err)
{
    const hs_study *s = &r->study;
    if (s->n_series < 0 || (s->n_series > 0 && s->series == NULL) || s->n_skipped < 0 ||
        (s->n_skipped > 0 && s->skipped == NULL) || r->n_results < 0 ||
        (r->n_results > 0 && r->result == NULL) || r->decisive < -1 ||
        r->decisive >= r->n_results)
        return hs_fail(err, HS_ERR_ARG, "%s: inconsistent reading (counts or decisive series)",
                       r->dir);
    for (int i = 0; i < s->n_series; i++)
        if (s->series[i].n_slices < 0 || (s->series[i].n_slices > 0 && s->series[i].slices == NULL))
            return hs_fail(err, HS_ERR_ARG, "%s: series %d has no slice array", r->dir, i);
    for (int k = 0; k < r->n_results; k++) {
        const hs_series_result *res = &r->result[k];
        if (res->series_index < 0 || res->series_index >= s->n_series)
            return hs_fail(err, HS_ERR_ARG, "%s: result %d names series %d of %d", r->dir, k,
                           res->series_index, s->n_series);
        int n = s->series[res->series_index].n_slices;
        if ((n > 0 && res->slice == NULL) || res->verdict.key_slice < -1 ||
            res->verdict.key_slice >= n)
            return hs_fail(err, HS_ERR_ARG, "%s: result %d: no slice results or key slice %d "
                           "outside its %d slices", r->dir, k, res->verdict.key_slice, n);
    }
    if (r->decisive >= 0) {
        int n = s->series[r->result[r->decisive].series_index].n_slices;
        if (r->verdict.key_slice < -1 || r->verdict.key_slice >= n)
            return hs_fail(err, HS_ERR_ARG, "%s: study key slice %d outside the decisive "
                           "series' %d slices", r->dir, r->verdict.key_slice, n);
    } else if (r->verdict.key_slice >= 0) {
        return hs_fail(err, HS_ERR_ARG, "%s: a key slice without a decisive series", r->dir);
    }
    return HS_OK;
}

static hs_status write_model(hs_audit *a, const hs_model *m, hs_error *err)
{
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)m->provenance.seed);
    const hs_provenance *p = &m->provenance;
    hs_status st = exec(a, err, Q_MODEL, NULL, "sditttsitp", m->sha256, (double)m->threshold,
                        m->n_members, p->date, p->version, p->data_sha256, seed, p->epochs,
                        p->note, hs_clock_now());
    for (int c = 0; st == HS_OK && c < m->n_classes && c < HS_MODEL_MAX_CLASSES; c++)
        st = exec(a, err, Q_MODEL_CLASS, NULL, "sis", m->sha256, c, m->class_name[c]);
    return st;
}

/* Every series of the scan; their row ids go to ids. */
static hs_status write_series(hs_audit *a, long long reading_id, const hs_study *s,
                              long long *ids, hs_error *err)
{
    hs_status st = HS_OK;
    for (int i = 0; st == HS_OK && i < s->n_series; i++) {
        const hs_series *se = &s->series[i];
        st = exec(a, err, Q_SERIES, &ids[i], "listitippdiisti", reading_id, i,
                  se->series_uid, se->description, se->chosen != 0, se->why, se->n_slices,
                  se->slice_thickness_mm, se->spacing_mm, se->gantry_tilt_deg,
                  se->missing_slices, se->inconsistent_spacing != 0,
                  sort_name(se->sort_method), se->sort_note, se->contrast != 0);
    }
    return st;
}

/* The slices of result k and its series verdict. *study_key receives the
 * row id of the study's key slice when k is the decisive result. */
static hs_status write_result(hs_audit *a, const hs_study_reading *r, int k,
                              long long series_id, long long *study_key, hs_error *err)
{
    const hs_series_result *res = &r->result[k];
    const hs_series *se = &r->study.series[res->series_index];
    long long key = 0;
    hs_status st = HS_OK;
    for (int j = 0; st == HS_OK && j < se->n_slices; j++) {
        const hs_dicom_header *h = &se->slices[j].header;
        const hs_slice_result *sr = &res->slice[j];
        double position = se->sort_method == HS_SORT_POSITION
                              ? se->slices[j].position_along_normal : NAN;
        long long id = 0;
        /* 1-based as DICOM counts frames; NULL for a single-frame file */
        int frame_number = h->frame + 1;
        st = exec(a, err, Q_SLICE, &id, "lidjtsdtj", series_id, j, position,
                  h->has_instance_number ? &h->instance_number : NULL, h->sop_uid, h->path,
                  (double)sr->probability, isnan(sr->probability) ? sr->error : NULL,
                  h->frames > 1 ? &frame_number : NULL);
        if (j == res->verdict.key_slice)
            key = id;
        if (k == r->decisive && j == r->verdict.key_slice)
            *study_key = id;
    }
    if (st != HS_OK)
        return st;
    const hs_study_verdict *v = &res->verdict;
    return exec(a, err, Q_SERIES_VERDICT, NULL, "isddtLitl", k, hs_verdict_name(v->verdict),
                v->probability, v->confidence, v->confidence_label, key, v->n_scored,
                v->reason, series_id);
}

/* Every accepted instance of the scan (schema 009): what the reading
 * found, and which of it it read (the series scored). */
static hs_status write_instances(hs_audit *a, long long reading_id, const hs_study_reading *r,
                                 hs_error *err)
{
    const hs_study *s = &r->study;
    hs_status st = HS_OK;
    for (int i = 0; st == HS_OK && i < s->n_series; i++) {
        int read = 0;
        for (int k = 0; k < r->n_results && !read; k++)
            read = r->result[k].series_index == i;
        for (int j = 0; st == HS_OK && j < s->series[i].n_slices; j++) {
            const hs_dicom_header *h = &s->series[i].slices[j].header;
            st = exec(a, err, I_INSTANCE, NULL, "lsislsii", reading_id,
                      h->sop_uid[0] != '\0' ? h->sop_uid : h->path, h->frames > 1 ? h->frame + 1 : 0,
                      h->path, h->file_size, h->file_sha256, h->lossy != 0, read);
        }
    }
    return st;
}

/* Whether the new reading (reading_id, verdict v) outranks nothing: the
 * study's current production verdict stands when it read instances the
 * new reading did not, or read them in better copies, unless the new verdict is
 * a hemorrhage and the current one is not (schema 009). *outranked_by
 * receives the verdict that stands (0: the new one supersedes), reason why. */
static hs_status standing_of(hs_audit *a, long long run_id, long long study_id, long long reading_id,
                             hs_verdict v, long long *outranked_by, char *reason, size_t cap,
                             hs_error *err)
{
    *outranked_by = 0;
    reason[0] = '\0';
    long long cur[4] = {0, 0, 0, 0}, purpose = 0;
    hs_status st = exec(a, err, I_PRODUCTION, &purpose, "l", run_id);
    if (st != HS_OK || purpose == 0)
        return st;
    st = exec_row(a, err, I_CURRENT, cur, 4, "l", study_id);
    /* none, or one recorded before instances were (it is superseded as before) */
    if (st != HS_OK || cur[0] == 0 || cur[3] == 0)
        return st;
    long long cover[2] = {0, 0};
    st = exec_row(a, err, I_COVER, cover, 2, "ll", cur[1], reading_id);
    if (st != HS_OK || (cover[0] == 0 && cover[1] == 0))
        return st;
    if (v == HS_VERDICT_HEMORRHAGE && cur[2] == 0)
        return HS_OK; /* a positive is never held back by a fuller negative */
    *outranked_by = cur[0];
    if (cover[1] == 0)
        snprintf(reason, cap, "read %lld of the %lld instances verdict %lld read",
                 cur[3] - cover[0], cur[3], cur[0]);
    else
        snprintf(reason, cap, "read %lld of the %lld instances verdict %lld read, %lld of them in "
                 "lossy copies where it read lossless ones",
                 cur[3] - cover[0], cur[3], cur[0], cover[1]);
    return HS_OK;
}

/* The study's verdict, superseding the current one of the same study, or
 * outranked by it (standing_of). */
static hs_status write_verdict(hs_audit *a, long long run_id, const hs_study_reading *r,
                               const hs_model *model, long long study_id, long long reading_id,
                               const long long *series_ids, long long key_slice,
                               long long *verdict_id, hs_error *err)
{
    const hs_study_verdict *v = &r->verdict;
    long long decisive = 0;
    const int *key_instance = NULL;
    if (r->decisive >= 0) {
        const hs_series_result *res = &r->result[r->decisive];
        decisive = series_ids[res->series_index];
        if (v->key_slice >= 0) {
            const hs_dicom_header *h =
                &r->study.series[res->series_index].slices[v->key_slice].header;
            key_instance = h->has_instance_number ? &h->instance_number : NULL;
        }
    }
    double now = hs_clock_now();
    int purposes = a->version >= HS_AUDIT_VERSION_VALIDATION;
    hs_status st = exec(a, err, Q_NEXT_VERDICT, verdict_id, "");
    if (st == HS_OK && a->version >= HS_AUDIT_VERSION_IDENTITY) {
        long long outranked_by = 0;
        char why[300];
        st = standing_of(a, run_id, study_id, reading_id, v->verdict, &outranked_by, why,
                         sizeof why, err);
        if (st == HS_OK && outranked_by == 0)
            st = exec(a, err, V_SUPERSEDE, NULL, "ldll", *verdict_id, now, study_id, run_id);
        if (st == HS_OK)
            st = exec(a, err, I_VERDICT, NULL, "lllsdddtLjLitsdlLt", *verdict_id, reading_id,
                      study_id, hs_verdict_name(v->verdict), v->probability, v->threshold,
                      v->confidence, v->confidence_label, key_slice, key_instance, decisive,
                      v->n_scored, v->reason, model->sha256, now, run_id, outranked_by,
                      outranked_by > 0 ? why : NULL);
        return st;
    }
    if (st == HS_OK && purposes)
        st = exec(a, err, V_SUPERSEDE, NULL, "ldll", *verdict_id, now, study_id, run_id);
    else if (st == HS_OK)
        st = exec(a, err, Q_SUPERSEDE, NULL, "ldl", *verdict_id, now, study_id);
    /* the same values, and the run whose purpose the verdict takes */
    if (st == HS_OK)
        st = exec(a, err, purposes ? V_VERDICT : Q_VERDICT, NULL,
                  purposes ? "lllsdddtLjLitsdl" : "lllsdddtLjLitsd", *verdict_id, reading_id,
                  study_id, hs_verdict_name(v->verdict), v->probability, v->threshold,
                  v->confidence, v->confidence_label, key_slice, key_instance, decisive,
                  v->n_scored, v->reason, model->sha256, now, run_id);
    return st;
}

/* Everything of one reading, inside the caller's transaction. */
static hs_status write_reading(hs_audit *a, long long run_id, const hs_study_reading *r,
                               const hs_model *model, long long *verdict_id, hs_error *err)
{
    const hs_study *s = &r->study;
    long long study_id = 0, reading_id = 0, key_slice = 0;
    hs_status st = write_model(a, model, err);
    if (st == HS_OK)
        st = exec(a, err, Q_STUDY, &study_id, "ttttp", s->study_uid, s->accession,
                  s->patient_id, s->study_date, r->finished);
    if (st == HS_OK)
        st = exec(a, err, Q_READING, &reading_id, "llsttttitpp", run_id, study_id, r->dir,
                  s->accession, s->patient_id, s->study_date, r->instances_sha256,
                  s->n_files, s->why, r->started, r->finished);
    if (st != HS_OK)
        return st;
    long long *series_ids = calloc(s->n_series > 0 ? (size_t)s->n_series : 1, sizeof *series_ids);
    if (series_ids == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory recording a study", a->path);
    st = write_series(a, reading_id, s, series_ids, err);
    for (int k = 0; st == HS_OK && k < r->n_results; k++)
        st = write_result(a, r, k, series_ids[r->result[k].series_index], &key_slice, err);
    for (int i = 0; st == HS_OK && i < s->n_skipped; i++)
        st = exec(a, err, Q_SKIPPED, NULL, "lsst", reading_id, s->skipped[i].path,
                  s->skipped[i].verdict, s->skipped[i].reason);
    if (st == HS_OK && a->version >= HS_AUDIT_VERSION_IDENTITY)
        st = write_instances(a, reading_id, r, err);
    if (st == HS_OK)
        st = write_verdict(a, run_id, r, model, study_id, reading_id, series_ids, key_slice,
                           verdict_id, err);
    free(series_ids);
    return st;
}

hs_status hs_audit_record_study(hs_audit *a, long long run_id, const hs_study_reading *r,
                                const hs_model *model, long long *verdict_id, hs_error *err)
{
    if (a == NULL || r == NULL || model == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_record_study: NULL argument");
    hs_status st = check_reading(r, err);
    if (st != HS_OK)
        return st;
    long long id = 0;
    st = exec(a, err, Q_BEGIN, NULL, "");
    if (st == HS_OK) {
        st = write_reading(a, run_id, r, model, &id, err);
        if (st == HS_OK)
            st = exec(a, err, Q_COMMIT, NULL, ""); /* deferred foreign keys are checked here */
        if (st != HS_OK)
            audit_rollback(a->db);
    }
    if (st != HS_OK) /* hs_fail copes with err->msg among its arguments */
        return hs_fail(err, st, "%s; study %s (%s) was not recorded", err != NULL ? err->msg : "",
                       r->study.study_uid[0] != '\0' ? r->study.study_uid : "without UID",
                       r->dir);
    if (verdict_id != NULL)
        *verdict_id = id;
    return HS_OK;
}

hs_status hs_audit_record_failure(hs_audit *a, long long run_id, const char *study_dir,
                                  const char *study_uid, const char *stage, const char *message,
                                  hs_error *err)
{
    if (a == NULL || study_dir == NULL || stage == NULL || message == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_record_failure: NULL argument");
    return exec(a, err, Q_FAILURE, NULL, "lstssd", run_id, study_dir, study_uid, stage,
                message, hs_clock_now());
}

hs_status hs_audit_already_read(hs_audit *a, const char *study_uid, const char *instances_sha256,
                                const char *model_sha256, int *found, hs_error *err)
{
    if (a == NULL || found == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_already_read: NULL argument");
    long long exists = 0;
    int q = a->version >= HS_AUDIT_VERSION_VALIDATION ? V_ALREADY_READ : Q_ALREADY_READ;
    hs_status st = exec(a, err, q, &exists, "ttt", study_uid, instances_sha256, model_sha256);
    *found = st == HS_OK && exists != 0;
    return st;
}

/* ---- the drop-folder watcher (schema step 003-watch) --------------------------- */

static hs_status prepare_later(hs_audit *a, int q, hs_error *err)
{
    int rc = sqlite3_prepare_v3(a->db, later_query[q - Q_COUNT].sql, -1,
                                SQLITE_PREPARE_PERSISTENT, &a->stmt[q], NULL);
    if (rc != SQLITE_OK)
        return db_fail(a->db, a->path, rc, later_query[q - Q_COUNT].what, err);
    return HS_OK;
}

void hs_audit_set_busy_timeout(hs_audit *a, int ms)
{
    if (a != NULL)
        sqlite3_busy_timeout(a->db, ms > 0 ? ms : 0);
}

hs_status hs_audit_watch_run_begin(hs_audit *a, long long run_id, const hs_audit_watch_run *w,
                                   hs_error *err)
{
    if (a == NULL || w == NULL || w->drop_dir == NULL || w->disposal == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_watch_run_begin: NULL argument");
    return exec(a, err, W_RUN, NULL, "lssssdi", run_id, w->drop_dir, w->done_dir,
                w->quarantine_dir, w->disposal, w->stable_age_s, w->follow != 0);
}

hs_status hs_audit_watch_run_counts(hs_audit *a, long long run_id, const hs_audit_watch_counts *c,
                                    hs_error *err)
{
    if (a == NULL || c == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_watch_run_counts: NULL argument");
    return exec(a, err, W_RUN_COUNTS, NULL, "lllllllllllll", c->passes, c->studies_read,
                c->hemorrhage, c->no_hemorrhage, c->not_assessable, c->already_read,
                c->waiting, c->failed, c->loose_files, c->files_done, c->files_deleted,
                c->files_quarantined, run_id);
}

hs_status hs_audit_loose_file(hs_audit *a, long long run_id, const char *path, long long size,
                              double mtime, const char *verdict, const char *reason, int *is_new,
                              hs_error *err)
{
    if (is_new != NULL)
        *is_new = 0;
    if (a == NULL || path == NULL || verdict == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_loose_file: NULL argument");
    hs_status st = exec(a, err, W_LOOSE, NULL, "lsldstd", run_id, path, size, mtime, verdict,
                        reason, hs_clock_now());
    if (st == HS_OK && is_new != NULL)
        *is_new = sqlite3_changes(a->db) == 1;
    return st;
}

hs_status hs_audit_plan_files(hs_audit *a, long long run_id, hs_audit_file_action *acts, int n,
                              hs_error *err)
{
    if (a == NULL || (acts == NULL && n > 0))
        return hs_fail(err, HS_ERR_ARG, "hs_audit_plan_files: NULL argument");
    hs_status st = exec(a, err, Q_BEGIN, NULL, "");
    if (st != HS_OK)
        return st;
    double now = hs_clock_now();
    for (int i = 0; st == HS_OK && i < n; i++)
        st = exec(a, err, W_PLAN, &acts[i].id, "lsssssd", run_id, acts[i].study_uid,
                  acts[i].action, acts[i].source, acts[i].dest, acts[i].reason, now);
    if (st == HS_OK)
        st = exec(a, err, Q_COMMIT, NULL, "");
    if (st != HS_OK) {
        audit_rollback(a->db);
        for (int i = 0; i < n; i++)
            acts[i].id = 0;
    }
    return st;
}

hs_status hs_audit_finish_file(hs_audit *a, long long run_id, long long id, hs_error *err)
{
    if (a == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_finish_file: NULL argument");
    return exec(a, err, W_FINISH, NULL, "dll", hs_clock_now(), run_id, id);
}

/* A copy of column c of the current row, NULL when it is NULL; *oom is set
 * when the copy cannot be made. */
static char *column_dup(sqlite3_stmt *st, int c, int *oom)
{
    const unsigned char *t = sqlite3_column_text(st, c);
    if (t == NULL)
        return NULL;
    char *s = strdup((const char *)t);
    if (s == NULL)
        *oom = 1;
    return s;
}

void hs_audit_file_actions_free(hs_audit_file_action *acts, int n)
{
    for (int i = 0; acts != NULL && i < n; i++) {
        free((char *)acts[i].study_uid);
        free((char *)acts[i].action);
        free((char *)acts[i].source);
        free((char *)acts[i].dest);
        free((char *)acts[i].reason);
    }
    free(acts);
}

hs_status hs_audit_pending_files(hs_audit *a, hs_audit_file_action **out, int *n, hs_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    if (a == NULL || out == NULL || n == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_pending_files: NULL argument");
    sqlite3_stmt *st = NULL;
    hs_status ps = audit_statement(a, W_PENDING, &st, err);
    if (ps != HS_OK)
        return ps;
    hs_audit_file_action *acts = NULL;
    int count = 0, cap = 0, oom = 0, rc;
    while (!oom && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            int grown_cap = cap > 0 ? cap * 2 : 16;
            hs_audit_file_action *grown = realloc(acts, (size_t)grown_cap * sizeof *acts);
            if (grown == NULL) {
                oom = 1;
                break;
            }
            acts = grown;
            cap = grown_cap;
        }
        hs_audit_file_action *x = &acts[count++];
        x->id = sqlite3_column_int64(st, 0);
        x->study_uid = column_dup(st, 1, &oom);
        x->action = column_dup(st, 2, &oom);
        x->source = column_dup(st, 3, &oom);
        x->dest = column_dup(st, 4, &oom);
        x->reason = column_dup(st, 5, &oom);
    }
    sqlite3_reset(st);
    if (oom) {
        hs_audit_file_actions_free(acts, count);
        return hs_fail(err, HS_ERR_NOMEM, "audit database %s: out of memory listing file moves",
                       a->path);
    }
    if (rc != SQLITE_DONE) {
        hs_audit_file_actions_free(acts, count);
        return db_fail(a->db, a->path, rc, audit_what(W_PENDING), err);
    }
    *out = acts;
    *n = count;
    return HS_OK;
}

/* The paths query q returns for study_uid (bound as ?1). */
static hs_status study_paths_query(hs_audit *a, int q, const char *study_uid, char ***paths, int *n,
                                   hs_error *err)
{
    if (paths != NULL)
        *paths = NULL;
    if (n != NULL)
        *n = 0;
    if (a == NULL || study_uid == NULL || paths == NULL || n == NULL)
        return hs_fail(err, HS_ERR_ARG, "listing a study's files: NULL argument");
    sqlite3_stmt *st = NULL;
    hs_status ps = audit_statement(a, q, &st, err);
    if (ps != HS_OK)
        return ps;
    int rc = sqlite3_bind_text(st, 1, study_uid, -1, SQLITE_STATIC);
    char **list = NULL;
    int count = 0, cap = 0, oom = 0;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (count == cap) {
            int grown_cap = cap > 0 ? cap * 2 : 16;
            char **grown = realloc(list, (size_t)grown_cap * sizeof *list);
            if (grown == NULL) {
                oom = 1;
                break;
            }
            list = grown;
            cap = grown_cap;
        }
        list[count] = column_dup(st, 0, &oom);
        if (oom)
            break;
        count++;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (oom || rc != SQLITE_DONE) {
        for (int i = 0; i < count; i++)
            free(list[i]);
        free(list);
        if (oom)
            return hs_fail(err, HS_ERR_NOMEM, "audit database %s: out of memory", a->path);
        return db_fail(a->db, a->path, rc, audit_what(q), err);
    }
    *paths = list;
    *n = count;
    return HS_OK;
}

hs_status hs_audit_study_done_files(hs_audit *a, const char *study_uid, char ***paths, int *n,
                                    hs_error *err)
{
    return study_paths_query(a, W_DONE_FILES, study_uid, paths, n, err);
}

hs_status hs_audit_study_known_files(hs_audit *a, const char *study_uid, char ***paths, int *n,
                                     hs_error *err)
{
    int q = a != NULL && a->version >= HS_AUDIT_VERSION_IDENTITY ? I_KNOWN : W_DONE_FILES;
    return study_paths_query(a, q, study_uid, paths, n, err);
}

hs_status hs_audit_study_files(hs_audit *a, const char *study_uid, char *const *given, int n_given,
                               char ***paths, int *n, int *n_added, int *read_before, hs_error *err)
{
    char **known = NULL;
    int nk = 0;
    *paths = NULL;
    *n = *n_added = *read_before = 0;
    hs_status st = study_uid[0] != '\0' ? hs_audit_study_known_files(a, study_uid, &known, &nk, err) : HS_OK;
    if (st != HS_OK)
        return st;
    *read_before = nk > 0;
    char **out = malloc((size_t)(n_given + nk + 1) * sizeof *out);
    for (int i = 0; out != NULL && i < n_given; i++)
        out[(*n)++] = given[i];
    for (int i = 0; i < nk; i++) {
        struct stat sb;
        int dup = 0;
        for (int j = 0; j < n_given && !dup; j++)
            dup = strcmp(given[j], known[i]) == 0;
        if (out != NULL && !dup && lstat(known[i], &sb) == 0 && S_ISREG(sb.st_mode)) {
            out[(*n)++] = known[i]; /* owned by out now */
            (*n_added)++;
        } else {
            free(known[i]);
        }
    }
    free(known);
    if (out == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "out of memory listing the files of study %s", study_uid);
    *paths = out;
    return HS_OK;
}

void hs_audit_study_files_free(char **paths, int n, int n_given)
{
    for (int i = n_given; paths != NULL && i < n; i++)
        free(paths[i]);
    free(paths);
}

hs_status hs_audit_verdict_standing(hs_audit *a, long long verdict_id, hs_audit_standing *out,
                                    hs_error *err)
{
    if (a == NULL || out == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_verdict_standing: NULL argument");
    memset(out, 0, sizeof *out);
    if (a->version < HS_AUDIT_VERSION_IDENTITY) {
        long long cur = 0;
        hs_status st = exec(a, err, Q_SUPERSEDED_BY, &cur, "l", verdict_id);
        out->superseded_by = cur;
        out->current = st == HS_OK && cur == 0;
        return st;
    }
    sqlite3_stmt *st = NULL;
    hs_status ps = audit_statement(a, I_STANDING, &st, err);
    if (ps != HS_OK)
        return ps;
    int rc = sqlite3_bind_int64(st, 1, verdict_id);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        out->current = sqlite3_column_int(st, 0);
        out->outranked_by = sqlite3_column_int64(st, 1);
        out->superseded_by = sqlite3_column_int64(st, 2);
        const unsigned char *why = sqlite3_column_text(st, 3), *v = sqlite3_column_text(st, 4);
        snprintf(out->reason, sizeof out->reason, "%s", why != NULL ? (const char *)why : "");
        snprintf(out->outranked_verdict, sizeof out->outranked_verdict, "%s",
                 v != NULL ? (const char *)v : "");
        rc = sqlite3_step(st);
    }
    hs_status status = rc == SQLITE_DONE ? HS_OK
                                         : db_fail(a->db, a->path, rc, audit_what(I_STANDING), err);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return status; /* no such verdict: all zero */
}

/* ---- review pictures (schema step 004-review) ------------------------------------- */

hs_status hs_audit_record_review(hs_audit *a, long long verdict_id, const char *path, const char *sha256,
                                 int pages, int slice_pages, long long bytes, const char *saliency,
                                 const hs_audit_review_dicom *dicom, hs_error *err)
{
    if (a == NULL || path == NULL || sha256 == NULL || saliency == NULL ||
        (dicom != NULL && (dicom->path == NULL || dicom->sha256 == NULL || dicom->study_uid == NULL ||
                           dicom->series_uid == NULL || dicom->sop_uid == NULL)))
        return hs_fail(err, HS_ERR_ARG, "hs_audit_record_review: NULL argument");
    const hs_audit_review_dicom none = {NULL, NULL, 0, NULL, NULL, NULL};
    const hs_audit_review_dicom *d = dicom != NULL ? dicom : &none;
    return exec(a, err, W_REVIEW, NULL, "lssiilsssLsssd", verdict_id, path, sha256, pages, slice_pages, bytes,
                saliency, d->path, d->sha256, d->bytes, d->study_uid, d->series_uid, d->sop_uid, hs_clock_now());
}

/* ---- studies a watcher died reading (schema step 006-watch-crashes) --------- */

hs_status hs_audit_record_watch_crash(hs_audit *a, long long run_id, const hs_audit_watch_crash *c,
                                      hs_error *err)
{
    if (a == NULL || c == NULL || c->study_dir == NULL || c->phase == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_record_watch_crash: NULL argument");
    return exec(a, err, W_CRASH, NULL, "llttssisiJdd", c->crashed_run_id, run_id, c->study_uid,
                c->file_path, c->study_dir, c->phase, c->signal,
                c->signal_name != NULL ? c->signal_name : "signal", c->n_files,
                c->file_path != NULL ? &c->bytes : NULL, c->newest, hs_clock_now());
}

/* The latest crash of query q (W_CRASHED or W_FILE_CRASHED) with this key,
 * count or size, and change time. */
static hs_status crash_lookup(hs_audit *a, int q, const char *key, long long count, double newest,
                              long long *crashed_run, int *signal, hs_error *err)
{
    *crashed_run = 0;
    *signal = 0;
    sqlite3_stmt *st = NULL;
    hs_status ps = audit_statement(a, q, &st, err);
    if (ps != HS_OK)
        return ps;
    int rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, count);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(st, 3, newest);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *crashed_run = sqlite3_column_int64(st, 0);
        *signal = sqlite3_column_int(st, 1);
        rc = SQLITE_DONE;
    }
    hs_status status = rc == SQLITE_DONE ? HS_OK : db_fail(a->db, a->path, rc, audit_what(q), err);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return status;
}

hs_status hs_audit_watch_crashed(hs_audit *a, const char *study_uid, int n_files, double newest,
                                 long long *crashed_run, int *signal, hs_error *err)
{
    if (a == NULL || study_uid == NULL || crashed_run == NULL || signal == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_watch_crashed: NULL argument");
    return crash_lookup(a, W_CRASHED, study_uid, n_files, newest, crashed_run, signal, err);
}

hs_status hs_audit_watch_file_crashed(hs_audit *a, const char *path, long long bytes, double newest,
                                      long long *crashed_run, int *signal, hs_error *err)
{
    if (a == NULL || path == NULL || crashed_run == NULL || signal == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_watch_file_crashed: NULL argument");
    return crash_lookup(a, W_FILE_CRASHED, path, bytes, newest, crashed_run, signal, err);
}

/* ---- validation runs (schema step 007-validation, hemoscan --validate) ---- */

hs_status hs_audit_validation_run_begin(hs_audit *a, const hs_audit_run *run, long long *run_id,
                                        hs_error *err)
{
    if (a == NULL || run == NULL || run_id == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_validation_run_begin: NULL argument");
    *run_id = 0;
    if (a->version < HS_AUDIT_VERSION_VALIDATION)
        return hs_fail(err, HS_ERR_FORMAT, "audit database %s: schema version %d has no "
                       "validation runs (version %d does)", a->path, a->version,
                       HS_AUDIT_VERSION_VALIDATION);
    return run_insert(a, V_RUN_BEGIN, run, run_id, err);
}

hs_status hs_audit_record_validation_labels(hs_audit *a, long long run_id,
                                            const hs_audit_validation_label *labels, int n,
                                            hs_error *err)
{
    if (a == NULL || (labels == NULL && n > 0) || n < 0)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_record_validation_labels: NULL argument");
    double now = hs_clock_now();
    hs_status st = exec(a, err, Q_BEGIN, NULL, "");
    for (int i = 0; st == HS_OK && i < n; i++) {
        const hs_audit_validation_label *l = &labels[i];
        st = exec(a, err, V_LABEL, NULL, "lsittitLd", run_id, l->labels_file, l->line, l->study,
                  l->sop_instance_uid, l->label, l->subtypes, l->verdict_id, now);
    }
    if (st == HS_OK)
        st = exec(a, err, Q_COMMIT, NULL, "");
    else
        audit_rollback(a->db);
    return st;
}

/* ---- notifications ------------------------------------------------------------ */

const char *hs_notify_outcome_name(hs_notify_outcome o)
{
    switch (o) {
    case HS_NOTIFY_OK: return "ok";
    case HS_NOTIFY_EXIT_STATUS: return "exit_status";
    case HS_NOTIFY_SIGNAL: return "signal";
    case HS_NOTIFY_TIMEOUT: return "timeout";
    case HS_NOTIFY_NOT_STARTED: return "not_started";
    }
    return "unknown";
}

hs_status hs_audit_record_notification(hs_audit *a, const hs_audit_notification *n, hs_error *err)
{
    if (a == NULL || n == NULL || n->command == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_record_notification: NULL argument");
    if (a->version < HS_AUDIT_VERSION_NOTIFICATIONS)
        return hs_fail(err, HS_ERR_FORMAT, "audit database %s: schema version %d has no "
                       "notifications (version %d does)", a->path, a->version,
                       HS_AUDIT_VERSION_NOTIFICATIONS);
    int has_status = n->outcome == HS_NOTIFY_OK || n->outcome == HS_NOTIFY_EXIT_STATUS;
    int has_signal = n->outcome == HS_NOTIFY_SIGNAL;
    return exec(a, err, N_NOTIFICATION, NULL, "lsddsjjds", n->verdict_id, n->command, n->started,
                n->finished, hs_notify_outcome_name(n->outcome), has_status ? &n->exit_status : NULL,
                has_signal ? &n->signal : NULL, n->timeout_s,
                n->outcome == HS_NOTIFY_OK ? NULL : n->message);
}

/* ---- files changed in the future (schema step 009-identity) ---------------------- */

hs_status hs_audit_watch_future_file(hs_audit *a, long long run_id, const char *path, long long bytes,
                                     double changed, double now, double *first_seen, int *is_new,
                                     hs_error *err)
{
    if (a == NULL || path == NULL || first_seen == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_audit_watch_future_file: NULL argument");
    *first_seen = now;
    if (is_new != NULL)
        *is_new = 0;
    if (a->version < HS_AUDIT_VERSION_IDENTITY)
        return HS_OK; /* nothing to remember it in: changed now, at every pass */
    long long added = 0, ms = 0;
    hs_status st = exec(a, err, I_FUTURE_ADD, &added, "sldd" "l", path, bytes, changed, now, run_id);
    if (st == HS_OK)
        st = exec(a, err, I_FUTURE_GET, &ms, "sld", path, bytes, changed);
    if (st == HS_OK && ms > 0)
        *first_seen = (double)ms / 1000.0;
    if (is_new != NULL)
        *is_new = added != 0;
    return st;
}
