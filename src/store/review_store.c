/* review_store.c - a reading's review pictures, written and recorded (see
 * review_store.h).
 *
 * In the store layer because it joins two layers below the watcher and
 * the command line: review.c (study/) writes the file, audit.c records
 * it. The saliency column names the Grad-CAM layer the pictures used and
 * its map size (hs_review_file.saliency, as review.c made them), so an
 * auditor can tell pictures made from different layers apart. */
#include "hemoscan/review_store.h"

#include <string.h>

#include "hemoscan/fileio.h"

hs_status hs_review_store(hs_audit *audit, long long verdict_id, const hs_study_reading *r,
                          const hs_model *model, const char *dir, const hs_review_options *opt,
                          hs_review_file *out, hs_error *err)
{
    memset(out, 0, sizeof *out);
    hs_status st = hs_make_dirs(dir, 0700, err);
    if (st == HS_OK)
        st = hs_review_write(r, model, dir, opt, out, err);
    if (st != HS_OK || out->path[0] == '\0' || audit == NULL || verdict_id <= 0)
        return st;
    hs_audit_review_dicom dicom = {out->dicom_path,      out->dicom_sha256,     out->dicom_bytes,
                                   out->dicom_study_uid, out->dicom_series_uid, out->dicom_sop_uid};
    return hs_audit_record_review(audit, verdict_id, out->path, out->sha256, out->pages, out->slice_pages,
                                  out->bytes, out->saliency, out->dicom_path[0] ? &dicom : NULL, err);
}
