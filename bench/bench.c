/* bench.c - `make bench`: speed and memory of the CNN engine and of the
 * whole `hemoscan --study` job.
 *
 * Prints one line per figure, `BENCH <name> <value> <unit>`, so scripts and
 * people read the same output. Each figure is a median over repeated runs
 * after a warm-up. The engine figures use the reference network (150x150x3,
 * 265,953 parameters) with synthetic data: speed does not depend on pixel
 * values. The study figures run the real program ($HEMOSCAN) as a separate
 * process, as radiology IT would, on a 240-slice 512 x 512 JPEG Lossless
 * series written by the project's generator ($HEMOSCAN_BUILDDIR), and take
 * the wall time and the peak resident memory of that process. This is a
 * benchmark, not a test: it asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hemoscan/cnn.h"
#include "hemoscan/optim.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(const hs_error *err)
{
    fprintf(stderr, "hemoscan-bench: %s\n", err->msg);
    exit(1);
}

/* Median seconds of one forward pass of `batch` images with `threads`. */
static double time_inference(const hs_net *net, const float *x, int batch,
                             int threads, int reps)
{
    hs_ws *ws;
    hs_error err;
    if (hs_ws_create(&ws, net, batch, 0, threads, &err) != HS_OK)
        die(&err);
    double *t = malloc((size_t)reps * sizeof *t);
    for (int i = 0; i < 5; i++)
        hs_forward(net, ws, x, batch, 0, NULL);
    for (int i = 0; i < reps; i++) {
        double t0 = now_s();
        hs_forward(net, ws, x, batch, 0, NULL);
        t[i] = now_s() - t0;
    }
    double m = median(t, reps);
    free(t);
    hs_ws_free(ws);
    return m;
}

/* Median seconds of one training epoch: `images` images in batches of
 * `batch`, forward + loss + backward + Adam step. */
static double time_epoch(hs_net *net, const float *x, const int *y, int images,
                         int batch, int threads, int epochs)
{
    hs_ws *ws;
    hs_error err;
    hs_optimizer opt;
    hs_opt_config cfg;
    hs_opt_config_default(&cfg, HS_OPT_ADAM);
    if (hs_ws_create(&ws, net, batch, 1, threads, &err) != HS_OK ||
        hs_optimizer_init(&opt, &cfg, net, &err) != HS_OK)
        die(&err);
    hs_rng rng;
    hs_rng_seed(&rng, 1);
    size_t per = (size_t)net->input.h * net->input.w * net->input.c;
    double *t = malloc((size_t)epochs * sizeof *t);
    for (int e = 0; e < epochs; e++) {
        double t0 = now_s();
        for (int b = 0; b < images; b += batch) {
            int n = images - b < batch ? images - b : batch;
            hs_forward(net, ws, x + (size_t)b * per, n, 1, &rng);
            hs_loss(net, ws, y + b, n);
            hs_backward(net, ws, x + (size_t)b * per, n);
            hs_optimizer_step(&opt, net, 1e-4f);
        }
        t[e] = now_s() - t0;
    }
    double m = median(t, epochs);
    free(t);
    hs_optimizer_free(&opt);
    hs_ws_free(ws);
    return m;
}

/* Runs argv as a child process; its wall time in seconds and peak RSS in
 * MB. -1 when it could not run or failed. */
static double run_child(char *const argv[], double *rss_mb)
{
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0)
        return -1.0;
    if (pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid)
        return -1.0;
    double t = now_s() - t0;
    *rss_mb = ru.ru_maxrss / 1024.0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t : -1.0;
}

/* The study figures: make the series once (kept in bench/study-240 for the
 * next run), then time `hemoscan --study` on it: as a user runs it, without
 * the mirror-image averaging, with review pictures (--review, into
 * bench/study-240-review, emptied before each run) and with their DICOM
 * Secondary Capture too. The variants take turns, one run of each per
 * round, so that a machine getting slower or faster over the minute the
 * benchmark takes moves all of them alike; the review's overhead is the
 * median over rounds of its time against the plain run of the same round. */
#define STUDY_VARIANTS 4
static void bench_study(int quick)
{
    const char *prog = getenv("HEMOSCAN");
    const char *build = getenv("HEMOSCAN_BUILDDIR");
    if (prog == NULL || build == NULL) {
        printf("BENCH study skipped: run through `make bench` (HEMOSCAN, HEMOSCAN_BUILDDIR)\n");
        return;
    }
    char dir[4096], db[4200], cmd[12288];
    snprintf(dir, sizeof dir, "%s/bench/study-240", build);
    snprintf(db, sizeof db, "%s/bench/study-240.db", build);
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(cmd, sizeof cmd,
                 "'%s/testdata/gen/hs-gen-ct' --out '%s' --slices 240 --thickness 0.625 --ts jpeg-lossless "
                 "--bleed iph:25,-15,10,30 --seed 3 -q",
                 build, dir);
        if (system(cmd) != 0) {
            printf("BENCH study skipped: the generator failed: %s\n", cmd);
            return;
        }
    }
    char review[4200];
    snprintf(review, sizeof review, "%s/bench/study-240-review", build);
    const char *variants[STUDY_VARIANTS][4] = {{"study_240", NULL, NULL, NULL},
                                               {"study_240_no_tta", "--no-tta", NULL, NULL},
                                               {"study_240_review", "--review", review, NULL},
                                               {"study_240_review_dicom", "--review", review, "--review-dicom"}};
    enum { PLAIN = 0, REVIEW = 2 };
    int reps = quick ? 1 : 7;
    double secs[STUDY_VARIANTS][16], worst_rss[STUDY_VARIANTS] = {0}, ratio[16];
    int ok = 0, failed = 0;
    for (int r = 0; r < reps + 1 && !failed; r++) { /* round 0 warms the page cache */
        double t[STUDY_VARIANTS];
        for (int v = 0; v < STUDY_VARIANTS && !failed; v++) {
            unlink(db);
            snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", review, review);
            if (system(cmd) != 0) {
                failed = 1;
                break;
            }
            char *argv[10];
            int a = 0;
            argv[a++] = (char *)prog;
            argv[a++] = "--study";
            argv[a++] = "--db";
            argv[a++] = db;
            for (int k = 1; k < 4 && variants[v][k] != NULL; k++)
                argv[a++] = (char *)variants[v][k];
            argv[a++] = dir;
            argv[a] = NULL;
            double rss = 0.0;
            t[v] = run_child(argv, &rss);
            if (t[v] < 0) {
                printf("BENCH %s failed: %s --study %s\n", variants[v][0], prog, dir);
                failed = 1;
            } else if (r > 0) {
                worst_rss[v] = rss > worst_rss[v] ? rss : worst_rss[v];
            }
        }
        if (!failed && r > 0) {
            for (int v = 0; v < STUDY_VARIANTS; v++)
                secs[v][ok] = t[v];
            ratio[ok] = t[REVIEW] / t[PLAIN];
            ok++;
        }
    }
    for (int v = 0; v < STUDY_VARIANTS && ok == reps; v++) {
        double t = median(secs[v], ok);
        printf("BENCH %s_s %.3f s\n", variants[v][0], t);
        printf("BENCH %s_sps %.1f slices/s\n", variants[v][0], 240.0 / t);
        printf("BENCH %s_peak_rss_mb %.1f MB\n", variants[v][0], worst_rss[v]);
    }
    if (ok == reps)
        printf("BENCH study_240_review_overhead_pct %.1f %%\n", 100.0 * (median(ratio, ok) - 1.0));
    fflush(stdout);
    unlink(db);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", review);
    if (system(cmd) != 0)
        printf("BENCH could not remove %s\n", review);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    hs_layer_spec specs[16];
    int n = hs_net_reference_specs(specs, 16, 0.5f);
    hs_net net;
    hs_error err;
    if (hs_net_create(&net, (hs_shape){150, 150, 3}, specs, n, &err) != HS_OK ||
        hs_net_alloc_grads(&net, &err) != HS_OK)
        die(&err);
    hs_rng rng;
    hs_rng_seed(&rng, 42);
    hs_net_init(&net, &rng);
    const int images = 140;
    size_t per = 150 * 150 * 3;
    float *x = malloc((size_t)images * per * sizeof *x);
    int *y = malloc(images * sizeof *y);
    for (size_t i = 0; i < (size_t)images * per; i++)
        x[i] = (float)hs_rng_uniform(&rng);
    for (int i = 0; i < images; i++)
        y[i] = i % 2;
    int reps = quick ? 5 : 200, reps32 = quick ? 2 : 15, epochs = quick ? 1 : 5;

    printf("BENCH forward_gflop %.3f GFLOP\n", hs_net_forward_flops(&net) / 1e9);
    fflush(stdout);
    printf("BENCH infer_b1_ms %.3f ms\n", 1e3 * time_inference(&net, x, 1, 1, reps));
    printf("BENCH infer_b1_ms_t2 %.3f ms\n", 1e3 * time_inference(&net, x, 1, 2, reps));
    fflush(stdout);
    printf("BENCH infer_b32_sps %.1f slices/s\n", 32.0 / time_inference(&net, x, 32, 1, reps32));
    printf("BENCH infer_b32_sps_t2 %.1f slices/s\n", 32.0 / time_inference(&net, x, 32, 2, reps32));
    fflush(stdout);
    printf("BENCH train_epoch_s %.3f s\n", time_epoch(&net, x, y, images, 20, 1, epochs));
    printf("BENCH train_epoch_s_t2 %.3f s\n", time_epoch(&net, x, y, images, 20, 2, epochs));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("BENCH peak_rss_mb %.1f MB\n", ru.ru_maxrss / 1024.0);
    fflush(stdout);
    bench_study(quick);
    free(x);
    free(y);
    hs_net_free(&net);
    return 0;
}
