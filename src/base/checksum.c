/* checksum.c - SHA-256 through OpenSSL's EVP interface (see checksum.h).
 *
 * EVP is the interface OpenSSL 3 keeps supported (the SHA256_* calls are
 * deprecated) and it picks the fastest implementation the CPU allows. The
 * context records a failure instead of reporting it at once because the
 * update and end calls return nothing: a failed context ends in an all-zero
 * digest, which never matches a stored checksum, so a failure can only ever
 * make a file look corrupted, never make a corrupted file look good. */
#include "hemoscan/checksum.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct hs_sha256_ctx {
    EVP_MD_CTX *md;
    int failed;
};

/* Reading in 64 KiB pieces keeps memory flat for multi-gigabyte files while
 * making few enough calls that the hashing, not the reading, dominates. */
#define FILE_CHUNK (64 * 1024)

hs_sha256_ctx *hs_sha256_begin(void)
{
    hs_sha256_ctx *ctx = malloc(sizeof *ctx);
    if (ctx == NULL)
        return NULL;
    ctx->failed = 0;
    ctx->md = EVP_MD_CTX_new();
    if (ctx->md == NULL) {
        free(ctx);
        return NULL;
    }
    if (EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx->md);
        free(ctx);
        return NULL;
    }
    return ctx;
}

void hs_sha256_update(hs_sha256_ctx *ctx, const void *data, size_t len)
{
    if (ctx == NULL || ctx->failed || len == 0)
        return;
    if (EVP_DigestUpdate(ctx->md, data, len) != 1)
        ctx->failed = 1;
}

void hs_sha256_end(hs_sha256_ctx *ctx, unsigned char digest[HS_SHA256_LEN])
{
    memset(digest, 0, HS_SHA256_LEN);
    if (ctx == NULL)
        return;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!ctx->failed && EVP_DigestFinal_ex(ctx->md, md, &md_len) == 1 && md_len == HS_SHA256_LEN)
        memcpy(digest, md, HS_SHA256_LEN);
    EVP_MD_CTX_free(ctx->md);
    free(ctx);
}

void hs_sha256(const void *data, size_t len, unsigned char digest[HS_SHA256_LEN])
{
    hs_sha256_ctx *ctx = hs_sha256_begin();
    hs_sha256_update(ctx, data, len);
    hs_sha256_end(ctx, digest);
}

void hs_sha256_hex(const unsigned char digest[HS_SHA256_LEN], char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < HS_SHA256_LEN; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 0x0f];
    }
    hex[64] = '\0';
}

hs_status hs_sha256_file(const char *path, char hex[65], hs_error *err)
{
    hex[0] = '\0';
    if (path == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_sha256_file: no file name given");
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return hs_fail(err, HS_ERR_IO, "%s: cannot open for reading: %s", path, strerror(errno));
    /* On the heap, not the stack: worker threads may run with small stacks. */
    unsigned char *chunk = malloc(FILE_CHUNK);
    hs_sha256_ctx *ctx = hs_sha256_begin();
    if (chunk == NULL || ctx == NULL) {
        free(chunk);
        hs_sha256_end(ctx, (unsigned char[HS_SHA256_LEN]){0});
        fclose(f);
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory for hashing the file", path);
    }
    size_t got;
    do {
        got = fread(chunk, 1, FILE_CHUNK, f);
        hs_sha256_update(ctx, chunk, got);
    } while (got == FILE_CHUNK);
    int read_failed = ferror(f);
    int read_errno = errno;
    int hash_failed = ctx->failed;
    unsigned char digest[HS_SHA256_LEN];
    hs_sha256_end(ctx, digest);
    free(chunk);
    fclose(f);
    if (read_failed)
        return hs_fail(err, HS_ERR_IO, "%s: read error: %s", path,
                       strerror(read_errno != 0 ? read_errno : EIO));
    if (hash_failed)
        return hs_fail(err, HS_ERR_NOMEM, "%s: libcrypto could not compute SHA-256", path);
    hs_sha256_hex(digest, hex);
    return HS_OK;
}
