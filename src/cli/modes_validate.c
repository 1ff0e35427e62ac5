/* modes_validate.c - --validate DIR --labels FILE: how a site measures the
 * model on its own labelled studies before go-live.
 *
 * Every study under DIR is read exactly as --study reads it (hs_study_read
 * or, for a flat folder, hs_study_read_files on the files of each
 * StudyInstanceUID, the watcher's grouping; the same model, series choice,
 * verdict rule and threshold) and recorded in the audit database as a
 * validation run, whose verdicts never supersede a production verdict
 * (schema 007, audit.h). Each study is matched to a label row by its
 * StudyInstanceUID or its folder name; the figures are the library's
 * (validation.h for the study level, metrics.h for the slice level and
 * every AUC), so this file only reads, matches, records and prints.
 *
 * Each reading is freed once recorded; what is kept of it is the little
 * the report needs (v_study, a few hundred bytes a study), so a long list
 * of studies does not hold their slices in memory. */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/audit.h"
#include "hemoscan/fileio.h"
#include "hemoscan/grow.h"
#include "hemoscan/metrics.h"
#include "hemoscan/path.h"
#include "hemoscan/study.h"
#include "hemoscan/validation.h"
#include "hemoscan/watch.h"
#include "modes.h"

/* What the report keeps of one study. */
typedef struct {
    char *name;             /* folder under DIR, or the UID in the flat form */
    char uid[HS_UID_KEY_MAX];
    int row;                /* its label row, -1 when it has none */
    int read;               /* 0: it could not be read (an error) */
    hs_verdict verdict;
    double probability;
    int key_slice;          /* 1-based in the decisive series; 0 when none */
    char *key_sop, *key_file;
    char reason[256];
    long long verdict_id;
} v_study;

/* Everything one run gathers. */
typedef struct {
    const options *o;
    hs_model model;
    hs_label_file labels, slice_labels;
    hs_audit *audit;
    long long run_id;
    v_study *study;
    int n_study, cap_study;
    int *row_used;          /* per study label row: studies matched to it */
    unsigned char *slice_used; /* per slice label row: matched */
    float *slice_score;
    int *slice_label, n_slices, cap_slices, cap_score; /* matched slice labels */
    int failed;             /* something went wrong: exit 1 */
} v_run;

/* ---- reading ------------------------------------------------------------ */

/* Slices of every series read whose SOPInstanceUID has a slice label. */
static int match_slices(v_run *v, const hs_study_reading *r)
{
    for (int k = 0; k < r->n_results; k++) {
        const hs_series_result *res = &r->result[k];
        const hs_series *se = &r->study.series[res->series_index];
        for (int i = 0; i < se->n_slices; i++) {
            int row = hs_labels_find(&v->slice_labels, se->slices[i].header.sop_uid);
            float p = res->slice[i].probability;
            if (row < 0 || !isfinite(p) || v->slice_used[row])
                continue;
            if (hs_grow((void **)&v->slice_score, &v->cap_score, v->n_slices + 1, sizeof *v->slice_score) != 0 ||
                hs_grow((void **)&v->slice_label, &v->cap_slices, v->n_slices + 1, sizeof *v->slice_label) != 0)
                return -1;
            v->slice_used[row] = 1;
            v->slice_score[v->n_slices] = p;
            v->slice_label[v->n_slices++] = v->slice_labels.row[row].label;
        }
    }
    return 0;
}

/* The label row of study s: by StudyInstanceUID, else by folder name. A
 * study labelled both ways uses its UID's row (the other is not reported
 * as a label with no study); a row that matches a second study is used
 * again, with a warning, since the study then counts twice. */
static void match_label(v_run *v, v_study *s)
{
    int by_uid = hs_labels_find(&v->labels, s->uid), by_name = hs_labels_find(&v->labels, s->name);
    s->row = by_uid >= 0 ? by_uid : by_name;
    if (s->row < 0)
        return;
    if (by_uid >= 0 && by_name >= 0 && by_name != by_uid) {
        fprintf(stderr, "hemoscan: %s: labelled by its UID (%s:%d) and by its folder (line %d); the UID's "
                "row is used\n", s->name, v->o->labels, v->labels.row[by_uid].line, v->labels.row[by_name].line);
        v->row_used[by_name]++;
    }
    if (v->row_used[s->row] > 0)
        fprintf(stderr, "hemoscan: %s: %s:%d matches another study too; both are counted\n", s->name,
                v->o->labels, v->labels.row[s->row].line);
    v->row_used[s->row]++;
}

/* Keeps what the report needs of reading r of the study called name. */
static int keep_reading(v_run *v, const char *name, const hs_study_reading *r, int read, long long verdict_id)
{
    if (hs_grow((void **)&v->study, &v->cap_study, v->n_study + 1, sizeof *v->study) != 0)
        return -1;
    v_study *s = &v->study[v->n_study];
    memset(s, 0, sizeof *s);
    s->name = strdup(name);
    if (s->name == NULL)
        return -1;
    v->n_study++;
    snprintf(s->uid, sizeof s->uid, "%s", r->study.study_uid);
    match_label(v, s);
    s->read = read;
    s->verdict_id = verdict_id;
    if (!read)
        return 0;
    s->verdict = r->verdict.verdict;
    s->probability = r->verdict.probability;
    snprintf(s->reason, sizeof s->reason, "%s", r->verdict.reason);
    if (r->decisive >= 0 && r->verdict.key_slice >= 0) {
        const hs_series *se = &r->study.series[r->result[r->decisive].series_index];
        const hs_dicom_header *h = &se->slices[r->verdict.key_slice].header;
        s->key_slice = r->verdict.key_slice + 1;
        s->key_sop = strdup(h->sop_uid);
        s->key_file = strdup(h->path);
        if (s->key_sop == NULL || s->key_file == NULL)
            return -1;
    }
    return match_slices(v, r);
}

/* Reads one study (files == NULL: the folder path; else the n files),
 * records it and keeps its summary. */
static void read_one(v_run *v, const char *name, const char *path, char *const *files, int n,
                     const hs_study_options *sopt)
{
    hs_error err = {0};
    hs_study_reading r;
    long long verdict_id = 0;
    hs_status st = files == NULL ? hs_study_read(path, &v->model, sopt, &r, &err)
                                 : hs_study_read_files(path, files, n, &v->model, sopt, &r, &err);
    int read = st == HS_OK;
    if (read)
        st = hs_audit_record_study(v->audit, v->run_id, &r, &v->model, &verdict_id, &err);
    if (!read) {
        hs_error err2 = {0};
        if (hs_audit_record_failure(v->audit, v->run_id, path, r.study.study_uid[0] ? r.study.study_uid : NULL,
                                    "read", err.msg, &err2) != HS_OK)
            fprintf(stderr, "hemoscan: audit database: %s\n", err2.msg);
    }
    if (st != HS_OK) {
        fprintf(stderr, "hemoscan: %s: %s\n", path, err.msg);
        v->failed = 1;
    }
    if (v->o->verbose > 0 && read)
        fprintf(stderr, "hemoscan: %s: %s\n", name, hs_verdict_name(r.verdict.verdict));
    if (keep_reading(v, name, &r, read, verdict_id) != 0) {
        fprintf(stderr, "hemoscan: out of memory\n");
        v->failed = 1;
    }
    hs_study_reading_free(&r);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The immediate subfolders of dir (not starting with '.'), sorted; -1
 * when dir cannot be listed. */
static int list_subfolders(const char *dir, char ***names, int *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int cap = 0, status = 0;
    for (struct dirent *e = readdir(d); e != NULL && status == 0; e = readdir(d)) {
        char path[HS_PATH_MAX];
        if (e->d_name[0] == '.' || hs_path_join(path, sizeof path, dir, e->d_name, NULL) != HS_OK ||
            !hs_path_is_dir(path))
            continue;
        char *copy = strdup(e->d_name);
        if (copy == NULL || hs_grow((void **)names, &cap, *n + 1, sizeof **names) != 0) {
            free(copy);
            status = -1;
            break;
        }
        (*names)[(*n)++] = copy;
    }
    closedir(d);
    if (*n > 1)
        qsort(*names, (size_t)*n, sizeof **names, cmp_name);
    return status;
}

/* The flat form: DIR holds DICOM files and no subfolders; the files are
 * grouped by StudyInstanceUID as the watcher groups a drop folder. */
static void read_flat(v_run *v, const char *dir, const hs_study_options *sopt)
{
    hs_error err = {0};
    hs_watch_listing l;
    if (hs_watch_list(dir, NULL, 0, NULL, NULL, NULL, &l, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: %s: %s\n", dir, err.msg);
        v->failed = 1;
        hs_watch_listing_free(&l);
        return;
    }
    if (l.n_loose > 0 && v->o->verbose >= 0)
        fprintf(stderr, "hemoscan: %s: %d file%s with no StudyInstanceUID left out\n", dir, l.n_loose,
                l.n_loose == 1 ? "" : "s");
    for (int s = 0; s < l.n_studies; s++) {
        const hs_watch_study *ws = &l.studies[s];
        char **paths = malloc((size_t)ws->n * sizeof *paths);
        if (paths == NULL) {
            v->failed = 1;
            break;
        }
        for (int i = 0; i < ws->n; i++)
            paths[i] = l.files[ws->file[i]].path;
        read_one(v, ws->study_uid, dir, paths, ws->n, sopt);
        free(paths);
    }
    hs_watch_listing_free(&l);
}

/* Every study under dir: one per subfolder, else the flat form. */
static int read_studies(v_run *v, const char *dir)
{
    hs_study_options sopt;
    cli_study_options(v->o, &sopt);
    char **names = NULL;
    int n = 0;
    if (list_subfolders(dir, &names, &n) != 0) {
        fprintf(stderr, "hemoscan: %s: cannot list the study folders\n", dir);
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return -1;
    }
    if (n == 0)
        read_flat(v, dir, &sopt);
    for (int i = 0; i < n; i++) {
        char path[HS_PATH_MAX];
        hs_error err = {0};
        if (hs_path_join(path, sizeof path, dir, names[i], &err) != HS_OK) {
            fprintf(stderr, "hemoscan: %s\n", err.msg);
            v->failed = 1;
        } else {
            read_one(v, names[i], path, NULL, 0, &sopt);
        }
        free(names[i]);
    }
    free(names);
    return 0;
}

/* ---- the audit trail ------------------------------------------------------ */

/* Every label row, study and slice, with the verdict a study row matched. */
static int record_labels(v_run *v)
{
    const hs_label_file *sl = &v->labels, *ll = &v->slice_labels;
    int n = sl->n + ll->n;
    hs_audit_validation_label *rows = calloc((size_t)(n > 0 ? n : 1), sizeof *rows);
    char(*subtypes)[128] = calloc((size_t)(sl->n > 0 ? sl->n : 1), sizeof *subtypes);
    int status = 0;
    if (rows == NULL || subtypes == NULL) {
        fprintf(stderr, "hemoscan: out of memory\n");
        status = -1;
    }
    for (int i = 0; status == 0 && i < sl->n; i++) {
        long long verdict_id = 0;
        for (int s = 0; s < v->n_study && verdict_id == 0; s++)
            if (v->study[s].row == i)
                verdict_id = v->study[s].verdict_id;
        hs_subtypes_text(sl->row[i].subtypes, subtypes[i], sizeof subtypes[i]);
        rows[i] = (hs_audit_validation_label){v->o->labels, sl->row[i].line, sl->row[i].key, NULL,
                                              sl->row[i].label, subtypes[i], verdict_id};
    }
    for (int i = 0; status == 0 && i < ll->n; i++)
        rows[sl->n + i] = (hs_audit_validation_label){v->o->slice_labels, ll->row[i].line, NULL,
                                                      ll->row[i].key, ll->row[i].label, NULL, 0};
    hs_error err = {0};
    if (status == 0 && hs_audit_record_validation_labels(v->audit, v->run_id, rows, n, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: audit database: %s\n", err.msg);
        status = -1;
    }
    free(rows);
    free(subtypes);
    return status;
}

/* ---- the figures ----------------------------------------------------------- */

/* The labelled studies that were read, as validation cases. */
static hs_status study_figures(const v_run *v, hs_validation_report *rep, hs_error *err)
{
    hs_validation_case *c = calloc((size_t)(v->n_study > 0 ? v->n_study : 1), sizeof *c);
    if (c == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "out of memory");
    int n = 0;
    for (int i = 0; i < v->n_study; i++) {
        const v_study *s = &v->study[i];
        if (s->row < 0 || !s->read)
            continue;
        const hs_label_row *l = &v->labels.row[s->row];
        int assessable = s->verdict != HS_VERDICT_NOT_ASSESSABLE;
        c[n++] = (hs_validation_case){l->label, l->subtypes, assessable, s->verdict == HS_VERDICT_HEMORRHAGE,
                                      assessable ? s->probability : NAN};
    }
    hs_status st = hs_validation_compute(c, n, rep, err);
    free(c);
    return st;
}

/* The scores and labels of the assessable labelled studies (for the ROC
 * picture); *n of them. */
static int study_scores(const v_run *v, float *score, int *label)
{
    int n = 0;
    for (int i = 0; i < v->n_study; i++) {
        const v_study *s = &v->study[i];
        if (s->row < 0 || !s->read || s->verdict == HS_VERDICT_NOT_ASSESSABLE)
            continue;
        score[n] = (float)s->probability;
        label[n++] = v->labels.row[s->row].label;
    }
    return n;
}

/* The ROC pictures of --plots; a picture that cannot be drawn (one class
 * only) is skipped with a note, not an error. */
static void write_plots(v_run *v)
{
    float *score = malloc((size_t)(v->n_study > 0 ? v->n_study : 1) * sizeof *score);
    int *label = malloc((size_t)(v->n_study > 0 ? v->n_study : 1) * sizeof *label);
    hs_error err = {0};
    if (score == NULL || label == NULL) {
        fprintf(stderr, "hemoscan: out of memory\n");
        v->failed = 1;
    } else {
        int n = study_scores(v, score, label);
        if (cli_roc_plot(v->o->plots, "validation-roc.svg", "hemoscan validation, study level", score, label, n,
                         v->model.threshold, &err) != HS_OK)
            fprintf(stderr, "hemoscan: --plots: study ROC not drawn: %s\n", err.msg);
    }
    if (v->slice_labels.n > 0 &&
        cli_roc_plot(v->o->plots, "validation-slice-roc.svg", "hemoscan validation, slice level", v->slice_score,
                     v->slice_label, v->n_slices, v->model.threshold, &err) != HS_OK)
        fprintf(stderr, "hemoscan: --plots: slice ROC not drawn: %s\n", err.msg);
    free(score);
    free(label);
}

/* ---- printing --------------------------------------------------------------- */

/* "tp", "fn", "fp", "tn", "not_assessable", "unlabelled" or "failed". */
static const char *outcome(const v_run *v, const v_study *s)
{
    if (!s->read)
        return "failed";
    if (s->row < 0)
        return "unlabelled";
    if (s->verdict == HS_VERDICT_NOT_ASSESSABLE)
        return "not_assessable";
    int pos = v->labels.row[s->row].label, flagged = s->verdict == HS_VERDICT_HEMORRHAGE;
    return pos ? (flagged ? "tp" : "fn") : (flagged ? "fp" : "tn");
}

static json_t *json_text_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *study_json(const v_run *v, const v_study *s)
{
    json_t *j = json_object();
    json_object_set_new(j, "study", json_string(s->name));
    json_object_set_new(j, "study_uid", json_text_or_null(s->uid));
    const hs_label_row *l = s->row >= 0 ? &v->labels.row[s->row] : NULL;
    json_object_set_new(j, "label", l != NULL ? json_integer(l->label) : json_null());
    char sub[128] = "";
    if (l != NULL)
        hs_subtypes_text(l->subtypes, sub, sizeof sub);
    json_object_set_new(j, "subtypes", json_text_or_null(sub));
    json_object_set_new(j, "verdict", s->read ? json_string(hs_verdict_name(s->verdict)) : json_null());
    json_object_set_new(j, "probability", s->read ? cli_json_number(s->probability) : json_null());
    json_object_set_new(j, "outcome", json_string(outcome(v, s)));
    json_object_set_new(j, "key_slice", s->key_slice > 0 ? json_integer(s->key_slice) : json_null());
    json_object_set_new(j, "key_slice_sop_instance_uid", json_text_or_null(s->key_sop));
    json_object_set_new(j, "key_slice_file", json_text_or_null(s->key_file));
    json_object_set_new(j, "reason", json_text_or_null(s->reason));
    json_object_set_new(j, "verdict_id", s->verdict_id > 0 ? json_integer(s->verdict_id) : json_null());
    return j;
}

static json_t *ci_json(double lo, double hi)
{
    json_t *a = json_array();
    json_array_append_new(a, cli_json_number(lo));
    json_array_append_new(a, cli_json_number(hi));
    return a;
}

static json_t *confusion_json(const hs_validation_report *r)
{
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "tp", r->tp, "fn", r->fn, "fp", r->fp, "tn", r->tn,
                     "not_assessable_positive", r->na_positives, "not_assessable_negative", r->na_negatives);
}

/* The lists beside the figures: studies without a label, labels without
 * a study, not-assessable and failed studies. */
static void lists_json(const v_run *v, json_t *j)
{
    json_t *unlabelled = json_array(), *orphans = json_array(), *na = json_array(), *failed = json_array();
    for (int i = 0; i < v->n_study; i++) {
        const v_study *s = &v->study[i];
        if (s->row < 0)
            json_array_append_new(unlabelled, json_string(s->name));
        if (!s->read)
            json_array_append_new(failed, json_string(s->name));
        else if (s->verdict == HS_VERDICT_NOT_ASSESSABLE)
            json_array_append_new(na, json_pack("{s:s, s:o, s:s}", "study", s->name, "label",
                                                s->row >= 0 ? json_integer(v->labels.row[s->row].label) : json_null(),
                                                "reason", s->reason));
    }
    for (int i = 0; i < v->labels.n; i++)
        if (v->row_used[i] == 0)
            json_array_append_new(orphans, json_pack("{s:s, s:i, s:i}", "study", v->labels.row[i].key, "line",
                                                     v->labels.row[i].line, "label", v->labels.row[i].label));
    json_object_set_new(j, "studies_without_label", unlabelled);
    json_object_set_new(j, "labels_without_study", orphans);
    json_object_set_new(j, "not_assessable", na);
    json_object_set_new(j, "failed", failed);
}

static void subtypes_json(const hs_validation_report *r, json_t *j)
{
    json_t *st = json_object();
    for (int s = 0; s < HS_SUBTYPES; s++)
        if (r->subtype_positives[s] > 0)
            json_object_set_new(st, hs_subtype_name(s),
                                json_pack("{s:o, s:i, s:i}", "sensitivity", cli_json_number(r->subtype_sensitivity[s]),
                                          "found", r->subtype_found[s], "positives", r->subtype_positives[s]));
    json_object_set_new(j, "subtype_sensitivity", st);
}

static int any_subtypes(const hs_validation_report *r)
{
    int n = 0;
    for (int s = 0; s < HS_SUBTYPES; s++)
        n += r->subtype_positives[s];
    return n > 0;
}

static void print_json(const v_run *v, const hs_validation_report *r, const hs_binary_metrics *sm)
{
    json_t *j = json_object();
    json_object_set_new(j, "mode", json_string("validate"));
    json_object_set_new(j, "dir", json_string(v->o->validate_dir));
    json_object_set_new(j, "labels", json_string(v->o->labels));
    json_object_set_new(j, "model_sha256", json_string(v->model.sha256));
    json_object_set_new(j, "threshold", json_real(v->model.threshold));
    json_object_set_new(j, "run_id", json_integer(v->run_id));
    json_object_set_new(j, "study_auc", cli_json_number(r->auc));
    json_object_set_new(j, "study_auc_ci95", ci_json(r->auc_lo, r->auc_hi));
    json_object_set_new(j, "sensitivity", cli_json_number(r->sensitivity));
    json_object_set_new(j, "specificity", cli_json_number(r->specificity));
    json_object_set_new(j, "sensitivity_assessable", cli_json_number(r->sensitivity_assessable));
    json_object_set_new(j, "specificity_assessable", cli_json_number(r->specificity_assessable));
    json_object_set_new(j, "positives", json_integer(r->positives));
    json_object_set_new(j, "negatives", json_integer(r->negatives));
    json_object_set_new(j, "n_studies", json_integer(v->n_study));
    json_object_set_new(j, "n_labelled", json_integer(r->n));
    json_object_set_new(j, "confusion", confusion_json(r));
    json_t *studies = json_array();
    for (int i = 0; i < v->n_study; i++)
        json_array_append_new(studies, study_json(v, &v->study[i]));
    json_object_set_new(j, "studies", studies);
    lists_json(v, j);
    if (any_subtypes(r))
        subtypes_json(r, j);
    if (v->o->slice_labels != NULL) {
        json_object_set_new(j, "slice_auc", cli_json_number(sm->auc));
        json_object_set_new(j, "slice_auc_ci95", ci_json(sm->auc_lo, sm->auc_hi));
        json_object_set_new(j, "n_slices", json_integer(v->n_slices));
        json_object_set_new(j, "slice_labels", json_integer(v->slice_labels.n));
        json_object_set_new(j, "slice_sensitivity", v->n_slices > 0 ? cli_json_number(sm->sensitivity) : json_null());
        json_object_set_new(j, "slice_specificity", v->n_slices > 0 ? cli_json_number(sm->specificity) : json_null());
    }
    char *text = json_dumps(j, JSON_COMPACT);
    if (text != NULL)
        printf("%s\n", text);
    free(text);
    json_decref(j);
}

/* "0.900 (9/10)", or "n/a (0/0)". */
static void print_ratio(const char *what, double v, int num, int den)
{
    if (isfinite(v))
        printf("%s %.3f (%d/%d)", what, v, num, den);
    else
        printf("%s n/a (%d/%d)", what, num, den);
}

static void print_auc(const char *what, double auc, double lo, double hi, int n)
{
    if (isfinite(auc) && isfinite(lo))
        printf("%s %.3f (95%% CI %.3f to %.3f; %d assessable)\n", what, auc, lo, hi, n);
    else if (isfinite(auc))
        printf("%s %.3f (95%% CI n/a; %d assessable)\n", what, auc, n);
    else
        printf("%s n/a (needs both labels among %d assessable)\n", what, n);
}

static void print_table(const v_run *v)
{
    printf("%-32s %-5s %-11s %-15s %s\n", "study", "label", "probability", "verdict", "key slice");
    for (int i = 0; i < v->n_study; i++) {
        const v_study *s = &v->study[i];
        char label[8] = "-", prob[16] = "-";
        if (s->row >= 0)
            snprintf(label, sizeof label, "%d", v->labels.row[s->row].label);
        if (s->read && isfinite(s->probability))
            snprintf(prob, sizeof prob, "%.3f", s->probability);
        printf("%-32s %-5s %-11s %-15s ", s->name, label, prob, s->read ? hs_verdict_name(s->verdict) : "(failed)");
        if (s->key_slice > 0)
            printf("%d %s\n", s->key_slice, s->key_sop != NULL && s->key_sop[0] ? s->key_sop : s->key_file);
        else
            printf("-\n");
    }
}

static void print_lists(const v_run *v)
{
    int none = 0, orphans = 0, na = 0;
    for (int i = 0; i < v->n_study; i++) {
        none += v->study[i].row < 0;
        na += v->study[i].read && v->study[i].verdict == HS_VERDICT_NOT_ASSESSABLE;
    }
    for (int i = 0; i < v->labels.n; i++)
        orphans += v->row_used[i] == 0;
    printf("Not assessable: %d (each a study the reader gets no prompt for)\n", na);
    for (int i = 0; i < v->n_study; i++) {
        const v_study *s = &v->study[i];
        if (s->read && s->verdict == HS_VERDICT_NOT_ASSESSABLE)
            printf("  %s (label %s): %s\n", s->name, s->row < 0 ? "none" : v->labels.row[s->row].label ? "1, a miss" : "0",
                   s->reason);
    }
    printf("Studies with no label: %d\n", none);
    for (int i = 0; i < v->n_study; i++)
        if (v->study[i].row < 0)
            printf("  %s%s%s\n", v->study[i].name, v->study[i].uid[0] ? " " : "", v->study[i].uid);
    printf("Labels with no study: %d\n", orphans);
    for (int i = 0; i < v->labels.n; i++)
        if (v->row_used[i] == 0)
            printf("  %s:%d: %s\n", v->o->labels, v->labels.row[i].line, v->labels.row[i].key);
}

/* The report a site reads, in order: table, figures, lists. */
static void print_text(const v_run *v, const hs_validation_report *r, const hs_binary_metrics *sm)
{
    printf("hemoscan validation of %s against %s\n", v->o->validate_dir, v->o->labels);
    printf("model %s, threshold %.3f\n\n", v->model.sha256, v->model.threshold);
    print_table(v);
    printf("\nStudies read: %d; labelled and read: %d (%d hemorrhage, %d normal)\n", v->n_study, r->n,
           r->positives, r->negatives);
    print_auc("Study ROC AUC", r->auc, r->auc_lo, r->auc_hi, r->n - r->na_positives - r->na_negatives);
    printf("At the threshold %.3f (a not-assessable study counts as no success):\n  ", v->model.threshold);
    print_ratio("sensitivity", r->sensitivity, r->tp, r->positives);
    printf(", ");
    print_ratio("specificity", r->specificity, r->tn, r->negatives);
    printf("\n  assessable studies only: ");
    print_ratio("sensitivity", r->sensitivity_assessable, r->tp, r->tp + r->fn);
    printf(", ");
    print_ratio("specificity", r->specificity_assessable, r->tn, r->tn + r->fp);
    printf("\nConfusion matrix:   flagged  not flagged  not assessable\n");
    printf("  hemorrhage      %9d  %11d  %14d\n", r->tp, r->fn, r->na_positives);
    printf("  normal          %9d  %11d  %14d\n", r->fp, r->tn, r->na_negatives);
    if (any_subtypes(r)) {
        printf("Sensitivity by subtype:\n");
        for (int s = 0; s < HS_SUBTYPES; s++) {
            if (r->subtype_positives[s] == 0)
                continue;
            printf("  ");
            print_ratio(hs_subtype_name(s), r->subtype_sensitivity[s], r->subtype_found[s], r->subtype_positives[s]);
            printf("\n");
        }
    }
    if (v->o->slice_labels != NULL) {
        printf("Slice level: %d of %d labelled slices matched (by SOP instance UID) and scored\n", v->n_slices,
               v->slice_labels.n);
        print_auc("  slice ROC AUC", sm->auc, sm->auc_lo, sm->auc_hi, v->n_slices);
    }
    print_lists(v);
    printf("Recorded as validation run %lld (current verdicts unchanged)\n", v->run_id);
}

/* ---- the mode ---------------------------------------------------------------- */

/* The slice-level figures (all NaN without matched slices). */
static int slice_figures(const v_run *v, hs_binary_metrics *sm)
{
    memset(sm, 0, sizeof *sm);
    sm->auc = sm->auc_lo = sm->auc_hi = sm->sensitivity = sm->specificity = NAN;
    hs_error err = {0};
    if (v->n_slices > 0 &&
        hs_binary_metrics_compute(v->slice_score, v->slice_label, v->n_slices, v->model.threshold, sm, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: slice figures: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* The label files and the database; -1 after a message. */
static int setup(v_run *v, char *db_buf, size_t db_len)
{
    const options *o = v->o;
    hs_error err = {0};
    if (hs_labels_read(o->labels, 0, &v->labels, &err) != HS_OK ||
        (o->slice_labels != NULL && hs_labels_read(o->slice_labels, 1, &v->slice_labels, &err) != HS_OK)) {
        fprintf(stderr, "hemoscan: %s\n", err.msg);
        return -1;
    }
    if (v->labels.n == 0) {
        fprintf(stderr, "hemoscan: %s: no labels (expected study,label lines)\n", o->labels);
        return -1;
    }
    v->row_used = calloc((size_t)(v->labels.n > 0 ? v->labels.n : 1), sizeof *v->row_used);
    v->slice_used = calloc((size_t)(v->slice_labels.n > 0 ? v->slice_labels.n : 1), 1);
    if (v->row_used == NULL || v->slice_used == NULL) {
        fprintf(stderr, "hemoscan: out of memory\n");
        return -1;
    }
    if (!hs_path_is_dir(o->validate_dir)) {
        fprintf(stderr, "hemoscan: --validate %s: not a folder\n", o->validate_dir);
        return -1;
    }
    const char *model_path;
    if (cli_load_model(o, &v->model, &model_path) != EXIT_OK)
        return -1;
    const char *db_path = cli_audit_path(o, db_buf, db_len, &err);
    hs_audit_run run = {"validate", o->command, model_path, v->model.sha256, v->model.provenance.note};
    if (db_path == NULL || hs_audit_open(db_path, &v->audit, &err) != HS_OK ||
        hs_audit_validation_run_begin(v->audit, &run, &v->run_id, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: audit database: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void cleanup(v_run *v)
{
    for (int i = 0; i < v->n_study; i++) {
        free(v->study[i].name);
        free(v->study[i].key_sop);
        free(v->study[i].key_file);
    }
    free(v->study);
    free(v->row_used);
    free(v->slice_used);
    free(v->slice_score);
    free(v->slice_label);
    hs_labels_free(&v->labels);
    hs_labels_free(&v->slice_labels);
    hs_audit_close(v->audit);
    hs_model_free(&v->model);
}

int cli_mode_validate(const options *o)
{
    v_run v;
    memset(&v, 0, sizeof v);
    v.o = o;
    char db_buf[HS_PATH_MAX];
    if (setup(&v, db_buf, sizeof db_buf) != 0) {
        cleanup(&v);
        return EXIT_FAILED;
    }
    if (read_studies(&v, o->validate_dir) != 0)
        v.failed = 1;
    hs_validation_report rep;
    hs_binary_metrics sm;
    hs_error err = {0};
    if (record_labels(&v) != 0 || slice_figures(&v, &sm) != 0)
        v.failed = 1;
    if (study_figures(&v, &rep, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: %s\n", err.msg);
        v.failed = 1;
    } else {
        if (o->plots != NULL)
            write_plots(&v);
        if (o->json)
            print_json(&v, &rep, &sm);
        else if (o->verbose >= 0)
            print_text(&v, &rep, &sm);
    }
    int status = v.failed ? EXIT_FAILED : EXIT_OK;
    if (hs_audit_run_end(v.audit, v.run_id, status, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: audit database: %s\n", err.msg);
        status = EXIT_FAILED;
    }
    cleanup(&v);
    fflush(stdout);
    return status;
}
