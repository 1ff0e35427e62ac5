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
 * - The TIFF is plain: 8-bit RGB slice pages and an 8-bit palette
 *   contact sheet, deflate, standard page tags. The pages are drawn and
 *   compressed by the study's threads at once (tiffout.h); writing them
 *   one after the other through libtiff cost more than the rest of the
 *   review together. */
#include "hemoscan/review.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/checksum.h"
#include "hemoscan/cnn.h"
#include "hemoscan/dicom.h"
#include "hemoscan/dicom_sc.h"
#include "hemoscan/fileio.h"
#include "hemoscan/parallel.h"
#include "hemoscan/path.h"
#include "hemoscan/render.h"
#include "hemoscan/tiffout.h"
#include "hemoscan/verdict.h"

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
    opt->secondary_capture = 0;
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
    /* at most 3 x 3 evenly spread samples per thumbnail pixel: this runs
     * on every slice of a reviewed study, in the scoring pass, and a
     * thumbnail needs no more. The sample columns of each thumbnail column
     * are found once. */
    int *sample_x = malloc((size_t)cw * 3 * sizeof *sample_x);
    if (sample_x == NULL)
        return; /* a black thumbnail */
    for (int tx = 0; tx < cw; tx++) {
        int x0 = (int)((long)tx * width / cw), x1 = (int)((long)(tx + 1) * width / cw);
        x1 = x1 > x0 ? x1 : x0 + 1;
        int sx = (x1 - x0 + 2) / 3, k = 0;
        for (int x = x0; x < x1 && k < 3; x += sx)
            sample_x[3 * tx + k++] = x;
        for (int j = k; j < 3; j++)
            sample_x[3 * tx + j] = -1;
    }
    for (int ty = 0; ty < ch; ty++) {
        int y0 = (int)((long)ty * height / ch), y1 = (int)((long)(ty + 1) * height / ch);
        y1 = y1 > y0 ? y1 : y0 + 1;
        int sy = (y1 - y0 + 2) / 3;
        unsigned char *dst = out + (size_t)(ty + oy) * (size_t)size + (size_t)ox;
        for (int tx = 0; tx < cw; tx++) {
            const int *xs = sample_x + 3 * tx;
            double sum = 0.0;
            int count = 0;
            for (int y = y0; y < y1; y += sy) {
                const float *row = hu + (size_t)y * (size_t)width;
                for (int k = 0; k < 3 && xs[k] >= 0; k++) {
                    sum += brain_window(row[xs[k]]);
                    count++;
                }
            }
            dst[tx] = to_byte(sum / count);
        }
    }
    free(sample_x);
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
        prob += 1.0 / (1.0 + exp(-(double)logit));
    }
    if (probability != NULL)
        *probability = (float)(prob / model->n_members); /* sum, then divide: never above 1 */

    /* Each picture pixel inside the crop box: to input coordinates, to map
     * coordinates (receptive-field centres), bilinear, edges extended. The
     * mapping is separable, so each column and each row is placed once. */
    memset(heat, 0, (size_t)width * (size_t)height * sizeof *heat);
    int *cell_u = malloc((size_t)geo.crop_w * sizeof *cell_u), *cell_v = malloc((size_t)geo.crop_h * sizeof *cell_v);
    float *frac_u = malloc((size_t)geo.crop_w * sizeof *frac_u), *frac_v = malloc((size_t)geo.crop_h * sizeof *frac_v);
    if (cell_u == NULL || cell_v == NULL || frac_u == NULL || frac_v == NULL) {
        free(cell_u);
        free(cell_v);
        free(frac_u);
        free(frac_v);
        return hs_fail(err, HS_ERR_NOMEM, "review: out of memory");
    }
    for (int i = 0; i < geo.crop_w || i < geo.crop_h; i++) {
        double ix, iy;
        hs_picture_to_input(&geo, geo.crop_x + i, geo.crop_y + i, &ix, &iy);
        double u = (ix - s->offset) / s->stride, v = (iy - s->offset) / s->stride;
        u = u < 0.0 ? 0.0 : (u > s->map_w - 1 ? s->map_w - 1 : u);
        v = v < 0.0 ? 0.0 : (v > s->map_h - 1 ? s->map_h - 1 : v);
        if (i < geo.crop_w) {
            cell_u[i] = (int)u;
            frac_u[i] = (float)(u - cell_u[i]);
        }
        if (i < geo.crop_h) {
            cell_v[i] = (int)v;
            frac_v[i] = (float)(v - cell_v[i]);
        }
    }
    for (int j = 0; j < geo.crop_h; j++) {
        int v0 = cell_v[j], v1 = v0 + 1 < s->map_h ? v0 + 1 : v0;
        const float *m0 = s->sum + (size_t)v0 * (size_t)s->map_w, *m1 = s->sum + (size_t)v1 * (size_t)s->map_w;
        const float fv = frac_v[j];
        const size_t row = (size_t)(geo.crop_y + j) * (size_t)width + (size_t)geo.crop_x;
        for (int i = 0; i < geo.crop_w; i++) {
            /* air inside the crop box (its corners) shows no colour */
            if (!(hu[row + (size_t)i] > HS_REVIEW_AIR_HU))
                continue;
            int u0 = cell_u[i], u1 = u0 + 1 < s->map_w ? u0 + 1 : u0;
            float fu = frac_u[i];
            float a = m0[u0] * (1.0f - fu) + m0[u1] * fu;
            float b = m1[u0] * (1.0f - fu) + m1[u1] * fu;
            heat[row + (size_t)i] = a * (1.0f - fv) + b * fv;
        }
    }
    free(cell_u);
    free(cell_v);
    free(frac_u);
    free(frac_v);
    return HS_OK;
}

/* ---- drawing ------------------------------------------------------------------- */

/* A page being drawn: RGB (the slice pages) or indices into the
 * contact sheet's colour map (the contact sheet is gray thumbnails with a
 * few coloured frames and labels; one byte a pixel instead of three makes
 * it a third of the work to compress). */
typedef struct {
    int w, h;
    hs_tiff_kind kind;
    unsigned char *px;
} canvas;

/* A colour as an RGB page and as the contact sheet's colour map hold it. */
typedef struct {
    unsigned char rgb[3];
    unsigned char index;
} colour;

/* The contact sheet's colour map: SHEET_GRAYS gray levels from black to
 * white, then the two frame colours. */
#define SHEET_GRAYS 254
#define SHEET_YELLOW 254
#define SHEET_ORANGE 255

static const colour BLACK = {{0, 0, 0}, 0};
static const colour WHITE = {{255, 255, 255}, SHEET_GRAYS - 1};
static const colour YELLOW = {{253, 231, 37}, SHEET_YELLOW}; /* the key slice: viridis' top */
static const colour ORANGE = {{249, 142, 9}, SHEET_ORANGE};  /* at or above the threshold */

static void sheet_colormap(uint16_t map[768])
{
    for (int i = 0; i < SHEET_GRAYS; i++) {
        uint16_t v = (uint16_t)(((i * 255 + (SHEET_GRAYS - 1) / 2) / (SHEET_GRAYS - 1)) * 257);
        map[i] = map[256 + i] = map[512 + i] = v;
    }
    const colour *extra[2] = {&YELLOW, &ORANGE};
    for (int k = 0; k < 2; k++)
        for (int ch = 0; ch < 3; ch++)
            map[256 * ch + extra[k]->index] = (uint16_t)(extra[k]->rgb[ch] * 257);
}

static void put(canvas *c, int x, int y, const colour *col)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return;
    size_t at = (size_t)y * (size_t)c->w + (size_t)x;
    if (c->kind == HS_TIFF_RGB)
        memcpy(c->px + at * 3, col->rgb, 3);
    else
        c->px[at] = col->index;
}

static void fill_rect(canvas *c, int x0, int y0, int w, int h, const colour *col)
{
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w; x++)
            put(c, x, y, col);
}

static void frame_rect(canvas *c, int x0, int y0, int w, int h, int t, const colour *col)
{
    fill_rect(c, x0, y0, w, t, col);
    fill_rect(c, x0, y0 + h - t, w, t, col);
    fill_rect(c, x0, y0, t, h, col);
    fill_rect(c, x0 + w - t, y0, t, h, col);
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
static void draw_text(canvas *c, int x, int y, int scale, const char *text, const colour *col)
{
    fill_rect(c, x - scale, y - scale, text_width(text, scale) + 2 * scale, 7 * scale, &BLACK);
    for (int i = 0; text[i] != '\0'; i++) {
        const char *g = glyph(text[i]);
        if (g == NULL)
            continue;
        for (int r = 0; r < 5; r++)
            for (int k = 0; k < 3; k++)
                if (g[r * 3 + k] == '1')
                    fill_rect(c, x + (4 * i + k) * scale, y + r * scale, scale, scale, col);
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
    fill_rect(c, x0 - scale, y0 - scale, bw + 2 * scale, bh + 2 * scale, &BLACK);
    for (int x = 0; x < bw; x++) {
        colour col = {{0, 0, 0}, 0};
        colour_map((double)x / (bw > 1 ? bw - 1 : 1), col.rgb);
        fill_rect(c, x0 + x, y0, 1, bh, &col);
    }
    draw_text(c, x0, y0 + bh + 2 * scale, scale, "0", &WHITE);
    draw_text(c, x0 + bw - text_width("MAX", scale), y0 + bh + 2 * scale, scale, "MAX", &WHITE);
}

/* "0.873", or "--" for a slice that was not scored. */
static void format_prob(float p, char *buf, size_t len)
{
    if (isnan(p))
        snprintf(buf, len, "--");
    else
        snprintf(buf, len, "%.3f", (double)p);
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

/* The contact sheet of series se (thumbnails thumb, tp pixels square), on
 * the sheet's colour map. */
static int draw_contact_sheet(canvas *c, const hs_series *se, const hs_series_result *res,
                              const unsigned char *thumb, int tp, int key, double threshold)
{
    int n = se->n_slices;
    int cols = (int)ceil(sqrt((double)n));
    cols = cols < 1 ? 1 : (cols > 16 ? 16 : cols);
    int rows = (n + cols - 1) / cols;
    const int scale = 2, pad = 6, label = 7 * scale + 4, header = 7 * scale + 2 * pad;
    int cell_w = tp + 2 * pad, cell_h = tp + 2 * pad + label;
    c->kind = HS_TIFF_PALETTE;
    c->w = cols * cell_w;
    c->h = header + rows * cell_h;
    if (c->w < 60 * scale * 4)
        c->w = 60 * scale * 4;
    c->px = calloc((size_t)c->w * (size_t)c->h, 1);
    if (c->px == NULL)
        return -1;
    unsigned char gray_index[256];
    for (int g = 0; g < 256; g++)
        gray_index[g] = (unsigned char)((g * (SHEET_GRAYS - 1) + 127) / 255);
    char text[160];
    snprintf(text, sizeof text, "%d SLICES  THRESHOLD %.3f  DECISION SUPPORT ONLY", n, threshold);
    draw_text(c, pad, pad, scale, text, &WHITE);
    for (int k = 0; k < n; k++) {
        int x0 = (k % cols) * cell_w, y0 = header + (k / cols) * cell_h;
        const unsigned char *t = thumb + (size_t)k * (size_t)tp * (size_t)tp;
        for (int y = 0; y < tp; y++) {
            /* the cell lies inside the canvas by construction */
            unsigned char *dst = c->px + (size_t)(y0 + pad + y) * (size_t)c->w + (size_t)(x0 + pad);
            const unsigned char *src = t + (size_t)y * (size_t)tp;
            for (int x = 0; x < tp; x++)
                dst[x] = gray_index[src[x]];
        }
        float p = res->slice[k].probability;
        int above = !isnan(p) && p >= threshold;
        if (k == key)
            frame_rect(c, x0 + 1, y0 + 1, tp + 2 * pad - 2, tp + 2 * pad - 2, 4, &YELLOW);
        else if (above)
            frame_rect(c, x0 + 3, y0 + 3, tp + 2 * pad - 6, tp + 2 * pad - 6, 2, &ORANGE);
        char prob[16];
        format_prob(p, prob, sizeof prob);
        snprintf(text, sizeof text, "%d %s", k + 1, prob);
        draw_text(c, x0 + pad, y0 + tp + 2 * pad, scale, text, k == key ? &YELLOW : above ? &ORANGE : &WHITE);
    }
    return 0;
}

/* Making the pages. The work comes in items shared out to `threads`
 * workers as they become free (the items differ in size, so fixed shares
 * would leave one worker idle), in two rounds:
 *   round 0: item 0 draws the contact sheet and compresses it; item p + 1
 *            decodes slice page p again and computes its Grad-CAM map,
 *            with the worker's own reader and saliency workspace;
 *   round 1: item p draws slice page p on the study's colour scale (the
 *            largest map value of all pages, known only after round 0)
 *            and compresses it.
 * The writing thread then hands the compressed pages to libtiff in order:
 * the slice pages, then the contact sheet. */
typedef struct {
    const hs_series *se;
    const hs_series_result *res;
    const int *pages;
    int n_pages;
    int key;
    double threshold;
    const unsigned char *thumb;
    int tp;
    uint16_t *sheet_map;
    float **hus, **heats;
    canvas *canvases;         /* n_pages + 1: the slice pages, then the contact sheet */
    hs_tiff_strips *strips;   /* the same, compressed */
    hs_saliency **sal;        /* one per worker */
    hs_dicom_reader **reader; /* one per worker */
    double heat_max;          /* set between the rounds */
    int round;
    atomic_int next;          /* the next item of this round */
    hs_status *status;        /* per canvas */
    hs_error *errors;         /* per canvas */
} page_job;

static hs_tiff_image canvas_image(const page_job *job, int p)
{
    const canvas *c = &job->canvases[p];
    hs_tiff_image im = {c->kind, c->w, c->h, c->px, c->kind == HS_TIFF_PALETTE ? job->sheet_map : NULL};
    return im;
}

static void make_sheet(page_job *job)
{
    const int p = job->n_pages;
    if (draw_contact_sheet(&job->canvases[p], job->se, job->res, job->thumb, job->tp, job->key,
                           job->threshold) != 0) {
        job->status[p] = hs_fail(&job->errors[p], HS_ERR_NOMEM, "review: out of memory for the contact sheet");
        return;
    }
    hs_tiff_image im = canvas_image(job, p);
    job->status[p] = hs_tiff_encode(&im, &job->strips[p], &job->errors[p]);
}

static void map_page(page_job *job, int p, int thread)
{
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

static void make_page(page_job *job, int p)
{
    const hs_dicom_header *h = &job->se->slices[job->pages[p]].header;
    canvas *c = &job->canvases[p];
    c->kind = HS_TIFF_RGB;
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
              is_key ? &YELLOW : (!isnan(pr) && pr >= job->threshold ? &ORANGE : &WHITE));
    draw_text(c, 2 * scale, 10 * scale, scale, "DECISION SUPPORT - NOT A DIAGNOSIS", &WHITE);
    draw_legend(c, scale);
    hs_tiff_image im = canvas_image(job, p);
    job->status[p] = hs_tiff_encode(&im, &job->strips[p], &job->errors[p]);
}

static void page_worker(void *ctx, int task, int thread)
{
    (void)task;
    page_job *job = ctx;
    for (;;) {
        int item = atomic_fetch_add(&job->next, 1);
        if (job->round == 0 && item <= job->n_pages) {
            if (item == 0)
                make_sheet(job);
            else
                map_page(job, item - 1, thread);
        } else if (job->round == 1 && item < job->n_pages) {
            make_page(job, item);
        } else {
            return;
        }
    }
}

/* The ImageDescription of slice page p. */
static void describe_page(const page_job *job, const hs_model *model, int p, char *desc, size_t len)
{
    const hs_slice *sl = &job->se->slices[job->pages[p]];
    const hs_dicom_header *h = &sl->header;
    float pr = job->res->slice[job->pages[p]].probability;
    char prob[16];
    format_prob(pr, prob, sizeof prob);
    char position[48] = "unknown", instance[16] = "none", frame[16] = "none";
    if (job->se->sort_method == HS_SORT_POSITION)
        snprintf(position, sizeof position, "%.2f mm along the normal", sl->position_along_normal);
    if (h->has_instance_number)
        snprintf(instance, sizeof instance, "%d", h->instance_number);
    if (h->frames > 1)
        snprintf(frame, sizeof frame, "%d", h->frame + 1);
    int layer = -1, mh = 0, mw = 0;
    hs_saliency_layer(job->sal[0], &layer, &mh, &mw);
    snprintf(desc, len,
             "hemoscan review, %sslice %d of %d; position %s; instance %s; file %s; frame %s; "
             "SOPInstanceUID %s; probability %s; threshold %.4f; %s; Grad-CAM on layer %d (%dx%d), "
             "brain window %g/%g HU; model sha256 %.16s; decision support, not a diagnosis",
             job->pages[p] == job->key ? "key " : "", job->pages[p] + 1, job->se->n_slices, position, instance,
             h->path, frame, h->sop_uid, prob, job->threshold,
             !isnan(pr) && pr >= job->threshold ? "at or above the threshold" : "below the threshold", layer, mh,
             mw, (double)HS_REVIEW_CENTER_HU, (double)HS_REVIEW_WIDTH_HU, model->sha256);
}

/* What follows a negative verdict's name wherever a picture names it
 * (verdict.h); "" for the others. */
static const char *negative_caveat(const hs_study_reading *r)
{
    return r->verdict.verdict == HS_VERDICT_NO_HEMORRHAGE ? " (" HS_VERDICT_NEGATIVE_CAVEAT ")" : "";
}

/* The ImageDescription of the contact sheet. */
static void describe_sheet(const page_job *job, const hs_study_reading *r, const hs_model *model, char *desc,
                           size_t len)
{
    char vp[16];
    format_prob((float)r->verdict.probability, vp, sizeof vp);
    snprintf(desc, len,
             "hemoscan review, contact sheet: %d slices of series %s; verdict %s%s, probability %s, "
             "threshold %.4f; key slice %d (yellow frame); orange: at or above the threshold; "
             "model sha256 %.16s; decision support, not a diagnosis",
             job->se->n_slices, job->se->series_uid, hs_verdict_name(r->verdict.verdict), negative_caveat(r), vp,
             job->threshold, job->key + 1, model->sha256);
}

/* Runs both rounds of job on pool's threads workers (pool NULL: here),
 * and between them finds the largest map value of all pages. The first
 * failed item's status and error are returned. */
static hs_status render_pages(page_job *job, hs_pool *pool, int threads, hs_error *err)
{
    hs_status st = HS_OK;
    for (int round = 0; round < 2 && st == HS_OK; round++) {
        job->round = round;
        atomic_store(&job->next, 0);
        if (pool != NULL)
            hs_pool_run(pool, threads, page_worker, job);
        else
            page_worker(job, 0, 0);
        int items = round == 0 ? job->n_pages + 1 : job->n_pages;
        for (int p = 0; p < items && st == HS_OK; p++) {
            if (job->status[p] != HS_OK) {
                st = job->status[p];
                if (err != NULL)
                    *err = job->errors[p];
            }
        }
        for (int p = 0; round == 0 && st == HS_OK && p < job->n_pages; p++) {
            const hs_dicom_header *h = &job->se->slices[job->pages[p]].header;
            size_t n = (size_t)h->rows * (size_t)h->columns;
            for (size_t i = 0; i < n; i++)
                job->heat_max = job->heats[p][i] > job->heat_max ? job->heats[p][i] : job->heat_max;
        }
    }
    return st;
}

/* Hands the compressed pages of job to w in order, each with its name
 * and description: the slice pages, then the contact sheet. */
static hs_status write_pages(hs_tiff_writer *w, const page_job *job, const hs_study_reading *r,
                             const hs_model *model, hs_error *err)
{
    hs_status st = HS_OK;
    char name[64], desc[6144];
    for (int p = 0; st == HS_OK && p <= job->n_pages; p++) {
        hs_tiff_page_info info = {name, desc, 0.0};
        if (p < job->n_pages) {
            const hs_dicom_header *h = &job->se->slices[job->pages[p]].header;
            snprintf(name, sizeof name, "slice %d of %d", job->pages[p] + 1, job->se->n_slices);
            describe_page(job, model, p, desc, sizeof desc);
            info.px_per_cm = h->has_pixel_spacing && h->pixel_spacing[1] > 0.0 ? 10.0 / h->pixel_spacing[1] : 0.0;
        } else {
            snprintf(name, sizeof name, "contact sheet");
            describe_sheet(job, r, model, desc, sizeof desc);
        }
        hs_tiff_image im = canvas_image(job, p);
        st = hs_tiff_write_page(w, &im, &job->strips[p], &info, err);
    }
    return st;
}

/* Frees what write_tiff allocated in job for threads workers; any of it
 * may be missing. */
static void page_job_free(page_job *job, int threads)
{
    const size_t nc = (size_t)job->n_pages + 1;
    for (size_t p = 0; p < nc; p++) {
        if (job->hus != NULL && p < (size_t)job->n_pages)
            free(job->hus[p]);
        if (job->heats != NULL && p < (size_t)job->n_pages)
            free(job->heats[p]);
        if (job->canvases != NULL)
            free(job->canvases[p].px);
        if (job->strips != NULL)
            hs_tiff_strips_free(&job->strips[p]);
    }
    for (int k = 0; k < threads; k++) {
        if (job->sal != NULL)
            hs_saliency_free(job->sal[k]);
        if (job->reader != NULL)
            hs_dicom_reader_free(job->reader[k]);
    }
    free(job->sheet_map);
    free(job->hus);
    free(job->heats);
    free(job->canvases);
    free(job->strips);
    free(job->sal);
    free(job->reader);
    free(job->status);
    free(job->errors);
}

/* Writes the whole TIFF to the open descriptor fd (closed here). With
 * key_rgb, the key slice's page (when it has one) is handed over there
 * (the caller frees it), else *key_rgb is NULL. */
static hs_status write_tiff(int fd, const char *tmp, const hs_study_reading *r, const hs_model *model,
                            const hs_review_options *opt, const int *pages, int n_pages,
                            const unsigned char *thumb, int tp, unsigned char **key_rgb,
                            char saliency[HS_REVIEW_SALIENCY_LEN], hs_error *err)
{
    if (key_rgb != NULL)
        *key_rgb = NULL;
    const hs_series_result *res = &r->result[r->decisive];
    const hs_series *se = &r->study.series[res->series_index];
    hs_tiff_writer *w = NULL;
    hs_status st = hs_tiff_writer_open(fd, tmp, n_pages + 1, "hemoscan " PACKAGE_VERSION, &w, err);
    if (st != HS_OK)
        return st;
    int threads = opt->threads < 1 ? 1 : opt->threads;
    if (threads > n_pages + 1)
        threads = n_pages + 1;
    const size_t nc = (size_t)n_pages + 1;
    const size_t np = (size_t)(n_pages > 0 ? n_pages : 1);
    page_job job = {.se = se,
                    .res = res,
                    .pages = pages,
                    .n_pages = n_pages,
                    .key = r->verdict.key_slice,
                    .threshold = model->threshold,
                    .thumb = thumb,
                    .tp = tp,
                    .sheet_map = calloc(768, sizeof(uint16_t)),
                    .hus = calloc(np, sizeof(float *)),
                    .heats = calloc(np, sizeof(float *)),
                    .canvases = calloc(nc, sizeof(canvas)),
                    .strips = calloc(nc, sizeof(hs_tiff_strips)),
                    .sal = calloc((size_t)threads, sizeof(hs_saliency *)),
                    .reader = calloc((size_t)threads, sizeof(hs_dicom_reader *)),
                    .status = calloc(nc, sizeof(hs_status)),
                    .errors = calloc(nc, sizeof(hs_error))};
    hs_pool *pool = threads > 1 ? hs_pool_create(threads) : NULL;
    if (job.sheet_map == NULL || job.hus == NULL || job.heats == NULL || job.canvases == NULL ||
        job.strips == NULL || job.sal == NULL || job.reader == NULL || job.status == NULL || job.errors == NULL ||
        (threads > 1 && pool == NULL))
        st = hs_fail(err, HS_ERR_NOMEM, "review: out of memory");
    else
        sheet_colormap(job.sheet_map);
    /* every worker gets a saliency workspace: describe_page reads the
     * first one's layer even when there is no slice page */
    for (int k = 0; st == HS_OK && k < threads; k++) {
        job.reader[k] = hs_dicom_reader_new();
        if (job.reader[k] == NULL)
            st = hs_fail(err, HS_ERR_NOMEM, "review: out of memory");
        else
            st = hs_saliency_create(&job.sal[k], model, opt->layer, 1, err);
    }
    if (st == HS_OK)
        st = render_pages(&job, pool, threads, err);
    if (st == HS_OK)
        st = write_pages(w, &job, r, model, err);
    hs_status closed = hs_tiff_writer_close(w, st == HS_OK, err);
    if (st == HS_OK)
        st = closed;
    if (st == HS_OK && key_rgb != NULL && n_pages > 0 && pages[0] == job.key) {
        *key_rgb = job.canvases[0].px;
        job.canvases[0].px = NULL;
    }
    if (st == HS_OK) {
        int layer = -1, mh = 0, mw = 0;
        hs_saliency_layer(job.sal[0], &layer, &mh, &mw);
        snprintf(saliency, HS_REVIEW_SALIENCY_LEN, "grad-cam layer %d (%dx%d)", layer, mh, mw);
    }
    hs_pool_free(pool);
    page_job_free(&job, threads);
    return st;
}

/* The key slice's page (rgb) as a DICOM Secondary Capture, written to
 * tmp and synced; fills out's dicom_sha256, dicom_bytes and UIDs. */
static hs_status write_capture(const hs_study_reading *r, const hs_model *model, const unsigned char *rgb,
                               const char *tmp, hs_review_file *out, hs_error *err)
{
    const hs_series_result *res = &r->result[r->decisive];
    const hs_series *se = &r->study.series[res->series_index];
    const int key = r->verdict.key_slice;
    const hs_dicom_header *h = &se->slices[key].header;
    char prob[16], derivation[1024], comments[1024];
    format_prob(res->slice[key].probability, prob, sizeof prob);
    snprintf(derivation, sizeof derivation,
             "hemoscan %s review: the slice in the brain window %g/%g HU with the Grad-CAM heatmap of the "
             "model's score on its last convolution blended in; model sha256 %.16s",
             PACKAGE_VERSION, (double)HS_REVIEW_CENTER_HU, (double)HS_REVIEW_WIDTH_HU, model->sha256);
    snprintf(comments, sizeof comments,
             "NOT FOR DIAGNOSTIC USE. hemoscan review, key slice %d of %d, probability %s, threshold %.4f, "
             "verdict %s%s. Decision support, not a diagnosis: a radiologist reads the original images.",
             key + 1, se->n_slices, prob, model->threshold, hs_verdict_name(r->verdict.verdict),
             negative_caveat(r));
    hs_sc_request req = {rgb,
                         h->columns,
                         h->rows,
                         h->path,
                         h->sop_class_uid,
                         h->sop_uid,
                         h->frames > 1 ? h->frame + 1 : 0,
                         HS_REVIEW_DICOM_SERIES_NUMBER,
                         "hemoscan review - NOT FOR DIAGNOSTIC USE",
                         derivation,
                         comments,
                         "hemoscan " PACKAGE_VERSION};
    hs_sc_written uids;
    hs_status st = hs_dicom_write_secondary_capture(&req, tmp, &uids, err);
    if (st != HS_OK)
        return st;
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        st = hs_fail(err, HS_ERR_IO, "%s: cannot sync: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return st;
    }
    close(fd);
    st = hs_sha256_file(tmp, out->dicom_sha256, err);
    struct stat sb;
    if (st == HS_OK && stat(tmp, &sb) != 0)
        st = hs_fail(err, HS_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (st != HS_OK)
        return st;
    out->dicom_bytes = (long long)sb.st_size;
    snprintf(out->dicom_study_uid, sizeof out->dicom_study_uid, "%s", uids.study_uid);
    snprintf(out->dicom_series_uid, sizeof out->dicom_series_uid, "%s", uids.series_uid);
    snprintf(out->dicom_sop_uid, sizeof out->dicom_sop_uid, "%s", uids.sop_uid);
    return HS_OK;
}

/* Thumbnails of every slice of se, tp x tp bytes each, for the contact
 * sheet of a reading that kept none. A slice that cannot be read stays
 * black. NULL (err set) when out of memory. */
static unsigned char *make_thumbnails(const hs_series *se, int tp, hs_error *err)
{
    unsigned char *made = calloc((size_t)se->n_slices, (size_t)tp * (size_t)tp);
    hs_dicom_reader *reader = hs_dicom_reader_new();
    float *hu = NULL;
    if (made == NULL || reader == NULL) {
        free(made);
        hs_dicom_reader_free(reader);
        hs_fail(err, HS_ERR_NOMEM, "review: out of memory for thumbnails");
        return NULL;
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
    return made;
}

/* Links the review file tmp, and the capture dtmp unless it is "", into
 * dir as BASE_STAMP.tif and BASE_STAMP.dcm, filling out->path and
 * out->dicom_path. Nothing is replaced:
 *   - link() fails on an existing name, so a second reading of the same
 *     study in the same second takes the next suffix (BASE_STAMP_2);
 *   - when the capture's name is taken, both move on to the next suffix.
 * The temporary names stay for the caller to remove. */
static hs_status link_into_place(const char *tmp, const char *dtmp, const char *dir, const char *base,
                                 const char *stamp, hs_review_file *out, hs_error *err)
{
    hs_status st = HS_OK;
    for (int k = 1; st == HS_OK; k++) {
        char suffix[16] = "";
        if (k > 1)
            snprintf(suffix, sizeof suffix, "_%d", k);
        /* shorter than tmp (by ".", the PID and ".tmp"), so it fits */
        st = hs_path_printf(out->path, sizeof out->path, err, "%s/%s_%s%s.tif", dir, base, stamp, suffix);
        if (st != HS_OK)
            break;
        int e = 0;
        const char *failed = out->path;
        if (link(tmp, out->path) != 0) {
            e = errno;
        } else if (dtmp[0] != '\0') {
            st = hs_path_printf(out->dicom_path, sizeof out->dicom_path, err, "%s/%s_%s%s.dcm", dir, base,
                                stamp, suffix);
            if (st != HS_OK) {
                unlink(out->path);
                break;
            }
            if (link(dtmp, out->dicom_path) != 0) {
                e = errno;
                failed = out->dicom_path;
                unlink(out->path);
            }
        }
        if (e == 0)
            break;
        if (e != EEXIST || k >= 1000) {
            st = hs_fail(err, HS_ERR_IO, "cannot create %s: %s", failed, strerror(e));
            break;
        }
    }
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
        made = make_thumbnails(se, tp, err);
        if (made == NULL)
            return HS_ERR_NOMEM;
        thumb = made;
    }

    int pages[HS_REVIEW_MAX_PAGES];
    int n_pages = choose_pages(res, se->n_slices, r->verdict.key_slice, model->threshold, opt, pages);
    if (n_pages < 0) {
        free(made);
        return hs_fail(err, HS_ERR_NOMEM, "review: out of memory");
    }

    /* The final name, from the study UID and the reading's start time. */
    char base[HS_UID_KEY_MAX], stamp[32]; /* a whole study UID key (dicom.h) */
    hs_safe_file_name(r->study.study_uid, "study", base, sizeof base);
    time_t started = (time_t)r->started;
    struct tm tm;
    gmtime_r(&started, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    char tmp[HS_PATH_MAX];
    if (hs_path_printf(tmp, sizeof tmp, err, "%s/.%s_%s.tif.%ld.tmp", dir, base, stamp, (long)getpid()) != HS_OK) {
        free(made);
        return HS_ERR_ARG;
    }
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        int e = errno;
        free(made);
        return hs_fail(err, HS_ERR_IO, "cannot write the review file in %s: %s", dir, strerror(e));
    }
    unsigned char *key_rgb = NULL;
    hs_status st = write_tiff(fd, tmp, r, model, opt, pages, n_pages, thumb, tp,
                              opt->secondary_capture ? &key_rgb : NULL, out->saliency, err);
    free(made);
    if (st == HS_OK)
        st = hs_sha256_file(tmp, out->sha256, err);
    struct stat sb;
    if (st == HS_OK && stat(tmp, &sb) != 0)
        st = hs_fail(err, HS_ERR_IO, "%s: %s", tmp, strerror(errno));
    char dtmp[HS_PATH_MAX] = "";
    if (st == HS_OK && key_rgb != NULL) {
        /* as long as tmp, so it fits; checked all the same */
        st = hs_path_printf(dtmp, sizeof dtmp, err, "%s/.%s_%s.dcm.%ld.tmp", dir, base, stamp, (long)getpid());
        if (st == HS_OK)
            st = write_capture(r, model, key_rgb, dtmp, out, err);
    }
    free(key_rgb);
    if (st == HS_OK)
        st = link_into_place(tmp, dtmp, dir, base, stamp, out, err);
    unlink(tmp);
    if (dtmp[0] != '\0')
        unlink(dtmp);
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

/* A temporary name of ours: "." ... ".tif." or ".dcm." PID ".tmp"; *pid
 * receives PID (at most 9 digits, so it fits a pid_t). */
static int temp_name_pid(const char *name, long *pid)
{
    size_t n = strlen(name);
    if (name[0] != '.' || n < 11 || strcmp(name + n - 4, ".tmp") != 0)
        return 0;
    size_t first = n - 4; /* of the PID's digits */
    while (first > 0 && name[first - 1] >= '0' && name[first - 1] <= '9')
        first--;
    size_t digits = n - 4 - first;
    if (digits < 1 || digits > 9 || first < 6 ||
        (strncmp(name + first - 5, ".tif.", 5) != 0 && strncmp(name + first - 5, ".dcm.", 5) != 0))
        return 0;
    *pid = strtol(name + first, NULL, 10);
    return *pid > 0;
}

hs_status hs_review_remove_stale(const char *dir, int *removed, hs_error *err)
{
    *removed = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return HS_OK;
        return hs_fail(err, HS_ERR_IO, "%s: %s", dir, strerror(errno));
    }
    hs_status st = HS_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = 0;
        if (!temp_name_pid(e->d_name, &pid))
            continue;
        /* a writer that still runs keeps its file */
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[HS_PATH_MAX];
        hs_status named = hs_path_join(path, sizeof path, dir, e->d_name, st == HS_OK ? err : NULL);
        if (named != HS_OK) { /* a path too long to name cannot be removed */
            if (st == HS_OK)
                st = named;
            continue;
        }
        if (unlink(path) == 0)
            (*removed)++;
        else if (errno != ENOENT && st == HS_OK)
            st = hs_fail(err, HS_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    }
    closedir(d);
    return st;
}
