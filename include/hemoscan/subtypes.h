/* subtypes.h - per-subtype sensitivity: of the positive images that show a
 * given kind of hemorrhage, how many the model flagged.
 *
 * A labels file names the subtypes of each image (the RSNA challenge's
 * labels.csv is the model): a CSV with a header line, an id column and any
 * of the five subtype columns epidural, intraparenchymal,
 * intraventricular, subarachnoid and subdural, each 1, 0 or empty (not
 * known). Other columns are ignored. A row belongs to a file of the data
 * set by its `file` column (a relative path that the file's path ends
 * with, at a folder boundary: "dicom/hemorrhage/ID_1.dcm" matches
 * "../data/rsna/dicom/hemorrhage/ID_1.dcm"), else by its
 * `sop_instance_uid` or `id` column equal to the file's name without
 * folder and extension (so one row serves a slice's DICOM file and its
 * PNG rendering alike). Files without a row have every subtype unknown.
 *
 * The figures answer "which bleeds does it miss": a model tuned on
 * slices where large intraparenchymal bleeds dominate can look sensitive
 * overall and still miss most thin subdurals. */
#ifndef HEMOSCAN_SUBTYPES_H
#define HEMOSCAN_SUBTYPES_H

#include "hemoscan/dataset.h"
#include "hemoscan/status.h"

#define HS_SUBTYPES 5

/* The subtypes, in this order (the columns of a labels file here, the bits
 * of a study label's subtype set in validation.h): "epidural",
 * "intraparenchymal", "intraventricular", "subarachnoid", "subdural";
 * NULL outside [0, HS_SUBTYPES). */
const char *hs_subtype_name(int i);

typedef struct {
    int n_files;            /* the data set's files */
    int column[HS_SUBTYPES]; /* 1 when the labels file has this subtype's column */
    signed char *value;     /* n_files * HS_SUBTYPES: 1, 0, or -1 not known */
    int matched;            /* files that found a row */
} hs_subtype_labels;

/* Read csv_path and give each file of ds its subtypes. HS_ERR_IO when it
 * cannot be read; HS_ERR_FORMAT (naming the file and line) when the header
 * has no id column (file, sop_instance_uid or id) or none of the subtype
 * columns, or a subtype value is not 1, 0 or empty; HS_ERR_NOMEM. */
hs_status hs_subtypes_load(const char *csv_path, const hs_dataset *ds, hs_subtype_labels *out, hs_error *err);
void hs_subtypes_free(hs_subtype_labels *l);

typedef struct {
    int column;         /* the labels file has this subtype */
    int n;              /* positive images labelled with the subtype */
    int found;          /* of them, flagged positive by the model */
    double sensitivity; /* found / n; NaN when n is 0 */
} hs_subtype_stat;

/* The figures over n scored images: image i is file source[i] of the data
 * set, of class label[i] (positive when label[i] == positive_class), and
 * flagged[i] is 1 when the model called it positive (at its threshold). An
 * image counts for a subtype when it is positive and labelled 1 for it.
 * The same file scored twice (repeated cross-validation) counts twice. */
void hs_subtype_sensitivity(const hs_subtype_labels *l, const int *source, const int *label, const int *flagged,
                            int n, int positive_class, hs_subtype_stat out[HS_SUBTYPES]);

#endif
