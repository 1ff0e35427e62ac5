/* modes_study.c - the DICOM modes: --study (folders to verdicts on stdout,
 * as JSON, and in the audit database) and --export (the rendered slices as
 * PNG files, for a site that labels its own cases).
 *
 * The stages live in the library (series, dicom, render, verdict, study,
 * audit); this file only prints, records and picks the exit status. The
 * watcher (modes_watch.c) prints and records its studies with the same
 * functions (hs_print_reading, hs_reading_json, hs_audit_path). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/audit.h"
#include "hemoscan/dicom.h"
#include "hemoscan/fileio.h"
#include "hemoscan/image.h"
#include "hemoscan/render.h"
#include "hemoscan/review.h"
#include "hemoscan/study.h"
#include "modes.h"

/* The default audit database: $HEMOSCAN_DB, else
 * $XDG_STATE_HOME/hemoscan/audit.db, else ~/.local/state/hemoscan/audit.db
 * (the XDG base directory specification's place for state that should
 * outlive a run). Folders it needs are created private (0700). */
const char *hs_audit_path(const options *o, char *buf, size_t len, hs_error *err)
{
    if (o->db != NULL)
        return o->db;
    const char *env = getenv("HEMOSCAN_DB");
    if (env != NULL && env[0] != '\0')
        return env;
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char dir[4096];
    if (state != NULL && state[0] == '/') {
        snprintf(dir, sizeof dir, "%s/hemoscan", state);
    } else if (home != NULL && home[0] != '\0') {
        snprintf(dir, sizeof dir, "%s/.local/state/hemoscan", home);
    } else {
        hs_fail(err, HS_ERR_ARG, "no --db given and neither HEMOSCAN_DB, XDG_STATE_HOME nor HOME is set");
        return NULL;
    }
    if (hs_make_dirs(dir, 0700, err) != HS_OK)
        return NULL;
    if ((size_t)snprintf(buf, len, "%s/audit.db", dir) >= len) {
        hs_fail(err, HS_ERR_ARG, "%s: path too long for the audit database", dir);
        return NULL;
    }
    return buf;
}

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
    static const int rank[] = {[EXIT_OK] = 0, [EXIT_FAILED] = 4, [EXIT_USAGE] = 5,
                               [EXIT_NO_SERIES] = 2, [EXIT_NOT_ASSESSABLE] = 3};
    return rank[a] >= rank[b] ? a : b;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

static json_t *json_text(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

/* The series the study verdict comes from, or NULL when none was read. */
static const hs_series *decisive_series(const hs_study_reading *r)
{
    return r->decisive < 0 ? NULL : &r->study.series[r->result[r->decisive].series_index];
}

/* The key slice of the decisive series, or NULL when there is none. */
static const hs_slice *key_slice(const hs_study_reading *r, const hs_series **series)
{
    *series = decisive_series(r);
    if (*series == NULL || r->verdict.key_slice < 0)
        return NULL;
    return &(*series)->slices[r->verdict.key_slice];
}

json_t *hs_reading_json(const hs_study_reading *r, const hs_model *model, long long verdict_id,
                        const hs_review_file *review)
{
    json_t *j = json_object();
    const hs_study *s = &r->study;
    json_object_set_new(j, "study_uid", json_text(s->study_uid));
    json_object_set_new(j, "folder", json_string(r->dir));
    json_object_set_new(j, "accession", json_text(s->accession));
    json_object_set_new(j, "study_date", json_text(s->study_date));
    json_object_set_new(j, "patient_id", json_text(s->patient_id));
    json_object_set_new(j, "verdict", json_string(hs_verdict_name(r->verdict.verdict)));
    json_object_set_new(j, "probability", hs_json_number(r->verdict.probability));
    json_object_set_new(j, "threshold", json_real(model->threshold));
    json_object_set_new(j, "confidence", hs_json_number(r->verdict.confidence));
    json_object_set_new(j, "confidence_label", json_text(r->verdict.confidence_label));
    const hs_series *ks = NULL;
    const hs_slice *k = key_slice(r, &ks);
    if (k != NULL) {
        json_t *kj = json_object();
        json_object_set_new(kj, "index", json_integer(r->verdict.key_slice));
        json_object_set_new(kj, "instance_number",
                            k->header.has_instance_number ? json_integer(k->header.instance_number) : json_null());
        json_object_set_new(kj, "sop_instance_uid", json_text(k->header.sop_uid));
        json_object_set_new(kj, "position_mm",
                            ks->sort_method == HS_SORT_POSITION ? json_real(k->position_along_normal) : json_null());
        json_object_set_new(kj, "probability",
                            hs_json_number(r->result[r->decisive].slice[r->verdict.key_slice].probability));
        json_object_set_new(kj, "file", json_string(k->header.path));
        /* 1-based as DICOM counts frames; null for a single-frame file */
        json_object_set_new(kj, "frame_number",
                            k->header.frames > 1 ? json_integer(k->header.frame + 1) : json_null());
        json_object_set_new(j, "key_slice", kj);
    } else {
        json_object_set_new(j, "key_slice", json_null());
    }
    const hs_series *ds = decisive_series(r);
    json_object_set_new(j, "series_uid", ds != NULL ? json_text(ds->series_uid) : json_null());
    json_object_set_new(j, "reason", json_text(r->verdict.reason));
    json_object_set_new(j, "model_sha256", json_string(model->sha256));
    json_t *series = json_array();
    for (int i = 0; i < s->n_series; i++) {
        const hs_series *se = &s->series[i];
        json_t *sj = json_object();
        json_object_set_new(sj, "series_uid", json_text(se->series_uid));
        json_object_set_new(sj, "description", json_text(se->description));
        json_object_set_new(sj, "slices", json_integer(se->n_slices));
        json_object_set_new(sj, "chosen", json_boolean(se->chosen));
        json_object_set_new(sj, "why", json_text(se->why));
        for (int k2 = 0; k2 < r->n_results; k2++) {
            if (r->result[k2].series_index != i)
                continue;
            const hs_study_verdict *v = &r->result[k2].verdict;
            json_object_set_new(sj, "verdict", json_string(hs_verdict_name(v->verdict)));
            json_object_set_new(sj, "probability", hs_json_number(v->probability));
            json_object_set_new(sj, "slices_scored", json_integer(v->n_scored));
            json_t *probs = json_array();
            for (int n = 0; n < se->n_slices; n++)
                json_array_append_new(probs, hs_json_number(r->result[k2].slice[n].probability));
            json_object_set_new(sj, "slice_probabilities", probs);
        }
        json_array_append_new(series, sj);
    }
    json_object_set_new(j, "series", series);
    json_object_set_new(j, "files_found", json_integer(s->n_files));
    json_object_set_new(j, "files_skipped", json_integer(s->n_skipped));
    json_object_set_new(j, "seconds", json_real(r->finished - r->started));
    json_object_set_new(j, "audit_verdict_id", verdict_id > 0 ? json_integer(verdict_id) : json_null());
    json_object_set_new(j, "review_file", review != NULL && review->path[0] ? json_string(review->path) : json_null());
    if (review != NULL && review->dicom_path[0]) {
        json_t *d = json_object();
        json_object_set_new(d, "path", json_string(review->dicom_path));
        json_object_set_new(d, "study_uid", json_string(review->dicom_study_uid));
        json_object_set_new(d, "series_uid", json_string(review->dicom_series_uid));
        json_object_set_new(d, "sop_instance_uid", json_string(review->dicom_sop_uid));
        json_object_set_new(j, "review_dicom", d);
    } else {
        json_object_set_new(j, "review_dicom", json_null());
    }
    return j;
}

void hs_print_reading(const hs_study_reading *r, const hs_model *model, const char *model_path,
                      const char *db_path, long long verdict_id, const hs_review_file *review, int verbose)
{
    const hs_study *s = &r->study;
    printf("study %s\n", s->study_uid[0] ? s->study_uid : "(no study UID)");
    printf("  folder:     %s\n", r->dir);
    if (s->accession[0] || s->study_date[0] || s->patient_id[0])
        printf("  accession:  %s  date %s  patient id %s\n", s->accession[0] ? s->accession : "-",
               s->study_date[0] ? s->study_date : "-", s->patient_id[0] ? s->patient_id : "-");
    for (int i = 0; i < r->n_results; i++) {
        const hs_series_result *res = &r->result[i];
        const hs_series *se = &s->series[res->series_index];
        printf("  series:     %s \"%s\", %d slices%s: %s\n", se->series_uid, se->description, se->n_slices,
               i == r->decisive ? " (decisive)" : "", se->why);
        if (r->n_results > 1)
            printf("              %s, probability %.3f\n", hs_verdict_name(res->verdict.verdict),
                   res->verdict.probability);
        for (int k = 0; k < se->n_slices; k++) {
            if (res->slice[k].error[0])
                printf("  not scored: %s: %s\n", base_name(se->slices[k].header.path), res->slice[k].error);
            else if (verbose > 0)
                printf("  slice %3d:  %.3f  %s\n", k + 1, res->slice[k].probability,
                       base_name(se->slices[k].header.path));
        }
    }
    const hs_study_verdict *v = &r->verdict;
    if (v->verdict == HS_VERDICT_NOT_ASSESSABLE) {
        printf("  verdict:    NOT ASSESSABLE: %s\n", v->reason);
    } else {
        printf("  verdict:    %s  probability %.3f (threshold %.3f), confidence %s\n",
               v->verdict == HS_VERDICT_HEMORRHAGE ? "HEMORRHAGE SUSPECTED" : "no hemorrhage found",
               v->probability, model->threshold, v->confidence_label);
        const hs_series *ks = NULL;
        const hs_slice *k = key_slice(r, &ks);
        if (k != NULL) {
            printf("  key slice:  %d of %d", v->key_slice + 1, ks->n_slices);
            if (k->header.has_instance_number)
                printf(", instance %d", k->header.instance_number);
            if (ks->sort_method == HS_SORT_POSITION)
                printf(", %.1f mm along the normal", k->position_along_normal);
            printf(", %s", base_name(k->header.path));
            if (k->header.frames > 1)
                printf(" frame %d", k->header.frame + 1);
            printf(" (%.3f)\n", r->result[r->decisive].slice[v->key_slice].probability);
        }
    }
    if (s->n_skipped > 0) {
        printf("  skipped:    %d of %d files", s->n_skipped, s->n_files);
        if (verbose > 0) {
            printf("\n");
            for (int i = 0; i < s->n_skipped; i++)
                printf("              %s: %s: %s\n", s->skipped[i].path, s->skipped[i].verdict,
                       s->skipped[i].reason);
        } else {
            printf(" (-v lists them)\n");
        }
    }
    printf("  model:      %s, sha256 %.16s...\n", base_name(model_path), model->sha256);
    if (db_path != NULL)
        printf("  recorded:   %s, verdict id %lld\n", db_path, verdict_id);
    if (review != NULL && review->path[0])
        printf("  review:     %s (%d pages)\n", review->path, review->pages);
    if (review != NULL && review->dicom_path[0])
        printf("  review SC:  %s (series %s, not for diagnostic use)\n", review->dicom_path,
               review->dicom_series_uid);
    printf("  time:       %.2f s\n", r->finished - r->started);
    printf("  hemoscan is decision support, not a diagnosis: a radiologist reads every study.\n");
}

hs_status hs_study_review(const options *o, hs_audit *audit, const hs_study_reading *r, const hs_model *model,
                          long long verdict_id, hs_review_file *out, hs_error *err)
{
    memset(out, 0, sizeof *out);
    hs_review_options ropt;
    hs_review_options_default(&ropt);
    ropt.threads = o->threads > 0 ? o->threads : 1;
    ropt.secondary_capture = o->review_dicom;
    hs_status st = hs_make_dirs(o->review_dir, 0700, err);
    if (st == HS_OK)
        st = hs_review_write(r, model, o->review_dir, &ropt, out, err);
    if (st != HS_OK || out->path[0] == '\0' || audit == NULL || verdict_id <= 0)
        return st;
    const hs_net *net = &model->member[0];
    int layer = hs_net_last_conv(net);
    char saliency[64];
    snprintf(saliency, sizeof saliency, "grad-cam layer %d (%dx%d)", layer, net->layers[layer].out.h,
             net->layers[layer].out.w);
    hs_audit_review_dicom dicom = {out->dicom_path, out->dicom_sha256, out->dicom_bytes,
                                   out->dicom_study_uid, out->dicom_series_uid, out->dicom_sop_uid};
    return hs_audit_record_review(audit, verdict_id, out->path, out->sha256, out->pages, out->slice_pages,
                                  out->bytes, saliency, out->dicom_path[0] ? &dicom : NULL, err);
}

void hs_study_prepare(const options *o, hs_study_options *sopt)
{
    hs_study_options_default(sopt);
    sopt->threads = o->threads;
    sopt->tta = o->tta;
    sopt->all_series = o->all_series;
    sopt->min_thickness_mm = o->min_thickness;
    sopt->max_thickness_mm = o->max_thickness;
    if (o->review_dir != NULL) {
        sopt->review_thumb_px = HS_REVIEW_THUMB_PX;
        /* pictures a killed run left half-written; a warning if one stays */
        hs_error err = {0};
        int removed = 0;
        if (hs_review_remove_stale(o->review_dir, &removed, &err) != HS_OK)
            fprintf(stderr, "hemoscan: warning: --review: %s\n", err.msg);
    }
}

int hs_mode_study(const options *o)
{
    hs_error err = {0};
    hs_model model;
    const char *model_path;
    if (hs_load_model(o, &model, &model_path) != EXIT_OK)
        return EXIT_FAILED;
    char db_buf[4096];
    const char *db_path = hs_audit_path(o, db_buf, sizeof db_buf, &err);
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
    hs_study_prepare(o, &sopt);

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
            if (hs_study_review(o, audit, &r, &model, verdict_id, &review, &rerr) != HS_OK) {
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
        if (o->json) {
            json_t *j = hs_reading_json(&r, &model, verdict_id, &review);
            json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
            fputc('\n', stdout);
            json_decref(j);
        } else if (o->verbose >= 0) {
            if (i > 0)
                printf("\n");
            hs_print_reading(&r, &model, model_path, db_path, verdict_id, &review, o->verbose);
        }
        fflush(stdout);
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
    char index[4200];
    FILE *csv = NULL;
    if ((size_t)snprintf(index, sizeof index, "%s/index.csv", dir) < sizeof index)
        csv = fopen(index, "w");
    else
        errno = ENAMETOOLONG;
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
        char name[32], path[4300];
        snprintf(name, sizeof name, "%04d.png", k + 1);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        hs_status st = hs_dicom_reader_read_hu(reader, h->path, h, hu, &err);
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

int hs_mode_export(const options *o)
{
    hs_error err = {0};
    hs_model model;
    const char *model_path;
    if (hs_load_model(o, &model, &model_path) != EXIT_OK)
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
            char name[80], dir[4200];
            hs_safe_file_name(study.series[s].series_uid, "series", name, sizeof name);
            snprintf(dir, sizeof dir, "%s/%s", o->out_dir, name);
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
