/* test_sources.c - CUnit suite for where examples come from: class folders
 * holding DICOM slices beside PNG pictures (dataset.c's scan), the
 * example loader's reader for files that are not PNG (train.c), a lone
 * DICOM slice through the study's slice path (slice_input.c), and data
 * sets of several source folders merged (hs_dataset_merge).
 *
 * The DICOM slices are written by the test's own fixture
 * (dicom_fixture.h), so the values they hold are known: two slices that
 * store the same Hounsfield units differently (signed with intercept 0,
 * unsigned with intercept -1024) must give the same network input, which
 * only holds when the rescale is applied. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dicom_fixture.h"
#include "hemoscan/dataset.h"
#include "hemoscan/dicom.h"
#include "hemoscan/model.h"
#include "hemoscan/render.h"
#include "hemoscan/slice_input.h"
#include "hemoscan/train.h"
#include "test_util.h"

enum { SIDE = 32 };

/* A head-like slice in HU: air around a 0..80 HU disc, a 70 HU blob. */
static float slice_hu(int x, int y)
{
    float dx = (float)x - SIDE / 2.0f, dy = (float)y - SIDE / 2.0f;
    float r2 = dx * dx + dy * dy;
    if (r2 > (SIDE / 2.5f) * (SIDE / 2.5f))
        return -1000.0f;
    return (dx > 2 && dy > 2 && r2 < 40) ? 70.0f : 30.0f + (float)((x + y) % 5);
}

/* Write the slice to dir/name, stored signed (intercept 0) or unsigned
 * (intercept -1024); frames > 1 writes a multi-frame file, modality NULL
 * keeps "CT". */
static void write_slice(const char *dir, const char *name, int unsigned_storage, int frames, const char *modality)
{
    unsigned short px[SIDE * SIDE];
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            int hu = (int)slice_hu(x, y);
            px[y * SIDE + x] = (unsigned short)(unsigned_storage ? hu + 1024 : (unsigned short)(short)hu);
        }
    hs_test_dicom_slice s;
    hs_test_dicom_slice_default(&s, SIDE, SIDE, px);
    if (unsigned_storage) {
        s.pixel_representation = 0;
        s.bits_stored = 12;
        s.high_bit = 11;
        s.intercept = -1024;
    }
    s.frames = frames;
    if (modality != NULL)
        s.modality = modality;
    char path[4400];
    hs_test_path(path, sizeof path, dir, name);
    CU_ASSERT_EQUAL_FATAL(hs_test_dicom_write(path, &s), 0);
}

static void default_recipe(hs_input_recipe *r)
{
    CU_ASSERT_FATAL(hs_input_recipe_gray(r, HS_GRAY_WINDOWS_DEFAULT, NULL) == HS_OK);
    r->width = r->height = 24;
}

static void test_slice_input_is_the_study_path(void)
{
    char dir[4096], path[4400];
    CU_ASSERT_FATAL(hs_test_tmpdir_create(dir, sizeof dir, "slice") == 0);
    write_slice(dir, "signed.dcm", 0, 1, NULL);
    write_slice(dir, "unsigned.dcm", 1, 1, NULL);
    hs_input_recipe r;
    default_recipe(&r);
    size_t n = (size_t)r.width * r.height * r.channels;
    float *a = calloc(n, sizeof *a), *b = calloc(n, sizeof *b), *want = calloc(n, sizeof *want);
    float hu[SIDE * SIDE];
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++)
            hu[y * SIDE + x] = slice_hu(x, y);
    hs_error err = {0};
    CU_ASSERT_FATAL(hs_render_input(hu, SIDE, SIDE, &r, want, &err) == HS_OK);
    hs_test_path(path, sizeof path, dir, "signed.dcm");
    CU_ASSERT_FATAL(hs_slice_input_read(path, &r, a, &err) == HS_OK);
    hs_test_path(path, sizeof path, dir, "unsigned.dcm");
    CU_ASSERT_FATAL(hs_slice_input_read(path, &r, b, &err) == HS_OK);
    double worst = 0.0, spread = 0.0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fmax(fabs(a[i] - want[i]), fabs(b[i] - want[i])));
        spread = fmax(spread, fabs(want[i] - want[0]));
    }
    CU_ASSERT(worst < 1e-6); /* the HU rendering of render.h, either storage */
    CU_ASSERT(spread > 0.1); /* and the picture is not blank */
    free(a);
    free(b);
    free(want);
    CU_ASSERT(hs_test_tmpdir_remove(dir) == 0);
}

static void test_slice_input_refuses_by_name(void)
{
    char dir[4096], path[4400];
    CU_ASSERT_FATAL(hs_test_tmpdir_create(dir, sizeof dir, "slice") == 0);
    write_slice(dir, "frames.dcm", 0, 3, NULL);
    write_slice(dir, "mr.dcm", 0, 1, "MR");
    hs_test_path(path, sizeof path, dir, "text.dcm");
    CU_ASSERT_FATAL(hs_test_write_file(path, "not dicom", 9) == 0);
    hs_input_recipe r;
    default_recipe(&r);
    float *x = calloc((size_t)r.width * r.height * r.channels, sizeof *x);
    hs_error err = {0};
    hs_test_path(path, sizeof path, dir, "frames.dcm");
    CU_ASSERT(hs_slice_input_read(path, &r, x, &err) == HS_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "frames.dcm: multi-frame file"));
    hs_test_path(path, sizeof path, dir, "mr.dcm");
    CU_ASSERT(hs_slice_input_read(path, &r, x, &err) == HS_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "mr.dcm: not read as a CT slice (not_ct"));
    hs_test_path(path, sizeof path, dir, "text.dcm");
    CU_ASSERT(hs_slice_input_read(path, &r, x, &err) == HS_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not_dicom"));
    hs_test_path(path, sizeof path, dir, "missing.dcm");
    CU_ASSERT(hs_slice_input_read(path, &r, x, &err) == HS_ERR_IO);
    CU_ASSERT(hs_slice_input_read(NULL, &r, x, &err) == HS_ERR_ARG);
    free(x);
    CU_ASSERT(hs_test_tmpdir_remove(dir) == 0);
}

/* dir/normal and dir/hemorrhage made, with the files named. */
static void make_classes(const char *dir)
{
    char path[4400];
    hs_test_path(path, sizeof path, dir, "normal");
    CU_ASSERT_FATAL(mkdir(path, 0755) == 0);
    hs_test_path(path, sizeof path, dir, "hemorrhage");
    CU_ASSERT_FATAL(mkdir(path, 0755) == 0);
}

static void test_scan_finds_dicom(void)
{
    char dir[4096], path[4400];
    CU_ASSERT_FATAL(hs_test_tmpdir_create(dir, sizeof dir, "scan") == 0);
    make_classes(dir);
    char sub[4400];
    hs_test_path(sub, sizeof sub, dir, "normal");
    write_slice(sub, "a.dcm", 0, 1, NULL);
    write_slice(sub, "b", 0, 1, NULL);           /* DICM preamble, no extension */
    write_slice(sub, "c.DICOM", 0, 1, NULL);
    hs_test_path(path, sizeof path, sub, "README"); /* no extension, not DICOM */
    CU_ASSERT_FATAL(hs_test_write_file(path, "notes", 5) == 0);
    hs_test_path(path, sizeof path, sub, "d.txt");
    CU_ASSERT_FATAL(hs_test_write_file(path, "notes", 5) == 0);
    hs_test_path(sub, sizeof sub, dir, "hemorrhage");
    write_slice(sub, "e.dcm", 0, 1, NULL);
    hs_dataset ds;
    hs_error err;
    CU_ASSERT_FATAL(hs_dataset_scan(dir, &ds, &err) == HS_OK);
    CU_ASSERT_EQUAL_FATAL(ds.n, 4);
    CU_ASSERT_STRING_EQUAL(ds.id[0], "a");
    CU_ASSERT_STRING_EQUAL(ds.id[1], "b");
    CU_ASSERT_STRING_EQUAL(ds.id[2], "c");
    CU_ASSERT_STRING_EQUAL(ds.id[3], "e");
    CU_ASSERT_EQUAL(ds.label[3], 1);
    hs_dataset_free(&ds);
    CU_ASSERT(hs_test_tmpdir_remove(dir) == 0);
}

/* A reader that writes its call count into every float. */
static hs_status counting_reader(void *user, const char *path, const hs_input_recipe *recipe, float *out,
                                 hs_error *err)
{
    int *calls = user;
    if (strstr(path, "bad") != NULL)
        return hs_fail(err, HS_ERR_FORMAT, "%s: refused", path);
    ++*calls;
    for (int i = 0; i < recipe->width * recipe->height * recipe->channels; i++)
        out[i] = (float)*calls;
    return HS_OK;
}

static void test_loader_uses_the_reader(void)
{
    char dir[4096], path[4400], sub[4400];
    CU_ASSERT_FATAL(hs_test_tmpdir_create(dir, sizeof dir, "loader") == 0);
    make_classes(dir);
    hs_test_path(sub, sizeof sub, dir, "normal");
    write_slice(sub, "a.dcm", 0, 1, NULL);
    write_slice(sub, "bad.dcm", 0, 1, NULL);
    hs_image img;
    CU_ASSERT_FATAL(hs_image_alloc(&img, 8, 8, 1, NULL) == HS_OK);
    for (int i = 0; i < 64; i++)
        img.px[i] = (float)(i % 8) / 8.0f;
    hs_test_path(path, sizeof path, dir, "hemorrhage/p.png");
    CU_ASSERT_FATAL(hs_png_write(path, &img, NULL) == HS_OK);
    hs_image_free(&img);
    hs_dataset ds;
    hs_error err;
    CU_ASSERT_FATAL(hs_dataset_scan(dir, &ds, &err) == HS_OK);
    hs_input_recipe r;
    default_recipe(&r);
    int calls = 0;
    hs_example_reader reader = {"test", counting_reader, &calls};
    hs_examples ex;
    int skipped = -1;
    CU_ASSERT_FATAL(hs_examples_load_with(&ds, &r, &reader, NULL, &ex, &skipped, &err) == HS_OK);
    CU_ASSERT_EQUAL(ex.n, 2);
    CU_ASSERT_EQUAL(skipped, 1); /* bad.dcm */
    CU_ASSERT_EQUAL(calls, 1);   /* a.dcm only: the PNG took its own path */
    CU_ASSERT_EQUAL(ex.via[0], HS_VIA_READER);
    CU_ASSERT_EQUAL(ex.x[0], 1.0f);
    CU_ASSERT_EQUAL(ex.via[1], HS_VIA_PNG);
    CU_ASSERT_STRING_EQUAL(ds.id[ex.source[1]], "p");
    /* selection keeps how each was read */
    unsigned char pick[3] = {1, 1, 0};
    hs_examples sel;
    CU_ASSERT_FATAL(hs_examples_select(&ex, pick, 0, &sel, &err) == HS_OK);
    CU_ASSERT_EQUAL_FATAL(sel.n, 1);
    CU_ASSERT_EQUAL(sel.via[0], HS_VIA_PNG);
    hs_examples_free(&sel);
    hs_examples_free(&ex);
    /* without a reader, only the PNG is read */
    CU_ASSERT_FATAL(hs_examples_load(&ds, &r, NULL, &ex, &skipped, &err) == HS_OK);
    CU_ASSERT_EQUAL(ex.n, 1);
    CU_ASSERT_EQUAL(skipped, 2);
    hs_examples_free(&ex);
    hs_dataset_free(&ds);
    CU_ASSERT(hs_test_tmpdir_remove(dir) == 0);
}

/* A data set of n files named name0..; classes named as given. */
static void fake_dataset(hs_dataset *ds, int n, const char *c0, const char *c1, const char *prefix)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->n_classes = 2;
    snprintf(ds->class_name[0], HS_MODEL_NAME_LEN, "%s", c0);
    snprintf(ds->class_name[1], HS_MODEL_NAME_LEN, "%s", c1);
    ds->path = calloc((size_t)n, sizeof *ds->path);
    ds->id = calloc((size_t)n, sizeof *ds->id);
    ds->label = calloc((size_t)n, sizeof *ds->label);
    ds->group = calloc((size_t)n, sizeof *ds->group);
    for (int i = 0; i < n; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s/f%d.png", prefix, i);
        ds->path[i] = strdup(buf);
        snprintf(buf, sizeof buf, "f%d", i);
        ds->id[i] = strdup(buf);
        ds->label[i] = i % 2;
        ds->group[i] = i;
    }
}

static void test_merge_sources(void)
{
    hs_dataset a, b, c;
    hs_error err;
    fake_dataset(&a, 4, "normal", "hemorrhage", "one");
    a.group[1] = a.group[3] = 1; /* f1 and f3 one group */
    fake_dataset(&b, 3, "hemorrhage", "normal", "two"); /* same classes, other order */
    b.group[2] = 0;
    CU_ASSERT_FATAL(hs_dataset_merge(&a, &b, &err) == HS_OK);
    CU_ASSERT_EQUAL_FATAL(a.n, 7);
    CU_ASSERT_EQUAL(b.n, 0);
    CU_ASSERT_EQUAL(a.n_sources, 2);
    CU_ASSERT_STRING_EQUAL(a.id[0], "1:f0");
    CU_ASSERT_STRING_EQUAL(a.id[4], "2:f0");
    CU_ASSERT_EQUAL(a.source[3], 0);
    CU_ASSERT_EQUAL(a.source[6], 1);
    /* b's f0 was class 0 of b, "hemorrhage": class 1 of the merged set */
    CU_ASSERT_EQUAL(a.label[4], 1);
    CU_ASSERT_EQUAL(a.label[5], 0);
    /* groups: a's kept, b's apart from a's, b's own grouping kept */
    CU_ASSERT_EQUAL(a.group[1], a.group[3]);
    CU_ASSERT_EQUAL(a.group[4], a.group[6]);
    for (int i = 0; i < 4; i++)
        for (int j = 4; j < 7; j++)
            CU_ASSERT_NOT_EQUAL(a.group[i], a.group[j]);
    /* another class set is refused and changes nothing */
    fake_dataset(&c, 2, "normal", "ischemia", "three");
    CU_ASSERT(hs_dataset_merge(&a, &c, &err) == HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "(normal, hemorrhage) and (normal, ischemia)"));
    CU_ASSERT_EQUAL(a.n, 7);
    CU_ASSERT_EQUAL(c.n, 2);
    hs_dataset_free(&c);
    /* a third source, and selection keeps the sources */
    fake_dataset(&c, 2, "normal", "hemorrhage", "three");
    CU_ASSERT_FATAL(hs_dataset_merge(&a, &c, &err) == HS_OK);
    CU_ASSERT_STRING_EQUAL(a.id[7], "3:f0");
    CU_ASSERT_STRING_EQUAL(a.id[0], "1:f0"); /* not prefixed twice */
    CU_ASSERT_EQUAL(a.source[8], 2);
    unsigned char pick[9] = {0, 0, 0, 0, 0, 0, 0, 1, 1};
    hs_dataset sel;
    CU_ASSERT_FATAL(hs_dataset_select(&a, pick, 1, &sel, &err) == HS_OK);
    CU_ASSERT_EQUAL(sel.n, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sel.source);
    CU_ASSERT_EQUAL(sel.source[0], 2);
    hs_dataset_free(&sel);
    hs_dataset_free(&a);
}

/* The checksum of two sources covers where each file came from: the same
 * files as one source or as two give different sums. */
static void test_merge_checksum(void)
{
    char dir[4096], sub[4400];
    CU_ASSERT_FATAL(hs_test_tmpdir_create(dir, sizeof dir, "sum") == 0);
    make_classes(dir);
    hs_test_path(sub, sizeof sub, dir, "normal");
    write_slice(sub, "a.dcm", 0, 1, NULL);
    hs_test_path(sub, sizeof sub, dir, "hemorrhage");
    write_slice(sub, "b.dcm", 1, 1, NULL);
    hs_dataset one, two, more;
    hs_error err;
    char sha_one[65], sha_two[65], sha_again[65];
    CU_ASSERT_FATAL(hs_dataset_scan(dir, &one, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_dataset_checksum(&one, sha_one, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_dataset_scan(dir, &two, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_dataset_scan(dir, &more, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_dataset_merge(&two, &more, &err) == HS_OK);
    CU_ASSERT_EQUAL(two.n, 4);
    CU_ASSERT_FATAL(hs_dataset_checksum(&two, sha_two, &err) == HS_OK);
    CU_ASSERT(strcmp(sha_one, sha_two) != 0);
    CU_ASSERT_FATAL(hs_dataset_checksum(&one, sha_again, &err) == HS_OK);
    CU_ASSERT_STRING_EQUAL(sha_one, sha_again);
    hs_dataset_free(&one);
    hs_dataset_free(&two);
    CU_ASSERT(hs_test_tmpdir_remove(dir) == 0);
}

int hs_register_sources_tests(void)
{
    static const hs_test_case tests[] = {
        {"a lone DICOM slice gets the study's input, either storage", test_slice_input_is_the_study_path},
        {"multi-frame, non-CT and non-DICOM files are refused by name", test_slice_input_refuses_by_name},
        {"class folders hold .dcm and DICM files without extension", test_scan_finds_dicom},
        {"the loader reads non-PNG files through the reader", test_loader_uses_the_reader},
        {"sources merge by class name, ids and groups kept apart", test_merge_sources},
        {"the checksum of merged sources covers each file's source", test_merge_checksum},
    };
    return hs_test_add_suite("sources", NULL, NULL, tests, sizeof tests / sizeof tests[0]);
}
