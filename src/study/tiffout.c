/* tiffout.c - multi-page TIFF files whose pages are compressed in parallel
 * (see tiffout.h).
 *
 * Why compress outside libtiff: libtiff deflates a page on the thread
 * that writes it and, written scanline by scanline, through zlib's
 * streaming interface; libdeflate (which libtiff itself uses for whole
 * strips) compresses a whole buffer several times faster, and pages
 * compressed by different workers at once cut the time again. What
 * libtiff would have done is done here to the letter:
 * - Predictor 2 for 8-bit contiguous RGB: every byte of a row minus the
 *   byte of the same colour one pixel to the left (mod 256), the first
 *   pixel as it is. Palette pages get no predictor: differences of colour
 *   map indices mean nothing, and some readers refuse the combination.
 * - Each strip is one zlib stream (RFC 1950), Compression 8.
 * - Strips of whole rows, about 64 KB of pixels each (libtiff's default
 *   is 8 KB; larger strips compress better and cost fewer tag entries).
 * libtiff's own complaints are caught per file (TIFFFdOpenExt) and put in
 * the error returned, not printed on stderr, where a cron job's mail or a
 * watcher's log would get them without context. */
#include "hemoscan/tiffout.h"

#include <errno.h>
#include <libdeflate.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tiffio.h>
#include <unistd.h>

#include "hemoscan/path.h"

/* Pixels bytes a strip holds at most (one row at least). */
#define STRIP_BYTES 65536
/* libdeflate level: 1 is the fastest; the pictures (air, smooth gray)
 * still shrink about threefold. */
#define DEFLATE_LEVEL 1

struct hs_tiff_writer {
    TIFF *tiff;
    int fd;
    int pages, written;
    char name[HS_PATH_MAX];
    char software[64];
    char datetime[20]; /* "YYYY:MM:DD HH:MM:SS", TIFF's DateTime */
    char complaint[256]; /* libtiff's last error, "" if none */
};

/* libtiff's errors on this file: kept for the message; warnings (none
 * are expected when writing) are dropped. Non-zero: handled. */
static int keep_complaint(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    hs_tiff_writer *w = user;
    char text[200];
    vsnprintf(text, sizeof text, fmt, ap);
    snprintf(w->complaint, sizeof w->complaint, "%s%s%s", module != NULL ? module : "",
             module != NULL ? ": " : "", text);
    return 1;
}

static int drop_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif, (void)user, (void)module, (void)fmt, (void)ap;
    return 1;
}

/* Why the last call failed: errno's text, else libtiff's complaint. */
static const char *why(const hs_tiff_writer *w, int errno_then)
{
    if (errno_then != 0)
        return strerror(errno_then);
    return w->complaint[0] ? w->complaint : "libtiff failed";
}

static int samples_of(hs_tiff_kind kind)
{
    return kind == HS_TIFF_RGB ? 3 : 1;
}

void hs_tiff_strips_free(hs_tiff_strips *s)
{
    if (s == NULL)
        return;
    free(s->data);
    free(s->offset);
    free(s->size);
    memset(s, 0, sizeof *s);
}

/* Rows in strip k of a page of height rows, rows_per_strip to a strip. */
static int strip_rows(int height, int rows_per_strip, int k)
{
    int left = height - k * rows_per_strip;
    return left < rows_per_strip ? left : rows_per_strip;
}

hs_status hs_tiff_encode(const hs_tiff_image *image, hs_tiff_strips *out, hs_error *err)
{
    memset(out, 0, sizeof *out);
    if (image->width < 1 || image->height < 1 || image->px == NULL ||
        (image->kind != HS_TIFF_RGB && image->kind != HS_TIFF_PALETTE) ||
        (image->kind == HS_TIFF_PALETTE && image->colormap == NULL))
        return hs_fail(err, HS_ERR_ARG, "TIFF page: %dx%d, no pixels or no colour map", image->width,
                       image->height);
    const int spp = samples_of(image->kind);
    const size_t row_bytes = (size_t)image->width * (size_t)spp;
    int rows = (int)(STRIP_BYTES / row_bytes);
    rows = rows < 1 ? 1 : (rows > image->height ? image->height : rows);
    out->rows_per_strip = rows;
    out->n_strips = (image->height + rows - 1) / rows;
    struct libdeflate_compressor *z = libdeflate_alloc_compressor(DEFLATE_LEVEL);
    unsigned char *diff = image->kind == HS_TIFF_RGB ? malloc((size_t)rows * row_bytes) : NULL;
    out->offset = calloc((size_t)out->n_strips, sizeof *out->offset);
    out->size = calloc((size_t)out->n_strips, sizeof *out->size);
    size_t capacity = 0;
    for (int k = 0; z != NULL && k < out->n_strips; k++)
        capacity += libdeflate_zlib_compress_bound(z, (size_t)strip_rows(image->height, rows, k) * row_bytes);
    out->data = z != NULL ? malloc(capacity) : NULL;
    hs_status st = HS_OK;
    if (z == NULL || (image->kind == HS_TIFF_RGB && diff == NULL) || out->offset == NULL || out->size == NULL ||
        out->data == NULL)
        st = hs_fail(err, HS_ERR_NOMEM, "TIFF page: out of memory for a %dx%d page", image->width, image->height);
    size_t used = 0;
    for (int k = 0; st == HS_OK && k < out->n_strips; k++) {
        int n = strip_rows(image->height, rows, k);
        size_t bytes = (size_t)n * row_bytes;
        const unsigned char *src = image->px + (size_t)k * (size_t)rows * row_bytes;
        if (diff != NULL) {
            for (int y = 0; y < n; y++) {
                const unsigned char *s = src + (size_t)y * row_bytes;
                unsigned char *d = diff + (size_t)y * row_bytes;
                memcpy(d, s, 3);
                for (size_t i = 3; i < row_bytes; i++)
                    d[i] = (unsigned char)(s[i] - s[i - 3]);
            }
            src = diff;
        }
        size_t made = libdeflate_zlib_compress(z, src, bytes, out->data + used, capacity - used);
        if (made == 0) { /* cannot happen within the bound */
            st = hs_fail(err, HS_ERR_NOMEM, "TIFF page: a strip did not fit its compression bound");
            break;
        }
        out->offset[k] = used;
        out->size[k] = made;
        used += made;
    }
    libdeflate_free_compressor(z);
    free(diff);
    if (st != HS_OK)
        hs_tiff_strips_free(out);
    return st;
}

hs_status hs_tiff_writer_open(int fd, const char *name, int pages, const char *software, hs_tiff_writer **out,
                              hs_error *err)
{
    *out = NULL;
    hs_tiff_writer *w = calloc(1, sizeof *w);
    if (w == NULL) {
        close(fd);
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", name);
    }
    w->fd = fd;
    w->pages = pages;
    if (hs_path_printf(w->name, sizeof w->name, err, "%s", name) != HS_OK) {
        close(fd);
        free(w);
        return HS_ERR_ARG;
    }
    snprintf(w->software, sizeof w->software, "%s", software);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(w->datetime, sizeof w->datetime, "%Y:%m:%d %H:%M:%S", &tm);
    TIFFOpenOptions *options = TIFFOpenOptionsAlloc();
    if (options == NULL) {
        close(fd);
        free(w);
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", name);
    }
    TIFFOpenOptionsSetErrorHandlerExtR(options, keep_complaint, w);
    TIFFOpenOptionsSetWarningHandlerExtR(options, drop_warning, w);
    errno = 0;
    w->tiff = TIFFFdOpenExt(fd, w->name, "w", options);
    TIFFOpenOptionsFree(options);
    if (w->tiff == NULL) {
        hs_status st = hs_fail(err, HS_ERR_IO, "%s: cannot start the file: %s", name, why(w, errno));
        close(fd);
        free(w);
        return st;
    }
    *out = w;
    return HS_OK;
}

hs_status hs_tiff_write_page(hs_tiff_writer *w, const hs_tiff_image *image, const hs_tiff_strips *strips,
                             const hs_tiff_page_info *info, hs_error *err)
{
    TIFF *tf = w->tiff;
    const int rgb = image->kind == HS_TIFF_RGB;
    int ok = 1;
    ok &= TIFFSetField(tf, TIFFTAG_SUBFILETYPE, (uint32_t)FILETYPE_PAGE);
    ok &= TIFFSetField(tf, TIFFTAG_IMAGEWIDTH, (uint32_t)image->width);
    ok &= TIFFSetField(tf, TIFFTAG_IMAGELENGTH, (uint32_t)image->height);
    ok &= TIFFSetField(tf, TIFFTAG_BITSPERSAMPLE, 8);
    ok &= TIFFSetField(tf, TIFFTAG_SAMPLESPERPIXEL, samples_of(image->kind));
    ok &= TIFFSetField(tf, TIFFTAG_PHOTOMETRIC, rgb ? PHOTOMETRIC_RGB : PHOTOMETRIC_PALETTE);
    if (!rgb)
        ok &= TIFFSetField(tf, TIFFTAG_COLORMAP, image->colormap, image->colormap + 256, image->colormap + 512);
    ok &= TIFFSetField(tf, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    ok &= TIFFSetField(tf, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT);
    ok &= TIFFSetField(tf, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    ok &= TIFFSetField(tf, TIFFTAG_PREDICTOR, rgb ? PREDICTOR_HORIZONTAL : PREDICTOR_NONE);
    ok &= TIFFSetField(tf, TIFFTAG_ROWSPERSTRIP, (uint32_t)strips->rows_per_strip);
    if (info->px_per_cm > 0.0) {
        ok &= TIFFSetField(tf, TIFFTAG_XRESOLUTION, (float)info->px_per_cm);
        ok &= TIFFSetField(tf, TIFFTAG_YRESOLUTION, (float)info->px_per_cm);
        ok &= TIFFSetField(tf, TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
    } else {
        ok &= TIFFSetField(tf, TIFFTAG_XRESOLUTION, 72.0f);
        ok &= TIFFSetField(tf, TIFFTAG_YRESOLUTION, 72.0f);
        ok &= TIFFSetField(tf, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
    }
    ok &= TIFFSetField(tf, TIFFTAG_SOFTWARE, w->software);
    ok &= TIFFSetField(tf, TIFFTAG_DATETIME, w->datetime);
    ok &= TIFFSetField(tf, TIFFTAG_PAGENUMBER, (uint16_t)w->written, (uint16_t)w->pages);
    ok &= TIFFSetField(tf, TIFFTAG_PAGENAME, info->name);
    ok &= TIFFSetField(tf, TIFFTAG_IMAGEDESCRIPTION, info->description);
    if (!ok)
        return hs_fail(err, HS_ERR_IO, "%s: page %d: a tag was refused: %s", w->name, w->written + 1, why(w, 0));
    if ((int)TIFFNumberOfStrips(tf) != strips->n_strips)
        return hs_fail(err, HS_ERR_ARG, "%s: page %d: %d strips made, libtiff expects %u", w->name,
                       w->written + 1, strips->n_strips, (unsigned)TIFFNumberOfStrips(tf));
    for (int k = 0; k < strips->n_strips; k++) {
        errno = 0;
        if (TIFFWriteRawStrip(tf, (uint32_t)k, strips->data + strips->offset[k], (tmsize_t)strips->size[k]) < 0)
            return hs_fail(err, HS_ERR_IO, "%s: cannot write page %d: %s", w->name, w->written + 1,
                           why(w, errno));
    }
    errno = 0;
    if (!TIFFWriteDirectory(tf))
        return hs_fail(err, HS_ERR_IO, "%s: cannot write page %d: %s", w->name, w->written + 1, why(w, errno));
    w->written++;
    return HS_OK;
}

hs_status hs_tiff_writer_close(hs_tiff_writer *w, int commit, hs_error *err)
{
    if (w == NULL)
        return HS_OK;
    hs_status st = HS_OK;
    if (commit && w->written != w->pages)
        st = hs_fail(err, HS_ERR_ARG, "%s: %d of %d pages written", w->name, w->written, w->pages);
    errno = 0;
    if (st == HS_OK && commit && (!TIFFFlush(w->tiff) || fsync(w->fd) != 0))
        st = hs_fail(err, HS_ERR_IO, "%s: cannot write: %s", w->name, why(w, errno));
    TIFFClose(w->tiff); /* closes fd */
    free(w);
    return st;
}
