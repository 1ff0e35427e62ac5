/* test_fuzz_regressions.c - CUnit suite that replays every input the
 * fuzzers ever broke the readers with, registered by
 * hs_register_fuzz_regression_tests().
 *
 * The inputs live in fuzz/regressions/dicom/ and fuzz/regressions/png/ of
 * the source tree ($HEMOSCAN_SRCDIR, set by make check; the current folder
 * otherwise). Each goes through fuzz/harness.c, the very calls and checks
 * the libFuzzer targets make, so make check catches a reader that crashes
 * or breaks its contract again on an old finding, with gcc and without
 * clang; under the sanitizer and valgrind steps of CI it is checked for
 * memory errors as well. A folder that is missing or empty fails the test:
 * every regression folder holds at least one input, and a tarball without
 * them would test nothing. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "../fuzz/harness.h"
#include "test_util.h"

int hs_register_fuzz_regression_tests(void);

static int suite_clean(void)
{
    hs_fuzz_cleanup();
    return 0;
}

/* Replays every file of fuzz/regressions/KIND through run; returns how
 * many there were. */
static int replay(const char *kind, int (*run)(const uint8_t *, size_t, char *, size_t))
{
    char rel[64], dir[4096];
    snprintf(rel, sizeof rel, "fuzz/regressions/%s", kind);
    hs_test_source_path(dir, sizeof dir, rel);
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "\n  no regression folder %s (set HEMOSCAN_SRCDIR)\n", dir);
        return 0;
    }
    int n = 0;
    char path[4400], why[1024];
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        hs_test_path(path, sizeof path, dir, e->d_name);
        size_t len;
        unsigned char *buf = hs_test_read_file(path, &len);
        CU_ASSERT_PTR_NOT_NULL(buf);
        if (buf == NULL)
            continue;
        n++;
        if (run(buf, len, why, sizeof why) != 0) {
            fprintf(stderr, "\n  %s: %s\n", path, why);
            CU_FAIL("a fuzz regression input breaks the reader again (see above)");
        }
        free(buf);
    }
    closedir(d);
    return n;
}

static void test_dicom_regressions(void)
{
    CU_ASSERT(replay("dicom", hs_fuzz_dicom) > 0);
}

static void test_png_regressions(void)
{
    CU_ASSERT(replay("png", hs_fuzz_png) > 0);
}

int hs_register_fuzz_regression_tests(void)
{
    static const hs_test_case tests[] = {
        {"DICOM reader: fuzz/regressions/dicom", test_dicom_regressions},
        {"PNG reader: fuzz/regressions/png", test_png_regressions},
    };
    return hs_test_add_suite("fuzz regressions", NULL, suite_clean, tests, sizeof tests / sizeof tests[0]);
}
