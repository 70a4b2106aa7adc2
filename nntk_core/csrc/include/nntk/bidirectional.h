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
#include "nntk/layer_functions.h"
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

/* Bidirectional's standard and *WithState functions (nntk/layer_functions.h):
 * the weights are the forward layer's block, then the backward layer's;
 * OutputShape gives out_steps = return_sequences ? steps : 1, out_features =
 * 2U for concat and none, U otherwise (the layouts above); in (batch, steps, D);
 * the plain Apply functions start both directions from zeros; the state buffers
 * (initial_state, final_state, d_final_state, d_initial_state) are
 * (2, S, batch, U). */
NNTK_DECLARE_STATEFUL_LAYER(Bidirectional)

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

#ifdef __cplusplus
}
#endif

#endif /* NNTK_BIDIRECTIONAL_H */
