/* harness.h - what the fuzz targets do with one input, and what must hold
 * afterwards, shared by the libFuzzer targets (fuzz/fuzz_dicom.c,
 * fuzz/fuzz_png.c) and the regression test of `make check`
 * (tests/test_fuzz_regressions.c).
 *
 * One implementation for both, so that a crash file kept in
 * fuzz/regressions/ is replayed by make check through exactly the calls
 * that crashed under the fuzzer, without needing clang. Each function runs
 * the reader the way production runs it on an untrusted file and checks
 * the documented contract on the way (statuses, verdict names, sizes,
 * pixel ranges, messages naming the input): a broken contract is a finding
 * too, not only a crash. */
#ifndef HEMOSCAN_FUZZ_HARNESS_H
#define HEMOSCAN_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* The DICOM stage on size bytes at data: they are written to this
 * process's temporary file (created on first use with mkstemp under
 * $TMPDIR, rewritten for each input), whose header is read with
 * hs_dicom_read_header; a verdict that allows decoding (OK, LOCALIZER,
 * DERIVED, NOT_AXIAL) goes on to hs_dicom_read_hu into a rows * columns
 * buffer, as a study does. Left out, because they would cost more than
 * they find: hs_study_scan of the file's folder (a second parse of every
 * input, for grouping code that one file hardly reaches) and rendering
 * the HU (40% of the time per input, for picture steps hs_fuzz_png
 * exercises anyway). Returns 0 when every check held, -1
 * with a sentence in why (cap bytes) otherwise; -1 also when the
 * temporary file cannot be written (why says so). */
int hs_fuzz_dicom(const uint8_t *data, size_t size, char *why, size_t cap);

/* The PNG stage on size bytes at data, every chunk CRC rewritten to
 * match first (so mutations reach the decoder): hs_png_read_buffer, then
 * hs_prepare_input with the recipe of models trained on PNG pictures
 * (150 x 150, gray, head crop), as training and --predict do. Returns 0
 * when every check held, -1 with a sentence in why otherwise. */
int hs_fuzz_png(const uint8_t *data, size_t size, char *why, size_t cap);

/* What a libFuzzer target does with an input: run(data, size); when a
 * check failed, print "target: why" and abort, so that libFuzzer keeps the
 * input like a crash. */
void hs_fuzz_run_or_abort(int (*run)(const uint8_t *, size_t, char *, size_t), const uint8_t *data,
                          size_t size, const char *target);

/* Removes the temporary file of hs_fuzz_dicom, if any. Safe
 * to call more than once, and from atexit. */
void hs_fuzz_cleanup(void);

#endif
