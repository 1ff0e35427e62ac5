/* test_subtypes.c - CUnit suite for the subtype labels file and the
 * per-subtype sensitivity (subtypes.h).
 *
 * The labels files are written here, in the shapes the module promises to
 * read: the RSNA form (file and sop_instance_uid columns, empty values,
 * extra columns), a plain id column, quoted fields and CRLF; and the ones
 * it must refuse, each by file and line. The data set is a list of paths,
 * as a scan would give. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hemoscan/subtypes.h"
#include "test_util.h"

static char tmp_dir[4096];

static int suite_init(void)
{
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "subtypes");
}

static int suite_clean(void)
{
    return hs_test_tmpdir_remove(tmp_dir);
}

/* A data set of the given paths (labels: 1 for paths with "/hemorrhage/"). */
static void paths_dataset(hs_dataset *ds, const char *const *paths, int n)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->n_classes = 2;
    ds->path = calloc((size_t)n, sizeof *ds->path);
    ds->id = calloc((size_t)n, sizeof *ds->id);
    ds->label = calloc((size_t)n, sizeof *ds->label);
    ds->group = calloc((size_t)n, sizeof *ds->group);
    for (int i = 0; i < n; i++) {
        ds->path[i] = strdup(paths[i]);
        ds->id[i] = strdup("unused");
        ds->label[i] = strstr(paths[i], "/hemorrhage/") != NULL;
        ds->group[i] = i;
    }
}

/* tmp_dir/name with text in it; its path into path. */
static void write_csv(const char *name, const char *text, char *path, size_t cap)
{
    hs_test_path(path, cap, tmp_dir, name);
    CU_ASSERT_FATAL(hs_test_write_file(path, text, strlen(text)) == 0);
}

#define VALUE(l, file, s) ((l).value[(size_t)(file) * HS_SUBTYPES + (s)])
enum { EDH, IPH, IVH, SAH, SDH };

static void test_rsna_form(void)
{
    const char *paths[] = {
        "/data/rsna/dicom/hemorrhage/ID_a.dcm", /* by file */
        "/data/rsna/png/hemorrhage/ID_a.png",   /* by id: same slice, other rendering */
        "/data/rsna/dicom/normal/ID_b",         /* by id, no extension */
        "/data/rsna/dicom/normal/ID_zz.dcm",    /* no row */
        "/elsewhere/xdicom/hemorrhage/ID_c.dcm" /* "dicom/..." must match at a folder boundary only */
    };
    hs_dataset ds;
    paths_dataset(&ds, paths, 5);
    char path[4400];
    write_csv("labels.csv",
              "file,sop_instance_uid,epidural,intraparenchymal,intraventricular,subarachnoid,subdural,any,source\r\n"
              "dicom/hemorrhage/ID_a.dcm,ID_a,0,1,,0,1,1,x@y:z\r\n"
              "dicom/normal/ID_b.dcm,ID_b,0,0,0,0,0,0,x\r\n"
              "dicom/hemorrhage/ID_c.dcm,ID_other,1,0,0,0,0,1,x\r\n",
              path, sizeof path);
    hs_subtype_labels l;
    hs_error err;
    CU_ASSERT_FATAL(hs_subtypes_load(path, &ds, &l, &err) == HS_OK);
    CU_ASSERT_EQUAL(l.matched, 3);
    for (int s = 0; s < HS_SUBTYPES; s++)
        CU_ASSERT_EQUAL(l.column[s], 1);
    CU_ASSERT_EQUAL(VALUE(l, 0, IPH), 1);
    CU_ASSERT_EQUAL(VALUE(l, 0, SDH), 1);
    CU_ASSERT_EQUAL(VALUE(l, 0, EDH), 0);
    CU_ASSERT_EQUAL(VALUE(l, 0, IVH), -1); /* empty: not known */
    CU_ASSERT_EQUAL(VALUE(l, 1, IPH), 1);  /* the PNG, by its id */
    CU_ASSERT_EQUAL(VALUE(l, 2, SDH), 0);
    CU_ASSERT_EQUAL(VALUE(l, 3, SDH), -1);
    CU_ASSERT_EQUAL(VALUE(l, 4, EDH), -1);
    hs_subtypes_free(&l);
    hs_dataset_free(&ds);
}

static void test_id_column_and_quotes(void)
{
    const char *paths[] = {"d/hemorrhage/one.png", "d/hemorrhage/two.png", "d/normal/three.png"};
    hs_dataset ds;
    paths_dataset(&ds, paths, 3);
    char path[4400];
    write_csv("ids.csv",
              "\"subdural\",name,id\n"
              "1,\"a, b\",one\n"
              "\"0\",\"say \"\"hi\"\"\",\"two\"\n"
              "\n",
              path, sizeof path);
    hs_subtype_labels l;
    hs_error err;
    CU_ASSERT_FATAL(hs_subtypes_load(path, &ds, &l, &err) == HS_OK);
    CU_ASSERT_EQUAL(l.matched, 2);
    CU_ASSERT_EQUAL(l.column[SDH], 1);
    CU_ASSERT_EQUAL(l.column[EDH], 0);
    CU_ASSERT_EQUAL(VALUE(l, 0, SDH), 1);
    CU_ASSERT_EQUAL(VALUE(l, 1, SDH), 0);
    CU_ASSERT_EQUAL(VALUE(l, 2, SDH), -1);
    hs_subtypes_free(&l);
    hs_dataset_free(&ds);
}

static void test_refused(void)
{
    const char *paths[] = {"d/hemorrhage/one.png"};
    hs_dataset ds;
    paths_dataset(&ds, paths, 1);
    char path[4400];
    hs_subtype_labels l;
    hs_error err;
    write_csv("noid.csv", "name,subdural\none,1\n", path, sizeof path);
    CU_ASSERT(hs_subtypes_load(path, &ds, &l, &err) == HS_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "noid.csv:1: no id column"));
    write_csv("nosub.csv", "id,any\none,1\n", path, sizeof path);
    CU_ASSERT(hs_subtypes_load(path, &ds, &l, &err) == HS_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "nosub.csv:1: no subtype column"));
    write_csv("bad.csv", "id,subdural\nzero,0\none,yes\n", path, sizeof path);
    CU_ASSERT(hs_subtypes_load(path, &ds, &l, &err) == HS_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "bad.csv:3: subdural is 'yes'"));
    write_csv("empty.csv", "", path, sizeof path);
    CU_ASSERT(hs_subtypes_load(path, &ds, &l, &err) == HS_ERR_FORMAT);
    hs_test_path(path, sizeof path, tmp_dir, "missing.csv");
    CU_ASSERT(hs_subtypes_load(path, &ds, &l, &err) == HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "missing.csv"));
    CU_ASSERT_PTR_NULL(l.value);
    hs_dataset_free(&ds);
}

static void test_sensitivity(void)
{
    /* files: 0, 1, 2 subdural; 3 subdural but in the normal class; 4 IPH */
    signed char value[5 * HS_SUBTYPES];
    memset(value, 0, sizeof value);
    for (int f = 0; f < 4; f++)
        value[f * HS_SUBTYPES + SDH] = 1;
    value[4 * HS_SUBTYPES + IPH] = 1;
    value[2 * HS_SUBTYPES + IPH] = -1;
    hs_subtype_labels l = {5, {1, 1, 1, 1, 1}, value, 5};
    l.column[IVH] = 0;
    /* images: file 0 twice (repeated folds), 1, 2, 3, 4 */
    const int source[] = {0, 0, 1, 2, 3, 4};
    const int label[] = {1, 1, 1, 1, 0, 1};
    const int flagged[] = {1, 0, 1, 0, 1, 1};
    hs_subtype_stat st[HS_SUBTYPES];
    hs_subtype_sensitivity(&l, source, label, flagged, 6, 1, st);
    CU_ASSERT_EQUAL(st[SDH].n, 4); /* file 3 is not a positive image */
    CU_ASSERT_EQUAL(st[SDH].found, 2);
    CU_ASSERT_DOUBLE_EQUAL(st[SDH].sensitivity, 0.5, 1e-12);
    CU_ASSERT_EQUAL(st[IPH].n, 1);
    CU_ASSERT_EQUAL(st[IPH].found, 1);
    CU_ASSERT_EQUAL(st[EDH].n, 0);
    CU_ASSERT(isnan(st[EDH].sensitivity));
    CU_ASSERT_EQUAL(st[IVH].column, 0);
    CU_ASSERT_EQUAL(st[SDH].column, 1);
}

int hs_register_subtypes_tests(void)
{
    static const hs_test_case tests[] = {
        {"the RSNA labels form: file column, then id", test_rsna_form},
        {"an id column, quoted fields, empty lines", test_id_column_and_quotes},
        {"no id, no subtype, bad values and missing files are refused", test_refused},
        {"sensitivity per subtype counts positive images only", test_sensitivity},
    };
    return hs_test_add_suite("subtypes", suite_init, suite_clean, tests, sizeof tests / sizeof tests[0]);
}
