/* Activation: y = act(x), elementwise, or over the last axis for softmax
 * (tf.keras Activation layer; docs/KERAS_SEMANTICS.md §8).
 *
 * Input (B, T, F) float32 row-major, or (B, F) passed as steps = 1; output of
 * the same shape. No weights (GetWeights gives count 0).
 *
 * Gradients: NNTKActivationCalculateGradient writes the input gradient of the
 * last NNTKActivationApplyTrainingBatch: exactly what
 * tf.GradientTape.gradient(y, x, output_gradients=d_out) returns. */
#ifndef NNTK_ACTIVATION_H
#define NNTK_ACTIVATION_H

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NNTKActivationConfig NNTKActivationConfig;
typedef struct NNTKActivation NNTKActivation;
typedef struct NNTKActivationGradient NNTKActivationGradient;

/* kind a NNTKActivationKind; features F >= 1 is the last axis. */
NNTK_API NNTKActivationConfig *NNTKActivationConfigCreate(int32_t kind, int64_t features);
NNTK_API void NNTKActivationConfigDestroy(NNTKActivationConfig *config);

NNTK_API NNTKActivation *NNTKActivationCreateForInference(const NNTKActivationConfig *config);
/* training_config may be NULL (defaults). */
NNTK_API NNTKActivation *NNTKActivationCreateForTraining(const NNTKActivationConfig *config,
                                                         const NNTKTrainingConfig *training_config);
NNTK_API void NNTKActivationDestroy(NNTKActivation *filter);

/* No weights: *weights = NULL, *count = 0. */
NNTK_API NNTKStatus NNTKActivationGetWeights(NNTKActivation *filter, float **weights, int64_t *count);

NNTK_API NNTKStatus NNTKActivationOutputShape(const NNTKActivation *filter, int64_t batch,
                                              int64_t steps, int64_t *out_steps,
                                              int64_t *out_features);

/* in (batch, steps, F) -> out (batch, steps, F); out may equal in. */
NNTK_API NNTKStatus NNTKActivationApplyInference(NNTKActivation *filter, int64_t batch,
                                                 int64_t steps, const float *in, float *out);
NNTK_API NNTKStatus NNTKActivationApplyTrainingBatch(NNTKActivation *filter, int64_t batch,
                                                     int64_t steps, const float *in, float *out);

NNTK_API NNTKActivationGradient *NNTKActivationGradientCreate(const NNTKActivation *filter);
NNTK_API void NNTKActivationGradientDestroy(NNTKActivationGradient *gradient);
/* No weights: *weights = NULL, *count = 0. */
NNTK_API NNTKStatus NNTKActivationGradientGetWeights(NNTKActivationGradient *gradient,
                                                     float **weights, int64_t *count);

/* d_out (batch, steps, F) of the last training batch -> d_in (batch, steps, F);
 * d_in may be NULL (there are no weight gradients: nothing is computed). */
NNTK_API NNTKStatus NNTKActivationCalculateGradient(NNTKActivation *filter,
                                                    NNTKActivationGradient *gradient,
                                                    const float *d_out, float *d_in);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_ACTIVATION_H */
