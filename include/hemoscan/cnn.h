/* cnn.h - the convolutional network engine: layers, forward, backward.
 *
 * The architecture is data: an array of hs_layer_spec read from the model
 * file, so another layer list loads and runs without recompiling. Tensors are
 * NHWC float32 (batch, row, column, channel): a 'valid' or 'same' k x k
 * convolution then becomes one matrix product per tile of output pixels
 * (im2col rows x [k*k*C_in, C_out] weights) on CBLAS sgemm, and the output
 * of that product is already the next layer's NHWC input.
 *
 * An hs_net owns the parameters (and, for training, their gradients) in one
 * flat array, so optimisers and the model file see a single vector. An
 * hs_ws owns every buffer a forward/backward pass needs for up to max_batch
 * samples, sized once: nothing in the hot path allocates. One workspace can
 * serve any net of the same architecture (ensemble members share one). */
#ifndef HEMOSCAN_CNN_H
#define HEMOSCAN_CNN_H

#include <stddef.h>
#include <stdio.h>

#include "hemoscan/rng.h"
#include "hemoscan/status.h"

typedef enum {
    HS_LAYER_CONV = 1, /* k x k convolution, stride 1, optional fused ReLU */
    HS_LAYER_RELU,     /* standalone ReLU */
    HS_LAYER_MAXPOOL,  /* 2 x 2 max-pooling, stride 2 (odd edges dropped) */
    HS_LAYER_FLATTEN,  /* H x W x C -> 1 x 1 x (H*W*C), HWC order */
    HS_LAYER_DENSE,    /* fully connected, optional fused ReLU */
    HS_LAYER_DROPOUT,  /* inverted dropout; identity at inference */
    HS_LAYER_SIGMOID,  /* output: independent probabilities, binary cross-entropy */
    HS_LAYER_SOFTMAX   /* output: one of K classes, categorical cross-entropy */
} hs_layer_kind;

typedef struct {
    hs_layer_kind kind;
    int units;    /* conv: output channels; dense: output units */
    int kernel;   /* conv: k of the k x k kernel */
    int pad_same; /* conv: 1 = 'same' zero padding, 0 = 'valid' */
    int relu;     /* conv, dense: apply ReLU to the output */
    float rate;   /* dropout: probability of dropping a unit, in [0, 1) */
} hs_layer_spec;

typedef struct {
    int h, w, c;
} hs_shape;

typedef struct {
    hs_layer_spec spec;
    hs_shape in, out;
    size_t w_off, w_len; /* weights in params: conv [k*k*C_in][units]
                            (rows in dy, dx, c order), dense [inputs][units] */
    size_t b_off, b_len; /* biases in params, one per unit */
} hs_layer;

typedef struct {
    hs_shape input;
    int n_layers;
    hs_layer *layers;
    size_t n_params;
    float *params; /* n_params values */
    float *grads;  /* n_params values, NULL until hs_net_alloc_grads */
} hs_net;

/* Maximum number of layers a net may have (model files are checked against it). */
#define HS_MAX_LAYERS 64

/* Build a net from a layer list: checks every shape, computes each layer's
 * output shape and parameter offsets, allocates zeroed parameters. The last
 * layer must be SIGMOID or SOFTMAX, directly after a DENSE layer. */
hs_status hs_net_create(hs_net *net, hs_shape input, const hs_layer_spec *specs,
                        int n_specs, hs_error *err);
/* dst: the net that computes on a one-channel image what src computes on
 * that image repeated in every input channel (a gray picture given as RGB).
 * A convolution is linear in its input channels, so the first layer's
 * weights are summed over them: the same outputs (up to float rounding)
 * for a third of the first layer's work with three channels. src's first
 * layer must be a convolution (HS_ERR_SHAPE otherwise); dst is created
 * here, free it with hs_net_free. */
hs_status hs_net_merge_input_channels(const hs_net *src, hs_net *dst, hs_error *err);
void hs_net_free(hs_net *net);
hs_status hs_net_alloc_grads(hs_net *net, hs_error *err);

/* He-normal initialisation for layers followed by ReLU, Glorot-uniform for
 * the others; biases zero. Draws only from rng. */
void hs_net_init(hs_net *net, hs_rng *rng);

/* The reference design: 150x150x3 -> 5 x (3x3 valid conv + ReLU + 2x2 pool)
 * with 16, 32, 64, 64, 128 filters -> flatten (512) -> dense 256 ReLU ->
 * [dropout] -> dense 1 -> sigmoid. dropout <= 0 leaves the dropout layer out.
 * Writes up to max_specs specs and returns how many (14, or 15 with dropout). */
int hs_net_reference_specs(hs_layer_spec *specs, int max_specs, float dropout);

/* Number of output units (1 for a sigmoid hemorrhage model, K for softmax). */
int hs_net_outputs(const hs_net *net);
/* Multiply-adds x 2 of one sample's forward pass. */
double hs_net_forward_flops(const hs_net *net);
/* Print a Keras-like summary: one line per layer with output shape and
 * parameter count, then the total. */
void hs_net_describe(const hs_net *net, FILE *out);
/* Short text name of a layer kind ("conv", "dense", ...), and back: the
 * parser returns 0 and sets *kind, or -1 for an unknown name. */
const char *hs_layer_kind_name(hs_layer_kind kind);
int hs_layer_kind_parse(const char *name, hs_layer_kind *kind);

typedef struct hs_ws hs_ws;

/* Buffers for batches of up to max_batch samples. training != 0 keeps every
 * layer's activations for the backward pass; inference needs only two.
 * threads >= 1 is the number of worker threads. BLAS itself runs single
 * threaded: the engine splits the work by tiles or by samples. */
hs_status hs_ws_create(hs_ws **ws, const hs_net *net, int max_batch,
                       int training, int threads, hs_error *err);
void hs_ws_free(hs_ws *ws);
int hs_ws_max_batch(const hs_ws *ws);
/* Whether forward passes may use the direct and Winograd convolution
 * kernels and fuse convolution with pooling (default 1); 0 forces the exact
 * im2col + sgemm path everywhere. For tests and benchmarks that compare. */
void hs_ws_set_fast_kernels(hs_ws *ws, int enable);

/* Forward pass over n <= max_batch samples, x in NHWC. Returns the output
 * probabilities, n x hs_net_outputs, owned by ws and valid until the next
 * call. training != 0 (needs a training workspace) applies dropout, drawing
 * masks from rng, and keeps activations for hs_backward. */
const float *hs_forward(const hs_net *net, hs_ws *ws, const float *x, int n,
                        int training, hs_rng *rng);

/* Mean cross-entropy of the last forward pass against labels (class index;
 * 0/1 for a single sigmoid unit). Also stores dLoss/dlogits for
 * hs_backward. Computed from the logits, so it stays finite. */
double hs_loss(const hs_net *net, hs_ws *ws, const int *labels, int n);

/* The same against soft targets, n x hs_net_outputs: probabilities per
 * output (a sigmoid unit's target is the probability of its class; a
 * softmax row sums to 1). Used for mixup and label smoothing; hs_loss is
 * this with one-hot targets. */
double hs_loss_soft(const hs_net *net, hs_ws *ws, const float *targets, int n);

/* One-hot targets (n x k) for labels, as hs_loss uses them: for k == 1 the
 * target is 1 for a nonzero label. */
void hs_label_targets(const int *labels, int n, int k, float *targets);

/* Backward pass of the last training forward pass: overwrites net->grads
 * with dLoss/dparams (net must have grads). x is the same input. */
void hs_backward(hs_net *net, hs_ws *ws, const float *x, int n);

/* ---- saliency --------------------------------------------------------------
 * Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep
 * Networks via Gradient-based Localization", ICCV 2017): for a convolution
 * layer with activations A (h x w x C, after its ReLU), the channel weights
 * are the score's gradient averaged over the map, w_c = mean_{y,x}
 * dS/dA[y,x,c], and the map is ReLU(sum_c w_c A[.,.,c]). The score S is the
 * logit of the output unit (before the sigmoid or softmax), so a saturated
 * probability still has a gradient. Both need a training workspace
 * (hs_ws_create with training = 1, max_batch >= 1), run one sample with
 * dropout off, and allocate their scratch per call (a parameter-sized
 * vector): they are for a handful of review images, not the hot path. */

/* Index of the last convolution layer, -1 when the net has none. */
int hs_net_last_conv(const hs_net *net);

/* dS/d(output of layer) for one sample x (NHWC, the net's input shape),
 * S the logit of output unit `unit`: grad receives the layer's output size
 * (h * w * c) floats, *logit (may be NULL) the logit. layer in 0..L-2.
 * HS_ERR_ARG for a layer or unit out of range or a workspace that is not
 * a training one for this net; HS_ERR_NOMEM. */
hs_status hs_score_gradient(const hs_net *net, hs_ws *ws, int layer, int unit, const float *x,
                            float *grad, float *logit, hs_error *err);

/* Grad-CAM of output unit 0 on convolution `layer` (-1: the last one):
 * map receives net->layers[layer].out.h * .w values >= 0, row-major,
 * *logit (may be NULL) the logit. HS_ERR_ARG when layer is not a
 * convolution. */
hs_status hs_gradcam(const hs_net *net, hs_ws *ws, int layer, const float *x, float *map,
                     float *logit, hs_error *err);

#endif
