/* Conv1d: tf.keras Conv1D (channels_last, groups = 1).
 *
 *   y[b,o,f] = act( bias[f] + Σ_{j<k} Σ_c x_pad[b, o·s + j·d, c] · kernel[j,c,f] )
 *
 * a cross-correlation (the kernel is not flipped), with s = strides, d =
 * dilation_rate, k_eff = (k−1)·d + 1 and x_pad the input padded with zeros:
 *   NNTK_PADDING_VALID  : no padding; n = L − k_eff + 1 (L must be >= k_eff).
 *   NNTK_PADDING_SAME   : P = max((⌈L/s⌉ − 1)·s + k_eff − L, 0) zeros, ⌊P/2⌋ on
 *                         the left and the rest (the extra one) on the right; n = L.
 *   NNTK_PADDING_CAUSAL : (k−1)·d zeros on the left only; n = L.
 * Output length ⌈n/s⌉. strides > 1 together with dilation_rate > 1 is
 * rejected, as tf.keras does.
 *
 * Input (B, L, C) float32 row-major; output (B, ⌈n/s⌉, F).
 * Weights: one contiguous block in tf.keras get_weights() order:
 *   kernel (k, C, F), then bias (F,) when use_bias.
 *
 * Gradients: NNTKConv1dCalculateGradient overwrites the gradient buffers with
 * the gradients of the last NNTKConv1dApplyTrainingBatch, summed over the
 * batch (and over time): exactly what tf.GradientTape.gradient(y, [x] +
 * weights, output_gradients=d_out) returns. d_in is the input gradient cropped
 * back from the padding, (B, L, C). */
#ifndef NNTK_CONV1D_H
#define NNTK_CONV1D_H

#include "nntk/layer_functions.h"
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* tf.keras Conv1D padding= "valid", "same", "causal". */
typedef enum NNTKPadding {
    NNTK_PADDING_VALID = 0,
    NNTK_PADDING_SAME = 1,
    NNTK_PADDING_CAUSAL = 2,
} NNTKPadding;

/* Conv1d's standard functions (nntk/layer_functions.h): OutputShape for an input
 * (batch, steps, C) gives out_steps = ⌈n/s⌉ (see above), out_features = F, and
 * fails with NNTK_ERROR_INVALID_ARGUMENT when padding is valid and steps is
 * shorter than the effective kernel (k−1)·d + 1; Apply*: in (batch, steps, C) ->
 * out (batch, out_steps, F); ApplyInference uses no workspace. Like every
 * handle, one call at a time (docs/DESIGN.md §3: an overlapping call is refused).
 * CalculateGradient: d_out (batch, out_steps, F) -> d_in (batch, steps, C). */
NNTK_DECLARE_LAYER(Conv1d)

/* input_dim C >= 1, filters F >= 1, kernel_size k >= 1, strides s >= 1,
 * padding an NNTKPadding, dilation_rate d >= 1 (s > 1 and d > 1 not both),
 * activation an NNTKActivationKind, use_bias 0 or 1. NULL on error (see
 * NNTKLastError). */
NNTK_API NNTKConv1dConfig *NNTKConv1dConfigCreate(int64_t input_dim, int64_t filters,
                                                  int64_t kernel_size, int64_t strides,
                                                  int32_t padding, int64_t dilation_rate,
                                                  int32_t activation, int32_t use_bias);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_CONV1D_H */
