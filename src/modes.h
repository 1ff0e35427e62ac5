/* modes.h - private interface between the command line (main.c) and the
 * code that runs each mode (modes_*.c). The options struct is the parsed
 * command line; each mode returns a process exit status. Not installed. */
#ifndef HEMOSCAN_MODES_H
#define HEMOSCAN_MODES_H

#include <stdint.h>

#include "hemoscan/train.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

typedef struct {
    int verbose; /* -1 quiet, 0 normal, 1 verbose */
    int threads;
    uint64_t seed;
    int json;
    const char *model;      /* --model (NULL: the default model) */
    const char *init_model; /* --init-model OUT */
    const char *model_info; /* --model-info FILE */
    const char *train_dir;  /* --train DIR */
    const char *eval_dir;   /* --eval DIR */
    const char *groups;     /* --groups CSV */
    const char *plots;      /* --plots DIR */
    double val_split;
    int cv_folds;           /* --cv K (with --train) */
    int cv_repeats;
    int tta;
    int shown_help;
    char **predict_files;   /* --predict FILE... */
    int n_predict;
    char command[1024];     /* the command line, for provenance */
    hs_train_config train;
} options;

/* The model --model names, or the default model's path. */
const char *hs_model_path(const options *o);

int hs_mode_init_model(const options *o);
int hs_mode_model_info(const options *o);
int hs_mode_train(const options *o);
int hs_mode_cross_validate(const options *o);
int hs_mode_predict(const options *o);
int hs_mode_eval(const options *o);

#endif
