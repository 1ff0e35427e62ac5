/* image.c - PNG input and output, gray conversion, head crop, resizing and
 * augmentation (see image.h for the recipe and why it is built this way).
 *
 * PNG decoding goes through libpng's row interface with its own transforms
 * only for what must be expanded (palette to RGB, gray below 8 bits to 8
 * bits); the rest (dropping alpha, scaling 8 and 16-bit samples to [0, 1])
 * is done here from the layout libpng reports after png_read_update_info, so
 * no combination of colour type, bit depth and tRNS can slip past. libpng
 * reports errors by longjmp. Every resource of a decode lives in a job
 * struct owned by the caller of the function that calls setjmp; that
 * function keeps no local that is read after a longjmp, so nothing needs to
 * be volatile and the caller frees whatever exists on every path.
 *
 * The head crop works on runs (horizontal stretches of bright pixels on
 * one row), not on pixels:
 *   - connected components are found by joining overlapping runs of
 *     neighbouring rows with union-find, so the cost is one pass over the
 *     pixels plus work in proportion to the runs (a few dozen per row);
 *   - the head's holes are the gaps between its runs that do not reach
 *     the edge of its box, found the same way;
 *   - nothing recurses and no stack grows with the picture, so no image
 *     can exhaust the C stack.
 *
 * Resizing is separable: each axis gets a table of source taps and weights
 * (area filter when it shrinks, bilinear when it grows), applied first along
 * rows, then along columns. Weights and sums are double so the area filter
 * keeps the mean of the picture to float precision. */
#include "hemoscan/image.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hemoscan/grow.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- images --------------------------------------------------------------- */

void hs_image_free(hs_image *img)
{
    if (img == NULL)
        return;
    free(img->px);
    memset(img, 0, sizeof *img);
}

static int size_ok(int width, int height, int channels)
{
    return width >= 1 && width <= HS_IMAGE_MAX_SIDE && height >= 1 &&
           height <= HS_IMAGE_MAX_SIDE && channels >= 1 && channels <= HS_IMAGE_MAX_CHANNELS;
}

/* 1 if img looks like something hs_image_alloc produced. */
static int image_ok(const hs_image *img)
{
    return img != NULL && img->px != NULL && size_ok(img->width, img->height, img->channels);
}

static size_t image_values(const hs_image *img)
{
    return (size_t)img->width * (size_t)img->height * (size_t)img->channels;
}

hs_status hs_image_alloc(hs_image *img, int width, int height, int channels, hs_error *err)
{
    if (img == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_image_alloc: no image given");
    memset(img, 0, sizeof *img);
    if (!size_ok(width, height, channels))
        return hs_fail(err, HS_ERR_ARG,
                       "hs_image_alloc: size %dx%d with %d channels is out of range, "
                       "expected 1..%d pixels per side and 1..%d channels",
                       width, height, channels, HS_IMAGE_MAX_SIDE, HS_IMAGE_MAX_CHANNELS);
    size_t n = (size_t)width * (size_t)height * (size_t)channels;
    float *px = calloc(n, sizeof *px);
    if (px == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "hs_image_alloc: cannot allocate a %dx%d image with %d channels",
                       width, height, channels);
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->px = px;
    return HS_OK;
}

/* ---- PNG reading ---------------------------------------------------------- */

/* Size of the buffer that receives libpng's error message. */
#define PNG_MSG_LEN 200

/* Where the bytes come from: an open stream or a memory buffer. */
typedef struct {
    FILE *fp;
    const unsigned char *buf;
    size_t len, pos;
    int io_errno; /* errno of a failed read, 0 if none failed */
} png_source;

/* Reads up to n bytes; a short count means end of data or, if io_errno is
 * now set, a read error. */
static size_t source_read(png_source *src, unsigned char *dst, size_t n)
{
    if (src->fp != NULL) {
        size_t got = fread(dst, 1, n, src->fp);
        if (got < n && ferror(src->fp))
            src->io_errno = errno != 0 ? errno : EIO;
        return got;
    }
    size_t avail = src->len - src->pos;
    if (n > avail)
        n = avail;
    if (n > 0)
        memcpy(dst, src->buf + src->pos, n);
    src->pos += n;
    return n;
}

/* Everything one decode owns or reports; see the top of the file for why it
 * lives outside the function that calls setjmp. */
typedef struct {
    png_source *src;
    png_structp png;
    png_infop info;
    unsigned char *rows; /* one decoded row, or the whole image when interlaced */
    hs_image img;
    int truncated;       /* the data ended before the PNG did */
    int too_large;       /* the header asks for more than HS_IMAGE_MAX_SIDE */
    int nomem;           /* an allocation of ours failed */
    char msg[PNG_MSG_LEN]; /* libpng's (or our) reason */
} png_read_job;

static void png_read_cb(png_structp png, png_bytep data, size_t n)
{
    png_read_job *job = png_get_io_ptr(png);
    if (source_read(job->src, data, n) < n) {
        if (job->src->io_errno == 0)
            job->truncated = 1;
        png_error(png, job->src->io_errno != 0 ? "read error" : "unexpected end of data");
    }
}

/* libpng calls this for every fatal error; it must not return. Readers and
 * writers both register their job's msg buffer (PNG_MSG_LEN bytes) as the
 * error pointer, so one handler serves both. */
static void png_error_cb(png_structp png, png_const_charp msg)
{
    char *buf = png_get_error_ptr(png);
    if (buf != NULL)
        snprintf(buf, PNG_MSG_LEN, "%s", msg);
    png_longjmp(png, 1);
}

/* Warnings (e.g. a damaged ancillary chunk, which libpng drops) do not stop
 * a decode, and a library must not print on its own. */
static void png_warning_cb(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Converts one decoded row (8 or 16-bit samples, channels_in per pixel) to
 * floats in row y of img, keeping only img->channels leading samples. */
static void convert_row(const unsigned char *row, int depth, int channels_in, hs_image *img, int y)
{
    int c_out = img->channels;
    float *dst = img->px + (size_t)y * (size_t)img->width * (size_t)c_out;
    for (int x = 0; x < img->width; x++) {
        const unsigned char *p = row + (size_t)x * (size_t)channels_in * (size_t)(depth / 8);
        for (int c = 0; c < c_out; c++) {
            if (depth == 16) {
                /* libpng hands out 16-bit samples big-endian. */
                unsigned v = ((unsigned)p[2 * c] << 8) | p[2 * c + 1];
                dst[c] = (float)v / 65535.0f;
            } else {
                dst[c] = (float)p[c] / 255.0f;
            }
        }
        dst += c_out;
    }
}

/* Decodes the PNG after its 8-byte signature into job->img. Returns 0, or
 * -1 with job->msg (and a flag) saying why. */
static int png_decode(png_read_job *job)
{
    png_structp png = job->png;
    png_infop info = job->info;
    if (setjmp(png_jmpbuf(png)) != 0)
        return -1;
    png_set_read_fn(png, job, png_read_cb);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);

    /* The size checks come before anything is allocated for the image:
     * png_read_info has only read the chunks before the image data, so a
     * tiny file that claims a huge picture costs nothing yet. */
    png_uint_32 width, height;
    int depth, color, interlace;
    png_get_IHDR(png, info, &width, &height, &depth, &color, &interlace, NULL, NULL);
    if (width > HS_IMAGE_MAX_SIDE || height > HS_IMAGE_MAX_SIDE) {
        snprintf(job->msg, sizeof job->msg, "%lux%lu pixels, expected at most %d per side",
                 (unsigned long)width, (unsigned long)height, HS_IMAGE_MAX_SIDE);
        job->too_large = 1;
        return -1;
    }
    /* Channels of the result (palette images have the colour bit set). */
    int channels = (color & PNG_COLOR_MASK_COLOR) != 0 ? 3 : 1;
    size_t values = (size_t)width * (size_t)height * (size_t)channels;
    if (values > HS_PNG_MAX_VALUES) {
        snprintf(job->msg, sizeof job->msg, "%lux%lu pixels of %d channel(s) are %zu values, expected at most %d",
                 (unsigned long)width, (unsigned long)height, channels, values, HS_PNG_MAX_VALUES);
        job->too_large = 1;
        return -1;
    }

    /* Palette to RGB, gray below 8 bits to 8 bits (scaled to full range),
     * tRNS to an alpha channel, which is then skipped like any alpha. */
    png_set_expand(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels_in = png_get_channels(png, info);
    int depth_out = png_get_bit_depth(png, info);
    int color_out = png_get_color_type(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    int channels_out = (color_out & PNG_COLOR_MASK_COLOR) != 0 ? 3 : 1;
    if ((depth_out != 8 && depth_out != 16) || channels_in < channels_out || channels_in > 4 ||
        rowbytes != (size_t)width * (size_t)channels_in * (size_t)(depth_out / 8)) {
        snprintf(job->msg, sizeof job->msg,
                 "unsupported layout after expansion (%d channels of %d bits, colour type %d)",
                 channels_in, depth_out, color_out);
        return -1;
    }

    if (hs_image_alloc(&job->img, (int)width, (int)height, channels_out, NULL) != HS_OK) {
        snprintf(job->msg, sizeof job->msg, "cannot allocate %lux%lu pixels", (unsigned long)width,
                 (unsigned long)height);
        job->nomem = 1;
        return -1;
    }
    /* An interlaced image arrives in passes that each fill part of every
     * row, so it needs every row at once; otherwise one row is enough. */
    job->rows = malloc(passes > 1 ? rowbytes * height : rowbytes);
    if (job->rows == NULL) {
        snprintf(job->msg, sizeof job->msg, "cannot allocate the row buffer");
        job->nomem = 1;
        return -1;
    }
    for (int pass = 0; pass < passes; pass++) {
        for (png_uint_32 y = 0; y < height; y++) {
            unsigned char *row = job->rows + (passes > 1 ? (size_t)y * rowbytes : 0);
            png_read_row(png, row, NULL);
            if (pass == passes - 1)
                convert_row(row, depth_out, channels_in, &job->img, (int)y);
        }
    }
    /* Reading through IEND is what catches a file cut after the image data. */
    png_read_end(png, NULL);
    return 0;
}

static hs_status png_read_source(png_source *src, const char *name, hs_image *img, hs_error *err)
{
    unsigned char sig[8];
    size_t got = source_read(src, sig, sizeof sig);
    if (src->io_errno != 0)
        return hs_fail(err, HS_ERR_IO, "%s: read error: %s", name, strerror(src->io_errno));
    if (got == 0)
        return hs_fail(err, HS_ERR_FORMAT, "%s: empty file, expected a PNG image", name);
    if (png_sig_cmp(sig, 0, got) != 0)
        return hs_fail(err, HS_ERR_FORMAT, "%s: not a PNG image (no PNG signature)", name);
    if (got < sizeof sig)
        return hs_fail(err, HS_ERR_FORMAT, "%s: truncated PNG (ends inside the signature)", name);

    png_read_job job;
    memset(&job, 0, sizeof job);
    job.src = src;
    job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job.msg, png_error_cb, png_warning_cb);
    if (job.png == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "%s: cannot set up the PNG reader", name);
    job.info = png_create_info_struct(job.png);
    if (job.info == NULL) {
        png_destroy_read_struct(&job.png, NULL, NULL);
        return hs_fail(err, HS_ERR_NOMEM, "%s: cannot set up the PNG reader", name);
    }
    /* Ancillary chunks (text, ICC profiles) are read whole and may inflate:
     * bound them here rather than rely on how libpng was configured. */
    png_set_chunk_malloc_max(job.png, HS_PNG_MAX_CHUNK_BYTES);
    int rc = png_decode(&job);
    png_destroy_read_struct(&job.png, &job.info, NULL);
    free(job.rows);
    if (rc == 0) {
        *img = job.img;
        return HS_OK;
    }
    hs_image_free(&job.img);
    if (src->io_errno != 0)
        return hs_fail(err, HS_ERR_IO, "%s: read error: %s", name, strerror(src->io_errno));
    if (job.nomem)
        return hs_fail(err, HS_ERR_NOMEM, "%s: %s", name, job.msg);
    if (job.truncated)
        return hs_fail(err, HS_ERR_FORMAT, "%s: truncated PNG (the data ends before IEND)", name);
    if (job.too_large)
        return hs_fail(err, HS_ERR_FORMAT, "%s: PNG image too large: %s", name, job.msg);
    return hs_fail(err, HS_ERR_FORMAT, "%s: corrupt PNG: %s", name, job.msg);
}

hs_status hs_png_read(const char *path, hs_image *img, hs_error *err)
{
    if (img != NULL)
        memset(img, 0, sizeof *img);
    if (path == NULL || path[0] == '\0' || img == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_png_read: no file name or no image given");
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return hs_fail(err, HS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    png_source src = {.fp = fp};
    hs_status st = png_read_source(&src, path, img, err);
    /* Read-only stream: closing cannot lose data, so its result is moot. */
    fclose(fp);
    return st;
}

hs_status hs_png_read_buffer(const unsigned char *buf, size_t len, const char *name, hs_image *img,
                             hs_error *err)
{
    if (name == NULL || name[0] == '\0')
        name = "(buffer)";
    if (img != NULL)
        memset(img, 0, sizeof *img);
    if (img == NULL || (buf == NULL && len > 0))
        return hs_fail(err, HS_ERR_ARG, "%s: hs_png_read_buffer: no image or no buffer given", name);
    png_source src = {.buf = buf, .len = len};
    return png_read_source(&src, name, img, err);
}

/* ---- PNG writing ---------------------------------------------------------- */

/* As png_read_job: owned by the caller of the function that calls setjmp. */
typedef struct {
    char msg[PNG_MSG_LEN]; /* libpng's reason */
    const hs_image *img;
    FILE *fp;
    png_structp png;
    png_infop info;
    unsigned char *row;
    int io_errno;
} png_write_job;

static void png_write_cb(png_structp png, png_bytep data, size_t n)
{
    png_write_job *job = png_get_io_ptr(png);
    if (fwrite(data, 1, n, job->fp) != n) {
        job->io_errno = errno != 0 ? errno : EIO;
        png_error(png, "write error");
    }
}

static void png_flush_cb(png_structp png)
{
    png_write_job *job = png_get_io_ptr(png);
    if (fflush(job->fp) != 0) {
        job->io_errno = errno != 0 ? errno : EIO;
        png_error(png, "write error");
    }
}

/* Nearest of 256 levels; NaN and negatives are 0, anything above 1 is 255. */
static unsigned char quantise(float v)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= 1.0f)
        return 255;
    return (unsigned char)(v * 255.0f + 0.5f);
}

static int png_encode(png_write_job *job)
{
    png_structp png = job->png;
    png_infop info = job->info;
    const hs_image *img = job->img;
    if (setjmp(png_jmpbuf(png)) != 0)
        return -1;
    png_set_write_fn(png, job, png_write_cb, png_flush_cb);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 img->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t per_row = (size_t)img->width * (size_t)img->channels;
    for (int y = 0; y < img->height; y++) {
        const float *src = img->px + (size_t)y * per_row;
        for (size_t i = 0; i < per_row; i++)
            job->row[i] = quantise(src[i]);
        png_write_row(png, job->row);
    }
    png_write_end(png, NULL);
    return 0;
}

hs_status hs_png_write(const char *path, const hs_image *img, hs_error *err)
{
    if (path == NULL || path[0] == '\0')
        return hs_fail(err, HS_ERR_ARG, "hs_png_write: no file name given");
    if (!image_ok(img))
        return hs_fail(err, HS_ERR_ARG, "%s: hs_png_write: no image or an invalid one given", path);
    if (img->channels != 1 && img->channels != 3)
        return hs_fail(err, HS_ERR_ARG, "%s: cannot write %d channels, expected 1 (gray) or 3 (RGB)",
                       path, img->channels);

    png_write_job job;
    memset(&job, 0, sizeof job);
    job.img = img;
    job.row = malloc((size_t)img->width * (size_t)img->channels);
    if (job.row == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "%s: cannot allocate a row buffer", path);
    job.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, job.msg, png_error_cb, png_warning_cb);
    if (job.png != NULL)
        job.info = png_create_info_struct(job.png);
    if (job.png == NULL || job.info == NULL) {
        png_destroy_write_struct(&job.png, &job.info);
        free(job.row);
        return hs_fail(err, HS_ERR_NOMEM, "%s: cannot set up the PNG writer", path);
    }
    job.fp = fopen(path, "wb");
    if (job.fp == NULL) {
        int e = errno;
        png_destroy_write_struct(&job.png, &job.info);
        free(job.row);
        return hs_fail(err, HS_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    int rc = png_encode(&job);
    png_destroy_write_struct(&job.png, &job.info);
    free(job.row);
    /* fclose reports a write error that buffering has hidden so far. */
    if (fclose(job.fp) != 0 && rc == 0) {
        job.io_errno = errno != 0 ? errno : EIO;
        rc = -1;
    }
    if (rc == 0)
        return HS_OK;
    remove(path);
    if (job.io_errno != 0)
        return hs_fail(err, HS_ERR_IO, "%s: write error: %s", path, strerror(job.io_errno));
    return hs_fail(err, HS_ERR_FORMAT, "%s: cannot encode PNG: %s", path, job.msg);
}

/* ---- gray ----------------------------------------------------------------- */

hs_status hs_image_to_gray(const hs_image *in, hs_image *gray, hs_error *err)
{
    if (gray != NULL)
        memset(gray, 0, sizeof *gray);
    if (!image_ok(in) || gray == NULL || gray == in)
        return hs_fail(err, HS_ERR_ARG, "hs_image_to_gray: no image, an invalid one or no separate output given");
    if (in->channels != 1 && in->channels != 3)
        return hs_fail(err, HS_ERR_ARG, "hs_image_to_gray: image has %d channels, expected 1 or 3",
                       in->channels);
    hs_status st = hs_image_alloc(gray, in->width, in->height, 1, err);
    if (st != HS_OK)
        return st;
    size_t n = (size_t)in->width * (size_t)in->height;
    if (in->channels == 1) {
        memcpy(gray->px, in->px, n * sizeof *gray->px);
        return HS_OK;
    }
    for (size_t i = 0; i < n; i++) {
        const float *p = in->px + 3 * i;
        gray->px[i] = (float)(0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]);
    }
    return HS_OK;
}

/* ---- head crop ------------------------------------------------------------ */

/* The crop works on runs (horizontal stretches of pixels on one row) rather
 * than on pixels: connected components are found by joining overlapping
 * runs of neighbouring rows with union-find, so the cost is one pass over
 * the pixels to find the runs plus work proportional to the number of runs
 * (a few dozen per row of a CT slice), instead of a flood fill visiting
 * every pixel and its eight neighbours three times. */

static hs_status image_copy(const hs_image *in, hs_image *out, hs_error *err)
{
    hs_status st = hs_image_alloc(out, in->width, in->height, in->channels, err);
    if (st == HS_OK)
        memcpy(out->px, in->px, image_values(in) * sizeof *in->px);
    return st;
}

typedef struct {
    int y, x0, x1; /* inclusive */
} run;

typedef struct {
    run *r;
    int n, cap;
    int *row_start; /* height + 1 entries: runs of row y are [row_start[y], row_start[y+1]) */
} run_list;

static int run_push(run_list *l, int y, int x0, int x1)
{
    if (hs_grow((void **)&l->r, &l->cap, l->n + 1, sizeof *l->r) != 0)
        return -1;
    l->r[l->n++] = (run){y, x0, x1};
    return 0;
}

static int uf_find(int *parent, int i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

/* Joins the sets of a and b; the smaller index becomes the root, so a
 * root is always the first run of its component in raster order. */
static void uf_union(int *parent, int a, int b)
{
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    if (a < b)
        parent[b] = a;
    else if (b < a)
        parent[a] = b;
}

/* Union every run of row y with the runs of row y - 1 it touches: overlap
 * in columns, widened by one for 8-connectivity (diagonal neighbours). */
static void join_rows(const run_list *l, int *parent, int y, int widen)
{
    int a = l->row_start[y - 1], a_end = l->row_start[y];
    int b = l->row_start[y], b_end = l->row_start[y + 1];
    while (a < a_end && b < b_end) {
        const run *p = &l->r[a], *q = &l->r[b];
        if (p->x1 + widen >= q->x0 && q->x1 + widen >= p->x0)
            uf_union(parent, a, b);
        /* advance the run that ends first */
        if (p->x1 < q->x1)
            a++;
        else
            b++;
    }
}

hs_status hs_image_crop_head(const hs_image *gray, float threshold, hs_image *out, hs_error *err)
{
    return hs_image_crop_head_box(gray, threshold, out, NULL, err);
}

/* The head's bounding box, inclusive. */
typedef struct {
    int x0, y0, x1, y1;
} crop_box;

/* Step 1 of the crop: the runs of pixels above threshold on channel 0,
 * row by row, into l, whose row_start has height + 1 entries. -1 when out
 * of memory. */
static int bright_runs(const hs_image *gray, float threshold, run_list *l)
{
    int w = gray->width, h = gray->height, c = gray->channels;
    for (int y = 0; y < h; y++) {
        l->row_start[y] = l->n;
        const float *row = gray->px + (size_t)y * (size_t)w * (size_t)c;
        int x = 0;
        while (x < w) {
            while (x < w && !(row[(size_t)x * (size_t)c] > threshold))
                x++;
            if (x == w)
                break;
            int x0 = x;
            while (x < w && row[(size_t)x * (size_t)c] > threshold)
                x++;
            if (run_push(l, y, x0, x - 1) != 0)
                return -1;
        }
    }
    l->row_start[h] = l->n;
    return 0;
}

/* Step 2: the head, the largest 8-connected component of the runs of l
 * (rows 0 to h - 1); on a tie the first in raster order, which has the
 * smallest root. parent has one entry per run and is left holding the
 * components. Returns the head's root, or -1 when out of memory. */
static int head_component(const run_list *l, int *parent, int h)
{
    for (int i = 0; i < l->n; i++)
        parent[i] = i;
    for (int y = 1; y < h; y++)
        join_rows(l, parent, y, 1);
    /* Sizes accumulate on the roots, in an array of their own. */
    size_t *size = calloc((size_t)l->n, sizeof *size);
    if (size == NULL)
        return -1;
    int head = -1;
    for (int i = 0; i < l->n; i++)
        size[uf_find(parent, i)] += (size_t)(l->r[i].x1 - l->r[i].x0 + 1);
    for (int i = 0; i < l->n; i++) {
        if (parent[i] == i && (head < 0 || size[i] > size[head]))
            head = i;
    }
    free(size);
    return head;
}

/* Step 3: the bounding box of the head's runs (of a w x h image). Marks
 * them on the way: parent[i] becomes -1 for a run of the head, 0 for any
 * other. */
static crop_box mark_head(const run_list *l, int *parent, int head, int w, int h)
{
    crop_box b = {w, h, -1, -1};
    for (int i = 0; i < l->n; i++) {
        if (uf_find(parent, i) != head)
            continue;
        const run *r = &l->r[i];
        b.x0 = r->x0 < b.x0 ? r->x0 : b.x0;
        b.x1 = r->x1 > b.x1 ? r->x1 : b.x1;
        b.y0 = r->y < b.y0 ? r->y : b.y0;
        b.y1 = r->y > b.y1 ? r->y : b.y1;
    }
    for (int i = l->n - 1; i >= 0; i--)
        parent[i] = uf_find(parent, i) == head ? -1 : 0;
    return b;
}

/* Step 4: the gaps, the stretches of each row of box b not covered by a
 * head run (marked -1 in head), into gaps; its row_start is filled for
 * all h + 1 rows. -1 when out of memory. */
static int gap_runs(const run_list *bright, const int *head, crop_box b, int h, run_list *gaps)
{
    for (int y = 0; y < b.y0; y++)
        gaps->row_start[y] = 0;
    for (int y = b.y0; y <= b.y1; y++) {
        gaps->row_start[y] = gaps->n;
        int x = b.x0;
        for (int i = bright->row_start[y]; i < bright->row_start[y + 1]; i++) {
            if (head[i] != -1)
                continue;
            if (bright->r[i].x0 > x && run_push(gaps, y, x, bright->r[i].x0 - 1) != 0)
                return -1;
            x = bright->r[i].x1 + 1;
        }
        if (x <= b.x1 && run_push(gaps, y, x, b.x1) != 0)
            return -1;
    }
    for (int y = b.y1 + 1; y <= h; y++)
        gaps->row_start[y] = gaps->n;
    return 0;
}

/* Step 5: which gaps are background. A gap 4-connected (exact column
 * overlap) to a gap on the edge of box b is background; the others are
 * holes of the head and are kept. parent (one entry per gap) is left
 * holding the gaps' components, and edge[root] is set to 1 for each
 * background component. */
static void background_gaps(const run_list *gaps, int *parent, char *edge, crop_box b)
{
    for (int i = 0; i < gaps->n; i++)
        parent[i] = i;
    for (int y = b.y0 + 1; y <= b.y1; y++)
        join_rows(gaps, parent, y, 0);
    for (int i = 0; i < gaps->n; i++) {
        const run *g = &gaps->r[i];
        if (g->y == b.y0 || g->y == b.y1 || g->x0 == b.x0 || g->x1 == b.x1)
            edge[uf_find(parent, i)] = 1;
    }
}

/* Step 6: out gets box b of gray, every channel, with the background gaps
 * (those whose root step 5 marked in edge) set to 0. */
static hs_status copy_head(const hs_image *gray, crop_box b, const run_list *gaps, int *parent, const char *edge,
                           hs_image *out, hs_error *err)
{
    int w = gray->width, c = gray->channels;
    hs_status st = hs_image_alloc(out, b.x1 - b.x0 + 1, b.y1 - b.y0 + 1, c, err);
    if (st != HS_OK)
        return st;
    size_t row_values = (size_t)out->width * (size_t)c;
    for (int y = b.y0; y <= b.y1; y++)
        memcpy(out->px + (size_t)(y - b.y0) * row_values,
               gray->px + ((size_t)y * (size_t)w + (size_t)b.x0) * (size_t)c, row_values * sizeof *out->px);
    for (int i = 0; i < gaps->n; i++) {
        const run *g = &gaps->r[i];
        if (!edge[uf_find(parent, i)])
            continue;
        float *dst = out->px + ((size_t)(g->y - b.y0) * (size_t)out->width + (size_t)(g->x0 - b.x0)) * (size_t)c;
        memset(dst, 0, (size_t)(g->x1 - g->x0 + 1) * (size_t)c * sizeof *dst);
    }
    return HS_OK;
}

hs_status hs_image_crop_head_box(const hs_image *gray, float threshold, hs_image *out, int box[4],
                                 hs_error *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (!image_ok(gray) || out == NULL || out == gray)
        return hs_fail(err, HS_ERR_ARG, "hs_image_crop_head: no image, an invalid one or no separate output given");
    if (isnan(threshold))
        return hs_fail(err, HS_ERR_ARG, "hs_image_crop_head: threshold is NaN, expected a number in [0, 1]");

    int w = gray->width, h = gray->height;
    run_list bright = {0}, gaps = {0};
    int *parent = NULL;
    char *edge = NULL;
    hs_status st = HS_OK;
    bright.row_start = malloc(((size_t)h + 1) * sizeof *bright.row_start);
    gaps.row_start = malloc(((size_t)h + 1) * sizeof *gaps.row_start);
    if (bright.row_start == NULL || gaps.row_start == NULL)
        goto nomem;
    if (bright_runs(gray, threshold, &bright) != 0)
        goto nomem;
    if (bright.n == 0) {
        if (box != NULL) {
            box[0] = 0;
            box[1] = 0;
            box[2] = w;
            box[3] = h;
        }
        free(bright.row_start);
        free(gaps.row_start);
        return image_copy(gray, out, err);
    }
    parent = malloc((size_t)bright.n * sizeof *parent);
    if (parent == NULL)
        goto nomem;
    int head = head_component(&bright, parent, h);
    if (head < 0)
        goto nomem;
    crop_box b = mark_head(&bright, parent, head, w, h);
    if (box != NULL) {
        box[0] = b.x0;
        box[1] = b.y0;
        box[2] = b.x1 - b.x0 + 1;
        box[3] = b.y1 - b.y0 + 1;
    }
    if (gap_runs(&bright, parent, b, h, &gaps) != 0)
        goto nomem;
    /* The gaps get union-find arrays of their own. */
    free(parent);
    parent = malloc(((size_t)gaps.n + 1) * sizeof *parent);
    edge = calloc((size_t)gaps.n + 1, 1);
    if (parent == NULL || edge == NULL)
        goto nomem;
    background_gaps(&gaps, parent, edge, b);
    st = copy_head(gray, b, &gaps, parent, edge, out, err);
    goto done;
nomem:
    st = hs_fail(err, HS_ERR_NOMEM, "hs_image_crop_head: cannot allocate work space for %dx%d pixels", w, h);
done:
    free(bright.r);
    free(bright.row_start);
    free(gaps.r);
    free(gaps.row_start);
    free(parent);
    free(edge);
    return st;
}

/* ---- resizing ------------------------------------------------------------- */

/* Taps of one axis: output i reads source index[i * taps + k] with weight
 * weight[i * taps + k], k < taps (unused taps have weight 0, index 0). */
typedef struct {
    int taps;
    int *index;
    double *weight;
} axis_plan;

static void axis_plan_free(axis_plan *plan)
{
    free(plan->index);
    free(plan->weight);
    memset(plan, 0, sizeof *plan);
}

/* Plans resampling src_n samples to dst_n. Returns 0, or -1 if out of memory. */
static int axis_plan_make(axis_plan *plan, int src_n, int dst_n)
{
    memset(plan, 0, sizeof *plan);
    double step = (double)src_n / (double)dst_n; /* source samples per output sample */
    int box_filter = dst_n <= src_n;
    /* An output interval of length step starts anywhere, so it can touch
     * ceil(step) + 1 source samples. */
    plan->taps = box_filter ? (int)ceil(step) + 1 : 2;
    size_t total = (size_t)dst_n * (size_t)plan->taps;
    plan->index = calloc(total, sizeof *plan->index);
    plan->weight = calloc(total, sizeof *plan->weight);
    if (plan->index == NULL || plan->weight == NULL) {
        axis_plan_free(plan);
        return -1;
    }
    for (int i = 0; i < dst_n; i++) {
        int *idx = plan->index + (size_t)i * (size_t)plan->taps;
        double *wt = plan->weight + (size_t)i * (size_t)plan->taps;
        if (box_filter) {
            /* Output i covers source [a, b); each source sample counts with
             * the length it shares with that interval. Computed from
             * integers so that neighbouring intervals meet exactly. */
            double a = (double)i * src_n / dst_n;
            double b = (double)(i + 1) * src_n / dst_n;
            int k0 = (int)floor(a);
            int k = 0;
            double sum = 0.0;
            for (int s = k0; s < src_n && s < b && k < plan->taps; s++) {
                double lo = a > s ? a : s;
                double hi = b < s + 1 ? b : s + 1;
                if (hi <= lo)
                    continue;
                idx[k] = s;
                wt[k] = hi - lo;
                sum += hi - lo;
                k++;
            }
            for (int j = 0; j < k; j++)
                wt[j] /= sum;
        } else {
            /* Bilinear between source pixel centres; the outermost half
             * pixel extends the edge sample. */
            double u = (i + 0.5) * step - 0.5;
            double f = floor(u);
            double t = u - f;
            int s0 = (int)f;
            int s1 = s0 + 1;
            if (s0 < 0)
                s0 = 0;
            if (s1 < 0)
                s1 = 0;
            if (s0 > src_n - 1)
                s0 = src_n - 1;
            if (s1 > src_n - 1)
                s1 = src_n - 1;
            idx[0] = s0;
            idx[1] = s1;
            wt[0] = 1.0 - t;
            wt[1] = t;
        }
    }
    return 0;
}

/* Where hs_image_fit puts a sw x sh picture on a width x height canvas:
 * content size cw x ch at offset (ox, oy). The limiting side fills the
 * canvas, the other keeps the aspect ratio, rounded to nearest (integers,
 * so no float drift). */
static void fit_layout(int src_w, int src_h, int width, int height, int *cw, int *ch, int *ox, int *oy)
{
    long long sw = src_w, sh = src_h;
    if ((long long)width * sh <= (long long)height * sw) {
        *cw = width;
        *ch = (int)((2 * sh * width + sw) / (2 * sw));
    } else {
        *ch = height;
        *cw = (int)((2 * sw * height + sh) / (2 * sh));
    }
    if (*cw < 1)
        *cw = 1;
    if (*ch < 1)
        *ch = 1;
    *ox = (width - *cw) / 2;
    *oy = (height - *ch) / 2;
}

hs_status hs_image_fit(const hs_image *in, int width, int height, hs_image *out, hs_error *err)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (!image_ok(in) || out == NULL || out == in)
        return hs_fail(err, HS_ERR_ARG, "hs_image_fit: no image, an invalid one or no separate output given");
    if (!size_ok(width, height, in->channels))
        return hs_fail(err, HS_ERR_ARG, "hs_image_fit: target size %dx%d is out of range, expected 1..%d per side",
                       width, height, HS_IMAGE_MAX_SIDE);

    int cw, ch, ox, oy;
    fit_layout(in->width, in->height, width, height, &cw, &ch, &ox, &oy);

    int c = in->channels;
    axis_plan px_plan, py_plan;
    int bad = axis_plan_make(&px_plan, in->width, cw);
    bad |= axis_plan_make(&py_plan, in->height, ch);
    float *tmp = malloc((size_t)in->height * (size_t)cw * (size_t)c * sizeof *tmp);
    hs_status st = HS_OK;
    if (bad != 0 || tmp == NULL)
        st = hs_fail(err, HS_ERR_NOMEM, "hs_image_fit: cannot allocate work space for %dx%d -> %dx%d", in->width,
                     in->height, width, height);
    if (st == HS_OK)
        st = hs_image_alloc(out, width, height, c, err);
    if (st != HS_OK) {
        axis_plan_free(&px_plan);
        axis_plan_free(&py_plan);
        free(tmp);
        return st;
    }

    /* Along rows: in (sh x sw) -> tmp (sh x cw). */
    for (int y = 0; y < in->height; y++) {
        const float *src = in->px + (size_t)y * (size_t)in->width * (size_t)c;
        float *dst = tmp + (size_t)y * (size_t)cw * (size_t)c;
        for (int x = 0; x < cw; x++) {
            const int *idx = px_plan.index + (size_t)x * (size_t)px_plan.taps;
            const double *wt = px_plan.weight + (size_t)x * (size_t)px_plan.taps;
            for (int k = 0; k < c; k++) {
                double acc = 0.0;
                for (int t = 0; t < px_plan.taps; t++)
                    acc += wt[t] * src[(size_t)idx[t] * (size_t)c + (size_t)k];
                dst[(size_t)x * (size_t)c + (size_t)k] = (float)acc;
            }
        }
    }
    /* Along columns: tmp (sh x cw) -> the content box of out (ch x cw). */
    size_t row_len = (size_t)cw * (size_t)c;
    for (int y = 0; y < ch; y++) {
        const int *idx = py_plan.index + (size_t)y * (size_t)py_plan.taps;
        const double *wt = py_plan.weight + (size_t)y * (size_t)py_plan.taps;
        float *dst = out->px + ((size_t)(y + oy) * (size_t)width + (size_t)ox) * (size_t)c;
        for (size_t j = 0; j < row_len; j++) {
            double acc = 0.0;
            for (int t = 0; t < py_plan.taps; t++)
                acc += wt[t] * tmp[(size_t)idx[t] * row_len + j];
            dst[j] = (float)acc;
        }
    }
    axis_plan_free(&px_plan);
    axis_plan_free(&py_plan);
    free(tmp);
    return HS_OK;
}

/* ---- the input recipe ----------------------------------------------------- */

/* 1 if the fixed-size name field holds a NUL-terminated string equal to s. */
static int name_is(const char *field, size_t cap, const char *s)
{
    return memchr(field, '\0', cap) != NULL && strcmp(field, s) == 0;
}

/* The channels of a gray-picture recipe named "gray-window" get the
 * picture (a rendering in channel 0's window, held in every channel of
 * out) re-windowed to their own window: HU = lo0 + v * w0 back from channel
 * 0's window, then (HU - lo) / w into the channel's, clamped to [0, 1]. */
static void rewindow(float *out, size_t n, const hs_input_recipe *recipe)
{
    int c = recipe->channels;
    double lo0 = recipe->channel[0].center_hu - 0.5 * recipe->channel[0].width_hu;
    double w0 = recipe->channel[0].width_hu;
    for (int k = 1; k < c; k++) {
        if (!name_is(recipe->channel[k].name, sizeof recipe->channel[k].name, "gray-window"))
            continue;
        double lo = recipe->channel[k].center_hu - 0.5 * recipe->channel[k].width_hu;
        double w = recipe->channel[k].width_hu;
        float a = (float)(w0 / w), b = (float)((lo0 - lo) / w);
        for (size_t i = 0; i < n; i++) {
            float v = a * out[i * (size_t)c + (size_t)k] + b;
            out[i * (size_t)c + (size_t)k] = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
        }
    }
}

hs_status hs_prepare_input(const hs_image *picture, const hs_input_recipe *recipe, float *out,
                           hs_error *err)
{
    return hs_prepare_input_geometry(picture, recipe, out, NULL, err);
}

void hs_input_to_picture(const hs_input_geometry *g, double ix, double iy, double *px, double *py)
{
    /* pixel centres: input pixel i covers [i, i + 1) */
    *px = g->crop_x + (ix + 0.5 - g->content_x) * (double)g->crop_w / g->content_w - 0.5;
    *py = g->crop_y + (iy + 0.5 - g->content_y) * (double)g->crop_h / g->content_h - 0.5;
}

void hs_picture_to_input(const hs_input_geometry *g, double px, double py, double *ix, double *iy)
{
    *ix = g->content_x + (px + 0.5 - g->crop_x) * (double)g->content_w / g->crop_w - 0.5;
    *iy = g->content_y + (py + 0.5 - g->crop_y) * (double)g->content_h / g->crop_h - 0.5;
}

hs_status hs_prepare_input_geometry(const hs_image *picture, const hs_input_recipe *recipe, float *out,
                                    hs_input_geometry *geo, hs_error *err)
{
    if (!image_ok(picture) || recipe == NULL || out == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_prepare_input: no picture, an invalid one, no recipe or no output given");
    int crop;
    if (name_is(recipe->crop, sizeof recipe->crop, "head")) {
        crop = 1;
    } else if (name_is(recipe->crop, sizeof recipe->crop, "none")) {
        crop = 0;
    } else {
        return hs_fail(err, HS_ERR_ARG, "input recipe: unknown crop \"%.*s\", expected \"head\" or \"none\"",
                       (int)sizeof recipe->crop, recipe->crop);
    }
    if (!name_is(recipe->normalise, sizeof recipe->normalise, "unit"))
        return hs_fail(err, HS_ERR_ARG, "input recipe: unknown normalise \"%.*s\", expected \"unit\"",
                       (int)sizeof recipe->normalise, recipe->normalise);
    if (recipe->width < 1 || recipe->width > HS_IMAGE_MAX_SIDE || recipe->height < 1 ||
        recipe->height > HS_IMAGE_MAX_SIDE)
        return hs_fail(err, HS_ERR_ARG, "input recipe: size %dx%d out of range, expected 1..%d per side",
                       recipe->width, recipe->height, HS_IMAGE_MAX_SIDE);
    if (recipe->channels < 1 || recipe->channels > HS_MODEL_MAX_CHANNELS)
        return hs_fail(err, HS_ERR_ARG, "input recipe: %d channels, expected 1..%d", recipe->channels,
                       HS_MODEL_MAX_CHANNELS);

    /* A recipe of gray pictures, or a one-channel picture, is reduced to
     * gray and replicated (and re-windowed per channel where the recipe
     * says so); otherwise the picture already holds one rendering per
     * channel (a CT slice through each window) and keeps them. */
    int from_gray = hs_recipe_from_gray(recipe);
    int per_channel = !from_gray && picture->channels > 1;
    if (per_channel && picture->channels != recipe->channels)
        return hs_fail(err, HS_ERR_ARG,
                       "input recipe has %d distinct windows but the picture has %d channels",
                       recipe->channels, picture->channels);
    /* The picture is read as it is when it already holds what the network
     * gets (gray, or one rendering per window): no copy on the hot path of
     * a study, where this runs once per slice. */
    hs_image gray = {0}, cropped = {0}, fitted = {0};
    const hs_image *source = picture;
    hs_status st = HS_OK;
    if (!per_channel && picture->channels != 1) {
        st = hs_image_to_gray(picture, &gray, err);
        source = &gray;
    }
    int box[4] = {0, 0, picture->width, picture->height};
    if (st == HS_OK && crop)
        st = hs_image_crop_head_box(source, HS_HEAD_THRESHOLD, &cropped, box, err);
    if (st == HS_OK)
        st = hs_image_fit(crop ? &cropped : source, recipe->width, recipe->height, &fitted, err);
    if (st == HS_OK && geo != NULL) {
        geo->picture_width = picture->width;
        geo->picture_height = picture->height;
        geo->crop_x = box[0];
        geo->crop_y = box[1];
        geo->crop_w = box[2];
        geo->crop_h = box[3];
        geo->input_width = recipe->width;
        geo->input_height = recipe->height;
        fit_layout(box[2], box[3], recipe->width, recipe->height, &geo->content_w, &geo->content_h,
                   &geo->content_x, &geo->content_y);
    }
    if (st == HS_OK) {
        /* "unit": the rendering already maps the window to [0, 1]. */
        size_t n = (size_t)recipe->width * (size_t)recipe->height;
        int c = recipe->channels;
        for (size_t i = 0; i < n; i++) {
            for (int k = 0; k < c; k++)
                out[i * (size_t)c + (size_t)k] = fitted.px[i * (size_t)fitted.channels +
                                                            (size_t)(per_channel ? k : 0)];
        }
        if (from_gray)
            rewindow(out, n, recipe);
    }
    hs_image_free(&gray);
    hs_image_free(&cropped);
    hs_image_free(&fitted);
    return st;
}

/* ---- augmentation --------------------------------------------------------- */

void hs_augment_default(hs_augment *aug)
{
    aug->flip_prob = 0.5f;
    aug->rotate_deg = 10.0f;
    aug->shift_frac = 0.08f;
    aug->zoom_frac = 0.10f;
    aug->brightness = 0.08f;
    aug->contrast = 0.15f;
}

/* Uniform in [-r, r] from a uniform u in [0, 1); exactly 0 when r is 0. */
static double symmetric(double u, double r)
{
    return (2.0 * u - 1.0) * r;
}

/* out = in warped by the inverse map below, bilinear, 0 outside. The map is
 * written so that a flip alone lands on integer coordinates exactly (the
 * centre is a multiple of one half, the rotation terms are exactly 1 and
 * 0), and then the sample is exactly the source pixel. */
static void warp(const float *in, float *out, int width, int height, int channels, int flip,
                 double angle, double tx, double ty, double zoom)
{
    double cx = (width - 1) * 0.5, cy = (height - 1) * 0.5;
    double cs = cos(angle) / zoom, sn = sin(angle) / zoom;
    size_t c = (size_t)channels;
    for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
            /* Undo shift, rotation and zoom, then the flip. */
            double dx = x - cx - tx, dy = y - cy - ty;
            double sx = cs * dx + sn * dy;
            double sy = cs * dy - sn * dx;
            if (flip)
                sx = -sx;
            sx += cx;
            sy += cy;
            float *dst = out + ((size_t)y * (size_t)width + (size_t)x) * c;
            double fx = floor(sx), fy = floor(sy);
            if (!(fx >= -1.0 && fx < width && fy >= -1.0 && fy < height)) {
                memset(dst, 0, c * sizeof *dst);
                continue;
            }
            int x0 = (int)fx, y0 = (int)fy;
            float ax = (float)(sx - fx), ay = (float)(sy - fy);
            int in_x0 = x0 >= 0, in_x1 = x0 + 1 < width;
            int in_y0 = y0 >= 0, in_y1 = y0 + 1 < height;
            const float *r0 = in + (size_t)(in_y0 ? y0 : 0) * (size_t)width * c;
            const float *r1 = in + (size_t)(in_y1 ? y0 + 1 : 0) * (size_t)width * c;
            size_t c0 = (size_t)(in_x0 ? x0 : 0) * c, c1 = (size_t)(in_x1 ? x0 + 1 : 0) * c;
            for (size_t k = 0; k < c; k++) {
                float v00 = in_y0 && in_x0 ? r0[c0 + k] : 0.0f;
                float v01 = in_y0 && in_x1 ? r0[c1 + k] : 0.0f;
                float v10 = in_y1 && in_x0 ? r1[c0 + k] : 0.0f;
                float v11 = in_y1 && in_x1 ? r1[c1 + k] : 0.0f;
                dst[k] = (1.0f - ay) * ((1.0f - ax) * v00 + ax * v01) + ay * ((1.0f - ax) * v10 + ax * v11);
            }
        }
    }
}

void hs_augment_apply(const hs_augment *aug, hs_rng *rng, const float *in, float *out, int width,
                      int height, int channels)
{
    /* Always seven draws, in the documented order, before any decision. */
    double u[7];
    for (int i = 0; i < 7; i++)
        u[i] = hs_rng_uniform(rng);
    int flip = u[0] < aug->flip_prob;
    double angle = symmetric(u[1], aug->rotate_deg) * (M_PI / 180.0);
    double tx = symmetric(u[2], aug->shift_frac) * width;
    double ty = symmetric(u[3], aug->shift_frac) * height;
    double zoom = 1.0 + symmetric(u[4], aug->zoom_frac);
    float brightness = (float)symmetric(u[5], aug->brightness);
    float contrast = (float)(1.0 + symmetric(u[6], aug->contrast));
    /* A zoom_frac of 1 or more could draw a zero or negative scale. */
    if (zoom < 1e-3)
        zoom = 1e-3;

    size_t n = (size_t)width * (size_t)height * (size_t)channels;
    int moves = flip || angle != 0.0 || tx != 0.0 || ty != 0.0 || zoom != 1.0;
    int shades = brightness != 0.0f || contrast != 1.0f;
    if (moves)
        warp(in, out, width, height, channels, flip, angle, tx, ty, zoom);
    else
        memcpy(out, in, n * sizeof *out);
    if (!moves && !shades)
        return;
    for (size_t i = 0; i < n; i++) {
        float v = out[i];
        if (shades)
            v = (v - 0.5f) * contrast + 0.5f + brightness;
        if (!(v > 0.0f))
            v = 0.0f;
        else if (v > 1.0f)
            v = 1.0f;
        out[i] = v;
    }
}
