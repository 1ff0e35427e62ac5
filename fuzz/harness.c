/* harness.c - the calls and checks of the fuzz targets, shared with the
 * regression test (see harness.h for why there is one copy).
 *
 * The DICOM reader takes a path, so the input goes through a file: one per
 * process, made by mkstemp under $TMPDIR, rewritten in place for every
 * input (truncate, then write) rather than created anew, which keeps the
 * cost per input to two system calls. */
#include "harness.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

#include "hemoscan/dicom.h"
#include "hemoscan/image.h"
#include "hemoscan/model.h"
#include "hemoscan/status.h"

/* The name hs_png_read_buffer is given; its messages must carry it. */
#define PNG_INPUT_NAME "(fuzz input)"

/* Float rounding in the resampling may step this far outside [0, 1]. */
#define RANGE_SLACK 1e-5f

static char tmp_file[4096];
static int tmp_fd = -1;

static int broken(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Writes the sentence to why and returns -1, the failing result. */
static int broken(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return -1;
}

void hs_fuzz_run_or_abort(int (*run)(const uint8_t *, size_t, char *, size_t), const uint8_t *data,
                          size_t size, const char *target)
{
    char why[1024];
    if (run(data, size, why, sizeof why) != 0) {
        fprintf(stderr, "%s: %s\n", target, why);
        abort();
    }
}

void hs_fuzz_cleanup(void)
{
    if (tmp_fd >= 0) {
        close(tmp_fd);
        unlink(tmp_file);
        tmp_fd = -1;
    }
}

/* Creates the temporary file on first use. */
static int tmp_ready(char *why, size_t cap)
{
    if (tmp_fd >= 0)
        return 0;
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    int n = snprintf(tmp_file, sizeof tmp_file, "%s/hemoscan-fuzz.XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof tmp_file)
        return broken(why, cap, "TMPDIR is too long: %s", base);
    tmp_fd = mkstemp(tmp_file);
    if (tmp_fd < 0)
        return broken(why, cap, "cannot create a temporary file under %s: %s", base, strerror(errno));
    return 0;
}

/* Replaces the temporary file's content with the input. */
static int tmp_rewrite(const uint8_t *data, size_t size, char *why, size_t cap)
{
    if (ftruncate(tmp_fd, 0) != 0)
        return broken(why, cap, "cannot truncate %s: %s", tmp_file, strerror(errno));
    size_t done = 0;
    while (done < size) {
        ssize_t k = pwrite(tmp_fd, data + done, size - done, (off_t)done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return broken(why, cap, "cannot write %s: %s", tmp_file, k < 0 ? strerror(errno) : "no progress");
        done += (size_t)k;
    }
    return 0;
}

/* Index of the first of n values outside [0, 1] (NaN included), or n. */
static size_t first_out_of_range(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!(v[i] >= -RANGE_SLACK && v[i] <= 1.0f + RANGE_SLACK))
            return i;
    }
    return n;
}

/* hs_prepare_input with the recipe --train gives PNG-trained models (the
 * default model's); the tensor must come out in [0, 1]. */
static int check_input_tensor(const hs_image *picture, char *why, size_t cap)
{
    hs_input_recipe r;
    hs_input_recipe_gray(&r, HS_GRAY_WINDOWS_DEFAULT, NULL);
    size_t n = (size_t)r.width * (size_t)r.height * (size_t)r.channels;
    float *x = malloc(n * sizeof *x);
    if (x == NULL)
        return 0; /* out of memory is not a finding */
    hs_error err = {0};
    hs_status st = hs_prepare_input(picture, &r, x, &err);
    int rc = 0;
    if (st != HS_OK && st != HS_ERR_NOMEM) {
        rc = broken(why, cap, "hs_prepare_input on a %dx%d picture: %s: %s", picture->width, picture->height,
                    hs_status_name(st), err.msg);
    } else if (st == HS_OK) {
        size_t bad = first_out_of_range(x, n);
        if (bad < n)
            rc = broken(why, cap, "hs_prepare_input: value %zu of the tensor is %g, outside [0, 1]", bad,
                        (double)x[bad]);
    }
    free(x);
    return rc;
}

int hs_fuzz_dicom(const uint8_t *data, size_t size, char *why, size_t cap)
{
    if (tmp_ready(why, cap) != 0 || tmp_rewrite(data, size, why, cap) != 0)
        return -1;
    static hs_dicom_header h; /* 5 kB: kept off the stack */
    hs_dicom_verdict verdict = HS_DICOM_OK;
    char reason[256];
    memset(reason, 'x', sizeof reason); /* so a missing terminator shows */
    hs_error err = {0};
    hs_status st = hs_dicom_read_header(tmp_file, &h, &verdict, reason, &err);
    if (st == HS_ERR_NOMEM)
        return 0;
    if (st != HS_OK)
        return broken(why, cap, "hs_dicom_read_header on a readable file: %s: %s", hs_status_name(st), err.msg);
    if (strcmp(hs_dicom_verdict_name(verdict), "unknown") == 0)
        return broken(why, cap, "hs_dicom_read_header: verdict %d is not in the enum", (int)verdict);
    if (memchr(reason, '\0', sizeof reason) == NULL)
        return broken(why, cap, "hs_dicom_read_header: the reason is not NUL-terminated");
    if (verdict != HS_DICOM_OK && verdict != HS_DICOM_LOCALIZER && verdict != HS_DICOM_DERIVED &&
        verdict != HS_DICOM_NOT_AXIAL)
        return 0;
    if (h.rows < 1 || h.rows > HS_DICOM_MAX_SIDE || h.columns < 1 || h.columns > HS_DICOM_MAX_SIDE)
        return broken(why, cap, "verdict %s for %d x %d pixels, outside 1..%d", hs_dicom_verdict_name(verdict),
                      h.rows, h.columns, HS_DICOM_MAX_SIDE);

    size_t n = (size_t)h.rows * (size_t)h.columns;
    float *hu = malloc(n * sizeof *hu);
    if (hu == NULL)
        return 0;
    int rc = 0;
    st = hs_dicom_read_hu(tmp_file, &h, hu, &err);
    if (st != HS_OK && st != HS_ERR_FORMAT && st != HS_ERR_NOMEM)
        rc = broken(why, cap, "hs_dicom_read_hu: %s: %s", hs_status_name(st), err.msg);
    else if (st != HS_OK && strstr(err.msg, tmp_file) == NULL)
        rc = broken(why, cap, "hs_dicom_read_hu: the message does not name the file: %s", err.msg);
    free(hu);
    return rc;
}

/* Rewrites the CRC of every whole chunk after the 8-byte signature. libpng
 * and zlib are not instrumented, so libFuzzer cannot learn a checksum: a
 * mutated IHDR or PLTE would die at its CRC without reaching the decoder
 * or the checks after it. */
static void repair_chunk_crcs(uint8_t *png, size_t size)
{
    size_t pos = 8;
    while (pos <= size && size - pos >= 12) {
        size_t len = (size_t)png[pos] << 24 | (size_t)png[pos + 1] << 16 | (size_t)png[pos + 2] << 8 | png[pos + 3];
        if (len > size - pos - 12)
            break;
        uLong crc = crc32(crc32(0L, Z_NULL, 0), png + pos + 4, (uInt)(len + 4));
        for (int i = 0; i < 4; i++)
            png[pos + 8 + len + (size_t)i] = (uint8_t)(crc >> (24 - 8 * i));
        pos += 12 + len;
    }
}

int hs_fuzz_png(const uint8_t *data, size_t size, char *why, size_t cap)
{
    uint8_t *png = malloc(size > 0 ? size : 1);
    if (png == NULL)
        return 0;
    if (size > 0)
        memcpy(png, data, size);
    repair_chunk_crcs(png, size);
    hs_image img;
    hs_error err = {0};
    hs_status st = hs_png_read_buffer(png, size, PNG_INPUT_NAME, &img, &err);
    free(png);
    if (st != HS_OK) {
        if (st != HS_ERR_FORMAT && st != HS_ERR_NOMEM)
            return broken(why, cap, "hs_png_read_buffer: %s: %s", hs_status_name(st), err.msg);
        if (img.px != NULL || img.width != 0)
            return broken(why, cap, "hs_png_read_buffer failed but left an image behind");
        if (strstr(err.msg, PNG_INPUT_NAME) == NULL)
            return broken(why, cap, "hs_png_read_buffer: the message does not name the input: %s", err.msg);
        return 0;
    }
    int rc = 0;
    size_t values = (size_t)img.width * (size_t)img.height * (size_t)img.channels;
    if (img.px == NULL || img.width < 1 || img.width > HS_IMAGE_MAX_SIDE || img.height < 1 ||
        img.height > HS_IMAGE_MAX_SIDE || (img.channels != 1 && img.channels != 3) || values > HS_PNG_MAX_VALUES) {
        rc = broken(why, cap, "hs_png_read_buffer: a %dx%d image of %d channels is outside its contract",
                    img.width, img.height, img.channels);
    } else {
        size_t bad = first_out_of_range(img.px, values);
        if (bad < values)
            rc = broken(why, cap, "hs_png_read_buffer: value %zu is %g, outside [0, 1]", bad, (double)img.px[bad]);
        else
            rc = check_input_tensor(&img, why, cap);
    }
    hs_image_free(&img);
    return rc;
}
