/* test_fileio.c - CUnit suite for the shared file helpers (fileio.c),
 * registered by hs_register_fileio_tests().
 *
 * The model and plot suites already see these helpers through their
 * callers; this suite pins what the callers cannot easily provoke: the size
 * limit of a read and its boundary, the terminating 0, the exact mode of a
 * written file, an empty write, the old file surviving a failed write, and
 * no temporary file left behind on any path. */
#include <errno.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <CUnit/CUnit.h>

#include "hemoscan/fileio.h"
#include "hemoscan/status.h"
#include "test_util.h"

int hs_register_fileio_tests(void);

static char tmp_dir[4096];

static int suite_init(void)
{
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "fileio");
}

static int suite_clean(void)
{
    return hs_test_tmpdir_remove(tmp_dir);
}

static void test_read_all(void)
{
    char path[4400];
    hs_error err = {HS_OK, ""};
    unsigned char *data;
    size_t len;
    hs_test_path(path, sizeof path, tmp_dir, "ten.txt");
    CU_ASSERT_FATAL(hs_test_write_file(path, "0123456789", 10) == 0);
    CU_ASSERT_EQUAL_FATAL(hs_file_read_all(path, SIZE_MAX, &data, &len, &err), HS_OK);
    CU_ASSERT(len == 10 && memcmp(data, "0123456789", 10) == 0 && data[10] == 0);
    free(data);
    /* The limit is inclusive. */
    CU_ASSERT_EQUAL_FATAL(hs_file_read_all(path, 10, &data, &len, &err), HS_OK);
    CU_ASSERT(len == 10 && data[10] == 0);
    free(data);
    CU_ASSERT_EQUAL(hs_file_read_all(path, 9, &data, &len, &err), HS_ERR_FORMAT);
    CU_ASSERT(data == NULL && len == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));

    hs_test_path(path, sizeof path, tmp_dir, "empty.txt");
    CU_ASSERT_FATAL(hs_test_write_file(path, "", 0) == 0);
    CU_ASSERT_EQUAL_FATAL(hs_file_read_all(path, 0, &data, &len, &err), HS_OK);
    CU_ASSERT(len == 0 && data != NULL && data[0] == 0);
    free(data);

    hs_test_path(path, sizeof path, tmp_dir, "does-not-exist.txt");
    CU_ASSERT_EQUAL(hs_file_read_all(path, SIZE_MAX, &data, &len, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, strerror(ENOENT)));
    CU_ASSERT(data == NULL && len == 0);
    /* A directory opens but cannot be read. */
    CU_ASSERT_EQUAL(hs_file_read_all(tmp_dir, SIZE_MAX, &data, &len, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, tmp_dir));
    /* Not a regular file: no size to go by, so the buffer grows. */
    CU_ASSERT_EQUAL(hs_file_read_all("/dev/zero", 200000, &data, &len, &err), HS_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/dev/zero"));
}

static void test_write_atomic(void)
{
    char path[4400];
    hs_error err = {HS_OK, ""};
    unsigned char *data;
    size_t len;
    struct stat sb;
    hs_test_path(path, sizeof path, tmp_dir, "out.txt");
    CU_ASSERT_EQUAL_FATAL(hs_file_write_atomic(path, "first", 5, 0644, &err), HS_OK);
    CU_ASSERT(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0644);
    CU_ASSERT_EQUAL_FATAL(hs_file_write_atomic(path, "second", 6, 0600, &err), HS_OK);
    CU_ASSERT(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    data = hs_test_read_file(path, &len);
    CU_ASSERT(data != NULL && len == 6 && memcmp(data, "second", 6) == 0);
    free(data);
    CU_ASSERT_EQUAL_FATAL(hs_file_write_atomic(path, NULL, 0, 0644, &err), HS_OK);
    CU_ASSERT(stat(path, &sb) == 0 && sb.st_size == 0);
    CU_ASSERT(!hs_test_has_temp_files(tmp_dir));

    /* Failures name the file, leave no temporary file and do not touch
     * what was there. */
    CU_ASSERT_EQUAL(hs_file_write_atomic(path, NULL, 3, 0644, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_file_write_atomic(NULL, "x", 1, 0644, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_file_write_atomic("", "x", 1, 0644, &err), HS_ERR_ARG);
    hs_test_path(path, sizeof path, tmp_dir, "no-such-dir/out.txt");
    CU_ASSERT_EQUAL(hs_file_write_atomic(path, "x", 1, 0644, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    hs_test_path(path, sizeof path, tmp_dir, "a-directory");
    CU_ASSERT_FATAL(mkdir(path, 0755) == 0);
    CU_ASSERT_EQUAL(hs_file_write_atomic(path, "x", 1, 0644, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "rename"));
    CU_ASSERT(!hs_test_has_temp_files(tmp_dir));
}

/* A writer that fails after writing part of the file. */
static int failing_writer(FILE *f, void *ctx)
{
    (void)ctx;
    fputs("partial", f);
    return ENOSPC;
}

static void test_write_atomic_writer_fails(void)
{
    char path[4400];
    hs_error err = {HS_OK, ""};
    size_t len;
    hs_test_path(path, sizeof path, tmp_dir, "kept.txt");
    CU_ASSERT_FATAL(hs_test_write_file(path, "old", 3) == 0);
    CU_ASSERT_EQUAL(hs_file_write_atomic_with(path, 0644, failing_writer, NULL, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, strerror(ENOSPC)));
    unsigned char *data = hs_test_read_file(path, &len);
    CU_ASSERT(data != NULL && len == 3 && memcmp(data, "old", 3) == 0);
    free(data);
    CU_ASSERT(!hs_test_has_temp_files(tmp_dir));
    CU_ASSERT_EQUAL(hs_file_write_atomic_with(path, 0644, NULL, NULL, &err), HS_ERR_ARG);
}

/* Inside the pair the C locale holds; after it the caller's is back. */
static void test_c_locale(void)
{
    static const char *const commas[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", NULL};
    char before[512];
    snprintf(before, sizeof before, "%s", setlocale(LC_NUMERIC, NULL));
    const char *comma = NULL;
    for (int i = 0; commas[i] != NULL && comma == NULL; i++)
        comma = setlocale(LC_NUMERIC, commas[i]) != NULL ? commas[i] : NULL;
    char text[32];
    hs_c_locale loc;
    CU_ASSERT_FATAL(hs_c_locale_enter(&loc));
    snprintf(text, sizeof text, "%.1f", 0.5);
    CU_ASSERT_STRING_EQUAL(text, "0.5");
    CU_ASSERT(strtod("0.25", NULL) == 0.25);
    hs_c_locale_leave(&loc);
    snprintf(text, sizeof text, "%.1f", 0.5);
    if (comma != NULL) {
        CU_ASSERT_STRING_EQUAL(text, "0,5");
    } else {
        printf("\n  no decimal-comma locale installed: checked the C locale only\n");
    }
    setlocale(LC_NUMERIC, before);
}

int hs_register_fileio_tests(void)
{
    static const hs_test_case tests[] = {
        {"read: whole file, limit, terminating 0, errors", test_read_all},
        {"atomic write: content, mode, errors", test_write_atomic},
        {"atomic write: failed writer keeps the old file", test_write_atomic_writer_fails},
        {"C numeric locale enter and leave", test_c_locale},
    };
    return hs_test_add_suite("file helpers", suite_init, suite_clean, tests, sizeof tests / sizeof tests[0]);
}
