/* modes_learn.c - the modes that learn from and score labelled images:
 * --train (with --cv for cross-validation), --predict and --eval.
 *
 * These only read the options and the data, call the library, and print
 * what it returns: dataset (which files, which splits), train (examples,
 * hs_train_model: one training as --train and every --cv fold make it,
 * scoring), crossval (the cross-validation procedure and all its figures
 * and scores), predict (ensemble and flip averaging), metrics (the
 * evaluation report --eval and --cv share), subtypes (--subtypes) and
 * plot (what a person reads). Which folders hold the data (DIR/train and
 * DIR/validate, or class folders split by --val-split, grouped by
 * --groups or DIR/groups.csv, one or several --train folders merged)
 * stays here, in training_data and training_sources: it is the command
 * line's convention, not the library's.
 *
 * Class folders may hold DICOM slices beside PNG pictures. The example
 * loader (learn) cannot read DICOM: that is the study layer's, which sits
 * beside learn and may not be used by it. So this file, above both, hands
 * the loader a reader (hs_example_reader) that sends every file that is
 * not a PNG through hs_slice_input_read, the study's own slice path (HU
 * with the file's rescale, then hs_render_input): a labelled slice is
 * scored on the input --study would give it, and each file says which
 * path read it ("read_as" in the JSON). A callback was chosen over
 * building the examples here from study-layer reads because the loader's
 * bookkeeping (skipping unreadable files by name, counting them, mapping
 * examples to files) then stays in one place for both kinds of file.
 *
 * The same input recipe and predictor serve training, evaluation and
 * prediction, so the numbers --eval and --cv report are what --predict
 * and the DICOM path produce. Machine-readable output (--json) goes
 * through Jansson. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hemoscan/crossval.h"
#include "hemoscan/dataset.h"
#include "hemoscan/fileio.h"
#include "hemoscan/image.h"
#include "hemoscan/metrics.h"
#include "hemoscan/path.h"
#include "hemoscan/plot.h"
#include "hemoscan/predict.h"
#include "hemoscan/strbuf.h"
#include "hemoscan/slice_input.h"
#include "hemoscan/subtypes.h"
#include "hemoscan/train.h"
#include "modes.h"

static int fail(const hs_error *err)
{
    fprintf(stderr, "hemoscan: %s\n", err->msg);
    return EXIT_FAILED;
}

/* ---- shared pieces ------------------------------------------------------ */

/* The examples' reader of files that are not PNG: a DICOM slice through
 * the study layer's slice path (slice_input.h), so a labelled DICOM slice
 * is scored on the input --study would give it. */
static hs_status read_dicom_example(void *user, const char *path, const hs_input_recipe *recipe, float *out,
                                    hs_error *err)
{
    (void)user;
    return hs_slice_input_read(path, recipe, out, err);
}

static const hs_example_reader dicom_reader = {"dicom", read_dicom_example, NULL};

/* Per file of a data set of n files, how ex read it (HS_VIA_PNG for the
 * files it skipped); NULL when out of memory. */
static unsigned char *via_per_file(int n, const hs_examples *ex)
{
    unsigned char *via = calloc((size_t)(n > 0 ? n : 1), 1);
    if (via != NULL)
        for (int i = 0; i < ex->n; i++)
            via[ex->source[i]] = ex->via[i];
    return via;
}

/* The examples of ds, PNG and DICOM files each through its own path. */
static hs_status load_examples(const hs_dataset *ds, const hs_input_recipe *recipe, hs_examples *ex,
                               int *skipped, hs_error *err)
{
    return hs_examples_load_with(ds, recipe, &dicom_reader, stderr, ex, skipped, err);
}

/* DIR/train + DIR/validate (*is_val set from them), or DIR's class
 * folders grouped by --groups, or by DIR/groups.csv when present (*is_val
 * NULL: training_sources splits them). */
static hs_status training_data(const options *o, const char *dir, hs_dataset *all,
                               unsigned char **is_val, hs_error *err)
{
    char train_dir[HS_PATH_MAX], val_dir[HS_PATH_MAX], groups[HS_PATH_MAX];
    *is_val = NULL;
    if (hs_path_join(train_dir, sizeof train_dir, dir, "train", err) != HS_OK ||
        hs_path_join(val_dir, sizeof val_dir, dir, "validate", err) != HS_OK ||
        hs_path_join(groups, sizeof groups, dir, "groups.csv", err) != HS_OK)
        return HS_ERR_ARG;
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
    const char *groups_file = o->groups != NULL ? o->groups : (hs_path_is_file(groups) ? groups : NULL);
    if (groups_file != NULL) {
        st = hs_dataset_load_groups(all, groups_file, err);
        if (st != HS_OK) {
            hs_dataset_free(all);
            return st;
        }
    }
    return HS_OK;
}

/* Source k of a repeated --train or --eval (more, with its validation
 * flags more_val when all_val is not NULL) merged into all. *usage is set
 * when the sources' class folders differ, which is the command line's
 * fault, not the data's. */
static hs_status merge_source(const char *const *dirs, int k, hs_dataset *all, unsigned char **all_val,
                              hs_dataset *more, const unsigned char *more_val, int *usage, hs_error *err)
{
    if (all_val != NULL && *all_val != NULL) {
        unsigned char *grown = realloc(*all_val, (size_t)(all->n + more->n));
        if (grown == NULL)
            return hs_fail(err, HS_ERR_NOMEM, "out of memory");
        memcpy(grown + all->n, more_val, (size_t)more->n);
        *all_val = grown;
    }
    hs_status st = hs_dataset_merge(all, more, err);
    if (st == HS_ERR_ARG) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        *usage = 1;
        hs_fail(err, st, "%s and %s: %s (every source folder must hold the same classes)", dirs[0], dirs[k], why);
    }
    return st;
}

/* training_data for every --train DIR, merged in the order given (each
 * source's own groups, files kept apart by source: hs_dataset_merge),
 * then, unless every source has its own validate/ folder or this is --cv,
 * one grouped stratified --val-split over them all. Some sources with a
 * validate/ folder and some without is a usage error. */
static hs_status training_sources(const options *o, hs_dataset *all, unsigned char **is_val, int *usage,
                                  hs_error *err)
{
    *usage = 0;
    hs_status st = training_data(o, o->train_dirs[0], all, is_val, err);
    for (int k = 1; k < o->n_train_dirs && st == HS_OK; k++) {
        hs_dataset more;
        unsigned char *more_val = NULL;
        st = training_data(o, o->train_dirs[k], &more, &more_val, err);
        if (st == HS_OK && (more_val == NULL) != (*is_val == NULL)) {
            *usage = 1;
            st = hs_fail(err, HS_ERR_ARG, "%s and %s: either every --train folder has train/ and validate/ "
                         "folders or none has", o->train_dirs[0], o->train_dirs[k]);
            hs_dataset_free(&more);
        } else if (st == HS_OK) {
            st = merge_source(o->train_dirs, k, all, is_val, &more, more_val, usage, err);
            hs_dataset_free(&more);
        }
        free(more_val);
        if (st != HS_OK) {
            hs_dataset_free(all);
            free(*is_val);
            *is_val = NULL;
        }
    }
    if (st != HS_OK || *is_val != NULL || o->cv_folds > 0)
        return st;
    *is_val = malloc((size_t)all->n);
    st = *is_val == NULL ? hs_fail(err, HS_ERR_NOMEM, "out of memory")
                         : hs_dataset_split(all, o->val_split, o->seed, *is_val, err);
    if (st != HS_OK) {
        free(*is_val);
        *is_val = NULL;
        hs_dataset_free(all);
    }
    return st;
}

/* The files of every --eval DIR, classes as the model has them. */
static hs_status eval_sources(const options *o, const hs_model *model, hs_dataset *all, int *usage, hs_error *err)
{
    const char (*names)[HS_MODEL_NAME_LEN] = (const char (*)[HS_MODEL_NAME_LEN])model->class_name;
    *usage = 0;
    hs_status st = hs_dataset_scan_classes(o->eval_dirs[0], model->n_classes, names, all, err);
    for (int k = 1; k < o->n_eval_dirs && st == HS_OK; k++) {
        hs_dataset more;
        st = hs_dataset_scan_classes(o->eval_dirs[k], model->n_classes, names, &more, err);
        if (st == HS_OK) {
            st = merge_source(o->eval_dirs, k, all, NULL, &more, NULL, usage, err);
            hs_dataset_free(&more);
        }
        if (st != HS_OK)
            hs_dataset_free(all);
    }
    return st;
}

/* The exit status of a failure to gather the data: usage when the
 * sources disagree, else failed. */
static int data_fail(const hs_error *err, int usage)
{
    fail(err);
    return usage ? EXIT_USAGE : EXIT_FAILED;
}

/* --subtypes: the per-subtype figures of n scored images (file source[i],
 * class label[i], predicted class predicted[i]; class 1 is the positive
 * one) into out and *matched. 0 when not asked for, 1 when computed, -1
 * after printing why it failed. */
static int subtype_figures(const options *o, const hs_dataset *ds, const int *source, const int *label,
                           const int *predicted, int n, hs_subtype_stat out[HS_SUBTYPES], int *matched)
{
    if (o->subtypes == NULL)
        return 0;
    if (ds->n_classes != 2) {
        fprintf(stderr, "hemoscan: --subtypes: needs a two-class model (normal and hemorrhage), not %d classes\n",
                ds->n_classes);
        return -1;
    }
    hs_error err;
    hs_subtype_labels labels;
    if (hs_subtypes_load(o->subtypes, ds, &labels, &err) != HS_OK) {
        fail(&err);
        return -1;
    }
    hs_subtype_sensitivity(&labels, source, label, predicted, n, 1, out);
    *matched = labels.matched;
    hs_subtypes_free(&labels);
    return 1;
}

/* The per-subtype figures as text, after the report. */
static void print_subtypes(const hs_subtype_stat *st, int matched, int n_files, const char *csv)
{
    printf("subtypes     %s (%d of %d files have a row); sensitivity among positive images\n", csv, matched,
           n_files);
    for (int s = 0; s < HS_SUBTYPES; s++) {
        if (!st[s].column)
            continue;
        if (st[s].n > 0)
            printf("  %-18s %4d of %4d found, sensitivity %.4f\n", hs_subtype_name(s), st[s].found, st[s].n,
                   st[s].sensitivity);
        else
            printf("  %-18s none among the positive images\n", hs_subtype_name(s));
    }
}

/* {name: {n, found, sensitivity}} for the subtypes the labels file has. */
static json_t *subtypes_json(const hs_subtype_stat *st)
{
    json_t *o = json_object();
    for (int s = 0; s < HS_SUBTYPES; s++)
        if (st[s].column)
            json_object_set_new(o, hs_subtype_name(s),
                                json_pack("{s:i,s:i,s:o}", "n", st[s].n, "found", st[s].found, "sensitivity",
                                          cli_json_number(st[s].sensitivity)));
    return o;
}

/* How --train and --cv train a model: the options' training settings. */
static void train_setup(const options *o, hs_train_setup *s)
{
    memset(s, 0, sizeof *s);
    s->train = o->train;
    s->recipe = o->train_recipe;
    s->init_from = o->init_from;
    s->command = o->command;
    s->seed = o->seed;
    s->verbose = o->verbose;
}

/* out (HS_PATH_MAX bytes) = path with its extension (if any) replaced by
 * suffix; HS_ERR_ARG naming it when that does not fit. */
static hs_status sibling_path(const char *path, const char *suffix, char *out, hs_error *err)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    int stem = dot != NULL && (slash == NULL || dot > slash) ? (int)(dot - path) : (int)strlen(path);
    return hs_path_printf(out, HS_PATH_MAX, err, "%.*s%s", stem, path, suffix);
}

/* A fold ensemble's out-of-fold scores beside the model, "file,label,score"
 * (label: the class name; an empty score for a file that was not read), so
 * that the operating point and the figures can be recomputed later. Written
 * 0600 like the model: the paths may name patients. */
static hs_status write_oof_csv(const char *path, const hs_dataset *ds, const float *oof, hs_error *err)
{
    hs_strbuf b;
    hs_strbuf_init(&b, HS_STRBUF_NO_LIMIT);
    hs_strbuf_printf(&b, "file,label,score\n");
    for (int i = 0; i < ds->n; i++) {
        hs_strbuf_printf(&b, "%s,%s,", ds->path[i], ds->class_name[ds->label[i]]);
        if (!isnan(oof[i]))
            hs_strbuf_printf(&b, "%.6f", (double)oof[i]);
        hs_strbuf_printf(&b, "\n");
    }
    hs_status st = b.status != HS_OK ? hs_fail(err, b.status, "out of memory for %s", path)
                                     : hs_file_write_atomic(path, b.p, b.len, 0600, err);
    hs_strbuf_free(&b);
    return st;
}

/* One line on what the out-of-fold scores say: the fold ensemble's own
 * grouped cross-validation (honest with --keep-last). */
static void print_oof_summary(const hs_dataset *ds, const float *oof, double threshold, const char *path)
{
    float *score = malloc((size_t)ds->n * sizeof *score);
    int *label = malloc((size_t)ds->n * sizeof *label);
    int n = 0;
    for (int i = 0; score != NULL && label != NULL && i < ds->n; i++) {
        if (!isnan(oof[i])) {
            score[n] = oof[i];
            label[n++] = ds->label[i];
        }
    }
    hs_binary_metrics m;
    hs_error err;
    if (n > 0 && hs_binary_metrics_compute(score, label, n, threshold, &m, &err) == HS_OK)
        printf("out-of-fold  %d images: ROC AUC %.4f (95%% CI %.4f to %.4f), at the threshold sensitivity "
               "%.4f (%d/%d), specificity %.4f (%d/%d); scores in %s\n",
               n, m.auc, m.auc_lo, m.auc_hi, m.sensitivity, m.tp, m.tp + m.fn, m.specificity, m.tn, m.tn + m.fp,
               path);
    free(score);
    free(label);
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
    int usage;
    if (training_sources(o, &ds, &is_val, &usage, &err) != HS_OK)
        return data_fail(&err, usage);
    char data_sha[65];
    hs_examples ex = {0};
    hs_model model;
    hs_history hist = {0};
    float *oof = NULL;
    int skipped = 0, rc = EXIT_FAILED;
    const hs_input_recipe recipe = o->train_recipe;
    if (hs_dataset_checksum(&ds, data_sha, &err) != HS_OK ||
        load_examples(&ds, &recipe, &ex, &skipped, &err) != HS_OK) {
        fail(&err);
        goto done_data;
    }
    if (o->verbose >= 0)
        fprintf(stderr, "%d images in %d classes (%d skipped), data sha256 %s\n", ex.n, ds.n_classes,
                skipped, data_sha);
    hs_train_setup setup;
    train_setup(o, &setup);
    oof = setup.train.fold_ensemble ? malloc((size_t)ds.n * sizeof *oof) : NULL;
    if (setup.train.fold_ensemble && oof == NULL) {
        hs_fail(&err, HS_ERR_NOMEM, "out of memory");
        fail(&err);
        goto done_data;
    }
    for (int i = 0; oof != NULL && i < ds.n; i++)
        oof[i] = NAN;
    if (hs_train_model(&setup, &ds, &ex, is_val, data_sha, &model, &hist, oof, &err) != HS_OK) {
        fail(&err);
        goto done_data;
    }
    char history_path[HS_PATH_MAX], oof_path[HS_PATH_MAX];
    if (sibling_path(o->model, ".history.csv", history_path, &err) != HS_OK ||
        sibling_path(o->model, ".oof.csv", oof_path, &err) != HS_OK ||
        hs_model_save(&model, o->model, &err) != HS_OK ||
        hs_history_write_csv(&hist, history_path, &err) != HS_OK ||
        (oof != NULL && write_oof_csv(oof_path, &ds, oof, &err) != HS_OK)) {
        fail(&err);
        goto done_model;
    }
    if (o->plots != NULL) {
        char svg[HS_PATH_MAX];
        if (hs_path_join(svg, sizeof svg, o->plots, "training.svg", &err) != HS_OK ||
            hs_make_dirs(o->plots, 0755, &err) != HS_OK ||
            hs_plot_history_svg(svg, "hemoscan training", hist.loss, hist.val_loss, hist.accuracy,
                                hist.val_accuracy, hist.epochs, hist.best_epoch + 1, &err) != HS_OK) {
            fail(&err);
            goto done_model;
        }
    }
    if (o->verbose >= 0)
        printf("wrote %s (sha256 %s), threshold %.4f, best epoch %d of %d; history %s\n", o->model,
               model.sha256, (double)model.threshold, hist.best_epoch + 1, hist.epochs, history_path);
    if (o->verbose >= 0 && oof != NULL)
        print_oof_summary(&ds, oof, model.threshold, oof_path);
    rc = EXIT_OK;
done_model:
    hs_model_free(&model);
done_data:
    free(oof);
    hs_history_free(&hist);
    hs_examples_free(&ex);
    hs_dataset_free(&ds);
    free(is_val);
    return rc;
}

/* ---- what --eval and --cv print ------------------------------------------ */

static json_t *report_json(const hs_eval_report *r, int n_classes, const char (*class_name)[HS_MODEL_NAME_LEN])
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
    for (int c = 0; c < n_classes; c++)
        json_array_append_new(classes, json_string(class_name[c]));
    json_object_set_new(o, "classes", classes);
    return o;
}

/* Scored images: n of them, image i the file ds->path[source[i]] of class
 * label[i], with outputs scores from scores + i * outputs; classes named
 * by class_name. */
typedef struct {
    int n, outputs;
    const int *source, *label, *predicted;
    const float *scores;
    const char (*class_name)[HS_MODEL_NAME_LEN];
    const unsigned char *via; /* per file of the data set: HS_VIA_PNG or HS_VIA_READER; NULL: not known */
} scored_images;

/* Per-image scores as a JSON array: file, label, predicted class (when
 * predicted is not NULL; the caller's threshold decided it), the score (a
 * number for a one-output model, per-class probabilities otherwise), and the
 * set the image was in (when set is not NULL). Shared by --eval and --cv, so
 * that anyone can recompute any figure, or another threshold, from them. */
static json_t *images_json(const hs_dataset *ds, const scored_images *s, const char *set)
{
    json_t *images = json_array();
    for (int i = 0; i < s->n; i++) {
        json_t *img = json_object();
        json_object_set_new(img, "file", json_string(ds->path[s->source[i]]));
        if (s->via != NULL)
            json_object_set_new(img, "read_as",
                                json_string(s->via[s->source[i]] == HS_VIA_PNG ? "png" : dicom_reader.name));
        if (set != NULL)
            json_object_set_new(img, "set", json_string(set));
        json_object_set_new(img, "label", json_string(s->class_name[s->label[i]]));
        if (s->predicted != NULL)
            json_object_set_new(img, "predicted", json_string(s->class_name[s->predicted[i]]));
        if (s->outputs == 1) {
            json_object_set_new(img, "score", json_real(s->scores[i]));
        } else {
            json_t *probs = json_object();
            for (int c = 0; c < s->outputs; c++)
                json_object_set_new(probs, s->class_name[c], json_real(s->scores[(size_t)i * s->outputs + c]));
            json_object_set_new(img, "probabilities", probs);
        }
        json_array_append_new(images, img);
    }
    return images;
}

static void print_report(const hs_eval_report *r, const hs_model *m, int n, double threshold)
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
        char path[HS_PATH_MAX];
        hs_plot_curve curve = {fpr, tpr, count, "ROC", m.auc, m.auc_lo, m.auc_hi};
        st = hs_path_join(path, sizeof path, dir, name, err);
        if (st == HS_OK)
            st = hs_plot_roc_svg(path, title, &curve, 1, 1.0 - m.specificity, m.sensitivity, err);
    }
    free(fpr);
    free(tpr);
    free(thr);
    return st;
}

/* ---- --eval -------------------------------------------------------------- */

/* What --eval prints of its figures: the report, the files read by each
 * path, and the per-subtype figures when asked for (subtypes NULL
 * otherwise). */
typedef struct {
    const hs_model *model;
    const char *model_path;
    const hs_dataset *ds;
    const hs_examples *ex;
    const hs_eval_report *report;
    const int *predicted;
    const float *scores;
    int outputs, skipped;
    const hs_subtype_stat *subtypes;
    int subtypes_matched;
} eval_output;

static void print_eval(const options *o, const eval_output *e)
{
    const char (*names)[HS_MODEL_NAME_LEN] = (const char (*)[HS_MODEL_NAME_LEN])e->model->class_name;
    int n_dicom = 0;
    for (int i = 0; i < e->ex->n; i++)
        n_dicom += e->ex->via[i] == HS_VIA_READER;
    if (o->json) {
        json_t *out = report_json(e->report, e->model->n_classes, names);
        json_object_set_new(out, "model", json_string(e->model_path));
        json_object_set_new(out, "model_sha256", json_string(e->model->sha256));
        json_object_set_new(out, "threshold", json_real(e->model->threshold));
        json_object_set_new(out, "n", json_integer(e->ex->n));
        json_object_set_new(out, "n_png", json_integer(e->ex->n - n_dicom));
        json_object_set_new(out, "n_dicom", json_integer(n_dicom));
        json_object_set_new(out, "skipped", json_integer(e->skipped));
        if (e->subtypes != NULL) {
            json_object_set_new(out, "subtype_sensitivity", subtypes_json(e->subtypes));
            json_object_set_new(out, "subtype_labels_matched", json_integer(e->subtypes_matched));
        }
        unsigned char *via = via_per_file(e->ds->n, e->ex);
        scored_images all = {e->ex->n, e->outputs, e->ex->source, e->ex->label, e->predicted, e->scores, names, via};
        json_object_set_new(out, "images", images_json(e->ds, &all, NULL));
        free(via);
        json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        printf("\n");
        json_decref(out);
        return;
    }
    printf("model        %s (sha256 %s)\n", e->model_path, e->model->sha256);
    print_report(e->report, e->model, e->ex->n, e->model->threshold);
    if (n_dicom > 0)
        printf("read         %d PNG pictures, %d DICOM slices (through the --study slice path)\n",
               e->ex->n - n_dicom, n_dicom);
    if (e->skipped > 0)
        printf("skipped      %d unreadable files\n", e->skipped);
    if (e->subtypes != NULL)
        print_subtypes(e->subtypes, e->subtypes_matched, e->ds->n, o->subtypes);
}

int cli_mode_eval(const options *o)
{
    hs_error err;
    hs_model model;
    const char *path;
    if (cli_load_model(o, &model, &path) != EXIT_OK)
        return EXIT_FAILED;
    hs_dataset ds;
    hs_examples ex = {0};
    int rc = EXIT_FAILED, skipped = 0, usage;
    int *predicted = NULL;
    float *scores = NULL;
    hs_eval_report r = {0};
    if (eval_sources(o, &model, &ds, &usage, &err) != HS_OK) {
        hs_model_free(&model);
        return data_fail(&err, usage);
    }
    int outputs = hs_net_outputs(&model.member[0]);
    if (load_examples(&ds, &model.recipe, &ex, &skipped, &err) != HS_OK) {
        fail(&err);
        goto done;
    }
    predicted = malloc((size_t)ex.n * sizeof *predicted);
    hs_status st = predicted == NULL ? hs_fail(&err, HS_ERR_NOMEM, "out of memory")
                                     : hs_examples_score(&model, &ex, o->tta, o->threads, &scores, &err);
    if (st == HS_OK)
        st = hs_eval_report_compute(scores, ex.label, ex.n, outputs, model.n_classes, model.threshold, predicted,
                                    &r, &err);
    if (st != HS_OK) {
        fail(&err);
        goto done;
    }
    if (o->plots != NULL && outputs == 1 &&
        roc_plot(o->plots, "roc.svg", "hemoscan ROC curve", scores, ex.label, ex.n, model.threshold,
                 &err) != HS_OK) {
        fail(&err);
        goto done;
    }
    hs_subtype_stat subtypes[HS_SUBTYPES];
    eval_output e = {&model, path, &ds, &ex, &r, predicted, scores, outputs, skipped, NULL, 0};
    int asked = subtype_figures(o, &ds, ex.source, ex.label, predicted, ex.n, subtypes, &e.subtypes_matched);
    if (asked < 0)
        goto done;
    if (asked > 0)
        e.subtypes = subtypes;
    print_eval(o, &e);
    rc = EXIT_OK;
done:
    hs_eval_report_free(&r);
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

/* The progress line of one fold, on stderr. */
static void fold_done(const hs_crossval_fold *f, void *user)
{
    (void)user;
    fprintf(stderr,
            "repeat %d fold %d: %d test images, accuracy %.4f, sensitivity %.4f, "
            "specificity %.4f, AUC %.4f, threshold %.3f, %.1fs\n",
            f->repeat + 1, f->fold + 1, f->n_test, f->report.accuracy, f->report.sensitivity,
            f->report.specificity, f->report.auc, (double)f->threshold, f->seconds);
}

/* One fold as --cv --json lists it: its report, and every test image's
 * score followed by the scores that placed its threshold. */
static json_t *fold_json(const hs_dataset *ds, const hs_crossval_fold *f, const unsigned char *via)
{
    const char (*names)[HS_MODEL_NAME_LEN] = (const char (*)[HS_MODEL_NAME_LEN])ds->class_name;
    json_t *fj = report_json(&f->report, ds->n_classes, names);
    json_object_set_new(fj, "repeat", json_integer(f->repeat + 1));
    json_object_set_new(fj, "fold", json_integer(f->fold + 1));
    json_object_set_new(fj, "threshold", json_real(f->threshold));
    json_object_set_new(fj, "n", json_integer(f->n_test));
    json_object_set_new(fj, "seconds", json_real(f->seconds));
    scored_images test = {f->n_test, f->outputs, f->test_source, f->test_label, f->test_predicted,
                          f->test_score, names, via};
    scored_images val = {f->n_val, f->outputs, f->val_source, f->val_label, NULL, f->val_score, names, via};
    json_t *images = images_json(ds, &test, "test");
    json_t *val_images = images_json(ds, &val, "validation");
    json_array_extend(images, val_images);
    json_decref(val_images);
    json_object_set_new(fj, "images", images);
    return fj;
}

/* What --cv prints besides the result: the per-subtype figures of the
 * pooled out-of-fold test scores (subtypes NULL when not asked for) and
 * how each file was read (via, per file; NULL when not known). */
typedef struct {
    const hs_subtype_stat *subtypes;
    int subtypes_matched;
    const unsigned char *via;
} cv_extra;

static void print_cv_json(const hs_crossval_result *r, const hs_dataset *ds, const char *data_sha,
                          const cv_extra *x)
{
    json_t *out = json_object();
    json_object_set_new(out, "folds", json_integer(r->folds));
    json_object_set_new(out, "repeats", json_integer(r->repeats));
    json_object_set_new(out, "data_sha256", json_string(data_sha));
    const char *names[7] = {"accuracy", "sensitivity", "specificity", "auc", "pooled_auc", "seconds",
                            "accuracy_at_0_5"};
    const hs_crossval_stat *stat[7] = {&r->accuracy, &r->sensitivity, &r->specificity, &r->auc,
                                       &r->pooled_auc, &r->seconds, &r->accuracy_at_half};
    for (int i = 0; i < 7; i++)
        json_object_set_new(out, names[i], json_pack("{s:o,s:o}", "mean", cli_json_number(stat[i]->mean), "sd",
                                                     cli_json_number(stat[i]->sd)));
    json_t *folds = json_array();
    for (int i = 0; i < r->folds * r->repeats; i++)
        json_array_append_new(folds, fold_json(ds, &r->fold[i], x->via));
    json_object_set_new(out, "per_fold", folds);
    if (x->subtypes != NULL) {
        json_object_set_new(out, "subtype_sensitivity", subtypes_json(x->subtypes));
        json_object_set_new(out, "subtype_labels_matched", json_integer(x->subtypes_matched));
    }
    json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    printf("\n");
    json_decref(out);
}

static void print_cv_text(const hs_crossval_result *r, const hs_dataset *ds, const options *o, const cv_extra *x)
{
    printf("%d-fold cross-validation, %d repeat%s, %d images (grouped, stratified)\n", r->folds, r->repeats,
           r->repeats > 1 ? "s" : "", r->n_images);
    printf("accuracy     %.4f +- %.4f (at each model's threshold)\n", r->accuracy.mean, r->accuracy.sd);
    if (isfinite(r->accuracy_at_half.mean))
        printf("accuracy     %.4f +- %.4f (at threshold 0.5)\n", r->accuracy_at_half.mean,
               r->accuracy_at_half.sd);
    printf("sensitivity  %.4f +- %.4f\n", r->sensitivity.mean, r->sensitivity.sd);
    printf("specificity  %.4f +- %.4f\n", r->specificity.mean, r->specificity.sd);
    printf("ROC AUC      %.4f +- %.4f (per fold)\n", r->auc.mean, r->auc.sd);
    if (isfinite(r->pooled_auc.mean) && r->repeats > 1)
        printf("pooled AUC   %.4f +- %.4f (out-of-fold scores, per repeat)\n", r->pooled_auc.mean,
               r->pooled_auc.sd);
    else if (isfinite(r->pooled_auc.mean))
        printf("pooled AUC   %.4f (all out-of-fold scores together)\n", r->pooled_auc.mean);
    printf("training     %.1f s per fold\n", r->seconds.mean);
    if (x->subtypes != NULL) {
        printf("(subtypes: out-of-fold test images of every fold and repeat, each at its fold's threshold)\n");
        print_subtypes(x->subtypes, x->subtypes_matched, ds->n, o->subtypes);
    }
}

/* --subtypes over the pooled test images of every fold of r, each
 * predicted at its own fold's threshold: 0 not asked, 1 done, -1 failed. */
static int cv_subtypes(const options *o, const hs_dataset *ds, const hs_crossval_result *r,
                       hs_subtype_stat out[HS_SUBTYPES], int *matched)
{
    if (o->subtypes == NULL)
        return 0;
    int n = 0;
    for (int i = 0; i < r->folds * r->repeats; i++)
        n += r->fold[i].n_test;
    int *source = malloc((size_t)(n > 0 ? n : 1) * sizeof *source);
    int *label = malloc((size_t)(n > 0 ? n : 1) * sizeof *label);
    int *predicted = malloc((size_t)(n > 0 ? n : 1) * sizeof *predicted);
    int done = -1;
    if (source == NULL || label == NULL || predicted == NULL) {
        fprintf(stderr, "hemoscan: out of memory\n");
    } else {
        int k = 0;
        for (int i = 0; i < r->folds * r->repeats; i++) {
            const hs_crossval_fold *f = &r->fold[i];
            memcpy(source + k, f->test_source, (size_t)f->n_test * sizeof *source);
            memcpy(label + k, f->test_label, (size_t)f->n_test * sizeof *label);
            memcpy(predicted + k, f->test_predicted, (size_t)f->n_test * sizeof *predicted);
            k += f->n_test;
        }
        done = subtype_figures(o, ds, source, label, predicted, n, out, matched);
    }
    free(source);
    free(label);
    free(predicted);
    return done;
}

int cli_mode_cross_validate(const options *o)
{
    hs_error err;
    hs_dataset ds;
    unsigned char *unused = NULL;
    int usage;
    if (training_sources(o, &ds, &unused, &usage, &err) != HS_OK)
        return data_fail(&err, usage);
    hs_examples ex = {0};
    hs_crossval_result r = {0};
    int skipped, rc = EXIT_FAILED;
    char data_sha[65];
    if (hs_dataset_checksum(&ds, data_sha, &err) != HS_OK ||
        load_examples(&ds, &o->train_recipe, &ex, &skipped, &err) != HS_OK) {
        fail(&err);
        goto done;
    }
    hs_crossval_config cfg = {.val_split = o->val_split, .threads = o->threads, .tta = o->tta,
                              .folds = o->cv_folds, .repeats = o->cv_repeats};
    train_setup(o, &cfg.setup);
    /* Epoch lines only with -v: a fold's training is one line of many. */
    cfg.setup.train.verbose = o->verbose > 0 ? 1 : 0;
    if (hs_crossval_run(&cfg, &ds, &ex, data_sha, o->verbose >= 0 ? fold_done : NULL, NULL, &r, &err) !=
        HS_OK) {
        fail(&err);
        goto done;
    }
    /* Repeat 1's ROC curve, from its out-of-fold scores. */
    const hs_crossval_repeat *first = &r.repeat[0];
    if (o->plots != NULL && first->n_oof > 0 &&
        roc_plot(o->plots, "cv-roc.svg", "hemoscan cross-validation, out-of-fold scores", first->oof_score,
                 first->oof_label, first->n_oof, 0.5, &err) != HS_OK) {
        fail(&err);
        goto done;
    }
    hs_subtype_stat subtypes[HS_SUBTYPES];
    cv_extra x = {NULL, 0, via_per_file(ds.n, &ex)};
    int asked = cv_subtypes(o, &ds, &r, subtypes, &x.subtypes_matched);
    if (asked > 0)
        x.subtypes = subtypes;
    if (asked >= 0 && o->json)
        print_cv_json(&r, &ds, data_sha, &x);
    else if (asked >= 0)
        print_cv_text(&r, &ds, o, &x);
    free((void *)x.via);
    if (asked < 0)
        goto done;
    rc = EXIT_OK;
done:
    hs_crossval_free(&r);
    free(unused);
    hs_examples_free(&ex);
    hs_dataset_free(&ds);
    return rc;
}

/* --validate's ROC pictures (modes_validate.c) are drawn as --eval's. */
hs_status cli_roc_plot(const char *dir, const char *name, const char *title, const float *scores,
                       const int *labels, int n, double threshold, hs_error *err)
{
    return roc_plot(dir, name, title, scores, labels, n, threshold, err);
}
