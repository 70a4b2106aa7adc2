/* AveragePool1d: tf.keras AveragePooling1D (data_format "channels_last"):
 *   y[b, o, c] = Σ_{i in window o} x[b, i, c] / n_o,
 * window o = the input steps of [o·s − pad_left, o·s − pad_left + pool_size)
 * inside [0, L), n_o their number, s = strides.
 *   NNTK_PADDING_VALID: no padding; O = ⌊(L − pool_size)/s⌋ + 1 (L >= pool_size);
 *                       every n_o = pool_size.
 *   NNTK_PADDING_SAME:  O = ⌈L/s⌉; P = max((O − 1)·s + pool_size − L, 0) padded
 *                       positions, ⌊P/2⌋ on the left. As tf.nn.avg_pool, the
 *                       divisor n_o counts only the steps inside the input
 *                       (an edge window of 2 real steps divides by 2).
 *
 * Input (B, L, C) float32 row-major; output (B, O, C). No weights.
 *
 * Gradients: NNTKAveragePool1dCalculateGradient writes the input gradient of
 * the last training batch: exactly what tf.GradientTape.gradient(y, x,
 * output_gradients=d_out) returns (TF's AvgPoolGrad): d_in[b, i, c] = Σ over
 * the windows o holding step i of d_out[b, o, c]/n_o. */
#ifndef NNTK_AVERAGE_POOL1D_H
#define NNTK_AVERAGE_POOL1D_H

#include "nntk/conv1d.h" /* NNTKPadding */
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NNTKAveragePool1dConfig NNTKAveragePool1dConfig;
typedef struct NNTKAveragePool1d NNTKAveragePool1d;
typedef struct NNTKAveragePool1dGradient NNTKAveragePool1dGradient;

/* input_dim C >= 1, pool_size >= 1, strides >= 1 (tf.keras's strides=None is
 * pool_size: pass it), padding NNTK_PADDING_VALID or NNTK_PADDING_SAME. NULL on
 * error (see NNTKLastError). */
NNTK_API NNTKAveragePool1dConfig *NNTKAveragePool1dConfigCreate(int64_t input_dim, int64_t pool_size,
                                                        int64_t strides, int32_t padding);
NNTK_API void NNTKAveragePool1dConfigDestroy(NNTKAveragePool1dConfig *config);

NNTK_API NNTKAveragePool1d *NNTKAveragePool1dCreateForInference(const NNTKAveragePool1dConfig *config);
/* training_config may be NULL (defaults). */
NNTK_API NNTKAveragePool1d *NNTKAveragePool1dCreateForTraining(const NNTKAveragePool1dConfig *config,
                                                       const NNTKTrainingConfig *training_config);
NNTK_API void NNTKAveragePool1dDestroy(NNTKAveragePool1d *filter);

/* No weights: *weights = NULL, *count = 0. */
NNTK_API NNTKStatus NNTKAveragePool1dGetWeights(NNTKAveragePool1d *filter, float **weights, int64_t *count);

/* For an input (batch, L, C): *out_steps = O, *out_features = C. */
NNTK_API NNTKStatus NNTKAveragePool1dOutputShape(const NNTKAveragePool1d *filter, int64_t batch,
                                             int64_t steps, int64_t *out_steps,
                                             int64_t *out_features);

/* in (batch, L, C) -> out (batch, O, C). */
NNTK_API NNTKStatus NNTKAveragePool1dApplyInference(NNTKAveragePool1d *filter, int64_t batch, int64_t steps,
                                                const float *in, float *out);
NNTK_API NNTKStatus NNTKAveragePool1dApplyTrainingBatch(NNTKAveragePool1d *filter, int64_t batch,
                                                    int64_t steps, const float *in, float *out);

NNTK_API NNTKAveragePool1dGradient *NNTKAveragePool1dGradientCreate(const NNTKAveragePool1d *filter);
NNTK_API void NNTKAveragePool1dGradientDestroy(NNTKAveragePool1dGradient *gradient);
/* No weights: *weights = NULL, *count = 0. */
NNTK_API NNTKStatus NNTKAveragePool1dGradientGetWeights(NNTKAveragePool1dGradient *gradient,
                                                    float **weights, int64_t *count);

/* d_out (batch, O, C) of the last training batch -> d_in (batch, L, C); d_in may
 * be NULL (there are no weight gradients: nothing is computed). */
NNTK_API NNTKStatus NNTKAveragePool1dCalculateGradient(NNTKAveragePool1d *filter,
                                                   NNTKAveragePool1dGradient *gradient,
                                                   const float *d_out, float *d_in);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_AVERAGE_POOL1D_H */
