/* dataset.h - labelled image collections for training, evaluation and
 * cross-validation.
 *
 * A data set is a list of files with a class index and a group. Class names
 * come from folder names (the Keras flow_from_directory layout); a data set
 * whose two classes are "normal" and "hemorrhage" always puts normal first,
 * so class 1 is the positive class of the sigmoid hemorrhage model. Groups
 * keep near-duplicates and slices of one patient on one side of every split:
 * each file is its own group unless a groups.csv says otherwise. All splits
 * are stratified by class, grouped, and driven by a seed. */
#ifndef HEMOSCAN_DATASET_H
#define HEMOSCAN_DATASET_H

#include <stdint.h>

#include "hemoscan/model.h"
#include "hemoscan/status.h"

typedef struct {
    int n;
    char **path;  /* file paths */
    char **id;    /* file name without folder and extension (groups.csv key) */
    int *label;   /* class index */
    int *group;   /* group number; files of one group always stay together */
    int *source;  /* which source folder each file came from (0-based); NULL
                     when the data set has one source */
    int n_sources; /* source folders merged (hs_dataset_merge); 0 or 1: one */
    int n_classes;
    char class_name[HS_MODEL_MAX_CLASSES][HS_MODEL_NAME_LEN];
} hs_dataset;

/* Read the image files in each class folder DIR/CLASS, sorted by name
 * within each class: .png, .dcm and .dicom files (any case of the
 * extension), and files without an extension that have DICOM's "DICM" at
 * byte 128 (PACS exports often name files by UID alone). Other files are
 * ignored. Which reader reads a file is the loader's business (train.h):
 * a data set is only names, classes and groups. Classes are the subfolders, sorted by name, except the
 * normal/hemorrhage rule above. Fewer than two classes, or a class with no
 * images, is an error naming the folder. */
hs_status hs_dataset_scan(const char *dir, hs_dataset *ds, hs_error *err);
/* Scan with class names fixed in advance (e.g. DIR/validate must use the
 * classes of DIR/train, in that order); a folder not in the list is an
 * error. */
hs_status hs_dataset_scan_classes(const char *dir, int n_classes,
                                  const char (*names)[HS_MODEL_NAME_LEN],
                                  hs_dataset *ds, hs_error *err);
void hs_dataset_free(hs_dataset *ds);

/* Read a CSV of "id,group" lines (a header line is allowed; ids are file
 * names without extension). Files named in one group end up with one group
 * number. Ids that are not in the data set are ignored: a groups file may
 * describe a larger collection than the part at hand. */
hs_status hs_dataset_load_groups(hs_dataset *ds, const char *csv_path,
                                 hs_error *err);

/* A stratified, grouped K-fold assignment: fold[i] in 0..k-1 for every
 * file. Whole groups are dealt, largest first, to the fold that currently
 * has the fewest files of the group's class, so folds are balanced by class
 * and no group straddles two folds. HS_ERR_ARG when k is not 2 to ds->n,
 * or the files are in fewer than k groups (a fold would be empty). */
hs_status hs_dataset_folds(const hs_dataset *ds, int k, uint64_t seed,
                           int *fold, hs_error *err);

/* A stratified, grouped split: is_val[i] = 1 for about val_fraction of the
 * files of each class (whole groups), 0 for the rest. */
hs_status hs_dataset_split(const hs_dataset *ds, double val_fraction,
                           uint64_t seed, unsigned char *is_val,
                           hs_error *err);

/* The files with pick[i] == want, as a new data set (copies the strings). */
hs_status hs_dataset_select(const hs_dataset *ds, const unsigned char *pick,
                            int want, hs_dataset *out, hs_error *err);

/* Append more's files to into, emptying more: the data set of several
 * source folders (--train DIR1 --train DIR2). Classes are matched by name
 * and take into's order; both must have the same set of class names, else
 * HS_ERR_ARG naming both sets (into is then unchanged). Groups stay apart
 * (more's are renumbered past into's), so load each source's groups.csv
 * before merging. Ids become "S:id", S the source's number from 1, so
 * that equal file names in two sources stay two files; source[] records
 * the source of every file. HS_ERR_NOMEM leaves into unchanged and more
 * as it was. */
hs_status hs_dataset_merge(hs_dataset *into, hs_dataset *more, hs_error *err);

/* SHA-256 over every file's class name, file name and contents, in data set
 * order: recorded in the model file so a training run can be tied to the
 * exact data that made it. For a data set of several sources each file's
 * line starts with its source number, so the checksum covers where each
 * file came from; a single source gives the same checksum as ever. */
hs_status hs_dataset_checksum(const hs_dataset *ds, char hex[65], hs_error *err);

#endif
