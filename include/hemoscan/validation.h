/* validation.h - measuring the model on a site's own labelled studies
 * before go-live (hemoscan --validate): the label files and the figures.
 *
 * Both halves are plain data in, plain data out, so that they can be
 * tested without a study or a database: the command line reads the
 * studies (study.h), matches them to label rows here, and hands the
 * outcome of each labelled study to hs_validation_compute. The ROC AUC and
 * its interval are metrics.h's (hs_binary_metrics_compute), never a second
 * definition.
 *
 * Label files are CSV, one row a line: "study,label[,subtypes]" for study
 * labels, "sop_instance_uid,label" for slice labels. A label is 1 or 0,
 * hemorrhage or normal, yes or no (any case). Subtypes are names separated
 * by ';' or '|' (epidural, intraparenchymal, intraventricular,
 * subarachnoid, subdural, or EDH, IPH, IVH, SAH, SDH). A first line whose
 * label is none of these is a header; blank lines and lines starting with
 * '#' are skipped; a field may be double-quoted (with "" for a quote), so
 * folder names may hold commas. A key given twice is an error: two labels
 * for one study cannot both be right. */
#ifndef HEMOSCAN_VALIDATION_H
#define HEMOSCAN_VALIDATION_H

#include <stddef.h>

#include "hemoscan/status.h"
#include "hemoscan/subtypes.h"

/* The subtype set as "name;name" in hs_subtype_name's order ("" for none),
 * cut to len - 1 bytes. */
void hs_subtypes_text(unsigned subtypes, char *buf, size_t len);

typedef struct {
    char *key;         /* the study (or SOPInstanceUID) column, unquoted, trimmed */
    int label;         /* 1 hemorrhage, 0 normal */
    unsigned subtypes; /* study labels: bit i = hs_subtype_name(i); 0 when none given */
    int line;          /* 1-based line of the file */
} hs_label_row;

typedef struct {
    hs_label_row *row; /* in file order */
    int n;
    int *sorted;       /* row indexes sorted by key, for hs_labels_find */
} hs_label_file;

/* Parses a label file's text (len bytes; name is used in messages). With
 * slice_labels a row has exactly two fields; otherwise two or three. On
 * error (HS_ERR_FORMAT naming name:line and what was expected, or
 * HS_ERR_NOMEM) out is left empty. Free out with hs_labels_free. */
hs_status hs_labels_parse(const char *text, size_t len, const char *name, int slice_labels,
                          hs_label_file *out, hs_error *err);

/* hs_labels_parse on the file at path (HS_ERR_IO when it cannot be read). */
hs_status hs_labels_read(const char *path, int slice_labels, hs_label_file *out, hs_error *err);

/* The row whose key is key, or -1 (NULL or "" key: -1). O(log n). */
int hs_labels_find(const hs_label_file *f, const char *key);

/* Frees the rows; f is then empty. Safe on an empty file. */
void hs_labels_free(hs_label_file *f);

/* What a validation run knows about one labelled study it read. */
typedef struct {
    int label;          /* 1 hemorrhage, 0 normal */
    unsigned subtypes;  /* as labelled */
    int assessable;     /* 0: the verdict was "not assessable" */
    int flagged;        /* the verdict was hemorrhage */
    double probability; /* the study probability; ignored when not assessable */
} hs_validation_case;

/* The figures of a validation run, study level.
 *
 * A not-assessable study is never a success: the primary sensitivity and
 * specificity count it in their denominators (a not-assessable positive is
 * a missed bleed for the reader waiting for a prompt, a not-assessable
 * normal study got no all-clear), and it is counted apart in the confusion
 * matrix. The figures over assessable studies alone are given too. The
 * AUC and its 95% CI (DeLong, logit scale: metrics.h) are over assessable
 * studies, the only ones with a probability. Undefined figures are NaN. */
typedef struct {
    int n, positives, negatives;  /* labelled studies read */
    int tp, fn, fp, tn;           /* assessable studies, by their verdicts */
    int na_positives, na_negatives; /* not assessable */
    double sensitivity;            /* tp / positives */
    double specificity;            /* tn / negatives */
    double sensitivity_assessable; /* tp / (tp + fn) */
    double specificity_assessable; /* tn / (tn + fp) */
    double auc, auc_lo, auc_hi;    /* assessable studies */
    int subtype_positives[HS_SUBTYPES]; /* positives labelled with subtype i */
    int subtype_found[HS_SUBTYPES];     /* of those, flagged */
    double subtype_sensitivity[HS_SUBTYPES]; /* found / positives (NaN without) */
} hs_validation_report;

/* The report of n cases (n >= 0). HS_ERR_ARG for a label other than 0/1,
 * a flagged study that is not assessable, or an assessable one whose
 * probability is not in [0, 1], naming the case index. */
hs_status hs_validation_compute(const hs_validation_case *cases, int n, hs_validation_report *r,
                                hs_error *err);

#endif
