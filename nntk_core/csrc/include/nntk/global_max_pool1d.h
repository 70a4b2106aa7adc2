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

#include "nntk/layer_functions.h"
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GlobalMaxPool1d's standard functions (nntk/layer_functions.h): OutputShape
 * gives out_steps = 1, out_features = C; Apply*: in (batch, steps, C) -> out
 * (batch, C). No weights: GetWeights and GradientGetWeights give NULL and 0;
 * CalculateGradient: d_out (batch, C) -> d_in (batch, steps, C) (nothing is
 * computed when d_in is NULL). */
NNTK_DECLARE_LAYER(GlobalMaxPool1d)

/* input_dim C >= 1 (the channels); keepdims 0 or 1 (tf.keras keepdims: only
 * the output's rank differs). NULL on error (see NNTKLastError). */
NNTK_API NNTKGlobalMaxPool1dConfig *NNTKGlobalMaxPool1dConfigCreate(int64_t input_dim,
                                                                            int32_t keepdims);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_GLOBAL_MAX_POOL1D_H */
