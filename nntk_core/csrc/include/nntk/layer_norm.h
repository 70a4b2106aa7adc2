/* LayerNorm: tf.keras LayerNormalization(axis=-1) over the last axis of a
 * (B, T, C) input, or of a (B, C) input passed as steps = 1. Each of the
 * N = B·T positions is normalised by the statistics of its own C channels:
 *   μ = Σx/C,  σ² = Σ(x−μ)²/C (biased),  y = γ·(x−μ)/√(σ²+ε) + β.
 * Over one channel (C = 1) x − μ = 0, so y = β (and dx = dγ = 0), as tf.keras.
 * scale = 0 means γ = 1 and center = 0 means β = 0 (and they are not stored).
 * Training and inference compute the same (no moving statistics).
 *
 * Weights: one contiguous block in tf.keras get_weights() order: gamma (C,) if
 * scale, beta (C,) if center. Create initialises them as tf.keras does:
 * gamma 1, beta 0.
 *
 * Gradients: NNTKLayerNormCalculateGradient overwrites the gradient buffers with
 * the gradients of the last NNTKLayerNormApplyTrainingBatch, summed over the N
 * positions: exactly what tf.GradientTape.gradient(y, [x] + weights,
 * output_gradients=d_out) returns. With x̂ = (x−μ)/√(σ²+ε) and g = dY⊙γ:
 *   dγ = Σ dY⊙x̂,  dβ = Σ dY,  dx = (g − mean(g) − x̂·mean(g⊙x̂))/√(σ²+ε)
 * (the means over the position's C channels). */
#ifndef NNTK_LAYER_NORM_H
#define NNTK_LAYER_NORM_H

#include "nntk/layer_functions.h"
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* LayerNorm's standard functions (nntk/layer_functions.h): the weights start at
 * the tf.keras initial values (see above), none (GetWeights gives NULL and 0)
 * with center = scale = 0; OutputShape gives out_steps = steps, out_features =
 * C; Apply*: in (batch, steps, C) -> out (batch, steps, C), out may equal in;
 * ApplyInference uses no workspace. CalculateGradient: d_out (batch, steps, C) ->
 * d_in (batch, steps, C). */
NNTK_DECLARE_LAYER(LayerNorm)

/* input_dim C >= 1, epsilon finite and > 0 (a double, as the Python float
 * tf.keras is given), center and scale 0 or 1. NULL on error (see
 * NNTKLastError). */
NNTK_API NNTKLayerNormConfig *NNTKLayerNormConfigCreate(int64_t input_dim, double epsilon,
                                                        int32_t center, int32_t scale);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_LAYER_NORM_H */
