/* test_train.c - CUnit suite for data sets, splits, the training loop and
 * the predictor.
 *
 * Training runs on small synthetic images (a bright blob on the left or
 * right half) with a small network, so the loop, early stopping, history,
 * ensembles, threshold choice and reproducibility are all exercised in a
 * second; the real data sets are exercised by the command-line tests. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hemoscan/dataset.h"
#include "hemoscan/metrics.h"
#include "hemoscan/predict.h"
#include "hemoscan/train.h"
#include "test_util.h"

enum { SIDE = 16 };

/* n examples of SIDE x SIDE x 1: class 1 has a blob on the right half. */
static void make_examples(hs_examples *ex, int n, uint64_t seed)
{
    memset(ex, 0, sizeof *ex); /* fields not set here (via) stay NULL */
    hs_rng rng;
    hs_rng_seed(&rng, seed);
    ex->n = n;
    ex->size = SIDE * SIDE;
    ex->x = calloc((size_t)n * ex->size, sizeof *ex->x);
    ex->label = calloc((size_t)n, sizeof *ex->label);
    ex->source = calloc((size_t)n, sizeof *ex->source);
    for (int i = 0; i < n; i++) {
        float *img = ex->x + (size_t)i * ex->size;
        for (int j = 0; j < SIDE * SIDE; j++)
            img[j] = 0.2f + 0.1f * (float)hs_rng_uniform(&rng);
        ex->label[i] = i % 2;
        ex->source[i] = i;
        int x0 = (ex->label[i] ? SIDE / 2 : 0) + (int)hs_rng_below(&rng, SIDE / 2 - 3);
        int y0 = (int)hs_rng_below(&rng, SIDE - 3);
        for (int dy = 0; dy < 3; dy++)
            for (int dx = 0; dx < 3; dx++)
                img[(y0 + dy) * SIDE + x0 + dx] = 0.9f;
    }
}

static int small_specs(hs_layer_spec *s)
{
    hs_layer_spec list[] = {
        {.kind = HS_LAYER_CONV, .units = 8, .kernel = 3, .relu = 1},
        {.kind = HS_LAYER_MAXPOOL},
        {.kind = HS_LAYER_FLATTEN},
        {.kind = HS_LAYER_DENSE, .units = 16, .relu = 1},
        {.kind = HS_LAYER_DROPOUT, .rate = 0.25f},
        {.kind = HS_LAYER_DENSE, .units = 1},
        {.kind = HS_LAYER_SIGMOID},
    };
    memcpy(s, list, sizeof list);
    return 7;
}

static void small_model(hs_model *m)
{
    memset(m, 0, sizeof *m);
    hs_input_recipe_default(&m->recipe);
    m->recipe.width = m->recipe.height = SIDE;
    m->recipe.channels = 1;
    m->n_classes = 2;
    snprintf(m->class_name[0], HS_MODEL_NAME_LEN, "normal");
    snprintf(m->class_name[1], HS_MODEL_NAME_LEN, "hemorrhage");
}

static void quiet_config(hs_train_config *cfg)
{
    hs_train_config_default(cfg);
    cfg->members = 1;
    cfg->fold_ensemble = 0;
    cfg->epochs = 12;
    cfg->batch = 8;
    cfg->lr = 3e-3f;
    cfg->warmup_epochs = 0;
    cfg->verbose = 0;
    cfg->log = NULL;
    cfg->aug.rotate_deg = 0.0f; /* the blob's side is the label: keep it */
    cfg->aug.flip_prob = 0.0f;
}

static void test_train_learns_and_picks_threshold(void)
{
    hs_examples train, val;
    make_examples(&train, 96, 1);
    make_examples(&val, 40, 2);
    hs_layer_spec specs[8];
    int n = small_specs(specs);
    hs_train_config cfg;
    quiet_config(&cfg);
    cfg.members = 2;
    hs_model m;
    small_model(&m);
    hs_history h;
    hs_error err;
    CU_ASSERT_FATAL(hs_train(&cfg, specs, n, &train, &val, &m, &h, &err) == HS_OK);
    CU_ASSERT_EQUAL(m.n_members, 2);
    CU_ASSERT_EQUAL(h.epochs, 12);
    CU_ASSERT(h.best_epoch >= 0 && h.best_epoch < 12);
    /* The kept epoch is the one with the lowest validation loss. */
    for (int e = 0; e < h.epochs; e++)
        CU_ASSERT(h.val_loss[h.best_epoch] <= h.val_loss[e]);
    CU_ASSERT(h.val_accuracy[h.best_epoch] >= 0.9);
    /* The threshold reaches sensitivity >= 0.95 on the validation set. */
    hs_predictor *p;
    CU_ASSERT_FATAL(hs_predictor_create(&p, &m, 16, 1, 1, &err) == HS_OK);
    float *scores = malloc((size_t)val.n * sizeof *scores);
    hs_predictor_run(p, val.x, val.n, scores);
    int pos = 0, found = 0;
    for (int i = 0; i < val.n; i++) {
        pos += val.label[i];
        found += val.label[i] && scores[i] >= m.threshold;
    }
    CU_ASSERT((double)found / pos >= 0.95);
    CU_ASSERT(m.threshold > 0.0f && m.threshold < 1.0f);
    free(scores);
    hs_predictor_free(p);
    hs_history_free(&h);
    hs_model_free(&m);
    hs_examples_free(&train);
    hs_examples_free(&val);
}

/* Mean score over ex of a model trained on it with cfg->balance = balance,
 * where the pictures say nothing about the labels (noise, one positive in
 * ten): all a network can learn is how often class 1 comes, so the mean
 * score follows the share of positives it was shown. */
static double mean_score_on_noise(float balance, hs_status *st_out)
{
    hs_examples ex;
    make_examples(&ex, 100, 3);
    hs_rng rng;
    hs_rng_seed(&rng, 9);
    for (int i = 0; i < ex.n; i++) {
        ex.label[i] = i % 10 == 0;
        for (size_t j = 0; j < ex.size; j++)
            ex.x[(size_t)i * ex.size + j] = (float)hs_rng_uniform(&rng);
    }
    hs_layer_spec specs[8];
    int n = small_specs(specs);
    hs_train_config cfg;
    quiet_config(&cfg);
    cfg.balance = balance;
    cfg.dropout = 0.0f;
    hs_model m;
    small_model(&m);
    hs_error err;
    double mean = NAN;
    *st_out = hs_train(&cfg, specs, n, &ex, &ex, &m, NULL, &err);
    if (*st_out == HS_OK) {
        hs_predictor *p;
        CU_ASSERT_FATAL(hs_predictor_create(&p, &m, 16, 0, 1, &err) == HS_OK);
        float *scores = malloc((size_t)ex.n * sizeof *scores);
        hs_predictor_run(p, ex.x, ex.n, scores);
        mean = 0.0;
        for (int i = 0; i < ex.n; i++)
            mean += scores[i] / ex.n;
        free(scores);
        hs_predictor_free(p);
    }
    hs_model_free(&m);
    hs_examples_free(&ex);
    return mean;
}

static void test_train_balance(void)
{
    hs_status st;
    double plain = mean_score_on_noise(0.0f, &st);
    CU_ASSERT_EQUAL_FATAL(st, HS_OK);
    double half = mean_score_on_noise(0.5f, &st);
    CU_ASSERT_EQUAL_FATAL(st, HS_OK);
    CU_ASSERT(plain < 0.25);
    /* 0.08 and 0.34 when written: the epoch kept is chosen on the natural
     * share, which pulls the balanced network's mean below 0.5 */
    CU_ASSERT(half > 0.25 && half < 0.65 && half > 3.0 * plain);
    /* one class only: nothing to balance */
    hs_examples ex;
    make_examples(&ex, 20, 4);
    for (int i = 0; i < ex.n; i++)
        ex.label[i] = 0;
    hs_layer_spec specs[8];
    int n = small_specs(specs);
    hs_train_config cfg;
    quiet_config(&cfg);
    cfg.balance = 0.5f;
    hs_model m;
    small_model(&m);
    hs_error err;
    CU_ASSERT_EQUAL(hs_train(&cfg, specs, n, &ex, &ex, &m, NULL, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "both classes"));
    hs_model_free(&m);
    hs_examples_free(&ex);
}

static void test_train_reproducible_and_early_stop(void)
{
    hs_examples train, val;
    make_examples(&train, 48, 3);
    make_examples(&val, 16, 4);
    hs_layer_spec specs[8];
    int n = small_specs(specs);
    hs_train_config cfg;
    quiet_config(&cfg);
    cfg.epochs = 30;
    cfg.patience = 2;
    hs_model a, b;
    small_model(&a);
    small_model(&b);
    hs_history ha, hb;
    hs_error err;
    CU_ASSERT_FATAL(hs_train(&cfg, specs, n, &train, &val, &a, &ha, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_train(&cfg, specs, n, &train, &val, &b, &hb, &err) == HS_OK);
    CU_ASSERT(memcmp(a.member[0].params, b.member[0].params,
                     a.member[0].n_params * sizeof(float)) == 0);
    CU_ASSERT_EQUAL(a.threshold, b.threshold);
    /* Early stopping: the run ended `patience` epochs after its best. */
    CU_ASSERT(ha.epochs == 30 || ha.epochs == ha.best_epoch + 1 + cfg.patience);
    cfg.seed = 2;
    hs_model c;
    small_model(&c);
    CU_ASSERT_FATAL(hs_train(&cfg, specs, n, &train, &val, &c, NULL, &err) == HS_OK);
    CU_ASSERT(memcmp(a.member[0].params, c.member[0].params,
                     a.member[0].n_params * sizeof(float)) != 0);
    hs_history_free(&ha);
    hs_history_free(&hb);
    hs_model_free(&a);
    hs_model_free(&b);
    hs_model_free(&c);
    hs_examples_free(&train);
    hs_examples_free(&val);
}

/* With a moving average of the weights, the weights kept are the averaged
 * ones that were validated: their validation loss is the history's best. */
static void test_train_weight_average(void)
{
    hs_examples train, val;
    make_examples(&train, 64, 5);
    make_examples(&val, 24, 6);
    hs_layer_spec specs[8];
    int n = small_specs(specs);
    hs_train_config cfg;
    quiet_config(&cfg);
    hs_model raw, avg;
    small_model(&raw);
    small_model(&avg);
    hs_history h;
    hs_error err;
    CU_ASSERT_FATAL(hs_train(&cfg, specs, n, &train, &val, &raw, NULL, &err) == HS_OK);
    cfg.ema = 0.9f;
    CU_ASSERT_FATAL(hs_train(&cfg, specs, n, &train, &val, &avg, &h, &err) == HS_OK);
    CU_ASSERT(memcmp(raw.member[0].params, avg.member[0].params,
                     raw.member[0].n_params * sizeof(float)) != 0);
    hs_ws *ws = NULL;
    CU_ASSERT_FATAL(hs_ws_create(&ws, &avg.member[0], val.n, 0, 1, &err) == HS_OK);
    hs_forward(&avg.member[0], ws, val.x, val.n, 0, NULL);
    double loss = hs_loss(&avg.member[0], ws, val.label, val.n);
    CU_ASSERT_DOUBLE_EQUAL(loss, h.val_loss[h.best_epoch], 1e-6);
    CU_ASSERT(h.val_accuracy[h.best_epoch] >= 0.9);
    hs_ws_free(ws);
    hs_history_free(&h);
    hs_model_free(&raw);
    hs_model_free(&avg);
    hs_examples_free(&train);
    hs_examples_free(&val);
}

/* Training started from another model (cfg.init): with a learning rate of
 * 0 the layers the two share keep that model's weights exactly (a
 * three-class model: its convolution and hidden dense layers), the output
 * layer, which has another shape, starts from random weights; started
 * from a model that shares no layer, training refuses. */
static void test_train_starts_from_another_model(void)
{
    hs_examples train, val;
    make_examples(&train, 32, 21);
    make_examples(&val, 16, 22);
    hs_layer_spec specs[8], other[8];
    int n = small_specs(specs);
    memcpy(other, specs, sizeof other);
    other[5].units = 3;
    other[6].kind = HS_LAYER_SOFTMAX;
    hs_model from;
    small_model(&from);
    from.n_members = 1;
    hs_shape in = {SIDE, SIDE, 1};
    hs_error err;
    CU_ASSERT_FATAL(hs_net_create(&from.member[0], in, other, n, &err) == HS_OK);
    hs_rng rng;
    hs_rng_seed(&rng, 99);
    hs_net_init(&from.member[0], &rng);
    hs_train_config cfg;
    quiet_config(&cfg);
    cfg.epochs = 1;
    cfg.lr = 0.0f;
    cfg.init = &from;
    hs_model m;
    small_model(&m);
    CU_ASSERT_FATAL(hs_train(&cfg, specs, n, &train, &val, &m, NULL, &err) == HS_OK);
    const hs_net *a = &m.member[0], *b = &from.member[0];
    for (int i = 0; i < 5; i++) {
        if (a->layers[i].w_len == 0)
            continue;
        CU_ASSERT(memcmp(a->params + a->layers[i].w_off, b->params + b->layers[i].w_off,
                         a->layers[i].w_len * sizeof(float)) == 0);
    }
    const hs_layer *out = &a->layers[5];
    CU_ASSERT_EQUAL(out->w_len, 16);
    float norm = 0.0f;
    for (size_t j = 0; j < out->w_len; j++)
        norm += fabsf(a->params[out->w_off + j]);
    CU_ASSERT(norm > 0.0f); /* the output layer was initialised, not left zero */
    hs_model_free(&m);
    /* a model with another first convolution and hidden layer shares nothing */
    hs_net_free(&from.member[0]);
    other[0].units = 4;
    other[3].units = 8;
    CU_ASSERT_FATAL(hs_net_create(&from.member[0], in, other, n, &err) == HS_OK);
    small_model(&m);
    CU_ASSERT(hs_train(&cfg, specs, n, &train, &val, &m, NULL, &err) == HS_ERR_ARG);
    CU_ASSERT(strstr(err.msg, "shares no layer") != NULL);
    hs_model_free(&m);
    hs_model_free(&from);
    hs_examples_free(&train);
    hs_examples_free(&val);
}

/* Mixup draws its weights from Beta(alpha, alpha) through two gamma draws:
 * their sample moments must match the distributions' (20,000 draws: the
 * tolerances are about five standard errors). */
static void test_gamma_and_beta_moments(void)
{
    hs_rng rng;
    hs_rng_seed(&rng, 17);
    const double shapes[] = {0.4, 1.0, 3.0};
    const int n = 20000;
    for (int k = 0; k < 3; k++) {
        double a = shapes[k], sum = 0.0, sq = 0.0;
        for (int i = 0; i < n; i++) {
            double g = hs_rng_gamma(&rng, a);
            CU_ASSERT(g >= 0.0);
            sum += g;
            sq += g * g;
        }
        double mean = sum / n, var = sq / n - mean * mean;
        CU_ASSERT_DOUBLE_EQUAL(mean, a, 5.0 * sqrt(a / n));
        CU_ASSERT_DOUBLE_EQUAL(var, a, 0.08 * a + 0.02);
    }
    double sum = 0.0, sq = 0.0;
    int low = 0;
    for (int i = 0; i < n; i++) {
        double b = hs_rng_beta(&rng, 0.4, 0.4);
        CU_ASSERT(b >= 0.0 && b <= 1.0);
        sum += b;
        sq += b * b;
        low += b < 0.1;
    }
    double mean = sum / n, var = sq / n - mean * mean;
    CU_ASSERT_DOUBLE_EQUAL(mean, 0.5, 0.015);
    /* Var Beta(a, a) = 1 / (4 (2a + 1)) = 0.1389 for a = 0.4: U-shaped, far
     * from the uniform's 0.0833. */
    CU_ASSERT_DOUBLE_EQUAL(var, 1.0 / (4.0 * 1.8), 0.006);
    CU_ASSERT(low > n / 5);
}

/* Mixup still learns the toy problem, changes what is learnt, and is
 * reproducible for a seed. */
static void test_train_mixup(void)
{
    hs_examples train, val;
    make_examples(&train, 96, 11);
    make_examples(&val, 40, 12);
    hs_layer_spec specs[8];
    int n = small_specs(specs);
    hs_train_config cfg;
    quiet_config(&cfg);
    hs_model plain, mixed, again;
    small_model(&plain);
    small_model(&mixed);
    small_model(&again);
    hs_history h;
    hs_error err;
    CU_ASSERT_FATAL(hs_train(&cfg, specs, n, &train, &val, &plain, NULL, &err) == HS_OK);
    cfg.mixup = 0.4f;
    CU_ASSERT_FATAL(hs_train(&cfg, specs, n, &train, &val, &mixed, &h, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_train(&cfg, specs, n, &train, &val, &again, NULL, &err) == HS_OK);
    size_t bytes = plain.member[0].n_params * sizeof(float);
    CU_ASSERT(memcmp(plain.member[0].params, mixed.member[0].params, bytes) != 0);
    CU_ASSERT(memcmp(mixed.member[0].params, again.member[0].params, bytes) == 0);
    CU_ASSERT(h.val_accuracy[h.best_epoch] >= 0.9);
    hs_history_free(&h);
    hs_model_free(&plain);
    hs_model_free(&mixed);
    hs_model_free(&again);
    hs_examples_free(&train);
    hs_examples_free(&val);
}

/* A fold ensemble: one member per fold, each example scored out of fold by
 * the member that never trained on it, and the threshold placed on those
 * scores; bad fold lists are refused. */
static void test_train_fold_ensemble(void)
{
    hs_examples data;
    make_examples(&data, 90, 21);
    int fold[90];
    for (int i = 0; i < data.n; i++)
        fold[i] = (i / 2) % 3; /* both classes in every fold */
    hs_layer_spec specs[8];
    int n = small_specs(specs);
    hs_train_config cfg;
    quiet_config(&cfg);
    cfg.members = 3;
    cfg.tta = 0; /* the blob's side is the label: a mirror would swap it */
    hs_model m, again;
    small_model(&m);
    small_model(&again);
    hs_history h;
    hs_error err;
    float oof[90], oof2[90];
    CU_ASSERT_FATAL(hs_train_folds(&cfg, specs, n, &data, fold, &m, &h, oof, &err) == HS_OK);
    CU_ASSERT_EQUAL(m.n_members, 3);
    CU_ASSERT(h.val_accuracy[h.best_epoch] >= 0.9);
    /* Each out-of-fold score is its own member's. */
    for (int k = 0; k < 3; k++) {
        hs_model one = m;
        one.member[0] = m.member[k];
        one.n_members = 1;
        hs_predictor *p;
        CU_ASSERT_FATAL(hs_predictor_create(&p, &one, 16, cfg.tta, 1, &err) == HS_OK);
        float *all = malloc((size_t)data.n * sizeof *all);
        hs_predictor_run(p, data.x, data.n, all);
        for (int i = 0; i < data.n; i++)
            if (fold[i] == k)
                CU_ASSERT_DOUBLE_EQUAL(oof[i], all[i], 1e-6);
        free(all);
        hs_predictor_free(p);
    }
    double want;
    CU_ASSERT_FATAL(hs_threshold_for_sensitivity(oof, data.label, data.n, cfg.min_sensitivity, &want,
                                                 &err) == HS_OK);
    CU_ASSERT_DOUBLE_EQUAL(m.threshold, want, 1e-6);
    CU_ASSERT(hs_roc_auc(oof, data.label, data.n) >= 0.9);
    /* Reproducible for a seed. */
    CU_ASSERT_FATAL(hs_train_folds(&cfg, specs, n, &data, fold, &again, NULL, oof2, &err) == HS_OK);
    CU_ASSERT(memcmp(oof, oof2, sizeof oof) == 0);
    CU_ASSERT(memcmp(m.member[2].params, again.member[2].params, m.member[2].n_params * sizeof(float)) == 0);
    hs_model_free(&again);
    /* Refused: one member; a fold out of range; an empty fold. */
    hs_model bad;
    small_model(&bad);
    cfg.members = 1;
    CU_ASSERT(hs_train_folds(&cfg, specs, n, &data, fold, &bad, NULL, NULL, &err) == HS_ERR_ARG);
    cfg.members = 3;
    fold[5] = 3;
    CU_ASSERT(hs_train_folds(&cfg, specs, n, &data, fold, &bad, NULL, NULL, &err) == HS_ERR_ARG);
    for (int i = 0; i < data.n; i++)
        fold[i] = i % 2;
    CU_ASSERT(hs_train_folds(&cfg, specs, n, &data, fold, &bad, NULL, NULL, &err) == HS_ERR_ARG);
    CU_ASSERT(strstr(err.msg, "fold 3") != NULL);
    hs_model_free(&bad);
    hs_history_free(&h);
    hs_model_free(&m);
    hs_examples_free(&data);
}

/* Five saturated members and the mirror image: ten outputs of exactly 1
 * average to exactly 1, never above (which the audit database refuses). */
static void test_predictor_mean_of_saturated(void)
{
    hs_layer_spec specs[8];
    int n = small_specs(specs);
    hs_model m;
    small_model(&m);
    hs_error err = {0};
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL_FATAL(hs_net_create(&m.member[i], (hs_shape){SIDE, SIDE, 1}, specs, n, &err), HS_OK);
        hs_net *net = &m.member[i];
        const hs_layer *out = &net->layers[net->n_layers - 2]; /* the last dense layer */
        net->params[out->b_off] = 50.0f; /* all weights 0: sigmoid(50) is 1 in float */
    }
    m.n_members = 5;
    m.threshold = 0.5f;
    float x[2 * SIDE * SIDE] = {0}, p[2] = {0};
    hs_predictor *pred = NULL;
    CU_ASSERT_FATAL(hs_predictor_create(&pred, &m, 2, 1, 1, &err) == HS_OK);
    hs_predictor_run(pred, x, 2, p);
    CU_ASSERT_EQUAL(p[0], 1.0f);
    CU_ASSERT_EQUAL(p[1], 1.0f);
    hs_predictor_free(pred);
    hs_model_free(&m);
}

/* The predictor runs a model trained on plain gray pictures (every channel
 * "gray", all equal) on channel 0 alone, and a model whose channels are
 * re-windowed gray ("gray-window") on every channel: changing channel 1
 * changes the score of the second and not of the first. */
static void test_predictor_gray_channels(void)
{
    hs_layer_spec specs[8];
    int n = small_specs(specs);
    hs_model m;
    small_model(&m);
    hs_error err = {0};
    hs_shape in = {SIDE, SIDE, 3};
    CU_ASSERT_EQUAL_FATAL(hs_net_create(&m.member[0], in, specs, n, &err), HS_OK);
    m.n_members = 1;
    m.threshold = 0.5f;
    hs_rng rng;
    hs_rng_seed(&rng, 7);
    hs_net_init(&m.member[0], &rng);

    enum { N = SIDE * SIDE * 3 };
    float x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = y[i] = (float)hs_rng_uniform(&rng);
    for (int i = 1; i < N; i += 3)
        y[i] = 1.0f - x[i]; /* channel 1 differs */
    static const char *const windows[2] = {"40/80,60/40,20/40", "40/80,40/80,40/80"};
    float windowed[2], plain[2];
    for (int gray = 0; gray < 2; gray++) {
        CU_ASSERT_EQUAL_FATAL(hs_input_recipe_gray(&m.recipe, windows[gray], &err), HS_OK);
        m.recipe.width = m.recipe.height = SIDE;
        CU_ASSERT_EQUAL(hs_recipe_is_gray(&m.recipe), gray);
        CU_ASSERT(hs_recipe_from_gray(&m.recipe));
        hs_predictor *p = NULL;
        CU_ASSERT_FATAL(hs_predictor_create(&p, &m, 1, 0, 1, &err) == HS_OK);
        float *out = gray ? plain : windowed;
        hs_predictor_run(p, x, 1, &out[0]);
        hs_predictor_run(p, y, 1, &out[1]);
        hs_predictor_free(p);
    }
    CU_ASSERT(fabsf(windowed[0] - windowed[1]) > 1e-6f);
    CU_ASSERT_EQUAL(plain[0], plain[1]);
    hs_model_free(&m);
}

static void test_predictor_flip_average(void)
{
    hs_model m;
    small_model(&m);
    hs_layer_spec specs[8];
    int n = small_specs(specs);
    hs_error err;
    CU_ASSERT_FATAL(hs_net_create(&m.member[0], (hs_shape){SIDE, SIDE, 1}, specs, n, &err) == HS_OK);
    m.n_members = 1;
    hs_rng rng;
    hs_rng_seed(&rng, 9);
    hs_net_init(&m.member[0], &rng);
    hs_examples ex;
    make_examples(&ex, 3, 5);
    float *mirror = malloc(ex.size * 3 * sizeof *mirror);
    hs_flip_horizontal(ex.x, mirror, 3, SIDE, SIDE, 1);
    CU_ASSERT_EQUAL(mirror[SIDE - 1], ex.x[0]);
    hs_predictor *plain, *tta;
    CU_ASSERT_FATAL(hs_predictor_create(&plain, &m, 2, 0, 1, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_predictor_create(&tta, &m, 2, 1, 1, &err) == HS_OK);
    float a[3], b[3], c[3];
    hs_predictor_run(plain, ex.x, 3, a);   /* 3 images through a batch of 2 */
    hs_predictor_run(plain, mirror, 3, b);
    hs_predictor_run(tta, ex.x, 3, c);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_DOUBLE_EQUAL(c[i], 0.5 * (a[i] + b[i]), 1e-6);
    hs_predictor_free(plain);
    hs_predictor_free(tta);
    free(mirror);
    hs_examples_free(&ex);
    hs_model_free(&m);
}

/* A data set of n files in two classes, with made-up paths. */
static void fake_dataset(hs_dataset *ds, int n)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->n_classes = 2;
    snprintf(ds->class_name[0], HS_MODEL_NAME_LEN, "normal");
    snprintf(ds->class_name[1], HS_MODEL_NAME_LEN, "hemorrhage");
    ds->path = calloc((size_t)n, sizeof *ds->path);
    ds->id = calloc((size_t)n, sizeof *ds->id);
    ds->label = calloc((size_t)n, sizeof *ds->label);
    ds->group = calloc((size_t)n, sizeof *ds->group);
    for (int i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%03d", i);
        ds->id[i] = strdup(buf);
        ds->path[i] = strdup(buf);
        ds->label[i] = i < n / 2;
        ds->group[i] = i;
    }
}

static void test_folds_grouped_and_stratified(void)
{
    hs_dataset ds;
    fake_dataset(&ds, 60);
    /* Files 10..17 are one group, 40/41 another. */
    static const char groups[] = "id,group\n"
                                 "010,series\n011,series\n012,series\n013,series\n"
                                 "014,series\n015,series\n016,series\n017,series\n"
                                 "040,pair\n041,pair\n999,absent\n";
    char dir[4096], csv[4400];
    CU_ASSERT_FATAL(hs_test_tmpdir_create(dir, sizeof dir, "groups") == 0);
    hs_test_path(csv, sizeof csv, dir, "groups.csv");
    CU_ASSERT_FATAL(hs_test_write_file(csv, groups, sizeof groups - 1) == 0);
    hs_error err;
    CU_ASSERT_FATAL(hs_dataset_load_groups(&ds, csv, &err) == HS_OK);
    CU_ASSERT(hs_test_tmpdir_remove(dir) == 0);
    int fold[60];
    CU_ASSERT_FATAL(hs_dataset_folds(&ds, 5, 7, fold, &err) == HS_OK);
    for (int i = 11; i < 18; i++)
        CU_ASSERT_EQUAL(fold[i], fold[10]);
    CU_ASSERT_EQUAL(fold[40], fold[41]);
    int pos[5] = {0}, neg[5] = {0};
    for (int i = 0; i < 60; i++) {
        CU_ASSERT(fold[i] >= 0 && fold[i] < 5);
        if (ds.label[i])
            pos[fold[i]]++;
        else
            neg[fold[i]]++;
    }
    /* 30 per class over 5 folds: each fold within a group's size of 6. */
    for (int k = 0; k < 5; k++) {
        CU_ASSERT(abs(pos[k] - 6) <= 8);
        CU_ASSERT(abs(neg[k] - 6) <= 2);
    }
    int other[60];
    CU_ASSERT_FATAL(hs_dataset_folds(&ds, 5, 7, other, &err) == HS_OK);
    CU_ASSERT(memcmp(fold, other, sizeof fold) == 0); /* seeded */

    unsigned char is_val[60];
    CU_ASSERT_FATAL(hs_dataset_split(&ds, 0.2, 3, is_val, &err) == HS_OK);
    int vpos = 0, vneg = 0;
    for (int i = 0; i < 60; i++) {
        vpos += is_val[i] && ds.label[i];
        vneg += is_val[i] && !ds.label[i];
    }
    CU_ASSERT(vpos >= 4 && vpos <= 6);
    CU_ASSERT_EQUAL(vneg, 6);
    for (int i = 11; i < 18; i++)
        CU_ASSERT_EQUAL(is_val[i], is_val[10]);
    hs_dataset picked;
    CU_ASSERT_FATAL(hs_dataset_select(&ds, is_val, 1, &picked, &err) == HS_OK);
    CU_ASSERT_EQUAL(picked.n, vpos + vneg);
    hs_dataset_free(&picked);
    CU_ASSERT(hs_dataset_folds(&ds, 1, 7, fold, &err) == HS_ERR_ARG);
    /* Fewer groups than folds: refused, not dealt into empty folds. */
    for (int i = 0; i < 60; i++)
        ds.group[i] = i % 4;
    CU_ASSERT(hs_dataset_folds(&ds, 4, 7, fold, &err) == HS_OK);
    CU_ASSERT(hs_dataset_folds(&ds, 5, 7, fold, &err) == HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "5 folds need at least 5 groups of files; these 60 files are in 4"));
    hs_dataset_free(&ds);
}

static void test_scan_class_folders(void)
{
    char dir[4096], path[4400];
    CU_ASSERT_FATAL(hs_test_tmpdir_create(dir, sizeof dir, "scan") == 0);
    const char *files[] = {"normal/b.png", "normal/a.PNG", "hemorrhage/c.png", "hemorrhage/notes.txt"};
    hs_test_path(path, sizeof path, dir, "normal");
    CU_ASSERT_FATAL(mkdir(path, 0755) == 0);
    hs_test_path(path, sizeof path, dir, "hemorrhage");
    CU_ASSERT_FATAL(mkdir(path, 0755) == 0);
    for (int i = 0; i < 4; i++) {
        hs_test_path(path, sizeof path, dir, files[i]);
        CU_ASSERT_FATAL(hs_test_write_file(path, "x", 1) == 0);
    }
    hs_dataset ds;
    hs_error err;
    CU_ASSERT_FATAL(hs_dataset_scan(dir, &ds, &err) == HS_OK);
    CU_ASSERT_EQUAL(ds.n, 3);
    CU_ASSERT_STRING_EQUAL(ds.class_name[0], "normal"); /* normal first */
    CU_ASSERT_STRING_EQUAL(ds.class_name[1], "hemorrhage");
    CU_ASSERT_STRING_EQUAL(ds.id[0], "a");
    CU_ASSERT_EQUAL(ds.label[2], 1);
    char sha1[65], sha2[65];
    CU_ASSERT(hs_dataset_checksum(&ds, sha1, &err) == HS_OK);
    hs_test_path(path, sizeof path, dir, "normal/b.png");
    CU_ASSERT_FATAL(hs_test_write_file(path, "y", 1) == 0);
    CU_ASSERT(hs_dataset_checksum(&ds, sha2, &err) == HS_OK);
    CU_ASSERT(strcmp(sha1, sha2) != 0);
    hs_dataset_free(&ds);
    /* A class folder without images is an error naming it. */
    hs_test_path(path, sizeof path, dir, "empty");
    CU_ASSERT_FATAL(mkdir(path, 0755) == 0);
    CU_ASSERT(hs_dataset_scan(dir, &ds, &err) == HS_ERR_FORMAT);
    CU_ASSERT(strstr(err.msg, "empty") != NULL);
    CU_ASSERT(hs_test_tmpdir_remove(dir) == 0);
}

int hs_register_train_tests(void)
{
    static const hs_test_case tests[] = {
        {"training learns and picks the threshold", test_train_learns_and_picks_threshold},
        {"training is reproducible; early stopping", test_train_reproducible_and_early_stop},
        {"balanced sampling shows the network the share of positives asked for", test_train_balance},
        {"a moving average of the weights is what is validated and kept", test_train_weight_average},
        {"gamma and beta draws have the right moments", test_gamma_and_beta_moments},
        {"mixup learns, changes the weights and is reproducible", test_train_mixup},
        {"training can start from another model's shared layers", test_train_starts_from_another_model},
        {"a fold ensemble scores out of fold and places the threshold there", test_train_fold_ensemble},
        {"predictor averages the mirror image", test_predictor_flip_average},
        {"predictor: the mean of saturated members is exactly 1", test_predictor_mean_of_saturated},
        {"predictor: one channel for plain gray, every channel for re-windowed gray", test_predictor_gray_channels},
        {"folds and splits are grouped and stratified", test_folds_grouped_and_stratified},
        {"class folders are scanned", test_scan_class_folders},
    };
    return hs_test_add_suite("train", NULL, NULL, tests, sizeof tests / sizeof tests[0]);
}
