/* The layer description: every layer is one NNTKLayerType value (its config
 * fields, its weight blocks, its ops), and every layer's handles are handles
 * of the generic layer machinery (src/core/layer.c). The typed functions of
 * each layer's header (NNTKDenseCreateForTraining, ...) are thin wrappers over
 * it, so NNTKDense and NNTKLayer handles are the same objects under distinct
 * C types.
 *
 * This header holds the types of the description, the functions that query it
 * and the generic handle functions over every layer type (the Python binding
 * uses only these). */
#ifndef NNTK_LAYER_H
#define NNTK_LAYER_H

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One layer's description (constant, owned by the library). */
typedef struct NNTKLayerType NNTKLayerType;
/* A validated configuration of some layer type. */
typedef struct NNTKLayerConfig NNTKLayerConfig;
/* A layer handle and its weight-gradient handle. */
typedef struct NNTKLayer NNTKLayer;
typedef struct NNTKLayerGradient NNTKLayerGradient;

/* What a config field holds. Every value travels as a double in the generic
 * API; INT fields are whole numbers in [min, max] (min 0: 0 is tf.keras's None,
 * the default, e.g. a pooling's strides=None), BOOL 0 or 1, ENUM an index into
 * the field's value names. */
typedef enum NNTKFieldKind {
    NNTK_FIELD_INT = 0,
    NNTK_FIELD_BOOL = 1,
    NNTK_FIELD_ENUM = 2,
    NNTK_FIELD_FLOAT = 3
} NNTKFieldKind;

/* How a forward pass runs. TRAINING and FROZEN keep what the gradient needs
 * (training handles only); FROZEN computes as INFERENCE does (moving
 * statistics: Keras training=False inside a training step), and is TRAINING
 * for a layer whose forward pass does not depend on the flag. */
typedef enum NNTKApplyMode {
    NNTK_APPLY_INFERENCE = 0,
    NNTK_APPLY_TRAINING = 1,
    NNTK_APPLY_FROZEN = 2
} NNTKApplyMode;


/* --- The description, queried (src/core/layer_api.c) ---------------------------------
 * Layer types are numbered 0 .. count-1 (`type`); their fields 0 .. field_count-1
 * in the order of the values of NNTKLayerConfigCreateFromValues. Every string
 * returned is constant, owned by the library. Nothing is written on error. */

/* Largest rank of a weight block, and most states of a layer (a Bidirectional
 * LSTM has 4: h, c forward and backward). */
#define NNTK_MAX_WEIGHT_RANK 3
#define NNTK_MAX_STATES 4

/* *count = the number of layer types. */
NNTK_API NNTKStatus NNTKLayerTypeCount(int64_t *count);
/* Layer type `type`: *name its typed API's infix ("GRU": NNTKGRUCreateForTraining
 * ...), *keras_name the tf.keras class ("GRU", "TimeDistributed(Dense)"),
 * *field_count its config fields, *has_states 1 when it has states (recurrent:
 * NNTKLayerConfigStates gives them for a config), *wraps 1 when its config holds an inner layer's
 * config (made by its own typed function, e.g. NNTKBidirectionalConfigCreateFor;
 * NNTKLayerConfigCreateFromValues refuses it), *has_frozen 1 when
 * NNTK_APPLY_FROZEN differs from NNTK_APPLY_TRAINING (BatchNorm: moving
 * statistics; such a layer keeps its inference-mode batch for the gradient). */
NNTK_API NNTKStatus NNTKLayerTypeDescribe(int32_t type, const char **name, const char **keras_name,
                                          int64_t *field_count, int64_t *has_states,
                                          int64_t *wraps, int64_t *has_frozen);
/* *count = how many of tf.keras's constructor's leading arguments are fields of
 * layer type `type`, in the order of its fields (input_dim aside; a wrapper's
 * after its wrapped layer): Keras's next argument is one the layer does not have
 * (Dense: 3, units, activation and use_bias, Keras's 4th being kernel_initializer;
 * BatchNormalization: 0, Keras's first being axis). */
NNTK_API NNTKStatus NNTKLayerTypeKerasPositional(int32_t type, int64_t *count);
/* Field `field` of layer type `type`: *name its tf.keras argument name, *kind an
 * NNTKFieldKind, *default_value its default (NaN: required, no default),
 * [*min, *max] its range (*min_exclusive 1: value > *min), *enum_count the
 * number of value names of an ENUM field (0 otherwise). */
NNTK_API NNTKStatus NNTKLayerTypeField(int32_t type, int32_t field, const char **name,
                                       int64_t *kind, double *default_value, double *min,
                                       double *max, int64_t *min_exclusive, int64_t *enum_count);
/* *name = the name of value `value` of ENUM field `field` ("relu", "same", ...). */
NNTK_API NNTKStatus NNTKLayerTypeFieldEnumName(int32_t type, int32_t field, int32_t value,
                                               const char **name);

/* A config of layer type `type` from its field values (values[0 .. count),
 * count = field_count; INT, BOOL and ENUM values whole numbers), validated as
 * the typed ConfigCreate validates. Destroy with NNTKLayerConfigDestroy (or the
 * type's typed ConfigDestroy). NULL on error (see NNTKLastError). */
NNTK_API NNTKLayerConfig *NNTKLayerConfigCreateFromValues(int32_t type, const double *values,
                                                          int64_t count);
/* Destroys a config of any layer type (NULL and foreign handles are ignored). */
NNTK_API void NNTKLayerConfigDestroy(NNTKLayerConfig *config);
/* *count = the number of weight blocks of `config` (tf.keras get_weights()). */
NNTK_API NNTKStatus NNTKLayerConfigWeightCount(const NNTKLayerConfig *config, int64_t *count);
/* Weight block `block` of `config`: *name its tf.keras weight name ("kernel",
 * "moving_mean", ...), *initializer its tf.keras initial value ("glorot_uniform",
 * "orthogonal", "zeros", "ones", "unit_forget_bias"), *rank and shape[0 .. rank)
 * (NNTK_MAX_WEIGHT_RANK entries at most), *trainable 1 when it gets a gradient. */
NNTK_API NNTKStatus NNTKLayerConfigWeightBlock(const NNTKLayerConfig *config, int32_t block,
                                               const char **name, const char **initializer,
                                               int64_t *rank, int64_t *shape,
                                               int64_t *trainable);
/* *count = the number of states of `config` (0 for a layer without states),
 * widths[0 .. count) their widths (NNTK_MAX_STATES entries at most): a state
 * buffer holds them one after the other, each (batch, width). */
NNTK_API NNTKStatus NNTKLayerConfigStates(const NNTKLayerConfig *config, int64_t *count,
                                          int64_t *widths);
/* The ranks tf.keras gives the layer of `config`: *sequence_input 1 when it takes
 * (batch, steps, features) input only (else (batch, features) too), *drops_steps
 * 1 when a (batch, steps, features) input gives a (batch, features) output (its
 * out_steps is 1), else 0 (the output has the input's rank). */
NNTK_API NNTKStatus NNTKLayerConfigRanks(const NNTKLayerConfig *config, int64_t *sequence_input,
                                         int64_t *drops_steps);

/* --- The generic handle functions: any layer type's handles (the typed
 * functions of each header are the same functions for one type). */
/* training_config may be NULL (defaults). */
NNTK_API NNTKLayer *NNTKLayerCreateForTraining(const NNTKLayerConfig *config,
                                               const NNTKTrainingConfig *training_config);
NNTK_API NNTKLayer *NNTKLayerCreateForInference(const NNTKLayerConfig *config);
NNTK_API void NNTKLayerDestroy(NNTKLayer *filter);
/* *weights = the weight block (read and write), *count its floats. */
NNTK_API NNTKStatus NNTKLayerGetWeights(NNTKLayer *filter, float **weights, int64_t *count);
NNTK_API NNTKStatus NNTKLayerOutputShape(const NNTKLayer *filter, int64_t batch, int64_t steps,
                                         int64_t *out_steps, int64_t *out_features);
/* in (batch, steps, input features) -> out (batch, out_steps, out_features) in
 * `mode` (an NNTKApplyMode). initial_state may be NULL (zeros) and final_state
 * may be NULL (not wanted); both are state buffers (NNTKLayerConfigStates),
 * ignored by a layer without states. */
NNTK_API NNTKStatus NNTKLayerApply(NNTKLayer *filter, NNTKApplyMode mode, int64_t batch,
                                   int64_t steps, const float *in, const float *initial_state,
                                   float *out, float *final_state);
NNTK_API NNTKLayerGradient *NNTKLayerGradientCreate(const NNTKLayer *filter);
NNTK_API void NNTKLayerGradientDestroy(NNTKLayerGradient *gradient);
NNTK_API NNTKStatus NNTKLayerGradientGetWeights(NNTKLayerGradient *gradient, float **weights,
                                                int64_t *count);
/* The gradient of the last TRAINING or FROZEN batch for d_out: the weight
 * gradients into `gradient`, and d_in unless it is NULL. d_final_state may be
 * NULL (zeros); d_initial_state may be NULL (not wanted). */
NNTK_API NNTKStatus NNTKLayerCalculateGradient(NNTKLayer *filter, NNTKLayerGradient *gradient,
                                               const float *d_out, const float *d_final_state,
                                               float *d_in, float *d_initial_state);

/* --- Streaming a chain of layers (src/core/chain.c) --------------------------------------
 * A chain runs layers one after the other on one chunk of a sequence in one
 * call, in inference mode, carrying the states of its layers with states from
 * call to call through the caller's state buffers: what NNTKLayerApply on each
 * layer in turn gives (each layer's final state its next initial state), bit
 * for bit, without a buffer per layer on the caller's side.
 *
 *   NNTKLayerChain *chain = NNTKLayerChainCreate(conv, 1, 5);  // chunks up to 1 x 5 steps
 *   NNTKLayerChainAppend(chain, norm); ... NNTKLayerChainAppend(chain, head);
 *   NNTKLayerChainDescribe(chain, &in_features, &out_features, &state_width);
 *   // states: 2 buffers of state_width floats per batch row, zeroed (or NULL: zeros)
 *   for each frame: NNTKLayerChainStream(chain, 1, 5, window, states[i % 2], y, states[(i + 1) % 2]);
 *
 * Which layers stream. Fed chunk by chunk, a chain gives the whole sequence's
 * output bit for bit when every layer is one of:
 *   - a layer whose output step t depends on input step t alone (Dense,
 *     TimeDistributedDense, Activation, BatchNorm (moving statistics),
 *     LayerNorm, a Conv1d or DepthwiseConv1d with kernel_size 1 and strides 1);
 *   - a layer with states (SimpleRNN, GRU, LSTM): carried in the state buffer;
 *   - before the first layer with states only: a Conv1d or DepthwiseConv1d
 *     with padding valid, whose output steps need windows of input steps: each
 *     chunk must hold its windows whole (for one output step per call, the
 *     kernel's k_eff newest input frames), which the caller keeps.
 * Append refuses every other layer (padding at the chunk's edges, a pooling
 * or Bidirectional: not the whole sequence's output) naming it and why.
 *
 * The chain borrows its layers: they must outlive it, and a layer may also be
 * used on its own between stream calls (its weights edited, trained). Create
 * and Append reserve every buffer a call needs for chunks of up to max_batch x
 * max_steps input steps; Stream allocates nothing (a larger chunk is refused
 * naming batch or steps). One call at a time per chain (docs/DESIGN.md §3):
 * Stream refuses a concurrent call on the chain with NNTK_ERROR_INVALID_STATE
 * before writing anything, and each layer refuses a concurrent call on itself
 * (the same layer used elsewhere at the same moment): that refusal comes when
 * the chain reaches the layer, and final_states may then hold the new states
 * of the layers before it (the chunk must be streamed again from
 * initial_states). */
typedef struct NNTKLayerChain NNTKLayerChain;

/* A chain of one layer, `first` (any layer handle, inference or training;
 * borrowed), for chunks of up to max_batch >= 1 sequences of up to
 * max_steps >= 1 steps. NULL on error. */
NNTK_API NNTKLayerChain *NNTKLayerChainCreate(NNTKLayer *layer, int64_t max_batch,
                                              int64_t max_steps);
/* NULL-safe; the layers are not destroyed (they are the caller's). */
NNTK_API void NNTKLayerChainDestroy(NNTKLayerChain *chain);
/* Appends `layer` (borrowed) at the end of the chain: it must take the
 * features the chain gives (its input_dim), a (batch, features) input when the
 * chain's last layer drops the time axis, and stream (see above). On error the
 * chain is unchanged. */
NNTK_API NNTKStatus NNTKLayerChainAppend(NNTKLayerChain *chain, NNTKLayer *layer);
/* *layer_count = the layers in the chain; *input_features = the first layer's
 * input features; *output_features = the last layer's output features;
 * *state_width = the floats of the state buffer per sequence of the batch (0:
 * no layer has states): a state buffer holds batch * state_width floats, the
 * state buffers (NNTKLayerConfigStates) of the layers with states in chain
 * order, each (states, batch, width). */
NNTK_API NNTKStatus NNTKLayerChainDescribe(const NNTKLayerChain *chain, int64_t *layer_count,
                                           int64_t *input_features, int64_t *output_features,
                                           int64_t *state_width);
/* The output's shape for a chunk of (batch, steps): *out_steps (1 when a layer
 * drops the time axis) and *out_features. Checks the chunk as Stream does. */
NNTK_API NNTKStatus NNTKLayerChainOutputShape(const NNTKLayerChain *chain, int64_t batch,
                                              int64_t steps, int64_t *out_steps,
                                              int64_t *out_features);
/* Inference on one chunk: in (batch, steps, input_features) -> out (batch,
 * out_steps, output_features) (NNTKLayerChainOutputShape), from the states of
 * the sequence so far to the states the next chunk starts from.
 * initial_states (batch * state_width floats, see NNTKLayerChainDescribe) may
 * be NULL (zeros: a sequence's start); final_states (the same layout) may be
 * NULL (not wanted). in, out, initial_states and final_states must not
 * overlap (alternate two state buffers). A chain without states ignores both.
 * Allocates nothing. */
NNTK_API NNTKStatus NNTKLayerChainStream(NNTKLayerChain *chain, int64_t batch, int64_t steps,
                                         const float *in, const float *initial_states, float *out,
                                         float *final_states);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_LAYER_H */
