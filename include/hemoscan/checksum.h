/* checksum.h - SHA-256 of buffers and files, through OpenSSL's libcrypto.
 *
 * Auditors identify a model by the SHA-256 of its file, and training records
 * the SHA-256 of its data; both must match what `sha256sum` prints, so the
 * digest comes from a well-kept library rather than our own code. */
#ifndef HEMOSCAN_CHECKSUM_H
#define HEMOSCAN_CHECKSUM_H

#include <stddef.h>

#include "hemoscan/status.h"

#define HS_SHA256_LEN 32

typedef struct hs_sha256_ctx hs_sha256_ctx;

/* NULL if libcrypto cannot set up a digest. Should libcrypto fail later,
 * the digest comes out all zeros: a file then looks corrupted, and a
 * corrupted file can never look right. */
hs_sha256_ctx *hs_sha256_begin(void);
void hs_sha256_update(hs_sha256_ctx *ctx, const void *data, size_t len);
/* Finishes and frees ctx. */
void hs_sha256_end(hs_sha256_ctx *ctx, unsigned char digest[HS_SHA256_LEN]);

void hs_sha256(const void *data, size_t len, unsigned char digest[HS_SHA256_LEN]);
/* 64 lowercase hex digits and a NUL. */
void hs_sha256_hex(const unsigned char digest[HS_SHA256_LEN], char hex[65]);
hs_status hs_sha256_file(const char *path, char hex[65], hs_error *err);

#endif
