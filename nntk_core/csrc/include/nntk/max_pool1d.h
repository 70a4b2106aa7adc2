/* MaxPool1d: tf.keras MaxPooling1D (data_format "channels_last"):
 *   y[b, o, c] = max over the window's steps i of x[b, i, c],
 * window o = input steps [o·s − pad_left, o·s − pad_left + pool_size) inside
 * [0, L), s = strides.
 *   NNTK_PADDING_VALID: no padding; O = ⌊(L − pool_size)/s⌋ + 1 (L >= pool_size).
 *   NNTK_PADDING_SAME:  O = ⌈L/s⌉; P = max((O − 1)·s + pool_size − L, 0) padded
 *                       positions, ⌊P/2⌋ on the left; they never win.
 *
 * Input (B, L, C) float32 row-major; output (B, O, C). No weights.
 *
 * Gradients: NNTKMaxPool1dCalculateGradient writes the input gradient of the
 * last training batch: exactly what tf.GradientTape.gradient(y, x,
 * output_gradients=d_out) returns (TF's MaxPoolGrad): each d_out[b, o, c] goes
 * to the first step of window o that holds the maximum (of equal values, the
 * earliest), and overlapping windows (s < pool_size) add their shares. */
#ifndef NNTK_MAX_POOL1D_H
#define NNTK_MAX_POOL1D_H

#include "nntk/conv1d.h" /* NNTKPadding */
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NNTKMaxPool1dConfig NNTKMaxPool1dConfig;
typedef struct NNTKMaxPool1d NNTKMaxPool1d;
typedef struct NNTKMaxPool1dGradient NNTKMaxPool1dGradient;

/* input_dim C >= 1, pool_size >= 1, strides >= 1 (tf.keras's strides=None is
 * pool_size: pass it), padding NNTK_PADDING_VALID or NNTK_PADDING_SAME. NULL on
 * error (see NNTKLastError). */
NNTK_API NNTKMaxPool1dConfig *NNTKMaxPool1dConfigCreate(int64_t input_dim, int64_t pool_size,
                                                        int64_t strides, int32_t padding);
NNTK_API void NNTKMaxPool1dConfigDestroy(NNTKMaxPool1dConfig *config);

NNTK_API NNTKMaxPool1d *NNTKMaxPool1dCreateForInference(const NNTKMaxPool1dConfig *config);
/* training_config may be NULL (defaults). */
NNTK_API NNTKMaxPool1d *NNTKMaxPool1dCreateForTraining(const NNTKMaxPool1dConfig *config,
                                                       const NNTKTrainingConfig *training_config);
NNTK_API void NNTKMaxPool1dDestroy(NNTKMaxPool1d *filter);

/* No weights: *weights = NULL, *count = 0. */
NNTK_API NNTKStatus NNTKMaxPool1dGetWeights(NNTKMaxPool1d *filter, float **weights, int64_t *count);

/* For an input (batch, L, C): *out_steps = O, *out_features = C. */
NNTK_API NNTKStatus NNTKMaxPool1dOutputShape(const NNTKMaxPool1d *filter, int64_t batch,
                                             int64_t steps, int64_t *out_steps,
                                             int64_t *out_features);

/* in (batch, L, C) -> out (batch, O, C). */
NNTK_API NNTKStatus NNTKMaxPool1dApplyInference(NNTKMaxPool1d *filter, int64_t batch, int64_t steps,
                                                const float *in, float *out);
NNTK_API NNTKStatus NNTKMaxPool1dApplyTrainingBatch(NNTKMaxPool1d *filter, int64_t batch,
                                                    int64_t steps, const float *in, float *out);

NNTK_API NNTKMaxPool1dGradient *NNTKMaxPool1dGradientCreate(const NNTKMaxPool1d *filter);
NNTK_API void NNTKMaxPool1dGradientDestroy(NNTKMaxPool1dGradient *gradient);
/* No weights: *weights = NULL, *count = 0. */
NNTK_API NNTKStatus NNTKMaxPool1dGradientGetWeights(NNTKMaxPool1dGradient *gradient,
                                                    float **weights, int64_t *count);

/* d_out (batch, O, C) of the last training batch -> d_in (batch, L, C); d_in may
 * be NULL (there are no weight gradients: nothing is computed). */
NNTK_API NNTKStatus NNTKMaxPool1dCalculateGradient(NNTKMaxPool1d *filter,
                                                   NNTKMaxPool1dGradient *gradient,
                                                   const float *d_out, float *d_in);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_MAX_POOL1D_H */
