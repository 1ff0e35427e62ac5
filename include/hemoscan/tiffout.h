/* tiffout.h - multi-page TIFF files whose pages are compressed in parallel.
 *
 * libtiff compresses a page while it writes it, on the writing thread, one
 * strip after the other; for the review pictures (review.h) that was the
 * largest part of their cost. Here the work is split in two:
 *
 *   hs_tiff_encode   compresses one page into its strips: horizontal
 *                    differencing (TIFF Predictor 2) for RGB pages, then
 *                    deflate in zlib format (libdeflate, level 1). It
 *                    touches nothing shared, so workers call it for
 *                    different pages at once;
 *   hs_tiff_write_*  hands the finished strips to libtiff in page order
 *                    (TIFFWriteRawStrip) with the page's tags.
 *
 * The file is ordinary baseline TIFF: 8-bit RGB (contiguous) or 8-bit
 * palette pages, Compression 8 (Adobe Deflate), one strip per about 64 KB
 * of pixels. Any reader that opens libtiff's own deflate output opens it. */
#ifndef HEMOSCAN_TIFFOUT_H
#define HEMOSCAN_TIFFOUT_H

#include <stddef.h>
#include <stdint.h>

#include "hemoscan/status.h"

typedef enum {
    HS_TIFF_RGB,     /* 3 bytes a pixel, R G B */
    HS_TIFF_PALETTE, /* 1 byte a pixel: an index into the page's colour map */
} hs_tiff_kind;

/* One page's pixels, top row first. */
typedef struct {
    hs_tiff_kind kind;
    int width, height;
    const unsigned char *px;
    const uint16_t *colormap; /* palette pages: red[256], green[256], blue[256], 0..65535 */
} hs_tiff_image;

/* A page compressed: strip k is data[offset[k] .. offset[k] + size[k]). */
typedef struct {
    int rows_per_strip, n_strips;
    unsigned char *data;
    size_t *offset, *size;
} hs_tiff_strips;

/* Compress image into out (freed with hs_tiff_strips_free, also after a
 * failure). Thread-safe. HS_ERR_ARG for a malformed image, HS_ERR_NOMEM. */
hs_status hs_tiff_encode(const hs_tiff_image *image, hs_tiff_strips *out, hs_error *err);
void hs_tiff_strips_free(hs_tiff_strips *s);

/* What a page says about itself. */
typedef struct {
    const char *name;        /* PageName */
    const char *description; /* ImageDescription */
    double px_per_cm;        /* > 0: its physical resolution; else 72 dpi */
} hs_tiff_page_info;

typedef struct hs_tiff_writer hs_tiff_writer;

/* Start a file of `pages` pages on the open descriptor fd (the writer owns
 * it from here on, even on failure); name (the file's path, shorter than
 * HS_PATH_MAX, else HS_ERR_ARG) is used in messages. software goes into
 * every page's Software tag, and the time of this call into DateTime. */
hs_status hs_tiff_writer_open(int fd, const char *name, int pages, const char *software, hs_tiff_writer **out,
                              hs_error *err);
/* Write the next page: image's size and kind (its pixels are not read
 * again), strips from hs_tiff_encode of that image, info. */
hs_status hs_tiff_write_page(hs_tiff_writer *w, const hs_tiff_image *image, const hs_tiff_strips *strips,
                             const hs_tiff_page_info *info, hs_error *err);
/* Finish the file, fsync it and close fd. With commit 0 (a failure
 * elsewhere) it only closes; the caller removes the file. */
hs_status hs_tiff_writer_close(hs_tiff_writer *w, int commit, hs_error *err);

#endif
