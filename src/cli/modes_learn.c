/* modes_learn.c - the modes that learn from and score PNG images: --train
 * (with --cv for cross-validation), --predict and --eval.
 *
 * These only wire modules together: dataset (which files, which splits),
 * train (examples and the training loop), predict (ensemble and flip
 * averaging), metrics and plot (what a person reads). The same input
 * recipe and predictor serve training, evaluation and prediction, so the
 * numbers --eval and --cv report are what --predict and the DICOM path
 * produce. Machine-readable output (--json) goes through Jansson. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/dataset.h"
#include "hemoscan/fileio.h"
#include "hemoscan/image.h"
#include "hemoscan/metrics.h"
#include "hemoscan/plot.h"
#include "hemoscan/predict.h"
#include "hemoscan/train.h"
#include "modes.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

static int fail(const hs_error *err)
{
    fprintf(stderr, "hemoscan: %s\n", err->msg);
    return EXIT_FAILED;
}

/* ---- shared pieces ------------------------------------------------------ */

/* The reference layer list; K > 2 classes end in a K-way softmax. */
static int layer_list(int n_classes, float dropout, hs_layer_spec *specs, int max)
{
    int n = hs_net_reference_specs(specs, max, dropout);
    if (n_classes > 2) {
        specs[n - 2].units = n_classes;
        specs[n - 1].kind = HS_LAYER_SOFTMAX;
    }
    return n;
}

/* The training date; SOURCE_DATE_EPOCH (the reproducible-builds
 * convention) overrides the clock so a retrained model can be identical to
 * the byte. */
static void utc_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    const char *fixed = getenv("SOURCE_DATE_EPOCH");
    if (fixed != NULL && fixed[0] != '\0')
        t = (time_t)strtoll(fixed, NULL, 10);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* DIR/train + DIR/validate, or DIR's class folders split by --val-split
 * (grouped by --groups, or by DIR/groups.csv when present). */
static hs_status training_data(const options *o, const char *dir, hs_dataset *all,
                               unsigned char **is_val, hs_error *err)
{
    char train_dir[4096], val_dir[4096];
    snprintf(train_dir, sizeof train_dir, "%s/train", dir);
    snprintf(val_dir, sizeof val_dir, "%s/validate", dir);
    *is_val = NULL;
    if (hs_path_is_dir(train_dir) && hs_path_is_dir(val_dir) && o->cv_folds == 0) {
        hs_dataset train, val;
        hs_status st = hs_dataset_scan(train_dir, &train, err);
        if (st != HS_OK)
            return st;
        st = hs_dataset_scan_classes(val_dir, train.n_classes,
                                     (const char (*)[HS_MODEL_NAME_LEN])train.class_name, &val, err);
        if (st != HS_OK) {
            hs_dataset_free(&train);
            return st;
        }
        /* One data set with a validation flag, like the split case. */
        unsigned char *flag = calloc((size_t)(train.n + val.n), 1);
        hs_dataset merged = train;
        merged.path = realloc(train.path, (size_t)(train.n + val.n) * sizeof *merged.path);
        if (merged.path != NULL)
            train.path = merged.path;
        merged.id = realloc(train.id, (size_t)(train.n + val.n) * sizeof *merged.id);
        if (merged.id != NULL)
            train.id = merged.id;
        merged.label = realloc(train.label, (size_t)(train.n + val.n) * sizeof *merged.label);
        if (merged.label != NULL)
            train.label = merged.label;
        merged.group = realloc(train.group, (size_t)(train.n + val.n) * sizeof *merged.group);
        if (merged.group != NULL)
            train.group = merged.group;
        if (flag == NULL || merged.path == NULL || merged.id == NULL || merged.label == NULL ||
            merged.group == NULL) {
            free(flag);
            hs_dataset_free(&train);
            hs_dataset_free(&val);
            return hs_fail(err, HS_ERR_NOMEM, "out of memory");
        }
        for (int i = 0; i < val.n; i++) {
            merged.path[train.n + i] = val.path[i];
            merged.id[train.n + i] = val.id[i];
            merged.label[train.n + i] = val.label[i];
            merged.group[train.n + i] = train.n + i;
            flag[train.n + i] = 1;
        }
        merged.n = train.n + val.n;
        free(val.path);
        free(val.id);
        free(val.label);
        free(val.group);
        *all = merged;
        *is_val = flag;
        return HS_OK;
    }
    const char *scan_dir = hs_path_is_dir(train_dir) ? train_dir : dir;
    hs_status st = hs_dataset_scan(scan_dir, all, err);
    if (st != HS_OK)
        return st;
    char groups[4096];
    snprintf(groups, sizeof groups, "%s/groups.csv", dir);
    const char *groups_file = o->groups != NULL ? o->groups : (hs_path_is_file(groups) ? groups : NULL);
    if (groups_file != NULL) {
        st = hs_dataset_load_groups(all, groups_file, err);
        if (st != HS_OK) {
            hs_dataset_free(all);
            return st;
        }
    }
    if (o->cv_folds > 0)
        return HS_OK;
    *is_val = malloc((size_t)all->n);
    if (*is_val == NULL) {
        hs_dataset_free(all);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory");
    }
    st = hs_dataset_split(all, o->val_split, o->seed, *is_val, err);
    if (st != HS_OK) {
        free(*is_val);
        *is_val = NULL;
        hs_dataset_free(all);
    }
    return st;
}

/* --fold-ensemble: the training and validation images (is_val 0 and 1;
 * 2 marks a cross-validation test fold, left out) pooled and dealt into
 * one grouped, stratified fold per member, then hs_train_folds. */
static hs_status train_fold_ensemble(const options *o, const hs_dataset *ds, const hs_examples *ex,
                                     const unsigned char *is_val, const hs_layer_spec *specs, int n_specs,
                                     hs_model *model, hs_history *hist, float *file_oof, hs_error *err)
{
    unsigned char *left_out = malloc((size_t)ds->n);
    int *file_fold = malloc((size_t)ds->n * sizeof *file_fold);
    int *fold = malloc((size_t)(ex->n > 0 ? ex->n : 1) * sizeof *fold);
    float *oof = malloc((size_t)(ex->n > 0 ? ex->n : 1) * sizeof *oof);
    hs_examples pool = {0};
    hs_dataset rest = {0};
    hs_status st = left_out == NULL || file_fold == NULL || fold == NULL || oof == NULL
                       ? hs_fail(err, HS_ERR_NOMEM, "out of memory")
                       : HS_OK;
    for (int i = 0; st == HS_OK && i < ds->n; i++)
        left_out[i] = is_val[i] == 2;
    if (st == HS_OK)
        st = hs_dataset_select(ds, left_out, 0, &rest, err);
    int *rest_fold = st == HS_OK ? malloc((size_t)(rest.n > 0 ? rest.n : 1) * sizeof *rest_fold) : NULL;
    if (st == HS_OK && rest_fold == NULL)
        st = hs_fail(err, HS_ERR_NOMEM, "out of memory");
    if (st == HS_OK)
        st = hs_dataset_folds(&rest, o->train.members, o->seed + 7919ULL, rest_fold, err);
    for (int i = 0, j = 0; st == HS_OK && i < ds->n; i++)
        file_fold[i] = left_out[i] ? -1 : rest_fold[j++];
    if (st == HS_OK)
        st = hs_examples_select(ex, left_out, 0, &pool, err);
    for (int i = 0; st == HS_OK && i < pool.n; i++)
        fold[i] = file_fold[pool.source[i]];
    if (st == HS_OK && o->verbose >= 0)
        fprintf(stderr, "fold ensemble of %d members on %d images\n", o->train.members, pool.n);
    if (st == HS_OK)
        st = hs_train_folds(&o->train, specs, n_specs, &pool, fold, model, hist, oof, err);
    for (int i = 0; st == HS_OK && file_oof != NULL && i < pool.n; i++)
        file_oof[pool.source[i]] = oof[i];
    hs_examples_free(&pool);
    hs_dataset_free(&rest);
    free(rest_fold);
    free(left_out);
    free(file_fold);
    free(fold);
    free(oof);
    return st;
}

/* The model of --init-from, loaded and checked against the input recipe
 * of the models trained: the same input size and channel count (the
 * channels' windows may differ; the weights then start from pictures cut
 * another way, which training corrects or not, as cross-validation shows). */
static hs_status starting_model(const options *o, hs_model *init, hs_error *err)
{
    hs_status st = hs_model_load(init, o->init_from, err);
    if (st != HS_OK)
        return st;
    const hs_input_recipe *a = &init->recipe, *b = &o->train_recipe;
    if (a->width != b->width || a->height != b->height || a->channels != b->channels) {
        hs_fail(err, HS_ERR_ARG, "--init-from %s: its input is %dx%dx%d, the networks trained take %dx%dx%d",
                o->init_from, a->width, a->height, a->channels, b->width, b->height, b->channels);
        hs_model_free(init);
        return HS_ERR_ARG;
    }
    return HS_OK;
}

/* Train one model on the examples with is_val[source] == 0, choosing epochs
 * and threshold on those with is_val == 1 (or, with a fold ensemble, the
 * default, a fold ensemble on both). file_oof (may be NULL; one entry per
 * file of ds) receives, for a fold ensemble, each pooled picture's
 * out-of-fold score, the scores the threshold was placed on. */
static hs_status train_on(const options *o, const hs_dataset *ds, const hs_examples *ex,
                          const unsigned char *is_val, const char *data_sha, hs_model *model,
                          hs_history *hist, float *file_oof, hs_error *err)
{
    memset(model, 0, sizeof *model);
    model->recipe = o->train_recipe;
    model->n_classes = ds->n_classes;
    memcpy(model->class_name, ds->class_name, sizeof model->class_name);
    hs_provenance *p = &model->provenance;
    snprintf(p->data_sha256, sizeof p->data_sha256, "%s", data_sha);
    utc_now(p->date, sizeof p->date);
    snprintf(p->version, sizeof p->version, "%s", PACKAGE_VERSION);
    /* The note holds as much of the command line as fits. */
    size_t note_len = strlen(o->command) < sizeof p->note - 1 ? strlen(o->command) : sizeof p->note - 1;
    memcpy(p->note, o->command, note_len);
    p->note[note_len] = '\0';
    hs_layer_spec specs[16];
    int n = layer_list(ds->n_classes, o->train.dropout, specs, 16);
    options started = *o;
    hs_model init;
    memset(&init, 0, sizeof init);
    hs_status st = HS_OK;
    if (o->init_from != NULL) {
        st = starting_model(o, &init, err);
        started.train.init = &init;
        if (st == HS_OK) /* the note names the weights it started from */
            snprintf(p->note, sizeof p->note, "started from sha256 %s; %.160s", init.sha256, o->command);
    }
    o = &started;
    if (st == HS_OK && o->train.fold_ensemble) {
        st = train_fold_ensemble(o, ds, ex, is_val, specs, n, model, hist, file_oof, err);
    } else if (st == HS_OK) {
        hs_examples train = {0}, val = {0};
        st = hs_examples_select(ex, is_val, 0, &train, err);
        if (st == HS_OK)
            st = hs_examples_select(ex, is_val, 1, &val, err);
        if (st == HS_OK && o->verbose >= 0)
            fprintf(stderr, "training on %d images, validating on %d\n", train.n, val.n);
        if (st == HS_OK)
            st = hs_train(&o->train, specs, n, &train, &val, model, hist, err);
        hs_examples_free(&train);
        hs_examples_free(&val);
    }
    hs_model_free(&init);
    if (st != HS_OK)
        hs_model_free(model);
    return st;
}

/* Replace path's extension (if any) with suffix. */
static void sibling_path(const char *path, const char *suffix, char *out, size_t len)
{
    snprintf(out, len, "%s", path);
    char *slash = strrchr(out, '/');
    char *dot = strrchr(out, '.');
    if (dot != NULL && (slash == NULL || dot > slash))
        *dot = '\0';
    size_t used = strlen(out);
    snprintf(out + used, len - used, "%s", suffix);
}

/* ---- --train ---------------------------------------------------------- */

int cli_mode_train(const options *o)
{
    if (o->model == NULL) {
        fprintf(stderr, "hemoscan: --train needs --model OUT (the file to write)\n");
        return EXIT_USAGE;
    }
    hs_error err;
    hs_dataset ds;
    unsigned char *is_val = NULL;
    if (training_data(o, o->train_dir, &ds, &is_val, &err) != HS_OK)
        return fail(&err);
    char data_sha[65];
    hs_examples ex = {0};
    hs_model model;
    hs_history hist = {0};
    int skipped = 0, rc = EXIT_FAILED;
    const hs_input_recipe recipe = o->train_recipe;
    if (hs_dataset_checksum(&ds, data_sha, &err) != HS_OK ||
        hs_examples_load(&ds, &recipe, stderr, &ex, &skipped, &err) != HS_OK) {
        fail(&err);
        goto done_data;
    }
    if (o->verbose >= 0)
        fprintf(stderr, "%d images in %d classes (%d skipped), data sha256 %s\n", ex.n, ds.n_classes,
                skipped, data_sha);
    if (train_on(o, &ds, &ex, is_val, data_sha, &model, &hist, NULL, &err) != HS_OK) {
        fail(&err);
        goto done_data;
    }
    char history_path[4096];
    sibling_path(o->model, ".history.csv", history_path, sizeof history_path);
    if (hs_model_save(&model, o->model, &err) != HS_OK ||
        hs_history_write_csv(&hist, history_path, &err) != HS_OK) {
        fail(&err);
        goto done_model;
    }
    if (o->plots != NULL) {
        char svg[4096];
        snprintf(svg, sizeof svg, "%s/training.svg", o->plots);
        if (hs_make_dirs(o->plots, 0755, &err) != HS_OK ||
            hs_plot_history_svg(svg, "hemoscan training", hist.loss, hist.val_loss, hist.accuracy,
                                hist.val_accuracy, hist.epochs, hist.best_epoch + 1, &err) != HS_OK) {
            fail(&err);
            goto done_model;
        }
    }
    if (o->verbose >= 0)
        printf("wrote %s (sha256 %s), threshold %.4f, best epoch %d of %d; history %s\n", o->model,
               model.sha256, (double)model.threshold, hist.best_epoch + 1, hist.epochs, history_path);
    rc = EXIT_OK;
done_model:
    hs_model_free(&model);
done_data:
    hs_history_free(&hist);
    hs_examples_free(&ex);
    hs_dataset_free(&ds);
    free(is_val);
    return rc;
}

/* ---- evaluation report, shared by --eval and --cv ------------------------ */

typedef struct {
    double accuracy, sensitivity, specificity, precision, f1, auc, auc_lo, auc_hi;
    int *confusion; /* k x k */
    int k;
} report;

/* Metrics of scores (n x outputs) against labels. For one output (sigmoid)
 * the model threshold decides; for K the largest probability. Sensitivity
 * and specificity of a K-class model are macro averages over classes. */
static hs_status compute_report(const float *scores, const int *labels, int n, int outputs,
                                int n_classes, double threshold, int *predicted, report *r,
                                hs_error *err)
{
    memset(r, 0, sizeof *r);
    r->k = n_classes;
    r->confusion = calloc((size_t)n_classes * n_classes, sizeof *r->confusion);
    if (r->confusion == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "out of memory");
    if (outputs == 1) {
        hs_binary_metrics m;
        hs_status st = hs_binary_metrics_compute(scores, labels, n, threshold, &m, err);
        if (st != HS_OK)
            return st;
        r->accuracy = m.accuracy;
        r->sensitivity = m.sensitivity;
        r->specificity = m.specificity;
        r->precision = m.precision;
        r->f1 = m.f1;
        r->auc = m.auc;
        r->auc_lo = m.auc_lo;
        r->auc_hi = m.auc_hi;
        for (int i = 0; i < n; i++)
            predicted[i] = hs_predicted_class(scores + i, 1, threshold);
        hs_confusion_matrix(labels, predicted, n, 2, r->confusion);
        return HS_OK;
    }
    for (int i = 0; i < n; i++)
        predicted[i] = hs_predicted_class(scores + (size_t)i * outputs, outputs, threshold);
    hs_confusion_matrix(labels, predicted, n, n_classes, r->confusion);
    double *auc = calloc((size_t)n_classes, sizeof *auc);
    double *sens = calloc((size_t)n_classes, sizeof *sens);
    double *spec = calloc((size_t)n_classes, sizeof *spec);
    if (auc == NULL || sens == NULL || spec == NULL) {
        free(auc);
        free(sens);
        free(spec);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory");
    }
    hs_one_vs_rest_auc(scores, labels, n, n_classes, auc);
    int correct = 0;
    for (int c = 0; c < n_classes; c++) {
        int tp = r->confusion[c * n_classes + c], pos = 0, fp = 0;
        correct += tp;
        for (int j = 0; j < n_classes; j++) {
            pos += r->confusion[c * n_classes + j];
            if (j != c)
                fp += r->confusion[j * n_classes + c];
        }
        sens[c] = pos > 0 ? (double)tp / pos : NAN;
        spec[c] = n - pos > 0 ? (double)(n - pos - fp) / (n - pos) : NAN;
    }
    double sd;
    r->accuracy = (double)correct / n;
    hs_mean_sd(sens, n_classes, &r->sensitivity, &sd);
    hs_mean_sd(spec, n_classes, &r->specificity, &sd);
    hs_mean_sd(auc, n_classes, &r->auc, &sd);
    r->precision = r->f1 = r->auc_lo = r->auc_hi = NAN;
    free(auc);
    free(sens);
    free(spec);
    return HS_OK;
}

static json_t *report_json(const report *r, const hs_model *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "accuracy", cli_json_number(r->accuracy));
    json_object_set_new(o, "sensitivity", cli_json_number(r->sensitivity));
    json_object_set_new(o, "specificity", cli_json_number(r->specificity));
    json_object_set_new(o, "precision", cli_json_number(r->precision));
    json_object_set_new(o, "f1", cli_json_number(r->f1));
    json_object_set_new(o, "auc", cli_json_number(r->auc));
    json_object_set_new(o, "auc_ci95", isfinite(r->auc_lo)
                                           ? json_pack("[ff]", r->auc_lo, r->auc_hi)
                                           : json_null());
    json_t *conf = json_array();
    for (int t = 0; t < r->k; t++) {
        json_t *row = json_array();
        for (int p = 0; p < r->k; p++)
            json_array_append_new(row, json_integer(r->confusion[t * r->k + p]));
        json_array_append_new(conf, row);
    }
    json_object_set_new(o, "confusion", conf);
    json_t *classes = json_array();
    for (int c = 0; c < m->n_classes; c++)
        json_array_append_new(classes, json_string(m->class_name[c]));
    json_object_set_new(o, "classes", classes);
    return o;
}

/* Per-image scores as a JSON array: file, label, predicted class (when
 * predicted is not NULL; the caller's threshold decided it), the score (a
 * number for a one-output model, per-class probabilities otherwise), and the
 * set the image was in (when set is not NULL). Shared by --eval and --cv, so
 * that anyone can recompute any figure, or another threshold, from them. */
static json_t *images_json(const hs_dataset *ds, const hs_model *m, const hs_examples *ex,
                           const float *scores, const int *predicted, const char *set)
{
    int outputs = hs_net_outputs(&m->member[0]);
    json_t *images = json_array();
    for (int i = 0; i < ex->n; i++) {
        json_t *img = json_object();
        json_object_set_new(img, "file", json_string(ds->path[ex->source[i]]));
        if (set != NULL)
            json_object_set_new(img, "set", json_string(set));
        json_object_set_new(img, "label", json_string(m->class_name[ex->label[i]]));
        if (predicted != NULL)
            json_object_set_new(img, "predicted", json_string(m->class_name[predicted[i]]));
        if (outputs == 1) {
            json_object_set_new(img, "score", json_real(scores[i]));
        } else {
            json_t *probs = json_object();
            for (int c = 0; c < outputs; c++)
                json_object_set_new(probs, m->class_name[c], json_real(scores[(size_t)i * outputs + c]));
            json_object_set_new(img, "probabilities", probs);
        }
        json_array_append_new(images, img);
    }
    return images;
}

static void print_report(const report *r, const hs_model *m, int n, double threshold)
{
    if (m->n_classes == 2)
        printf("threshold    %.4f (score >= threshold means %s)\n", threshold, m->class_name[1]);
    printf("images       %d\n", n);
    printf("accuracy     %.4f\n", r->accuracy);
    printf("sensitivity  %.4f%s\n", r->sensitivity, m->n_classes > 2 ? " (macro average)" : "");
    printf("specificity  %.4f%s\n", r->specificity, m->n_classes > 2 ? " (macro average)" : "");
    if (m->n_classes == 2) {
        printf("precision    %.4f\n", r->precision);
        printf("F1           %.4f\n", r->f1);
        printf("ROC AUC      %.4f (95%% CI %.4f to %.4f, DeLong)\n", r->auc, r->auc_lo, r->auc_hi);
    } else {
        printf("ROC AUC      %.4f (mean of one-vs-rest)\n", r->auc);
    }
    printf("confusion matrix (rows: truth, columns: predicted)\n%-16s", "");
    for (int c = 0; c < r->k; c++)
        printf(" %12.12s", m->class_name[c]);
    printf("\n");
    for (int t = 0; t < r->k; t++) {
        printf("%-16.16s", m->class_name[t]);
        for (int p = 0; p < r->k; p++)
            printf(" %12d", r->confusion[t * r->k + p]);
        printf("\n");
    }
}

/* Scores of every example under the model, ensemble and flip averaged. */
static float *score_examples(const options *o, const hs_model *m, const hs_examples *ex, hs_error *err)
{
    int outputs = hs_net_outputs(&m->member[0]);
    float *scores = malloc((size_t)(ex->n > 0 ? ex->n : 1) * outputs * sizeof *scores);
    hs_predictor *pred = NULL;
    if (scores == NULL) {
        hs_fail(err, HS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (hs_predictor_create(&pred, m, 32, o->tta, o->threads, err) != HS_OK) {
        free(scores);
        return NULL;
    }
    hs_predictor_run(pred, ex->x, ex->n, scores);
    hs_predictor_free(pred);
    return scores;
}

/* ROC curve picture for a binary model. */
static hs_status roc_plot(const char *dir, const char *name, const char *title, const float *scores,
                          const int *labels, int n, double threshold, hs_error *err)
{
    double *fpr = NULL, *tpr = NULL, *thr = NULL;
    int count = 0;
    if (hs_make_dirs(dir, 0755, err) != HS_OK)
        return HS_ERR_IO;
    hs_status st = hs_roc_curve(scores, labels, n, &fpr, &tpr, &thr, &count, err);
    if (st != HS_OK)
        return st;
    hs_binary_metrics m;
    st = hs_binary_metrics_compute(scores, labels, n, threshold, &m, err);
    if (st == HS_OK) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        hs_plot_curve curve = {fpr, tpr, count, "ROC", m.auc, m.auc_lo, m.auc_hi};
        st = hs_plot_roc_svg(path, title, &curve, 1, 1.0 - m.specificity, m.sensitivity, err);
    }
    free(fpr);
    free(tpr);
    free(thr);
    return st;
}

/* ---- --eval -------------------------------------------------------------- */

int cli_mode_eval(const options *o)
{
    hs_error err;
    hs_model model;
    const char *path;
    if (cli_load_model(o, &model, &path) != EXIT_OK)
        return EXIT_FAILED;
    hs_dataset ds;
    hs_examples ex = {0};
    int rc = EXIT_FAILED, skipped = 0;
    int *predicted = NULL;
    float *scores = NULL;
    report r = {0};
    if (hs_dataset_scan_classes(o->eval_dir, model.n_classes,
                                (const char (*)[HS_MODEL_NAME_LEN])model.class_name, &ds, &err) != HS_OK) {
        fail(&err);
        hs_model_free(&model);
        return EXIT_FAILED;
    }
    int outputs = hs_net_outputs(&model.member[0]);
    if (hs_examples_load(&ds, &model.recipe, stderr, &ex, &skipped, &err) != HS_OK) {
        fail(&err);
        goto done;
    }
    scores = score_examples(o, &model, &ex, &err);
    predicted = malloc((size_t)ex.n * sizeof *predicted);
    if (scores == NULL || predicted == NULL ||
        compute_report(scores, ex.label, ex.n, outputs, model.n_classes, model.threshold, predicted, &r,
                       &err) != HS_OK) {
        fail(&err);
        goto done;
    }
    if (o->plots != NULL && outputs == 1 &&
        roc_plot(o->plots, "roc.svg", "hemoscan ROC curve", scores, ex.label, ex.n, model.threshold,
                 &err) != HS_OK) {
        fail(&err);
        goto done;
    }
    if (o->json) {
        json_t *out = report_json(&r, &model);
        json_object_set_new(out, "model", json_string(path));
        json_object_set_new(out, "model_sha256", json_string(model.sha256));
        json_object_set_new(out, "threshold", json_real(model.threshold));
        json_object_set_new(out, "n", json_integer(ex.n));
        json_object_set_new(out, "skipped", json_integer(skipped));
        json_t *images = images_json(&ds, &model, &ex, scores, predicted, NULL);
        json_object_set_new(out, "images", images);
        json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        printf("\n");
        json_decref(out);
    } else {
        printf("model        %s (sha256 %s)\n", path, model.sha256);
        print_report(&r, &model, ex.n, model.threshold);
        if (skipped > 0)
            printf("skipped      %d unreadable files\n", skipped);
    }
    rc = EXIT_OK;
done:
    free(r.confusion);
    free(scores);
    free(predicted);
    hs_examples_free(&ex);
    hs_dataset_free(&ds);
    hs_model_free(&model);
    return rc;
}

/* ---- --predict ------------------------------------------------------------ */

int cli_mode_predict(const options *o)
{
    hs_error err;
    hs_model model;
    const char *path;
    if (cli_load_model(o, &model, &path) != EXIT_OK)
        return EXIT_FAILED;
    const hs_input_recipe *r = &model.recipe;
    int outputs = hs_net_outputs(&model.member[0]);
    size_t size = (size_t)r->width * r->height * r->channels;
    float *x = malloc(size * sizeof *x);
    float *p = malloc((size_t)outputs * sizeof *p);
    hs_predictor *pred = NULL;
    int rc = EXIT_OK;
    if (x == NULL || p == NULL || hs_predictor_create(&pred, &model, 1, o->tta, o->threads, &err) != HS_OK) {
        if (x == NULL || p == NULL)
            hs_fail(&err, HS_ERR_NOMEM, "out of memory");
        rc = fail(&err);
        goto done;
    }
    json_t *all = o->json ? json_array() : NULL;
    for (int i = 0; i < o->n_paths; i++) {
        const char *file = o->paths[i];
        hs_image img = {0};
        hs_status st = hs_png_read(file, &img, &err);
        if (st == HS_OK)
            st = hs_prepare_input(&img, r, x, &err);
        hs_image_free(&img);
        if (st != HS_OK) {
            fprintf(stderr, "hemoscan: %s\n", err.msg);
            rc = EXIT_FAILED;
            if (all != NULL)
                json_array_append_new(all, json_pack("{s:s,s:s}", "file", file, "error", err.msg));
            continue;
        }
        hs_predictor_run(pred, x, 1, p);
        int cls = hs_predicted_class(p, outputs, model.threshold);
        double score = outputs == 1 ? p[0] : p[cls];
        if (all != NULL) {
            json_t *one = json_pack("{s:s,s:s,s:f}", "file", file, "class", model.class_name[cls],
                                    "score", score);
            if (outputs == 1)
                json_object_set_new(one, "threshold", json_real(model.threshold));
            json_array_append_new(all, one);
        } else if (outputs == 1) {
            printf("%s: %s (score %.4f, threshold %.4f)\n", file, model.class_name[cls], score,
                   (double)model.threshold);
        } else {
            printf("%s: %s (probability %.4f)\n", file, model.class_name[cls], score);
        }
    }
    if (all != NULL) {
        json_t *out = json_pack("{s:s,s:s,s:o}", "model", path, "model_sha256", model.sha256, "images", all);
        json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        printf("\n");
        json_decref(out);
    }
done:
    hs_predictor_free(pred);
    free(x);
    free(p);
    hs_model_free(&model);
    return rc;
}

/* ---- --train --cv K ---------------------------------------------------------- */

int cli_mode_cross_validate(const options *o)
{
    hs_error err;
    hs_dataset ds;
    unsigned char *unused = NULL;
    if (training_data(o, o->train_dir, &ds, &unused, &err) != HS_OK)
        return fail(&err);
    hs_examples ex = {0};
    const hs_input_recipe recipe = o->train_recipe;
    int skipped, rc = EXIT_FAILED, k = o->cv_folds, reps = o->cv_repeats;
    int total = k * reps;
    char data_sha[65];
    int *fold = malloc((size_t)ds.n * sizeof *fold);
    unsigned char *pick = malloc((size_t)ds.n);
    unsigned char *inner = malloc((size_t)ds.n);
    double *acc = calloc((size_t)total, sizeof *acc), *sens = calloc((size_t)total, sizeof *sens);
    double *spec = calloc((size_t)total, sizeof *spec), *aucs = calloc((size_t)total, sizeof *aucs);
    double *pooled = calloc((size_t)reps, sizeof *pooled), *secs = calloc((size_t)total, sizeof *secs);
    double *acc_half = calloc((size_t)total, sizeof *acc_half); /* accuracy at threshold 0.5 */
    float *oof = malloc((size_t)ds.n * sizeof *oof); /* out-of-fold scores (binary) */
    float *file_oof = malloc((size_t)ds.n * sizeof *file_oof); /* a fold ensemble's own, per file */
    int *oof_label = malloc((size_t)ds.n * sizeof *oof_label);
    if (fold == NULL || pick == NULL || inner == NULL || acc == NULL || sens == NULL || spec == NULL ||
        aucs == NULL || pooled == NULL || secs == NULL || acc_half == NULL || oof == NULL ||
        oof_label == NULL || file_oof == NULL) {
        hs_fail(&err, HS_ERR_NOMEM, "out of memory");
        fail(&err);
        goto done;
    }
    if (hs_dataset_checksum(&ds, data_sha, &err) != HS_OK ||
        hs_examples_load(&ds, &recipe, stderr, &ex, &skipped, &err) != HS_OK) {
        fail(&err);
        goto done;
    }
    json_t *folds_json = json_array();
    for (int rep = 0; rep < reps; rep++) {
        if (hs_dataset_folds(&ds, k, o->seed + 1000003ULL * (uint64_t)rep, fold, &err) != HS_OK) {
            fail(&err);
            json_decref(folds_json);
            goto done;
        }
        int n_oof = 0;
        for (int f = 0; f < k; f++) {
            int idx = rep * k + f;
            /* Training folds: an inner grouped split picks epochs and the
             * threshold, so the test fold is never looked at. */
            for (int i = 0; i < ds.n; i++)
                pick[i] = fold[i] == f;
            hs_dataset rest;
            if (hs_dataset_select(&ds, pick, 0, &rest, &err) != HS_OK) {
                fail(&err);
                json_decref(folds_json);
                goto done;
            }
            unsigned char *rest_val = malloc((size_t)rest.n);
            hs_status st = rest_val == NULL ? hs_fail(&err, HS_ERR_NOMEM, "out of memory")
                                            : hs_dataset_split(&rest, o->val_split, o->seed + (uint64_t)idx,
                                                               rest_val, &err);
            /* Map the inner split back to file indices: 2 = test fold. */
            for (int i = 0, j = 0; i < ds.n && st == HS_OK; i++)
                inner[i] = pick[i] ? 2 : rest_val[j++];
            free(rest_val);
            hs_dataset_free(&rest);
            if (st != HS_OK) {
                fail(&err);
                json_decref(folds_json);
                goto done;
            }
            hs_examples test;
            hs_model model;
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            options quiet = *o;
            quiet.train.verbose = o->verbose > 0 ? 1 : 0;
            if (train_on(&quiet, &ds, &ex, inner, data_sha, &model, NULL, file_oof, &err) != HS_OK) {
                fail(&err);
                json_decref(folds_json);
                goto done;
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
            secs[idx] = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
            if (hs_examples_select(&ex, inner, 2, &test, &err) != HS_OK) {
                hs_model_free(&model);
                fail(&err);
                json_decref(folds_json);
                goto done;
            }
            int outputs = hs_net_outputs(&model.member[0]);
            float *scores = score_examples(o, &model, &test, &err);
            int *predicted = malloc((size_t)(test.n > 0 ? test.n : 1) * sizeof *predicted);
            report r = {0};
            st = scores == NULL || predicted == NULL
                     ? HS_ERR_NOMEM
                     : compute_report(scores, test.label, test.n, outputs, model.n_classes, model.threshold,
                                      predicted, &r, &err);
            if (st == HS_OK) {
                acc[idx] = r.accuracy;
                sens[idx] = r.sensitivity;
                spec[idx] = r.specificity;
                aucs[idx] = r.auc;
                acc_half[idx] = NAN;
                if (outputs == 1) {
                    int right = 0;
                    for (int i = 0; i < test.n; i++)
                        right += (scores[i] >= 0.5f) == (test.label[i] == 1);
                    acc_half[idx] = (double)right / test.n;
                    for (int i = 0; i < test.n; i++) {
                        oof[n_oof] = scores[i];
                        oof_label[n_oof++] = test.label[i];
                    }
                }
                if (o->verbose >= 0)
                    fprintf(stderr,
                            "repeat %d fold %d: %d test images, accuracy %.4f, sensitivity %.4f, "
                            "specificity %.4f, AUC %.4f, threshold %.3f, %.1fs\n",
                            rep + 1, f + 1, test.n, r.accuracy, r.sensitivity, r.specificity, r.auc,
                            (double)model.threshold, secs[idx]);
                json_t *fj = report_json(&r, &model);
                json_object_set_new(fj, "repeat", json_integer(rep + 1));
                json_object_set_new(fj, "fold", json_integer(f + 1));
                json_object_set_new(fj, "threshold", json_real(model.threshold));
                json_object_set_new(fj, "n", json_integer(test.n));
                json_object_set_new(fj, "seconds", json_real(secs[idx]));
                /* The scores that placed the threshold too, so that another
                 * rule can be tried on them: the inner validation images',
                 * or for a fold ensemble every training image's out-of-fold
                 * score. */
                hs_examples val = {0};
                float *val_scores = NULL;
                if (o->train.fold_ensemble) {
                    for (int i = 0; i < ds.n; i++)
                        pick[i] = inner[i] != 2;
                    st = hs_examples_select(&ex, pick, 1, &val, &err);
                    if (st == HS_OK && (val_scores = malloc((size_t)(val.n > 0 ? val.n : 1) *
                                                            sizeof *val_scores)) == NULL)
                        st = hs_fail(&err, HS_ERR_NOMEM, "out of memory");
                    for (int i = 0; st == HS_OK && i < val.n; i++)
                        val_scores[i] = file_oof[val.source[i]];
                } else {
                    st = hs_examples_select(&ex, inner, 1, &val, &err);
                    if (st == HS_OK && (val_scores = score_examples(o, &model, &val, &err)) == NULL)
                        st = HS_ERR_NOMEM;
                }
                if (st == HS_OK) {
                    json_t *images = images_json(&ds, &model, &test, scores, predicted, "test");
                    json_t *val_images = images_json(&ds, &model, &val, val_scores, NULL, "validation");
                    json_array_extend(images, val_images);
                    json_decref(val_images);
                    json_object_set_new(fj, "images", images);
                }
                free(val_scores);
                hs_examples_free(&val);
                json_array_append_new(folds_json, fj);
            }
            free(r.confusion);
            free(scores);
            free(predicted);
            hs_examples_free(&test);
            hs_model_free(&model);
            if (st != HS_OK) {
                fail(&err);
                json_decref(folds_json);
                goto done;
            }
        }
        pooled[rep] = n_oof > 0 ? hs_roc_auc(oof, oof_label, n_oof) : NAN;
        if (o->plots != NULL && rep == 0 && n_oof > 0 &&
            roc_plot(o->plots, "cv-roc.svg", "hemoscan cross-validation, out-of-fold scores", oof,
                     oof_label, n_oof, 0.5, &err) != HS_OK) {
            fail(&err);
            json_decref(folds_json);
            goto done;
        }
    }
    double m[7], s[7];
    hs_mean_sd(acc, total, &m[0], &s[0]);
    hs_mean_sd(sens, total, &m[1], &s[1]);
    hs_mean_sd(spec, total, &m[2], &s[2]);
    hs_mean_sd(aucs, total, &m[3], &s[3]);
    hs_mean_sd(pooled, reps, &m[4], &s[4]);
    hs_mean_sd(secs, total, &m[5], &s[5]);
    hs_mean_sd(acc_half, total, &m[6], &s[6]);
    if (o->json) {
        json_t *out = json_object();
        json_object_set_new(out, "folds", json_integer(k));
        json_object_set_new(out, "repeats", json_integer(reps));
        json_object_set_new(out, "data_sha256", json_string(data_sha));
        const char *names[7] = {"accuracy", "sensitivity", "specificity", "auc", "pooled_auc", "seconds",
                                "accuracy_at_0_5"};
        for (int i = 0; i < 7; i++)
            json_object_set_new(out, names[i], json_pack("{s:o,s:o}", "mean", cli_json_number(m[i]), "sd",
                                                         cli_json_number(s[i])));
        json_object_set_new(out, "per_fold", folds_json);
        json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        printf("\n");
        json_decref(out);
    } else {
        json_decref(folds_json);
        printf("%d-fold cross-validation, %d repeat%s, %d images (grouped, stratified)\n", k, reps,
               reps > 1 ? "s" : "", ex.n);
        printf("accuracy     %.4f +- %.4f (at each model's threshold)\n", m[0], s[0]);
        if (isfinite(m[6]))
            printf("accuracy     %.4f +- %.4f (at threshold 0.5)\n", m[6], s[6]);
        printf("sensitivity  %.4f +- %.4f\n", m[1], s[1]);
        printf("specificity  %.4f +- %.4f\n", m[2], s[2]);
        printf("ROC AUC      %.4f +- %.4f (per fold)\n", m[3], s[3]);
        if (isfinite(m[4]) && reps > 1)
            printf("pooled AUC   %.4f +- %.4f (out-of-fold scores, per repeat)\n", m[4], s[4]);
        else if (isfinite(m[4]))
            printf("pooled AUC   %.4f (all out-of-fold scores together)\n", m[4]);
        printf("training     %.1f s per fold\n", m[5]);
    }
    rc = EXIT_OK;
done:
    free(fold);
    free(pick);
    free(inner);
    free(acc);
    free(sens);
    free(spec);
    free(aucs);
    free(pooled);
    free(secs);
    free(acc_half);
    free(oof);
    free(oof_label);
    free(file_oof);
    free(unused);
    hs_examples_free(&ex);
    hs_dataset_free(&ds);
    return rc;
}
