/* status.h - the status codes and error messages every hemoscan module returns.
 *
 * Functions return an hs_status; when it is not HS_OK they have also filled an
 * hs_error with one line that names the file, attribute or option involved and
 * what was expected. Callers print that line and go on with the next item, so
 * a bad input never takes the process down. The message buffer lives with the
 * caller: no global error state, nothing to free. */
#ifndef HEMOSCAN_STATUS_H
#define HEMOSCAN_STATUS_H

#include <stddef.h>

typedef enum {
    HS_OK = 0,
    HS_ERR_ARG,      /* a caller passed an invalid argument or option */
    HS_ERR_IO,       /* a file could not be opened, read or written */
    HS_ERR_FORMAT,   /* a file is not what it claims to be, or is truncated */
    HS_ERR_VERSION,  /* a file is of a format version this build cannot read */
    HS_ERR_CHECKSUM, /* a file's stored checksum does not match its content */
    HS_ERR_SHAPE,    /* tensor or layer shapes do not fit together */
    HS_ERR_NOMEM     /* an allocation failed */
} hs_status;

typedef struct {
    hs_status code;
    char msg[512];
} hs_error;

/* Record code and a printf-style message in err (which may be NULL);
 * returns code so that callers can write `return hs_fail(err, ...);`. */
hs_status hs_fail(hs_error *err, hs_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A short fixed name for a status code, e.g. "format error". */
const char *hs_status_name(hs_status code);

#endif
