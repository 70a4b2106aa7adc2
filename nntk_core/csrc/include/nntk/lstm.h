/* LSTM: tf.keras LSTM (docs/KERAS_SEMANTICS.md §3). Gate order i (input),
 * f (forget), c (cell candidate), o (output); σ = recurrent_activation,
 * act = activation.
 *
 *   z = (x_t · kernel + h_{t-1} · recurrent_kernel) + bias     (bias added last)
 *   i = σ(z_i), f = σ(z_f), g = act(z_c), o = σ(z_o)
 *   c_t = f ⊙ c_{t-1} + i ⊙ g,   h_t = o ⊙ act(c_t)
 *
 * Input (B, T, D) float32 row-major. Output (the h sequence):
 * return_sequences ? (B, T, U) : (B, U) (OutputShape reports out_steps = 1 for
 * the latter). With go_backwards the inputs are consumed x_{T-1}, ..., x_0 and
 * the output sequence is in that processing order (not reversed back), as Keras.
 * Weights: one contiguous block in tf.keras get_weights() order, columns
 * [i | f | c | o] in every tensor:
 *   kernel (D, 4U), recurrent_kernel (U, 4U), then bias (4U,) when use_bias.
 *
 * State: (2, B, U): h then c (Keras's [h, c] order). ApplyInference /
 * ApplyTrainingBatch always start from h_0 = c_0 = 0. The *WithState variants
 * take an initial state (NULL = zeros) and return the final state. Streaming:
 * calling ApplyInferenceWithState chunk by chunk, passing the previous chunk's
 * final_state as initial_state, reproduces the whole-sequence call bit for bit
 * (every step runs the same operations on the same shapes). With go_backwards
 * feed the last chunk first.
 *
 * Gradients: NNTKLSTMCalculateGradient overwrites the gradient buffers with the
 * gradients of the last NNTKLSTMApplyTrainingBatch(WithState), summed over the
 * batch: exactly what tf.GradientTape.gradient(y, [x] + weights,
 * output_gradients=d_out) returns (full BPTT; weight gradients accumulated in
 * reverse processing order). */
#ifndef NNTK_LSTM_H
#define NNTK_LSTM_H

#include "nntk/layer_functions.h"
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* LSTM's standard and *WithState functions (nntk/layer_functions.h): OutputShape
 * gives out_steps = return_sequences ? steps : 1, out_features = U; Apply*: in
 * (batch, steps, D) -> out (batch, steps, U) or (batch, U); the plain Apply
 * functions start from h_0 = c_0 = 0; the state buffers (initial_state,
 * final_state, d_final_state, d_initial_state) are (2, batch, U), h then c. */
NNTK_DECLARE_STATEFUL_LAYER(LSTM)

/* input_dim D >= 1, units U >= 1, activation and recurrent_activation
 * NNTKActivationKind values; use_bias, return_sequences, go_backwards 0 or 1.
 * NULL on error (see NNTKLastError). */
NNTK_API NNTKLSTMConfig *NNTKLSTMConfigCreate(int64_t input_dim, int64_t units,
                                              int32_t activation, int32_t recurrent_activation,
                                              int32_t use_bias, int32_t return_sequences,
                                              int32_t go_backwards);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_LSTM_H */
