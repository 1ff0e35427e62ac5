/* path.c - paths built in fixed buffers, never silently cut (see path.h).
 *
 * Both functions format into the caller's buffer and look at the length
 * snprintf reports: that is exact, it costs nothing when the path fits,
 * and when it does not, the bytes that did fit are still there to name the
 * path in the message before the buffer is emptied. */
#include "hemoscan/path.h"

#include <stdarg.h>
#include <stdio.h>

/* The refusal: err names the path from what fitted in out (n is the
 * length the whole path would have had, or -1 when the format failed),
 * then out becomes "". */
static hs_status refuse(char *out, size_t cap, int n, hs_error *err)
{
    hs_status st;
    if (n < 0)
        st = hs_fail(err, HS_ERR_ARG, "cannot format a path (starting %.300s)", cap > 0 ? out : "");
    else
        st = hs_fail(err, HS_ERR_ARG, "path of %d bytes is too long (at most %zu): %.300s...", n,
                     cap > 0 ? cap - 1 : 0, cap > 0 ? out : "");
    if (cap > 0)
        out[0] = '\0';
    return st;
}

hs_status hs_path_join(char *out, size_t cap, const char *dir, const char *leaf, hs_error *err)
{
    if (out == NULL || dir == NULL || leaf == NULL) {
        if (out != NULL && cap > 0)
            out[0] = '\0';
        return hs_fail(err, HS_ERR_ARG, "hs_path_join: NULL argument");
    }
    int n = snprintf(out, cap, "%s/%s", dir, leaf);
    if (n < 0 || (size_t)n >= cap)
        return refuse(out, cap, n, err);
    return HS_OK;
}

hs_status hs_path_printf(char *out, size_t cap, hs_error *err, const char *fmt, ...)
{
    if (out == NULL && cap > 0)
        return hs_fail(err, HS_ERR_ARG, "hs_path_printf: NULL argument");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        return refuse(out, cap, n, err);
    return HS_OK;
}
