/* fuzz_png.c - libFuzzer target for the PNG reading stage.
 *
 * Each input is a PNG file's bytes; fuzz/harness.c repairs their chunk
 * CRCs, decodes them with hs_png_read_buffer and turns the picture into
 * the network's input with hs_prepare_input (gray, head crop, fit to
 * 150 x 150), as training and --predict do, and checks the documented
 * contract. A broken contract aborts, so libFuzzer keeps the input like
 * any crash. Built with clang by `make fuzz` (Makefile.am) and run by
 * `make check-fuzz`; the inputs it found are kept in fuzz/regressions/png/
 * and replayed by make check. */
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hs_fuzz_run_or_abort(hs_fuzz_png, data, size, "fuzz_png");
    return 0;
}
