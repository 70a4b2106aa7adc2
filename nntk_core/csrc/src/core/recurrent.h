/* Pieces shared by the recurrent layers RNN (SimpleRNN), GRU and LSTM: the
 * configuration they have in common, the handle boilerplate (create, destroy,
 * weights, gradients, argument checks), the loop over time (forward and
 * backward through the sequence), the order in which the sequence is
 * processed (go_backwards), where outputs and upstream gradients live, the
 * initial / final state, and the typed public functions (one macro line per
 * layer). Not part of the public API.
 *
 * Each layer's own file holds its cell: the math of one step forward and one
 * step backward, described to the loop by an NNTKRecurrentCell.
 *
 * Names: B = batch, T = steps, D = input_dim, U = units, G = gates per unit
 * (1 RNN, 3 GRU, 4 LSTM; the kernel is (D, G·U)), S = states (1: h; 2: h, c).
 * Processing step k = 0..T-1 consumes the input at position
 * t = nntk_recurrent_position(k) (t = k, or T-1-k with go_backwards). */
#ifndef NNTK_RECURRENT_H
#define NNTK_RECURRENT_H

#include <stdint.h>

#include "core/blocking.h"
#include "nntk/status.h"

typedef struct NNTKRecurrentCell NNTKRecurrentCell;

/* What RNN, GRU and LSTM configurations have in common (validated). */
typedef struct NNTKRecurrentSpec {
    const NNTKRecurrentCell *cell; /* the layer's cell */
    int64_t input_dim; /* D */
    int64_t units;     /* U */
    int64_t gates;     /* G */
    int64_t states;    /* S */
    NNTKActivationKind activation;
    NNTKActivationKind recurrent_activation; /* unused by RNN */
    int32_t use_bias;
    int32_t reset_after; /* GRU only; 0 otherwise */
    int32_t return_sequences;
    int32_t go_backwards;
    int64_t bias_count; /* floats in the bias: 0, G·U, or 2·G·U (GRU reset_after) */
} NNTKRecurrentSpec;

/* Validates the arguments of a layer's ConfigCreate and fills `spec`
 * (gates and states from the cell). `recurrent_activation` is checked only
 * when gates > 1. */
NNTKStatus nntk_recurrent_spec_init(const char *fn, NNTKRecurrentSpec *spec,
                                    const NNTKRecurrentCell *cell, int64_t input_dim, int64_t units,
                                    int32_t activation, int32_t recurrent_activation,
                                    int32_t use_bias, int32_t reset_after,
                                    int32_t return_sequences, int32_t go_backwards);

/* A layer's configuration object: the same for all three layers. */
typedef struct NNTKRecurrentConfig {
    uint32_t tag;
    NNTKRecurrentSpec spec;
} NNTKRecurrentConfig;

/* The state of a layer handle. Each layer's filter struct is exactly this
 * (a layer's own data, if any, is computed from the spec on the fly). */
typedef struct NNTKRecurrentFilter {
    uint32_t tag;
    NNTKRecurrentSpec spec;
    int32_t training;
    float *weights; /* kernel (D, GU), recurrent_kernel (U, GU), bias (bias_count) */
    int64_t weight_count;
    /* The last training batch, kept for the gradient (batch = 0: none). */
    int64_t batch, steps;
    float *cache;              /* the layer's per-step values of that batch */
    int64_t cache_capacity;
    /* Per-call scratch of inference and of the gradient (never the cache, so
     * an inference call between a training batch and its gradient is safe). */
    float *scratch;
    int64_t scratch_capacity;
    /* recurrent_kernel copied into column panels for the batch-1 product
     * (nntk_recurrent_product); valid during a forward call that set
     * use_panels, stale otherwise (the weights may change between calls). */
    float *panels; /* (ceil(GU / PANEL) panels of (U, width)) */
    int32_t use_panels;
} NNTKRecurrentFilter;

typedef struct NNTKRecurrentGradient {
    uint32_t tag;
    const NNTKRecurrentFilter *filter;
    float *d_weights; /* same layout as the weights */
    int64_t count;
} NNTKRecurrentGradient;

/* Pointers into the weight block. */
typedef struct NNTKRecurrentWeights {
    const float *kernel;    /* (D, GU) */
    const float *recurrent; /* (U, GU) */
    const float *bias;      /* (GU,), GRU reset_after: (2, GU); NULL without bias */
} NNTKRecurrentWeights;
NNTKRecurrentWeights nntk_recurrent_weights(const NNTKRecurrentFilter *f);

/* --- the cell ----------------------------------------------------------------------------- */
/* The most per-step arrays a cell keeps (GRU and LSTM: pre, act and one more). */
#define NNTK_RECURRENT_MAX_ARRAYS 3

/* One step's arrays: kept value i is (B, value_width[i]·U) (training: the
 * cache slots of step k; inference: scratch), pre-activation gradient i is
 * (B, grad_width[i]·U) (the slots of step k). */
typedef struct NNTKRecurrentSlots {
    float *a[NNTK_RECURRENT_MAX_ARRAYS];
} NNTKRecurrentSlots;

/* The states around one step: state s (0 = h, 1 = c) before the step at
 * prev + s·stride, after it at next + s·stride, each (B, U). */
typedef struct NNTKRecurrentStates {
    const float *prev;
    float *next;
    int64_t stride;
} NNTKRecurrentStates;

/* What the shared loop over time needs to know of a layer: its shape and its
 * cell (one step forward, one step backward). The layer's file defines one. */
struct NNTKRecurrentCell {
    int64_t gates, states;  /* G, S */
    int projection_bias;    /* the input projection x·W adds bias[:GU] (else the cell adds it) */
    int values;             /* per-step arrays kept for the backward pass */
    int64_t value_width[NNTK_RECURRENT_MAX_ARRAYS]; /* in units of U */
    int grads;              /* per-step pre-activation gradients; grad 0 is the input side's */
    int64_t grad_width[NNTK_RECURRENT_MAX_ARRAYS];  /* in units of U; grad 0: G */
    int64_t work;           /* the backward step's scratch per batch row, in units of U */
    /* One step forward of processing step k: xp B rows of the input projection
     * (G·U each) spaced ldxp apart; writes the states after the step and the
     * step's values (keep: all of them, for training; else as the cell needs).
     * hp (B, G·U) scratch. */
    void (*forward_step)(const NNTKRecurrentFilter *f, int64_t k, int64_t batch, const float *xp,
                         int64_t ldxp, NNTKRecurrentStates st, float *hp, NNTKRecurrentSlots values,
                         int keep);
    /* One step backward: d_state (S, B, U) holds the whole upstream gradient of
     * the states after the step (the cell may overwrite it); writes d_prev
     * (S, B, U), that of the states before it, and the step's pre-activation
     * gradients. rt (G·U, U) = recurrent_kernelᵀ; work (B, work·U) scratch. */
    void (*backward_step)(const NNTKRecurrentFilter *f, int64_t batch, NNTKRecurrentStates st,
                          NNTKRecurrentSlots values, float *d_state, float *d_prev, const float *rt,
                          float *work, NNTKRecurrentSlots grads);
    /* The recurrent_kernel and bias gradients from all steps (rows = T·B):
     * h (T+1, B, U) the h states, values and grads the whole (T, B, ·) arrays.
     * NULL: d recurrent = h_prevᵀ·grad 0, d bias = Σ grad 0. */
    void (*weight_gradient)(const NNTKRecurrentFilter *f, int64_t rows, const float *h,
                            NNTKRecurrentSlots values, NNTKRecurrentSlots grads,
                            float *d_recurrent, float *d_bias);
};

/* --- handles ---------------------------------------------------------------------------- */
NNTKRecurrentConfig *nntk_recurrent_config_create(const char *fn, uint32_t tag,
                                                  const NNTKRecurrentSpec *spec);
void nntk_recurrent_config_destroy(NNTKRecurrentConfig *config, uint32_t tag);

/* Steps whose projection a forward pass holds at once: all of them when
 * training (the cache keeps them), else at most one block. */
static inline int64_t nntk_recurrent_projected_steps(int64_t steps, int training) {
    return training || steps < NNTK_RECURRENT_PROJECTION_STEPS ? steps
                                                               : NNTK_RECURRENT_PROJECTION_STEPS;
}

/* Creates a filter from a config (checked against config_tag). Every filter
 * reserves the inference scratch of NNTK_RECURRENT_PROJECTION_STEPS steps for
 * B = 1 or the capacity's batch; training filters also reserve the cache and
 * the scratch for training_config's capacity (so that no call up to that size
 * allocates). */
NNTKRecurrentFilter *nntk_recurrent_create(const char *fn, const NNTKRecurrentConfig *config,
                                           uint32_t config_tag, uint32_t filter_tag, int training,
                                           const NNTKTrainingConfig *training_config);
void nntk_recurrent_destroy(NNTKRecurrentFilter *filter, uint32_t tag);
NNTKStatus nntk_recurrent_get_weights(const char *fn, NNTKRecurrentFilter *filter, uint32_t tag,
                                      float **weights, int64_t *count);
/* out_steps = steps (return_sequences) or 1; out_features = U. */
NNTKStatus nntk_recurrent_output_shape(const char *fn, const NNTKRecurrentFilter *filter,
                                       uint32_t tag, int64_t batch, int64_t steps,
                                       int64_t *out_steps, int64_t *out_features);

NNTKRecurrentGradient *nntk_recurrent_gradient_create(const char *fn,
                                                      const NNTKRecurrentFilter *filter,
                                                      uint32_t filter_tag, uint32_t gradient_tag);
void nntk_recurrent_gradient_destroy(NNTKRecurrentGradient *gradient, uint32_t tag);
NNTKStatus nntk_recurrent_gradient_get_weights(const char *fn, NNTKRecurrentGradient *gradient,
                                               uint32_t tag, float **weights, int64_t *count);

/* --- the sequence, forward and backward ------------------------------------------------- */
/* Apply*: checks the arguments, runs the sequence from initial_state
 * (S, B, U) (NULL = zeros), writes final_state (S, B, U) unless NULL;
 * training keeps the batch for the gradient. */
NNTKStatus nntk_recurrent_apply(const char *fn, NNTKRecurrentFilter *filter, uint32_t tag,
                                int training, int64_t batch, int64_t steps, const float *in,
                                const float *initial_state, float *out, float *final_state);
/* CalculateGradient*: checks the arguments, then BPTT over the kept batch
 * (apply_name: the training call to name when there is none). */
NNTKStatus nntk_recurrent_calculate(const char *fn, NNTKRecurrentFilter *filter,
                                    uint32_t filter_tag, NNTKRecurrentGradient *gradient,
                                    uint32_t gradient_tag, const char *apply_name,
                                    const float *d_out, const float *d_final_state, float *d_in,
                                    float *d_initial_state);

/* Defines a recurrent layer's typed public functions (all but ConfigCreate)
 * over the shared ones: NNTK<L>ConfigDestroy, CreateForInference,
 * CreateForTraining, Destroy, GetWeights, OutputShape, the four Apply*,
 * GradientCreate, GradientDestroy, GradientGetWeights and the two
 * CalculateGradient*. The handle types are the shared structs; each function
 * checks its handle's tag (CT, FT, GT: config, filter, gradient) and names
 * itself in its errors. */
#define NNTK_RECURRENT_FILTER_(x) ((NNTKRecurrentFilter *)(x))
#define NNTK_DEFINE_RECURRENT_LAYER(L, CT, FT, GT)                                                \
    NNTK_API void NNTK##L##ConfigDestroy(NNTK##L##Config *config) {                               \
        nntk_recurrent_config_destroy((NNTKRecurrentConfig *)config, CT);                         \
    }                                                                                             \
    NNTK_API NNTK##L *NNTK##L##CreateForInference(const NNTK##L##Config *config) {                \
        return (NNTK##L *)nntk_recurrent_create("NNTK" #L "CreateForInference",                   \
                                                (const NNTKRecurrentConfig *)config, CT, FT, 0,   \
                                                NULL);                                            \
    }                                                                                             \
    NNTK_API NNTK##L *NNTK##L##CreateForTraining(const NNTK##L##Config *config,                   \
                                                 const NNTKTrainingConfig *training_config) {     \
        return (NNTK##L *)nntk_recurrent_create("NNTK" #L "CreateForTraining",                    \
                                                (const NNTKRecurrentConfig *)config, CT, FT, 1,   \
                                                training_config);                                 \
    }                                                                                             \
    NNTK_API void NNTK##L##Destroy(NNTK##L *filter) {                                             \
        nntk_recurrent_destroy(NNTK_RECURRENT_FILTER_(filter), FT);                               \
    }                                                                                             \
    NNTK_API NNTKStatus NNTK##L##GetWeights(NNTK##L *filter, float **weights, int64_t *count) {   \
        return nntk_recurrent_get_weights("NNTK" #L "GetWeights", NNTK_RECURRENT_FILTER_(filter), \
                                          FT, weights, count);                                    \
    }                                                                                             \
    NNTK_API NNTKStatus NNTK##L##OutputShape(const NNTK##L *filter, int64_t batch, int64_t steps, \
                                             int64_t *out_steps, int64_t *out_features) {         \
        return nntk_recurrent_output_shape("NNTK" #L "OutputShape",                               \
                                           (const NNTKRecurrentFilter *)filter, FT, batch, steps, \
                                           out_steps, out_features);                              \
    }                                                                                             \
    NNTK_API NNTKStatus NNTK##L##ApplyInference(NNTK##L *filter, int64_t batch, int64_t steps,    \
                                                const float *in, float *out) {                    \
        return nntk_recurrent_apply("NNTK" #L "ApplyInference", NNTK_RECURRENT_FILTER_(filter),   \
                                    FT, 0, batch, steps, in, NULL, out, NULL);                    \
    }                                                                                             \
    NNTK_API NNTKStatus NNTK##L##ApplyTrainingBatch(NNTK##L *filter, int64_t batch,               \
                                                    int64_t steps, const float *in, float *out) { \
        return nntk_recurrent_apply("NNTK" #L "ApplyTrainingBatch",                               \
                                    NNTK_RECURRENT_FILTER_(filter), FT, 1, batch, steps, in,      \
                                    NULL, out, NULL);                                             \
    }                                                                                             \
    NNTK_API NNTKStatus NNTK##L##ApplyInferenceWithState(                                         \
        NNTK##L *filter, int64_t batch, int64_t steps, const float *in,                           \
        const float *initial_state, float *out, float *final_state) {                             \
        return nntk_recurrent_apply("NNTK" #L "ApplyInferenceWithState",                          \
                                    NNTK_RECURRENT_FILTER_(filter), FT, 0, batch, steps, in,      \
                                    initial_state, out, final_state);                             \
    }                                                                                             \
    NNTK_API NNTKStatus NNTK##L##ApplyTrainingBatchWithState(                                     \
        NNTK##L *filter, int64_t batch, int64_t steps, const float *in,                           \
        const float *initial_state, float *out, float *final_state) {                             \
        return nntk_recurrent_apply("NNTK" #L "ApplyTrainingBatchWithState",                      \
                                    NNTK_RECURRENT_FILTER_(filter), FT, 1, batch, steps, in,      \
                                    initial_state, out, final_state);                             \
    }                                                                                             \
    NNTK_API NNTK##L##Gradient *NNTK##L##GradientCreate(const NNTK##L *filter) {                  \
        return (NNTK##L##Gradient *)nntk_recurrent_gradient_create(                               \
            "NNTK" #L "GradientCreate", (const NNTKRecurrentFilter *)filter, FT, GT);             \
    }                                                                                             \
    NNTK_API void NNTK##L##GradientDestroy(NNTK##L##Gradient *gradient) {                         \
        nntk_recurrent_gradient_destroy((NNTKRecurrentGradient *)gradient, GT);                   \
    }                                                                                             \
    NNTK_API NNTKStatus NNTK##L##GradientGetWeights(NNTK##L##Gradient *gradient, float **weights, \
                                                    int64_t *count) {                             \
        return nntk_recurrent_gradient_get_weights("NNTK" #L "GradientGetWeights",                \
                                                   (NNTKRecurrentGradient *)gradient, GT,         \
                                                   weights, count);                               \
    }                                                                                             \
    NNTK_API NNTKStatus NNTK##L##CalculateGradient(NNTK##L *filter, NNTK##L##Gradient *gradient,  \
                                                   const float *d_out, float *d_in) {             \
        return nntk_recurrent_calculate("NNTK" #L "CalculateGradient",                            \
                                        NNTK_RECURRENT_FILTER_(filter), FT,                       \
                                        (NNTKRecurrentGradient *)gradient, GT,                    \
                                        "NNTK" #L "ApplyTrainingBatch", d_out, NULL, d_in, NULL); \
    }                                                                                             \
    NNTK_API NNTKStatus NNTK##L##CalculateGradientWithState(                                      \
        NNTK##L *filter, NNTK##L##Gradient *gradient, const float *d_out,                         \
        const float *d_final_state, float *d_in, float *d_initial_state) {                        \
        return nntk_recurrent_calculate("NNTK" #L "CalculateGradientWithState",                   \
                                        NNTK_RECURRENT_FILTER_(filter), FT,                       \
                                        (NNTKRecurrentGradient *)gradient, GT,                    \
                                        "NNTK" #L "ApplyTrainingBatch", d_out, d_final_state,     \
                                        d_in, d_initial_state);                                   \
    }

/* --- the recurrent product ------------------------------------------------------------- */
/* hp (B, n) with row stride ldc = h (B, U) · recurrent_kernel[:, :n] [+ bias (n,)]
 * for processing step k: the same bits as nntk_matmul on the unpacked kernel
 * (every element is one sequential chain over U), read from the panels in an
 * order that alternates with k when f->use_panels. */
void nntk_recurrent_product(const NNTKRecurrentFilter *f, int64_t k, int64_t batch, int64_t n,
                            const float *h, const float *bias, float *hp, int64_t ldc);

/* --- the cells' helpers ---------------------------------------------------------------- */
/* Per-row activation of one gate block: rows of `units` values spaced `ld`
 * apart (a gate's columns inside (B, G·U)). Softmax normalises each gate's
 * U values, as Keras applies the activation to the split gate tensor. */
void nntk_recurrent_activate(NNTKActivationKind kind, int64_t batch, int64_t units, int64_t ld,
                             const float *pre, float *act);
/* d_pre = d_act ⊙ act'(pre), same block layout; d_pre may equal d_act. */
void nntk_recurrent_activate_backward(NNTKActivationKind kind, int64_t batch, int64_t units,
                                      int64_t ld, const float *pre, const float *act,
                                      const float *d_act, float *d_pre);

#endif /* NNTK_RECURRENT_H */
