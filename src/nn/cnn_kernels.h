/* cnn_kernels.h - private interface between the network driver (cnn.c) and
 * the layer kernels (cnn_kernels.c). Not installed, not for other modules.
 *
 * Kernels work on NHWC float tensors over a range of samples or output
 * rows, with caller-provided scratch, so that the driver decides how work
 * is split across threads and no kernel allocates. */
#ifndef HEMOSCAN_CNN_KERNELS_H
#define HEMOSCAN_CNN_KERNELS_H

#include <stddef.h>

#include "hemoscan/cnn.h"

/* Rows of the im2col tile, chosen so a tile of k*k*C_in columns stays in the
 * L2 cache; scratch for one tile holds hs_conv_tile_rows(L) * K floats. */
int hs_conv_tile_rows(const hs_layer *layer);
size_t hs_conv_scratch_floats(const hs_layer *layer);

/* Convolution forward for flattened output rows [row0, row1) of a batch
 * (row = (sample * H_out + y) * W_out + x), written from out on (out
 * points at row0's output): im2col into col, one sgemm, bias and optional
 * ReLU. */
void hs_conv_forward_rows(const hs_layer *layer, const float *params,
                          const float *in, float *out, long row0, long row1,
                          float *col);

/* The functions below work on n consecutive samples; every tensor pointer
 * points at the first of them, so a thread can pass its own share of a
 * batch, or a private buffer that holds only that share. */

/* Whether the direct kernel handles this convolution ('valid' padding and
 * a multiple of 16 output channels). */
int hs_conv_has_direct(const hs_layer *layer);
/* The same without im2col: register-tiled directly from the NHWC input,
 * bias and ReLU fused. Only for layers where hs_conv_has_direct is true. */
void hs_conv_direct_rows(const hs_layer *layer, const float *params,
                         const float *in, float *out, long row0, long row1);

/* Winograd F(2x2, 3x3) for inference: 3x3 'valid' convolutions with C_in
 * and C_out multiples of 16. Weights are transformed once per forward call
 * into u (hs_winograd_weight_floats); hs_winograd_rows then computes output
 * rows [2*ty0, 2*ty1) of one sample into out (NHWC, whole sample), or, when
 * pool is the 2x2 max-pooling layer that follows, pooled rows [ty0, ty1)
 * into pool's output. scratch holds hs_winograd_scratch_floats floats. */
int hs_winograd_eligible(const hs_layer *layer);
size_t hs_winograd_weight_floats(const hs_layer *layer);
size_t hs_winograd_scratch_floats(const hs_layer *layer);
void hs_winograd_weights(const hs_layer *layer, const float *params, float *u);
void hs_winograd_rows(const hs_layer *layer, const float *params, const float *u,
                      const float *in, float *out, int ty0, int ty1,
                      const hs_layer *pool, float *scratch);

/* Convolution backward: dout (already masked by the ReLU derivative) ->
 * dW, db accumulated into grads; din written when not NULL (zeroed first).
 * col and dcol are tile scratch. */
void hs_conv_backward(const hs_layer *layer, const float *params, float *grads,
                      const float *in, const float *dout, float *din, int n,
                      float *col, float *dcol);

/* 2x2 stride-2 max-pooling of two adjacent input rows into one output row
 * of out_w pixels (shared by the pooling layer and the fused
 * convolution + pooling of inference). */
void hs_maxpool_row_pair(const float *row0, const float *row1, int out_w,
                         int c, float *out);
/* 2x2 stride-2 max-pooling. */
void hs_maxpool_forward(const hs_layer *layer, const float *in, float *out,
                        int n);
/* Routes each pooled gradient to the first maximal input of its window;
 * din is fully written (zeros elsewhere). */
void hs_maxpool_backward(const hs_layer *layer, const float *in,
                         const float *out, const float *dout, float *din,
                         int n);

/* Dense layer: out = in W + b, optional ReLU. */
void hs_dense_forward(const hs_layer *layer, const float *params,
                      const float *in, float *out, int n);
/* dW, db accumulated into grads; din written when not NULL. */
void hs_dense_backward(const hs_layer *layer, const float *params,
                       float *grads, const float *in, const float *dout,
                       float *din, int n);

/* g[i] = 0 where out[i] <= 0 (derivative of ReLU through its output). */
void hs_relu_mask(float *g, const float *out, size_t n);

#endif
