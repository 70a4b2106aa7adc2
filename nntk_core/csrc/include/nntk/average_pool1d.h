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
#include "nntk/layer_functions.h"
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* AveragePool1d's standard functions (nntk/layer_functions.h): OutputShape for
 * an input (batch, L, C) gives out_steps = O, out_features = C; Apply*: in
 * (batch, L, C) -> out (batch, O, C). No weights: GetWeights and
 * GradientGetWeights give NULL and 0; CalculateGradient: d_out (batch, O, C) ->
 * d_in (batch, L, C) (nothing is computed when d_in is NULL). */
NNTK_DECLARE_LAYER(AveragePool1d)

/* input_dim C >= 1, pool_size >= 1, strides >= 1 (tf.keras's strides=None is
 * pool_size: pass it), padding NNTK_PADDING_VALID or NNTK_PADDING_SAME. NULL on
 * error (see NNTKLastError). */
NNTK_API NNTKAveragePool1dConfig *NNTKAveragePool1dConfigCreate(int64_t input_dim, int64_t pool_size,
                                                        int64_t strides, int32_t padding);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_AVERAGE_POOL1D_H */
