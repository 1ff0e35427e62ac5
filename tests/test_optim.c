/* test_optim.c - CUnit suite for optimisers and learning-rate schedules.
 *
 * Optimisers are checked on a one-layer network whose gradients the test
 * sets by hand, so each update can be compared with the published formula;
 * schedules are checked against their closed forms. */
#include <CUnit/CUnit.h>
#include <math.h>

#include "hemoscan/optim.h"

#include "test_util.h"

/* flatten -> dense(1) -> sigmoid on a 1x1x2 input: 2 weights, 1 bias. */
static void tiny_net(hs_net *net)
{
    hs_layer_spec s[] = {{.kind = HS_LAYER_FLATTEN},
                         {.kind = HS_LAYER_DENSE, .units = 1},
                         {.kind = HS_LAYER_SIGMOID}};
    hs_error err;
    CU_ASSERT_FATAL(hs_net_create(net, (hs_shape){1, 1, 2}, s, 3, &err) == HS_OK);
    CU_ASSERT_FATAL(hs_net_alloc_grads(net, &err) == HS_OK);
}

static void test_adam_first_step(void)
{
    hs_net net;
    tiny_net(&net);
    net.params[0] = 1.0f;
    net.params[1] = -2.0f;
    net.params[2] = 0.5f; /* bias */
    hs_opt_config cfg;
    hs_opt_config_default(&cfg, HS_OPT_ADAM);
    cfg.weight_decay = 0.1f;
    hs_optimizer opt;
    hs_error err;
    CU_ASSERT_FATAL(hs_optimizer_init(&opt, &cfg, &net, &err) == HS_OK);
    net.grads[0] = 0.3f;
    net.grads[1] = -4.0f;
    net.grads[2] = 2.0f;
    hs_optimizer_step(&opt, &net, 0.01f);
    /* First Adam step moves each parameter by lr * sign(g) (bias-corrected
     * m/sqrt(v) = g/|g|); decoupled decay shrinks weights by lr*wd, not the bias. */
    CU_ASSERT_DOUBLE_EQUAL(net.params[0], 1.0 * (1 - 0.001) - 0.01, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(net.params[1], -2.0 * (1 - 0.001) + 0.01, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(net.params[2], 0.5 - 0.01, 1e-6);
    hs_optimizer_free(&opt);
    hs_net_free(&net);
}

static void test_sgd_momentum(void)
{
    hs_net net;
    tiny_net(&net);
    hs_opt_config cfg;
    hs_opt_config_default(&cfg, HS_OPT_SGD);
    cfg.weight_decay = 0.5f; /* L2 in the gradient for SGD */
    hs_optimizer opt;
    hs_error err;
    CU_ASSERT_FATAL(hs_optimizer_init(&opt, &cfg, &net, &err) == HS_OK);
    net.params[0] = 2.0f;
    net.grads[0] = 1.0f;
    net.grads[2] = 1.0f;
    hs_optimizer_step(&opt, &net, 0.1f); /* v = 1 + 0.5*2 = 2 -> p = 2 - 0.2 */
    CU_ASSERT_DOUBLE_EQUAL(net.params[0], 1.8, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(net.params[2], -0.1, 1e-6);
    hs_optimizer_step(&opt, &net, 0.1f); /* v = 0.9*2 + 1 + 0.9 = 3.7 -> 1.8 - 0.37 */
    CU_ASSERT_DOUBLE_EQUAL(net.params[0], 1.43, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(net.params[2], -0.1 - 0.19, 1e-6); /* bias: no decay */
    hs_optimizer_free(&opt);
    hs_net_free(&net);
}

/* Adam minimises a convex problem: gradients of (w - 3)^2. */
static void test_adam_converges(void)
{
    hs_net net;
    tiny_net(&net);
    hs_opt_config cfg;
    hs_opt_config_default(&cfg, HS_OPT_ADAM);
    hs_optimizer opt;
    hs_error err;
    CU_ASSERT_FATAL(hs_optimizer_init(&opt, &cfg, &net, &err) == HS_OK);
    for (int i = 0; i < 2000; i++) {
        for (int j = 0; j < 3; j++)
            net.grads[j] = 2.0f * (net.params[j] - 3.0f);
        hs_optimizer_step(&opt, &net, 0.05f);
    }
    for (int j = 0; j < 3; j++)
        CU_ASSERT_DOUBLE_EQUAL(net.params[j], 3.0, 1e-2);
    hs_optimizer_free(&opt);
    hs_net_free(&net);
}

static void test_schedules(void)
{
    hs_schedule s;
    hs_schedule_init(&s, HS_SCHED_STEP, 0.1f, 30);
    s.step_epochs = 10;
    s.gamma = 0.5f;
    CU_ASSERT_DOUBLE_EQUAL(hs_schedule_lr(&s, 0), 0.1, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(hs_schedule_lr(&s, 9), 0.1, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(hs_schedule_lr(&s, 10), 0.05, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(hs_schedule_lr(&s, 25), 0.025, 1e-7);

    hs_schedule_init(&s, HS_SCHED_PLATEAU, 0.1f, 30);
    s.patience = 2;
    s.factor = 0.1f;
    s.min_lr = 0.001f;
    hs_schedule_observe(&s, 1.0);
    hs_schedule_observe(&s, 0.9); /* improves */
    CU_ASSERT_DOUBLE_EQUAL(hs_schedule_lr(&s, 2), 0.1, 1e-7);
    hs_schedule_observe(&s, 0.95);
    CU_ASSERT_DOUBLE_EQUAL(hs_schedule_lr(&s, 3), 0.1, 1e-7);
    hs_schedule_observe(&s, 0.91); /* two epochs without improvement */
    CU_ASSERT_DOUBLE_EQUAL(hs_schedule_lr(&s, 4), 0.01, 1e-7);
    hs_schedule_observe(&s, 0.92);
    hs_schedule_observe(&s, 0.93);
    hs_schedule_observe(&s, 0.94);
    hs_schedule_observe(&s, 0.95);
    CU_ASSERT_DOUBLE_EQUAL(hs_schedule_lr(&s, 8), 0.001, 1e-7); /* floored */

    hs_schedule_init(&s, HS_SCHED_COSINE, 0.1f, 10);
    s.min_lr = 0.0f;
    CU_ASSERT_DOUBLE_EQUAL(hs_schedule_lr(&s, 0), 0.1, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(hs_schedule_lr(&s, 5), 0.05, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(hs_schedule_lr(&s, 2), 0.1 * 0.5 * (1 + cos(M_PI * 0.2)), 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(hs_schedule_lr(&s, 10), 0.0, 1e-7);
    s.warmup_epochs = 1;
    CU_ASSERT_DOUBLE_EQUAL(hs_schedule_lr(&s, 0), 0.05, 1e-7);

    hs_sched_kind k;
    CU_ASSERT(hs_sched_kind_parse("plateau", &k) == 0 && k == HS_SCHED_PLATEAU);
    CU_ASSERT(hs_sched_kind_parse("linear", &k) != 0);
}

int hs_register_optim_tests(void)
{
    static const hs_test_case tests[] = {
        {"adam first step and decoupled decay", test_adam_first_step},
        {"sgd momentum and L2", test_sgd_momentum},
        {"adam converges", test_adam_converges},
        {"learning-rate schedules", test_schedules},
    };
    return hs_test_add_suite("optim", NULL, NULL, tests, sizeof tests / sizeof tests[0]);
}
