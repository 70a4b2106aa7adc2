/* GlobalMaxPool1d: tf.keras GlobalMaxPooling1D (data_format
 * "channels_last"): y[b, c] = max_t x[b, t, c].
 *
 * Input (B, T, C) float32 row-major; output (B, C) (OutputShape gives
 * out_steps 1; with keepdims Keras's shape is (B, 1, C), the same floats).
 * No weights (GetWeights gives count 0).
 *
 * Gradients: NNTKGlobalMaxPool1dCalculateGradient writes the input gradient
 * of the last training batch: exactly what tf.GradientTape.gradient(y, x,
 * output_gradients=d_out) returns. As tf.reduce_max's gradient, d_out[b, c]
 * is shared equally by the n steps that attain the maximum (ties):
 * d_in[b, t, c] = float32(1/n)·d_out[b, c] there, 0 elsewhere. */
#ifndef NNTK_GLOBAL_MAX_POOL1D_H
#define NNTK_GLOBAL_MAX_POOL1D_H

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NNTKGlobalMaxPool1dConfig NNTKGlobalMaxPool1dConfig;
typedef struct NNTKGlobalMaxPool1d NNTKGlobalMaxPool1d;
typedef struct NNTKGlobalMaxPool1dGradient NNTKGlobalMaxPool1dGradient;

/* input_dim C >= 1 (the channels); keepdims 0 or 1 (tf.keras keepdims: only
 * the output's rank differs). NULL on error (see NNTKLastError). */
NNTK_API NNTKGlobalMaxPool1dConfig *NNTKGlobalMaxPool1dConfigCreate(int64_t input_dim,
                                                                            int32_t keepdims);
NNTK_API void NNTKGlobalMaxPool1dConfigDestroy(NNTKGlobalMaxPool1dConfig *config);

NNTK_API NNTKGlobalMaxPool1d *NNTKGlobalMaxPool1dCreateForInference(
    const NNTKGlobalMaxPool1dConfig *config);
/* training_config may be NULL (defaults). */
NNTK_API NNTKGlobalMaxPool1d *NNTKGlobalMaxPool1dCreateForTraining(
    const NNTKGlobalMaxPool1dConfig *config, const NNTKTrainingConfig *training_config);
NNTK_API void NNTKGlobalMaxPool1dDestroy(NNTKGlobalMaxPool1d *filter);

/* No weights: *weights = NULL, *count = 0. */
NNTK_API NNTKStatus NNTKGlobalMaxPool1dGetWeights(NNTKGlobalMaxPool1d *filter,
                                                      float **weights, int64_t *count);

/* For an input (batch, steps, C): *out_steps = 1, *out_features = C. */
NNTK_API NNTKStatus NNTKGlobalMaxPool1dOutputShape(const NNTKGlobalMaxPool1d *filter,
                                                       int64_t batch, int64_t steps,
                                                       int64_t *out_steps, int64_t *out_features);

/* in (batch, steps, C) -> out (batch, C). */
NNTK_API NNTKStatus NNTKGlobalMaxPool1dApplyInference(NNTKGlobalMaxPool1d *filter,
                                                          int64_t batch, int64_t steps,
                                                          const float *in, float *out);
NNTK_API NNTKStatus NNTKGlobalMaxPool1dApplyTrainingBatch(NNTKGlobalMaxPool1d *filter,
                                                              int64_t batch, int64_t steps,
                                                              const float *in, float *out);

NNTK_API NNTKGlobalMaxPool1dGradient *NNTKGlobalMaxPool1dGradientCreate(
    const NNTKGlobalMaxPool1d *filter);
NNTK_API void NNTKGlobalMaxPool1dGradientDestroy(NNTKGlobalMaxPool1dGradient *gradient);
/* No weights: *weights = NULL, *count = 0. */
NNTK_API NNTKStatus NNTKGlobalMaxPool1dGradientGetWeights(
    NNTKGlobalMaxPool1dGradient *gradient, float **weights, int64_t *count);

/* d_out (batch, C) of the last training batch -> d_in (batch, steps, C); d_in
 * may be NULL (there are no weight gradients: nothing is computed). */
NNTK_API NNTKStatus NNTKGlobalMaxPool1dCalculateGradient(
    NNTKGlobalMaxPool1d *filter, NNTKGlobalMaxPool1dGradient *gradient,
    const float *d_out, float *d_in);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_GLOBAL_MAX_POOL1D_H */
