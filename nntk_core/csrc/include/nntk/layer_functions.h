/* The typed functions every layer has, declared by one line per layer header:
 *
 *   NNTK_DECLARE_LAYER(Dense)          the opaque types NNTKDenseConfig, NNTKDense,
 *                                      NNTKDenseGradient and the standard functions;
 *   NNTK_DECLARE_STATEFUL_LAYER(GRU)   the same, plus the *WithState functions of a
 *                                      layer with states.
 *
 * A layer header writes out only what is its own: the math and the shapes in its
 * leading comment, its NNTK<Name>ConfigCreate (the layer's parameters) and any
 * function no other layer has (NNTKBatchNormApplyFrozenBatch).
 *
 * The functions are listed once, as X-macros (NNTK_LAYER_STANDARD_FUNCTIONS,
 * NNTK_LAYER_STATE_FUNCTIONS): each entry is X(Name, Suffix, return type,
 * (parameters)) for the function NNTK<Name><Suffix>. These macros declare them;
 * the library defines them from the same lists (src/core/layer.h,
 * NNTK_DEFINE_LAYER), so declaration and definition cannot drift apart.
 *
 * Shapes, in every function below: float32, row-major. D = the layer's input
 * features (the last axis of its input); an input is (batch, steps, D), a (B, D)
 * input passed as steps = 1. The output is (batch, out_steps, out_features), the
 * sizes OutputShape gives for the input (the layer header says what they are). A
 * state buffer holds the layer's states one after the other, each (batch, width)
 * (the layer header gives them; NNTKLayerConfigStates their widths): GRU (batch, U),
 * LSTM (2, batch, U), Bidirectional (2, S, batch, U).
 *
 * The comments in the lists document each function as the header comment above a
 * declaration does: parity/c_api.py reads them through the C preprocessor
 * (`cc -E -CC`), e.g. which pointers may be NULL (docs/ADDING_A_LAYER.md §2). */
#ifndef NNTK_LAYER_FUNCTIONS_H
#define NNTK_LAYER_FUNCTIONS_H

#include "nntk/status.h"

/* The standard functions of every layer `Name`, but NNTK<Name>ConfigCreate (its
 * parameters are the layer's own; its header declares it). */
#define NNTK_LAYER_STANDARD_FUNCTIONS(X, Name)                                                      \
    /* Destroys a config made by NNTK<Name>ConfigCreate; NULL is ignored. */                        \
    X(Name, ConfigDestroy, void, (NNTK##Name##Config *config))                                      \
    /* A layer for inference from `config` (not kept: the caller still owns it); its weights        \
     * start at the tf.keras initial values where they are constants (zeros, ones), else at         \
     * zero: fill them through NNTK<Name>GetWeights. NULL on error (see NNTKLastError). */          \
    X(Name, CreateForInference, NNTK##Name *, (const NNTK##Name##Config *config))                   \
    /* As NNTK<Name>CreateForInference, for training (ApplyTrainingBatch and                        \
     * CalculateGradient). training_config may be NULL (defaults): its capacity is reserved         \
     * at creation, so batches up to it allocate nothing. */                                        \
    X(Name, CreateForTraining, NNTK##Name *,                                                        \
      (const NNTK##Name##Config *config, const NNTKTrainingConfig *training_config))                \
    /* Destroys a layer; NULL is ignored. */                                                        \
    X(Name, Destroy, void, (NNTK##Name *filter))                                                    \
    /* *weights = the layer's weight block (*count floats, read and write): the tf.keras            \
     * get_weights() tensors in that order, one after the other. A layer without weights            \
     * gives *weights = NULL, *count = 0. */                                                        \
    X(Name, GetWeights, NNTKStatus, (NNTK##Name *filter, float **weights, int64_t *count))          \
    /* For an input (batch, steps, D): *out_steps and *out_features of the output. Fails            \
     * for an input Apply would refuse (e.g. steps shorter than a kernel). */                       \
    X(Name, OutputShape, NNTKStatus,                                                                \
      (const NNTK##Name *filter, int64_t batch, int64_t steps, int64_t *out_steps,                  \
       int64_t *out_features))                                                                      \
    /* in (batch, steps, D) -> out (batch, out_steps, out_features), in inference mode; a           \
     * layer with states starts from zeros. */                                                      \
    X(Name, ApplyInference, NNTKStatus,                                                             \
      (NNTK##Name *filter, int64_t batch, int64_t steps, const float *in, float *out))              \
    /* As NNTK<Name>ApplyInference in training mode, and keeps what the gradient needs.             \
     * Training handles only. */                                                                    \
    X(Name, ApplyTrainingBatch, NNTKStatus,                                                         \
      (NNTK##Name *filter, int64_t batch, int64_t steps, const float *in, float *out))              \
    /* A weight-gradient handle for `filter` (the layout of its weights). NULL on error. */         \
    X(Name, GradientCreate, NNTK##Name##Gradient *, (const NNTK##Name *filter))                     \
    /* Destroys a gradient handle; NULL is ignored. */                                              \
    X(Name, GradientDestroy, void, (NNTK##Name##Gradient *gradient))                                \
    /* *weights = the weight-gradient block (*count floats, the layout of the weights; the          \
     * non-trainable blocks' slots hold 0). No weights: *weights = NULL, *count = 0. */             \
    X(Name, GradientGetWeights, NNTKStatus,                                                         \
      (NNTK##Name##Gradient *gradient, float **weights, int64_t *count))                            \
    /* d_out (batch, out_steps, out_features), the gradient of the last training batch's            \
     * output -> the weight gradients, summed over the batch, overwriting `gradient` (made          \
     * for this filter), and d_in (batch, steps, D) unless d_in is NULL: what                       \
     * tf.GradientTape.gradient(out, [in] + weights, output_gradients=d_out) returns. */            \
    X(Name, CalculateGradient, NNTKStatus,                                                          \
      (NNTK##Name *filter, NNTK##Name##Gradient *gradient, const float *d_out, float *d_in))

/* The functions of a layer with states (recurrent), besides the standard ones. */
#define NNTK_LAYER_STATE_FUNCTIONS(X, Name)                                                         \
    /* NNTK<Name>ApplyInference from initial_state (a state buffer) (NULL = zeros); writes          \
     * the final states (a state buffer) to final_state unless it is NULL. Streaming: chunk         \
     * by chunk, each chunk's final_state the next one's initial_state, gives the                   \
     * whole-sequence call's outputs bit for bit. */                                                \
    X(Name, ApplyInferenceWithState, NNTKStatus,                                                    \
      (NNTK##Name *filter, int64_t batch, int64_t steps, const float *in,                           \
       const float *initial_state, float *out, float *final_state))                                 \
    /* NNTK<Name>ApplyTrainingBatch from initial_state (a state buffer) (NULL = zeros);             \
     * writes the final states (a state buffer) to final_state unless it is NULL. */                \
    X(Name, ApplyTrainingBatchWithState, NNTKStatus,                                                \
      (NNTK##Name *filter, int64_t batch, int64_t steps, const float *in,                           \
       const float *initial_state, float *out, float *final_state))                                 \
    /* NNTK<Name>CalculateGradient, with d_in (batch, steps, D) unless d_in is NULL, plus:          \
     * d_final_state (a state buffer), the upstream gradient of the returned final states           \
     * (NULL = zeros; Keras return_state=True), and d_initial_state (a state buffer), the           \
     * gradient of the initial states, unless NULL. */                                              \
    X(Name, CalculateGradientWithState, NNTKStatus,                                                 \
      (NNTK##Name *filter, NNTK##Name##Gradient *gradient, const float *d_out,                      \
       const float *d_final_state, float *d_in, float *d_initial_state))

/* One entry of the lists, declared. */
#define NNTK_DECLARE_FUNCTION_(Name, Suffix, Return, Params)                                        \
    NNTK_API Return NNTK##Name##Suffix Params;

/* The opaque types of layer `Name`: its config, its layer handle, its gradient. */
#define NNTK_DECLARE_LAYER_TYPES_(Name)                                                             \
    typedef struct NNTK##Name##Config NNTK##Name##Config;                                           \
    typedef struct NNTK##Name NNTK##Name;                                                           \
    typedef struct NNTK##Name##Gradient NNTK##Name##Gradient;

#define NNTK_DECLARE_LAYER(Name)                                                                    \
    NNTK_DECLARE_LAYER_TYPES_(Name)                                                                 \
    NNTK_LAYER_STANDARD_FUNCTIONS(NNTK_DECLARE_FUNCTION_, Name)

#define NNTK_DECLARE_STATEFUL_LAYER(Name)                                                           \
    NNTK_DECLARE_LAYER(Name)                                                                        \
    NNTK_LAYER_STATE_FUNCTIONS(NNTK_DECLARE_FUNCTION_, Name)

#endif /* NNTK_LAYER_FUNCTIONS_H */
