/* review_store.h - a reading's review pictures, written and recorded.
 *
 * --study and --watch both write the review pictures of a study they have
 * just recorded (review.h) and record the file in the audit database
 * (audit.h, table review_files) against the verdict. This is that one
 * step, so the two modes cannot do it differently.
 *
 * The verdict is recorded before this is called, so it stands whatever
 * happens here: a review that fails is the caller's to report (err names
 * the file or folder) and to record as a failure of stage 'review'. The
 * row is written only once the file is complete, so a row never points at
 * a missing file; a process killed in between leaves a verdict without a
 * review_files row, which says so. */
#ifndef HEMOSCAN_REVIEW_STORE_H
#define HEMOSCAN_REVIEW_STORE_H

#include "hemoscan/audit.h"
#include "hemoscan/model.h"
#include "hemoscan/review.h"
#include "hemoscan/status.h"
#include "hemoscan/study.h"

/* Writes the review pictures of reading r (read with model) into dir,
 * creating it and missing parents for the owner only (0700: the pictures
 * show patients), with the options opt (hs_review_write), then records
 * the file in audit against verdict_id, naming the saliency method and
 * layer. Nothing is recorded when audit is NULL, verdict_id <= 0, or the
 * reading had nothing to show (out->path ""). out is zeroed first. */
hs_status hs_review_store(hs_audit *audit, long long verdict_id, const hs_study_reading *r,
                          const hs_model *model, const char *dir, const hs_review_options *opt,
                          hs_review_file *out, hs_error *err);

#endif
