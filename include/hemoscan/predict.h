/* predict.h - a model's probabilities for a batch of prepared inputs.
 *
 * The one place that turns input tensors into the probabilities a user
 * sees, for every mode (predict, eval, cross-validation, DICOM studies):
 * the ensemble members' outputs are averaged, and with test-time
 * augmentation each image is also scored mirrored left-right (a head is
 * close to symmetric, a bleed can be on either side) and the two averaged.
 * A predictor sizes its buffers once and is reused batch after batch. */
#ifndef HEMOSCAN_PREDICT_H
#define HEMOSCAN_PREDICT_H

#include "hemoscan/cnn.h"
#include "hemoscan/model.h"
#include "hemoscan/status.h"

typedef struct hs_predictor hs_predictor;

/* tta != 0 adds the mirrored image. threads as in hs_ws_create. For a
 * model of plain gray channels (hs_recipe_is_gray) the predictor keeps its own
 * one-channel copy of the weights (hs_net_merge_input_channels), taken
 * now: create it after training has finished changing them. It then reads
 * only channel 0 of the inputs, whose channels such a recipe makes equal. */
hs_status hs_predictor_create(hs_predictor **pred, const hs_model *model,
                              int max_batch, int tta, int threads,
                              hs_error *err);
void hs_predictor_free(hs_predictor *pred);
int hs_predictor_max_batch(const hs_predictor *pred);

/* probs: n x outputs (outputs = 1 for a sigmoid model, K for softmax).
 * Any n: larger batches are run in chunks of max_batch. */
void hs_predictor_run(hs_predictor *pred, const float *x, int n, float *probs);

/* The class one image's probabilities (outputs values) point to: for a
 * one-output model the positive class 1 when the score reaches threshold,
 * else 0; for K outputs the most probable class (the first on ties). */
int hs_predicted_class(const float *probs, int outputs, double threshold);

/* Mirror HWC images left-right (n images of h x w x c) into out. */
void hs_flip_horizontal(const float *in, float *out, int n, int h, int w, int c);

#endif
