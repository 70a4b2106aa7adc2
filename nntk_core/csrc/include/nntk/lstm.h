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

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NNTKLSTMConfig NNTKLSTMConfig;
typedef struct NNTKLSTM NNTKLSTM;
typedef struct NNTKLSTMGradient NNTKLSTMGradient;

/* input_dim D >= 1, units U >= 1, activation and recurrent_activation
 * NNTKActivationKind values; use_bias, return_sequences, go_backwards 0 or 1.
 * NULL on error (see NNTKLastError). */
NNTK_API NNTKLSTMConfig *NNTKLSTMConfigCreate(int64_t input_dim, int64_t units,
                                              int32_t activation, int32_t recurrent_activation,
                                              int32_t use_bias, int32_t return_sequences,
                                              int32_t go_backwards);
NNTK_API void NNTKLSTMConfigDestroy(NNTKLSTMConfig *config);

/* Weights start at zero; fill them through NNTKLSTMGetWeights. */
NNTK_API NNTKLSTM *NNTKLSTMCreateForInference(const NNTKLSTMConfig *config);
/* training_config may be NULL (defaults). */
NNTK_API NNTKLSTM *NNTKLSTMCreateForTraining(const NNTKLSTMConfig *config,
                                           const NNTKTrainingConfig *training_config);
NNTK_API void NNTKLSTMDestroy(NNTKLSTM *filter);

/* *weights = the layer's weight block (read and write), *count = its length. */
NNTK_API NNTKStatus NNTKLSTMGetWeights(NNTKLSTM *filter, float **weights, int64_t *count);

/* For an input (batch, steps, D): *out_steps = return_sequences ? steps : 1,
 * *out_features = U. */
NNTK_API NNTKStatus NNTKLSTMOutputShape(const NNTKLSTM *filter, int64_t batch, int64_t steps,
                                       int64_t *out_steps, int64_t *out_features);

/* in (batch, steps, D) -> out (batch, steps, U) or (batch, U); from h_0 = c_0 = 0. */
NNTK_API NNTKStatus NNTKLSTMApplyInference(NNTKLSTM *filter, int64_t batch, int64_t steps,
                                          const float *in, float *out);
/* As inference, and keeps what the gradient needs. Training handles only. */
NNTK_API NNTKStatus NNTKLSTMApplyTrainingBatch(NNTKLSTM *filter, int64_t batch, int64_t steps,
                                              const float *in, float *out);

/* As above, from initial_state (2, batch, U) (NULL = zeros); writes the final
 * state (2, batch, U), h then c, to final_state unless it is NULL. */
NNTK_API NNTKStatus NNTKLSTMApplyInferenceWithState(NNTKLSTM *filter, int64_t batch, int64_t steps,
                                                   const float *in, const float *initial_state,
                                                   float *out, float *final_state);
NNTK_API NNTKStatus NNTKLSTMApplyTrainingBatchWithState(NNTKLSTM *filter, int64_t batch,
                                                       int64_t steps, const float *in,
                                                       const float *initial_state, float *out,
                                                       float *final_state);

NNTK_API NNTKLSTMGradient *NNTKLSTMGradientCreate(const NNTKLSTM *filter);
NNTK_API void NNTKLSTMGradientDestroy(NNTKLSTMGradient *gradient);
/* *weights = the weight-gradient block (same layout as the weights). */
NNTK_API NNTKStatus NNTKLSTMGradientGetWeights(NNTKLSTMGradient *gradient, float **weights,
                                              int64_t *count);

/* d_out (shape of the last training output) -> the weight gradients in
 * `gradient`, and d_in (batch, steps, D) unless d_in is NULL. */
NNTK_API NNTKStatus NNTKLSTMCalculateGradient(NNTKLSTM *filter, NNTKLSTMGradient *gradient,
                                             const float *d_out, float *d_in);
/* As above, plus: d_final_state (2, batch, U), the upstream gradient of the
 * returned final state (NULL = zeros; Keras return_state=True), and
 * d_initial_state (2, batch, U), the gradient of the initial state, unless NULL. */
NNTK_API NNTKStatus NNTKLSTMCalculateGradientWithState(NNTKLSTM *filter, NNTKLSTMGradient *gradient,
                                                      const float *d_out,
                                                      const float *d_final_state, float *d_in,
                                                      float *d_initial_state);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_LSTM_H */
