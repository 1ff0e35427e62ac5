/* crossval.h - grouped, stratified K-fold cross-validation, repeated R
 * times, of the training hemoscan --train does.
 *
 * Every repeat deals the files into K folds (hs_dataset_folds: whole
 * groups, balanced by class, a seed of its own per repeat); each fold in
 * turn is the test set of one model trained on the others exactly as
 * hs_train_model trains one for --train. The test fold is never looked at
 * while training: an inner grouped split of the training folds
 * (val_split) chooses the epochs and places the threshold, or, with a fold
 * ensemble, the members' own folds of the training files do. The result
 * holds every figure a report needs and every score behind it (each test
 * image's, and the scores the threshold was placed on), so a caller can
 * print, plot or recompute anything without another pass; nothing is
 * printed here. Progress is a callback per fold, because a fold takes
 * minutes on real data. */
#ifndef HEMOSCAN_CROSSVAL_H
#define HEMOSCAN_CROSSVAL_H

#include <stdint.h>

#include "hemoscan/dataset.h"
#include "hemoscan/metrics.h"
#include "hemoscan/status.h"
#include "hemoscan/train.h"

typedef struct {
    hs_train_setup setup; /* how each fold's model is trained (setup.seed
                             also seeds the folds and the inner splits) */
    double val_split;     /* inner validation fraction of the training
                             folds (not used by a fold ensemble) */
    int threads;          /* scoring the test and validation images */
    int tta;              /* ... with the mirror image too */
    int folds;            /* K, 2 to the number of files */
    int repeats;          /* R >= 1, each with folds dealt anew */
} hs_crossval_config;

/* One model's test: fold `fold` of repeat `repeat` (both 0-based). */
typedef struct {
    int repeat, fold;
    int n_test;               /* test images (the fold's examples) */
    hs_eval_report report;    /* accuracy, sensitivity, specificity,
                                 precision, F1, AUC and its CI, confusion
                                 matrix: at the model's threshold */
    float threshold;          /* the model's decision threshold */
    double seconds;           /* training time (wall clock) */
    double accuracy_at_half;  /* accuracy at threshold 0.5 (one-output
                                 models; NaN for K classes) */
    int outputs;              /* scores per image: 1, or the K classes */
    float *test_score;        /* n_test x outputs, as users get them */
    int *test_label;          /* n_test classes */
    int *test_predicted;      /* n_test classes the model decided */
    int *test_source;         /* n_test files of the data set */
    /* The images the threshold was placed on and their scores: the inner
     * validation images' (scored like the test images), or for a fold
     * ensemble (two classes only, see hs_train_folds) every training
     * image's out-of-fold score. */
    int n_val;
    float *val_score;         /* n_val x outputs */
    int *val_label;           /* n_val classes */
    int *val_source;          /* n_val files of the data set */
} hs_crossval_fold;

/* One repeat's out-of-fold scores: every test score of its K folds, fold
 * after fold (one-output models only; n_oof is 0 for K classes). */
typedef struct {
    int n_oof;
    float *oof_score;
    int *oof_label;
    double pooled_auc; /* hs_roc_auc of them; NaN when there are none */
} hs_crossval_repeat;

/* Mean and sample SD over folds (or repeats), NaN ignored (hs_mean_sd). */
typedef struct {
    double mean, sd;
} hs_crossval_stat;

typedef struct {
    int folds, repeats;
    int n_images;                 /* the examples cross-validated */
    hs_crossval_fold *fold;       /* repeats x folds: fold[r * folds + f] */
    hs_crossval_repeat *repeat;   /* repeats */
    hs_crossval_stat accuracy, sensitivity, specificity, auc; /* per fold */
    hs_crossval_stat pooled_auc;  /* per repeat */
    hs_crossval_stat seconds;     /* per fold */
    hs_crossval_stat accuracy_at_half; /* per fold, NaN for K classes */
} hs_crossval_result;

/* Called once per fold, in order, when its figures are complete; user is
 * the pointer given to hs_crossval_run. */
typedef void (*hs_crossval_progress)(const hs_crossval_fold *fold, void *user);

/* Cross-validate on ex, the examples of ds (ex->source indexes ds;
 * prepared with cfg->setup.recipe), whose checksum data_sha goes into
 * every model's provenance. Repeat r's folds come from seed setup.seed +
 * 1000003 r; fold f of it splits its training files with seed setup.seed +
 * r K + f. progress may be NULL. On success *out holds the result (free it
 * with hs_crossval_free); on failure (a fold count or split the data
 * cannot give, as hs_dataset_folds and hs_dataset_split refuse, a training
 * that fails, no memory) err says why and *out is empty. */
hs_status hs_crossval_run(const hs_crossval_config *cfg, const hs_dataset *ds, const hs_examples *ex,
                          const char *data_sha, hs_crossval_progress progress, void *user,
                          hs_crossval_result *out, hs_error *err);
/* Frees everything a result holds; it is then empty. Safe on an empty
 * result. */
void hs_crossval_free(hs_crossval_result *r);

#endif
