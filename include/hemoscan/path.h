/* path.h - building a file path in a fixed buffer, checked: a path that
 * does not fit is an error naming it, never a shortened path.
 *
 * What it is for. Paths are made by gluing a folder the user gave to a
 * name hemoscan chose ("DIR/index.csv", "DIR/.NAME.tif.PID.tmp"). With a
 * bare snprintf a long folder silently cuts the name off, and the file is
 * then written, renamed or deleted under a different name than meant.
 * These functions make the cut impossible to miss: they fail with
 * HS_ERR_ARG and a message that gives the length and the start of the
 * path, and leave "" in the buffer so that a caller who ignores the status
 * cannot use half a path either.
 *
 * HS_PATH_MAX is the one size for a buffer that holds a path, in a struct
 * or on the stack. It is Linux's PATH_MAX: the kernel refuses a longer
 * path (ENAMETOOLONG) in every system call, so no usable path needs a
 * bigger buffer, and a smaller one would refuse paths the system accepts.
 *
 * The contract of hs_path_join. out = dir "/" leaf, exactly the bytes
 * snprintf(out, cap, "%s/%s", dir, leaf) would give: no slash is added or
 * removed, so "a/" and "b" make "a//b" (which every system call reads as
 * "a/b"). Paths are printed and recorded in the audit database, and a
 * helper that respelled them would change what earlier runs recorded.
 * hs_path_printf is the same check for any other shape of path.
 *
 * Limits. The message holds the path's first few hundred bytes, which is
 * what hs_error has room for; enough to recognise it. */
#ifndef HEMOSCAN_PATH_H
#define HEMOSCAN_PATH_H

#include <stddef.h>

#include "hemoscan/status.h"

/* Bytes of a path buffer, the terminating 0 included. */
#define HS_PATH_MAX 4096

/* out (cap bytes) = dir/leaf. HS_ERR_ARG when dir, leaf or out is NULL,
 * or when the result needs more than cap bytes; then out is "" (when
 * cap > 0) and err names the path. */
hs_status hs_path_join(char *out, size_t cap, const char *dir, const char *leaf, hs_error *err);

/* out (cap bytes) = the printf-formatted path. HS_ERR_ARG when it needs
 * more than cap bytes (or the format fails); then out is "" (when
 * cap > 0) and err names the path as far as it goes. */
hs_status hs_path_printf(char *out, size_t cap, hs_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
