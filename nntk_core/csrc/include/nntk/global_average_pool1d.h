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

#include "nntk/layer_functions.h"
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GlobalAveragePool1d's standard functions (nntk/layer_functions.h): OutputShape
 * gives out_steps = 1, out_features = C; Apply*: in (batch, steps, C) -> out
 * (batch, C). No weights: GetWeights and GradientGetWeights give NULL and 0;
 * CalculateGradient: d_out (batch, C) -> d_in (batch, steps, C) (nothing is
 * computed when d_in is NULL). */
NNTK_DECLARE_LAYER(GlobalAveragePool1d)

/* input_dim C >= 1 (the channels); keepdims 0 or 1 (tf.keras keepdims: only
 * the output's rank differs). NULL on error (see NNTKLastError). */
NNTK_API NNTKGlobalAveragePool1dConfig *NNTKGlobalAveragePool1dConfigCreate(int64_t input_dim,
                                                                            int32_t keepdims);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_GLOBAL_AVERAGE_POOL1D_H */
