/* test_metrics.c - CUnit suite for the evaluation metrics (metrics.c) and
 * the SVG pictures (plot.c), registered by hs_register_metrics_tests().
 *
 * The reported numbers decide whether a hemorrhage detector is trusted, so
 * each one is pinned twice: against small examples worked out by hand (in
 * the comments next to them), and against independent brute-force versions
 * written here in the most obvious O(n^2) way (every positive-negative pair
 * for the AUC and DeLong's structural components, every candidate threshold
 * for the operating point) on seeded random data with many ties. The SVG
 * tests parse what was written: a well-formed tag structure, only known
 * entities, valid UTF-8, escaped caller text, and no temporary files left
 * behind. All files live in a private mkdtemp directory removed afterwards. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "hemoscan/metrics.h"
#include "hemoscan/plot.h"
#include "hemoscan/rng.h"
#include "hemoscan/rng.h"
#include "hemoscan/status.h"
#include "test_util.h"

int hs_register_metrics_tests(void);

static char tmp_dir[4096];

/* ---- helpers -------------------------------------------------------------- */

static int suite_init(void)
{
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "metrics");
}

static int suite_clean(void)
{
    return hs_test_tmpdir_remove(tmp_dir);
}

/* Random scores on a grid of `levels` values in [0, 1], so that ties are
 * frequent; positives are shifted up so that the AUC is interesting. */
static void random_case_set(hs_rng *rng, int n, int levels, float *scores, int *labels)
{
    for (int i = 0; i < n; i++) {
        labels[i] = hs_rng_uniform(rng) < 0.4;
        double u = hs_rng_uniform(rng);
        if (labels[i])
            u = 0.6 * u + 0.4 * hs_rng_uniform(rng);
        scores[i] = (float)(floor(u * levels) / (levels - 1 > 0 ? levels - 1 : 1));
        if (scores[i] > 1.0f)
            scores[i] = 1.0f;
    }
}

/* The AUC as its definition: the mean of psi over all positive-negative
 * pairs, psi = 1 if the positive scores higher, 1/2 on a tie. */
static double brute_auc(const float *s, const int *l, int n)
{
    double sum = 0.0;
    long pairs = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            if (l[i] != 1 || l[j] != 0)
                continue;
            sum += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0);
            pairs++;
        }
    }
    return pairs > 0 ? sum / (double)pairs : NAN;
}

/* DeLong's variance from structural components computed pair by pair. */
static double brute_delong_var(const float *s, const int *l, int n)
{
    int P = 0, N = 0;
    for (int i = 0; i < n; i++) {
        if (l[i] == 1)
            P++;
        else
            N++;
    }
    double *v10 = calloc((size_t)P, sizeof *v10), *v01 = calloc((size_t)N, sizeof *v01);
    int a = 0, b = 0;
    for (int i = 0; i < n; i++) {
        if (l[i] != 1)
            continue;
        for (int j = 0; j < n; j++) {
            if (l[j] == 0)
                v10[a] += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0);
        }
        v10[a++] /= N;
    }
    for (int j = 0; j < n; j++) {
        if (l[j] != 0)
            continue;
        for (int i = 0; i < n; i++) {
            if (l[i] == 1)
                v01[b] += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0);
        }
        v01[b++] /= P;
    }
    double m10 = 0.0, m01 = 0.0, s10 = 0.0, s01 = 0.0;
    for (int i = 0; i < P; i++)
        m10 += v10[i] / P;
    for (int j = 0; j < N; j++)
        m01 += v01[j] / N;
    for (int i = 0; i < P; i++)
        s10 += (v10[i] - m10) * (v10[i] - m10) / (P - 1);
    for (int j = 0; j < N; j++)
        s01 += (v01[j] - m01) * (v01[j] - m01) / (N - 1);
    free(v10);
    free(v01);
    return s10 / P + s01 / N;
}

static double logit(double p)
{
    return log(p / (1.0 - p));
}

/* ---- AUC ------------------------------------------------------------------ */

static void test_auc_hand(void)
{
    /* Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 0.35 beats one
     * of two, 0.8 beats both: 3 of 4 pairs. */
    const float s1[] = {0.1f, 0.4f, 0.35f, 0.8f};
    const int l1[] = {0, 0, 1, 1};
    CU_ASSERT_DOUBLE_EQUAL(hs_roc_auc(s1, l1, 4), 0.75, 1e-15);
    /* A tie between a positive and a negative counts 1/2: positives 0.5 and
     * 0.9, negatives 0.5 and 0.2: 0.5 + 1 + 1 + 1 = 3.5 of 4. */
    const float s2[] = {0.5f, 0.5f, 0.2f, 0.9f};
    const int l2[] = {1, 0, 0, 1};
    CU_ASSERT_DOUBLE_EQUAL(hs_roc_auc(s2, l2, 4), 0.875, 1e-15);
    /* Perfect, inverted, all equal. */
    const float s3[] = {0.1f, 0.2f, 0.8f, 0.9f, 0.85f};
    const int perfect[] = {0, 0, 1, 1, 1}, inverted[] = {1, 1, 0, 0, 0};
    CU_ASSERT_EQUAL(hs_roc_auc(s3, perfect, 5), 1.0);
    CU_ASSERT_EQUAL(hs_roc_auc(s3, inverted, 5), 0.0);
    const float flat[] = {0.3f, 0.3f, 0.3f, 0.3f, 0.3f};
    CU_ASSERT_EQUAL(hs_roc_auc(flat, perfect, 5), 0.5);
    /* Ties inside one class do not matter: 1.0 still. */
    const float s4[] = {0.2f, 0.2f, 0.7f, 0.7f};
    const int l4[] = {0, 0, 1, 1};
    CU_ASSERT_EQUAL(hs_roc_auc(s4, l4, 4), 1.0);
}

static void test_auc_undefined(void)
{
    const float s[] = {0.1f, 0.4f, 0.35f, 0.8f};
    const int ones[] = {1, 1, 1, 1}, zeros[] = {0, 0, 0, 0}, bad[] = {0, 2, 1, 1};
    CU_ASSERT(isnan(hs_roc_auc(s, ones, 4)));
    CU_ASSERT(isnan(hs_roc_auc(s, zeros, 4)));
    CU_ASSERT(isnan(hs_roc_auc(s, bad, 4)));
    CU_ASSERT(isnan(hs_roc_auc(s, ones, 0)));
    CU_ASSERT(isnan(hs_roc_auc(NULL, ones, 4)));
    const float with_nan[] = {0.1f, NAN, 0.35f, 0.8f};
    const int l[] = {0, 0, 1, 1};
    CU_ASSERT(isnan(hs_roc_auc(with_nan, l, 4)));
}

static void test_auc_random_vs_pairs(void)
{
    hs_rng rng;
    hs_rng_seed(&rng, 2024);
    float s[400];
    int l[400];
    for (int round = 0; round < 20; round++) {
        int n = 2 + (int)hs_rng_below(&rng, 399);
        int levels = 2 + (int)hs_rng_below(&rng, 60);
        random_case_set(&rng, n, levels, s, l);
        double want = brute_auc(s, l, n), got = hs_roc_auc(s, l, n);
        if (isnan(want)) {
            CU_ASSERT(isnan(got));
        } else {
            CU_ASSERT_DOUBLE_EQUAL(got, want, 1e-12);
        }
    }
}

/* ---- DeLong interval ------------------------------------------------------- */

static void test_delong_hand(void)
{
    /* The 0.75 example: V10 = {1/2, 1} for positives 0.35 and 0.8, V01 =
     * {1, 1/2} for negatives 0.1 and 0.4. Both sample variances are
     * ((1/4)^2 * 2) / 1 = 1/8, so Var = (1/8)/2 + (1/8)/2 = 1/8. */
    const float s[] = {0.1f, 0.4f, 0.35f, 0.8f};
    const int l[] = {0, 0, 1, 1};
    hs_binary_metrics m;
    hs_error err;
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, l, 4, 0.5, &m, &err), HS_OK);
    CU_ASSERT_DOUBLE_EQUAL(m.auc, 0.75, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m.auc_var, 0.125, 1e-15);
    /* The interval is symmetric on the logit scale, with half-width
     * 1.959964 * SE / (auc (1 - auc)). */
    double half = 1.959963984540054 * sqrt(0.125) / (0.75 * 0.25);
    CU_ASSERT_DOUBLE_EQUAL(logit(m.auc_hi) - logit(0.75), half, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(logit(0.75) - logit(m.auc_lo), half, 1e-9);
    CU_ASSERT(m.auc_lo > 0.0 && m.auc_lo < 0.75 && m.auc_hi > 0.75 && m.auc_hi < 1.0);
}

static void test_delong_random(void)
{
    hs_rng rng;
    hs_rng_seed(&rng, 77);
    float s[300], s4[1200];
    int l[300], l4[1200];
    hs_error err;
    for (int round = 0; round < 10; round++) {
        int n = 20 + (int)hs_rng_below(&rng, 281);
        random_case_set(&rng, n, 3 + (int)hs_rng_below(&rng, 40), s, l);
        hs_binary_metrics m, m4;
        CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, l, n, 0.5, &m, &err), HS_OK);
        if (m.positives < 2 || m.negatives < 2) {
            CU_ASSERT(isnan(m.auc_var));
            continue;
        }
        double want = brute_delong_var(s, l, n);
        CU_ASSERT_DOUBLE_EQUAL(m.auc_var, want, 1e-12 * fmax(want, 1e-3));
        CU_ASSERT(m.auc_lo <= m.auc && m.auc <= m.auc_hi);
        CU_ASSERT(m.auc_lo >= 0.0 && m.auc_hi <= 1.0);
        /* Four copies of every case: the same AUC, about half the width. */
        for (int k = 0; k < 4; k++) {
            memcpy(s4 + k * n, s, (size_t)n * sizeof *s);
            memcpy(l4 + k * n, l, (size_t)n * sizeof *l);
        }
        CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s4, l4, 4 * n, 0.5, &m4, &err), HS_OK);
        CU_ASSERT_DOUBLE_EQUAL(m4.auc, m.auc, 1e-15);
        if (m.auc_var > 0.0) {
            CU_ASSERT(m4.auc_hi - m4.auc_lo < m.auc_hi - m.auc_lo);
            CU_ASSERT(m4.auc_hi - m4.auc_lo < 0.6 * (m.auc_hi - m.auc_lo));
            CU_ASSERT(m4.auc_lo <= m4.auc && m4.auc <= m4.auc_hi);
        }
    }
}

static void test_delong_degenerate(void)
{
    hs_binary_metrics m;
    hs_error err;
    /* Perfect separation: every component is 1 (or 0): variance 0, and the
     * interval collapses onto the AUC instead of going through logit(1). */
    const float s[] = {0.1f, 0.2f, 0.8f, 0.9f};
    const int l[] = {0, 0, 1, 1};
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, l, 4, 0.5, &m, &err), HS_OK);
    CU_ASSERT_EQUAL(m.auc_var, 0.0);
    CU_ASSERT_EQUAL(m.auc_lo, 1.0);
    CU_ASSERT_EQUAL(m.auc_hi, 1.0);
    /* One positive: no sample variance, no interval, but an AUC. */
    const int one[] = {0, 0, 0, 1};
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, one, 4, 0.5, &m, &err), HS_OK);
    CU_ASSERT_EQUAL(m.auc, 1.0);
    CU_ASSERT(isnan(m.auc_var) && isnan(m.auc_lo) && isnan(m.auc_hi));
}

/* ---- metrics at a threshold ------------------------------------------------ */

static void test_metrics_hand(void)
{
    /* At 0.5 the calls are 0.9+ 0.8+ 0.7- 0.6+ 0.55- (five positive calls):
     * tp 3, fp 2, and below 0.5 one positive (0.3) and four negatives:
     * fn 1, tn 4. accuracy 7/10, sensitivity 3/4, specificity 4/6,
     * precision 3/5, F1 = 2*3 / (2*3 + 2 + 1) = 2/3. */
    const float s[] = {0.9f, 0.8f, 0.7f, 0.6f, 0.55f, 0.4f, 0.3f, 0.2f, 0.1f, 0.05f};
    const int l[] = {1, 1, 0, 1, 0, 0, 1, 0, 0, 0};
    hs_binary_metrics m;
    hs_error err;
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, l, 10, 0.5, &m, &err), HS_OK);
    CU_ASSERT(m.n == 10 && m.positives == 4 && m.negatives == 6);
    CU_ASSERT(m.tp == 3 && m.fp == 2 && m.tn == 4 && m.fn == 1);
    CU_ASSERT_DOUBLE_EQUAL(m.threshold, 0.5, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(m.accuracy, 0.7, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m.sensitivity, 0.75, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m.specificity, 4.0 / 6.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m.precision, 0.6, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(m.f1, 2.0 / 3.0, 1e-15);
    /* F1 as the harmonic mean of precision and sensitivity. */
    CU_ASSERT_DOUBLE_EQUAL(m.f1, 2 * m.precision * m.sensitivity / (m.precision + m.sensitivity), 1e-15);
    /* AUC: positives 0.9 and 0.8 beat all 6 negatives, 0.6 beats 5 (all
     * but 0.7), 0.3 beats 3: 20 of 24 pairs. */
    CU_ASSERT_DOUBLE_EQUAL(m.auc, 20.0 / 24.0, 1e-15);

    /* A score equal to the threshold is a positive call. */
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, l, 10, (double)0.6f, &m, &err), HS_OK);
    CU_ASSERT(m.tp == 3 && m.fp == 1);
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, l, 10, nextafter((double)0.6f, 1.0), &m, &err), HS_OK);
    CU_ASSERT(m.tp == 2 && m.fp == 1);
}

static void test_metrics_undefined(void)
{
    const float s[] = {0.9f, 0.2f, 0.1f};
    const int neg[] = {0, 0, 0}, pos[] = {1, 1, 1};
    hs_binary_metrics m;
    hs_error err;
    /* No positives: sensitivity and AUC are NaN; one false positive makes
     * precision 0/1 and F1 0. */
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, neg, 3, 0.5, &m, &err), HS_OK);
    CU_ASSERT(isnan(m.sensitivity) && isnan(m.auc) && isnan(m.auc_lo) && isnan(m.auc_hi));
    CU_ASSERT(m.tp == 0 && m.fp == 1 && m.tn == 2 && m.fn == 0);
    CU_ASSERT_DOUBLE_EQUAL(m.specificity, 2.0 / 3.0, 1e-15);
    CU_ASSERT_EQUAL(m.precision, 0.0);
    CU_ASSERT_EQUAL(m.f1, 0.0);
    /* No positives and no positive calls: precision and F1 NaN too. */
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, neg, 3, 0.95, &m, &err), HS_OK);
    CU_ASSERT(isnan(m.precision) && isnan(m.f1) && isnan(m.sensitivity));
    CU_ASSERT_EQUAL(m.accuracy, 1.0);
    /* No negatives: specificity NaN. Positives but no calls: F1 0. */
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, pos, 3, 0.95, &m, &err), HS_OK);
    CU_ASSERT(isnan(m.specificity) && isnan(m.precision) && isnan(m.auc));
    CU_ASSERT_EQUAL(m.sensitivity, 0.0);
    CU_ASSERT_EQUAL(m.f1, 0.0);
}

static void test_metrics_bad_input(void)
{
    const float s[] = {0.9f, 0.2f, 0.1f, 0.4f};
    const int bad[] = {0, 1, 0, 2}, l[] = {0, 1, 0, 1};
    const float nan_score[] = {0.9f, NAN, 0.1f, 0.4f};
    hs_binary_metrics m;
    hs_error err = {HS_OK, ""};
    CU_ASSERT_EQUAL(hs_binary_metrics_compute(s, bad, 4, 0.5, &m, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "case 3"));
    CU_ASSERT(isnan(m.accuracy) && m.tp == 0);
    CU_ASSERT_EQUAL(hs_binary_metrics_compute(nan_score, l, 4, 0.5, &m, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "case 1"));
    CU_ASSERT_EQUAL(hs_binary_metrics_compute(s, l, 0, 0.5, &m, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_binary_metrics_compute(s, l, 4, NAN, &m, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_binary_metrics_compute(NULL, l, 4, 0.5, &m, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_binary_metrics_compute(s, l, 4, 0.5, NULL, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(err.code, HS_ERR_ARG);
}

/* ---- ROC curve ------------------------------------------------------------ */

static void test_roc_curve_hand(void)
{
    /* Thresholds from the top: 0.8 (a positive) -> (0, 1/2), 0.4 (a
     * negative) -> (1/2, 1/2), 0.35 -> (1/2, 1), 0.1 -> (1, 1). */
    const float s[] = {0.1f, 0.4f, 0.35f, 0.8f};
    const int l[] = {0, 0, 1, 1};
    double *f, *t, *th;
    int count;
    hs_error err;
    CU_ASSERT_EQUAL_FATAL(hs_roc_curve(s, l, 4, &f, &t, &th, &count, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(count, 5);
    const double wf[] = {0, 0, 0.5, 0.5, 1}, wt[] = {0, 0.5, 0.5, 1, 1};
    const double wth[] = {INFINITY, 0.8f, 0.4f, 0.35f, 0.1f};
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(f[i], wf[i]);
        CU_ASSERT_EQUAL(t[i], wt[i]);
        CU_ASSERT_EQUAL(th[i], wth[i]);
    }
    free(f);
    free(t);
    free(th);
    /* Ties are merged into one point: three distinct scores, four points,
     * the tied pair moving diagonally from (0, 1/2) to (1/2, 1). */
    const float s2[] = {0.5f, 0.5f, 0.2f, 0.9f};
    const int l2[] = {1, 0, 0, 1};
    CU_ASSERT_EQUAL_FATAL(hs_roc_curve(s2, l2, 4, &f, &t, NULL, &count, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(count, 4);
    CU_ASSERT(f[1] == 0.0 && t[1] == 0.5 && f[2] == 0.5 && t[2] == 1.0 && f[3] == 1.0 && t[3] == 1.0);
    free(f);
    free(t);
    /* One class only: refused, outputs cleared. */
    const int ones[] = {1, 1, 1, 1};
    f = t = th = (double *)&count;
    count = 7;
    CU_ASSERT_EQUAL(hs_roc_curve(s, ones, 4, &f, &t, &th, &count, &err), HS_ERR_ARG);
    CU_ASSERT(f == NULL && t == NULL && th == NULL && count == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "both classes"));
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int distinct_scores(const float *s, int n, float *sorted)
{
    memcpy(sorted, s, (size_t)n * sizeof *s);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_float);
    int d = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0 || sorted[i] != sorted[i - 1])
            sorted[d++] = sorted[i];
    }
    return d;
}

static void test_roc_curve_random(void)
{
    hs_rng rng;
    hs_rng_seed(&rng, 5150);
    float s[1000], sorted[1000];
    int l[1000];
    hs_error err;
    for (int round = 0; round < 30; round++) {
        int n = 2 + (int)hs_rng_below(&rng, 999);
        /* Every third round without ties to speak of. */
        random_case_set(&rng, n, round % 3 == 0 ? 1 << 20 : 2 + (int)hs_rng_below(&rng, 100), s, l);
        double auc = hs_roc_auc(s, l, n);
        double *f, *t, *th;
        int count;
        hs_status st = hs_roc_curve(s, l, n, &f, &t, &th, &count, &err);
        if (isnan(auc)) {
            CU_ASSERT_EQUAL(st, HS_ERR_ARG);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(st, HS_OK);
        CU_ASSERT_EQUAL(count, distinct_scores(s, n, sorted) + 1);
        CU_ASSERT(f[0] == 0.0 && t[0] == 0.0 && isinf(th[0]) && th[0] > 0);
        CU_ASSERT(f[count - 1] == 1.0 && t[count - 1] == 1.0);
        double area = 0.0;
        int monotone = 1;
        for (int i = 1; i < count; i++) {
            monotone &= f[i] >= f[i - 1] && t[i] >= t[i - 1] && th[i] < th[i - 1];
            monotone &= f[i] > f[i - 1] || t[i] > t[i - 1];
            area += (f[i] - f[i - 1]) * (t[i] + t[i - 1]) / 2.0;
        }
        CU_ASSERT(monotone);
        CU_ASSERT_DOUBLE_EQUAL(area, auc, 1e-12);
        free(f);
        free(t);
        free(th);
    }
}

/* ---- operating point -------------------------------------------------------- */

/* Sensitivity and specificity of calling score >= t positive, by counting. */
static void rates_at(const float *s, const int *l, int n, double t, int *tp, int *fp)
{
    *tp = 0;
    *fp = 0;
    for (int i = 0; i < n; i++) {
        if ((double)s[i] >= t) {
            if (l[i])
                (*tp)++;
            else
                (*fp)++;
        }
    }
}

static void test_threshold_hand(void)
{
    const float s[] = {0.9f, 0.8f, 0.7f, 0.6f, 0.55f, 0.4f, 0.3f, 0.2f, 0.1f, 0.05f};
    const int l[] = {1, 1, 0, 1, 0, 0, 1, 0, 0, 0};
    double t;
    hs_error err;
    hs_binary_metrics m;
    /* 0.95 of 4 positives needs all four: the lowest positive, 0.3, with
     * 0.2 (a negative) next below: threshold 0.25, sensitivity 1,
     * specificity 3/6 (0.2, 0.1, 0.05). */
    CU_ASSERT_EQUAL_FATAL(hs_threshold_for_sensitivity(s, l, 10, 0.95, &t, &err), HS_OK);
    CU_ASSERT_DOUBLE_EQUAL(t, ((double)0.3f + (double)0.2f) / 2.0, 1e-15);
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, l, 10, t, &m, &err), HS_OK);
    CU_ASSERT(m.sensitivity >= 0.95);
    CU_ASSERT_DOUBLE_EQUAL(m.specificity, 0.5, 1e-15);
    /* 0.75 needs three: 0.6, then 0.55 (a negative): threshold 0.575,
     * specificity 4/6. */
    CU_ASSERT_EQUAL_FATAL(hs_threshold_for_sensitivity(s, l, 10, 0.75, &t, &err), HS_OK);
    CU_ASSERT_DOUBLE_EQUAL(t, ((double)0.6f + (double)0.55f) / 2.0, 1e-15);
    /* The tie rule: at 0.5 of 3 positives the first qualifying score is
     * 0.7 (specificity 2/3 after 0.8); 0.6 below it is a positive, same
     * specificity, higher sensitivity: taken too. Threshold (0.6+0.5)/2. */
    const float s2[] = {0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f};
    const int l2[] = {1, 0, 1, 1, 0, 0};
    CU_ASSERT_EQUAL_FATAL(hs_threshold_for_sensitivity(s2, l2, 6, 0.5, &t, &err), HS_OK);
    CU_ASSERT_DOUBLE_EQUAL(t, ((double)0.6f + (double)0.5f) / 2.0, 1e-15);
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s2, l2, 6, t, &m, &err), HS_OK);
    CU_ASSERT(m.tp == 3 && m.fp == 1);
    /* Chosen score is the lowest: midpoint with 0. */
    const float s3[] = {0.8f, 0.4f, 0.6f};
    const int l3[] = {0, 1, 1};
    CU_ASSERT_EQUAL_FATAL(hs_threshold_for_sensitivity(s3, l3, 3, 1.0, &t, &err), HS_OK);
    CU_ASSERT_DOUBLE_EQUAL(t, (double)0.4f / 2.0, 1e-15);
    /* A decimal target that is not exact in binary: 0.14 * 50 positives
     * is 7.000000000000001 in double, yet 7 positives reach it. Labels
     * alternate, so no positive-only run below extends the choice. */
    float s4[100];
    int l4[100];
    for (int i = 0; i < 100; i++) {
        s4[i] = (float)(i + 1) / 128.0f;
        l4[i] = i % 2;
    }
    CU_ASSERT(0.14 * 50 > 7.0);
    CU_ASSERT_EQUAL_FATAL(hs_threshold_for_sensitivity(s4, l4, 100, 0.14, &t, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s4, l4, 100, t, &m, &err), HS_OK);
    CU_ASSERT_EQUAL(m.tp, 7);
}

/* The false-alarm operating point on the hand example of
 * test_threshold_hand: negatives at 0.7, 0.55, 0.4, 0.2, 0.1, 0.05. */
static void test_false_alarm_hand(void)
{
    const float s[] = {0.9f, 0.8f, 0.7f, 0.6f, 0.55f, 0.4f, 0.3f, 0.2f, 0.1f, 0.05f};
    const int l[] = {1, 1, 0, 1, 0, 0, 1, 0, 0, 0};
    double t;
    hs_error err;
    hs_binary_metrics m;
    /* A budget of 1 in 6: the 0.7 negative may be called, 0.55 may not, so
     * the lowest threshold is 0.6 (a positive, taken), midway to 0.55. */
    CU_ASSERT_EQUAL_FATAL(hs_threshold_for_false_alarm(s, l, 10, 1.0 / 6.0, &t, &err), HS_OK);
    CU_ASSERT_DOUBLE_EQUAL(t, ((double)0.6f + (double)0.55f) / 2.0, 1e-15);
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, l, 10, t, &m, &err), HS_OK);
    CU_ASSERT(m.fp == 1 && m.tp == 3);
    /* Just under 1 in 6 leaves the 0.7 negative out: threshold 0.75. */
    CU_ASSERT_EQUAL_FATAL(hs_threshold_for_false_alarm(s, l, 10, 0.16, &t, &err), HS_OK);
    CU_ASSERT_DOUBLE_EQUAL(t, ((double)0.8f + (double)0.7f) / 2.0, 1e-15);
    /* Three in six: down to 0.3 (a positive below the 0.4 negative), midway
     * to 0.2. */
    CU_ASSERT_EQUAL_FATAL(hs_threshold_for_false_alarm(s, l, 10, 0.5, &t, &err), HS_OK);
    CU_ASSERT_DOUBLE_EQUAL(t, ((double)0.3f + (double)0.2f) / 2.0, 1e-15);
    /* Everything allowed: every case is called, threshold midway to 0. */
    CU_ASSERT_EQUAL_FATAL(hs_threshold_for_false_alarm(s, l, 10, 1.0, &t, &err), HS_OK);
    CU_ASSERT_DOUBLE_EQUAL(t, (double)0.05f / 2.0, 1e-15);
    /* Nothing allowed and a negative on top: above the highest score. */
    const float s2[] = {0.9f, 0.8f, 0.3f};
    const int l2[] = {0, 1, 0};
    CU_ASSERT_EQUAL_FATAL(hs_threshold_for_false_alarm(s2, l2, 3, 0.0, &t, &err), HS_OK);
    CU_ASSERT_DOUBLE_EQUAL(t, ((double)0.9f + 1.0) / 2.0, 1e-15);
    CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s2, l2, 3, t, &m, &err), HS_OK);
    CU_ASSERT(m.fp == 0 && m.tp == 0);
    /* Bad budgets and one class only are refused, leaving 0.5. */
    t = -1.0;
    CU_ASSERT_EQUAL(hs_threshold_for_false_alarm(s, l, 10, -0.1, &t, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(t, 0.5);
    CU_ASSERT_EQUAL(hs_threshold_for_false_alarm(s, l, 10, NAN, &t, &err), HS_ERR_ARG);
    const int ones[] = {1, 1, 1};
    CU_ASSERT_EQUAL(hs_threshold_for_false_alarm(s2, ones, 3, 0.1, &t, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "both classes"));
}

/* Against every candidate threshold on random data with ties: the chosen
 * one keeps the budget, and the next lower distinct score breaks it. */
static void test_false_alarm_brute_force(void)
{
    enum { n = 200 };
    float s[n];
    int l[n];
    hs_rng rng;
    hs_rng_seed(&rng, 42);
    for (int i = 0; i < n; i++) {
        l[i] = hs_rng_uniform(&rng) < 0.3;
        s[i] = (float)((int)(hs_rng_uniform(&rng) * 40.0 + 10.0 * l[i]) / 50.0);
    }
    const double budgets[] = {0.0, 0.01, 0.05, 0.1, 0.33, 0.9};
    for (size_t b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
        double t;
        hs_error err;
        hs_binary_metrics m;
        CU_ASSERT_EQUAL_FATAL(hs_threshold_for_false_alarm(s, l, n, budgets[b], &t, &err), HS_OK);
        CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, l, n, t, &m, &err), HS_OK);
        CU_ASSERT(m.fp <= budgets[b] * (m.fp + m.tn) + 1e-9);
        /* the highest score below t, if any, would break the budget */
        double below = -1.0;
        for (int i = 0; i < n; i++)
            if (s[i] < t && s[i] > below)
                below = s[i];
        if (below >= 0.0) {
            CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, l, n, below, &m, &err), HS_OK);
            CU_ASSERT(m.fp > budgets[b] * (m.fp + m.tn));
        }
    }
}

static void test_threshold_degenerate(void)
{
    const float s[] = {0.9f, 0.8f, 0.7f};
    const int ones[] = {1, 1, 1}, l[] = {1, 0, 1};
    double t = -1.0;
    hs_error err = {HS_OK, ""};
    CU_ASSERT_EQUAL(hs_threshold_for_sensitivity(s, ones, 3, 0.95, &t, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(t, 0.5);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "both classes"));
    t = -1.0;
    CU_ASSERT_EQUAL(hs_threshold_for_sensitivity(s, l, 3, 1.5, &t, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(t, 0.5);
    CU_ASSERT_EQUAL(hs_threshold_for_sensitivity(s, l, 3, NAN, &t, &err), HS_ERR_ARG);
    const float outside[] = {0.9f, 1.5f, 0.7f};
    CU_ASSERT_EQUAL(hs_threshold_for_sensitivity(outside, l, 3, 0.9, &t, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "case 1"));
    CU_ASSERT_EQUAL(hs_threshold_for_sensitivity(s, l, 0, 0.9, &t, &err), HS_ERR_ARG);
}

static void test_threshold_brute_force(void)
{
    hs_rng rng;
    hs_rng_seed(&rng, 31337);
    float s[400], d[400];
    int l[400];
    const double targets[] = {0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0};
    hs_error err;
    int checked = 0;
    for (int round = 0; round < 40; round++) {
        int n = 2 + (int)hs_rng_below(&rng, 399);
        random_case_set(&rng, n, 2 + (int)hs_rng_below(&rng, 80), s, l);
        int P = 0;
        for (int i = 0; i < n; i++)
            P += l[i];
        int N = n - P;
        double min_sens = targets[round % (int)(sizeof targets / sizeof targets[0])];
        double t;
        hs_status st = hs_threshold_for_sensitivity(s, l, n, min_sens, &t, &err);
        if (P == 0 || N == 0) {
            CU_ASSERT(st == HS_ERR_ARG && t == 0.5);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(st, HS_OK);
        /* Every distinct score as a threshold; keep the best by the rules. */
        int nd = distinct_scores(s, n, d);
        int best = -1, best_tp = 0, best_fp = 0;
        for (int j = 0; j < nd; j++) {
            int tp, fp;
            rates_at(s, l, n, d[j], &tp, &fp);
            if ((double)tp / P < min_sens - 1e-9)
                continue;
            int better = best < 0 || fp < best_fp || (fp == best_fp && tp > best_tp) ||
                         (fp == best_fp && tp == best_tp && d[j] > d[best]);
            if (better) {
                best = j;
                best_tp = tp;
                best_fp = fp;
            }
        }
        CU_ASSERT_FATAL(best >= 0);
        int tp, fp;
        rates_at(s, l, n, t, &tp, &fp);
        CU_ASSERT(tp == best_tp && fp == best_fp);
        CU_ASSERT((double)tp / P >= min_sens - 1e-9);
        double below = best > 0 ? d[best - 1] : 0.0;
        CU_ASSERT(t <= d[best] && (t > below || (best == 0 && t == 0.0)));
        CU_ASSERT_DOUBLE_EQUAL(t, 0.5 * ((double)d[best] + below), 1e-15);
        CU_ASSERT(t >= 0.0 && t <= 1.0);
        checked++;
    }
    CU_ASSERT(checked >= 30);
}

/* ---- several classes, summaries ------------------------------------------------- */

static void test_confusion_and_ovr(void)
{
    /* truth 0 -> predicted 0, 1, 0; truth 1 -> 1, 1, 2; truth 2 -> 2, 0.
     * The last three pairs have a class out of range and are not counted. */
    const int truth[] = {0, 0, 1, 1, 2, 2, 0, 1, 3, -1, 1}, pred[] = {0, 1, 1, 1, 2, 0, 0, 2, 0, 1, -1};
    int cm[9];
    memset(cm, 0x7f, sizeof cm);
    hs_confusion_matrix(truth, pred, 11, 3, cm);
    const int want[9] = {2, 1, 0, 0, 2, 1, 1, 0, 1};
    CU_ASSERT(memcmp(cm, want, sizeof want) == 0);

    /* One-vs-rest, 6 cases plus one with an invalid truth that would change
     * every AUC if it were counted as a negative.
     * class 0: positives 0.7, 0.4 vs negatives 0.3, 0.1, 0.5, 0.2:
     *          4 + 3 = 7 of 8 -> 0.875
     * class 1: positives 0.5, 0.3 vs negatives 0.2, 0.3, 0.4, 0.2:
     *          4 + (1 + 0.5 + 0 + 1) = 6.5 of 8 -> 0.8125
     * class 2: positives 0.6, 0.6 vs 0.1, 0.2, 0.2, 0.2 -> 1 */
    const float probs[] = {
        0.7f, 0.2f, 0.1f, /* truth 0 */
        0.3f, 0.5f, 0.2f, /* truth 1 */
        0.1f, 0.3f, 0.6f, /* truth 2 */
        0.4f, 0.4f, 0.2f, /* truth 0 */
        0.5f, 0.3f, 0.2f, /* truth 1 */
        0.2f, 0.2f, 0.6f, /* truth 2 */
        0.9f, 0.9f, 0.9f, /* truth -1: left out */
    };
    const int t2[] = {0, 1, 2, 0, 1, 2, -1};
    double auc[3];
    hs_one_vs_rest_auc(probs, t2, 7, 3, auc);
    CU_ASSERT_DOUBLE_EQUAL(auc[0], 0.875, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(auc[1], 0.8125, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(auc[2], 1.0, 1e-15);
    /* Read as four classes, class 3 never occurs: NaN. */
    const float probs4[] = {0.7f, 0.1f, 0.1f, 0.1f, 0.2f, 0.6f, 0.1f, 0.1f, 0.1f, 0.1f, 0.7f, 0.1f};
    const int t4[] = {0, 1, 2};
    double auc4[4];
    hs_one_vs_rest_auc(probs4, t4, 3, 4, auc4);
    CU_ASSERT(auc4[0] == 1.0 && auc4[1] == 1.0 && auc4[2] == 1.0 && isnan(auc4[3]));
}

static void test_mean_sd(void)
{
    double mean, sd;
    /* 1, 2, 3, 4: mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25
     * = 5, sample variance 5/3. */
    const double v[] = {1.0, 2.0, NAN, 3.0, 4.0};
    hs_mean_sd(v, 5, &mean, &sd);
    CU_ASSERT_DOUBLE_EQUAL(mean, 2.5, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sd, sqrt(5.0 / 3.0), 1e-15);
    /* Large values with a small spread: a one-pass sum of squares would
     * lose the spread to cancellation. */
    const double big[] = {1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0};
    hs_mean_sd(big, 3, &mean, &sd);
    CU_ASSERT_DOUBLE_EQUAL(mean, 1e9 + 2.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(sd, 1.0, 1e-9);
    const double one[] = {NAN, 0.9};
    hs_mean_sd(one, 2, &mean, &sd);
    CU_ASSERT(mean == 0.9 && isnan(sd));
    const double none[] = {NAN, NAN};
    hs_mean_sd(none, 2, &mean, &sd);
    CU_ASSERT(isnan(mean) && isnan(sd));
    hs_mean_sd(none, 0, &mean, &sd);
    CU_ASSERT(isnan(mean) && isnan(sd));
}

/* ---- SVG ------------------------------------------------------------------ */

static int valid_utf8(const unsigned char *s)
{
    while (*s != 0) {
        int extra;
        unsigned cp;
        if (*s < 0x80) {
            s++;
            continue;
        }
        if (*s >= 0xc2 && *s <= 0xdf) {
            extra = 1;
            cp = *s & 0x1f;
        } else if (*s >= 0xe0 && *s <= 0xef) {
            extra = 2;
            cp = *s & 0x0f;
        } else if (*s >= 0xf0 && *s <= 0xf4) {
            extra = 3;
            cp = *s & 0x07;
        } else {
            return 0;
        }
        for (int i = 1; i <= extra; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        s += extra + 1;
    }
    return 1;
}

/* A small well-formedness check: tags nest and match, attribute values are
 * quoted, '<' appears only as a tag start, every '&' starts a known entity
 * and no control character is present. Returns the number of elements, or
 * -1 with the reason printed. */
static int check_xml(const char *doc)
{
    char stack[64][32];
    int depth = 0, elements = 0, seen_root = 0;
    const char *p = doc;
    if (strncmp(p, "<?xml ", 6) == 0) {
        p = strstr(p, "?>");
        if (p == NULL)
            return -1;
        p += 2;
    }
    for (; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') {
            fprintf(stderr, "\n  control character %#x at %ld\n", c, (long)(p - doc));
            return -1;
        }
        if (c == '&') {
            static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
            int ok = 0;
            for (int i = 0; i < 5; i++)
                ok |= strncmp(p, ents[i], strlen(ents[i])) == 0;
            if (!ok) {
                fprintf(stderr, "\n  bare '&' at %ld\n", (long)(p - doc));
                return -1;
            }
            continue;
        }
        if (c == '>') {
            fprintf(stderr, "\n  '>' outside a tag at %ld\n", (long)(p - doc));
            return -1;
        }
        if (c != '<')
            continue;
        int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t nl = strcspn(name, " \t\n/>");
        if (nl == 0 || nl >= sizeof stack[0])
            return -1;
        /* Scan to the end of the tag, honouring quoted attribute values. */
        const char *q = name + nl;
        char quote = 0;
        for (; *q != '\0'; q++) {
            if (quote != 0) {
                if (*q == quote)
                    quote = 0;
                else if (*q == '<')
                    return -1;
            } else if (*q == '"' || *q == '\'') {
                quote = *q;
            } else if (*q == '>') {
                break;
            } else if (*q == '<') {
                return -1;
            }
        }
        if (*q != '>')
            return -1;
        int self_closing = q[-1] == '/';
        if (closing) {
            if (depth == 0 || strlen(stack[depth - 1]) != nl || strncmp(stack[depth - 1], name, nl) != 0) {
                fprintf(stderr, "\n  </%.*s> does not match\n", (int)nl, name);
                return -1;
            }
            depth--;
        } else {
            if (depth == 0 && seen_root)
                return -1;
            seen_root = 1;
            elements++;
            if (!self_closing) {
                if (depth == 64)
                    return -1;
                memcpy(stack[depth], name, nl);
                stack[depth][nl] = '\0';
                depth++;
            }
        }
        p = q;
    }
    return depth == 0 && seen_root ? elements : -1;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Common checks of a written picture; returns the text for more. */
static char *check_svg(const char *path)
{
    struct stat sb;
    CU_ASSERT_FATAL(stat(path, &sb) == 0);
    size_t len;
    char *doc = (char *)hs_test_read_file(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT(strncmp(doc, "<?xml", 5) == 0 || strncmp(doc, "<svg", 4) == 0);
    CU_ASSERT(count_of(doc, "<svg ") == 1 && count_of(doc, "</svg>") == 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "viewBox=\"0 0 640 480\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "font-family=\"sans-serif\""));
    CU_ASSERT(count_of(doc, "<text") == count_of(doc, "</text>"));
    CU_ASSERT(count_of(doc, "<g ") + count_of(doc, "<g>") == count_of(doc, "</g>"));
    CU_ASSERT(check_xml(doc) > 20);
    CU_ASSERT(valid_utf8((const unsigned char *)doc));
    /* No number was written with a decimal comma or as nan/inf. */
    CU_ASSERT_PTR_NULL(strstr(doc, "nan"));
    CU_ASSERT_PTR_NULL(strstr(doc, "inf\""));
    return doc;
}

static void test_svg_roc(void)
{
    hs_rng rng;
    hs_rng_seed(&rng, 8);
    float s[200];
    int l[200];
    hs_plot_curve curves[HS_PLOT_MAX_CURVES];
    double *f[HS_PLOT_MAX_CURVES], *t[HS_PLOT_MAX_CURVES];
    double auc[HS_PLOT_MAX_CURVES];
    char labels[HS_PLOT_MAX_CURVES][64];
    hs_error err = {HS_OK, ""};
    for (int k = 0; k < HS_PLOT_MAX_CURVES; k++) {
        random_case_set(&rng, 200, 50, s, l);
        int count;
        CU_ASSERT_EQUAL_FATAL(hs_roc_curve(s, l, 200, &f[k], &t[k], NULL, &count, &err), HS_OK);
        hs_binary_metrics m;
        CU_ASSERT_EQUAL_FATAL(hs_binary_metrics_compute(s, l, 200, 0.5, &m, &err), HS_OK);
        auc[k] = m.auc;
        snprintf(labels[k], sizeof labels[k], "fold %d", k + 1);
        if (k == 1)
            snprintf(labels[k], sizeof labels[k], "fold 2 with a label far too long for the legend");
        if (k == HS_PLOT_MAX_CURVES - 1)
            snprintf(labels[k], sizeof labels[k], "h\xc3\xa6m \xe0\x80\xaf \xed\xa0\x80 \xe2\x80 \x01\xe2\x80\x94");
        /* Every other curve without CI, and one that must compute its AUC. */
        curves[k] = (hs_plot_curve){f[k], t[k], count, labels[k], k == 3 ? NAN : m.auc, k % 2 ? NAN : m.auc_lo,
                                    m.auc_hi};
    }
    f[2][5] = NAN; /* a hole in one curve */
    char path[4400];
    hs_test_path(path, sizeof path, tmp_dir, "roc.svg");
    /* The title carries characters XML must escape and one byte that is
     * not UTF-8; labels go through the same escaping. */
    CU_ASSERT_EQUAL_FATAL(hs_plot_roc_svg(path, "ROC <&> \"test\" \xff", curves, HS_PLOT_MAX_CURVES, 0.2, 0.95,
                                          &err),
                          HS_OK);
    char *doc = check_svg(path);
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "ROC &lt;&amp;&gt; &quot;test&quot; \xef\xbf\xbd"));
    /* An overlong '/', a lone surrogate, a truncated sequence and a control
     * character each become one U+FFFD; valid multi-byte text stays. */
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, ">h\xc3\xa6m \xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd "
                                       "\xef\xbf\xbd\xe2\x80\x94</text>"));
    CU_ASSERT_PTR_NULL(strstr(doc, "<&>"));
    /* A label too long for the legend is shortened with an ellipsis. */
    CU_ASSERT_PTR_NULL(strstr(doc, labels[1]));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, ">fold 2 with a label"));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\xe2\x80\xa6</text>"));
    /* Eight curves, eight different colours. */
    static const char *const colours[HS_PLOT_MAX_CURVES] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                                            "#E69F00", "#56B4E9", "#882255", "#555555"};
    char want[64];
    for (int k = 0; k < HS_PLOT_MAX_CURVES; k++) {
        if (k != 1 && k < HS_PLOT_MAX_CURVES - 1)
            CU_ASSERT_PTR_NOT_NULL(strstr(doc, labels[k]));
        snprintf(want, sizeof want, "AUC %.3f", auc[k]);
        CU_ASSERT_PTR_NOT_NULL(strstr(doc, want));
        snprintf(want, sizeof want, "stroke=\"%s\"", colours[k]);
        CU_ASSERT(count_of(doc, want) >= 2); /* curve and legend swatch */
    }
    snprintf(want, sizeof want, "AUC %.3f (%.3f\xe2\x80\x93%.3f)", auc[0], curves[0].auc_lo, curves[0].auc_hi);
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "sens 0.950, spec 0.800"));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "operating point"));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "chance"));
    CU_ASSERT_EQUAL(count_of(doc, "<circle"), 2); /* the dot and its legend entry */
    free(doc);

    /* Overwriting an existing picture, with one curve and no operating
     * point; no temporary file stays behind. */
    CU_ASSERT_EQUAL(hs_plot_roc_svg(path, NULL, curves, 1, NAN, NAN, &err), HS_OK);
    doc = check_svg(path);
    CU_ASSERT_PTR_NULL(strstr(doc, "fold 2"));
    CU_ASSERT_PTR_NULL(strstr(doc, "operating point"));
    CU_ASSERT_EQUAL(count_of(doc, "<circle"), 0);
    free(doc);
    CU_ASSERT(!hs_test_has_temp_files(tmp_dir));
    for (int k = 0; k < HS_PLOT_MAX_CURVES; k++) {
        free(f[k]);
        free(t[k]);
    }
}

static void test_svg_history(void)
{
    double loss[12], val_loss[12], acc[12], val_acc[12];
    for (int e = 0; e < 12; e++) {
        loss[e] = 0.7 / (e + 1) + 0.05;
        val_loss[e] = 0.8 / (e + 1) + 0.1 + 0.01 * e;
        acc[e] = 1.0 - loss[e];
        val_acc[e] = 1.0 - val_loss[e];
    }
    val_loss[4] = NAN;
    val_acc[4] = NAN;
    char path[4400];
    hs_test_path(path, sizeof path, tmp_dir, "history.svg");
    hs_error err = {HS_OK, ""};
    CU_ASSERT_EQUAL_FATAL(
        hs_plot_history_svg(path, "history <&>", loss, val_loss, acc, val_acc, 12, 7, &err), HS_OK);
    char *doc = check_svg(path);
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "history &lt;&amp;&gt;"));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, ">Loss<"));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, ">Accuracy<"));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, ">best 7<"));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, ">validation<"));
    /* Four series, the validation ones broken at the NaN: a new subpath. */
    CU_ASSERT_EQUAL(count_of(doc, "<path"), 4);
    CU_ASSERT_EQUAL(count_of(doc, " M"), 2);
    /* Markers for every finite value: 12 + 11 + 12 + 11. */
    CU_ASSERT_EQUAL(count_of(doc, "<circle"), 46);
    free(doc);
    /* No validation set, a single epoch, no best epoch. */
    CU_ASSERT_EQUAL(hs_plot_history_svg(path, NULL, loss, NULL, acc, NULL, 1, 0, &err), HS_OK);
    doc = check_svg(path);
    CU_ASSERT_PTR_NULL(strstr(doc, "validation"));
    CU_ASSERT_PTR_NULL(strstr(doc, "best"));
    free(doc);
    CU_ASSERT(!hs_test_has_temp_files(tmp_dir));
}

static void test_svg_errors(void)
{
    double v[3] = {1, 2, 3};
    hs_plot_curve c = {v, v, 3, "x", NAN, NAN, NAN};
    hs_error err = {HS_OK, ""};
    char path[4400];
    hs_test_path(path, sizeof path, tmp_dir, "no-such-dir/roc.svg");
    CU_ASSERT_EQUAL(hs_plot_roc_svg(path, "t", &c, 1, NAN, NAN, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    CU_ASSERT_EQUAL(hs_plot_history_svg(path, "t", v, v, v, v, 3, 1, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    hs_test_path(path, sizeof path, tmp_dir, "bad.svg");
    hs_plot_curve many[HS_PLOT_MAX_CURVES + 1];
    for (int i = 0; i <= HS_PLOT_MAX_CURVES; i++)
        many[i] = c;
    CU_ASSERT_EQUAL(hs_plot_roc_svg(path, "t", many, HS_PLOT_MAX_CURVES + 1, NAN, NAN, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    c.count = 0;
    CU_ASSERT_EQUAL(hs_plot_roc_svg(path, "t", &c, 1, NAN, NAN, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_plot_history_svg(path, "t", v, v, v, v, 0, 0, &err), HS_ERR_ARG);
    CU_ASSERT_EQUAL(hs_plot_history_svg(path, "t", v, v, v, v, 3, 4, &err), HS_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "best epoch"));
    CU_ASSERT_EQUAL(hs_plot_roc_svg(NULL, "t", &c, 1, NAN, NAN, &err), HS_ERR_ARG);
    /* The target is a directory: the rename fails after the temporary
     * file was written, and that file is removed again. */
    c.count = 3;
    hs_test_path(path, sizeof path, tmp_dir, "a-directory.svg");
    CU_ASSERT_FATAL(mkdir(path, 0755) == 0);
    CU_ASSERT_EQUAL(hs_plot_roc_svg(path, "t", &c, 1, NAN, NAN, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    CU_ASSERT(!hs_test_has_temp_files(tmp_dir));
    rmdir(path);
    hs_test_path(path, sizeof path, tmp_dir, "bad.svg");
    CU_ASSERT(access(path, F_OK) != 0);
    CU_ASSERT(!hs_test_has_temp_files(tmp_dir));
    /* A process in a decimal-comma locale still writes "0.5", where such a
     * locale is installed. */
    const char *old = setlocale(LC_NUMERIC, NULL);
    char keep[64];
    snprintf(keep, sizeof keep, "%s", old != NULL ? old : "C");
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") != NULL || setlocale(LC_NUMERIC, "de_DE.utf8") != NULL) {
        CU_ASSERT_EQUAL(hs_plot_roc_svg(path, "t", &c, 1, 0.25, 0.5, &err), HS_OK);
        char *doc = check_svg(path);
        CU_ASSERT_PTR_NOT_NULL(strstr(doc, "sens 0.500, spec 0.750"));
        free(doc);
        setlocale(LC_NUMERIC, keep);
    }
}

/* ---- registration ------------------------------------------------------------- */

int hs_register_metrics_tests(void)
{
    static const hs_test_case tests[] = {
        {"AUC: hand examples with ties", test_auc_hand},
        {"AUC: undefined cases are NaN", test_auc_undefined},
        {"AUC: random data against all pairs", test_auc_random_vs_pairs},
        {"DeLong: hand example, logit interval", test_delong_hand},
        {"DeLong: random data against pairwise components", test_delong_random},
        {"DeLong: zero and undefined variance", test_delong_degenerate},
        {"metrics at a threshold: hand example", test_metrics_hand},
        {"metrics at a threshold: missing classes", test_metrics_undefined},
        {"metrics at a threshold: bad input", test_metrics_bad_input},
        {"ROC curve: hand examples", test_roc_curve_hand},
        {"ROC curve: random data, area equals AUC", test_roc_curve_random},
        {"threshold for sensitivity: hand examples", test_threshold_hand},
        {"threshold for sensitivity: degenerate input", test_threshold_degenerate},
        {"threshold for sensitivity: brute force", test_threshold_brute_force},
        {"threshold for a false-alarm rate: hand examples", test_false_alarm_hand},
        {"threshold for a false-alarm rate: brute force", test_false_alarm_brute_force},
        {"confusion matrix and one-vs-rest AUC", test_confusion_and_ovr},
        {"mean and SD ignoring NaN", test_mean_sd},
        {"SVG: ROC picture", test_svg_roc},
        {"SVG: training history picture", test_svg_history},
        {"SVG: errors name the file", test_svg_errors},
    };
    return hs_test_add_suite("metrics and plots", suite_init, suite_clean, tests, sizeof tests / sizeof tests[0]);
}
