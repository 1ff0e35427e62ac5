/* modes_study.c - the DICOM modes: --study (folders to verdicts on stdout,
 * as JSON, and in the audit database) and --export (the rendered slices as
 * PNG files, for a site that labels its own cases).
 *
 * --study reads every study a folder holds, each on its own (the scan
 * keeps one and lists the others' files as "other_study"; their headers
 * are read again here to tell them apart), and each with every file of it
 * known from earlier readings (hs_audit_study_files), so a study
 * delivered in two folders is read whole. A study read before has every
 * eligible series read. The usual folder of one study seen for the first
 * time is read straight from its scan, without a second header pass.
 *
 * The stages live in the library (series, dicom, render, verdict, study,
 * audit, review_store); this file only calls them, prints and picks the
 * exit status. The watcher prints its readings with the same function
 * (cli_emit_reading, common.c). */
#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/audit.h"
#include "hemoscan/dicom.h"
#include "hemoscan/fileio.h"
#include "hemoscan/image.h"
#include "hemoscan/path.h"
#include "hemoscan/render.h"
#include "hemoscan/review.h"
#include "hemoscan/review_store.h"
#include "hemoscan/study.h"
#include "modes.h"

/* Worst outcome first: what a study adds to the exit status. */
static int study_exit_status(const hs_study_reading *r)
{
    if (r->verdict.verdict != HS_VERDICT_NOT_ASSESSABLE)
        return EXIT_OK;
    return r->decisive < 0 ? EXIT_NO_SERIES : EXIT_NOT_ASSESSABLE;
}

static int worse(int a, int b)
{
    /* errors, then not assessable, then no readable series, then success */
    static const int rank[] = {[EXIT_OK] = 0,        [EXIT_FAILED] = 4,         [EXIT_USAGE] = 5,
                               [EXIT_NO_SERIES] = 2, [EXIT_NOT_ASSESSABLE] = 3, [EXIT_LOCKED] = 1};
    assert(a >= 0 && b >= 0 && (size_t)a < sizeof rank / sizeof *rank && (size_t)b < sizeof rank / sizeof *rank);
    return rank[a] >= rank[b] ? a : b;
}

/* ---- the studies of one folder ----------------------------------------------- */

/* One study found in a --study folder: its UID, and the folder's files
 * that belong to it (the paths are the scan's, not owned here). */
typedef struct {
    char *uid;
    const char **paths;
    int n;
} folder_study;

typedef struct {
    folder_study *study;
    int n;
} folder_studies;

static void folder_studies_free(folder_studies *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->study[i].uid);
        free(f->study[i].paths);
    }
    free(f->study);
    memset(f, 0, sizeof *f);
}

static folder_study *study_of(folder_studies *f, const char *uid)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->study[i].uid, uid) == 0)
            return &f->study[i];
    folder_study *grown = realloc(f->study, (size_t)(f->n + 1) * sizeof *grown);
    if (grown == NULL)
        return NULL;
    f->study = grown;
    folder_study *g = &f->study[f->n];
    memset(g, 0, sizeof *g);
    g->uid = strdup(uid);
    if (g->uid == NULL)
        return NULL;
    f->n++;
    return g;
}

static int add_path(folder_study *g, const char *path)
{
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->paths[i], path) == 0)
            return 0; /* the frames of one file */
    const char **grown = realloc(g->paths, (size_t)(g->n + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    g->paths = grown;
    g->paths[g->n++] = path;
    return 0;
}

/* The studies of a scanned folder, the scan's own first: its files are
 * every file of the folder but those of other studies ("other_study",
 * whose headers are read again here to tell their studies apart). */
static hs_status split_folder(const hs_study *scan, folder_studies *out, hs_error *err)
{
    memset(out, 0, sizeof *out);
    folder_study *mine = study_of(out, scan->study_uid);
    hs_status st = mine == NULL ? hs_fail(err, HS_ERR_NOMEM, "out of memory") : HS_OK;
    for (int s = 0; st == HS_OK && s < scan->n_series; s++)
        for (int k = 0; st == HS_OK && k < scan->series[s].n_slices; k++)
            if (add_path(&out->study[0], scan->series[s].slices[k].header.path) != 0)
                st = hs_fail(err, HS_ERR_NOMEM, "out of memory");
    for (int i = 0; st == HS_OK && i < scan->n_skipped; i++) {
        const hs_skipped_file *k = &scan->skipped[i];
        folder_study *g = &out->study[0];
        if (strcmp(k->verdict, "other_study") == 0) {
            hs_dicom_header h;
            hs_dicom_verdict v;
            char why[256];
            hs_error herr = {0};
            /* it was read a moment ago; one that fails now stays with the first study */
            if (hs_dicom_read_header(k->path, &h, &v, why, &herr) == HS_OK)
                g = study_of(out, h.study_uid);
        }
        if (g == NULL || add_path(g, k->path) != 0)
            st = hs_fail(err, HS_ERR_NOMEM, "out of memory");
    }
    return st;
}

/* What the mode needs at hand for each study. */
typedef struct {
    const options *o;
    hs_model *model;
    const char *model_path, *db_path;
    hs_audit *audit;
    long long run_id;
    hs_study_options sopt;
    hs_review_options ropt;
    int printed; /* readings printed so far */
} study_run;

/* Records reading r (made from dir), writes its review, prints it; returns
 * what it adds to the exit status. read_st/err: how the reading went. */
static int finish_reading(study_run *m, const char *dir, hs_study_reading *r, hs_status read_st,
                          hs_error *err)
{
    const options *o = m->o;
    int status = EXIT_OK;
    long long verdict_id = 0;
    hs_review_file review;
    memset(&review, 0, sizeof review);
    hs_status st = read_st;
    if (st == HS_OK)
        st = hs_audit_record_study(m->audit, m->run_id, r, m->model, &verdict_id, err);
    /* The review file is written after the verdict is recorded (a
     * review that fails never costs the verdict) and recorded after
     * it is complete (a row never points at a missing file). */
    if (st == HS_OK && o->review_dir != NULL) {
        hs_error rerr = {0}, err2 = {0};
        if (hs_review_store(m->audit, verdict_id, r, m->model, o->review_dir, &m->ropt, &review, &rerr) != HS_OK) {
            fprintf(stderr, "hemoscan: %s: review: %s\n", dir, rerr.msg);
            status = worse(status, EXIT_FAILED);
            if (hs_audit_record_failure(m->audit, m->run_id, dir, r->study.study_uid[0] ? r->study.study_uid : NULL,
                                        "review", rerr.msg, &err2) != HS_OK)
                fprintf(stderr, "hemoscan: audit database: %s\n", err2.msg);
        }
    }
    if (read_st != HS_OK) {
        hs_error err2 = {0};
        if (hs_audit_record_failure(m->audit, m->run_id, dir, r->study.study_uid[0] ? r->study.study_uid : NULL,
                                    "read", err->msg, &err2) != HS_OK)
            fprintf(stderr, "hemoscan: audit database: %s\n", err2.msg);
    }
    if (st != HS_OK) {
        fprintf(stderr, "hemoscan: %s: %s\n", dir, err->msg);
        return worse(status, EXIT_FAILED);
    }
    if (m->printed++ > 0 && !o->json && o->verbose >= 0)
        printf("\n");
    cli_emit_reading(o, 0, r, m->model, m->model_path, m->db_path, verdict_id, &review);
    status = worse(status, cli_on_positive(o, m->audit, m->db_path, r, verdict_id, &review));
    cli_say_standing(m->audit, dir, r, verdict_id);
    return worse(status, study_exit_status(r));
}

/* Every study in dir, each read with all its known files. */
static int read_folder(study_run *m, const char *dir)
{
    hs_error err = {0};
    hs_study scan;
    hs_study_reading r;
    memset(&r, 0, sizeof r);
    if (hs_study_scan(dir, m->sopt.threads, &scan, &err) != HS_OK) {
        hs_study_free(&scan);
        snprintf(r.dir, sizeof r.dir, "%s", dir);
        return finish_reading(m, dir, &r, HS_ERR_IO, &err);
    }
    folder_studies f;
    if (split_folder(&scan, &f, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: %s: %s\n", dir, err.msg);
        folder_studies_free(&f);
        hs_study_free(&scan);
        return EXIT_FAILED;
    }
    if (f.n > 1 && m->o->verbose >= 0)
        fprintf(stderr, "hemoscan: %s holds %d studies; each is read and recorded on its own\n",
                dir, f.n);
    int status = EXIT_OK;
    for (int i = 0; i < f.n; i++) {
        /* the folder's files plus those known from earlier readings that
         * are still there, so a study delivered in parts is read whole */
        int n = 0, n_known = 0, read_before = 0;
        char **paths = NULL;
        if (hs_audit_study_files(m->audit, f.study[i].uid, (char *const *)f.study[i].paths, f.study[i].n,
                                 &paths, &n, &n_known, &read_before, &err) != HS_OK) {
            fprintf(stderr, "hemoscan: %s: %s\n", dir, err.msg);
            status = worse(status, EXIT_FAILED);
            continue;
        }
        if (n_known > 0 && m->o->verbose >= 0)
            fprintf(stderr, "hemoscan: %s: study %s: read with %d file(s) of it read before "
                    "elsewhere\n", dir, f.study[i].uid, n_known);
        /* A study read before: every eligible series, so the verdict
         * comes from everything known of the study and covers the series
         * an earlier verdict was read from (audit.h). */
        hs_study_options sopt = m->sopt;
        if (read_before)
            sopt.all_series = 1;
        hs_status st;
        memset(&r, 0, sizeof r);
        if (f.n == 1 && n_known == 0) /* the usual case: the scan is the study's */
            st = hs_study_read_scanned(dir, &scan, m->model, &sopt, &r, &err);
        else
            st = hs_study_read_files(dir, paths, n, m->model, &sopt, &r, &err);
        status = worse(status, finish_reading(m, dir, &r, st, &err));
        hs_study_reading_free(&r);
        hs_audit_study_files_free(paths, n, f.study[i].n);
    }
    folder_studies_free(&f);
    hs_study_free(&scan);
    return status;
}

int cli_mode_study(const options *o)
{
    hs_error err = {0};
    hs_model model;
    study_run m = {.o = o, .model = &model};
    if (cli_load_model(o, &model, &m.model_path) != EXIT_OK)
        return EXIT_FAILED;
    char db_buf[HS_PATH_MAX];
    m.db_path = cli_audit_path(o, db_buf, sizeof db_buf, &err);
    if (m.db_path == NULL || hs_audit_open(m.db_path, &m.audit, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: audit database: %s\n", err.msg);
        hs_model_free(&model);
        return EXIT_FAILED;
    }
    hs_audit_run run = {"study", o->command, m.model_path, model.sha256, model.provenance.note};
    if (hs_audit_run_begin(m.audit, &run, &m.run_id, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: audit database: %s\n", err.msg);
        hs_audit_close(m.audit);
        hs_model_free(&model);
        return EXIT_FAILED;
    }
    cli_study_options(o, &m.sopt);
    cli_review_options(o, &m.ropt);

    int status = EXIT_OK;
    for (int i = 0; i < o->n_paths; i++)
        status = worse(status, read_folder(&m, o->paths[i]));
    if (hs_audit_run_end(m.audit, m.run_id, status, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: audit database: %s\n", err.msg);
        status = worse(status, EXIT_FAILED);
    }
    hs_audit_close(m.audit);
    hs_model_free(&model);
    return status;
}

/* Every slice of one series as PNG files plus an index.csv. */
static int export_series(const hs_series *se, const hs_input_recipe *recipe, const char *dir, int *written)
{
    hs_error err = {0};
    if (hs_make_dirs(dir, 0755, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: %s\n", err.msg);
        return EXIT_FAILED;
    }
    char index[HS_PATH_MAX];
    if (hs_path_join(index, sizeof index, dir, "index.csv", &err) != HS_OK) {
        fprintf(stderr, "hemoscan: %s\n", err.msg);
        return EXIT_FAILED;
    }
    FILE *csv = fopen(index, "w");
    if (csv == NULL) {
        fprintf(stderr, "hemoscan: cannot write %s: %s\n", index, strerror(errno));
        return EXIT_FAILED;
    }
    fprintf(csv, "file,slice,instance_number,position_mm,sop_instance_uid,source,frame_number\n");
    int status = EXIT_OK;
    float *hu = NULL;
    hs_dicom_reader *reader = hs_dicom_reader_new();
    if (reader == NULL) {
        fprintf(stderr, "hemoscan: out of memory\n");
        fclose(csv);
        return EXIT_FAILED;
    }
    for (int k = 0; k < se->n_slices; k++) {
        const hs_dicom_header *h = &se->slices[k].header;
        float *grown = realloc(hu, (size_t)h->rows * (size_t)h->columns * sizeof *hu);
        if (grown == NULL) {
            fprintf(stderr, "hemoscan: out of memory decoding %s\n", h->path);
            status = EXIT_FAILED;
            break;
        }
        hu = grown;
        hs_image picture = {0};
        char name[32], path[HS_PATH_MAX];
        snprintf(name, sizeof name, "%04d.png", k + 1);
        hs_status st = hs_path_join(path, sizeof path, dir, name, &err);
        if (st == HS_OK)
            st = hs_dicom_reader_read_hu(reader, h->path, h, hu, &err);
        if (st == HS_OK)
            st = hs_render_slice(hu, h->columns, h->rows, recipe, &picture, &err);
        if (st == HS_OK)
            st = hs_png_write(path, &picture, &err);
        hs_image_free(&picture);
        if (st != HS_OK) {
            fprintf(stderr, "hemoscan: %s\n", err.msg);
            status = EXIT_FAILED;
            continue;
        }
        char instance[16] = "", position[32] = "";
        if (h->has_instance_number)
            snprintf(instance, sizeof instance, "%d", h->instance_number);
        if (se->sort_method == HS_SORT_POSITION)
            snprintf(position, sizeof position, "%.3f", se->slices[k].position_along_normal);
        /* file paths are quoted CSV fields: a drop folder may hold commas */
        fprintf(csv, "%s,%d,%s,%s,%s,\"", name, k + 1, instance, position, h->sop_uid);
        for (const char *p = h->path; *p; p++) {
            if (*p == '"')
                putc('"', csv); /* a quote inside a quoted field is doubled */
            putc(*p, csv);
        }
        /* frame_number: 1-based, empty for a single-frame file */
        if (h->frames > 1)
            fprintf(csv, "\",%d\n", h->frame + 1);
        else
            fprintf(csv, "\",\n");
        (*written)++;
    }
    free(hu);
    hs_dicom_reader_free(reader);
    if (fclose(csv) != 0) {
        fprintf(stderr, "hemoscan: cannot write %s: %s\n", index, strerror(errno));
        status = EXIT_FAILED;
    }
    return status;
}

int cli_mode_export(const options *o)
{
    hs_error err = {0};
    hs_model model;
    const char *model_path;
    if (cli_load_model(o, &model, &model_path) != EXIT_OK)
        return EXIT_FAILED;
    int picture_channels = hs_recipe_from_gray(&model.recipe) ? 1 : model.recipe.channels;
    if (picture_channels != 1 && picture_channels != 3) {
        fprintf(stderr, "hemoscan: %s: its recipe has %d windows; PNG export needs 1 (gray) or 3\n",
                model_path, picture_channels);
        hs_model_free(&model);
        return EXIT_FAILED;
    }
    int status = EXIT_OK;
    for (int i = 0; i < o->n_paths; i++) {
        hs_study study;
        if (hs_study_scan(o->paths[i], o->threads, &study, &err) != HS_OK) {
            fprintf(stderr, "hemoscan: %s\n", err.msg);
            status = worse(status, EXIT_FAILED);
            hs_study_free(&study);
            continue;
        }
        if (hs_study_choose(&study, o->min_thickness, o->max_thickness, 1) < 0) {
            fprintf(stderr, "hemoscan: %s: %s\n", o->paths[i], study.why);
            status = worse(status, EXIT_NO_SERIES);
        }
        for (int s = 0; s < study.n_series; s++) {
            char name[HS_UID_KEY_MAX], dir[HS_PATH_MAX]; /* a whole series UID key */
            hs_safe_file_name(study.series[s].series_uid, "series", name, sizeof name);
            if (hs_path_join(dir, sizeof dir, o->out_dir, name, &err) != HS_OK) {
                fprintf(stderr, "hemoscan: %s\n", err.msg);
                status = worse(status, EXIT_FAILED);
                continue;
            }
            int written = 0;
            status = worse(status, export_series(&study.series[s], &model.recipe, dir, &written));
            if (o->verbose >= 0)
                printf("%s: series %s \"%s\": %d of %d slices written to %s\n", o->paths[i],
                       study.series[s].series_uid, study.series[s].description, written,
                       study.series[s].n_slices, dir);
        }
        hs_study_free(&study);
    }
    hs_model_free(&model);
    return status;
}
