/* crossval.c - repeated, grouped, stratified K-fold cross-validation (see
 * crossval.h).
 *
 * Design decisions:
 *   - The caller reads the data (files, groups, checksum, examples) and
 *     says how to train; this module only deals folds, trains and scores.
 *     Reading belongs to the caller because which files, which groups file
 *     and where unreadable files are reported are the command line's
 *     choices, and because a caller can then hand in examples made in
 *     memory (the unit tests do).
 *   - Each fold is trained by hs_train_model, the function --train uses, so
 *     cross-validation measures exactly the training a user runs.
 *   - One result struct, one struct per fold and per repeat; each fold owns
 *     its scores, labels and file indices, so nothing is indexed through
 *     parallel arrays and one free function releases everything, also after
 *     a failure part way through.
 *   - Seeds are derived from the one seed of the setup by fixed offsets
 *     (per repeat for the folds, per fold for the inner split), so a run is
 *     reproducible, and a repeat or fold can be reproduced on its own.
 *   - Nothing is printed: progress goes through the caller's callback, and
 *     the training's own lines go where setup.train.log says.
 *   - The work of one fold is a few steps (inner split, training, test
 *     scores, the threshold's scores), each its own function, so that every
 *     function stays short and fails in one way: a status, with err set. */
#include "hemoscan/crossval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hemoscan/clock.h"

/* What every fold of one run shares: the inputs and scratch space, one
 * entry per file of ds. */
typedef struct {
    const hs_crossval_config *cfg;
    const hs_dataset *ds;
    const hs_examples *ex;
    const char *data_sha;
    unsigned char *pick;  /* scratch selection */
    unsigned char *inner; /* 0 training, 1 inner validation, 2 test fold */
    float *file_oof;      /* a fold ensemble's out-of-fold scores */
} run_state;

static hs_status no_memory(hs_error *err)
{
    return hs_fail(err, HS_ERR_NOMEM, "out of memory");
}

/* A malloc'ed copy of n items of size bytes (at least one byte). */
static void *copy_of(const void *src, int n, size_t size)
{
    void *p = malloc(n > 0 ? (size_t)n * size : 1);
    if (p != NULL && n > 0)
        memcpy(p, src, (size_t)n * size);
    return p;
}

/* Marks the files of fold f as the test fold (2) and splits the others,
 * grouped and stratified, into training (0) and inner validation (1). */
static hs_status inner_split(run_state *s, const int *fold_of, int f, uint64_t seed, hs_error *err)
{
    const hs_dataset *ds = s->ds;
    for (int i = 0; i < ds->n; i++)
        s->pick[i] = fold_of[i] == f;
    hs_dataset rest;
    hs_status st = hs_dataset_select(ds, s->pick, 0, &rest, err);
    if (st != HS_OK)
        return st;
    unsigned char *rest_val = malloc((size_t)(rest.n > 0 ? rest.n : 1));
    st = rest_val == NULL ? no_memory(err) : hs_dataset_split(&rest, s->cfg->val_split, seed, rest_val, err);
    for (int i = 0, j = 0; st == HS_OK && i < ds->n; i++)
        s->inner[i] = s->pick[i] ? 2 : rest_val[j++];
    free(rest_val);
    hs_dataset_free(&rest);
    return st;
}

/* The test fold's scores and figures under model, and (one-output models)
 * its scores appended to the repeat's out-of-fold scores. */
static hs_status test_fold(run_state *s, const hs_model *model, hs_crossval_fold *fold, hs_crossval_repeat *rep,
                           hs_error *err)
{
    const hs_crossval_config *cfg = s->cfg;
    hs_examples test;
    hs_status st = hs_examples_select(s->ex, s->inner, 2, &test, err);
    if (st != HS_OK)
        return st;
    int outputs = hs_net_outputs(&model->member[0]);
    fold->outputs = outputs;
    fold->threshold = model->threshold;
    fold->n_test = test.n;
    fold->test_label = copy_of(test.label, test.n, sizeof *test.label);
    fold->test_source = copy_of(test.source, test.n, sizeof *test.source);
    fold->test_predicted = malloc((size_t)(test.n > 0 ? test.n : 1) * sizeof *fold->test_predicted);
    if (fold->test_label == NULL || fold->test_source == NULL || fold->test_predicted == NULL)
        st = no_memory(err);
    if (st == HS_OK)
        st = hs_examples_score(model, &test, cfg->tta, cfg->threads, &fold->test_score, err);
    if (st == HS_OK)
        st = hs_eval_report_compute(fold->test_score, test.label, test.n, outputs, model->n_classes,
                                    model->threshold, fold->test_predicted, &fold->report, err);
    if (st == HS_OK && outputs == 1) {
        int right = 0;
        for (int i = 0; i < test.n; i++)
            right += (fold->test_score[i] >= 0.5f) == (test.label[i] == 1);
        fold->accuracy_at_half = (double)right / test.n;
        for (int i = 0; i < test.n; i++) {
            rep->oof_score[rep->n_oof] = fold->test_score[i];
            rep->oof_label[rep->n_oof++] = test.label[i];
        }
    }
    hs_examples_free(&test);
    return st;
}

/* The scores the threshold was placed on, so that another rule can be
 * tried on them: the inner validation images' under model, or for a fold
 * ensemble every training image's out-of-fold score. */
static hs_status threshold_scores(run_state *s, const hs_model *model, hs_crossval_fold *fold, hs_error *err)
{
    const hs_crossval_config *cfg = s->cfg;
    hs_examples val = {0};
    hs_status st;
    if (cfg->setup.train.fold_ensemble) {
        for (int i = 0; i < s->ds->n; i++)
            s->pick[i] = s->inner[i] != 2;
        st = hs_examples_select(s->ex, s->pick, 1, &val, err);
        if (st == HS_OK && (fold->val_score = malloc((size_t)(val.n > 0 ? val.n : 1) *
                                                      sizeof *fold->val_score)) == NULL)
            st = no_memory(err);
        for (int i = 0; st == HS_OK && i < val.n; i++)
            fold->val_score[i] = s->file_oof[val.source[i]];
    } else {
        st = hs_examples_select(s->ex, s->inner, 1, &val, err);
        if (st == HS_OK)
            st = hs_examples_score(model, &val, cfg->tta, cfg->threads, &fold->val_score, err);
    }
    if (st == HS_OK) {
        fold->n_val = val.n;
        fold->val_label = copy_of(val.label, val.n, sizeof *val.label);
        fold->val_source = copy_of(val.source, val.n, sizeof *val.source);
        if (fold->val_label == NULL || fold->val_source == NULL)
            st = no_memory(err);
    }
    hs_examples_free(&val);
    return st;
}

/* Fold f of repeat rep: split, train, test. */
static hs_status run_fold(run_state *s, const int *fold_of, int rep, int f, hs_crossval_fold *fold,
                          hs_crossval_repeat *repeat, hs_error *err)
{
    const hs_crossval_config *cfg = s->cfg;
    fold->repeat = rep;
    fold->fold = f;
    fold->accuracy_at_half = NAN;
    /* Training folds: an inner grouped split picks epochs and the
     * threshold, so the test fold is never looked at. */
    hs_status st = inner_split(s, fold_of, f, cfg->setup.seed + (uint64_t)(rep * cfg->folds + f), err);
    if (st != HS_OK)
        return st;
    hs_model model;
    double t0 = hs_clock_monotonic();
    st = hs_train_model(&cfg->setup, s->ds, s->ex, s->inner, s->data_sha, &model, NULL, s->file_oof, err);
    if (st != HS_OK)
        return st;
    fold->seconds = hs_clock_monotonic() - t0;
    st = test_fold(s, &model, fold, repeat, err);
    if (st == HS_OK)
        st = threshold_scores(s, &model, fold, err);
    hs_model_free(&model);
    return st;
}

/* The result's folds and repeats, empty; each repeat with room for every
 * example's out-of-fold score. */
static hs_status result_alloc(hs_crossval_result *r, int folds, int repeats, int n_images, hs_error *err)
{
    r->folds = folds;
    r->repeats = repeats;
    r->n_images = n_images;
    r->fold = calloc((size_t)folds * (size_t)repeats, sizeof *r->fold);
    r->repeat = calloc((size_t)repeats, sizeof *r->repeat);
    if (r->fold == NULL || r->repeat == NULL)
        return no_memory(err);
    for (int i = 0; i < repeats; i++) {
        hs_crossval_repeat *rep = &r->repeat[i];
        rep->pooled_auc = NAN;
        rep->oof_score = malloc((size_t)(n_images > 0 ? n_images : 1) * sizeof *rep->oof_score);
        rep->oof_label = malloc((size_t)(n_images > 0 ? n_images : 1) * sizeof *rep->oof_label);
        if (rep->oof_score == NULL || rep->oof_label == NULL)
            return no_memory(err);
    }
    return HS_OK;
}

/* The figures summarised per fold, in the order of fold_value. */
enum { STAT_ACCURACY, STAT_SENSITIVITY, STAT_SPECIFICITY, STAT_AUC, STAT_SECONDS, STAT_ACCURACY_AT_HALF, N_STATS };

static double fold_value(const hs_crossval_fold *f, int stat)
{
    switch (stat) {
    case STAT_ACCURACY: return f->report.accuracy;
    case STAT_SENSITIVITY: return f->report.sensitivity;
    case STAT_SPECIFICITY: return f->report.specificity;
    case STAT_AUC: return f->report.auc;
    case STAT_SECONDS: return f->seconds;
    default: return f->accuracy_at_half;
    }
}

/* Means and SDs over folds, and the pooled AUC's over repeats. */
static hs_status summarise(hs_crossval_result *r, hs_error *err)
{
    int total = r->folds * r->repeats;
    double *v = malloc((size_t)total * sizeof *v); /* total >= repeats */
    if (v == NULL)
        return no_memory(err);
    hs_crossval_stat *to[N_STATS] = {&r->accuracy, &r->sensitivity, &r->specificity,
                                     &r->auc,      &r->seconds,     &r->accuracy_at_half};
    for (int stat = 0; stat < N_STATS; stat++) {
        for (int i = 0; i < total; i++)
            v[i] = fold_value(&r->fold[i], stat);
        hs_mean_sd(v, total, &to[stat]->mean, &to[stat]->sd);
    }
    for (int i = 0; i < r->repeats; i++)
        v[i] = r->repeat[i].pooled_auc;
    hs_mean_sd(v, r->repeats, &r->pooled_auc.mean, &r->pooled_auc.sd);
    free(v);
    return HS_OK;
}

/* Repeat rep's folds come from their own seed. */
static uint64_t fold_seed(const hs_crossval_config *cfg, int rep)
{
    return cfg->setup.seed + 1000003ULL * (uint64_t)rep;
}

hs_status hs_crossval_run(const hs_crossval_config *cfg, const hs_dataset *ds, const hs_examples *ex,
                          const char *data_sha, hs_crossval_progress progress, void *user,
                          hs_crossval_result *out, hs_error *err)
{
    memset(out, 0, sizeof *out);
    const int k = cfg->folds, reps = cfg->repeats;
    size_t n = (size_t)(ds->n > 0 ? ds->n : 1);
    run_state s = {cfg, ds, ex, data_sha, malloc(n), malloc(n), calloc(n, sizeof(float))};
    int *fold_of = malloc(n * sizeof *fold_of);
    hs_status st = HS_OK;
    if (s.pick == NULL || s.inner == NULL || s.file_oof == NULL || fold_of == NULL)
        st = no_memory(err);
    else if (reps < 1)
        st = hs_fail(err, HS_ERR_ARG, "cross-validation needs at least one repeat, got %d", reps);
    /* Repeat 1's folds first: hs_dataset_folds refuses a fold count the
     * data cannot give before anything is sized by it. */
    if (st == HS_OK)
        st = hs_dataset_folds(ds, k, fold_seed(cfg, 0), fold_of, err);
    if (st == HS_OK)
        st = result_alloc(out, k, reps, ex->n, err);
    for (int rep = 0; st == HS_OK && rep < reps; rep++) {
        if (rep > 0)
            st = hs_dataset_folds(ds, k, fold_seed(cfg, rep), fold_of, err);
        hs_crossval_repeat *repeat = &out->repeat[rep];
        for (int f = 0; st == HS_OK && f < k; f++) {
            hs_crossval_fold *fold = &out->fold[rep * k + f];
            st = run_fold(&s, fold_of, rep, f, fold, repeat, err);
            if (st == HS_OK && progress != NULL)
                progress(fold, user);
        }
        if (st == HS_OK && repeat->n_oof > 0)
            repeat->pooled_auc = hs_roc_auc(repeat->oof_score, repeat->oof_label, repeat->n_oof);
    }
    if (st == HS_OK)
        st = summarise(out, err);
    free(fold_of);
    free(s.pick);
    free(s.inner);
    free(s.file_oof);
    if (st != HS_OK)
        hs_crossval_free(out);
    return st;
}

void hs_crossval_free(hs_crossval_result *r)
{
    for (int i = 0; r->fold != NULL && i < r->folds * r->repeats; i++) {
        hs_crossval_fold *f = &r->fold[i];
        hs_eval_report_free(&f->report);
        free(f->test_score);
        free(f->test_label);
        free(f->test_predicted);
        free(f->test_source);
        free(f->val_score);
        free(f->val_label);
        free(f->val_source);
    }
    for (int i = 0; r->repeat != NULL && i < r->repeats; i++) {
        free(r->repeat[i].oof_score);
        free(r->repeat[i].oof_label);
    }
    free(r->fold);
    free(r->repeat);
    memset(r, 0, sizeof *r);
}
