/* train.h - training a model from labelled images.
 *
 * Images are read and put through the model's input recipe once, before
 * training (hs_examples_load_with: PNG pictures itself, DICOM slices
 * through a reader the caller supplies), so every epoch works on tensors
 * in memory;
 * augmentation then draws a fresh random transform of each image per
 * epoch. Every random choice (weight init, shuffling, dropout,
 * augmentation) comes from generators split off cfg->seed, so a run is
 * reproducible bit for bit on the same machine and thread count. Early
 * stopping keeps each ensemble member's epoch with the lowest validation
 * loss; with cfg->ema, the weights validated and kept are a moving average
 * of the weights along the way rather than the last step's. */
#ifndef HEMOSCAN_TRAIN_H
#define HEMOSCAN_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "hemoscan/cnn.h"
#include "hemoscan/dataset.h"
#include "hemoscan/image.h"
#include "hemoscan/model.h"
#include "hemoscan/optim.h"

/* Prepared input tensors with their labels. */
typedef struct {
    int n;
    size_t size;  /* floats per example */
    float *x;     /* n * size */
    int *label;
    int *source;  /* index of the file in the data set it came from */
    unsigned char *via; /* how each example was read: HS_VIA_PNG or HS_VIA_READER;
                           NULL in examples made by hand (zero the struct
                           first): all taken as PNG */
} hs_examples;

enum { HS_VIA_PNG = 0, HS_VIA_READER = 1 };

/* What reads the files of a data set that are not PNG (DICOM slices):
 * read() puts the file at path through recipe into out (recipe's height x
 * width x channels floats) and returns HS_OK, or an error whose message
 * names the file (the file is then skipped; HS_ERR_NOMEM stops the load).
 * The learn layer cannot read DICOM itself: DICOM is the study layer's,
 * which sits beside learn, not below it. So the caller above both (the
 * command line) supplies this reader, and the loader stays a loader of
 * pictures with one door for everything else. name is what the per-image
 * output calls this path ("dicom"). */
typedef struct {
    const char *name;
    hs_status (*read)(void *user, const char *path, const hs_input_recipe *recipe, float *out, hs_error *err);
    void *user;
} hs_example_reader;

/* Read every file of ds and prepare it with recipe: files named *.png
 * (any case) through hs_png_read and hs_prepare_input, every other file
 * through reader (NULL: such files cannot be read). A file that cannot be
 * read is reported on log (when not NULL) by name and skipped; *skipped
 * counts them. Fails only when nothing could be read, or out of memory. */
hs_status hs_examples_load_with(const hs_dataset *ds, const hs_input_recipe *recipe,
                                const hs_example_reader *reader, FILE *log, hs_examples *out, int *skipped,
                                hs_error *err);
/* hs_examples_load_with without a reader: PNG files only. */
hs_status hs_examples_load(const hs_dataset *ds, const hs_input_recipe *recipe,
                           FILE *log, hs_examples *out, int *skipped,
                           hs_error *err);
/* The examples whose source file has pick[source] == want. */
hs_status hs_examples_select(const hs_examples *all, const unsigned char *pick,
                             int want, hs_examples *out, hs_error *err);
void hs_examples_free(hs_examples *ex);

typedef struct {
    int epochs;             /* maximum number of epochs */
    int batch;
    float lr;               /* base learning rate */
    hs_opt_kind optimizer;
    float weight_decay;     /* decoupled for Adam (AdamW), L2 for SGD */
    hs_sched_kind schedule;
    int warmup_epochs;      /* cosine schedule only */
    int patience;           /* stop after this many epochs without a lower
                               validation loss; 0 = run all epochs */
    int keep_last;          /* keep the last epoch's weights, not the one
                               with the lowest validation loss: the
                               validation scores then never chose anything,
                               so a fold ensemble's out-of-fold scores are
                               an honest cross-validation */
    float dropout;          /* rate of the dense dropout layer */
    float ema;              /* decay per step of an exponential moving average
                               of the weights, which is what is validated and
                               kept; 0 = keep the raw weights */
    float mixup;            /* alpha of mixup's Beta(alpha, alpha); 0 = off */
    int augment;            /* apply aug to every training image */
    hs_augment aug;
    int members;            /* ensemble members, each with its own seed */
    int fold_ensemble;      /* members validate on their own fold of the
                               training data (hs_train_folds), not on one
                               shared validation split (hs_train); set by
                               the caller, which makes the folds */
    int tta;                /* flip test-time augmentation for validation scores */
    double min_sensitivity; /* operating point for the threshold */
    double max_false_alarm; /* > 0: the operating point is instead the lowest
                               threshold with a false-positive rate at most
                               this (hs_threshold_for_false_alarm) */
    float balance;          /* > 0 (two classes): this fraction of every
                               epoch's examples is drawn from class 1, the
                               rest from class 0, each class cycling through
                               its own shuffled deck; 0 = plain shuffle */
    const hs_model *init;   /* NULL: every network starts from random weights;
                               else member m starts from init's member
                               (m mod its count) in every layer whose kind
                               and shapes match (a model trained on other
                               pictures: transfer learning), the others
                               (an output layer for another number of
                               classes) from random weights */
    uint64_t seed;
    int threads;
    int verbose;            /* 0 quiet, 1 a line per epoch, 2 plus a progress bar */
    FILE *log;              /* where epoch lines go (stderr by default) */
} hs_train_config;

/* The defaults of hemoscan --train (the recipe that made the default model). */
void hs_train_config_default(hs_train_config *cfg);

/* Per-epoch record of member 0 (the first ensemble member). */
typedef struct {
    int epochs;      /* epochs run */
    int best_epoch;  /* 0-based epoch whose weights were kept */
    double *loss, *accuracy, *val_loss, *val_accuracy, *lr, *seconds;
} hs_history;
void hs_history_free(hs_history *h);
/* Write the history as CSV: epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds. */
hs_status hs_history_write_csv(const hs_history *h, const char *path, hs_error *err);

/* Train cfg->members networks with the layer list specs on train, choosing
 * each one's best epoch on val, and fill model (whose recipe, classes and
 * provenance the caller sets first): members, weights, and the decision
 * threshold (for a one-output model, the highest-specificity threshold with
 * validation sensitivity >= cfg->min_sensitivity, or with
 * cfg->max_false_alarm the lowest one whose false-positive rate stays
 * within it, on ensemble + TTA scores; 0.5 otherwise). history may be NULL. */
hs_status hs_train(const hs_train_config *cfg, const hs_layer_spec *specs, int n_specs,
                   const hs_examples *train, const hs_examples *val, hs_model *model,
                   hs_history *history, hs_error *err);

/* A fold ensemble (cross-validation bagging): cfg->members >= 2 members,
 * member m trained on the examples of data with fold[i] != m and choosing
 * its best epoch on those with fold[i] == m, so every example is validation
 * data for exactly one member and every member sees the rest. The decision
 * threshold is placed on the out-of-fold scores: each
 * example scored by the one member that never trained on it, with
 * test-time augmentation as cfg->tta says; that puts the operating point on
 * all of data rather than on a small held-out part. Users then get the
 * average of all members, a little steadier than any one of them. fold[i]
 * in 0..members-1, every fold non-empty and not all of data. The network
 * has one output (a sigmoid: two classes): an out-of-fold score is one
 * number per example, so specs ending in K > 1 outputs are refused
 * (HS_ERR_ARG). oof (may be NULL) receives the out-of-fold scores, data->n
 * of them. history is member 0's. */
hs_status hs_train_folds(const hs_train_config *cfg, const hs_layer_spec *specs, int n_specs,
                         const hs_examples *data, const int *fold, hs_model *model,
                         hs_history *history, float *oof, hs_error *err);

/* ---- one training run as hemoscan --train makes it -------------------- */

/* What hs_train_model needs besides the data. */
typedef struct {
    hs_train_config train;  /* the loop's settings (train.init is set from
                               init_from when that is given) */
    hs_input_recipe recipe; /* what the examples were prepared with; the
                               model records it */
    const char *init_from;  /* a model file whose weights every network
                               starts from (its input size and channel count
                               must be recipe's), or NULL */
    const char *command;    /* the command line, kept in the model's
                               provenance note as far as it fits (NULL: "") */
    uint64_t seed;          /* deals a fold ensemble's folds */
    const hs_layer_spec *layers; /* the network to train, n_layers specs
                                    (at most 16; its output must fit the
                                    classes), or NULL: the reference network */
    int n_layers;
    int verbose;            /* >= 0: one line on train.log (when not NULL)
                               per training, saying what it trains on; the
                               loop's own lines follow train.verbose */
} hs_train_setup;

/* Train one model with setup->layers, else the reference network
 * (hs_net_reference_specs with train.dropout; a K-way softmax for K > 2
 * classes), on the examples of ex,
 * which come from ds (ex->source indexes ds). is_val has one entry per
 * file of ds: 0 trains, 1 chooses the epochs and the threshold (hs_train),
 * 2 is left out (a cross-validation test fold). With train.fold_ensemble
 * the files marked 0 and 1 are pooled and dealt into train.members grouped,
 * stratified folds (hs_dataset_folds, seed + 7919), one per member
 * (hs_train_folds: two classes only). model is filled whole: recipe, ds's classes,
 * provenance (data_sha, the date: now, or SOURCE_DATE_EPOCH when set, for
 * reproducible files; this hemoscan's version; command, after "started
 * from sha256 ..." with init_from), weights and threshold; on failure it
 * is empty. history may be NULL. file_oof (may be NULL; ds->n entries)
 * receives, for a fold ensemble, each pooled file's out-of-fold score, the
 * scores the threshold was placed on; other entries are not touched. */
hs_status hs_train_model(const hs_train_setup *setup, const hs_dataset *ds, const hs_examples *ex,
                         const unsigned char *is_val, const char *data_sha, hs_model *model,
                         hs_history *history, float *file_oof, hs_error *err);

/* The model's scores for every example of ex as users get them
 * (hs_predictor: the members' average, and the mirror image's with tta),
 * ex->n x outputs floats in a new array *scores (the caller frees it;
 * NULL on failure). threads as in hs_predictor_create. */
hs_status hs_examples_score(const hs_model *model, const hs_examples *ex, int tta, int threads, float **scores,
                            hs_error *err);

#endif
