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

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NNTKGRUConfig NNTKGRUConfig;
typedef struct NNTKGRU NNTKGRU;
typedef struct NNTKGRUGradient NNTKGRUGradient;

/* input_dim D >= 1, units U >= 1, activation and recurrent_activation
 * NNTKActivationKind values; use_bias, reset_after, return_sequences,
 * go_backwards 0 or 1. NULL on error (see NNTKLastError). */
NNTK_API NNTKGRUConfig *NNTKGRUConfigCreate(int64_t input_dim, int64_t units, int32_t activation,
                                            int32_t recurrent_activation, int32_t use_bias,
                                            int32_t reset_after, int32_t return_sequences,
                                            int32_t go_backwards);
NNTK_API void NNTKGRUConfigDestroy(NNTKGRUConfig *config);

/* Weights start at zero; fill them through NNTKGRUGetWeights. */
NNTK_API NNTKGRU *NNTKGRUCreateForInference(const NNTKGRUConfig *config);
/* training_config may be NULL (defaults). */
NNTK_API NNTKGRU *NNTKGRUCreateForTraining(const NNTKGRUConfig *config,
                                           const NNTKTrainingConfig *training_config);
NNTK_API void NNTKGRUDestroy(NNTKGRU *filter);

/* *weights = the layer's weight block (read and write), *count = its length. */
NNTK_API NNTKStatus NNTKGRUGetWeights(NNTKGRU *filter, float **weights, int64_t *count);

/* For an input (batch, steps, D): *out_steps = return_sequences ? steps : 1,
 * *out_features = U. */
NNTK_API NNTKStatus NNTKGRUOutputShape(const NNTKGRU *filter, int64_t batch, int64_t steps,
                                       int64_t *out_steps, int64_t *out_features);

/* in (batch, steps, D) -> out (batch, steps, U) or (batch, U); from h_0 = 0. */
NNTK_API NNTKStatus NNTKGRUApplyInference(NNTKGRU *filter, int64_t batch, int64_t steps,
                                          const float *in, float *out);
/* As inference, and keeps what the gradient needs. Training handles only. */
NNTK_API NNTKStatus NNTKGRUApplyTrainingBatch(NNTKGRU *filter, int64_t batch, int64_t steps,
                                              const float *in, float *out);

/* As above, from initial_state (batch, U) (NULL = zeros); writes the final
 * state (batch, U) to final_state unless it is NULL. */
NNTK_API NNTKStatus NNTKGRUApplyInferenceWithState(NNTKGRU *filter, int64_t batch, int64_t steps,
                                                   const float *in, const float *initial_state,
                                                   float *out, float *final_state);
NNTK_API NNTKStatus NNTKGRUApplyTrainingBatchWithState(NNTKGRU *filter, int64_t batch,
                                                       int64_t steps, const float *in,
                                                       const float *initial_state, float *out,
                                                       float *final_state);

NNTK_API NNTKGRUGradient *NNTKGRUGradientCreate(const NNTKGRU *filter);
NNTK_API void NNTKGRUGradientDestroy(NNTKGRUGradient *gradient);
/* *weights = the weight-gradient block (same layout as the weights). */
NNTK_API NNTKStatus NNTKGRUGradientGetWeights(NNTKGRUGradient *gradient, float **weights,
                                              int64_t *count);

/* d_out (shape of the last training output) -> the weight gradients in
 * `gradient`, and d_in (batch, steps, D) unless d_in is NULL. */
NNTK_API NNTKStatus NNTKGRUCalculateGradient(NNTKGRU *filter, NNTKGRUGradient *gradient,
                                             const float *d_out, float *d_in);
/* As above, plus: d_final_state (batch, U), the upstream gradient of the
 * returned final state (NULL = zeros; Keras return_state=True), and
 * d_initial_state (batch, U), the gradient of the initial state, unless NULL. */
NNTK_API NNTKStatus NNTKGRUCalculateGradientWithState(NNTKGRU *filter, NNTKGRUGradient *gradient,
                                                      const float *d_out,
                                                      const float *d_final_state, float *d_in,
                                                      float *d_initial_state);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_GRU_H */
