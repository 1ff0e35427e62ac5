/* review.c - review pictures: Grad-CAM maps drawn on the slices, a contact
 * sheet, one multi-page TIFF per study (see review.h).
 *
 * Built around what a reader of the file needs and what a run can afford:
 * - Only a few slices get a full page, so only they are decoded a second
 *   time and only they get a forward and backward pass; the contact sheet
 *   uses thumbnails the study driver kept while it was decoding anyway.
 * - A map cell of a 'valid' convolution stack sits at the centre of its
 *   receptive field, not spread evenly over the input: for the reference
 *   net's last convolution (5 x 5) the centres run from input pixel 42.5
 *   to 106.5 in steps of 16. The map is placed with that offset and
 *   stride, then mapped back through the head crop and fit, so the colour
 *   lands where the network looked.
 * - The colour map is a piecewise-linear viridis (nine published anchor
 *   colours of matplotlib's viridis), perceptually ordered and readable
 *   with the common colour-vision deficiencies; it is blended in only
 *   where the map reaches a quarter of the study's largest value, with an
 *   opacity ramp, so the anatomy stays visible.
 * - Text is drawn with a 3 x 5 pixel font defined below (digits, capital
 *   letters, a few signs), scaled up, on a dark box: no font files.
 * - The TIFF is plain: 8-bit RGB, contiguous, deflate with the horizontal
 *   predictor, one strip per few rows, standard page tags. */
#include "hemoscan/review.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <tiffio.h>
#include <unistd.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/checksum.h"
#include "hemoscan/cnn.h"
#include "hemoscan/dicom.h"
#include "hemoscan/fileio.h"
#include "hemoscan/parallel.h"
#include "hemoscan/render.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* Below this fraction of the study's largest map value nothing is drawn;
 * the opacity then rises linearly to OVERLAY_ALPHA at OVERLAY_FULL. */
#define OVERLAY_FROM 0.25
#define OVERLAY_FULL 0.60
#define OVERLAY_ALPHA 0.60
/* Pixels at or below this are air (or padding) and get no heat. */
#define HS_REVIEW_AIR_HU -300.0f

void hs_review_options_default(hs_review_options *opt)
{
    opt->max_pages = HS_REVIEW_DEFAULT_PAGES;
    opt->neighbours = HS_REVIEW_NEIGHBOURS;
    opt->layer = -1;
    opt->threads = 1;
}

/* ---- thumbnails ------------------------------------------------------------ */

static float brain_window(float hu)
{
    float v = (hu - (HS_REVIEW_CENTER_HU - 0.5f * HS_REVIEW_WIDTH_HU)) / HS_REVIEW_WIDTH_HU;
    return v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; /* NaN gives 0 */
}

static unsigned char to_byte(double v)
{
    if (!(v > 0.0))
        return 0;
    if (v >= 1.0)
        return 255;
    return (unsigned char)lrint(v * 255.0);
}

void hs_review_thumbnail(const float *hu, int width, int height, int size, unsigned char *out)
{
    memset(out, 0, (size_t)size * (size_t)size);
    int longer = width > height ? width : height;
    int cw = (int)((long)width * size / longer), ch = (int)((long)height * size / longer);
    cw = cw < 1 ? 1 : cw;
    ch = ch < 1 ? 1 : ch;
    int ox = (size - cw) / 2, oy = (size - ch) / 2;
    for (int ty = 0; ty < ch; ty++) {
        int y0 = (int)((long)ty * height / ch), y1 = (int)((long)(ty + 1) * height / ch);
        y1 = y1 > y0 ? y1 : y0 + 1;
        for (int tx = 0; tx < cw; tx++) {
            int x0 = (int)((long)tx * width / cw), x1 = (int)((long)(tx + 1) * width / cw);
            x1 = x1 > x0 ? x1 : x0 + 1;
            /* at most 3 x 3 evenly spread samples per thumbnail pixel:
             * this runs on every slice of a reviewed study, in the
             * scoring pass, and a thumbnail needs no more */
            int sy = (y1 - y0 + 2) / 3, sx = (x1 - x0 + 2) / 3;
            double sum = 0.0;
            int count = 0;
            for (int y = y0; y < y1; y += sy)
                for (int x = x0; x < x1; x += sx) {
                    sum += brain_window(hu[(size_t)y * (size_t)width + (size_t)x]);
                    count++;
                }
            out[(size_t)(ty + oy) * (size_t)size + (size_t)(tx + ox)] = to_byte(sum / count);
        }
    }
}

/* ---- saliency ---------------------------------------------------------------- */

struct hs_saliency {
    const hs_model *model;
    hs_ws *ws;
    int layer, map_h, map_w;
    double offset, stride; /* input pixel of map cell i: offset + stride * i */
    float *input, *map, *sum;
};

/* Receptive-field centre of the output cells of layer `upto`: offset and
 * stride in input pixels (pixel centres at integers). */
static void receptive_field(const hs_net *net, int upto, double *offset, double *stride)
{
    double o = 0.0, s = 1.0;
    for (int i = 0; i <= upto; i++) {
        const hs_layer *l = &net->layers[i];
        if (l->spec.kind == HS_LAYER_CONV && !l->spec.pad_same) {
            o += 0.5 * (l->spec.kernel - 1) * s;
        } else if (l->spec.kind == HS_LAYER_MAXPOOL) {
            o += 0.5 * s;
            s *= 2.0;
        }
    }
    *offset = o;
    *stride = s;
}

hs_status hs_saliency_create(hs_saliency **out, const hs_model *model, int layer, int threads,
                             hs_error *err)
{
    *out = NULL;
    const hs_net *net = &model->member[0];
    if (layer < 0)
        layer = hs_net_last_conv(net);
    if (layer < 0 || layer >= net->n_layers || net->layers[layer].spec.kind != HS_LAYER_CONV)
        return hs_fail(err, HS_ERR_ARG, "review: layer %d of the model is not a convolution", layer);
    hs_saliency *s = calloc(1, sizeof *s);
    if (s == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "review: out of memory");
    s->model = model;
    s->layer = layer;
    s->map_h = net->layers[layer].out.h;
    s->map_w = net->layers[layer].out.w;
    receptive_field(net, layer, &s->offset, &s->stride);
    size_t in_size = (size_t)net->input.h * (size_t)net->input.w * (size_t)net->input.c;
    size_t map_size = (size_t)s->map_h * (size_t)s->map_w;
    s->input = malloc(in_size * sizeof *s->input);
    s->map = malloc(map_size * sizeof *s->map);
    s->sum = malloc(map_size * sizeof *s->sum);
    hs_status st = HS_OK;
    if (s->input == NULL || s->map == NULL || s->sum == NULL)
        st = hs_fail(err, HS_ERR_NOMEM, "review: out of memory");
    if (st == HS_OK)
        st = hs_ws_create(&s->ws, net, 1, 1, threads > 0 ? threads : 1, err);
    if (st != HS_OK) {
        hs_saliency_free(s);
        return st;
    }
    *out = s;
    return HS_OK;
}

void hs_saliency_free(hs_saliency *s)
{
    if (s == NULL)
        return;
    hs_ws_free(s->ws);
    free(s->input);
    free(s->map);
    free(s->sum);
    free(s);
}

void hs_saliency_layer(const hs_saliency *s, int *layer, int *map_h, int *map_w)
{
    *layer = s->layer;
    *map_h = s->map_h;
    *map_w = s->map_w;
}

hs_status hs_saliency_slice(hs_saliency *s, const float *hu, int width, int height, float *heat,
                            float *probability, hs_error *err)
{
    const hs_model *model = s->model;
    const hs_input_recipe *recipe = &model->recipe;
    if (recipe->width != model->member[0].input.w || recipe->height != model->member[0].input.h ||
        recipe->channels != model->member[0].input.c)
        return hs_fail(err, HS_ERR_ARG, "review: the model's recipe (%dx%dx%d) does not match its network input",
                       recipe->width, recipe->height, recipe->channels);
    hs_image picture = {0};
    hs_input_geometry geo;
    hs_status st = hs_render_slice(hu, width, height, recipe, &picture, err);
    if (st == HS_OK)
        st = hs_prepare_input_geometry(&picture, recipe, s->input, &geo, err);
    hs_image_free(&picture);
    if (st != HS_OK)
        return st;
    size_t map_size = (size_t)s->map_h * (size_t)s->map_w;
    memset(s->sum, 0, map_size * sizeof *s->sum);
    double prob = 0.0;
    for (int m = 0; m < model->n_members; m++) {
        float logit = 0.0f;
        st = hs_gradcam(&model->member[m], s->ws, s->layer, s->input, s->map, &logit, err);
        if (st != HS_OK)
            return st;
        for (size_t i = 0; i < map_size; i++)
            s->sum[i] += s->map[i] / (float)model->n_members;
        prob += 1.0 / (1.0 + exp(-(double)logit)) / model->n_members;
    }
    if (probability != NULL)
        *probability = (float)prob;

    /* Each picture pixel inside the crop box: to input coordinates, to map
     * coordinates (receptive-field centres), bilinear, edges extended. */
    memset(heat, 0, (size_t)width * (size_t)height * sizeof *heat);
    for (int y = geo.crop_y; y < geo.crop_y + geo.crop_h; y++) {
        for (int x = geo.crop_x; x < geo.crop_x + geo.crop_w; x++) {
            /* air inside the crop box (its corners) shows no colour */
            if (!(hu[(size_t)y * (size_t)width + (size_t)x] > HS_REVIEW_AIR_HU))
                continue;
            double ix, iy;
            hs_picture_to_input(&geo, x, y, &ix, &iy);
            double u = (ix - s->offset) / s->stride, v = (iy - s->offset) / s->stride;
            u = u < 0.0 ? 0.0 : (u > s->map_w - 1 ? s->map_w - 1 : u);
            v = v < 0.0 ? 0.0 : (v > s->map_h - 1 ? s->map_h - 1 : v);
            int u0 = (int)u, v0 = (int)v;
            int u1 = u0 + 1 < s->map_w ? u0 + 1 : u0, v1 = v0 + 1 < s->map_h ? v0 + 1 : v0;
            double fu = u - u0, fv = v - v0;
            const float *m = s->sum;
            double a = m[v0 * s->map_w + u0] * (1 - fu) + m[v0 * s->map_w + u1] * fu;
            double b = m[v1 * s->map_w + u0] * (1 - fu) + m[v1 * s->map_w + u1] * fu;
            heat[(size_t)y * (size_t)width + (size_t)x] = (float)(a * (1 - fv) + b * fv);
        }
    }
    return HS_OK;
}

/* ---- drawing ------------------------------------------------------------------- */

typedef struct {
    int w, h;
    unsigned char *px; /* RGB */
} canvas;

static void put(canvas *c, int x, int y, const unsigned char rgb[3])
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return;
    memcpy(c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3, rgb, 3);
}

static void fill_rect(canvas *c, int x0, int y0, int w, int h, const unsigned char rgb[3])
{
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w; x++)
            put(c, x, y, rgb);
}

static void frame_rect(canvas *c, int x0, int y0, int w, int h, int t, const unsigned char rgb[3])
{
    fill_rect(c, x0, y0, w, t, rgb);
    fill_rect(c, x0, y0 + h - t, w, t, rgb);
    fill_rect(c, x0, y0, t, h, rgb);
    fill_rect(c, x0 + w - t, y0, t, h, rgb);
}

/* The 3 x 5 font: five rows of three pixels, left to right, top down. */
static const struct {
    char ch;
    const char *rows;
} font[] = {
    {'0', "111101101101111"}, {'1', "010110010010111"}, {'2', "111001111100111"},
    {'3', "111001111001111"}, {'4', "101101111001001"}, {'5', "111100111001111"},
    {'6', "111100111101111"}, {'7', "111001001010010"}, {'8', "111101111101111"},
    {'9', "111101111001111"}, {'.', "000000000000010"}, {'/', "001001010100100"},
    {'-', "000000111000000"}, {':', "000010000010000"}, {'%', "101001010100101"},
    {'A', "010101111101101"}, {'B', "110101110101110"}, {'C', "011100100100011"},
    {'D', "110101101101110"}, {'E', "111100110100111"}, {'F', "111100110100100"},
    {'G', "011100101101011"}, {'H', "101101111101101"}, {'I', "111010010010111"},
    {'J', "001001001101010"}, {'K', "101101110101101"}, {'L', "100100100100111"},
    {'M', "101111111101101"}, {'N', "110101101101101"}, {'O', "010101101101010"},
    {'P', "110101110100100"}, {'Q', "010101101110011"}, {'R', "110101110101101"},
    {'S', "011100010001110"}, {'T', "111010010010010"}, {'U', "101101101101111"},
    {'V', "101101101101010"}, {'W', "101101111111101"}, {'X', "101101010101101"},
    {'Y', "101101010010010"}, {'Z', "111001010100111"},
};

static const char *glyph(char ch)
{
    if (ch >= 'a' && ch <= 'z')
        ch = (char)(ch - 'a' + 'A');
    for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
        if (font[i].ch == ch)
            return font[i].rows;
    return NULL; /* a space, or anything unknown: blank */
}

/* Width in pixels of text at scale (4 * scale per character). */
static int text_width(const char *text, int scale)
{
    int n = (int)strlen(text);
    return n > 0 ? (4 * n - 1) * scale : 0;
}

/* Text with its top-left at (x, y), on a dark box one scale unit wider. */
static void draw_text(canvas *c, int x, int y, int scale, const char *text, const unsigned char rgb[3])
{
    static const unsigned char box[3] = {0, 0, 0};
    fill_rect(c, x - scale, y - scale, text_width(text, scale) + 2 * scale, 7 * scale, box);
    for (int i = 0; text[i] != '\0'; i++) {
        const char *g = glyph(text[i]);
        if (g == NULL)
            continue;
        for (int r = 0; r < 5; r++)
            for (int k = 0; k < 3; k++)
                if (g[r * 3 + k] == '1')
                    fill_rect(c, x + (4 * i + k) * scale, y + r * scale, scale, scale, rgb);
    }
}

/* Viridis, piecewise linear between nine anchors at 0, 1/8, ..., 1. */
static void colour_map(double v, unsigned char rgb[3])
{
    static const unsigned char anchor[9][3] = {
        {68, 1, 84},    {71, 45, 123},  {59, 82, 139},  {44, 114, 142}, {33, 145, 140},
        {40, 174, 128}, {94, 201, 98},  {173, 220, 48}, {253, 231, 37},
    };
    v = v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
    double t = v * 8.0;
    int i = (int)t;
    if (i >= 8)
        i = 7;
    double f = t - i;
    for (int k = 0; k < 3; k++)
        rgb[k] = (unsigned char)lrint(anchor[i][k] * (1.0 - f) + anchor[i + 1][k] * f);
}

static const unsigned char WHITE[3] = {255, 255, 255};
static const unsigned char YELLOW[3] = {253, 231, 37}; /* the key slice: viridis' top */
static const unsigned char ORANGE[3] = {249, 142, 9};  /* at or above the threshold */

/* The slice in the brain window with the normalised heat blended in. */
static void draw_slice(canvas *c, const float *hu, const float *heat, double heat_max)
{
    size_t n = (size_t)c->w * (size_t)c->h;
    const float scale = heat_max > 0.0 ? (float)(1.0 / heat_max) : 0.0f;
    for (size_t i = 0; i < n; i++) {
        float g = brain_window(hu[i]) * 255.0f;
        double v = heat[i] * scale;
        if (v <= OVERLAY_FROM) { /* most pixels: gray only */
            unsigned char b = (unsigned char)(g + 0.5f);
            c->px[i * 3] = c->px[i * 3 + 1] = c->px[i * 3 + 2] = b;
            continue;
        }
        double a = v <= OVERLAY_FROM ? 0.0
                                     : (v >= OVERLAY_FULL ? OVERLAY_ALPHA
                                                          : OVERLAY_ALPHA * (v - OVERLAY_FROM) / (OVERLAY_FULL - OVERLAY_FROM));
        unsigned char col[3];
        colour_map(v, col);
        for (int k = 0; k < 3; k++)
            c->px[i * 3 + (size_t)k] = (unsigned char)lrint((1.0 - a) * g + a * col[k]);
    }
}

/* A colour bar with "0" and "MAX" at the bottom-left corner. */
static void draw_legend(canvas *c, int scale)
{
    int bw = c->w / 4 < 160 ? c->w / 4 : 160, bh = 3 * scale;
    int x0 = 2 * scale, y0 = c->h - 2 * scale - bh - 7 * scale;
    static const unsigned char black[3] = {0, 0, 0};
    fill_rect(c, x0 - scale, y0 - scale, bw + 2 * scale, bh + 2 * scale, black);
    for (int x = 0; x < bw; x++) {
        unsigned char col[3];
        colour_map((double)x / (bw > 1 ? bw - 1 : 1), col);
        fill_rect(c, x0 + x, y0, 1, bh, col);
    }
    draw_text(c, x0, y0 + bh + 2 * scale, scale, "0", WHITE);
    draw_text(c, x0 + bw - text_width("MAX", scale), y0 + bh + 2 * scale, scale, "MAX", WHITE);
}

/* "0.873", or "--" for a slice that was not scored. */
static void format_prob(float p, char *buf, size_t len)
{
    if (isnan(p))
        snprintf(buf, len, "--");
    else
        snprintf(buf, len, "%.3f", (double)p);
}

/* ---- TIFF ------------------------------------------------------------------------- */

typedef struct {
    TIFF *tiff;
    int pages;
    char datetime[20]; /* "YYYY:MM:DD HH:MM:SS", TIFF's DateTime */
} tiff_out;

/* One page; px_per_cm > 0 gives its physical resolution, else 72 dpi. */
static int tiff_page(tiff_out *t, const canvas *c, int page, const char *name, const char *desc,
                     double px_per_cm)
{
    TIFF *tf = t->tiff;
    int ok = 1;
    ok &= TIFFSetField(tf, TIFFTAG_SUBFILETYPE, (uint32_t)FILETYPE_PAGE);
    ok &= TIFFSetField(tf, TIFFTAG_IMAGEWIDTH, (uint32_t)c->w);
    ok &= TIFFSetField(tf, TIFFTAG_IMAGELENGTH, (uint32_t)c->h);
    ok &= TIFFSetField(tf, TIFFTAG_BITSPERSAMPLE, 8);
    ok &= TIFFSetField(tf, TIFFTAG_SAMPLESPERPIXEL, 3);
    ok &= TIFFSetField(tf, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
    ok &= TIFFSetField(tf, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    ok &= TIFFSetField(tf, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT);
    ok &= TIFFSetField(tf, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    ok &= TIFFSetField(tf, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL);
    /* level 1: the fastest; with the predictor these pictures (mostly
     * black air and smooth gray) still shrink about threefold, and the
     * review must stay a small part of a study's time */
    ok &= TIFFSetField(tf, TIFFTAG_ZIPQUALITY, 1);
    ok &= TIFFSetField(tf, TIFFTAG_ROWSPERSTRIP, TIFFDefaultStripSize(tf, 0));
    if (px_per_cm > 0.0) {
        ok &= TIFFSetField(tf, TIFFTAG_XRESOLUTION, (float)px_per_cm);
        ok &= TIFFSetField(tf, TIFFTAG_YRESOLUTION, (float)px_per_cm);
        ok &= TIFFSetField(tf, TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
    } else {
        ok &= TIFFSetField(tf, TIFFTAG_XRESOLUTION, 72.0f);
        ok &= TIFFSetField(tf, TIFFTAG_YRESOLUTION, 72.0f);
        ok &= TIFFSetField(tf, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
    }
    ok &= TIFFSetField(tf, TIFFTAG_SOFTWARE, "hemoscan " PACKAGE_VERSION);
    ok &= TIFFSetField(tf, TIFFTAG_DATETIME, t->datetime);
    ok &= TIFFSetField(tf, TIFFTAG_PAGENUMBER, (uint16_t)page, (uint16_t)t->pages);
    ok &= TIFFSetField(tf, TIFFTAG_PAGENAME, name);
    ok &= TIFFSetField(tf, TIFFTAG_IMAGEDESCRIPTION, desc);
    if (!ok)
        return -1;
    for (int y = 0; y < c->h; y++) {
        if (TIFFWriteScanline(tf, c->px + (size_t)y * (size_t)c->w * 3, (uint32_t)y, 0) < 0)
            return -1;
    }
    return TIFFWriteDirectory(tf) ? 0 : -1;
}

/* ---- the review file ---------------------------------------------------------------- */

static int compare_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The slices that get a page: the key slice first, then the others in
 * slice order. Returns how many. */
static int choose_pages(const hs_series_result *res, int n, int key, double threshold,
                        const hs_review_options *opt, int *pages)
{
    int max = opt->max_pages < 1 ? 1 : (opt->max_pages > HS_REVIEW_MAX_PAGES ? HS_REVIEW_MAX_PAGES : opt->max_pages);
    char *taken = calloc((size_t)(n > 0 ? n : 1), 1);
    if (taken == NULL)
        return -1;
    int count = 0;
    if (key >= 0) {
        pages[count++] = key;
        taken[key] = 1;
        for (int d = 1; d <= opt->neighbours && count < max; d++) {
            for (int s = -1; s <= 1 && count < max; s += 2) {
                int k = key + s * d;
                if (k >= 0 && k < n && !taken[k]) {
                    pages[count++] = k;
                    taken[k] = 1;
                }
            }
        }
    }
    /* then the highest-scoring slices at or above the threshold */
    while (count < max) {
        int best = -1;
        for (int k = 0; k < n; k++) {
            float p = res->slice[k].probability;
            if (!taken[k] && !isnan(p) && p >= threshold && (best < 0 || p > res->slice[best].probability))
                best = k;
        }
        if (best < 0)
            break;
        pages[count++] = best;
        taken[best] = 1;
    }
    free(taken);
    int first = key >= 0 ? 1 : 0;
    qsort(pages + first, (size_t)(count - first), sizeof *pages, compare_int);
    return count;
}

/* The contact sheet of series se (thumbnails thumb, thumb_px square). */
static int draw_contact_sheet(canvas *c, const hs_series *se, const hs_series_result *res,
                              const unsigned char *thumb, int tp, int key, double threshold)
{
    int n = se->n_slices;
    int cols = (int)ceil(sqrt((double)n));
    cols = cols < 1 ? 1 : (cols > 16 ? 16 : cols);
    int rows = (n + cols - 1) / cols;
    const int scale = 2, pad = 6, label = 7 * scale + 4, header = 7 * scale + 2 * pad;
    int cell_w = tp + 2 * pad, cell_h = tp + 2 * pad + label;
    c->w = cols * cell_w;
    c->h = header + rows * cell_h;
    if (c->w < 60 * scale * 4)
        c->w = 60 * scale * 4;
    c->px = calloc((size_t)c->w * (size_t)c->h, 3);
    if (c->px == NULL)
        return -1;
    char text[160];
    snprintf(text, sizeof text, "%d SLICES  THRESHOLD %.3f  DECISION SUPPORT ONLY", n, threshold);
    draw_text(c, pad, pad, scale, text, WHITE);
    for (int k = 0; k < n; k++) {
        int x0 = (k % cols) * cell_w, y0 = header + (k / cols) * cell_h;
        const unsigned char *t = thumb + (size_t)k * (size_t)tp * (size_t)tp;
        for (int y = 0; y < tp; y++) {
            /* the cell lies inside the canvas by construction */
            unsigned char *dst = c->px + ((size_t)(y0 + pad + y) * (size_t)c->w + (size_t)(x0 + pad)) * 3;
            const unsigned char *src = t + (size_t)y * (size_t)tp;
            for (int x = 0; x < tp; x++)
                dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x];
        }
        float p = res->slice[k].probability;
        int above = !isnan(p) && p >= threshold;
        if (k == key)
            frame_rect(c, x0 + 1, y0 + 1, tp + 2 * pad - 2, tp + 2 * pad - 2, 4, YELLOW);
        else if (above)
            frame_rect(c, x0 + 3, y0 + 3, tp + 2 * pad - 6, tp + 2 * pad - 6, 2, ORANGE);
        char prob[16];
        format_prob(p, prob, sizeof prob);
        snprintf(text, sizeof text, "%d %s", k + 1, prob);
        draw_text(c, x0 + pad, y0 + tp + 2 * pad, scale, text, k == key ? YELLOW : above ? ORANGE : WHITE);
    }
    return 0;
}

/* Writes the whole TIFF to the open descriptor fd (closed here). */
/* The slice pages are made by `threads` workers, each with its own
 * reader and Grad-CAM workspace, in two rounds: decode and map every page
 * (the colour scale needs the study's largest map value), then draw every
 * page. libtiff then writes and compresses the pages in order. */
typedef struct {
    const hs_series *se;
    const hs_series_result *res;
    const hs_model *model;
    const int *pages;
    int key;
    double threshold;
    float **hus, **heats;
    canvas *canvases;
    hs_saliency **sal;      /* one per worker */
    hs_dicom_reader **reader; /* one per worker */
    double heat_max;        /* set between the rounds */
    hs_status *status;      /* per page */
    hs_error *errors;       /* per page */
} page_job;

static void map_page(void *ctx, int p, int thread)
{
    page_job *job = ctx;
    const hs_dicom_header *h = &job->se->slices[job->pages[p]].header;
    size_t n = (size_t)h->rows * (size_t)h->columns;
    job->hus[p] = malloc(n * sizeof *job->hus[p]);
    job->heats[p] = malloc(n * sizeof *job->heats[p]);
    if (job->hus[p] == NULL || job->heats[p] == NULL) {
        job->status[p] = hs_fail(&job->errors[p], HS_ERR_NOMEM, "review: out of memory for %dx%d pixels",
                                 h->columns, h->rows);
        return;
    }
    job->status[p] = hs_dicom_reader_read_hu(job->reader[thread], h->path, h, job->hus[p], &job->errors[p]);
    if (job->status[p] == HS_OK)
        job->status[p] = hs_saliency_slice(job->sal[thread], job->hus[p], h->columns, h->rows, job->heats[p],
                                           NULL, &job->errors[p]);
}

static void draw_page(void *ctx, int p, int thread)
{
    (void)thread;
    page_job *job = ctx;
    const hs_dicom_header *h = &job->se->slices[job->pages[p]].header;
    canvas *c = &job->canvases[p];
    c->w = h->columns;
    c->h = h->rows;
    c->px = malloc((size_t)c->w * (size_t)c->h * 3);
    if (c->px == NULL) {
        job->status[p] = hs_fail(&job->errors[p], HS_ERR_NOMEM, "review: out of memory for a %dx%d page",
                                 c->w, c->h);
        return;
    }
    draw_slice(c, job->hus[p], job->heats[p], job->heat_max);
    int scale = c->w >= 384 ? 2 : 1;
    float pr = job->res->slice[job->pages[p]].probability;
    char prob[16], text[96];
    format_prob(pr, prob, sizeof prob);
    int is_key = job->pages[p] == job->key;
    snprintf(text, sizeof text, "%sSLICE %d/%d  P %s", is_key ? "KEY " : "", job->pages[p] + 1,
             job->se->n_slices, prob);
    draw_text(c, 2 * scale, 2 * scale, scale, text,
              is_key ? YELLOW : (!isnan(pr) && pr >= job->threshold ? ORANGE : WHITE));
    draw_text(c, 2 * scale, 10 * scale, scale, "DECISION SUPPORT - NOT A DIAGNOSIS", WHITE);
    draw_legend(c, scale);
}

static hs_status write_tiff(int fd, const char *tmp, const hs_study_reading *r, const hs_model *model,
                            const hs_review_options *opt, const int *pages, int n_pages,
                            const unsigned char *thumb, int tp, hs_error *err)
{
    const hs_series_result *res = &r->result[r->decisive];
    const hs_series *se = &r->study.series[res->series_index];
    const int key = r->verdict.key_slice;
    const double threshold = model->threshold;
    tiff_out t = {0};
    t.pages = n_pages + 1;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(t.datetime, sizeof t.datetime, "%Y:%m:%d %H:%M:%S", &tm);
    t.tiff = TIFFFdOpen(fd, tmp, "w");
    if (t.tiff == NULL) {
        close(fd);
        return hs_fail(err, HS_ERR_IO, "%s: libtiff cannot start the file", tmp);
    }
    int threads = opt->threads < 1 ? 1 : opt->threads;
    if (threads > n_pages)
        threads = n_pages > 0 ? n_pages : 1;
    hs_status st = HS_OK;
    size_t np = (size_t)(n_pages > 0 ? n_pages : 1);
    page_job job = {se, res, model, pages, key, threshold, calloc(np, sizeof(float *)), calloc(np, sizeof(float *)),
                    calloc(np, sizeof(canvas)), calloc((size_t)threads, sizeof(hs_saliency *)),
                    calloc((size_t)threads, sizeof(hs_dicom_reader *)), 0.0, calloc(np, sizeof(hs_status)),
                    calloc(np, sizeof(hs_error))};
    hs_pool *pool = threads > 1 ? hs_pool_create(threads) : NULL;
    if (job.hus == NULL || job.heats == NULL || job.canvases == NULL || job.sal == NULL || job.reader == NULL ||
        job.status == NULL || job.errors == NULL || (threads > 1 && pool == NULL))
        st = hs_fail(err, HS_ERR_NOMEM, "review: out of memory");
    for (int k = 0; st == HS_OK && k < threads && n_pages > 0; k++) {
        job.reader[k] = hs_dicom_reader_new();
        if (job.reader[k] == NULL)
            st = hs_fail(err, HS_ERR_NOMEM, "review: out of memory");
        else
            st = hs_saliency_create(&job.sal[k], model, opt->layer, 1, err);
    }
    /* Round 1: decode and map; round 2: draw, on the study's scale. */
    for (int round = 0; round < 2 && st == HS_OK && n_pages > 0; round++) {
        hs_task_fn fn = round == 0 ? map_page : draw_page;
        if (pool != NULL)
            hs_pool_run(pool, n_pages, fn, &job);
        else
            for (int p = 0; p < n_pages; p++)
                fn(&job, p, 0);
        for (int p = 0; p < n_pages && st == HS_OK; p++) {
            if (job.status[p] != HS_OK) {
                st = job.status[p];
                if (err != NULL)
                    *err = job.errors[p];
            }
        }
        if (round == 0) {
            for (int p = 0; st == HS_OK && p < n_pages; p++) {
                const hs_dicom_header *h = &se->slices[pages[p]].header;
                size_t n = (size_t)h->rows * (size_t)h->columns;
                for (size_t i = 0; i < n; i++)
                    job.heat_max = job.heats[p][i] > job.heat_max ? job.heats[p][i] : job.heat_max;
            }
        }
    }
    int layer = -1, mh = 0, mw = 0;
    if (job.sal != NULL && job.sal[0] != NULL)
        hs_saliency_layer(job.sal[0], &layer, &mh, &mw);
    char name[64], desc[6144], prob[16];
    for (int p = 0; st == HS_OK && p < n_pages; p++) {
        const hs_slice *sl = &se->slices[pages[p]];
        const hs_dicom_header *h = &sl->header;
        float pr = res->slice[pages[p]].probability;
        format_prob(pr, prob, sizeof prob);
        snprintf(name, sizeof name, "slice %d of %d", pages[p] + 1, se->n_slices);
        char position[48] = "unknown", instance[16] = "none", frame[16] = "none";
        if (se->sort_method == HS_SORT_POSITION)
            snprintf(position, sizeof position, "%.2f mm along the normal", sl->position_along_normal);
        if (h->has_instance_number)
            snprintf(instance, sizeof instance, "%d", h->instance_number);
        if (h->frames > 1)
            snprintf(frame, sizeof frame, "%d", h->frame + 1);
        snprintf(desc, sizeof desc,
                 "hemoscan review, %sslice %d of %d; position %s; instance %s; file %s; frame %s; "
                 "SOPInstanceUID %s; probability %s; threshold %.4f; %s; Grad-CAM on layer %d (%dx%d), "
                 "brain window %g/%g HU; model sha256 %.16s; decision support, not a diagnosis",
                 pages[p] == key ? "key " : "", pages[p] + 1, se->n_slices, position, instance, h->path,
                 frame, h->sop_uid, prob, threshold,
                 !isnan(pr) && pr >= threshold ? "at or above the threshold" : "below the threshold", layer,
                 mh, mw, (double)HS_REVIEW_CENTER_HU, (double)HS_REVIEW_WIDTH_HU, model->sha256);
        double px_per_cm = h->has_pixel_spacing && h->pixel_spacing[1] > 0.0 ? 10.0 / h->pixel_spacing[1] : 0.0;
        if (tiff_page(&t, &job.canvases[p], p, name, desc, px_per_cm) != 0)
            st = hs_fail(err, HS_ERR_IO, "%s: cannot write page %d: %s", tmp, p + 1, strerror(errno));
    }
    canvas c = {0};
    if (st == HS_OK) {
        if (draw_contact_sheet(&c, se, res, thumb, tp, key, threshold) != 0)
            st = hs_fail(err, HS_ERR_NOMEM, "review: out of memory for the contact sheet");
    }
    if (st == HS_OK) {
        char vp[16];
        format_prob((float)r->verdict.probability, vp, sizeof vp);
        snprintf(desc, sizeof desc,
                 "hemoscan review, contact sheet: %d slices of series %s; verdict %s, probability %s, "
                 "threshold %.4f; key slice %d (yellow frame); orange: at or above the threshold; "
                 "model sha256 %.16s; decision support, not a diagnosis",
                 se->n_slices, se->series_uid, hs_verdict_name(r->verdict.verdict), vp, threshold, key + 1,
                 model->sha256);
        if (tiff_page(&t, &c, n_pages, "contact sheet", desc, 0.0) != 0)
            st = hs_fail(err, HS_ERR_IO, "%s: cannot write the contact sheet: %s", tmp, strerror(errno));
    }
    free(c.px);
    if (st == HS_OK && (!TIFFFlush(t.tiff) || fsync(fd) != 0))
        st = hs_fail(err, HS_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    TIFFClose(t.tiff); /* closes fd */
    for (int p = 0; p < n_pages; p++) {
        if (job.hus != NULL)
            free(job.hus[p]);
        if (job.heats != NULL)
            free(job.heats[p]);
        if (job.canvases != NULL)
            free(job.canvases[p].px);
    }
    for (int k = 0; k < threads; k++) {
        if (job.sal != NULL)
            hs_saliency_free(job.sal[k]);
        if (job.reader != NULL)
            hs_dicom_reader_free(job.reader[k]);
    }
    hs_pool_free(pool);
    free(job.hus);
    free(job.heats);
    free(job.canvases);
    free(job.sal);
    free(job.reader);
    free(job.status);
    free(job.errors);
    return st;
}

hs_status hs_review_write(const hs_study_reading *r, const hs_model *model, const char *dir,
                          const hs_review_options *opt, hs_review_file *out, hs_error *err)
{
    memset(out, 0, sizeof *out);
    hs_review_options def;
    if (opt == NULL) {
        hs_review_options_default(&def);
        opt = &def;
    }
    if (r->decisive < 0 || r->decisive >= r->n_results)
        return HS_OK; /* nothing was read: nothing to show */
    const hs_series_result *res = &r->result[r->decisive];
    const hs_series *se = &r->study.series[res->series_index];
    if (se->n_slices < 1)
        return HS_OK;

    /* Thumbnails: the reading's, else made here from every slice. */
    const unsigned char *thumb = res->thumb;
    int tp = res->thumb_px;
    unsigned char *made = NULL;
    if (thumb == NULL || tp < 1) {
        tp = HS_REVIEW_THUMB_PX;
        made = calloc((size_t)se->n_slices, (size_t)tp * (size_t)tp);
        hs_dicom_reader *reader = hs_dicom_reader_new();
        float *hu = NULL;
        if (made == NULL || reader == NULL) {
            free(made);
            hs_dicom_reader_free(reader);
            return hs_fail(err, HS_ERR_NOMEM, "review: out of memory for thumbnails");
        }
        for (int k = 0; k < se->n_slices; k++) {
            const hs_dicom_header *h = &se->slices[k].header;
            float *grown = realloc(hu, (size_t)h->rows * (size_t)h->columns * sizeof *hu);
            if (grown == NULL)
                break;
            hu = grown;
            hs_error ignored = {0};
            if (hs_dicom_reader_read_hu(reader, h->path, h, hu, &ignored) == HS_OK)
                hs_review_thumbnail(hu, h->columns, h->rows, tp, made + (size_t)k * (size_t)tp * (size_t)tp);
        }
        free(hu);
        hs_dicom_reader_free(reader);
        thumb = made;
    }

    int pages[HS_REVIEW_MAX_PAGES];
    int n_pages = choose_pages(res, se->n_slices, r->verdict.key_slice, model->threshold, opt, pages);
    if (n_pages < 0) {
        free(made);
        return hs_fail(err, HS_ERR_NOMEM, "review: out of memory");
    }

    /* The final name, from the study UID and the reading's start time. */
    char base[128], stamp[32];
    hs_safe_file_name(r->study.study_uid, "study", base, sizeof base);
    time_t started = (time_t)r->started;
    struct tm tm;
    gmtime_r(&started, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    char tmp[4352];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.%s_%s.tif.%ld.tmp", dir, base, stamp, (long)getpid()) >= sizeof tmp) {
        free(made);
        return hs_fail(err, HS_ERR_ARG, "%s: review folder path too long", dir);
    }
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        int e = errno;
        free(made);
        return hs_fail(err, HS_ERR_IO, "cannot write the review file in %s: %s", dir, strerror(e));
    }
    hs_status st = write_tiff(fd, tmp, r, model, opt, pages, n_pages, thumb, tp, err);
    free(made);
    if (st == HS_OK)
        st = hs_sha256_file(tmp, out->sha256, err);
    struct stat sb;
    if (st == HS_OK && stat(tmp, &sb) != 0)
        st = hs_fail(err, HS_ERR_IO, "%s: %s", tmp, strerror(errno));
    /* Into place without replacing anything: link() fails on an existing
     * name, so a second reading of the same study in the same second
     * takes the next suffix. */
    for (int k = 1; st == HS_OK; k++) {
        char suffix[16] = "";
        if (k > 1)
            snprintf(suffix, sizeof suffix, "_%d", k);
        snprintf(out->path, sizeof out->path, "%s/%s_%s%s.tif", dir, base, stamp, suffix);
        if (link(tmp, out->path) == 0)
            break;
        if (errno != EEXIST || k >= 1000) {
            st = hs_fail(err, HS_ERR_IO, "cannot create %s: %s", out->path, strerror(errno));
            break;
        }
    }
    unlink(tmp);
    if (st != HS_OK) {
        memset(out, 0, sizeof *out);
        return st;
    }
    out->bytes = (long long)sb.st_size;
    out->slice_pages = n_pages;
    out->pages = n_pages + 1;
    memcpy(out->slice, pages, (size_t)n_pages * sizeof *pages);
    return HS_OK;
}
