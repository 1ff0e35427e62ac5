/* test_dicom.c - CUnit tests of the DICOM reading stage (dicom.cc),
 * registered by hs_register_dicom_tests().
 *
 * Two kinds of evidence. Real files from ../shared/data/dicom (read in
 * place, never copied into the repository): every file of its MANIFEST.tsv
 * has an expected verdict and decode outcome in the table below, and the
 * table must cover the manifest exactly, so a file added to the data set
 * without a decision here fails the suite. The same WG04 head slice in six
 * transfer syntaxes must decode to the same HU, and real head CTs must give
 * plausible HU (air, brain, bone). Without the shared data those tests say
 * they are skipped and pass.
 *
 * Synthetic files written with DCMTK (tests/dicom_fixture.cc) pin what the
 * real files cannot show exactly: the 12-bit wrap-around, padding, garbage
 * above HighBit, MONOCHROME1, big endian, missing or invalid fields,
 * localizer / derived / non-axial / multi-frame classification and
 * truncation at every part of a file, and the refusal of HU that would be
 * meaningless (rescale values and the content check). Their HU are
 * compared value for value. Two threads decode at once to pin the thread-safety promise. */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "dicom_fixture.h"
#include "hemoscan/dicom.h"
#include "hemoscan/model.h"
#include "hemoscan/slice_input.h"
#include "hemoscan/status.h"
#include "test_util.h"

int hs_register_dicom_tests(void);

static char tmp_dir[4096];

static int suite_init(void)
{
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "dicom");
}

static int suite_clean(void)
{
    return hs_test_tmpdir_remove(tmp_dir);
}

/* ---- helpers -------------------------------------------------------------- */

/* The shared DICOM folder, or NULL (with a message) when it is absent. */
static const char *dicom_dir(void)
{
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/dicom", hs_test_shared_data_dir());
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("\n  skipped: no DICOM sample data in %s (set HEMOSCAN_SHARED_DATA)\n", dir);
        return NULL;
    }
    return dir;
}

static void data_path(char *out, size_t cap, const char *rel)
{
    snprintf(out, cap, "%s/dicom/%s", hs_test_shared_data_dir(), rel);
}

/* Header and HU of a file; NULL (after failing assertions) if either fails.
 * The caller frees the result. */
static float *read_slice(const char *path, hs_dicom_header *h)
{
    hs_dicom_verdict v;
    char reason[256];
    hs_error err = {0};
    hs_status st = hs_dicom_read_header(path, h, &v, reason, &err);
    CU_ASSERT_EQUAL(st, HS_OK);
    if (st != HS_OK || h->rows < 1 || h->columns < 1) {
        fprintf(stderr, "read_slice: %s: %s\n", path, err.msg);
        return NULL;
    }
    float *hu = malloc(sizeof(float) * (size_t)h->rows * (size_t)h->columns);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hu);
    st = hs_dicom_read_hu(path, h, hu, &err);
    CU_ASSERT_EQUAL(st, HS_OK);
    if (st != HS_OK) {
        fprintf(stderr, "read_slice: %s: %s\n", path, err.msg);
        free(hu);
        return NULL;
    }
    return hu;
}

static double fraction_in(const float *hu, size_t n, double lo, double hi)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (hu[i] >= lo && hu[i] <= hi)
            k++;
    return n > 0 ? (double)k / (double)n : 0.0;
}

static float max_of(const float *hu, size_t n)
{
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (hu[i] > m)
            m = hu[i];
    return m;
}

/* A head CT slice whose HU are right: a good part air (-1100..-900), a good
 * part brain (20..50 HU), some bone above 300, nothing beyond 4000 (values
 * read with the wrong sign or offset land there). */
static void check_plausible_head(const char *name, const float *hu, size_t n)
{
    double air = fraction_in(hu, n, -1100, -900);
    double brain = fraction_in(hu, n, 20, 50);
    double bone = fraction_in(hu, n, 300, 1e9);
    float top = max_of(hu, n);
    if (air < 0.1 || brain < 0.05 || bone < 0.005 || top > 4000)
        fprintf(stderr, "%s: air %.3f brain %.3f bone %.3f max %.0f\n", name, air, brain, bone, top);
    CU_ASSERT(air >= 0.1);
    CU_ASSERT(brain >= 0.05);
    CU_ASSERT(bone >= 0.005);
    CU_ASSERT(top <= 4000);
}

/* ---- names ---------------------------------------------------------------- */

static void test_verdict_names(void)
{
    CU_ASSERT_STRING_EQUAL(hs_dicom_verdict_name(HS_DICOM_OK), "ok");
    CU_ASSERT_STRING_EQUAL(hs_dicom_verdict_name(HS_DICOM_NOT_DICOM), "not_dicom");
    CU_ASSERT_STRING_EQUAL(hs_dicom_verdict_name(HS_DICOM_NO_PIXELS), "no_pixels");
    CU_ASSERT_STRING_EQUAL(hs_dicom_verdict_name(HS_DICOM_NOT_CT), "not_ct");
    CU_ASSERT_STRING_EQUAL(hs_dicom_verdict_name(HS_DICOM_LOCALIZER), "localizer");
    CU_ASSERT_STRING_EQUAL(hs_dicom_verdict_name(HS_DICOM_DERIVED), "derived");
    CU_ASSERT_STRING_EQUAL(hs_dicom_verdict_name(HS_DICOM_NOT_AXIAL), "not_axial");
    CU_ASSERT_STRING_EQUAL(hs_dicom_verdict_name(HS_DICOM_MULTIFRAME_UNSUPPORTED), "multiframe_unsupported");
    CU_ASSERT_STRING_EQUAL(hs_dicom_verdict_name(HS_DICOM_CORRUPT), "corrupt");
    CU_ASSERT_STRING_EQUAL(hs_dicom_verdict_name(HS_DICOM_UNSUPPORTED), "unsupported");
    CU_ASSERT_STRING_EQUAL(hs_dicom_verdict_name((hs_dicom_verdict)99), "unknown");
}

/* ---- every file of the shared data set ------------------------------------ */

/* What hemoscan must make of each file in MANIFEST.tsv: the header verdict
 * and what hs_dicom_read_hu returns (HS_ERR_FORMAT for everything it must
 * refuse). The WG04 slices are real head CT but say SECONDARY in ImageType
 * (they were re-encoded for the compression test set), so they are DERIVED;
 * they still decode, which the transfer-syntax test relies on. */
static const struct {
    const char *path;
    hs_dicom_verdict verdict;
    hs_status hu;
} expected[] = {
    {"edge/corrupt/pydicom_MR_truncated.dcm", HS_DICOM_CORRUPT, HS_ERR_FORMAT},
    {"edge/corrupt/pydicom_badVR.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/corrupt/pydicom_j2k_embedded_seq_delimiter.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/corrupt/pydicom_meta_missing_tsyntax.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/ct_other/barre_CT-MONO2-12-lomb-an2_acrnema_nopreamble.acr", HS_DICOM_OK, HS_OK},
    {"edge/ct_other/barre_CT-MONO2-16-chest_jpegll_400x512.dcm", HS_DICOM_LOCALIZER, HS_OK},
    {"edge/ct_other/pydicom_CT_small.dcm", HS_DICOM_OK, HS_OK},
    {"edge/ct_other/pydicom_J2K_pixelrep_mismatch_headCT.dcm", HS_DICOM_OK, HS_OK},
    {"edge/ct_other/wg04_CT1_UNC_chest.dcm", HS_DICOM_OK, HS_OK},
    {"edge/mr/pydicom_MR_small.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/mr/pydicom_MR_small_RLE.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/mr/pydicom_MR_small_bigendian.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/mr/pydicom_MR_small_implicit.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/mr/pydicom_MR_small_jp2klossless.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/mr/pydicom_MR_small_jpeg_ls_lossless.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/mr/pydicom_emri_small_multiframe10.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/no_pixels/DICOMDIR", HS_DICOM_NO_PIXELS, HS_ERR_FORMAT},
    {"edge/no_pixels/pydicom_SR.dcm", HS_DICOM_NO_PIXELS, HS_ERR_FORMAT},
    {"edge/other_modality/pydicom_NM_jpeg2000_lossy.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/other_modality/pydicom_NM_jpeg_extended_12bit.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/other_modality/pydicom_OT_deflated.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/other_modality/pydicom_OT_rgb_rle.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/other_modality/pydicom_RTDOSE_multiframe_32bit.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/other_modality/pydicom_SEG_1bit_multiframe.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/other_modality/pydicom_US_rgb_bigendian.dcm", HS_DICOM_NOT_CT, HS_ERR_FORMAT},
    {"edge/ts_wg04_ct2_head/CT2_J2KR.dcm", HS_DICOM_DERIVED, HS_OK},
    {"edge/ts_wg04_ct2_head/CT2_JLSL.dcm", HS_DICOM_DERIVED, HS_OK},
    {"edge/ts_wg04_ct2_head/CT2_JLSN.dcm", HS_DICOM_DERIVED, HS_OK},
    {"edge/ts_wg04_ct2_head/CT2_JPLL.dcm", HS_DICOM_DERIVED, HS_OK},
    {"edge/ts_wg04_ct2_head/CT2_RLE.dcm", HS_DICOM_DERIVED, HS_OK},
    {"edge/ts_wg04_ct2_head/CT2_UNC.dcm", HS_DICOM_DERIVED, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/01.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/02.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/03.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/04.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/05.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/06.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/07.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/08.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/09.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/10.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/11.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/12.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/13.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/14.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/15.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/16.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/17.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/18.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/19.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/20.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/21.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/22.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/23.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/24.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/25.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/26.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/27.dcm", HS_DICOM_OK, HS_OK},
    {"headct/ge_hispeed_dual_head_tilt/28.dcm", HS_DICOM_OK, HS_OK},
    {"headct/misc/barre_CT-MONO2-16-brain.dcm", HS_DICOM_OK, HS_OK},
    {"headct/pydicom_dicomdir_head_16px/17106", HS_DICOM_OK, HS_OK},
    {"headct/pydicom_dicomdir_head_16px/17136", HS_DICOM_OK, HS_OK},
    {"headct/pydicom_dicomdir_head_16px/17166", HS_DICOM_OK, HS_OK},
    {"headct/pydicom_dicomdir_head_16px/17196", HS_DICOM_OK, HS_OK},
};
#define N_EXPECTED (sizeof expected / sizeof expected[0])

static void test_manifest_files(void)
{
    const char *dir = dicom_dir();
    if (dir == NULL)
        return;
    /* The table and the manifest must list the same files. */
    char manifest[4096];
    hs_test_path(manifest, sizeof manifest, dir, "MANIFEST.tsv");
    size_t len = 0;
    char *text = (char *)hs_test_read_file(manifest, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    int seen[N_EXPECTED] = {0};
    size_t rows = 0;
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    for (line = strtok_r(NULL, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');
        if (tab != NULL)
            *tab = '\0';
        if (line[0] == '\0')
            continue;
        rows++;
        size_t k = 0;
        while (k < N_EXPECTED && strcmp(expected[k].path, line) != 0)
            k++;
        if (k == N_EXPECTED)
            fprintf(stderr, "test_dicom: %s is in MANIFEST.tsv but has no expected outcome\n", line);
        CU_ASSERT(k < N_EXPECTED);
        if (k < N_EXPECTED)
            seen[k] = 1;
    }
    free(text);
    CU_ASSERT_EQUAL(rows, N_EXPECTED);

    for (size_t k = 0; k < N_EXPECTED; k++) {
        CU_ASSERT(seen[k]);
        char path[4096];
        data_path(path, sizeof path, expected[k].path);
        hs_dicom_header h;
        hs_dicom_verdict v = HS_DICOM_OK;
        char reason[256];
        hs_error err = {0};
        hs_status st = hs_dicom_read_header(path, &h, &v, reason, &err);
        CU_ASSERT_EQUAL(st, HS_OK);
        if (st != HS_OK || v != expected[k].verdict)
            fprintf(stderr, "test_dicom: %s: status %d verdict %s (%s), expected %s\n", expected[k].path,
                    st, hs_dicom_verdict_name(v), reason, hs_dicom_verdict_name(expected[k].verdict));
        CU_ASSERT_EQUAL(v, expected[k].verdict);
        CU_ASSERT_STRING_EQUAL(h.path, path);
        /* Every refusal says why. */
        if (v != HS_DICOM_OK)
            CU_ASSERT(strlen(reason) > 5);
        size_t n = (h.rows > 0 && h.columns > 0 && h.rows <= HS_DICOM_MAX_SIDE && h.columns <= HS_DICOM_MAX_SIDE)
                       ? (size_t)h.rows * (size_t)h.columns
                       : 1;
        float *hu = malloc(sizeof(float) * n);
        CU_ASSERT_PTR_NOT_NULL_FATAL(hu);
        st = hs_dicom_read_hu(path, &h, hu, &err);
        if (st != expected[k].hu)
            fprintf(stderr, "test_dicom: %s: hs_dicom_read_hu gave %s (%s)\n", expected[k].path,
                    hs_status_name(st), err.msg);
        CU_ASSERT_EQUAL(st, expected[k].hu);
        if (st != HS_OK)
            CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
        if (st == HS_OK) {
            /* Decoded HU are finite and within what 16-bit CT can hold. */
            size_t bad = 0;
            for (size_t i = 0; i < n; i++)
                if (!isfinite(hu[i]) || hu[i] < -40000.0f || hu[i] > 40000.0f)
                    bad++;
            CU_ASSERT_EQUAL(bad, 0);
        }
        free(hu);
    }
}

/* ---- the same slice in six transfer syntaxes ------------------------------ */

static void test_transfer_syntaxes(void)
{
    if (dicom_dir() == NULL)
        return;
    char path[4096];
    hs_dicom_header ref_h;
    data_path(path, sizeof path, "edge/ts_wg04_ct2_head/CT2_UNC.dcm");
    float *ref = read_slice(path, &ref_h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    size_t n = (size_t)ref_h.rows * (size_t)ref_h.columns;
    CU_ASSERT_EQUAL(n, 512u * 512u);
    check_plausible_head("CT2_UNC", ref, n);
    CU_ASSERT_STRING_EQUAL(ref_h.transfer_syntax, "1.2.840.10008.1.2.1");

    static const struct {
        const char *file, *uid;
        float tolerance_hu; /* 0: lossless, must match exactly */
    } ts[] = {
        {"CT2_RLE.dcm", "1.2.840.10008.1.2.5", 0.0f},
        {"CT2_JPLL.dcm", "1.2.840.10008.1.2.4.70", 0.0f},
        {"CT2_JLSL.dcm", "1.2.840.10008.1.2.4.80", 0.0f},
        {"CT2_J2KR.dcm", "1.2.840.10008.1.2.4.90", 0.0f},
        {"CT2_JLSN.dcm", "1.2.840.10008.1.2.4.81", 5.0f},
    };
    for (size_t t = 0; t < sizeof ts / sizeof ts[0]; t++) {
        char rel[256];
        snprintf(rel, sizeof rel, "edge/ts_wg04_ct2_head/%s", ts[t].file);
        data_path(path, sizeof path, rel);
        hs_dicom_header h;
        float *hu = read_slice(path, &h);
        CU_ASSERT_PTR_NOT_NULL(hu);
        if (hu == NULL)
            continue;
        CU_ASSERT_STRING_EQUAL(h.transfer_syntax, ts[t].uid);
        CU_ASSERT_EQUAL(h.rows, ref_h.rows);
        CU_ASSERT_EQUAL(h.columns, ref_h.columns);
        float worst = 0.0f;
        size_t differ = 0;
        for (size_t i = 0; i < n; i++) {
            float d = fabsf(hu[i] - ref[i]);
            if (d > worst)
                worst = d;
            if (d > 0.0f)
                differ++;
        }
        if (worst > ts[t].tolerance_hu)
            fprintf(stderr, "test_dicom: %s differs from CT2_UNC by up to %.1f HU\n", ts[t].file, worst);
        CU_ASSERT(worst <= ts[t].tolerance_hu);
        /* Near-lossless really is lossy: a file that merely copied the
         * reference would not test the decoder's tolerance. */
        if (ts[t].tolerance_hu > 0.0f)
            CU_ASSERT(differ > 0);
        check_plausible_head(ts[t].file, hu, n);
        free(hu);
    }
    free(ref);
}

/* ---- the tilted GE head series -------------------------------------------- */

static void test_ge_tilted_series(void)
{
    if (dicom_dir() == NULL)
        return;
    char first_series[HS_UID_KEY_MAX] = "";
    double first_z = 0.0, last_z = 0.0;
    for (int i = 1; i <= 28; i++) {
        char rel[256], path[4096];
        snprintf(rel, sizeof rel, "headct/ge_hispeed_dual_head_tilt/%02d.dcm", i);
        data_path(path, sizeof path, rel);
        hs_dicom_header h;
        hs_dicom_verdict v;
        char reason[256];
        hs_error err = {0};
        CU_ASSERT_EQUAL_FATAL(hs_dicom_read_header(path, &h, &v, reason, &err), HS_OK);
        CU_ASSERT_EQUAL(v, HS_DICOM_OK);
        CU_ASSERT_DOUBLE_EQUAL(h.gantry_tilt, 18.5, 1e-9);
        CU_ASSERT(h.has_position);
        CU_ASSERT(h.has_orientation);
        CU_ASSERT(h.has_instance_number);
        CU_ASSERT_EQUAL(h.instance_number, i);
        CU_ASSERT_STRING_EQUAL(h.modality, "CT");
        CU_ASSERT_STRING_EQUAL(h.body_part, "HEAD");
        CU_ASSERT_EQUAL(h.rows, 512);
        CU_ASSERT_EQUAL(h.columns, 512);
        CU_ASSERT(h.pixel_spacing[0] > 0.0 && h.pixel_spacing[1] > 0.0);
        CU_ASSERT_DOUBLE_EQUAL(h.slice_thickness, i <= 14 ? 4.0 : 7.0, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(h.window_center_hu, 35.0, 1e-9);
        /* The slice normal leans by the gantry tilt: row along x, column
         * cosines (0, cos 18.5, -sin 18.5). */
        CU_ASSERT_DOUBLE_EQUAL(h.orientation[0], 1.0, 1e-3);
        CU_ASSERT_DOUBLE_EQUAL(h.orientation[4], cos(18.5 * M_PI / 180.0), 1e-3);
        CU_ASSERT_DOUBLE_EQUAL(fabs(h.orientation[5]), sin(18.5 * M_PI / 180.0), 1e-3);
        if (i == 1) {
            snprintf(first_series, sizeof first_series, "%s", h.series_uid);
            first_z = h.position[2];
        } else {
            CU_ASSERT_STRING_EQUAL(h.series_uid, first_series);
        }
        last_z = h.position[2];
        if (i == 14) {
            float *hu = read_slice(path, &h);
            CU_ASSERT_PTR_NOT_NULL(hu);
            if (hu != NULL)
                check_plausible_head("GE slice 14", hu, (size_t)h.rows * (size_t)h.columns);
            free(hu);
        }
    }
    /* 14 slices of 4 mm and 14 of 7 mm span far more than a centimetre. */
    CU_ASSERT(fabs(last_z - first_z) > 50.0);
}

/* ---- single real files with something special ----------------------------- */

static void test_j2k_pixelrep_mismatch(void)
{
    if (dicom_dir() == NULL)
        return;
    char path[4096];
    data_path(path, sizeof path, "edge/ct_other/pydicom_J2K_pixelrep_mismatch_headCT.dcm");
    hs_dicom_header h;
    float *hu = read_slice(path, &h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hu);
    CU_ASSERT_EQUAL(h.pixel_representation, 1);
    CU_ASSERT_EQUAL(h.bits_stored, 13);
    size_t n = (size_t)h.rows * (size_t)h.columns;
    check_plausible_head("J2K pixelrep mismatch", hu, n);
    /* Read as unsigned, the air would sit near +7000 HU. */
    CU_ASSERT(fraction_in(hu, n, 3000, 1e9) == 0.0);
    /* Multi-valued WindowCenter 40\40\40: the first value. */
    CU_ASSERT_DOUBLE_EQUAL(h.window_center_hu, 40.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(h.window_width_hu, 100.0, 1e-9);
    free(hu);
}

static void test_acr_nema(void)
{
    if (dicom_dir() == NULL)
        return;
    char path[4096];
    data_path(path, sizeof path, "edge/ct_other/barre_CT-MONO2-12-lomb-an2_acrnema_nopreamble.acr");
    hs_dicom_header h;
    hs_dicom_verdict v;
    char reason[256];
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_dicom_read_header(path, &h, &v, reason, &err), HS_OK);
    CU_ASSERT_EQUAL(v, HS_DICOM_OK);
    /* Accepted, but the missing orientation is on record. */
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "ImageOrientationPatient"));
    CU_ASSERT_FALSE(h.has_orientation);
    CU_ASSERT_STRING_EQUAL(h.modality, "CT");
    CU_ASSERT_STRING_EQUAL(h.study_uid, "");
    CU_ASSERT_EQUAL(h.bits_stored, 12);
    CU_ASSERT_EQUAL(h.pixel_representation, 0);
    CU_ASSERT_DOUBLE_EQUAL(h.rescale_intercept, -1024.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(h.window_center_hu, 50.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(h.window_width_hu, 300.0, 1e-9);
    CU_ASSERT_EQUAL(h.instance_number, 9);
    /* ContrastBolusAgent is "NONE". */
    CU_ASSERT_FALSE(h.contrast);
    CU_ASSERT_STRING_EQUAL(h.transfer_syntax, "1.2.840.10008.1.2");
    float *hu = read_slice(path, &h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hu);
    size_t n = (size_t)h.rows * (size_t)h.columns;
    /* A lumbar CT: soft tissue dominates, bone present, stored values 0..4095
     * minus 1024 keep everything in -1024..3071. */
    CU_ASSERT(fraction_in(hu, n, -1024, 3071) == 1.0);
    CU_ASSERT(fraction_in(hu, n, 0, 100) > 0.2);
    CU_ASSERT(fraction_in(hu, n, 300, 3071) > 0.005);
    free(hu);
}

static void test_reasons(void)
{
    if (dicom_dir() == NULL)
        return;
    static const struct {
        const char *file, *needle;
    } cases[] = {
        {"edge/mr/pydicom_MR_small_jp2klossless.dcm", "Modality is MR"},
        {"edge/other_modality/pydicom_US_rgb_bigendian.dcm", "Modality is US"},
        {"edge/no_pixels/pydicom_SR.dcm", "Pixel Data"},
        {"edge/no_pixels/DICOMDIR", "Pixel Data"},
        {"edge/ct_other/barre_CT-MONO2-16-chest_jpegll_400x512.dcm", "LOCALIZER"},
        {"edge/ts_wg04_ct2_head/CT2_RLE.dcm", "SECONDARY"},
        {"edge/corrupt/pydicom_MR_truncated.dcm", "DCMTK"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[4096];
        data_path(path, sizeof path, cases[i].file);
        hs_dicom_header h;
        hs_dicom_verdict v;
        char reason[256];
        hs_error err = {0};
        CU_ASSERT_EQUAL(hs_dicom_read_header(path, &h, &v, reason, &err), HS_OK);
        const char *found = strstr(reason, cases[i].needle);
        if (found == NULL)
            fprintf(stderr, "test_dicom: %s: the reason lacks '%s': %s\n", path, cases[i].needle, reason);
        CU_ASSERT_PTR_NOT_NULL(found);
    }
}

/* ---- hostile files ---------------------------------------------------------- */

/* The DICOM inputs of fuzz/regressions (see its README.md) refused for the
 * right reason, within the documented limits: test_fuzz_regressions.c only
 * checks that the reader survives them and keeps its contract. */
static void test_hostile_files(void)
{
    static const struct {
        const char *file;
        hs_dicom_verdict verdict;
        const char *reason;    /* in the verdict's reason */
        const char *hu_error;  /* in hs_dicom_read_hu's message; NULL if not decodable */
    } cases[] = {
        {"j2k-codestream-60000x60000-in-512x512", HS_DICOM_OK, "", "60000 x 60000 pixels, expected 512 x 512"},
        {"j2k-siz-29241-tiles-64-components", HS_DICOM_OK, "", "64 components"},
        {"jpeg-baseline-holds-progressive-60000x60000", HS_DICOM_OK, "", "SOF2, not the process"},
        {"bits-stored-int-min-no-high-bit", HS_DICOM_UNSUPPORTED, "BitsStored -2147483648", NULL},
        {"deflated-pixel-data-claims-3gb", HS_DICOM_CORRUPT, "DCMTK", NULL},
        {"deflated-5mb-of-zeros", HS_DICOM_CORRUPT, "more than " HS_DICOM_MAX_INFLATED_TEXT, NULL},
        {"out-of-order-element-claims-4gb", HS_DICOM_CORRUPT, "DCMTK", NULL},
        {"bits-allocated-undefined-length", HS_DICOM_CORRUPT, "DCMTK", NULL},
        {"sequence-item-element-claims-4gb", HS_DICOM_CORRUPT, "DCMTK", NULL},
        {"jpeg-ls-scan-of-3-components-in-a-1-component-frame", HS_DICOM_OK, "", "JPEG-LS pixels do not decode"},
        {"directory-record-makes-dcmtk-throw", HS_DICOM_NO_PIXELS, "DirectoryRecordSequence (0004,1220)", NULL},
        {"jpeg-marker-segment-past-the-end", HS_DICOM_OK, "", "longer than the stream"},
        {"secondary-capture-without-rows", HS_DICOM_UNSUPPORTED, "secondary capture, and BitsAllocated is 0", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rel[128], path[4096];
        snprintf(rel, sizeof rel, "fuzz/regressions/dicom/%s", cases[i].file);
        hs_test_source_path(path, sizeof path, rel);
        hs_dicom_header h;
        hs_dicom_verdict v;
        char reason[256];
        hs_error err = {0};
        CU_ASSERT_EQUAL_FATAL(hs_dicom_read_header(path, &h, &v, reason, &err), HS_OK);
        CU_ASSERT_EQUAL(v, cases[i].verdict);
        if (strstr(reason, cases[i].reason) == NULL)
            fprintf(stderr, "test_dicom: %s: the reason lacks '%s': %s\n", path, cases[i].reason, reason);
        CU_ASSERT_PTR_NOT_NULL(strstr(reason, cases[i].reason));
        if (cases[i].hu_error == NULL)
            continue;
        float *hu = malloc((size_t)h.rows * (size_t)h.columns * sizeof *hu);
        CU_ASSERT_PTR_NOT_NULL_FATAL(hu);
        CU_ASSERT_EQUAL(hs_dicom_read_hu(path, &h, hu, &err), HS_ERR_FORMAT);
        if (strstr(err.msg, cases[i].hu_error) == NULL)
            fprintf(stderr, "test_dicom: %s: the pixel error lacks '%s': %s\n", path, cases[i].hu_error, err.msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].hu_error));
        free(hu);
    }
}

/* ---- files that are not DICOM --------------------------------------------- */

static void test_not_dicom(void)
{
    char path[4096];
    hs_dicom_header h;
    hs_dicom_verdict v;
    char reason[256];
    hs_error err = {0};

    hs_test_path(path, sizeof path, tmp_dir, "notes.txt");
    const char *txt = "This is a text file that happens to sit in a study folder.\n";
    CU_ASSERT_EQUAL_FATAL(hs_test_write_file(path, txt, strlen(txt)), 0);
    CU_ASSERT_EQUAL(hs_dicom_read_header(path, &h, &v, reason, &err), HS_OK);
    CU_ASSERT_EQUAL(v, HS_DICOM_NOT_DICOM);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "not DICOM"));

    hs_test_path(path, sizeof path, tmp_dir, ".DS_Store");
    unsigned char junk[300];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 37u + 11u);
    CU_ASSERT_EQUAL_FATAL(hs_test_write_file(path, junk, sizeof junk), 0);
    CU_ASSERT_EQUAL(hs_dicom_read_header(path, &h, &v, reason, &err), HS_OK);
    CU_ASSERT_EQUAL(v, HS_DICOM_NOT_DICOM);

    hs_test_path(path, sizeof path, tmp_dir, "empty");
    CU_ASSERT_EQUAL_FATAL(hs_test_write_file(path, "", 0), 0);
    CU_ASSERT_EQUAL(hs_dicom_read_header(path, &h, &v, reason, &err), HS_OK);
    CU_ASSERT_EQUAL(v, HS_DICOM_NOT_DICOM);
    float one = 0.0f;
    CU_ASSERT_EQUAL(hs_dicom_read_hu(path, &h, &one, &err), HS_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));

    /* A DICM marker followed by nothing. */
    hs_test_path(path, sizeof path, tmp_dir, "preamble-only.dcm");
    unsigned char pre[132] = {0};
    memcpy(pre + 128, "DICM", 4);
    CU_ASSERT_EQUAL_FATAL(hs_test_write_file(path, pre, sizeof pre), 0);
    CU_ASSERT_EQUAL(hs_dicom_read_header(path, &h, &v, reason, &err), HS_OK);
    CU_ASSERT(v == HS_DICOM_NOT_DICOM || v == HS_DICOM_CORRUPT);

    /* Starts like ACR-NEMA (group 0008) but is garbage after that. */
    hs_test_path(path, sizeof path, tmp_dir, "fake-acr");
    junk[0] = 0x08;
    junk[1] = 0x00;
    junk[2] = 0x10;
    junk[3] = 0x00;
    CU_ASSERT_EQUAL_FATAL(hs_test_write_file(path, junk, sizeof junk), 0);
    CU_ASSERT_EQUAL(hs_dicom_read_header(path, &h, &v, reason, &err), HS_OK);
    CU_ASSERT_NOT_EQUAL(v, HS_DICOM_OK);

    hs_test_path(path, sizeof path, tmp_dir, "missing.dcm");
    CU_ASSERT_EQUAL(hs_dicom_read_header(path, &h, &v, reason, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    CU_ASSERT_EQUAL(hs_dicom_read_header(tmp_dir, &h, &v, reason, &err), HS_ERR_IO);
    CU_ASSERT_EQUAL(hs_dicom_read_header(NULL, &h, &v, reason, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_dicom_read_hu(path, NULL, &one, &err), HS_ERR_ARG);
}

/* ---- synthetic slices ------------------------------------------------------ */

#define SYN 16
#define SYN_N (SYN * SYN)

/* Write s as name in the temporary folder, read it back; returns the
 * verdict and fills h, hu (if non-NULL and the verdict decodes). */
static hs_dicom_verdict write_and_read(const char *name, const hs_test_dicom_slice *s, hs_dicom_header *h,
                                       float *hu, char reason[256])
{
    char path[4096];
    hs_test_path(path, sizeof path, tmp_dir, name);
    CU_ASSERT_EQUAL_FATAL(hs_test_dicom_write(path, s), 0);
    hs_dicom_verdict v = HS_DICOM_NOT_DICOM;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_dicom_read_header(path, h, &v, reason, &err), HS_OK);
    if (hu != NULL) {
        hs_status st = hs_dicom_read_hu(path, h, hu, &err);
        if (st != HS_OK)
            fprintf(stderr, "test_dicom: %s: %s\n", name, err.msg);
        CU_ASSERT_EQUAL(st, HS_OK);
    }
    return v;
}

/* Stored values as 16-bit samples: a head-like picture, 60% air, 30%
 * brain, 10% bone, in the stored units the caller chooses. */
static void fill_head(unsigned short *px, int air, int brain, int bone)
{
    for (int i = 0; i < SYN_N; i++) {
        int k = i % 10;
        int v = k < 6 ? air : (k < 9 ? brain : bone);
        px[i] = (unsigned short)(v & 0xFFFF);
    }
}

static void check_head_hu(const float *hu, float air, float brain, float bone)
{
    int wrong = 0;
    for (int i = 0; i < SYN_N; i++) {
        int k = i % 10;
        float want = k < 6 ? air : (k < 9 ? brain : bone);
        if (hu[i] != want)
            wrong++;
    }
    if (wrong > 0)
        fprintf(stderr, "test_dicom: %d HU wrong (first values %g %g %g, want %g %g %g)\n", wrong, hu[0],
                hu[6], hu[9], air, brain, bone);
    CU_ASSERT_EQUAL(wrong, 0);
}

static void test_synthetic_basic(void)
{
    unsigned short px[SYN_N];
    float hu[SYN_N];
    hs_dicom_header h;
    char reason[256];
    hs_test_dicom_slice s;

    /* Signed 16-bit, intercept 0: stored values are HU. */
    fill_head(px, -1000, 40, 1200);
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    CU_ASSERT_EQUAL(write_and_read("signed.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    check_head_hu(hu, -1000, 40, 1200);
    CU_ASSERT_EQUAL(h.instance_number, 1);
    CU_ASSERT_STRING_EQUAL(h.sop_uid, "1.2.826.0.1.3680043.2.1143.99.1");
    CU_ASSERT(isnan(h.window_center_hu));

    /* Unsigned with slope 2 and intercept -1024. */
    fill_head(px, 12, 532, 1112);
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.pixel_representation = 0;
    s.slope = 2.0;
    s.intercept = -1024.0;
    CU_ASSERT_EQUAL(write_and_read("slope.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    check_head_hu(hu, -1000, 40, 1200);

    /* Big endian: same values. */
    fill_head(px, -1000, 40, 1200);
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.big_endian = 1;
    CU_ASSERT_EQUAL(write_and_read("bigendian.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    CU_ASSERT_STRING_EQUAL(h.transfer_syntax, "1.2.840.10008.1.2.2");
    check_head_hu(hu, -1000, 40, 1200);

    /* MONOCHROME1: HU come from the rescale alone (see dicom.h). */
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.photometric = "MONOCHROME1";
    CU_ASSERT_EQUAL(write_and_read("mono1.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    CU_ASSERT(h.monochrome1);
    check_head_hu(hu, -1000, 40, 1200);

    /* Missing InstanceNumber and an invalid UID are read as they are. */
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.has_instance_number = 0;
    s.sop_uid = "1.2.3.04.abc";
    CU_ASSERT_EQUAL(write_and_read("no-instance.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    CU_ASSERT_FALSE(h.has_instance_number);
    CU_ASSERT_STRING_EQUAL(h.sop_uid, "1.2.3.04.abc");
    check_head_hu(hu, -1000, 40, 1200);
}

static void test_synthetic_bits(void)
{
    unsigned short px[SYN_N];
    float hu[SYN_N];
    hs_dicom_header h;
    char reason[256];
    hs_test_dicom_slice s;

    /* Signed 12-bit in 16 with garbage above HighBit: the high nibble must
     * be dropped and bit 11 taken as the sign. */
    fill_head(px, -1000 & 0x0FFF, 40, 1200);
    for (int i = 0; i < SYN_N; i++)
        px[i] = (unsigned short)(px[i] | ((i % 3 == 0) ? 0xA000 : 0x5000));
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.bits_stored = 12;
    s.high_bit = 11;
    CU_ASSERT_EQUAL(write_and_read("garbage-signed.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    CU_ASSERT_EQUAL(h.bits_stored, 12);
    check_head_hu(hu, -1000, 40, 1200);

    /* Unsigned 12-bit with intercept -1024 and garbage above HighBit. */
    fill_head(px, 24, 1064, 2224);
    for (int i = 0; i < SYN_N; i++)
        px[i] = (unsigned short)(px[i] | 0xF000);
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.bits_stored = 12;
    s.high_bit = 11;
    s.pixel_representation = 0;
    s.intercept = -1024.0;
    CU_ASSERT_EQUAL(write_and_read("garbage-unsigned.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    check_head_hu(hu, -1000, 40, 1200);

    /* The unsigned 12-bit wrap-around: HU written straight into unsigned
     * 12-bit with intercept 0, so air (-1000) arrives as 3096. */
    fill_head(px, 4096 - 1000, 40, 1200);
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.bits_stored = 12;
    s.high_bit = 11;
    s.pixel_representation = 0;
    CU_ASSERT_EQUAL(write_and_read("wrapped.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    check_head_hu(hu, -1000, 40, 1200);

    /* ... but with an intercept of -1024 the same stored values are
     * legitimately high: no wrap. */
    s.intercept = -1024.0;
    CU_ASSERT_EQUAL(write_and_read("not-wrapped-intercept.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    check_head_hu(hu, 4096 - 1000 - 1024, 40 - 1024, 1200 - 1024);

    /* ... and a slice with intercept 0 where only a little dense bone is at
     * or above 2048 is not wrapped either (under 10% of the pixels). */
    for (int i = 0; i < SYN_N; i++)
        px[i] = (unsigned short)(i % 20 == 0 ? 2500 : (i % 2 ? 24 : 1064));
    s.intercept = 0.0;
    CU_ASSERT_EQUAL(write_and_read("not-wrapped-bone.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    int wrong = 0;
    for (int i = 0; i < SYN_N; i++)
        if (hu[i] != (float)px[i])
            wrong++;
    CU_ASSERT_EQUAL(wrong, 0);
}

static void test_synthetic_padding(void)
{
    unsigned short px[SYN_N];
    float hu[SYN_N];
    hs_dicom_header h;
    char reason[256];
    hs_test_dicom_slice s;

    /* GE style: signed, padding -2000 outside the scan field. */
    fill_head(px, -2000, 40, 1200);
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.has_padding = 1;
    s.padding_value = -2000;
    CU_ASSERT_EQUAL(write_and_read("pad-signed.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    CU_ASSERT(h.has_padding);
    check_head_hu(hu, -1024, 40, 1200);

    /* Unsigned with the padding at the top of the range: without the rule
     * it would be 3071 HU, i.e. bone all around the head. */
    fill_head(px, 4095, 1064, 2224);
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.pixel_representation = 0;
    s.bits_stored = 12;
    s.high_bit = 11;
    s.intercept = -1024.0;
    s.has_padding = 1;
    s.padding_value = 4095;
    CU_ASSERT_EQUAL(write_and_read("pad-unsigned.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    check_head_hu(hu, -1024, 40, 1200);
}

/* ---- Hounsfield unit checks (dicom.h, "Hounsfield units") ---------------- */

/* Large enough for the content check (HS_DICOM_CONTENT_MIN_PIXELS). */
#define BIG 64
#define BIG_N (BIG * BIG)

/* A head slice in stored units for slope and intercept: air_pct percent
 * air (-1000 HU), bone_pct bone (1200 HU), the rest brain (40 HU). */
static void fill_big_head(unsigned short *px, double slope, double intercept, int air_pct, int bone_pct)
{
    for (int i = 0; i < BIG_N; i++) {
        int k = i % 100;
        double hu = k < air_pct ? -1000.0 : (k < air_pct + bone_pct ? 1200.0 : 40.0);
        long v = lround((hu - intercept) / slope);
        px[i] = (unsigned short)((unsigned long)v & 0xFFFFu);
    }
}

static void check_big_head(const float *hu, int air_pct, int bone_pct)
{
    int wrong = 0;
    for (int i = 0; i < BIG_N; i++) {
        int k = i % 100;
        float want = k < air_pct ? -1000.0f : (k < air_pct + bone_pct ? 1200.0f : 40.0f);
        wrong += hu[i] != want;
    }
    CU_ASSERT_EQUAL(wrong, 0);
}

/* s, written as name, keeps an OK verdict, but hs_dicom_read_hu and
 * hs_slice_input_read refuse it with HS_ERR_FORMAT and a message naming
 * the file, what (the value) and the consequence. */
static void expect_hu_refused(const char *name, const hs_test_dicom_slice *s, const char *what)
{
    char path[4096];
    hs_test_path(path, sizeof path, tmp_dir, name);
    CU_ASSERT_EQUAL_FATAL(hs_test_dicom_write(path, s), 0);
    hs_dicom_header h;
    hs_dicom_verdict v = HS_DICOM_NOT_DICOM;
    char reason[256];
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_dicom_read_header(path, &h, &v, reason, &err), HS_OK);
    CU_ASSERT_EQUAL(v, HS_DICOM_OK);
    float *hu = malloc((size_t)h.rows * (size_t)h.columns * sizeof *hu);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hu);
    hs_status st = hs_dicom_read_hu(path, &h, hu, &err);
    free(hu);
    if (st != HS_ERR_FORMAT || strstr(err.msg, what) == NULL)
        fprintf(stderr, "test_dicom: %s: status %d, message '%s', expected '%s'\n", name, (int)st, err.msg, what);
    CU_ASSERT_EQUAL(st, HS_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, name));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, what));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "Hounsfield units would be meaningless"));

    /* --eval / --train on class folders read slices through here */
    hs_input_recipe recipe;
    hs_input_recipe_default(&recipe);
    float *in = malloc((size_t)recipe.width * (size_t)recipe.height * (size_t)recipe.channels * sizeof *in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    hs_error in_err = {0};
    CU_ASSERT_EQUAL(hs_slice_input_read(path, &recipe, in, &in_err), HS_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(in_err.msg, what));
    free(in);
}

static void test_hu_rescale_checks(void)
{
    unsigned short px[BIG_N];
    float hu[BIG_N];
    hs_dicom_header h;
    char reason[256];
    hs_test_dicom_slice s;

    /* signed 16-bit, stored = HU + 1024 */
    fill_big_head(px, 1.0, -1024.0, 60, 10);
    hs_test_dicom_slice_default(&s, BIG, BIG, px);
    s.intercept = -1024.0;
    CU_ASSERT_EQUAL(write_and_read("hu-normal.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    check_big_head(hu, 60, 10);

    s.intercept_text = "NaN";
    expect_hu_refused("hu-intercept-nan.dcm", &s, "RescaleIntercept is not a finite number");
    s.intercept_text = NULL;
    s.slope_text = "NaN";
    expect_hu_refused("hu-slope-nan.dcm", &s, "RescaleSlope is not a finite number");
    s.slope_text = NULL;
    s.slope = 0.0;
    expect_hu_refused("hu-slope-0.dcm", &s, "RescaleSlope 0:");
    s.slope = -1.0;
    expect_hu_refused("hu-slope-minus-1.dcm", &s, "RescaleSlope -1:");
    s.slope = 1e30;
    expect_hu_refused("hu-slope-1e30.dcm", &s, "RescaleSlope 1e+30:");
    /* positive and below the maximum, but 16 bits then span 65 HU */
    s.slope = 1e-3;
    expect_hu_refused("hu-slope-1e-3.dcm", &s, "RescaleSlope 0.001 ");
    s.slope = 1.0;
    s.intercept = 1e30;
    expect_hu_refused("hu-intercept-1e30.dcm", &s, "RescaleIntercept 1e+30 ");

    /* unsigned 12-bit, stored = HU + 1024, RescaleIntercept left out:
     * stored values as HU would have no air (bone under the 10% that
     * would look like the wrap-around) */
    fill_big_head(px, 1.0, -1024.0, 60, 5);
    hs_test_dicom_slice_default(&s, BIG, BIG, px);
    s.pixel_representation = 0;
    s.bits_stored = 12;
    s.high_bit = 11;
    s.intercept_text = "";
    expect_hu_refused("hu-unsigned-no-intercept.dcm", &s, "RescaleIntercept missing with unsigned 12-bit storage");

    /* ... unless the 12-bit wrap-around shows the values are HU */
    fill_big_head(px, 1.0, 0.0, 60, 10);
    for (int i = 0; i < BIG_N; i++)
        px[i] &= 0x0FFF;
    CU_ASSERT_EQUAL(write_and_read("hu-unsigned-wrapped-no-intercept.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    CU_ASSERT_FALSE(h.has_rescale_intercept);
    check_big_head(hu, 60, 10);

    /* slope 0.5, intercept -1024, unsigned 16-bit */
    fill_big_head(px, 0.5, -1024.0, 60, 10);
    hs_test_dicom_slice_default(&s, BIG, BIG, px);
    s.pixel_representation = 0;
    s.slope = 0.5;
    s.intercept = -1024.0;
    CU_ASSERT_EQUAL(write_and_read("hu-slope-half.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    check_big_head(hu, 60, 10);

    /* signed storage without any rescale: plain HU (old ACR-NEMA) */
    fill_big_head(px, 1.0, 0.0, 60, 10);
    hs_test_dicom_slice_default(&s, BIG, BIG, px);
    s.slope_text = "";
    s.intercept_text = "";
    CU_ASSERT_EQUAL(write_and_read("hu-signed-no-rescale.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    CU_ASSERT_FALSE(h.has_rescale_intercept);
    CU_ASSERT_DOUBLE_EQUAL(h.rescale_slope, 1.0, 0.0);
    check_big_head(hu, 60, 10);
}

static void test_hu_content_check(void)
{
    unsigned short px[BIG_N];
    float hu[BIG_N];
    hs_dicom_header h;
    char reason[256];
    hs_test_dicom_slice s;

    /* stored for intercept -1024, written -3000: air reads -2976 HU,
     * brain -1960, bone -800 (only bone in the air range: 10%) */
    fill_big_head(px, 1.0, -1024.0, 60, 10);
    hs_test_dicom_slice_default(&s, BIG, BIG, px);
    s.intercept = -3000.0;
    expect_hu_refused("hu-intercept-3000.dcm", &s, "with RescaleIntercept -3000");

    /* the same with the outside of the scan field as padding: padding is
     * not counted, so it cannot pass as air */
    fill_big_head(px, 1.0, -1024.0, 60, 10);
    for (int i = 0; i < BIG_N; i++)
        if (i % 100 < 50)
            px[i] = (unsigned short)-2000;
    s.has_padding = 1;
    s.padding_value = -2000;
    expect_hu_refused("hu-intercept-3000-padding.dcm", &s, "with RescaleIntercept -3000");

    /* a small field of view: 2% air, 13% bone, 85% brain */
    fill_big_head(px, 1.0, -1024.0, 2, 13);
    hs_test_dicom_slice_default(&s, BIG, BIG, px);
    s.intercept = -1024.0;
    CU_ASSERT_EQUAL(write_and_read("hu-small-fov.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    check_big_head(hu, 2, 13);

    /* above the vertex: nothing but air and a little bone */
    fill_big_head(px, 1.0, -1024.0, 95, 5);
    CU_ASSERT_EQUAL(write_and_read("hu-vertex.dcm", &s, &h, hu, reason), HS_DICOM_OK);
    check_big_head(hu, 95, 5);

    /* padding all around a small head: judged on the head alone */
    fill_big_head(px, 1.0, -1024.0, 0, 10);
    for (int i = 0; i < BIG_N; i++)
        if (i % 100 < 80)
            px[i] = (unsigned short)-2000;
    s.has_padding = 1;
    s.padding_value = -2000;
    CU_ASSERT_EQUAL(write_and_read("hu-padding-small-head.dcm", &s, &h, hu, reason), HS_DICOM_OK);
}

static void test_synthetic_classification(void)
{
    unsigned short px[SYN_N];
    float hu[SYN_N];
    hs_dicom_header h;
    char reason[256];
    hs_test_dicom_slice s;
    fill_head(px, -1000, 40, 1200);

    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.image_type = "ORIGINAL\\PRIMARY\\LOCALIZER";
    CU_ASSERT_EQUAL(write_and_read("localizer.dcm", &s, &h, hu, reason), HS_DICOM_LOCALIZER);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "LOCALIZER"));
    check_head_hu(hu, -1000, 40, 1200);

    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.image_type = "DERIVED\\PRIMARY\\AXIAL";
    CU_ASSERT_EQUAL(write_and_read("derived.dcm", &s, &h, NULL, reason), HS_DICOM_DERIVED);

    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.sop_class_uid = "1.2.840.10008.5.1.4.1.1.7";
    CU_ASSERT_EQUAL(write_and_read("sc.dcm", &s, &h, NULL, reason), HS_DICOM_DERIVED);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "secondary capture"));

    /* Coronal: row along x, column along -z. */
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    const double coronal[6] = {1, 0, 0, 0, 0, -1};
    memcpy(s.orientation, coronal, sizeof coronal);
    CU_ASSERT_EQUAL(write_and_read("coronal.dcm", &s, &h, hu, reason), HS_DICOM_NOT_AXIAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "90.0"));
    check_head_hu(hu, -1000, 40, 1200);

    /* 40 degrees oblique: not axial without tilt, axial with a 20 degree
     * gantry tilt (limit 30 + 20, capped at 45). */
    double a = 40.0 * M_PI / 180.0;
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    const double oblique[6] = {1, 0, 0, 0, cos(a), -sin(a)};
    memcpy(s.orientation, oblique, sizeof oblique);
    CU_ASSERT_EQUAL(write_and_read("oblique.dcm", &s, &h, NULL, reason), HS_DICOM_NOT_AXIAL);
    s.gantry_tilt = -20.0;
    CU_ASSERT_EQUAL(write_and_read("tilted.dcm", &s, &h, NULL, reason), HS_DICOM_OK);
    CU_ASSERT_DOUBLE_EQUAL(h.gantry_tilt, -20.0, 1e-9);

    /* Missing orientation: accepted, with a note. */
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.has_orientation = 0;
    CU_ASSERT_EQUAL(write_and_read("no-orientation.dcm", &s, &h, NULL, reason), HS_DICOM_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "ImageOrientationPatient"));

    /* Modality missing: the SOP class decides. */
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.modality = NULL;
    CU_ASSERT_EQUAL(write_and_read("no-modality-ct.dcm", &s, &h, NULL, reason), HS_DICOM_OK);
    s.sop_class_uid = "1.2.840.10008.5.1.4.1.1.4";
    CU_ASSERT_EQUAL(write_and_read("no-modality-mr.dcm", &s, &h, NULL, reason), HS_DICOM_NOT_CT);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "1.2.840.10008.5.1.4.1.1.4"));

    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.frames = 2;
    /* An old-style multi-frame CT: NumberOfFrames and one position, no
     * functional groups to place each frame. */
    CU_ASSERT_EQUAL(write_and_read("multiframe.dcm", &s, &h, NULL, reason), HS_DICOM_MULTIFRAME_UNSUPPORTED);
    CU_ASSERT_EQUAL(h.frames, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "no PerFrameFunctionalGroupsSequence"));

    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.photometric = "PALETTE COLOR";
    CU_ASSERT_EQUAL(write_and_read("palette.dcm", &s, &h, NULL, reason), HS_DICOM_UNSUPPORTED);

    /* A header that no longer matches the file is refused. */
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    CU_ASSERT_EQUAL(write_and_read("resized.dcm", &s, &h, NULL, reason), HS_DICOM_OK);
    h.rows = 8;
    char path[4096];
    hs_error err = {0};
    hs_test_path(path, sizeof path, tmp_dir, "resized.dcm");
    CU_ASSERT_EQUAL(hs_dicom_read_hu(path, &h, hu, &err), HS_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
}

/* ---- Enhanced CT (multi-frame) --------------------------------------------- */

/* The single-frame file of dir whose position along z is z; -1 if none. */
static int find_by_z(hs_dicom_header *hs, int n, double z)
{
    for (int i = 0; i < n; i++)
        if (fabs(hs[i].position[2] - z) < 1e-3)
            return i;
    return -1;
}

/* One syntax: the generator's series as single-frame files and as one
 * Enhanced CT file (frames shuffled, per-frame rescale varying) with the
 * same seed; every frame must have the single-frame slice's position and
 * exactly its HU, through a reader and through hs_dicom_read_hu. */
static void check_enhanced_syntax(const char *ts)
{
    enum { SLICES = 6, SIDE = 64 };
    char single[4096], enh[4096], opts[512], name[64];
    snprintf(name, sizeof name, "single-%s", ts);
    hs_test_path(single, sizeof single, tmp_dir, name);
    snprintf(name, sizeof name, "enhanced-%s", ts);
    hs_test_path(enh, sizeof enh, tmp_dir, name);
    snprintf(opts, sizeof opts, "--size %d --slices %d --seed 5 --ts %s", SIDE, SLICES, ts);
    int g = hs_test_generate(single, opts);
    if (g == 1)
        return;
    CU_ASSERT_EQUAL_FATAL(g, 0);
    snprintf(opts, sizeof opts, "--size %d --slices %d --seed 5 --ts %s --enhanced --enhanced-rescale vary --shuffle",
             SIDE, SLICES, ts);
    CU_ASSERT_EQUAL_FATAL(hs_test_generate(enh, opts), 0);

    hs_dicom_header *one = calloc(SLICES, sizeof *one);
    hs_dicom_header *frames = calloc(SLICES, sizeof *frames);
    hs_dicom_verdict fv[SLICES];
    char (*freason)[256] = calloc(SLICES, sizeof *freason);
    float *a = malloc(SIDE * SIDE * sizeof *a), *b = malloc(SIDE * SIDE * sizeof *b);
    hs_dicom_reader *reader = hs_dicom_reader_new();
    CU_ASSERT_FATAL(one != NULL && frames != NULL && freason != NULL && a != NULL && b != NULL && reader != NULL);
    hs_dicom_verdict v;
    char reason[256], path[4096];
    hs_error err = {0};
    for (int i = 0; i < SLICES; i++) {
        snprintf(name, sizeof name, "IM%04d.dcm", i + 1);
        hs_test_path(path, sizeof path, single, name);
        CU_ASSERT_EQUAL(hs_dicom_read_header(path, &one[i], &v, reason, &err), HS_OK);
        CU_ASSERT_EQUAL(v, HS_DICOM_OK);
    }
    /* the only file the enhanced run wrote */
    DIR *d = opendir(enh);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    path[0] = '\0';
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
        if (e->d_name[0] != '.')
            hs_test_path(path, sizeof path, enh, e->d_name);
    closedir(d);
    hs_dicom_header file;
    CU_ASSERT_EQUAL_FATAL(hs_dicom_read_header(path, &file, &v, reason, &err), HS_OK);
    CU_ASSERT_EQUAL(v, HS_DICOM_OK);
    CU_ASSERT_EQUAL(file.frames, SLICES);
    CU_ASSERT_EQUAL(file.frame, 0);
    CU_ASSERT_STRING_EQUAL(file.sop_class_uid, "1.2.840.10008.5.1.4.1.1.2.1");
    CU_ASSERT(file.has_position && file.has_orientation && file.has_pixel_spacing);
    CU_ASSERT_EQUAL_FATAL(hs_dicom_read_frames(path, &file, frames, fv, freason, &err), HS_OK);
    int sorted_in_file = 1, varied = 0, matched = 0;
    for (int k = 0; k < SLICES; k++) {
        CU_ASSERT_EQUAL(fv[k], HS_DICOM_OK);
        CU_ASSERT_EQUAL(frames[k].frame, k);
        CU_ASSERT_EQUAL(frames[k].frames, SLICES);
        CU_ASSERT_STRING_EQUAL(frames[k].image_type, "ORIGINAL\\PRIMARY\\AXIAL\\NONE");
        if (k > 0 && frames[k].position[2] < frames[k - 1].position[2])
            sorted_in_file = 0;
        varied += frames[k].rescale_slope != 1.0 || frames[k].rescale_intercept != 0.0;
        int i = find_by_z(one, SLICES, frames[k].position[2]);
        CU_ASSERT(i >= 0);
        if (i < 0)
            continue;
        CU_ASSERT_DOUBLE_EQUAL(frames[k].position[0], one[i].position[0], 1e-6);
        CU_ASSERT_DOUBLE_EQUAL(frames[k].pixel_spacing[0], one[i].pixel_spacing[0], 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(frames[k].slice_thickness, one[i].slice_thickness, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(frames[k].orientation[4], one[i].orientation[4], 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(frames[k].window_center_hu, one[i].window_center_hu, 1e-9);
        CU_ASSERT_EQUAL_FATAL(hs_dicom_read_hu(one[i].path, &one[i], a, &err), HS_OK);
        CU_ASSERT_EQUAL_FATAL(hs_dicom_reader_read_hu(reader, path, &frames[k], b, &err), HS_OK);
        int same = memcmp(a, b, SIDE * SIDE * sizeof *a) == 0;
        CU_ASSERT(same);
        if (!same)
            fprintf(stderr, "test_dicom: %s frame %d differs from %s\n", ts, k + 1, one[i].path);
        matched += same;
        if (k == SLICES - 1) {
            /* without a reader too */
            CU_ASSERT_EQUAL(hs_dicom_read_hu(path, &frames[k], b, &err), HS_OK);
            CU_ASSERT(memcmp(a, b, SIDE * SIDE * sizeof *a) == 0);
        }
    }
    CU_ASSERT_EQUAL(matched, SLICES);
    CU_ASSERT(!sorted_in_file); /* --shuffle put the frames out of order */
    CU_ASSERT(varied >= SLICES / 2);
    /* A frame the file does not have is refused. */
    frames[0].frame = SLICES;
    CU_ASSERT_EQUAL(hs_dicom_reader_read_hu(reader, path, &frames[0], b, &err), HS_ERR_FORMAT);
    hs_dicom_reader_free(reader);
    free(one);
    free(frames);
    free(freason);
    free(a);
    free(b);
}

static void test_enhanced_explicit(void)
{
    check_enhanced_syntax("explicit");
}

static void test_enhanced_jpeg_lossless(void)
{
    check_enhanced_syntax("jpeg-lossless");
}

static void test_enhanced_other_syntaxes(void)
{
    check_enhanced_syntax("big");
    check_enhanced_syntax("implicit");
    check_enhanced_syntax("rle");
    check_enhanced_syntax("jpeg-ls");
    check_enhanced_syntax("deflate");
}

/* Cut a good file at many lengths: nothing may crash; a cut inside the
 * pixels must be CORRUPT (not silently short), and a verdict that decodes
 * must decode or fail with HS_ERR_FORMAT. */
static void test_synthetic_truncated(void)
{
    unsigned short px[SYN_N];
    hs_test_dicom_slice s;
    fill_head(px, -1000, 40, 1200);
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    char good[4096], cut[4096];
    hs_test_path(good, sizeof good, tmp_dir, "whole.dcm");
    hs_test_path(cut, sizeof cut, tmp_dir, "cut.dcm");
    CU_ASSERT_EQUAL_FATAL(hs_test_dicom_write(good, &s), 0);
    size_t len = 0;
    unsigned char *bytes = hs_test_read_file(good, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
    CU_ASSERT_FATAL(len > SYN_N * 2);
    size_t pixels_start = len - SYN_N * 2;
    int corrupt_in_pixels = 0, cuts_in_pixels = 0;
    for (size_t at = 0; at < len; at += (at < 400 ? 7 : 61)) {
        CU_ASSERT_EQUAL_FATAL(hs_test_write_file(cut, bytes, at), 0);
        hs_dicom_header h;
        hs_dicom_verdict v;
        char reason[256];
        hs_error err = {0};
        hs_status st = hs_dicom_read_header(cut, &h, &v, reason, &err);
        CU_ASSERT_EQUAL(st, HS_OK);
        if (at > pixels_start) {
            cuts_in_pixels++;
            if (v == HS_DICOM_CORRUPT)
                corrupt_in_pixels++;
        }
        CU_ASSERT_NOT_EQUAL(v, HS_DICOM_OK);
        float hu[SYN_N];
        if (h.rows == SYN && h.columns == SYN) {
            st = hs_dicom_read_hu(cut, &h, hu, &err);
            CU_ASSERT_EQUAL(st, HS_ERR_FORMAT);
        }
    }
    CU_ASSERT(cuts_in_pixels > 0);
    CU_ASSERT_EQUAL(corrupt_in_pixels, cuts_in_pixels);
    free(bytes);
}

/* ---- two threads at once -------------------------------------------------- */

typedef struct {
    char path[4096];
    const float *want;
    size_t n;
    int rounds, mismatches, failures;
} decode_job;

static void *decode_thread(void *arg)
{
    decode_job *job = arg;
    float *hu = malloc(sizeof(float) * job->n);
    if (hu == NULL) {
        job->failures++;
        return NULL;
    }
    for (int r = 0; r < job->rounds; r++) {
        hs_dicom_header h;
        hs_dicom_verdict v;
        char reason[256];
        hs_error err = {0};
        if (hs_dicom_read_header(job->path, &h, &v, reason, &err) != HS_OK ||
            (size_t)h.rows * (size_t)h.columns != job->n || hs_dicom_read_hu(job->path, &h, hu, &err) != HS_OK) {
            job->failures++;
            continue;
        }
        if (memcmp(hu, job->want, sizeof(float) * job->n) != 0)
            job->mismatches++;
    }
    free(hu);
    return NULL;
}

static void test_two_threads(void)
{
    if (dicom_dir() == NULL)
        return;
    /* Different codecs in the two threads: JPEG lossless and JPEG 2000. */
    const char *files[2] = {"edge/ts_wg04_ct2_head/CT2_JPLL.dcm", "edge/ts_wg04_ct2_head/CT2_J2KR.dcm"};
    decode_job jobs[2];
    float *want[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        data_path(jobs[i].path, sizeof jobs[i].path, files[i]);
        hs_dicom_header h;
        want[i] = read_slice(jobs[i].path, &h);
        CU_ASSERT_PTR_NOT_NULL_FATAL(want[i]);
        jobs[i].want = want[i];
        jobs[i].n = (size_t)h.rows * (size_t)h.columns;
        jobs[i].rounds = 3;
    }
    pthread_t t[2];
    int started[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        started[i] = pthread_create(&t[i], NULL, decode_thread, &jobs[i]) == 0;
    for (int i = 0; i < 2; i++) {
        CU_ASSERT(started[i]);
        if (started[i])
            pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(jobs[i].failures, 0);
        CU_ASSERT_EQUAL(jobs[i].mismatches, 0);
        free(want[i]);
    }
}

/* ---- UIDs kept whole ----------------------------------------------------------- */

/* 1 if key is printable ASCII only (no control byte, nothing above '~'). */
static int printable_key(const char *key)
{
    for (const char *c = key; *c != '\0'; c++)
        if (*c < '!' || *c > '~')
            return 0;
    return 1;
}

/* Overwrites the first n bytes equal to from in the file at path with
 * to (n bytes too); 0 if done. */
static int replace_bytes(const char *path, const char *from, const char *to, size_t n)
{
    FILE *f = fopen(path, "r+b");
    if (f == NULL)
        return -1;
    char buf[8192];
    size_t len = fread(buf, 1, sizeof buf, f);
    int rc = -1;
    for (size_t i = 0; i + n <= len && rc != 0; i++) {
        if (memcmp(buf + i, from, n) == 0)
            rc = fseek(f, (long)i, SEEK_SET) == 0 && fwrite(to, 1, n, f) == n ? 0 : -1;
    }
    return fclose(f) == 0 ? rc : -1;
}

/* Reads the synthetic slice s as name; its header into h. */
static void read_uid_slice(const char *name, const hs_test_dicom_slice *s, hs_dicom_header *h)
{
    char reason[256];
    CU_ASSERT_EQUAL(write_and_read(name, s, h, NULL, reason), HS_DICOM_OK);
    CU_ASSERT(strlen(h->study_uid) < HS_UID_KEY_MAX);
    CU_ASSERT(printable_key(h->study_uid));
    CU_ASSERT(printable_key(h->series_uid));
    CU_ASSERT(printable_key(h->sop_uid));
}

/* Issue 20: UIDs were cut at 64 bytes and at a NUL, so two studies whose
 * StudyInstanceUIDs differ only after that became one. */
static void test_uid_keys(void)
{
    unsigned short px[SYN_N] = {0};
    hs_test_dicom_slice s;
    hs_dicom_header a, b;
    char uid_a[128], uid_b[128];
    /* 80 bytes of digits and dots, the same first 64; they differ at byte 70. */
    const char *base = "1.2.826.0.1.3680043.2.1143.20.1234567890.1234567890.1234567890.1234567890.123456";
    CU_ASSERT_EQUAL_FATAL(strlen(base), 80);
    snprintf(uid_a, sizeof uid_a, "%s", base);
    snprintf(uid_b, sizeof uid_b, "%s", base);
    uid_b[69] = uid_b[69] == '1' ? '2' : '1';
    hs_test_dicom_slice_default(&s, SYN, SYN, px);
    s.study_uid = uid_a;
    read_uid_slice("uid_long_a.dcm", &s, &a);
    s.study_uid = uid_b;
    read_uid_slice("uid_long_b.dcm", &s, &b);
    CU_ASSERT_STRING_NOT_EQUAL(a.study_uid, b.study_uid);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.study_uid, "#sha256:"));
    CU_ASSERT_EQUAL(strncmp(a.study_uid, base, 64), 0); /* the prefix shows the value */
    CU_ASSERT_STRING_EQUAL(a.study_uid_note, "StudyInstanceUID is 80 bytes (DICOM allows 64)");
    CU_ASSERT_STRING_EQUAL(a.series_uid_note, "");
    CU_ASSERT_STRING_EQUAL(a.series_uid, "1.2.826.0.1.3680043.2.1143.99.3"); /* conformant: as is */

    /* A NUL at byte 20, then different tails. */
    memcpy(uid_a, "1.2.826.0.1.3680043", 19);
    memcpy(uid_b, uid_a, 19);
    uid_a[19] = uid_b[19] = '\0';
    memcpy(uid_a + 20, "1.2.3", 5);
    memcpy(uid_b + 20, "1.2.4", 5);
    s.study_uid = uid_a;
    s.study_uid_len = 25;
    read_uid_slice("uid_nul_a.dcm", &s, &a);
    s.study_uid = uid_b;
    read_uid_slice("uid_nul_b.dcm", &s, &b);
    CU_ASSERT_STRING_NOT_EQUAL(a.study_uid, b.study_uid);
    CU_ASSERT_EQUAL(strncmp(a.study_uid, "1.2.826.0.1.3680043\\x001.2.3#sha256:", 36), 0);
    CU_ASSERT_STRING_EQUAL(a.study_uid_note, "StudyInstanceUID holds a NUL at byte 20");

    /* Trailing NUL padding is DICOM's, not the value's: a conformant UID. */
    s.study_uid = "1.2.3\0";
    s.study_uid_len = 6;
    read_uid_slice("uid_padded.dcm", &s, &a);
    CU_ASSERT_STRING_EQUAL(a.study_uid, "1.2.3");
    CU_ASSERT_STRING_EQUAL(a.study_uid_note, "");

    /* An anonymizer's identifier stays as written (label files name it so),
     * with a note; a control byte or a '#' makes a hashed key. */
    s.study_uid_len = 0;
    s.study_uid = "1.2.3";
    s.sop_uid = "ID_0a1b2c3d4";
    s.series_uid = "1.2.3\0014";
    read_uid_slice("uid_odd.dcm", &s, &a);
    CU_ASSERT_STRING_EQUAL(a.sop_uid, "ID_0a1b2c3d4");
    CU_ASSERT_STRING_EQUAL(a.sop_uid_note, "SOPInstanceUID holds 'I' at byte 1 (a UID has digits and dots only)");
    CU_ASSERT_EQUAL(strncmp(a.series_uid, "1.2.3\\x014#sha256:", 18), 0);
    CU_ASSERT_EQUAL(strlen(a.series_uid), 10 + 8 + 64);
    CU_ASSERT_STRING_EQUAL(a.series_uid_note, "SeriesInstanceUID holds control byte 0x01 at byte 6");
    /* DCMTK deletes white space inside a UI value when it hands out the
     * text (and when it writes one), which would make "1.2.3 4" the same
     * series as "1.2.34": the file is edited after writing. */
    char path[4096];
    hs_test_path(path, sizeof path, tmp_dir, "uid_odd.dcm");
    CU_ASSERT_EQUAL_FATAL(replace_bytes(path, "1.2.3\0014", "1.2.3 4", 7), 0);
    hs_error err = {0};
    hs_dicom_verdict v;
    char reason[256];
    CU_ASSERT_EQUAL_FATAL(hs_dicom_read_header(path, &b, &v, reason, &err), HS_OK);
    CU_ASSERT_EQUAL(strncmp(b.series_uid, "1.2.3\\x204#sha256:", 18), 0);
    CU_ASSERT_STRING_NOT_EQUAL(b.series_uid, a.series_uid);
    CU_ASSERT_STRING_EQUAL(b.series_uid_note, "SeriesInstanceUID holds a space at byte 6");
    s.series_uid = "1.2#3";
    read_uid_slice("uid_hash.dcm", &s, &b);
    CU_ASSERT_EQUAL(strncmp(b.series_uid, "1.2\\x233#sha256:", 16), 0);
}

int hs_register_dicom_tests(void)
{
    static const hs_test_case tests[] = {
        {"verdict names", test_verdict_names},
        {"every shared sample file: verdict and decode", test_manifest_files},
        {"WG04 head slice: six transfer syntaxes agree", test_transfer_syntaxes},
        {"GE tilted head series: 28 slices, tilt 18.5", test_ge_tilted_series},
        {"JPEG 2000 PixelRepresentation mismatch", test_j2k_pixelrep_mismatch},
        {"ACR-NEMA file without preamble", test_acr_nema},
        {"refusals name what was seen", test_reasons},
        {"hostile files: J2K and JPEG frames, BitsStored, deflate limits, false lengths, sizes", test_hostile_files},
        {"files that are not DICOM", test_not_dicom},
        {"synthetic: rescale, big endian, MONOCHROME1, missing fields", test_synthetic_basic},
        {"synthetic: BitsStored masking and 12-bit wrap-around", test_synthetic_bits},
        {"synthetic: PixelPaddingValue", test_synthetic_padding},
        {"synthetic: classification", test_synthetic_classification},
        {"Hounsfield units: rescale checks (NaN, slope, range, missing intercept)", test_hu_rescale_checks},
        {"Hounsfield units: content check (intercept -3000, small FOV, vertex)", test_hu_content_check},
        {"synthetic: truncated at every part", test_synthetic_truncated},
        {"two threads decoding at once", test_two_threads},
        {"Enhanced CT, explicit little endian: frames = single-frame slices", test_enhanced_explicit},
        {"Enhanced CT, JPEG lossless: frames = single-frame slices", test_enhanced_jpeg_lossless},
        {"Enhanced CT, big endian, implicit, RLE, JPEG-LS, deflate", test_enhanced_other_syntaxes},
        {"UIDs kept whole: past 64 bytes, past a NUL, with a note", test_uid_keys},
    };
    return hs_test_add_suite("dicom stage", suite_init, suite_clean, tests, sizeof tests / sizeof tests[0]);
}
