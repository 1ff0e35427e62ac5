/* metrics.h - how well a classifier did: threshold metrics, ROC AUC with a
 * confidence interval, ROC curves, operating points and confusion matrices.
 *
 * Evaluation mode and cross-validation report these numbers for held-out
 * images (one hs_eval_report, computed once here for both), and the model
 * file's decision threshold is chosen here, so every definition is spelled
 * out next to its declaration. Scores are P(positive) as floats, the way the
 * network produces them; all arithmetic is in double. A quantity that is
 * undefined for the data at hand (sensitivity without positives, an AUC
 * without both classes) is NaN, never a division by zero and never a
 * made-up 0 or 1, so a report shows "n/a" instead of a wrong number.
 * Everything that sorts is O(n log n), ties broken by case index so results
 * never depend on the qsort implementation. */
#ifndef HEMOSCAN_METRICS_H
#define HEMOSCAN_METRICS_H

#include "hemoscan/status.h"

/* Binary classification: scores are P(positive), labels 0/1. */
typedef struct {
    int n, positives, negatives;
    int tp, fp, tn, fn; /* at the threshold: score >= threshold is positive */
    double threshold;
    /* accuracy    (tp + tn) / n
     * sensitivity tp / positives              NaN without positives
     * specificity tn / negatives              NaN without negatives
     * precision   tp / (tp + fp)              NaN when nothing is called positive
     * f1          2 tp / (2 tp + fp + fn)     the harmonic mean of precision and
     *             sensitivity, written so that it is defined (0) when there are
     *             positives but none is found; NaN only when there are neither
     *             positives nor positive calls. */
    double accuracy, sensitivity, specificity, precision, f1;
    /* ROC AUC: the probability that a random positive scores higher than a
     * random negative, ties counting 1/2 (the Mann-Whitney U statistic over
     * positives x negatives). NaN if a class is missing.
     * auc_var is DeLong's variance estimate (DeLong, DeLong & Clarke-Pearson,
     * Biometrics 1988) from the structural components; NaN with fewer than
     * two cases in either class, where it is undefined.
     * [auc_lo, auc_hi] is the 95% CI built on the logit scale:
     * logit(auc) +- 1.959964 * sqrt(auc_var) / (auc (1 - auc)), mapped back.
     * The logit scale keeps the interval inside (0, 1) and asymmetric near 1,
     * where a hemorrhage detector's AUC lives and where the plain normal
     * interval would have to be clipped. When auc_var is 0 (perfect or
     * inverted separation, or all scores equal) the interval is the point
     * auc itself: DeLong has no information about its width there. NaN
 * where auc_var is NaN. */
    double auc, auc_var, auc_lo, auc_hi;
} hs_binary_metrics;

/* Fills m for scores[0..n) against labels[0..n) at threshold. n >= 1;
 * scores must be finite, labels 0 or 1, threshold finite. One class missing
 * is not an error: its metrics are NaN. On error m is all NaN/zero and err
 * names the offending case index. */
hs_status hs_binary_metrics_compute(const float *scores, const int *labels, int n, double threshold,
                                    hs_binary_metrics *m, hs_error *err);

/* ROC AUC as in hs_binary_metrics, O(n log n) by ranks. NaN if n < 1, a
 * class is missing, a label is not 0/1, a score is not finite, or memory
 * runs out. */
double hs_roc_auc(const float *scores, const int *labels, int n);

/* ROC curve points from (0,0) to (1,1), one per distinct score (ties
 * merged) plus the starting point: *count = distinct scores + 1. Point i
 * holds fpr and tpr when every score >= thresholds[i] is called positive;
 * thresholds fall from +INFINITY (the (0,0) point: nothing called positive)
 * to the lowest score (the (1,1) point). fpr and tpr never decrease, and the
 * trapezoid area under the points equals hs_roc_auc exactly up to rounding.
 * The arrays are malloc'ed, the caller frees them; thresholds may be NULL
 * when not wanted. Both classes are required (HS_ERR_ARG otherwise); on any
 * error the outputs are NULL and 0. */
hs_status hs_roc_curve(const float *scores, const int *labels, int n, double **fpr, double **tpr,
                       double **thresholds, int *count, hs_error *err);

/* Operating point: among the distinct scores s used as thresholds (score >= s
 * is positive), those reaching sensitivity >= min_sensitivity, the one with
 * the highest specificity; ties in specificity -> the higher sensitivity,
 * then the higher threshold. The threshold returned is the midpoint between
 * the chosen s and the next lower distinct score (0 when s is the lowest), so
 * small score shifts do not flip the nearest case; it is clamped to [0, 1]
 * and gives exactly the chosen sensitivity and specificity on these data.
 * The target is met up to 1e-9 (decimal targets such as 0.95 are not exact
 * in binary).
 * Scores must lie in [0, 1], min_sensitivity in [0, 1]. Degenerate inputs
 * (one class only) -> *threshold = 0.5 and HS_ERR_ARG; any other error also
 * leaves 0.5 there. */
hs_status hs_threshold_for_sensitivity(const float *scores, const int *labels, int n, double min_sensitivity,
                                       double *threshold, hs_error *err);

/* Operating point for a false-alarm budget: the lowest threshold (so the
 * highest sensitivity) whose false-positive rate 1 - specificity stays at
 * or below max_false_alarm, placed midway to the next lower distinct score
 * like hs_threshold_for_sensitivity. When the highest negative score alone
 * breaks the budget (max_false_alarm below 1/N, e.g. 0), the threshold is
 * midway between the highest score and 1: nothing here is called positive.
 * A study is read as many slices, so a study's false alarms follow from a
 * slice rate this way rather than from a sensitivity target (see
 * verdict.h). Same inputs and errors as hs_threshold_for_sensitivity. */
hs_status hs_threshold_for_false_alarm(const float *scores, const int *labels, int n, double max_false_alarm,
                                       double *threshold, hs_error *err);

/* K classes: confusion[truth * k + predicted] counts over the n cases; the
 * k*k array is overwritten. A pair with a class outside [0, k) is not
 * counted, so the entries sum to n only when every pair is valid. */
void hs_confusion_matrix(const int *truth, const int *predicted, int n, int k, int *confusion);

/* Per-class one-vs-rest ROC AUC: for class c, probs[i * k + c] (n x k,
 * row-major) scores "is class c" against truth[i] == c. Cases whose truth is
 * outside [0, k) are left out. auc_per_class[c] is NaN where hs_roc_auc
 * would be NaN (e.g. class c absent, or only class c present). */
void hs_one_vs_rest_auc(const float *probs, const int *truth, int n, int k, double *auc_per_class);

/* The figures of one evaluation, as hemoscan --eval and --cv report them
 * (hs_eval_report_compute). */
typedef struct {
    double accuracy, sensitivity, specificity, precision, f1, auc, auc_lo, auc_hi;
    int *confusion; /* k x k, confusion[truth * k + predicted] */
    int k;          /* classes */
} hs_eval_report;

/* The report of scores (n x outputs, as hs_predictor_run gives them)
 * against labels, and each case's predicted class in predicted[0..n).
 * One output (a sigmoid model, two classes): score >= threshold is class
 * 1, and the figures are hs_binary_metrics_compute's. K outputs: the most
 * probable class (hs_predicted_class; threshold unused); sensitivity,
 * specificity and AUC (one-vs-rest) are macro averages over the n_classes
 * classes (mean of the defined ones), precision, F1 and the AUC interval
 * NaN. On failure r is left empty. Free r with hs_eval_report_free. */
hs_status hs_eval_report_compute(const float *scores, const int *labels, int n, int outputs, int n_classes,
                                 double threshold, int *predicted, hs_eval_report *r, hs_error *err);
/* Frees the confusion matrix; r is then empty. Safe on an empty report. */
void hs_eval_report_free(hs_eval_report *r);

/* Mean and sample standard deviation (n - 1 in the denominator) of v[0..n)
 * ignoring NaN; for cross-validation summaries. *mean is NaN without a
 * value, *sd is NaN with fewer than two values. */
void hs_mean_sd(const double *v, int n, double *mean, double *sd);

#endif
