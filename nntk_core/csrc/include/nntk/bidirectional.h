/* Bidirectional: tf.keras Bidirectional(RNN | GRU | LSTM) (docs/KERAS_SEMANTICS.md §4).
 *
 * Two instances of the wrapped layer run on the same input: the forward one
 * with the given go_backwards, the backward one with go_backwards negated.
 * Implemented over two handles of the wrapped layer (nntk/rnn.h, gru.h,
 * lstm.h), driven through the generic layer functions. With return_sequences the backward instance's output
 * sequence is reversed back along time before merging, so at position t it is
 * its state after consuming x_{T-1} ... x_t (Keras reverses it whatever
 * go_backwards is). Without return_sequences the two final outputs are merged.
 *
 * Input (B, T, D) float32 row-major. Output, T' = return_sequences ? T : 1:
 *   concat: (B, T', 2U)   [forward | backward] on the last axis
 *   sum, mul, ave: (B, T', U)   f + b, f ⊙ b, (f + b) / 2
 *   none: (2, B, T', U)   the forward output, then the backward output
 *         (Keras returns the list [forward, backward]); the same number of
 *         floats as concat, so OutputShape reports out_features = 2U.
 * Weights: the forward layer's block, then the backward layer's block, each
 * in the inner layer's get_weights() order (Keras Bidirectional order).
 *
 * State: (2, S, B, U), the forward layer's state, then the backward layer's;
 * S = 1 (h) for RNN and GRU, 2 (h, c) for LSTM. This is Keras's order of
 * initial_state and of the returned states [fwd states..., bwd states...].
 * The plain Apply functions start both directions from zeros.
 *
 * Gradients: NNTKBidirectionalCalculateGradient overwrites the gradient
 * buffers with the gradients of the last NNTKBidirectionalApplyTrainingBatch,
 * summed over the batch: exactly what tf.GradientTape.gradient(y, [x] +
 * weights, output_gradients=d_out) returns; dx = dx_forward + dx_backward. */
#ifndef NNTK_BIDIRECTIONAL_H
#define NNTK_BIDIRECTIONAL_H

#include "nntk/layer.h"
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The layer a Bidirectional wraps. */
typedef enum NNTKRecurrentKind {
    NNTK_RECURRENT_RNN = 0, /* SimpleRNN (nntk/rnn.h) */
    NNTK_RECURRENT_GRU = 1,
    NNTK_RECURRENT_LSTM = 2,
} NNTKRecurrentKind;

/* How the two directions are combined (Keras merge_mode). */
typedef enum NNTKMergeMode {
    NNTK_MERGE_CONCAT = 0,
    NNTK_MERGE_SUM = 1,
    NNTK_MERGE_MUL = 2,
    NNTK_MERGE_AVE = 3,
    NNTK_MERGE_NONE = 4, /* both outputs, stacked: (2, B, T', U) */
} NNTKMergeMode;

typedef struct NNTKBidirectionalConfig NNTKBidirectionalConfig;
typedef struct NNTKBidirectional NNTKBidirectional;
typedef struct NNTKBidirectionalGradient NNTKBidirectionalGradient;

/* layer a NNTKRecurrentKind; the next arguments configure the wrapped layer
 * exactly as its own ConfigCreate does (recurrent_activation is ignored for
 * RNN; reset_after must be 0 unless layer is GRU); merge_mode a
 * NNTKMergeMode. NULL on error (see NNTKLastError). */
NNTK_API NNTKBidirectionalConfig *NNTKBidirectionalConfigCreate(
    int32_t layer, int64_t input_dim, int64_t units, int32_t activation,
    int32_t recurrent_activation, int32_t use_bias, int32_t reset_after,
    int32_t return_sequences, int32_t go_backwards, int32_t merge_mode);
/* Bidirectional around `inner`, a config of any layer type with states and a
 * go_backwards field (RNN, GRU, LSTM; made by its ConfigCreate or by
 * NNTKLayerConfigCreateFromValues; copied, so the caller still owns it);
 * merge_mode a NNTKMergeMode. NULL on error (see NNTKLastError). */
NNTK_API NNTKBidirectionalConfig *NNTKBidirectionalConfigCreateFor(const NNTKLayerConfig *inner,
                                                                   int32_t merge_mode);
NNTK_API void NNTKBidirectionalConfigDestroy(NNTKBidirectionalConfig *config);

/* Weights start at zero; fill them through NNTKBidirectionalGetWeights. */
NNTK_API NNTKBidirectional *NNTKBidirectionalCreateForInference(
    const NNTKBidirectionalConfig *config);
/* training_config may be NULL (defaults). */
NNTK_API NNTKBidirectional *NNTKBidirectionalCreateForTraining(
    const NNTKBidirectionalConfig *config, const NNTKTrainingConfig *training_config);
NNTK_API void NNTKBidirectionalDestroy(NNTKBidirectional *filter);

/* *weights = the weight block (forward, then backward; read and write). */
NNTK_API NNTKStatus NNTKBidirectionalGetWeights(NNTKBidirectional *filter, float **weights,
                                                int64_t *count);

/* *out_steps = return_sequences ? steps : 1; *out_features = 2U for concat
 * and none (see the layout above), U otherwise. */
NNTK_API NNTKStatus NNTKBidirectionalOutputShape(const NNTKBidirectional *filter, int64_t batch,
                                                 int64_t steps, int64_t *out_steps,
                                                 int64_t *out_features);

/* in (batch, steps, D) -> out (layout above); both directions from zeros. */
NNTK_API NNTKStatus NNTKBidirectionalApplyInference(NNTKBidirectional *filter, int64_t batch,
                                                    int64_t steps, const float *in, float *out);
/* As inference, and keeps what the gradient needs. Training handles only. */
NNTK_API NNTKStatus NNTKBidirectionalApplyTrainingBatch(NNTKBidirectional *filter, int64_t batch,
                                                        int64_t steps, const float *in,
                                                        float *out);

/* As above, from initial_state (2, S, batch, U) (NULL = zeros); writes the
 * final states (2, S, batch, U) to final_state unless it is NULL. */
NNTK_API NNTKStatus NNTKBidirectionalApplyInferenceWithState(NNTKBidirectional *filter,
                                                             int64_t batch, int64_t steps,
                                                             const float *in,
                                                             const float *initial_state,
                                                             float *out, float *final_state);
NNTK_API NNTKStatus NNTKBidirectionalApplyTrainingBatchWithState(NNTKBidirectional *filter,
                                                                 int64_t batch, int64_t steps,
                                                                 const float *in,
                                                                 const float *initial_state,
                                                                 float *out, float *final_state);

NNTK_API NNTKBidirectionalGradient *NNTKBidirectionalGradientCreate(
    const NNTKBidirectional *filter);
NNTK_API void NNTKBidirectionalGradientDestroy(NNTKBidirectionalGradient *gradient);
/* *weights = the weight-gradient block (same layout as the weights). */
NNTK_API NNTKStatus NNTKBidirectionalGradientGetWeights(NNTKBidirectionalGradient *gradient,
                                                        float **weights, int64_t *count);

/* d_out (the layout of the last training output) -> the weight gradients in
 * `gradient`, and d_in (batch, steps, D) unless d_in is NULL. */
NNTK_API NNTKStatus NNTKBidirectionalCalculateGradient(NNTKBidirectional *filter,
                                                       NNTKBidirectionalGradient *gradient,
                                                       const float *d_out, float *d_in);
/* As above, plus d_final_state (2, S, batch, U), the upstream gradient of the
 * returned states (NULL = zeros), and d_initial_state (2, S, batch, U), the
 * gradient of the initial state, unless NULL. */
NNTK_API NNTKStatus NNTKBidirectionalCalculateGradientWithState(
    NNTKBidirectional *filter, NNTKBidirectionalGradient *gradient, const float *d_out,
    const float *d_final_state, float *d_in, float *d_initial_state);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_BIDIRECTIONAL_H */
