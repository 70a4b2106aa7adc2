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

typedef struct NNTKConv1dConfig NNTKConv1dConfig;
typedef struct NNTKConv1d NNTKConv1d;
typedef struct NNTKConv1dGradient NNTKConv1dGradient;

/* input_dim C >= 1, filters F >= 1, kernel_size k >= 1, strides s >= 1,
 * padding an NNTKPadding, dilation_rate d >= 1 (s > 1 and d > 1 not both),
 * activation an NNTKActivationKind, use_bias 0 or 1. NULL on error (see
 * NNTKLastError). */
NNTK_API NNTKConv1dConfig *NNTKConv1dConfigCreate(int64_t input_dim, int64_t filters,
                                                  int64_t kernel_size, int64_t strides,
                                                  int32_t padding, int64_t dilation_rate,
                                                  int32_t activation, int32_t use_bias);
NNTK_API void NNTKConv1dConfigDestroy(NNTKConv1dConfig *config);

/* Weights start at zero; fill them through NNTKConv1dGetWeights. */
NNTK_API NNTKConv1d *NNTKConv1dCreateForInference(const NNTKConv1dConfig *config);
/* training_config may be NULL (defaults). */
NNTK_API NNTKConv1d *NNTKConv1dCreateForTraining(const NNTKConv1dConfig *config,
                                                 const NNTKTrainingConfig *training_config);
NNTK_API void NNTKConv1dDestroy(NNTKConv1d *filter);

/* *weights = the layer's weight block (read and write), *count = its length. */
NNTK_API NNTKStatus NNTKConv1dGetWeights(NNTKConv1d *filter, float **weights, int64_t *count);

/* For an input (batch, steps, C): *out_steps = ⌈n/s⌉ (see above), *out_features
 * = F. Fails with NNTK_ERROR_INVALID_ARGUMENT when padding is valid and steps
 * is shorter than the effective kernel (k−1)·d + 1. */
NNTK_API NNTKStatus NNTKConv1dOutputShape(const NNTKConv1d *filter, int64_t batch, int64_t steps,
                                          int64_t *out_steps, int64_t *out_features);

/* in (batch, steps, C) -> out (batch, out_steps, F). Uses no workspace: an
 * inference handle may be shared by threads. */
NNTK_API NNTKStatus NNTKConv1dApplyInference(NNTKConv1d *filter, int64_t batch, int64_t steps,
                                             const float *in, float *out);
/* As inference, and keeps what the gradient needs. Training handles only. */
NNTK_API NNTKStatus NNTKConv1dApplyTrainingBatch(NNTKConv1d *filter, int64_t batch, int64_t steps,
                                                 const float *in, float *out);

NNTK_API NNTKConv1dGradient *NNTKConv1dGradientCreate(const NNTKConv1d *filter);
NNTK_API void NNTKConv1dGradientDestroy(NNTKConv1dGradient *gradient);
/* *weights = the weight-gradient block (same layout as the weights). */
NNTK_API NNTKStatus NNTKConv1dGradientGetWeights(NNTKConv1dGradient *gradient, float **weights,
                                                 int64_t *count);

/* d_out (batch, out_steps, F) of the last training batch -> the weight
 * gradients in `gradient`, and d_in (batch, steps, C) unless d_in is NULL. */
NNTK_API NNTKStatus NNTKConv1dCalculateGradient(NNTKConv1d *filter, NNTKConv1dGradient *gradient,
                                                const float *d_out, float *d_in);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_CONV1D_H */
