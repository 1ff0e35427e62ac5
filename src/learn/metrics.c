/* metrics.c - classification metrics, ROC AUC with DeLong's interval, ROC
 * curves and operating points (see metrics.h for the definitions).
 *
 * Everything ROC-shaped is computed from one sorted view of the cases:
 * (score, label, index) sorted by score and then by index, so ties form
 * runs and the order never depends on the qsort implementation. Walking the
 * runs once gives, per run, how many negatives lie below it and how many
 * positives above it, which is all that the Mann-Whitney AUC, DeLong's
 * structural components, the ROC points and the operating point need: no
 * pairwise O(n^2) loop anywhere. The AUC is accumulated as twice the U
 * statistic in 64-bit integers (ties add p*q instead of p*q/2), so it is
 * exact before the one final division and the curve's trapezoid area can be
 * checked against it to the last bits. The evaluation report at the end
 * (hs_eval_report) only gathers these figures for --eval and
 * cross-validation, so that both report one computation. */
#include "hemoscan/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hemoscan/predict.h"

/* The 0.975 quantile of the standard normal: a two-sided 95% interval. */
#define HS_Z_975 1.959963984540054

typedef struct {
    float score;
    int label;
    int index;
} case_rec;

/* A run of equal scores in the ascending order. */
typedef struct {
    float score;
    int64_t pos, neg; /* cases of each class in the run */
} score_run;

static int cmp_case(const void *a, const void *b)
{
    const case_rec *x = a, *y = b;
    if (x->score < y->score)
        return -1;
    if (x->score > y->score)
        return 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Sorts the cases ascending and merges equal scores into runs. Returns the
 * number of runs, or -1 when memory runs out. Inputs must already be valid
 * (finite scores, labels 0/1): the callers check first so that they can say
 * which case was wrong. stride lets one-vs-rest read one column of a
 * row-major probability matrix without copying it. */
static int make_runs(const float *scores, size_t stride, const int *labels, int n, score_run **runs_out)
{
    *runs_out = NULL;
    case_rec *c = malloc((size_t)n * sizeof *c);
    score_run *runs = malloc((size_t)n * sizeof *runs);
    if (c == NULL || runs == NULL) {
        free(c);
        free(runs);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        c[i].score = scores[(size_t)i * stride];
        c[i].label = labels[i];
        c[i].index = i;
    }
    qsort(c, (size_t)n, sizeof *c, cmp_case);
    int r = -1;
    for (int i = 0; i < n; i++) {
        if (r < 0 || c[i].score != runs[r].score) {
            r++;
            runs[r].score = c[i].score;
            runs[r].pos = 0;
            runs[r].neg = 0;
        }
        if (c[i].label == 1)
            runs[r].pos++;
        else
            runs[r].neg++;
    }
    free(c);
    *runs_out = runs;
    return r + 1;
}

/* AUC and DeLong variance from the runs. For a positive with score x its
 * structural component is V10 = (negatives below x + ties/2) / N, for a
 * negative with score y V01 = (positives above y + ties/2) / P; every case
 * in a run shares its component, so each run contributes once, weighted by
 * its count. The means of V10 and of V01 both equal the AUC, which is why
 * the AUC comes first and the variances second (two passes, no
 * cancellation from sum-of-squares shortcuts). */
static void auc_from_runs(const score_run *runs, int n_runs, int64_t P, int64_t N, double *auc, double *var)
{
    *auc = NAN;
    *var = NAN;
    if (P == 0 || N == 0)
        return;
    int64_t u2 = 0, neg_below = 0;
    for (int r = 0; r < n_runs; r++) {
        u2 += runs[r].pos * (2 * neg_below + runs[r].neg);
        neg_below += runs[r].neg;
    }
    double a = (double)u2 / (2.0 * (double)P * (double)N);
    *auc = a;
    if (P < 2 || N < 2)
        return;
    double s10 = 0.0, s01 = 0.0;
    int64_t pos_below = 0;
    neg_below = 0;
    for (int r = 0; r < n_runs; r++) {
        int64_t pos_above = P - pos_below - runs[r].pos;
        double v10 = ((double)neg_below + 0.5 * (double)runs[r].neg) / (double)N;
        double v01 = ((double)pos_above + 0.5 * (double)runs[r].pos) / (double)P;
        s10 += (double)runs[r].pos * (v10 - a) * (v10 - a);
        s01 += (double)runs[r].neg * (v01 - a) * (v01 - a);
        pos_below += runs[r].pos;
        neg_below += runs[r].neg;
    }
    s10 /= (double)(P - 1);
    s01 /= (double)(N - 1);
    *var = s10 / (double)P + s01 / (double)N;
}

/* 95% interval on the logit scale (see metrics.h for why). */
static void auc_interval(double auc, double var, double *lo, double *hi)
{
    *lo = NAN;
    *hi = NAN;
    if (isnan(auc) || isnan(var))
        return;
    /* Zero variance: also the only case where auc can be 0 or 1 (every
     * component is then 0 or 1 alike), where the logit is infinite. */
    if (var <= 0.0 || auc <= 0.0 || auc >= 1.0) {
        *lo = auc;
        *hi = auc;
        return;
    }
    double centre = log(auc / (1.0 - auc));
    double half = HS_Z_975 * sqrt(var) / (auc * (1.0 - auc));
    *lo = 1.0 / (1.0 + exp(-(centre - half)));
    *hi = 1.0 / (1.0 + exp(-(centre + half)));
}

/* Checks the common inputs of the binary functions; counts the classes. */
static hs_status check_binary(const char *what, const float *scores, const int *labels, int n, int unit_scores,
                              int64_t *P, int64_t *N, hs_error *err)
{
    *P = 0;
    *N = 0;
    if (n < 1)
        return hs_fail(err, HS_ERR_ARG, "%s: no cases (n = %d)", what, n);
    if (scores == NULL || labels == NULL)
        return hs_fail(err, HS_ERR_ARG, "%s: scores or labels missing", what);
    for (int i = 0; i < n; i++) {
        if (labels[i] != 0 && labels[i] != 1)
            return hs_fail(err, HS_ERR_ARG, "%s: case %d has label %d, expected 0 or 1", what, i, labels[i]);
        if (!isfinite(scores[i]))
            return hs_fail(err, HS_ERR_ARG, "%s: case %d has a score that is not a finite number", what, i);
        if (unit_scores && (scores[i] < 0.0f || scores[i] > 1.0f))
            return hs_fail(err, HS_ERR_ARG, "%s: case %d has score %.9g, expected a probability in [0, 1]", what,
                           i, (double)scores[i]);
        if (labels[i] == 1)
            (*P)++;
        else
            (*N)++;
    }
    return HS_OK;
}

/* check_binary, then both classes must be present (a curve or an
 * operating point means nothing without them), then the runs: what the ROC
 * curve and the operating point start from. *runs is the caller's to free. */
static hs_status runs_of_both_classes(const char *what, const float *scores, const int *labels, int n,
                                      int unit_scores, int64_t *P, int64_t *N, score_run **runs, int *n_runs,
                                      hs_error *err)
{
    *runs = NULL;
    *n_runs = 0;
    hs_status st = check_binary(what, scores, labels, n, unit_scores, P, N, err);
    if (st != HS_OK)
        return st;
    if (*P == 0 || *N == 0)
        return hs_fail(err, HS_ERR_ARG, "%s: needs both classes, got %lld positive and %lld negative cases", what,
                       (long long)*P, (long long)*N);
    *n_runs = make_runs(scores, 1, labels, n, runs);
    if (*n_runs < 0)
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory for %d cases", what, n);
    return HS_OK;
}

/* NaN rather than a division by zero. */
static double ratio(int64_t num, int64_t den)
{
    return den == 0 ? NAN : (double)num / (double)den;
}

hs_status hs_binary_metrics_compute(const float *scores, const int *labels, int n, double threshold,
                                    hs_binary_metrics *m, hs_error *err)
{
    static const char what[] = "binary metrics";
    if (m == NULL)
        return hs_fail(err, HS_ERR_ARG, "%s: no result struct", what);
    *m = (hs_binary_metrics){.threshold = threshold,
                             .accuracy = NAN,
                             .sensitivity = NAN,
                             .specificity = NAN,
                             .precision = NAN,
                             .f1 = NAN,
                             .auc = NAN,
                             .auc_var = NAN,
                             .auc_lo = NAN,
                             .auc_hi = NAN};
    if (!isfinite(threshold))
        return hs_fail(err, HS_ERR_ARG, "%s: threshold %g is not a finite number", what, threshold);
    int64_t P, N;
    hs_status st = check_binary(what, scores, labels, n, 0, &P, &N, err);
    if (st != HS_OK)
        return st;

    int64_t tp = 0, fp = 0;
    for (int i = 0; i < n; i++) {
        /* The comparison is in double: a float score equal to the threshold
         * is positive, as documented, with no rounding of the threshold. */
        if ((double)scores[i] >= threshold) {
            if (labels[i] == 1)
                tp++;
            else
                fp++;
        }
    }
    int64_t fn = P - tp, tn = N - fp;

    score_run *runs;
    int n_runs = make_runs(scores, 1, labels, n, &runs);
    if (n_runs < 0)
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory for %d cases", what, n);
    double auc, var;
    auc_from_runs(runs, n_runs, P, N, &auc, &var);
    free(runs);

    m->n = n;
    m->positives = (int)P;
    m->negatives = (int)N;
    m->tp = (int)tp;
    m->fp = (int)fp;
    m->tn = (int)tn;
    m->fn = (int)fn;
    m->accuracy = ratio(tp + tn, n);
    m->sensitivity = ratio(tp, P);
    m->specificity = ratio(tn, N);
    m->precision = ratio(tp, tp + fp);
    m->f1 = ratio(2 * tp, 2 * tp + fp + fn);
    m->auc = auc;
    m->auc_var = var;
    auc_interval(auc, var, &m->auc_lo, &m->auc_hi);
    return HS_OK;
}

double hs_roc_auc(const float *scores, const int *labels, int n)
{
    int64_t P, N;
    if (check_binary("roc auc", scores, labels, n, 0, &P, &N, NULL) != HS_OK)
        return NAN;
    score_run *runs;
    int n_runs = make_runs(scores, 1, labels, n, &runs);
    if (n_runs < 0)
        return NAN;
    double auc, var;
    auc_from_runs(runs, n_runs, P, N, &auc, &var);
    free(runs);
    return auc;
}

hs_status hs_roc_curve(const float *scores, const int *labels, int n, double **fpr, double **tpr,
                       double **thresholds, int *count, hs_error *err)
{
    static const char what[] = "roc curve";
    if (fpr == NULL || tpr == NULL || count == NULL)
        return hs_fail(err, HS_ERR_ARG, "%s: no place for the result", what);
    *fpr = NULL;
    *tpr = NULL;
    *count = 0;
    if (thresholds != NULL)
        *thresholds = NULL;
    int64_t P, N;
    score_run *runs;
    int n_runs;
    hs_status st = runs_of_both_classes(what, scores, labels, n, 0, &P, &N, &runs, &n_runs, err);
    if (st != HS_OK)
        return st;
    size_t points = (size_t)n_runs + 1;
    double *f = malloc(points * sizeof *f);
    double *t = malloc(points * sizeof *t);
    double *th = thresholds != NULL ? malloc(points * sizeof *th) : NULL;
    if (f == NULL || t == NULL || (thresholds != NULL && th == NULL)) {
        free(runs);
        free(f);
        free(t);
        free(th);
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory for %zu points", what, points);
    }
    /* From the highest score down: each run moves the threshold to its
     * score and adds its cases to the positive calls. Rates are computed
     * from integer counts, never accumulated, so the last point is exactly
     * (1, 1). */
    int64_t tp = 0, fp = 0;
    f[0] = 0.0;
    t[0] = 0.0;
    if (th != NULL)
        th[0] = INFINITY;
    for (int r = n_runs - 1, i = 1; r >= 0; r--, i++) {
        tp += runs[r].pos;
        fp += runs[r].neg;
        f[i] = (double)fp / (double)N;
        t[i] = (double)tp / (double)P;
        if (th != NULL)
            th[i] = runs[r].score;
    }
    free(runs);
    *fpr = f;
    *tpr = t;
    if (thresholds != NULL)
        *thresholds = th;
    *count = (int)points;
    return HS_OK;
}

/* What both operating points start with: a place for the result, 0.5 put
 * there, the target (named as `target_name`) in [0, 1], then the runs of
 * runs_of_both_classes. */
static hs_status operating_point_runs(const char *what, const float *scores, const int *labels, int n,
                                      double target, const char *target_name, double *threshold, int64_t *P,
                                      int64_t *N, score_run **runs, int *n_runs, hs_error *err)
{
    *runs = NULL;
    if (threshold == NULL)
        return hs_fail(err, HS_ERR_ARG, "%s: no place for the result", what);
    *threshold = 0.5;
    if (!(target >= 0.0 && target <= 1.0))
        return hs_fail(err, HS_ERR_ARG, "%s: %s %g is not in [0, 1]", what, target_name, target);
    return runs_of_both_classes(what, scores, labels, n, 1, P, N, runs, n_runs, err);
}

/* The threshold midway between run `chosen` and the next lower distinct
 * score (0 below the lowest; 1 above the highest when chosen == n_runs,
 * nothing called positive), clamped to [0, 1]; frees runs. */
static double midway_below(score_run *runs, int n_runs, int chosen)
{
    double t;
    if (chosen >= n_runs)
        t = 0.5 * ((double)runs[n_runs - 1].score + 1.0);
    else
        t = 0.5 * ((double)runs[chosen].score + (chosen > 0 ? (double)runs[chosen - 1].score : 0.0));
    free(runs);
    return t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
}

hs_status hs_threshold_for_sensitivity(const float *scores, const int *labels, int n, double min_sensitivity,
                                       double *threshold, hs_error *err)
{
    int64_t P, N;
    score_run *runs;
    int n_runs;
    hs_status st = operating_point_runs("threshold for sensitivity", scores, labels, n, min_sensitivity,
                                        "minimum sensitivity", threshold, &P, &N, &runs, &n_runs, err);
    if (st != HS_OK)
        return st;
    /* Lowering the threshold run by run only raises sensitivity and lowers
     * specificity, so the highest specificity that reaches the target is at
     * the first run (from the top) where the target is met. Lower runs
     * holding only positives keep that specificity and raise sensitivity:
     * the tie rule takes them too. Two distinct thresholds never tie in both
     * (each run adds a case), so the third rule never has to decide. The
     * target is compared as tp >= min * P with a margin of 1e-9 * P, so that
     * a product like 0.07 * 100 = 7.000000000000001 still accepts 7 of 100
     * positives: decimal targets are not exact in binary. */
    int64_t tp = 0;
    int chosen = 0;
    for (int r = n_runs - 1; r >= 0; r--) {
        tp += runs[r].pos;
        if ((double)tp >= min_sensitivity * (double)P - 1e-9 * (double)P) {
            chosen = r;
            while (chosen > 0 && runs[chosen - 1].neg == 0)
                chosen--;
            break;
        }
    }
    *threshold = midway_below(runs, n_runs, chosen);
    return HS_OK;
}

hs_status hs_threshold_for_false_alarm(const float *scores, const int *labels, int n, double max_false_alarm,
                                       double *threshold, hs_error *err)
{
    int64_t P, N;
    score_run *runs;
    int n_runs;
    hs_status st = operating_point_runs("threshold for false-alarm rate", scores, labels, n, max_false_alarm,
                                        "maximum false-alarm rate", threshold, &P, &N, &runs, &n_runs, err);
    if (st != HS_OK)
        return st;
    /* From the top, take run after run while the negatives called positive
     * stay within the allowance (same 1e-9 margin as above): the last run
     * taken is the lowest threshold, so the highest sensitivity, that
     * keeps the false-alarm rate. When even the top run breaks it, nothing
     * is called positive. */
    int64_t fp = 0;
    int chosen = n_runs;
    for (int r = n_runs - 1; r >= 0; r--) {
        if ((double)(fp + runs[r].neg) > max_false_alarm * (double)N + 1e-9 * (double)N)
            break;
        fp += runs[r].neg;
        chosen = r;
    }
    *threshold = midway_below(runs, n_runs, chosen);
    return HS_OK;
}

void hs_confusion_matrix(const int *truth, const int *predicted, int n, int k, int *confusion)
{
    if (confusion == NULL || k < 1)
        return;
    for (int i = 0; i < k * k; i++)
        confusion[i] = 0;
    if (truth == NULL || predicted == NULL)
        return;
    for (int i = 0; i < n; i++) {
        int a = truth[i], b = predicted[i];
        if (a >= 0 && a < k && b >= 0 && b < k)
            confusion[a * k + b]++;
    }
}

void hs_one_vs_rest_auc(const float *probs, const int *truth, int n, int k, double *auc_per_class)
{
    if (auc_per_class == NULL || k < 1)
        return;
    for (int c = 0; c < k; c++)
        auc_per_class[c] = NAN;
    if (probs == NULL || truth == NULL || n < 1)
        return;
    /* The cases with a valid truth, and their row numbers, once for all
     * classes; each class then reads its column through the stride. */
    int *rows = malloc((size_t)n * sizeof *rows);
    int *lab = malloc((size_t)n * sizeof *lab);
    float *col = malloc((size_t)n * sizeof *col);
    if (rows == NULL || lab == NULL || col == NULL) {
        free(rows);
        free(lab);
        free(col);
        return;
    }
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (truth[i] >= 0 && truth[i] < k)
            rows[m++] = i;
    }
    for (int c = 0; c < k && m > 0; c++) {
        for (int j = 0; j < m; j++) {
            col[j] = probs[(size_t)rows[j] * (size_t)k + (size_t)c];
            lab[j] = truth[rows[j]] == c;
        }
        auc_per_class[c] = hs_roc_auc(col, lab, m);
    }
    free(rows);
    free(lab);
    free(col);
}

void hs_mean_sd(const double *v, int n, double *mean, double *sd)
{
    double mu = NAN, s = NAN;
    int m = 0;
    double sum = 0.0;
    for (int i = 0; v != NULL && i < n; i++) {
        if (!isnan(v[i])) {
            sum += v[i];
            m++;
        }
    }
    if (m > 0)
        mu = sum / m;
    /* Second pass around the mean: no catastrophic cancellation when the
     * spread is small next to the values (AUCs of 0.95 +- 0.01). */
    if (m > 1) {
        double ss = 0.0;
        for (int i = 0; i < n; i++) {
            if (!isnan(v[i]))
                ss += (v[i] - mu) * (v[i] - mu);
        }
        s = sqrt(ss / (m - 1));
    }
    if (mean != NULL)
        *mean = mu;
    if (sd != NULL)
        *sd = s;
}

/* K classes: accuracy from the confusion matrix, and per class the
 * sensitivity (recall), specificity and one-vs-rest AUC, macro-averaged. */
static hs_status k_class_report(const float *scores, const int *labels, int n, int n_classes, hs_eval_report *r,
                                hs_error *err)
{
    double *auc = calloc((size_t)n_classes, sizeof *auc);
    double *sens = calloc((size_t)n_classes, sizeof *sens);
    double *spec = calloc((size_t)n_classes, sizeof *spec);
    if (auc == NULL || sens == NULL || spec == NULL) {
        free(auc);
        free(sens);
        free(spec);
        return hs_fail(err, HS_ERR_NOMEM, "out of memory");
    }
    hs_one_vs_rest_auc(scores, labels, n, n_classes, auc);
    int correct = 0;
    for (int c = 0; c < n_classes; c++) {
        int tp = r->confusion[c * n_classes + c], pos = 0, fp = 0;
        correct += tp;
        for (int j = 0; j < n_classes; j++) {
            pos += r->confusion[c * n_classes + j];
            if (j != c)
                fp += r->confusion[j * n_classes + c];
        }
        sens[c] = pos > 0 ? (double)tp / pos : NAN;
        spec[c] = n - pos > 0 ? (double)(n - pos - fp) / (n - pos) : NAN;
    }
    double sd;
    r->accuracy = (double)correct / n;
    hs_mean_sd(sens, n_classes, &r->sensitivity, &sd);
    hs_mean_sd(spec, n_classes, &r->specificity, &sd);
    hs_mean_sd(auc, n_classes, &r->auc, &sd);
    r->precision = r->f1 = r->auc_lo = r->auc_hi = NAN;
    free(auc);
    free(sens);
    free(spec);
    return HS_OK;
}

hs_status hs_eval_report_compute(const float *scores, const int *labels, int n, int outputs, int n_classes,
                                 double threshold, int *predicted, hs_eval_report *r, hs_error *err)
{
    memset(r, 0, sizeof *r);
    r->k = n_classes;
    r->confusion = calloc((size_t)n_classes * n_classes, sizeof *r->confusion);
    if (r->confusion == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "out of memory");
    hs_status st;
    if (outputs == 1) {
        hs_binary_metrics m;
        st = hs_binary_metrics_compute(scores, labels, n, threshold, &m, err);
        if (st == HS_OK) {
            r->accuracy = m.accuracy;
            r->sensitivity = m.sensitivity;
            r->specificity = m.specificity;
            r->precision = m.precision;
            r->f1 = m.f1;
            r->auc = m.auc;
            r->auc_lo = m.auc_lo;
            r->auc_hi = m.auc_hi;
            for (int i = 0; i < n; i++)
                predicted[i] = hs_predicted_class(scores + i, 1, threshold);
            hs_confusion_matrix(labels, predicted, n, 2, r->confusion);
        }
    } else {
        for (int i = 0; i < n; i++)
            predicted[i] = hs_predicted_class(scores + (size_t)i * outputs, outputs, threshold);
        hs_confusion_matrix(labels, predicted, n, n_classes, r->confusion);
        st = k_class_report(scores, labels, n, n_classes, r, err);
    }
    if (st != HS_OK)
        hs_eval_report_free(r);
    return st;
}

void hs_eval_report_free(hs_eval_report *r)
{
    free(r->confusion);
    memset(r, 0, sizeof *r);
}
