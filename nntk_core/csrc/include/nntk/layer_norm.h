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

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NNTKLayerNormConfig NNTKLayerNormConfig;
typedef struct NNTKLayerNorm NNTKLayerNorm;
typedef struct NNTKLayerNormGradient NNTKLayerNormGradient;

/* input_dim C >= 1, epsilon finite and > 0 (a double, as the Python float
 * tf.keras is given), center and scale 0 or 1. NULL on error (see
 * NNTKLastError). */
NNTK_API NNTKLayerNormConfig *NNTKLayerNormConfigCreate(int64_t input_dim, double epsilon,
                                                        int32_t center, int32_t scale);
NNTK_API void NNTKLayerNormConfigDestroy(NNTKLayerNormConfig *config);

/* Weights start at the tf.keras initial values (see above). */
NNTK_API NNTKLayerNorm *NNTKLayerNormCreateForInference(const NNTKLayerNormConfig *config);
/* training_config may be NULL (defaults). */
NNTK_API NNTKLayerNorm *NNTKLayerNormCreateForTraining(const NNTKLayerNormConfig *config,
                                                       const NNTKTrainingConfig *training_config);
NNTK_API void NNTKLayerNormDestroy(NNTKLayerNorm *filter);

/* *weights = the layer's weight block (read and write), *count = its length
 * (0 and NULL with center = scale = 0). */
NNTK_API NNTKStatus NNTKLayerNormGetWeights(NNTKLayerNorm *filter, float **weights, int64_t *count);

/* For an input (batch, steps, C): *out_steps = steps, *out_features = C. */
NNTK_API NNTKStatus NNTKLayerNormOutputShape(const NNTKLayerNorm *filter, int64_t batch,
                                             int64_t steps, int64_t *out_steps,
                                             int64_t *out_features);

/* in (batch, steps, C) -> out (batch, steps, C); out may equal in. Uses no
 * workspace. */
NNTK_API NNTKStatus NNTKLayerNormApplyInference(NNTKLayerNorm *filter, int64_t batch, int64_t steps,
                                                const float *in, float *out);
/* The same output, keeping what the gradient needs. Training handles only. */
NNTK_API NNTKStatus NNTKLayerNormApplyTrainingBatch(NNTKLayerNorm *filter, int64_t batch,
                                                    int64_t steps, const float *in, float *out);

NNTK_API NNTKLayerNormGradient *NNTKLayerNormGradientCreate(const NNTKLayerNorm *filter);
NNTK_API void NNTKLayerNormGradientDestroy(NNTKLayerNormGradient *gradient);
/* *weights = the weight-gradient block (same layout as the weights). */
NNTK_API NNTKStatus NNTKLayerNormGradientGetWeights(NNTKLayerNormGradient *gradient,
                                                    float **weights, int64_t *count);

/* d_out (batch, steps, C) of the last training batch -> the weight gradients in
 * `gradient`, and d_in (batch, steps, C) unless d_in is NULL. */
NNTK_API NNTKStatus NNTKLayerNormCalculateGradient(NNTKLayerNorm *filter,
                                                   NNTKLayerNormGradient *gradient,
                                                   const float *d_out, float *d_in);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_LAYER_NORM_H */
