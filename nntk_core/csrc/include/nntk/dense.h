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

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NNTKDenseConfig NNTKDenseConfig;
typedef struct NNTKDense NNTKDense;
typedef struct NNTKDenseGradient NNTKDenseGradient;

/* input_dim D >= 1, units U >= 1, activation a NNTKActivationKind,
 * use_bias 0 or 1. NULL on error (see NNTKLastError). */
NNTK_API NNTKDenseConfig *NNTKDenseConfigCreate(int64_t input_dim, int64_t units,
                                                int32_t activation, int32_t use_bias);
NNTK_API void NNTKDenseConfigDestroy(NNTKDenseConfig *config);

/* Weights start at zero; fill them through NNTKDenseGetWeights. */
NNTK_API NNTKDense *NNTKDenseCreateForInference(const NNTKDenseConfig *config);
/* training_config may be NULL (defaults). */
NNTK_API NNTKDense *NNTKDenseCreateForTraining(const NNTKDenseConfig *config,
                                               const NNTKTrainingConfig *training_config);
NNTK_API void NNTKDenseDestroy(NNTKDense *filter);

/* *weights = the layer's weight block (read and write), *count = its length. */
NNTK_API NNTKStatus NNTKDenseGetWeights(NNTKDense *filter, float **weights, int64_t *count);

/* For an input (batch, steps, D): *out_steps = steps, *out_features = U. */
NNTK_API NNTKStatus NNTKDenseOutputShape(const NNTKDense *filter, int64_t batch, int64_t steps,
                                         int64_t *out_steps, int64_t *out_features);

/* in (batch, steps, D) -> out (batch, steps, U). */
NNTK_API NNTKStatus NNTKDenseApplyInference(NNTKDense *filter, int64_t batch, int64_t steps,
                                            const float *in, float *out);
/* As inference, and keeps what the gradient needs. Training handles only. */
NNTK_API NNTKStatus NNTKDenseApplyTrainingBatch(NNTKDense *filter, int64_t batch, int64_t steps,
                                                const float *in, float *out);

NNTK_API NNTKDenseGradient *NNTKDenseGradientCreate(const NNTKDense *filter);
NNTK_API void NNTKDenseGradientDestroy(NNTKDenseGradient *gradient);
/* *weights = the weight-gradient block (same layout as the weights). */
NNTK_API NNTKStatus NNTKDenseGradientGetWeights(NNTKDenseGradient *gradient, float **weights,
                                                int64_t *count);

/* d_out (batch, steps, U) of the last training batch -> the weight gradients
 * in `gradient`, and d_in (batch, steps, D) unless d_in is NULL. */
NNTK_API NNTKStatus NNTKDenseCalculateGradient(NNTKDense *filter, NNTKDenseGradient *gradient,
                                               const float *d_out, float *d_in);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_DENSE_H */
