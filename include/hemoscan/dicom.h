/* dicom.h - the DICOM reading stage: header fields of one file, a verdict on
 * whether it is a slice hemoscan can read, and its pixels as Hounsfield units.
 *
 * DCMTK is C++, hemoscan is C; this header is the whole boundary. It is plain
 * C (usable from C and C++), and src/study/dicom.cc is the only translation unit
 * that sees a DCMTK or OpenJPEG header. Nothing here throws, nothing keeps
 * global state a caller can see, and every function may run in several
 * threads at once on different files (a reader, below, in one at a time).
 *
 * Reading is split in two because a study folder is scanned far more often
 * than it is decoded: hs_dicom_read_header parses a file without loading
 * large element values (the pixels stay on disk), which is enough to group
 * files by study and series and to throw away what is not an axial CT image;
 * hs_dicom_read_hu decodes one accepted slice.
 *
 * A file that is not what hemoscan wants is not an error: it gets a verdict
 * and a human sentence (the reason) for the audit database. Errors
 * (hs_status other than HS_OK) are kept for things the caller must act on:
 * an unreadable file, bad arguments, pixels that do not decode.
 *
 * Classification, in this order (the first rule that matches wins):
 *   1. HS_DICOM_NOT_DICOM   no "DICM" at offset 128 and the first bytes do
 *                           not look like an ACR-NEMA / raw implicit-VR data
 *                           set (group 0000, 0002 or 0008 first), or DCMTK
 *                           cannot parse a single element.
 *   2. HS_DICOM_CORRUPT     DCMTK parsed the start but stopped with an error
 *                           (e.g. Pixel Data longer than the rest of the
 *                           file); the reason carries DCMTK's message. Also
 *                           a deflated data set that inflates to more than
 *                           HS_DICOM_MAX_INFLATED bytes, and a file on which
 *                           DCMTK threw an exception (other than out of
 *                           memory) while parsing.
 *   3. HS_DICOM_NO_PIXELS   no Pixel Data (7FE0,0010): SR, DICOMDIR, KOS...
 *                           A file whose bytes hold the tag of a
 *                           DirectoryRecordSequence (0004,1220) before any
 *                           Pixel Data tag is a DICOMDIR and is not parsed:
 *                           DCMTK's record parser can throw on a malformed
 *                           record and leak it.
 *   4. HS_DICOM_NOT_CT      Modality is present and not "CT"; or Modality is
 *                           missing and SOPClassUID is present and not a CT
 *                           storage class (1.2.840.10008.5.1.4.1.1.2[.n]);
 *                           or both are missing (nothing says it is CT).
 *   5. HS_DICOM_LOCALIZER   ImageType contains LOCALIZER or SCOUT.
 *   6. HS_DICOM_DERIVED     ImageType value 1 is DERIVED, or ImageType
 *                           contains SECONDARY, or the SOP class is a
 *                           secondary capture (1.2.840.10008.5.1.4.1.1.7*)
 *                           (screenshots, dose screens, reformats).
 *                           Rules 5 and 6 only when rules 7 and 8 would not
 *                           refuse the file; otherwise it gets their
 *                           verdict, its reason naming both. So every
 *                           verdict hs_dicom_read_hu decodes (OK, LOCALIZER,
 *                           DERIVED, NOT_AXIAL) has frames it can place,
 *                           a decodable encoding and Rows and Columns
 *                           within 1..HS_DICOM_MAX_SIDE, which a caller
 *                           may allocate for.
 *   7. HS_DICOM_MULTIFRAME_UNSUPPORTED  NumberOfFrames > 1 and some frame
 *                           has no position of its own: no
 *                           PerFrameFunctionalGroupsSequence (an old-style
 *                           multi-frame CT, where one ImagePositionPatient
 *                           cannot place N frames), fewer items than frames,
 *                           or a frame without ImagePositionPatient in its
 *                           (per-frame) PlanePositionSequence; or more than
 *                           HS_DICOM_MAX_FRAMES frames. Enhanced and Legacy
 *                           Converted Enhanced CT with per-frame positions
 *                           are read (see "Multi-frame files" below).
 *   8. HS_DICOM_UNSUPPORTED a transfer syntax outside the list below,
 *                           SamplesPerPixel != 1, a PhotometricInterpretation
 *                           other than MONOCHROME1/2 (absent is accepted:
 *                           ACR-NEMA), BitsAllocated not 8 or 16, BitsStored
 *                           or HighBit inconsistent, or Rows/Columns outside
 *                           1..HS_DICOM_MAX_SIDE.
 *   9. HS_DICOM_NOT_AXIAL   (single-frame files; per frame for multi-frame
 *                           ones) the slice normal (row x column direction cosines
 *                           of ImageOrientationPatient) is more than
 *                           HS_DICOM_AXIAL_LIMIT_DEG + |GantryDetectorTilt|
 *                           (at most 45) degrees away from the patient's z
 *                           axis. Tilted axial acquisitions have their normal
 *                           tilted by the gantry angle, hence the allowance.
 *                           A missing orientation is accepted (old ACR-NEMA
 *                           files have none) and said so in the reason.
 *  10. HS_DICOM_OK          anything else.
 *
 * Transfer syntaxes decoded: implicit and explicit VR little endian,
 * explicit VR big endian, deflated explicit little endian, RLE lossless,
 * JPEG baseline (1), extended (2/4), lossless (14, 14 SV1) through dcmjpeg,
 * JPEG-LS lossless and near-lossless through CharLS 2 (Debian's libcharls2,
 * not DCMTK's dcmjpls, whose CharLS 1.0 aborts the process on some bad
 * streams), JPEG 2000 (lossless
 * and lossy) through OpenJPEG on the encapsulated fragments, since
 * open-source DCMTK has no JPEG 2000 decoder. Lossless JPEG with 16-bit
 * samples goes first to the fast decoder of ljpeg.h (the usual CT archive
 * format, and the largest cost of a study); whatever it declines goes to
 * dcmjpeg. HEMOSCAN_LJPEG=dcmtk in the environment sends everything to
 * dcmjpeg, to compare the two on a site's own files.
 *
 * Multi-frame files (Enhanced CT, Legacy Converted Enhanced CT, any CT file
 * with NumberOfFrames > 1 and functional groups). Each frame is a slice.
 * Its geometry and rescale come from the functional groups, the
 * PerFrameFunctionalGroupsSequence item of the frame first, then the
 * SharedFunctionalGroupsSequence, then the top-level attribute:
 *   PixelMeasuresSequence (0028,9110)          PixelSpacing, SliceThickness
 *   PlaneOrientationSequence (0020,9116)       ImageOrientationPatient
 *   PlanePositionSequence (0020,9113)          ImagePositionPatient
 *   PixelValueTransformationSequence (0028,9145) RescaleSlope/Intercept
 *   FrameVOILUTSequence (0028,9132)            WindowCenter/Width
 *   CTAcquisitionDetailsSequence (0018,9304)   GantryDetectorTilt
 *   CTImageFrameTypeSequence (0018,9329)       FrameType, which replaces
 *                                              ImageType for the frame
 * Single-frame files with functional groups (an Enhanced CT of one frame)
 * are read the same way, as frame 0.
 *
 * hs_dicom_read_header gives the file's verdict from rules 1-8 and the
 * top-level ImageType, and (when it is OK) a header describing frame 0;
 * for a file with frames > 1, hs_dicom_read_frames then gives one header
 * and one verdict per frame: rules 5, 6 and 9 on that frame's FrameType and
 * geometry, so a LOCALIZER frame or a non-axial frame is dropped alone.
 *
 * Hounsfield units. A slice whose rescale or content would make its HU
 * meaningless keeps its verdict (it stays in its series), but
 * hs_dicom_read_hu refuses it with HS_ERR_FORMAT and a message naming the
 * value ("RescaleSlope -1: Hounsfield units would be meaningless ..."), so
 * a study records it as not scored with that reason and the verdict stage
 * (verdict.h) makes a study with too many of them not assessable instead
 * of reading nonsense as "no hemorrhage". Refused, in this order:
 *   - RescaleSlope or RescaleIntercept present but not a finite number;
 *   - RescaleSlope 0 or negative, or above HS_DICOM_MAX_SLOPE HU per stored
 *     step (CT writes 0.5 to 2; a step of more than 10 HU leaves a 30 HU
 *     bleed-to-brain contrast only a few steps wide);
 *   - RescaleIntercept missing with unsigned storage, unless the 12-bit
 *     wrap-around (below) applies to the slice: stored values 0..4095 as HU
 *     have no air, and a head slice has air around it. Signed storage
 *     without rescale is plain HU (old ACR-NEMA) and is read;
 *   - a stored range (BitsStored, signed or not; as signed when the 12-bit
 *     wrap-around may apply) that, through the slope and intercept, does
 *     not reach from air (-1000 HU) to dense bone (+1000 HU). This bounds
 *     slope and intercept together from what CT stores: 12-16 bits with
 *     intercepts 0, -1000, -1024, -8192 or -32768 and slopes 0.5-2 all
 *     pass; a slope of 1e-3 or an intercept of 1e30 does not;
 *   - the content check, on slices of at least HS_DICOM_CONTENT_MIN_PIXELS
 *     pixels (a smaller picture is a thumbnail or a crop, too small to
 *     judge): of the pixels that are not padding, fewer than
 *     HS_DICOM_MIN_PLAUSIBLE_FRACTION are air (-1200..-800 HU) and fewer
 *     than that are soft tissue (-150..150 HU). Every head slice, skull
 *     base to vertex, shows one of the two in quantity: air around the
 *     head, or brain and scalp when a small field of view leaves little
 *     air. A wrong intercept moves both: with -3000 instead of -1024, air
 *     reads about -2980 HU, brain about -1950 and only bone lands in
 *     either range. On the 176 real CT slices of the test data large
 *     enough to be checked, the larger of the two shares is 0.29 to 0.98;
 *     with 1976 HU subtracted (the -3000 intercept) it is at most 0.061.
 * hs_dicom_read_header and hs_dicom_read_frames do not decode pixels and
 * apply none of these. */
#ifndef HEMOSCAN_DICOM_H
#define HEMOSCAN_DICOM_H

/* status.h has no C++ guards of its own; src/study/dicom.cc must see hs_fail
 * with C linkage, so it is included inside this header's extern "C". */
#ifdef __cplusplus
extern "C" {
#endif

#include "hemoscan/path.h"
#include "hemoscan/status.h"

/* Largest Rows or Columns accepted: far above any CT matrix, small enough
 * that a hostile header cannot make hs_dicom_read_hu's caller allocate
 * without bound. */
#define HS_DICOM_MAX_SIDE 4096
/* Most bytes a deflated data set (transfer syntax 1.2.840.10008.1.2.1.99)
 * may inflate to: a 1024 x 1024 16-bit slice and 1 MiB of header. Deflate
 * packs up to 1000 bytes into one, and DCMTK parses a data set of tiny
 * elements at only a few MB a second: with a 64 MiB limit, a 68 kB file
 * found by the fuzzer kept a header scan busy for seconds. With it, a
 * deflated file costs at most what a 3 MiB file costs. Deflated CT is rare; a
 * larger data set, hostile or not, is CORRUPT, its reason naming the
 * limit, after only this much was inflated. */
#define HS_DICOM_MAX_INFLATED (3u * 1024u * 1024u)
#define HS_DICOM_MAX_INFLATED_TEXT "3 MiB"
/* How far (degrees) the slice normal may lean from the patient's z axis
 * before gantry tilt is added; beyond it a slice is NOT_AXIAL. 30 degrees
 * keeps the usual tilted head acquisitions and drops coronal and sagittal
 * reformats, which are 90 degrees away. */
#define HS_DICOM_AXIAL_LIMIT_DEG 30.0
/* Most frames accepted in one file: bounds what a hostile NumberOfFrames
 * makes a caller allocate (frames x sizeof(hs_dicom_header)). */
#define HS_DICOM_MAX_FRAMES 10000
/* The Hounsfield unit checks of hs_dicom_read_hu (see "Hounsfield units"
 * above): the steepest RescaleSlope accepted, in HU per stored step; the
 * fewest pixels (Rows x Columns) a slice needs for the content check; the
 * smallest share of its non-padding pixels that must be air, or else soft
 * tissue. */
#define HS_DICOM_MAX_SLOPE 10.0
#define HS_DICOM_CONTENT_MIN_PIXELS 4096
#define HS_DICOM_MIN_PLAUSIBLE_FRACTION 0.15

typedef enum {
    HS_DICOM_OK = 0,
    HS_DICOM_NOT_DICOM,
    HS_DICOM_NO_PIXELS,               /* SR, DICOMDIR, ... */
    HS_DICOM_NOT_CT,                  /* another modality */
    HS_DICOM_LOCALIZER,               /* scout / topogram */
    HS_DICOM_DERIVED,                 /* secondary capture, derived image, dose screen */
    HS_DICOM_NOT_AXIAL,               /* coronal, sagittal, oblique */
    HS_DICOM_MULTIFRAME_UNSUPPORTED,  /* multi-frame without per-frame positions */
    HS_DICOM_CORRUPT,                 /* truncated or unparseable after a valid start */
    HS_DICOM_UNSUPPORTED              /* transfer syntax, bits or photometric we cannot decode */
} hs_dicom_verdict;

/* Short stable names for the audit database: "ok", "not_dicom", "no_pixels",
 * "not_ct", "localizer", "derived", "not_axial", "multiframe_unsupported",
 * "corrupt", "unsupported"; "unknown" for a value outside the enum. They
 * are stored in databases, so they never change. */
const char *hs_dicom_verdict_name(hs_dicom_verdict v);

/* UID keys. StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID are
 * identities: files are grouped into studies and series, and duplicates
 * found, by comparing them. So they are never cut: each is read whole (the
 * element's raw bytes, embedded NULs included, DICOM's trailing padding of
 * spaces and NULs removed) and becomes a key, a printable C string that
 * stands for exactly that value:
 *   - a value of at most 64 bytes, each a printable ASCII character other
 *     than space and '#', is its own key. Every conformant UID (digits and
 *     dots) is one; so are the "ID_..." identifiers some anonymizers write,
 *     which label files name as they are.
 *   - any other value (longer than 64 bytes, or holding a NUL, a control
 *     byte, a space, '#' or a byte above 0x7e) has the key
 *     PREFIX#sha256:HEX, where HEX is the SHA-256 of all its bytes (64
 *     lowercase hex digits) and PREFIX its first bytes, those outside
 *     '!'..'~' and '#' and '\' written as \xNN, for at most
 *     HS_UID_KEY_PREFIX characters (for a human; the hash alone tells
 *     values apart).
 * A key of the first kind has no '#', one of the second always has one, so
 * two different values never share a key (short of a SHA-256 collision),
 * and keys compare with strcmp. A key holds no control byte: it is safe on
 * a terminal, in JSON and in a file name made by hs_safe_file_name. An
 * absent or empty value has the key "". */
#define HS_UID_KEY_PREFIX 64
/* Bytes of a key buffer: prefix, "#sha256:", 64 hex digits and the NUL. */
#define HS_UID_KEY_MAX (HS_UID_KEY_PREFIX + 8 + 64 + 1)
/* Bytes of a note on a non-conformant UID (see hs_dicom_header). */
#define HS_UID_NOTE_MAX 96

/* The header fields hemoscan uses. Strings are NUL-terminated, cut to fit,
 * with DICOM's trailing padding removed; empty when the attribute is
 * absent. Multi-valued strings (ImageType) keep DICOM's backslashes.
 * study_uid, series_uid and sop_uid are keys (above), never cut; each has
 * a note, empty when the value is a conformant UID (at most 64 bytes of
 * digits and dots) or absent, else one phrase naming its length when it
 * is too long and its first byte outside the UI set, e.g.
 * "StudyInstanceUID is 80 bytes (DICOM allows 64)", "SOPInstanceUID holds
 * a NUL at byte 30" (bytes counted from 1). A
 * non-conformant UID is recorded with its note, never refused: grouping
 * needs it even when a scanner wrote something that is not a valid UID.
 * sop_class_uid is copied as found, cut to 64 bytes: it is compared only
 * with the CT and secondary capture classes. */
typedef struct {
    char path[HS_PATH_MAX];
    char study_uid[HS_UID_KEY_MAX], series_uid[HS_UID_KEY_MAX], sop_uid[HS_UID_KEY_MAX];
    char study_uid_note[HS_UID_NOTE_MAX], series_uid_note[HS_UID_NOTE_MAX], sop_uid_note[HS_UID_NOTE_MAX];
    char sop_class_uid[65];
    char modality[17], image_type[128], body_part[65], series_description[65],
        study_description[65];
    char accession[17], patient_id[65], study_date[9], study_time[17], transfer_syntax[65];
    char convolution_kernel[65];
    int has_instance_number, instance_number;
    int rows, columns, bits_allocated, bits_stored, high_bit, pixel_representation;
    int monochrome1; /* PhotometricInterpretation is MONOCHROME1 */
    int frames;      /* NumberOfFrames, 1 when absent or below 1 */
    int frame;       /* the frame this header describes, 0-based (0 for single-frame
                        files); DICOM's frame number is frame + 1 */
    int has_position, has_orientation, has_pixel_spacing;
    double position[3];      /* ImagePositionPatient, mm */
    double orientation[6];   /* ImageOrientationPatient: row then column cosines */
    double pixel_spacing[2]; /* PixelSpacing: between rows, between columns, mm */
    double slice_thickness;  /* mm, 0 if absent */
    double gantry_tilt;      /* GantryDetectorTilt, degrees, 0 if absent */
    double rescale_slope;    /* as written; 1 if absent, NaN if not a finite number */
    double rescale_intercept;/* as written; 0 if absent, NaN if not a finite number */
    int has_rescale_intercept; /* RescaleIntercept present (top level or functional groups) */
    int has_padding;         /* PixelPaddingValue present */
    double padding_value;    /* as a stored value (sign applied per PixelRepresentation) */
    int has_padding_limit;   /* PixelPaddingRangeLimit present */
    double padding_limit;
    double window_center_hu, window_width_hu; /* first values if multi-valued; NaN if absent */
    int contrast; /* ContrastBolusAgent present, non-empty and not "NONE"/"NO" */
    int lossy;    /* LossyImageCompression is "01", or the transfer syntax is a lossy
                     one (JPEG baseline or extended, JPEG-LS near-lossless, lossy
                     JPEG 2000): a copy that lost detail */
    /* The file as the study scan found it (series.h); hs_dicom_read_header leaves
     * them zero. Identity of what was read includes the content, so a corrected
     * copy sent again with the same SOPInstanceUID is a different instance. */
    long long file_size;   /* bytes */
    double file_mtime;     /* modification time, Unix seconds */
    char file_sha256[65];  /* SHA-256 of the whole file, lower-case hex */
} hs_dicom_header;

/* Read the header of path without loading the pixels (large values stay
 * on disk). Fills h (zeroed first) and *verdict, and writes the reason to
 * reason (256 bytes): a sentence naming what was seen, e.g. "Modality is
 * MR". For HS_DICOM_OK the reason may carry a note, such as a missing
 * orientation, or be empty. Returns HS_OK whenever a verdict was reached,
 * including HS_DICOM_NOT_DICOM. HS_ERR_IO when the file cannot be opened
 * or read, HS_ERR_ARG for NULL arguments; messages name the file. */
hs_status hs_dicom_read_header(const char *path, hs_dicom_header *h, hs_dicom_verdict *verdict,
                               char reason[256], hs_error *err);

/* One header per frame of a multi-frame file: out[k] (k < file->frames,
 * caller allocates file->frames entries) is file with frame = k and that
 * frame's geometry, rescale, window and ImageType (FrameType when the frame
 * has one) taken from the functional groups as described above; verdicts[k]
 * and reasons[k] (reasons may be NULL) are the frame's verdict by rules 5, 6
 * and 9 (HS_DICOM_OK, LOCALIZER, DERIVED or NOT_AXIAL). file is what
 * hs_dicom_read_header gave for path with verdict HS_DICOM_OK; the file is
 * parsed again (pixels stay on disk) and must still have file->frames
 * frames of file->rows x file->columns, else HS_ERR_FORMAT. Works for
 * single-frame files too (one header, frame 0). HS_ERR_IO, HS_ERR_ARG,
 * HS_ERR_NOMEM as hs_dicom_read_header. */
hs_status hs_dicom_read_frames(const char *path, const hs_dicom_header *file, hs_dicom_header *out,
                               hs_dicom_verdict *verdicts, char (*reasons)[256], hs_error *err);

/* Decode the pixels of frame h->frame of the CT image at path to Hounsfield
 * units: h->rows * h->columns floats, row-major, into hu (caller
 * allocates). h is the header hs_dicom_read_header (single-frame files) or
 * hs_dicom_read_frames returned for this path; the file is parsed again and
 * must still have those Rows and Columns (and frames). The rescale,
 * padding and the rest come from the file as parsed now, for frame
 * h->frame, not from h.
 *
 * Each call parses the file: reading the frames of a multi-frame file one
 * call each costs a parse of its functional groups per frame. Use an
 * hs_dicom_reader (below) for that.
 *
 * Slices with verdict OK, LOCALIZER, DERIVED or NOT_AXIAL decode (they are
 * CT pixels and a review picture may want them); any other verdict gives
 * HS_ERR_FORMAT naming the verdict.
 *
 * For each pixel, in this order:
 *   1. the stored value: bits HighBit-BitsStored+1 .. HighBit of the
 *      BitsAllocated-bit sample (garbage above HighBit is dropped), sign
 *      extended from BitsStored bits if PixelRepresentation is 1. For JPEG
 *      2000 the codestream's own signedness and precision decide, since
 *      encoders disagree with the header: a codestream marked unsigned in a
 *      PixelRepresentation 1 file holds two's complement values of its
 *      precision and is sign extended from it.
 *   2. padding: a stored value equal to PixelPaddingValue (or between it
 *      and PixelPaddingRangeLimit) becomes -1024 HU (air), so the outside of
 *      the scan field never turns into bone whatever the padding value is.
 *   3. the unsigned 12-bit wrap-around: when PixelRepresentation is 0,
 *      BitsStored is 12, RescaleIntercept is above -100 and at least 10% of
 *      the non-padding stored values are 2048 or more, those values are
 *      taken as negative numbers that wrapped at 4096 (stored - 4096). A
 *      head CT is mostly air; stored as unsigned 12-bit with an intercept
 *      near 0, air can only appear as values near 3072 (-1024 + 4096). A
 *      slice where only the bone is above 2048 (correctly offset data) is
 *      left alone.
 *   4. HU = stored * RescaleSlope + RescaleIntercept.
 *   5. the checks of "Hounsfield units" above.
 * MONOCHROME1 is not inverted: DICOM defines the rescale (modality LUT) on
 * stored values before the photometric interpretation, which only says how
 * to display them, so HU are the same for MONOCHROME1 and MONOCHROME2.
 *
 * Errors, each message naming the file:
 *   HS_ERR_FORMAT  the file fails to parse or decode (and the reason),
 *                  or its HU would be meaningless (the value, as above)
 *   HS_ERR_IO      it cannot be read
 *   HS_ERR_ARG     NULL arguments
 *   HS_ERR_NOMEM   a decode buffer cannot be allocated
 * hu is only fully written on success. */
hs_status hs_dicom_read_hu(const char *path, const hs_dicom_header *h, float *hu, hs_error *err);

/* A reader keeps the last multi-frame file it decoded a frame of parsed
 * (pixels on disk, an open file handle, the per-frame headers), so the
 * frames of one file cost one parse, and each frame decodes on its own:
 *   - native pixels are read at the frame's offset;
 *   - RLE, JPEG and JPEG-LS go through DCMTK's per-frame decoders
 *     (DcmPixelData::getUncompressedFrame), which find the frame's
 *     fragments through the Basic Offset Table or one fragment per frame;
 *   - JPEG 2000 takes the frame's fragments the same way, else
 *     HS_ERR_FORMAT.
 * Compressed fragments read stay in memory until the reader moves to
 * another file, so a reader holds at most one file's compressed pixels. Deflated files cannot be read in part: the whole
 * data set is inflated once per parse. Single-frame files are not cached:
 * hs_dicom_reader_read_hu on them is hs_dicom_read_hu.
 *
 * The cached parse is used while the file's device, inode, size and
 * modification time stay the same. A reader is for one thread at a time;
 * give each worker its own. */
typedef struct hs_dicom_reader hs_dicom_reader;

/* A new reader, or NULL when out of memory. */
hs_dicom_reader *hs_dicom_reader_new(void);

/* hs_dicom_read_hu through r (same arguments, results and errors). */
hs_status hs_dicom_reader_read_hu(hs_dicom_reader *r, const char *path, const hs_dicom_header *h, float *hu,
                                  hs_error *err);

/* Frees r and what it holds; NULL is fine. */
void hs_dicom_reader_free(hs_dicom_reader *r);

#ifdef __cplusplus
}
#endif

#endif
