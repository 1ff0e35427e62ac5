/* review.h - pictures for the radiologist: where the network looked.
 *
 * A verdict with a number is not enough for the person who has to trust
 * it, so for a study read with --review hemoscan writes one multi-page
 * TIFF (deflate-compressed baseline TIFF, tiffout.h; readable by ordinary
 * viewers):
 *
 *   page 1        the key slice of the decisive series,
 *   pages 2..     its neighbours (HS_REVIEW_NEIGHBOURS on each side) and
 *                 every other slice scoring at or above the threshold, the
 *                 highest first while there is room, at most
 *                 max_pages slice pages (HS_REVIEW_DEFAULT_PAGES unless
 *                 asked, HS_REVIEW_MAX_PAGES at most), in slice order,
 *   last page     a contact sheet: every slice of the series as a
 *                 thumbnail with its number and score, the key slice framed
 *                 in yellow, slices at or above the threshold in orange
 *                 (8-bit palette: gray levels and the two frame colours).
 *
 * and, asked for (secondary_capture), the key slice's page once more as a
 * DICOM Secondary Capture for PACS (dicom_sc.h).
 *
 * Slice pages (8-bit RGB) are at the slice's own resolution (rows x columns) in the
 * brain window (40/80 HU), with the Grad-CAM map of the slice's score
 * (cnn.h) blended on in a viridis-like colour map wherever it reaches a
 * quarter of the study's largest value, a colour bar in the bottom-left
 * corner. Every page names itself in PageName ("slice 12 of 32", "contact
 * sheet") and describes itself in ImageDescription (position along the
 * normal, instance, file, frame, probability, threshold, model checksum
 * prefix, "decision support, not a diagnosis").
 *
 * The map is computed on the network's input (the head crop fitted into
 * 150 x 150) and drawn back onto the slice through the crop box and fit
 * of hs_input_geometry (image.h), so it lands where the network looked.
 *
 * The file is written under a temporary name and linked into place, never
 * over an existing file: a reader never sees half a file, and a second
 * reading of the same study gets its own file. */
#ifndef HEMOSCAN_REVIEW_H
#define HEMOSCAN_REVIEW_H

#include "hemoscan/image.h"
#include "hemoscan/model.h"
#include "hemoscan/path.h"
#include "hemoscan/status.h"
#include "hemoscan/study.h"

/* Slice pages at most per file (the contact sheet comes on top), and by
 * default: the key slice, its neighbours and the three strongest other
 * slices above the threshold. Each 512 x 512 page costs about as much
 * CPU as scoring two slices (decode, Grad-CAM, drawing, deflate: 11 ms),
 * the contact sheet of 240 slices about three; `make bench` measures a
 * 240-slice study's review at about a tenth of its reading time. */
#define HS_REVIEW_MAX_PAGES 12
#define HS_REVIEW_DEFAULT_PAGES 6
/* Slices on each side of the key slice that always get a page. */
#define HS_REVIEW_NEIGHBOURS 1
/* Thumbnail side of the contact sheet, pixels (96 x 96 bytes per slice). */
#define HS_REVIEW_THUMB_PX 96
/* SeriesNumber of the review's DICOM Secondary Capture (out of the range
 * scanners number their series in, so it sorts last). */
#define HS_REVIEW_DICOM_SERIES_NUMBER 9000
/* The brain window every review picture is shown in. */
#define HS_REVIEW_CENTER_HU 40.0f
#define HS_REVIEW_WIDTH_HU 80.0f

typedef struct {
    int max_pages;  /* slice pages at most, 1..HS_REVIEW_MAX_PAGES */
    int neighbours; /* slices on each side of the key slice */
    int layer;      /* convolution layer of the Grad-CAM map; -1: the last */
    int threads;    /* workers making the slice pages (each its own Grad-CAM), >= 1 */
    int secondary_capture; /* also the key slice's page as DICOM (dicom_sc.h) */
} hs_review_options;

/* HS_REVIEW_DEFAULT_PAGES pages, the neighbours above, last convolution,
 * 1 thread, no Secondary Capture. */
void hs_review_options_default(hs_review_options *opt);

/* Bytes of hs_review_file.saliency. */
#define HS_REVIEW_SALIENCY_LEN 64

/* What was written. */
typedef struct {
    char path[HS_PATH_MAX]; /* "" when nothing was written */
    char sha256[65];  /* of the file, hex */
    int pages;        /* TIFF pages, contact sheet included */
    int slice_pages;  /* pages showing one slice */
    int slice[HS_REVIEW_MAX_PAGES]; /* the slice (index in the series) of each slice page */
    long long bytes;
    /* How the heatmaps were made, as the audit database records it:
     * "grad-cam layer L (HxW)", the layer and its map size. */
    char saliency[HS_REVIEW_SALIENCY_LEN];
    /* The Secondary Capture, when asked for and the key slice has a page:
     * the TIFF's name with .dcm, its SHA-256, size and UIDs; else "". */
    char dicom_path[HS_PATH_MAX];
    char dicom_sha256[65];
    long long dicom_bytes;
    char dicom_study_uid[65], dicom_series_uid[65], dicom_sop_uid[65];
} hs_review_file;

/* A size x size 8-bit thumbnail of a slice of width x height HU values in
 * the brain window: the slice scaled to fit (aspect kept, centred, black
 * padding), each thumbnail pixel the mean of the window values of up to
 * 3 x 3 source pixels spread evenly over the area it covers. */
void hs_review_thumbnail(const float *hu, int width, int height, int size, unsigned char *out);

/* Saliency for one model: Grad-CAM on the model's member nets (the map of
 * an ensemble is the mean of its members' maps), on the model's normal
 * input (three channels for the default model, even though its predictor
 * merges them). Holds one training workspace; reuse it for several
 * slices. */
typedef struct hs_saliency hs_saliency;

hs_status hs_saliency_create(hs_saliency **out, const hs_model *model, int layer, int threads,
                             hs_error *err);
void hs_saliency_free(hs_saliency *s);
/* The layer used and its map size. */
void hs_saliency_layer(const hs_saliency *s, int *layer, int *map_h, int *map_w);

/* The map of one slice (width x height HU) drawn at the slice's
 * resolution: heat receives width * height values >= 0 (not normalised;
 * 0 outside the head crop and on air, HU <= -300). Each map cell sits at
 * the centre of its receptive field in the input (offset and stride of
 * the layers up to it), values between centres are bilinear and beyond
 * the outermost centres the edge value holds; input positions are mapped
 * back to the slice through the crop and fit (hs_input_geometry). *probability (may be NULL): the members' mean sigmoid of the
 * logit, without test-time augmentation. */
hs_status hs_saliency_slice(hs_saliency *s, const float *hu, int width, int height, float *heat,
                            float *probability, hs_error *err);

/* Write the review file of reading r (read with model) into dir, which
 * must exist. Uses the thumbnails of the decisive series when the reading
 * kept them (hs_study_options.review_thumb_px = HS_REVIEW_THUMB_PX), else
 * decodes every slice for the contact sheet. A reading without a decisive
 * series has nothing to show: HS_OK with out->path "". The name is the
 * StudyInstanceUID made file-name safe, "_", the reading's start time
 * (UTC, YYYYMMDDTHHMMSSZ) and ".tif", with "_2", "_3", ... before the
 * extension if that exists. With opt->secondary_capture the key slice's
 * page is also written as a DICOM Secondary Capture under the same name
 * with .dcm (both files appear, or neither). HS_ERR_IO naming the file
 * when dir cannot be written (nothing is left behind), HS_ERR_ARG naming
 * the path when a file's path would not fit HS_PATH_MAX, HS_ERR_NOMEM. */
hs_status hs_review_write(const hs_study_reading *r, const hs_model *model, const char *dir,
                          const hs_review_options *opt, hs_review_file *out, hs_error *err);

/* Remove the temporary files (".NAME.tif.PID.tmp") that writers killed
 * before they finished left in dir: those whose process no longer runs.
 * *removed counts them. A missing dir has none; HS_ERR_IO names a file
 * that could not be removed, HS_ERR_ARG one whose path would be longer
 * than HS_PATH_MAX allows (the others still are removed). */
hs_status hs_review_remove_stale(const char *dir, int *removed, hs_error *err);

#endif
