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

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NNTKRNNConfig NNTKRNNConfig;
typedef struct NNTKRNN NNTKRNN;
typedef struct NNTKRNNGradient NNTKRNNGradient;

/* input_dim D >= 1, units U >= 1, activation a NNTKActivationKind; use_bias,
 * return_sequences, go_backwards 0 or 1. NULL on error (see NNTKLastError). */
NNTK_API NNTKRNNConfig *NNTKRNNConfigCreate(int64_t input_dim, int64_t units, int32_t activation,
                                            int32_t use_bias, int32_t return_sequences,
                                            int32_t go_backwards);
NNTK_API void NNTKRNNConfigDestroy(NNTKRNNConfig *config);

/* Weights start at zero; fill them through NNTKRNNGetWeights. */
NNTK_API NNTKRNN *NNTKRNNCreateForInference(const NNTKRNNConfig *config);
/* training_config may be NULL (defaults). */
NNTK_API NNTKRNN *NNTKRNNCreateForTraining(const NNTKRNNConfig *config,
                                           const NNTKTrainingConfig *training_config);
NNTK_API void NNTKRNNDestroy(NNTKRNN *filter);

/* *weights = the layer's weight block (read and write), *count = its length. */
NNTK_API NNTKStatus NNTKRNNGetWeights(NNTKRNN *filter, float **weights, int64_t *count);

/* For an input (batch, steps, D): *out_steps = return_sequences ? steps : 1,
 * *out_features = U. */
NNTK_API NNTKStatus NNTKRNNOutputShape(const NNTKRNN *filter, int64_t batch, int64_t steps,
                                       int64_t *out_steps, int64_t *out_features);

/* in (batch, steps, D) -> out (batch, steps, U) or (batch, U); from h_0 = 0. */
NNTK_API NNTKStatus NNTKRNNApplyInference(NNTKRNN *filter, int64_t batch, int64_t steps,
                                          const float *in, float *out);
/* As inference, and keeps what the gradient needs. Training handles only. */
NNTK_API NNTKStatus NNTKRNNApplyTrainingBatch(NNTKRNN *filter, int64_t batch, int64_t steps,
                                              const float *in, float *out);

/* As above, from initial_state (batch, U) (NULL = zeros); writes the final
 * state h (batch, U) to final_state unless it is NULL. */
NNTK_API NNTKStatus NNTKRNNApplyInferenceWithState(NNTKRNN *filter, int64_t batch, int64_t steps,
                                                   const float *in, const float *initial_state,
                                                   float *out, float *final_state);
NNTK_API NNTKStatus NNTKRNNApplyTrainingBatchWithState(NNTKRNN *filter, int64_t batch,
                                                       int64_t steps, const float *in,
                                                       const float *initial_state, float *out,
                                                       float *final_state);

NNTK_API NNTKRNNGradient *NNTKRNNGradientCreate(const NNTKRNN *filter);
NNTK_API void NNTKRNNGradientDestroy(NNTKRNNGradient *gradient);
/* *weights = the weight-gradient block (same layout as the weights). */
NNTK_API NNTKStatus NNTKRNNGradientGetWeights(NNTKRNNGradient *gradient, float **weights,
                                              int64_t *count);

/* d_out (shape of the last training output) -> the weight gradients in
 * `gradient`, and d_in (batch, steps, D) unless d_in is NULL. */
NNTK_API NNTKStatus NNTKRNNCalculateGradient(NNTKRNN *filter, NNTKRNNGradient *gradient,
                                             const float *d_out, float *d_in);
/* As above, plus: d_final_state (batch, U), the upstream gradient of the
 * returned final state (NULL = zeros; Keras return_state=True), and
 * d_initial_state (batch, U), the gradient of the initial state, unless NULL. */
NNTK_API NNTKStatus NNTKRNNCalculateGradientWithState(NNTKRNN *filter, NNTKRNNGradient *gradient,
                                                      const float *d_out,
                                                      const float *d_final_state, float *d_in,
                                                      float *d_initial_state);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_RNN_H */
