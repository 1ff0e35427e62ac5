/* test_crossval.c - CUnit suite for the cross-validation procedure
 * (crossval.h): the folds it deals, the figures it returns and the scores
 * behind them, reproducibility, progress and refusals.
 *
 * The data set and its examples are made in memory (no files: a data set's
 * paths are only names here), 16 pictures of 12 x 12 in pairs that share a
 * group, one picture unreadable (a file without an example, as
 * hs_examples_load leaves it). Each fold trains one small network (one
 * convolution, pooling, the output layer: hs_train_setup.layers) for one
 * epoch: the tests pin what the procedure does with its folds and scores,
 * not how well it learns, so nothing here needs training to succeed at
 * anything, and the reference network (94 x 94 at least, half a minute a
 * fold under valgrind) would only make the suite slow. One 2-fold x
 * 2-repeat run is made once, in the suite's init, and shared by the tests
 * that only read it; the tests that need other runs make their own, of one
 * repeat where one is enough. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hemoscan/crossval.h"
#include "hemoscan/metrics.h"
#include "hemoscan/model.h"
#include "test_util.h"

enum { SIDE = 12, PAIRS_PER_CLASS = 4, SKIPPED = 5 };

/* The small networks trained: two classes end in one sigmoid unit, three
 * in a softmax. */
static const hs_layer_spec two_class_net[] = {
    {.kind = HS_LAYER_CONV, .units = 4, .kernel = 3, .relu = 1},
    {.kind = HS_LAYER_MAXPOOL},
    {.kind = HS_LAYER_FLATTEN},
    {.kind = HS_LAYER_DENSE, .units = 1},
    {.kind = HS_LAYER_SIGMOID},
};
static const hs_layer_spec three_class_net[] = {
    {.kind = HS_LAYER_CONV, .units = 4, .kernel = 3, .relu = 1},
    {.kind = HS_LAYER_MAXPOOL},
    {.kind = HS_LAYER_FLATTEN},
    {.kind = HS_LAYER_DENSE, .units = 3},
    {.kind = HS_LAYER_SOFTMAX},
};

/* ---- data and settings ------------------------------------------------------ */

/* PAIRS_PER_CLASS pairs of files of each of n_classes classes: file i is
 * of class i % k (k = n_classes), and files 2jk + c and (2j + 1)k + c
 * share a group. Every file but SKIPPED has an example: a dark picture
 * with a bright square, on the right for class 1, at the bottom for class
 * 2. Each fold of two then holds two groups of each class, and its
 * training files two more: one for the inner validation, one to train. */
static void make_data(hs_dataset *ds, hs_examples *ex, int n_classes)
{
    static const char *names[] = {"normal", "hemorrhage", "other"};
    const int n_files = 2 * PAIRS_PER_CLASS * n_classes;
    memset(ds, 0, sizeof *ds);
    ds->n = n_files;
    ds->n_classes = n_classes;
    ds->path = calloc(n_files, sizeof *ds->path);
    ds->id = calloc(n_files, sizeof *ds->id);
    ds->label = calloc(n_files, sizeof *ds->label);
    ds->group = calloc(n_files, sizeof *ds->group);
    for (int c = 0; c < n_classes; c++)
        snprintf(ds->class_name[c], HS_MODEL_NAME_LEN, "%s", names[c]);
    memset(ex, 0, sizeof *ex);
    ex->size = (size_t)SIDE * SIDE;
    ex->x = calloc((size_t)n_files * ex->size, sizeof *ex->x);
    ex->label = calloc(n_files, sizeof *ex->label);
    ex->source = calloc(n_files, sizeof *ex->source);
    hs_rng rng;
    hs_rng_seed(&rng, 7);
    for (int i = 0; i < n_files; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s/%02d.png", names[i % n_classes], i);
        ds->path[i] = strdup(name);
        snprintf(name, sizeof name, "%02d", i);
        ds->id[i] = strdup(name);
        ds->label[i] = i % n_classes;
        ds->group[i] = i / (2 * n_classes) * n_classes + i % n_classes;
        if (i == SKIPPED)
            continue;
        float *img = ex->x + (size_t)ex->n * ex->size;
        for (size_t j = 0; j < ex->size; j++)
            img[j] = 0.2f + 0.1f * (float)hs_rng_uniform(&rng);
        /* a SIDE / 3 square in the left or right, top or bottom half */
        int q = SIDE / 3, x0 = ds->label[i] == 1 ? SIDE - q - 1 : 1, y0 = ds->label[i] == 2 ? SIDE - q - 1 : 1;
        for (int y = y0; y < y0 + q; y++)
            for (int x = x0; x < x0 + q; x++)
                img[y * SIDE + x] = 0.9f;
        ex->label[ex->n] = ds->label[i];
        ex->source[ex->n++] = i;
    }
}

/* One network, one epoch, no augmentation or mirror image, nothing
 * printed; 2 folds x 2 repeats, half of each fold's training files for
 * the inner validation (one pair of each class). */
static void small_config(hs_crossval_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    hs_train_setup *s = &cfg->setup;
    hs_train_config_default(&s->train);
    s->train.members = 1;
    s->train.fold_ensemble = 0;
    s->train.epochs = 1;
    s->train.batch = 8;
    s->train.warmup_epochs = 0;
    s->train.augment = 0;
    s->train.tta = 0;
    s->train.verbose = 0;
    s->train.log = NULL;
    hs_input_recipe_default(&s->recipe);
    s->recipe.width = s->recipe.height = SIDE;
    s->recipe.channels = 1;
    s->command = "test_crossval";
    s->layers = two_class_net;
    s->n_layers = (int)(sizeof two_class_net / sizeof *two_class_net);
    s->seed = 1;
    s->verbose = -1;
    cfg->val_split = 0.5;
    cfg->threads = 1;
    cfg->tta = 0;
    cfg->folds = 2;
    cfg->repeats = 2;
}

/* ---- the shared run, and what its progress callback saw --------------------- */

typedef struct {
    int calls;
    int order_ok;    /* every call was the next fold, in order */
    int complete_ok; /* every call's fold had its scores and figures */
    const hs_crossval_result *result;
} progress_log;

static hs_dataset data;
static hs_examples examples;
static hs_crossval_config config;
static hs_crossval_result shared;
static hs_status shared_status;
static progress_log shared_progress;

static void record_progress(const hs_crossval_fold *fold, void *user)
{
    progress_log *log = user;
    int k = config.folds;
    if (fold->repeat * k + fold->fold != log->calls || fold != &log->result->fold[log->calls])
        log->order_ok = 0;
    if (fold->n_test < 1 || fold->test_score == NULL || fold->test_source == NULL || fold->val_score == NULL ||
        fold->report.confusion == NULL || !isfinite(fold->report.accuracy) || !(fold->seconds > 0.0))
        log->complete_ok = 0;
    log->calls++;
}

static int suite_init(void)
{
    make_data(&data, &examples, 2);
    small_config(&config);
    shared_progress = (progress_log){0, 1, 1, &shared};
    hs_error err;
    shared_status = hs_crossval_run(&config, &data, &examples, "0123", record_progress, &shared_progress,
                                    &shared, &err);
    if (shared_status != HS_OK)
        fprintf(stderr, "\n  crossval: the shared run failed: %s\n", err.msg);
    return 0;
}

static int suite_clean(void)
{
    hs_crossval_free(&shared);
    hs_examples_free(&examples);
    hs_dataset_free(&data);
    return 0;
}

/* ---- checks shared by several tests ------------------------------------------ */

static int same(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

/* 1 when file i of the data set is among the n files of list. */
static int listed(const int *list, int n, int i)
{
    for (int j = 0; j < n; j++)
        if (list[j] == i)
            return 1;
    return 0;
}

/* 1 when some file of list a shares a group with some file of list b. */
static int groups_meet(const hs_dataset *ds, const int *a, int na, const int *b, int nb)
{
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (ds->group[a[i]] == ds->group[b[j]])
                return 1;
    return 0;
}

/* Every example is a test image of exactly one fold of each repeat. */
static void check_partition(const hs_crossval_result *r, const hs_examples *ex)
{
    CU_ASSERT_EQUAL(r->n_images, ex->n);
    for (int rep = 0; rep < r->repeats; rep++) {
        int total = 0;
        for (int e = 0; e < ex->n; e++) {
            int times = 0;
            for (int f = 0; f < r->folds; f++) {
                const hs_crossval_fold *fold = &r->fold[rep * r->folds + f];
                times += listed(fold->test_source, fold->n_test, ex->source[e]);
            }
            CU_ASSERT_EQUAL(times, 1);
        }
        for (int f = 0; f < r->folds; f++)
            total += r->fold[rep * r->folds + f].n_test;
        CU_ASSERT_EQUAL(total, ex->n);
    }
}

/* A fold's test images against the images it trained on (every other
 * example), and its inner validation images against the rest of those:
 * no group on both sides; labels as the data says. A fold ensemble's
 * validation images are all of its training images. */
static void check_fold_groups(const hs_crossval_fold *f, const hs_dataset *ds, const hs_examples *ex, int ensemble)
{
    int *training = malloc((size_t)ex->n * sizeof *training), n_training = 0;
    int *fitted = malloc((size_t)ex->n * sizeof *fitted), n_fitted = 0;
    CU_ASSERT_FATAL(training != NULL && fitted != NULL);
    for (int e = 0; e < ex->n; e++) {
        int i = ex->source[e];
        if (listed(f->test_source, f->n_test, i))
            continue;
        training[n_training++] = i;
        if (!listed(f->val_source, f->n_val, i))
            fitted[n_fitted++] = i;
    }
    CU_ASSERT_EQUAL(n_training + f->n_test, ex->n);
    CU_ASSERT(!groups_meet(ds, f->test_source, f->n_test, training, n_training));
    for (int i = 0; i < f->n_val; i++)
        CU_ASSERT(listed(training, n_training, f->val_source[i]));
    if (ensemble) {
        CU_ASSERT_EQUAL(f->n_val, n_training);
    } else {
        CU_ASSERT(f->n_val >= 1 && n_fitted >= 1);
        CU_ASSERT(!groups_meet(ds, f->val_source, f->n_val, fitted, n_fitted));
    }
    for (int i = 0; i < f->n_test; i++)
        CU_ASSERT_EQUAL(f->test_label[i], ds->label[f->test_source[i]]);
    for (int i = 0; i < f->n_val; i++)
        CU_ASSERT_EQUAL(f->val_label[i], ds->label[f->val_source[i]]);
    free(training);
    free(fitted);
}

/* A one-output fold's figures are metrics.h's on its returned scores and
 * labels at its threshold, and the threshold is the operating point of
 * the scores it was placed on. */
static void check_binary_fold(const hs_crossval_fold *f, double min_sensitivity)
{
    CU_ASSERT_EQUAL_FATAL(f->outputs, 1);
    hs_binary_metrics m;
    hs_error err;
    CU_ASSERT_FATAL(hs_binary_metrics_compute(f->test_score, f->test_label, f->n_test, f->threshold, &m, &err) ==
                    HS_OK);
    const hs_eval_report *r = &f->report;
    CU_ASSERT(same(r->accuracy, m.accuracy) && same(r->sensitivity, m.sensitivity));
    CU_ASSERT(same(r->specificity, m.specificity) && same(r->precision, m.precision) && same(r->f1, m.f1));
    CU_ASSERT(same(r->auc, m.auc) && same(r->auc_lo, m.auc_lo) && same(r->auc_hi, m.auc_hi));
    int right = 0, confusion[4];
    for (int i = 0; i < f->n_test; i++) {
        CU_ASSERT_EQUAL(f->test_predicted[i], f->test_score[i] >= f->threshold ? 1 : 0);
        right += (f->test_score[i] >= 0.5f) == (f->test_label[i] == 1);
    }
    CU_ASSERT(same(f->accuracy_at_half, (double)right / f->n_test));
    hs_confusion_matrix(f->test_label, f->test_predicted, f->n_test, 2, confusion);
    CU_ASSERT_EQUAL_FATAL(r->k, 2);
    CU_ASSERT(memcmp(confusion, r->confusion, sizeof confusion) == 0);
    double threshold;
    CU_ASSERT_FATAL(hs_threshold_for_sensitivity(f->val_score, f->val_label, f->n_val, min_sensitivity,
                                                 &threshold, &err) == HS_OK);
    CU_ASSERT_EQUAL(f->threshold, (float)threshold);
}

/* Summary figures: hs_mean_sd of the folds' (and repeats') own. */
static void check_summary(const hs_crossval_result *r)
{
    int total = r->folds * r->repeats;
    double *v = malloc((size_t)total * sizeof *v), mean, sd;
    CU_ASSERT_FATAL(v != NULL);
    for (int i = 0; i < total; i++)
        v[i] = r->fold[i].report.auc;
    hs_mean_sd(v, total, &mean, &sd);
    CU_ASSERT(same(mean, r->auc.mean) && same(sd, r->auc.sd));
    for (int i = 0; i < total; i++)
        v[i] = r->fold[i].report.accuracy;
    hs_mean_sd(v, total, &mean, &sd);
    CU_ASSERT(same(mean, r->accuracy.mean) && same(sd, r->accuracy.sd));
    for (int i = 0; i < total; i++)
        v[i] = r->fold[i].seconds;
    hs_mean_sd(v, total, &mean, &sd);
    CU_ASSERT(same(mean, r->seconds.mean) && same(sd, r->seconds.sd));
    for (int i = 0; i < r->repeats; i++)
        v[i] = r->repeat[i].pooled_auc;
    hs_mean_sd(v, r->repeats, &mean, &sd);
    CU_ASSERT(same(mean, r->pooled_auc.mean) && same(sd, r->pooled_auc.sd));
    free(v);
}

/* b's repeats are a's first ones: the same folds, scores and figures, bit
 * for bit (except the training times). */
static int same_repeats(const hs_crossval_result *a, const hs_crossval_result *b)
{
    if (a->folds != b->folds || a->repeats < b->repeats || a->n_images != b->n_images)
        return 0;
    for (int i = 0; i < b->folds * b->repeats; i++) {
        const hs_crossval_fold *x = &a->fold[i], *y = &b->fold[i];
        if (x->n_test != y->n_test || x->n_val != y->n_val || x->threshold != y->threshold ||
            x->outputs != y->outputs || !same(x->report.auc, y->report.auc) ||
            memcmp(x->test_source, y->test_source, (size_t)x->n_test * sizeof(int)) != 0 ||
            memcmp(x->test_score, y->test_score, (size_t)x->n_test * x->outputs * sizeof(float)) != 0 ||
            memcmp(x->val_source, y->val_source, (size_t)x->n_val * sizeof(int)) != 0 ||
            memcmp(x->val_score, y->val_score, (size_t)x->n_val * x->outputs * sizeof(float)) != 0)
            return 0;
    }
    for (int i = 0; i < b->repeats; i++)
        if (!same(a->repeat[i].pooled_auc, b->repeat[i].pooled_auc) || a->repeat[i].n_oof != b->repeat[i].n_oof)
            return 0;
    return 1;
}

/* ---- tests --------------------------------------------------------------------- */

static void test_every_image_tested_once_per_repeat(void)
{
    CU_ASSERT_FATAL(shared_status == HS_OK);
    CU_ASSERT_EQUAL(shared.folds, 2);
    CU_ASSERT_EQUAL(shared.repeats, 2);
    check_partition(&shared, &examples);
    /* repeat 2 deals its folds anew */
    const hs_crossval_fold *a = &shared.fold[0], *b = &shared.fold[2];
    int differ = a->n_test != b->n_test;
    for (int i = 0; !differ && i < a->n_test; i++)
        differ = !listed(b->test_source, b->n_test, a->test_source[i]);
    CU_ASSERT(differ);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(shared.fold[i].repeat, i / 2);
        CU_ASSERT_EQUAL(shared.fold[i].fold, i % 2);
    }
}

static void test_groups_never_split(void)
{
    CU_ASSERT_FATAL(shared_status == HS_OK);
    for (int i = 0; i < shared.folds * shared.repeats; i++) {
        const hs_crossval_fold *f = &shared.fold[i];
        check_fold_groups(f, &data, &examples, 0);
        /* stratified: both classes in every test fold */
        int positives = 0;
        for (int j = 0; j < f->n_test; j++)
            positives += f->test_label[j];
        CU_ASSERT(positives > 0 && positives < f->n_test);
    }
}

static void test_figures_are_metrics_of_returned_scores(void)
{
    CU_ASSERT_FATAL(shared_status == HS_OK);
    for (int i = 0; i < shared.folds * shared.repeats; i++)
        check_binary_fold(&shared.fold[i], config.setup.train.min_sensitivity);
    check_summary(&shared);
    double mean, sd, v[4];
    for (int i = 0; i < 4; i++)
        v[i] = shared.fold[i].accuracy_at_half;
    hs_mean_sd(v, 4, &mean, &sd);
    CU_ASSERT(same(mean, shared.accuracy_at_half.mean) && same(sd, shared.accuracy_at_half.sd));
}

static void test_pooled_auc_of_out_of_fold_scores(void)
{
    CU_ASSERT_FATAL(shared_status == HS_OK);
    for (int rep = 0; rep < shared.repeats; rep++) {
        const hs_crossval_repeat *r = &shared.repeat[rep];
        CU_ASSERT_EQUAL_FATAL(r->n_oof, examples.n);
        /* the folds' test scores, fold after fold */
        int at = 0;
        for (int f = 0; f < shared.folds; f++) {
            const hs_crossval_fold *fold = &shared.fold[rep * shared.folds + f];
            CU_ASSERT(memcmp(r->oof_score + at, fold->test_score, (size_t)fold->n_test * sizeof(float)) == 0);
            CU_ASSERT(memcmp(r->oof_label + at, fold->test_label, (size_t)fold->n_test * sizeof(int)) == 0);
            at += fold->n_test;
        }
        CU_ASSERT(same(r->pooled_auc, hs_roc_auc(r->oof_score, r->oof_label, r->n_oof)));
        CU_ASSERT(isfinite(r->pooled_auc));
    }
}

static void test_progress_once_per_fold_in_order(void)
{
    CU_ASSERT_FATAL(shared_status == HS_OK);
    CU_ASSERT_EQUAL(shared_progress.calls, 4);
    CU_ASSERT(shared_progress.order_ok);
    CU_ASSERT(shared_progress.complete_ok);
}

/* The same seed gives the same run; a repeat does not depend on how many
 * follow it (so a run of one repeat is the shared run's first). */
static void test_same_seed_same_result_other_seed_other_folds(void)
{
    CU_ASSERT_FATAL(shared_status == HS_OK);
    hs_crossval_result again, other;
    hs_error err;
    hs_crossval_config cfg = config;
    cfg.repeats = 1;
    CU_ASSERT_FATAL(hs_crossval_run(&cfg, &data, &examples, "0123", NULL, NULL, &again, &err) == HS_OK);
    CU_ASSERT(same_repeats(&shared, &again));
    hs_crossval_free(&again);
    cfg.setup.seed = 2;
    CU_ASSERT_FATAL(hs_crossval_run(&cfg, &data, &examples, "0123", NULL, NULL, &other, &err) == HS_OK);
    check_partition(&other, &examples);
    const hs_crossval_fold *a = &shared.fold[0], *b = &other.fold[0];
    int differ = a->n_test != b->n_test;
    for (int i = 0; !differ && i < a->n_test; i++)
        differ = !listed(b->test_source, b->n_test, a->test_source[i]);
    CU_ASSERT(differ);
    hs_crossval_free(&other);
}

/* A fold ensemble: the threshold is placed on every training image's
 * out-of-fold score, and those are the validation scores returned. */
static void test_fold_ensemble_threshold_scores(void)
{
    hs_crossval_config cfg = config;
    cfg.setup.train.members = 2;
    cfg.setup.train.fold_ensemble = 1;
    cfg.repeats = 2;
    hs_crossval_result r;
    hs_error err;
    CU_ASSERT_FATAL(hs_crossval_run(&cfg, &data, &examples, "0123", NULL, NULL, &r, &err) == HS_OK);
    check_partition(&r, &examples);
    for (int i = 0; i < r.folds * r.repeats; i++) {
        const hs_crossval_fold *f = &r.fold[i];
        check_fold_groups(f, &data, &examples, 1);
        check_binary_fold(f, cfg.setup.train.min_sensitivity);
    }
    /* the same folds as without the ensemble: one seed deals them */
    for (int i = 0; i < r.folds * r.repeats; i++)
        CU_ASSERT(memcmp(r.fold[i].test_source, shared.fold[i].test_source,
                         (size_t)r.fold[i].n_test * sizeof(int)) == 0);
    check_summary(&r);
    hs_crossval_free(&r);
}

/* A run that cannot be made fails with a message and leaves the result
 * empty (valgrind sees that nothing is left allocated). */
static void expect_refusal(const hs_crossval_config *cfg, const hs_dataset *ds, const hs_examples *ex,
                           const char *words)
{
    hs_crossval_result r;
    hs_error err = {HS_OK, ""};
    CU_ASSERT(hs_crossval_run(cfg, ds, ex, "0123", NULL, NULL, &r, &err) == HS_ERR_ARG);
    CU_ASSERT(strstr(err.msg, words) != NULL);
    if (strstr(err.msg, words) == NULL)
        fprintf(stderr, "\n  expected \"%s\" in: %s\n", words, err.msg);
    CU_ASSERT(r.fold == NULL && r.repeat == NULL && r.folds == 0);
}

/* Three classes: one probability per class and image, the report of
 * hs_eval_report_compute, no out-of-fold AUC or accuracy at 0.5; no fold
 * ensemble. */
static void test_three_classes(void)
{
    hs_dataset ds;
    hs_examples ex;
    make_data(&ds, &ex, 3);
    hs_crossval_config cfg = config;
    cfg.setup.layers = three_class_net;
    cfg.setup.n_layers = (int)(sizeof three_class_net / sizeof *three_class_net);
    hs_crossval_result r;
    hs_error err;
    hs_status st = hs_crossval_run(&cfg, &ds, &ex, "0123", NULL, NULL, &r, &err);
    if (st != HS_OK)
        fprintf(stderr, "\n  %s\n", err.msg);
    CU_ASSERT_FATAL(st == HS_OK);
    check_partition(&r, &ex);
    for (int i = 0; i < r.folds * r.repeats; i++) {
        const hs_crossval_fold *f = &r.fold[i];
        CU_ASSERT_EQUAL_FATAL(f->outputs, 3);
        CU_ASSERT(isnan(f->accuracy_at_half));
        for (int j = 0; j < f->n_test; j++) {
            const float *p = f->test_score + (size_t)j * 3;
            CU_ASSERT_DOUBLE_EQUAL(p[0] + p[1] + p[2], 1.0, 1e-5);
        }
        hs_eval_report want;
        int *predicted = malloc((size_t)f->n_test * sizeof *predicted);
        CU_ASSERT_FATAL(hs_eval_report_compute(f->test_score, f->test_label, f->n_test, 3, 3, f->threshold,
                                               predicted, &want, &err) == HS_OK);
        CU_ASSERT(same(want.accuracy, f->report.accuracy) && same(want.auc, f->report.auc));
        CU_ASSERT(same(want.sensitivity, f->report.sensitivity) && isnan(f->report.precision));
        CU_ASSERT(memcmp(want.confusion, f->report.confusion, 9 * sizeof(int)) == 0);
        CU_ASSERT(memcmp(predicted, f->test_predicted, (size_t)f->n_test * sizeof(int)) == 0);
        free(predicted);
        hs_eval_report_free(&want);
    }
    for (int i = 0; i < r.repeats; i++) {
        CU_ASSERT_EQUAL(r.repeat[i].n_oof, 0);
        CU_ASSERT(isnan(r.repeat[i].pooled_auc));
    }
    CU_ASSERT(isnan(r.pooled_auc.mean) && isnan(r.accuracy_at_half.mean));
    hs_crossval_free(&r);
    /* A fold ensemble places its threshold on one out-of-fold score per
     * image, which K outputs do not give: refused before any training. */
    cfg.setup.train.fold_ensemble = 1;
    cfg.setup.train.members = 2;
    expect_refusal(&cfg, &ds, &ex, "one output (two classes), not 3");
    hs_examples_free(&ex);
    hs_dataset_free(&ds);
}

static void test_refusals(void)
{
    hs_crossval_config cfg = config;
    cfg.folds = data.n + 1; /* more folds than files */
    expect_refusal(&cfg, &data, &examples, "needs 2 to 16 folds, got 17");
    cfg.folds = 1;
    expect_refusal(&cfg, &data, &examples, "needs 2 to 16 folds, got 1");
    cfg = config;
    cfg.repeats = 0;
    expect_refusal(&cfg, &data, &examples, "at least one repeat");
    /* an inner split the training folds cannot give: a class with one
     * group there has none to spare for validation */
    cfg = config;
    cfg.val_split = 0.1;
    expect_refusal(&cfg, &data, &examples, "too few to split");
    cfg.val_split = 1.5;
    expect_refusal(&cfg, &data, &examples, "--val-split 1.5");
    cfg = config;
    cfg.setup.n_layers = 17;
    expect_refusal(&cfg, &data, &examples, "a network of 17 layers (1 to 16)");
}

/* --init-from with a model of another input size: refused in the first
 * fold, after its split, before any training. */
static void test_refused_starting_model(void)
{
    char dir[4096], path[4200];
    CU_ASSERT_FATAL(hs_test_tmpdir_create(dir, sizeof dir, "crossval") == 0);
    hs_test_path(path, sizeof path, dir, "start.hsm");
    hs_model m;
    memset(&m, 0, sizeof m);
    m.recipe = config.setup.recipe;
    m.recipe.width = m.recipe.height = 100;
    m.n_classes = 2;
    snprintf(m.class_name[0], HS_MODEL_NAME_LEN, "normal");
    snprintf(m.class_name[1], HS_MODEL_NAME_LEN, "hemorrhage");
    m.threshold = 0.5f;
    m.n_members = 1;
    hs_layer_spec specs[16];
    int n = hs_net_reference_specs(specs, 16, 0.5f);
    hs_shape in = {100, 100, 1};
    hs_error err;
    CU_ASSERT_FATAL(hs_net_create(&m.member[0], in, specs, n, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_model_save(&m, path, &err) == HS_OK);
    hs_model_free(&m);
    hs_crossval_config cfg = config;
    cfg.setup.init_from = path;
    expect_refusal(&cfg, &data, &examples, "its input is 100x100x1, the networks trained take 12x12x1");
    CU_ASSERT(hs_test_tmpdir_remove(dir) == 0);
}

int hs_register_crossval_tests(void)
{
    static const hs_test_case cases[] = {
        {"every image is a test image once per repeat", test_every_image_tested_once_per_repeat},
        {"no group is split between test, training and validation", test_groups_never_split},
        {"fold figures are metrics.h's of the returned scores", test_figures_are_metrics_of_returned_scores},
        {"pooled AUC is the AUC of the out-of-fold scores", test_pooled_auc_of_out_of_fold_scores},
        {"progress is called once per fold, in order", test_progress_once_per_fold_in_order},
        {"the same seed repeats the run, another deals other folds",
         test_same_seed_same_result_other_seed_other_folds},
        {"a fold ensemble returns the out-of-fold scores it placed the threshold on",
         test_fold_ensemble_threshold_scores},
        {"three classes: probabilities, macro figures, no pooled AUC or fold ensemble", test_three_classes},
        {"refusals fail with a message and free everything", test_refusals},
        {"a starting model of another input size is refused", test_refused_starting_model},
    };
    return hs_test_add_suite("crossval", suite_init, suite_clean, cases, sizeof cases / sizeof cases[0]);
}
