/* test_cnn.c - CUnit suite for the network engine.
 *
 * The gradient checks compare every parameter gradient of small networks
 * against central finite differences computed in the same float arithmetic,
 * one network per layer combination, so each layer's backward pass is pinned
 * (a layer's input gradient is checked through the parameters before it).
 * The learning tests train tiny networks on toy problems with a known
 * answer: a broken backward pass or optimiser cannot pass them. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hemoscan/cnn.h"
#include "hemoscan/optim.h"

#include "test_util.h"

static float *random_input(hs_rng *rng, size_t n)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)hs_rng_normal(rng);
    return x;
}

static size_t input_size(const hs_net *net)
{
    return (size_t)net->input.h * net->input.w * net->input.c;
}

/* Loss of a training-mode forward pass with dropout masks drawn from a
 * generator reset to the same seed each time, so every evaluation sees the
 * same masks. */
static double loss_at(const hs_net *net, hs_ws *ws, const float *x,
                      const int *labels, int n)
{
    hs_rng rng;
    hs_rng_seed(&rng, 99);
    hs_forward(net, ws, x, n, 1, &rng);
    return hs_loss(net, ws, labels, n);
}

/* Largest relative error between analytic and numerical gradients over all
 * parameters (relative to max(|a|, |b|, 1e-2)). */
static double gradient_error(const hs_layer_spec *specs, int n_specs,
                             hs_shape input, int n, int classes, int threads)
{
    hs_net net;
    hs_error err;
    CU_ASSERT_FATAL(hs_net_create(&net, input, specs, n_specs, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_net_alloc_grads(&net, &err) == HS_OK);
    hs_rng rng;
    hs_rng_seed(&rng, 1234);
    hs_net_init(&net, &rng);
    /* Biases off zero so that ReLU kinks are not hit at exactly zero. */
    for (size_t i = 0; i < net.n_params; i++)
        net.params[i] += 0.05f * (float)hs_rng_normal(&rng);
    float *x = random_input(&rng, input_size(&net) * n);
    int labels[8];
    for (int i = 0; i < n; i++)
        labels[i] = i % classes;
    hs_ws *ws;
    CU_ASSERT_FATAL(hs_ws_create(&ws, &net, n, 1, threads, &err) == HS_OK);
    loss_at(&net, ws, x, labels, n);
    hs_backward(&net, ws, x, n);
    double worst = 0.0;
    const float h = 1e-3f;
    for (size_t i = 0; i < net.n_params; i++) {
        float keep = net.params[i];
        net.params[i] = keep + h;
        double up = loss_at(&net, ws, x, labels, n);
        net.params[i] = keep - h;
        double down = loss_at(&net, ws, x, labels, n);
        net.params[i] = keep;
        double numeric = (up - down) / (2.0 * h);
        double analytic = net.grads[i];
        double scale = fmax(fmax(fabs(numeric), fabs(analytic)), 1e-2);
        double rel = fabs(numeric - analytic) / scale;
        if (rel > worst) {
            worst = rel;
            if (getenv("HS_DEBUG_GRAD"))
                fprintf(stderr, "param %zu: analytic %g numeric %g\n", i, analytic, numeric);
        }
    }
    hs_ws_free(ws);
    hs_net_free(&net);
    free(x);
    return worst;
}

/* Loss of these tiny nets is a sum of float terms; 2e-2 relative error is
 * far below what a wrong index or a missing term produces (order 1). */
#define GRAD_TOLERANCE 2e-2

static void test_grad_conv_valid_pool_dense_sigmoid(void)
{
    hs_layer_spec s[] = {
        {.kind = HS_LAYER_CONV, .units = 4, .kernel = 3, .relu = 1},
        {.kind = HS_LAYER_MAXPOOL},
        {.kind = HS_LAYER_CONV, .units = 3, .kernel = 2},
        {.kind = HS_LAYER_FLATTEN},
        {.kind = HS_LAYER_DENSE, .units = 5, .relu = 1},
        {.kind = HS_LAYER_DENSE, .units = 1},
        {.kind = HS_LAYER_SIGMOID},
    };
    double e = gradient_error(s, 7, (hs_shape){9, 8, 2}, 3, 2, 1);
    CU_ASSERT(e < GRAD_TOLERANCE);
}

static void test_grad_conv_same_relu_layer(void)
{
    hs_layer_spec s[] = {
        {.kind = HS_LAYER_CONV, .units = 3, .kernel = 5, .pad_same = 1},
        {.kind = HS_LAYER_RELU},
        {.kind = HS_LAYER_CONV, .units = 2, .kernel = 2, .pad_same = 1, .relu = 1},
        {.kind = HS_LAYER_MAXPOOL},
        {.kind = HS_LAYER_FLATTEN},
        {.kind = HS_LAYER_DENSE, .units = 1},
        {.kind = HS_LAYER_SIGMOID},
    };
    double e = gradient_error(s, 7, (hs_shape){7, 6, 3}, 2, 2, 1);
    CU_ASSERT(e < GRAD_TOLERANCE);
}

static void test_grad_dropout_softmax(void)
{
    hs_layer_spec s[] = {
        {.kind = HS_LAYER_CONV, .units = 3, .kernel = 3, .relu = 1},
        {.kind = HS_LAYER_FLATTEN},
        {.kind = HS_LAYER_DENSE, .units = 8, .relu = 1},
        {.kind = HS_LAYER_DROPOUT, .rate = 0.5f},
        {.kind = HS_LAYER_DENSE, .units = 3},
        {.kind = HS_LAYER_SOFTMAX},
    };
    double e = gradient_error(s, 6, (hs_shape){5, 5, 2}, 4, 3, 1);
    CU_ASSERT(e < GRAD_TOLERANCE);
}

static void test_grad_two_threads(void)
{
    hs_layer_spec s[] = {
        {.kind = HS_LAYER_CONV, .units = 4, .kernel = 3, .relu = 1},
        {.kind = HS_LAYER_MAXPOOL},
        {.kind = HS_LAYER_FLATTEN},
        {.kind = HS_LAYER_DENSE, .units = 1},
        {.kind = HS_LAYER_SIGMOID},
    };
    double e = gradient_error(s, 5, (hs_shape){8, 8, 1}, 5, 2, 2);
    CU_ASSERT(e < GRAD_TOLERANCE);
}

/* hs_loss_soft: one-hot targets give hs_loss exactly; cross-entropy is
 * linear in the target, so a mixed target's loss and gradient are the
 * mixture of the two labels' (what mixup relies on), for a sigmoid unit and
 * for softmax. */
static void test_soft_targets(void)
{
    hs_layer_spec sig[] = {
        {.kind = HS_LAYER_FLATTEN},
        {.kind = HS_LAYER_DENSE, .units = 4, .relu = 1},
        {.kind = HS_LAYER_DENSE, .units = 1},
        {.kind = HS_LAYER_SIGMOID},
    };
    hs_layer_spec soft[] = {
        {.kind = HS_LAYER_FLATTEN},
        {.kind = HS_LAYER_DENSE, .units = 4, .relu = 1},
        {.kind = HS_LAYER_DENSE, .units = 3},
        {.kind = HS_LAYER_SOFTMAX},
    };
    for (int variant = 0; variant < 2; variant++) {
        hs_net net;
        hs_error err;
        CU_ASSERT_FATAL(hs_net_create(&net, (hs_shape){3, 3, 2}, variant ? soft : sig, 4, &err) == HS_OK);
        CU_ASSERT_FATAL(hs_net_alloc_grads(&net, &err) == HS_OK);
        hs_rng rng;
        hs_rng_seed(&rng, 5);
        hs_net_init(&net, &rng);
        int k = variant ? 3 : 1, n = 4;
        float *x = random_input(&rng, input_size(&net) * n);
        int la[4] = {0, 1, 1, 0}, lb[4] = {1, 1, 0, 0};
        if (variant) {
            la[2] = 2;
            lb[3] = 2;
        }
        float ta[12], tb[12], tm[12];
        hs_label_targets(la, n, k, ta);
        hs_label_targets(lb, n, k, tb);
        const float lam = 0.7f;
        for (int i = 0; i < n * k; i++)
            tm[i] = lam * ta[i] + (1.0f - lam) * tb[i];
        hs_ws *ws;
        CU_ASSERT_FATAL(hs_ws_create(&ws, &net, n, 1, 1, &err) == HS_OK);
        float *ga = malloc(net.n_params * sizeof *ga), *gb = malloc(net.n_params * sizeof *gb);
        hs_forward(&net, ws, x, n, 1, &rng);
        double loss_a = hs_loss(&net, ws, la, n);
        CU_ASSERT_DOUBLE_EQUAL(hs_loss_soft(&net, ws, ta, n), loss_a, 1e-12);
        hs_backward(&net, ws, x, n);
        memcpy(ga, net.grads, net.n_params * sizeof *ga);
        double loss_b = hs_loss_soft(&net, ws, tb, n);
        hs_backward(&net, ws, x, n);
        memcpy(gb, net.grads, net.n_params * sizeof *gb);
        double loss_m = hs_loss_soft(&net, ws, tm, n);
        hs_backward(&net, ws, x, n);
        CU_ASSERT_DOUBLE_EQUAL(loss_m, lam * loss_a + (1.0 - lam) * loss_b, 1e-5);
        CU_ASSERT(fabs(loss_a - loss_b) > 1e-3); /* the two labellings differ */
        double worst = 0.0;
        for (size_t i = 0; i < net.n_params; i++)
            worst = fmax(worst, fabs(net.grads[i] - (lam * ga[i] + (1.0f - lam) * gb[i])));
        CU_ASSERT(worst < 1e-5);
        free(ga);
        free(gb);
        free(x);
        hs_ws_free(ws);
        hs_net_free(&net);
    }
}

/* A finite-difference check is only meaningful if it can fail: corrupt one
 * gradient and make sure the comparison notices. */
static void test_grad_check_detects_error(void)
{
    hs_layer_spec s[] = {
        {.kind = HS_LAYER_CONV, .units = 2, .kernel = 3, .relu = 1},
        {.kind = HS_LAYER_FLATTEN},
        {.kind = HS_LAYER_DENSE, .units = 1},
        {.kind = HS_LAYER_SIGMOID},
    };
    hs_net net;
    hs_error err;
    CU_ASSERT_FATAL(hs_net_create(&net, (hs_shape){5, 5, 1}, s, 4, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_net_alloc_grads(&net, &err) == HS_OK);
    hs_rng rng;
    hs_rng_seed(&rng, 5);
    hs_net_init(&net, &rng);
    float *x = random_input(&rng, 25);
    int label = 1;
    hs_ws *ws;
    CU_ASSERT_FATAL(hs_ws_create(&ws, &net, 1, 1, 1, &err) == HS_OK);
    loss_at(&net, ws, x, &label, 1);
    hs_backward(&net, ws, x, 1);
    float h = 1e-2f, keep = net.params[0];
    net.params[0] = keep + h;
    double up = loss_at(&net, ws, x, &label, 1);
    net.params[0] = keep - h;
    double down = loss_at(&net, ws, x, &label, 1);
    net.params[0] = keep;
    double numeric = (up - down) / (2 * h);
    CU_ASSERT(fabs(numeric - net.grads[0]) < 1e-3 + 2e-2 * fabs(numeric));
    CU_ASSERT(fabs(numeric - 2.0 * net.grads[0] - 0.1) > 1e-3);
    hs_ws_free(ws);
    hs_net_free(&net);
    free(x);
}

static void test_reference_shape(void)
{
    hs_layer_spec s[16];
    int n = hs_net_reference_specs(s, 16, 0.0f);
    CU_ASSERT_EQUAL(n, 14);
    hs_net net;
    hs_error err;
    CU_ASSERT_FATAL(hs_net_create(&net, (hs_shape){150, 150, 3}, s, n, &err) == HS_OK);
    CU_ASSERT_EQUAL(net.n_params, 265953);
    CU_ASSERT_EQUAL(net.layers[10].out.c, 512); /* flatten */
    CU_ASSERT_EQUAL(net.layers[0].out.h, 148);
    CU_ASSERT_EQUAL(net.layers[9].out.h, 2);
    CU_ASSERT(fabs(hs_net_forward_flops(&net) / 1e9 - 0.130) < 0.001);
    CU_ASSERT_EQUAL(hs_net_outputs(&net), 1);
    hs_net_free(&net);
    CU_ASSERT_EQUAL(hs_net_reference_specs(s, 16, 0.5f), 15);
    CU_ASSERT_EQUAL(s[12].kind, HS_LAYER_DROPOUT);
}

static void test_rejects_bad_layer_lists(void)
{
    hs_net net;
    hs_error err;
    hs_layer_spec no_output[] = {{.kind = HS_LAYER_FLATTEN}, {.kind = HS_LAYER_DENSE, .units = 2}};
    CU_ASSERT(hs_net_create(&net, (hs_shape){4, 4, 1}, no_output, 2, &err) == HS_ERR_SHAPE);
    hs_layer_spec too_small[] = {{.kind = HS_LAYER_CONV, .units = 2, .kernel = 5},
                                 {.kind = HS_LAYER_FLATTEN},
                                 {.kind = HS_LAYER_DENSE, .units = 1},
                                 {.kind = HS_LAYER_SIGMOID}};
    CU_ASSERT(hs_net_create(&net, (hs_shape){4, 4, 1}, too_small, 4, &err) == HS_ERR_SHAPE);
    CU_ASSERT(strstr(err.msg, "layer 0") != NULL);
    hs_layer_spec dense_on_image[] = {{.kind = HS_LAYER_DENSE, .units = 2},
                                      {.kind = HS_LAYER_SOFTMAX}};
    CU_ASSERT(hs_net_create(&net, (hs_shape){4, 4, 1}, dense_on_image, 2, &err) == HS_ERR_SHAPE);
    hs_layer_spec relu_before_output[] = {{.kind = HS_LAYER_FLATTEN},
                                          {.kind = HS_LAYER_DENSE, .units = 1, .relu = 1},
                                          {.kind = HS_LAYER_SIGMOID}};
    CU_ASSERT(hs_net_create(&net, (hs_shape){4, 4, 1}, relu_before_output, 3, &err) == HS_ERR_SHAPE);
    hs_layer_spec bad_rate[] = {{.kind = HS_LAYER_FLATTEN},
                                {.kind = HS_LAYER_DROPOUT, .rate = 1.0f},
                                {.kind = HS_LAYER_DENSE, .units = 1},
                                {.kind = HS_LAYER_SIGMOID}};
    CU_ASSERT(hs_net_create(&net, (hs_shape){4, 4, 1}, bad_rate, 4, &err) == HS_ERR_SHAPE);
    hs_layer_spec pool_tiny[] = {{.kind = HS_LAYER_MAXPOOL}, {.kind = HS_LAYER_FLATTEN},
                                 {.kind = HS_LAYER_DENSE, .units = 1}, {.kind = HS_LAYER_SIGMOID}};
    CU_ASSERT(hs_net_create(&net, (hs_shape){1, 4, 1}, pool_tiny, 4, &err) == HS_ERR_SHAPE);
}

/* A 1x1 convolution with known weights computes a known answer, and a
 * 'same' 3x3 convolution of a single impulse reproduces the (flipped)
 * kernel: pins the im2col indexing and padding. */
static void test_conv_known_values(void)
{
    hs_layer_spec s[] = {
        {.kind = HS_LAYER_CONV, .units = 1, .kernel = 3, .pad_same = 1},
        {.kind = HS_LAYER_FLATTEN},
        {.kind = HS_LAYER_DENSE, .units = 1},
        {.kind = HS_LAYER_SIGMOID},
    };
    hs_net net;
    hs_error err;
    CU_ASSERT_FATAL(hs_net_create(&net, (hs_shape){3, 3, 1}, s, 4, &err) == HS_OK);
    for (int i = 0; i < 9; i++)
        net.params[net.layers[0].w_off + i] = (float)(i + 1); /* w[dy][dx] */
    net.params[net.layers[0].b_off] = 0.5f;
    /* Dense picks out conv output pixel (0, 0) only. */
    net.params[net.layers[2].w_off + 0] = 1.0f;
    float x[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0}; /* impulse at the centre */
    hs_ws *ws;
    CU_ASSERT_FATAL(hs_ws_create(&ws, &net, 1, 0, 1, &err) == HS_OK);
    const float *p = hs_forward(&net, ws, x, 1, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    /* out(0,0) = sum w[dy][dx] x(dy-1, dx-1) + b = w[2][2] * 1 + 0.5 */
    double logit = 9.0 + 0.5;
    CU_ASSERT_DOUBLE_EQUAL(p[0], 1.0 / (1.0 + exp(-logit)), 1e-6);
    hs_ws_free(ws);
    hs_net_free(&net);
}

/* The same images give the same outputs alone, in a batch, and with two
 * threads. */
static void test_batch_and_threads_agree(void)
{
    hs_layer_spec s[16];
    int n = hs_net_reference_specs(s, 16, 0.5f);
    hs_net net;
    hs_error err;
    hs_shape in = {150, 150, 3};
    CU_ASSERT_FATAL(hs_net_create(&net, in, s, n, &err) == HS_OK);
    hs_rng rng;
    hs_rng_seed(&rng, 3);
    hs_net_init(&net, &rng);
    size_t per = 150 * 150 * 3;
    float *x = malloc(3 * per * sizeof *x);
    for (size_t i = 0; i < 3 * per; i++)
        x[i] = (float)hs_rng_uniform(&rng);
    hs_ws *one, *batch, *two;
    CU_ASSERT_FATAL(hs_ws_create(&one, &net, 1, 0, 1, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_ws_create(&batch, &net, 3, 0, 1, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_ws_create(&two, &net, 3, 0, 2, &err) == HS_OK);
    float single[3];
    for (int i = 0; i < 3; i++)
        single[i] = hs_forward(&net, one, x + i * per, 1, 0, NULL)[0];
    const float *pb = hs_forward(&net, batch, x, 3, 0, NULL);
    const float *pt = hs_forward(&net, two, x, 3, 0, NULL);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_DOUBLE_EQUAL(pb[i], single[i], 1e-5);
        CU_ASSERT_DOUBLE_EQUAL(pt[i], single[i], 1e-5);
        CU_ASSERT(pb[i] > 0.0f && pb[i] < 1.0f);
    }
    CU_ASSERT(hs_forward(&net, one, x, 2, 0, NULL) == NULL); /* over max batch */
    hs_ws_free(one);
    hs_ws_free(batch);
    hs_ws_free(two);
    hs_net_free(&net);
    free(x);
}

/* The direct, Winograd and fused convolution + pooling kernels of inference
 * compute what the exact im2col path computes, on networks that exercise
 * every tile width and odd sizes: the reference network, and one with
 * 16/32/48/128-channel layers on an odd-sized input. */
static void check_fast_matches_exact(const hs_layer_spec *s, int n_specs, hs_shape in, int batch)
{
    hs_net net;
    hs_error err;
    CU_ASSERT_FATAL(hs_net_create(&net, in, s, n_specs, &err) == HS_OK);
    hs_rng rng;
    hs_rng_seed(&rng, 11);
    hs_net_init(&net, &rng);
    for (size_t i = 0; i < net.n_params; i++)
        net.params[i] += 0.01f * (float)hs_rng_normal(&rng); /* non-zero biases */
    size_t per = input_size(&net);
    float *x = malloc((size_t)batch * per * sizeof *x);
    for (size_t i = 0; i < (size_t)batch * per; i++)
        x[i] = (float)hs_rng_uniform(&rng);
    hs_ws *fast, *exact;
    CU_ASSERT_FATAL(hs_ws_create(&fast, &net, batch, 0, 1, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_ws_create(&exact, &net, batch, 0, 1, &err) == HS_OK);
    hs_ws_set_fast_kernels(exact, 0);
    int k = hs_net_outputs(&net);
    int labels[3] = {0, 1, 0};
    float *want = malloc((size_t)batch * k * sizeof *want);
    memcpy(want, hs_forward(&net, exact, x, batch, 0, NULL), (size_t)batch * k * sizeof *want);
    const float *got = hs_forward(&net, fast, x, batch, 0, NULL);
    for (int i = 0; i < batch * k; i++)
        CU_ASSERT_DOUBLE_EQUAL(got[i], want[i], 1e-4 + 1e-4 * fabs(want[i]));
    /* The loss is computed from the logits, so it also catches differences
     * that a saturated probability would hide. */
    double loss_fast = hs_loss(&net, fast, labels, batch);
    double loss_exact = hs_loss(&net, exact, labels, batch);
    CU_ASSERT_DOUBLE_EQUAL(loss_fast, loss_exact, 1e-4 * (1.0 + fabs(loss_exact)));
    hs_ws_free(fast);
    hs_ws_free(exact);
    hs_net_free(&net);
    free(x);
    free(want);
}

static void test_fast_kernels_match_exact(void)
{
    hs_layer_spec ref[16];
    int n = hs_net_reference_specs(ref, 16, 0.5f);
    check_fast_matches_exact(ref, n, (hs_shape){150, 150, 3}, 2);
    hs_layer_spec odd[] = {
        {.kind = HS_LAYER_CONV, .units = 16, .kernel = 3, .relu = 1},
        {.kind = HS_LAYER_CONV, .units = 32, .kernel = 3},           /* Winograd, no pool */
        {.kind = HS_LAYER_MAXPOOL},
        {.kind = HS_LAYER_CONV, .units = 48, .kernel = 3, .relu = 1}, /* 16-wide blocks */
        {.kind = HS_LAYER_MAXPOOL},                                   /* fused Winograd */
        {.kind = HS_LAYER_CONV, .units = 128, .kernel = 2, .relu = 1}, /* direct, 2x2 */
        {.kind = HS_LAYER_MAXPOOL},                                   /* fused direct */
        {.kind = HS_LAYER_FLATTEN},
        {.kind = HS_LAYER_DENSE, .units = 3},
        {.kind = HS_LAYER_SOFTMAX},
    };
    check_fast_matches_exact(odd, 10, (hs_shape){29, 23, 2}, 3);
}

/* Toy problem: 12x12 images with a bright 3x3 square either in the left or
 * the right half (class 0/1) on noise. Returns test accuracy; writes the
 * trained parameters' checksum-ish sum for determinism checks. */
static double train_toy(hs_opt_kind kind, int threads, int classes, double *param_sum)
{
    hs_layer_spec s_bin[] = {
        {.kind = HS_LAYER_CONV, .units = 4, .kernel = 3, .relu = 1},
        {.kind = HS_LAYER_MAXPOOL},
        {.kind = HS_LAYER_FLATTEN},
        {.kind = HS_LAYER_DENSE, .units = 8, .relu = 1},
        {.kind = HS_LAYER_DROPOUT, .rate = 0.2f},
        {.kind = HS_LAYER_DENSE, .units = classes == 2 ? 1 : classes},
        {.kind = classes == 2 ? HS_LAYER_SIGMOID : HS_LAYER_SOFTMAX},
    };
    hs_net net;
    hs_error err;
    hs_shape in = {12, 12, 1};
    CU_ASSERT_FATAL(hs_net_create(&net, in, s_bin, 7, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_net_alloc_grads(&net, &err) == HS_OK);
    hs_rng rng;
    hs_rng_seed(&rng, 2024);
    hs_net_init(&net, &rng);
    enum { N = 240, TRAIN = 160, BATCH = 16 };
    float *x = malloc((size_t)N * 144 * sizeof *x);
    int *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++) {
        float *img = x + (size_t)i * 144;
        for (int j = 0; j < 144; j++)
            img[j] = 0.3f * (float)hs_rng_normal(&rng);
        y[i] = (int)hs_rng_below(&rng, (uint64_t)classes);
        /* Class c puts the square in the c-th vertical band. */
        int band = 12 / classes;
        int x0 = y[i] * band + (int)hs_rng_below(&rng, (uint64_t)(band - 2 > 0 ? band - 2 : 1));
        int y0 = (int)hs_rng_below(&rng, 10);
        for (int dy = 0; dy < 3; dy++)
            for (int dx = 0; dx < 3 && x0 + dx < 12; dx++)
                img[(y0 + dy) * 12 + x0 + dx] += 2.0f;
    }
    hs_opt_config cfg;
    hs_opt_config_default(&cfg, kind);
    cfg.weight_decay = 1e-4f;
    hs_optimizer opt;
    CU_ASSERT_FATAL(hs_optimizer_init(&opt, &cfg, &net, &err) == HS_OK);
    hs_ws *ws;
    CU_ASSERT_FATAL(hs_ws_create(&ws, &net, BATCH, 1, threads, &err) == HS_OK);
    float lr = kind == HS_OPT_ADAM ? 0.01f : 0.05f;
    for (int epoch = 0; epoch < 30; epoch++) {
        for (int b = 0; b + BATCH <= TRAIN; b += BATCH) {
            hs_forward(&net, ws, x + (size_t)b * 144, BATCH, 1, &rng);
            hs_loss(&net, ws, y + b, BATCH);
            hs_backward(&net, ws, x + (size_t)b * 144, BATCH);
            hs_optimizer_step(&opt, &net, lr);
        }
    }
    int correct = 0;
    for (int i = TRAIN; i < N; i += BATCH) {
        const float *p = hs_forward(&net, ws, x + (size_t)i * 144, BATCH, 0, NULL);
        for (int j = 0; j < BATCH; j++) {
            int pred = 0;
            if (classes == 2) {
                pred = p[j] >= 0.5f;
            } else {
                for (int c = 1; c < classes; c++)
                    if (p[j * classes + c] > p[j * classes + pred])
                        pred = c;
            }
            correct += pred == y[i + j];
        }
    }
    double sum = 0.0;
    for (size_t i = 0; i < net.n_params; i++)
        sum += net.params[i] * (double)(i % 97 + 1);
    *param_sum = sum;
    hs_ws_free(ws);
    hs_optimizer_free(&opt);
    hs_net_free(&net);
    free(x);
    free(y);
    return (double)correct / (N - TRAIN);
}

static void test_learns_toy_problem(void)
{
    double sum;
    CU_ASSERT(train_toy(HS_OPT_ADAM, 1, 2, &sum) >= 0.95);
    CU_ASSERT(train_toy(HS_OPT_SGD, 1, 2, &sum) >= 0.95);
    CU_ASSERT(train_toy(HS_OPT_ADAM, 2, 3, &sum) >= 0.90);
}

static void test_training_reproducible(void)
{
    double a, b, c;
    train_toy(HS_OPT_ADAM, 2, 2, &a);
    train_toy(HS_OPT_ADAM, 2, 2, &b);
    CU_ASSERT(a == b); /* bit for bit, same thread count */
    train_toy(HS_OPT_ADAM, 1, 2, &c);
    CU_ASSERT(fabs(a - c) < 1e-2 * fabs(a) + 1e-3); /* same maths on 1 thread */
}

int hs_register_cnn_tests(void)
{
    static const hs_test_case tests[] = {
        {"reference network shape", test_reference_shape},
        {"bad layer lists are refused", test_rejects_bad_layer_lists},
        {"convolution known values", test_conv_known_values},
        {"gradient: valid conv, pool, dense, sigmoid", test_grad_conv_valid_pool_dense_sigmoid},
        {"gradient: same conv, relu layer, even kernel", test_grad_conv_same_relu_layer},
        {"gradient: dropout, softmax", test_grad_dropout_softmax},
        {"gradient: two threads", test_grad_two_threads},
        {"gradient check detects a wrong gradient", test_grad_check_detects_error},
        {"soft targets: one-hot is hs_loss, a mixture mixes loss and gradient", test_soft_targets},
        {"batch and threads agree", test_batch_and_threads_agree},
        {"fast kernels match the exact path", test_fast_kernels_match_exact},
        {"learns a toy problem", test_learns_toy_problem},
        {"training is reproducible", test_training_reproducible},
    };
    return hs_test_add_suite("cnn", NULL, NULL, tests, sizeof tests / sizeof tests[0]);
}
