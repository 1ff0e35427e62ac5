/* cnn_kernels.c - the arithmetic of each layer, on CBLAS sgemm.
 *
 * Three ways to compute a convolution, the first exact and always there:
 *   1. im2col + sgemm, one matrix product per tile. With NHWC tensors the
 *      im2col row of output pixel (y, x) is k runs of k*C contiguous input
 *      floats (one run per kernel row), so building it is a handful of
 *      memcpy calls, and col[rows x k*k*C] * W[k*k*C x C_out] lands
 *      directly in NHWC output order. Tiles stay in L2, so sgemm reads the
 *      copy back from cache. Backward uses the same tiles: dW += col^T dY,
 *      and dcol = dY W^T scattered back (col2im). Training uses only this.
 *   2. The direct kernel, for the common 'valid' convolution with a
 *      multiple of 16 output channels (the reference network): a register
 *      tile of P neighbouring output pixels x 16*OB output channels,
 *      accumulated straight from the NHWC input (nothing to copy), with
 *      bias and ReLU fused into the store.
 *   3. Winograd F(2x2, 3x3) for 3x3 'valid' convolutions with channel
 *      counts that are multiples of 16 (inference only; see its section):
 *      16 multiplications per 2x2 output tile and channel pair instead of
 *      36, the sums done by the direct kernel's register tiles.
 *
 * Pooling and ReLU are plain loops the compiler vectorises over the
 * channel axis.
 *
 * The register-tiled kernels (2 and 3) are written with GCC vector
 * extensions. On x86-64 they are built for AVX-512 only and used only when
 * the CPU has it: other x86 CPUs take path 1, since a baseline build of
 * these fully unrolled tiles would be slow code and minutes of compile
 * time. Elsewhere they compile for the native vector width. Every path is
 * cross-checked against path 1 in the tests (test_cnn.c). */
#include "cnn_kernels.h"

#include <cblas.h>
#include <float.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* Plain loops: built twice, the loader picks the clone the CPU can run. */
#define HS_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "default")))
/* Register-tiled kernels: AVX-512 only, used only where the CPU has it. */
#define HS_VECTOR_KERNEL __attribute__((target("arch=x86-64-v4")))
#else
#define HS_MULTIVERSION
#define HS_VECTOR_KERNEL
#endif

/* Target size of one im2col tile in floats (about 512 KiB). */
#define TILE_FLOATS (128 * 1024)

static int conv_k(const hs_layer *l)
{
    return l->spec.kernel * l->spec.kernel * l->in.c;
}

int hs_conv_tile_rows(const hs_layer *layer)
{
    int rows = TILE_FLOATS / conv_k(layer);
    if (rows < 16)
        rows = 16;
    return rows;
}

size_t hs_conv_scratch_floats(const hs_layer *layer)
{
    return (size_t)hs_conv_tile_rows(layer) * (size_t)conv_k(layer);
}

static int pad_before(const hs_layer *l)
{
    return l->spec.pad_same ? (l->spec.kernel - 1) / 2 : 0;
}

/* Position (sample, row, column) of a flattened output pixel index, walked
 * forward one pixel at a time by im2col and col2im. */
typedef struct {
    long n;
    int y, x;
} pixel_cursor;

static pixel_cursor cursor_at(const hs_layer *l, long row)
{
    const long per_sample = (long)l->out.h * l->out.w;
    pixel_cursor at = {row / per_sample, (int)((row % per_sample) / l->out.w),
                       (int)(row % l->out.w)};
    return at;
}

static void cursor_next(const hs_layer *l, pixel_cursor *at)
{
    if (++at->x == l->out.w) {
        at->x = 0;
        if (++at->y == l->out.h) {
            at->y = 0;
            at->n++;
        }
    }
}

/* Build im2col rows [row0, row1) into col (row-major, K columns). */
static void im2col(const hs_layer *l, const float *in, long row0, long row1,
                   float *col)
{
    const int k = l->spec.kernel, c = l->in.c;
    const int ih = l->in.h, iw = l->in.w;
    const int pad = pad_before(l);
    const size_t run = (size_t)k * (size_t)c;
    pixel_cursor at = cursor_at(l, row0);
    for (long r = row0; r < row1; r++) {
        const float *img = in + (size_t)at.n * ih * iw * c;
        int x0 = at.x - pad;
        int inside_x = x0 >= 0 && x0 + k <= iw;
        for (int dy = 0; dy < k; dy++) {
            int yy = at.y + dy - pad;
            float *dst = col + (size_t)dy * run;
            if (yy < 0 || yy >= ih) {
                memset(dst, 0, run * sizeof *dst);
            } else if (inside_x) {
                memcpy(dst, img + ((size_t)yy * iw + x0) * c,
                       run * sizeof *dst);
            } else {
                for (int dx = 0; dx < k; dx++) {
                    int xx = x0 + dx;
                    if (xx < 0 || xx >= iw)
                        memset(dst + dx * c, 0, (size_t)c * sizeof *dst);
                    else
                        memcpy(dst + dx * c, img + ((size_t)yy * iw + xx) * c,
                               (size_t)c * sizeof *dst);
                }
            }
        }
        col += (size_t)k * run;
        cursor_next(l, &at);
    }
}

/* Add im2col-shaped gradients for rows [row0, row1) back into din. */
HS_MULTIVERSION
static void col2im_add(const hs_layer *l, const float *dcol, long row0,
                       long row1, float *din)
{
    const int k = l->spec.kernel, c = l->in.c;
    const int ih = l->in.h, iw = l->in.w;
    const int pad = pad_before(l);
    pixel_cursor at = cursor_at(l, row0);
    for (long r = row0; r < row1; r++) {
        float *img = din + (size_t)at.n * ih * iw * c;
        for (int dy = 0; dy < k; dy++) {
            int yy = at.y + dy - pad;
            if (yy < 0 || yy >= ih)
                continue;
            for (int dx = 0; dx < k; dx++) {
                int xx = at.x + dx - pad;
                if (xx < 0 || xx >= iw)
                    continue;
                float *dst = img + ((size_t)yy * iw + xx) * c;
                const float *src = dcol + ((size_t)dy * k + dx) * c;
                for (int i = 0; i < c; i++)
                    dst[i] += src[i];
            }
        }
        dcol += (size_t)k * k * c;
        cursor_next(l, &at);
    }
}

HS_MULTIVERSION
static void bias_act(float *out, const float *bias, long rows, int units,
                     int relu)
{
    for (long r = 0; r < rows; r++) {
        float *o = out + (size_t)r * units;
        if (relu) {
            for (int u = 0; u < units; u++) {
                float v = o[u] + bias[u];
                o[u] = v > 0.0f ? v : 0.0f;
            }
        } else {
            for (int u = 0; u < units; u++)
                o[u] += bias[u];
        }
    }
}


/* ---- direct convolution (valid padding, C_out a multiple of 16) ---------- */

typedef float v16 __attribute__((vector_size(64)));
typedef int vi16 __attribute__((vector_size(64)));
/* Same vector, but only float-aligned: for loads and stores at any address. */
typedef float v16u __attribute__((vector_size(64), aligned(4)));
/* All lanes x. Spelled out (not 0 + x, which must keep -0.0 and so costs an
 * addition) so the compiler folds it into the multiply-add as a broadcast. */
#define V16_SPLAT(x) ((v16){(x), (x), (x), (x), (x), (x), (x), (x), \
                            (x), (x), (x), (x), (x), (x), (x), (x)})

/* Whether this CPU runs the HS_VECTOR_KERNEL functions. */
static int vector_kernels_usable(void)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    /* libgcc fills in the CPU model before main runs; reading it is cheap
     * and needs no locking. */
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512cd");
#else
    return 1;
#endif
}

int hs_conv_has_direct(const hs_layer *layer)
{
    return vector_kernels_usable() && !layer->spec.pad_same && layer->spec.units % 16 == 0;
}

/* One register tile: P output pixels of one row (stride oc floats apart in
 * out) x OB blocks of 16 channels. in points at the receptive field's
 * top-left input pixel, w and bias at the tile's first output channel. */
#define DEFINE_CONV_TILE(P, OB)                                                    \
    static inline __attribute__((always_inline)) void conv_tile_##P##_##OB(                                     \
        const float *in, int c, int k, size_t in_row, const float *w, int oc,      \
        const float *bias, float *out, int relu)                                   \
    {                                                                              \
        v16 acc[P][OB];                                                            \
        for (int b = 0; b < OB; b++) {                                             \
            v16 bv = *(const v16u *)(bias + 16 * b);                               \
            for (int p = 0; p < P; p++)                                            \
                acc[p][b] = bv;                                                    \
        }                                                                          \
        const int run = k * c;                                                     \
        for (int dy = 0; dy < k; dy++) {                                           \
            const float *irow = in + (size_t)dy * in_row;                          \
            const float *wrow = w + (size_t)dy * run * oc;                         \
            for (int j = 0; j < run; j++) {                                        \
                v16 wv[OB];                                                        \
                for (int b = 0; b < OB; b++)                                       \
                    wv[b] = *(const v16u *)(wrow + (size_t)j * oc + 16 * b);       \
                for (int p = 0; p < P; p++) {                                      \
                    const float s = irow[p * c + j];                               \
                    v16 a = V16_SPLAT(s);                                          \
                    for (int b = 0; b < OB; b++)                                   \
                        acc[p][b] += a * wv[b];                                    \
                }                                                                  \
            }                                                                      \
        }                                                                          \
        for (int p = 0; p < P; p++) {                                              \
            for (int b = 0; b < OB; b++) {                                         \
                v16 v = acc[p][b];                                                 \
                if (relu)                                                          \
                    v = (v16)((vi16)(v > (v16){0}) & (vi16)v);                     \
                *(v16u *)(out + (size_t)p * oc + 16 * b) = v;                      \
            }                                                                      \
        }                                                                          \
    }

/* A wide tile for the bulk of each row, narrower ones for the row's end
 * (a one-pixel tile is a chain of dependent multiply-adds, four times
 * slower, so the ends get tiles of several pixels where they can). */
DEFINE_CONV_TILE(24, 1)
DEFINE_CONV_TILE(8, 1)
DEFINE_CONV_TILE(4, 1)
DEFINE_CONV_TILE(1, 1)
DEFINE_CONV_TILE(12, 2)
DEFINE_CONV_TILE(4, 2)
DEFINE_CONV_TILE(2, 2)
DEFINE_CONV_TILE(1, 2)
DEFINE_CONV_TILE(6, 4)
DEFINE_CONV_TILE(3, 4)
DEFINE_CONV_TILE(2, 4)
DEFINE_CONV_TILE(1, 4)

/* n_pix neighbouring output pixels x all oc channels, in register tiles.
 * Pixel p's receptive field starts at in + p*c (k rows of k*c floats,
 * in_row apart); its output goes to out + p*oc. With k = 1 this is a plain
 * matrix product out[n_pix x oc] = in[n_pix x c] w[c x oc] + bias, which
 * is how the Winograd path uses it. */
static inline __attribute__((always_inline)) void tiled_row(
    const float *in, int c, int k, size_t in_row, const float *w, int oc,
    const float *bias, float *out, int n_pix, int relu)
{
    /* Widest channel block that divides C_out: 64, 32 or 16 channels. */
    const int ob = oc % 64 == 0 ? 4 : oc % 32 == 0 ? 2 : 1;
    int x = 0;
    while (x < n_pix) {
        int left = n_pix - x, p;
        const float *src = in + (size_t)x * c;
        float *dst = out + (size_t)x * oc;
        if (ob == 4)
            p = left >= 6 ? 6 : left >= 3 ? 3 : left >= 2 ? 2 : 1;
        else if (ob == 2)
            p = left >= 12 ? 12 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        else
            p = left >= 24 ? 24 : left >= 8 ? 8 : left >= 4 ? 4 : 1;
        for (int g = 0; g < oc; g += 16 * ob) {
            const float *wg = w + g, *bg = bias + g;
            float *og = dst + g;
#define TILE(P, OB) conv_tile_##P##_##OB(src, c, k, in_row, wg, oc, bg, og, relu)
            if (ob == 4) {
                if (p == 6)
                    TILE(6, 4);
                else if (p == 3)
                    TILE(3, 4);
                else if (p == 2)
                    TILE(2, 4);
                else
                    TILE(1, 4);
            } else if (ob == 2) {
                if (p == 12)
                    TILE(12, 2);
                else if (p == 4)
                    TILE(4, 2);
                else if (p == 2)
                    TILE(2, 2);
                else
                    TILE(1, 2);
            } else {
                if (p == 24)
                    TILE(24, 1);
                else if (p == 8)
                    TILE(8, 1);
                else if (p == 4)
                    TILE(4, 1);
                else
                    TILE(1, 1);
            }
#undef TILE
        }
        x += p;
    }
}

HS_VECTOR_KERNEL
void hs_conv_direct_rows(const hs_layer *layer, const float *params,
                         const float *in, float *out, long row0, long row1)
{
    const int oh = layer->out.h, ow = layer->out.w, oc = layer->spec.units;
    const int c = layer->in.c, k = layer->spec.kernel;
    const size_t in_row = (size_t)layer->in.w * c;
    const size_t in_size = (size_t)layer->in.h * in_row;
    const float *w = params + layer->w_off, *bias = params + layer->b_off;
    long r = row0;
    while (r < row1) {
        long n = r / ((long)oh * ow);
        int y = (int)((r / ow) % oh);
        int x0 = (int)(r % ow);
        int x1 = r - x0 + ow <= row1 ? ow : (int)(row1 - (r - x0));
        const float *src = in + (size_t)n * in_size + (size_t)y * in_row + (size_t)x0 * c;
        float *dst = out + (size_t)(r - row0) * oc;
        /* With the channel count and kernel size known at compile time the
         * tile's input offsets become constants instead of a register each;
         * RGB-like 3-channel input with a 3x3 kernel is the first layer of
         * the reference network. */
        if (c == 3 && k == 3)
            tiled_row(src, 3, 3, in_row, w, oc, bias, dst, x1 - x0, layer->spec.relu);
        else
            tiled_row(src, c, k, in_row, w, oc, bias, dst, x1 - x0, layer->spec.relu);
        r += x1 - x0;
    }
}

/* ---- Winograd F(2x2, 3x3) ---------------------------------------------------
 * A 3x3 'valid' convolution computed on 4x4 input tiles giving 2x2 outputs
 * with 16 multiplications per tile and channel pair instead of 36 (Lavin &
 * Gray, 2016): V = B^T d B, U = G g G^T, Y = A^T (sum over C of U . V) A.
 * The sum over input channels is 16 independent matrix products
 * [tiles x C] x [C x C_out], done by the same register tiles as the direct
 * kernel. Inference only; training keeps the exact im2col path. */

int hs_winograd_eligible(const hs_layer *l)
{
    return vector_kernels_usable() && l->spec.kind == HS_LAYER_CONV && l->spec.kernel == 3 &&
           !l->spec.pad_same &&
           l->spec.units % 16 == 0 && l->in.c % 16 == 0;
}

size_t hs_winograd_weight_floats(const hs_layer *l)
{
    return (size_t)16 * l->in.c * l->spec.units;
}

size_t hs_winograd_scratch_floats(const hs_layer *l)
{
    size_t tw = (size_t)(l->out.w + 1) / 2, c = (size_t)l->in.c, oc = (size_t)l->spec.units;
    return 4 * (2 * tw + 2) * c + 16 * tw * c + 16 * tw * oc + oc;
}

HS_VECTOR_KERNEL
void hs_winograd_weights(const hs_layer *l, const float *params, float *u)
{
    const int c = l->in.c, oc = l->spec.units;
    const float *w = params + l->w_off; /* [(dy*3 + dx)*c + ci][oc] */
    const size_t plane = (size_t)c * oc; /* u is [16][c][oc] */
    for (int ci = 0; ci < c; ci++) {
        const float *g[3][3];
        for (int dy = 0; dy < 3; dy++)
            for (int dx = 0; dx < 3; dx++)
                g[dy][dx] = w + ((size_t)(dy * 3 + dx) * c + ci) * oc;
        float *dst = u + (size_t)ci * oc;
        /* 16 output channels at a time: every load and store is contiguous. */
        for (int o = 0; o < oc; o += 16) {
            v16 t[4][3];
            for (int j = 0; j < 3; j++) { /* G g */
                v16 g0 = *(const v16u *)(g[0][j] + o);
                v16 g1 = *(const v16u *)(g[1][j] + o);
                v16 g2 = *(const v16u *)(g[2][j] + o);
                t[0][j] = g0;
                t[1][j] = 0.5f * (g0 + g1 + g2);
                t[2][j] = 0.5f * (g0 - g1 + g2);
                t[3][j] = g2;
            }
            for (int i = 0; i < 4; i++) { /* (G g) G^T */
                float *d = dst + (size_t)(i * 4) * plane + o;
                *(v16u *)d = t[i][0];
                *(v16u *)(d + plane) = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
                *(v16u *)(d + 2 * plane) = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
                *(v16u *)(d + 3 * plane) = t[i][2];
            }
        }
    }
}

/* Output tile rows [ty0, ty1) of one sample (see cnn_kernels.h), in four
 * steps per tile row, each headed by a comment: load four input rows,
 * transform the input tiles (V), the 16 products with the transformed
 * weights (M), transform back with bias, ReLU and the optional pooling.
 *
 * Long because it is the inner loop of inference: the four steps share
 * the strip, V and M buffers and work on 16-float vectors (AVX-512 on
 * x86-64). Split into functions, they would need a benchmark to show
 * that the calls cost nothing, so the kernel stays in one piece. */
HS_VECTOR_KERNEL
void hs_winograd_rows(const hs_layer *l, const float *params, const float *u,
                      const float *in, float *out, int ty0, int ty1,
                      const hs_layer *pool, float *scratch)
{
    const int c = l->in.c, oc = l->spec.units, iw = l->in.w, ih = l->in.h;
    const int ow = l->out.w, oh = l->out.h, relu = l->spec.relu;
    const int tw = (ow + 1) / 2, sw = 2 * tw + 2;
    float *strip = scratch;                     /* 4 x sw x c */
    float *v = strip + (size_t)4 * sw * c;      /* 16 x tw x c */
    float *m = v + (size_t)16 * tw * c;         /* 16 x tw x oc */
    float *zeros = m + (size_t)16 * tw * oc;    /* oc */
    const float *bias = params + l->b_off;
    const v16 zero = {0};
    memset(zeros, 0, (size_t)oc * sizeof *zeros);
    for (int ty = ty0; ty < ty1; ty++) {
        /* Four input rows, zero-padded past the image's right and bottom
         * edges (odd output sizes leave half a tile outside). */
        for (int r = 0; r < 4; r++) {
            float *srow = strip + (size_t)r * sw * c;
            int y = 2 * ty + r;
            int cols = iw < sw ? iw : sw;
            if (y < ih) {
                memcpy(srow, in + (size_t)y * iw * c, (size_t)cols * c * sizeof *srow);
                memset(srow + (size_t)cols * c, 0, (size_t)(sw - cols) * c * sizeof *srow);
            } else {
                memset(srow, 0, (size_t)sw * c * sizeof *srow);
            }
        }
        /* V = B^T d B for every tile, 16 channels at a time. */
        const size_t vstep = (size_t)tw * c;
        for (int tx = 0; tx < tw; tx++) {
            for (int ci = 0; ci < c; ci += 16) {
                v16 d[4][4], t[4][4];
                for (int r = 0; r < 4; r++)
                    for (int q = 0; q < 4; q++)
                        d[r][q] = *(const v16u *)(strip + ((size_t)r * sw + 2 * tx + q) * c + ci);
                for (int q = 0; q < 4; q++) {
                    t[0][q] = d[0][q] - d[2][q];
                    t[1][q] = d[1][q] + d[2][q];
                    t[2][q] = d[2][q] - d[1][q];
                    t[3][q] = d[1][q] - d[3][q];
                }
                for (int r = 0; r < 4; r++) {
                    float *dst = v + (size_t)(r * 4) * vstep + (size_t)tx * c + ci;
                    *(v16u *)dst = t[r][0] - t[r][2];
                    *(v16u *)(dst + vstep) = t[r][1] + t[r][2];
                    *(v16u *)(dst + 2 * vstep) = t[r][2] - t[r][1];
                    *(v16u *)(dst + 3 * vstep) = t[r][1] - t[r][3];
                }
            }
        }
        /* M[xi] = V[xi] U[xi]: 16 products of [tw x c] by [c x oc]. */
        for (int xi = 0; xi < 16; xi++) {
            const float *vx = v + (size_t)xi * vstep, *ux = u + (size_t)xi * c * oc;
            float *mx = m + (size_t)xi * tw * oc;
            /* A constant channel count (see above) pays off most for the
             * shortest products; wider ones would only lengthen the build. */
            if (c == 16)
                tiled_row(vx, 16, 1, 0, ux, oc, zeros, mx, tw, 0);
            else
                tiled_row(vx, c, 1, 0, ux, oc, zeros, mx, tw, 0);
        }
        /* Y = A^T M A + bias, then ReLU, then either store the 2x2 block or
         * pool it to one value; 16 channels at a time. */
        const size_t mstep = (size_t)tw * oc;
        for (int tx = 0; tx < tw; tx++) {
            int pooled = pool != NULL;
            if (pooled && tx >= pool->out.w)
                continue;
            float *o0 = pooled ? out + ((size_t)ty * pool->out.w + tx) * oc
                               : out + ((size_t)(2 * ty) * ow + 2 * tx) * oc;
            float *o1 = o0 + (size_t)ow * oc;
            int has_right = 2 * tx + 1 < ow, has_below = 2 * ty + 1 < oh;
            for (int o = 0; o < oc; o += 16) {
                const float *mt = m + (size_t)tx * oc + o;
                v16 s[2][4];
                for (int q = 0; q < 4; q++) {
                    v16 a0 = *(const v16u *)(mt + (size_t)q * mstep);
                    v16 a1 = *(const v16u *)(mt + (size_t)(4 + q) * mstep);
                    v16 a2 = *(const v16u *)(mt + (size_t)(8 + q) * mstep);
                    v16 a3 = *(const v16u *)(mt + (size_t)(12 + q) * mstep);
                    s[0][q] = a0 + a1 + a2;
                    s[1][q] = a1 - a2 - a3;
                }
                v16 b = *(const v16u *)(bias + o);
                v16 y00 = s[0][0] + s[0][1] + s[0][2] + b;
                v16 y01 = s[0][1] - s[0][2] - s[0][3] + b;
                v16 y10 = s[1][0] + s[1][1] + s[1][2] + b;
                v16 y11 = s[1][1] - s[1][2] - s[1][3] + b;
                if (relu) {
                    y00 = (v16)((vi16)(y00 > zero) & (vi16)y00);
                    y01 = (v16)((vi16)(y01 > zero) & (vi16)y01);
                    y10 = (v16)((vi16)(y10 > zero) & (vi16)y10);
                    y11 = (v16)((vi16)(y11 > zero) & (vi16)y11);
                }
                if (pooled) {
                    v16 a = (v16)((vi16)(y00 > y01) & (vi16)y00) + (v16)((vi16)(y00 <= y01) & (vi16)y01);
                    v16 e = (v16)((vi16)(y10 > y11) & (vi16)y10) + (v16)((vi16)(y10 <= y11) & (vi16)y11);
                    *(v16u *)(o0 + o) = (v16)((vi16)(a > e) & (vi16)a) + (v16)((vi16)(a <= e) & (vi16)e);
                    continue;
                }
                *(v16u *)(o0 + o) = y00;
                if (has_right)
                    *(v16u *)(o0 + oc + o) = y01;
                if (has_below) {
                    *(v16u *)(o1 + o) = y10;
                    if (has_right)
                        *(v16u *)(o1 + oc + o) = y11;
                }
            }
        }
    }
}

void hs_conv_forward_rows(const hs_layer *layer, const float *params,
                          const float *in, float *out, long row0, long row1,
                          float *col)
{
    const int kk = conv_k(layer), units = layer->spec.units;
    const float *w = params + layer->w_off, *b = params + layer->b_off;
    const long tile = hs_conv_tile_rows(layer);
    for (long r = row0; r < row1; r += tile) {
        long r1 = r + tile < row1 ? r + tile : row1;
        int m = (int)(r1 - r);
        float *o = out + (size_t)(r - row0) * units;
        im2col(layer, in, r, r1, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, units, kk,
                    1.0f, col, kk, w, units, 0.0f, o, units);
        bias_act(o, b, m, units, layer->spec.relu);
    }
}

void hs_conv_backward(const hs_layer *layer, const float *params, float *grads,
                      const float *in, const float *dout, float *din, int n,
                      float *col, float *dcol)
{
    const int kk = conv_k(layer), units = layer->spec.units;
    const long rows = (long)n * layer->out.h * layer->out.w;
    const long tile = hs_conv_tile_rows(layer);
    const float *w = params + layer->w_off;
    float *dw = grads + layer->w_off, *db = grads + layer->b_off;
    if (din != NULL)
        memset(din, 0, (size_t)n * layer->in.h * layer->in.w * layer->in.c * sizeof *din);
    for (long r = 0; r < rows; r += tile) {
        long r1 = r + tile < rows ? r + tile : rows;
        int m = (int)(r1 - r);
        const float *g = dout + (size_t)r * units;
        for (int i = 0; i < m; i++)
            for (int u = 0; u < units; u++)
                db[u] += g[(size_t)i * units + u];
        im2col(layer, in, r, r1, col);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, units, m,
                    1.0f, col, kk, g, units, 1.0f, dw, units);
        if (din != NULL) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, kk, units,
                        1.0f, g, units, w, units, 0.0f, dcol, kk);
            col2im_add(layer, dcol, r, r1, din);
        }
    }
}

HS_MULTIVERSION
void hs_maxpool_row_pair(const float *row0, const float *row1, int out_w,
                         int c, float *out)
{
    for (int x = 0; x < out_w; x++) {
        const float *a = row0 + (size_t)(2 * x) * c, *b = a + c;
        const float *d = row1 + (size_t)(2 * x) * c, *e = d + c;
        float *dst = out + (size_t)x * c;
        for (int i = 0; i < c; i++) {
            float m1 = a[i] > b[i] ? a[i] : b[i];
            float m2 = d[i] > e[i] ? d[i] : e[i];
            dst[i] = m1 > m2 ? m1 : m2;
        }
    }
}

void hs_maxpool_forward(const hs_layer *layer, const float *in, float *out,
                        int n_samples)
{
    const int c = layer->in.c, iw = layer->in.w, ih = layer->in.h;
    const int oh = layer->out.h, ow = layer->out.w;
    for (int n = 0; n < n_samples; n++) {
        const float *img = in + (size_t)n * ih * iw * c;
        float *o = out + (size_t)n * oh * ow * c;
        for (int y = 0; y < oh; y++) {
            const float *r0 = img + (size_t)(2 * y) * iw * c;
            hs_maxpool_row_pair(r0, r0 + (size_t)iw * c, ow, c, o + (size_t)y * ow * c);
        }
    }
}

HS_MULTIVERSION
void hs_maxpool_backward(const hs_layer *layer, const float *in,
                         const float *out, const float *dout, float *din,
                         int n_samples)
{
    const int c = layer->in.c, iw = layer->in.w, ih = layer->in.h;
    const int oh = layer->out.h, ow = layer->out.w;
    /* Windows do not overlap, so only the odd last row/column that no
     * window covers needs clearing; the rest is written below. */
    if (ih % 2 != 0 || iw % 2 != 0)
        memset(din, 0, (size_t)n_samples * ih * iw * c * sizeof *din);
    for (int n = 0; n < n_samples; n++) {
        const float *img = in + (size_t)n * ih * iw * c;
        float *dimg = din + (size_t)n * ih * iw * c;
        const float *o = out + (size_t)n * oh * ow * c;
        const float *g = dout + (size_t)n * oh * ow * c;
        for (int y = 0; y < oh; y++) {
            for (int x = 0; x < ow; x++) {
                size_t base = ((size_t)(2 * y) * iw + 2 * x) * c;
                size_t below = base + (size_t)iw * c;
                const float *restrict a = img + base, *restrict b = a + c;
                const float *restrict d = img + below;
                float *restrict da = dimg + base, *restrict db = da + c;
                float *restrict dd = dimg + below, *restrict de = dd + c;
                const float *restrict mo = o + ((size_t)y * ow + x) * c;
                const float *restrict go = g + ((size_t)y * ow + x) * c;
                /* The first input equal to the pooled maximum (in the
                 * forward comparison order) takes the gradient: with
                 * comparison masks, 16 channels at a time. */
                int i = 0;
                for (; i + 16 <= c; i += 16) {
                    v16 m = *(const v16u *)(mo + i), left = *(const v16u *)(go + i);
                    vi16 h = (vi16)(*(const v16u *)(a + i) == m);
                    *(v16u *)(da + i) = (v16)(h & (vi16)left);
                    left = (v16)(~h & (vi16)left);
                    h = (vi16)(*(const v16u *)(b + i) == m);
                    *(v16u *)(db + i) = (v16)(h & (vi16)left);
                    left = (v16)(~h & (vi16)left);
                    h = (vi16)(*(const v16u *)(d + i) == m);
                    *(v16u *)(dd + i) = (v16)(h & (vi16)left);
                    *(v16u *)(de + i) = (v16)(~h & (vi16)left);
                }
                for (; i < c; i++) {
                    float left = go[i];
                    int ha = a[i] == mo[i];
                    da[i] = ha ? left : 0.0f;
                    left = ha ? 0.0f : left;
                    int hb = b[i] == mo[i];
                    db[i] = hb ? left : 0.0f;
                    left = hb ? 0.0f : left;
                    int hd = d[i] == mo[i];
                    dd[i] = hd ? left : 0.0f;
                    de[i] = hd ? 0.0f : left;
                }
            }
        }
    }
}

void hs_dense_forward(const hs_layer *layer, const float *params,
                      const float *in, float *out, int n)
{
    const int inputs = layer->in.h * layer->in.w * layer->in.c;
    const int units = layer->spec.units;
    if (n <= 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, units, inputs,
                1.0f, in, inputs, params + layer->w_off, units, 0.0f, out, units);
    bias_act(out, params + layer->b_off, n, units, layer->spec.relu);
}

void hs_dense_backward(const hs_layer *layer, const float *params,
                       float *grads, const float *in, const float *dout,
                       float *din, int n)
{
    const int inputs = layer->in.h * layer->in.w * layer->in.c;
    const int units = layer->spec.units;
    float *db = grads + layer->b_off;
    if (n <= 0)
        return;
    for (int i = 0; i < n; i++)
        for (int u = 0; u < units; u++)
            db[u] += dout[(size_t)i * units + u];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, inputs, units, n,
                1.0f, in, inputs, dout, units, 1.0f, grads + layer->w_off, units);
    if (din != NULL)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, inputs, units,
                    1.0f, dout, units, params + layer->w_off, units, 0.0f,
                    din, inputs);
}

HS_MULTIVERSION
void hs_relu_mask(float *g, const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] = out[i] > 0.0f ? g[i] : 0.0f;
}
