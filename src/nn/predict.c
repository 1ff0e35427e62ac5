/* predict.c - ensemble and test-time-augmentation averaging (see
 * predict.h). Members share one workspace: they have the same layer list,
 * so the buffers fit all of them.
 *
 * A model trained on plain gray pictures (hs_recipe_is_gray: every channel
 * is the same gray image, as in models trained before the re-windowed
 * channels of --windows) is run on one channel: each member is replaced by
 * its hs_net_merge_input_channels copy and only channel 0 of the inputs is
 * read. Same probabilities up to float rounding, a third of the first
 * convolution's work, and the mirrored view costs a third as much to make. */
#include "hemoscan/predict.h"

#include <stdlib.h>
#include <string.h>

struct hs_predictor {
    const hs_model *model;
    hs_ws *ws;
    int max_batch;
    int tta;
    float *flipped; /* max_batch mirrored inputs (one channel when merged) */
    int merged;     /* the members below run on channel 0 of the inputs */
    hs_net gray[HS_MODEL_MAX_MEMBERS];
    float *channel0; /* max_batch one-channel inputs */
};

/* The nets a batch goes through. */
static const hs_net *member_net(const hs_predictor *p, int i)
{
    return p->merged ? &p->gray[i] : &p->model->member[i];
}

/* The gray members of a gray-trained model whose first layer is a
 * convolution over several channels; p->merged stays 0 otherwise. */
static hs_status merge_gray_members(hs_predictor *p, hs_error *err)
{
    const hs_model *m = p->model;
    const hs_net *first = &m->member[0];
    if (!hs_recipe_is_gray(&m->recipe) || first->input.c < 2 || first->n_layers < 1 ||
        first->layers[0].spec.kind != HS_LAYER_CONV)
        return HS_OK;
    for (int i = 0; i < m->n_members; i++) {
        hs_status st = hs_net_merge_input_channels(&m->member[i], &p->gray[i], err);
        if (st != HS_OK)
            return st;
    }
    p->merged = 1;
    p->channel0 = malloc((size_t)p->max_batch * first->input.h * first->input.w * sizeof *p->channel0);
    return p->channel0 != NULL ? HS_OK : hs_fail(err, HS_ERR_NOMEM, "out of memory for a predictor");
}

hs_status hs_predictor_create(hs_predictor **out, const hs_model *model, int max_batch,
                              int tta, int threads, hs_error *err)
{
    *out = NULL;
    hs_predictor *p = calloc(1, sizeof *p);
    if (p == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for a predictor");
    p->model = model;
    p->max_batch = max_batch;
    p->tta = tta;
    hs_status st = merge_gray_members(p, err);
    if (st == HS_OK)
        st = hs_ws_create(&p->ws, member_net(p, 0), max_batch, 0, threads, err);
    if (st == HS_OK && tta) {
        const hs_shape in = member_net(p, 0)->input;
        p->flipped = malloc((size_t)max_batch * in.h * in.w * in.c * sizeof *p->flipped);
        if (p->flipped == NULL)
            st = hs_fail(err, HS_ERR_NOMEM, "out of memory for a predictor");
    }
    if (st != HS_OK) {
        hs_predictor_free(p);
        return st;
    }
    *out = p;
    return HS_OK;
}

void hs_predictor_free(hs_predictor *pred)
{
    if (pred == NULL)
        return;
    hs_ws_free(pred->ws);
    free(pred->flipped);
    for (int i = 0; i < HS_MODEL_MAX_MEMBERS; i++)
        hs_net_free(&pred->gray[i]);
    free(pred->channel0);
    free(pred);
}

int hs_predictor_max_batch(const hs_predictor *pred)
{
    return pred->max_batch;
}

int hs_predicted_class(const float *probs, int outputs, double threshold)
{
    if (outputs == 1)
        return probs[0] >= threshold;
    int best = 0;
    for (int c = 1; c < outputs; c++)
        if (probs[c] > probs[best])
            best = c;
    return best;
}

void hs_flip_horizontal(const float *in, float *out, int n, int h, int w, int c)
{
    for (long row = 0; row < (long)n * h; row++) {
        const float *src = in + (size_t)row * w * c;
        float *dst = out + (size_t)row * w * c;
        for (int x = 0; x < w; x++)
            memcpy(dst + (size_t)(w - 1 - x) * c, src + (size_t)x * c, (size_t)c * sizeof *dst);
    }
}

void hs_predictor_run(hs_predictor *pred, const float *x, int n, float *probs)
{
    const hs_model *m = pred->model;
    const hs_shape given = m->member[0].input; /* what x holds */
    const hs_shape in = member_net(pred, 0)->input; /* what the nets take */
    const size_t per = (size_t)given.h * given.w * given.c;
    const int k = hs_net_outputs(&m->member[0]);
    const int views = pred->tta ? 2 : 1;
    /* The mean is the sum divided by the count, not a sum of scaled terms:
     * 1/10 is not a float, and ten outputs of exactly 1 scaled by 0.1f add
     * up to 1.0000001. A float sum of values in [0, 1] rounds to at most
     * the count, and the division then to at most 1. */
    const float count_views = (float)(m->n_members * views);
    for (int b = 0; b < n; b += pred->max_batch) {
        int count = n - b < pred->max_batch ? n - b : pred->max_batch;
        const float *xb = x + (size_t)b * per;
        float *pb = probs + (size_t)b * k;
        if (pred->merged) {
            const size_t pixels = (size_t)count * in.h * in.w;
            for (size_t i = 0; i < pixels; i++)
                pred->channel0[i] = xb[i * (size_t)given.c];
            xb = pred->channel0;
        }
        memset(pb, 0, (size_t)count * k * sizeof *pb);
        if (pred->tta)
            hs_flip_horizontal(xb, pred->flipped, count, in.h, in.w, in.c);
        for (int v = 0; v < views; v++) {
            const float *input = v == 0 ? xb : pred->flipped;
            for (int mi = 0; mi < m->n_members; mi++) {
                const float *out = hs_forward(member_net(pred, mi), pred->ws, input, count, 0, NULL);
                for (int j = 0; j < count * k; j++)
                    pb[j] += out[j];
            }
        }
        for (int j = 0; j < count * k; j++)
            pb[j] /= count_views;
    }
}
