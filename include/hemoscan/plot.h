/* plot.h - the pictures of an evaluation or training run, as SVG files.
 *
 * SVG is text: it needs no library, opens in every browser, diffs in review
 * and scales without blur in a report. The writers here are deliberately
 * small and fixed in layout (640x480 viewBox, white background, sans-serif
 * text, grid, ticks, title, legend) rather than a general plotting library:
 * hemoscan draws two kinds of picture and both should look the same every
 * time. Files are written to a temporary name and renamed into place, so a
 * half-written SVG never appears; errors name the file. Text is escaped for
 * XML, and bytes that are not valid UTF-8 or not allowed in XML are shown
 * as U+FFFD, so any label makes a valid file. Numbers are written in the C
 * locale whatever locale the process runs in. */
#ifndef HEMOSCAN_PLOT_H
#define HEMOSCAN_PLOT_H

#include "hemoscan/status.h"

/* Most curves one ROC picture holds; each gets its own colour. */
#define HS_PLOT_MAX_CURVES 8

/* One ROC curve: count points (fpr[i], tpr[i]) in [0, 1], as hs_roc_curve
 * returns them; label names it in the legend (NULL: "curve N"). auc is shown
 * in the legend; NaN means "compute it from the points" (trapezoids, which
 * equals hs_roc_auc for a curve from hs_roc_curve). auc_lo and auc_hi are
 * the 95% CI shown after it; NaN in either omits the interval. */
typedef struct {
    const double *fpr, *tpr;
    int count;
    const char *label;
    double auc, auc_lo, auc_hi;
} hs_plot_curve;

/* ROC curve with the diagonal chance line, AUC (and CI if given) in the
 * legend, the operating point (op_fpr, op_tpr at the model threshold)
 * marked with a dot and labelled with its sensitivity and specificity (NaN
 * in either omits it); fpr on x, tpr on y, both 0..1. Up to
 * HS_PLOT_MAX_CURVES curves (e.g. one per CV fold or per class) with
 * distinct colours, each with its own legend label. Points that are NaN are
 * skipped; values outside [0, 1] are clamped. title may be NULL. */
hs_status hs_plot_roc_svg(const char *path, const char *title, const hs_plot_curve *curves, int n_curves,
                          double op_fpr, double op_tpr, hs_error *err);

/* Training curves: two panels side by side: loss and val_loss vs epoch
 * (left), accuracy and val_accuracy vs epoch (right). Array element i is
 * epoch i + 1; the x axis runs from 1 to epochs. The loss axis is fitted to
 * the data with some padding, the accuracy axis is 0..1. best_epoch is the
 * 1-based epoch to mark with a vertical dashed line (0: no mark). NaN
 * values are skipped (the line breaks there); any of the four arrays may be
 * NULL when there is no such series (e.g. no validation set). epochs >= 1;
 * title may be NULL. */
hs_status hs_plot_history_svg(const char *path, const char *title, const double *loss, const double *val_loss,
                              const double *acc, const double *val_acc, int epochs, int best_epoch,
                              hs_error *err);

#endif
