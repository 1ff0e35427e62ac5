/* fileio.h - whole-file reads, crash-safe whole-file writes, file-type
 * checks and the C numeric locale, for the modules that keep or look for
 * files (the model, the plots, data folders).
 *
 * A file hemoscan writes is either the old one or the complete new one,
 * never half of one: a model is audited by its SHA-256 and a picture may be
 * open in a browser while it is replaced. Both need the same dance
 * (temporary file next to the target, write, fsync, rename, fsync the
 * directory, clean up on every failure), so it lives here once. Numbers in
 * those files are written and read in the C locale whatever locale the
 * process runs in, with the same per-thread switch. Messages name the file. */
#ifndef HEMOSCAN_FILEIO_H
#define HEMOSCAN_FILEIO_H

#include <locale.h>
#include <stddef.h>
#include <stdio.h>

#include "hemoscan/status.h"

/* Writes the whole content of a file to f (with stdio) and returns 0, or
 * the errno value of the first write that failed. ctx is the caller's. */
typedef int (*hs_file_writer)(FILE *f, void *ctx);

/* Replaces path atomically with what write(f, ctx) produces: the content
 * goes to a temporary file path.tmp.XXXXXX in the same directory (so that
 * the rename cannot cross file systems), which gets permission bits mode
 * (exactly, not filtered by the umask), is flushed to disk and renamed over
 * path; then the directory is flushed too, as far as the file system
 * allows. On failure path is untouched, the temporary file is removed and
 * err names path. write is called at most once. */
hs_status hs_file_write_atomic_with(const char *path, unsigned mode, hs_file_writer write, void *ctx,
                                    hs_error *err);

/* hs_file_write_atomic_with for content that is already in memory: len
 * bytes at data (which may be NULL when len is 0). */
hs_status hs_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode, hs_error *err);

/* Reads the whole file at path into a new buffer (*data, to be freed by
 * the caller; one byte more is allocated and set to 0, so a text file is
 * also a string) of *len bytes. A file longer than max_len bytes is refused
 * with HS_ERR_FORMAT; SIZE_MAX means no limit. On failure *data is NULL,
 * *len is 0 and err names path. */
hs_status hs_file_read_all(const char *path, size_t max_len, unsigned char **data, size_t *len, hs_error *err);

/* The C numeric locale for the calling thread only (uselocale), so that
 * "0.5" is written and read as such under a decimal-comma locale. Enter
 * returns 1, or 0 (with nothing changed) when the locale cannot be created,
 * which only happens when memory runs out; every successful enter must be
 * followed by one leave on the same thread. */
typedef struct {
    locale_t c, old;
} hs_c_locale;

int hs_c_locale_enter(hs_c_locale *loc);
void hs_c_locale_leave(hs_c_locale *loc);

/* Whether path names a directory / a regular file (following symbolic
 * links); 0 when it does not exist or cannot be examined. */
int hs_path_is_dir(const char *path);
int hs_path_is_file(const char *path);

/* Create dir and any missing parents (mkdir -p) with mode for the folders
 * it creates (existing ones are left as they are). HS_ERR_IO naming the
 * folder that could not be made, or a path component that is not a
 * folder; HS_ERR_ARG for an empty path or one that does not fit
 * HS_PATH_MAX (path.h). */
hs_status hs_make_dirs(const char *dir, unsigned mode, hs_error *err);

/* A file or folder name from a DICOM UID: UIDs are digits and dots, but a
 * non-conformant one may hold anything, so everything but letters, digits,
 * '.' and '-' becomes '_'; cut to len - 1 bytes. An empty result, or one
 * that starts with '.' (hidden, "." or ".."), becomes fallback. */
void hs_safe_file_name(const char *uid, const char *fallback, char *out, size_t len);

#endif
