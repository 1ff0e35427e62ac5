/* study.h - one study folder from files to a verdict: the driver that
 * runs the stages in order. scan and choose (series.h), decode each slice
 * to Hounsfield units (dicom.h), render it through the model's input
 * recipe (render.h, the same code as training), score it (predict.h) and
 * turn the slice scores into a verdict (verdict.h).
 *
 * Decoding dominates the time of a study, so slices are decoded and
 * rendered by `threads` workers, each holding only the slice in hand; the
 * rendered 150x150 inputs of a series (about 270 KB per slice) are then
 * scored in batches. A slice that fails to decode is not an error of the
 * study: it is recorded with its reason and the verdict stage decides
 * whether the series is still assessable.
 *
 * The reading is everything the audit database records and every output
 * prints; nothing else about the study is kept. */
#ifndef HEMOSCAN_STUDY_H
#define HEMOSCAN_STUDY_H

#include "hemoscan/model.h"
#include "hemoscan/path.h"
#include "hemoscan/series.h"
#include "hemoscan/status.h"
#include "hemoscan/verdict.h"

typedef struct {
    double min_thickness_mm, max_thickness_mm; /* 0: the series.h defaults */
    int all_series; /* score every eligible series, not only the best */
    int threads;    /* decode and inference workers, >= 1 */
    int tta;        /* mirror test-time augmentation (as in predict.h) */
    int review_thumb_px; /* > 0: keep a review_thumb_px square brain-window
                            thumbnail of every slice read, for the review
                            contact sheet (review.h); 0: none (the default) */
} hs_study_options;

/* Defaults: thickness range from series.h, best series only, 2 threads,
 * TTA on (as --predict and --eval). */
void hs_study_options_default(hs_study_options *opt);

typedef struct {
    float probability; /* NaN when the slice was not scored */
    char error[512];   /* why it was not scored (an hs_error message); "" when it was */
} hs_slice_result;

typedef struct {
    int series_index;         /* into hs_study_reading.study.series */
    hs_slice_result *slice;   /* one per slice of that series, same order */
    hs_study_verdict verdict; /* from this series alone */
    int thumb_px;             /* side of the thumbnails; 0 when none were kept */
    unsigned char *thumb;     /* thumb_px * thumb_px bytes per slice, same order, or NULL */
} hs_series_result;

typedef struct {
    char dir[HS_PATH_MAX];
    hs_study study;             /* the scan: UIDs, series (chosen and why), skipped files */
    char instances_sha256[65];  /* hs_study_instances_sha256: "the same instances, with the
                                   same content" */
    int n_results;
    hs_series_result *result;   /* the series read, the best first */
    int decisive;               /* index into result the study verdict comes from; -1 if none */
    hs_study_verdict verdict;   /* the study's verdict */
    double started, finished;   /* Unix time, seconds with fractions */
} hs_study_reading;

/* Read the study in dir with model. The study verdict, the first that
 * applies:
 *   1. hemorrhage when any series read says hemorrhage (the decisive
 *      series is the one with the highest probability among those);
 *   2. no hemorrhage when an assessable series says so (the best
 *      assessable one decides);
 *   3. not assessable, with the reason of the best series, or the scan's
 *      reason when no series could be read at all (then decisive is -1
 *      and n_results 0);
 * and a "no hemorrhage" becomes not assessable when a file of the study
 * could not be read at all (skipped as "unreadable": no permission, a
 * folder that cannot be opened, a path too long): no negative verdict
 * from part of a study. The decisive series stays the one that was read.
 *
 * Returns HS_OK whenever a reading was made, whatever the verdict; errors
 * are for what prevents a reading: dir cannot be opened (HS_ERR_IO), the
 * model's recipe cannot be rendered (HS_ERR_ARG), memory (HS_ERR_NOMEM).
 * Free out with hs_study_reading_free, also after a failure. */
hs_status hs_study_read(const char *dir, const hs_model *model, const hs_study_options *opt,
                        hs_study_reading *out, hs_error *err);

/* hs_study_read on the given files (hs_study_scan_files) rather than a
 * folder: the watcher's form, once it has grouped a drop folder by study.
 * label takes the folder's place in out->dir and in messages. */
hs_status hs_study_read_files(const char *label, char *const *paths, int n, const hs_model *model,
                              const hs_study_options *opt, hs_study_reading *out, hs_error *err);

/* hs_study_read_files in two steps, for the watcher: it scans first
 * (hs_study_scan_files), asks the audit database whether exactly these
 * instances were read already (hs_study_instances_sha256), and only then
 * decodes. Takes over *study (moved into out->study; *study is left
 * empty, also on failure). Same results and errors as hs_study_read. */
hs_status hs_study_read_scanned(const char *label, hs_study *study, const hs_model *model,
                                const hs_study_options *opt, hs_study_reading *out, hs_error *err);

/* SHA-256 (lower-case hex) over the sorted lines "ID[#N] FILE_SHA256" of
 * every accepted slice of a scanned study, each followed by a newline: ID
 * the SOPInstanceUID (the path without one), N the 1-based frame of a
 * multi-frame file, FILE_SHA256 the file's content (hs_dicom_header,
 * filled by the scan). hs_study_reading.instances_sha256: "the same
 * instances, with the same content"; a corrected copy sent again with the
 * same UIDs is another set, read again. */
hs_status hs_study_instances_sha256(const hs_study *study, char hex[65], hs_error *err);

void hs_study_reading_free(hs_study_reading *r);

#endif
