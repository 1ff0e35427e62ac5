/* test_series.c - CUnit tests of the scan and series stages (series.c),
 * registered by hs_register_series_tests().
 *
 * Real data pins what synthetic data cannot: the GE HiSpeed head series in
 * ../shared/data (gantry tilt 18.5 degrees, 4 mm slices then 7 mm) must sort
 * by InstanceNumber order along the tilted normal with no invented gap, and
 * the edge folder (corrupt, MR, SR, DICOMDIR, other modalities, several
 * one-slice CT studies, derived copies of one slice) must account for every
 * file exactly once, in agreement with hs_dicom_read_header file by file.
 *
 * Synthetic series from testdata/gen/hs-gen-ct pin the rest exactly:
 * shuffled, reversed, gapped and tilted stacks, two series in one study,
 * two studies in one folder, and a messy folder (localizer, MR, text file,
 * dot file, nested folders, a name with spaces, a copied file, a symlink
 * loop). Series are 64 x 64 x 8 so the suite stays quick under valgrind.
 * Without the data or the generator the tests say they are skipped. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "hemoscan/dicom.h"
#include "hemoscan/series.h"
#include "hemoscan/status.h"
#include "dicom_fixture.h"
#include "test_util.h"

int hs_register_series_tests(void);

static char tmp_dir[4096];

static int suite_init(void)
{
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "series");
}

static int suite_clean(void)
{
    return hs_test_tmpdir_remove(tmp_dir);
}

/* ---- helpers -------------------------------------------------------------- */

/* Runs the generator into out with a small series and extra options;
 * 0 on success. */
static int gen(const char *out, const char *opts)
{
    char all[8192];
    snprintf(all, sizeof all, "--size 64 --slices 8 %s", opts);
    return hs_test_generate(out, all) == 0 ? 0 : -1;
}

/* A new empty folder tmp_dir/name; its path goes to out. */
static int new_dir(char *out, size_t cap, const char *name)
{
    hs_test_path(out, cap, tmp_dir, name);
    return mkdir(out, 0700);
}

/* Scans dir, asserting success. */
static int scan(const char *dir, hs_study *s)
{
    hs_error err = {0};
    hs_status st = hs_study_scan(dir, 2, s, &err);
    CU_ASSERT_EQUAL(st, HS_OK);
    if (st != HS_OK) {
        fprintf(stderr, "test_series: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Slices strictly increasing along the normal. */
static int positions_increase(const hs_series *se)
{
    for (int i = 1; i < se->n_slices; i++)
        if (!(se->slices[i].position_along_normal > se->slices[i - 1].position_along_normal))
            return 0;
    return 1;
}

/* InstanceNumbers go step by step up (dir 1) or down (dir -1). */
static int instances_step(const hs_series *se, int dir)
{
    for (int i = 1; i < se->n_slices; i++)
        if (se->slices[i].header.instance_number - se->slices[i - 1].header.instance_number != dir)
            return 0;
    return 1;
}

static const hs_skipped_file *find_skipped(const hs_study *s, const char *path_part)
{
    for (int i = 0; i < s->n_skipped; i++)
        if (strstr(s->skipped[i].path, path_part) != NULL)
            return &s->skipped[i];
    return NULL;
}

static int count_verdict(const hs_study *s, const char *verdict)
{
    int k = 0;
    for (int i = 0; i < s->n_skipped; i++)
        k += strcmp(s->skipped[i].verdict, verdict) == 0;
    return k;
}

/* ---- real data -------------------------------------------------------------- */

static void test_ge_tilt(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/dicom/headct/ge_hispeed_dual_head_tilt",
             hs_test_shared_data_dir());
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        printf("\n  skipped: no GE sample in %s (set HEMOSCAN_SHARED_DATA)\n", dir);
        return;
    }
    hs_study s;
    if (scan(dir, &s) != 0) {
        hs_study_free(&s);
        return;
    }
    CU_ASSERT_EQUAL(s.n_files, 28);
    CU_ASSERT_EQUAL(s.n_skipped, 0);
    CU_ASSERT_EQUAL_FATAL(s.n_series, 1);
    const hs_series *se = &s.series[0];
    CU_ASSERT_EQUAL(se->n_slices, 28);
    CU_ASSERT_EQUAL(se->sort_method, HS_SORT_POSITION);
    CU_ASSERT(positions_increase(se));
    /* The scanner numbered them feet to head; sorting along the tilted
     * normal must agree. */
    CU_ASSERT(instances_step(se, 1));
    CU_ASSERT_DOUBLE_EQUAL(se->gantry_tilt_deg, 18.5, 1e-6);
    CU_ASSERT(se->normal[2] > 0.9 && se->normal[1] > 0.3);
    CU_ASSERT_EQUAL(se->missing_slices, 0);
    CU_ASSERT_EQUAL(se->inconsistent_spacing, 1);
    /* Neighbour distances along the normal are 4 mm, then 7 mm. */
    double first = se->slices[1].position_along_normal - se->slices[0].position_along_normal;
    double last = se->slices[27].position_along_normal - se->slices[26].position_along_normal;
    CU_ASSERT_DOUBLE_EQUAL(first, 4.0, 0.05);
    CU_ASSERT_DOUBLE_EQUAL(last, 7.0, 0.05);
    CU_ASSERT(se->spacing_mm > 3.9 && se->spacing_mm < 7.1);
    CU_ASSERT_DOUBLE_EQUAL(se->slice_thickness_mm, 4.0, 1e-6);
    CU_ASSERT_EQUAL(hs_study_choose(&s, 0, 0, 0), 0);
    CU_ASSERT(se->chosen);
    CU_ASSERT_PTR_NOT_NULL(strstr(se->why, "chosen"));
    hs_study_free(&s);
    CU_ASSERT_EQUAL(s.n_series, 0);
}

static void test_edge_folder(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/dicom/edge", hs_test_shared_data_dir());
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        printf("\n  skipped: no edge samples in %s (set HEMOSCAN_SHARED_DATA)\n", dir);
        return;
    }
    hs_study s;
    if (scan(dir, &s) != 0) {
        hs_study_free(&s);
        return;
    }
    CU_ASSERT(s.n_files > 20);
    int n_slices = 0;
    for (int i = 0; i < s.n_series; i++) {
        for (int j = 0; j < s.series[i].n_slices; j++) {
            hs_dicom_header h;
            hs_dicom_verdict v;
            char reason[256];
            hs_error err = {0};
            CU_ASSERT_EQUAL(hs_dicom_read_header(s.series[i].slices[j].header.path, &h, &v,
                                                 reason, &err),
                            HS_OK);
            CU_ASSERT_EQUAL(v, HS_DICOM_OK);
            CU_ASSERT_STRING_EQUAL(h.study_uid, s.study_uid);
            n_slices++;
        }
    }
    /* Every file is used or skipped, once. */
    CU_ASSERT_EQUAL(n_slices + s.n_skipped, s.n_files);
    CU_ASSERT(n_slices >= 1);
    /* One thread reads the same as two. */
    hs_study one;
    hs_error err1 = {0};
    CU_ASSERT_EQUAL(hs_study_scan(dir, 1, &one, &err1), HS_OK);
    CU_ASSERT_EQUAL(one.n_files, s.n_files);
    CU_ASSERT_EQUAL(one.n_series, s.n_series);
    CU_ASSERT_EQUAL(one.n_skipped, s.n_skipped);
    for (int i = 0; i < one.n_skipped && i < s.n_skipped; i++) {
        CU_ASSERT_STRING_EQUAL(one.skipped[i].path, s.skipped[i].path);
        CU_ASSERT_STRING_EQUAL(one.skipped[i].verdict, s.skipped[i].verdict);
        CU_ASSERT_STRING_EQUAL(one.skipped[i].reason, s.skipped[i].reason);
    }
    hs_study_free(&one);
    for (int i = 0; i < s.n_skipped; i++) {
        const hs_skipped_file *k = &s.skipped[i];
        CU_ASSERT(k->reason[0] != '\0');
        if (i > 0)
            CU_ASSERT(strcmp(s.skipped[i - 1].path, k->path) < 0);
        hs_dicom_header h;
        hs_dicom_verdict v;
        char reason[256];
        hs_error err = {0};
        hs_status st = hs_dicom_read_header(k->path, &h, &v, reason, &err);
        if (st != HS_OK) {
            CU_ASSERT_STRING_EQUAL(k->verdict, "unreadable");
        } else if (v != HS_DICOM_OK) {
            CU_ASSERT_STRING_EQUAL(k->verdict, hs_dicom_verdict_name(v));
            if (reason[0] != '\0')
                CU_ASSERT_STRING_EQUAL(k->reason, reason);
        } else {
            CU_ASSERT(strcmp(k->verdict, "other_study") == 0 ||
                      strcmp(k->verdict, "duplicate") == 0);
        }
    }
    /* Several one-slice CT studies: one is kept (one with a UID), the
     * others are skipped as another study. */
    CU_ASSERT(s.study_uid[0] != '\0');
    CU_ASSERT(count_verdict(&s, "other_study") >= 1);
    CU_ASSERT(count_verdict(&s, "not_dicom") + count_verdict(&s, "not_ct") +
                  count_verdict(&s, "no_pixels") >= 10);
    CU_ASSERT(hs_study_choose(&s, 0, 0, 0) >= 0);
    hs_study_free(&s);
}

/* ---- generated series --------------------------------------------------------- */

/* Scans a folder holding one generated series of 8 and checks the basics. */
static int one_series(const char *dir, hs_study *s, int n_expected)
{
    if (scan(dir, s) != 0)
        return -1;
    CU_ASSERT_EQUAL(s->n_series, 1);
    if (s->n_series != 1)
        return -1;
    CU_ASSERT_EQUAL(s->series[0].n_slices, n_expected);
    CU_ASSERT(positions_increase(&s->series[0]));
    return 0;
}

static void test_shuffled(void)
{
    char dir[4096];
    CU_ASSERT_EQUAL_FATAL(new_dir(dir, sizeof dir, "shuffled"), 0);
    if (gen(dir, "--shuffle --seed 3") != 0)
        return;
    hs_study s;
    if (one_series(dir, &s, 8) == 0) {
        const hs_series *se = &s.series[0];
        CU_ASSERT(instances_step(se, 1));
        CU_ASSERT_DOUBLE_EQUAL(se->spacing_mm, 5.0, 0.01);
        CU_ASSERT_DOUBLE_EQUAL(se->slice_thickness_mm, 5.0, 0.01);
        CU_ASSERT_EQUAL(se->missing_slices, 0);
        CU_ASSERT_EQUAL(se->inconsistent_spacing, 0);
        CU_ASSERT_EQUAL(s.n_skipped, 0);
        CU_ASSERT(s.study_uid[0] != '\0' && s.patient_id[0] != '\0');
    }
    hs_study_free(&s);
}

/* One Enhanced CT file, frames written in random order with a rescale
 * that changes frame to frame: one slice per frame, sorted feet to head;
 * a copy of the file gives (SOPInstanceUID, frame) duplicates. */
static void test_enhanced(void)
{
    char dir[4096];
    CU_ASSERT_EQUAL_FATAL(new_dir(dir, sizeof dir, "enhanced"), 0);
    if (gen(dir, "--enhanced --enhanced-rescale vary --shuffle --seed 3 --ts jpeg-lossless") != 0)
        return;
    hs_study s;
    char file[4096] = "";
    if (one_series(dir, &s, 8) == 0) {
        const hs_series *se = &s.series[0];
        CU_ASSERT_EQUAL(se->sort_method, HS_SORT_POSITION);
        CU_ASSERT_DOUBLE_EQUAL(se->spacing_mm, 5.0, 0.01);
        CU_ASSERT_DOUBLE_EQUAL(se->slice_thickness_mm, 5.0, 0.01);
        CU_ASSERT_EQUAL(se->missing_slices, 0);
        CU_ASSERT_EQUAL(s.n_skipped, 0);
        CU_ASSERT_EQUAL(s.n_files, 1);
        int in_order = 1, seen = 0;
        for (int i = 0; i < se->n_slices; i++) {
            const hs_dicom_header *h = &se->slices[i].header;
            CU_ASSERT_EQUAL(h->frames, 8);
            CU_ASSERT(h->frame >= 0 && h->frame < 8);
            seen |= 1 << h->frame;
            in_order &= h->frame == i;
            CU_ASSERT_STRING_EQUAL(h->path, se->slices[0].header.path);
        }
        CU_ASSERT_EQUAL(seen, 0xff);
        CU_ASSERT(!in_order); /* sorting did something */
        snprintf(file, sizeof file, "%s", se->slices[0].header.path);
    }
    hs_study_free(&s);

    /* a copy of the file: every frame a duplicate, named by its frame */
    char copy[4200];
    snprintf(copy, sizeof copy, "%s/zz-copy.dcm", dir);
    size_t len = 0;
    unsigned char *bytes = file[0] != '\0' ? hs_test_read_file(file, &len) : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
    CU_ASSERT_EQUAL(hs_test_write_file(copy, bytes, len), 0);
    free(bytes);
    if (one_series(dir, &s, 8) == 0) {
        CU_ASSERT_EQUAL(s.n_skipped, 8);
        CU_ASSERT_EQUAL(count_verdict(&s, "duplicate"), 8);
        for (int i = 0; i < s.n_skipped; i++)
            CU_ASSERT(strncmp(s.skipped[i].reason, "frame ", 6) == 0 &&
                      strstr(s.skipped[i].reason, "same SOPInstanceUID and frame") != NULL);
    }
    hs_study_free(&s);
}

static void test_reversed(void)
{
    char dir[4096];
    CU_ASSERT_EQUAL_FATAL(new_dir(dir, sizeof dir, "reversed"), 0);
    if (gen(dir, "--reverse") != 0)
        return;
    hs_study s;
    if (one_series(dir, &s, 8) == 0) {
        CU_ASSERT(instances_step(&s.series[0], -1));
        CU_ASSERT(s.series[0].normal[2] > 0.99);
    }
    hs_study_free(&s);
}

static void test_gap(void)
{
    char dir[4096];
    CU_ASSERT_EQUAL_FATAL(new_dir(dir, sizeof dir, "gap"), 0);
    if (gen(dir, "--gap 5") != 0)
        return;
    hs_study s;
    if (one_series(dir, &s, 7) == 0) {
        CU_ASSERT_EQUAL(s.series[0].missing_slices, 1);
        CU_ASSERT_EQUAL(s.series[0].inconsistent_spacing, 0);
    }
    hs_study_free(&s);
}

static void test_tilt(void)
{
    char dir[4096];
    CU_ASSERT_EQUAL_FATAL(new_dir(dir, sizeof dir, "tilt"), 0);
    if (gen(dir, "--tilt 15 --shuffle") != 0)
        return;
    hs_study s;
    if (one_series(dir, &s, 8) == 0) {
        const hs_series *se = &s.series[0];
        CU_ASSERT(instances_step(se, 1));
        CU_ASSERT_DOUBLE_EQUAL(se->gantry_tilt_deg, 15.0, 1e-6);
        CU_ASSERT_DOUBLE_EQUAL(se->normal[2], cos(15.0 * M_PI / 180.0), 1e-3);
        CU_ASSERT_DOUBLE_EQUAL(se->spacing_mm, 5.0, 0.01);
        CU_ASSERT_EQUAL(se->missing_slices, 0);
    }
    hs_study_free(&s);
}

static void test_no_instance_number(void)
{
    char dir[4096];
    CU_ASSERT_EQUAL_FATAL(new_dir(dir, sizeof dir, "noinst"), 0);
    if (gen(dir, "--no-instance-number --shuffle --invalid-uid") != 0)
        return;
    hs_study s;
    if (one_series(dir, &s, 8) == 0) {
        CU_ASSERT_EQUAL(s.series[0].sort_method, HS_SORT_POSITION);
        CU_ASSERT_PTR_NOT_NULL(strstr(s.series[0].series_uid, ".0"));
    }
    hs_study_free(&s);
}

static void test_choose_thickness(void)
{
    char dir[4096];
    CU_ASSERT_EQUAL_FATAL(new_dir(dir, sizeof dir, "two_series"), 0);
    const char *uid = "1.2.826.0.1.3680043.9.7777.1";
    char opts[512];
    snprintf(opts, sizeof opts, "--study-uid %s --series-number 2 --thickness 5", uid);
    if (gen(dir, opts) != 0)
        return;
    char thin[4096];
    hs_test_path(thin, sizeof thin, dir, "thin");
    snprintf(opts, sizeof opts,
             "--study-uid %s --series-number 3 --thickness 1 --slices 16 --seed 2", uid);
    if (gen(thin, opts) != 0)
        return;
    hs_study s;
    if (scan(dir, &s) == 0) {
        CU_ASSERT_STRING_EQUAL(s.study_uid, uid);
        CU_ASSERT_EQUAL_FATAL(s.n_series, 2);
        int best = hs_study_choose(&s, 0, 0, 0);
        CU_ASSERT_FATAL(best >= 0);
        const hs_series *b = &s.series[best], *o = &s.series[1 - best];
        CU_ASSERT_DOUBLE_EQUAL(b->slice_thickness_mm, 5.0, 0.01);
        CU_ASSERT_EQUAL(b->n_slices, 8);
        CU_ASSERT(b->chosen);
        CU_ASSERT(!o->chosen);
        CU_ASSERT_EQUAL(o->n_slices, 16);
        CU_ASSERT_PTR_NOT_NULL(strstr(b->why, "thickness"));
        CU_ASSERT_PTR_NOT_NULL(strstr(o->why, "thickness"));
        CU_ASSERT_PTR_NOT_NULL(strstr(o->why, "not chosen"));
        /* A range that holds only 1 mm turns the choice round. */
        CU_ASSERT_EQUAL(hs_study_choose(&s, 0.5, 1.5, 0), 1 - best);
        /* Every eligible series on request. */
        hs_study_choose(&s, 0, 0, 1);
        CU_ASSERT(s.series[0].chosen && s.series[1].chosen);
    }
    hs_study_free(&s);
}

/* hs_study_scan_files: only the files named are looked at, in any order;
 * a missing one and a junk one are skipped with their reasons. */
static void test_scan_files(void)
{
    char dir[4096], junk[4096], missing[4096];
    CU_ASSERT_EQUAL_FATAL(new_dir(dir, sizeof dir, "scan_files"), 0);
    if (gen(dir, "--seed 6") != 0)
        return;
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    char *paths[16];
    int n = 0;
    for (struct dirent *e = readdir(d); e != NULL && n < 6; e = readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        char p[4096];
        hs_test_path(p, sizeof p, dir, e->d_name);
        paths[n++] = strdup(p);
    }
    closedir(d);
    CU_ASSERT_EQUAL_FATAL(n, 6);
    hs_test_path(junk, sizeof junk, tmp_dir, "scan_files_junk.txt");
    FILE *f = fopen(junk, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("not a DICOM file\n", f);
    fclose(f);
    hs_test_path(missing, sizeof missing, dir, "no-such-file.dcm");
    paths[n++] = junk;
    paths[n++] = missing;

    hs_study s;
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_study_scan_files("drop group", paths, n, 3, &s, &err), HS_OK);
    CU_ASSERT_EQUAL(s.n_files, 8);
    CU_ASSERT_EQUAL(s.n_series, 1);
    if (s.n_series == 1) {
        CU_ASSERT_EQUAL(s.series[0].n_slices, 6);
        CU_ASSERT(positions_increase(&s.series[0]));
    }
    CU_ASSERT_EQUAL(s.n_skipped, 2);
    const hs_skipped_file *k = find_skipped(&s, "no-such-file.dcm");
    CU_ASSERT(k != NULL && strcmp(k->verdict, "unreadable") == 0);
    k = find_skipped(&s, "scan_files_junk.txt");
    CU_ASSERT(k != NULL && strcmp(k->verdict, "not_dicom") == 0);
    hs_study_free(&s);

    /* Junk alone: no series, and why names the label. */
    CU_ASSERT_EQUAL(hs_study_scan_files("drop group", paths + 6, 2, 1, &s, &err), HS_OK);
    CU_ASSERT_EQUAL(s.n_series, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.why, "drop group"));
    hs_study_free(&s);
    CU_ASSERT_EQUAL(hs_study_scan_files("x", NULL, 1, 1, &s, &err), HS_ERR_ARG);
    for (int i = 0; i < 6; i++)
        free(paths[i]);
}

static void test_two_studies(void)
{
    char dir[4096], other[4096];
    CU_ASSERT_EQUAL_FATAL(new_dir(dir, sizeof dir, "two_studies"), 0);
    hs_test_path(other, sizeof other, dir, "zz_other");
    if (gen(dir, "--seed 4") != 0 || gen(other, "--seed 5 --slices 3") != 0)
        return;
    hs_study s;
    if (one_series(dir, &s, 8) == 0) {
        CU_ASSERT_EQUAL(s.n_skipped, 3);
        CU_ASSERT_EQUAL(count_verdict(&s, "other_study"), 3);
        CU_ASSERT_PTR_NOT_NULL(strstr(s.skipped[0].reason, "belongs to another study"));
    }
    hs_study_free(&s);
}

static void test_messy_folder(void)
{
    char dir[4096], deep[4096], mr[4096], p[4096], q[4096];
    CU_ASSERT_EQUAL_FATAL(new_dir(dir, sizeof dir, "messy"), 0);
    hs_test_path(deep, sizeof deep, dir, "a/b c/d");
    hs_test_path(mr, sizeof mr, dir, "mr");
    if (gen(deep, "--localizer --seed 6") != 0 || gen(mr, "--modality MR --seed 6") != 0)
        return;
    /* A name with spaces, a copy of a slice, junk, a dot file, a link loop. */
    hs_test_path(p, sizeof p, deep, "IM0004.dcm");
    hs_test_path(q, sizeof q, deep, "slice four with spaces");
    CU_ASSERT_EQUAL_FATAL(rename(p, q), 0);
    size_t len = 0;
    unsigned char *bytes = hs_test_read_file(q, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
    hs_test_path(p, sizeof p, dir, "copy.dcm");
    CU_ASSERT_EQUAL(hs_test_write_file(p, bytes, len), 0);
    free(bytes);
    hs_test_path(p, sizeof p, dir, "notes.txt");
    CU_ASSERT_EQUAL(hs_test_write_file(p, "not an image\n", 13), 0);
    hs_test_path(p, sizeof p, dir, ".DS_Store");
    CU_ASSERT_EQUAL(hs_test_write_file(p, "\0\0\0\1Bud1", 8), 0);
    hs_test_path(p, sizeof p, deep, "loop");
    CU_ASSERT_EQUAL(symlink("../..", p), 0);

    hs_study s;
    if (one_series(dir, &s, 8) == 0) {
        const hs_series *se = &s.series[0];
        CU_ASSERT(instances_step(se, 1));
        int found = 0;
        for (int i = 0; i < se->n_slices; i++)
            found += strstr(se->slices[i].header.path, "b c/d/slice four with spaces") != NULL;
        CU_ASSERT_EQUAL(found, 1);
        /* 8 slices + copy + localizer + 8 MR + notes.txt; no .DS_Store. */
        CU_ASSERT_EQUAL(s.n_files, 19);
        CU_ASSERT_EQUAL(s.n_skipped, 11);
        CU_ASSERT_PTR_NULL(find_skipped(&s, ".DS_Store"));
        const hs_skipped_file *k = find_skipped(&s, "LOC0001.dcm");
        CU_ASSERT_PTR_NOT_NULL(k);
        if (k != NULL)
            CU_ASSERT_STRING_EQUAL(k->verdict, "localizer");
        k = find_skipped(&s, "notes.txt");
        CU_ASSERT_PTR_NOT_NULL(k);
        if (k != NULL)
            CU_ASSERT_STRING_EQUAL(k->verdict, "not_dicom");
        k = find_skipped(&s, "copy.dcm");
        CU_ASSERT_PTR_NOT_NULL(k);
        if (k != NULL) {
            CU_ASSERT_STRING_EQUAL(k->verdict, "duplicate");
            CU_ASSERT_PTR_NOT_NULL(strstr(k->reason, "slice four with spaces"));
        }
        CU_ASSERT_EQUAL(count_verdict(&s, "not_ct"), 8);
        for (int i = 0; i < s.n_skipped; i++)
            CU_ASSERT(s.skipped[i].reason[0] != '\0');
    }
    hs_study_free(&s);
}

static void test_errors(void)
{
    hs_study s;
    hs_error err = {0};
    char p[4096];
    hs_test_path(p, sizeof p, tmp_dir, "does-not-exist");
    CU_ASSERT_EQUAL(hs_study_scan(p, 1, &s, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "does-not-exist"));
    hs_study_free(&s);
    CU_ASSERT_EQUAL(hs_study_scan(NULL, 1, &s, &err), HS_ERR_ARG);
    hs_study_free(&s);
    char empty[4096];
    CU_ASSERT_EQUAL_FATAL(new_dir(empty, sizeof empty, "empty"), 0);
    CU_ASSERT_EQUAL(hs_study_scan(empty, 1, &s, &err), HS_OK);
    CU_ASSERT_EQUAL(s.n_series, 0);
    CU_ASSERT_EQUAL(hs_study_choose(&s, 0, 0, 0), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.why, "no axial CT"));
    hs_study_free(&s);
}

/* ---- UIDs kept whole (issue 20) ---------------------------------------------- */

/* Writes a 16 x 16 synthetic slice name into dir with the given UIDs (of
 * study_len bytes for the study, NULs included; 0: a C string) at z. */
static int write_uid_slice(const char *dir, const char *name, const char *study, size_t study_len,
                           const char *series, const char *sop, double z)
{
    static const unsigned short px[16 * 16] = {0};
    hs_test_dicom_slice sl;
    hs_test_dicom_slice_default(&sl, 16, 16, px);
    sl.study_uid = study;
    sl.study_uid_len = study_len;
    sl.series_uid = series;
    sl.sop_uid = sop;
    sl.z = z;
    char path[4096];
    hs_test_path(path, sizeof path, dir, name);
    return hs_test_dicom_write(path, &sl);
}

/* 80 (or len) bytes of digits and dots; tail (0-9) at byte 70. */
static void long_uid(char *out, size_t len, int tail)
{
    for (size_t i = 0; i < len; i++)
        out[i] = i % 11 == 3 ? '.' : (char)('1' + i % 9);
    out[69] = (char)('0' + tail);
    out[len] = '\0';
}

/* Two files whose StudyInstanceUIDs differ only after byte 64, or only
 * after a NUL, are two studies: one is kept, the other skipped as
 * "other_study"; they used to be read as one study, one patient's slices
 * under the other's identity. */
static void test_uid_studies(void)
{
    char dir[4096], a[96], b[96];
    const char *series = "1.2.826.0.1.3680043.2.1143.20.3";
    CU_ASSERT_EQUAL_FATAL(new_dir(dir, sizeof dir, "uid_long"), 0);
    long_uid(a, 80, 1);
    long_uid(b, 80, 2);
    CU_ASSERT_EQUAL_FATAL(write_uid_slice(dir, "a.dcm", a, 0, series, "1.2.826.0.1.3680043.2.1143.20.11", 40), 0);
    CU_ASSERT_EQUAL_FATAL(write_uid_slice(dir, "b.dcm", b, 0, series, "1.2.826.0.1.3680043.2.1143.20.12", 45), 0);
    hs_study s;
    if (scan(dir, &s) == 0) {
        CU_ASSERT_EQUAL(s.n_series, 1);
        CU_ASSERT_EQUAL(s.n_series == 1 ? s.series[0].n_slices : -1, 1);
        CU_ASSERT_EQUAL(count_verdict(&s, "other_study"), 1);
        CU_ASSERT_EQUAL(count_verdict(&s, "duplicate"), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(s.study_uid, "#sha256:"));
        CU_ASSERT_STRING_EQUAL(s.why, "StudyInstanceUID is 80 bytes (DICOM allows 64)");
        /* the skipped file names the other study by its whole key */
        const hs_skipped_file *k = count_verdict(&s, "other_study") == 1 ? &s.skipped[0] : NULL;
        CU_ASSERT(k != NULL && strstr(k->reason, "#sha256:") != NULL && strchr(k->reason, ')') != NULL);
    }
    hs_study_free(&s);

    /* A NUL at byte 20, different tails. */
    CU_ASSERT_EQUAL_FATAL(new_dir(dir, sizeof dir, "uid_nul"), 0);
    memcpy(a, "1.2.826.0.1.3680043\0" "1.2.3", 25);
    memcpy(b, "1.2.826.0.1.3680043\0" "1.2.4", 25);
    CU_ASSERT_EQUAL_FATAL(write_uid_slice(dir, "a.dcm", a, 25, series, "1.2.826.0.1.3680043.2.1143.20.11", 40), 0);
    CU_ASSERT_EQUAL_FATAL(write_uid_slice(dir, "b.dcm", b, 25, series, "1.2.826.0.1.3680043.2.1143.20.12", 45), 0);
    if (scan(dir, &s) == 0) {
        CU_ASSERT_EQUAL(s.n_series, 1);
        CU_ASSERT_EQUAL(count_verdict(&s, "other_study"), 1);
        CU_ASSERT_STRING_EQUAL(s.why, "StudyInstanceUID holds a NUL at byte 20");
    }
    hs_study_free(&s);
}

/* SOPInstanceUIDs that differ only after byte 64 are two instances, not
 * duplicates; the reading note counts them, the series' why names its
 * own long SeriesInstanceUID. */
static void test_uid_instances(void)
{
    char dir[4096], a[96], b[96], series[96];
    CU_ASSERT_EQUAL_FATAL(new_dir(dir, sizeof dir, "uid_sop"), 0);
    long_uid(a, 70, 1);
    long_uid(b, 70, 2);
    long_uid(series, 72, 3);
    const char *study = "1.2.826.0.1.3680043.2.1143.20.2";
    CU_ASSERT_EQUAL_FATAL(write_uid_slice(dir, "a.dcm", study, 0, series, a, 40), 0);
    CU_ASSERT_EQUAL_FATAL(write_uid_slice(dir, "b.dcm", study, 0, series, b, 45), 0);
    hs_study s;
    if (scan(dir, &s) == 0) {
        CU_ASSERT_EQUAL(s.n_skipped, 0);
        CU_ASSERT_EQUAL_FATAL(s.n_series, 1);
        CU_ASSERT_EQUAL(s.series[0].n_slices, 2);
        CU_ASSERT_STRING_EQUAL(s.study_uid, study);
        CU_ASSERT_STRING_EQUAL(s.why, "2 slice(s) with a non-conformant SOPInstanceUID, first: "
                                      "SOPInstanceUID is 70 bytes (DICOM allows 64)");
        CU_ASSERT_EQUAL(hs_study_choose(&s, 0, 0, 0), 0);
        const char *why = s.series[0].why;
        size_t n = strlen(why);
        const char *note = "; SeriesInstanceUID is 72 bytes (DICOM allows 64)";
        CU_ASSERT(n > strlen(note) && strcmp(why + n - strlen(note), note) == 0);
    }
    hs_study_free(&s);
}

/* Copies src to dst byte for byte; 0 on success. */
static int copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    int rc = in != NULL && out != NULL ? 0 : -1;
    char buf[4096];
    size_t n;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        rc = fwrite(buf, 1, n, out) == n ? 0 : -1;
    if (in != NULL)
        fclose(in);
    if (out != NULL && fclose(out) != 0)
        rc = -1;
    return rc;
}

/* Copies of one instance (same SOPInstanceUID): the lossless one is read,
 * then the newer, and the skipped copy says why; equal bytes are told
 * apart by path. */
static void test_copies(void)
{
    char dir[4096], p[3][4200];
    CU_ASSERT_EQUAL_FATAL(new_dir(dir, sizeof dir, "copies"), 0);
    unsigned short px[3][32 * 32];
    for (int i = 0; i < 32 * 32; i++) {
        px[0][i] = (unsigned short)(i % 7);
        px[1][i] = (unsigned short)(i % 11);
        px[2][i] = (unsigned short)(i % 13);
    }
    const char *names[3] = {"a.dcm", "b.dcm", "c.dcm"};
    for (int k = 0; k < 3; k++) {
        hs_test_dicom_slice sl;
        hs_test_dicom_slice_default(&sl, 32, 32, px[k]);
        sl.sop_uid = "1.2.826.0.1.3680043.2.1143.30.1";
        sl.lossy = k == 2; /* c: a lossy copy, and the newest */
        hs_test_path(p[k], sizeof p[k], dir, names[k]);
        CU_ASSERT_EQUAL_FATAL(hs_test_dicom_write(p[k], &sl), 0);
        struct timespec t[2] = {{1700000000 + 100 * k, 0}, {1700000000 + 100 * k, 0}};
        CU_ASSERT_EQUAL_FATAL(utimensat(AT_FDCWD, p[k], t, 0), 0);
    }
    hs_study s;
    if (scan(dir, &s) == 0) {
        CU_ASSERT_EQUAL_FATAL(s.n_series, 1);
        CU_ASSERT_EQUAL_FATAL(s.series[0].n_slices, 1);
        /* b: lossless and newer than a */
        CU_ASSERT_PTR_NOT_NULL(strstr(s.series[0].slices[0].header.path, "b.dcm"));
        CU_ASSERT_EQUAL(s.series[0].slices[0].header.lossy, 0);
        CU_ASSERT_EQUAL(strlen(s.series[0].slices[0].header.file_sha256), 64);
        const hs_skipped_file *a = find_skipped(&s, "a.dcm"), *c = find_skipped(&s, "c.dcm");
        CU_ASSERT(a != NULL && strstr(a->reason, "same SOPInstanceUID; it is the newer file") != NULL);
        CU_ASSERT(c != NULL && strstr(c->reason, "same SOPInstanceUID; it is lossless, this copy lossy") != NULL);
    }
    hs_study_free(&s);
    /* the same bytes under two names: the first path is kept */
    char copy[4200];
    hs_test_path(copy, sizeof copy, dir, "0-copy.dcm");
    CU_ASSERT_EQUAL_FATAL(copy_file(p[1], copy), 0); /* not a link: the walk counts an inode once */
    if (scan(dir, &s) == 0) {
        CU_ASSERT_PTR_NOT_NULL(strstr(s.series[0].slices[0].header.path, "0-copy.dcm"));
        const hs_skipped_file *b = find_skipped(&s, "b.dcm");
        CU_ASSERT(b != NULL && strstr(b->reason, "the same bytes") != NULL);
    }
    hs_study_free(&s);
}

int hs_register_series_tests(void)
{
    static const hs_test_case tests[] = {
        {"GE tilted head series: sorted along the normal, 4/7 mm, no gap", test_ge_tilt},
        {"edge folder: every file used or skipped with a reason", test_edge_folder},
        {"shuffled names sort by position", test_shuffled},
        {"Enhanced CT: one slice per frame, sorted; copies are frame duplicates", test_enhanced},
        {"reversed series sorts feet to head", test_reversed},
        {"a left-out slice counts as missing", test_gap},
        {"gantry tilt: sorted, tilt read", test_tilt},
        {"no InstanceNumber, invalid UIDs", test_no_instance_number},
        {"thin and 5 mm series: 5 mm chosen, why names thickness", test_choose_thickness},
        {"two studies: the larger kept, the other skipped", test_two_studies},
        {"a given list of files: only those, junk and missing skipped", test_scan_files},
        {"messy folder: localizer, MR, junk, nesting, spaces, copy, loop", test_messy_folder},
        {"missing and empty folders", test_errors},
        {"StudyInstanceUIDs differing after byte 64 or a NUL: two studies", test_uid_studies},
        {"SOPInstanceUIDs differing after byte 64: no duplicates; notes", test_uid_instances},
        {"copies of an instance: lossless, then newer; same bytes by path", test_copies},
    };
    return hs_test_add_suite("series stage", suite_init, suite_clean, tests, sizeof tests / sizeof tests[0]);
}
