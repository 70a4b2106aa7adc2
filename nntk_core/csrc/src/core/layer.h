/* The layer type (issue 13 §1): what a layer is, as one constant value per
 * layer, and the machinery every layer shares (core/layer.c). Not part of the
 * public API.
 *
 * A layer file `src/<layer>.c` defines
 *   - its config fields (NNTKLayerField, in the order of its typed
 *     ConfigCreate's parameters) and an optional cross-field check;
 *   - its weight blocks as a function of the config (NNTKWeightBlock, in
 *     tf.keras get_weights() order);
 *   - its ops: output shape (which also checks the input sizes), training
 *     workspace reservation, forward, backward, and optionally init / release
 *     of its private state and, for recurrent layers, the states;
 *   - `const NNTKLayerType nntk_<layer>_type` holding all of it,
 *   - its typed public functions by one NNTK_DEFINE_LAYER line plus its
 *     hand-written ConfigCreate (nntk_layer_config_create on its arguments).
 *
 * core/layer.c then does, once for every layer: config validation from the
 * field table, handles and their tags, weight allocation and the constant
 * initial values ("ones"), capacity reservation from the training config,
 * gradient handles, the argument checks of the standard functions and the
 * bookkeeping of the training batch kept for the gradient. */
#ifndef NNTK_CORE_LAYER_H
#define NNTK_CORE_LAYER_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"
#include "nntk/layer.h"
#include "nntk/layer_functions.h"
#include "nntk/status.h"

#define NNTK_LAYER_MAX_FIELDS 12
#define NNTK_LAYER_MAX_WEIGHTS 8 /* blocks: Bidirectional LSTM has 6 */
#define NNTK_LAYER_MAX_RANK 3
#define NNTK_LAYER_MAX_STATES 4  /* Bidirectional LSTM: h, c forward and backward */

/* A config value: `i` for INT, BOOL and ENUM fields, `f` for FLOAT ones. */
typedef union NNTKLayerValue {
    int64_t i;
    double f;
} NNTKLayerValue;

/* One config field. The shared validation (nntk_layer_config_create) checks
 * INT: 1 <= value <= max (nntk_check_size; min is 1 for every size), or 0
 * when min is 0 (tf.keras's None: NNTK_FIELD_SIZE_OR_NONE);
 * BOOL: 0 or 1; ENUM: through `check` (its own message), else 0 <= value <
 * enum_count; FLOAT: min <= value <= max, or min < value <= max (finite) when
 * min_exclusive. Every message names `arg` (the typed parameter name). */
typedef struct NNTKLayerField {
    const char *name;         /* Keras argument name: "units", "activation", ... */
    const char *arg;          /* the typed ConfigCreate's parameter, for messages (NULL: name) */
    NNTKFieldKind kind;
    double default_value;     /* NAN: required (no default) */
    double min, max;
    int32_t min_exclusive;    /* FLOAT: value must be > min */
    const char *const *enum_names; /* ENUM: the value names, indexed by value */
    int32_t enum_count;
    NNTKStatus (*check)(const char *fn, const char *arg, int32_t value); /* ENUM, optional */
} NNTKLayerField;

/* Field table helpers for the common kinds. */
#define NNTK_FIELD_SIZE(name_) \
    {.name = (name_), .kind = NNTK_FIELD_INT, .default_value = NAN, .min = 1, .max = (double)NNTK_MAX_DIM}
#define NNTK_FIELD_SIZE_DEFAULT(name_, value_)                                                   \
    {.name = (name_), .kind = NNTK_FIELD_INT, .default_value = (value_), .min = 1,                \
     .max = (double)NNTK_MAX_DIM}
/* A size that tf.keras also takes as None (its default: strides=None is the pool
 * size): min 0, and 0 is None, the default; the layer resolves it. */
#define NNTK_FIELD_SIZE_OR_NONE(name_)                                                           \
    {.name = (name_), .kind = NNTK_FIELD_INT, .default_value = 0, .min = 0,                       \
     .max = (double)NNTK_MAX_DIM}
#define NNTK_FIELD_FLAG(name_, value_) \
    {.name = (name_), .kind = NNTK_FIELD_BOOL, .default_value = (value_), .min = 0, .max = 1}
/* default_value: an NNTKActivationKind, or NAN (required). */
#define NNTK_FIELD_ACTIVATION(name_, arg_, value_)                                              \
    {.name = (name_), .arg = (arg_), .kind = NNTK_FIELD_ENUM, .default_value = (value_),         \
     .min = 0, .max = NNTK_ACTIVATION_COUNT_ - 1, .enum_names = nntk_activation_names,           \
     .enum_count = NNTK_ACTIVATION_COUNT_, .check = nntk_check_activation}

/* One weight block: a tensor of tf.keras get_weights(). */
typedef struct NNTKWeightBlock {
    const char *name;        /* Keras weight name: "kernel", "bias", "moving_mean", ... */
    int32_t rank;
    int64_t shape[NNTK_LAYER_MAX_RANK];
    const char *initializer; /* Keras initializer: "glorot_uniform", "orthogonal", "zeros", "ones" */
    int32_t trainable;
} NNTKWeightBlock;

struct NNTKLayerConfig {
    uint32_t tag; /* type->config_tag */
    const NNTKLayerType *type;
    NNTKLayerValue values[NNTK_LAYER_MAX_FIELDS]; /* in field order */
    NNTKLayerConfig *inner; /* a wrapper's inner layer config (owned), else NULL */
};

struct NNTKLayer {
    uint32_t tag; /* type->filter_tag */
    const NNTKLayerType *type;
    /* Set while an Apply or CalculateGradient runs on the handle
     * (nntk_call_enter): a second such call at the same time is refused. It
     * covers the gradient handle too: a gradient is written only by
     * CalculateGradient with the filter it was created for, under this flag. */
    atomic_flag in_call;
    NNTKLayerConfig config; /* a copy, with its own copy of the inner config */
    int32_t training;       /* created for training */
    float *weights;         /* the blocks in order, one contiguous block */
    int64_t weight_count;
    /* The last TRAINING or FROZEN batch, kept for the gradient. */
    NNTKApplyMode kept;     /* NNTK_APPLY_INFERENCE (0): none */
    int64_t batch, steps, out_steps;
    /* The training workspace: the layer's reserve op sizes it (nntk_reserve). */
    float *workspace;
    int64_t workspace_capacity;
    void *state; /* type->state_size bytes, zeroed; the layer's own */
};

struct NNTKLayerGradient {
    uint32_t tag; /* type->gradient_tag */
    const NNTKLayer *filter; /* the filter it was created for */
    float *d_weights;        /* same layout as the weights; NULL when there are none */
    int64_t count;
};

struct NNTKLayerType {
    const char *name;       /* the typed API's infix: "Dense" (NNTKDense...) */
    const char *keras_name; /* "Dense", "TimeDistributed(Dense)", ... */
    uint32_t config_tag, filter_tag, gradient_tag;
    const NNTKLayerField *fields;
    int32_t field_count;
    /* Checks across fields after the per-field checks; NULL: none. */
    NNTKStatus (*check)(const char *fn, const NNTKLayerConfig *config);
    /* Fills blocks[0..n) for a (valid) config and returns n. */
    int32_t (*weights)(const NNTKLayerConfig *config, NNTKWeightBlock *blocks);
    /* The recurrent states: fills widths[0..n) and returns n; NULL: none.
     * A state buffer holds them one after the other, each (batch, width):
     * (S, batch, U) for one layer, (2, S, batch, U) for Bidirectional. */
    int32_t (*states)(const NNTKLayerConfig *config, int64_t *widths);
    int32_t has_frozen; /* has NNTK<Name>ApplyFrozenBatch (BatchNorm) */
    /* Its config holds an inner layer's config (config->inner), made by its own
     * typed function (NNTKBidirectionalConfigCreateFor); the generic
     * NNTKLayerConfigCreateFromValues refuses it. */
    int32_t wraps;
    /* How many of tf.keras's constructor's leading arguments are fields, in the
     * fields' order (input_dim aside; a wrapper's after its wrapped layer): Keras's
     * next argument is one the layer does not have (Dense: 3, units, activation,
     * use_bias, then Keras's kernel_initializer; BatchNorm: 0, Keras's first is
     * axis). The binding takes these positionally, the rest by keyword only. */
    int32_t keras_positional;
    /* A wrapper's config from its own field values and a copy of `inner` (what
     * its typed ConfigCreateFor does, for the generic builders such as the
     * model loader, src/model); NULL for a type that does not wrap. */
    NNTKLayerConfig *(*create_for)(const char *fn, const NNTKLayerConfig *inner,
                                   const NNTKLayerValue *values);
    const void *impl;   /* what a family's shared ops read (recurrent layers: their cell) */
    size_t state_size;  /* bytes of NNTKLayer.state (0: none) */

    /* After the shared create (weights allocated, state zeroed), before the
     * capacity reservation: the layer's own setup; `config` is the original
     * (with its inner config); training_config as given to the create (a
     * wrapper creates its inner layers with it). NULL: none. On failure it
     * records the error; destroy then runs release. */
    NNTKStatus (*init)(const char *fn, NNTKLayer *layer, const NNTKLayerConfig *config,
                       const NNTKTrainingConfig *training_config);
    /* Frees what init allocated in the state (NULL: nothing). */
    void (*release)(NNTKLayer *layer);
    /* Checks an input (batch, steps, input features) (nntk_check_batch with
     * the layer's widest row, and any layer-specific condition) and gives the
     * output's steps and features. */
    NNTKStatus (*output_shape)(const char *fn, const NNTKLayer *layer, int64_t batch, int64_t steps,
                               int64_t *out_steps, int64_t *out_features);
    /* Ensures the training workspace holds what a batch needs (at creation:
     * the training config's capacity with out_steps = steps, an upper bound).
     * NULL: the layer keeps nothing there. */
    NNTKStatus (*reserve)(const char *fn, NNTKLayer *layer, int64_t batch, int64_t steps,
                          int64_t out_steps);
    /* in (batch, steps, D) -> out (batch, out_steps, features). TRAINING and
     * FROZEN keep what backward needs (the workspace is reserved). States (a
     * state buffer, see `states`): initial_state NULL = zeros, final_state
     * NULL = not wanted; both NULL for a layer without states. */
    NNTKStatus (*forward)(const char *fn, NNTKLayer *layer, NNTKApplyMode mode, int64_t batch,
                          int64_t steps, int64_t out_steps, const float *in,
                          const float *initial_state, float *out, float *final_state);
    /* The gradient of the kept batch (layer->kept, batch, steps, out_steps):
     * d_weights (layer->weight_count floats, overwritten), d_in unless NULL;
     * states as forward (d_final_state NULL = zeros, d_initial_state NULL =
     * not wanted). */
    NNTKStatus (*backward)(const char *fn, NNTKLayer *layer, const float *d_out,
                           const float *d_final_state, float *d_in,
                           float *d_initial_state, float *d_weights);

    /* The ranks of the input and output, where they are not the default ((B, D)
     * or (B, T, D) input, output of the input's rank), for the binding:
     * sequence_input 1: tf.keras takes (B, T, D) only; drops_steps (NULL:
     * never) 1 for a config whose (B, T, D) input gives a (B, F) output (the
     * global poolings without keepdims; OutputShape's out_steps is then 1). */
    int32_t sequence_input;
    int32_t (*drops_steps)(const NNTKLayerConfig *config);

    /* How a config streams in an NNTKLayerChain (core/chain.c): an
     * NNTKStreamKind; NULL: NNTK_STREAM_NONE. */
    int32_t (*streams)(const NNTKLayerConfig *config);
};

/* How a layer streams, chunk by chunk, giving bit for bit its whole-sequence
 * output: STEPWISE, its output step t depends on input step t alone (a chunk
 * of any length); STATES, it carries its states between chunks (recurrent);
 * WINDOW, its output steps depend on a window of input steps with no padding
 * (Conv1d, padding valid): the chunk must hold each window whole (the caller
 * keeps the input's history), so it can only stream before any layer with
 * states; NONE, not at all (padding at the chunk's edges, a pooling over the
 * chunk, a backward direction). */
typedef enum NNTKStreamKind {
    NNTK_STREAM_NONE = 0,
    NNTK_STREAM_STEPWISE = 1,
    NNTK_STREAM_STATES = 2,
    NNTK_STREAM_WINDOW = 3
} NNTKStreamKind;
int32_t nntk_stream_stepwise(const NNTKLayerConfig *config);
int32_t nntk_stream_states(const NNTKLayerConfig *config);
/* A convolution's: kernel 1 and stride 1, STEPWISE; else padding valid, WINDOW;
 * else NONE. */
int32_t nntk_stream_convolution(int64_t kernel_size, int64_t strides, int32_t padding);

/* The input features a layer takes (its config's input_dim field; a wrapper's
 * inner layer's) and the output features it gives
 * (Python's output_dim: at the first input length its OutputShape accepts). */
int64_t nntk_layer_input_features(const NNTKLayerConfig *config);
NNTKStatus nntk_layer_output_features(const char *fn, const NNTKLayer *layer, int64_t *features);

/* Which tag of a type a handle carries. */
typedef enum NNTKHandleRole { NNTK_ROLE_CONFIG, NNTK_ROLE_FILTER, NNTK_ROLE_GRADIENT } NNTKHandleRole;

/* Every layer type, for the generic lookups. */
int32_t nntk_layer_type_count(void);
const NNTKLayerType *nntk_layer_type_at(int32_t i);

/* --- the standard functions. `fn` names the public function in every message;
 * `type` is the type the handles must have (a typed wrapper's), or NULL for any
 * layer type (the generic API; the destroy functions too). */
NNTKLayerConfig *nntk_layer_config_create(const char *fn, const NNTKLayerType *type,
                                          const NNTKLayerValue *values);
void nntk_layer_config_destroy(NNTKLayerConfig *config, const NNTKLayerType *type);
/* A new copy of `config` with a copy of its inner config (a wrapper's), or NULL
 * (out of memory, recorded under fn). */
NNTKLayerConfig *nntk_layer_config_copy(const char *fn, const NNTKLayerConfig *config);
NNTKLayer *nntk_layer_create(const char *fn, const NNTKLayerType *type, const NNTKLayerConfig *config,
                             int training, const NNTKTrainingConfig *training_config);
void nntk_layer_destroy(NNTKLayer *filter, const NNTKLayerType *type);
NNTKStatus nntk_layer_get_weights(const char *fn, const NNTKLayerType *type, NNTKLayer *filter,
                                  float **weights, int64_t *count);
NNTKStatus nntk_layer_output_shape(const char *fn, const NNTKLayerType *type,
                                   const NNTKLayer *filter, int64_t batch, int64_t steps,
                                   int64_t *out_steps, int64_t *out_features);
NNTKStatus nntk_layer_apply(const char *fn, const NNTKLayerType *type, NNTKLayer *filter,
                            NNTKApplyMode mode, int64_t batch, int64_t steps, const float *in,
                            const float *initial_state, float *out,
                            float *final_state);
/* nntk_layer_apply in inference mode for a caller that has, in this same call,
 * checked the handle and the shape (batch, steps) with nntk_layer_output_shape,
 * which gave out_steps (a layer chain's Stream, core/chain.c: it checks every
 * layer before running the first): only the call flag and the forward. */
NNTKStatus nntk_layer_apply_shaped(const char *fn, NNTKLayer *filter, int64_t batch,
                                   int64_t steps, int64_t out_steps, const float *in,
                                   const float *initial_state, float *out, float *final_state);
NNTKLayerGradient *nntk_layer_gradient_create(const char *fn, const NNTKLayerType *type,
                                              const NNTKLayer *filter);
void nntk_layer_gradient_destroy(NNTKLayerGradient *gradient, const NNTKLayerType *type);
NNTKStatus nntk_layer_gradient_get_weights(const char *fn, const NNTKLayerType *type,
                                           NNTKLayerGradient *gradient, float **weights,
                                           int64_t *count);
NNTKStatus nntk_layer_calculate_gradient(const char *fn, const NNTKLayerType *type,
                                         NNTKLayer *filter, NNTKLayerGradient *gradient,
                                         const float *d_out, const float *d_final_state,
                                         float *d_in, float *d_initial_state);

/* The blocks of a config (count returned), and the number of floats they hold. */
int32_t nntk_layer_weight_blocks(const NNTKLayerConfig *config, NNTKWeightBlock *blocks);
int64_t nntk_layer_block_size(const NNTKWeightBlock *block);
/* The states of a config: widths[0..n) (NNTK_LAYER_MAX_STATES), n returned (0: none). */
int32_t nntk_layer_state_widths(const NNTKLayerConfig *config, int64_t *widths);

/* The type whose `role` tag a live handle carries, or NULL (NULL, dead or
 * foreign handle). */
const NNTKLayerType *nntk_layer_type_of(const void *handle, NNTKHandleRole role);

/* Checks a handle: non-NULL, alive, and of `type` (NULL: of any layer type;
 * `role` selects the config, filter or gradient tag). The same messages as
 * nntk_check_handle. */
NNTKStatus nntk_layer_check_handle(const char *fn, const char *arg, const void *handle,
                                   const NNTKLayerType *type, NNTKHandleRole role);

/* Reserves `floats` of the layer's training workspace (grows only). */
static inline NNTKStatus nntk_layer_reserve(const char *fn, NNTKLayer *layer, int64_t floats) {
    return nntk_reserve(fn, &layer->workspace, &layer->workspace_capacity, floats);
}

/* The index of the field `name` of `type`, or -1 when it has none (a family's
 * shared ops read the fields its members share by their Keras names). */
int32_t nntk_layer_field_index(const NNTKLayerType *type, const char *name);

/* Config values in a layer's ops. */
static inline int64_t nntk_layer_int(const NNTKLayerConfig *config, int field) {
    return config->values[field].i;
}
static inline double nntk_layer_float(const NNTKLayerConfig *config, int field) {
    return config->values[field].f;
}

/* The typed public functions of a layer `Name` over the generic ones, for the
 * type `TYPE`: every function of the lists of nntk/layer_functions.h (which
 * declares them from the same lists), NNTK_LAYER_BODY_<Suffix> the body of
 * NNTK<Name><Suffix> (`fn` its name, for the messages; `Return` its return
 * type). NNTK_DEFINE_LAYER: the standard functions (all but ConfigCreate);
 * NNTK_DEFINE_STATEFUL_LAYER: those and the *WithState ones. One per layer
 * file: nntk_typed_layer_type is the file's. */
#define NNTK_DEFINE_LAYER(Name, TYPE)                                                              \
    static const NNTKLayerType *const nntk_typed_layer_type = &(TYPE);                             \
    NNTK_LAYER_STANDARD_FUNCTIONS(NNTK_DEFINE_FUNCTION_, Name)
#define NNTK_DEFINE_STATEFUL_LAYER(Name, TYPE)                                                     \
    NNTK_DEFINE_LAYER(Name, TYPE)                                                                  \
    NNTK_LAYER_STATE_FUNCTIONS(NNTK_DEFINE_FUNCTION_, Name)
#define NNTK_DEFINE_FUNCTION_(Name, Suffix, Return, Params)                                        \
    NNTK_API Return NNTK##Name##Suffix Params {                                                    \
        NNTK_LAYER_BODY_##Suffix("NNTK" #Name #Suffix, Return)                                     \
    }
#define NNTK_LAYER_BODY_ConfigDestroy(fn, Return)                                                  \
    nntk_layer_config_destroy((NNTKLayerConfig *)config, nntk_typed_layer_type);
#define NNTK_LAYER_BODY_CreateForInference(fn, Return)                                             \
    return (Return)nntk_layer_create(fn, nntk_typed_layer_type, (const NNTKLayerConfig *)config,   \
                                     0, NULL);
#define NNTK_LAYER_BODY_CreateForTraining(fn, Return)                                              \
    return (Return)nntk_layer_create(fn, nntk_typed_layer_type, (const NNTKLayerConfig *)config,   \
                                     1, training_config);
#define NNTK_LAYER_BODY_Destroy(fn, Return)                                                        \
    nntk_layer_destroy((NNTKLayer *)filter, nntk_typed_layer_type);
#define NNTK_LAYER_BODY_GetWeights(fn, Return)                                                     \
    return nntk_layer_get_weights(fn, nntk_typed_layer_type, (NNTKLayer *)filter, weights, count);
#define NNTK_LAYER_BODY_OutputShape(fn, Return)                                                    \
    return nntk_layer_output_shape(fn, nntk_typed_layer_type, (const NNTKLayer *)filter, batch,    \
                                   steps, out_steps, out_features);
#define NNTK_LAYER_BODY_ApplyInference(fn, Return)                                                 \
    NNTK_LAYER_APPLY_(fn, NNTK_APPLY_INFERENCE, NULL, NULL)
#define NNTK_LAYER_BODY_ApplyTrainingBatch(fn, Return)                                             \
    NNTK_LAYER_APPLY_(fn, NNTK_APPLY_TRAINING, NULL, NULL)
#define NNTK_LAYER_BODY_GradientCreate(fn, Return)                                                 \
    return (Return)nntk_layer_gradient_create(fn, nntk_typed_layer_type, (const NNTKLayer *)filter);
#define NNTK_LAYER_BODY_GradientDestroy(fn, Return)                                                \
    nntk_layer_gradient_destroy((NNTKLayerGradient *)gradient, nntk_typed_layer_type);
#define NNTK_LAYER_BODY_GradientGetWeights(fn, Return)                                             \
    return nntk_layer_gradient_get_weights(fn, nntk_typed_layer_type,                              \
                                           (NNTKLayerGradient *)gradient, weights, count);
#define NNTK_LAYER_BODY_CalculateGradient(fn, Return) NNTK_LAYER_GRADIENT_(fn, NULL, NULL)
#define NNTK_LAYER_BODY_ApplyInferenceWithState(fn, Return)                                        \
    NNTK_LAYER_APPLY_(fn, NNTK_APPLY_INFERENCE, initial_state, final_state)
#define NNTK_LAYER_BODY_ApplyTrainingBatchWithState(fn, Return)                                    \
    NNTK_LAYER_APPLY_(fn, NNTK_APPLY_TRAINING, initial_state, final_state)
#define NNTK_LAYER_BODY_CalculateGradientWithState(fn, Return)                                     \
    NNTK_LAYER_GRADIENT_(fn, d_final_state, d_initial_state)
/* The Apply and CalculateGradient bodies: the plain ones pass NULL for the states. */
#define NNTK_LAYER_APPLY_(fn, MODE, initial_state_, final_state_)                                  \
    return nntk_layer_apply(fn, nntk_typed_layer_type, (NNTKLayer *)filter, MODE, batch, steps,    \
                            in, initial_state_, out, final_state_);
#define NNTK_LAYER_GRADIENT_(fn, d_final_state_, d_initial_state_)                                 \
    return nntk_layer_calculate_gradient(fn, nntk_typed_layer_type, (NNTKLayer *)filter,           \
                                         (NNTKLayerGradient *)gradient, d_out, d_final_state_,     \
                                         d_in, d_initial_state_);

/* The naming members of an NNTKLayerType initializer: the typed infix, the
 * Keras class name, and the three handle tags from a three-letter stem
 * (stem + 'C' config, 'F' filter, 'G' gradient). */
#define NNTK_LAYER_NAMES(name_, keras_name_, a, b, c)                                              \
    .name = (name_), .keras_name = (keras_name_), .config_tag = NNTK_TAG(a, b, c, 'C'),            \
    .filter_tag = NNTK_TAG(a, b, c, 'F'), .gradient_tag = NNTK_TAG(a, b, c, 'G')

/* The field table of an NNTKLayerType initializer, its count derived. */
#define NNTK_LAYER_FIELDS(fields_) \
    .fields = (fields_), .field_count = (int32_t)(sizeof(fields_) / sizeof((fields_)[0]))

/* The four ops every layer has, for a layer file whose static functions carry
 * their names (output_shape, reserve, forward, backward). */
#define NNTK_LAYER_STANDARD_OPS \
    .output_shape = output_shape, .reserve = reserve, .forward = forward, .backward = backward

/* Every layer type: nntk_<stem>_type of each src/<stem>.c (the list is
 * generated from the sources by CMakeLists.txt; core/layer.c's registry too). */
#define NNTK_LAYER_TYPE(stem) extern const NNTKLayerType nntk_##stem##_type;
#include "nntk_layer_types.inc"
#undef NNTK_LAYER_TYPE

#endif /* NNTK_CORE_LAYER_H */
