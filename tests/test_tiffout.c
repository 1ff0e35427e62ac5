/* test_tiffout.c - CUnit tests of the parallel-compressed TIFF writer
 * (tiffout.c), registered by hs_register_tiffout_tests().
 *
 * The strips are compressed outside libtiff and handed to it raw, so the
 * tests read every file back through libtiff's own decoder: a wrong
 * predictor, a broken zlib stream or a strip of the wrong length shows up
 * as different pixels. Sizes are chosen to hit the edges: one pixel, one
 * column (a strip per row limit), a last strip shorter than the others. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "hemoscan/tiffout.h"
#include "test_util.h"

int hs_register_tiffout_tests(void);

static char tmp_dir[4096];

static int suite_init(void)
{
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "tiffout");
}

static int suite_clean(void)
{
    return hs_test_tmpdir_remove(tmp_dir);
}

/* Pixels with smooth runs, edges and noise, so differencing and deflate
 * both have work. */
static unsigned char *make_pixels(int w, int h, int spp, unsigned seed)
{
    unsigned char *px = malloc((size_t)w * (size_t)h * (size_t)spp);
    if (px == NULL)
        return NULL;
    unsigned x = seed * 2654435761u + 1u;
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w * spp; i++) {
            x = x * 1103515245u + 12345u;
            unsigned char v = (unsigned char)((y * 3 + i / spp) & 0xff);
            if ((i / spp) % 37 < 5)
                v = (unsigned char)(x >> 24); /* noise */
            px[(size_t)y * (size_t)(w * spp) + (size_t)i] = v;
        }
    return px;
}

typedef struct {
    hs_tiff_image image;
    unsigned char *px;
    const char *name;
    double px_per_cm;
} page_spec;

/* Writes the pages to path, asserting every step; 0 when all succeeded. */
static int write_file(const char *path, page_spec *pages, int n)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    hs_tiff_writer *w = NULL;
    hs_error err = {0};
    hs_status st = hs_tiff_writer_open(fd, path, n, "hemoscan test", &w, &err);
    CU_ASSERT_EQUAL_FATAL(st, HS_OK);
    for (int p = 0; st == HS_OK && p < n; p++) {
        hs_tiff_strips strips;
        st = hs_tiff_encode(&pages[p].image, &strips, &err);
        CU_ASSERT_EQUAL(st, HS_OK);
        if (st == HS_OK) {
            CU_ASSERT(strips.rows_per_strip >= 1);
            CU_ASSERT_EQUAL(strips.n_strips,
                            (pages[p].image.height + strips.rows_per_strip - 1) / strips.rows_per_strip);
            char desc[64];
            snprintf(desc, sizeof desc, "page %d described", p);
            hs_tiff_page_info info = {pages[p].name, desc, pages[p].px_per_cm};
            st = hs_tiff_write_page(w, &pages[p].image, &strips, &info, &err);
            CU_ASSERT_EQUAL(st, HS_OK);
        }
        hs_tiff_strips_free(&strips);
    }
    hs_status closed = hs_tiff_writer_close(w, st == HS_OK, &err);
    CU_ASSERT_EQUAL(closed, HS_OK);
    return st == HS_OK && closed == HS_OK ? 0 : -1;
}

static void test_round_trip(void)
{
    static uint16_t map[768];
    for (int i = 0; i < 256; i++) {
        map[i] = (uint16_t)(i * 257);
        map[256 + i] = (uint16_t)((255 - i) * 257);
        map[512 + i] = (uint16_t)((i * 7 % 256) * 257);
    }
    /* 301 x 257 RGB: 72 rows a strip, a short last strip; 700 x 150
     * palette; 1 x 1; a single column 1 x 900 (one strip, its rows
     * capped at the height) */
    page_spec pages[] = {
        {{HS_TIFF_RGB, 301, 257, NULL, NULL}, NULL, "rgb", 19.5},
        {{HS_TIFF_PALETTE, 700, 150, NULL, map}, NULL, "palette", 0.0},
        {{HS_TIFF_RGB, 1, 1, NULL, NULL}, NULL, "one pixel", 0.0},
        {{HS_TIFF_PALETTE, 1, 900, NULL, map}, NULL, "one column", 0.0},
    };
    const int n = (int)(sizeof pages / sizeof pages[0]);
    for (int p = 0; p < n; p++) {
        int spp = pages[p].image.kind == HS_TIFF_RGB ? 3 : 1;
        pages[p].px = make_pixels(pages[p].image.width, pages[p].image.height, spp, (unsigned)p + 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(pages[p].px);
        pages[p].image.px = pages[p].px;
    }
    char path[4200];
    hs_test_path(path, sizeof path, tmp_dir, "round-trip.tif");
    CU_ASSERT_EQUAL_FATAL(write_file(path, pages, n), 0);

    TIFF *t = TIFFOpen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(TIFFNumberOfDirectories(t), n);
    for (int p = 0; p < n; p++) {
        CU_ASSERT_FATAL(TIFFSetDirectory(t, (uint16_t)p));
        const hs_tiff_image *im = &pages[p].image;
        const int rgb = im->kind == HS_TIFF_RGB, spp = rgb ? 3 : 1;
        uint32_t w = 0, h = 0;
        uint16_t s = 0, bps = 0, photo = 0, comp = 0, pred = 0, pnum = 0, ptotal = 0, unit = 0;
        float xres = 0.0f;
        char *name = NULL, *desc = NULL, *software = NULL;
        CU_ASSERT(TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_SAMPLESPERPIXEL, &s));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_BITSPERSAMPLE, &bps));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photo));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_COMPRESSION, &comp));
        CU_ASSERT(TIFFGetFieldDefaulted(t, TIFFTAG_PREDICTOR, &pred));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_PAGENUMBER, &pnum, &ptotal));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_PAGENAME, &name));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_IMAGEDESCRIPTION, &desc));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_SOFTWARE, &software));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_XRESOLUTION, &xres));
        CU_ASSERT(TIFFGetField(t, TIFFTAG_RESOLUTIONUNIT, &unit));
        CU_ASSERT_EQUAL(w, (uint32_t)im->width);
        CU_ASSERT_EQUAL(h, (uint32_t)im->height);
        CU_ASSERT_EQUAL(s, spp);
        CU_ASSERT_EQUAL(bps, 8);
        CU_ASSERT_EQUAL(photo, rgb ? PHOTOMETRIC_RGB : PHOTOMETRIC_PALETTE);
        CU_ASSERT_EQUAL(comp, COMPRESSION_ADOBE_DEFLATE);
        CU_ASSERT_EQUAL(pred, rgb ? PREDICTOR_HORIZONTAL : PREDICTOR_NONE);
        CU_ASSERT_EQUAL(pnum, p);
        CU_ASSERT_EQUAL(ptotal, n);
        CU_ASSERT_PTR_NOT_NULL_FATAL(name);
        CU_ASSERT_STRING_EQUAL(name, pages[p].name);
        char want[64];
        snprintf(want, sizeof want, "page %d described", p);
        CU_ASSERT_PTR_NOT_NULL_FATAL(desc);
        CU_ASSERT_STRING_EQUAL(desc, want);
        CU_ASSERT_PTR_NOT_NULL_FATAL(software);
        CU_ASSERT_STRING_EQUAL(software, "hemoscan test");
        if (pages[p].px_per_cm > 0.0) {
            CU_ASSERT_EQUAL(unit, RESUNIT_CENTIMETER);
            CU_ASSERT_DOUBLE_EQUAL(xres, pages[p].px_per_cm, 1e-3);
        } else {
            CU_ASSERT_EQUAL(unit, RESUNIT_INCH);
            CU_ASSERT_DOUBLE_EQUAL(xres, 72.0, 1e-3);
        }
        if (!rgb) {
            uint16_t *r = NULL, *g = NULL, *b = NULL;
            CU_ASSERT_FATAL(TIFFGetField(t, TIFFTAG_COLORMAP, &r, &g, &b));
            CU_ASSERT_EQUAL(memcmp(r, map, 512), 0);
            CU_ASSERT_EQUAL(memcmp(g, map + 256, 512), 0);
            CU_ASSERT_EQUAL(memcmp(b, map + 512, 512), 0);
        }
        /* libtiff's decoder gives back the very bytes */
        size_t row = (size_t)w * (size_t)spp;
        unsigned char *line = malloc(row);
        CU_ASSERT_PTR_NOT_NULL_FATAL(line);
        int same = 1;
        for (uint32_t y = 0; y < h; y++) {
            CU_ASSERT_FATAL(TIFFReadScanline(t, line, y, 0) == 1);
            same &= memcmp(line, pages[p].px + (size_t)y * row, row) == 0;
        }
        CU_ASSERT(same);
        free(line);
    }
    TIFFClose(t);
    /* smooth pixels shrink: the compression is real */
    long raw = 0;
    for (int p = 0; p < n; p++)
        raw += (long)pages[p].image.width * pages[p].image.height * (pages[p].image.kind == HS_TIFF_RGB ? 3 : 1);
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    CU_ASSERT(ftell(f) < raw / 2);
    fclose(f);
    for (int p = 0; p < n; p++)
        free(pages[p].px);
}

static void test_refusals(void)
{
    hs_error err = {0};
    hs_tiff_strips strips;
    unsigned char px[12] = {0};
    hs_tiff_image empty = {HS_TIFF_RGB, 0, 2, px, NULL};
    CU_ASSERT_EQUAL(hs_tiff_encode(&empty, &strips, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NULL(strips.data);
    hs_tiff_image no_map = {HS_TIFF_PALETTE, 2, 2, px, NULL};
    CU_ASSERT_EQUAL(hs_tiff_encode(&no_map, &strips, &err), HS_ERR_ARG);
    hs_tiff_image no_px = {HS_TIFF_RGB, 2, 2, NULL, NULL};
    CU_ASSERT_EQUAL(hs_tiff_encode(&no_px, &strips, &err), HS_ERR_ARG);
    hs_tiff_strips_free(&strips); /* harmless on what a refusal left */

    /* Fewer pages than announced: closing to commit says so. */
    char path[4200];
    hs_test_path(path, sizeof path, tmp_dir, "short.tif");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    hs_tiff_writer *w = NULL;
    CU_ASSERT_EQUAL_FATAL(hs_tiff_writer_open(fd, path, 2, "t", &w, &err), HS_OK);
    hs_tiff_image one = {HS_TIFF_RGB, 2, 2, px, NULL};
    CU_ASSERT_EQUAL_FATAL(hs_tiff_encode(&one, &strips, &err), HS_OK);
    hs_tiff_page_info info = {"p", "d", 0.0};
    CU_ASSERT_EQUAL(hs_tiff_write_page(w, &one, &strips, &info, &err), HS_OK);
    hs_tiff_strips_free(&strips);
    CU_ASSERT_EQUAL(hs_tiff_writer_close(w, 1, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "1 of 2 pages"));

    /* A device that takes nothing: the failure is reported, naming it. */
    fd = open("/dev/full", O_RDWR);
    if (fd < 0) {
        fprintf(stderr, "\n  skipped the /dev/full case: /dev/full cannot be opened\n");
        return;
    }
    w = NULL;
    hs_status st = hs_tiff_writer_open(fd, "/dev/full", 1, "t", &w, &err);
    if (st == HS_OK) {
        unsigned char *big = make_pixels(300, 300, 3, 9);
        CU_ASSERT_PTR_NOT_NULL_FATAL(big);
        hs_tiff_image im = {HS_TIFF_RGB, 300, 300, big, NULL};
        CU_ASSERT_EQUAL_FATAL(hs_tiff_encode(&im, &strips, &err), HS_OK);
        st = hs_tiff_write_page(w, &im, &strips, &info, &err);
        hs_tiff_strips_free(&strips);
        free(big);
        hs_status closed = hs_tiff_writer_close(w, st == HS_OK, &err);
        if (st == HS_OK)
            st = closed;
    }
    CU_ASSERT_EQUAL(st, HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/dev/full"));
}

int hs_register_tiffout_tests(void)
{
    static const hs_test_case cases[] = {
        {"RGB and palette pages read back byte for byte, with their tags", test_round_trip},
        {"malformed pages, missing pages and a full device are refused", test_refusals},
    };
    return hs_test_add_suite("tiffout", suite_init, suite_clean, cases, sizeof cases / sizeof cases[0]);
}
