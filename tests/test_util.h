/* test_util.h - helpers the CUnit suites share: registering a suite from a
 * table, private temporary directories, whole-file reads and writes, and
 * where the sample data is.
 *
 * Written once here so that every suite cleans up the same way and finds
 * the shared data the same way as the shell tests (HEMOSCAN_SHARED_DATA,
 * see Makefile.am). They are deliberately plain stdio and POSIX, not the
 * library's own fileio.c, so that a bug there cannot hide itself in the
 * tests that pin it. Failures return -1 or NULL and leave the asserting to
 * the caller, which knows what the file was for. */
#ifndef HEMOSCAN_TEST_UTIL_H
#define HEMOSCAN_TEST_UTIL_H

#include <CUnit/CUnit.h>
#include <stddef.h>

#include "hemoscan/model.h"

/* One test of a suite's table. */
typedef struct {
    const char *name;
    void (*fn)(void);
} hs_test_case;

/* Adds a suite with init/clean (may be NULL) and the n tests of cases, in
 * order. 0 on success, -1 if CUnit refused (the registry says why). */
int hs_test_add_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc clean,
                      const hs_test_case *cases, size_t n);

/* Creates a new private directory $TMPDIR/hemoscan-test-NAME.XXXXXX (TMPDIR
 * defaulting to /tmp) and writes its path into dir, which holds cap bytes.
 * 0 on success, -1 on failure. */
int hs_test_tmpdir_create(char *dir, size_t cap, const char *name);

/* Removes dir with everything in it, subdirectories included. 0 on
 * success, -1 when anything could not be removed. */
int hs_test_tmpdir_remove(const char *dir);

/* out = dir/leaf, cut to cap bytes. */
void hs_test_path(char *out, size_t cap, const char *dir, const char *leaf);

/* 1 if dir holds a leftover temporary file of an atomic write (a name with
 * ".tmp." in it) or cannot be read, 0 if not. */
int hs_test_has_temp_files(const char *dir);

/* The whole file in a new buffer (free it), with a 0 byte after the *len
 * bytes of content so that a text file is also a string; NULL if it cannot
 * be read. */
unsigned char *hs_test_read_file(const char *path, size_t *len);

/* Creates or replaces path with len bytes at data. 0 on success, -1 on
 * failure. */
int hs_test_write_file(const char *path, const void *data, size_t len);

/* out = $HEMOSCAN_SRCDIR/rel (the source tree, set by make check), or
 * ./rel when that is unset or empty; cut to cap bytes. */
void hs_test_source_path(char *out, size_t cap, const char *rel);

/* The directory of the shared sample data: $HEMOSCAN_SHARED_DATA, or
 * "../shared/data" when that is unset or empty. */
const char *hs_test_shared_data_dir(void);

/* Runs testdata/gen/hs-gen-ct (found through $HEMOSCAN_BUILDDIR, else the
 * current directory) as `hs-gen-ct --out OUT --jobs 1 -q OPTS`; OPTS is
 * pasted into a shell command, so quote paths in it. 0 on success; 1 when
 * the generator is not built (a "skipped" line is printed); -1 when it
 * failed (the command is printed on stderr). */
int hs_test_generate(const char *out, const char *opts);

/* The studies of the study and review suites: the generator writes a
 * 16-slice, 128 x 128, 5 mm study with extra options opts into
 * parent/name, whose path goes to dir. As hs_test_generate returns. */
int hs_test_generate_study(const char *parent, const char *name, const char *opts, char *dir, size_t cap);

/* An audit database at path as an older hemoscan wrote it: the first
 * `version` schema steps run raw, user_version and application_id set,
 * plus one slice row (series 999, '/old/IM0001.dcm', probability 0.5) that
 * an upgrade must keep. 0 on success. */
int hs_test_audit_db_at_version(const char *path, int version);

/* 1 when HEMOSCAN_QUICK is set and not "0": a run where every network
 * pass is slow (CI's valgrind step), which checks memory, not the model. */
int hs_test_quick(void);

/* Loads models/default.hsm from $HEMOSCAN_SRCDIR into model; 1 when it
 * loaded, else 0 with a line naming suite and the reason. In a quick run
 * (hs_test_quick) only its first ensemble member is kept, so that tests of
 * the pipeline around the network pay for one network, not five. */
int hs_test_load_default_model(hs_model *model, const char *suite);

#endif
