/* series.h - the scan and series stages: find every file of one study
 * folder, keep the axial CT image slices grouped by series and sorted along
 * the slice normal, and pick the series to read, with a recorded reason for
 * every file that is not used and for every series choice.
 *
 * Built on hs_dicom_read_header (dicom.h), which reads headers without the
 * pixels and already says which files are axial CT images; this stage only
 * groups, orders and chooses. Nothing a real folder holds is an error here:
 * junk, other studies, duplicates and unreadable files each become an
 * hs_skipped_file with a short verdict name and one sentence for the audit
 * database. Only a folder that cannot be opened at all (or memory running
 * out) makes hs_study_scan fail.
 *
 * Geometry. The slice normal is n = row x column of ImageOrientationPatient,
 * turned to point to the head (+z in DICOM's LPS coordinates), and slices
 * are sorted by dot(ImagePositionPatient, n), feet to head. That also holds
 * for gantry-tilted series: the table moves along z, but the distance
 * between tilted planes is measured along their normal. Without positions
 * the slices are sorted by InstanceNumber, without that by file name; the
 * series' sort_note says so and so does its why. */
#ifndef HEMOSCAN_SERIES_H
#define HEMOSCAN_SERIES_H

#include "hemoscan/dicom.h"
#include "hemoscan/path.h"
#include "hemoscan/status.h"

/* Default slice thickness range preferred by hs_study_choose, mm: thinner
 * series are noisy and many, thicker ones blur small bleeds. */
#define HS_SERIES_MIN_THICKNESS_MM 2.0
#define HS_SERIES_MAX_THICKNESS_MM 10.0

/* How slices of a series were ordered. */
typedef enum {
    HS_SORT_POSITION = 0, /* along the slice normal */
    HS_SORT_INSTANCE,     /* by InstanceNumber: some ImagePositionPatient missing */
    HS_SORT_FILENAME      /* by path: positions and InstanceNumbers missing */
} hs_sort_method;

/* One slice: a single-frame file, or one frame of a multi-frame file
 * (header.frames > 1, header.frame its 0-based frame, geometry and rescale
 * that frame's; see hs_dicom_read_frames). */
typedef struct {
    hs_dicom_header header;
    double position_along_normal; /* mm, dot(position, normal); 0 unless sorted by position */
} hs_slice;

typedef struct {
    char series_uid[HS_UID_KEY_MAX]; /* the files' SeriesInstanceUID key (dicom.h) */
    char description[65]; /* SeriesDescription of the first slice */
    int contrast;         /* any slice names a contrast agent */
    int n_slices;
    hs_slice *slices;     /* feet -> head; ties by InstanceNumber, then path */
    hs_sort_method sort_method;
    char sort_note[128];  /* empty when sorted by position; else why not */
    double normal[3];     /* unit slice normal, z >= 0; (0,0,1) when unknown */
    double spacing_mm;    /* median distance between neighbours along the normal; 0 if unknown */
    double slice_thickness_mm; /* (lower) median SliceThickness; 0 if absent */
    double gantry_tilt_deg;    /* GantryDetectorTilt of the first slice */
    int missing_slices;        /* slices missing in gaps (see hs_study_scan) */
    int inconsistent_spacing;  /* spacings (gaps left out) differ by more than 20% of the median */
    int chosen;                /* set by hs_study_choose */
    char why[256];             /* one sentence: chosen or not, and why; ends with
                                  uid_note when there is one */
    char uid_note[HS_UID_NOTE_MAX]; /* the first slice's series_uid_note: why its
                                       SeriesInstanceUID is not conformant, or "" */
} hs_series;

typedef struct {
    char path[HS_PATH_MAX];
    /* hs_dicom_verdict_name of the file's verdict, or one of this stage's:
     * "other_study", "duplicate", "unreadable". */
    char verdict[32];
    char reason[256];
} hs_skipped_file;

typedef struct {
    char study_uid[HS_UID_KEY_MAX]; /* the StudyInstanceUID key (dicom.h) */
    char accession[17], patient_id[65], study_date[9];
    int n_series;
    hs_series *series;  /* ordered by SeriesInstanceUID string */
    int n_skipped;
    hs_skipped_file *skipped; /* every file not used, ordered by path */
    int n_files;        /* regular files found (dot files are not looked at) */
    char why[256];      /* study-level note, e.g. why no series is readable, or
                           that the StudyInstanceUID (its study_uid_note) or some
                           SOPInstanceUIDs (how many, and the first note by path)
                           are not conformant */
} hs_study;

/* Multi-frame files. An accepted multi-frame file (Enhanced CT, Legacy
 * Converted Enhanced CT) becomes one slice per frame through
 * hs_dicom_read_frames, and its frames are grouped and sorted like any
 * slice, so a series may mix single- and multi-frame files. A frame whose
 * own verdict is not OK (FrameType LOCALIZER, not axial) is skipped with
 * "frame N: " before its reason, under the file's path; the other frames
 * stay. Duplicates by SOPInstanceUID are (SOPInstanceUID, frame)
 * duplicates: a copy of an Enhanced CT file gives one "duplicate" record
 * per frame.
 *
 * Walks dir recursively and reads every regular file's header with
 * hs_dicom_read_header into study (zeroed first; free it with
 * hs_study_free, also after a failure). The walk goes to any depth, skips
 * names starting with '.', and follows symbolic links, but visits no
 * folder or file twice, so link loops end.
 *
 * HS_DICOM_OK slices are grouped by SeriesInstanceUID as written, whole:
 * UIDs are compared as the keys of dicom.h, so two UIDs that differ only
 * after byte 64 or after a NUL are two studies, two series or two
 * instances. Every other file goes to skipped with its verdict name and
 * reason. When the folder holds several StudyInstanceUIDs, the study with
 * the most accepted slices is kept (ties: the smaller key) and the accepted
 * slices of the others are skipped as "other_study", "belongs to another
 * study (KEY)" (hemoscan --study then reads each of them on its own).
 * Within a series, copies of one instance (the same SOPInstanceUID and
 * frame) are skipped as "duplicate" but the best: a lossless copy before
 * a lossy one, then the newer file, then the larger, then the path (equal
 * bytes: the path); the reason says which rule chose. Then a slice at the
 * same position along the normal as the one before it (within 0.01 mm) is
 * skipped as "duplicate": the one kept is the first by InstanceNumber,
 * then path.
 *
 * Every accepted file is hashed (SHA-256 of its bytes, with its size and
 * modification time, into the header's file_* fields): the identity of
 * what a reading read (study.h, hs_study_instances_sha256).
 *
 * Gaps: a neighbour distance larger than 1.5 times the expected spacing
 * counts round(distance / expected) - 1 missing slices. The expected spacing
 * is the (lower) median distance among neighbours with the same
 * SliceThickness, so a series that changes from 4 mm to 7 mm slices (GE
 * head protocols do) has no gap, only inconsistent_spacing.
 *
 * Headers are read by up to `threads` threads at once (1: none started),
 * a batch of files at a time; the result is the same for any count.
 *
 * The result does not depend on directory listing order. Returns HS_OK, or
 * HS_ERR_IO when dir cannot be opened (the message names it), HS_ERR_ARG
 * for NULL arguments, HS_ERR_NOMEM. */
hs_status hs_study_scan(const char *dir, int threads, hs_study *study, hs_error *err);

/* hs_study_scan on a given list of files instead of a folder walk: what
 * the watcher uses once it has grouped a drop folder's files by study.
 * Every path should name a regular file (one that cannot be read is
 * skipped as "unreadable"); n_files is n. label (a folder, or a name for
 * the group) appears in study->why. Same rules, results and errors as
 * hs_study_scan otherwise; paths stay the caller's. */
hs_status hs_study_scan_files(const char *label, char *const *paths, int n, int threads,
                              hs_study *study, hs_error *err);

/* Chooses the series to read: non-contrast preferred over contrast, then a
 * slice thickness within [min_mm, max_mm] (0 or less for either means the
 * HS_SERIES_*_THICKNESS_MM default) over one outside or unknown, then the
 * most slices, then the first in order. Sets chosen and why on every
 * series; with all_eligible != 0 every series is chosen (the best one still
 * first in the return value). Returns the index of the best series, or -1
 * when the study has no series, with study->why saying so. */
int hs_study_choose(hs_study *study, double min_thickness_mm, double max_thickness_mm,
                    int all_eligible);

/* Frees what hs_study_scan allocated and zeroes study; NULL is fine. */
void hs_study_free(hs_study *study);

#endif
