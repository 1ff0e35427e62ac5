/* verdict.c - slice scores to a study verdict (rules and their reasons in
 * verdict.h, where the man page's paragraph comes from), and the verdict
 * in words (hs_verdict_describe), so that every place that shows it to
 * people says the same, honest thing.
 *
 * A pure function over numbers: no I/O, no model, so the rules are tested
 * one by one on hand-made score sequences. */
#include "hemoscan/verdict.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *hs_verdict_name(hs_verdict v)
{
    switch (v) {
    case HS_VERDICT_NO_HEMORRHAGE: return "no_hemorrhage";
    case HS_VERDICT_HEMORRHAGE: return "hemorrhage";
    case HS_VERDICT_NOT_ASSESSABLE: return "not_assessable";
    }
    return "unknown";
}

/* Marks out not assessable; the caller has written out->reason. */
static hs_status not_assessable(hs_study_verdict *out)
{
    out->verdict = HS_VERDICT_NOT_ASSESSABLE;
    out->probability = NAN;
    out->confidence = NAN;
    out->confidence_label[0] = '\0';
    out->key_slice = -1;
    return HS_OK;
}

hs_status hs_verdict_from_slices(const hs_verdict_input *in, double threshold,
                                 hs_study_verdict *out, hs_error *err)
{
    if (in == NULL || out == NULL || in->n < 0 || (in->n > 0 && in->prob == NULL))
        return hs_fail(err, HS_ERR_ARG, "hs_verdict_from_slices: no input, no output or a negative count");
    if (!(threshold > 0.0 && threshold < 1.0))
        return hs_fail(err, HS_ERR_ARG, "hs_verdict_from_slices: threshold %g outside (0, 1)", threshold);
    memset(out, 0, sizeof *out);
    out->threshold = threshold;

    int n = in->n, scored = 0;
    for (int i = 0; i < n; i++)
        scored += !isnan(in->prob[i]);
    out->n_scored = scored;
    char *why = out->reason;
    size_t cap = sizeof out->reason;
    if (scored == 0) {
        if (n == 0)
            snprintf(why, cap, "the series has no slices");
        else
            snprintf(why, cap, "none of the %d slices could be scored", n);
        return not_assessable(out);
    }
    if (scored < HS_VERDICT_MIN_SLICES) {
        snprintf(why, cap, "only %d slices could be scored, at least %d are needed to cover a head",
                 scored, HS_VERDICT_MIN_SLICES);
        return not_assessable(out);
    }
    if (n - scored > HS_VERDICT_MAX_FAILED_FRACTION * n) {
        snprintf(why, cap, "%d of %d slices could not be scored", n - scored, n);
        return not_assessable(out);
    }
    if (in->extent_mm > 0.0 && in->extent_mm < HS_VERDICT_MIN_EXTENT_MM) {
        snprintf(why, cap,
                 "the series covers %.0f mm along the slice normal, at least %.0f mm are needed to cover the brain",
                 in->extent_mm, HS_VERDICT_MIN_EXTENT_MM);
        return not_assessable(out);
    }
    if (in->missing_slices > HS_VERDICT_MAX_MISSING_FRACTION * (n + in->missing_slices)) {
        snprintf(why, cap, "%d of %d expected slices are missing", in->missing_slices,
                 n + in->missing_slices);
        return not_assessable(out);
    }

    /* The highest score confirmed by a scored neighbour. The rules above
     * guarantee two adjacent scored slices: at least 5 scored with at most
     * 10% unscored leaves no room for an unscored slice between every
     * pair (that would take 4 unscored of 9 or more). */
    double best = -1.0;
    int key = -1;
    for (int i = 0; i < n; i++) {
        double p = in->prob[i];
        if (isnan(p))
            continue;
        double nb = -1.0;
        int nb_i = -1;
        if (i > 0 && !isnan(in->prob[i - 1]) && in->prob[i - 1] > nb) {
            nb = in->prob[i - 1];
            nb_i = i - 1;
        }
        if (i + 1 < n && !isnan(in->prob[i + 1]) && in->prob[i + 1] > nb) {
            nb = in->prob[i + 1];
            nb_i = i + 1;
        }
        if (nb_i < 0)
            continue;
        double confirmed = p < nb ? p : nb;
        if (confirmed > best) {
            best = confirmed;
            key = p >= nb ? i : nb_i;
        }
    }
    out->probability = best;
    out->key_slice = key;
    if (best >= threshold) {
        out->verdict = HS_VERDICT_HEMORRHAGE;
        out->confidence = (best - threshold) / (1.0 - threshold);
    } else {
        out->verdict = HS_VERDICT_NO_HEMORRHAGE;
        out->confidence = (threshold - best) / threshold;
    }
    /* a negative is never more than "low": see verdict.h, Confidence */
    snprintf(out->confidence_label, sizeof out->confidence_label, "%s",
             out->verdict == HS_VERDICT_NO_HEMORRHAGE || out->confidence < 1.0 / 3.0 ? "low"
             : out->confidence < 2.0 / 3.0                                            ? "moderate"
                                                                                      : "high");
    return HS_OK;
}

int hs_verdict_describe(const hs_study_verdict *v, char *buf, size_t cap)
{
    if (v == NULL)
        return snprintf(buf, cap, "no verdict");
    switch (v->verdict) {
    case HS_VERDICT_HEMORRHAGE:
        return snprintf(buf, cap, "HEMORRHAGE SUSPECTED: study score %.3f, %.3f above the threshold %.3f",
                        v->probability, v->probability - v->threshold, v->threshold);
    case HS_VERDICT_NO_HEMORRHAGE:
        return snprintf(buf, cap, "no hemorrhage found: study score %.3f, %.3f below the threshold %.3f; "
                        HS_VERDICT_NEGATIVE_CAVEAT, v->probability, v->threshold - v->probability,
                        v->threshold);
    case HS_VERDICT_NOT_ASSESSABLE:
        break;
    }
    return snprintf(buf, cap, "NOT ASSESSABLE: %s", v->reason);
}
