/* train.c - the training loop (see train.h).
 *
 * One member at a time: shuffle, gather a batch (augmented on the fly into
 * a batch buffer, then optionally mixed up), forward, loss against soft
 * targets, backward, optimiser step; then score the validation set without
 * dropout or augmentation, keep the weights of the epoch with the lowest
 * validation loss, and stop when it has not improved for `patience`
 * epochs. Members differ in their random streams and, in a fold ensemble,
 * in the fold they validate on. The threshold is placed at the end: for
 * members sharing a validation set, on what users will actually get (the
 * ensemble average, with test-time augmentation if asked for); for a fold
 * ensemble, on every example's out-of-fold score, since no example is
 * unseen by the whole ensemble but each is unseen by one member. A member
 * starts from random weights, or (cfg->init) from another model's weights
 * in the layers the two share, and then trains all of them.
 *
 * hs_train_model, at the end, is one whole training as hemoscan --train
 * makes it (the reference network, the starting weights, a fold ensemble
 * or a shared validation split, the model's provenance). It is here, not in
 * the command line, so that --train and every fold of cross-validation
 * (crossval.c) run the very same code.
 *
 * The example loader routes by name: *.png through hs_png_read, any other
 * file through the caller's reader (train.h says why the reader comes
 * from above). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "hemoscan/clock.h"
#include "hemoscan/metrics.h"
#include "hemoscan/predict.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

void hs_examples_free(hs_examples *ex)
{
    free(ex->x);
    free(ex->label);
    free(ex->source);
    free(ex->via);
    memset(ex, 0, sizeof *ex);
}

static hs_status examples_alloc(hs_examples *ex, int n, size_t size, hs_error *err)
{
    memset(ex, 0, sizeof *ex);
    ex->size = size;
    ex->x = malloc((size_t)(n > 0 ? n : 1) * size * sizeof *ex->x);
    ex->label = malloc((size_t)(n > 0 ? n : 1) * sizeof *ex->label);
    ex->source = malloc((size_t)(n > 0 ? n : 1) * sizeof *ex->source);
    ex->via = malloc((size_t)(n > 0 ? n : 1) * sizeof *ex->via);
    if (ex->x == NULL || ex->label == NULL || ex->source == NULL || ex->via == NULL) {
        hs_examples_free(ex);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for %d images", n);
    }
    return HS_OK;
}

/* 1 when path names a PNG file (by its extension, any case). */
static int is_png_path(const char *path)
{
    size_t len = strlen(path);
    return len >= 4 && strcasecmp(path + len - 4, ".png") == 0;
}

/* One file of a data set into out: PNG files through hs_png_read and
 * hs_prepare_input, any other through reader (when there is one); *via
 * says which. */
static hs_status load_one(const char *path, const hs_input_recipe *recipe, const hs_example_reader *reader,
                          float *out, unsigned char *via, hs_error *err)
{
    if (!is_png_path(path)) {
        *via = HS_VIA_READER;
        if (reader == NULL || reader->read == NULL)
            return hs_fail(err, HS_ERR_FORMAT, "%s: not a .png file, and no reader for other files here", path);
        return reader->read(reader->user, path, recipe, out, err);
    }
    *via = HS_VIA_PNG;
    hs_image img = {0};
    hs_status st = hs_png_read(path, &img, err);
    if (st == HS_OK)
        st = hs_prepare_input(&img, recipe, out, err);
    hs_image_free(&img);
    return st;
}

hs_status hs_examples_load_with(const hs_dataset *ds, const hs_input_recipe *recipe,
                                const hs_example_reader *reader, FILE *log, hs_examples *out, int *skipped,
                                hs_error *err)
{
    size_t size = (size_t)recipe->width * recipe->height * recipe->channels;
    hs_status st = examples_alloc(out, ds->n, size, err);
    if (st != HS_OK)
        return st;
    *skipped = 0;
    for (int i = 0; i < ds->n; i++) {
        hs_error file_err;
        st = load_one(ds->path[i], recipe, reader, out->x + (size_t)out->n * size, &out->via[out->n], &file_err);
        if (st == HS_ERR_NOMEM) {
            hs_examples_free(out);
            return hs_fail(err, st, "%s", file_err.msg);
        }
        if (st != HS_OK) {
            if (log != NULL)
                fprintf(log, "hemoscan: skipped %s\n", file_err.msg);
            (*skipped)++;
            continue;
        }
        out->label[out->n] = ds->label[i];
        out->source[out->n] = i;
        out->n++;
    }
    if (out->n == 0) {
        hs_examples_free(out);
        return hs_fail(err, HS_ERR_FORMAT, "none of the %d images could be read", ds->n);
    }
    return HS_OK;
}

hs_status hs_examples_load(const hs_dataset *ds, const hs_input_recipe *recipe, FILE *log,
                           hs_examples *out, int *skipped, hs_error *err)
{
    return hs_examples_load_with(ds, recipe, NULL, log, out, skipped, err);
}

/* The examples of all with keep[i] (one flag per example) into out. */
static hs_status examples_keep(const hs_examples *all, const unsigned char *keep, hs_examples *out,
                               hs_error *err)
{
    int n = 0;
    for (int i = 0; i < all->n; i++)
        n += keep[i] != 0;
    hs_status st = examples_alloc(out, n, all->size, err);
    if (st != HS_OK)
        return st;
    for (int i = 0; i < all->n; i++) {
        if (!keep[i])
            continue;
        memcpy(out->x + (size_t)out->n * all->size, all->x + (size_t)i * all->size,
               all->size * sizeof *out->x);
        out->label[out->n] = all->label[i];
        out->source[out->n] = all->source[i];
        out->via[out->n] = all->via != NULL ? all->via[i] : HS_VIA_PNG;
        out->n++;
    }
    return HS_OK;
}

hs_status hs_examples_select(const hs_examples *all, const unsigned char *pick, int want,
                             hs_examples *out, hs_error *err)
{
    unsigned char *keep = malloc((size_t)(all->n > 0 ? all->n : 1));
    if (keep == NULL) {
        memset(out, 0, sizeof *out);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for %d images", all->n);
    }
    for (int i = 0; i < all->n; i++)
        keep[i] = pick[all->source[i]] == want;
    hs_status st = examples_keep(all, keep, out, err);
    free(keep);
    return st;
}

void hs_train_config_default(hs_train_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->epochs = 150;
    cfg->batch = 16;
    cfg->lr = 1e-3f;
    cfg->optimizer = HS_OPT_ADAM;
    cfg->weight_decay = 1e-2f;
    cfg->schedule = HS_SCHED_COSINE;
    cfg->warmup_epochs = 2;
    cfg->patience = 0;
    cfg->dropout = 0.5f;
    cfg->augment = 1;
    hs_augment_default(&cfg->aug);
    cfg->members = 5;
    cfg->fold_ensemble = 1;
    cfg->tta = 1;
    cfg->min_sensitivity = 0.95;
    cfg->max_false_alarm = 0.0;
    cfg->balance = 0.0f;
    cfg->keep_last = 0;
    cfg->seed = 1;
    cfg->threads = 1;
    cfg->verbose = 1;
    cfg->log = stderr;
}

void hs_history_free(hs_history *h)
{
    free(h->loss);
    free(h->accuracy);
    free(h->val_loss);
    free(h->val_accuracy);
    free(h->lr);
    free(h->seconds);
    memset(h, 0, sizeof *h);
}

hs_status hs_history_write_csv(const hs_history *h, const char *path, hs_error *err)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return hs_fail(err, HS_ERR_IO, "%s: cannot write the training history", path);
    fprintf(f, "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,kept\n");
    for (int e = 0; e < h->epochs; e++)
        fprintf(f, "%d,%.6f,%.6f,%.6f,%.6f,%.8g,%.3f,%d\n", e + 1, h->loss[e], h->accuracy[e],
                h->val_loss[e], h->val_accuracy[e], h->lr[e], h->seconds[e], e == h->best_epoch);
    if (fclose(f) != 0)
        return hs_fail(err, HS_ERR_IO, "%s: cannot write the training history", path);
    return HS_OK;
}

/* Number of examples among probs (n x k) whose predicted class is the label. */
static int count_correct(const float *probs, const int *labels, int n, int k)
{
    int correct = 0;
    for (int i = 0; i < n; i++)
        correct += hs_predicted_class(probs + (size_t)i * k, k, 0.5) == labels[i];
    return correct;
}

/* Mean loss and accuracy of net on a whole example set, inference mode. */
static void evaluate(const hs_net *net, hs_ws *ws, const hs_examples *ex, double *loss, double *acc)
{
    int batch = hs_ws_max_batch(ws), k = hs_net_outputs(net), correct = 0;
    double total = 0.0;
    for (int b = 0; b < ex->n; b += batch) {
        int n = ex->n - b < batch ? ex->n - b : batch;
        const float *p = hs_forward(net, ws, ex->x + (size_t)b * ex->size, n, 0, NULL);
        correct += count_correct(p, ex->label + b, n, k);
        total += hs_loss(net, ws, ex->label + b, n) * n;
    }
    *loss = total / ex->n;
    *acc = (double)correct / ex->n;
}

static void progress(FILE *log, int done, int total)
{
    const int width = 30;
    int filled = total > 0 ? done * width / total : width;
    fprintf(log, "\r%4d/%-4d [", done, total);
    for (int i = 0; i < width; i++)
        fputc(i < filled ? '=' : (i == filled ? '>' : '.'), log);
    fputc(']', log);
    fflush(log);
}

/* avg <- decay * avg + (1 - decay) * params, the running average of the
 * weights along the optimiser's path; on a small data set it is steadier
 * than the weights of any single step. */
static void ema_update(float *avg, const float *params, size_t n, float decay)
{
    const float keep = 1.0f - decay;
    for (size_t i = 0; i < n; i++)
        avg[i] += keep * (params[i] - avg[i]);
}

/* Exchange the network's weights with other (same length), so that the
 * averaged weights can be validated without copying. */
static void swap_params(hs_net *net, float *other)
{
    for (size_t i = 0; i < net->n_params; i++) {
        float t = net->params[i];
        net->params[i] = other[i];
        other[i] = t;
    }
}

/* Mixup (Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR
 * 2018): one lambda ~ Beta(alpha, alpha) per batch, and each example mixed
 * with another of the same batch, images and targets alike. lambda is
 * folded to >= 0.5 so each mixed image stays mostly its own. x is n
 * examples of size floats; order and tmp are scratch (n ints, size floats). */
static void mix_batch(hs_rng *rng, float alpha, float *x, float *t, int n, size_t size, int k, int *order,
                      float *tmp)
{
    double lam = hs_rng_beta(rng, alpha, alpha);
    if (lam < 0.5)
        lam = 1.0 - lam;
    for (int i = 0; i < n; i++)
        order[i] = i;
    hs_rng_shuffle(rng, order, n);
    /* Mix along a cycle of the permutation: example i takes from order[i],
     * whose original must still be at hand, so go through each cycle once
     * keeping the first original aside. */
    float first_t[HS_MODEL_MAX_CLASSES];
    for (int start = 0; start < n; start++) {
        if (order[start] < 0)
            continue;
        memcpy(tmp, x + (size_t)start * size, size * sizeof *tmp);
        memcpy(first_t, t + (size_t)start * k, (size_t)k * sizeof *first_t);
        int i = start;
        for (;;) {
            int j = order[i];
            order[i] = -1;
            const float *xj = j == start ? tmp : x + (size_t)j * size;
            const float *tj = j == start ? first_t : t + (size_t)j * k;
            float *xi = x + (size_t)i * size, *ti = t + (size_t)i * k;
            for (size_t q = 0; q < size; q++)
                xi[q] = (float)(lam * xi[q] + (1.0 - lam) * xj[q]);
            for (int c = 0; c < k; c++)
                ti[c] = (float)(lam * ti[c] + (1.0 - lam) * tj[c]);
            if (j == start)
                break;
            i = j;
        }
    }
}

typedef struct {
    double *loss, *acc, *val_loss, *val_acc, *lr, *sec;
} epoch_record;

/* What train_member works with besides the network: a work space, an
 * optimizer, one batch, and what mixup and the weight average need. */
typedef struct {
    hs_ws *ws;
    hs_optimizer opt;
    float *xb;      /* the batch's inputs */
    int *yb;        /* the batch's labels */
    float *tb;      /* the batch's targets: one-hot, then mixed by mixup */
    int *order;     /* the training examples in this epoch's order */
    int *mix_order; /* mixup's pairing within the batch */
    float *mix_x;   /* one example (mixup only) */
    float *best;    /* the weights of the best epoch so far */
    float *avg;     /* the moving average of the weights (cfg->ema > 0 only) */
} member_work;

/* Frees w, and net's gradients, which member_work_alloc allocated. */
static void member_work_free(member_work *w, hs_net *net)
{
    free(net->grads);
    net->grads = NULL;
    hs_ws_free(w->ws);
    hs_optimizer_free(&w->opt);
    free(w->xb);
    free(w->yb);
    free(w->order);
    free(w->tb);
    free(w->mix_order);
    free(w->mix_x);
    free(w->best);
    free(w->avg);
}

/* Allocates w for batches of batch examples of train with k classes, as
 * cfg asks (optimizer, mixup, moving average), and net's gradients. On
 * failure w holds what was allocated, for member_work_free. */
static hs_status member_work_alloc(member_work *w, const hs_train_config *cfg, hs_net *net,
                                   const hs_examples *train, int batch, int k, hs_error *err)
{
    memset(w, 0, sizeof *w);
    hs_opt_config oc;
    hs_opt_config_default(&oc, cfg->optimizer);
    oc.weight_decay = cfg->weight_decay;
    w->xb = malloc((size_t)batch * train->size * sizeof *w->xb);
    w->yb = malloc((size_t)batch * sizeof *w->yb);
    w->order = malloc((size_t)train->n * sizeof *w->order);
    w->tb = malloc((size_t)batch * k * sizeof *w->tb);
    w->mix_order = malloc((size_t)batch * sizeof *w->mix_order);
    w->mix_x = cfg->mixup > 0.0f ? malloc(train->size * sizeof *w->mix_x) : NULL;
    w->best = malloc(net->n_params * sizeof *w->best);
    w->avg = cfg->ema > 0.0f ? malloc(net->n_params * sizeof *w->avg) : NULL;
    hs_status st = HS_OK;
    if (w->xb == NULL || w->yb == NULL || w->order == NULL || w->best == NULL ||
        (cfg->ema > 0.0f && w->avg == NULL) || w->tb == NULL || w->mix_order == NULL ||
        (cfg->mixup > 0.0f && w->mix_x == NULL))
        st = hs_fail(err, HS_ERR_NOMEM, "out of memory for training");
    if (st == HS_OK)
        st = hs_net_alloc_grads(net, err);
    if (st == HS_OK)
        st = hs_ws_create(&w->ws, net, batch, 1, cfg->threads, err);
    if (st == HS_OK)
        st = hs_optimizer_init(&w->opt, &oc, net, err);
    return st;
}

/* One epoch's steps over train, in the order w->order, batch examples at
 * a time: gather (augmented if cfg says so), mix up, forward, loss,
 * backward, an optimizer step at rate lr, the moving average. Returns the
 * summed loss; *correct receives how many examples were classified right.
 * tty: draw a progress bar on cfg->log. */
static double train_epoch(const hs_train_config *cfg, hs_net *net, hs_rng *rng, const hs_examples *train,
                          int batch, float lr, int tty, member_work *w, int *correct)
{
    const hs_shape in = net->input;
    const int k = hs_net_outputs(net);
    int steps = (train->n + batch - 1) / batch;
    double total = 0.0;
    *correct = 0;
    for (int s = 0; s < steps; s++) {
        int b = s * batch, n = train->n - b < batch ? train->n - b : batch;
        for (int i = 0; i < n; i++) {
            const float *src = train->x + (size_t)w->order[b + i] * train->size;
            float *dst = w->xb + (size_t)i * train->size;
            if (cfg->augment)
                hs_augment_apply(&cfg->aug, rng, src, dst, in.w, in.h, in.c);
            else
                memcpy(dst, src, train->size * sizeof *dst);
            w->yb[i] = train->label[w->order[b + i]];
        }
        hs_label_targets(w->yb, n, k, w->tb);
        if (cfg->mixup > 0.0f)
            mix_batch(rng, cfg->mixup, w->xb, w->tb, n, train->size, k, w->mix_order, w->mix_x);
        const float *p = hs_forward(net, w->ws, w->xb, n, 1, rng);
        *correct += count_correct(p, w->yb, n, k);
        total += hs_loss_soft(net, w->ws, w->tb, n) * n;
        hs_backward(net, w->ws, w->xb, n);
        hs_optimizer_step(&w->opt, net, lr);
        if (w->avg != NULL)
            ema_update(w->avg, net->params, net->n_params, cfg->ema);
        if (tty)
            progress(cfg->log, s + 1, steps);
    }
    return total;
}

/* What one epoch measured. */
typedef struct {
    double loss, acc, val_loss, val_acc, sec;
    float lr;
} epoch_stats;

/* The Keras-like line of one epoch on cfg->log (cfg->verbose >= 1 only):
 * "member m/M" first in an ensemble, " *" last when the epoch's weights
 * were kept. tty: the line overwrites the progress bar. */
static void log_epoch(const hs_train_config *cfg, int member, int epoch, const epoch_stats *e, int kept,
                      int tty)
{
    if (cfg->verbose < 1 || cfg->log == NULL)
        return;
    if (tty)
        fputc('\r', cfg->log);
    if (cfg->members > 1)
        fprintf(cfg->log, "member %d/%d ", member + 1, cfg->members);
    fprintf(cfg->log,
            "epoch %d/%d - %.1fs - loss: %.4f - accuracy: %.4f - val_loss: %.4f - "
            "val_accuracy: %.4f - lr: %.2e%s\n",
            epoch + 1, cfg->epochs, e->sec, e->loss, e->acc, e->val_loss, e->val_acc, (double)e->lr,
            kept ? " *" : "");
    fflush(cfg->log);
}

/* This epoch's order of train->n example slots. Plainly a shuffle of every
 * example; with cfg->balance = F > 0 (two classes), round(F n) slots go to
 * class 1 and the rest to class 0, each class dealt from its own shuffled
 * deck that carries on across epochs (bal->next), so the rarer class is
 * repeated and the commoner one is seen a part per epoch but all of it over
 * the epochs, at the cost of an epoch of the same length. Why: with 15%
 * positives a batch of 16 holds two or three bleeds, and the gradient is
 * mostly about what normal looks like. */
typedef struct {
    int *deck[2]; /* each class's example indices, reshuffled when used up */
    int size[2], next[2];
} balance_decks;

static void balance_decks_free(balance_decks *bal)
{
    free(bal->deck[0]);
    free(bal->deck[1]);
}

static hs_status balance_decks_init(balance_decks *bal, const hs_examples *train, hs_error *err)
{
    memset(bal, 0, sizeof *bal);
    for (int i = 0; i < train->n; i++)
        bal->size[train->label[i] == 1]++;
    if (bal->size[0] == 0 || bal->size[1] == 0)
        return hs_fail(err, HS_ERR_ARG, "--balance needs examples of both classes, got %d and %d", bal->size[0],
                       bal->size[1]);
    for (int c = 0; c < 2; c++) {
        bal->deck[c] = malloc((size_t)bal->size[c] * sizeof *bal->deck[c]);
        if (bal->deck[c] == NULL)
            return hs_fail(err, HS_ERR_NOMEM, "out of memory for balanced sampling");
        bal->next[c] = bal->size[c]; /* shuffled at first use */
    }
    int fill[2] = {0, 0};
    for (int i = 0; i < train->n; i++) {
        int c = train->label[i] == 1;
        bal->deck[c][fill[c]++] = i;
    }
    return HS_OK;
}

static void epoch_order(const hs_train_config *cfg, hs_rng *rng, const hs_examples *train, balance_decks *bal,
                        int *order)
{
    if (bal->deck[0] == NULL) {
        hs_rng_shuffle(rng, order, train->n);
        return;
    }
    int n1 = (int)lround(cfg->balance * train->n);
    for (int i = 0; i < train->n; i++) {
        int c = i < n1;
        if (bal->next[c] == bal->size[c]) {
            hs_rng_shuffle(rng, bal->deck[c], bal->size[c]);
            bal->next[c] = 0;
        }
        order[i] = bal->deck[c][bal->next[c]++];
    }
    hs_rng_shuffle(rng, order, train->n);
}

/* Train one network in place; records per epoch into rec (may be NULL). */
static hs_status train_member(const hs_train_config *cfg, hs_net *net, hs_rng *rng,
                              const hs_examples *train, const hs_examples *val, int member,
                              epoch_record *rec, int *epochs_run, int *best_epoch, hs_error *err)
{
    const int k = hs_net_outputs(net);
    const int batch = cfg->batch < train->n ? cfg->batch : train->n;
    member_work w;
    balance_decks bal = {0};
    hs_status st = member_work_alloc(&w, cfg, net, train, batch, k, err);
    if (st != HS_OK)
        goto done;
    hs_schedule sched;
    hs_schedule_init(&sched, cfg->schedule, cfg->lr, cfg->epochs);
    sched.warmup_epochs = cfg->warmup_epochs;
    for (int i = 0; i < train->n; i++)
        w.order[i] = i;
    if (cfg->balance > 0.0f && (st = balance_decks_init(&bal, train, err)) != HS_OK)
        goto done;
    double best_loss = INFINITY;
    int tty = cfg->verbose >= 2 && cfg->log != NULL && isatty(fileno(cfg->log));
    *best_epoch = 0;
    *epochs_run = 0;
    memcpy(w.best, net->params, net->n_params * sizeof *w.best);
    if (w.avg != NULL)
        memcpy(w.avg, net->params, net->n_params * sizeof *w.avg);
    for (int epoch = 0; epoch < cfg->epochs; epoch++) {
        double t0 = hs_clock_monotonic();
        epoch_stats e;
        e.lr = hs_schedule_lr(&sched, epoch);
        epoch_order(cfg, rng, train, &bal, w.order);
        int correct = 0;
        double total = train_epoch(cfg, net, rng, train, batch, e.lr, tty, &w, &correct);
        /* Validation scores the moving average when there is one. */
        if (w.avg != NULL)
            swap_params(net, w.avg);
        evaluate(net, w.ws, val, &e.val_loss, &e.val_acc);
        hs_schedule_observe(&sched, e.val_loss);
        e.loss = total / train->n;
        e.acc = (double)correct / train->n;
        e.sec = hs_clock_monotonic() - t0;
        int kept = cfg->keep_last || e.val_loss < best_loss;
        if (kept) {
            best_loss = e.val_loss;
            *best_epoch = epoch;
            memcpy(w.best, net->params, net->n_params * sizeof *w.best);
        }
        if (w.avg != NULL)
            swap_params(net, w.avg);
        if (rec != NULL) {
            rec->loss[epoch] = e.loss;
            rec->acc[epoch] = e.acc;
            rec->val_loss[epoch] = e.val_loss;
            rec->val_acc[epoch] = e.val_acc;
            rec->lr[epoch] = e.lr;
            rec->sec[epoch] = e.sec;
        }
        *epochs_run = epoch + 1;
        log_epoch(cfg, member, epoch, &e, kept, tty);
        if (cfg->patience > 0 && epoch - *best_epoch >= cfg->patience)
            break;
    }
    memcpy(net->params, w.best, net->n_params * sizeof *w.best);
done:
    balance_decks_free(&bal);
    member_work_free(&w, net);
    return st;
}

static hs_status history_alloc(hs_history *h, int epochs, hs_error *err)
{
    memset(h, 0, sizeof *h);
    h->loss = calloc((size_t)epochs, sizeof *h->loss);
    h->accuracy = calloc((size_t)epochs, sizeof *h->accuracy);
    h->val_loss = calloc((size_t)epochs, sizeof *h->val_loss);
    h->val_accuracy = calloc((size_t)epochs, sizeof *h->val_accuracy);
    h->lr = calloc((size_t)epochs, sizeof *h->lr);
    h->seconds = calloc((size_t)epochs, sizeof *h->seconds);
    if (h->loss == NULL || h->accuracy == NULL || h->val_loss == NULL ||
        h->val_accuracy == NULL || h->lr == NULL || h->seconds == NULL) {
        hs_history_free(h);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for the training history");
    }
    return HS_OK;
}

static hs_status check_config(const hs_train_config *cfg, hs_error *err)
{
    if (cfg->members < 1 || cfg->members > HS_MODEL_MAX_MEMBERS)
        return hs_fail(err, HS_ERR_ARG, "--members %d: expected 1 to %d", cfg->members, HS_MODEL_MAX_MEMBERS);
    if (cfg->epochs < 1 || cfg->batch < 1)
        return hs_fail(err, HS_ERR_ARG, "--epochs and --batch must be at least 1");
    return HS_OK;
}

/* Copy into net the weights and biases of every layer of from whose kind,
 * input and output shapes and parameter counts are those of net's layer at
 * the same place; returns how many convolution and dense layers were
 * copied. The random initialisation of the rest stays. */
static int start_from(hs_net *net, const hs_net *from)
{
    int copied = 0;
    for (int i = 0; i < net->n_layers && i < from->n_layers; i++) {
        const hs_layer *a = &net->layers[i], *b = &from->layers[i];
        if (a->spec.kind != b->spec.kind || a->w_len != b->w_len || a->b_len != b->b_len ||
            memcmp(&a->in, &b->in, sizeof a->in) != 0 || memcmp(&a->out, &b->out, sizeof a->out) != 0)
            continue;
        if (a->w_len + a->b_len == 0)
            continue;
        memcpy(net->params + a->w_off, from->params + b->w_off, a->w_len * sizeof *net->params);
        memcpy(net->params + a->b_off, from->params + b->b_off, a->b_len * sizeof *net->params);
        copied++;
    }
    return copied;
}

/* Create, initialise and train member m of model from its own generator
 * (split off master in member order); member 0 fills the history. */
static hs_status train_nth_member(const hs_train_config *cfg, const hs_layer_spec *specs, int n_specs,
                                  hs_rng *master, int m, const hs_examples *train, const hs_examples *val,
                                  hs_model *model, hs_history *h, hs_error *err)
{
    const hs_input_recipe *r = &model->recipe;
    hs_shape in = {r->height, r->width, r->channels};
    hs_rng rng = hs_rng_split(master);
    hs_net *net = &model->member[m];
    hs_status st = hs_net_create(net, in, specs, n_specs, err);
    if (st != HS_OK)
        return st;
    model->n_members = m + 1;
    hs_net_init(net, &rng);
    if (cfg->init != NULL && cfg->init->n_members > 0 &&
        start_from(net, &cfg->init->member[m % cfg->init->n_members]) == 0)
        return hs_fail(err, HS_ERR_ARG, "the starting model shares no layer with the network trained");
    epoch_record rec = {h->loss, h->accuracy, h->val_loss, h->val_accuracy, h->lr, h->seconds};
    int run = 0, best = 0;
    st = train_member(cfg, net, &rng, train, val, m, m == 0 ? &rec : NULL, &run, &best, err);
    if (m == 0) {
        h->epochs = run;
        h->best_epoch = best;
        model->provenance.epochs = run;
    }
    return st;
}

/* Scores of model (all its members, or member `only` when >= 0) for ex,
 * with test-time augmentation as cfg says; scores has ex->n entries. */
static hs_status score_with(const hs_train_config *cfg, const hs_model *model, int only,
                            const hs_examples *ex, float *scores, hs_error *err)
{
    hs_model one;
    const hs_model *use = model;
    if (only >= 0) {
        /* A view of one member: the predictor only reads the weights. */
        one = *model;
        one.member[0] = model->member[only];
        one.n_members = 1;
        use = &one;
    }
    hs_predictor *pred = NULL;
    hs_status st = hs_predictor_create(&pred, use, 32, cfg->tta, cfg->threads, err);
    if (st == HS_OK)
        hs_predictor_run(pred, ex->x, ex->n, scores);
    hs_predictor_free(pred);
    return st;
}

/* The operating point from scores of labelled images (see train.h); a set
 * with one class keeps 0.5 and says so. */
static float place_threshold(const hs_train_config *cfg, const float *scores, const int *labels, int n)
{
    double threshold = 0.5;
    hs_error terr;
    hs_status st = cfg->max_false_alarm > 0.0
                       ? hs_threshold_for_false_alarm(scores, labels, n, cfg->max_false_alarm, &threshold, &terr)
                       : hs_threshold_for_sensitivity(scores, labels, n, cfg->min_sensitivity, &threshold, &terr);
    if (st != HS_OK) {
        threshold = 0.5;
        if (cfg->log != NULL)
            fprintf(cfg->log, "hemoscan: threshold left at 0.5: %s\n", terr.msg);
    }
    return (float)threshold;
}

hs_status hs_train(const hs_train_config *cfg, const hs_layer_spec *specs, int n_specs,
                   const hs_examples *train, const hs_examples *val, hs_model *model,
                   hs_history *history, hs_error *err)
{
    hs_status st = check_config(cfg, err);
    if (st != HS_OK)
        return st;
    if (train->n < 1 || val->n < 1)
        return hs_fail(err, HS_ERR_ARG, "training needs at least one training and one validation image");
    hs_history local;
    hs_history *h = history != NULL ? history : &local;
    st = history_alloc(h, cfg->epochs, err);
    if (st != HS_OK)
        return st;
    hs_rng master;
    hs_rng_seed(&master, cfg->seed);
    model->n_members = 0;
    for (int m = 0; m < cfg->members && st == HS_OK; m++)
        st = train_nth_member(cfg, specs, n_specs, &master, m, train, val, model, h, err);
    model->threshold = 0.5f;
    model->provenance.seed = cfg->seed;
    if (st == HS_OK && hs_net_outputs(&model->member[0]) == 1) {
        /* The operating point, on validation scores as users will get them. */
        float *scores = malloc((size_t)val->n * sizeof *scores);
        st = scores == NULL ? hs_fail(err, HS_ERR_NOMEM, "out of memory for validation scores")
                            : score_with(cfg, model, -1, val, scores, err);
        if (st == HS_OK)
            model->threshold = place_threshold(cfg, scores, val->label, val->n);
        free(scores);
    }
    if (history == NULL)
        hs_history_free(&local);
    return st;
}

/* The examples of data with (fold[i] == m) == want. */
static hs_status select_fold(const hs_examples *data, const int *fold, int m, int want, hs_examples *out,
                             hs_error *err)
{
    unsigned char *keep = malloc((size_t)(data->n > 0 ? data->n : 1));
    if (keep == NULL) {
        memset(out, 0, sizeof *out);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory for %d images", data->n);
    }
    for (int i = 0; i < data->n; i++)
        keep[i] = (fold[i] == m) == want;
    hs_status st = examples_keep(data, keep, out, err);
    free(keep);
    return st;
}

hs_status hs_train_folds(const hs_train_config *cfg, const hs_layer_spec *specs, int n_specs,
                         const hs_examples *data, const int *fold, hs_model *model, hs_history *history,
                         float *oof, hs_error *err)
{
    hs_status st = check_config(cfg, err);
    if (st != HS_OK)
        return st;
    if (cfg->members < 2)
        return hs_fail(err, HS_ERR_ARG, "a fold ensemble needs at least 2 members");
    /* One out-of-fold score per example: K outputs would overrun it (and
     * a threshold on one score means nothing for K classes). The output
     * count is the units of the dense layer before the last, which
     * hs_net_create insists on. */
    int outputs = n_specs >= 2 && specs[n_specs - 2].kind == HS_LAYER_DENSE ? specs[n_specs - 2].units : 1;
    if (outputs != 1)
        return hs_fail(err, HS_ERR_ARG,
                       "a fold ensemble needs a network with one output (two classes), not %d: its "
                       "out-of-fold scores are one per image; train members on one validation split "
                       "instead (--members)",
                       outputs);
    int in_fold[HS_MODEL_MAX_MEMBERS] = {0};
    for (int i = 0; i < data->n; i++) {
        if (fold[i] < 0 || fold[i] >= cfg->members)
            return hs_fail(err, HS_ERR_ARG, "example %d is in fold %d, expected 0 to %d", i, fold[i],
                           cfg->members - 1);
        in_fold[fold[i]]++;
    }
    for (int m = 0; m < cfg->members; m++) {
        if (in_fold[m] == 0 || in_fold[m] == data->n)
            return hs_fail(err, HS_ERR_ARG,
                           "fold %d of the ensemble has %d of %d images: every member needs images to "
                           "train on and to validate on",
                           m + 1, in_fold[m], data->n);
    }
    hs_history local;
    hs_history *h = history != NULL ? history : &local;
    st = history_alloc(h, cfg->epochs, err);
    if (st != HS_OK)
        return st;
    float *own = oof != NULL ? oof : malloc((size_t)data->n * sizeof *own);
    if (own == NULL)
        st = hs_fail(err, HS_ERR_NOMEM, "out of memory for out-of-fold scores");
    hs_rng master;
    hs_rng_seed(&master, cfg->seed);
    model->n_members = 0;
    for (int m = 0; m < cfg->members && st == HS_OK; m++) {
        hs_examples train = {0}, val = {0};
        st = select_fold(data, fold, m, 0, &train, err);
        if (st == HS_OK)
            st = select_fold(data, fold, m, 1, &val, err);
        if (st == HS_OK && cfg->verbose >= 1 && cfg->log != NULL)
            fprintf(cfg->log, "member %d/%d: training on %d images, validating on %d\n", m + 1,
                    cfg->members, train.n, val.n);
        if (st == HS_OK)
            st = train_nth_member(cfg, specs, n_specs, &master, m, &train, &val, model, h, err);
        /* The member's scores for the images it never trained on. */
        float *val_scores = st == HS_OK ? malloc((size_t)val.n * sizeof *val_scores) : NULL;
        if (st == HS_OK && val_scores == NULL)
            st = hs_fail(err, HS_ERR_NOMEM, "out of memory for out-of-fold scores");
        if (st == HS_OK)
            st = score_with(cfg, model, m, &val, val_scores, err);
        for (int i = 0, j = 0; i < data->n && st == HS_OK; i++)
            if (fold[i] == m)
                own[i] = val_scores[j++];
        free(val_scores);
        hs_examples_free(&train);
        hs_examples_free(&val);
    }
    model->threshold = 0.5f;
    model->provenance.seed = cfg->seed;
    if (st == HS_OK && hs_net_outputs(&model->member[0]) == 1)
        model->threshold = place_threshold(cfg, own, data->label, data->n);
    if (own != oof)
        free(own);
    if (history == NULL)
        hs_history_free(&local);
    return st;
}

/* ---- one training run as hemoscan --train makes it ------------------------ */

/* The reference layer list; K > 2 classes end in a K-way softmax. */
static int layer_list(int n_classes, float dropout, hs_layer_spec *specs, int max)
{
    int n = hs_net_reference_specs(specs, max, dropout);
    if (n_classes > 2) {
        specs[n - 2].units = n_classes;
        specs[n - 1].kind = HS_LAYER_SOFTMAX;
    }
    return n;
}

/* The training date; SOURCE_DATE_EPOCH (the reproducible-builds
 * convention) overrides the clock so a retrained model can be identical to
 * the byte. */
static void utc_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    const char *fixed = getenv("SOURCE_DATE_EPOCH");
    if (fixed != NULL && fixed[0] != '\0')
        t = (time_t)strtoll(fixed, NULL, 10);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The model of setup->init_from, loaded and checked against the input
 * recipe of the models trained: the same input size and channel count (the
 * channels' windows may differ; the weights then start from pictures cut
 * another way, which training corrects or not, as cross-validation shows).
 * The message names the option that gives the file, --init-from. */
static hs_status starting_model(const hs_train_setup *s, hs_model *init, hs_error *err)
{
    hs_status st = hs_model_load(init, s->init_from, err);
    if (st != HS_OK)
        return st;
    const hs_input_recipe *a = &init->recipe, *b = &s->recipe;
    if (a->width != b->width || a->height != b->height || a->channels != b->channels) {
        hs_fail(err, HS_ERR_ARG, "--init-from %s: its input is %dx%dx%d, the networks trained take %dx%dx%d",
                s->init_from, a->width, a->height, a->channels, b->width, b->height, b->channels);
        hs_model_free(init);
        return HS_ERR_ARG;
    }
    return HS_OK;
}

/* A fold ensemble: the training and validation files (is_val 0 and 1; 2
 * marks a cross-validation test fold, left out) pooled and dealt into one
 * grouped, stratified fold per member, then hs_train_folds. */
static hs_status train_fold_ensemble(const hs_train_setup *s, const hs_dataset *ds, const hs_examples *ex,
                                     const unsigned char *is_val, const hs_layer_spec *specs, int n_specs,
                                     hs_model *model, hs_history *hist, float *file_oof, hs_error *err)
{
    unsigned char *left_out = malloc((size_t)(ds->n > 0 ? ds->n : 1));
    int *file_fold = malloc((size_t)(ds->n > 0 ? ds->n : 1) * sizeof *file_fold);
    int *fold = malloc((size_t)(ex->n > 0 ? ex->n : 1) * sizeof *fold);
    float *oof = malloc((size_t)(ex->n > 0 ? ex->n : 1) * sizeof *oof);
    hs_examples pool = {0};
    hs_dataset rest = {0};
    hs_status st = left_out == NULL || file_fold == NULL || fold == NULL || oof == NULL
                       ? hs_fail(err, HS_ERR_NOMEM, "out of memory")
                       : HS_OK;
    for (int i = 0; st == HS_OK && i < ds->n; i++)
        left_out[i] = is_val[i] == 2;
    if (st == HS_OK)
        st = hs_dataset_select(ds, left_out, 0, &rest, err);
    int *rest_fold = st == HS_OK ? malloc((size_t)(rest.n > 0 ? rest.n : 1) * sizeof *rest_fold) : NULL;
    if (st == HS_OK && rest_fold == NULL)
        st = hs_fail(err, HS_ERR_NOMEM, "out of memory");
    if (st == HS_OK)
        st = hs_dataset_folds(&rest, s->train.members, s->seed + 7919ULL, rest_fold, err);
    for (int i = 0, j = 0; st == HS_OK && i < ds->n; i++)
        file_fold[i] = left_out[i] ? -1 : rest_fold[j++];
    if (st == HS_OK)
        st = hs_examples_select(ex, left_out, 0, &pool, err);
    for (int i = 0; st == HS_OK && i < pool.n; i++)
        fold[i] = file_fold[pool.source[i]];
    if (st == HS_OK && s->verbose >= 0 && s->train.log != NULL)
        fprintf(s->train.log, "fold ensemble of %d members on %d images\n", s->train.members, pool.n);
    if (st == HS_OK)
        st = hs_train_folds(&s->train, specs, n_specs, &pool, fold, model, hist, oof, err);
    for (int i = 0; st == HS_OK && file_oof != NULL && i < pool.n; i++)
        file_oof[pool.source[i]] = oof[i];
    hs_examples_free(&pool);
    hs_dataset_free(&rest);
    free(rest_fold);
    free(left_out);
    free(file_fold);
    free(fold);
    free(oof);
    return st;
}

/* The model's recipe, classes and provenance, before any training. */
static void describe_model(const hs_train_setup *s, const hs_dataset *ds, const char *data_sha, hs_model *model)
{
    memset(model, 0, sizeof *model);
    model->recipe = s->recipe;
    model->n_classes = ds->n_classes;
    memcpy(model->class_name, ds->class_name, sizeof model->class_name);
    hs_provenance *p = &model->provenance;
    snprintf(p->data_sha256, sizeof p->data_sha256, "%s", data_sha != NULL ? data_sha : "");
    utc_now(p->date, sizeof p->date);
    snprintf(p->version, sizeof p->version, "%s", PACKAGE_VERSION);
    /* The note holds as much of the command line as fits. */
    const char *command = s->command != NULL ? s->command : "";
    size_t note_len = strlen(command) < sizeof p->note - 1 ? strlen(command) : sizeof p->note - 1;
    memcpy(p->note, command, note_len);
    p->note[note_len] = '\0';
}

hs_status hs_train_model(const hs_train_setup *setup, const hs_dataset *ds, const hs_examples *ex,
                         const unsigned char *is_val, const char *data_sha, hs_model *model,
                         hs_history *history, float *file_oof, hs_error *err)
{
    describe_model(setup, ds, data_sha, model);
    hs_provenance *p = &model->provenance;
    hs_layer_spec specs[16];
    int n = 0;
    if (setup->layers == NULL) {
        n = layer_list(ds->n_classes, setup->train.dropout, specs, 16);
    } else if (setup->n_layers < 1 || setup->n_layers > 16) {
        hs_model_free(model);
        return hs_fail(err, HS_ERR_ARG, "a network of %d layers (1 to 16)", setup->n_layers);
    } else {
        n = setup->n_layers;
        memcpy(specs, setup->layers, (size_t)n * sizeof *specs);
    }
    hs_train_setup started = *setup;
    hs_model init;
    memset(&init, 0, sizeof init);
    hs_status st = HS_OK;
    if (setup->init_from != NULL) {
        st = starting_model(setup, &init, err);
        started.train.init = &init;
        if (st == HS_OK) /* the note names the weights it started from */
            snprintf(p->note, sizeof p->note, "started from sha256 %s; %.160s", init.sha256,
                     setup->command != NULL ? setup->command : "");
    }
    const hs_train_setup *s = &started;
    if (st == HS_OK && s->train.fold_ensemble) {
        st = train_fold_ensemble(s, ds, ex, is_val, specs, n, model, history, file_oof, err);
    } else if (st == HS_OK) {
        hs_examples train = {0}, val = {0};
        st = hs_examples_select(ex, is_val, 0, &train, err);
        if (st == HS_OK)
            st = hs_examples_select(ex, is_val, 1, &val, err);
        if (st == HS_OK && s->verbose >= 0 && s->train.log != NULL)
            fprintf(s->train.log, "training on %d images, validating on %d\n", train.n, val.n);
        if (st == HS_OK)
            st = hs_train(&s->train, specs, n, &train, &val, model, history, err);
        hs_examples_free(&train);
        hs_examples_free(&val);
    }
    hs_model_free(&init);
    if (st != HS_OK)
        hs_model_free(model);
    return st;
}

hs_status hs_examples_score(const hs_model *model, const hs_examples *ex, int tta, int threads, float **scores,
                            hs_error *err)
{
    int outputs = hs_net_outputs(&model->member[0]);
    *scores = malloc((size_t)(ex->n > 0 ? ex->n : 1) * outputs * sizeof **scores);
    if (*scores == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "out of memory");
    hs_predictor *pred = NULL;
    hs_status st = hs_predictor_create(&pred, model, 32, tta, threads, err);
    if (st != HS_OK) {
        free(*scores);
        *scores = NULL;
        return st;
    }
    hs_predictor_run(pred, ex->x, ex->n, *scores);
    hs_predictor_free(pred);
    return HS_OK;
}
