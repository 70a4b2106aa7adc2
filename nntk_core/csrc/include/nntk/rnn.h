/* RNN: tf.keras SimpleRNN (docs/KERAS_SEMANTICS.md §1).
 *
 *   a_t = (x_t · kernel + bias) + h_{t-1} · recurrent_kernel,   h_t = act(a_t)
 *
 * Input (B, T, D) float32 row-major. Output: return_sequences ? (B, T, U) :
 * (B, U) (OutputShape reports out_steps = 1 for the latter). With go_backwards
 * the inputs are consumed x_{T-1}, ..., x_0 and the output sequence is in that
 * processing order (out[:, k] = state after consuming x_{T-1-k}); it is not
 * reversed back, exactly as Keras.
 * Weights: one contiguous block in tf.keras get_weights() order:
 *   kernel (D, U), recurrent_kernel (U, U), then bias (U,) when use_bias.
 *
 * State: the state is h (B, U). ApplyInference / ApplyTrainingBatch always
 * start from h_0 = 0 (no hidden state carried between calls). The *WithState
 * variants take an initial state (NULL = zeros) and return the final state
 * (the state after the last processing step). Streaming: calling
 * ApplyInferenceWithState chunk by chunk, each time passing the previous
 * chunk's final_state as initial_state, reproduces the whole-sequence call
 * bit for bit (every step runs the same operations on the same shapes). With
 * go_backwards the chunks must be fed last chunk first.
 *
 * Gradients: NNTKRNNCalculateGradient overwrites the gradient buffers with the
 * gradients of the last NNTKRNNApplyTrainingBatch(WithState), summed over the
 * batch: exactly what tf.GradientTape.gradient(y, [x] + weights,
 * output_gradients=d_out) returns (full BPTT; weight gradients accumulated in
 * reverse processing order). */
#ifndef NNTK_RNN_H
#define NNTK_RNN_H

#include "nntk/layer_functions.h"
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* RNN's standard and *WithState functions (nntk/layer_functions.h): OutputShape
 * gives out_steps = return_sequences ? steps : 1, out_features = U; Apply*: in
 * (batch, steps, D) -> out (batch, steps, U) or (batch, U); the plain Apply
 * functions start from h_0 = 0; the state buffers (initial_state, final_state,
 * d_final_state, d_initial_state) are h, (batch, U). */
NNTK_DECLARE_STATEFUL_LAYER(RNN)

/* input_dim D >= 1, units U >= 1, activation a NNTKActivationKind; use_bias,
 * return_sequences, go_backwards 0 or 1. NULL on error (see NNTKLastError). */
NNTK_API NNTKRNNConfig *NNTKRNNConfigCreate(int64_t input_dim, int64_t units, int32_t activation,
                                            int32_t use_bias, int32_t return_sequences,
                                            int32_t go_backwards);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_RNN_H */
