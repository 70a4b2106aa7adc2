/* TimeDistributedDense: tf.keras TimeDistributed(Dense(...)). Dense applied to
 * every time step; implemented by calling the Dense layer (nntk/dense.h) on
 * the (B·T, D) reshaped input, which is what Keras does for built-in layers.
 *
 * Input (B, T, D) float32 row-major; output (B, T, U).
 * Weights: kernel (D, U), then bias (U,) when use_bias (Keras order).
 * Gradients: NNTKTimeDistributedDenseCalculateGradient overwrites the gradient
 * buffers with the gradients of the last ApplyTrainingBatch, summed over batch
 * and time: exactly what tf.GradientTape.gradient(y, [x] + weights,
 * output_gradients=d_out) returns. */
#ifndef NNTK_TIME_DISTRIBUTED_DENSE_H
#define NNTK_TIME_DISTRIBUTED_DENSE_H

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NNTKTimeDistributedDenseConfig NNTKTimeDistributedDenseConfig;
typedef struct NNTKTimeDistributedDense NNTKTimeDistributedDense;
typedef struct NNTKTimeDistributedDenseGradient NNTKTimeDistributedDenseGradient;

NNTK_API NNTKTimeDistributedDenseConfig *NNTKTimeDistributedDenseConfigCreate(int64_t input_dim,
                                                                              int64_t units,
                                                                              int32_t activation,
                                                                              int32_t use_bias);
NNTK_API void NNTKTimeDistributedDenseConfigDestroy(NNTKTimeDistributedDenseConfig *config);

NNTK_API NNTKTimeDistributedDense *NNTKTimeDistributedDenseCreateForInference(
    const NNTKTimeDistributedDenseConfig *config);
/* training_config may be NULL (defaults). */
NNTK_API NNTKTimeDistributedDense *NNTKTimeDistributedDenseCreateForTraining(
    const NNTKTimeDistributedDenseConfig *config, const NNTKTrainingConfig *training_config);
NNTK_API void NNTKTimeDistributedDenseDestroy(NNTKTimeDistributedDense *filter);

NNTK_API NNTKStatus NNTKTimeDistributedDenseGetWeights(NNTKTimeDistributedDense *filter,
                                                       float **weights, int64_t *count);
NNTK_API NNTKStatus NNTKTimeDistributedDenseOutputShape(const NNTKTimeDistributedDense *filter,
                                                        int64_t batch, int64_t steps,
                                                        int64_t *out_steps, int64_t *out_features);

/* in (batch, steps, D) -> out (batch, steps, U). */
NNTK_API NNTKStatus NNTKTimeDistributedDenseApplyInference(NNTKTimeDistributedDense *filter,
                                                           int64_t batch, int64_t steps,
                                                           const float *in, float *out);
NNTK_API NNTKStatus NNTKTimeDistributedDenseApplyTrainingBatch(NNTKTimeDistributedDense *filter,
                                                               int64_t batch, int64_t steps,
                                                               const float *in, float *out);

NNTK_API NNTKTimeDistributedDenseGradient *NNTKTimeDistributedDenseGradientCreate(
    const NNTKTimeDistributedDense *filter);
NNTK_API void NNTKTimeDistributedDenseGradientDestroy(NNTKTimeDistributedDenseGradient *gradient);
NNTK_API NNTKStatus NNTKTimeDistributedDenseGradientGetWeights(
    NNTKTimeDistributedDenseGradient *gradient, float **weights, int64_t *count);

/* d_out (batch, steps, U) -> weight gradients, and d_in (batch, steps, D) unless NULL. */
NNTK_API NNTKStatus NNTKTimeDistributedDenseCalculateGradient(
    NNTKTimeDistributedDense *filter, NNTKTimeDistributedDenseGradient *gradient,
    const float *d_out, float *d_in);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_TIME_DISTRIBUTED_DENSE_H */
