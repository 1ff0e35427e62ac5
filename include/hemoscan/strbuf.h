/* strbuf.h - a growing text buffer for composing a document in memory
 * (a model file's header, an SVG picture) before it is written in one go.
 *
 * What it is for. A composer makes many small appends (sb_printf-style
 * calls, one per line or element) and checks once at the end. So a failure
 * is sticky instead of being returned by every call: the first append
 * that cannot be made records why in status, and every later append does
 * nothing. The caller then reports status with the file name it knows.
 *
 * The contract.
 *   - hs_strbuf_init sets up an empty buffer and allocates nothing, so it
 *     cannot fail; hs_strbuf_free (or hs_strbuf_take) must follow it.
 *   - While status is HS_OK, p holds len bytes of text followed by a 0
 *     byte (p is NULL while nothing has been added, len 0).
 *   - An append is all or nothing: after a failed one the text is what it
 *     was before it, and status says why:
 *       HS_ERR_ARG   the text would have grown past max bytes (the limit
 *                    the caller gave, not counting the 0 byte);
 *       HS_ERR_NOMEM an allocation failed (or vsnprintf refused the
 *                    format, which only happens for a result past
 *                    INT_MAX bytes or an encoding error).
 *   - The first failure stays: later appends change nothing, and status
 *     keeps the first reason.
 *
 * Limits. max must be at most HS_STRBUF_NO_LIMIT (SIZE_MAX / 2), which
 * also means "no limit of the caller's own". The buffer doubles as it
 * grows (from 256 bytes), so it may hold up to twice the text in memory.
 * Not for binary data that contains 0 bytes when the text is read as a
 * string (hs_strbuf_append copies them, but p then ends early). One
 * thread at a time. */
#ifndef HEMOSCAN_STRBUF_H
#define HEMOSCAN_STRBUF_H

#include <stddef.h>
#include <stdint.h>

#include "hemoscan/status.h"

#define HS_STRBUF_NO_LIMIT (SIZE_MAX / 2)

typedef struct {
    char *p;          /* the text, 0-terminated; NULL while empty (read only) */
    size_t len;       /* bytes of text, without the 0 byte (read only) */
    size_t cap;       /* bytes allocated at p */
    size_t max;       /* the most len may become */
    hs_status status; /* HS_OK, or why the first failed append failed */
} hs_strbuf;

/* An empty buffer whose text may grow to max bytes (HS_STRBUF_NO_LIMIT:
 * as far as memory allows). */
void hs_strbuf_init(hs_strbuf *b, size_t max);

/* Appends n bytes at s (s may be NULL when n is 0). */
void hs_strbuf_append(hs_strbuf *b, const void *s, size_t n);

/* Appends the string s. */
void hs_strbuf_puts(hs_strbuf *b, const char *s);

/* Appends printf-formatted text, in the calling thread's locale. */
void hs_strbuf_printf(hs_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records an allocation failure of the caller's own (status becomes
 * HS_ERR_NOMEM unless it failed already), so that the one check at the
 * end covers it too. */
void hs_strbuf_fail_nomem(hs_strbuf *b);

/* The text, for the caller to free, and its length in *len (len may be
 * NULL). An empty buffer gives a new "", so NULL (with *len 0) always
 * means a failure: status was not HS_OK, or that "" could not be
 * allocated. Either way b is empty again afterwards, its failure cleared,
 * its max kept; read status before taking when the reason matters. */
char *hs_strbuf_take(hs_strbuf *b, size_t *len);

/* Frees the text; b is empty again (failure cleared, max kept). */
void hs_strbuf_free(hs_strbuf *b);

#endif
