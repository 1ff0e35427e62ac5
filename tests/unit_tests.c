/* unit_tests.c - the CUnit runner for every module's suite.
 *
 * Each tests/test_*.c exposes one hs_register_*_tests function; this file
 * only registers them and runs them, so adding a suite is one line here.
 * The exit status is non-zero when any assertion failed, which is what
 * automake's test harness reads. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

int hs_register_base_tests(void);
int hs_register_fileio_tests(void);
int hs_register_cnn_tests(void);
int hs_register_optim_tests(void);
int hs_register_model_tests(void);
int hs_register_image_tests(void);
int hs_register_metrics_tests(void);
int hs_register_train_tests(void);
int hs_register_crossval_tests(void);
int hs_register_sources_tests(void);
int hs_register_subtypes_tests(void);
int hs_register_dicom_tests(void);
int hs_register_ljpeg_tests(void);
int hs_register_series_tests(void);
int hs_register_study_tests(void);
int hs_register_audit_tests(void);
int hs_register_watch_tests(void);
int hs_register_watcher_tests(void);
int hs_register_review_tests(void);
int hs_register_tiffout_tests(void);
int hs_register_fuzz_regression_tests(void);
int hs_register_validation_tests(void);

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (hs_register_base_tests() != 0 || hs_register_fileio_tests() != 0 || hs_register_cnn_tests() != 0 ||
        hs_register_optim_tests() != 0 || hs_register_model_tests() != 0 ||
        hs_register_image_tests() != 0 || hs_register_metrics_tests() != 0 ||
        hs_register_validation_tests() != 0 ||
        hs_register_train_tests() != 0 || hs_register_crossval_tests() != 0 ||
        hs_register_sources_tests() != 0 || hs_register_subtypes_tests() != 0 ||
        hs_register_dicom_tests() != 0 ||
        hs_register_ljpeg_tests() != 0 ||
        hs_register_audit_tests() != 0 ||
        hs_register_series_tests() != 0 || hs_register_study_tests() != 0 ||
        hs_register_watch_tests() != 0 || hs_register_watcher_tests() != 0 ||
        hs_register_review_tests() != 0 ||
        hs_register_tiffout_tests() != 0 ||
        hs_register_fuzz_regression_tests() != 0) {
        fprintf(stderr, "unit_tests: could not register a suite: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    /* HEMOSCAN_SUITE=name runs one suite (e.g. under valgrind while
     * working on it); unset, every suite runs. */
    const char *only = getenv("HEMOSCAN_SUITE");
    if (only != NULL && only[0] != '\0') {
        CU_pSuite suite = CU_get_suite(only);
        if (suite == NULL) {
            fprintf(stderr, "unit_tests: no suite named \"%s\"\n", only);
            CU_cleanup_registry();
            return 2;
        }
        CU_basic_run_suite(suite);
    } else {
        CU_basic_run_tests();
    }
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
