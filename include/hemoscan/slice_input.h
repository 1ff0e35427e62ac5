/* slice_input.h - one DICOM file as one network input, exactly as --study
 * turns a slice of a series into one: the header read and judged
 * (dicom.h), the pixels decoded to Hounsfield units with the file's own
 * rescale slope and intercept, padding and 12-bit wrap-around handling
 * (hs_dicom_read_hu), and the result rendered through the model's input
 * recipe by hs_render_input (render.h), the function the study pipeline
 * calls. Nothing here renders or decodes on its own, so a labelled DICOM
 * slice scored by --eval gets the very input it gets inside a study.
 *
 * It is for files that stand alone (--eval, --train and --cv on class
 * folders of DICOM slices), not for series: there is no series choice, no
 * ordering, no study verdict. A file is read only when its verdict is
 * HS_DICOM_OK (an axial CT image) and it holds one frame; anything else is
 * refused with a message naming the file and the reason, for the caller
 * to report and skip. */
#ifndef HEMOSCAN_SLICE_INPUT_H
#define HEMOSCAN_SLICE_INPUT_H

#include "hemoscan/image.h"
#include "hemoscan/status.h"

/* The network input of the single-frame CT file at path for recipe:
 * recipe->height * recipe->width * recipe->channels floats into out.
 * Errors, each naming the file:
 *   HS_ERR_FORMAT  not DICOM, not an axial CT image (the verdict's reason),
 *                  more than one frame, pixels that do not decode, or
 *                  HU that would be meaningless (dicom.h, the value named)
 *   HS_ERR_IO      the file cannot be read
 *   HS_ERR_NOMEM   out of memory
 *   HS_ERR_ARG     NULL arguments, or a recipe render.h refuses */
hs_status hs_slice_input_read(const char *path, const hs_input_recipe *recipe, float *out, hs_error *err);

#endif
