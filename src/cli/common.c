/* common.c - what the modes share: finding and loading the model, the
 * audit database's default place, printing a study reading (text or
 * JSON, and the one line a positive makes even with -q), and the study
 * options the command line asks for.
 *
 * Built this way on purpose:
 *   - main.c only parses and dispatches, and no mode calls another: what
 *     two modes need lives here, in the command-line layer, because all
 *     of it is about the command line (its options, its environment
 *     variables, what it prints). Work that is not printing lives in the
 *     library (the review pictures: review_store.h).
 *   - --study and --watch print a reading through one function
 *     (cli_emit_reading), so the two cannot drift apart. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/fileio.h"
#include "hemoscan/path.h"
#include "hemoscan/review.h"
#include "hemoscan/verdict.h"
#include "modes.h"

/* ---- the model ---------------------------------------------------------- */

/* The folders are fixed when hemoscan is built, so whether the paths fit
 * is settled then too: hs_path_join cannot fail below. */
_Static_assert(sizeof HEMOSCAN_DATADIR + sizeof CLI_DEFAULT_MODEL <= HS_PATH_MAX,
               "the data folder (configure --datadir) is too long for a path");
#ifdef HEMOSCAN_SOURCE_MODELS
_Static_assert(sizeof HEMOSCAN_SOURCE_MODELS + sizeof CLI_DEFAULT_MODEL <= HS_PATH_MAX,
               "the source tree's path is too long for a path");
#endif

const char *cli_model_path(const options *o)
{
    static char path[HS_PATH_MAX];
    if (o->model != NULL)
        return o->model;
    const char *env = getenv("HEMOSCAN_MODEL");
    if (env != NULL && env[0] != '\0')
        return env;
    struct stat st;
    hs_path_join(path, sizeof path, HEMOSCAN_DATADIR, CLI_DEFAULT_MODEL, NULL);
#ifdef HEMOSCAN_SOURCE_MODELS
    if (stat(path, &st) != 0) {
        char tree[HS_PATH_MAX];
        hs_path_join(tree, sizeof tree, HEMOSCAN_SOURCE_MODELS, CLI_DEFAULT_MODEL, NULL);
        if (stat(tree, &st) == 0)
            memcpy(path, tree, sizeof path);
    }
#else
    (void)st;
#endif
    return path;
}

int cli_load_model(const options *o, hs_model *model, const char **path)
{
    hs_error err = {0};
    *path = cli_model_path(o);
    if (hs_model_load(model, *path, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: %s\n", err.msg);
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

json_t *cli_json_number(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* ---- the audit database ------------------------------------------------- */

/* The default audit database: $HEMOSCAN_DB, else
 * $XDG_STATE_HOME/hemoscan/audit.db, else ~/.local/state/hemoscan/audit.db
 * (the XDG base directory specification's place for state that should
 * outlive a run). Folders it needs are created private (0700). */
const char *cli_audit_path(const options *o, char *buf, size_t len, hs_error *err)
{
    if (o->db != NULL)
        return o->db;
    const char *env = getenv("HEMOSCAN_DB");
    if (env != NULL && env[0] != '\0')
        return env;
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char dir[HS_PATH_MAX];
    hs_status st;
    if (state != NULL && state[0] == '/') {
        st = hs_path_join(dir, sizeof dir, state, "hemoscan", err);
    } else if (home != NULL && home[0] != '\0') {
        st = hs_path_join(dir, sizeof dir, home, ".local/state/hemoscan", err);
    } else {
        hs_fail(err, HS_ERR_ARG, "no --db given and neither HEMOSCAN_DB, XDG_STATE_HOME nor HOME is set");
        return NULL;
    }
    if (st != HS_OK || hs_make_dirs(dir, 0700, err) != HS_OK)
        return NULL;
    if (hs_path_join(buf, len, dir, "audit.db", err) != HS_OK)
        return NULL;
    return buf;
}

/* ---- a study reading, as text or JSON ---------------------------------- */

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

json_t *cli_reading_json(const hs_study_reading *r, const hs_model *model, long long verdict_id,
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
    json_object_set_new(j, "probability", cli_json_number(r->verdict.probability));
    json_object_set_new(j, "threshold", json_real(model->threshold));
    /* what was measured, in numbers and words; confidence and its label
     * stay for old readers (a margin; a negative's label is always "low") */
    json_object_set_new(j, "margin", cli_json_number(r->verdict.probability - model->threshold));
    char summary[512];
    hs_verdict_describe(&r->verdict, summary, sizeof summary);
    json_object_set_new(j, "summary", json_string(summary));
    json_object_set_new(j, "caveat", r->verdict.verdict == HS_VERDICT_NO_HEMORRHAGE
                                         ? json_string(HS_VERDICT_NEGATIVE_CAVEAT) : json_null());
    json_object_set_new(j, "confidence", cli_json_number(r->verdict.confidence));
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
                            cli_json_number(r->result[r->decisive].slice[r->verdict.key_slice].probability));
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
            json_object_set_new(sj, "probability", cli_json_number(v->probability));
            json_object_set_new(sj, "slices_scored", json_integer(v->n_scored));
            json_t *probs = json_array();
            for (int n = 0; n < se->n_slices; n++)
                json_array_append_new(probs, cli_json_number(r->result[k2].slice[n].probability));
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

void cli_print_reading(const hs_study_reading *r, const hs_model *model, const char *model_path,
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
    char words[512];
    hs_verdict_describe(v, words, sizeof words);
    printf("  verdict:    %s\n", words);
    if (v->verdict != HS_VERDICT_NOT_ASSESSABLE) {
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

/* The one line --watch prints per study at normal verbosity. */
static void print_reading_line(const hs_study_reading *r, long long verdict_id, const hs_review_file *review)
{
    char words[512];
    hs_verdict_describe(&r->verdict, words, sizeof words);
    const char *sep = review->path[0] != '\0' ? ", review " : "";
    printf("study %s: %s (%s, verdict id %lld%s%s)\n", r->study.study_uid, words, r->dir, verdict_id, sep,
           review->path);
}

void cli_clean_text(const char *in, char *out, size_t cap)
{
    if (cap == 0)
        return;
    size_t n = 0;
    for (; in != NULL && in[n] != '\0' && n + 1 < cap; n++) {
        unsigned char c = (unsigned char)in[n];
        out[n] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[n] = '\0';
}

void cli_positive_line(const hs_study_reading *r, long long verdict_id, char *buf, size_t cap)
{
    char acc[sizeof r->study.accession], uid[sizeof r->study.study_uid], dir[HS_PATH_MAX];
    cli_clean_text(r->study.accession, acc, sizeof acc);
    cli_clean_text(r->study.study_uid, uid, sizeof uid);
    cli_clean_text(r->dir, dir, sizeof dir);
    snprintf(buf, cap, "HEMORRHAGE SUSPECTED: accession %s, study %s, folder %s: study score %.3f "
             "(threshold %.3f), verdict id %lld", acc[0] ? acc : "-", uid[0] ? uid : "-", dir,
             r->verdict.probability, r->verdict.threshold, verdict_id);
}

void cli_emit_reading(const options *o, int brief, const hs_study_reading *r, const hs_model *model,
                      const char *model_path, const char *db_path, long long verdict_id,
                      const hs_review_file *review)
{
    if (o->json) {
        json_t *j = cli_reading_json(r, model, verdict_id, review);
        json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
        fputc('\n', stdout);
        json_decref(j);
    } else if (o->verbose < 0) {
        /* -q: a positive still makes one line (issue 20, case 8) */
        if (r->verdict.verdict == HS_VERDICT_HEMORRHAGE) {
            char line[2 * HS_PATH_MAX];
            cli_positive_line(r, verdict_id, line, sizeof line);
            printf("%s\n", line);
        }
    } else if (brief && o->verbose == 0) {
        print_reading_line(r, verdict_id, review);
    } else {
        cli_print_reading(r, model, model_path, db_path, verdict_id, review, o->verbose);
    }
    fflush(stdout);
}

/* ---- study options --------------------------------------------------------- */

void cli_study_options(const options *o, hs_study_options *sopt)
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


void cli_review_options(const options *o, hs_review_options *ropt)
{
    hs_review_options_default(ropt);
    ropt->threads = o->threads > 0 ? o->threads : 1;
    ropt->secondary_capture = o->review_dicom;
}

void cli_say_standing(hs_audit *audit, const char *dir, const hs_study_reading *r, long long verdict_id)
{
    hs_audit_standing standing;
    hs_error err = {0};
    if (hs_audit_verdict_standing(audit, verdict_id, &standing, &err) != HS_OK)
        fprintf(stderr, "hemoscan: audit database: %s\n", err.msg);
    else if (standing.outranked_by > 0)
        fprintf(stderr, "hemoscan: %s: study %s: verdict %lld is not the study's verdict: it %s; "
                "verdict %lld (%s) stands\n", dir, r->study.study_uid, verdict_id, standing.reason,
                standing.outranked_by, standing.outranked_verdict);
}
