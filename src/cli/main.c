/* main.c - the hemoscan command line: parse options, pick the mode.
 *
 * Nothing here computes anything, and nothing calls back into this file:
 * each mode lives in a modes_*.c file that calls the library, and what
 * the modes share is in common.c. The option vocabulary follows DCMTK's
 * tools (-h, --version, -q, -v). Exit codes are listed in modes.h and
 * hemoscan(1).
 *
 * A numeric option is a line of one table (numeric_options: its range and
 * the field it fills). The checks between options (one needs or works
 * with another, two conflict) read like DCMTK's checkDependence and
 * checkConflict: requires() and conflicts(). */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "modes.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* The --help text.
 *
 * Long because it is one string, every option in one place: split, the
 * pieces would only be read together. */
static void usage(FILE *out)
{
    fprintf(out,
            "Usage: hemoscan [OPTION]... MODE\n"
            "Find intracranial hemorrhage on head CT (decision support, not a diagnosis).\n"
            "\n"
            "Modes:\n"
            "  --study DIR...         read each DICOM head CT study folder: verdict on\n"
            "                         stdout, everything recorded in the audit database\n"
            "  --watch DIR            read every complete study under a drop folder once,\n"
            "                         record it, then exit (cron) or, with --follow, wait\n"
            "                         for more\n"
            "  --export DIR... --out PNGDIR\n"
            "                         write every slice as the model sees it (PNG), one\n"
            "                         folder per series, to label and train on\n"
            "  --validate DIR --labels FILE.csv\n"
            "                         measure the model on labelled studies (one folder\n"
            "                         per study under DIR; labels: study,label[,subtypes]):\n"
            "                         study AUC (95%% CI), sensitivity, specificity, per\n"
            "                         study table; recorded as a validation run that never\n"
            "                         changes current verdicts\n"
            "  --predict FILE.png...  score pictures: class and score per file\n"
            "  --eval DIR             evaluate on DIR/CLASS/ pictures (*.png) and DICOM\n"
            "                         slices (*.dcm, or DICM files without extension):\n"
            "                         accuracy, sensitivity, specificity, precision, F1,\n"
            "                         ROC AUC (95%% CI), confusion\n"
            "  --train DIR            train a model from DIR/CLASS/ pictures and DICOM\n"
            "                         slices (or DIR/train and DIR/validate); needs\n"
            "                         --model OUT. Repeat --train (or --eval) DIR to\n"
            "                         merge several folders of the same class names\n"
            "  --train DIR --cv K     K-fold cross-validation (stratified, grouped)\n"
            "  --init-model FILE      write an untrained reference network to FILE\n"
            "  --model-info FILE      describe a model file\n"
            "\n"
            "Common options:\n"
            "  --model FILE           model to use, or to write with --train\n"
            "                         (default: %s/%s)\n"
            "  --json                 machine-readable output\n"
            "  --plots DIR            write pictures (ROC curve, training curves) as SVG\n"
            "  --no-tta               do not average each image with its mirror image\n"
            "  --threads N            worker threads (default: 1 for training, every\n"
            "                         core for --study)\n"
            "  --seed N               seed for every random choice (default 1)\n"
            "  -q, --quiet            print errors only, and with --study or --watch one\n"
            "                         line per positive study\n"
            "  -v, --verbose          print more detail\n"
            "  -h, --help             print this help and exit\n"
            "      --version          print the version and exit\n"
            "\n"
            "Study options:\n"
            "  --db FILE              audit database (default $HEMOSCAN_DB, else\n"
            "                         $XDG_STATE_HOME/hemoscan/audit.db, else\n"
            "                         ~/.local/state/hemoscan/audit.db)\n"
            "  --all-series           score every eligible series, not only the best\n"
            "  --review DIR           also write review pictures per study into DIR: a\n"
            "                         multi-page TIFF of the key slices with the network's\n"
            "                         Grad-CAM heatmap and a contact sheet of all slices\n"
            "  --review-dicom         with --review: also the key slice's picture as a DICOM\n"
            "                         Secondary Capture (new series of the study, NOT FOR\n"
            "                         DIAGNOSTIC USE) to send back to PACS with storescu\n"
            "  --slice-labels FILE    with --validate: sop_instance_uid,label lines; adds\n"
            "                         the slice-level AUC\n"
            "  --on-positive CMD      with --study or --watch: run CMD (/bin/sh -c) for\n"
            "                         each positive study once its verdict is recorded;\n"
            "                         the study in HEMOSCAN_* variables, killed after\n"
            "                         30 s, its failure recorded (see hemoscan(1))\n"
            "  --syslog               with --study or --watch: positives to syslog\n"
            "                         (LOG_CRIT), errors (LOG_ERR), the --watch summary\n"
            "  --min-thickness MM     preferred slice thickness range (2)\n"
            "  --max-thickness MM     (10)\n"
            "\n"
            "Watch options (with --watch DIR):\n"
            "  --follow               keep running, react to new files (inotify), until\n"
            "                         SIGTERM or SIGINT\n"
            "  --stable-age S         a study is complete when none of its files changed\n"
            "                         for S seconds (60)\n"
            "  --done DIR             move the files of each study read to DIR\n"
            "  --delete               delete the files of each study read\n"
            "  --quarantine DIR       move files that belong to no study, and studies that\n"
            "                         failed, to DIR with the reason beside them\n"
            "\n"
            "Training options (the default model's: scripts/train-default-model.sh):\n"
            "  --val-split F          validation fraction when DIR has no validate/, with\n"
            "                         --members (0.2)\n"
            "  --groups CSV           id,group lines; a group never straddles a split\n"
            "                         (DIR/groups.csv is used when present; applies to\n"
            "                         each --train DIR's own files)\n"
            "  --subtypes CSV         with --eval or --cv: sensitivity per hemorrhage\n"
            "                         subtype from a labels file (an id column: file,\n"
            "                         sop_instance_uid or id; subtype columns epidural,\n"
            "                         intraparenchymal, intraventricular, subarachnoid,\n"
            "                         subdural of 1, 0 or empty)\n"
            "  --epochs N (150)  --batch N (16)  --lr X (0.001)  --dropout X (0.5)\n"
            "  --weight-decay X (0.01)  --optimizer adam|sgd (adam)\n"
            "  --schedule cosine|step|plateau|constant (cosine)  --patience N (0 = off)\n"
            "  --ema X                keep a moving average of the weights, decay X per\n"
            "                         step (0 = off)\n"
            "  --windows LIST         input channels, CENTER/WIDTH in HU: the first is\n"
            "                         the window pictures are rendered in, the others\n"
            "                         narrower windows cut from it (" HS_GRAY_WINDOWS_DEFAULT ")\n"
            "  --mixup A              mix pairs of training images and labels, weight\n"
            "                         drawn from Beta(A, A) (0 = off)\n"
            "  --init-from MODEL      start every network from MODEL's weights in the\n"
            "                         layers of the same shape (e.g. a model trained on\n"
            "                         other pictures); the others start at random\n"
            "  --fold-ensemble N      N members, each validating on its own 1/N of the\n"
            "                         images (grouped); the threshold is placed on all\n"
            "                         their out-of-fold scores (default: 5)\n"
            "  --members N            N members sharing one validation split (N = 1: a\n"
            "                         single network, --val-split applies)\n"
            "  --no-augment           train without augmentation\n"
            "  --keep-last            keep each network's last epoch, not its best on\n"
            "                         validation (honest out-of-fold scores)\n"
            "  --augment-strength X   scale rotation, shift, zoom, brightness, contrast (1)\n"
            "  --min-sensitivity X    operating point for the threshold (0.95)\n"
            "  --max-false-alarm X    instead, the lowest threshold whose false-positive\n"
            "                         rate is at most X (for studies: see hemoscan(1))\n"
            "  --balance F            draw this fraction of each epoch from the\n"
            "                         hemorrhage class (0 = as the data come)\n"
            "  --cv-repeats N         repeat cross-validation with new folds (1)\n"
            "\n"
            "Exit status: 0 success, 1 an operation failed, 2 usage error, 3 no readable\n"
            "CT series in a study, 4 a study not assessable, 5 (--watch) another watcher\n"
            "is running; --validate: 0 when it ran, whatever the figures. See hemoscan(1).\n",
            HEMOSCAN_DATADIR, CLI_DEFAULT_MODEL);
}

static int parse_long(const char *opt, const char *text, long lo, long hi, long *out)
{
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "hemoscan: %s: '%s' is not a whole number from %ld to %ld\n", opt, text, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *opt, const char *text, double lo, double hi, double *out)
{
    char *end = NULL;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || !(v >= lo && v <= hi)) {
        fprintf(stderr, "hemoscan: %s: '%s' is not a number from %g to %g\n", opt, text, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

enum {
    OPT_VERSION = 256, OPT_INIT_MODEL, OPT_MODEL_INFO, OPT_MODEL, OPT_SEED, OPT_THREADS,
    OPT_TRAIN, OPT_EVAL, OPT_PREDICT, OPT_JSON, OPT_PLOTS, OPT_CV, OPT_CV_REPEATS, OPT_VAL_SPLIT,
    OPT_GROUPS, OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_DROPOUT, OPT_EMA, OPT_MIXUP, OPT_INIT_FROM, OPT_WINDOWS, OPT_WEIGHT_DECAY, OPT_OPTIMIZER,
    OPT_SCHEDULE, OPT_PATIENCE, OPT_MEMBERS, OPT_FOLD_ENSEMBLE, OPT_NO_AUGMENT, OPT_KEEP_LAST, OPT_NO_TTA, OPT_MIN_SENS, OPT_MAX_FALSE_ALARM, OPT_BALANCE, OPT_AUG_STRENGTH,
    OPT_STUDY, OPT_EXPORT, OPT_OUT, OPT_DB, OPT_ALL_SERIES, OPT_MIN_THICKNESS, OPT_MAX_THICKNESS,
    OPT_WATCH, OPT_FOLLOW, OPT_STABLE_AGE, OPT_DONE, OPT_DELETE, OPT_QUARANTINE, OPT_SYSLOG,
    OPT_REVIEW, OPT_REVIEW_DICOM, OPT_VALIDATE, OPT_LABELS, OPT_SLICE_LABELS, OPT_SUBTYPES,
    OPT_ON_POSITIVE
};

static const struct option longopts[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"init-model", required_argument, NULL, OPT_INIT_MODEL},
    {"model-info", required_argument, NULL, OPT_MODEL_INFO},
    {"model", required_argument, NULL, OPT_MODEL},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"train", required_argument, NULL, OPT_TRAIN},
    {"eval", required_argument, NULL, OPT_EVAL},
    {"predict", no_argument, NULL, OPT_PREDICT},
    {"json", no_argument, NULL, OPT_JSON},
    {"plots", required_argument, NULL, OPT_PLOTS},
    {"cv", required_argument, NULL, OPT_CV},
    {"cv-repeats", required_argument, NULL, OPT_CV_REPEATS},
    {"val-split", required_argument, NULL, OPT_VAL_SPLIT},
    {"groups", required_argument, NULL, OPT_GROUPS},
    {"subtypes", required_argument, NULL, OPT_SUBTYPES},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"lr", required_argument, NULL, OPT_LR},
    {"dropout", required_argument, NULL, OPT_DROPOUT},
    {"ema", required_argument, NULL, OPT_EMA},
    {"mixup", required_argument, NULL, OPT_MIXUP},
    {"init-from", required_argument, NULL, OPT_INIT_FROM},
    {"windows", required_argument, NULL, OPT_WINDOWS},
    {"weight-decay", required_argument, NULL, OPT_WEIGHT_DECAY},
    {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
    {"schedule", required_argument, NULL, OPT_SCHEDULE},
    {"patience", required_argument, NULL, OPT_PATIENCE},
    {"members", required_argument, NULL, OPT_MEMBERS},
    {"fold-ensemble", required_argument, NULL, OPT_FOLD_ENSEMBLE},
    {"no-augment", no_argument, NULL, OPT_NO_AUGMENT},
    {"keep-last", no_argument, NULL, OPT_KEEP_LAST},
    {"augment-strength", required_argument, NULL, OPT_AUG_STRENGTH},
    {"no-tta", no_argument, NULL, OPT_NO_TTA},
    {"min-sensitivity", required_argument, NULL, OPT_MIN_SENS},
    {"max-false-alarm", required_argument, NULL, OPT_MAX_FALSE_ALARM},
    {"balance", required_argument, NULL, OPT_BALANCE},
    {"study", no_argument, NULL, OPT_STUDY},
    {"export", no_argument, NULL, OPT_EXPORT},
    {"out", required_argument, NULL, OPT_OUT},
    {"db", required_argument, NULL, OPT_DB},
    {"all-series", no_argument, NULL, OPT_ALL_SERIES},
    {"review", required_argument, NULL, OPT_REVIEW},
    {"review-dicom", no_argument, NULL, OPT_REVIEW_DICOM},
    {"min-thickness", required_argument, NULL, OPT_MIN_THICKNESS},
    {"max-thickness", required_argument, NULL, OPT_MAX_THICKNESS},
    {"watch", required_argument, NULL, OPT_WATCH},
    {"follow", no_argument, NULL, OPT_FOLLOW},
    {"stable-age", required_argument, NULL, OPT_STABLE_AGE},
    {"done", required_argument, NULL, OPT_DONE},
    {"delete", no_argument, NULL, OPT_DELETE},
    {"quarantine", required_argument, NULL, OPT_QUARANTINE},
    {"syslog", no_argument, NULL, OPT_SYSLOG},
    {"on-positive", required_argument, NULL, OPT_ON_POSITIVE},
    {"validate", required_argument, NULL, OPT_VALIDATE},
    {"labels", required_argument, NULL, OPT_LABELS},
    {"slice-labels", required_argument, NULL, OPT_SLICE_LABELS},
    {NULL, 0, NULL, 0},
};

/* A numeric option: a number from lo to hi, stored in one field of
 * options (--augment-strength has none: take_number scales the
 * augmentation by it). Whole numbers are read by parse_long, the others
 * by parse_double, whose messages name the range. */
typedef struct {
    int id;           /* OPT_... */
    const char *name; /* the option as messages name it */
    char type;        /* the field: 'i' int (a whole number), 'f' float, 'd' double, 0 none */
    double lo, hi;
    size_t offset;    /* of the field in options */
} numeric_option;

#define FIELD(member) offsetof(options, member)

/* Every numeric option; what one sets beyond its field is in take_number. */
static const numeric_option numeric_options[] = {
    {OPT_STABLE_AGE, "--stable-age", 'd', 0.0, 86400.0, FIELD(stable_age_s)},
    {OPT_MIN_THICKNESS, "--min-thickness", 'd', 0.0, 100.0, FIELD(min_thickness)},
    {OPT_MAX_THICKNESS, "--max-thickness", 'd', 0.0, 100.0, FIELD(max_thickness)},
    {OPT_THREADS, "--threads", 'i', 1, 256, FIELD(threads)},
    {OPT_CV, "--cv", 'i', 2, 100, FIELD(cv_folds)},
    {OPT_CV_REPEATS, "--cv-repeats", 'i', 1, 100, FIELD(cv_repeats)},
    {OPT_EPOCHS, "--epochs", 'i', 1, 100000, FIELD(train.epochs)},
    {OPT_BATCH, "--batch", 'i', 1, 4096, FIELD(train.batch)},
    {OPT_PATIENCE, "--patience", 'i', 0, 100000, FIELD(train.patience)},
    {OPT_MEMBERS, "--members", 'i', 1, 16, FIELD(train.members)},
    {OPT_FOLD_ENSEMBLE, "--fold-ensemble", 'i', 2, 16, FIELD(train.members)},
    {OPT_VAL_SPLIT, "--val-split", 'd', 0.01, 0.99, FIELD(val_split)},
    {OPT_LR, "--lr", 'f', 1e-9, 10.0, FIELD(train.lr)},
    {OPT_DROPOUT, "--dropout", 'f', 0.0, 0.95, FIELD(train.dropout)},
    {OPT_EMA, "--ema", 'f', 0.0, 0.9999, FIELD(train.ema)},
    {OPT_MIXUP, "--mixup", 'f', 0.0, 10.0, FIELD(train.mixup)},
    {OPT_WEIGHT_DECAY, "--weight-decay", 'f', 0.0, 1.0, FIELD(train.weight_decay)},
    {OPT_AUG_STRENGTH, "--augment-strength", 0, 0.0, 4.0, 0},
    {OPT_MIN_SENS, "--min-sensitivity", 'd', 0.0, 1.0, FIELD(train.min_sensitivity)},
    {OPT_MAX_FALSE_ALARM, "--max-false-alarm", 'd', 0.0, 1.0, FIELD(train.max_false_alarm)},
    {OPT_BALANCE, "--balance", 'f', 0.0, 0.95, FIELD(train.balance)},
};

/* The numeric option c, or NULL when c is not one. */
static const numeric_option *find_numeric(int c)
{
    for (size_t i = 0; i < sizeof numeric_options / sizeof numeric_options[0]; i++)
        if (numeric_options[i].id == c)
            return &numeric_options[i];
    return NULL;
}

/* A numeric option's value, read, checked and stored, with what it sets
 * besides its field; -1 (after a message) on a bad value. */
static int take_number(options *o, const numeric_option *n, const char *arg)
{
    char *field = (char *)o + n->offset;
    long v = 0;
    double d = 0.0;
    if (n->type == 'i') {
        if (parse_long(n->name, arg, (long)n->lo, (long)n->hi, &v) != 0)
            return -1;
        *(int *)field = (int)v;
    } else {
        if (parse_double(n->name, arg, n->lo, n->hi, &d) != 0)
            return -1;
        if (n->type == 'f')
            *(float *)field = (float)d;
        else if (n->type == 'd')
            *(double *)field = d;
    }
    switch (n->id) {
    case OPT_THREADS:
        o->train.threads = o->threads;
        o->threads_given = 1;
        break;
    case OPT_MEMBERS: o->train.fold_ensemble = 0; break;
    case OPT_FOLD_ENSEMBLE: o->train.fold_ensemble = 1; break;
    case OPT_AUG_STRENGTH: {
        hs_augment base;
        hs_augment_default(&base);
        o->train.aug.rotate_deg = base.rotate_deg * (float)d;
        o->train.aug.shift_frac = base.shift_frac * (float)d;
        o->train.aug.zoom_frac = base.zoom_frac * (float)d;
        o->train.aug.brightness = base.brightness * (float)d;
        o->train.aug.contrast = base.contrast * (float)d;
        break;
    }
    default: break;
    }
    return 0;
}

/* --seed N: any unsigned 64-bit number, for both the command line's and
 * training's random choices; -1 (after a message) on a bad value. */
static int take_seed(options *o, const char *arg)
{
    char *end = NULL;
    unsigned long long s = strtoull(arg, &end, 10);
    if (end == arg || *end != '\0' || arg[0] == '-') {
        fprintf(stderr, "hemoscan: --seed: '%s' is not a non-negative whole number\n", arg);
        return -1;
    }
    o->seed = (uint64_t)s;
    o->train.seed = (uint64_t)s;
    return 0;
}

/* One more source folder of a repeated --train or --eval DIR; the first
 * is also *first. -1 (after a message) beyond CLI_MAX_SOURCES. */
static int add_source(const char **dirs, int *n, const char **first, const char *opt, const char *arg)
{
    if (*n == CLI_MAX_SOURCES) {
        fprintf(stderr, "hemoscan: %s: at most %d folders\n", opt, CLI_MAX_SOURCES);
        return -1;
    }
    dirs[(*n)++] = arg;
    if (*first == NULL)
        *first = arg;
    return 0;
}

/* One option with its argument; -1 on a bad value. */
static int take_option(options *o, int c, const char *arg)
{
    const numeric_option *n = find_numeric(c);
    if (n != NULL)
        return take_number(o, n, arg);
    switch (c) {
    case 'q': o->verbose = -1; break;
    case 'v': o->verbose = 1; break;
    case OPT_INIT_MODEL: o->init_model = arg; break;
    case OPT_MODEL_INFO: o->model_info = arg; break;
    case OPT_MODEL: o->model = arg; break;
    case OPT_TRAIN: return add_source(o->train_dirs, &o->n_train_dirs, &o->train_dir, "--train", arg);
    case OPT_EVAL: return add_source(o->eval_dirs, &o->n_eval_dirs, &o->eval_dir, "--eval", arg);
    case OPT_SUBTYPES: o->subtypes = arg; break;
    case OPT_PREDICT: o->predict = 1; break;
    case OPT_STUDY: o->study = 1; break;
    case OPT_EXPORT: o->export_slices = 1; break;
    case OPT_OUT: o->out_dir = arg; break;
    case OPT_DB: o->db = arg; break;
    case OPT_ALL_SERIES: o->all_series = 1; break;
    case OPT_WATCH: o->watch_dir = arg; break;
    case OPT_FOLLOW: o->follow = 1; break;
    case OPT_DONE: o->done_dir = arg; break;
    case OPT_DELETE: o->delete_done = 1; break;
    case OPT_QUARANTINE: o->quarantine_dir = arg; break;
    case OPT_SYSLOG: o->use_syslog = 1; break;
    case OPT_ON_POSITIVE:
        if (arg[0] == '\0') {
            fprintf(stderr, "hemoscan: --on-positive: the command is empty\n");
            return -1;
        }
        o->on_positive = arg;
        break;
    case OPT_VALIDATE: o->validate_dir = arg; break;
    case OPT_LABELS: o->labels = arg; break;
    case OPT_SLICE_LABELS: o->slice_labels = arg; break;
    case OPT_REVIEW: o->review_dir = arg; break;
    case OPT_REVIEW_DICOM: o->review_dicom = 1; break;
    case OPT_JSON: o->json = 1; break;
    case OPT_PLOTS: o->plots = arg; break;
    case OPT_GROUPS: o->groups = arg; break;
    case OPT_INIT_FROM: o->init_from = arg; break;
    case OPT_NO_AUGMENT: o->train.augment = 0; break;
    case OPT_KEEP_LAST: o->train.keep_last = 1; break;
    case OPT_NO_TTA: o->tta = 0; o->train.tta = 0; break;
    case OPT_SEED: return take_seed(o, arg);
    case OPT_WINDOWS: {
        hs_error err = {0};
        if (hs_input_recipe_gray(&o->train_recipe, arg, &err) != HS_OK) {
            fprintf(stderr, "hemoscan: --windows: %s\n", err.msg);
            return -1;
        }
        o->windows_given = 1;
        break;
    }
    case OPT_OPTIMIZER:
        if (strcmp(arg, "adam") == 0) {
            o->train.optimizer = HS_OPT_ADAM;
        } else if (strcmp(arg, "sgd") == 0) {
            o->train.optimizer = HS_OPT_SGD;
        } else {
            fprintf(stderr, "hemoscan: --optimizer: '%s' is not adam or sgd\n", arg);
            return -1;
        }
        break;
    case OPT_SCHEDULE:
        if (hs_sched_kind_parse(arg, &o->train.schedule) != 0) {
            fprintf(stderr, "hemoscan: --schedule: '%s' is not cosine, step, plateau or constant\n", arg);
            return -1;
        }
        break;
    default:
        return -1;
    }
    return 0;
}

/* The defaults, and the command line as trained models record it. */
static void set_defaults(options *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->threads = 1;
    o->seed = 1;
    o->tta = 1;
    o->val_split = 0.2;
    o->cv_repeats = 1;
    o->stable_age_s = 60.0;
    hs_train_config_default(&o->train);
    hs_input_recipe_gray(&o->train_recipe, HS_GRAY_WINDOWS_DEFAULT, NULL);
    /* Recorded in trained models: "hemoscan" and the arguments, not the
     * path the program was started by, so a retraining from elsewhere
     * reproduces the file. */
    size_t used = (size_t)snprintf(o->command, sizeof o->command, "hemoscan");
    for (int i = 1; i < argc && used + 2 < sizeof o->command; i++)
        used += (size_t)snprintf(o->command + used, sizeof o->command - used, " %s", argv[i]);
}

/* The paths after the options, and exactly one mode; -1 (after a
 * message) otherwise. */
static int take_mode(options *o, int argc, char **argv)
{
    int listing = o->predict + o->study + o->export_slices;
    if (listing >= 1) {
        o->paths = argv + optind;
        o->n_paths = argc - optind;
        if (o->n_paths == 0) {
            fprintf(stderr, "hemoscan: %s needs at least one %s\n",
                    o->predict ? "--predict" : o->study ? "--study" : "--export",
                    o->predict ? "PNG file" : "study folder");
            return -1;
        }
    } else if (optind < argc) {
        fprintf(stderr, "hemoscan: unexpected argument '%s' (try --help)\n", argv[optind]);
        return -1;
    }
    int modes = (o->init_model != NULL || o->model_info != NULL) + (o->train_dir != NULL) +
                (o->eval_dir != NULL) + listing + (o->watch_dir != NULL) + (o->validate_dir != NULL);
    if (modes == 0) {
        fprintf(stderr, "hemoscan: no mode given (try --help)\n");
        return -1;
    }
    if (modes > 1) {
        fprintf(stderr, "hemoscan: give one mode at a time (try --help)\n");
        return -1;
    }
    return 0;
}

/* DCMTK's checkDependence: when opt is given but what it needs is not,
 * says "hemoscan: OPT VERB NEEDED" and returns -1; verb is "needs" for a
 * value the option cannot do without, "works with" for the mode it
 * belongs to. */
static int requires(int opt_given, int needed_given, const char *opt, const char *verb, const char *needed)
{
    if (opt_given && !needed_given) {
        fprintf(stderr, "hemoscan: %s %s %s\n", opt, verb, needed);
        return -1;
    }
    return 0;
}

/* DCMTK's checkConflict: when a and b are both given, says so and
 * returns -1. */
static int conflicts(int a_given, int b_given, const char *a, const char *b)
{
    if (a_given && b_given) {
        fprintf(stderr, "hemoscan: give %s or %s, not both\n", a, b);
        return -1;
    }
    return 0;
}

/* The options that need another option, or a mode; -1 (after a message)
 * at the first that is missing. */
static int check_dependencies(const options *o)
{
    int study_or_watch = o->study || o->watch_dir != NULL;
    int validate = o->validate_dir != NULL;
    int watch_opts = o->follow || o->done_dir != NULL || o->delete_done || o->quarantine_dir != NULL;
    if (requires(o->export_slices, o->out_dir != NULL, "--export", "needs", "--out PNGDIR") != 0 ||
        requires(o->out_dir != NULL, o->export_slices, "--out", "works with", "--export") != 0 ||
        requires(o->review_dicom, o->review_dir != NULL, "--review-dicom", "needs", "--review DIR") != 0 ||
        requires(o->review_dir != NULL, study_or_watch, "--review", "works with", "--study and --watch") != 0 ||
        requires(o->on_positive != NULL, study_or_watch, "--on-positive", "works with",
                 "--study and --watch") != 0 ||
        requires(o->use_syslog, study_or_watch, "--syslog", "works with", "--study and --watch") != 0)
        return -1;
    if (o->min_thickness > 0 && o->max_thickness > 0 && o->min_thickness > o->max_thickness) {
        fprintf(stderr, "hemoscan: --min-thickness %g is above --max-thickness %g\n", o->min_thickness,
                o->max_thickness);
        return -1;
    }
    if (requires(watch_opts, o->watch_dir != NULL, "--follow, --done, --delete and --quarantine",
                 "work with", "--watch DIR") != 0 ||
        conflicts(o->done_dir != NULL, o->delete_done, "--done DIR", "--delete") != 0 ||
        requires(o->cv_folds > 0, o->train_dir != NULL, "--cv", "works with", "--train DIR") != 0 ||
        requires(o->init_from != NULL, o->train_dir != NULL, "--init-from", "works with", "--train DIR") != 0 ||
        requires(validate, o->labels != NULL, "--validate", "needs", "--labels FILE.csv") != 0 ||
        requires(o->labels != NULL || o->slice_labels != NULL, validate, "--labels and --slice-labels",
                 "work with", "--validate DIR") != 0 ||
        requires(o->subtypes != NULL, o->eval_dir != NULL || o->cv_folds > 0, "--subtypes", "works with",
                 "--eval DIR and --train DIR --cv K") != 0)
        return -1;
    return 0;
}

/* The command line into o; -1 (after a message) on a usage error. With
 * --help or --version it prints that and sets o->shown_help. */
static int parse_options(int argc, char **argv, options *o)
{
    set_defaults(o, argc, argv);
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, ":hqv", longopts, NULL);
        if (c == -1)
            break;
        if (c == 'h') {
            usage(stdout);
            o->shown_help = 1;
            return 0;
        }
        if (c == OPT_VERSION) {
            printf("hemoscan %s\n", PACKAGE_VERSION);
            o->shown_help = 1;
            return 0;
        }
        if (c == ':') {
            fprintf(stderr, "hemoscan: option '%s' needs an argument\n", argv[optind - 1]);
            return -1;
        }
        if (c == '?') {
            fprintf(stderr, "hemoscan: unknown option '%s' (try --help)\n", argv[optind - 1]);
            return -1;
        }
        if (take_option(o, c, optarg) != 0)
            return -1;
    }
    o->train.verbose = o->verbose < 0 ? 0 : 2;
    if (take_mode(o, argc, argv) != 0 || check_dependencies(o) != 0)
        return -1;
    if ((o->study || o->watch_dir != NULL || o->validate_dir != NULL) && !o->threads_given) {
        /* reading a study is decode-bound and files are independent */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        o->threads = cores < 1 ? 1 : cores > 8 ? 8 : (int)cores;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o) != 0)
        return EXIT_USAGE;
    if (o.shown_help)
        return EXIT_OK;
    if (o.train_dir != NULL)
        return o.cv_folds > 0 ? cli_mode_cross_validate(&o) : cli_mode_train(&o);
    if (o.eval_dir != NULL)
        return cli_mode_eval(&o);
    if (o.predict)
        return cli_mode_predict(&o);
    if (o.study || o.watch_dir != NULL) {
        /* positives, errors and the --watch summary (notify.c, modes_watch.c) */
        if (o.use_syslog)
            openlog("hemoscan", LOG_PID, LOG_DAEMON);
        int rc = o.study ? cli_mode_study(&o) : cli_mode_watch(&o);
        if (o.use_syslog)
            closelog();
        return rc;
    }
    if (o.export_slices)
        return cli_mode_export(&o);
    if (o.validate_dir != NULL)
        return cli_mode_validate(&o);
    if (o.init_model != NULL) {
        int rc = cli_mode_init_model(&o);
        if (rc != EXIT_OK || o.model_info == NULL)
            return rc;
    }
    return cli_mode_model_info(&o);
}
