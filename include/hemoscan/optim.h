/* optim.h - optimisers and learning-rate schedules for training.
 *
 * Adam (with optional decoupled weight decay, i.e. AdamW) and SGD with
 * momentum update an hs_net in place from its gradients. Weight decay
 * applies to weights only, never to biases. Schedules are separate from
 * optimisers: the trainer asks the schedule for each epoch's learning rate
 * and tells it each epoch's validation loss (for reduce-on-plateau). */
#ifndef HEMOSCAN_OPTIM_H
#define HEMOSCAN_OPTIM_H

#include <stddef.h>

#include "hemoscan/cnn.h"
#include "hemoscan/status.h"

typedef enum { HS_OPT_SGD, HS_OPT_ADAM } hs_opt_kind;

typedef struct {
    hs_opt_kind kind;
    float momentum;     /* SGD: 0.9 by default */
    int nesterov;       /* SGD: Nesterov momentum */
    float beta1, beta2; /* Adam: 0.9, 0.999 */
    float eps;          /* Adam: 1e-7 */
    float weight_decay; /* 0 = none */
    int decoupled;      /* 1: decay weights directly (AdamW); 0: L2 term in the gradient */
} hs_opt_config;

typedef struct {
    hs_opt_config cfg;
    size_t n;
    float *m; /* first moment (Adam) or velocity (SGD) */
    float *v; /* second moment (Adam) */
    long step;
} hs_optimizer;

/* Usual defaults for kind, no weight decay. */
void hs_opt_config_default(hs_opt_config *cfg, hs_opt_kind kind);
hs_status hs_optimizer_init(hs_optimizer *opt, const hs_opt_config *cfg,
                            const hs_net *net, hs_error *err);
void hs_optimizer_free(hs_optimizer *opt);
/* One update of net->params from net->grads with learning rate lr. */
void hs_optimizer_step(hs_optimizer *opt, hs_net *net, float lr);

typedef enum {
    HS_SCHED_CONSTANT,
    HS_SCHED_STEP,    /* lr * gamma^(epoch / step_epochs) */
    HS_SCHED_PLATEAU, /* lr * factor after `patience` epochs without improvement */
    HS_SCHED_COSINE   /* linear warm-up, then cosine from lr down to min_lr */
} hs_sched_kind;

typedef struct {
    hs_sched_kind kind;
    float base_lr;
    int step_epochs;     /* step: epochs between decays (default 10) */
    float gamma;         /* step: factor per decay (default 0.5) */
    int patience;        /* plateau: epochs to wait (default 3) */
    float factor;        /* plateau: factor (default 0.5) */
    float min_delta;     /* plateau: smallest improvement that counts */
    float min_lr;        /* plateau, cosine: floor */
    int total_epochs;    /* cosine: length of the schedule */
    int warmup_epochs;   /* cosine: linear warm-up epochs */
    /* state for reduce-on-plateau */
    float current_lr;
    double best;
    int bad_epochs;
} hs_schedule;

/* Defaults for kind starting at base_lr over total_epochs. */
void hs_schedule_init(hs_schedule *s, hs_sched_kind kind, float base_lr,
                      int total_epochs);
/* Learning rate for epoch (0-based). */
float hs_schedule_lr(const hs_schedule *s, int epoch);
/* Report the end-of-epoch validation loss (used by reduce-on-plateau). */
void hs_schedule_observe(hs_schedule *s, double val_loss);
/* "constant", "step", "plateau", "cosine" and back (-1 if unknown). */
const char *hs_sched_kind_name(hs_sched_kind kind);
int hs_sched_kind_parse(const char *name, hs_sched_kind *kind);

#endif
