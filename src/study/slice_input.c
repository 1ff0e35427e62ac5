/* slice_input.c - a lone DICOM slice to the network input (see
 * slice_input.h).
 *
 * Kept in the study layer, beside study.c, because it is the study's own
 * slice path taken for one file: hs_dicom_read_header for the verdict,
 * hs_dicom_read_hu for the Hounsfield units, hs_render_input for the
 * picture and input. The learning modes reach it only through the command
 * line, which hands it to the example loader as a reader (train.h); the
 * learn layer never includes it. */
#include "hemoscan/slice_input.h"

#include <stdlib.h>

#include "hemoscan/dicom.h"
#include "hemoscan/render.h"

hs_status hs_slice_input_read(const char *path, const hs_input_recipe *recipe, float *out, hs_error *err)
{
    if (path == NULL || recipe == NULL || out == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_slice_input_read: no file, recipe or output given");
    hs_dicom_header *h = malloc(sizeof *h);
    if (h == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", path);
    hs_dicom_verdict verdict;
    char reason[256];
    hs_status st = hs_dicom_read_header(path, h, &verdict, reason, err);
    if (st == HS_OK && verdict == HS_DICOM_MULTIFRAME_UNSUPPORTED)
        st = hs_fail(err, HS_ERR_FORMAT, "%s: multi-frame file, expected one slice per file (%s)", path, reason);
    else if (st == HS_OK && verdict != HS_DICOM_OK)
        st = hs_fail(err, HS_ERR_FORMAT, "%s: not read as a CT slice (%s: %s)", path,
                     hs_dicom_verdict_name(verdict), reason);
    else if (st == HS_OK && h->frames > 1)
        st = hs_fail(err, HS_ERR_FORMAT, "%s: multi-frame file (%d frames), expected one slice per file", path,
                     h->frames);
    float *hu = NULL;
    if (st == HS_OK) {
        /* Rows and Columns are within 1..HS_DICOM_MAX_SIDE for an OK verdict */
        hu = malloc((size_t)h->rows * (size_t)h->columns * sizeof *hu);
        if (hu == NULL)
            st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory for %dx%d pixels", path, h->columns, h->rows);
    }
    if (st == HS_OK)
        st = hs_dicom_read_hu(path, h, hu, err);
    if (st == HS_OK) {
        hs_error render_err = {0};
        st = hs_render_input(hu, h->columns, h->rows, recipe, out, &render_err);
        if (st != HS_OK) /* render.h's messages name the recipe, not the file */
            hs_fail(err, st, "%s: %s", path, render_err.msg);
    }
    free(hu);
    free(h);
    return st;
}
