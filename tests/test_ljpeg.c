/* test_ljpeg.c - the fast lossless JPEG decoder (src/study/ljpeg.c) against
 * DCMTK, the reference, and against streams this file encodes itself.
 *
 * DCMTK's encoder (dcmcjpeg) makes every selection value and a point
 * transform; it cannot make restart intervals or unusual Huffman tables,
 * so a small encoder here writes those, from a known image the decoder
 * must give back exactly. Broken streams must be declined (so that DCMTK
 * gets them), never decoded into something and never read out of bounds:
 * the mutation test runs under ASan and valgrind like every test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "dicom_fixture.h"
#include "hemoscan/dicom.h"
#include "hemoscan/ljpeg.h"
#include "test_util.h"

int hs_register_ljpeg_tests(void);

static char tmp_dir[4096];

static int suite_init(void)
{
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "ljpeg");
}

static int suite_clean(void)
{
    return hs_test_tmpdir_remove(tmp_dir);
}

/* ---- DCMTK as the reference ------------------------------------------------- */

/* Decodes the JPEG Lossless file at path both ways; asserts the fast
 * decoder takes it and gives DCMTK's samples. */
static void same_as_dcmtk(const char *path)
{
    hs_dicom_header *h = malloc(sizeof *h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    hs_dicom_verdict v;
    char reason[256];
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_dicom_read_header(path, h, &v, reason, &err), HS_OK);
    size_t n = (size_t)h->rows * (size_t)h->columns;
    unsigned short *ref = malloc(n * sizeof *ref);
    uint16_t *fast = malloc(n * sizeof *fast);
    unsigned char *code = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(ref != NULL && fast != NULL);
    CU_ASSERT_EQUAL(hs_test_dicom_dcmtk_pixels16(path, ref, n), 0);
    CU_ASSERT_EQUAL(hs_test_dicom_frame_bytes(path, &code, &len), 0);
    char why[128] = "";
    int ok = code != NULL && hs_ljpeg_decode(code, len, h->columns, h->rows, fast, why);
    CU_ASSERT(ok);
    if (!ok)
        printf("\n  %s: declined: %s\n", path, why);
    else
        CU_ASSERT(memcmp(ref, fast, n * sizeof *fast) == 0);
    free(code);
    free(fast);
    free(ref);
    free(h);
}

static void test_real_files(void)
{
    static const char *files[] = {"dicom/edge/ts_wg04_ct2_head/CT2_JPLL.dcm",
                                  "dicom/edge/ct_other/barre_CT-MONO2-16-chest_jpegll_400x512.dcm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", hs_test_shared_data_dir(), files[i]);
        if (access(path, R_OK) != 0) {
            printf("\n  skipped: %s absent (set HEMOSCAN_SHARED_DATA)\n", path);
            continue;
        }
        same_as_dcmtk(path);
    }
}

/* Every selection value, and a point transform, on a generated head slice
 * encoded by DCMTK's dcmcjpeg. */
static void test_selection_values(void)
{
    if (system("command -v dcmcjpeg >/dev/null 2>&1") != 0) {
        printf("\n  skipped: dcmcjpeg (Debian package dcmtk) not installed\n");
        return;
    }
    char dir[4096], src[4400];
    hs_test_path(dir, sizeof dir, tmp_dir, "native");
    if (hs_test_generate(dir, "--size 96 --slices 1 --seed 3 --ts explicit --bleed iph:0,0,0,20") != 0)
        return;
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    src[0] = '\0';
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
        if (e->d_name[0] != '.')
            snprintf(src, sizeof src, "%s/%s", dir, e->d_name);
    closedir(d);
    CU_ASSERT_FATAL(src[0] != '\0');
    static const char *variants[] = {"+sv 1", "+sv 2", "+sv 3", "+sv 4", "+sv 5",
                                     "+sv 6", "+sv 7", "+sv 1 +pt 2", "+sv 6 +pt 3"};
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        char out[4200], cmd[9000];
        snprintf(out, sizeof out, "%s/variant%zu.dcm", tmp_dir, i);
        snprintf(cmd, sizeof cmd, "dcmcjpeg +el %s '%s' '%s'", variants[i], src, out);
        CU_ASSERT_EQUAL(system(cmd), 0);
        same_as_dcmtk(out);
    }
}

/* ---- a small encoder of our own ---------------------------------------------- */

typedef struct {
    unsigned char *data;
    size_t len, cap;
    uint32_t acc; /* pending bits */
    int nacc;
} writer;

static void put_byte(writer *w, unsigned b)
{
    if (w->len == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 1024;
        w->data = realloc(w->data, w->cap);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w->data);
    }
    w->data[w->len++] = (unsigned char)b;
}

static void put_u16(writer *w, unsigned v)
{
    put_byte(w, v >> 8);
    put_byte(w, v & 255);
}

static void put_bits(writer *w, uint32_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        w->acc = w->acc << 1 | ((v >> i) & 1u);
        if (++w->nacc == 8) {
            put_byte(w, w->acc & 255);
            if ((w->acc & 255) == 0xFF)
                put_byte(w, 0x00);
            w->acc = 0;
            w->nacc = 0;
        }
    }
}

static void flush_bits(writer *w)
{
    while (w->nacc != 0)
        put_bits(w, 1, 1);
}

/* Code lengths per category 0..16: deliberately long for the large
 * categories, so that codes of 10 to 16 bits (the decoder's slow path)
 * occur: two codes of 2 bits, then one each of 3..15 bits, two of 16. */
static const uint8_t counts[16] = {0, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2};

/* Canonical codes (T.81 Annex C) of categories 0..16 in order. */
static void make_codes(uint32_t code[17], int length[17])
{
    uint32_t c = 0;
    int k = 0;
    for (int len = 1; len <= 16; len++, c <<= 1)
        for (int i = 0; i < counts[len - 1]; i++, k++, c++) {
            code[k] = c;
            length[k] = len;
        }
}

/* Encodes img (w x h, precision bits, selection value 1) with point
 * transform pt and a restart interval of restart_rows rows (0: none). */
static writer encode(const uint16_t *img, int w, int h, int precision, int pt, int restart_rows)
{
    writer o = {0};
    uint32_t code[17];
    int length[17];
    make_codes(code, length);
    put_u16(&o, 0xFFD8);
    put_u16(&o, 0xFFC4); /* DHT, table 0 */
    put_u16(&o, 2 + 1 + 16 + 17);
    put_byte(&o, 0x00);
    for (int i = 0; i < 16; i++)
        put_byte(&o, counts[i]);
    for (int i = 0; i <= 16; i++)
        put_byte(&o, (unsigned)i);
    put_u16(&o, 0xFFFE); /* a comment, to be skipped */
    put_u16(&o, 2 + 5);
    for (int i = 0; i < 5; i++)
        put_byte(&o, "hello"[i]);
    put_u16(&o, 0xFFC3); /* SOF3 */
    put_u16(&o, 11);
    put_byte(&o, (unsigned)precision);
    put_u16(&o, (unsigned)h);
    put_u16(&o, (unsigned)w);
    put_byte(&o, 1);
    put_byte(&o, 1);
    put_byte(&o, 0x11);
    put_byte(&o, 0);
    if (restart_rows > 0) {
        put_u16(&o, 0xFFDD);
        put_u16(&o, 4);
        put_u16(&o, (unsigned)(restart_rows * w));
    }
    put_u16(&o, 0xFFDA); /* SOS */
    put_u16(&o, 8);
    put_byte(&o, 1);
    put_byte(&o, 1);
    put_byte(&o, 0x00);
    put_byte(&o, 1);
    put_byte(&o, 0);
    put_byte(&o, (unsigned)pt);
    int interval = 0;
    for (int y = 0; y < h; y++) {
        int first_row = restart_rows > 0 ? y % restart_rows == 0 : y == 0;
        if (restart_rows > 0 && first_row && y > 0) {
            flush_bits(&o);
            put_u16(&o, 0xFFD0 + (unsigned)(interval++ % 8));
        }
        for (int x = 0; x < w; x++) {
            int32_t value = img[y * w + x] >> pt;
            int32_t left = x > 0 ? img[y * w + x - 1] >> pt : 0;
            int32_t pred = first_row ? (x == 0 ? 1 << (precision - pt - 1) : left)
                                     : (x == 0 ? img[(y - 1) * w] >> pt : left);
            int32_t diff = (value - pred) & 0xFFFF;
            if (diff >= 32768)
                diff -= 65536;
            int cat = 0;
            for (int32_t a = diff < 0 ? -diff : diff; a > 0; a >>= 1)
                cat++;
            put_bits(&o, code[cat], length[cat]);
            if (cat > 0 && cat < 16)
                put_bits(&o, (uint32_t)(diff < 0 ? diff + (1 << cat) - 1 : diff), cat);
        }
    }
    flush_bits(&o);
    put_u16(&o, 0xFFD9);
    return o;
}

/* A 16-bit test image: smooth ramps, noise, and jumps of every size
 * including 32768 (category 16). */
static void make_image(uint16_t *img, int w, int h, int precision, unsigned seed)
{
    uint32_t s = seed;
    for (int i = 0; i < w * h; i++) {
        s = s * 1664525u + 1013904223u;
        int x = i % w, y = i / w;
        uint32_t v = (uint32_t)(x * 37 + y * 11) + (s >> 28);
        if ((s >> 8) % 13 == 0)
            v += (s >> 12) & 0xFFFF;
        img[i] = (uint16_t)(v & ((1u << precision) - 1u));
    }
    if (precision == 16 && w * h > 3) {
        img[1] = 0;
        img[2] = 32768;
    }
}

static void check_round_trip(int w, int h, int precision, int pt, int restart_rows, unsigned seed)
{
    uint16_t *img = malloc((size_t)w * h * sizeof *img), *out = malloc((size_t)w * h * sizeof *out);
    CU_ASSERT_FATAL(img != NULL && out != NULL);
    make_image(img, w, h, precision, seed);
    writer o = encode(img, w, h, precision, pt, restart_rows);
    char why[128] = "";
    int ok = hs_ljpeg_decode(o.data, o.len, w, h, out, why);
    CU_ASSERT(ok);
    if (!ok)
        printf("\n  %dx%d P%d pt%d restart %d declined: %s\n", w, h, precision, pt, restart_rows, why);
    int same = 1;
    for (int i = 0; ok && i < w * h; i++)
        same &= out[i] == (uint16_t)((img[i] >> pt) << pt);
    CU_ASSERT(same);
    free(o.data);
    free(out);
    free(img);
}

static void test_own_streams(void)
{
    check_round_trip(37, 23, 16, 0, 0, 1);  /* long codes, stuffing, category 16 */
    check_round_trip(37, 23, 16, 0, 2, 2);  /* restart every 2 rows, last interval short */
    check_round_trip(64, 9, 12, 0, 1, 3);   /* 12-bit, restart every row (more than 8 RSTs) */
    check_round_trip(16, 16, 12, 3, 4, 4);  /* point transform */
    check_round_trip(1, 1, 2, 0, 0, 5);     /* the smallest image */
}

/* ---- what must be declined ------------------------------------------------------ */

static void test_declined(void)
{
    const int w = 40, h = 12;
    uint16_t img[40 * 12], out[40 * 12];
    make_image(img, w, h, 16, 9);
    writer o = encode(img, w, h, 16, 0, 3);
    char why[128];
    CU_ASSERT(hs_ljpeg_decode(o.data, o.len, w, h, out, why));
    /* cut short: the data ends before the last sample */
    CU_ASSERT_FALSE(hs_ljpeg_decode(o.data, o.len / 2, w, h, out, why));
    CU_ASSERT_FALSE(hs_ljpeg_decode(o.data, o.len - 40, w, h, out, why));
    /* another size than the header's */
    CU_ASSERT_FALSE(hs_ljpeg_decode(o.data, o.len, w + 1, h, out, why));
    CU_ASSERT_FALSE(hs_ljpeg_decode(o.data, o.len, w, h - 1, out, why));
    /* not a JPEG, empty, NULL */
    CU_ASSERT_FALSE(hs_ljpeg_decode((const unsigned char *)"not a jpeg", 10, w, h, out, why));
    CU_ASSERT_FALSE(hs_ljpeg_decode(o.data, 0, w, h, out, why));
    CU_ASSERT_FALSE(hs_ljpeg_decode(NULL, 10, w, h, out, NULL));
    /* a restart interval that is not whole rows */
    unsigned char *copy = malloc(o.len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    memcpy(copy, o.data, o.len);
    for (size_t i = 0; i + 5 < o.len; i++) {
        if (copy[i] == 0xFF && copy[i + 1] == 0xDD) {
            copy[i + 5] += 1;
            break;
        }
    }
    CU_ASSERT_FALSE(hs_ljpeg_decode(copy, o.len, w, h, out, why));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "restart"));
    /* a restart marker out of order */
    memcpy(copy, o.data, o.len);
    for (size_t i = o.len - 2; i > 0; i--) {
        if (copy[i] == 0xFF && copy[i + 1] == 0xD1) {
            copy[i + 1] = 0xD5;
            break;
        }
    }
    CU_ASSERT_FALSE(hs_ljpeg_decode(copy, o.len, w, h, out, why));
    /* a lossy frame (SOF0 instead of SOF3) */
    memcpy(copy, o.data, o.len);
    for (size_t i = 0; i + 1 < o.len; i++) {
        if (copy[i] == 0xFF && copy[i + 1] == 0xC3) {
            copy[i + 1] = 0xC0;
            break;
        }
    }
    CU_ASSERT_FALSE(hs_ljpeg_decode(copy, o.len, w, h, out, why));
    /* Every single-byte change and every cut: any answer, but within the
     * buffer (ASan and valgrind watch), and a cut never decodes. */
    uint32_t s = 7;
    for (int k = 0; k < 3000; k++) {
        memcpy(copy, o.data, o.len);
        s = s * 1664525u + 1013904223u;
        copy[(s >> 8) % o.len] = (unsigned char)(s >> 24);
        (void)hs_ljpeg_decode(copy, o.len, w, h, out, why);
    }
    int cut_decoded = 0;
    for (size_t cut = 0; cut + 2 < o.len; cut++)
        cut_decoded += hs_ljpeg_decode(o.data, cut, w, h, out, why);
    CU_ASSERT_EQUAL(cut_decoded, 0);
    free(copy);
    free(o.data);
}

int hs_register_ljpeg_tests(void)
{
    CU_pSuite s = CU_add_suite("ljpeg", suite_init, suite_clean);
    if (s == NULL)
        return -1;
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"real JPEG Lossless files: DCMTK's samples", test_real_files},
        {"selection values 1-7 and point transforms (dcmcjpeg)", test_selection_values},
        {"restart intervals, long codes, stuffing, category 16", test_own_streams},
        {"truncated, resized, corrupt, lossy: declined, never out of bounds", test_declined},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL)
            return -1;
    return 0;
}
