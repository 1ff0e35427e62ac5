/* series.c - the scan and series stages (see series.h): walk a study folder,
 * group accepted slices by series, sort them along the slice normal, and
 * choose the series to read.
 *
 * Built in three passes on purpose. The walk (hs_dirwalk) only collects
 * paths (sorted per directory, so the outcome never depends on readdir
 * order). Reading classifies each file once with hs_dicom_read_header and
 * keeps full headers only for accepted slices; everything else becomes a
 * skipped record right away. Grouping then works on the accepted headers
 * alone: pick the study, split by series UID, sort, drop duplicates and
 * measure spacing. Each pass is simple enough to check by reading, and a
 * file's fate is decided in exactly one place. */
#include "hemoscan/series.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hemoscan/checksum.h"
#include "hemoscan/dirwalk.h"
#include "hemoscan/grow.h"
#include "hemoscan/parallel.h"

/* Two slices closer than this along the normal are at the same position. */
#define HS_SAME_POSITION_MM 0.01
/* A neighbour distance above this multiple of the expected spacing is a gap. */
#define HS_GAP_FACTOR 1.5
/* Spacings differing by more than this fraction of the median are inconsistent. */
#define HS_SPACING_TOLERANCE 0.2

/* ---- small helpers --------------------------------------------------------- */

/* Copy src into dst, cut to cap - 1 bytes: reasons and descriptions are
 * allowed to be shortened. (Not snprintf: compilers warn about every
 * possible truncation, and here it is intended.) */
static void series_copy(char *dst, size_t cap, const char *src)
{
    if (cap == 0)
        return;
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* snprintf for sentences where cutting a long UID or path short is fine. */
static void series_sentence(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void series_sentence(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    if (n < 0 && cap > 0)
        dst[0] = '\0';
}

/* ---- pass 1: the walk ------------------------------------------------------ */

static int add_skipped(hs_study *s, int *cap, const char *path, const char *verdict,
                       const char *reason)
{
    if (hs_grow((void **)&s->skipped, cap, s->n_skipped + 1, sizeof *s->skipped) != 0)
        return -1;
    hs_skipped_file *k = &s->skipped[s->n_skipped++];
    series_copy(k->path, sizeof k->path, path);
    series_copy(k->verdict, sizeof k->verdict, verdict);
    series_copy(k->reason, sizeof k->reason, reason);
    return 0;
}

/* What the walk collects: the regular files' paths, and what cannot be
 * read as skipped records of the study. */
typedef struct {
    char **paths;
    int n, cap;
    hs_study *study;
    int *skip_cap;
} walk_state;

/* The walk's visit (dirwalk.h): only the top folder failing to open is an
 * error; a subfolder that cannot be opened, and an entry that cannot be
 * examined (a dangling link, a file that vanished, a path too long), are
 * recorded as skipped. Folders are entered; anything but a regular file is
 * ignored. */
static hs_status walk_visit(void *ctx, hs_dirwalk_entry *e, hs_error *err)
{
    walk_state *w = ctx;
    char reason[256];
    switch (e->kind) {
    case HS_DIRWALK_DIR_ERROR:
        if (e->depth == 0)
            return hs_fail(err, HS_ERR_IO, "%s: cannot open folder: %s", e->path, strerror(e->error));
        snprintf(reason, sizeof reason, "folder cannot be opened: %s", strerror(e->error));
        if (add_skipped(w->study, w->skip_cap, e->path, "unreadable", reason) != 0)
            return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", e->path);
        return HS_OK;
    case HS_DIRWALK_STAT_ERROR:
        snprintf(reason, sizeof reason, "cannot be opened: %s", strerror(e->error));
        if (add_skipped(w->study, w->skip_cap, e->path, "unreadable", reason) != 0)
            return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", e->path);
        return HS_OK;
    case HS_DIRWALK_DIR:
        return HS_OK;
    case HS_DIRWALK_FILE:
        break;
    }
    if (!S_ISREG(e->st->st_mode))
        return HS_OK;
    char *path = strdup(e->path);
    if (path == NULL || hs_grow((void **)&w->paths, &w->cap, w->n + 1, sizeof *w->paths) != 0) {
        free(path);
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", e->path);
    }
    w->paths[w->n++] = path;
    return HS_OK;
}

/* ---- pass 3 helpers: geometry --------------------------------------------- */

static void normal_of(const double o[6], double n[3])
{
    n[0] = o[1] * o[5] - o[2] * o[4];
    n[1] = o[2] * o[3] - o[0] * o[5];
    n[2] = o[0] * o[4] - o[1] * o[3];
    double len = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
    if (len < 1e-6) {
        n[0] = 0.0;
        n[1] = 0.0;
        n[2] = 1.0;
        return;
    }
    for (int i = 0; i < 3; i++)
        n[i] /= len;
    /* Point to the head (+z in LPS), so sorting goes feet -> head whatever
     * way the rows and columns run. */
    if (n[2] < 0.0)
        for (int i = 0; i < 3; i++)
            n[i] = -n[i];
}

typedef struct {
    double key;   /* position along the normal, or InstanceNumber */
    int instance; /* InstanceNumber, or INT_MAX-like large value when absent */
    const hs_dicom_header *h;
} sort_item;

static int cmp_item(const void *a, const void *b)
{
    const sort_item *x = a, *y = b;
    if (x->key < y->key)
        return -1;
    if (x->key > y->key)
        return 1;
    if (x->instance != y->instance)
        return x->instance < y->instance ? -1 : 1;
    int c = strcmp(x->h->path, y->h->path);
    if (c != 0)
        return c;
    return x->h->frame < y->h->frame ? -1 : (x->h->frame > y->h->frame ? 1 : 0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

/* Median of v[0..n) (sorts v); the lower middle value when lower != 0. */
static double series_median(double *v, int n, int lower)
{
    if (n <= 0)
        return 0.0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    if (n % 2 == 1)
        return v[n / 2];
    return lower ? v[n / 2 - 1] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int same_thickness(double a, double b)
{
    return fabs(a - b) < 0.01;
}

/* Lower median of the spacings between neighbours that both have
 * thickness t; fallback when there are none. tmp holds n-1 doubles. */
static double expected_spacing(const hs_series *se, const double *d, double *tmp, double t,
                               double fallback)
{
    int k = 0;
    for (int i = 0; i + 1 < se->n_slices; i++)
        if (same_thickness(se->slices[i].header.slice_thickness, t) &&
            same_thickness(se->slices[i + 1].header.slice_thickness, t))
            tmp[k++] = d[i];
    return k > 0 ? series_median(tmp, k, 1) : fallback;
}

/* Spacing, gaps and consistency of a sorted series. */
static hs_status series_measure(hs_series *se, hs_error *err)
{
    int n = se->n_slices;
    double *thick = malloc(sizeof(double) * (size_t)n);
    if (thick == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "series %s: out of memory", se->series_uid);
    for (int i = 0; i < n; i++)
        thick[i] = se->slices[i].header.slice_thickness;
    /* The lower median: a thickness some slice really has (4 mm, not 5.5,
     * for a GE series of 14 slices of 4 mm and 14 of 7 mm). */
    se->slice_thickness_mm = series_median(thick, n, 1);
    free(thick);
    se->gantry_tilt_deg = se->slices[0].header.gantry_tilt;
    if (se->sort_method != HS_SORT_POSITION || n < 2)
        return HS_OK;

    double *d = malloc(sizeof(double) * (size_t)(n - 1) * 3);
    if (d == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "series %s: out of memory", se->series_uid);
    double *tmp = d + (n - 1), *kept = d + 2 * (n - 1);
    for (int i = 0; i + 1 < n; i++) {
        d[i] = se->slices[i + 1].position_along_normal - se->slices[i].position_along_normal;
        tmp[i] = d[i];
    }
    se->spacing_mm = series_median(tmp, n - 1, 0);
    double overall = series_median(tmp, n - 1, 1);

    int n_kept = 0;
    for (int i = 0; i + 1 < n; i++) {
        double ta = se->slices[i].header.slice_thickness;
        double tb = se->slices[i + 1].header.slice_thickness;
        double ref = expected_spacing(se, d, tmp, ta, overall);
        if (!same_thickness(ta, tb)) {
            double rb = expected_spacing(se, d, tmp, tb, overall);
            if (rb > ref)
                ref = rb;
        }
        if (ref > 0.0 && d[i] > HS_GAP_FACTOR * ref) {
            long m = lround(d[i] / ref) - 1;
            se->missing_slices += m < 1 ? 1 : (int)m;
        } else {
            kept[n_kept++] = d[i];
        }
    }
    if (n_kept > 1) {
        double lo = kept[0], hi = kept[0];
        for (int i = 1; i < n_kept; i++) {
            if (kept[i] < lo)
                lo = kept[i];
            if (kept[i] > hi)
                hi = kept[i];
        }
        double med = series_median(kept, n_kept, 0);
        se->inconsistent_spacing = med > 0.0 && hi - lo > HS_SPACING_TOLERANCE * med;
    }
    free(d);
    return HS_OK;
}

/* "frame N: " for a frame of a multi-frame file, "" otherwise, into b. */
static const char *frame_prefix(char *b, size_t cap, const hs_dicom_header *h)
{
    if (h->frames > 1)
        snprintf(b, cap, "frame %d: ", h->frame + 1);
    else if (cap > 0)
        b[0] = '\0';
    return b;
}

static void same_position_reason(char *out, size_t cap, const hs_dicom_header *h,
                                 const hs_dicom_header *kept)
{
    char a[32], b[32];
    frame_prefix(a, sizeof a, h);
    b[0] = '\0';
    if (kept->frames > 1)
        snprintf(b, sizeof b, " frame %d", kept->frame + 1);
    series_sentence(out, cap, "%sduplicate position: same slice position as %.180s%s", a, kept->path, b);
}

/* Copies of one instance (same SOPInstanceUID and frame), best first: a
 * lossless copy before a lossy one, then the newer one (a corrected copy
 * sent again), then the larger file, then the path. A copy cut short
 * mostly fails the header check (CORRUPT) and is no copy at all. Equal
 * files (same SHA-256) are told apart by path alone, as before. */
static int copy_better(const hs_dicom_header *a, const hs_dicom_header *b)
{
    if (a->lossy != b->lossy)
        return a->lossy < b->lossy;
    if (strcmp(a->file_sha256, b->file_sha256) != 0) {
        if (a->file_mtime != b->file_mtime)
            return a->file_mtime > b->file_mtime;
        if (a->file_size != b->file_size)
            return a->file_size > b->file_size;
    }
    return strcmp(a->path, b->path) < 0;
}

static int cmp_copies(const void *x, const void *y)
{
    const hs_dicom_header *a = *(const hs_dicom_header *const *)x;
    const hs_dicom_header *b = *(const hs_dicom_header *const *)y;
    int c = strcmp(a->sop_uid, b->sop_uid);
    if (c != 0)
        return c;
    if (a->frame != b->frame)
        return a->frame < b->frame ? -1 : 1;
    if (a == b)
        return 0;
    return copy_better(a, b) ? -1 : 1;
}

/* For each of hs[0..n): NULL when it is the best copy of its instance (or
 * has no SOPInstanceUID), else the best copy, which is kept instead. */
static hs_status best_copies(const hs_dicom_header **hs, int n, const hs_dicom_header **best,
                             hs_error *err)
{
    const hs_dicom_header **by = malloc(sizeof *by * (size_t)(n > 0 ? n : 1));
    if (by == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "out of memory sorting %d slices", n);
    memcpy(by, hs, sizeof *by * (size_t)n);
    qsort(by, (size_t)n, sizeof *by, cmp_copies);
    for (int i = 0; i < n; i++)
        best[i] = NULL;
    for (int i = 0, first = 0; i < n; i++) {
        if (i > 0 && (strcmp(by[i]->sop_uid, by[i - 1]->sop_uid) != 0 || by[i]->frame != by[i - 1]->frame))
            first = i;
        if (i == first || by[i]->sop_uid[0] == '\0')
            continue;
        for (int k = 0; k < n; k++)
            if (hs[k] == by[i]) {
                best[k] = by[first];
                break;
            }
    }
    free(by);
    return HS_OK;
}

/* Why the copy h of an instance is not used: best is kept instead. */
static void copy_reason(char *out, size_t cap, const hs_dicom_header *h, const hs_dicom_header *best)
{
    const char *why = best->lossy != h->lossy                             ? "it is lossless, this copy lossy"
                      : strcmp(best->file_sha256, h->file_sha256) == 0 ? "the same bytes"
                      : best->file_mtime != h->file_mtime               ? "it is the newer file"
                      : best->file_size != h->file_size                 ? "it is the larger file"
                                                                        : "the same size and time";
    if (h->frames > 1)
        series_sentence(out, cap, "frame %d: duplicate of %.160s frame %d (same SOPInstanceUID and frame; %s)",
                        h->frame + 1, best->path, best->frame + 1, why);
    else
        series_sentence(out, cap, "duplicate of %.180s (same SOPInstanceUID; %s)", best->path, why);
}

/* Sorts the accepted headers hs[0..n) of one series into se, skipping
 * duplicates into s->skipped: of the copies of one instance the best
 * (copy_better) is kept, then of slices at one position the first. */
static hs_status build_series(hs_study *s, int *skip_cap, hs_dicom_header **hs, int n,
                              hs_series *se, hs_error *err)
{
    series_copy(se->series_uid, sizeof se->series_uid, hs[0]->series_uid);
    series_copy(se->uid_note, sizeof se->uid_note, hs[0]->series_uid_note);
    series_copy(se->description, sizeof se->description, hs[0]->series_description);
    se->normal[2] = 1.0;

    int all_pos = 1, all_inst = 1, any_orient = 0;
    for (int i = 0; i < n; i++) {
        if (!hs[i]->has_position)
            all_pos = 0;
        if (!hs[i]->has_instance_number)
            all_inst = 0;
        if (hs[i]->contrast)
            se->contrast = 1;
        if (hs[i]->has_orientation && !any_orient) {
            normal_of(hs[i]->orientation, se->normal);
            any_orient = 1;
        }
    }
    if (all_pos) {
        se->sort_method = HS_SORT_POSITION;
        if (!any_orient)
            series_copy(se->sort_note, sizeof se->sort_note,
                        "sorted by z position: ImageOrientationPatient missing");
    } else if (all_inst) {
        se->sort_method = HS_SORT_INSTANCE;
        series_copy(se->sort_note, sizeof se->sort_note,
                    "sorted by InstanceNumber: ImagePositionPatient missing");
    } else {
        se->sort_method = HS_SORT_FILENAME;
        series_copy(se->sort_note, sizeof se->sort_note,
                    "sorted by file name: ImagePositionPatient and InstanceNumber missing");
    }

    sort_item *it = malloc(sizeof *it * (size_t)n);
    se->slices = calloc((size_t)n, sizeof *se->slices);
    if (it == NULL || se->slices == NULL) {
        free(it);
        return hs_fail(err, HS_ERR_NOMEM, "series %s: out of memory", se->series_uid);
    }
    for (int i = 0; i < n; i++) {
        const hs_dicom_header *h = hs[i];
        it[i].h = h;
        it[i].instance = h->has_instance_number ? h->instance_number : 0x7fffffff;
        if (se->sort_method == HS_SORT_POSITION)
            it[i].key = h->position[0] * se->normal[0] + h->position[1] * se->normal[1] +
                        h->position[2] * se->normal[2];
        else if (se->sort_method == HS_SORT_INSTANCE)
            it[i].key = (double)h->instance_number;
        else
            it[i].key = 0.0;
    }
    qsort(it, (size_t)n, sizeof *it, cmp_item);

    const hs_dicom_header **sorted = malloc(sizeof *sorted * (size_t)n);
    const hs_dicom_header **best = malloc(sizeof *best * (size_t)n);
    hs_status st = sorted == NULL || best == NULL
                       ? hs_fail(err, HS_ERR_NOMEM, "series %s: out of memory", se->series_uid)
                       : HS_OK;
    for (int i = 0; i < n && st == HS_OK; i++)
        sorted[i] = it[i].h;
    if (st == HS_OK)
        st = best_copies(sorted, n, best, err);
    for (int i = 0; i < n && st == HS_OK; i++) {
        const hs_dicom_header *h = it[i].h;
        char reason[256] = "";
        if (best[i] != NULL)
            copy_reason(reason, sizeof reason, h, best[i]);
        if (reason[0] == '\0' && se->sort_method == HS_SORT_POSITION && se->n_slices > 0) {
            const hs_slice *last = &se->slices[se->n_slices - 1];
            if (fabs(it[i].key - last->position_along_normal) < HS_SAME_POSITION_MM)
                same_position_reason(reason, sizeof reason, h, &last->header);
        }
        if (reason[0] != '\0') {
            if (add_skipped(s, skip_cap, h->path, "duplicate", reason) != 0)
                st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", h->path);
            continue;
        }
        hs_slice *sl = &se->slices[se->n_slices++];
        sl->header = *h;
        sl->position_along_normal = se->sort_method == HS_SORT_POSITION ? it[i].key : 0.0;
    }
    free(sorted);
    free(best);
    free(it);
    if (st != HS_OK)
        return st;
    return series_measure(se, err);
}

/* ---- the scan --------------------------------------------------------------- */

static int cmp_header_series(const void *a, const void *b)
{
    const hs_dicom_header *x = *(const hs_dicom_header *const *)a;
    const hs_dicom_header *y = *(const hs_dicom_header *const *)b;
    int c = strcmp(x->series_uid, y->series_uid);
    return c != 0 ? c : strcmp(x->path, y->path);
}

static int cmp_skipped(const void *a, const void *b)
{
    const hs_skipped_file *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    return c != 0 ? c : strcmp(x->reason, y->reason);
}

/* Pass 2 reads headers in batches, several files at once: reading a
 * header is mostly parsing, it is independent per file, and a batch bounds
 * the memory a large drop folder takes. */
#define READ_BATCH 64

typedef struct {
    hs_dicom_header *h; /* NULL when out of memory */
    hs_dicom_verdict v;
    hs_status rs;
    char reason[256];
    hs_error err;
} header_read;

typedef struct {
    char *const *paths;
    header_read *out;
} read_job;

static void read_task(void *ctx, int task, int thread)
{
    (void)thread;
    read_job *job = ctx;
    header_read *r = &job->out[task];
    r->v = HS_DICOM_NOT_DICOM;
    r->reason[0] = '\0';
    r->err.msg[0] = '\0';
    r->h = malloc(sizeof *r->h);
    r->rs = r->h == NULL ? HS_ERR_NOMEM
                         : hs_dicom_read_header(job->paths[task], r->h, &r->v, r->reason, &r->err);
    if (r->h == NULL)
        snprintf(r->err.msg, sizeof r->err.msg, "out of memory");
    /* An accepted file's content identity: what was read is these bytes.
     * The header read just brought the file into the page cache, and
     * libcrypto hashes far faster than the slice decodes later. */
    if (r->rs == HS_OK && r->v == HS_DICOM_OK) {
        struct stat sb;
        if (stat(job->paths[task], &sb) != 0) {
            r->rs = HS_ERR_IO;
            snprintf(r->err.msg, sizeof r->err.msg, "%.300s: cannot examine: %s", job->paths[task],
                     strerror(errno));
            return;
        }
        r->h->file_size = (long long)sb.st_size;
        r->h->file_mtime = (double)sb.st_mtim.tv_sec + (double)sb.st_mtim.tv_nsec * 1e-9;
        r->rs = hs_sha256_file(job->paths[task], r->h->file_sha256, &r->err);
    }
}

/* Pass 2 for an accepted multi-frame file (header file): each frame whose
 * own verdict is OK goes to ok as a header of its own; the others are
 * skipped with the frame named in the reason. A file whose frames cannot
 * be read is skipped as "unreadable". */
static hs_status add_frames(hs_study *study, int *skip_cap, const hs_dicom_header *file,
                            hs_dicom_header ***ok, int *n_ok, int *ok_cap, hs_error *err)
{
    int n = file->frames;
    hs_dicom_header *fr = calloc((size_t)n, sizeof *fr);
    hs_dicom_verdict *v = calloc((size_t)n, sizeof *v);
    char(*why)[256] = calloc((size_t)n, sizeof *why);
    hs_status st = HS_OK;
    if (fr == NULL || v == NULL || why == NULL) {
        st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory for %d frames", file->path, n);
        goto done;
    }
    hs_error ferr = {0};
    hs_status rs = hs_dicom_read_frames(file->path, file, fr, v, why, &ferr);
    if (rs == HS_ERR_NOMEM) {
        st = hs_fail(err, HS_ERR_NOMEM, "%s", ferr.msg);
        goto done;
    }
    if (rs != HS_OK) {
        if (add_skipped(study, skip_cap, file->path, "unreadable", ferr.msg) != 0)
            st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", file->path);
        goto done;
    }
    for (int k = 0; k < n && st == HS_OK; k++) {
        if (v[k] != HS_DICOM_OK) {
            char reason[256];
            series_sentence(reason, sizeof reason, "frame %d: %s", k + 1,
                            why[k][0] != '\0' ? why[k] : "not an axial CT image");
            if (add_skipped(study, skip_cap, file->path, hs_dicom_verdict_name(v[k]), reason) != 0)
                st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", file->path);
            continue;
        }
        hs_dicom_header *one = malloc(sizeof *one);
        if (one == NULL || hs_grow((void **)ok, ok_cap, *n_ok + 1, sizeof **ok) != 0) {
            free(one);
            st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", file->path);
            break;
        }
        *one = fr[k];
        /* the file's identity is the scan's, not the reader's */
        one->file_size = file->file_size;
        one->file_mtime = file->file_mtime;
        memcpy(one->file_sha256, file->file_sha256, sizeof one->file_sha256);
        (*ok)[(*n_ok)++] = one;
    }
done:
    free(fr);
    free(v);
    free(why);
    return st;
}

/* The reading note on the kept study's non-conformant UIDs (dicom.h): its
 * StudyInstanceUID's note, then how many of its n slices have a
 * non-conformant SOPInstanceUID and the note of the first by path. Kept in
 * study->why, which the audit database records as the reading's note. */
static void uid_notes(hs_study *study, hs_dicom_header *const *mine, int n)
{
    const hs_dicom_header *first = NULL;
    int n_sop = 0;
    for (int i = 0; i < n; i++) {
        if (mine[i]->sop_uid_note[0] == '\0')
            continue;
        n_sop++;
        if (first == NULL || strcmp(mine[i]->path, first->path) < 0)
            first = mine[i];
    }
    char sop[HS_UID_NOTE_MAX + 64] = "";
    if (first != NULL)
        series_sentence(sop, sizeof sop, "%d slice(s) with a non-conformant SOPInstanceUID, first: %s", n_sop,
                        first->sop_uid_note);
    const char *study_note = mine[0]->study_uid_note;
    series_sentence(study->why, sizeof study->why, "%s%s%s", study_note,
                    study_note[0] != '\0' && sop[0] != '\0' ? "; " : "", sop);
}

/* Pass 3a: the study with the most accepted slices, reproducibly, among
 * the n_ok headers of ok. Its headers move to the front of ok (*n_mine
 * of them) and give study its identity. Every other header is listed as
 * skipped ("other_study") and freed, leaving NULL behind. */
static hs_status keep_one_study(hs_study *study, int *skip_cap, hs_dicom_header **ok, int n_ok, int *n_mine,
                                hs_error *err)
{
    hs_status st = HS_OK;
    const char *best = NULL;
    int best_count = 0;
    for (int i = 0; i < n_ok; i++) {
        int seen_before = 0;
        for (int j = 0; j < i && !seen_before; j++)
            seen_before = strcmp(ok[j]->study_uid, ok[i]->study_uid) == 0;
        if (seen_before)
            continue;
        int count = 0;
        for (int j = i; j < n_ok; j++)
            count += strcmp(ok[j]->study_uid, ok[i]->study_uid) == 0;
        /* Ties go to a study that has a UID, then to the smaller UID. */
        int has_uid = ok[i]->study_uid[0] != '\0';
        int better = best == NULL || count > best_count;
        if (!better && count == best_count) {
            int best_has_uid = best[0] != '\0';
            better = has_uid != best_has_uid ? has_uid : strcmp(ok[i]->study_uid, best) < 0;
        }
        if (better) {
            best = ok[i]->study_uid;
            best_count = count;
        }
    }
    int mine_count = 0;
    for (int i = 0; i < n_ok && st == HS_OK; i++) {
        if (strcmp(ok[i]->study_uid, best) == 0) {
            hs_dicom_header *mine = ok[i];
            ok[i] = NULL;
            ok[mine_count++] = mine;
            continue;
        }
        char reason[256];
        snprintf(reason, sizeof reason, "belongs to another study (%s)",
                 ok[i]->study_uid[0] != '\0' ? ok[i]->study_uid : "no StudyInstanceUID");
        if (add_skipped(study, skip_cap, ok[i]->path, "other_study", reason) != 0)
            st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", ok[i]->path);
        free(ok[i]);
        ok[i] = NULL;
    }
    if (st == HS_OK && mine_count > 0) {
        uid_notes(study, ok, mine_count);
        series_copy(study->study_uid, sizeof study->study_uid, ok[0]->study_uid);
        series_copy(study->accession, sizeof study->accession, ok[0]->accession);
        series_copy(study->patient_id, sizeof study->patient_id, ok[0]->patient_id);
        series_copy(study->study_date, sizeof study->study_date, ok[0]->study_date);
    }
    *n_mine = mine_count;
    return st;
}

/* Pass 3b: the n headers of ok (all of one study) become study->series,
 * one series per SeriesInstanceUID string. label names the files' origin
 * in an error. */
static hs_status group_series(hs_study *study, int *skip_cap, hs_dicom_header **ok, int n, const char *label,
                              hs_error *err)
{
    hs_status st = HS_OK;
    if (n > 1)
        qsort(ok, (size_t)n, sizeof *ok, cmp_header_series);
    int n_groups = 0;
    for (int i = 0; i < n; i++)
        n_groups += i == 0 || strcmp(ok[i]->series_uid, ok[i - 1]->series_uid) != 0;
    if (n_groups > 0) {
        study->series = calloc((size_t)n_groups, sizeof *study->series);
        if (study->series == NULL)
            st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", label);
    }
    for (int i = 0; i < n && st == HS_OK;) {
        int j = i + 1;
        while (j < n && strcmp(ok[j]->series_uid, ok[i]->series_uid) == 0)
            j++;
        st = build_series(study, skip_cap, ok + i, j - i, &study->series[study->n_series],
                          err);
        study->n_series++;
        i = j;
    }
    return st;
}

/* Passes 2 and 3 on the files in paths (not freed here): classify, keep
 * one study, group into series. label names the files' origin in
 * study->why. *skip_cap is the capacity of study->skipped so far. */
static hs_status scan_paths(hs_study *study, int *skip_cap, char *const *paths, int n_paths,
                            const char *label, int threads, hs_error *err)
{
    hs_dicom_header **ok = NULL;
    int n_ok = 0, ok_cap = 0;
    hs_status st = HS_OK;
    header_read *batch = calloc(READ_BATCH, sizeof *batch);
    hs_pool *pool = threads > 1 && n_paths > 1 ? hs_pool_create(threads < READ_BATCH ? threads : READ_BATCH)
                                               : NULL;
    if (batch == NULL)
        st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", label);

    /* Pass 2: classify every file once. */
    for (int first = 0; first < n_paths && st == HS_OK; first += READ_BATCH) {
        int count = n_paths - first < READ_BATCH ? n_paths - first : READ_BATCH;
        read_job job = {paths + first, batch};
        if (pool != NULL) {
            hs_pool_run(pool, count, read_task, &job);
        } else {
            for (int k = 0; k < count; k++)
                read_task(&job, k, 0);
        }
        for (int k = 0; k < count; k++) {
            header_read *r = &batch[k];
            const char *path = paths[first + k];
            if (st != HS_OK || r->rs == HS_ERR_NOMEM) {
                if (st == HS_OK)
                    st = hs_fail(err, HS_ERR_NOMEM, "%s: %s", path, r->err.msg);
            } else if (r->rs != HS_OK) {
                if (add_skipped(study, skip_cap, path, "unreadable", r->err.msg) != 0)
                    st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", path);
            } else if (r->v != HS_DICOM_OK) {
                if (r->reason[0] == '\0')
                    series_copy(r->reason, sizeof r->reason, "not an axial CT image");
                if (add_skipped(study, skip_cap, path, hs_dicom_verdict_name(r->v), r->reason) != 0)
                    st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", path);
            } else if (r->h->frames > 1) {
                /* A multi-frame file: one slice per frame. */
                st = add_frames(study, skip_cap, r->h, &ok, &n_ok, &ok_cap, err);
            } else if (hs_grow((void **)&ok, &ok_cap, n_ok + 1, sizeof *ok) != 0) {
                st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", path);
            } else {
                ok[n_ok++] = r->h;
                r->h = NULL;
            }
            free(r->h);
            r->h = NULL;
        }
    }
    hs_pool_free(pool);
    free(batch);

    /* Pass 3: keep one study, group it into series. */
    int n_mine = 0;
    if (st == HS_OK)
        st = keep_one_study(study, skip_cap, ok, n_ok, &n_mine, err);
    if (st == HS_OK)
        st = group_series(study, skip_cap, ok, n_mine, label, err);
    if (st == HS_OK && study->n_skipped > 1)
        qsort(study->skipped, (size_t)study->n_skipped, sizeof *study->skipped, cmp_skipped);
    if (st == HS_OK && study->n_series == 0)
        snprintf(study->why, sizeof study->why,
                 "no axial CT image series in %.150s: %d file(s) found, none accepted", label,
                 study->n_files);

    /* Compaction left NULL behind the kept headers, so this frees each once. */
    for (int i = 0; i < n_ok; i++)
        free(ok[i]);
    free(ok);
    return st;
}

hs_status hs_study_scan(const char *dir, int threads, hs_study *study, hs_error *err)
{
    if (study == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_study_scan: study is NULL");
    memset(study, 0, sizeof *study);
    if (dir == NULL || dir[0] == '\0')
        return hs_fail(err, HS_ERR_ARG, "hs_study_scan: no folder given");

    struct stat sb;
    if (stat(dir, &sb) != 0)
        return hs_fail(err, HS_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return hs_fail(err, HS_ERR_IO, "%s: is not a folder", dir);

    /* The walk:
     *   - links are followed (a study folder may be a tree of links), each
     *     file and folder read once, so a link loop ends;
     *   - names starting with '.' are left out;
     *   - sorted, so the outcome never depends on readdir order. */
    const hs_dirwalk_options walk_opt = {.follow_links = 1, .once = 1, .sorted = 1, .max_depth = -1,
                                         .skip_hidden = 1};
    int skip_cap = 0;
    walk_state w = {NULL, 0, 0, study, &skip_cap};
    hs_status st = hs_dirwalk(dir, &walk_opt, walk_visit, &w, err);
    study->n_files = w.n;
    if (st == HS_OK)
        st = scan_paths(study, &skip_cap, w.paths, w.n, dir, threads, err);
    for (int i = 0; i < w.n; i++)
        free(w.paths[i]);
    free(w.paths);
    return st;
}

hs_status hs_study_scan_files(const char *label, char *const *paths, int n, int threads,
                              hs_study *study, hs_error *err)
{
    if (study == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_study_scan_files: study is NULL");
    memset(study, 0, sizeof *study);
    if (label == NULL || n < 0 || (paths == NULL && n > 0))
        return hs_fail(err, HS_ERR_ARG, "hs_study_scan_files: no label or files given");
    int skip_cap = 0;
    study->n_files = n;
    return scan_paths(study, &skip_cap, paths, n, label, threads, err);
}

/* ---- the choice --------------------------------------------------------------- */

static int in_range(const hs_series *se, double lo, double hi)
{
    return se->slice_thickness_mm > 0.0 && se->slice_thickness_mm >= lo &&
           se->slice_thickness_mm <= hi;
}

/* 1 if a is a better series to read than b (a comes later in order). */
static int series_better(const hs_series *a, const hs_series *b, double lo, double hi)
{
    if (a->contrast != b->contrast)
        return !a->contrast;
    int ra = in_range(a, lo, hi), rb = in_range(b, lo, hi);
    if (ra != rb)
        return ra;
    return a->n_slices > b->n_slices;
}

static void describe_thickness(char *out, size_t cap, const hs_series *se, double lo,
                               double hi)
{
    if (se->slice_thickness_mm <= 0.0)
        snprintf(out, cap, "slice thickness unknown");
    else if (in_range(se, lo, hi))
        snprintf(out, cap, "slice thickness %g mm within %g-%g mm", se->slice_thickness_mm,
                 lo, hi);
    else
        snprintf(out, cap, "slice thickness %g mm outside %g-%g mm", se->slice_thickness_mm,
                 lo, hi);
}

/* Ends the sentence in why (cap bytes) with "; " and note, cutting the
 * sentence rather than the note when both do not fit. */
static void append_note(char *why, size_t cap, const char *note)
{
    size_t n = strlen(note);
    if (n == 0 || n + 3 > cap)
        return;
    size_t keep = strlen(why);
    if (keep + n + 3 > cap)
        keep = cap - n - 3;
    snprintf(why + keep, cap - keep, "; %s", note);
}

int hs_study_choose(hs_study *study, double min_thickness_mm, double max_thickness_mm,
                    int all_eligible)
{
    if (study == NULL)
        return -1;
    double lo = min_thickness_mm > 0.0 ? min_thickness_mm : HS_SERIES_MIN_THICKNESS_MM;
    double hi = max_thickness_mm > 0.0 ? max_thickness_mm : HS_SERIES_MAX_THICKNESS_MM;
    if (study->n_series <= 0) {
        if (study->why[0] == '\0')
            snprintf(study->why, sizeof study->why, "no axial CT image series to read");
        return -1;
    }
    int best = 0;
    for (int i = 1; i < study->n_series; i++)
        if (series_better(&study->series[i], &study->series[best], lo, hi))
            best = i;

    const hs_series *b = &study->series[best];
    for (int i = 0; i < study->n_series; i++) {
        hs_series *se = &study->series[i];
        char thick[96];
        describe_thickness(thick, sizeof thick, se, lo, hi);
        const char *note = se->sort_note[0] != '\0' ? "; " : "";
        /* A key of a non-conformant UID is up to 136 characters: name the
         * preferred series by its place instead, so the sentence stays whole. */
        char preferred[HS_UID_KEY_MAX + 32];
        if (strchr(b->series_uid, '#') != NULL)
            snprintf(preferred, sizeof preferred, "number %d (in UID order)", best + 1);
        else
            snprintf(preferred, sizeof preferred, "%s", b->series_uid);
        se->chosen = i == best || all_eligible;
        if (i == best) {
            series_sentence(se->why, sizeof se->why, "chosen: %s, %s, %d slice(s)%s%s",
                            se->contrast ? "contrast-enhanced (no non-contrast series)"
                                     : "no contrast agent recorded",
                        thick, se->n_slices, note, se->sort_note);
        } else {
            const char *because;
            if (se->contrast && !b->contrast)
                because = "contrast-enhanced while a non-contrast series exists";
            else if (in_range(b, lo, hi) && !in_range(se, lo, hi))
                because = "its slice thickness is outside the preferred range";
            else
                because = "it has no more slices than the chosen one";
            const char *status =
                all_eligible ? "also chosen (all eligible), though not the best" : "not chosen";
            series_sentence(se->why, sizeof se->why, "%s: %s; %s, %d slice(s); series %s preferred%s%s",
                            status, because, thick, se->n_slices, preferred, note, se->sort_note);
        }
        append_note(se->why, sizeof se->why, se->uid_note);
    }
    return best;
}

void hs_study_free(hs_study *study)
{
    if (study == NULL)
        return;
    for (int i = 0; i < study->n_series; i++)
        free(study->series[i].slices);
    free(study->series);
    free(study->skipped);
    memset(study, 0, sizeof *study);
}
