/* optim.c - Adam/AdamW and SGD with momentum, and learning-rate schedules.
 *
 * Updates walk the network layer by layer so weight decay can skip biases
 * (decaying a bias only shifts the activation and does not regularise).
 * Formulas are the published ones: Kingma & Ba (2015) for Adam with bias
 * correction, Loshchilov & Hutter (2019) for decoupled decay. */
#include "hemoscan/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void hs_opt_config_default(hs_opt_config *cfg, hs_opt_kind kind)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->momentum = 0.9f;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.999f;
    cfg->eps = 1e-7f;
    cfg->decoupled = kind == HS_OPT_ADAM;
}

hs_status hs_optimizer_init(hs_optimizer *opt, const hs_opt_config *cfg,
                            const hs_net *net, hs_error *err)
{
    memset(opt, 0, sizeof *opt);
    opt->cfg = *cfg;
    opt->n = net->n_params;
    opt->m = calloc(opt->n, sizeof *opt->m);
    opt->v = calloc(opt->n, sizeof *opt->v);
    if (opt->m == NULL || opt->v == NULL) {
        hs_optimizer_free(opt);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for optimiser state of %zu parameters",
                       net->n_params);
    }
    return HS_OK;
}

void hs_optimizer_free(hs_optimizer *opt)
{
    free(opt->m);
    free(opt->v);
    memset(opt, 0, sizeof *opt);
}

/* Update params[off .. off+len) with weight decay wd (0 for biases). */
static void update_block(hs_optimizer *opt, hs_net *net, size_t off, size_t len,
                         float lr, float wd, float bc1, float bc2)
{
    const hs_opt_config *c = &opt->cfg;
    float *p = net->params + off, *g = net->grads + off;
    float *m = opt->m + off, *v = opt->v + off;
    for (size_t j = 0; j < len; j++) {
        float grad = g[j];
        if (!c->decoupled)
            grad += wd * p[j];
        else
            p[j] -= lr * wd * p[j];
        if (c->kind == HS_OPT_ADAM) {
            m[j] = c->beta1 * m[j] + (1.0f - c->beta1) * grad;
            v[j] = c->beta2 * v[j] + (1.0f - c->beta2) * grad * grad;
            float mhat = m[j] / bc1, vhat = v[j] / bc2;
            p[j] -= lr * mhat / (sqrtf(vhat) + c->eps);
        } else {
            m[j] = c->momentum * m[j] + grad;
            float step = c->nesterov ? grad + c->momentum * m[j] : m[j];
            p[j] -= lr * step;
        }
    }
}

void hs_optimizer_step(hs_optimizer *opt, hs_net *net, float lr)
{
    opt->step++;
    float bc1 = 1.0f, bc2 = 1.0f;
    if (opt->cfg.kind == HS_OPT_ADAM) {
        bc1 = (float)(1.0 - pow(opt->cfg.beta1, (double)opt->step));
        bc2 = (float)(1.0 - pow(opt->cfg.beta2, (double)opt->step));
    }
    for (int i = 0; i < net->n_layers; i++) {
        const hs_layer *l = &net->layers[i];
        update_block(opt, net, l->w_off, l->w_len, lr, opt->cfg.weight_decay, bc1, bc2);
        update_block(opt, net, l->b_off, l->b_len, lr, 0.0f, bc1, bc2);
    }
}

void hs_schedule_init(hs_schedule *s, hs_sched_kind kind, float base_lr,
                      int total_epochs)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->base_lr = base_lr;
    s->step_epochs = 10;
    s->gamma = 0.5f;
    s->patience = 3;
    s->factor = 0.5f;
    s->min_delta = 1e-4f;
    s->min_lr = base_lr * 1e-3f;
    s->total_epochs = total_epochs;
    s->current_lr = base_lr;
    s->best = INFINITY;
}

float hs_schedule_lr(const hs_schedule *s, int epoch)
{
    switch (s->kind) {
    case HS_SCHED_STEP:
        return s->base_lr * powf(s->gamma, (float)(epoch / (s->step_epochs > 0 ? s->step_epochs : 1)));
    case HS_SCHED_PLATEAU:
        return s->current_lr;
    case HS_SCHED_COSINE: {
        if (epoch < s->warmup_epochs)
            return s->base_lr * (float)(epoch + 1) / (float)(s->warmup_epochs + 1);
        int span = s->total_epochs - s->warmup_epochs;
        if (span < 1)
            return s->base_lr;
        double t = (double)(epoch - s->warmup_epochs) / span;
        if (t > 1.0)
            t = 1.0;
        return s->min_lr + (s->base_lr - s->min_lr) * (float)(0.5 * (1.0 + cos(M_PI * t)));
    }
    case HS_SCHED_CONSTANT:
    default:
        return s->base_lr;
    }
}

void hs_schedule_observe(hs_schedule *s, double val_loss)
{
    if (s->kind != HS_SCHED_PLATEAU)
        return;
    if (val_loss < s->best - s->min_delta) {
        s->best = val_loss;
        s->bad_epochs = 0;
        return;
    }
    if (++s->bad_epochs >= s->patience) {
        s->current_lr *= s->factor;
        if (s->current_lr < s->min_lr)
            s->current_lr = s->min_lr;
        s->bad_epochs = 0;
    }
}

static const char *const sched_names[] = {"constant", "step", "plateau", "cosine"};

const char *hs_sched_kind_name(hs_sched_kind kind)
{
    if ((int)kind < 0 || (int)kind > HS_SCHED_COSINE)
        return "unknown";
    return sched_names[kind];
}

int hs_sched_kind_parse(const char *name, hs_sched_kind *kind)
{
    for (int k = 0; k <= HS_SCHED_COSINE; k++) {
        if (strcmp(name, sched_names[k]) == 0) {
            *kind = (hs_sched_kind)k;
            return 0;
        }
    }
    return -1;
}
