/* GlobalAveragePool1d: tf.keras GlobalAveragePooling1D (data_format
 * "channels_last"): y[b, c] = Σ_t x[b, t, c] / T.
 *
 * Input (B, T, C) float32 row-major; output (B, C) (OutputShape gives
 * out_steps 1; with keepdims Keras's shape is (B, 1, C), the same floats).
 * No weights (GetWeights gives count 0).
 *
 * Gradients: NNTKGlobalAveragePool1dCalculateGradient writes
 * d_in[b, t, c] = d_out[b, c] / T for the last training batch: exactly what
 * tf.GradientTape.gradient(y, x, output_gradients=d_out) returns. */
#ifndef NNTK_GLOBAL_AVERAGE_POOL1D_H
#define NNTK_GLOBAL_AVERAGE_POOL1D_H

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NNTKGlobalAveragePool1dConfig NNTKGlobalAveragePool1dConfig;
typedef struct NNTKGlobalAveragePool1d NNTKGlobalAveragePool1d;
typedef struct NNTKGlobalAveragePool1dGradient NNTKGlobalAveragePool1dGradient;

/* input_dim C >= 1 (the channels); keepdims 0 or 1 (tf.keras keepdims: only
 * the output's rank differs). NULL on error (see NNTKLastError). */
NNTK_API NNTKGlobalAveragePool1dConfig *NNTKGlobalAveragePool1dConfigCreate(int64_t input_dim,
                                                                            int32_t keepdims);
NNTK_API void NNTKGlobalAveragePool1dConfigDestroy(NNTKGlobalAveragePool1dConfig *config);

NNTK_API NNTKGlobalAveragePool1d *NNTKGlobalAveragePool1dCreateForInference(
    const NNTKGlobalAveragePool1dConfig *config);
/* training_config may be NULL (defaults). */
NNTK_API NNTKGlobalAveragePool1d *NNTKGlobalAveragePool1dCreateForTraining(
    const NNTKGlobalAveragePool1dConfig *config, const NNTKTrainingConfig *training_config);
NNTK_API void NNTKGlobalAveragePool1dDestroy(NNTKGlobalAveragePool1d *filter);

/* No weights: *weights = NULL, *count = 0. */
NNTK_API NNTKStatus NNTKGlobalAveragePool1dGetWeights(NNTKGlobalAveragePool1d *filter,
                                                      float **weights, int64_t *count);

/* For an input (batch, steps, C): *out_steps = 1, *out_features = C. */
NNTK_API NNTKStatus NNTKGlobalAveragePool1dOutputShape(const NNTKGlobalAveragePool1d *filter,
                                                       int64_t batch, int64_t steps,
                                                       int64_t *out_steps, int64_t *out_features);

/* in (batch, steps, C) -> out (batch, C). */
NNTK_API NNTKStatus NNTKGlobalAveragePool1dApplyInference(NNTKGlobalAveragePool1d *filter,
                                                          int64_t batch, int64_t steps,
                                                          const float *in, float *out);
NNTK_API NNTKStatus NNTKGlobalAveragePool1dApplyTrainingBatch(NNTKGlobalAveragePool1d *filter,
                                                              int64_t batch, int64_t steps,
                                                              const float *in, float *out);

NNTK_API NNTKGlobalAveragePool1dGradient *NNTKGlobalAveragePool1dGradientCreate(
    const NNTKGlobalAveragePool1d *filter);
NNTK_API void NNTKGlobalAveragePool1dGradientDestroy(NNTKGlobalAveragePool1dGradient *gradient);
/* No weights: *weights = NULL, *count = 0. */
NNTK_API NNTKStatus NNTKGlobalAveragePool1dGradientGetWeights(
    NNTKGlobalAveragePool1dGradient *gradient, float **weights, int64_t *count);

/* d_out (batch, C) of the last training batch -> d_in (batch, steps, C); d_in
 * may be NULL (there are no weight gradients: nothing is computed). */
NNTK_API NNTKStatus NNTKGlobalAveragePool1dCalculateGradient(
    NNTKGlobalAveragePool1d *filter, NNTKGlobalAveragePool1dGradient *gradient,
    const float *d_out, float *d_in);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_GLOBAL_AVERAGE_POOL1D_H */
