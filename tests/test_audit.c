/* test_audit.c - CUnit tests of the audit database (audit.c, the schema in
 * sql/schema and the report queries in sql/reports), registered by
 * hs_register_audit_tests().
 *
 * The readings recorded here are fabricated by hand (a study of two series,
 * one read and one not, with skipped files and unscored slices), not made
 * by hs_study_read: the audit database must record exactly what it is
 * given, and a hand-made reading says exactly what that is. Every check
 * reads the database back through a separate plain SQLite connection, the
 * way an auditor would, never through the module under test.
 *
 * The report queries are run through the real sqlite3 shell, with the
 * options and .param commands their headers document, against a database
 * with known content; the rows they print are compared with the rows they
 * must print. A last test makes sure no report file is left untested. The
 * shell is the one configure found ($HEMOSCAN_SQLITE3), else sqlite3 on
 * PATH; without it those tests fail and say which package to install. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "hemoscan/audit.h"
#include "hemoscan/model.h"
#include "hemoscan/verdict.h"
#include "test_util.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

int hs_register_audit_tests(void);

static char tmp_dir[4096];
static hs_model *model_a, *model_b;

/* ---- fabricated models and readings ------------------------------------------- */

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SHA_DATA "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define UNSCORED_WHY "decode failed: truncated pixel data"

static void fake_model(hs_model *m, const char *sha, const char *date)
{
    memset(m, 0, sizeof *m);
    snprintf(m->sha256, sizeof m->sha256, "%s", sha);
    m->threshold = 0.5f;
    m->n_members = 1;
    m->n_classes = 2;
    snprintf(m->class_name[0], sizeof m->class_name[0], "no_hemorrhage");
    snprintf(m->class_name[1], sizeof m->class_name[1], "hemorrhage");
    snprintf(m->provenance.data_sha256, sizeof m->provenance.data_sha256, "%s", SHA_DATA);
    m->provenance.seed = UINT64_MAX; /* beyond SQLite's integers: stored as text */
    m->provenance.epochs = 150;
    snprintf(m->provenance.date, sizeof m->provenance.date, "%s", date);
    snprintf(m->provenance.version, sizeof m->provenance.version, "0.1.0");
    snprintf(m->provenance.note, sizeof m->provenance.note, "hemoscan --train data");
}

/* What a fabricated reading holds. The study has two series: series 0
 * ("<uid>.1", chosen, read, sorted by position 5 mm apart) with `slices`
 * slices, the last `unscored` of them not scored; series 1 ("<uid>.2", a
 * contrast series of 3 slices, not chosen, not read). The key slice is
 * slices / 2 and its upper neighbour has the same score, `probability`;
 * every other scored slice has 0.125. slices = 0: no series was read
 * (not assessable with no decisive series). */
typedef struct {
    const char *uid; /* "" for a study whose files have none */
    const char *accession, *date;
    hs_verdict verdict;
    float probability; /* ignored when not assessable */
    int slices, unscored;
    int skipped;       /* 0..2 skipped files */
    int minute;        /* started 2026-01-01T10:<minute>:00.250Z, took 2.5 s */
    char variant;      /* which set of instances ('a', 'b', ...) */
} fake_spec;

/* Set while a test wants series 0 of its fake readings to be the frames of
 * one multi-frame file. */
static int fake_multiframe;

/* Set while a test wants negatives labelled as hemoscan did before schema
 * version 8 (by their margin: "high" far below the threshold). */
static int fake_old_labels;

static void fake_verdict(hs_study_verdict *v, const fake_spec *f)
{
    memset(v, 0, sizeof *v);
    v->verdict = f->verdict;
    v->threshold = 0.5;
    v->n_scored = f->slices - f->unscored;
    if (f->verdict == HS_VERDICT_NOT_ASSESSABLE || f->slices == 0) {
        v->probability = NAN;
        v->confidence = NAN;
        v->key_slice = -1;
        snprintf(v->reason, sizeof v->reason, "fewer than 5 scored slices");
        return;
    }
    v->probability = f->probability;
    v->confidence = f->verdict == HS_VERDICT_HEMORRHAGE ? (v->probability - 0.5) / 0.5
                                                        : (0.5 - v->probability) / 0.5;
    /* verdict.c's rule: a negative is "low" (before schema 8, and with
     * fake_old_labels, the margin's label on both sides) */
    int margin_label = f->verdict == HS_VERDICT_HEMORRHAGE || fake_old_labels;
    snprintf(v->confidence_label, sizeof v->confidence_label, "%s",
             !margin_label || v->confidence < 1.0 / 3 ? "low" : v->confidence < 2.0 / 3 ? "moderate" : "high");
    v->key_slice = f->slices / 2;
}

static void fake_series(hs_series *se, const char *uid, int index, int n)
{
    snprintf(se->series_uid, sizeof se->series_uid, "%s.%d", uid, index + 1);
    se->n_slices = n;
    se->slices = calloc((size_t)n, sizeof *se->slices);
    for (int j = 0; j < n; j++) {
        hs_dicom_header *h = &se->slices[j].header;
        snprintf(h->path, sizeof h->path, "/studies/%s/s%d/%02d.dcm", uid, index + 1, j);
        snprintf(h->sop_uid, sizeof h->sop_uid, "%s.%d.%d", uid, index + 1, j + 1);
        h->has_instance_number = 1;
        h->instance_number = j + 1;
        /* the file's identity, as the scan gives it */
        h->file_size = 1000 + j;
        for (int k = 0; k < 64; k++)
            h->file_sha256[k] = "0123456789abcdef"[(index * 7 + j * 3 + k) % 16];
        se->slices[j].position_along_normal = index == 0 ? -40.0 + 5.0 * j : 0.0;
    }
    if (index == 0) {
        snprintf(se->description, sizeof se->description, "HEAD 5mm");
        se->sort_method = HS_SORT_POSITION;
        se->slice_thickness_mm = se->spacing_mm = 5.0;
        se->chosen = 1;
        snprintf(se->why, sizeof se->why, "chosen: non-contrast, 5 mm slices");
    } else {
        snprintf(se->description, sizeof se->description, "HEAD C+");
        se->sort_method = HS_SORT_INSTANCE;
        snprintf(se->sort_note, sizeof se->sort_note, "ImagePositionPatient missing");
        se->contrast = 1;
        se->gantry_tilt_deg = 12.5;
        se->missing_slices = 2;
        se->inconsistent_spacing = 1;
        snprintf(se->why, sizeof se->why, "not chosen: contrast");
    }
}

static void fake_reading(hs_study_reading *r, const fake_spec *f)
{
    memset(r, 0, sizeof *r);
    const char *uid = f->uid[0] != '\0' ? f->uid : "2.25.999";
    hs_study *s = &r->study;
    snprintf(r->dir, sizeof r->dir, "/studies/%s", uid);
    snprintf(s->study_uid, sizeof s->study_uid, "%s", f->uid);
    snprintf(s->accession, sizeof s->accession, "%s", f->accession);
    snprintf(s->patient_id, sizeof s->patient_id, "PAT-%s", f->accession);
    snprintf(s->study_date, sizeof s->study_date, "%s", f->date);
    s->n_files = 12;
    s->n_series = 2;
    s->series = calloc(2, sizeof *s->series);
    fake_series(&s->series[0], uid, 0, f->slices);
    for (int j = 0; fake_multiframe && j < f->slices; j++) {
        hs_dicom_header *h = &s->series[0].slices[j].header;
        snprintf(h->path, sizeof h->path, "/studies/%s/s1/enhanced.dcm", uid);
        snprintf(h->sop_uid, sizeof h->sop_uid, "%s.1.1", uid);
        h->frames = f->slices;
        h->frame = j;
    }
    fake_series(&s->series[1], uid, 1, 3);
    static const char *const skip[2][3] = {
        {"junk.txt", "not_dicom", "no DICM prefix"},
        {"scout.dcm", "localizer", "ImageType contains LOCALIZER"},
    };
    s->n_skipped = f->skipped;
    s->skipped = calloc(2, sizeof *s->skipped);
    for (int i = 0; i < f->skipped; i++) {
        snprintf(s->skipped[i].path, sizeof s->skipped[i].path, "/studies/%s/%s", uid,
                 skip[i][0]);
        snprintf(s->skipped[i].verdict, sizeof s->skipped[i].verdict, "%s", skip[i][1]);
        snprintf(s->skipped[i].reason, sizeof s->skipped[i].reason, "%s", skip[i][2]);
    }
    for (int i = 0; i < 64; i++)
        r->instances_sha256[i] = "0123456789abcdef"[(f->variant + i) % 16];
    fake_verdict(&r->verdict, f);
    r->started = 1767261600.25 + 60.0 * f->minute; /* 2026-01-01T10:00:00.250Z */
    r->finished = r->started + 2.5;
    if (f->slices == 0) {
        r->decisive = -1;
        return;
    }
    r->n_results = 1;
    r->result = calloc(1, sizeof *r->result);
    r->result[0].verdict = r->verdict;
    r->result[0].slice = calloc((size_t)f->slices, sizeof *r->result[0].slice);
    for (int j = 0; j < f->slices; j++) {
        hs_slice_result *sr = &r->result[0].slice[j];
        if (j >= f->slices - f->unscored) {
            sr->probability = NAN;
            snprintf(sr->error, sizeof sr->error, UNSCORED_WHY);
        } else {
            int key = f->slices / 2;
            sr->probability =
                (j == key || j == key + 1) && f->verdict != HS_VERDICT_NOT_ASSESSABLE
                    ? f->probability : 0.125f;
        }
    }
}

static void fake_free(hs_study_reading *r)
{
    for (int i = 0; i < r->study.n_series; i++)
        free(r->study.series[i].slices);
    free(r->study.series);
    free(r->study.skipped);
    for (int k = 0; k < r->n_results; k++)
        free(r->result[k].slice);
    free(r->result);
    memset(r, 0, sizeof *r);
}

/* ---- helpers ------------------------------------------------------------------ */

static int suite_init(void)
{
    model_a = calloc(1, sizeof *model_a);
    model_b = calloc(1, sizeof *model_b);
    if (model_a == NULL || model_b == NULL)
        return -1;
    fake_model(model_a, SHA_A, "2025-11-01T00:00:00Z");
    fake_model(model_b, SHA_B, "2026-06-01T00:00:00Z");
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "audit");
}

static int suite_clean(void)
{
    free(model_a);
    free(model_b);
    return hs_test_tmpdir_remove(tmp_dir);
}

/* tmp_dir/name into out (PATH_CAP bytes). */
#define PATH_CAP 4200
static void tmp_path(char *out, const char *name)
{
    hs_test_path(out, PATH_CAP, tmp_dir, name);
}

/* Opens a new database tmp_dir/name (removing an old one), asserting success. */
static hs_audit *open_new(char *path, const char *name)
{
    tmp_path(path, name);
    unlink(path);
    hs_audit *a = NULL;
    hs_error err = {0};
    hs_status st = hs_audit_open(path, &a, &err);
    CU_ASSERT_EQUAL_FATAL(st, HS_OK);
    if (st != HS_OK)
        fprintf(stderr, "test_audit: %s\n", err.msg);
    return a;
}

static long long begin_run(hs_audit *a, const hs_model *m, const char *name)
{
    hs_audit_run run = {"study", "--study /data --audit audit.db", "/models/x.hsm", m->sha256,
                        name};
    long long id = 0;
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_audit_run_begin(a, &run, &id, &err), HS_OK);
    return id;
}

/* Records the reading f describes; returns the status, the verdict id in *vid. */
static hs_status record(hs_audit *a, long long run, const fake_spec *f, const hs_model *m,
                        long long *vid, hs_error *err)
{
    hs_study_reading r;
    fake_reading(&r, f);
    hs_status st = hs_audit_record_study(a, run, &r, m, vid, err);
    fake_free(&r);
    return st;
}

/* record(), asserting success. */
static long long record_ok(hs_audit *a, long long run, const fake_spec *f, const hs_model *m)
{
    long long vid = 0;
    hs_error err = {0};
    hs_status st = record(a, run, f, m, &vid, &err);
    CU_ASSERT_EQUAL(st, HS_OK);
    if (st != HS_OK)
        fprintf(stderr, "test_audit: %s\n", err.msg);
    return vid;
}

/* A plain positive study: 6 slices all scored, hemorrhage at 0.75, read
 * at minute 1, instances 'a'. */
static fake_spec positive(const char *uid)
{
    return (fake_spec){uid, "A1", "20260101", HS_VERDICT_HEMORRHAGE, 0.75f, 6, 0, 0, 1, 'a'};
}

/* A new database tmp_dir/name (its path into path) with a run of model A
 * (its id into *run) and, unless uid is NULL, positive(uid) recorded. */
static hs_audit *open_run(char *path, const char *name, long long *run, const char *uid)
{
    hs_audit *a = open_new(path, name);
    *run = begin_run(a, model_a, "a");
    if (uid != NULL) {
        fake_spec f = positive(uid);
        record_ok(a, *run, &f, model_a);
    }
    return a;
}

/* A plain connection of our own, as an auditor's would be. */
static sqlite3 *raw_open(const char *path, int writable)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY,
                             NULL);
    CU_ASSERT_EQUAL(rc, SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* Closes a and opens path with a plain connection to look at it. */
static sqlite3 *inspect(hs_audit *a, const char *path, int writable)
{
    hs_audit_close(a);
    return raw_open(path, writable);
}

/* The first row of sql on db, columns joined by '|', NULL as "NULL";
 * "(no row)" or "(error: ...)" otherwise. Points into a static buffer. */
static const char *row(sqlite3 *db, const char *sql)
{
    static char out[8192];
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        size_t n = 0;
        out[0] = '\0';
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const char *v = (const char *)sqlite3_column_text(st, c);
            n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", c > 0 ? "|" : "",
                                  v != NULL ? v : "NULL");
            if (n >= sizeof out)
                break;
        }
    } else if (rc == SQLITE_DONE) {
        snprintf(out, sizeof out, "(no row)");
    } else {
        snprintf(out, sizeof out, "(error: %s)", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return out;
}

static int row_is(sqlite3 *db, const char *sql, const char *want, int line)
{
    const char *got = row(db, sql);
    if (strcmp(got, want) == 0)
        return 1;
    printf("\n  test_audit.c:%d: %s\n    got:  %s\n    want: %s\n", line, sql, got, want);
    return 0;
}
#define CHECK_ROW(db, sql, want) CU_ASSERT(row_is((db), (sql), (want), __LINE__))

static long long count(sqlite3 *db, const char *sql)
{
    const char *v = row(db, sql);
    return v[0] == '(' ? -1 : atoll(v);
}

/* Row counts of every table, as one string, to compare before and after. */
static void table_counts(sqlite3 *db, char *out, size_t cap)
{
    snprintf(out, cap, "%s", row(db, "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM "
                                     "models), (SELECT count(*) FROM model_classes), (SELECT "
                                     "count(*) FROM studies), (SELECT count(*) FROM readings), "
                                     "(SELECT count(*) FROM series), (SELECT count(*) FROM "
                                     "slices), (SELECT count(*) FROM skipped_files), (SELECT "
                                     "count(*) FROM verdicts), (SELECT count(*) FROM failures)"));
}

/* Executes sql on db; SQLite's result code. */
static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* The file's bytes (free them), NULL if unreadable. */
static unsigned char *file_bytes(const char *path, size_t *len)
{
    return hs_test_read_file(path, len);
}

static int same_bytes(const unsigned char *a, size_t na, const char *path)
{
    size_t nb = 0;
    unsigned char *b = file_bytes(path, &nb);
    int same = b != NULL && na == nb && memcmp(a, b, na) == 0;
    free(b);
    return same;
}

static const char *source_dir(void)
{
    const char *s = getenv("HEMOSCAN_SRCDIR");
    return s != NULL && s[0] != '\0' ? s : ".";
}

/* ---- opening: permissions, settings, versions -------------------------------- */

static void test_create_private(void)
{
    mode_t old = umask(0); /* SQLite alone would create 0644 now */
    char path[PATH_CAP], side[PATH_CAP + 8];
    hs_audit *a = open_new(path, "private.db");
    begin_run(a, model_a, "a"); /* a write: the -wal and -shm files exist now */
    struct stat sb;
    CU_ASSERT(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    snprintf(side, sizeof side, "%s-wal", path);
    CU_ASSERT(stat(side, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    snprintf(side, sizeof side, "%s-shm", path);
    CU_ASSERT(stat(side, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    hs_audit_close(a);
    umask(old);

    /* An existing (empty) file keeps the permissions its owner gave it. */
    tmp_path(path, "shared.db");
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640);
    CU_ASSERT_FATAL(fd >= 0);
    fchmod(fd, 0640);
    close(fd);
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_audit_open(path, &a, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_schema_version(a), HS_AUDIT_SCHEMA_VERSION);
    hs_audit_close(a);
    CU_ASSERT(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0640);
}

static void test_settings(void)
{
    char path[PATH_CAP];
    hs_audit *a = open_new(path, "settings.db");
    CU_ASSERT_EQUAL(hs_audit_schema_version(a), HS_AUDIT_SCHEMA_VERSION);
    sqlite3 *db = raw_open(path, 0);
    CHECK_ROW(db, "PRAGMA journal_mode", "wal");
    CU_ASSERT_EQUAL(count(db, "PRAGMA user_version"), HS_AUDIT_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(count(db, "PRAGMA application_id"), HS_AUDIT_APPLICATION_ID);
    CHECK_ROW(db, "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master WHERE "
                  "type IN ('table', 'view') ORDER BY name)",
              "current_verdicts failures loose_files model_classes models notifications reading_instances readings review_files runs "
              "series skipped_files slices studies validation_labels validation_results verdicts "
              "watch_crashes watch_files watch_future_files watch_runs");
    sqlite3_close(db);

    /* Foreign keys are enforced on hemoscan's connection: a reading of a
     * run that does not exist is refused. */
    fake_spec f = positive("1.2.3");
    hs_error err = {0};
    CU_ASSERT_EQUAL(record(a, 999, &f, model_a, NULL, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "FOREIGN KEY"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "1.2.3"));
    hs_audit_close(a);
}

static void test_open_errors(void)
{
    hs_audit *a = (hs_audit *)&a; /* must be set to NULL on failure */
    hs_error err = {0};
    char path[PATH_CAP];
    tmp_path(path, "no/such/dir/audit.db");
    CU_ASSERT_EQUAL(hs_audit_open(path, &a, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    CU_ASSERT_EQUAL(hs_audit_open(NULL, &a, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_audit_open(tmp_dir, &a, &err), HS_ERR_IO); /* a directory */
    hs_audit_close(NULL);
}

/* A database written by a newer hemoscan: made here with a second,
 * test-only schema step. */
/* This build's schema steps plus one more (version NEXT): a newer
 * schema, as a later hemoscan would have. */
#define NEXT (HS_AUDIT_SCHEMA_VERSION + 1)
static const hs_audit_migration *schema_with(const char *name, const char *sql)
{
    static hs_audit_migration steps[NEXT];
    for (int i = 0; i < HS_AUDIT_SCHEMA_VERSION; i++)
        steps[i] = hs_audit_schema[i];
    steps[NEXT - 1] = (hs_audit_migration){NEXT, name, sql};
    return steps;
}

static void test_newer_version_refused(void)
{
    char path[PATH_CAP];
    tmp_path(path, "newer.db");
    unlink(path);
    hs_audit *a = NULL;
    hs_error err = {0};
    const hs_audit_migration *v2 = schema_with("999-test.sql", "CREATE TABLE later (x);");
    CU_ASSERT_EQUAL_FATAL(hs_audit_open_schema(path, v2, NEXT, &a, &err), HS_OK);
    hs_audit_close(a);
    size_t n = 0;
    unsigned char *before = file_bytes(path, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    CU_ASSERT_EQUAL(hs_audit_open(path, &a, &err), HS_ERR_VERSION);
    CU_ASSERT_PTR_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "newer"));
    CU_ASSERT(same_bytes(before, n, path));
    free(before);

    /* In rollback-journal mode, so that switching to WAL would show. */
    tmp_path(path, "newer-plain.db");
    unlink(path);
    sqlite3 *db = NULL;
    CU_ASSERT_EQUAL(sqlite3_open(path, &db), SQLITE_OK);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE TABLE t (x); PRAGMA user_version = %d; "
             "PRAGMA application_id = %d", NEXT, HS_AUDIT_APPLICATION_ID);
    CU_ASSERT_EQUAL(exec(db, sql), SQLITE_OK);
    sqlite3_close(db);
    before = file_bytes(path, &n);
    CU_ASSERT_EQUAL(hs_audit_open(path, &a, &err), HS_ERR_VERSION);
    CU_ASSERT(same_bytes(before, n, path));
    free(before);
    db = raw_open(path, 0);
    CHECK_ROW(db, "PRAGMA journal_mode", "delete");
    sqlite3_close(db);
}

static void test_not_sqlite_refused(void)
{
    char path[PATH_CAP];
    tmp_path(path, "notes.txt");
    char text[2048];
    for (size_t i = 0; i + 1 < sizeof text; i++)
        text[i] = "These are notes, not a database.\n"[i % 34];
    text[sizeof text - 1] = '\n';
    CU_ASSERT_EQUAL_FATAL(hs_test_write_file(path, text, sizeof text), 0);
    hs_audit *a = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_audit_open(path, &a, &err), HS_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not an SQLite database"));
    CU_ASSERT(same_bytes((const unsigned char *)text, sizeof text, path));
}

static void test_foreign_sqlite_refused(void)
{
    static const char *const cases[][2] = {
        /* another program's tables, no schema version */
        {"foreign0.db", "CREATE TABLE patients (id, name); INSERT INTO patients VALUES (1, 'x')"},
        /* a schema version but another application id */
        {"foreign1.db", "CREATE TABLE t (x); PRAGMA user_version = 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[PATH_CAP];
        tmp_path(path, cases[i][0]);
        unlink(path);
        sqlite3 *db = NULL;
        CU_ASSERT_EQUAL(sqlite3_open(path, &db), SQLITE_OK);
        CU_ASSERT_EQUAL(exec(db, cases[i][1]), SQLITE_OK);
        sqlite3_close(db);
        size_t n = 0;
        unsigned char *before = file_bytes(path, &n);
        hs_audit *a = NULL;
        hs_error err = {0};
        CU_ASSERT_EQUAL(hs_audit_open(path, &a, &err), HS_ERR_FORMAT);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not a hemoscan audit database"));
        CU_ASSERT(same_bytes(before, n, path));
        free(before);
    }
}

static void test_reopen_is_noop(void)
{
    char path[PATH_CAP];
    long long run = 0;
    hs_audit *a = open_run(path, "reopen.db", &run, "1.2.3");
    hs_audit_close(a);
    size_t n = 0;
    unsigned char *before = file_bytes(path, &n);
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_audit_open(path, &a, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_schema_version(a), HS_AUDIT_SCHEMA_VERSION);
    int found = 0;
    CU_ASSERT_EQUAL(hs_audit_already_read(a, "1.2.3", NULL, SHA_A, &found, &err), HS_OK);
    hs_audit_close(a);
    CU_ASSERT(same_bytes(before, n, path));
    free(before);
}

static void test_upgrade_path(void)
{
    char path[PATH_CAP];
    long long run = 0;
    hs_audit *a = open_run(path, "upgrade.db", &run, "1.2.3");
    hs_audit_close(a);

    /* A failing step leaves the database at this build's version, without
     * a trace of the step's first statement. */
    hs_error err = {0};
    const hs_audit_migration *bad =
        schema_with("999-broken.sql", "CREATE TABLE half_done (x); THIS IS NOT SQL;");
    CU_ASSERT_EQUAL(hs_audit_open_schema(path, bad, NEXT, &a, &err), HS_ERR_FORMAT);
    CU_ASSERT_PTR_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "999-broken.sql"));
    sqlite3 *db = raw_open(path, 0);
    CU_ASSERT_EQUAL(count(db, "PRAGMA user_version"), HS_AUDIT_SCHEMA_VERSION);
    CHECK_ROW(db, "SELECT count(*) FROM sqlite_master WHERE name = 'half_done'", "0");
    sqlite3_close(db);

    /* A good step upgrades it, keeping what was recorded. */
    const hs_audit_migration *good = schema_with(
        "999-test.sql", "CREATE TABLE later (x INTEGER);\nINSERT INTO later VALUES (42);\n");
    CU_ASSERT_EQUAL_FATAL(hs_audit_open_schema(path, good, NEXT, &a, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_schema_version(a), NEXT);
    db = inspect(a, path, 0);
    CHECK_ROW(db, "SELECT x FROM later", "42");
    CHECK_ROW(db, "SELECT count(*), min(verdict) FROM verdicts", "1|hemorrhage");
    CU_ASSERT_EQUAL(count(db, "PRAGMA application_id"), HS_AUDIT_APPLICATION_ID);
    sqlite3_close(db);

    /* Steps must be numbered 1, 2, ... */
    hs_audit_migration skipping[2] = {hs_audit_schema[0], {3, "003-x.sql", "SELECT 1;"}};
    CU_ASSERT_EQUAL(hs_audit_open_schema(path, skipping, 2, &a, &err), HS_ERR_ARG);
}

/* A version 1 database (made with version 1's schema file alone, as the
 * hemoscan of that time made it) gets slices.frame_number on opening: NULL
 * in the rows it had, and frames recorded after. */
static void test_upgrade_from_v1(void)
{
    char path[PATH_CAP];
    tmp_path(path, "v1.db");
    CU_ASSERT_EQUAL_FATAL(hs_test_audit_db_at_version(path, 1), 0);
    sqlite3 *db = NULL;

    hs_audit *a = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_audit_open(path, &a, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_schema_version(a), HS_AUDIT_SCHEMA_VERSION);
    long long run = begin_run(a, model_a, "a");
    fake_spec f = positive("1.2.826.0.1.77");
    fake_multiframe = 1;
    record_ok(a, run, &f, model_a);
    fake_multiframe = 0;
    db = inspect(a, path, 0);
    CU_ASSERT(count(db, "PRAGMA user_version") >= 2);
    CHECK_ROW(db, "SELECT file_path, frame_number FROM slices WHERE slice_index = 0 AND "
                  "file_path LIKE '/old/%'",
              "/old/IM0001.dcm|NULL");
    /* the six frames of one file, frame numbers from 1 */
    CHECK_ROW(db, "SELECT count(*), count(DISTINCT file_path), min(frame_number), max(frame_number) "
                  "FROM slices WHERE file_path LIKE '/studies/1.2.826.0.1.77/%'",
              "6|1|1|6");
    CHECK_ROW(db, "SELECT count(*) FROM slices WHERE frame_number <> slice_index + 1 AND "
                  "file_path LIKE '/studies/%'",
              "0");
    /* the schema refuses frame 0 */
    sqlite3_close(db);
    db = raw_open(path, 1);
    CU_ASSERT_NOT_EQUAL(exec(db, "INSERT INTO slices (series_id, slice_index, file_path, probability, "
                                 "frame_number) VALUES (1, 5, 'f', 0.5, 0)"),
                        SQLITE_OK);
    sqlite3_close(db);
}

/* A version-2 database (what hemoscan wrote before the watcher) is
 * upgraded in place: its readings stay, the watcher's tables appear. */
static void test_upgrade_for_watcher(void)
{
    char path[PATH_CAP];
    tmp_path(path, "v2w.db");
    unlink(path);
    hs_audit *a = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_audit_open_schema(path, hs_audit_schema, 2, &a, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_schema_version(a), 2);
    long long run = begin_run(a, model_a, "a");
    fake_spec f = positive("1.2.77");
    record_ok(a, run, &f, model_a);
    /* The watcher's statements need version 3: a clear error, no crash. */
    int is_new = 1;
    CU_ASSERT_EQUAL(hs_audit_loose_file(a, run, "/drop/x", 1, 0, "not_dicom", "x", &is_new, &err),
                    HS_ERR_FORMAT);
    CU_ASSERT_EQUAL(is_new, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "loose"));
    hs_audit_close(a);

    CU_ASSERT_EQUAL_FATAL(hs_audit_open(path, &a, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_schema_version(a), HS_AUDIT_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(hs_audit_loose_file(a, run, "/drop/x", 1, 0, "not_dicom", "x", &is_new, &err),
                    HS_OK);
    CU_ASSERT_EQUAL(is_new, 1);
    sqlite3 *db = inspect(a, path, 0);
    CU_ASSERT_EQUAL(count(db, "PRAGMA user_version"), HS_AUDIT_SCHEMA_VERSION);
    CHECK_ROW(db, "SELECT study_uid, verdict FROM current_verdicts", "1.2.77|hemorrhage");
    CHECK_ROW(db, "SELECT count(*) FROM watch_runs", "0");
    CHECK_ROW(db, "SELECT count(*) FROM watch_files", "0");
    CHECK_ROW(db, "SELECT file_path, verdict FROM loose_files", "/drop/x|not_dicom");
    CHECK_ROW(db, "PRAGMA integrity_check", "ok");
    CHECK_ROW(db, "SELECT count(*) FROM pragma_foreign_key_check", "0");
    sqlite3_close(db);
}

/* Validation runs (007-validation): a version-6 database is upgraded in
 * place (its current verdict stays current), a validation reading of the
 * same study neither supersedes it nor counts as read for the watcher,
 * two validation readings of one study may stand side by side, and the
 * labels given are kept next to the verdicts they were compared with. */
static void test_validation_runs(void)
{
    char path[PATH_CAP];
    tmp_path(path, "v6-validation.db");
    unlink(path);
    hs_audit *a = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_audit_open_schema(path, hs_audit_schema, 6, &a, &err), HS_OK);
    long long run = begin_run(a, model_a, "a");
    fake_spec f = positive("1.2.99");
    long long production = record_ok(a, run, &f, model_a);
    hs_audit_run vr = {"validate", "--validate /data --labels l.csv", "/models/x.hsm", SHA_A, "a"};
    long long vrun = 0;
    /* version 6 has no validation runs: refused, nothing written */
    CU_ASSERT_EQUAL(hs_audit_validation_run_begin(a, &vr, &vrun, &err), HS_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "validation"));
    hs_audit_close(a);

    CU_ASSERT_EQUAL_FATAL(hs_audit_open(path, &a, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_schema_version(a), HS_AUDIT_SCHEMA_VERSION);
    CU_ASSERT_EQUAL_FATAL(hs_audit_validation_run_begin(a, &vr, &vrun, &err), HS_OK);
    fake_spec g = f;
    g.verdict = HS_VERDICT_NO_HEMORRHAGE;
    g.probability = 0.25f;
    g.variant = 'b';
    long long v1 = record_ok(a, vrun, &g, model_a);
    long long v2 = record_ok(a, vrun, &g, model_a);
    CU_ASSERT(v1 > production && v2 > v1);
    int found = 1;
    CU_ASSERT_EQUAL(hs_audit_already_read(a, "1.2.99", "2222222222222222222222222222222222222222222222222222222222222222",
                                          SHA_A, &found, &err), HS_OK);
    hs_audit_validation_label labels[] = {
        {"l.csv", 2, "1.2.99", NULL, 1, "intraparenchymal;subdural", v1},
        {"l.csv", 3, "missing-study", NULL, 0, NULL, 0},
        {"s.csv", 2, NULL, "1.2.99.1.1", 1, NULL, 0},
    };
    CU_ASSERT_EQUAL(hs_audit_record_validation_labels(a, vrun, labels, 3, &err), HS_OK);
    /* a production run takes no labels; a verdict of another run is refused;
     * either failure leaves nothing behind */
    hs_audit_validation_label wrong[] = {{"m.csv", 1, "x", NULL, 1, NULL, 0}};
    CU_ASSERT_EQUAL(hs_audit_record_validation_labels(a, run, wrong, 1, &err), HS_ERR_ARG);
    hs_audit_validation_label other[] = {{"m.csv", 1, "x", NULL, 1, NULL, 0},
                                         {"m.csv", 2, "y", NULL, 1, NULL, production}};
    CU_ASSERT_EQUAL(hs_audit_record_validation_labels(a, vrun, other, 2, &err), HS_ERR_ARG);
    /* a production reading after the validation supersedes the production verdict only */
    fake_spec h = f;
    h.variant = 'c';
    long long later = record_ok(a, run, &h, model_a);

    sqlite3 *db = inspect(a, path, 0); /* closes a */
    char want[128], sql[256];
    snprintf(want, sizeof want, "1|%lld|hemorrhage", later);
    CHECK_ROW(db, "SELECT count(*), verdict_id, verdict FROM current_verdicts WHERE study_uid = '1.2.99'",
              want);
    snprintf(sql, sizeof sql, "SELECT superseded_by FROM verdicts WHERE verdict_id = %lld", production);
    snprintf(want, sizeof want, "%lld", later);
    CHECK_ROW(db, sql, want);
    CHECK_ROW(db, "SELECT group_concat(purpose || ':' || ifnull(superseded_by, '-'), ' ') FROM "
                  "(SELECT * FROM verdicts ORDER BY verdict_id)",
              "production:4 validation:- validation:- production:-");
    snprintf(sql, sizeof sql, "SELECT group_concat(purpose, ' ') FROM (SELECT purpose FROM runs ORDER BY run_id)");
    CHECK_ROW(db, sql, "production validation");
    CHECK_ROW(db, "SELECT count(*) FROM validation_labels", "3");
    CHECK_ROW(db, "SELECT study_key, label, subtypes, verdict, probability, study_uid FROM validation_results "
                  "ORDER BY line",
              "1.2.99|1|intraparenchymal;subdural|no_hemorrhage|0.25|1.2.99");
    CHECK_ROW(db, "SELECT count(*) FROM validation_results WHERE verdict IS NULL", "1");
    CHECK_ROW(db, "PRAGMA integrity_check", "ok");
    CHECK_ROW(db, "SELECT count(*) FROM pragma_foreign_key_check", "0");
    sqlite3_close(db);
    CU_ASSERT_EQUAL(found, 0); /* validation verdicts are not "already read" */

    /* the schema refuses a validation verdict superseded or a purpose changed */
    db = raw_open(path, 1);
    snprintf(sql, sizeof sql, "UPDATE verdicts SET superseded_by = %lld, superseded_at = "
             "'2026-01-01T00:00:00.000Z' WHERE verdict_id = %lld", later, v1);
    CU_ASSERT_NOT_EQUAL(exec(db, sql), SQLITE_OK);
    CU_ASSERT_NOT_EQUAL(exec(db, "UPDATE runs SET purpose = 'production' WHERE purpose = 'validation'"),
                        SQLITE_OK);
    CU_ASSERT_NOT_EQUAL(exec(db, "UPDATE validation_labels SET label = 0"), SQLITE_OK);
    sqlite3_close(db);
}

/* Schema 8 (issue 20): an upgrade from 7 keeps old negatives' labels; a
 * new negative is 'low' only; each --on-positive run is recorded beside a
 * hemorrhage verdict and never changed. */
static void test_notifications(void)
{
    char path[PATH_CAP];
    tmp_path(path, "v7-notifications.db");
    unlink(path);
    hs_audit *a = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_audit_open_schema(path, hs_audit_schema, 7, &a, &err), HS_OK);
    long long run = begin_run(a, model_a, "a");
    fake_spec f = positive("1.2.80");
    long long pos7 = record_ok(a, run, &f, model_a);
    fake_spec g = f;
    g.uid = "1.2.81";
    g.verdict = HS_VERDICT_NO_HEMORRHAGE;
    g.probability = 0.125f; /* margin 0.75: "high" before version 8 */
    fake_old_labels = 1;
    long long neg7 = record_ok(a, run, &g, model_a);
    hs_audit_notification n = {pos7, "notify-pager", 1767225600.0, 1767225601.5, HS_NOTIFY_OK, 0, 0, 30.0, NULL};
    CU_ASSERT_EQUAL(hs_audit_record_notification(a, &n, &err), HS_ERR_FORMAT); /* no table yet */
    hs_audit_close(a);

    CU_ASSERT_EQUAL_FATAL(hs_audit_open(path, &a, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_schema_version(a), HS_AUDIT_SCHEMA_VERSION);
    /* the old labelling is refused from now on, for the study and its series */
    g.variant = 'b';
    long long vid = 0;
    CU_ASSERT_EQUAL(record(a, run, &g, model_a, &vid, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "confidence_label 'low'"));
    fake_old_labels = 0;
    long long neg8 = record_ok(a, run, &g, model_a);
    CU_ASSERT(neg8 > neg7);
    CU_ASSERT_EQUAL(hs_audit_record_notification(a, &n, &err), HS_OK);
    hs_audit_notification bad = {pos7, "notify-pager", 1767225700.0, 1767225730.0, HS_NOTIFY_TIMEOUT, 0, 0, 30.0,
                                 "still running after 30 s: killed"};
    CU_ASSERT_EQUAL(hs_audit_record_notification(a, &bad, &err), HS_OK);
    bad.outcome = HS_NOTIFY_EXIT_STATUS;
    bad.exit_status = 3;
    bad.message = "exited with status 3";
    CU_ASSERT_EQUAL(hs_audit_record_notification(a, &bad, &err), HS_OK);
    bad.outcome = HS_NOTIFY_SIGNAL;
    bad.signal = 9;
    CU_ASSERT_EQUAL(hs_audit_record_notification(a, &bad, &err), HS_OK);
    bad.outcome = HS_NOTIFY_NOT_STARTED;
    CU_ASSERT_EQUAL(hs_audit_record_notification(a, &bad, &err), HS_OK);
    /* refused: a negative verdict, a failure without a message, an end before the start */
    hs_audit_notification wrong = n;
    wrong.verdict_id = neg8;
    CU_ASSERT_EQUAL(hs_audit_record_notification(a, &wrong, &err), HS_ERR_ARG);
    wrong = bad;
    wrong.message = NULL;
    CU_ASSERT_EQUAL(hs_audit_record_notification(a, &wrong, &err), HS_ERR_ARG);
    wrong = n;
    wrong.finished = n.started - 1;
    CU_ASSERT_EQUAL(hs_audit_record_notification(a, &wrong, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_audit_record_notification(a, NULL, &err), HS_ERR_ARG);

    sqlite3 *db = inspect(a, path, 0); /* closes a */
    char sql[256], want[128];
    snprintf(sql, sizeof sql, "SELECT verdict, confidence_label FROM verdicts WHERE verdict_id = %lld", neg7);
    CHECK_ROW(db, sql, "no_hemorrhage|high"); /* an old row stays as it was */
    snprintf(sql, sizeof sql, "SELECT verdict, confidence_label, confidence FROM verdicts WHERE verdict_id = %lld",
             neg8);
    CHECK_ROW(db, sql, "no_hemorrhage|low|0.75"); /* the margin is kept */
    CHECK_ROW(db, "SELECT group_concat(confidence_label, ' ') FROM series WHERE verdict = 'no_hemorrhage'",
              "high low");
    snprintf(want, sizeof want, "%lld|notify-pager|2026-01-01T00:00:00.000Z|2026-01-01T00:00:01.500Z|ok|0|NULL|NULL|30.0", pos7);
    CHECK_ROW(db, "SELECT verdict_id, command, started_at, finished_at, outcome, exit_status, signal, message, "
                  "timeout_s FROM notifications ORDER BY notification_id LIMIT 1", want);
    CHECK_ROW(db, "SELECT group_concat(outcome || ':' || ifnull(exit_status, '-') || ':' || ifnull(signal, '-'), ' ') "
                  "FROM (SELECT * FROM notifications ORDER BY notification_id)",
              "ok:0:- timeout:-:- exit_status:3:- signal:-:9 not_started:-:-");
    CHECK_ROW(db, "PRAGMA integrity_check", "ok");
    CHECK_ROW(db, "SELECT count(*) FROM pragma_foreign_key_check", "0");
    sqlite3_close(db);
    db = raw_open(path, 1);
    CU_ASSERT_NOT_EQUAL(exec(db, "UPDATE notifications SET outcome = 'ok'"), SQLITE_OK);
    CU_ASSERT_NOT_EQUAL(exec(db, "DELETE FROM notifications"), SQLITE_OK);
    CU_ASSERT_NOT_EQUAL(exec(db, "UPDATE verdicts SET confidence_label = 'low' WHERE confidence_label = 'high'"),
                        SQLITE_OK);
    sqlite3_close(db);
}

/* The watcher's tables: its run, loose files once, the move journal. */
static void test_watch_tables(void)
{
    char path[PATH_CAP];
    long long run = 0;
    hs_audit *a = open_run(path, "watch.db", &run, "1.2.80");
    hs_error err = {0};
    hs_audit_watch_run wr = {"/drop", "/done", NULL, "done", 60.0, 1};
    CU_ASSERT_EQUAL(hs_audit_watch_run_begin(a, run, &wr, &err), HS_OK);
    hs_audit_watch_counts c = {1, 3, 1, 1, 1, 2, 0, 1, 4, 30, 0, 0};
    CU_ASSERT_EQUAL(hs_audit_watch_run_counts(a, run, &c, &err), HS_OK);
    /* the counts must add up: studies_read = the three verdicts */
    hs_audit_watch_counts bad = c;
    bad.studies_read = 5;
    CU_ASSERT_EQUAL(hs_audit_watch_run_counts(a, run, &bad, &err), HS_ERR_ARG);
    /* a done disposal without a done folder is refused */
    hs_audit_watch_run wrong = {"/drop", NULL, NULL, "done", 60.0, 0};
    long long run2 = begin_run(a, model_a, "a");
    CU_ASSERT_EQUAL(hs_audit_watch_run_begin(a, run2, &wrong, &err), HS_ERR_ARG);

    /* A loose file is recorded once per path, size and time. */
    int is_new = 0;
    CU_ASSERT_EQUAL(hs_audit_loose_file(a, run, "/drop/a b", 10, 1e9, "not_dicom", "text",
                                        &is_new, &err), HS_OK);
    CU_ASSERT_EQUAL(is_new, 1);
    CU_ASSERT_EQUAL(hs_audit_loose_file(a, run, "/drop/a b", 10, 1e9, "not_dicom", "text",
                                        &is_new, &err), HS_OK);
    CU_ASSERT_EQUAL(is_new, 0);
    CU_ASSERT_EQUAL(hs_audit_loose_file(a, run, "/drop/a b", 11, 1e9, "not_dicom", "text",
                                        &is_new, &err), HS_OK);
    CU_ASSERT_EQUAL(is_new, 1); /* rewritten: a new file */
    CU_ASSERT_EQUAL(hs_audit_loose_file(a, run, "/drop/c", 1, 1e9, "Not DICOM", "x", &is_new,
                                        &err), HS_ERR_ARG); /* verdict names are a_z */

    /* The journal: planned rows are pending until finished. */
    hs_audit_file_action acts[3] = {
        {0, "1.2.80", "done", "/drop/s/1", "/done/s/1", NULL},
        {0, "1.2.80", "done", "/drop/s/2", "/done/s/2", NULL},
        {0, NULL, "quarantine", "/drop/junk", "/q/junk", "not_dicom: text"},
    };
    CU_ASSERT_EQUAL_FATAL(hs_audit_plan_files(a, run, acts, 3, &err), HS_OK);
    CU_ASSERT(acts[0].id > 0 && acts[1].id > acts[0].id && acts[2].id > acts[1].id);
    hs_audit_file_action bad_act = {0, NULL, "delete", "/drop/x", "/somewhere", NULL};
    CU_ASSERT_EQUAL(hs_audit_plan_files(a, run, &bad_act, 1, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(bad_act.id, 0);
    hs_audit_file_action *pending = NULL;
    int n = 0;
    CU_ASSERT_EQUAL(hs_audit_pending_files(a, &pending, &n, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(pending[0].source, "/drop/s/1");
    CU_ASSERT_STRING_EQUAL(pending[2].reason, "not_dicom: text");
    CU_ASSERT_PTR_NULL(pending[2].study_uid);
    hs_audit_file_actions_free(pending, n);
    char **done = NULL;
    CU_ASSERT_EQUAL(hs_audit_study_done_files(a, "1.2.80", &done, &n, &err), HS_OK);
    CU_ASSERT_EQUAL(n, 0); /* nothing finished yet */
    free(done);
    CU_ASSERT_EQUAL(hs_audit_finish_file(a, run2, acts[0].id, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_finish_file(a, run2, acts[1].id, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_pending_files(a, &pending, &n, &err), HS_OK);
    CU_ASSERT_EQUAL(n, 1);
    hs_audit_file_actions_free(pending, n);
    CU_ASSERT_EQUAL(hs_audit_study_done_files(a, "1.2.80", &done, &n, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(done[0], "/done/s/1");
    CU_ASSERT_STRING_EQUAL(done[1], "/done/s/2");
    free(done[0]);
    free(done[1]);
    free(done);

    /* A study a watcher died reading is found again only with the same
     * files: the same count and exactly the same newest change time. */
    double when = 1796612811.4898812;
    hs_audit_watch_crash crash = {run, "1.2.80", NULL, "/drop/s", "reading", 6, "SIGABRT", 14, 0, when};
    CU_ASSERT_EQUAL(hs_audit_record_watch_crash(a, run2, &crash, &err), HS_OK);
    long long crashed = 0;
    int sig = 0;
    CU_ASSERT_EQUAL(hs_audit_watch_crashed(a, "1.2.80", 14, when, &crashed, &sig, &err), HS_OK);
    CU_ASSERT_EQUAL(crashed, run);
    CU_ASSERT_EQUAL(sig, 6);
    CU_ASSERT_EQUAL(hs_audit_watch_crashed(a, "1.2.80", 15, when, &crashed, &sig, &err), HS_OK);
    CU_ASSERT_EQUAL(crashed, 0); /* an instance more: worth another try */
    CU_ASSERT_EQUAL(hs_audit_watch_crashed(a, "1.2.80", 14, when + 1e-6, &crashed, &sig, &err), HS_OK);
    CU_ASSERT_EQUAL(crashed, 0); /* a file rewritten */
    CU_ASSERT_EQUAL(hs_audit_watch_crashed(a, "1.2.81", 14, when, &crashed, &sig, &err), HS_OK);
    CU_ASSERT_EQUAL(crashed, 0);
    hs_audit_watch_crash bad_phase = crash;
    bad_phase.phase = "dreaming";
    CU_ASSERT_EQUAL(hs_audit_record_watch_crash(a, run2, &bad_phase, &err), HS_ERR_ARG);
    hs_audit_watch_crash no_run = crash;
    no_run.crashed_run_id = 999;
    CU_ASSERT_EQUAL(hs_audit_record_watch_crash(a, run2, &no_run, &err), HS_ERR_ARG);
    /* A file whose header was being read: found by path, size and time. */
    hs_audit_watch_crash file = {run, NULL, "/drop/x.dcm", "/drop/x.dcm", "listing", 11, "SIGSEGV", 1, 0, when};
    CU_ASSERT_EQUAL(hs_audit_record_watch_crash(a, run2, &file, &err), HS_OK); /* an empty file */
    CU_ASSERT_EQUAL(hs_audit_watch_file_crashed(a, "/drop/x.dcm", 0, when, &crashed, &sig, &err), HS_OK);
    CU_ASSERT(crashed == run && sig == 11);
    CU_ASSERT_EQUAL(hs_audit_watch_file_crashed(a, "/drop/x.dcm", 1, when, &crashed, &sig, &err), HS_OK);
    CU_ASSERT_EQUAL(crashed, 0); /* rewritten */
    CU_ASSERT_EQUAL(hs_audit_watch_crashed(a, "/drop/x.dcm", 1, when, &crashed, &sig, &err), HS_OK);
    CU_ASSERT_EQUAL(crashed, 0); /* not a study */
    hs_audit_watch_crash both = file;
    both.study_uid = "1.2.80";
    CU_ASSERT_EQUAL(hs_audit_record_watch_crash(a, run2, &both, &err), HS_ERR_ARG);
    hs_audit_watch_crash file_reading = file;
    file_reading.phase = "reading";
    CU_ASSERT_EQUAL(hs_audit_record_watch_crash(a, run2, &file_reading, &err), HS_ERR_ARG);

    sqlite3 *db = inspect(a, path, 0);
    CHECK_ROW(db, "SELECT group_concat(crashed_run_id || ' ' || recorded_by_run || ' ' || signal_name || ' ' "
                  "|| file_count || ' ' || coalesce(file_bytes, '-') || ' ' || files_changed_at, ', ') "
                  "FROM watch_crashes",
              "1 2 SIGABRT 14 - 2026-12-07T03:06:51.490Z, 1 2 SIGSEGV 1 0 2026-12-07T03:06:51.490Z");
    CHECK_ROW(db, "SELECT passes, studies_read, hemorrhage, already_read, failed, files_done "
                  "FROM watch_runs WHERE run_id = 1", "1|3|1|2|1|30");
    CHECK_ROW(db, "SELECT count(*) FROM loose_files", "2");
    CHECK_ROW(db, "SELECT group_concat(state || ':' || coalesce(finished_by_run, '-'), ' ') "
                  "FROM watch_files", "finished:2 finished:2 pending:-");
    sqlite3_close(db);
}

/* Every file of sql/schema is compiled in, in order, byte for byte. */
static void test_schema_files_compiled(void)
{
    char dir[PATH_CAP];
    snprintf(dir, sizeof dir, "%s/sql/schema", source_dir());
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        printf("\n  cannot list %s (set HEMOSCAN_SRCDIR to the source tree)\n", dir);
    CU_ASSERT_FATAL(n >= 0);
    int files = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        size_t len = strlen(name);
        if (len > 4 && strcmp(name + len - 4, ".sql") == 0) {
            CU_ASSERT(files < hs_audit_schema_count);
            if (files < hs_audit_schema_count) {
                CU_ASSERT_STRING_EQUAL(name, hs_audit_schema[files].name);
                CU_ASSERT_EQUAL(hs_audit_schema[files].version, files + 1);
                char path[PATH_CAP + 300];
                snprintf(path, sizeof path, "%s/%s", dir, name);
                size_t flen = 0;
                unsigned char *text = hs_test_read_file(path, &flen);
                CU_ASSERT(text != NULL && strcmp((const char *)text,
                                                 hs_audit_schema[files].sql) == 0);
                free(text);
            }
            files++;
        }
        free(names[i]);
    }
    free(names);
    CU_ASSERT_EQUAL(files, hs_audit_schema_count);
    CU_ASSERT_EQUAL(hs_audit_schema_count, HS_AUDIT_SCHEMA_VERSION);
}

/* ---- recording ------------------------------------------------------------------ */

static void test_runs(void)
{
    char path[PATH_CAP];
    hs_audit *a = open_new(path, "runs.db");
    long long r1 = begin_run(a, model_a, "default model");
    hs_audit_run bare = {0};
    long long r2 = 0;
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_audit_run_begin(a, &bare, &r2, &err), HS_OK);
    CU_ASSERT(r2 > r1 && r1 > 0);
    CU_ASSERT_EQUAL(hs_audit_run_end(a, r1, 3, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_run_end(a, r1, 0, &err), HS_ERR_ARG); /* ended already */
    CU_ASSERT_EQUAL(hs_audit_run_end(a, 4242, 0, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_audit_run_end(a, r2, 256, &err), HS_ERR_ARG); /* CHECK: 0..255 */

    char host[256] = "";
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    char want[1024];
    snprintf(want, sizeof want,
             "%s|%s|study|--study /data --audit audit.db|/models/x.hsm|%s|default model|3|1|1",
             host, PACKAGE_VERSION, SHA_A);
    sqlite3 *db = inspect(a, path, 0);
    CHECK_ROW(db, "SELECT host, hemoscan_version, mode, command, model_path, model_sha256, "
                  "model_name, exit_status, started_at GLOB '20[0-9][0-9]-[01][0-9]-[0-3][0-9]T"
                  "[0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]Z', finished_at >= started_at "
                  "FROM runs WHERE run_id = 1",
              want);
    CHECK_ROW(db, "SELECT mode, command, model_path, model_sha256, model_name, finished_at, "
                  "exit_status FROM runs WHERE run_id = 2",
              "NULL|NULL|NULL|NULL|NULL|NULL|NULL");
    sqlite3_close(db);
}

static void test_record_fields(void)
{
    char path[PATH_CAP];
    long long run = 0;
    hs_audit *a = open_run(path, "fields.db", &run, NULL);
    /* 6 slices, the last one not scored; key slice 3 (instance 4). */
    fake_spec f = {"1.2.826.0.1.42", "ACC42", "20260115", HS_VERDICT_HEMORRHAGE, 0.75f, 6, 1, 2,
                   5, 'a'};
    long long vid = record_ok(a, run, &f, model_a);
    CU_ASSERT(vid > 0);
    sqlite3 *db = inspect(a, path, 0);
    CHECK_ROW(db, "SELECT model_sha256, threshold, members, trained_at, trained_by_version, "
                  "training_data_sha256, seed, epochs, note FROM models",
              SHA_A "|0.5|1|2025-11-01T00:00:00Z|0.1.0|" SHA_DATA
                    "|18446744073709551615|150|hemoscan --train data");
    CHECK_ROW(db, "SELECT group_concat(class_index || '=' || name, ' ') FROM (SELECT * FROM "
                  "model_classes ORDER BY class_index)",
              "0=no_hemorrhage 1=hemorrhage");
    CHECK_ROW(db, "SELECT study_id, study_uid, accession, patient_id, study_date, first_read_at, "
                  "last_read_at FROM studies",
              "1|1.2.826.0.1.42|ACC42|PAT-ACC42|20260115|2026-01-01T10:05:02.750Z|"
              "2026-01-01T10:05:02.750Z");
    CHECK_ROW(db, "SELECT reading_id, run_id, study_id, study_dir, accession, patient_id, "
                  "study_date, instances_sha256, files, note, started_at, finished_at FROM "
                  "readings",
              "1|1|1|/studies/1.2.826.0.1.42|ACC42|PAT-ACC42|20260115|"
              "123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0|12|NULL|"
              "2026-01-01T10:05:00.250Z|2026-01-01T10:05:02.750Z");
    CHECK_ROW(db, "SELECT series_index, series_uid, description, chosen, why, slice_count, "
                  "slice_thickness_mm, spacing_mm, gantry_tilt_deg, missing_slices, "
                  "inconsistent_spacing, sort_method, sort_note, contrast, read_rank, verdict, "
                  "probability, confidence, confidence_label, (SELECT slice_index FROM slices "
                  "WHERE slice_id = key_slice_id), scored_slices, reason FROM series WHERE "
                  "reading_id = 1 AND series_index = 0",
              "0|1.2.826.0.1.42.1|HEAD 5mm|1|chosen: non-contrast, 5 mm slices|6|5.0|5.0|0.0|0|"
              "0|position|NULL|0|0|hemorrhage|0.75|0.5|moderate|3|5|NULL");
    CHECK_ROW(db, "SELECT series_index, series_uid, description, chosen, why, slice_count, "
                  "slice_thickness_mm, spacing_mm, gantry_tilt_deg, missing_slices, "
                  "inconsistent_spacing, sort_method, sort_note, contrast, read_rank, verdict, "
                  "probability, confidence, confidence_label, key_slice_id, scored_slices, "
                  "reason, (SELECT count(*) FROM slices AS s WHERE s.series_id = "
                  "series.series_id) FROM series WHERE reading_id = 1 AND series_index = 1",
              "1|1.2.826.0.1.42.2|HEAD C+|0|not chosen: contrast|3|NULL|NULL|12.5|2|1|"
              "instance_number|ImagePositionPatient missing|1|NULL|NULL|NULL|NULL|NULL|NULL|"
              "NULL|NULL|0");
    static const char *const slices[6] = {
        "0|-40.0|1|1.2.826.0.1.42.1.1|/studies/1.2.826.0.1.42/s1/00.dcm|0.125|NULL",
        "1|-35.0|2|1.2.826.0.1.42.1.2|/studies/1.2.826.0.1.42/s1/01.dcm|0.125|NULL",
        "2|-30.0|3|1.2.826.0.1.42.1.3|/studies/1.2.826.0.1.42/s1/02.dcm|0.125|NULL",
        "3|-25.0|4|1.2.826.0.1.42.1.4|/studies/1.2.826.0.1.42/s1/03.dcm|0.75|NULL",
        "4|-20.0|5|1.2.826.0.1.42.1.5|/studies/1.2.826.0.1.42/s1/04.dcm|0.75|NULL",
        "5|-15.0|6|1.2.826.0.1.42.1.6|/studies/1.2.826.0.1.42/s1/05.dcm|NULL|" UNSCORED_WHY,
    };
    for (int j = 0; j < 6; j++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT slice_index, position_mm, instance_number, sop_instance_uid, "
                 "file_path, probability, error FROM slices WHERE slice_index = %d",
                 j);
        CHECK_ROW(db, sql, slices[j]);
    }
    CHECK_ROW(db, "SELECT count(*) FROM slices", "6");
    CHECK_ROW(db, "SELECT group_concat(file_path || ' ' || verdict || ' ' || reason, '; ') FROM "
                  "(SELECT * FROM skipped_files WHERE reading_id = 1 ORDER BY file_path)",
              "/studies/1.2.826.0.1.42/junk.txt not_dicom no DICM prefix; "
              "/studies/1.2.826.0.1.42/scout.dcm localizer ImageType contains LOCALIZER");
    char want[512];
    snprintf(want, sizeof want,
             "%lld|1|1|hemorrhage|0.75|0.5|0.5|moderate|3|4|0|5|NULL|%s|1|NULL|NULL", vid,
             SHA_A);
    CHECK_ROW(db, "SELECT verdict_id, reading_id, study_id, verdict, probability, threshold, "
                  "confidence, confidence_label, (SELECT slice_index FROM slices WHERE slice_id "
                  "= key_slice_id), key_slice_instance, (SELECT series_index FROM series WHERE "
                  "series_id = decisive_series_id), scored_slices, reason, model_sha256, "
                  "recorded_at IS strftime('%Y-%m-%dT%H:%M:%fZ', recorded_at), superseded_by, "
                  "superseded_at FROM verdicts",
              want);
    CHECK_ROW(db, "SELECT study_uid, verdict, key_slice_instance, key_slice_sop_instance_uid, "
                  "key_slice_path, decisive_series_uid, decisive_series_description, read_at "
                  "FROM current_verdicts",
              "1.2.826.0.1.42|hemorrhage|4|1.2.826.0.1.42.1.4|"
              "/studies/1.2.826.0.1.42/s1/03.dcm|1.2.826.0.1.42.1|HEAD 5mm|"
              "2026-01-01T10:05:02.750Z");
    sqlite3_close(db);
}

/* Not assessable with no series read at all: no decisive series, no key
 * slice, every series recorded as not read. */
static void test_record_nothing_read(void)
{
    char path[PATH_CAP];
    long long run = 0;
    hs_audit *a = open_run(path, "unread.db", &run, NULL);
    fake_spec f = {"1.2.7", "A7", "2026", HS_VERDICT_NOT_ASSESSABLE, 0, 0, 0, 0, 1, 'a'};
    record_ok(a, run, &f, model_a);
    sqlite3 *db = inspect(a, path, 0);
    CHECK_ROW(db, "SELECT verdict, probability, confidence, confidence_label, key_slice_id, "
                  "key_slice_instance, decisive_series_id, scored_slices, reason FROM verdicts",
              "not_assessable|NULL|NULL|NULL|NULL|NULL|NULL|0|fewer than 5 scored slices");
    CHECK_ROW(db, "SELECT count(*), count(read_rank) FROM series", "2|0");
    /* "2026" is not a DICOM date: kept as stored in readings only. */
    CHECK_ROW(db, "SELECT s.study_date, r.study_date FROM studies AS s JOIN readings AS r USING "
                  "(study_id)",
              "NULL|2026");
    sqlite3_close(db);
}

static void test_supersede(void)
{
    char path[PATH_CAP];
    long long run = 0;
    hs_audit *a = open_run(path, "supersede.db", &run, NULL);
    fake_spec s1 = positive("1.2.5");
    s1.accession = "OLD";
    fake_spec other = {"1.2.6", "X", "20260101", HS_VERDICT_NO_HEMORRHAGE, 0.25f, 6, 0, 0, 2,
                       'a'};
    long long v1 = record_ok(a, run, &s1, model_a);
    long long vo = record_ok(a, run, &other, model_a);
    fake_spec s2 = s1;
    s2.accession = "NEW";
    s2.verdict = HS_VERDICT_NO_HEMORRHAGE;
    s2.probability = 0.25f;
    s2.minute = 3;
    s2.variant = 'b';
    long long v2 = record_ok(a, run, &s2, model_b);
    CU_ASSERT(v1 > 0 && vo > v1 && v2 > vo);
    sqlite3 *db = inspect(a, path, 0);
    char want[256], sql[256];
    snprintf(sql, sizeof sql,
             "SELECT verdict, model_sha256 = '%s', superseded_by, superseded_at = (SELECT "
             "recorded_at FROM verdicts WHERE verdict_id = %lld) FROM verdicts WHERE "
             "verdict_id = %lld",
             SHA_A, v2, v1);
    snprintf(want, sizeof want, "hemorrhage|1|%lld|1", v2);
    CHECK_ROW(db, sql, want); /* kept, pointing at its successor */
    snprintf(sql, sizeof sql, "SELECT verdict, superseded_by FROM verdicts WHERE verdict_id = %lld",
             v2);
    CHECK_ROW(db, sql, "no_hemorrhage|NULL");
    snprintf(sql, sizeof sql, "SELECT superseded_by FROM verdicts WHERE verdict_id = %lld", vo);
    CHECK_ROW(db, sql, "NULL"); /* another study is not touched */
    snprintf(want, sizeof want, "1|%lld|no_hemorrhage|NEW", v2);
    CHECK_ROW(db, "SELECT count(*), verdict_id, verdict, accession FROM current_verdicts WHERE "
                  "study_uid = '1.2.5'",
              want);
    CHECK_ROW(db, "SELECT count(*) FROM current_verdicts", "2");
    /* One study row, following the latest reading; each reading keeps its own. */
    CHECK_ROW(db, "SELECT count(*), accession, first_read_at, last_read_at FROM studies WHERE "
                  "study_uid = '1.2.5'",
              "1|NEW|2026-01-01T10:01:02.750Z|2026-01-01T10:03:02.750Z");
    CHECK_ROW(db, "SELECT group_concat(accession, ' ') FROM (SELECT r.accession FROM readings "
                  "AS r JOIN studies AS s USING (study_id) WHERE s.study_uid = '1.2.5' ORDER BY "
                  "r.reading_id)",
              "OLD NEW");
    sqlite3_close(db);
}

static void test_study_without_uid(void)
{
    char path[PATH_CAP];
    long long run = 0;
    hs_audit *a = open_run(path, "nouid.db", &run, NULL);
    fake_spec f = {"", "", "", HS_VERDICT_HEMORRHAGE, 0.75f, 6, 0, 0, 1, 'a'};
    record_ok(a, run, &f, model_a);
    record_ok(a, run, &f, model_a);
    hs_study_reading r;
    fake_reading(&r, &f);
    int found = 1;
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_audit_already_read(a, "", r.instances_sha256, SHA_A, &found, &err), HS_OK);
    CU_ASSERT_EQUAL(found, 0);
    fake_free(&r);
    sqlite3 *db = inspect(a, path, 0);
    /* Nothing says the two are the same study: two rows, both current. */
    CHECK_ROW(db, "SELECT count(*), count(study_uid), count(accession) FROM studies", "2|0|0");
    CHECK_ROW(db, "SELECT count(*) FROM current_verdicts", "2");
    sqlite3_close(db);
}

static void test_already_read(void)
{
    char path[PATH_CAP];
    long long run = 0;
    hs_audit *a = open_run(path, "already.db", &run, NULL);
    fake_spec f = positive("1.2.8");
    hs_study_reading r;
    fake_reading(&r, &f);
    char same[65];
    snprintf(same, sizeof same, "%s", r.instances_sha256);
    fake_free(&r);
    fake_spec g = f;
    g.variant = 'b';
    fake_reading(&r, &g);
    char other[65];
    snprintf(other, sizeof other, "%s", r.instances_sha256);
    fake_free(&r);

    int found = -1;
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_audit_already_read(a, "1.2.8", same, SHA_A, &found, &err), HS_OK);
    CU_ASSERT_EQUAL(found, 0); /* nothing recorded yet */
    record_ok(a, run, &f, model_a);
    CU_ASSERT_EQUAL(hs_audit_already_read(a, "1.2.8", same, SHA_A, &found, &err), HS_OK);
    CU_ASSERT_EQUAL(found, 1);
    CU_ASSERT_EQUAL(hs_audit_already_read(a, "1.2.8", other, SHA_A, &found, &err), HS_OK);
    CU_ASSERT_EQUAL(found, 0); /* more instances arrived */
    CU_ASSERT_EQUAL(hs_audit_already_read(a, "1.2.8", same, SHA_B, &found, &err), HS_OK);
    CU_ASSERT_EQUAL(found, 0); /* another model */
    CU_ASSERT_EQUAL(hs_audit_already_read(a, "1.2.9", same, SHA_A, &found, &err), HS_OK);
    CU_ASSERT_EQUAL(found, 0); /* another study */
    /* Read again by model B: model A's verdict is no longer current. */
    f.minute = 2;
    record_ok(a, run, &f, model_b);
    CU_ASSERT_EQUAL(hs_audit_already_read(a, "1.2.8", same, SHA_A, &found, &err), HS_OK);
    CU_ASSERT_EQUAL(found, 0);
    CU_ASSERT_EQUAL(hs_audit_already_read(a, "1.2.8", same, SHA_B, &found, &err), HS_OK);
    CU_ASSERT_EQUAL(found, 1);
    CU_ASSERT_EQUAL(hs_audit_already_read(a, "1.2.8", same, SHA_B, NULL, &err), HS_ERR_ARG);
    hs_audit_close(a);
}

/* Schema 9: a verdict that read less than the current one is outranked
 * and the fuller one stands, unless it is a hemorrhage and the current one
 * is not; the instances are listed; the outranked reading counts as read. */
static void test_outranked(void)
{
    char path[PATH_CAP];
    long long run = 0;
    hs_audit *a = open_run(path, "outranked.db", &run, NULL);
    fake_spec full = {"1.2.40", "A40", "20260101", HS_VERDICT_NO_HEMORRHAGE, 0.25f, 8, 0, 0, 1, 'a'};
    long long v1 = record_ok(a, run, &full, model_a);
    fake_spec part = full; /* the first 6 of the 8 slices of series 1 */
    part.slices = 6;
    part.minute = 2;
    part.variant = 'b';
    long long v2 = record_ok(a, run, &part, model_a);
    hs_audit_standing st;
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_audit_verdict_standing(a, v2, &st, &err), HS_OK);
    CU_ASSERT(!st.current && st.outranked_by == v1 && st.superseded_by == 0);
    CU_ASSERT_STRING_EQUAL(st.outranked_verdict, "no_hemorrhage");
    char want[128];
    snprintf(want, sizeof want, "read 6 of the 8 instances verdict %lld read", v1);
    CU_ASSERT_STRING_EQUAL(st.reason, want);
    CU_ASSERT_EQUAL(hs_audit_verdict_standing(a, v1, &st, &err), HS_OK);
    CU_ASSERT(st.current && st.outranked_by == 0);
    sqlite3 *db = raw_open(path, 0); /* beside the open database (WAL) */
    snprintf(want, sizeof want, "%lld", v1);
    CHECK_ROW(db, "SELECT verdict_id FROM current_verdicts WHERE study_uid = '1.2.40'", want);
    /* 8 + 3 instances found, 8 read (series 2 was not chosen) */
    snprintf(want, sizeof want, "SELECT count(*), sum(series_read) FROM reading_instances "
             "JOIN verdicts USING (reading_id) WHERE verdict_id = %lld", v1);
    CHECK_ROW(db, want, "11|8");
    /* the partial reading's instances count as read: not read again */
    hs_study_reading r;
    fake_reading(&r, &part);
    int found = 0;
    CU_ASSERT_EQUAL(hs_audit_already_read(a, "1.2.40", r.instances_sha256, SHA_A, &found, &err), HS_OK);
    CU_ASSERT_EQUAL(found, 1);
    fake_free(&r);
    /* a positive that read less still supersedes a negative */
    fake_spec pos = part;
    pos.verdict = HS_VERDICT_HEMORRHAGE;
    pos.probability = 0.75f;
    pos.minute = 3;
    pos.variant = 'c';
    long long v3 = record_ok(a, run, &pos, model_a);
    snprintf(want, sizeof want, "%lld|hemorrhage", v3);
    CHECK_ROW(db, "SELECT verdict_id, verdict FROM current_verdicts WHERE study_uid = '1.2.40'", want);
    snprintf(want, sizeof want, "SELECT superseded_by FROM verdicts WHERE verdict_id = %lld", v1);
    char got[32];
    snprintf(got, sizeof got, "%lld", v3);
    CHECK_ROW(db, want, got);
    /* and a negative that read less never replaces that positive */
    part.minute = 4;
    part.variant = 'd';
    part.slices = 5;
    long long v4 = record_ok(a, run, &part, model_a);
    CU_ASSERT_EQUAL(hs_audit_verdict_standing(a, v4, &st, &err), HS_OK);
    CU_ASSERT(!st.current && st.outranked_by == v3);
    CU_ASSERT_STRING_EQUAL(st.outranked_verdict, "hemorrhage");
    /* a full reading supersedes the current verdict and the outranked ones */
    full.minute = 5;
    full.variant = 'e';
    long long v5 = record_ok(a, run, &full, model_a);
    snprintf(want, sizeof want, "SELECT count(*) FROM verdicts WHERE study_id = (SELECT study_id "
             "FROM verdicts WHERE verdict_id = %lld) AND superseded_by IS NULL", v5);
    CHECK_ROW(db, want, "1"); /* v5 alone: v3 superseded v1 and v2, v5 v3 and v4 */
    CU_ASSERT_EQUAL(hs_audit_verdict_standing(a, v5, &st, &err), HS_OK);
    CU_ASSERT(st.current);
    /* the database refuses an outranked verdict's change */
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE verdicts SET outranked_by = NULL, outranked_reason = NULL "
             "WHERE verdict_id = %lld", v4);
    sqlite3_close(db);
    db = inspect(a, path, 1);
    CU_ASSERT_NOT_EQUAL(exec(db, sql), SQLITE_OK);
    sqlite3_close(db);
}

/* A study that fails half-way leaves no row behind, and the verdict it
 * would have superseded stays current. */
static void test_atomic(void)
{
    char path[PATH_CAP];
    long long run = 0;
    hs_audit *a = open_run(path, "atomic.db", &run, NULL);
    fake_spec f = positive("1.2.10");
    f.skipped = 2;
    long long v1 = record_ok(a, run, &f, model_a);
    sqlite3 *db = raw_open(path, 0);
    char before[512], after[512];
    table_counts(db, before, sizeof before);

    hs_error err = {0};
    hs_study_reading r;
    /* 1. A slice score out of range, after study, reading and series rows
     *    were written. */
    f.minute = 2;
    fake_reading(&r, &f);
    r.result[0].slice[4].probability = 1.5f;
    CU_ASSERT_EQUAL(hs_audit_record_study(a, run, &r, model_b, NULL, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "CHECK constraint failed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "was not recorded"));
    fake_free(&r);
    /* 2. A study probability out of range: fails at the very last insert,
     *    after the old verdict was marked superseded. */
    fake_reading(&r, &f);
    r.verdict.probability = 1.5;
    CU_ASSERT_EQUAL(hs_audit_record_study(a, run, &r, model_b, NULL, &err), HS_ERR_ARG);
    fake_free(&r);
    /* 3. A new study with an unknown verdict: its study row goes too. */
    fake_spec g = positive("1.2.11");
    g.skipped = 1;
    fake_reading(&r, &g);
    r.verdict.verdict = (hs_verdict)7;
    CU_ASSERT_EQUAL(hs_audit_record_study(a, run, &r, model_a, NULL, &err), HS_ERR_ARG);
    fake_free(&r);
    /* 4. Indexes the database cannot check are checked before writing. */
    fake_reading(&r, &g);
    r.verdict.key_slice = 6;
    CU_ASSERT_EQUAL(hs_audit_record_study(a, run, &r, model_a, NULL, &err), HS_ERR_ARG);
    r.verdict.key_slice = 3;
    r.result[0].series_index = 2;
    CU_ASSERT_EQUAL(hs_audit_record_study(a, run, &r, model_a, NULL, &err), HS_ERR_ARG);
    r.result[0].series_index = 0;
    fake_free(&r);

    table_counts(db, after, sizeof after);
    CU_ASSERT_STRING_EQUAL(after, before);
    char want[128];
    snprintf(want, sizeof want, "%lld|" SHA_A, v1);
    CHECK_ROW(db, "SELECT verdict_id, model_sha256 FROM current_verdicts", want);
    CHECK_ROW(db, "SELECT count(*) FROM models", "1"); /* model B's row went too */
    sqlite3_close(db);

    /* The connection is usable afterwards: no transaction was left open. */
    record_ok(a, run, &g, model_a);
    hs_audit_close(a);
}

static void test_failures(void)
{
    char path[PATH_CAP];
    long long run = 0;
    hs_audit *a = open_run(path, "failures.db", &run, NULL);
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_audit_record_failure(a, run, "/data/x", NULL, "scan",
                                            "cannot open /data/x: Permission denied", &err),
                    HS_OK);
    CU_ASSERT_EQUAL(hs_audit_record_failure(a, run, "/data/y", "1.2.3", "model", "bad", &err),
                    HS_OK);
    CU_ASSERT_EQUAL(hs_audit_record_failure(a, run, "/data/z", NULL, NULL, "m", &err),
                    HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_audit_record_failure(a, 77, "/data/z", NULL, "scan", "m", &err),
                    HS_ERR_ARG); /* no such run */
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "FOREIGN KEY"));
    sqlite3 *db = inspect(a, path, 0);
    CHECK_ROW(db, "SELECT run_id, study_dir, study_uid, stage, message, recorded_at IS "
                  "strftime('%Y-%m-%dT%H:%M:%fZ', recorded_at) FROM failures ORDER BY failure_id",
              "1|/data/x|NULL|scan|cannot open /data/x: Permission denied|1");
    CHECK_ROW(db, "SELECT count(*), max(study_uid) FROM failures", "2|1.2.3");
    sqlite3_close(db);
}

/* The schema refuses bad values: each pair differs in one value, the good
 * statement must pass and the bad one fail on a constraint. */
static void test_checks(void)
{
    char path[PATH_CAP];
    long long run = 0;
    sqlite3 *db = inspect(open_run(path, "checks.db", &run, "1.2.12"), path, 1);
    CU_ASSERT_EQUAL(exec(db, "PRAGMA foreign_keys = ON"), SQLITE_OK);
    static const char *const pairs[][2] = {
        {"INSERT INTO slices (series_id, slice_index, file_path, probability) VALUES (1, 10, 'f', 1.0)",
         "INSERT INTO slices (series_id, slice_index, file_path, probability) VALUES (1, 11, 'f', 1.01)"},
        {"INSERT INTO slices (series_id, slice_index, file_path, probability) VALUES (1, 12, 'f', 0)",
         "INSERT INTO slices (series_id, slice_index, file_path, probability) VALUES (1, 13, 'f', -0.1)"},
        {"INSERT INTO slices (series_id, slice_index, file_path, error) VALUES (1, 14, 'f', 'e')",
         "INSERT INTO slices (series_id, slice_index, file_path, probability, error) VALUES (1, 15, 'f', 0.5, 'e')"},
        {"INSERT INTO slices (series_id, slice_index, file_path, error) VALUES (1, 16, 'f', 'e')",
         "INSERT INTO slices (series_id, slice_index, file_path) VALUES (1, 17, 'f')"},
        {"INSERT INTO series (reading_id, series_index, series_uid, chosen, slice_count, gantry_tilt_deg, missing_slices, inconsistent_spacing, sort_method, contrast) VALUES (1, 5, 'u', 1, 0, 0, 0, 0, 'position', 0)",
         "INSERT INTO series (reading_id, series_index, series_uid, chosen, slice_count, gantry_tilt_deg, missing_slices, inconsistent_spacing, sort_method, contrast) VALUES (1, 6, 'u', 2, 0, 0, 0, 0, 'position', 0)"},
        {"INSERT INTO series (reading_id, series_index, series_uid, chosen, slice_count, gantry_tilt_deg, missing_slices, inconsistent_spacing, sort_method, contrast) VALUES (1, 7, 'u', 0, 0, 0, 0, 0, 'file_name', 0)",
         "INSERT INTO series (reading_id, series_index, series_uid, chosen, slice_count, gantry_tilt_deg, missing_slices, inconsistent_spacing, sort_method, contrast) VALUES (1, 8, 'u', 0, 0, 0, 0, 0, 'by_guess', 0)"},
        {"INSERT INTO runs (started_at, host, hemoscan_version) VALUES ('2026-01-01T10:00:00.000Z', 'h', 'v')",
         "INSERT INTO runs (started_at, host, hemoscan_version) VALUES ('2026-01-01 10:00:00', 'h', 'v')"},
        {"INSERT INTO models (model_sha256, threshold, members) VALUES ('" SHA_B "', 0.5, 1)",
         "INSERT INTO models (model_sha256, threshold, members) VALUES ('ABCDEF', 0.5, 1)"},
        {"INSERT INTO studies (study_uid, study_date, first_read_at, last_read_at) VALUES ('9.1', '20260102', '2026-01-01T10:00:00.000Z', '2026-01-01T10:00:00.000Z')",
         "INSERT INTO studies (study_uid, study_date, first_read_at, last_read_at) VALUES ('9.2', '2026-01-02', '2026-01-01T10:00:00.000Z', '2026-01-01T10:00:00.000Z')"},
        {"INSERT INTO skipped_files (reading_id, file_path, verdict) VALUES (1, 'f', 'not_dicom')",
         "INSERT INTO skipped_files (reading_id, file_path, verdict) VALUES (1, 'f', 'Not DICOM!')"},
        {"INSERT INTO skipped_files (reading_id, file_path, verdict) VALUES (1, 'f', 'corrupt')",
         "INSERT INTO skipped_files (reading_id, file_path, verdict) VALUES (99, 'f', 'corrupt')"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        int good = exec(db, pairs[i][0]), bad = exec(db, pairs[i][1]);
        if (good != SQLITE_OK || bad != SQLITE_CONSTRAINT)
            printf("\n  pair %zu: good %d, bad %d (%s)\n", i, good, bad, sqlite3_errmsg(db));
        CU_ASSERT_EQUAL(good, SQLITE_OK);
        CU_ASSERT_EQUAL(bad, SQLITE_CONSTRAINT);
    }

    /* Verdicts: two readings of study 2 ('9.1' above, no verdict yet) to
     * hang them on, then bad ones and sound ones. */
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL(exec(db, "INSERT INTO readings (run_id, study_id, study_dir, files, "
                                 "started_at, finished_at) VALUES (1, 2, 'd', 0, "
                                 "'2026-01-01T10:00:00.000Z', '2026-01-01T10:00:01.000Z')"),
                        SQLITE_OK);
    static const char *const bad_verdicts[] = {
        "'maybe', 0.7, 0.5, 0.4, 'moderate', 1, NULL",       /* unknown verdict */
        "'hemorrhage', 0.3, 0.5, 0.4, 'moderate', 1, NULL",  /* below the threshold */
        "'no_hemorrhage', 0.7, 0.5, 0.4, 'moderate', 1, NULL",
        "'hemorrhage', 0.7, 0.5, 0.4, 'sure', 1, NULL",      /* unknown label */
        "'not_assessable', NULL, 0.5, NULL, NULL, NULL, NULL", /* no reason */
        "'not_assessable', 0.2, 0.5, NULL, NULL, NULL, 'r'", /* a probability */
        "'hemorrhage', 0.7, 1.0, 0.4, 'moderate', 1, NULL",  /* threshold 1 */
    };
    for (size_t i = 0; i < sizeof bad_verdicts / sizeof bad_verdicts[0]; i++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "INSERT INTO verdicts (reading_id, study_id, verdict, probability, threshold, "
                 "confidence, confidence_label, key_slice_id, reason, scored_slices, "
                 "model_sha256) VALUES (2, 2, %s, 5, '" SHA_A "')",
                 bad_verdicts[i]);
        int rc = exec(db, sql);
        if (rc != SQLITE_CONSTRAINT)
            printf("\n  verdict %zu: %d (%s)\n", i, rc, sqlite3_errmsg(db));
        CU_ASSERT_EQUAL(rc, SQLITE_CONSTRAINT);
    }
    /* Sound values: refused with the study of another reading (verdicts'
     * study_id must be its reading's), accepted with its own, refused as
     * a second current verdict of the same study (from reading 3). */
    const char *sound = "INSERT INTO verdicts (reading_id, study_id, verdict, probability, "
                        "threshold, confidence, confidence_label, key_slice_id, reason, "
                        "scored_slices, model_sha256) VALUES (%d, %d, 'hemorrhage', 0.7, 0.5, "
                        "0.4, 'moderate', 1, NULL, 5, '" SHA_A "')";
    char sql[512];
    snprintf(sql, sizeof sql, sound, 2, 1);
    CU_ASSERT_EQUAL(exec(db, sql), SQLITE_CONSTRAINT);
    snprintf(sql, sizeof sql, sound, 2, 2);
    CU_ASSERT_EQUAL(exec(db, sql), SQLITE_OK);
    snprintf(sql, sizeof sql, sound, 3, 2);
    CU_ASSERT_EQUAL(exec(db, sql), SQLITE_CONSTRAINT);
    CHECK_ROW(db, "SELECT count(*) FROM verdicts", "2");
    sqlite3_close(db);
}

/* A recorded verdict is never changed or deleted, even by hand. */
static void test_verdicts_append_only(void)
{
    char path[PATH_CAP];
    long long run = 0;
    hs_audit *a = open_run(path, "append.db", &run, "1.2.13");
    fake_spec f = positive("1.2.13");
    f.minute = 2;
    record_ok(a, run, &f, model_b);
    sqlite3 *db = inspect(a, path, 1);
    CU_ASSERT_EQUAL(exec(db, "UPDATE verdicts SET verdict = 'no_hemorrhage', probability = 0.1 "
                             "WHERE verdict_id = 2"),
                    SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(exec(db, "UPDATE verdicts SET model_sha256 = '" SHA_B "' WHERE verdict_id = 1"),
                    SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(exec(db, "UPDATE verdicts SET superseded_by = NULL, superseded_at = NULL "
                             "WHERE verdict_id = 1"),
                    SQLITE_CONSTRAINT);
    CU_ASSERT_EQUAL(exec(db, "DELETE FROM verdicts WHERE verdict_id = 1"), SQLITE_CONSTRAINT);
    CHECK_ROW(db, "SELECT count(*), sum(superseded_by IS NULL) FROM verdicts", "2|1");
    sqlite3_close(db);
}

/* ---- concurrency ------------------------------------------------------------------ */

/* A reader keeps its snapshot while hemoscan writes and commits (WAL: in
 * rollback-journal mode the commit would wait for the reader), and a
 * writer's open transaction does not block hemoscan's reads. */
static void test_wal_reader(void)
{
    char path[PATH_CAP];
    long long run = 0;
    hs_audit *a = open_run(path, "wal.db", &run, "1.2.14");

    sqlite3 *reader = raw_open(path, 0);
    sqlite3_busy_timeout(reader, 0);
    CU_ASSERT_EQUAL(exec(reader, "BEGIN"), SQLITE_OK);
    CHECK_ROW(reader, "SELECT count(*) FROM verdicts", "1");
    fake_spec g = positive("1.2.15");
    time_t t0 = time(NULL);
    record_ok(a, run, &g, model_a);
    CU_ASSERT(time(NULL) - t0 < 5); /* did not wait for the reader */
    CHECK_ROW(reader, "SELECT count(*) FROM verdicts", "1"); /* its snapshot */
    CU_ASSERT_EQUAL(exec(reader, "COMMIT"), SQLITE_OK);
    CHECK_ROW(reader, "SELECT count(*) FROM verdicts", "2");

    sqlite3 *writer = raw_open(path, 1);
    CU_ASSERT_EQUAL(exec(writer, "BEGIN IMMEDIATE; INSERT INTO runs (host, hemoscan_version) "
                                 "VALUES ('other', 'x')"),
                    SQLITE_OK);
    int found = 0;
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_audit_already_read(a, "1.2.15", NULL, SHA_A, &found, &err), HS_OK);
    CU_ASSERT_EQUAL(exec(writer, "COMMIT"), SQLITE_OK);
    sqlite3_close(writer);
    sqlite3_close(reader);
    hs_audit_close(a);
}

typedef struct {
    const char *path;
    int ready; /* pipe: written once the lock is held */
    int rc;
} lock_holder;

static void *hold_write_lock(void *arg)
{
    lock_holder *h = arg;
    sqlite3 *db = NULL;
    h->rc = sqlite3_open_v2(h->path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (h->rc == SQLITE_OK)
        h->rc = exec(db, "BEGIN IMMEDIATE; INSERT INTO runs (host, hemoscan_version) VALUES "
                         "('other', 'x')");
    ssize_t w = write(h->ready, "x", 1);
    (void)w;
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    if (h->rc == SQLITE_OK)
        h->rc = exec(db, "COMMIT");
    sqlite3_close(db);
    return NULL;
}

/* Two writers: hemoscan waits for the other one (busy timeout) instead of
 * failing. */
static void test_writers_wait(void)
{
    char path[PATH_CAP];
    long long run = 0;
    hs_audit *a = open_run(path, "busy.db", &run, NULL);
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    lock_holder h = {path, fds[1], -1};
    pthread_t thread;
    CU_ASSERT_FATAL(pthread_create(&thread, NULL, hold_write_lock, &h) == 0);
    char c;
    CU_ASSERT_EQUAL(read(fds[0], &c, 1), 1); /* the other writer holds the lock */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fake_spec f = positive("1.2.16");
    record_ok(a, run, &f, model_a);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(thread, NULL);
    close(fds[0]);
    close(fds[1]);
    CU_ASSERT_EQUAL(h.rc, SQLITE_OK);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    CU_ASSERT(waited > 0.1); /* it did wait for the other commit */
    sqlite3 *db = inspect(a, path, 0);
    CHECK_ROW(db, "SELECT count(*), (SELECT count(*) FROM verdicts) FROM runs", "2|1");
    sqlite3_close(db);
}

/* ---- report queries, through the sqlite3 shell -------------------------------------- */

/* The report files the tests below run; test_reports_all_tested compares
 * it with sql/reports. */
static const char *const tested_reports[] = {
    "positives-in-date-range.sql", "verdicts-by-model.sql", "errors-by-reason.sql",
    "verdict-changes-between-models.sql", "study-history.sql", "runs.sql",
};

static char report_db[PATH_CAP];
static int report_db_ready; /* 1 made, -1 failed */

/* The database the reports read: two runs, models A then B.
 *   run 1 (A): S1 hemorrhage 20260115, S2 no 20260220, S3 hemorrhage
 *     20251231, S4 hemorrhage 20270101, S5 not assessable 20260601,
 *     S6 hemorrhage 20260301, S7 no 20260310; a failure (/data/broken).
 *   run 2 (B): S1 hemorrhage again, S6 now no, S7 now hemorrhage; a
 *     failure of study 1.2.826.0.1.9.
 *   run 3 (B, a validation run): S6 hemorrhage, never current.
 * Skipped files: S1 two (both readings), S2 one. Unscored slices: S2 one,
 * S5 two. */
static const char *reports_database(void)
{
    if (report_db_ready != 0)
        return report_db_ready > 0 ? report_db : NULL;
    report_db_ready = -1;
    hs_audit *a = open_new(report_db, "reports.db");
    if (a == NULL)
        return NULL;
    const hs_verdict H = HS_VERDICT_HEMORRHAGE, N = HS_VERDICT_NO_HEMORRHAGE,
                     X = HS_VERDICT_NOT_ASSESSABLE;
    const fake_spec run1[] = {
        {"1.2.826.0.1.1", "ACC1", "20260115", H, 0.75f, 6, 0, 2, 1, 'a'},
        {"1.2.826.0.1.2", "ACC2", "20260220", N, 0.25f, 6, 1, 1, 2, 'a'},
        {"1.2.826.0.1.3", "ACC3", "20251231", H, 0.875f, 6, 0, 0, 3, 'a'},
        {"1.2.826.0.1.4", "ACC4", "20270101", H, 0.875f, 6, 0, 0, 4, 'a'},
        {"1.2.826.0.1.5", "ACC5", "20260601", X, 0, 4, 2, 0, 5, 'a'},
        {"1.2.826.0.1.6", "ACC6", "20260301", H, 0.75f, 6, 0, 0, 6, 'a'},
        {"1.2.826.0.1.7", "ACC7", "20260310", N, 0.25f, 6, 0, 0, 7, 'a'},
    };
    const fake_spec run2[] = {
        {"1.2.826.0.1.1", "ACC1", "20260115", H, 0.875f, 6, 0, 2, 11, 'b'},
        {"1.2.826.0.1.6", "ACC6", "20260301", N, 0.25f, 6, 0, 0, 16, 'b'},
        {"1.2.826.0.1.7", "ACC7", "20260310", H, 0.75f, 6, 0, 0, 17, 'b'},
    };
    hs_error err = {0};
    long long r1 = begin_run(a, model_a, "model-a");
    for (size_t i = 0; i < sizeof run1 / sizeof run1[0]; i++)
        record_ok(a, r1, &run1[i], model_a);
    int ok = hs_audit_record_failure(a, r1, "/data/broken", NULL, "scan",
                                     "cannot open /data/broken: Permission denied",
                                     &err) == HS_OK &&
             hs_audit_run_end(a, r1, 0, &err) == HS_OK;
    long long r2 = begin_run(a, model_b, "model-b");
    for (size_t i = 0; i < sizeof run2 / sizeof run2[0]; i++)
        record_ok(a, r2, &run2[i], model_b);
    ok = ok && hs_audit_record_failure(a, r2, "/data/S9", "1.2.826.0.1.9", "scan",
                                       "no readable series", &err) == HS_OK &&
         hs_audit_run_end(a, r2, 1, &err) == HS_OK;
    /* run 3 validates with B: S6 hemorrhage, which stands for nothing */
    hs_audit_run vrun = {"validate", "--validate /data --labels l.csv", "/models/x.hsm", SHA_B, "model-b"};
    long long r3 = 0;
    const fake_spec s6 = {"1.2.826.0.1.6", "ACC6", "20260301", H, 0.875f, 6, 0, 0, 26, 'b'};
    ok = ok && hs_audit_validation_run_begin(a, &vrun, &r3, &err) == HS_OK;
    if (ok)
        record_ok(a, r3, &s6, model_b);
    ok = ok && hs_audit_run_end(a, r3, 0, &err) == HS_OK;
    hs_audit_close(a);
    CU_ASSERT(ok);
    if (ok)
        report_db_ready = 1;
    return ok ? report_db : NULL;
}

/* The sqlite3 shell: $HEMOSCAN_SQLITE3, else sqlite3 on PATH; NULL (with
 * the message) when there is none. */
static const char *sqlite3_shell(void)
{
    static char path[4096];
    const char *env = getenv("HEMOSCAN_SQLITE3");
    if (env != NULL && env[0] != '\0') {
        snprintf(path, sizeof path, "%s", env);
        if (access(path, X_OK) == 0)
            return path;
    } else {
        const char *dirs = getenv("PATH");
        char list[8192];
        snprintf(list, sizeof list, "%s", dirs != NULL ? dirs : "/usr/bin:/bin");
        for (char *save = NULL, *d = strtok_r(list, ":", &save); d != NULL;
             d = strtok_r(NULL, ":", &save)) {
            snprintf(path, sizeof path, "%s/sqlite3", d);
            if (access(path, X_OK) == 0)
                return path;
        }
    }
    printf("\n  the sqlite3 shell was not found (HEMOSCAN_SQLITE3=%s, PATH): install the Debian "
           "package sqlite3 (sudo apt-get install sqlite3, or scripts/install-deps.sh)\n",
           env != NULL ? env : "");
    return NULL;
}

/* Runs the report file with the .param commands given (NULL-terminated),
 * as its header documents but with list output and no header line. Its
 * stdout and stderr (free it) and exit status; NULL when it could not run. */
static char *run_report(const char *file, const char *const *params, int *status)
{
    const char *shell = sqlite3_shell(), *db = reports_database();
    if (shell == NULL || db == NULL)
        return NULL;
    char read_cmd[PATH_CAP + 64];
    snprintf(read_cmd, sizeof read_cmd, ".read '%s/sql/reports/%s'", source_dir(), file);
    const char *argv[32] = {shell, "-readonly", "-batch", "-bail", "-noheader", "-list",
                            "-separator", "|", db};
    int argc = 9;
    for (int i = 0; params != NULL && params[i] != NULL && argc < 30; i++)
        argv[argc++] = params[i];
    argv[argc++] = read_cmd;
    argv[argc] = NULL;
    int fds[2];
    if (pipe(fds) != 0)
        return NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(shell, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap + 1);
    ssize_t got;
    while (out != NULL && (got = read(fds[0], out + n, cap - n)) > 0) {
        n += (size_t)got;
        if (n == cap) {
            char *bigger = realloc(out, 2 * cap + 1);
            if (bigger == NULL) {
                free(out);
                out = NULL;
                break;
            }
            out = bigger;
            cap *= 2;
        }
    }
    close(fds[0]);
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid)
        ws = -1;
    *status = ws != -1 && WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
    if (out != NULL)
        out[n] = '\0';
    return out;
}

/* One field of want matches got: "*" matches anything. */
static int fields_match(const char *got, const char *want)
{
    while (1) {
        const char *gend = strchr(got, '|'), *wend = strchr(want, '|');
        size_t glen = gend != NULL ? (size_t)(gend - got) : strlen(got);
        size_t wlen = wend != NULL ? (size_t)(wend - want) : strlen(want);
        if (!(wlen == 1 && want[0] == '*') && (glen != wlen || strncmp(got, want, glen) != 0))
            return 0;
        if ((gend == NULL) != (wend == NULL))
            return 0;
        if (gend == NULL)
            return 1;
        got = gend + 1;
        want = wend + 1;
    }
}

/* The report prints exactly the lines of want (n of them), in order, each
 * field equal or "*". */
static int report_is(const char *file, const char *const *params, const char *const *want,
                     int n, int line)
{
    int status = -1;
    char *out = run_report(file, params, &status);
    if (out == NULL) {
        printf("\n  test_audit.c:%d: could not run %s\n", line, file);
        return 0;
    }
    int ok = status == 0, i = 0;
    char *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save), i++)
        if (i >= n || !fields_match(l, want[i])) {
            printf("\n  test_audit.c:%d: %s line %d:\n    got:  %s\n    want: %s\n", line, file,
                   i + 1, l, i < n ? want[i] : "(no more lines)");
            ok = 0;
        }
    if (i < n) {
        printf("\n  test_audit.c:%d: %s printed %d lines, want %d (exit status %d)\n", line,
               file, i, n, status);
        ok = 0;
    }
    free(out);
    return ok;
}
#define CHECK_REPORT(file, params, want)                                                      \
    CU_ASSERT(report_is((file), (params), (want), (int)(sizeof(want) / sizeof(want)[0]), __LINE__))

/* The report fails (non-zero exit) with a message containing what. */
static int report_fails(const char *file, const char *const *params, const char *what)
{
    int status = 0;
    char *out = run_report(file, params, &status);
    int ok = out != NULL && status != 0 && strstr(out, what) != NULL;
    if (!ok)
        printf("\n  %s should fail saying \"%s\"; exit %d, printed: %s\n", file, what, status,
               out != NULL ? out : "(nothing)");
    free(out);
    return ok;
}

#define KEY_PATH(n) "/studies/1.2.826.0.1." #n "/s1/03.dcm"
#define READ_AT(m) "2026-01-01T10:" #m ":02.750Z"

static void test_report_positives(void)
{
    const char *const range[] = {".param set :from 20260101", ".param set :to 20261231", NULL};
    const char *const want[] = {
        "1.2.826.0.1.1|ACC1|PAT-ACC1|20260115|0.875|0.5|high|4|" KEY_PATH(1) "|" SHA_B "|" READ_AT(11),
        "1.2.826.0.1.7|ACC7|PAT-ACC7|20260310|0.75|0.5|moderate|4|" KEY_PATH(7) "|" SHA_B "|" READ_AT(17),
    };
    CHECK_REPORT("positives-in-date-range.sql", range, want);
    const char *const from_only[] = {".param set :from 20260301", NULL};
    const char *const want_from[] = {"1.2.826.0.1.7|*|*|*|*|*|*|*|*|*|*",
                                     "1.2.826.0.1.4|*|*|20270101|*|*|*|*|*|" SHA_A "|*"};
    CHECK_REPORT("positives-in-date-range.sql", from_only, want_from);
    const char *const want_all[] = {"1.2.826.0.1.3|*|*|20251231|*|*|*|*|*|*|*",
                                    "1.2.826.0.1.1|*|*|*|*|*|*|*|*|*|*",
                                    "1.2.826.0.1.7|*|*|*|*|*|*|*|*|*|*",
                                    "1.2.826.0.1.4|*|*|*|*|*|*|*|*|*|*"};
    CHECK_REPORT("positives-in-date-range.sql", NULL, want_all);
    /* 2026-01-01 reaches SQLite as 2024: refused, not answered wrongly. */
    const char *const dashes[] = {".param set :from 2026-01-01", NULL};
    CU_ASSERT(report_fails("positives-in-date-range.sql", dashes, "study dates YYYYMMDD"));
}

static void test_report_by_model(void)
{
    const char *const want[] = {
        SHA_A "|2025-11-01T00:00:00Z|0.5|hemorrhage|4|2|*|*",
        SHA_A "|2025-11-01T00:00:00Z|0.5|no_hemorrhage|2|1|*|*",
        SHA_A "|2025-11-01T00:00:00Z|0.5|not_assessable|1|1|*|*",
        SHA_B "|2026-06-01T00:00:00Z|0.5|hemorrhage|3|2|*|*",
        SHA_B "|2026-06-01T00:00:00Z|0.5|no_hemorrhage|1|1|*|*",
    };
    CHECK_REPORT("verdicts-by-model.sql", NULL, want);
}

static void test_report_errors(void)
{
    const char *const want[] = {
        "failure|scan|cannot open /data/broken: Permission denied|1|1|*",
        "failure|scan|no readable series|1|1|*",
        "skipped_file|not_dicom|no DICM prefix|3|2|*",
        "skipped_file|localizer|ImageType contains LOCALIZER|2|1|*",
        "unscored_slice|not_scored|" UNSCORED_WHY "|3|3|" READ_AT(05),
    };
    CHECK_REPORT("errors-by-reason.sql", NULL, want);
    const char *const run2[] = {".param set :run 2", NULL};
    const char *const want2[] = {
        "failure|scan|no readable series|1|1|*",
        "skipped_file|localizer|ImageType contains LOCALIZER|1|1|" READ_AT(11),
        "skipped_file|not_dicom|no DICM prefix|1|1|" READ_AT(11),
    };
    CHECK_REPORT("errors-by-reason.sql", run2, want2);
}

static void test_report_changes(void)
{
    const char *const want[] = {
        "1.2.826.0.1.6|ACC6|20260301|" SHA_A "|hemorrhage|0.75|*|" SHA_B "|no_hemorrhage|0.25|*",
        "1.2.826.0.1.7|ACC7|20260310|" SHA_A "|no_hemorrhage|0.25|*|" SHA_B "|hemorrhage|0.75|*",
    };
    CHECK_REPORT("verdict-changes-between-models.sql", NULL, want);
    const char *const pair[] = {".param set :old_model aaaa", ".param set :new_model bbbbbb",
                                NULL};
    CHECK_REPORT("verdict-changes-between-models.sql", pair, want);
    const char *const reversed[] = {".param set :old_model bbbb", NULL};
    CU_ASSERT(report_is("verdict-changes-between-models.sql", reversed, NULL, 0, __LINE__));
}

static void test_report_history(void)
{
    const char *const by_uid[] = {".param set :study_uid 1.2.826.0.1.6", NULL};
    const char *const want[] = {
        "reading|" READ_AT(06) "|1|*|*|/studies/1.2.826.0.1.6|" SHA_A
        "|*|hemorrhage|0.75|0.5|4||superseded by verdict 9",
        "reading|" READ_AT(16) "|2|*|9|/studies/1.2.826.0.1.6|" SHA_B
        "|*|no_hemorrhage|0.25|0.5|4||current",
        "reading|" READ_AT(26) "|3|*|*|/studies/1.2.826.0.1.6|" SHA_B
        "|*|hemorrhage|0.875|0.5|4||validation",
    };
    CHECK_REPORT("study-history.sql", by_uid, want);
    const char *const by_accession[] = {".param set :accession ACC6", NULL};
    CHECK_REPORT("study-history.sql", by_accession, want);
    const char *const failed[] = {".param set :study_uid 1.2.826.0.1.9", NULL};
    const char *const want_failed[] = {
        "failure|*|2|||/data/S9|" SHA_B "||scan||||no readable series|failed",
    };
    CHECK_REPORT("study-history.sql", failed, want_failed);
    CU_ASSERT(report_fails("study-history.sql", NULL, "name the study"));
}

static void test_report_runs(void)
{
    char host[256] = "", want1[1024], want2[1024], want3[1024];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    snprintf(want1, sizeof want1, "1|*|*|0|%s|%s|study|%s|model-a|7|4|2|1|1|3|*", host,
             PACKAGE_VERSION, SHA_A);
    snprintf(want2, sizeof want2, "2|*|*|1|%s|%s|study|%s|model-b|3|2|1|0|1|2|*", host,
             PACKAGE_VERSION, SHA_B);
    snprintf(want3, sizeof want3, "3|*|*|0|%s|%s|validate|%s|model-b|1|1|0|0|0|0|*", host,
             PACKAGE_VERSION, SHA_B);
    const char *const want[] = {want1, want2, want3};
    CHECK_REPORT("runs.sql", NULL, want);
}

/* Every file in sql/reports is run by a test above, and every report a
 * test runs exists. */
static void test_reports_all_tested(void)
{
    char dir[PATH_CAP];
    snprintf(dir, sizeof dir, "%s/sql/reports", source_dir());
    DIR *d = opendir(dir);
    if (d == NULL)
        printf("\n  cannot list %s (set HEMOSCAN_SRCDIR to the source tree)\n", dir);
    CU_ASSERT_FATAL(d != NULL);
    size_t n_tested = sizeof tested_reports / sizeof tested_reports[0], found = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0)
            continue;
        int tested = 0;
        for (size_t i = 0; i < n_tested; i++)
            tested |= strcmp(e->d_name, tested_reports[i]) == 0;
        if (!tested)
            printf("\n  sql/reports/%s has no test in test_audit.c\n", e->d_name);
        CU_ASSERT(tested);
        found += (size_t)tested;
    }
    closedir(d);
    CU_ASSERT_EQUAL(found, n_tested);
}

int hs_register_audit_tests(void)
{
    static const hs_test_case cases[] = {
        {"new database is private (0600, -wal and -shm too)", test_create_private},
        {"WAL, foreign keys, schema version, tables", test_settings},
        {"open errors name the file", test_open_errors},
        {"newer schema version refused, file unchanged", test_newer_version_refused},
        {"non-SQLite file refused, unchanged", test_not_sqlite_refused},
        {"another program's SQLite database refused", test_foreign_sqlite_refused},
        {"reopening a current database changes nothing", test_reopen_is_noop},
        {"upgrade path: a second schema step, a failing one", test_upgrade_path},
        {"upgrade from version 1: slices.frame_number", test_upgrade_from_v1},
        {"a version-2 database is upgraded for the watcher", test_upgrade_for_watcher},
        {"validation runs: upgrade from 6, never superseding, labels", test_validation_runs},
        {"schema 8: upgrade from 7, negatives 'low', notifications recorded", test_notifications},
        {"watcher tables: runs, loose files, the move journal, crashes", test_watch_tables},
        {"every sql/schema file compiled in, byte for byte", test_schema_files_compiled},
        {"runs: begin, end, fields", test_runs},
        {"a reading is recorded field by field", test_record_fields},
        {"not assessable with no series read", test_record_nothing_read},
        {"a new verdict supersedes, the old one is kept", test_supersede},
        {"a verdict that read less is outranked; a positive never is", test_outranked},
        {"a study without UID never supersedes", test_study_without_uid},
        {"already read: same instances and model only", test_already_read},
        {"a failing study leaves nothing behind", test_atomic},
        {"failures", test_failures},
        {"CHECK constraints refuse bad values", test_checks},
        {"verdicts are never changed or deleted", test_verdicts_append_only},
        {"WAL: readers and a writer at once", test_wal_reader},
        {"two writers wait for each other", test_writers_wait},
        {"report: positives in a date range", test_report_positives},
        {"report: verdicts by model", test_report_by_model},
        {"report: errors and skips by reason", test_report_errors},
        {"report: verdict changes between models", test_report_changes},
        {"report: history of one study", test_report_history},
        {"report: runs", test_report_runs},
        {"every report file is tested", test_reports_all_tested},
    };
    return hs_test_add_suite("audit", suite_init, suite_clean, cases,
                             sizeof cases / sizeof cases[0]);
}
