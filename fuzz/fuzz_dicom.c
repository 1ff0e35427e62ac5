/* fuzz_dicom.c - libFuzzer target for the DICOM reading stage.
 *
 * Each input is a file's bytes; fuzz/harness.c runs them through
 * hs_dicom_read_header and, when the verdict allows it, hs_dicom_read_hu,
 * as a study does, and checks the documented contract. A broken contract aborts, so libFuzzer keeps the
 * input like any crash. Built with clang by `make fuzz` (Makefile.am) and
 * run by `make check-fuzz`; the inputs it found are kept in
 * fuzz/regressions/dicom/ and replayed by make check. */
#include <stdlib.h>

#include "harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* libFuzzer leaves through exit() when its time is up. */
    atexit(hs_fuzz_cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hs_fuzz_run_or_abort(hs_fuzz_dicom, data, size, "fuzz_dicom");
    return 0;
}
