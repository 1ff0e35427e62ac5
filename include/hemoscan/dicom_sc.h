/* dicom_sc.h - the review's key image as a DICOM Secondary Capture, so
 * that it can go back to PACS (storescu) and sit beside the study it was
 * made from.
 *
 * The object is a Secondary Capture Image Storage instance
 * (1.2.840.10008.5.1.4.1.1.7) in a new series of the same study:
 * - Patient and General Study modules are copied element by element from
 *   the key slice's own file (with its Specific Character Set, so names
 *   keep their encoding), so PACS files it under the same patient and
 *   study;
 * - new SeriesInstanceUID and SOPInstanceUID (DCMTK's UID generator),
 *   Modality OT, ConversionType WSD, ImageType DERIVED\SECONDARY,
 *   BurnedInAnnotation YES (the picture carries text);
 * - SeriesDescription and ImageComments say "NOT FOR DIAGNOSTIC USE";
 * - SourceImageSequence and ReferencedImageSequence name the key slice
 *   (SOP class, SOP instance, and frame for a multi-frame source);
 * - the pixels: 8-bit RGB, uncompressed, Explicit VR Little Endian. */
#ifndef HEMOSCAN_DICOM_SC_H
#define HEMOSCAN_DICOM_SC_H

/* status.h has no C++ guards of its own (see dicom.h) */
#ifdef __cplusplus
extern "C" {
#endif

#include "hemoscan/status.h"

typedef struct {
    const unsigned char *rgb; /* width * height * 3 bytes, top row first */
    int width, height;
    const char *source_path;  /* the key slice's file */
    const char *source_sop_class_uid, *source_sop_uid;
    int source_frame;         /* 1-based frame of a multi-frame source; 0: none */
    int series_number;
    const char *series_description; /* should say "NOT FOR DIAGNOSTIC USE" */
    const char *derivation;   /* DerivationDescription: how the picture was made */
    const char *comments;     /* ImageComments */
    const char *software;     /* SoftwareVersions */
} hs_sc_request;

typedef struct {
    char study_uid[65], series_uid[65], sop_uid[65];
} hs_sc_written;

/* Write the Secondary Capture of req to path (a new file; the caller
 * names it, fsyncs and links it into place). HS_ERR_IO naming the source
 * or the target, HS_ERR_FORMAT when the source has no StudyInstanceUID,
 * HS_ERR_ARG for a malformed request. */
hs_status hs_dicom_write_secondary_capture(const hs_sc_request *req, const char *path, hs_sc_written *out,
                                           hs_error *err);

#ifdef __cplusplus
}
#endif

#endif
