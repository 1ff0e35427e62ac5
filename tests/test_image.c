/* test_image.c - CUnit tests of the image stage (image.c), registered by
 * hs_register_image_tests().
 *
 * The image stage decides what the network sees, so the tests pin values,
 * not just shapes. PNGs of every colour type and bit depth are written here
 * with libpng itself (not with hs_png_write, which only writes 8-bit gray
 * and RGB) and read back pixel for pixel; damaged files (foreign, empty,
 * truncated at many points, corrupt image data) must be refused with a
 * message naming the file. The geometric steps are checked against images
 * whose right answer is known exactly (a drawn head with a blob of 'text',
 * a diamond ring closed only diagonally, constants and checkerboards whose
 * mean must survive resizing), and the whole recipe against its purpose:
 * the same head at two pixel sizes, or stored as RGB and as RGBA, must give
 * the same tensor. If the shared sample data is present, a few real head CT
 * images go through the recipe too. Files live in a private mkdtemp
 * directory that is removed afterwards. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "hemoscan/image.h"
#include "hemoscan/model.h"
#include "hemoscan/rng.h"
#include "hemoscan/status.h"
#include "test_util.h"

int hs_register_image_tests(void);

static char tmp_dir[4096];

/* ---- helpers -------------------------------------------------------------- */

static int suite_init(void)
{
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "image");
}

static int suite_clean(void)
{
    return hs_test_tmpdir_remove(tmp_dir);
}

/* Asserts that st is the expected failure and that the message names the
 * file (or buffer) it is about. */
static void check_refused(hs_status st, const hs_error *err, hs_status expected, const char *name)
{
    CU_ASSERT_EQUAL(st, expected);
    CU_ASSERT_PTR_NOT_NULL(strstr(err->msg, name));
}

static double mean_of(const float *v, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return n > 0 ? s / (double)n : 0.0;
}

/* ---- PNG files written with libpng directly ------------------------------- */

/* One PNG to write: samples are the values PNG stores (palette indices for
 * palette images), height * width * channels of them. */
typedef struct {
    int width, height, depth, color, interlace;
    const uint16_t *samples;
    const png_color *palette;
    int n_palette;
    const png_byte *trans_alpha; /* palette tRNS */
    int n_trans;
    const png_color_16 *trans_color; /* gray or RGB tRNS */
} test_png;

static int png_channels_of(int color)
{
    switch (color) {
    case PNG_COLOR_TYPE_GRAY_ALPHA:
        return 2;
    case PNG_COLOR_TYPE_RGB:
        return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA:
        return 4;
    default:
        return 1;
    }
}

/* The libpng calls proper; 0 on success. Everything it touches is set up
 * by the caller before setjmp, so no local needs to be volatile. */
static int write_test_png_body(png_structp png, png_infop info, FILE *fp, const test_png *t,
                               png_bytep *rows)
{
    if (setjmp(png_jmpbuf(png)) != 0)
        return -1;
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)t->width, (png_uint_32)t->height, t->depth, t->color,
                 t->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (t->palette != NULL)
        png_set_PLTE(png, info, t->palette, t->n_palette);
    if (t->trans_alpha != NULL || t->trans_color != NULL)
        png_set_tRNS(png, info, t->trans_alpha, t->n_trans, t->trans_color);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    return 0;
}

static int write_test_png(const char *path, const test_png *t)
{
    int ch = png_channels_of(t->color);
    size_t rowbytes = ((size_t)t->width * (size_t)ch * (size_t)t->depth + 7) / 8;
    unsigned char *data = calloc((size_t)t->height, rowbytes);
    png_bytep *rows = malloc((size_t)t->height * sizeof *rows);
    if (data == NULL || rows == NULL) {
        free(data);
        free(rows);
        return -1;
    }
    /* Pack samples as PNG stores them: big-endian 16-bit, or several per
     * byte, most significant bits first, below 8 bits. */
    for (int y = 0; y < t->height; y++) {
        unsigned char *row = data + (size_t)y * rowbytes;
        rows[y] = row;
        for (int i = 0; i < t->width * ch; i++) {
            unsigned v = t->samples[(size_t)y * (size_t)t->width * (size_t)ch + (size_t)i];
            if (t->depth == 16) {
                row[2 * i] = (unsigned char)(v >> 8);
                row[2 * i + 1] = (unsigned char)(v & 0xff);
            } else if (t->depth == 8) {
                row[i] = (unsigned char)v;
            } else {
                size_t bit = (size_t)i * (size_t)t->depth;
                row[bit / 8] |= (unsigned char)(v << (8 - t->depth - (int)(bit % 8)));
            }
        }
    }
    FILE *fp = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
    int rc = -1;
    if (fp != NULL && png != NULL && info != NULL)
        rc = write_test_png_body(png, info, fp, t, rows);
    png_destroy_write_struct(&png, &info);
    if (fp != NULL && fclose(fp) != 0)
        rc = -1;
    free(rows);
    free(data);
    return rc;
}

/* A deterministic sample pattern over the full range of the depth, with
 * both extremes present: pixel 0 is all-maximum, pixel 1 all-zero. */
static uint16_t *make_samples(int width, int height, int channels, int depth, unsigned modulus)
{
    size_t n = (size_t)width * (size_t)height * (size_t)channels;
    uint16_t *s = malloc(n * sizeof *s);
    if (s == NULL)
        return NULL;
    unsigned max = modulus != 0 ? modulus - 1 : (1u << depth) - 1;
    for (size_t i = 0; i < n; i++)
        s[i] = (uint16_t)((i * 2654435761u + i / 3) % (max + 1));
    for (int c = 0; c < channels && (size_t)(2 * channels) <= n; c++) {
        s[c] = (uint16_t)max;
        s[channels + c] = 0;
    }
    return s;
}

/* The correctly rounded float of v / (2^depth - 1). Below 8 bits the value
 * is first scaled to 8 bits, which is exact (255 is a multiple of 1, 3 and
 * 15), so one float division gives the correctly rounded ratio. */
static float expected_value(unsigned v, int depth)
{
    if (depth == 16)
        return (float)v / 65535.0f;
    unsigned max = (1u << depth) - 1;
    return (float)(v * (255u / max)) / 255.0f;
}

/* Writes a PNG of the given kind, reads it from the file and from memory,
 * and checks the channel count and every pixel exactly. */
static void check_png_kind(const char *leaf, int color, int depth, int interlace, int with_trns)
{
    const int w = 13, h = 7;
    int ch = png_channels_of(color);
    test_png t = {w, h, depth, color, interlace, NULL, NULL, 0, NULL, 0, NULL};
    png_color palette[16];
    png_byte alpha[16];
    png_color_16 trans_color;
    memset(&trans_color, 0, sizeof trans_color);
    unsigned modulus = 0;
    if (color == PNG_COLOR_TYPE_PALETTE) {
        int n = 1 << (depth < 4 ? depth : 4);
        for (int i = 0; i < n; i++) {
            palette[i].red = (png_byte)(17 * i);
            palette[i].green = (png_byte)(255 - 13 * i);
            palette[i].blue = (png_byte)(100 + 9 * i);
            alpha[i] = (png_byte)(i * 16);
        }
        t.palette = palette;
        t.n_palette = n;
        modulus = (unsigned)n;
        if (with_trns) {
            t.trans_alpha = alpha;
            t.n_trans = n;
        }
    } else if (with_trns) {
        /* A transparent colour: one that occurs (pixel 1 is all zero). */
        t.trans_color = &trans_color;
    }
    uint16_t *samples = make_samples(w, h, ch, depth, modulus);
    CU_ASSERT_PTR_NOT_NULL_FATAL(samples);
    t.samples = samples;
    char path[4400];
    hs_test_path(path, sizeof path, tmp_dir, leaf);
    CU_ASSERT_EQUAL_FATAL(write_test_png(path, &t), 0);

    hs_image img = {0}, img2 = {0};
    hs_error err = {0};
    hs_status st = hs_png_read(path, &img, &err);
    CU_ASSERT_EQUAL(st, HS_OK);
    if (st != HS_OK) {
        fprintf(stderr, "\n%s\n", err.msg);
        free(samples);
        return;
    }
    int color_source = (color & PNG_COLOR_MASK_COLOR) != 0;
    int want_channels = color_source ? 3 : 1;
    CU_ASSERT_EQUAL(img.width, w);
    CU_ASSERT_EQUAL(img.height, h);
    CU_ASSERT_EQUAL(img.channels, want_channels);
    int bad = 0;
    for (int i = 0; i < w * h && img.channels == want_channels; i++) {
        for (int c = 0; c < want_channels; c++) {
            float want;
            if (color == PNG_COLOR_TYPE_PALETTE) {
                const png_color *p = &palette[samples[i]];
                png_byte rgb[3] = {p->red, p->green, p->blue};
                want = (float)rgb[c] / 255.0f;
            } else {
                want = expected_value(samples[(size_t)i * (size_t)ch + (size_t)c], depth);
            }
            if (img.px[(size_t)i * (size_t)want_channels + (size_t)c] != want)
                bad++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* The extremes map to exactly 0 and 1 (palette entries aside). */
    if (color != PNG_COLOR_TYPE_PALETTE) {
        CU_ASSERT_EQUAL(img.px[0], 1.0f);
        CU_ASSERT_EQUAL(img.px[want_channels], 0.0f);
    }

    /* The memory reader gives the same image. */
    size_t len;
    unsigned char *buf = hs_test_read_file(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_EQUAL(hs_png_read_buffer(buf, len, leaf, &img2, &err), HS_OK);
    CU_ASSERT(img2.px != NULL && img2.width == img.width && img2.height == img.height &&
              img2.channels == img.channels &&
              memcmp(img2.px, img.px, (size_t)w * (size_t)h * (size_t)want_channels * sizeof(float)) == 0);
    free(buf);
    free(samples);
    hs_image_free(&img);
    hs_image_free(&img2);
}

/* A valid PNG in memory, for the damage tests: a 40 x 30 RGB gradient. */
static unsigned char *valid_png(size_t *len)
{
    hs_image img = {0};
    if (hs_image_alloc(&img, 40, 30, 3, NULL) != HS_OK)
        return NULL;
    for (int y = 0; y < 30; y++) {
        for (int x = 0; x < 40; x++) {
            float *p = img.px + ((size_t)y * 40 + (size_t)x) * 3;
            p[0] = (float)x / 39.0f;
            p[1] = (float)y / 29.0f;
            p[2] = (float)((x * y) % 7) / 6.0f;
        }
    }
    char path[4400];
    hs_test_path(path, sizeof path, tmp_dir, "valid.png");
    hs_status st = hs_png_write(path, &img, NULL);
    hs_image_free(&img);
    return st == HS_OK ? hs_test_read_file(path, len) : NULL;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void set_be32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (24 - 8 * i));
}

/* The CRC-32 of PNG chunks (ISO 3309 / ITU-T V.42, reflected 0xEDB88320),
 * bit by bit: slow, obviously correct, and only used on small test files. */
static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1u) != 0 ? (c >> 1) ^ 0xedb88320u : c >> 1;
    }
    return c ^ 0xffffffffu;
}

/* Offset of the first chunk of the given type, or 0 if there is none. */
static size_t find_chunk(const unsigned char *buf, size_t len, const char *type)
{
    size_t pos = 8;
    while (pos + 12 <= len) {
        uint32_t n = be32(buf + pos);
        if (memcmp(buf + pos + 4, type, 4) == 0)
            return pos;
        pos += 12 + (size_t)n;
    }
    return 0;
}

/* Recomputes the CRC of the chunk at pos after a deliberate edit, so the
 * check behind it (zlib, not the CRC) is what the reader trips on. */
static void fix_crc(unsigned char *buf, size_t pos)
{
    uint32_t n = be32(buf + pos);
    set_be32(buf + pos + 8 + n, crc32_of(buf + pos + 4, 4 + (size_t)n));
}

/* Both readers must refuse the bytes with HS_ERR_FORMAT, naming them. */
static void check_damaged(const unsigned char *buf, size_t len, const char *leaf)
{
    char path[4400];
    hs_test_path(path, sizeof path, tmp_dir, leaf);
    CU_ASSERT_EQUAL_FATAL(hs_test_write_file(path, buf, len), 0);
    hs_image img = {0};
    hs_error err = {0};
    hs_status st = hs_png_read(path, &img, &err);
    check_refused(st, &err, HS_ERR_FORMAT, path);
    CU_ASSERT_PTR_NULL(img.px);
    st = hs_png_read_buffer(buf, len, leaf, &img, &err);
    check_refused(st, &err, HS_ERR_FORMAT, leaf);
    CU_ASSERT_PTR_NULL(img.px);
}

/* ---- PNG tests ------------------------------------------------------------ */

static void test_image_alloc(void)
{
    hs_image img = {0};
    hs_error err = {0};
    CU_ASSERT_EQUAL(hs_image_alloc(&img, 5, 4, 3, &err), HS_OK);
    CU_ASSERT(img.width == 5 && img.height == 4 && img.channels == 3 && img.px != NULL);
    int nonzero = 0;
    for (int i = 0; i < 60 && img.px != NULL; i++)
        nonzero += img.px[i] != 0.0f;
    CU_ASSERT_EQUAL(nonzero, 0);
    hs_image_free(&img);
    CU_ASSERT(img.px == NULL && img.width == 0);
    hs_image_free(&img); /* twice is harmless */
    hs_image_free(NULL);
    CU_ASSERT_EQUAL(hs_image_alloc(&img, 0, 4, 1, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_image_alloc(&img, 4, HS_IMAGE_MAX_SIDE + 1, 1, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_image_alloc(&img, 4, 4, 0, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_image_alloc(&img, 4, 4, HS_IMAGE_MAX_CHANNELS + 1, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NULL(img.px);
}

static void test_png_gray(void)
{
    check_png_kind("gray1.png", PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, 0);
    check_png_kind("gray2.png", PNG_COLOR_TYPE_GRAY, 2, PNG_INTERLACE_NONE, 0);
    check_png_kind("gray4.png", PNG_COLOR_TYPE_GRAY, 4, PNG_INTERLACE_NONE, 0);
    check_png_kind("gray8.png", PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, 0);
    check_png_kind("gray16.png", PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE, 0);
    check_png_kind("gray8-trns.png", PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, 1);
}

static void test_png_gray_alpha(void)
{
    check_png_kind("ga8.png", PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, 0);
    check_png_kind("ga16.png", PNG_COLOR_TYPE_GRAY_ALPHA, 16, PNG_INTERLACE_NONE, 0);
}

static void test_png_rgb(void)
{
    check_png_kind("rgb8.png", PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, 0);
    check_png_kind("rgb16.png", PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE, 0);
    check_png_kind("rgb8-trns.png", PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, 1);
    check_png_kind("rgba8.png", PNG_COLOR_TYPE_RGB_ALPHA, 8, PNG_INTERLACE_NONE, 0);
    check_png_kind("rgba16.png", PNG_COLOR_TYPE_RGB_ALPHA, 16, PNG_INTERLACE_NONE, 0);
}

static void test_png_palette(void)
{
    check_png_kind("pal8-trns.png", PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_NONE, 1);
    check_png_kind("pal8.png", PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_NONE, 0);
    check_png_kind("pal4.png", PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE, 1);
    check_png_kind("pal1.png", PNG_COLOR_TYPE_PALETTE, 1, PNG_INTERLACE_NONE, 0);
}

static void test_png_interlaced(void)
{
    check_png_kind("rgb8-adam7.png", PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, 0);
    check_png_kind("gray16-adam7.png", PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_ADAM7, 0);
    check_png_kind("gray1-adam7.png", PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_ADAM7, 0);
    check_png_kind("pal8-adam7.png", PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_ADAM7, 1);
    check_png_kind("rgba8-adam7.png", PNG_COLOR_TYPE_RGB_ALPHA, 8, PNG_INTERLACE_ADAM7, 0);
}

/* The values named in the specification, spelled out once more. */
static void test_png_known_values(void)
{
    uint16_t s16[2] = {65535, 32768};
    uint16_t s8[2] = {128, 255};
    char path[4400];
    hs_image img = {0};
    hs_error err = {0};
    test_png t = {2, 1, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, s16, NULL, 0, NULL, 0, NULL};
    hs_test_path(path, sizeof path, tmp_dir, "known16.png");
    CU_ASSERT_EQUAL_FATAL(write_test_png(path, &t), 0);
    CU_ASSERT_EQUAL_FATAL(hs_png_read(path, &img, &err), HS_OK);
    CU_ASSERT_EQUAL(img.px[0], 1.0f);
    CU_ASSERT_DOUBLE_EQUAL(img.px[1], 32768.0 / 65535.0, 1e-7);
    hs_image_free(&img);
    t.depth = 8;
    t.samples = s8;
    hs_test_path(path, sizeof path, tmp_dir, "known8.png");
    CU_ASSERT_EQUAL_FATAL(write_test_png(path, &t), 0);
    CU_ASSERT_EQUAL_FATAL(hs_png_read(path, &img, &err), HS_OK);
    CU_ASSERT_EQUAL(img.px[0], 128.0f / 255.0f);
    CU_ASSERT_EQUAL(img.px[1], 1.0f);
    hs_image_free(&img);
}

static void test_png_not_png(void)
{
    char path[4400];
    hs_image img = {0};
    hs_error err = {0};
    static const char text[] = "id,hemorrhage\n000,1\nthis is not a PNG\n";
    hs_test_path(path, sizeof path, tmp_dir, "labels.txt");
    CU_ASSERT_EQUAL_FATAL(hs_test_write_file(path, text, sizeof text - 1), 0);
    check_refused(hs_png_read(path, &img, &err), &err, HS_ERR_FORMAT, path);
    CU_ASSERT_PTR_NULL(img.px);

    hs_test_path(path, sizeof path, tmp_dir, "empty.png");
    CU_ASSERT_EQUAL_FATAL(hs_test_write_file(path, "", 0), 0);
    check_refused(hs_png_read(path, &img, &err), &err, HS_ERR_FORMAT, path);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "empty"));
    check_refused(hs_png_read_buffer(NULL, 0, "empty-buffer", &img, &err), &err, HS_ERR_FORMAT,
                  "empty-buffer");

    hs_test_path(path, sizeof path, tmp_dir, "does-not-exist.png");
    check_refused(hs_png_read(path, &img, &err), &err, HS_ERR_IO, path);
    /* A directory opens but cannot be read. */
    check_refused(hs_png_read(tmp_dir, &img, &err), &err, HS_ERR_IO, tmp_dir);

    CU_ASSERT_EQUAL(hs_png_read(NULL, &img, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_png_read_buffer(NULL, 5, "null", &img, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NULL(img.px);
}

static void test_png_truncated(void)
{
    size_t len;
    unsigned char *buf = valid_png(&len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    size_t idat = find_chunk(buf, len, "IDAT");
    CU_ASSERT_FATAL(idat > 0);
    size_t idat_len = be32(buf + idat);
    /* Inside the signature, after it, inside and after IHDR, inside the
     * IDAT header and data, just before IEND, and one byte short. */
    size_t cuts[] = {1, 4, 8, 12, 20, 33, idat + 6, idat + 8 + idat_len / 2, idat + 8 + idat_len,
                     len - 12, len - 4, len - 1};
    char leaf[64];
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        CU_ASSERT_FATAL(cuts[i] < len);
        snprintf(leaf, sizeof leaf, "cut-%zu.png", cuts[i]);
        check_damaged(buf, cuts[i], leaf);
    }
    free(buf);
}

static void test_png_corrupt(void)
{
    size_t len;
    unsigned char *buf = valid_png(&len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    size_t idat = find_chunk(buf, len, "IDAT");
    CU_ASSERT_FATAL(idat > 0);
    size_t n = be32(buf + idat);
    unsigned char *copy = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);

    /* A flipped byte in the image data: the chunk CRC no longer matches. */
    memcpy(copy, buf, len);
    copy[idat + 8 + n / 2] ^= 0x5a;
    check_damaged(copy, len, "idat-crc.png");

    /* A broken zlib header under a correct CRC. */
    memcpy(copy, buf, len);
    copy[idat + 8] ^= 0xff;
    fix_crc(copy, idat);
    check_damaged(copy, len, "idat-zlib-header.png");

    /* Deflate data that is not deflate (reserved block type) under a
     * correct CRC and a valid zlib header. */
    memcpy(copy, buf, len);
    memset(copy + idat + 10, 0xff, n - 2);
    fix_crc(copy, idat);
    check_damaged(copy, len, "idat-deflate.png");

    /* A header that claims a width PNG forbids (0). */
    memcpy(copy, buf, len);
    size_t ihdr = find_chunk(copy, len, "IHDR");
    CU_ASSERT_FATAL(ihdr > 0);
    set_be32(copy + ihdr + 8, 0);
    fix_crc(copy, ihdr);
    check_damaged(copy, len, "ihdr-zero-width.png");
    free(copy);
    free(buf);
}

static void test_png_too_large(void)
{
    /* 1-bit gray keeps the file small; only the header matters. */
    const int big = HS_IMAGE_MAX_SIDE + 1;
    uint16_t *samples = calloc((size_t)big, sizeof *samples);
    CU_ASSERT_PTR_NOT_NULL_FATAL(samples);
    char path[4400];
    hs_image img = {0};
    hs_error err = {0};
    test_png wide = {big, 1, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, samples, NULL, 0, NULL, 0, NULL};
    hs_test_path(path, sizeof path, tmp_dir, "too-wide.png");
    CU_ASSERT_EQUAL_FATAL(write_test_png(path, &wide), 0);
    check_refused(hs_png_read(path, &img, &err), &err, HS_ERR_FORMAT, path);
    CU_ASSERT_PTR_NULL(img.px);
    test_png tall = {1, big, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, samples, NULL, 0, NULL, 0, NULL};
    hs_test_path(path, sizeof path, tmp_dir, "too-tall.png");
    CU_ASSERT_EQUAL_FATAL(write_test_png(path, &tall), 0);
    check_refused(hs_png_read(path, &img, &err), &err, HS_ERR_FORMAT, path);
    /* The limit itself is accepted. */
    test_png edge = {HS_IMAGE_MAX_SIDE, 1, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, samples, NULL, 0,
                     NULL, 0, NULL};
    hs_test_path(path, sizeof path, tmp_dir, "widest.png");
    CU_ASSERT_EQUAL_FATAL(write_test_png(path, &edge), 0);
    CU_ASSERT_EQUAL(hs_png_read(path, &img, &err), HS_OK);
    CU_ASSERT_EQUAL(img.width, HS_IMAGE_MAX_SIDE);
    hs_image_free(&img);
    free(samples);
}

/* Appends a chunk (length, type, data, CRC) at buf + *len. */
static void put_chunk(unsigned char *buf, size_t *len, const char *type, const unsigned char *data,
                      size_t n)
{
    unsigned char *p = buf + *len;
    set_be32(p, (uint32_t)n);
    memcpy(p + 4, type, 4);
    if (n > 0)
        memcpy(p + 8, data, n);
    set_be32(p + 8 + n, crc32_of(p + 4, 4 + n));
    *len += 12 + n;
}

/* Room for hostile_png's file: signature, IHDR, PLTE, IDAT and IEND. */
#define HOSTILE_PNG_MAX (8 + 25 + 15 + 23 + 12)

/* A PNG written byte by byte whose header claims width x height 8-bit
 * pixels of the colour type (with a one-entry palette if it needs one);
 * its image data is one empty stored deflate block, far too little for
 * any image. Returns the length written to buf. */
static size_t hostile_png(unsigned char buf[HOSTILE_PNG_MAX], uint32_t width, uint32_t height, int color)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const unsigned char plte[3] = {0x80, 0x80, 0x80};
    /* zlib header, final stored block of length 0, Adler-32 of nothing. */
    static const unsigned char idat[11] = {0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 1};
    unsigned char ihdr[13] = {0};
    set_be32(ihdr, width);
    set_be32(ihdr + 4, height);
    ihdr[8] = 8;
    ihdr[9] = (unsigned char)color;
    size_t len = sizeof sig;
    memcpy(buf, sig, sizeof sig);
    put_chunk(buf, &len, "IHDR", ihdr, sizeof ihdr);
    if (color == PNG_COLOR_TYPE_PALETTE)
        put_chunk(buf, &len, "PLTE", plte, sizeof plte);
    put_chunk(buf, &len, "IDAT", idat, sizeof idat);
    put_chunk(buf, &len, "IEND", NULL, 0);
    return len;
}

/* A tiny file whose header claims a huge picture must be refused on the
 * header, as too large, naming the file and the limit; before the values
 * limit, 16384 x 16384 RGB made the reader reserve 3 GiB of floats first
 * and only then find the data missing. */
static void test_png_hostile_header(void)
{
    static const struct {
        uint32_t width, height;
        int color;
        const char *leaf, *limit;
    } cases[] = {
        {100000, 100000, PNG_COLOR_TYPE_RGB, "huge-side.png", "16384"},
        {HS_IMAGE_MAX_SIDE, HS_IMAGE_MAX_SIDE, PNG_COLOR_TYPE_RGB, "huge-rgb.png", "8388608"},
        {HS_IMAGE_MAX_SIDE, HS_IMAGE_MAX_SIDE, PNG_COLOR_TYPE_PALETTE, "huge-palette.png", "8388608"},
        {HS_IMAGE_MAX_SIDE, HS_PNG_MAX_VALUES / HS_IMAGE_MAX_SIDE + 1, PNG_COLOR_TYPE_GRAY,
         "huge-gray.png", "8388608"},
    };
    unsigned char buf[HOSTILE_PNG_MAX];
    char path[4400];
    hs_image img = {0};
    hs_error err = {0};
    CU_ASSERT_EQUAL(HS_PNG_MAX_VALUES, 8388608);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = hostile_png(buf, cases[i].width, cases[i].height, cases[i].color);
        check_refused(hs_png_read_buffer(buf, len, cases[i].leaf, &img, &err), &err, HS_ERR_FORMAT,
                      cases[i].leaf);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "too large"));
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].limit));
        CU_ASSERT_PTR_NULL(img.px);
        hs_test_path(path, sizeof path, tmp_dir, cases[i].leaf);
        CU_ASSERT_EQUAL_FATAL(hs_test_write_file(path, buf, len), 0);
        check_refused(hs_png_read(path, &img, &err), &err, HS_ERR_FORMAT, path);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].limit));
        CU_ASSERT_PTR_NULL(img.px);
    }
    /* Exactly at the limit (16384 x 512 gray) the header is accepted and
     * the missing data is what the reader trips on. */
    size_t len = hostile_png(buf, HS_IMAGE_MAX_SIDE, HS_PNG_MAX_VALUES / HS_IMAGE_MAX_SIDE,
                             PNG_COLOR_TYPE_GRAY);
    check_refused(hs_png_read_buffer(buf, len, "at-limit.png", &img, &err), &err, HS_ERR_FORMAT,
                  "at-limit.png");
    CU_ASSERT_PTR_NULL(strstr(err.msg, "too large"));
    CU_ASSERT_PTR_NULL(img.px);
}

static void test_png_write_roundtrip(void)
{
    char path[4400];
    hs_error err = {0};
    for (int channels = 1; channels <= 3; channels += 2) {
        hs_image img = {0}, back = {0};
        CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, 17, 9, channels, &err), HS_OK);
        size_t n = 17 * 9 * (size_t)channels;
        for (size_t i = 0; i < n; i++)
            img.px[i] = (float)((i * 37) % 256) / 255.0f;
        hs_test_path(path, sizeof path, tmp_dir, channels == 1 ? "roundtrip-gray.png" : "roundtrip-rgb.png");
        CU_ASSERT_EQUAL(hs_png_write(path, &img, &err), HS_OK);
        CU_ASSERT_EQUAL_FATAL(hs_png_read(path, &back, &err), HS_OK);
        CU_ASSERT(back.width == 17 && back.height == 9 && back.channels == channels);
        if (back.channels == channels)
            CU_ASSERT_EQUAL(memcmp(back.px, img.px, n * sizeof(float)), 0);
        hs_image_free(&img);
        hs_image_free(&back);
    }

    /* Clamping and rounding: below 0 and NaN to 0, above 1 to 255,
     * 0.5 (127.5 levels) rounds up, 0.3 (76.5 levels, just below in float)
     * rounds to 76 or 77 but never further. */
    hs_image img = {0}, back = {0};
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, 6, 1, 1, &err), HS_OK);
    const float in[6] = {-0.5f, NAN, 2.0f, 0.5f, 1.0f / 255.0f, 0.3f};
    memcpy(img.px, in, sizeof in);
    hs_test_path(path, sizeof path, tmp_dir, "clamp.png");
    CU_ASSERT_EQUAL(hs_png_write(path, &img, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_png_read(path, &back, &err), HS_OK);
    CU_ASSERT_EQUAL(back.px[0], 0.0f);
    CU_ASSERT_EQUAL(back.px[1], 0.0f);
    CU_ASSERT_EQUAL(back.px[2], 1.0f);
    CU_ASSERT_EQUAL(back.px[3], 128.0f / 255.0f);
    CU_ASSERT_EQUAL(back.px[4], 1.0f / 255.0f);
    CU_ASSERT(back.px[5] == 76.0f / 255.0f || back.px[5] == 77.0f / 255.0f);
    hs_image_free(&back);

    /* Refusals name the file. */
    CU_ASSERT_EQUAL(hs_png_write("", &img, &err), HS_ERR_ARG);
    hs_test_path(path, sizeof path, tmp_dir, "no-such-dir/out.png");
    check_refused(hs_png_write(path, &img, &err), &err, HS_ERR_IO, path);
    hs_image_free(&img);
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, 3, 3, 2, &err), HS_OK);
    hs_test_path(path, sizeof path, tmp_dir, "two-channels.png");
    check_refused(hs_png_write(path, &img, &err), &err, HS_ERR_ARG, path);
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
    hs_image_free(&img);
}

/* ---- gray ----------------------------------------------------------------- */

static void test_gray(void)
{
    hs_image rgb = {0}, gray = {0};
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&rgb, 6, 1, 3, &err), HS_OK);
    const float in[18] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0.5f, 0.5f, 0.5f, 0.2f, 0.6f, 0.9f};
    memcpy(rgb.px, in, sizeof in);
    CU_ASSERT_EQUAL_FATAL(hs_image_to_gray(&rgb, &gray, &err), HS_OK);
    CU_ASSERT(gray.width == 6 && gray.height == 1 && gray.channels == 1);
    CU_ASSERT_DOUBLE_EQUAL(gray.px[0], 0.299, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(gray.px[1], 0.587, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(gray.px[2], 0.114, 1e-7);
    /* A gray pixel stored as RGB keeps its value exactly. */
    CU_ASSERT_EQUAL(gray.px[3], 1.0f);
    CU_ASSERT_EQUAL(gray.px[4], 0.5f);
    CU_ASSERT_DOUBLE_EQUAL(gray.px[5], 0.299 * 0.2f + 0.587 * 0.6f + 0.114 * 0.9f, 1e-7);
    hs_image_free(&gray);

    /* One channel is copied. */
    hs_image one = {0};
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&one, 2, 2, 1, &err), HS_OK);
    one.px[0] = 0.25f;
    one.px[3] = 0.75f;
    CU_ASSERT_EQUAL_FATAL(hs_image_to_gray(&one, &gray, &err), HS_OK);
    CU_ASSERT_EQUAL(memcmp(gray.px, one.px, 4 * sizeof(float)), 0);
    hs_image_free(&gray);
    hs_image_free(&one);

    /* Two channels is neither gray nor RGB. */
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&one, 2, 2, 2, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_image_to_gray(&one, &gray, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NULL(gray.px);
    hs_image_free(&one);
    hs_image_free(&rgb);
}

/* ---- head crop ------------------------------------------------------------ */

/* The crop scene: 200 x 160, a head ellipse centred at (90, 85) with
 * half-axes 60 x 50, a bright ring (0.9) around darker brain (0.3), inside
 * it a 'ventricle' below threshold but not black (0.05) and a black hole
 * (0.0); outside it a text blob in the image corner and a small blob inside
 * the ellipse's bounding box but not touching the ellipse. */
#define SCENE_W 200
#define SCENE_H 160

static int in_head(int x, int y)
{
    double u = (x - 90) / 60.0, v = (y - 85) / 50.0;
    return u * u + v * v <= 1.0;
}

static float scene_value(int x, int y)
{
    if (in_head(x, y)) {
        double u = (x - 90) / 60.0, v = (y - 85) / 50.0;
        double r = sqrt(u * u + v * v);
        if (r > 0.85)
            return 0.9f;
        if (hypot(x - 100, y - 80) < 8)
            return 0.05f;
        if (x >= 70 && x < 76 && y >= 90 && y < 100)
            return 0.0f;
        return 0.3f;
    }
    if (x >= 185 && x < 196 && y >= 4 && y < 12)
        return 1.0f;
    if (x >= 31 && x <= 33 && y >= 36 && y <= 38)
        return 0.7f;
    return 0.0f;
}

static void test_crop_head(void)
{
    hs_image img = {0}, out = {0};
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, SCENE_W, SCENE_H, 1, &err), HS_OK);
    int x0 = SCENE_W, y0 = SCENE_H, x1 = -1, y1 = -1;
    for (int y = 0; y < SCENE_H; y++) {
        for (int x = 0; x < SCENE_W; x++) {
            img.px[y * SCENE_W + x] = scene_value(x, y);
            if (in_head(x, y)) {
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y > y1 ? y : y1;
            }
        }
    }
    /* The small blob really is inside the head's box. */
    CU_ASSERT_FATAL(31 >= x0 && 36 >= y0);

    CU_ASSERT_EQUAL_FATAL(hs_image_crop_head(&img, HS_HEAD_THRESHOLD, &out, &err), HS_OK);
    CU_ASSERT_EQUAL(out.width, x1 - x0 + 1);
    CU_ASSERT_EQUAL(out.height, y1 - y0 + 1);
    CU_ASSERT_EQUAL(out.channels, 1);
    if (out.width != x1 - x0 + 1 || out.height != y1 - y0 + 1) {
        hs_image_free(&img);
        hs_image_free(&out);
        return;
    }
    /* Inside the head every value is kept (ventricle and hole included);
     * everything else in the box, the blob included, is 0. */
    int wrong_inside = 0, wrong_outside = 0;
    for (int y = y0; y <= y1; y++) {
        for (int x = x0; x <= x1; x++) {
            float got = out.px[(y - y0) * out.width + (x - x0)];
            if (in_head(x, y))
                wrong_inside += got != scene_value(x, y);
            else
                wrong_outside += got != 0.0f;
        }
    }
    CU_ASSERT_EQUAL(wrong_inside, 0);
    CU_ASSERT_EQUAL(wrong_outside, 0);
    CU_ASSERT_EQUAL(out.px[(80 - y0) * out.width + (100 - x0)], 0.05f);
    CU_ASSERT_EQUAL(out.px[(37 - y0) * out.width + (32 - x0)], 0.0f);
    hs_image_free(&out);

    /* A higher threshold that the brain (0.3) falls below leaves only the
     * ring, whose inside must still be kept as holes. */
    CU_ASSERT_EQUAL_FATAL(hs_image_crop_head(&img, 0.5f, &out, &err), HS_OK);
    CU_ASSERT(out.width == x1 - x0 + 1 && out.height == y1 - y0 + 1);
    if (out.width == x1 - x0 + 1)
        CU_ASSERT_EQUAL(out.px[(85 - y0) * out.width + (90 - x0)], 0.3f);
    hs_image_free(&out);

    /* Several channels (a CT slice through several windows): the head is
     * found on channel 0 alone and the same box and background apply to
     * every channel. Channel 1 is bright everywhere (a wide window sees the
     * text and the table too) and must not widen the box. */
    hs_image multi = {0};
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&multi, img.width, img.height, 2, &err), HS_OK);
    for (int i = 0; i < img.width * img.height; i++) {
        multi.px[2 * i] = img.px[i];
        multi.px[2 * i + 1] = 0.9f;
    }
    CU_ASSERT_EQUAL_FATAL(hs_image_crop_head(&multi, HS_HEAD_THRESHOLD, &out, &err), HS_OK);
    CU_ASSERT_EQUAL(out.channels, 2);
    CU_ASSERT(out.width == x1 - x0 + 1 && out.height == y1 - y0 + 1);
    if (out.width == x1 - x0 + 1 && out.height == y1 - y0 + 1) {
        /* inside the head: both channels kept; the blob inside the box
         * but outside the head is background in both */
        CU_ASSERT_EQUAL(out.px[2 * ((85 - y0) * out.width + (90 - x0))], 0.3f);
        CU_ASSERT_EQUAL(out.px[2 * ((85 - y0) * out.width + (90 - x0)) + 1], 0.9f);
        CU_ASSERT_EQUAL(out.px[2 * ((37 - y0) * out.width + (32 - x0))], 0.0f);
        CU_ASSERT_EQUAL(out.px[2 * ((37 - y0) * out.width + (32 - x0)) + 1], 0.0f);
    }
    hs_image_free(&out);
    hs_image_free(&multi);

    CU_ASSERT_EQUAL(hs_image_crop_head(&img, NAN, &out, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NULL(out.px);
    hs_image_free(&img);
}

/* A one-pixel diamond ring is connected only diagonally: with 8-connected
 * background its inside would leak out and be zeroed. */
static void test_crop_diagonal_ring(void)
{
    hs_image img = {0}, out = {0};
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, 41, 41, 1, &err), HS_OK);
    for (int y = 0; y < 41; y++) {
        for (int x = 0; x < 41; x++) {
            int d = abs(x - 20) + abs(y - 20);
            img.px[y * 41 + x] = d == 15 ? 1.0f : d < 15 ? 0.05f : 0.0f;
        }
    }
    CU_ASSERT_EQUAL_FATAL(hs_image_crop_head(&img, HS_HEAD_THRESHOLD, &out, &err), HS_OK);
    CU_ASSERT_EQUAL(out.width, 31);
    CU_ASSERT_EQUAL(out.height, 31);
    int wrong = 0;
    for (int y = 0; y < out.height && out.width == 31; y++) {
        for (int x = 0; x < out.width; x++)
            wrong += out.px[y * 31 + x] != img.px[(y + 5) * 41 + (x + 5)];
    }
    CU_ASSERT_EQUAL(wrong, 0);
    hs_image_free(&out);
    hs_image_free(&img);
}

static void test_crop_edge_cases(void)
{
    hs_image img = {0}, out = {0};
    hs_error err = {0};
    /* Nothing above threshold: a copy. */
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, 9, 7, 1, &err), HS_OK);
    for (int i = 0; i < 63; i++)
        img.px[i] = (float)(i % 5) * 0.01f;
    CU_ASSERT_EQUAL_FATAL(hs_image_crop_head(&img, HS_HEAD_THRESHOLD, &out, &err), HS_OK);
    CU_ASSERT(out.width == 9 && out.height == 7 && out.channels == 1);
    CU_ASSERT(out.px != NULL && memcmp(out.px, img.px, 63 * sizeof(float)) == 0);
    hs_image_free(&out);

    /* Two discs: the larger one wins, the smaller one is gone. */
    for (int y = 0; y < 7; y++) {
        for (int x = 0; x < 9; x++)
            img.px[y * 9 + x] = (x <= 1 && y <= 1) || (x >= 4 && x <= 7 && y >= 2 && y <= 5) ? 0.5f : 0.0f;
    }
    CU_ASSERT_EQUAL_FATAL(hs_image_crop_head(&img, HS_HEAD_THRESHOLD, &out, &err), HS_OK);
    CU_ASSERT(out.width == 4 && out.height == 4);
    CU_ASSERT_DOUBLE_EQUAL(mean_of(out.px, 16), 0.5, 1e-7);
    hs_image_free(&out);
    hs_image_free(&img);

    /* A big all-bright image: a recursive fill would need millions of
     * frames; the explicit stack does not care. */
    const int big = 2048;
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, big, big, 1, &err), HS_OK);
    for (size_t i = 0; i < (size_t)big * big; i++)
        img.px[i] = 0.6f;
    CU_ASSERT_EQUAL_FATAL(hs_image_crop_head(&img, HS_HEAD_THRESHOLD, &out, &err), HS_OK);
    CU_ASSERT(out.width == big && out.height == big);
    CU_ASSERT(out.px != NULL && memcmp(out.px, img.px, (size_t)big * big * sizeof(float)) == 0);
    hs_image_free(&out);
    hs_image_free(&img);
}

/* ---- fit ------------------------------------------------------------------ */

static void test_fit_geometry(void)
{
    hs_image img = {0}, out = {0};
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, 200, 100, 1, &err), HS_OK);
    for (int i = 0; i < 200 * 100; i++)
        img.px[i] = 0.7f;
    CU_ASSERT_EQUAL_FATAL(hs_image_fit(&img, 150, 150, &out, &err), HS_OK);
    CU_ASSERT(out.width == 150 && out.height == 150 && out.channels == 1);
    /* 200 x 100 scaled by 0.75 is 150 x 75, placed at rows 37 .. 111. */
    int bad_pad = 0, bad_content = 0;
    for (int y = 0; y < 150; y++) {
        for (int x = 0; x < 150; x++) {
            float v = out.px[y * 150 + x];
            if (y >= 37 && y <= 111)
                bad_content += fabsf(v - 0.7f) > 1e-6f;
            else
                bad_pad += v != 0.0f;
        }
    }
    CU_ASSERT_EQUAL(bad_pad, 0);
    CU_ASSERT_EQUAL(bad_content, 0);
    hs_image_free(&out);

    /* Portrait into landscape: columns are padded instead. */
    hs_image tall = {0};
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&tall, 50, 100, 3, &err), HS_OK);
    for (int i = 0; i < 50 * 100; i++) {
        tall.px[3 * i] = 0.2f;
        tall.px[3 * i + 1] = 0.5f;
        tall.px[3 * i + 2] = 0.9f;
    }
    CU_ASSERT_EQUAL_FATAL(hs_image_fit(&tall, 80, 40, &out, &err), HS_OK);
    CU_ASSERT(out.width == 80 && out.height == 40 && out.channels == 3);
    /* 50 x 100 scaled by 0.4 is 20 x 40, placed at columns 30 .. 49. */
    bad_pad = 0;
    bad_content = 0;
    for (int y = 0; y < 40; y++) {
        for (int x = 0; x < 80; x++) {
            const float *p = out.px + (y * 80 + x) * 3;
            if (x >= 30 && x <= 49)
                bad_content += fabsf(p[0] - 0.2f) > 1e-6f || fabsf(p[1] - 0.5f) > 1e-6f ||
                               fabsf(p[2] - 0.9f) > 1e-6f;
            else
                bad_pad += p[0] != 0.0f || p[1] != 0.0f || p[2] != 0.0f;
        }
    }
    CU_ASSERT_EQUAL(bad_pad, 0);
    CU_ASSERT_EQUAL(bad_content, 0);
    hs_image_free(&out);
    hs_image_free(&tall);

    /* The same size is an exact copy. */
    for (int i = 0; i < 200 * 100; i++)
        img.px[i] = (float)((i * 7919) % 1000) / 999.0f;
    CU_ASSERT_EQUAL_FATAL(hs_image_fit(&img, 200, 100, &out, &err), HS_OK);
    CU_ASSERT(out.px != NULL && memcmp(out.px, img.px, 200 * 100 * sizeof(float)) == 0);
    hs_image_free(&out);

    CU_ASSERT_EQUAL(hs_image_fit(&img, 0, 150, &out, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_image_fit(&img, 150, HS_IMAGE_MAX_SIDE + 1, &out, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NULL(out.px);
    hs_image_free(&img);
}

static void test_fit_area_filter(void)
{
    hs_image img = {0}, out = {0};
    hs_error err = {0};
    /* Known weights: 3 -> 2 covers [0, 1.5) and [1.5, 3). */
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, 3, 1, 1, &err), HS_OK);
    img.px[0] = 0.0f;
    img.px[1] = 0.3f;
    img.px[2] = 0.9f;
    CU_ASSERT_EQUAL_FATAL(hs_image_fit(&img, 2, 1, &out, &err), HS_OK);
    CU_ASSERT_DOUBLE_EQUAL(out.px[0], 0.1, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(out.px[1], 0.7, 1e-7);
    hs_image_free(&out);
    hs_image_free(&img);

    /* A checkerboard and a pseudo-random picture keep their mean when
     * shrunk by a fraction; a sampling filter would not. */
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, 200, 100, 1, &err), HS_OK);
    for (int pattern = 0; pattern < 2; pattern++) {
        for (int y = 0; y < 100; y++) {
            for (int x = 0; x < 200; x++)
                img.px[y * 200 + x] = pattern == 0 ? (float)((x + y) & 1)
                                                   : (float)(((unsigned)(x * 7919 + y * 104729) >> 3) % 256) / 255.0f;
        }
        CU_ASSERT_EQUAL_FATAL(hs_image_fit(&img, 150, 150, &out, &err), HS_OK);
        double in_mean = mean_of(img.px, 200 * 100);
        double out_mean = mean_of(out.px + 37 * 150, 75 * 150);
        CU_ASSERT_DOUBLE_EQUAL(out_mean, in_mean, 1e-5);
        /* And the checkerboard averages out to gray, it does not alias. */
        if (pattern == 0) {
            float lo = 1.0f, hi = 0.0f;
            for (int i = 40 * 150; i < 100 * 150; i++) {
                lo = out.px[i] < lo ? out.px[i] : lo;
                hi = out.px[i] > hi ? out.px[i] : hi;
            }
            CU_ASSERT(lo > 0.3f && hi < 0.7f);
        }
        hs_image_free(&out);
    }
    hs_image_free(&img);
}

static void test_fit_bilinear(void)
{
    hs_image img = {0}, out = {0};
    hs_error err = {0};
    /* A constant stays constant. */
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, 30, 20, 1, &err), HS_OK);
    for (int i = 0; i < 600; i++)
        img.px[i] = 0.4f;
    CU_ASSERT_EQUAL_FATAL(hs_image_fit(&img, 150, 150, &out, &err), HS_OK);
    int bad = 0;
    for (int y = 0; y < 150; y++) {
        for (int x = 0; x < 150; x++) {
            float v = out.px[y * 150 + x];
            bad += (y >= 25 && y < 125) ? fabsf(v - 0.4f) > 1e-6f : v != 0.0f;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    hs_image_free(&out);
    hs_image_free(&img);

    /* Known values: [0, 1] doubled samples at -0.25, 0.25, 0.75 and 1.25
     * source pixels, the outer ones clamped to the edge. */
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, 2, 1, 1, &err), HS_OK);
    img.px[1] = 1.0f;
    CU_ASSERT_EQUAL_FATAL(hs_image_fit(&img, 4, 2, &out, &err), HS_OK);
    const float want[4] = {0.0f, 0.25f, 0.75f, 1.0f};
    for (int y = 0; y < 2; y++) {
        for (int x = 0; x < 4; x++)
            CU_ASSERT_DOUBLE_EQUAL(out.px[y * 4 + x], want[x], 1e-7);
    }
    hs_image_free(&out);
    hs_image_free(&img);
}

/* ---- the input recipe ----------------------------------------------------- */

/* The synthetic head of the recipe tests, in base coordinates of a 200 x 180
 * picture: skull ring, textured brain, a ventricle below threshold, and a
 * block of 'text' in the top right corner. */
static double head_value(double u, double v)
{
    double r = hypot((u - 95.0) / 70.0, (v - 95.0) / 75.0);
    if (r <= 1.0) {
        if (r > 0.88)
            return 0.95;
        if (hypot(u - 105.0, v - 90.0) < 12.0)
            return 0.04;
        return 0.4 + 0.15 * sin(u / 7.0) * cos(v / 9.0);
    }
    if (u >= 172.0 && u < 192.0 && v >= 5.0 && v < 15.0)
        return 1.0;
    return 0.0;
}

/* Renders the head at scale s (each pixel the mean of 3 x 3 samples, as a
 * scanner's rendering would be); channels 1, or 3 with equal R, G, B. */
static hs_status draw_head(hs_image *img, double s, int channels)
{
    int w = (int)lround(200.0 * s), h = (int)lround(180.0 * s);
    hs_status st = hs_image_alloc(img, w, h, channels, NULL);
    if (st != HS_OK)
        return st;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            double sum = 0.0;
            for (int j = 0; j < 3; j++) {
                for (int i = 0; i < 3; i++)
                    sum += head_value((x + (i + 0.5) / 3.0) / s, (y + (j + 0.5) / 3.0) / s);
            }
            for (int c = 0; c < channels; c++)
                img->px[((size_t)y * (size_t)w + (size_t)x) * (size_t)channels + (size_t)c] = (float)(sum / 9.0);
        }
    }
    return HS_OK;
}

static void test_prepare_size_invariance(void)
{
    hs_input_recipe recipe;
    hs_input_recipe_default(&recipe);
    size_t n = (size_t)recipe.width * (size_t)recipe.height * (size_t)recipe.channels;
    float *small = malloc(n * sizeof *small);
    float *large = malloc(n * sizeof *large);
    CU_ASSERT_PTR_NOT_NULL_FATAL(small);
    CU_ASSERT_PTR_NOT_NULL_FATAL(large);
    hs_image a = {0}, b = {0};
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(draw_head(&a, 1.0, 1), HS_OK);
    CU_ASSERT_EQUAL_FATAL(draw_head(&b, 2.3, 3), HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_prepare_input(&a, &recipe, small, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_prepare_input(&b, &recipe, large, &err), HS_OK);
    double diff = 0.0;
    for (size_t i = 0; i < n; i++)
        diff += fabs((double)small[i] - (double)large[i]);
    diff /= (double)n;
    CU_ASSERT(diff < 0.03);
    /* Not trivially equal: the picture is there, and in [0, 1]. */
    CU_ASSERT(mean_of(small, n) > 0.2);
    int out_of_range = 0, unequal_channels = 0;
    for (size_t i = 0; i < n; i++)
        out_of_range += !(small[i] >= 0.0f && small[i] <= 1.0f);
    for (size_t i = 0; i < n; i += 3)
        unequal_channels += small[i] != small[i + 1] || small[i] != small[i + 2];
    CU_ASSERT_EQUAL(out_of_range, 0);
    CU_ASSERT_EQUAL(unequal_channels, 0);
    /* The head fills the canvas: its box is taller than wide (about 140 x
     * 150 in base units), so the top and bottom rows hold skull at the
     * centre column, and the corners of the box, outside the head, are
     * black; the text block, outside the box, is gone. */
    CU_ASSERT(small[(0 * 150 + 75) * 3] > 0.5f);
    CU_ASSERT(small[(149 * 150 + 75) * 3] > 0.5f);
    CU_ASSERT_EQUAL(small[(2 * 150 + 8) * 3], 0.0f);
    CU_ASSERT_EQUAL(small[(147 * 150 + 141) * 3], 0.0f);

    /* Without the crop the same two pictures are still alike (the fit alone
     * is size-independent) but the text survives. */
    snprintf(recipe.crop, sizeof recipe.crop, "none");
    CU_ASSERT_EQUAL_FATAL(hs_prepare_input(&a, &recipe, small, &err), HS_OK);
    double text = 0.0;
    for (int y = 12; y < 18; y++) {
        for (int x = 131; x < 143; x++)
            text += small[((size_t)y * 150 + (size_t)x) * 3];
    }
    CU_ASSERT(text > 36.0);
    hs_image_free(&a);
    hs_image_free(&b);
    free(small);
    free(large);
}

/* The same head as an RGB PNG, an RGBA PNG with varying alpha and an 8-bit
 * gray PNG must give bit-identical tensors. */
static void test_prepare_colour_types(void)
{
    const int w = 120, h = 108;
    size_t n = (size_t)w * (size_t)h;
    uint16_t *rgb = malloc(n * 3 * sizeof *rgb);
    uint16_t *rgba = malloc(n * 4 * sizeof *rgba);
    uint16_t *gray = malloc(n * sizeof *gray);
    CU_ASSERT_FATAL(rgb != NULL && rgba != NULL && gray != NULL);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * (size_t)w + (size_t)x;
            double v = head_value((x + 0.5) / 0.6, (y + 0.5) / 0.6);
            uint16_t q = (uint16_t)lround(v * 255.0);
            gray[i] = q;
            for (int c = 0; c < 3; c++) {
                rgb[3 * i + (size_t)c] = q;
                rgba[4 * i + (size_t)c] = q;
            }
            rgba[4 * i + 3] = (uint16_t)((x * 3 + y) % 256);
        }
    }
    test_png t_rgb = {w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, rgb, NULL, 0, NULL, 0, NULL};
    test_png t_rgba = {w, h, 8, PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_NONE, rgba, NULL, 0, NULL, 0, NULL};
    test_png t_gray = {w, h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, gray, NULL, 0, NULL, 0, NULL};
    const test_png *kinds[3] = {&t_rgb, &t_rgba, &t_gray};
    const char *leaves[3] = {"head-rgb.png", "head-rgba.png", "head-gray.png"};
    hs_input_recipe recipe;
    hs_input_recipe_default(&recipe);
    size_t m = (size_t)recipe.width * (size_t)recipe.height * (size_t)recipe.channels;
    float *tensor[3] = {malloc(m * sizeof(float)), malloc(m * sizeof(float)), malloc(m * sizeof(float))};
    CU_ASSERT_FATAL(tensor[0] != NULL && tensor[1] != NULL && tensor[2] != NULL);
    hs_error err = {0};
    int ok = 1;
    for (int k = 0; k < 3; k++) {
        char path[4400];
        hs_test_path(path, sizeof path, tmp_dir, leaves[k]);
        CU_ASSERT_EQUAL_FATAL(write_test_png(path, kinds[k]), 0);
        hs_image img = {0};
        CU_ASSERT_EQUAL_FATAL(hs_png_read(path, &img, &err), HS_OK);
        CU_ASSERT_EQUAL(img.channels, k == 2 ? 1 : 3);
        hs_status st = hs_prepare_input(&img, &recipe, tensor[k], &err);
        CU_ASSERT_EQUAL(st, HS_OK);
        ok &= st == HS_OK;
        hs_image_free(&img);
    }
    if (ok) {
        CU_ASSERT_EQUAL(memcmp(tensor[0], tensor[1], m * sizeof(float)), 0);
        CU_ASSERT_EQUAL(memcmp(tensor[0], tensor[2], m * sizeof(float)), 0);
        CU_ASSERT(mean_of(tensor[0], m) > 0.2);
    }
    for (int k = 0; k < 3; k++)
        free(tensor[k]);
    free(rgb);
    free(rgba);
    free(gray);
}

/* A recipe of re-windowed gray: channel 0 holds the gray as it is, each
 * "gray-window" channel the gray taken as a brain-window (40/80) rendering
 * and put through its own window; a colour picture is reduced to gray
 * first. */
static void test_prepare_gray_windows(void)
{
    hs_input_recipe recipe;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_input_recipe_gray(&recipe, "40/80,60/40,20/40", &err), HS_OK);
    snprintf(recipe.crop, sizeof recipe.crop, "none");
    recipe.width = recipe.height = 8;
    /* gray, and what the blood (40..80 HU) and low (0..40 HU) windows make of it */
    static const float cases[][3] = {
        {0.0f, 0.0f, 0.0f}, {0.25f, 0.0f, 0.5f}, {0.5f, 0.0f, 1.0f}, {0.75f, 0.5f, 1.0f}, {1.0f, 1.0f, 1.0f},
    };
    float out[8 * 8 * 3];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (int colour = 0; colour < 2; colour++) {
            hs_image img = {0};
            CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, 8, 8, colour ? 3 : 1, &err), HS_OK);
            for (size_t i = 0; i < (size_t)8 * 8 * (size_t)img.channels; i++)
                img.px[i] = cases[k][0];
            CU_ASSERT_EQUAL_FATAL(hs_prepare_input(&img, &recipe, out, &err), HS_OK);
            for (int i = 0; i < 8 * 8; i++)
                for (int c = 0; c < 3; c++)
                    CU_ASSERT_DOUBLE_EQUAL(out[i * 3 + c], cases[k][c], 1e-6);
            hs_image_free(&img);
        }
    }
    /* the plain gray recipe repeats the gray */
    CU_ASSERT_EQUAL_FATAL(hs_input_recipe_gray(&recipe, "40/80,40/80,40/80", &err), HS_OK);
    snprintf(recipe.crop, sizeof recipe.crop, "none");
    recipe.width = recipe.height = 8;
    hs_image img = {0};
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, 8, 8, 1, &err), HS_OK);
    for (int i = 0; i < 8 * 8; i++)
        img.px[i] = 0.75f;
    CU_ASSERT_EQUAL_FATAL(hs_prepare_input(&img, &recipe, out, &err), HS_OK);
    for (int i = 0; i < 8 * 8 * 3; i++)
        CU_ASSERT_EQUAL(out[i], 0.75f);
    hs_image_free(&img);
}

static void test_prepare_refusals(void)
{
    hs_input_recipe recipe;
    hs_input_recipe_default(&recipe);
    hs_image img = {0};
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_image_alloc(&img, 10, 10, 1, &err), HS_OK);
    float *out = malloc(150 * 150 * 3 * sizeof *out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);

    snprintf(recipe.crop, sizeof recipe.crop, "centre-square");
    CU_ASSERT_EQUAL(hs_prepare_input(&img, &recipe, out, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "centre-square"));
    hs_input_recipe_default(&recipe);
    snprintf(recipe.normalise, sizeof recipe.normalise, "zscore");
    CU_ASSERT_EQUAL(hs_prepare_input(&img, &recipe, out, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "zscore"));
    /* A name field without its terminator is refused, not overrun. */
    hs_input_recipe_default(&recipe);
    memset(recipe.crop, 'h', sizeof recipe.crop);
    CU_ASSERT_EQUAL(hs_prepare_input(&img, &recipe, out, &err), HS_ERR_ARG);
    hs_input_recipe_default(&recipe);
    recipe.channels = HS_MODEL_MAX_CHANNELS + 1;
    CU_ASSERT_EQUAL(hs_prepare_input(&img, &recipe, out, &err), HS_ERR_ARG);
    hs_input_recipe_default(&recipe);
    recipe.width = 0;
    CU_ASSERT_EQUAL(hs_prepare_input(&img, &recipe, out, &err), HS_ERR_ARG);
    hs_input_recipe_default(&recipe);
    CU_ASSERT_EQUAL(hs_prepare_input(NULL, &recipe, out, &err), HS_ERR_ARG);
    /* One channel in the recipe works too. */
    recipe.channels = 1;
    CU_ASSERT_EQUAL(hs_prepare_input(&img, &recipe, out, &err), HS_OK);
    free(out);
    hs_image_free(&img);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Real head CT images from the shared sample data, when it is there. */
static void test_prepare_real_images(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/head_ct/images", hs_test_shared_data_dir());
    DIR *d = opendir(dir);
    if (d == NULL) {
        printf("\n  skipped: no sample images in %s (set HEMOSCAN_SHARED_DATA)\n", dir);
        return;
    }
    /* The names in sorted order, so the choice does not depend on the
     * directory's order. */
    char names[512][64];
    int n = 0;
    struct dirent *e;
    for (e = readdir(d); e != NULL && n < 512; e = readdir(d)) {
        size_t len = strlen(e->d_name);
        if (len > 4 && len < sizeof names[0] && strcmp(e->d_name + len - 4, ".png") == 0) {
            memcpy(names[n], e->d_name, len + 1);
            n++;
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], compare_names);
    CU_ASSERT_FATAL(n > 0);
    hs_input_recipe recipe;
    hs_input_recipe_default(&recipe);
    size_t m = (size_t)recipe.width * (size_t)recipe.height * (size_t)recipe.channels;
    CU_ASSERT_EQUAL(m, (size_t)150 * 150 * 3);
    float *out = malloc(m * sizeof *out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    int tried = 0;
    for (int i = 0; i < n; i += (n + 5) / 6) {
        char path[4200];
        int len = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        CU_ASSERT_FATAL(len > 0 && (size_t)len < sizeof path);
        hs_image img = {0};
        hs_error err = {0};
        hs_status st = hs_png_read(path, &img, &err);
        if (st == HS_OK)
            st = hs_prepare_input(&img, &recipe, out, &err);
        if (st != HS_OK)
            fprintf(stderr, "\n%s\n", err.msg);
        CU_ASSERT_EQUAL(st, HS_OK);
        if (st == HS_OK) {
            double mean = mean_of(out, m);
            int out_of_range = 0;
            for (size_t k = 0; k < m; k++)
                out_of_range += !(out[k] >= 0.0f && out[k] <= 1.0f);
            CU_ASSERT(mean > 0.05);
            CU_ASSERT_EQUAL(out_of_range, 0);
        }
        hs_image_free(&img);
        tried++;
    }
    CU_ASSERT(tried >= 3 || tried == n);
    free(out);
}

/* ---- augmentation --------------------------------------------------------- */

static void fill_random(float *v, size_t n, uint64_t seed)
{
    hs_rng rng;
    hs_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)hs_rng_uniform(&rng);
}

static void test_augment_identity_and_seeds(void)
{
    const int w = 37, h = 29, c = 3;
    size_t n = (size_t)w * h * c;
    float *in = malloc(n * sizeof *in);
    float *a = malloc(n * sizeof *a);
    float *b = malloc(n * sizeof *b);
    CU_ASSERT_FATAL(in != NULL && a != NULL && b != NULL);
    fill_random(in, n, 11);
    in[0] = 0.0f;
    in[1] = 1.0f;
    in[2] = 1e-30f; /* (v - 0.5) + 0.5 would lose this */

    hs_augment zero;
    memset(&zero, 0, sizeof zero);
    hs_rng rng;
    hs_rng_seed(&rng, 1);
    memset(a, 0xff, n * sizeof *a);
    hs_augment_apply(&zero, &rng, in, a, w, h, c);
    CU_ASSERT_EQUAL(memcmp(a, in, n * sizeof *a), 0);

    hs_augment def;
    hs_augment_default(&def);
    CU_ASSERT(def.flip_prob == 0.5f && def.rotate_deg == 10.0f && def.shift_frac == 0.08f &&
              def.zoom_frac == 0.10f && def.brightness == 0.08f && def.contrast == 0.15f);
    hs_rng r1, r2;
    hs_rng_seed(&r1, 42);
    hs_rng_seed(&r2, 42);
    hs_augment_apply(&def, &r1, in, a, w, h, c);
    hs_augment_apply(&def, &r2, in, b, w, h, c);
    CU_ASSERT_EQUAL(memcmp(a, b, n * sizeof *a), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a, in, n * sizeof *a), 0);
    hs_rng_seed(&r2, 43);
    hs_augment_apply(&def, &r2, in, b, w, h, c);
    CU_ASSERT_NOT_EQUAL(memcmp(a, b, n * sizeof *a), 0);

    /* Every call draws the same amount, whatever the settings: seven. */
    hs_rng_seed(&r1, 7);
    hs_rng_seed(&r2, 7);
    hs_rng r3;
    hs_rng_seed(&r3, 7);
    hs_augment_apply(&zero, &r1, in, a, w, h, c);
    hs_augment_apply(&def, &r2, in, b, w, h, c);
    for (int i = 0; i < 7; i++)
        hs_rng_uniform(&r3);
    uint64_t next1 = hs_rng_u64(&r1), next2 = hs_rng_u64(&r2), next3 = hs_rng_u64(&r3);
    CU_ASSERT(next1 == next2 && next2 == next3);
    free(in);
    free(a);
    free(b);
}

static void test_augment_flip(void)
{
    /* Odd and even widths: the centre is a whole or a half pixel. */
    for (int w = 8; w <= 9; w++) {
        const int h = 5, c = 2;
        size_t n = (size_t)w * h * c;
        float *in = malloc(n * sizeof *in);
        float *out = malloc(n * sizeof *out);
        CU_ASSERT_FATAL(in != NULL && out != NULL);
        fill_random(in, n, (uint64_t)w);
        hs_augment flip;
        memset(&flip, 0, sizeof flip);
        flip.flip_prob = 1.0f;
        hs_rng rng;
        hs_rng_seed(&rng, 5);
        hs_augment_apply(&flip, &rng, in, out, w, h, c);
        int wrong = 0;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                for (int k = 0; k < c; k++)
                    wrong += out[(y * w + x) * c + k] != in[(y * w + (w - 1 - x)) * c + k];
            }
        }
        CU_ASSERT_EQUAL(wrong, 0);
        free(in);
        free(out);
    }
}

/* Pins the draw order: brightness is the sixth draw, contrast the seventh. */
static void test_augment_photometric(void)
{
    const int w = 16, h = 12, c = 1;
    size_t n = (size_t)w * h * c;
    float in[16 * 12], out[16 * 12];
    fill_random(in, n, 3);
    hs_augment aug;
    memset(&aug, 0, sizeof aug);
    aug.brightness = 0.2f;
    aug.contrast = 0.3f;
    hs_rng rng, twin;
    hs_rng_seed(&rng, 99);
    twin = rng;
    double u[7];
    for (int i = 0; i < 7; i++)
        u[i] = hs_rng_uniform(&twin);
    double b = (2.0 * u[5] - 1.0) * 0.2f;
    double k = 1.0 + (2.0 * u[6] - 1.0) * 0.3f;
    hs_augment_apply(&aug, &rng, in, out, w, h, c);
    int wrong = 0;
    for (size_t i = 0; i < n; i++) {
        double want = (in[i] - 0.5) * k + 0.5 + b;
        want = want < 0.0 ? 0.0 : want > 1.0 ? 1.0 : want;
        wrong += fabs(out[i] - want) > 1e-5;
    }
    CU_ASSERT_EQUAL(wrong, 0);
}

static void test_augment_range_and_geometry(void)
{
    const int w = 48, h = 40, c = 3;
    size_t n = (size_t)w * h * c;
    float *in = malloc(n * sizeof *in);
    float *out = malloc(n * sizeof *out);
    CU_ASSERT_FATAL(in != NULL && out != NULL);
    fill_random(in, n, 17);
    in[0] = 1.0f;
    in[1] = 0.0f;
    hs_augment strong = {0.5f, 45.0f, 0.3f, 0.5f, 0.5f, 1.0f};
    hs_rng rng;
    hs_rng_seed(&rng, 2024);
    int bad = 0;
    for (int trial = 0; trial < 50; trial++) {
        hs_augment_apply(&strong, &rng, in, out, w, h, c);
        for (size_t i = 0; i < n; i++)
            bad += !(out[i] >= 0.0f && out[i] <= 1.0f);
    }
    CU_ASSERT_EQUAL(bad, 0);

    /* Rotation alone keeps the centre of a constant picture and blacks out
     * nothing near it; a corner can rotate out of the picture. */
    for (size_t i = 0; i < n; i++)
        in[i] = 0.6f;
    hs_augment rot;
    memset(&rot, 0, sizeof rot);
    rot.rotate_deg = 30.0f;
    int centre_bad = 0;
    for (int trial = 0; trial < 10; trial++) {
        hs_augment_apply(&rot, &rng, in, out, w, h, c);
        for (int y = h / 2 - 5; y < h / 2 + 5; y++) {
            for (int x = w / 2 - 5; x < w / 2 + 5; x++)
                centre_bad += fabsf(out[(y * w + x) * c] - 0.6f) > 1e-5f;
        }
    }
    CU_ASSERT_EQUAL(centre_bad, 0);

    /* Zoom alone, shrinking: the border turns black, the centre stays. */
    hs_augment zoom;
    memset(&zoom, 0, sizeof zoom);
    zoom.zoom_frac = 0.5f;
    hs_rng twin = rng;
    double u[7];
    for (int i = 0; i < 7; i++)
        u[i] = hs_rng_uniform(&twin);
    hs_augment_apply(&zoom, &rng, in, out, w, h, c);
    double scale = 1.0 + (2.0 * u[4] - 1.0) * 0.5f;
    CU_ASSERT(fabsf(out[((h / 2) * w + w / 2) * c] - 0.6f) < 1e-5f);
    if (scale < 0.9)
        CU_ASSERT_EQUAL(out[0], 0.0f);
    if (scale >= 1.0)
        CU_ASSERT(fabsf(out[((h / 2) * w) * c] - 0.6f) < 1e-5f);
    free(in);
    free(out);
}

int hs_register_image_tests(void)
{
    static const hs_test_case tests[] = {
        {"image alloc and free", test_image_alloc},
        {"PNG gray 1/2/4/8/16-bit and tRNS", test_png_gray},
        {"PNG gray+alpha 8/16-bit", test_png_gray_alpha},
        {"PNG RGB and RGBA 8/16-bit", test_png_rgb},
        {"PNG palette with and without tRNS", test_png_palette},
        {"PNG interlaced", test_png_interlaced},
        {"PNG known sample values", test_png_known_values},
        {"PNG: foreign, empty and missing files", test_png_not_png},
        {"PNG: truncated files", test_png_truncated},
        {"PNG: corrupt image data", test_png_corrupt},
        {"PNG: size limit", test_png_too_large},
        {"PNG: hostile header, values limit", test_png_hostile_header},
        {"PNG write round trip and clamping", test_png_write_roundtrip},
        {"gray conversion", test_gray},
        {"head crop: box, text removed, holes kept", test_crop_head},
        {"head crop: diagonally closed ring", test_crop_diagonal_ring},
        {"head crop: blank, two regions, big image", test_crop_edge_cases},
        {"fit: centring and padding", test_fit_geometry},
        {"fit: area filter keeps the mean", test_fit_area_filter},
        {"fit: bilinear upscaling", test_fit_bilinear},
        {"prepare: independent of picture size", test_prepare_size_invariance},
        {"prepare: RGB, RGBA and gray PNGs agree", test_prepare_colour_types},
        {"prepare: re-windowed gray channels", test_prepare_gray_windows},
        {"prepare: refused recipes", test_prepare_refusals},
        {"prepare: real head CT images", test_prepare_real_images},
        {"augment: identity, seeds, draw count", test_augment_identity_and_seeds},
        {"augment: flip mirrors exactly", test_augment_flip},
        {"augment: brightness and contrast draws", test_augment_photometric},
        {"augment: range, rotation, zoom", test_augment_range_and_geometry},
    };
    return hs_test_add_suite("image stage", suite_init, suite_clean, tests, sizeof tests / sizeof tests[0]);
}
