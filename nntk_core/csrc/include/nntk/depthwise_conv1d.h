/* DepthwiseConv1d: tf.keras DepthwiseConv1D (data_format "channels_last"): each
 * input channel c is convolved with its own depth_multiplier = M filters,
 * giving the output channels c·M + m:
 *   y[b, o, c·M + m] = act(bias[c·M + m] + Σ_j x_pad[b, o·s + j·d, c]·kernel[j, c, m])
 * (a cross-correlation), s = strides, d = dilation_rate, j < kernel_size,
 * k_eff = (kernel_size − 1)·d + 1. The paddings tf.keras supports for it:
 *   NNTK_PADDING_VALID: no padding; O = ⌊(L − k_eff)/s⌋ + 1 (L >= k_eff).
 *   NNTK_PADDING_SAME:  O = ⌈L/s⌉; P = max((O − 1)·s + k_eff − L, 0) zeros,
 *                       ⌊P/2⌋ on the left, the rest on the right.
 * (tf.keras refuses causal padding here, and strides > 1 with dilation_rate > 1:
 * so does the config.)
 *
 * Input (B, L, C) float32 row-major; output (B, O, C·M).
 *
 * Weights: one contiguous block in tf.keras get_weights() order:
 * depthwise_kernel (kernel_size, C, M), then bias (C·M,) if use_bias. Create
 * initialises them as tf.keras does: depthwise_kernel glorot_uniform (fan_in
 * kernel_size·C, fan_out kernel_size·M), bias 0.
 *
 * Gradients: NNTKDepthwiseConv1dCalculateGradient overwrites the gradient
 * buffers with the gradients of the last NNTKDepthwiseConv1dApplyTrainingBatch,
 * summed over the batch: exactly what tf.GradientTape.gradient(y, [x] + weights,
 * output_gradients=d_out) returns. */
#ifndef NNTK_DEPTHWISE_CONV1D_H
#define NNTK_DEPTHWISE_CONV1D_H

#include "nntk/conv1d.h" /* NNTKPadding */
#include "nntk/layer_functions.h"
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* DepthwiseConv1d's standard functions (nntk/layer_functions.h): the weights
 * start at the tf.keras initial values (see above); OutputShape for an input
 * (batch, L, C) gives out_steps = O, out_features = C·M; Apply*: in (batch, L,
 * C) -> out (batch, O, C·M); ApplyInference uses no workspace. CalculateGradient:
 * d_out (batch, O, C·M) -> d_in (batch, L, C). */
NNTK_DECLARE_LAYER(DepthwiseConv1d)

/* input_dim C >= 1, kernel_size >= 1, strides >= 1, padding NNTK_PADDING_VALID
 * or NNTK_PADDING_SAME, depth_multiplier M >= 1, dilation_rate >= 1 (strides > 1
 * and dilation_rate > 1 not both), activation an NNTKActivationKind, use_bias 0
 * or 1. NULL on error (see NNTKLastError). */
NNTK_API NNTKDepthwiseConv1dConfig *NNTKDepthwiseConv1dConfigCreate(
    int64_t input_dim, int64_t kernel_size, int64_t strides, int32_t padding,
    int64_t depth_multiplier, int64_t dilation_rate, int32_t activation, int32_t use_bias);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_DEPTHWISE_CONV1D_H */
