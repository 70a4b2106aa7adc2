/* GRU: tf.keras GRU (docs/KERAS_SEMANTICS.md §2). Gate order z (update), r (reset),
 * h (candidate); σ = recurrent_activation, act = activation.
 *
 * reset_after = 1 (Keras default):
 *   [xz|xr|xh] = x_t · kernel + b_in,   [hz|hr|hh] = h_{t-1} · recurrent_kernel + b_rec
 *   z = σ(xz + hz),  r = σ(xr + hr),  ĥ = act(xh + r ⊙ hh)
 * reset_after = 0:
 *   [xz|xr|xh] = x_t · kernel + b,      [hz|hr] = h_{t-1} · recurrent_kernel[:, :2U]
 *   z = σ(xz + hz),  r = σ(xr + hr),  ĥ = act(xh + (r ⊙ h_{t-1}) · recurrent_kernel[:, 2U:])
 * then h_t = z ⊙ h_{t-1} + (1 - z) ⊙ ĥ.
 *
 * Input (B, T, D) float32 row-major. Output: return_sequences ? (B, T, U) :
 * (B, U) (OutputShape reports out_steps = 1 for the latter). With go_backwards
 * the inputs are consumed x_{T-1}, ..., x_0 and the output sequence is in that
 * processing order (not reversed back), exactly as Keras.
 * Weights: one contiguous block in tf.keras get_weights() order, columns
 * [z | r | h] in every tensor:
 *   kernel (D, 3U), recurrent_kernel (U, 3U), then when use_bias:
 *   reset_after = 1: bias (2, 3U), row 0 the input bias b_in, row 1 the
 *   recurrent bias b_rec; reset_after = 0: bias (3U,).
 *
 * State: h (B, U). ApplyInference / ApplyTrainingBatch always start from
 * h_0 = 0. The *WithState variants take an initial state (NULL = zeros) and
 * return the final state. Streaming: calling ApplyInferenceWithState chunk by
 * chunk, passing the previous chunk's final_state as initial_state,
 * reproduces the whole-sequence call bit for bit (every step runs the same
 * operations on the same shapes). With go_backwards feed the last chunk first.
 *
 * Gradients: NNTKGRUCalculateGradient overwrites the gradient buffers with the
 * gradients of the last NNTKGRUApplyTrainingBatch(WithState), summed over the
 * batch: exactly what tf.GradientTape.gradient(y, [x] + weights,
 * output_gradients=d_out) returns (full BPTT; weight gradients accumulated in
 * reverse processing order). */
#ifndef NNTK_GRU_H
#define NNTK_GRU_H

#include "nntk/layer_functions.h"
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GRU's standard and *WithState functions (nntk/layer_functions.h): OutputShape
 * gives out_steps = return_sequences ? steps : 1, out_features = U; Apply*: in
 * (batch, steps, D) -> out (batch, steps, U) or (batch, U); the plain Apply
 * functions start from h_0 = 0; the state buffers (initial_state, final_state,
 * d_final_state, d_initial_state) are h, (batch, U). */
NNTK_DECLARE_STATEFUL_LAYER(GRU)

/* input_dim D >= 1, units U >= 1, activation and recurrent_activation
 * NNTKActivationKind values; use_bias, reset_after, return_sequences,
 * go_backwards 0 or 1. NULL on error (see NNTKLastError). */
NNTK_API NNTKGRUConfig *NNTKGRUConfigCreate(int64_t input_dim, int64_t units, int32_t activation,
                                            int32_t recurrent_activation, int32_t use_bias,
                                            int32_t reset_after, int32_t return_sequences,
                                            int32_t go_backwards);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_GRU_H */
