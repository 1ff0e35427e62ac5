/* modes_study.c - the DICOM modes: --study (folders to verdicts on stdout,
 * as JSON, and in the audit database) and --export (the rendered slices as
 * PNG files, for a site that labels its own cases).
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

int cli_mode_study(const options *o)
{
    hs_error err = {0};
    hs_model model;
    const char *model_path;
    if (cli_load_model(o, &model, &model_path) != EXIT_OK)
        return EXIT_FAILED;
    char db_buf[HS_PATH_MAX];
    const char *db_path = cli_audit_path(o, db_buf, sizeof db_buf, &err);
    hs_audit *audit = NULL;
    if (db_path == NULL || hs_audit_open(db_path, &audit, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: audit database: %s\n", err.msg);
        hs_model_free(&model);
        return EXIT_FAILED;
    }
    hs_audit_run run = {"study", o->command, model_path, model.sha256, model.provenance.note};
    long long run_id = 0;
    if (hs_audit_run_begin(audit, &run, &run_id, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: audit database: %s\n", err.msg);
        hs_audit_close(audit);
        hs_model_free(&model);
        return EXIT_FAILED;
    }

    hs_study_options sopt;
    cli_study_options(o, &sopt);
    hs_review_options ropt;
    cli_review_options(o, &ropt);

    int status = EXIT_OK;
    for (int i = 0; i < o->n_paths; i++) {
        const char *dir = o->paths[i];
        hs_study_reading r;
        long long verdict_id = 0;
        hs_review_file review;
        memset(&review, 0, sizeof review);
        hs_status st = hs_study_read(dir, &model, &sopt, &r, &err);
        const hs_status read_st = st;
        if (st == HS_OK)
            st = hs_audit_record_study(audit, run_id, &r, &model, &verdict_id, &err);
        /* The review file is written after the verdict is recorded (a
         * review that fails never costs the verdict) and recorded after
         * it is complete (a row never points at a missing file). */
        if (st == HS_OK && o->review_dir != NULL) {
            hs_error rerr = {0}, err2 = {0};
            if (hs_review_store(audit, verdict_id, &r, &model, o->review_dir, &ropt, &review, &rerr) != HS_OK) {
                fprintf(stderr, "hemoscan: %s: review: %s\n", dir, rerr.msg);
                status = worse(status, EXIT_FAILED);
                if (hs_audit_record_failure(audit, run_id, dir, r.study.study_uid[0] ? r.study.study_uid : NULL,
                                            "review", rerr.msg, &err2) != HS_OK)
                    fprintf(stderr, "hemoscan: audit database: %s\n", err2.msg);
            }
        }
        if (read_st != HS_OK) {
            hs_error err2 = {0};
            if (hs_audit_record_failure(audit, run_id, dir, r.study.study_uid[0] ? r.study.study_uid : NULL,
                                        "read", err.msg, &err2) != HS_OK)
                fprintf(stderr, "hemoscan: audit database: %s\n", err2.msg);
        }
        if (st != HS_OK) {
            fprintf(stderr, "hemoscan: %s: %s\n", dir, err.msg);
            status = worse(status, EXIT_FAILED);
            hs_study_reading_free(&r);
            continue;
        }
        if (i > 0 && !o->json && o->verbose >= 0)
            printf("\n");
        cli_emit_reading(o, 0, &r, &model, model_path, db_path, verdict_id, &review);
        status = worse(status, cli_on_positive(o, audit, db_path, &r, verdict_id, &review));
        status = worse(status, study_exit_status(&r));
        hs_study_reading_free(&r);
    }
    if (hs_audit_run_end(audit, run_id, status, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: audit database: %s\n", err.msg);
        status = worse(status, EXIT_FAILED);
    }
    hs_audit_close(audit);
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
