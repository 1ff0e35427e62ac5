/* study.c - one study folder from files to a verdict (see study.h).
 *
 * Every worker thread is a whole pipeline: it takes the next CHUNK slices
 * of the series, decodes and renders them, and scores them with its own
 * single-threaded predictor. Slices are independent, so this scales with
 * the cores, where splitting each stage across threads would leave cores
 * idle between stages. Memory holds one chunk of network inputs and one
 * decoded slice per worker, whatever the length of the series: a
 * 240-slice study costs the same as a 32-slice one. */
#include "hemoscan/study.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hemoscan/checksum.h"
#include "hemoscan/clock.h"
#include "hemoscan/dicom.h"
#include "hemoscan/parallel.h"
#include "hemoscan/predict.h"
#include "hemoscan/render.h"
#include "hemoscan/review.h"

/* Slices a worker takes at a time: inference runs image by image, so a
 * batch only amortises the call, and small chunks keep the two workers
 * finishing together (8 inputs of the default model take 2.2 MB). */
#define CHUNK 8

void hs_study_options_default(hs_study_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->threads = 2;
    opt->tta = 1;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* SHA-256 over the sorted lines "ID[#N] FILE_SHA256" of every accepted
 * slice, each followed by a newline: ID is the SOPInstanceUID (the path
 * when a file has none), N the 1-based frame number of a frame of a
 * multi-frame file, FILE_SHA256 the SHA-256 of the file it was read from.
 * The identity is what was read, UIDs and content: a file of which other
 * frames were accepted (a LOCALIZER frame dropped, say) is another set, and
 * so is a corrected copy sent again with the same UIDs. */
hs_status hs_study_instances_sha256(const hs_study *study, char hex[65], hs_error *err)
{
    if (study == NULL || hex == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_study_instances_sha256: NULL argument");
    int n = 0;
    for (int s = 0; s < study->n_series; s++)
        n += study->series[s].n_slices;
    /* One line per instance: "ID[#FRAME] SHA256"; ID is the SOPInstanceUID
     * (the path without one), whole, whatever its length. */
    char **lines = calloc((size_t)(n > 0 ? n : 1), sizeof *lines);
    hs_status st = lines == NULL ? hs_fail(err, HS_ERR_NOMEM, "out of memory listing the instances of a study")
                                 : HS_OK;
    int k = 0;
    for (int s = 0; s < study->n_series && st == HS_OK; s++) {
        for (int i = 0; i < study->series[s].n_slices && st == HS_OK; i++) {
            const hs_dicom_header *h = &study->series[s].slices[i].header;
            const char *id = h->sop_uid[0] ? h->sop_uid : h->path;
            size_t cap = strlen(id) + 16 + sizeof h->file_sha256;
            lines[k] = malloc(cap);
            if (lines[k] == NULL) {
                st = hs_fail(err, HS_ERR_NOMEM, "out of memory listing the instances of a study");
                break;
            }
            if (h->frames > 1)
                snprintf(lines[k], cap, "%s#%d %s", id, h->frame + 1, h->file_sha256);
            else
                snprintf(lines[k], cap, "%s %s", id, h->file_sha256);
            k++;
        }
    }
    hs_sha256_ctx *ctx = st == HS_OK ? hs_sha256_begin() : NULL;
    if (st == HS_OK && ctx == NULL)
        st = hs_fail(err, HS_ERR_NOMEM, "cannot set up SHA-256");
    if (st == HS_OK) {
        qsort(lines, (size_t)k, sizeof *lines, compare_strings);
        for (int i = 0; i < k; i++) {
            hs_sha256_update(ctx, lines[i], strlen(lines[i]));
            hs_sha256_update(ctx, "\n", 1);
        }
        unsigned char digest[HS_SHA256_LEN];
        hs_sha256_end(ctx, digest);
        hs_sha256_hex(digest, hex);
    }
    for (int i = 0; i < k; i++)
        free(lines[i]);
    free(lines);
    return st;
}

/* What the workers of one series share. Each worker has its own
 * predictor, decode buffer and inputs, and takes CHUNK slices at a time
 * from next_slice, so no worker waits for another. */
typedef struct {
    const hs_series *series;
    const hs_input_recipe *recipe;
    size_t input_size;       /* floats per network input */
    hs_slice_result *result; /* per slice; each slice is written by one worker */
    int thumb_px;            /* > 0: write a thumbnail of each decoded slice */
    unsigned char *thumb;    /* thumb_px^2 bytes per slice, or NULL */
    hs_predictor **pred;     /* one per worker */
    atomic_int next_slice;
    atomic_int failed;       /* a worker ran out of memory */
} series_job;

static void score_worker(void *ctx, int task, int thread)
{
    (void)thread;
    series_job *job = ctx;
    const hs_series *series = job->series;
    float *inputs = malloc((size_t)CHUNK * job->input_size * sizeof *inputs);
    float *hu = NULL;
    size_t hu_cap = 0;
    /* keeps a multi-frame file parsed while this worker reads its frames */
    hs_dicom_reader *reader = hs_dicom_reader_new();
    if (inputs == NULL || reader == NULL) {
        free(inputs);
        hs_dicom_reader_free(reader);
        atomic_store(&job->failed, 1);
        return;
    }
    for (;;) {
        int first = atomic_fetch_add(&job->next_slice, CHUNK);
        if (first >= series->n_slices)
            break;
        int count = series->n_slices - first < CHUNK ? series->n_slices - first : CHUNK;
        int packed = 0, where[CHUNK];
        for (int i = first; i < first + count; i++) {
            const hs_dicom_header *h = &series->slices[i].header;
            hs_slice_result *r = &job->result[i];
            hs_error err = {0};
            r->probability = NAN;
            r->error[0] = '\0';
            size_t need = (size_t)h->rows * (size_t)h->columns;
            if (need > hu_cap) {
                float *grown = realloc(hu, need * sizeof *grown);
                if (grown == NULL) {
                    snprintf(r->error, sizeof r->error, "out of memory decoding %dx%d pixels", h->columns, h->rows);
                    continue;
                }
                hu = grown;
                hu_cap = need;
            }
            hs_status st = hs_dicom_reader_read_hu(reader, h->path, h, hu, &err);
            if (st == HS_OK && job->thumb != NULL)
                hs_review_thumbnail(hu, h->columns, h->rows, job->thumb_px,
                                    job->thumb + (size_t)i * (size_t)job->thumb_px * (size_t)job->thumb_px);
            if (st == HS_OK)
                st = hs_render_input(hu, h->columns, h->rows, job->recipe,
                                     inputs + (size_t)packed * job->input_size, &err);
            if (st != HS_OK) {
                snprintf(r->error, sizeof r->error, "%s", err.msg);
                continue;
            }
            where[packed++] = i;
        }
        float probs[CHUNK];
        if (packed > 0)
            hs_predictor_run(job->pred[task], inputs, packed, probs);
        for (int i = 0; i < packed; i++)
            job->result[where[i]].probability = probs[i];
    }
    free(hu);
    free(inputs);
    hs_dicom_reader_free(reader);
}

/* Decode, render and score every slice of series into result. */
static hs_status score_series(const hs_series *series, const hs_model *model, hs_pool *pool,
                              hs_predictor **pred, hs_series_result *res, hs_error *err)
{
    const hs_input_recipe *recipe = &model->recipe;
    series_job job = {series, recipe,
                      (size_t)recipe->width * (size_t)recipe->height * (size_t)recipe->channels, res->slice,
                      res->thumb_px, res->thumb, pred, 0, 0};
    atomic_init(&job.next_slice, 0);
    atomic_init(&job.failed, 0);
    hs_pool_run(pool, hs_pool_threads(pool), score_worker, &job);
    if (atomic_load(&job.failed))
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for the inputs of series %s", series->series_uid);
    return HS_OK;
}

/* The study verdict from the series verdicts (rules in study.h). */
static void decide(hs_study_reading *r, double threshold)
{
    int decisive = -1;
    for (int i = 0; i < r->n_results; i++) {
        const hs_study_verdict *v = &r->result[i].verdict;
        if (v->verdict == HS_VERDICT_HEMORRHAGE &&
            (decisive < 0 || v->probability > r->result[decisive].verdict.probability))
            decisive = i;
    }
    for (int i = 0; decisive < 0 && i < r->n_results; i++) {
        if (r->result[i].verdict.verdict == HS_VERDICT_NO_HEMORRHAGE)
            decisive = i;
    }
    if (decisive < 0 && r->n_results > 0)
        decisive = 0;
    r->decisive = decisive;
    /* A file that could not be read at all (no permission, an unreadable
     * folder, a path too long) may hold the bleed: no "no hemorrhage" from
     * part of a study. A hemorrhage found in the rest stands. */
    const hs_skipped_file *unreadable = NULL;
    int n_unreadable = 0;
    for (int i = 0; i < r->study.n_skipped; i++)
        if (strcmp(r->study.skipped[i].verdict, "unreadable") == 0 && n_unreadable++ == 0)
            unreadable = &r->study.skipped[i];
    if (decisive >= 0 && (unreadable == NULL ||
                          r->result[decisive].verdict.verdict == HS_VERDICT_HEMORRHAGE)) {
        r->verdict = r->result[decisive].verdict;
        return;
    }
    memset(&r->verdict, 0, sizeof r->verdict);
    r->verdict.verdict = HS_VERDICT_NOT_ASSESSABLE;
    r->verdict.probability = NAN;
    r->verdict.confidence = NAN;
    r->verdict.key_slice = -1;
    r->verdict.threshold = threshold;
    if (decisive < 0) {
        snprintf(r->verdict.reason, sizeof r->verdict.reason, "%s",
                 r->study.why[0] ? r->study.why : "no readable axial CT series in the folder");
        return;
    }
    r->verdict.n_scored = r->result[decisive].verdict.n_scored;
    /* the reader's messages name the file already */
    const char *why = unreadable->reason;
    size_t len = strlen(unreadable->path);
    if (strncmp(why, unreadable->path, len) == 0 && why[len] == ':')
        why += len + (why[len + 1] == ' ' ? 2 : 1);
    snprintf(r->verdict.reason, sizeof r->verdict.reason,
             "%d file(s) could not be read (%.100s: %.50s): no verdict from part of a study",
             n_unreadable, unreadable->path, why);
}

/* Checks the arguments and model, and starts out; label goes to out->dir. */
static hs_status begin_reading(const char *label, const hs_model *model, const hs_study_options *opt,
                               hs_study_reading *out, hs_error *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (label == NULL || model == NULL || opt == NULL || out == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_study_read: no folder, model, options or output given");
    if (model->n_classes != 2 || hs_net_outputs(&model->member[0]) != 1)
        return hs_fail(err, HS_ERR_ARG,
                       "the model has %d classes; reading a study needs a two-class normal/hemorrhage model",
                       model->n_classes);
    out->decisive = -1;
    out->started = hs_clock_now();
    snprintf(out->dir, sizeof out->dir, "%s", label);
    return HS_OK;
}

/* Everything after the scan: choose, score, decide. */
static hs_status read_scanned(const hs_model *model, const hs_study_options *opt, hs_study_reading *out,
                              hs_error *err)
{
    const char *dir = out->dir;
    hs_status st = hs_study_instances_sha256(&out->study, out->instances_sha256, err);
    if (st != HS_OK)
        return st;
    int best = hs_study_choose(&out->study, opt->min_thickness_mm, opt->max_thickness_mm, opt->all_series);
    int n_chosen = 0;
    for (int s = 0; s < out->study.n_series; s++)
        n_chosen += out->study.series[s].chosen != 0;
    if (best < 0 || n_chosen == 0) {
        decide(out, model->threshold);
        out->finished = hs_clock_now();
        return HS_OK;
    }

    out->result = calloc((size_t)n_chosen, sizeof *out->result);
    if (out->result == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for the results of %s", dir);
    /* The best series first, then the other chosen ones in scan order. */
    out->result[out->n_results++].series_index = best;
    for (int s = 0; s < out->study.n_series; s++) {
        if (s != best && out->study.series[s].chosen)
            out->result[out->n_results++].series_index = s;
    }

    int threads = opt->threads > 0 ? opt->threads : 1;
    hs_pool *pool = hs_pool_create(threads);
    hs_predictor **pred = calloc((size_t)threads, sizeof *pred);
    if (pool == NULL || pred == NULL) {
        hs_pool_free(pool);
        free(pred);
        return hs_fail(err, HS_ERR_NOMEM, "cannot start %d worker threads", threads);
    }
    for (int t = 0; st == HS_OK && t < threads; t++)
        st = hs_predictor_create(&pred[t], model, CHUNK, opt->tta, 1, err);
    for (int i = 0; st == HS_OK && i < out->n_results; i++) {
        hs_series_result *res = &out->result[i];
        const hs_series *series = &out->study.series[res->series_index];
        res->slice = calloc((size_t)(series->n_slices > 0 ? series->n_slices : 1), sizeof *res->slice);
        if (res->slice == NULL) {
            st = hs_fail(err, HS_ERR_NOMEM, "out of memory for the slices of series %s", series->series_uid);
            break;
        }
        if (opt->review_thumb_px > 0) {
            /* zeroed: a slice that fails to decode shows as black */
            res->thumb_px = opt->review_thumb_px;
            res->thumb = calloc((size_t)(series->n_slices > 0 ? series->n_slices : 1),
                                (size_t)res->thumb_px * (size_t)res->thumb_px);
            if (res->thumb == NULL) {
                st = hs_fail(err, HS_ERR_NOMEM, "out of memory for the thumbnails of series %s",
                             series->series_uid);
                break;
            }
        }
        st = score_series(series, model, pool, pred, res, err);
        if (st != HS_OK)
            break;
        float *prob = malloc((size_t)(series->n_slices > 0 ? series->n_slices : 1) * sizeof *prob);
        if (prob == NULL) {
            st = hs_fail(err, HS_ERR_NOMEM, "out of memory for the slices of series %s", series->series_uid);
            break;
        }
        for (int k = 0; k < series->n_slices; k++)
            prob[k] = res->slice[k].probability;
        double extent = 0.0;
        if (series->sort_method == HS_SORT_POSITION && series->n_slices > 1)
            extent = series->slices[series->n_slices - 1].position_along_normal -
                     series->slices[0].position_along_normal;
        hs_verdict_input in = {prob, series->n_slices, extent, series->missing_slices};
        st = hs_verdict_from_slices(&in, model->threshold, &res->verdict, err);
        free(prob);
    }
    for (int t = 0; t < threads; t++)
        hs_predictor_free(pred[t]);
    free(pred);
    hs_pool_free(pool);
    if (st != HS_OK)
        return st;
    decide(out, model->threshold);
    out->finished = hs_clock_now();
    return HS_OK;
}

hs_status hs_study_read(const char *dir, const hs_model *model, const hs_study_options *opt,
                        hs_study_reading *out, hs_error *err)
{
    hs_status st = begin_reading(dir, model, opt, out, err);
    if (st == HS_OK)
        st = hs_study_scan(dir, opt->threads, &out->study, err);
    return st == HS_OK ? read_scanned(model, opt, out, err) : st;
}

hs_status hs_study_read_files(const char *label, char *const *paths, int n, const hs_model *model,
                              const hs_study_options *opt, hs_study_reading *out, hs_error *err)
{
    hs_status st = begin_reading(label, model, opt, out, err);
    if (st == HS_OK)
        st = hs_study_scan_files(label, paths, n, opt->threads, &out->study, err);
    return st == HS_OK ? read_scanned(model, opt, out, err) : st;
}

hs_status hs_study_read_scanned(const char *label, hs_study *study, const hs_model *model,
                                const hs_study_options *opt, hs_study_reading *out, hs_error *err)
{
    hs_status st = begin_reading(label, model, opt, out, err);
    if (study == NULL && st == HS_OK)
        st = hs_fail(err, HS_ERR_ARG, "hs_study_read_scanned: no scanned study given");
    if (st != HS_OK) {
        hs_study_free(study);
        return st;
    }
    out->study = *study; /* taken over: the caller's copy is emptied */
    memset(study, 0, sizeof *study);
    return read_scanned(model, opt, out, err);
}

void hs_study_reading_free(hs_study_reading *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < r->n_results; i++) {
        free(r->result[i].slice);
        free(r->result[i].thumb);
    }
    free(r->result);
    hs_study_free(&r->study);
    memset(r, 0, sizeof *r);
    r->decisive = -1;
}
