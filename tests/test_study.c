/* test_study.c - CUnit tests of the render, verdict and study stages
 * (render.c, verdict.c, study.c), registered by hs_register_study_tests().
 *
 * The verdict rules are pinned on hand-made score sequences, one rule at a
 * time, so that the paragraph in hemoscan(1) stays true. Rendering is
 * pinned value for value. The promise that DICOM and PNG take the same
 * path is tested the way a user would check it: a PNG, and the very same
 * gray values wrapped as a DICOM CT slice whose rescale maps them onto the
 * model's window, must reach the same network input and the same score.
 * Whole studies come from testdata/gen/hs-gen-ct (small 128 x 128 series so
 * that the suite stays quick under valgrind) and are read with the default
 * model; without the generator or the model those tests say they are
 * skipped. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "dicom_fixture.h"
#include "hemoscan/dicom.h"
#include "hemoscan/image.h"
#include "hemoscan/model.h"
#include "hemoscan/predict.h"
#include "hemoscan/render.h"
#include "hemoscan/study.h"
#include "hemoscan/verdict.h"
#include "test_util.h"

int hs_register_study_tests(void);

static char tmp_dir[4096];
static hs_model model;
static int have_model;

static int suite_init(void)
{
    have_model = hs_test_load_default_model(&model, "study");
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "study");
}

static int suite_clean(void)
{
    if (have_model)
        hs_model_free(&model);
    return hs_test_tmpdir_remove(tmp_dir);
}

static int need_model(void)
{
    if (!have_model)
        printf("\n  skipped: the default model did not load (set HEMOSCAN_SRCDIR)\n");
    return have_model;
}

/* ---- render ----------------------------------------------------------------- */

static void test_window_values(void)
{
    const float hu[] = {-1000.0f, 0.0f, 20.0f, 40.0f, 60.0f, 80.0f, 3000.0f, NAN};
    float out[8];
    hs_window(hu, 8, 40.0f, 80.0f, out);
    const float want[] = {0.0f, 0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 1.0f, 0.0f};
    for (int i = 0; i < 8; i++)
        CU_ASSERT_DOUBLE_EQUAL(out[i], want[i], 1e-7);
}

static void test_render_gray_and_windows(void)
{
    hs_error err = {0};
    /* One pixel of each: air, brain (35), blood (70), bone (1000). */
    const float hu[4] = {-1000.0f, 35.0f, 70.0f, 1000.0f};
    hs_input_recipe windows;
    hs_input_recipe_default(&windows); /* brain 40/80, subdural 80/200, bone 600/2800 */
    hs_image pic = {0};
    CU_ASSERT_EQUAL_FATAL(hs_render_slice(hu, 2, 2, &windows, &pic, &err), HS_OK);
    CU_ASSERT_EQUAL(pic.channels, 3);
    for (int i = 0; i < 4; i++) {
        for (int c = 0; c < 3; c++) {
            float v;
            hs_window(&hu[i], 1, windows.channel[c].center_hu, windows.channel[c].width_hu, &v);
            CU_ASSERT_EQUAL(pic.px[i * 3 + c], v);
        }
    }
    /* blood is brighter than brain in the subdural window, not saturated */
    CU_ASSERT(pic.px[2 * 3 + 1] > pic.px[1 * 3 + 1] && pic.px[2 * 3 + 1] < 1.0f);
    hs_image_free(&pic);

    /* A gray recipe renders once, through channel 0's window. */
    hs_input_recipe gray = windows;
    for (int c = 0; c < 3; c++)
        snprintf(gray.channel[c].name, sizeof gray.channel[c].name, "gray");
    gray.channel[1].center_hu = 500.0f; /* ignored: channel 0 decides */
    CU_ASSERT(hs_recipe_is_gray(&gray));
    CU_ASSERT(!hs_recipe_is_gray(&windows));
    CU_ASSERT_EQUAL_FATAL(hs_render_slice(hu, 2, 2, &gray, &pic, &err), HS_OK);
    CU_ASSERT_EQUAL(pic.channels, 1);
    CU_ASSERT_DOUBLE_EQUAL(pic.px[1], 35.0 / 80.0, 1e-6);
    CU_ASSERT_EQUAL(pic.px[3], 1.0f);
    hs_image_free(&pic);

    gray.channel[0].width_hu = 0.0f;
    CU_ASSERT_EQUAL(hs_render_slice(hu, 2, 2, &gray, &pic, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NULL(pic.px);
}

enum { SLICE_W = 40, SLICE_H = 40 };

/* A SLICE_W x SLICE_H slice of air with a disc of radius 15 pixels at its
 * centre: core HU within radius 5, ring HU outside it. */
static void draw_head(float *hu, float core, float ring)
{
    for (int y = 0; y < SLICE_H; y++)
        for (int x = 0; x < SLICE_W; x++) {
            double dx = x - 19.5, dy = y - 19.5, r2 = dx * dx + dy * dy;
            hu[y * SLICE_W + x] = r2 < 5.0 * 5.0 ? core : r2 < 15.0 * 15.0 ? ring : -1000.0f;
        }
}

/* A recipe of distinct windows keeps one rendering per channel all the way
 * to the network input; a gray recipe replicates the gray. */
static void test_render_input_channels(void)
{
    hs_error err = {0};
    float hu[SLICE_W * SLICE_H];
    draw_head(hu, 70.0f, 70.0f); /* a disc of blood */
    hs_input_recipe r;
    hs_input_recipe_default(&r);
    r.width = r.height = 20;
    float *in = malloc(sizeof(float) * 20 * 20 * 3);
    CU_ASSERT_FATAL(in != NULL);
    CU_ASSERT_EQUAL_FATAL(hs_render_input(hu, SLICE_W, SLICE_H, &r, in, &err), HS_OK);
    /* centre pixel: each window's own value for blood (70 HU) */
    const float *centre = in + (10 * 20 + 10) * 3;
    CU_ASSERT_DOUBLE_EQUAL(centre[0], 70.0 / 80.0, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(centre[1], (70.0 - (80.0 - 100.0)) / 200.0, 1e-5);
    CU_ASSERT(centre[2] > 0.0f && centre[2] < centre[1]);
    /* the crop made the disc fill the input: a corner is background */
    CU_ASSERT_EQUAL(in[0], 0.0f);

    /* The same through a picture whose channel count does not match. */
    hs_image two = {0};
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&two, 4, 4, 2, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_prepare_input(&two, &r, in, &err), HS_ERR_ARG);
    hs_image_free(&two);
    free(in);
}

/* A recipe of re-windowed gray (the --train default): the slice is rendered
 * once, through channel 0's brain window, and each narrower window is cut
 * from that picture; inside the brain window that is the window taken on
 * the HU directly. */
static void test_render_gray_windows(void)
{
    hs_error err = {0};
    float hu[SLICE_W * SLICE_H];
    draw_head(hu, 30.0f, 70.0f); /* brain inside a ring of blood */
    hs_input_recipe r;
    CU_ASSERT_EQUAL_FATAL(hs_input_recipe_gray(&r, HS_GRAY_WINDOWS_DEFAULT, &err), HS_OK);
    r.width = r.height = 40;
    hs_image pic = {0};
    CU_ASSERT_EQUAL_FATAL(hs_render_slice(hu, SLICE_W, SLICE_H, &r, &pic, &err), HS_OK);
    CU_ASSERT_EQUAL(pic.channels, 1);
    hs_image_free(&pic);
    float *in = malloc(sizeof(float) * 40 * 40 * 3);
    CU_ASSERT_FATAL(in != NULL);
    CU_ASSERT_EQUAL_FATAL(hs_render_input(hu, SLICE_W, SLICE_H, &r, in, &err), HS_OK);
    /* the crop makes the 30-pixel head fill 40: the centre is brain, 13
     * pixels right of it (about 10 in the slice) is blood */
    const float *brain = in + (20 * 40 + 20) * 3, *blood = in + (20 * 40 + 33) * 3;
    for (int c = 0; c < 3; c++) {
        float want_brain, want_blood;
        hs_window(&hu[20 * SLICE_W + 20], 1, r.channel[c].center_hu, r.channel[c].width_hu, &want_brain);
        hs_window(&hu[20 * SLICE_W + 30], 1, r.channel[c].center_hu, r.channel[c].width_hu, &want_blood);
        CU_ASSERT_DOUBLE_EQUAL(brain[c], want_brain, 1e-5);
        CU_ASSERT_DOUBLE_EQUAL(blood[c], want_blood, 1e-5);
    }
    /* blood 60/40: brain black, blood mid-gray; low 20/40: brain mid-gray */
    CU_ASSERT_DOUBLE_EQUAL(brain[1], 0.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(blood[1], 0.75, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(brain[2], 0.75, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(blood[2], 1.0, 1e-6);
    /* padding and air stay black in every channel */
    for (int c = 0; c < 3; c++)
        CU_ASSERT_EQUAL(in[c], 0.0f);
    free(in);
}

/* ---- verdict ---------------------------------------------------------------- */

static hs_study_verdict verdict_of(const float *p, int n, double extent, int missing, double t)
{
    hs_verdict_input in = {p, n, extent, missing};
    hs_study_verdict v;
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_verdict_from_slices(&in, t, &v, &err), HS_OK);
    return v;
}

static void test_verdict_neighbour_rule(void)
{
    /* A lone high slice is not confirmed by a neighbour: no hemorrhage. */
    const float lone[8] = {0.1f, 0.95f, 0.1f, 0.1f, 0.2f, 0.3f, 0.1f, 0.1f};
    hs_study_verdict v = verdict_of(lone, 8, 0.0, 0, 0.5);
    CU_ASSERT_EQUAL(v.verdict, HS_VERDICT_NO_HEMORRHAGE);
    CU_ASSERT_DOUBLE_EQUAL(v.probability, 0.2, 1e-6);
    CU_ASSERT_EQUAL(v.key_slice, 5); /* 0.3, confirmed by 0.2 */
    CU_ASSERT_DOUBLE_EQUAL(v.confidence, (0.5 - 0.2) / 0.5, 1e-6);
    CU_ASSERT_STRING_EQUAL(v.confidence_label, "low"); /* a negative is never more */
    CU_ASSERT_EQUAL(v.n_scored, 8);
    CU_ASSERT_STRING_EQUAL(v.reason, "");

    /* Two adjacent high slices: hemorrhage at the lower of the pair, key
     * slice the higher one. */
    const float pair[8] = {0.1f, 0.1f, 0.2f, 0.7f, 0.8f, 0.1f, 0.1f, 0.1f};
    v = verdict_of(pair, 8, 0.0, 0, 0.5);
    CU_ASSERT_EQUAL(v.verdict, HS_VERDICT_HEMORRHAGE);
    CU_ASSERT_DOUBLE_EQUAL(v.probability, 0.7, 1e-6);
    CU_ASSERT_EQUAL(v.key_slice, 4);
    CU_ASSERT_DOUBLE_EQUAL(v.confidence, 0.4, 1e-6);
    CU_ASSERT_STRING_EQUAL(v.confidence_label, "moderate");

    /* Exactly at the threshold counts as hemorrhage. */
    const float at[6] = {0.5f, 0.5f, 0.1f, 0.1f, 0.1f, 0.1f};
    v = verdict_of(at, 6, 0.0, 0, 0.5);
    CU_ASSERT_EQUAL(v.verdict, HS_VERDICT_HEMORRHAGE);
    CU_ASSERT_STRING_EQUAL(v.confidence_label, "low");

    /* An unscored slice is nobody's neighbour. */
    const float gap[12] = {0.9f, NAN, 0.9f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f};
    v = verdict_of(gap, 12, 0.0, 0, 0.5);
    CU_ASSERT_EQUAL(v.verdict, HS_VERDICT_NO_HEMORRHAGE);
    CU_ASSERT_DOUBLE_EQUAL(v.probability, 0.1, 1e-6);
    CU_ASSERT_EQUAL(v.n_scored, 11);

    CU_ASSERT_STRING_EQUAL(hs_verdict_name(HS_VERDICT_HEMORRHAGE), "hemorrhage");
    CU_ASSERT_STRING_EQUAL(hs_verdict_name(HS_VERDICT_NO_HEMORRHAGE), "no_hemorrhage");
    CU_ASSERT_STRING_EQUAL(hs_verdict_name(HS_VERDICT_NOT_ASSESSABLE), "not_assessable");
}

/* The verdict in words (issue 20, case 7): a negative says what was
 * measured and that it does not rule out a bleed, never "confidence", and
 * its label is "low" however far below the threshold it lies. */
static void test_verdict_words(void)
{
    char text[512];
    const float far_below[8] = {0.01f, 0.01f, 0.01f, 0.01f, 0.01f, 0.01f, 0.01f, 0.01f};
    hs_study_verdict v = verdict_of(far_below, 8, 0.0, 0, 0.4);
    CU_ASSERT_EQUAL(v.verdict, HS_VERDICT_NO_HEMORRHAGE);
    CU_ASSERT(v.confidence > 0.9); /* the margin is still a margin */
    CU_ASSERT_STRING_EQUAL(v.confidence_label, "low");
    hs_verdict_describe(&v, text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "no hemorrhage found: study score 0.010, 0.390 below the threshold 0.400; "
                                 "a negative result does not rule out a bleed");
    CU_ASSERT_PTR_NULL(strstr(text, "confidence"));
    CU_ASSERT_PTR_NULL(strstr(text, "high"));
    CU_ASSERT_PTR_NULL(strstr(text, "moderate"));

    /* issue 20's subdural: 0.13 against 0.40 used to read "confidence moderate" */
    const float subdural[8] = {0.05f, 0.1f, 0.13f, 0.13f, 0.1f, 0.05f, 0.05f, 0.05f};
    v = verdict_of(subdural, 8, 0.0, 0, 0.4);
    CU_ASSERT_STRING_EQUAL(v.confidence_label, "low");
    hs_verdict_describe(&v, text, sizeof text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "study score 0.130, 0.270 below the threshold 0.400"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, HS_VERDICT_NEGATIVE_CAVEAT));

    const float bleed[8] = {0.1f, 0.1f, 0.9f, 0.95f, 0.1f, 0.1f, 0.1f, 0.1f};
    v = verdict_of(bleed, 8, 0.0, 0, 0.4);
    CU_ASSERT_EQUAL(v.verdict, HS_VERDICT_HEMORRHAGE);
    CU_ASSERT_STRING_EQUAL(v.confidence_label, "high"); /* a positive's margin keeps its label */
    hs_verdict_describe(&v, text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "HEMORRHAGE SUSPECTED: study score 0.900, 0.500 above the threshold 0.400");

    const float few[3] = {0.1f, 0.1f, 0.1f};
    v = verdict_of(few, 3, 0.0, 0, 0.4);
    hs_verdict_describe(&v, text, sizeof text);
    CU_ASSERT_EQUAL(strncmp(text, "NOT ASSESSABLE: only 3 slices", 29), 0);

    /* cut to the buffer, always terminated, the needed length returned */
    char small[8];
    v = verdict_of(far_below, 8, 0.0, 0, 0.4);
    CU_ASSERT(hs_verdict_describe(&v, small, sizeof small) > (int)sizeof small);
    CU_ASSERT_STRING_EQUAL(small, "no hemo");
}

static void expect_not_assessable(const float *p, int n, double extent, int missing, const char *why)
{
    hs_study_verdict v = verdict_of(p, n, extent, missing, 0.5);
    CU_ASSERT_EQUAL(v.verdict, HS_VERDICT_NOT_ASSESSABLE);
    CU_ASSERT(isnan(v.probability) && isnan(v.confidence));
    CU_ASSERT_EQUAL(v.key_slice, -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(v.reason, why));
    if (strstr(v.reason, why) == NULL)
        printf("\n  reason was: %s (expected %s)\n", v.reason, why);
}

static void test_verdict_not_assessable(void)
{
    float p[20];
    for (int i = 0; i < 20; i++)
        p[i] = 0.9f;
    expect_not_assessable(p, 0, 0.0, 0, "no slices");
    expect_not_assessable(p, 4, 0.0, 0, "only 4 slices");
    /* 2 of 12 unscored is more than 10% */
    p[3] = NAN;
    p[7] = NAN;
    expect_not_assessable(p, 12, 0.0, 0, "2 of 12 slices could not be scored");
    float none[3] = {NAN, NAN, NAN};
    expect_not_assessable(none, 3, 0.0, 0, "none of the 3");
    p[3] = p[7] = 0.9f;
    expect_not_assessable(p, 12, 55.0, 0, "covers 55 mm");
    expect_not_assessable(p, 12, 0.0, 2, "2 of 14 expected slices are missing");

    /* Just inside every limit: a verdict. */
    p[5] = NAN; /* 1 of 12 */
    hs_study_verdict v = verdict_of(p, 12, 60.0, 1, 0.5);
    CU_ASSERT_EQUAL(v.verdict, HS_VERDICT_HEMORRHAGE);

    hs_verdict_input in = {p, 12, 0.0, 0};
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_verdict_from_slices(&in, 1.0, &v, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_verdict_from_slices(&in, 0.0, &v, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_verdict_from_slices(NULL, 0.5, &v, &err), HS_ERR_ARG);
}

/* ---- PNG and DICOM give the same score --------------------------------------- */

/* Writes gray (1 channel, values k/255) as a DICOM CT slice whose rescale
 * maps k onto the model's first window (center c, width w): HU = c - w/2 +
 * k * w/255, so that window gives k/255 back. 0 on success. */
static int wrap_as_dicom(const hs_image *gray, const hs_channel_recipe *window, const char *path)
{
    size_t n = (size_t)gray->width * (size_t)gray->height;
    unsigned short *px = malloc(n * sizeof *px);
    if (px == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        px[i] = (unsigned short)lrintf(gray->px[i] * 255.0f);
    hs_test_dicom_slice s;
    hs_test_dicom_slice_default(&s, gray->height, gray->width, px);
    s.slope = window->width_hu / 255.0;
    s.intercept = window->center_hu - 0.5 * window->width_hu;
    int rc = hs_test_dicom_write(path, &s);
    free(px);
    return rc;
}

/* The score of one PNG file and of the same pixels as DICOM: inputs equal
 * to float rounding, scores equal to 1e-5. */
static void compare_png_and_dicom(const char *png_in, const char *name)
{
    hs_error err = {0};
    hs_image src = {0}, gray = {0}, png = {0};
    char png_path[4200], dcm_path[4200];
    snprintf(png_path, sizeof png_path, "%s/%s.png", tmp_dir, name);
    snprintf(dcm_path, sizeof dcm_path, "%s/%s.dcm", tmp_dir, name);
    /* An 8-bit gray PNG, as a site's exported slice would be. */
    CU_ASSERT_EQUAL_FATAL(hs_png_read(png_in, &src, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_image_to_gray(&src, &gray, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_png_write(png_path, &gray, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_png_read(png_path, &png, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(wrap_as_dicom(&png, &model.recipe.channel[0], dcm_path), 0);

    hs_dicom_header h;
    hs_dicom_verdict verdict;
    char reason[256];
    CU_ASSERT_EQUAL_FATAL(hs_dicom_read_header(dcm_path, &h, &verdict, reason, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(verdict, HS_DICOM_OK);
    float *hu = malloc(sizeof(float) * (size_t)h.rows * (size_t)h.columns);
    size_t per = (size_t)model.recipe.width * model.recipe.height * model.recipe.channels;
    float *a = malloc(per * sizeof *a), *b = malloc(per * sizeof *b);
    CU_ASSERT_FATAL(hu != NULL && a != NULL && b != NULL);
    CU_ASSERT_EQUAL_FATAL(hs_dicom_read_hu(dcm_path, &h, hu, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_prepare_input(&png, &model.recipe, a, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_render_input(hu, h.columns, h.rows, &model.recipe, b, &err), HS_OK);
    double worst = 0.0;
    for (size_t i = 0; i < per; i++)
        worst = fmax(worst, fabs((double)a[i] - (double)b[i]));
    CU_ASSERT(worst < 1e-5);

    hs_predictor *pred = NULL;
    CU_ASSERT_EQUAL_FATAL(hs_predictor_create(&pred, &model, 1, 1, 1, &err), HS_OK);
    float pa, pb;
    hs_predictor_run(pred, a, 1, &pa);
    hs_predictor_run(pred, b, 1, &pb);
    CU_ASSERT_DOUBLE_EQUAL(pa, pb, 1e-5);
    if (!(fabs(pa - pb) < 1e-5) || !(worst < 1e-5))
        printf("\n  %s: PNG %.6f, DICOM %.6f, largest input difference %g\n", name, pa, pb, worst);
    hs_predictor_free(pred);
    free(hu);
    free(a);
    free(b);
    hs_image_free(&src);
    hs_image_free(&gray);
    hs_image_free(&png);
}

static void test_png_equals_dicom(void)
{
    if (!need_model())
        return;
    /* Real head CT pictures (a hemorrhage and a normal one) when the shared
     * data is there; a drawn head always. */
    char real[2][4200];
    const char *ids[2] = {"000", "100"};
    int have_real = 0;
    for (int i = 0; i < 2; i++) {
        snprintf(real[i], sizeof real[i], "%s/head_ct/images/%s.png", hs_test_shared_data_dir(), ids[i]);
        if (access(real[i], R_OK) == 0) {
            compare_png_and_dicom(real[i], ids[i]);
            have_real++;
        }
    }
    if (have_real == 0)
        printf("\n  (no ../shared/data/head_ct: comparing on a drawn head only)\n");

    hs_error err = {0};
    hs_image drawn = {0};
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&drawn, 300, 240, 1, &err), HS_OK);
    for (int y = 0; y < 240; y++)
        for (int x = 0; x < 300; x++) {
            double dx = (x - 150) / 110.0, dy = (y - 120) / 95.0, r = dx * dx + dy * dy;
            float v = r < 0.8 ? 0.45f + 0.1f * (float)((x / 7 + y / 5) % 3) : r < 1.0 ? 1.0f : 0.0f;
            if ((x - 190) * (x - 190) + (y - 100) * (y - 100) < 150)
                v = 0.9f; /* a bright blob */
            drawn.px[y * 300 + x] = (float)lrint(v * 255.0) / 255.0f;
        }
    char drawn_path[4200];
    snprintf(drawn_path, sizeof drawn_path, "%s/drawn-source.png", tmp_dir);
    CU_ASSERT_EQUAL_FATAL(hs_png_write(drawn_path, &drawn, &err), HS_OK);
    compare_png_and_dicom(drawn_path, "drawn");
    hs_image_free(&drawn);
}

/* ---- whole studies --------------------------------------------------------------- */

static int gen_study(const char *name, const char *opts, char *dir, size_t cap)
{
    return hs_test_generate_study(tmp_dir, name, opts, dir, cap);
}

static int read_study(const char *dir, int all_series, hs_study_reading *r)
{
    hs_study_options opt;
    hs_study_options_default(&opt);
    opt.all_series = all_series;
    opt.tta = 0; /* half the inference: these tests run under valgrind too */
    hs_error err = {0};
    hs_status st = hs_study_read(dir, &model, &opt, r, &err);
    CU_ASSERT_EQUAL(st, HS_OK);
    if (st != HS_OK)
        printf("\n  %s\n", err.msg);
    return st == HS_OK ? 0 : -1;
}

/* A synthetic 30 mm intraparenchymal bleed on slices 7-12 is found, with
 * the key slice on it; the same head without it is not flagged and scores
 * clearly lower. 256 x 256: the default model learnt the generator's heads
 * at that size (scripts/generated-training-set.sh); at 128 a bleed-free
 * head already scores near its threshold. */
static void test_study_bleed_found(void)
{
    if (!need_model())
        return;
    char bleed[4200], clean[4200];
    if (gen_study("bleed", "--size 256 --seed 5 --bleed iph:25,-15,10,30", bleed, sizeof bleed) != 0 ||
        gen_study("clean", "--size 256 --seed 5", clean, sizeof clean) != 0)
        return;
    hs_study_reading a, b;
    if (read_study(bleed, 0, &a) == 0 && read_study(clean, 0, &b) == 0) {
        CU_ASSERT_EQUAL(a.n_results, 1);
        CU_ASSERT_EQUAL(a.decisive, 0);
        CU_ASSERT_EQUAL(a.verdict.verdict, HS_VERDICT_HEMORRHAGE);
        CU_ASSERT(a.verdict.probability >= model.threshold);
        CU_ASSERT(a.verdict.key_slice >= 6 && a.verdict.key_slice <= 11);
        CU_ASSERT_EQUAL(a.verdict.n_scored, 16);
        CU_ASSERT(b.verdict.verdict != HS_VERDICT_NOT_ASSESSABLE);
        /* The bleed-free head's verdict is the ensemble's: a quick run keeps
         * one network of five (hs_test_load_default_model), which flags it. */
        if (!hs_test_quick()) {
            CU_ASSERT_EQUAL(b.verdict.verdict, HS_VERDICT_NO_HEMORRHAGE);
            CU_ASSERT(b.verdict.probability < a.verdict.probability - 0.1);
        }
        /* every slice has a probability and no error */
        int scored = 0;
        for (int i = 0; i < 16; i++)
            scored += !isnan(a.result[0].slice[i].probability) && a.result[0].slice[i].error[0] == '\0';
        CU_ASSERT_EQUAL(scored, 16);
        CU_ASSERT(strlen(a.instances_sha256) == 64 && strcmp(a.instances_sha256, b.instances_sha256) != 0);
        CU_ASSERT(a.finished >= a.started && a.started > 1.7e9);
    }
    hs_study_reading_free(&a);
    hs_study_reading_free(&b);
}

/* The same series as one Enhanced CT file (frames shuffled, rescale varying
 * per frame) reads exactly as the single-frame files: same verdict, same
 * key slice, slice probabilities within 1e-6; the identity differs (frames
 * are "UID#N"). */
static void test_study_enhanced(void)
{
    if (!need_model())
        return;
    char single[4200], enh[4200];
    if (gen_study("single-jl", "--seed 5 --bleed iph:25,-15,10,30 --ts jpeg-lossless", single, sizeof single) != 0 ||
        gen_study("enhanced-jl",
                  "--seed 5 --bleed iph:25,-15,10,30 --ts jpeg-lossless --enhanced --enhanced-rescale vary --shuffle",
                  enh, sizeof enh) != 0)
        return;
    hs_study_reading a, b;
    if (read_study(single, 0, &a) == 0 && read_study(enh, 0, &b) == 0) {
        CU_ASSERT_EQUAL_FATAL(a.n_results, 1);
        CU_ASSERT_EQUAL_FATAL(b.n_results, 1);
        CU_ASSERT_EQUAL(a.verdict.verdict, b.verdict.verdict);
        CU_ASSERT_EQUAL(a.verdict.key_slice, b.verdict.key_slice);
        CU_ASSERT_DOUBLE_EQUAL(a.verdict.probability, b.verdict.probability, 1e-6);
        const hs_series *sa = &a.study.series[a.result[0].series_index];
        const hs_series *sb = &b.study.series[b.result[0].series_index];
        CU_ASSERT_EQUAL_FATAL(sa->n_slices, 16);
        CU_ASSERT_EQUAL_FATAL(sb->n_slices, 16);
        for (int i = 0; i < 16; i++) {
            CU_ASSERT_DOUBLE_EQUAL(a.result[0].slice[i].probability, b.result[0].slice[i].probability, 1e-6);
            CU_ASSERT_DOUBLE_EQUAL(sa->slices[i].position_along_normal, sb->slices[i].position_along_normal,
                                   1e-6);
            CU_ASSERT_EQUAL(sb->slices[i].header.frames, 16);
        }
        CU_ASSERT(strcmp(a.instances_sha256, b.instances_sha256) != 0);
    }
    hs_study_reading_free(&a);
    hs_study_reading_free(&b);
}

/* hs_study_read_files on a folder's files reads exactly what hs_study_read
 * reads of the folder. */
static void test_study_read_files(void)
{
    if (!need_model())
        return;
    char dir[4200];
    if (gen_study("by_files", "--seed 8 --bleed iph:25,-15,10,30", dir, sizeof dir) != 0)
        return;
    char *paths[64];
    int n = 0;
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (struct dirent *e = readdir(d); e != NULL && n < 64; e = readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        char p[4500];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        paths[n++] = strdup(p);
    }
    closedir(d);
    hs_study_reading a, b;
    hs_study_options opt;
    hs_study_options_default(&opt);
    opt.tta = 0;
    hs_error err = {0};
    if (read_study(dir, 0, &a) == 0) {
        CU_ASSERT_EQUAL(hs_study_read_files("group of 16", paths, n, &model, &opt, &b, &err), HS_OK);
        CU_ASSERT_STRING_EQUAL(b.dir, "group of 16");
        CU_ASSERT_EQUAL(a.verdict.verdict, HS_VERDICT_HEMORRHAGE);
        CU_ASSERT_EQUAL(b.study.n_files, a.study.n_files);
        CU_ASSERT_STRING_EQUAL(b.instances_sha256, a.instances_sha256);
        CU_ASSERT_EQUAL(b.verdict.verdict, a.verdict.verdict);
        CU_ASSERT_DOUBLE_EQUAL(b.verdict.probability, a.verdict.probability, 1e-6);
        CU_ASSERT_EQUAL(b.verdict.key_slice, a.verdict.key_slice);
        hs_study_reading_free(&b);
    }
    hs_study_reading_free(&a);
    for (int i = 0; i < n; i++)
        free(paths[i]);
}

/* A slice that does not decode is recorded with its reason; one of 16 leaves
 * the series assessable, and the instance set is unchanged by it. */
static void test_study_broken_slice(void)
{
    if (!need_model())
        return;
    char dir[4200], victim[4300];
    if (gen_study("broken", "--seed 6", dir, sizeof dir) != 0)
        return;
    hs_study_reading before;
    if (read_study(dir, 0, &before) != 0) {
        hs_study_reading_free(&before);
        return;
    }
    /* Cut the pixels of slice 9 short after the header was scanned: the
     * scan reads headers only, so chop the file's tail. */
    snprintf(victim, sizeof victim, "%s/IM0009.dcm", dir);
    struct stat st;
    CU_ASSERT_FATAL(stat(victim, &st) == 0);
    CU_ASSERT_FATAL(truncate(victim, st.st_size - 4000) == 0);
    hs_study_reading r;
    if (read_study(dir, 0, &r) == 0) {
        CU_ASSERT(r.verdict.verdict != HS_VERDICT_NOT_ASSESSABLE);
        int errors = 0;
        for (int i = 0; i < r.study.series[r.result[0].series_index].n_slices; i++)
            errors += r.result[0].slice[i].error[0] != '\0';
        /* the truncated file is either skipped by the scan as corrupt or
         * fails to decode; both are recorded, and 15 slices are scored */
        CU_ASSERT(errors == 1 || r.study.n_skipped == 1);
        CU_ASSERT_EQUAL(r.verdict.n_scored, 15);
    }
    hs_study_reading_free(&r);
    hs_study_reading_free(&before);
}

static void test_study_not_assessable(void)
{
    if (!need_model())
        return;
    hs_study_reading r;
    char dir[4200];
    /* four slices cannot cover a head */
    if (gen_study("short", "--seed 7 --slices 4", dir, sizeof dir) == 0 && read_study(dir, 0, &r) == 0) {
        CU_ASSERT_EQUAL(r.verdict.verdict, HS_VERDICT_NOT_ASSESSABLE);
        CU_ASSERT_EQUAL(r.decisive, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.verdict.reason, "only 4 slices"));
        hs_study_reading_free(&r);
    }
    /* an empty folder has no series at all */
    char empty[4200];
    hs_test_path(empty, sizeof empty, tmp_dir, "empty");
    CU_ASSERT_FATAL(mkdir(empty, 0700) == 0);
    if (read_study(empty, 0, &r) == 0) {
        CU_ASSERT_EQUAL(r.verdict.verdict, HS_VERDICT_NOT_ASSESSABLE);
        CU_ASSERT_EQUAL(r.decisive, -1);
        CU_ASSERT_EQUAL(r.n_results, 0);
        CU_ASSERT(r.verdict.reason[0] != '\0');
    }
    hs_study_reading_free(&r);
    /* a folder that does not exist is an error, not a verdict */
    hs_study_options opt;
    hs_study_options_default(&opt);
    hs_error err = {0};
    hs_test_path(empty, sizeof empty, tmp_dir, "no-such-folder");
    CU_ASSERT_EQUAL(hs_study_read(empty, &model, &opt, &r, &err), HS_ERR_IO);
    hs_study_reading_free(&r);
}

/* Two series: the best is read first; --all-series reads both and the study
 * verdict comes from the one that found the bleed. */
static void test_study_all_series(void)
{
    if (!need_model())
        return;
    char dir[4200], s2[4300], s3[4300];
    hs_test_path(dir, sizeof dir, tmp_dir, "two");
    snprintf(s2, sizeof s2, "%s/s2", dir);
    snprintf(s3, sizeof s3, "%s/s3", dir);
    /* series 2: 5 mm, no bleed; series 3: 1.25 mm thin slices with a bleed
     * (outside the preferred thickness range, so not the best) */
    if (hs_test_generate(s2, "--size 128 --slices 16 --thickness 5 --seed 8 --study-uid 1.2.3.4.5 "
                             "--series-number 2") != 0 ||
        hs_test_generate(s3, "--size 128 --slices 56 --thickness 1.25 --seed 9 --study-uid 1.2.3.4.5 "
                             "--series-number 3 --bleed iph:25,-15,10,30") != 0)
        return;
    hs_study_reading r;
    if (read_study(dir, 0, &r) == 0) {
        CU_ASSERT_EQUAL(r.study.n_series, 2);
        CU_ASSERT_EQUAL(r.n_results, 1);
        CU_ASSERT_DOUBLE_EQUAL(r.study.series[r.result[0].series_index].slice_thickness_mm, 5.0, 1e-6);
    }
    hs_study_reading_free(&r);
    if (read_study(dir, 1, &r) == 0) {
        CU_ASSERT_EQUAL(r.n_results, 2);
        CU_ASSERT_DOUBLE_EQUAL(r.study.series[r.result[0].series_index].slice_thickness_mm, 5.0, 1e-6);
        CU_ASSERT_EQUAL(r.verdict.verdict, HS_VERDICT_HEMORRHAGE);
        CU_ASSERT_EQUAL(r.decisive, 1);
    }
    hs_study_reading_free(&r);
}

int hs_register_study_tests(void)
{
    static const hs_test_case cases[] = {
        {"window: linear, clamped, NaN black", test_window_values},
        {"render: gray recipe once, windows per channel", test_render_gray_and_windows},
        {"render: channels kept to the network input", test_render_input_channels},
        {"render: narrower windows cut from one gray rendering", test_render_gray_windows},
        {"verdict: neighbour-confirmed maximum, key slice, confidence", test_verdict_neighbour_rule},
        {"verdict in words: a negative never reassures", test_verdict_words},
        {"verdict: each not-assessable rule", test_verdict_not_assessable},
        {"a PNG and the same pixels as DICOM score the same", test_png_equals_dicom},
        {"study: synthetic bleed found on its slices", test_study_bleed_found},
        {"study: a given list of files reads as its folder", test_study_read_files},
        {"study: Enhanced CT reads as the same single-frame series", test_study_enhanced},
        {"study: a broken slice is recorded, series still read", test_study_broken_slice},
        {"study: too short, empty, missing folder", test_study_not_assessable},
        {"study: best series, or all series", test_study_all_series},
    };
    return hs_test_add_suite("study", suite_init, suite_clean, cases, sizeof cases / sizeof cases[0]);
}
