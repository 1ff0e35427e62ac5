/* strbuf.c - a growing text buffer with a sticky failure (see strbuf.h).
 *
 * Written once because model.c and plot.c each had their own: one grew
 * before formatting, the other formatted into a small stack buffer first.
 * This one formats straight into the free room and, when the text does not
 * fit, grows once to the size vsnprintf reported and formats again, so a
 * long append costs one extra pass, a short one none. Growth doubles, which
 * keeps the total copying linear in the final size. An append that would
 * pass the limit is refused before anything is allocated for it. */
#include "hemoscan/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first allocation: a model header or a small picture fits. */
#define FIRST_CAP 256

void hs_strbuf_init(hs_strbuf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max < HS_STRBUF_NO_LIMIT ? max : HS_STRBUF_NO_LIMIT;
    b->status = HS_OK;
}

static void fail(hs_strbuf *b, hs_status code)
{
    if (b->status == HS_OK)
        b->status = code;
}

/* Room for n more bytes of text and the 0 byte; 0, or -1 after recording
 * why not. */
static int reserve(hs_strbuf *b, size_t n)
{
    if (b->status != HS_OK)
        return -1;
    if (n > b->max - b->len) { /* len <= max always, so this cannot wrap */
        fail(b, HS_ERR_ARG);
        return -1;
    }
    size_t need = b->len + n + 1; /* at most HS_STRBUF_NO_LIMIT + 1 */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap > 0 ? b->cap : FIRST_CAP;
    while (cap < need)
        cap *= 2; /* need <= SIZE_MAX / 2 + 1, so cap cannot overflow */
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        fail(b, HS_ERR_NOMEM);
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void hs_strbuf_append(hs_strbuf *b, const void *s, size_t n)
{
    if (reserve(b, n) != 0)
        return;
    if (n > 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void hs_strbuf_puts(hs_strbuf *b, const char *s)
{
    hs_strbuf_append(b, s, strlen(s));
}

void hs_strbuf_printf(hs_strbuf *b, const char *fmt, ...)
{
    if (b->status != HS_OK)
        return;
    size_t room = b->cap - b->len; /* 0 before the first allocation */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room > 0 ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fail(b, HS_ERR_NOMEM);
        if (room > 0)
            b->p[b->len] = '\0'; /* vsnprintf may have written part of it */
        return;
    }
    if ((size_t)n >= room) {
        /* It did not fit; the text so far is untouched up to len, and the
         * 0 byte is put back whatever happens next. */
        if (room > 0)
            b->p[b->len] = '\0';
        if (reserve(b, (size_t)n) != 0)
            return;
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    } else if (n > 0 && (size_t)n > b->max - b->len) {
        /* It fitted in the room but passes the caller's limit. */
        b->p[b->len] = '\0';
        fail(b, HS_ERR_ARG);
        return;
    }
    b->len += (size_t)n;
}

void hs_strbuf_fail_nomem(hs_strbuf *b)
{
    fail(b, HS_ERR_NOMEM);
}

char *hs_strbuf_take(hs_strbuf *b, size_t *len)
{
    char *text = NULL;
    size_t n = 0;
    if (b->status == HS_OK) {
        text = b->p != NULL ? b->p : calloc(1, 1);
        n = text != NULL ? b->len : 0;
        b->p = NULL;
    }
    hs_strbuf_free(b);
    if (len != NULL)
        *len = n;
    return text;
}

void hs_strbuf_free(hs_strbuf *b)
{
    free(b->p);
    hs_strbuf_init(b, b->max);
}
