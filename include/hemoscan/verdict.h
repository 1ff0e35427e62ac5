/* verdict.h - the verdict stage: one series' slice probabilities become a
 * study probability, a verdict (hemorrhage / no hemorrhage / not
 * assessable, with the reason), a confidence and a key slice.
 *
 * This is a pure function of numbers so that it can be tested exhaustively
 * and explained in one paragraph of the man page:
 *
 *   Study probability: the highest score that a neighbouring slice
 *   confirms, max over i of min(p[i], max(p[i-1], p[i+1])). A bleed large
 *   enough to matter is seen on two adjacent slices of a head CT (slices are
 *   0.6-7 mm, an acute bleed worth reporting is larger), while the false
 *   positives of a slice classifier are mostly single slices (skull base
 *   streaks, the vertex, a partial-volume slice). Taking the plain maximum
 *   turns every such slice into a positive study; averaging over many
 *   slices drowns a small bleed. Neighbours are neighbours in the sorted
 *   series; a slice that could not be scored is no neighbour (the rules
 *   below leave every assessable series with two adjacent scored slices).
 *   Key slice: of the pair that gave the study probability, the slice with
 *   the higher score (the first on ties).
 *   Verdict: hemorrhage when the study probability reaches the model's
 *   threshold, no hemorrhage below it, not assessable when the series
 *   cannot support a verdict (rules below). The threshold therefore has to
 *   be placed for studies: with a slice false-alarm rate f and n slices,
 *   a normal study is flagged with probability between 1 - (1 - f^2)^(n-1)
 *   (false alarms independent) and 1 - (1 - f)^(n/2) (false alarms in
 *   pairs), 8% to 57% for f = 0.05 and n = 33 (1.3% to 28% for 0.02);
 *   the default model's threshold is placed for f = 0.05 (train.h,
 *   max_false_alarm).
 *   Confidence: how far the probability lies from the threshold on the side
 *   of the verdict, scaled to [0, 1]: (p - t) / (1 - t) for hemorrhage,
 *   (t - p) / t for no hemorrhage. It is a margin, not a calibrated
 *   probability of being right. Its label is low (< 1/3), moderate (< 2/3)
 *   or high for hemorrhage, and always low for no hemorrhage: a score far
 *   below the threshold does not make a negative safe (issue 20: a 20 mm
 *   subdural scored 0.13 against 0.40, a margin of 0.68, and read
 *   "confidence moderate"). What people read says the numbers instead
 *   (hs_verdict_describe): the study score, the threshold, the difference,
 *   and for a negative that it does not rule out a bleed.
 *
 * Not assessable, in this order (the first rule that matches gives the
 * reason):
 *   - no scored slice at all;
 *   - fewer than HS_VERDICT_MIN_SLICES scored slices;
 *   - more than HS_VERDICT_MAX_FAILED_FRACTION of the slices not scored;
 *   - a known extent along the slice normal below HS_VERDICT_MIN_EXTENT_MM
 *     (the series cannot cover the brain);
 *   - more than HS_VERDICT_MAX_MISSING_FRACTION of the expected slices
 *     missing in gaps. */
#ifndef HEMOSCAN_VERDICT_H
#define HEMOSCAN_VERDICT_H

#include <stddef.h>

#include "hemoscan/status.h"

#define HS_VERDICT_MIN_SLICES 5
#define HS_VERDICT_MAX_FAILED_FRACTION 0.10
#define HS_VERDICT_MIN_EXTENT_MM 60.0
#define HS_VERDICT_MAX_MISSING_FRACTION 0.10

typedef enum {
    HS_VERDICT_NO_HEMORRHAGE = 0,
    HS_VERDICT_HEMORRHAGE = 1,
    HS_VERDICT_NOT_ASSESSABLE = 2
} hs_verdict;

/* "no_hemorrhage", "hemorrhage", "not_assessable" ("unknown" outside the
 * enum). Stored in databases and JSON: they never change. */
const char *hs_verdict_name(hs_verdict v);

/* What the verdict stage needs to know about one series. */
typedef struct {
    const float *prob; /* n slice probabilities, sorted feet to head; NaN = not scored */
    int n;
    double extent_mm;  /* first to last slice along the normal; 0 when unknown */
    int missing_slices;/* slices missing in gaps (hs_series.missing_slices) */
} hs_verdict_input;

typedef struct {
    hs_verdict verdict;
    double probability; /* study probability; NaN when not assessable */
    double threshold;   /* the model's threshold it was compared with */
    double confidence;  /* margin in [0, 1]; NaN when not assessable */
    char confidence_label[12]; /* "low", "moderate", "high" (hemorrhage); "low"
                                  (no hemorrhage); "" when not assessable */
    int key_slice;      /* index into prob, -1 when not assessable */
    int n_scored;       /* slices with a probability */
    char reason[256];   /* why not assessable; "" otherwise */
} hs_study_verdict;

/* The verdict of one series. threshold in (0, 1). HS_ERR_ARG for NULL
 * pointers, n < 0 or a threshold outside (0, 1); otherwise HS_OK, whatever
 * the verdict. */
hs_status hs_verdict_from_slices(const hs_verdict_input *in, double threshold,
                                 hs_study_verdict *out, hs_error *err);

/* The words every negative verdict carries wherever people read it (text,
 * JSON, syslog, review pictures). */
#define HS_VERDICT_NEGATIVE_CAVEAT "a negative result does not rule out a bleed"

/* The verdict in one line for people, saying what was measured and no
 * more; never the word "confidence":
 *   HEMORRHAGE SUSPECTED: study score 0.912, 0.512 above the threshold 0.400
 *   no hemorrhage found: study score 0.130, 0.270 below the threshold 0.400;
 *   a negative result does not rule out a bleed
 *   NOT ASSESSABLE: <reason>
 * (the negative on one line). Always NUL-terminated when cap > 0; returns
 * what snprintf returns (the length it needed). */
int hs_verdict_describe(const hs_study_verdict *v, char *buf, size_t cap);

#endif
