/* Dense: y = act(x · kernel + bias) over the last axis (tf.keras Dense).
 *
 * Input (B, T, D) float32 row-major, or (B, D) passed as steps = 1: Dense is
 * applied to each of the B·T rows. Output (B, T, U).
 * Weights: one contiguous block in tf.keras get_weights() order:
 *   kernel (D, U), then bias (U,) when use_bias.
 *
 * Gradients: NNTKDenseCalculateGradient overwrites the gradient buffers with
 * the gradients of the last NNTKDenseApplyTrainingBatch, summed over the batch
 * (and over time): exactly what tf.GradientTape.gradient(y, [x] + weights,
 * output_gradients=d_out) returns. */
#ifndef NNTK_DENSE_H
#define NNTK_DENSE_H

#include "nntk/layer_functions.h"
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Dense's standard functions (nntk/layer_functions.h): OutputShape gives
 * out_steps = steps, out_features = U; Apply*: in (batch, steps, D) -> out
 * (batch, steps, U); CalculateGradient: d_out (batch, steps, U) -> d_in (batch,
 * steps, D). */
NNTK_DECLARE_LAYER(Dense)

/* input_dim D >= 1, units U >= 1, activation a NNTKActivationKind,
 * use_bias 0 or 1. NULL on error (see NNTKLastError). */
NNTK_API NNTKDenseConfig *NNTKDenseConfigCreate(int64_t input_dim, int64_t units,
                                                int32_t activation, int32_t use_bias);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_DENSE_H */
