/* test_review.c - CUnit tests of the review pictures: the score gradient
 * and Grad-CAM of the engine (cnn.c), the input geometry (image.c), the
 * review TIFF (review.c), its row in the audit database (audit.c) and the
 * step that does both (review_store.c), registered by
 * hs_register_review_tests().
 *
 * The engine is pinned where the answer is known: the gradient against
 * central finite differences, and Grad-CAM on a net small enough to work
 * out by hand. The pictures are pinned the way a reader meets them: the
 * TIFF is read back with libtiff (pages, sizes, RGB, tags), and on a
 * generated study with a bleed at a known place the heatmap's peak must lie
 * on the bleed, not on the skull. Studies are 128 x 128 x 16 slices with
 * TTA off, so the suite stays quick under valgrind. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <tiffio.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "hemoscan/audit.h"
#include "hemoscan/checksum.h"
#include "hemoscan/cnn.h"
#include "hemoscan/dicom.h"
#include "hemoscan/image.h"
#include "hemoscan/model.h"
#include "hemoscan/review.h"
#include "hemoscan/review_store.h"
#include "hemoscan/study.h"
#include "test_util.h"

int hs_register_review_tests(void);

static char tmp_dir[4096];
static hs_model model;
static int have_model;

static int suite_init(void)
{
    have_model = hs_test_load_default_model(&model, "review");
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "review");
}

static int suite_clean(void)
{
    if (have_model)
        hs_model_free(&model);
    return hs_test_tmpdir_remove(tmp_dir);
}

/* ---- engine ------------------------------------------------------------------ */

/* The score's gradient at the output of layer 0 against central finite
 * differences. Layer 0 is a 1x1 convolution with weight 1 and bias 0 and
 * no ReLU, so its output is the input itself and a difference on the input
 * is a difference on that output; every layer after it (convolution with
 * ReLU, pooling, dense with ReLU, dropout, dense) is on the path. */
static void test_score_gradient_finite_differences(void)
{
    hs_error err = {0};
    const hs_layer_spec specs[] = {
        {.kind = HS_LAYER_CONV, .units = 1, .kernel = 1},
        {.kind = HS_LAYER_CONV, .units = 4, .kernel = 3, .relu = 1},
        {.kind = HS_LAYER_MAXPOOL},
        {.kind = HS_LAYER_FLATTEN},
        {.kind = HS_LAYER_DENSE, .units = 6, .relu = 1},
        {.kind = HS_LAYER_DROPOUT, .rate = 0.5f},
        {.kind = HS_LAYER_DENSE, .units = 1},
        {.kind = HS_LAYER_SIGMOID},
    };
    hs_net net;
    CU_ASSERT_EQUAL_FATAL(hs_net_create(&net, (hs_shape){8, 8, 1}, specs, 8, &err), HS_OK);
    hs_rng rng;
    hs_rng_seed(&rng, 11);
    hs_net_init(&net, &rng);
    net.params[net.layers[0].w_off] = 1.0f;
    net.params[net.layers[0].b_off] = 0.0f;
    for (size_t i = 0; i < net.layers[1].b_len; i++)
        net.params[net.layers[1].b_off + i] = 0.05f; /* fewer dead units */
    float x[64], grad[64], g2[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)hs_rng_uniform(&rng);
    hs_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(hs_ws_create(&ws, &net, 2, 1, 2, &err), HS_OK);
    float logit = 0.0f;
    CU_ASSERT_EQUAL_FATAL(hs_score_gradient(&net, ws, 0, 0, x, grad, &logit, &err), HS_OK);
    int checked = 0, nonzero = 0;
    for (int i = 0; i < 64; i++) {
        const float h = 2e-3f;
        float keep = x[i], up = 0.0f, down = 0.0f;
        x[i] = keep + h;
        CU_ASSERT_EQUAL(hs_score_gradient(&net, ws, 0, 0, x, g2, &up, &err), HS_OK);
        x[i] = keep - h;
        CU_ASSERT_EQUAL(hs_score_gradient(&net, ws, 0, 0, x, g2, &down, &err), HS_OK);
        x[i] = keep;
        /* A step across a ReLU or pooling kink makes the two one-sided
         * differences disagree; such points say nothing about the
         * gradient and are left out (they are few). */
        double right = ((double)up - logit) / h, left = ((double)logit - down) / h;
        if (fabs(right - left) > 1e-2 + 0.05 * fabs(right + left))
            continue;
        double fd = ((double)up - down) / (2.0 * h);
        CU_ASSERT_DOUBLE_EQUAL(grad[i], fd, 1e-3 + 1e-2 * fabs(fd));
        checked++;
        nonzero += fabs(fd) > 1e-4;
    }
    CU_ASSERT(checked >= 48);
    CU_ASSERT(nonzero > 16); /* the check was not trivially about zeros */
    /* dropout is off: the same input gives the same logit */
    float again = 0.0f;
    CU_ASSERT_EQUAL(hs_score_gradient(&net, ws, 0, 0, x, g2, &again, &err), HS_OK);
    CU_ASSERT_EQUAL(again, logit);
    /* arguments */
    CU_ASSERT_EQUAL(hs_score_gradient(&net, ws, 7, 0, x, g2, NULL, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_score_gradient(&net, ws, 0, 1, x, g2, NULL, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_gradcam(&net, ws, 2, x, g2, NULL, &err), HS_ERR_ARG); /* a pooling layer */
    CU_ASSERT_EQUAL(hs_net_last_conv(&net), 1);
    hs_ws_free(ws);
    hs_ws *infer = NULL;
    CU_ASSERT_EQUAL_FATAL(hs_ws_create(&infer, &net, 1, 0, 1, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_score_gradient(&net, infer, 0, 0, x, g2, NULL, &err), HS_ERR_ARG);
    hs_ws_free(infer);
    hs_net_free(&net);
}

/* Grad-CAM worked out by hand: a 3x3 convolution with ReLU (2 channels)
 * on a 4x4 input gives a 2x2x2 map A, flattened into one dense unit, so
 * dS/dA is the dense weights, w_c their mean over the 4 pixels, and the
 * map ReLU(sum_c w_c A_c). */
static void test_gradcam_by_hand(void)
{
    hs_error err = {0};
    const hs_layer_spec specs[] = {
        {.kind = HS_LAYER_CONV, .units = 2, .kernel = 3, .relu = 1},
        {.kind = HS_LAYER_FLATTEN},
        {.kind = HS_LAYER_DENSE, .units = 1},
        {.kind = HS_LAYER_SIGMOID},
    };
    hs_net net;
    CU_ASSERT_EQUAL_FATAL(hs_net_create(&net, (hs_shape){4, 4, 1}, specs, 4, &err), HS_OK);
    hs_rng rng;
    hs_rng_seed(&rng, 3);
    hs_net_init(&net, &rng);
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)hs_rng_uniform(&rng);
    const float *cw = net.params + net.layers[0].w_off; /* [dy][dx][c_in=1][unit] */
    const float *cb = net.params + net.layers[0].b_off;
    const float *dw = net.params + net.layers[2].w_off; /* [(y*2+x)*2+c] */
    double a[2][2][2], w[2] = {0, 0};
    for (int y = 0; y < 2; y++)
        for (int xx = 0; xx < 2; xx++)
            for (int c = 0; c < 2; c++) {
                double v = cb[c];
                for (int dy = 0; dy < 3; dy++)
                    for (int dx = 0; dx < 3; dx++)
                        v += cw[(dy * 3 + dx) * 2 + c] * x[(y + dy) * 4 + xx + dx];
                a[y][xx][c] = v > 0 ? v : 0;
                w[c] += dw[(y * 2 + xx) * 2 + c] / 4.0;
            }
    hs_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(hs_ws_create(&ws, &net, 1, 1, 1, &err), HS_OK);
    float map[4];
    CU_ASSERT_EQUAL_FATAL(hs_gradcam(&net, ws, -1, x, map, NULL, &err), HS_OK);
    for (int p = 0; p < 4; p++) {
        double v = w[0] * a[p / 2][p % 2][0] + w[1] * a[p / 2][p % 2][1];
        CU_ASSERT_DOUBLE_EQUAL(map[p], v > 0 ? v : 0, 1e-5);
    }
    hs_ws_free(ws);
    hs_net_free(&net);
}

/* The geometry maps input and picture coordinates as the crop and fit
 * placed them: a bright square's corners land where they are. */
static void test_input_geometry(void)
{
    hs_error err = {0};
    hs_image pic = {0};
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&pic, 200, 100, 1, &err), HS_OK);
    for (int y = 20; y < 80; y++)
        for (int x = 50; x < 170; x++)
            pic.px[y * 200 + x] = 0.5f;
    hs_input_recipe r;
    hs_input_recipe_default(&r);
    for (int c = 0; c < 3; c++)
        snprintf(r.channel[c].name, sizeof r.channel[c].name, "gray");
    float *in = malloc(sizeof(float) * 150 * 150 * 3);
    hs_input_geometry g;
    CU_ASSERT_EQUAL_FATAL(hs_prepare_input_geometry(&pic, &r, in, &g, &err), HS_OK);
    CU_ASSERT_EQUAL(g.crop_x, 50);
    CU_ASSERT_EQUAL(g.crop_y, 20);
    CU_ASSERT_EQUAL(g.crop_w, 120);
    CU_ASSERT_EQUAL(g.crop_h, 60);
    CU_ASSERT_EQUAL(g.content_w, 150);
    CU_ASSERT_EQUAL(g.content_h, 75);
    CU_ASSERT_EQUAL(g.content_y, 37);
    double px, py, ix, iy;
    hs_picture_to_input(&g, 50 - 0.5, 20 - 0.5, &ix, &iy); /* the box's top-left edge */
    CU_ASSERT_DOUBLE_EQUAL(ix, -0.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(iy, 37 - 0.5, 1e-9);
    hs_input_to_picture(&g, ix, iy, &px, &py);
    CU_ASSERT_DOUBLE_EQUAL(px, 49.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(py, 19.5, 1e-9);
    /* content is there, padding is 0 */
    CU_ASSERT(in[(75 * 150 + 75) * 3] > 0.4f);
    CU_ASSERT_EQUAL(in[(10 * 150 + 75) * 3], 0.0f);
    free(in);
    hs_image_free(&pic);
}

/* ---- a generated study with a bleed ------------------------------------------------ */

static int gen_study(const char *name, const char *opts, char *dir, size_t cap)
{
    return hs_test_generate_study(tmp_dir, name, opts, dir, cap);
}

static int read_study(const char *dir, hs_study_reading *r)
{
    hs_study_options opt;
    hs_study_options_default(&opt);
    opt.tta = 0;
    opt.review_thumb_px = HS_REVIEW_THUMB_PX;
    hs_error err = {0};
    hs_status st = hs_study_read(dir, &model, &opt, r, &err);
    CU_ASSERT_EQUAL(st, HS_OK);
    if (st != HS_OK)
        printf("\n  %s\n", err.msg);
    return st == HS_OK ? 0 : -1;
}

/* Distance in mm from the heat peak of slice k to the bleed placed at
 * (25, -15) mm from the head centre (hs-gen-ct: x to the patient's left,
 * y posterior; axial rows along +y, columns along +x), and the HU there. */
static double peak_to_bleed_mm(const hs_series *se, int k, int layer, float *hu_at_peak)
{
    const hs_dicom_header *h = &se->slices[k].header;
    size_t n = (size_t)h->rows * (size_t)h->columns;
    float *hu = malloc(n * sizeof *hu), *heat = malloc(n * sizeof *heat);
    hs_error err = {0};
    double d = 1e9;
    hs_saliency *s = NULL;
    if (hu != NULL && heat != NULL && hs_dicom_read_hu(h->path, h, hu, &err) == HS_OK &&
        hs_saliency_create(&s, &model, layer, 1, &err) == HS_OK &&
        hs_saliency_slice(s, hu, h->columns, h->rows, heat, NULL, &err) == HS_OK) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            best = heat[i] > heat[best] ? i : best;
        double col = (double)(best % (size_t)h->columns), row = (double)(best / (size_t)h->columns);
        double x_mm = h->position[0] + col * h->pixel_spacing[1];
        double y_mm = h->position[1] + row * h->pixel_spacing[0];
        d = hypot(x_mm - 25.0, y_mm - -15.0);
        *hu_at_peak = hu[best];
    } else {
        printf("\n  %s\n", err.msg);
    }
    hs_saliency_free(s);
    free(hu);
    free(heat);
    return d;
}

static void test_heatmap_on_bleed(void)
{
    if (!have_model)
        return;
    char dir[4200];
    if (gen_study("bleed", "--seed 5 --bleed iph:25,-15,10,30", dir, sizeof dir) != 0)
        return;
    hs_study_reading r;
    if (read_study(dir, &r) == 0 && r.verdict.key_slice >= 0) {
        const hs_series *se = &r.study.series[r.result[r.decisive].series_index];
        float hu_last = 0.0f, hu_fine = 0.0f;
        double last = peak_to_bleed_mm(se, r.verdict.key_slice, -1, &hu_last);
        double fine = peak_to_bleed_mm(se, r.verdict.key_slice, 6, &hu_fine);
        printf("\n  heat peak to bleed centre: last conv %.1f mm (HU %.0f), layer 6 %.1f mm (HU %.0f)\n",
               last, (double)hu_last, fine, (double)hu_fine);
        /* within the 30 mm bleed (radius 15) or a small margin, and on
         * soft tissue (brain, blood), not on the skull: a property of the
         * whole default ensemble's mean map, so not asserted in a quick
         * run, which keeps one member (one member's map can lie off it) */
        if (!hs_test_quick()) {
            CU_ASSERT(last < 15.0 + 8.0);
            CU_ASSERT(hu_last > -50.0f && hu_last < 150.0f);
            CU_ASSERT(fine < 15.0 + 8.0);
            CU_ASSERT(hu_fine > -50.0f && hu_fine < 150.0f);
        }
    }
    hs_study_reading_free(&r);
}

/* ---- the TIFF -------------------------------------------------------------------------- */

static void test_review_tiff(void)
{
    if (!have_model)
        return;
    char dir[4200], out[4200];
    if (gen_study("tiff", "--seed 5 --bleed iph:25,-15,10,30", dir, sizeof dir) != 0)
        return;
    hs_test_path(out, sizeof out, tmp_dir, "review-out");
    CU_ASSERT_EQUAL_FATAL(mkdir(out, 0700), 0);
    hs_study_reading r;
    if (read_study(dir, &r) != 0) {
        hs_study_reading_free(&r);
        return;
    }
    hs_review_options opt;
    hs_review_options_default(&opt);
    opt.max_pages = 4;
    hs_review_file f, f2;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_review_write(&r, &model, out, &opt, &f, &err), HS_OK);
    CU_ASSERT_EQUAL(f.slice_pages, 4);
    CU_ASSERT_EQUAL(f.pages, 5);
    CU_ASSERT_EQUAL(f.slice[0], r.verdict.key_slice);
    CU_ASSERT_EQUAL(strlen(f.sha256), 64);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.path, r.study.study_uid));
    CU_ASSERT(f.bytes > 1000);
    CU_ASSERT_EQUAL(hs_test_has_temp_files(out), 0);
    /* the same reading again: a second file, the first untouched */
    CU_ASSERT_EQUAL_FATAL(hs_review_write(&r, &model, out, &opt, &f2, &err), HS_OK);
    CU_ASSERT_STRING_NOT_EQUAL(f.path, f2.path);
    char sha[65];
    CU_ASSERT_EQUAL(hs_sha256_file(f.path, sha, &err), HS_OK);
    CU_ASSERT_STRING_EQUAL(sha, f.sha256);

    TIFF *t = TIFFOpen(f.path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(TIFFNumberOfDirectories(t), 5);
    const hs_series *se = &r.study.series[r.result[r.decisive].series_index];
    int page = 0;
    do {
        uint32_t w = 0, h = 0;
        uint16_t spp = 0, bps = 0, photo = 0, pnum = 0, ptotal = 0;
        char *name = NULL, *desc = NULL;
        CU_ASSERT(TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_SAMPLESPERPIXEL, &spp));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_BITSPERSAMPLE, &bps));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photo));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_PAGENUMBER, &pnum, &ptotal));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_PAGENAME, &name));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_IMAGEDESCRIPTION, &desc));
        /* slice pages RGB, the contact sheet on a colour map */
        CU_ASSERT_EQUAL(spp, page < 4 ? 3 : 1);
        CU_ASSERT_EQUAL(bps, 8);
        CU_ASSERT_EQUAL(photo, page < 4 ? PHOTOMETRIC_RGB : PHOTOMETRIC_PALETTE);
        CU_ASSERT_EQUAL(pnum, page);
        CU_ASSERT_EQUAL(ptotal, 5);
        CU_ASSERT_PTR_NOT_NULL_FATAL(name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(desc);
        CU_ASSERT_PTR_NOT_NULL(strstr(desc, "decision support, not a diagnosis"));
        char sha_text[40];
        snprintf(sha_text, sizeof sha_text, "model sha256 %.16s", model.sha256);
        CU_ASSERT_PTR_NOT_NULL(strstr(desc, sha_text));
        if (page < 4) {
            char want[64];
            snprintf(want, sizeof want, "slice %d of 16", f.slice[page] + 1);
            CU_ASSERT_STRING_EQUAL(name, want);
            CU_ASSERT_EQUAL(w, 128);
            CU_ASSERT_EQUAL(h, 128);
            char prob[64];
            snprintf(prob, sizeof prob, "probability %.3f", (double)r.result[r.decisive].slice[f.slice[page]].probability);
            CU_ASSERT_PTR_NOT_NULL(strstr(desc, prob));
            CU_ASSERT_PTR_NOT_NULL(strstr(desc, "mm along the normal"));
            CU_ASSERT_PTR_NOT_NULL(strstr(desc, se->slices[f.slice[page]].header.path));
            if (page == 0)
                CU_ASSERT_PTR_NOT_NULL(strstr(desc, "key slice"));
            /* the pixels decode: colour somewhere (the heatmap), gray elsewhere */
            uint32_t *px = malloc((size_t)w * h * sizeof *px);
            CU_ASSERT_FATAL(px != NULL);
            CU_ASSERT(TIFFReadRGBAImageOriented(t, w, h, px, ORIENTATION_TOPLEFT, 0));
            int coloured = 0;
            for (size_t i = 0; i < (size_t)w * h; i++)
                coloured += TIFFGetR(px[i]) != TIFFGetG(px[i]) || TIFFGetG(px[i]) != TIFFGetB(px[i]);
            if (page == 0)
                CU_ASSERT(coloured > 100);
            free(px);
        } else {
            CU_ASSERT_STRING_EQUAL(name, "contact sheet");
            CU_ASSERT_PTR_NOT_NULL(strstr(desc, "16 slices"));
            CU_ASSERT(w >= 4 * HS_REVIEW_THUMB_PX && h >= 4 * HS_REVIEW_THUMB_PX);
            /* it decodes to gray thumbnails and the key slice's yellow
             * frame (253, 231, 37) */
            uint32_t *px = malloc((size_t)w * h * sizeof *px);
            CU_ASSERT_FATAL(px != NULL);
            CU_ASSERT(TIFFReadRGBAImageOriented(t, w, h, px, ORIENTATION_TOPLEFT, 0));
            size_t yellow = 0, mid_gray = 0;
            for (size_t i = 0; i < (size_t)w * h; i++) {
                unsigned r8 = TIFFGetR(px[i]), g8 = TIFFGetG(px[i]), b8 = TIFFGetB(px[i]);
                yellow += r8 == 253 && g8 == 231 && b8 == 37;
                mid_gray += r8 == g8 && g8 == b8 && r8 > 40 && r8 < 215;
            }
            CU_ASSERT(yellow >= 4 * 4 * HS_REVIEW_THUMB_PX); /* a frame 4 pixels thick */
            CU_ASSERT(mid_gray > 16 * HS_REVIEW_THUMB_PX * HS_REVIEW_THUMB_PX / 10);
            free(px);
        }
        page++;
    } while (TIFFReadDirectory(t));
    CU_ASSERT_EQUAL(page, 5);
    TIFFClose(t);

    /* An unwritable folder: a clear error naming it, nothing left behind. */
    char bad[4300];
    snprintf(bad, sizeof bad, "%s/no-such-folder/deeper", out);
    hs_review_file f3;
    CU_ASSERT_EQUAL(hs_review_write(&r, &model, bad, &opt, &f3, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, bad));
    CU_ASSERT_STRING_EQUAL(f3.path, "");

    /* The database links the file to the verdict. */
    char db_path[4300];
    snprintf(db_path, sizeof db_path, "%s/audit.db", tmp_dir);
    hs_audit *a = NULL;
    CU_ASSERT_EQUAL_FATAL(hs_audit_open(db_path, &a, &err), HS_OK);
    hs_audit_run run = {"study", "test", "default.hsm", model.sha256, "test"};
    long long run_id = 0, verdict_id = 0;
    CU_ASSERT_EQUAL(hs_audit_run_begin(a, &run, &run_id, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_record_study(a, run_id, &r, &model, &verdict_id, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_record_review(a, verdict_id, f.path, f.sha256, f.pages, f.slice_pages, f.bytes,
                                           "grad-cam layer 8 (5x5)", NULL, &err),
                    HS_OK);
    /* the same file twice is refused */
    CU_ASSERT_EQUAL(hs_audit_record_review(a, verdict_id, f.path, f.sha256, f.pages, f.slice_pages, f.bytes,
                                           "grad-cam layer 8 (5x5)", NULL, &err),
                    HS_ERR_ARG);
    /* an unknown verdict is refused */
    CU_ASSERT_NOT_EQUAL(hs_audit_record_review(a, verdict_id + 100, f2.path, f2.sha256, f2.pages,
                                               f2.slice_pages, f2.bytes, "x", NULL, &err),
                        HS_OK);
    /* with the Secondary Capture: its file and UIDs in the same row */
    opt.secondary_capture = 1;
    hs_review_file f4;
    CU_ASSERT_EQUAL_FATAL(hs_review_write(&r, &model, out, &opt, &f4, &err), HS_OK);
    size_t tif_len = strlen(f4.path);
    CU_ASSERT_EQUAL_FATAL(strlen(f4.dicom_path), tif_len);
    CU_ASSERT_EQUAL(strncmp(f4.dicom_path, f4.path, tif_len - 4), 0);
    CU_ASSERT_STRING_EQUAL(f4.dicom_path + tif_len - 4, ".dcm");
    CU_ASSERT_EQUAL(hs_sha256_file(f4.dicom_path, sha, &err), HS_OK);
    CU_ASSERT_STRING_EQUAL(sha, f4.dicom_sha256);
    CU_ASSERT(f4.dicom_bytes > 128 * 128 * 3);
    CU_ASSERT_STRING_EQUAL(f4.dicom_study_uid, r.study.study_uid);
    CU_ASSERT_STRING_NOT_EQUAL(f4.dicom_series_uid, se->series_uid);
    CU_ASSERT(strlen(f4.dicom_sop_uid) > 10);
    CU_ASSERT_EQUAL(hs_test_has_temp_files(out), 0);
    hs_audit_review_dicom dicom = {f4.dicom_path, f4.dicom_sha256, f4.dicom_bytes, f4.dicom_study_uid,
                                   f4.dicom_series_uid, f4.dicom_sop_uid};
    CU_ASSERT_EQUAL(hs_audit_record_review(a, verdict_id, f4.path, f4.sha256, f4.pages, f4.slice_pages, f4.bytes,
                                           "grad-cam layer 8 (5x5)", &dicom, &err),
                    HS_OK);
    hs_audit_close(a);
    sqlite3 *db = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db,
                                             "SELECT f.path, f.sha256, f.pages, s.slice_index, v.verdict,"
                                             " f.dicom_path, f.dicom_sop_uid, f.dicom_series_uid, f.dicom_study_uid,"
                                             " f.dicom_sha256, f.dicom_bytes"
                                             " FROM review_files AS f JOIN verdicts AS v USING (verdict_id)"
                                             " JOIN slices AS s ON s.slice_id = f.key_slice_id"
                                             " ORDER BY f.review_file_id",
                                             -1, &q, NULL),
                          SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_step(q), SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(q, 0), f.path);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(q, 1), f.sha256);
    CU_ASSERT_EQUAL(sqlite3_column_int(q, 2), 5);
    CU_ASSERT_EQUAL(sqlite3_column_int(q, 3), r.verdict.key_slice);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(q, 4), "hemorrhage");
    for (int c = 5; c <= 10; c++)
        CU_ASSERT_EQUAL(sqlite3_column_type(q, c), SQLITE_NULL);
    CU_ASSERT_EQUAL(sqlite3_step(q), SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(q, 0), f4.path);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(q, 5), f4.dicom_path);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(q, 6), f4.dicom_sop_uid);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(q, 7), f4.dicom_series_uid);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(q, 8), r.study.study_uid);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(q, 9), f4.dicom_sha256);
    CU_ASSERT_EQUAL(sqlite3_column_int64(q, 10), f4.dicom_bytes);
    CU_ASSERT_EQUAL(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    sqlite3_close(db);
    hs_study_reading_free(&r);
}

/* hs_review_store, the step --study and --watch share: the folder made
 * for the owner only, the file written, its row naming the Grad-CAM layer
 * of the pictures; no database, no row; no decisive series, no file. */
static void test_review_store(void)
{
    if (!have_model)
        return;
    char dir[4200], out[4300], db_path[4300];
    if (gen_study("store", "--seed 6 --slices 6 --bleed iph:25,-15,10,30", dir, sizeof dir) != 0)
        return;
    hs_study_reading r;
    if (read_study(dir, &r) != 0) {
        hs_study_reading_free(&r);
        return;
    }
    snprintf(out, sizeof out, "%s/store-out/nested", tmp_dir);
    snprintf(db_path, sizeof db_path, "%s/store.db", tmp_dir);
    hs_error err = {0};
    hs_audit *a = NULL;
    CU_ASSERT_EQUAL_FATAL(hs_audit_open(db_path, &a, &err), HS_OK);
    hs_audit_run run = {"study", "test", "default.hsm", model.sha256, "test"};
    long long run_id = 0, verdict_id = 0;
    CU_ASSERT_EQUAL(hs_audit_run_begin(a, &run, &run_id, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_record_study(a, run_id, &r, &model, &verdict_id, &err), HS_OK);
    hs_review_options opt;
    hs_review_options_default(&opt);
    opt.max_pages = 2;
    hs_review_file f, g;
    CU_ASSERT_EQUAL_FATAL(hs_review_store(a, verdict_id, &r, &model, out, &opt, &f, &err), HS_OK);
    struct stat sb;
    CU_ASSERT_EQUAL_FATAL(stat(out, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0700);
    CU_ASSERT_EQUAL(stat(f.path, &sb), 0);
    CU_ASSERT_EQUAL(f.slice_pages, 2);
    /* without a database: the file, no row */
    CU_ASSERT_EQUAL(hs_review_store(NULL, verdict_id, &r, &model, out, &opt, &g, &err), HS_OK);
    CU_ASSERT_EQUAL(stat(g.path, &sb), 0);
    CU_ASSERT_STRING_NOT_EQUAL(f.path, g.path);
    /* an unwritable place: the error names it */
    char bad[4400];
    snprintf(bad, sizeof bad, "%s/sub", f.path); /* below a file */
    CU_ASSERT_NOT_EQUAL(hs_review_store(a, verdict_id, &r, &model, bad, &opt, &g, &err), HS_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, f.path));
    CU_ASSERT_STRING_EQUAL(g.path, "");
    hs_audit_close(a);

    const hs_net *net = &model.member[0];
    int layer = hs_net_last_conv(net);
    char want[4500];
    snprintf(want, sizeof want, "%s|grad-cam layer %d (%dx%d)", f.path, layer, net->layers[layer].out.h,
             net->layers[layer].out.w);
    sqlite3 *db = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db,
                                             "SELECT group_concat(path || '|' || saliency, ';') FROM review_files",
                                             -1, &q, NULL),
                          SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_step(q), SQLITE_ROW);
    const char *got = (const char *)sqlite3_column_text(q, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, want);
    sqlite3_finalize(q);
    sqlite3_close(db);
    hs_study_reading_free(&r);
}

/* A version 2 database (frames, no review files) gets review_files on
 * opening, keeping its rows. */
static void test_upgrade_from_v2(void)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/v2.db", tmp_dir);
    CU_ASSERT_EQUAL_FATAL(hs_test_audit_db_at_version(path, 2), 0);
    sqlite3 *db = NULL;
    hs_audit *a = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_audit_open(path, &a, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_schema_version(a), HS_AUDIT_SCHEMA_VERSION);
    hs_audit_close(a);
    CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db,
                                             "SELECT (SELECT count(*) FROM review_files),"
                                             " (SELECT count(*) FROM slices),"
                                             " (SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                             "  AND tbl_name = 'review_files')",
                                             -1, &q, NULL),
                          SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_step(q), SQLITE_ROW);
    CU_ASSERT_EQUAL(sqlite3_column_int(q, 0), 0);
    CU_ASSERT_EQUAL(sqlite3_column_int(q, 1), 1);
    CU_ASSERT(sqlite3_column_int(q, 2) >= 2);
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* A version 4 database: its review rows keep their values and get NULL
 * Secondary Capture columns; a row naming part of a capture is refused. */
static void test_upgrade_from_v4(void)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/v4.db", tmp_dir);
    CU_ASSERT_EQUAL_FATAL(hs_test_audit_db_at_version(path, 4), 0);
    sqlite3 *db = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
    static const char sha[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO review_files (verdict_id, path, sha256, pages, slice_pages, bytes, saliency)"
             " VALUES (999, '/old/review.tif', '%s', 7, 6, 1000, 'grad-cam layer 8 (5x5)')",
             sha);
    CU_ASSERT_EQUAL_FATAL(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    hs_audit *a = NULL;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_audit_open(path, &a, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_audit_schema_version(a), HS_AUDIT_SCHEMA_VERSION);
    hs_audit_close(a);
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db,
                                             "SELECT path, pages, dicom_path IS NULL AND dicom_sop_uid IS NULL"
                                             " FROM review_files",
                                             -1, &q, NULL),
                          SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_step(q), SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(q, 0), "/old/review.tif");
    CU_ASSERT_EQUAL(sqlite3_column_int(q, 1), 7);
    CU_ASSERT_EQUAL(sqlite3_column_int(q, 2), 1);
    sqlite3_finalize(q);
    snprintf(sql, sizeof sql,
             "INSERT INTO review_files (verdict_id, path, sha256, pages, slice_pages, bytes, saliency, dicom_path)"
             " VALUES (999, '/old/review2.tif', '%s', 7, 6, 1000, 'x', '/old/review2.dcm')",
             sha);
    CU_ASSERT_NOT_EQUAL(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Temporary files of writers that died are removed; a live writer's file,
 * finished files and look-alikes stay. */
static void test_remove_stale(void)
{
    char dir[4200], path[4400];
    hs_test_path(dir, sizeof dir, tmp_dir, "stale");
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0)
        _exit(0);
    CU_ASSERT_EQUAL_FATAL(waitpid(child, NULL, 0), child); /* its pid now names no process */
    char dead[128], alive[128];
    snprintf(dead, sizeof dead, ".1.2.3_20261122T000000Z.tif.%ld.tmp", (long)child);
    snprintf(alive, sizeof alive, ".1.2.4_20261122T000000Z.tif.%ld.tmp", (long)getpid());
    const char *names[] = {dead, alive, "1.2.3_20261122T000000Z.tif", ".x.tif.12ab.tmp", ".x.tif.tmp"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fclose(f);
    }
    int removed = -1;
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_review_remove_stale(dir, &removed, &err), HS_OK);
    CU_ASSERT_EQUAL(removed, 1);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        CU_ASSERT_EQUAL(access(path, F_OK) == 0, i != 0);
    }
    snprintf(path, sizeof path, "%s/no-such-folder", dir);
    CU_ASSERT_EQUAL(hs_review_remove_stale(path, &removed, &err), HS_OK);
    CU_ASSERT_EQUAL(removed, 0);
}

int hs_register_review_tests(void)
{
    static const hs_test_case cases[] = {
        {"score gradient: finite differences through every layer kind", test_score_gradient_finite_differences},
        {"Grad-CAM: a net worked out by hand", test_gradcam_by_hand},
        {"input geometry: crop box and fit, both ways", test_input_geometry},
        {"heatmap peak on a synthetic bleed, not the skull", test_heatmap_on_bleed},
        {"review TIFF: pages, sizes, tags, database row, unwritable folder", test_review_tiff},
        {"review store: private folder, file, row naming the Grad-CAM layer", test_review_store},
        {"upgrade from version 2: review_files", test_upgrade_from_v2},
        {"upgrade from version 4: Secondary Capture columns, all or none", test_upgrade_from_v4},
        {"temporary files of dead writers removed, a live writer's kept", test_remove_stale},
    };
    return hs_test_add_suite("review", suite_init, suite_clean, cases, sizeof cases / sizeof cases[0]);
}
