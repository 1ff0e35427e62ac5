/* cnn.c - the network: building it from a layer list, initialising it, and
 * driving forward and backward passes over a workspace (see cnn.h).
 *
 * The driver owns the decisions the kernels should not make: which buffer
 * each layer writes, how work is split across threads, and where gradients
 * are summed. Forward splits convolutions into tiles of output pixels so a
 * batch of one uses every thread; backward splits the batch into one
 * contiguous share of samples per thread, each summing into its own
 * gradient copy, and the copies are added in thread order so a run is
 * reproducible for a given thread count. */
#include "hemoscan/cnn.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnn_kernels.h"
#include "hemoscan/parallel.h"

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
void openblas_set_num_threads(int);
#endif

/* Sanity limits that keep a hostile model file from asking for absurd
 * amounts of memory; far above any head CT network. */
#define MAX_DIM 4096
#define MAX_CHANNELS 4096
#define MAX_KERNEL 15
#define MAX_PARAMS ((size_t)1 << 28)

static const char *const kind_names[] = {
    [HS_LAYER_CONV] = "conv",       [HS_LAYER_RELU] = "relu",
    [HS_LAYER_MAXPOOL] = "maxpool", [HS_LAYER_FLATTEN] = "flatten",
    [HS_LAYER_DENSE] = "dense",     [HS_LAYER_DROPOUT] = "dropout",
    [HS_LAYER_SIGMOID] = "sigmoid", [HS_LAYER_SOFTMAX] = "softmax",
};
#define N_KINDS ((int)(sizeof kind_names / sizeof kind_names[0]))

const char *hs_layer_kind_name(hs_layer_kind kind)
{
    if ((int)kind <= 0 || (int)kind >= N_KINDS)
        return "unknown";
    return kind_names[kind];
}

int hs_layer_kind_parse(const char *name, hs_layer_kind *kind)
{
    for (int k = 1; k < N_KINDS; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *kind = (hs_layer_kind)k;
            return 0;
        }
    }
    return -1;
}

static size_t shape_size(hs_shape s)
{
    return (size_t)s.h * (size_t)s.w * (size_t)s.c;
}

static int is_output(hs_layer_kind kind)
{
    return kind == HS_LAYER_SIGMOID || kind == HS_LAYER_SOFTMAX;
}

/* Output shape and parameter counts of one layer, or an error naming it. */
static hs_status plan_layer(hs_layer *l, int index, int n_specs, hs_error *err)
{
    const hs_layer_spec *s = &l->spec;
    hs_shape in = l->in;
    l->w_len = 0;
    l->b_len = 0;
    if (is_output(s->kind) && index != n_specs - 1)
        return hs_fail(err, HS_ERR_SHAPE, "layer %d (%s): an output layer must be last",
                       index, hs_layer_kind_name(s->kind));
    switch (s->kind) {
    case HS_LAYER_CONV: {
        int k = s->kernel;
        if (s->units < 1 || s->units > MAX_CHANNELS || k < 1 || k > MAX_KERNEL)
            return hs_fail(err, HS_ERR_SHAPE,
                           "layer %d (conv): %d units with kernel %d, expected 1..%d units and kernel 1..%d",
                           index, s->units, k, MAX_CHANNELS, MAX_KERNEL);
        if (!s->pad_same && (in.h < k || in.w < k))
            return hs_fail(err, HS_ERR_SHAPE,
                           "layer %d (conv): input %dx%d is smaller than the %dx%d kernel",
                           index, in.h, in.w, k, k);
        l->out.h = s->pad_same ? in.h : in.h - k + 1;
        l->out.w = s->pad_same ? in.w : in.w - k + 1;
        l->out.c = s->units;
        l->w_len = (size_t)k * k * in.c * s->units;
        l->b_len = (size_t)s->units;
        break;
    }
    case HS_LAYER_MAXPOOL:
        if (in.h < 2 || in.w < 2)
            return hs_fail(err, HS_ERR_SHAPE, "layer %d (maxpool): input %dx%d is smaller than 2x2",
                           index, in.h, in.w);
        l->out = (hs_shape){in.h / 2, in.w / 2, in.c};
        break;
    case HS_LAYER_FLATTEN:
        l->out = (hs_shape){1, 1, (int)shape_size(in)};
        break;
    case HS_LAYER_DENSE:
        if (in.h != 1 || in.w != 1)
            return hs_fail(err, HS_ERR_SHAPE, "layer %d (dense): input is %dx%dx%d, expected a flat vector (add a flatten layer)",
                           index, in.h, in.w, in.c);
        if (s->units < 1 || s->units > (1 << 16))
            return hs_fail(err, HS_ERR_SHAPE, "layer %d (dense): %d units, expected 1..65536",
                           index, s->units);
        l->out = (hs_shape){1, 1, s->units};
        l->w_len = (size_t)in.c * s->units;
        l->b_len = (size_t)s->units;
        break;
    case HS_LAYER_DROPOUT:
        if (!(s->rate >= 0.0f && s->rate < 1.0f))
            return hs_fail(err, HS_ERR_SHAPE, "layer %d (dropout): rate %g, expected 0 <= rate < 1",
                           index, (double)s->rate);
        l->out = in;
        break;
    case HS_LAYER_RELU:
        l->out = in;
        break;
    case HS_LAYER_SIGMOID:
    case HS_LAYER_SOFTMAX:
        if (index == 0 || l[-1].spec.kind != HS_LAYER_DENSE || l[-1].spec.relu)
            return hs_fail(err, HS_ERR_SHAPE, "layer %d (%s): must follow a dense layer without ReLU",
                           index, hs_layer_kind_name(s->kind));
        l->out = in;
        break;
    default:
        return hs_fail(err, HS_ERR_SHAPE, "layer %d: unknown layer kind %d", index, (int)s->kind);
    }
    if ((s->relu && s->kind != HS_LAYER_CONV && s->kind != HS_LAYER_DENSE) ||
        (s->pad_same && s->kind != HS_LAYER_CONV))
        return hs_fail(err, HS_ERR_SHAPE, "layer %d (%s): relu/pad options apply only to conv and dense",
                       index, hs_layer_kind_name(s->kind));
    if (l->out.h < 1 || l->out.w < 1 || l->out.c < 1 || shape_size(l->out) > ((size_t)1 << 26))
        return hs_fail(err, HS_ERR_SHAPE, "layer %d (%s): output shape %dx%dx%d is out of range",
                       index, hs_layer_kind_name(s->kind), l->out.h, l->out.w, l->out.c);
    return HS_OK;
}

hs_status hs_net_create(hs_net *net, hs_shape input, const hs_layer_spec *specs,
                        int n_specs, hs_error *err)
{
    memset(net, 0, sizeof *net);
    if (n_specs < 2 || n_specs > HS_MAX_LAYERS)
        return hs_fail(err, HS_ERR_SHAPE, "a network needs 2..%d layers, got %d", HS_MAX_LAYERS, n_specs);
    if (input.h < 1 || input.w < 1 || input.c < 1 || input.h > MAX_DIM ||
        input.w > MAX_DIM || input.c > MAX_CHANNELS)
        return hs_fail(err, HS_ERR_SHAPE, "input shape %dx%dx%d is out of range", input.h, input.w, input.c);
    if (!is_output(specs[n_specs - 1].kind))
        return hs_fail(err, HS_ERR_SHAPE, "the last layer must be sigmoid or softmax, got %s",
                       hs_layer_kind_name(specs[n_specs - 1].kind));
    hs_layer *layers = calloc((size_t)n_specs, sizeof *layers);
    if (layers == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for %d layers", n_specs);
    size_t offset = 0;
    hs_shape shape = input;
    for (int i = 0; i < n_specs; i++) {
        layers[i].spec = specs[i];
        layers[i].in = shape;
        hs_status st = plan_layer(&layers[i], i, n_specs, err);
        if (st != HS_OK) {
            free(layers);
            return st;
        }
        layers[i].w_off = offset;
        offset += layers[i].w_len;
        layers[i].b_off = offset;
        offset += layers[i].b_len;
        if (offset > MAX_PARAMS) {
            free(layers);
            return hs_fail(err, HS_ERR_SHAPE, "more than %zu parameters", MAX_PARAMS);
        }
        shape = layers[i].out;
    }
    net->params = calloc(offset > 0 ? offset : 1, sizeof *net->params);
    if (net->params == NULL) {
        free(layers);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for %zu parameters", offset);
    }
    net->input = input;
    net->n_layers = n_specs;
    net->layers = layers;
    net->n_params = offset;
    return HS_OK;
}

hs_status hs_net_alloc_grads(hs_net *net, hs_error *err)
{
    if (net->grads != NULL)
        return HS_OK;
    net->grads = calloc(net->n_params > 0 ? net->n_params : 1, sizeof *net->grads);
    if (net->grads == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for %zu gradients", net->n_params);
    return HS_OK;
}

hs_status hs_net_merge_input_channels(const hs_net *src, hs_net *dst, hs_error *err)
{
    memset(dst, 0, sizeof *dst);
    if (src->n_layers < 1 || src->layers[0].spec.kind != HS_LAYER_CONV)
        return hs_fail(err, HS_ERR_SHAPE, "merging input channels needs a convolution first");
    hs_layer_spec specs[HS_MAX_LAYERS];
    for (int i = 0; i < src->n_layers; i++)
        specs[i] = src->layers[i].spec;
    hs_shape one = {src->input.h, src->input.w, 1};
    hs_status st = hs_net_create(dst, one, specs, src->n_layers, err);
    if (st != HS_OK)
        return st;
    /* The first layer: rows (dy, dx, c) of [k*k*C][units] become (dy, dx). */
    const hs_layer *from = &src->layers[0];
    const hs_layer *to = &dst->layers[0];
    const int taps = from->spec.kernel * from->spec.kernel, c_in = src->input.c, units = from->spec.units;
    for (int t = 0; t < taps; t++) {
        float *row = dst->params + to->w_off + (size_t)t * units;
        for (int u = 0; u < units; u++) {
            float sum = 0.0f;
            for (int c = 0; c < c_in; c++)
                sum += src->params[from->w_off + ((size_t)t * c_in + c) * units + u];
            row[u] = sum;
        }
    }
    memcpy(dst->params + to->b_off, src->params + from->b_off, from->b_len * sizeof *dst->params);
    for (int i = 1; i < src->n_layers; i++) {
        const hs_layer *a = &src->layers[i], *b = &dst->layers[i];
        memcpy(dst->params + b->w_off, src->params + a->w_off, a->w_len * sizeof *dst->params);
        memcpy(dst->params + b->b_off, src->params + a->b_off, a->b_len * sizeof *dst->params);
    }
    return HS_OK;
}

void hs_net_free(hs_net *net)
{
    free(net->layers);
    free(net->params);
    free(net->grads);
    memset(net, 0, sizeof *net);
}

/* A layer counts as followed by ReLU if it fuses one or the next layer is
 * one; that decides He versus Glorot initialisation. */
static int feeds_relu(const hs_net *net, int i)
{
    return net->layers[i].spec.relu ||
           (i + 1 < net->n_layers && net->layers[i + 1].spec.kind == HS_LAYER_RELU);
}

void hs_net_init(hs_net *net, hs_rng *rng)
{
    for (int i = 0; i < net->n_layers; i++) {
        const hs_layer *l = &net->layers[i];
        if (l->w_len == 0)
            continue;
        int k = l->spec.kind == HS_LAYER_CONV ? l->spec.kernel : 1;
        double fan_in = (double)k * k * l->in.c;
        double fan_out = (double)k * k * l->spec.units;
        float *w = net->params + l->w_off;
        if (feeds_relu(net, i)) {
            double sd = sqrt(2.0 / fan_in);
            for (size_t j = 0; j < l->w_len; j++)
                w[j] = (float)(sd * hs_rng_normal(rng));
        } else {
            double limit = sqrt(6.0 / (fan_in + fan_out));
            for (size_t j = 0; j < l->w_len; j++)
                w[j] = (float)(limit * (2.0 * hs_rng_uniform(rng) - 1.0));
        }
        memset(net->params + l->b_off, 0, l->b_len * sizeof(float));
    }
}

int hs_net_reference_specs(hs_layer_spec *specs, int max_specs, float dropout)
{
    hs_layer_spec list[16];
    int n = 0;
    static const int filters[] = {16, 32, 64, 64, 128};
    for (int i = 0; i < 5; i++) {
        list[n++] = (hs_layer_spec){.kind = HS_LAYER_CONV, .units = filters[i], .kernel = 3, .relu = 1};
        list[n++] = (hs_layer_spec){.kind = HS_LAYER_MAXPOOL};
    }
    list[n++] = (hs_layer_spec){.kind = HS_LAYER_FLATTEN};
    list[n++] = (hs_layer_spec){.kind = HS_LAYER_DENSE, .units = 256, .relu = 1};
    if (dropout > 0.0f)
        list[n++] = (hs_layer_spec){.kind = HS_LAYER_DROPOUT, .rate = dropout};
    list[n++] = (hs_layer_spec){.kind = HS_LAYER_DENSE, .units = 1};
    list[n++] = (hs_layer_spec){.kind = HS_LAYER_SIGMOID};
    int copy = n < max_specs ? n : max_specs;
    memcpy(specs, list, (size_t)copy * sizeof *specs);
    return n;
}

int hs_net_outputs(const hs_net *net)
{
    return net->layers[net->n_layers - 1].out.c;
}

double hs_net_forward_flops(const hs_net *net)
{
    double flops = 0.0;
    for (int i = 0; i < net->n_layers; i++) {
        const hs_layer *l = &net->layers[i];
        /* One multiply-add per weight per output pixel (1x1 for dense). */
        flops += 2.0 * (double)l->w_len * l->out.h * l->out.w;
    }
    return flops;
}

void hs_net_describe(const hs_net *net, FILE *out)
{
    fprintf(out, "%-4s %-9s %-28s %-16s %10s\n", "#", "layer", "options", "output", "params");
    for (int i = 0; i < net->n_layers; i++) {
        const hs_layer *l = &net->layers[i];
        char opts[64] = "";
        if (l->spec.kind == HS_LAYER_CONV)
            snprintf(opts, sizeof opts, "%d filters %dx%d %s%s", l->spec.units, l->spec.kernel,
                     l->spec.kernel, l->spec.pad_same ? "same" : "valid", l->spec.relu ? " relu" : "");
        else if (l->spec.kind == HS_LAYER_DENSE)
            snprintf(opts, sizeof opts, "%d units%s", l->spec.units, l->spec.relu ? " relu" : "");
        else if (l->spec.kind == HS_LAYER_DROPOUT)
            snprintf(opts, sizeof opts, "rate %g", (double)l->spec.rate);
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", l->out.h, l->out.w, l->out.c);
        fprintf(out, "%-4d %-9s %-28s %-16s %10zu\n", i, hs_layer_kind_name(l->spec.kind), opts,
                shape, l->w_len + l->b_len);
    }
    fprintf(out, "total parameters: %zu\n", net->n_params);
}

/* ---- workspace -------------------------------------------------------- */

struct hs_ws {
    int max_batch;
    int training;
    int n_layers;
    hs_pool *pool;
    int threads;
    float **out;        /* per layer: its output (may alias another buffer) */
    float **owned;      /* buffers to free */
    int n_owned;
    float **mask;       /* training: dropout masks per layer, else NULL */
    float **grad_a, **grad_b; /* per thread: gradients of its share of samples */
    float **sample_a, **sample_b; /* per thread: one sample's activations */
    size_t max_act;       /* largest activation of one sample, in floats */
    size_t scratch;       /* floats in each col[] buffer */
    float **wino_u;       /* per layer: Winograd-transformed weights, or NULL */
    unsigned char *wino_now; /* per layer: Winograd used in this call */
    float *dlogits;
    float **col, **dcol; /* per thread im2col scratch */
    float **part;       /* per thread gradient partials (threads > 1) */
    size_t n_params;
    int last_n;
    int last_training;
    int direct; /* use the direct convolution kernel where it applies */
};

static float *ws_alloc(hs_ws *ws, size_t n)
{
    float *p = malloc((n > 0 ? n : 1) * sizeof *p);
    if (p != NULL)
        ws->owned[ws->n_owned++] = p;
    return p;
}

void hs_ws_free(hs_ws *ws)
{
    if (ws == NULL)
        return;
    for (int i = 0; i < ws->n_owned; i++)
        free(ws->owned[i]);
    free(ws->owned);
    free(ws->out);
    free(ws->mask);
    free(ws->col);
    free(ws->dcol);
    free(ws->part);
    free(ws->grad_a);
    free(ws->grad_b);
    free(ws->sample_a);
    free(ws->sample_b);
    free(ws->wino_u);
    free(ws->wino_now);
    hs_pool_free(ws->pool);
    free(ws);
}

int hs_ws_max_batch(const hs_ws *ws)
{
    return ws->max_batch;
}

void hs_ws_set_fast_kernels(hs_ws *ws, int enable)
{
    ws->direct = enable != 0;
}

/* Whether layer i writes no buffer of its own but passes its input on. */
static int aliases_input(const hs_layer *l, int training)
{
    return l->spec.kind == HS_LAYER_FLATTEN ||
           (l->spec.kind == HS_LAYER_DROPOUT && !training);
}

/* Each layer's output buffer in ws, and in training the dropout masks.
 * A layer that passes its input on aliases it. Training gives every other
 * layer a buffer of its own, kept for the backward pass. Inference does
 * so only for the output layer (sigmoid or softmax) and the logits that
 * feed it; the other layers alternate between two shared buffers. -1
 * when out of memory. */
static int ws_layer_outputs(hs_ws *ws, const hs_net *net)
{
    const int L = net->n_layers, max_batch = ws->max_batch, threads = ws->threads, training = ws->training;
    const size_t max_act = ws->max_act;
    /* Inference runs layer by layer over the whole batch only when the
     * batch is smaller than the thread count (see hs_forward), so its
     * shared buffers need room for fewer samples than threads. */
    size_t layerwise = (size_t)(max_batch < threads ? max_batch : threads);
    float *ping = NULL, *pong = NULL;
    if (!training) {
        ping = ws_alloc(ws, max_act * layerwise);
        pong = ws_alloc(ws, max_act * layerwise);
        if (ping == NULL || pong == NULL)
            return -1;
    }
    const float *prev = NULL; /* NULL stands for the caller's input */
    for (int i = 0; i < L; i++) {
        const hs_layer *l = &net->layers[i];
        size_t size = shape_size(l->out) * (size_t)max_batch;
        if (aliases_input(l, training)) {
            ws->out[i] = i > 0 ? ws->out[i - 1] : NULL;
        } else if (training || is_output(l->spec.kind) ||
                   (i + 1 < L && is_output(net->layers[i + 1].spec.kind))) {
            ws->out[i] = ws_alloc(ws, size);
            if (ws->out[i] == NULL)
                return -1;
        } else {
            ws->out[i] = prev == ping ? pong : ping;
        }
        if (training && l->spec.kind == HS_LAYER_DROPOUT) {
            ws->mask[i] = ws_alloc(ws, size);
            if (ws->mask[i] == NULL)
                return -1;
        }
        prev = ws->out[i];
    }
    return 0;
}

/* Each thread's buffers in ws: im2col scratch and one sample's
 * activations; in training also its share of the batch's gradients, the
 * col2im scratch, and (threads after the first) gradient partials, plus
 * the batch's logit gradients. -1 when out of memory. */
static int ws_thread_buffers(hs_ws *ws, const hs_net *net)
{
    const int max_batch = ws->max_batch, threads = ws->threads;
    const size_t max_act = ws->max_act, scratch = ws->scratch;
    for (int t = 0; t < threads; t++) {
        ws->col[t] = ws_alloc(ws, scratch);
        ws->sample_a[t] = ws_alloc(ws, max_act);
        ws->sample_b[t] = ws_alloc(ws, max_act);
        if (ws->col[t] == NULL || ws->sample_a[t] == NULL || ws->sample_b[t] == NULL)
            return -1;
    }
    if (ws->training) {
        /* Each thread's share of a batch is at most this many samples. */
        size_t share = (size_t)(max_batch + threads - 1) / (size_t)threads;
        ws->dlogits = ws_alloc(ws, (size_t)hs_net_outputs(net) * max_batch);
        if (ws->dlogits == NULL)
            return -1;
        for (int t = 0; t < threads; t++) {
            ws->grad_a[t] = ws_alloc(ws, max_act * share);
            ws->grad_b[t] = ws_alloc(ws, max_act * share);
            if (ws->grad_a[t] == NULL || ws->grad_b[t] == NULL)
                return -1;
            ws->dcol[t] = ws_alloc(ws, scratch);
            if (ws->dcol[t] == NULL)
                return -1;
            if (t > 0) {
                ws->part[t] = ws_alloc(ws, net->n_params);
                if (ws->part[t] == NULL)
                    return -1;
            }
        }
    }
    return 0;
}

hs_status hs_ws_create(hs_ws **out_ws, const hs_net *net, int max_batch,
                       int training, int threads, hs_error *err)
{
    *out_ws = NULL;
    if (max_batch < 1 || threads < 1 || threads > 256)
        return hs_fail(err, HS_ERR_ARG, "workspace: batch %d and threads %d must be >= 1 (threads <= 256)",
                       max_batch, threads);
    hs_ws *ws = calloc(1, sizeof *ws);
    if (ws == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for a workspace");
    int L = net->n_layers;
    ws->max_batch = max_batch;
    ws->training = training;
    ws->n_layers = L;
    ws->threads = threads;
    ws->n_params = net->n_params;
    ws->direct = 1;
    int max_owned = 2 * L + 8 + 7 * threads;
    ws->owned = calloc((size_t)max_owned, sizeof *ws->owned);
    ws->out = calloc((size_t)L, sizeof *ws->out);
    ws->mask = calloc((size_t)L, sizeof *ws->mask);
    ws->col = calloc((size_t)threads, sizeof *ws->col);
    ws->dcol = calloc((size_t)threads, sizeof *ws->dcol);
    ws->part = calloc((size_t)threads, sizeof *ws->part);
    ws->grad_a = calloc((size_t)threads, sizeof *ws->grad_a);
    ws->grad_b = calloc((size_t)threads, sizeof *ws->grad_b);
    ws->sample_a = calloc((size_t)threads, sizeof *ws->sample_a);
    ws->sample_b = calloc((size_t)threads, sizeof *ws->sample_b);
    ws->wino_u = calloc((size_t)L, sizeof *ws->wino_u);
    ws->wino_now = calloc((size_t)L, sizeof *ws->wino_now);
    ws->pool = hs_pool_create(threads);
    if (ws->owned == NULL || ws->out == NULL || ws->mask == NULL || ws->col == NULL ||
        ws->dcol == NULL || ws->part == NULL || ws->grad_a == NULL ||
        ws->grad_b == NULL || ws->sample_a == NULL || ws->sample_b == NULL ||
        ws->wino_u == NULL || ws->wino_now == NULL || ws->pool == NULL)
        goto nomem;

    size_t max_act = shape_size(net->input), scratch = 1;
    for (int i = 0; i < L; i++) {
        const hs_layer *l = &net->layers[i];
        if (shape_size(l->out) > max_act)
            max_act = shape_size(l->out);
        if (l->spec.kind == HS_LAYER_CONV && hs_conv_scratch_floats(l) > scratch)
            scratch = hs_conv_scratch_floats(l);
        if (hs_winograd_eligible(l) && hs_winograd_scratch_floats(l) > scratch)
            scratch = hs_winograd_scratch_floats(l);
    }
    for (int i = 0; i < L; i++) {
        if (hs_winograd_eligible(&net->layers[i])) {
            ws->wino_u[i] = ws_alloc(ws, hs_winograd_weight_floats(&net->layers[i]));
            if (ws->wino_u[i] == NULL)
                goto nomem;
        }
    }
    ws->max_act = max_act;
    ws->scratch = scratch;
    if (ws_layer_outputs(ws, net) != 0 || ws_thread_buffers(ws, net) != 0)
        goto nomem;
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    /* The engine owns threading; BLAS threads on top would oversubscribe. */
    openblas_set_num_threads(1);
#endif
    *out_ws = ws;
    return HS_OK;
nomem:
    hs_ws_free(ws);
    return hs_fail(err, HS_ERR_NOMEM, "out of memory for a workspace of batch %d", max_batch);
}

/* ---- forward ------------------------------------------------------------ */

typedef struct {
    const hs_layer *layer;
    const float *params;
    const float *in;
    float *out;
    long rows;
    long tile;
    int n;
    hs_ws *ws;
    const float *wino_u;
} layer_job;

/* One sample of a Winograd convolution, unpooled (training keeps the
 * full-size output for the backward pass). */
static void winograd_task(void *p, int task, int thread)
{
    layer_job *job = p;
    const hs_layer *l = job->layer;
    hs_winograd_rows(l, job->params, job->wino_u, job->in + (size_t)task * shape_size(l->in),
                     job->out + (size_t)task * shape_size(l->out), 0, (l->out.h + 1) / 2, NULL,
                     job->ws->col[thread]);
}

static void conv_task(void *p, int task, int thread)
{
    layer_job *job = p;
    long r0 = task * job->tile;
    long r1 = r0 + job->tile < job->rows ? r0 + job->tile : job->rows;
    float *out = job->out + (size_t)r0 * job->layer->spec.units;
    if (job->ws->direct && hs_conv_has_direct(job->layer))
        hs_conv_direct_rows(job->layer, job->params, job->in, out, r0, r1);
    else
        hs_conv_forward_rows(job->layer, job->params, job->in, out, r0, r1,
                             job->ws->col[thread]);
}

static void pool_task(void *p, int task, int thread)
{
    layer_job *job = p;
    const hs_layer *l = job->layer;
    (void)thread;
    int s0 = (int)((long)job->n * task / job->ws->threads);
    int s1 = (int)((long)job->n * (task + 1) / job->ws->threads);
    hs_maxpool_forward(l, job->in + (size_t)s0 * shape_size(l->in),
                       job->out + (size_t)s0 * shape_size(l->out), s1 - s0);
}

static void output_probs(const hs_layer *l, const float *logits, float *probs, int n)
{
    int k = l->out.c;
    for (int s = 0; s < n; s++) {
        const float *z = logits + (size_t)s * k;
        float *p = probs + (size_t)s * k;
        if (l->spec.kind == HS_LAYER_SIGMOID) {
            for (int j = 0; j < k; j++)
                p[j] = (float)(1.0 / (1.0 + exp(-(double)z[j])));
        } else {
            double zmax = z[0], sum = 0.0;
            for (int j = 1; j < k; j++)
                if (z[j] > zmax)
                    zmax = z[j];
            for (int j = 0; j < k; j++)
                sum += exp((double)z[j] - zmax);
            for (int j = 0; j < k; j++)
                p[j] = (float)(exp((double)z[j] - zmax) / sum);
        }
    }
}

/* Whether inference may compute conv layer i and the max-pooling after it
 * together, two convolution rows at a time, so the full-size convolution
 * output is never written out (it is the largest tensor of the network). */
static int fuses_pool(const hs_net *net, const hs_ws *ws, int i)
{
    const hs_layer *l = &net->layers[i];
    return ws->direct && l->spec.kind == HS_LAYER_CONV && hs_conv_has_direct(l) &&
           i + 1 < net->n_layers && net->layers[i + 1].spec.kind == HS_LAYER_MAXPOOL &&
           (size_t)2 * l->out.w * l->out.c <= ws->scratch;
}

static void conv_pool_sample(const hs_layer *conv, const hs_layer *pool,
                             const float *params, const float *in, float *out,
                             float *rows)
{
    const int ow = conv->out.w, c = conv->out.c;
    for (int py = 0; py < pool->out.h; py++) {
        long r0 = (long)(2 * py) * ow;
        hs_conv_direct_rows(conv, params, in, rows, r0, r0 + 2L * ow);
        hs_maxpool_row_pair(rows, rows + (size_t)ow * c, pool->out.w, c,
                            out + (size_t)py * pool->out.w * c);
    }
}

/* Inference of samples [s0, s1) one at a time through every layer up to
 * the logits, in this thread's private buffers: a sample's activations stay
 * in cache from one layer to the next, and threads never wait for each
 * other. */
static void infer_samples(const hs_net *net, hs_ws *ws, const float *x,
                          int s0, int s1, int thread)
{
    const int L = net->n_layers;
    const size_t in_size = shape_size(net->input);
    float *col = ws->col[thread];
    for (int s = s0; s < s1; s++) {
        const float *cur = x + (size_t)s * in_size;
        for (int i = 0; i < L - 1; i++) {
            const hs_layer *l = &net->layers[i];
            float *dst = cur == ws->sample_a[thread] ? ws->sample_b[thread] : ws->sample_a[thread];
            if (i == L - 2)
                dst = ws->out[i] + (size_t)s * shape_size(l->out);
            if (ws->wino_now[i]) {
                const hs_layer *pool = NULL;
                int rows = (l->out.h + 1) / 2;
                if (l[1].spec.kind == HS_LAYER_MAXPOOL && i + 1 < L - 2) {
                    pool = &l[1];
                    rows = pool->out.h;
                }
                hs_winograd_rows(l, net->params, ws->wino_u[i], cur, dst, 0, rows, pool, col);
                cur = dst;
                i += pool != NULL;
                continue;
            }
            if (fuses_pool(net, ws, i) && i + 1 < L - 2) {
                conv_pool_sample(l, &l[1], net->params, cur, dst, col);
                cur = dst;
                i++; /* the pooling layer is done */
                continue;
            }
            switch (l->spec.kind) {
            case HS_LAYER_CONV: {
                long rows = (long)l->out.h * l->out.w;
                if (ws->direct && hs_conv_has_direct(l))
                    hs_conv_direct_rows(l, net->params, cur, dst, 0, rows);
                else
                    hs_conv_forward_rows(l, net->params, cur, dst, 0, rows, col);
                break;
            }
            case HS_LAYER_MAXPOOL:
                hs_maxpool_forward(l, cur, dst, 1);
                break;
            case HS_LAYER_DENSE:
                hs_dense_forward(l, net->params, cur, dst, 1);
                break;
            case HS_LAYER_RELU:
                for (size_t j = 0; j < shape_size(l->out); j++)
                    dst[j] = cur[j] > 0.0f ? cur[j] : 0.0f;
                break;
            default: /* flatten, dropout: the input passes through */
                if (i == L - 2)
                    memcpy(dst, cur, shape_size(l->out) * sizeof *dst);
                else
                    dst = (float *)cur; /* only read, never written */
                break;
            }
            cur = dst;
        }
    }
}

typedef struct {
    const hs_net *net;
    hs_ws *ws;
    const float *x;
    int n;
} infer_job;

static void infer_task(void *p, int task, int thread)
{
    infer_job *job = p;
    int s0 = (int)((long)job->n * task / job->ws->threads);
    int s1 = (int)((long)job->n * (task + 1) / job->ws->threads);
    infer_samples(job->net, job->ws, job->x, s0, s1, thread);
}

/* hs_forward; dropout != 0 applies the dropout masks of training, 0
 * passes the values through (copied, so a training workspace still keeps
 * every layer's activations, as Grad-CAM needs). */
static const float *forward_impl(const hs_net *net, hs_ws *ws, const float *x, int n,
                                 int training, int dropout, hs_rng *rng)
{
    if (n < 1 || n > ws->max_batch || (training && !ws->training))
        return NULL;
    /* The weights may have changed since the last call (training steps
     * between calls), so the Winograd transform is redone each call; it is
     * paid once per call and saves work on every output pixel of the
     * batch, so it is skipped for layers with few pixels. Winograd work is
     * split by samples, so it also needs a sample per thread. */
    for (int i = 0; i < net->n_layers; i++) {
        const hs_layer *l = &net->layers[i];
        ws->wino_now[i] = ws->direct && ws->wino_u[i] != NULL && n >= ws->threads &&
                          (long)l->out.h * l->out.w * n >= 256;
        if (ws->wino_now[i])
            hs_winograd_weights(l, net->params, ws->wino_u[i]);
    }
    if (!training && n >= ws->threads) {
        infer_job job = {net, ws, x, n};
        hs_pool_run(ws->pool, ws->threads, infer_task, &job);
        const int L = net->n_layers;
        output_probs(&net->layers[L - 1], ws->out[L - 2], ws->out[L - 1], n);
        ws->last_n = n;
        ws->last_training = 0;
        return ws->out[L - 1];
    }
    const float *cur = x;
    for (int i = 0; i < net->n_layers; i++) {
        const hs_layer *l = &net->layers[i];
        float *dst = ws->out[i];
        size_t count = shape_size(l->out) * (size_t)n;
        layer_job job = {l, net->params, cur, dst, 0, 0, n, ws, NULL};
        switch (l->spec.kind) {
        case HS_LAYER_CONV: {
            if (ws->wino_now[i]) {
                job.wino_u = ws->wino_u[i];
                hs_pool_run(ws->pool, n, winograd_task, &job);
                break;
            }
            job.rows = (long)n * l->out.h * l->out.w;
            job.tile = hs_conv_tile_rows(l);
            /* Enough tiles that every thread gets work, even for one image. */
            long per_thread = (job.rows + ws->threads - 1) / ws->threads;
            if (per_thread < job.tile)
                job.tile = per_thread > 0 ? per_thread : 1;
            int tasks = (int)((job.rows + job.tile - 1) / job.tile);
            hs_pool_run(ws->pool, tasks, conv_task, &job);
            break;
        }
        case HS_LAYER_MAXPOOL:
            hs_pool_run(ws->pool, ws->threads, pool_task, &job);
            break;
        case HS_LAYER_DENSE:
            hs_dense_forward(l, net->params, cur, dst, n);
            break;
        case HS_LAYER_RELU:
            for (size_t j = 0; j < count; j++)
                dst[j] = cur[j] > 0.0f ? cur[j] : 0.0f;
            break;
        case HS_LAYER_DROPOUT:
            if (training && !dropout) {
                if (dst != cur)
                    memcpy(dst, cur, count * sizeof *dst);
            } else if (training) {
                float keep = 1.0f - l->spec.rate, scale = 1.0f / keep;
                float *mask = ws->mask[i];
                for (size_t j = 0; j < count; j++)
                    mask[j] = hs_rng_uniform(rng) < keep ? scale : 0.0f;
                for (size_t j = 0; j < count; j++)
                    dst[j] = cur[j] * mask[j];
            }
            break;
        case HS_LAYER_FLATTEN:
            break;
        case HS_LAYER_SIGMOID:
        case HS_LAYER_SOFTMAX:
            output_probs(l, cur, dst, n);
            break;
        }
        if (aliases_input(l, training))
            ws->out[i] = (float *)cur; /* only ever read through, never written */
        else
            cur = dst;
    }
    ws->last_n = n;
    ws->last_training = training;
    return cur;
}

const float *hs_forward(const hs_net *net, hs_ws *ws, const float *x, int n,
                        int training, hs_rng *rng)
{
    return forward_impl(net, ws, x, n, training, training, rng);
}

/* ---- loss and backward -------------------------------------------------- */

double hs_loss_soft(const hs_net *net, hs_ws *ws, const float *targets, int n)
{
    const hs_layer *outl = &net->layers[net->n_layers - 1];
    const float *z = ws->out[net->n_layers - 2];
    const float *p = ws->out[net->n_layers - 1];
    int k = outl->out.c;
    double total = 0.0;
    for (int s = 0; s < n; s++) {
        const float *zs = z + (size_t)s * k;
        const float *ps = p + (size_t)s * k;
        const float *ts = targets + (size_t)s * k;
        float *g = ws->dlogits != NULL ? ws->dlogits + (size_t)s * k : NULL;
        if (outl->spec.kind == HS_LAYER_SIGMOID) {
            for (int j = 0; j < k; j++) {
                double y = ts[j], zz = zs[j];
                /* log(1 + e^z) - y z, written to stay finite for large |z|. */
                double softplus = zz > 0 ? zz + log1p(exp(-zz)) : log1p(exp(zz));
                total += softplus - y * zz;
                if (g != NULL)
                    g[j] = (float)((ps[j] - y) / n);
            }
        } else {
            double zmax = zs[0], sum = 0.0;
            for (int j = 1; j < k; j++)
                if (zs[j] > zmax)
                    zmax = zs[j];
            for (int j = 0; j < k; j++)
                sum += exp(zs[j] - zmax);
            /* -sum_j t_j log p_j, with log p_j = z_j - zmax - log(sum) */
            for (int j = 0; j < k; j++)
                total += ts[j] * (zmax + log(sum) - zs[j]);
            if (g != NULL)
                for (int j = 0; j < k; j++)
                    g[j] = (float)((ps[j] - ts[j]) / n);
        }
    }
    return total / n;
}

void hs_label_targets(const int *labels, int n, int k, float *targets)
{
    for (int s = 0; s < n; s++)
        for (int j = 0; j < k; j++)
            targets[(size_t)s * k + j] = k == 1 ? (float)(labels[s] != 0) : (float)(labels[s] == j);
}

double hs_loss(const hs_net *net, hs_ws *ws, const int *labels, int n)
{
    int k = net->layers[net->n_layers - 1].out.c;
    float *t = malloc((size_t)(n > 0 ? n : 1) * (size_t)k * sizeof *t);
    if (t == NULL)
        return NAN;
    hs_label_targets(labels, n, k, t);
    double loss = hs_loss_soft(net, ws, t, n);
    free(t);
    return loss;
}

typedef struct {
    hs_net *net;
    hs_ws *ws;
    const float *x;
    int n;
} backward_job;

static void backward_task(void *p, int task, int thread)
{
    backward_job *job = p;
    hs_net *net = job->net;
    hs_ws *ws = job->ws;
    int s0 = (int)((long)job->n * task / ws->threads);
    int s1 = (int)((long)job->n * (task + 1) / ws->threads);
    int n = s1 - s0;
    if (n <= 0)
        return;
    float *grads = thread == 0 ? net->grads : ws->part[thread];
    /* g holds this share's gradient w.r.t. the current layer's output; din
     * goes to whichever private buffer g is not in. */
    float *g = ws->dlogits + (size_t)s0 * hs_net_outputs(net);
    float *next = ws->grad_a[thread], *other = ws->grad_b[thread];
    for (int i = net->n_layers - 2; i >= 0; i--) {
        const hs_layer *l = &net->layers[i];
        size_t per_in = shape_size(l->in), per_out = shape_size(l->out);
        const float *in = (i > 0 ? ws->out[i - 1] : job->x) + (size_t)s0 * per_in;
        const float *out = ws->out[i] + (size_t)s0 * per_out;
        size_t count = per_out * (size_t)n;
        float *din = i > 0 ? next : NULL;
        switch (l->spec.kind) {
        case HS_LAYER_CONV:
            if (l->spec.relu)
                hs_relu_mask(g, out, count);
            hs_conv_backward(l, net->params, grads, in, g, din, n,
                             ws->col[thread], ws->dcol[thread]);
            break;
        case HS_LAYER_DENSE:
            if (l->spec.relu)
                hs_relu_mask(g, out, count);
            hs_dense_backward(l, net->params, grads, in, g, din, n);
            break;
        case HS_LAYER_MAXPOOL:
            if (din != NULL)
                hs_maxpool_backward(l, in, out, g, din, n);
            break;
        case HS_LAYER_RELU:
            hs_relu_mask(g, out, count);
            din = g;
            break;
        case HS_LAYER_DROPOUT: {
            const float *mask = ws->mask[i] + (size_t)s0 * per_out;
            for (size_t j = 0; j < count; j++)
                g[j] *= mask[j];
            din = g;
            break;
        }
        case HS_LAYER_FLATTEN:
        case HS_LAYER_SIGMOID:
        case HS_LAYER_SOFTMAX:
            din = g;
            break;
        }
        if (din == NULL)
            break;
        if (din != g) {
            g = din;
            next = other;
            other = din;
        }
    }
}

void hs_backward(hs_net *net, hs_ws *ws, const float *x, int n)
{
    if (net->grads == NULL || !ws->training || !ws->last_training || n != ws->last_n)
        return;
    memset(net->grads, 0, net->n_params * sizeof *net->grads);
    for (int t = 1; t < ws->threads; t++)
        memset(ws->part[t], 0, net->n_params * sizeof(float));
    backward_job job = {net, ws, x, n};
    hs_pool_run(ws->pool, ws->threads, backward_task, &job);
    for (int t = 1; t < ws->threads; t++) {
        const float *p = ws->part[t];
        for (size_t j = 0; j < net->n_params; j++)
            net->grads[j] += p[j];
    }
}

/* ---- saliency: gradients of a score, Grad-CAM ----------------------------- */

int hs_net_last_conv(const hs_net *net)
{
    for (int i = net->n_layers - 1; i >= 0; i--)
        if (net->layers[i].spec.kind == HS_LAYER_CONV)
            return i;
    return -1;
}

hs_status hs_score_gradient(const hs_net *net, hs_ws *ws, int layer, int unit, const float *x,
                            float *grad, float *logit, hs_error *err)
{
    const int L = net->n_layers;
    if (!ws->training || ws->n_layers != L || ws->n_params != net->n_params)
        return hs_fail(err, HS_ERR_ARG, "score gradient: needs a training workspace of this network");
    if (layer < 0 || layer > L - 2)
        return hs_fail(err, HS_ERR_ARG, "score gradient: layer %d, expected 0..%d", layer, L - 2);
    if (unit < 0 || unit >= hs_net_outputs(net))
        return hs_fail(err, HS_ERR_ARG, "score gradient: output unit %d, expected 0..%d", unit,
                       hs_net_outputs(net) - 1);
    /* The kernels accumulate parameter gradients as they go; they are not
     * wanted here, so they land in a scratch vector. */
    float *scratch = calloc(net->n_params > 0 ? net->n_params : 1, sizeof *scratch);
    if (scratch == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "score gradient: out of memory for %zu gradients", net->n_params);
    if (forward_impl(net, ws, x, 1, 1, 0, NULL) == NULL) {
        free(scratch);
        return hs_fail(err, HS_ERR_ARG, "score gradient: the forward pass was refused");
    }
    const int k = hs_net_outputs(net);
    if (logit != NULL)
        *logit = ws->out[L - 2][unit];
    /* d score / d logits: 1 for the chosen unit. The score is the logit,
     * not the probability, so a saturated sigmoid still has a gradient. */
    for (int j = 0; j < k; j++)
        ws->dlogits[j] = j == unit ? 1.0f : 0.0f;
    float *g = ws->dlogits;
    float *next = ws->grad_a[0], *other = ws->grad_b[0];
    for (int i = L - 2; i > layer; i--) {
        const hs_layer *l = &net->layers[i];
        const float *in = ws->out[i - 1];
        const float *out = ws->out[i];
        size_t count = shape_size(l->out);
        float *din = next;
        switch (l->spec.kind) {
        case HS_LAYER_CONV:
            if (l->spec.relu)
                hs_relu_mask(g, out, count);
            hs_conv_backward(l, net->params, scratch, in, g, din, 1, ws->col[0], ws->dcol[0]);
            break;
        case HS_LAYER_DENSE:
            if (l->spec.relu)
                hs_relu_mask(g, out, count);
            hs_dense_backward(l, net->params, scratch, in, g, din, 1);
            break;
        case HS_LAYER_MAXPOOL:
            hs_maxpool_backward(l, in, out, g, din, 1);
            break;
        case HS_LAYER_RELU:
            hs_relu_mask(g, out, count);
            din = g;
            break;
        default: /* dropout (off here), flatten: the gradient passes */
            din = g;
            break;
        }
        if (din != g) {
            g = din;
            next = other;
            other = din;
        }
    }
    memcpy(grad, g, shape_size(net->layers[layer].out) * sizeof *grad);
    free(scratch);
    return HS_OK;
}

hs_status hs_gradcam(const hs_net *net, hs_ws *ws, int layer, const float *x, float *map,
                     float *logit, hs_error *err)
{
    if (layer < 0)
        layer = hs_net_last_conv(net);
    if (layer < 0 || layer >= net->n_layers || net->layers[layer].spec.kind != HS_LAYER_CONV)
        return hs_fail(err, HS_ERR_ARG, "Grad-CAM: layer %d is not a convolution", layer);
    const hs_shape s = net->layers[layer].out;
    const size_t pixels = (size_t)s.h * (size_t)s.w;
    float *grad = malloc(shape_size(s) * sizeof *grad);
    double *weight = calloc((size_t)s.c, sizeof *weight);
    if (grad == NULL || weight == NULL) {
        free(grad);
        free(weight);
        return hs_fail(err, HS_ERR_NOMEM, "Grad-CAM: out of memory for a %dx%dx%d gradient", s.h, s.w, s.c);
    }
    hs_status st = hs_score_gradient(net, ws, layer, 0, x, grad, logit, err);
    if (st == HS_OK) {
        /* The channel weights: the gradient averaged over the map (global
         * average pooling of the gradients). */
        for (size_t p = 0; p < pixels; p++)
            for (int c = 0; c < s.c; c++)
                weight[c] += grad[p * (size_t)s.c + (size_t)c];
        for (int c = 0; c < s.c; c++)
            weight[c] /= (double)pixels;
        /* The map: ReLU of the weighted sum of the activations. */
        const float *a = ws->out[layer];
        for (size_t p = 0; p < pixels; p++) {
            double v = 0.0;
            for (int c = 0; c < s.c; c++)
                v += weight[c] * a[p * (size_t)s.c + (size_t)c];
            map[p] = v > 0.0 ? (float)v : 0.0f;
        }
    }
    free(grad);
    free(weight);
    return st;
}
