/* modes.h - the command line's private header: the parsed options, the
 * exit statuses, the modes (modes_*.c) and what they share (common.c).
 *
 * Only files of src/cli/ include it (scripts/check-layers.sh fails the
 * build otherwise): the library below never sees the command line. Names
 * declared here start with cli_; hs_ is the library's. Each mode returns
 * a process exit status. Not installed. */
#ifndef HEMOSCAN_MODES_H
#define HEMOSCAN_MODES_H

#include <stdint.h>

#include <jansson.h>

#include "hemoscan/audit.h"
#include "hemoscan/model.h"
#include "hemoscan/review.h"
#include "hemoscan/study.h"
#include "hemoscan/train.h"

#ifndef HEMOSCAN_DATADIR
#define HEMOSCAN_DATADIR "/usr/local/share/hemoscan"
#endif
/* The default model's file name: installed in HEMOSCAN_DATADIR, and in the
 * source tree's models/ for runs from the build directory before `make
 * install` (cli_model_path). */
#define CLI_DEFAULT_MODEL "default.hsm"

/* Exit status. With several studies the worst outcome wins: usage error,
 * then failure, then not assessable, then no readable series, then OK. */
enum {
    EXIT_OK = 0,             /* every study got a verdict (either way) */
    EXIT_FAILED = 1,         /* an operation failed (a study could not be read, I/O, ...) */
    EXIT_USAGE = 2,          /* the command line is wrong */
    EXIT_NO_SERIES = 3,      /* a study folder holds no readable axial CT series */
    EXIT_NOT_ASSESSABLE = 4, /* a series was read but cannot support a verdict */
    EXIT_LOCKED = 5          /* --watch: another watcher holds the lock */
};

/* Most source folders one --train or --eval takes (the option repeated). */
#define CLI_MAX_SOURCES 16

typedef struct {
    int verbose; /* -1 quiet, 0 normal, 1 verbose */
    int threads;
    uint64_t seed;
    int json;
    const char *model;      /* --model (NULL: the default model) */
    const char *init_model; /* --init-model OUT */
    const char *model_info; /* --model-info FILE */
    const char *train_dir;  /* --train DIR (the first, when repeated) */
    const char *eval_dir;   /* --eval DIR (the first, when repeated) */
    const char *train_dirs[CLI_MAX_SOURCES]; /* every --train DIR, in order */
    int n_train_dirs;
    const char *eval_dirs[CLI_MAX_SOURCES];  /* every --eval DIR, in order */
    int n_eval_dirs;
    const char *subtypes;   /* --subtypes CSV: per-subtype sensitivity in --eval and --cv */
    const char *groups;     /* --groups CSV */
    const char *init_from;  /* --init-from MODEL: training starts from its weights */
    const char *plots;      /* --plots DIR */
    double val_split;
    int cv_folds;           /* --cv K (with --train) */
    int cv_repeats;
    int tta;
    int shown_help;
    int study;              /* --study DIR... */
    int export_slices;      /* --export DIR... --out PNGDIR */
    int predict;            /* --predict FILE... */
    char **paths;           /* the files or folders of --predict, --study, --export */
    int n_paths;
    const char *db;         /* --db FILE (NULL: the default audit database) */
    const char *out_dir;    /* --out DIR for --export */
    int all_series;         /* --all-series */
    const char *review_dir; /* --review DIR with --study or --watch (NULL: no review pictures) */
    int review_dicom;       /* --review-dicom: the key picture as DICOM Secondary Capture too */
    double min_thickness, max_thickness; /* --min-thickness, --max-thickness (0: defaults) */
    int threads_given;      /* --threads was given (else modes pick their default) */
    const char *watch_dir;  /* --watch DIR */
    const char *validate_dir; /* --validate DIR */
    const char *labels;     /* --labels FILE (with --validate) */
    const char *slice_labels; /* --slice-labels FILE (with --validate) */
    int follow;             /* --follow */
    double stable_age_s;    /* --stable-age S (default 60) */
    const char *done_dir;   /* --done DIR */
    int delete_done;        /* --delete */
    const char *quarantine_dir; /* --quarantine DIR */
    int use_syslog;         /* --syslog (main.c opens and closes the log) */
    const char *on_positive; /* --on-positive CMD */
    char command[1024];     /* the command line, for provenance */
    hs_train_config train;
    hs_input_recipe train_recipe; /* --windows: the input recipe --train gives its models */
    int windows_given;         /* --windows was given (--init-model uses it too) */
} options;

/* ---- common.c ---------------------------------------------------------- */

/* The model --model names, $HEMOSCAN_MODEL, or the default model's path
 * (installed, else the source tree's). */
const char *cli_model_path(const options *o);

/* Loads the model of cli_model_path into model and sets *path to it; on
 * failure prints the reason on stderr and returns EXIT_FAILED (model is
 * then empty), else EXIT_OK. */
int cli_load_model(const options *o, hs_model *model, const char **path);

/* A JSON number, or null for NaN and infinities (which JSON cannot hold). */
json_t *cli_json_number(double v);

/* The audit database of --db, $HEMOSCAN_DB or the XDG state folder
 * (created private); NULL with err set when none can be named. */
const char *cli_audit_path(const options *o, char *buf, size_t len, hs_error *err);

/* A study reading as --study prints it (text), and as one JSON object. */
void cli_print_reading(const hs_study_reading *r, const hs_model *model, const char *model_path,
                       const char *db_path, long long verdict_id, const hs_review_file *review, int verbose);
json_t *cli_reading_json(const hs_study_reading *r, const hs_model *model, long long verdict_id,
                         const hs_review_file *review);

/* A reading on stdout as the options ask, then flushed, the first that
 * applies:
 *   - --json: one compact JSON line;
 *   - -q: nothing, except cli_positive_line for a positive;
 *   - brief (--watch) and not -v: one line;
 *   - else cli_print_reading's block. */
void cli_emit_reading(const options *o, int brief, const hs_study_reading *r, const hs_model *model,
                      const char *model_path, const char *db_path, long long verdict_id,
                      const hs_review_file *review);

/* When verdict_id was recorded outranked (audit.h: it read less than the
 * study's current verdict, which stands), one line on stderr saying so
 * and which verdict stands; a lookup that fails is said instead. */
void cli_say_standing(hs_audit *audit, const char *dir, const hs_study_reading *r, long long verdict_id);

/* in with every control byte (below 0x20, and DEL) made '?', cut to fit
 * out (cap bytes, terminated): DICOM header values and file names as they
 * may go into a line of output, a log or a command's environment. */
void cli_clean_text(const char *in, char *out, size_t cap);

/* The one line a positive study makes everywhere (-q stdout, syslog):
 * HEMORRHAGE SUSPECTED: accession A, study UID, folder DIR: study score
 * 0.912 (threshold 0.400), verdict id N; header values cleaned. */
void cli_positive_line(const hs_study_reading *r, long long verdict_id, char *buf, size_t cap);

/* The study options the command line asks for (--threads, --no-tta,
 * --all-series, the thickness range; with --review the thumbnails the
 * contact sheet needs), and with --review the temporary files killed runs
 * left in its folder removed (a warning on stderr if one stays). Shared by
 * --study and --watch. */
void cli_study_options(const options *o, hs_study_options *sopt);

/* The review options of --review-dicom and --threads. */
void cli_review_options(const options *o, hs_review_options *ropt);

/* ---- notify.c: what a positive study sets off --------------------------- */

/* How long the --on-positive command may run before it is killed, seconds
 * ($HEMOSCAN_ON_POSITIVE_TIMEOUT_S overrides it). */
#define CLI_ON_POSITIVE_TIMEOUT_S 30.0

/* After a positive study's verdict is recorded (and its review written):
 * with --syslog its cli_positive_line at LOG_CRIT; with --on-positive the
 * command run (/bin/sh -c, stdin /dev/null, its output on stderr, the
 * study in HEMOSCAN_* variables, killed at the time limit), then recorded
 * in the notifications table. Does nothing for other verdicts. Returns
 * EXIT_OK, or EXIT_FAILED when the command failed or could not be
 * recorded (said on stderr and, with --syslog, at LOG_ERR); the verdict
 * stands either way. */
int cli_on_positive(const options *o, hs_audit *audit, const char *db_path, const hs_study_reading *r,
                    long long verdict_id, const hs_review_file *review);

/* ---- the modes ----------------------------------------------------------- */

int cli_mode_init_model(const options *o);
int cli_mode_model_info(const options *o);
int cli_mode_train(const options *o);
int cli_mode_cross_validate(const options *o);
int cli_mode_predict(const options *o);
int cli_mode_eval(const options *o);
int cli_mode_study(const options *o);
int cli_mode_export(const options *o);
int cli_mode_watch(const options *o);
int cli_mode_validate(const options *o);

/* ---- modes_learn.c, shared with --validate ---------------------------------- */

/* The ROC curve of scores against labels (n cases, both classes needed)
 * as DIR/NAME, an SVG with the AUC, its CI and the operating point at
 * threshold; creates dir. */
hs_status cli_roc_plot(const char *dir, const char *name, const char *title, const float *scores,
                       const int *labels, int n, double threshold, hs_error *err);

#endif
