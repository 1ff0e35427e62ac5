/* status.c - recording an error message for the caller (see status.h).
 *
 * The message is formatted into a local buffer first and copied afterwards,
 * so a caller may pass err->msg itself as an argument to prefix a callee's
 * message with a file name: hs_fail(err, code, "%s: %s", path, err->msg). */
#include "hemoscan/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

hs_status hs_fail(hs_error *err, hs_status code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* An encoding error leaves msg unspecified; an empty message is still
     * better than printing garbage. Truncation is fine: one line is all a
     * caller prints. */
    if (n < 0)
        msg[0] = '\0';
    memcpy(err->msg, msg, sizeof msg);
    err->code = code;
    return code;
}

const char *hs_status_name(hs_status code)
{
    switch (code) {
    case HS_OK:
        return "ok";
    case HS_ERR_ARG:
        return "invalid argument";
    case HS_ERR_IO:
        return "I/O error";
    case HS_ERR_FORMAT:
        return "format error";
    case HS_ERR_VERSION:
        return "unsupported version";
    case HS_ERR_CHECKSUM:
        return "checksum mismatch";
    case HS_ERR_SHAPE:
        return "shape mismatch";
    case HS_ERR_NOMEM:
        return "out of memory";
    }
    return "unknown status";
}
