/* dicom_fixture.h - writes small synthetic DICOM CT slices for the DICOM
 * suite (tests/test_dicom.c).
 *
 * The real sample files cannot show every header quirk hemoscan must
 * survive, and the right HU of a real file is not known exactly. So the
 * suite writes files whose stored values and header fields it chose itself,
 * and checks the decoded HU value for value. The writer is C++ (DCMTK); this
 * header keeps it callable from the C test. It is test-only code, linked
 * into tests/unit_tests and never into the library. */
#ifndef HEMOSCAN_DICOM_FIXTURE_H
#define HEMOSCAN_DICOM_FIXTURE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int rows, columns;
    int bits_allocated, bits_stored, high_bit, pixel_representation; /* 16 only */
    const char *photometric;   /* "MONOCHROME2" by default */
    const char *modality;      /* "CT" by default; NULL leaves it out */
    const char *sop_class_uid; /* CT Image Storage by default; NULL leaves it out */
    const char *image_type;    /* "ORIGINAL\PRIMARY\AXIAL" by default */
    const char *sop_uid;       /* written as given, valid or not */
    const char *study_uid, *series_uid; /* the same; defaults are valid UIDs */
    /* When above 0, the bytes of sop_uid, study_uid, series_uid to write
     * (embedded NULs included); 0: up to the first NUL. */
    size_t sop_uid_len, study_uid_len, series_uid_len;
    int has_instance_number, instance_number;
    int has_orientation;
    double orientation[6];
    double gantry_tilt;
    double z;                  /* ImagePositionPatient is (-125, -125, z); 40 by default */
    double slope, intercept;
    /* when non-NULL, written as this text instead of slope / intercept
     * ("NaN", "1e30"); "" leaves the attribute out */
    const char *slope_text, *intercept_text;
    int has_padding, padding_value; /* US if pixel_representation is 0, else SS */
    int frames;                     /* > 1 writes NumberOfFrames (pixels for frame 1 repeated) */
    int big_endian;                 /* Explicit VR Big Endian instead of Little Endian */
    int lossy;                      /* LossyImageCompression "01" (a lossy copy) */
    const unsigned short *pixels;   /* rows * columns raw 16-bit samples */
} hs_test_dicom_slice;

/* An axial CT slice, signed 16-bit with all 16 bits stored, slope 1,
 * intercept 0, InstanceNumber 1 and valid UIDs, of the given size and
 * samples: change fields afterwards for each case. */
void hs_test_dicom_slice_default(hs_test_dicom_slice *s, int rows, int columns,
                                 const unsigned short *pixels);

/* Write s to path with DCMTK. 0 on success, -1 on failure (with a line on
 * stderr naming the file). */
int hs_test_dicom_write(const char *path, const hs_test_dicom_slice *s);

/* DCMTK's own decoding of the 16-bit pixels of the single-frame file at
 * path, as raw samples into out (n of them): the reference the fast
 * lossless JPEG decoder is compared with. The codecs must be registered
 * (any hs_dicom_read_header call does it). 0 on success, -1 on failure. */
int hs_test_dicom_dcmtk_pixels16(const char *path, unsigned short *out, size_t n);

/* The encapsulated Pixel Data of path as one malloc'd buffer: the
 * fragments after the basic offset table, concatenated. 0 on success. */
int hs_test_dicom_frame_bytes(const char *path, unsigned char **data, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
