/* Pieces shared by the recurrent layers RNN (SimpleRNN), GRU and LSTM: their
 * layer-type ops (config check, weight blocks, states, handle setup, output
 * shape, workspace, forward, backward: NNTK_RECURRENT_OPS), the loop over time
 * (forward and backward through the sequence), the order in which the
 * sequence is processed (go_backwards), where outputs and upstream gradients
 * live, and the initial / final state. Not part of the public API.
 *
 * Each layer's own file holds its config fields and its cell: the math of one
 * step forward and one step backward, described to the loop by an
 * NNTKRecurrentCell (the type's `impl`).
 *
 * Names: B = batch, T = steps, D = input_dim, U = units, G = gates per unit
 * (1 RNN, 3 GRU, 4 LSTM; the kernel is (D, G·U)), S = states (1: h; 2: h, c).
 * Processing step k = 0..T-1 consumes the input at position
 * t = position(k) (t = k, or T-1-k with go_backwards). */
#ifndef NNTK_RECURRENT_H
#define NNTK_RECURRENT_H

#include <stdint.h>

#include "core/blocking.h"
#include "core/layer.h"
#include "nntk/status.h"

typedef struct NNTKRecurrentCell NNTKRecurrentCell;

/* A recurrent layer's configuration, read from its config's fields by name
 * (a field a layer lacks takes its neutral value). */
typedef struct NNTKRecurrentSpec {
    const NNTKRecurrentCell *cell; /* the layer's cell */
    int64_t input_dim; /* D */
    int64_t units;     /* U */
    int64_t gates;     /* G */
    int64_t states;    /* S */
    NNTKActivationKind activation;
    NNTKActivationKind recurrent_activation; /* RNN: none (LINEAR) */
    int32_t use_bias;
    int32_t reset_after; /* GRU only; 0 otherwise */
    int32_t return_sequences;
    int32_t go_backwards;
    int64_t bias_count; /* floats in the bias: 0, G·U, or 2·G·U (GRU reset_after) */
} NNTKRecurrentSpec;

/* The private state of a recurrent layer handle (NNTKLayer.state). */
typedef struct NNTKRecurrentFilter {
    NNTKRecurrentSpec spec;
    float *weights; /* the handle's: kernel (D, GU), recurrent_kernel (U, GU), bias (bias_count) */
    /* The kept training batch (the handle's batch and steps) and the handle's
     * workspace holding its per-step values; both refreshed by every forward
     * and backward op. */
    int64_t batch, steps;
    float *cache;
    /* Per-call scratch of inference and of the gradient (never the cache, so
     * an inference call between a training batch and its gradient is safe). */
    float *scratch;
    int64_t scratch_capacity;
    /* recurrent_kernel copied into column panels for the recurrent product
     * (nntk_recurrent_product); valid during a forward call that set
     * use_panels, stale otherwise (the weights may change between calls). */
    float *panels; /* (ceil(GU / panel_width) panels of (U, width)) */
    int64_t panel_width; /* NNTK_RECURRENT_PANEL at batch 1, else the tile's columns */
    int32_t use_panels;
    /* The backward's rt = recurrent_kernelᵀ (G·U, U) in column panels of
     * rt_panel_width columns, each (G·U, width) contiguous; 0: rt is plain
     * (nntk_recurrent_product_t). Set by the gradient call before its loop. */
    int64_t rt_panel_width;
} NNTKRecurrentFilter;

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
     * gradients. rt (G·U, U) = recurrent_kernelᵀ, read through
     * nntk_recurrent_product_t (its layout may be panels); work (B, work·U) scratch. */
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

/* --- the layer-type ops ------------------------------------------------------------------ */
/* The weights fit: kernel (D, GU) and recurrent_kernel (U, GU) each one tensor. */
NNTKStatus nntk_recurrent_check(const char *fn, const NNTKLayerConfig *config);
/* kernel (D, GU) glorot_uniform, recurrent_kernel (U, GU) orthogonal, then
 * with use_bias: bias (GU,), GRU reset_after (2, GU): zeros, or Keras's
 * "unit_forget_bias" when the config's unit_forget_bias is set (LSTM). */
int32_t nntk_recurrent_weight_blocks(const NNTKLayerConfig *config, NNTKWeightBlock *blocks);
/* S states of width U. */
int32_t nntk_recurrent_states(const NNTKLayerConfig *config, int64_t *widths);
NNTKStatus nntk_recurrent_init(const char *fn, NNTKLayer *layer, const NNTKLayerConfig *config,
                               const NNTKTrainingConfig *training_config);
void nntk_recurrent_release(NNTKLayer *layer);
/* out_steps = steps (return_sequences) or 1; out_features = U. */
NNTKStatus nntk_recurrent_output_shape(const char *fn, const NNTKLayer *layer, int64_t batch,
                                       int64_t steps, int64_t *out_steps, int64_t *out_features);
/* The training cache of (batch, steps) in the workspace, and the scratch of
 * its forward and backward passes and of an inference call of that size (so
 * that no call within a reserved capacity allocates). */
NNTKStatus nntk_recurrent_reserve(const char *fn, NNTKLayer *layer, int64_t batch, int64_t steps,
                                  int64_t out_steps);
NNTKStatus nntk_recurrent_forward(const char *fn, NNTKLayer *layer, NNTKApplyMode mode,
                                  int64_t batch, int64_t steps, int64_t out_steps, const float *in,
                                  const float *initial_state, float *out, float *final_state);
NNTKStatus nntk_recurrent_backward(const char *fn, NNTKLayer *layer, const float *d_out,
                                   const float *d_final_state, float *d_in,
                                   float *d_initial_state, float *d_weights);

/* The fields the recurrent layers share, by Keras name with Keras's defaults
 * (a layer's table lists them in its typed ConfigCreate's order). */
#define NNTK_RECURRENT_SIZES_AND_ACTIVATION                                                       \
    NNTK_FIELD_SIZE("input_dim"), NNTK_FIELD_SIZE("units"),                                       \
        NNTK_FIELD_ACTIVATION("activation", NULL, NNTK_ACTIVATION_TANH)
#define NNTK_RECURRENT_GATES_AND_BIAS                                                             \
    NNTK_FIELD_ACTIVATION("recurrent_activation", NULL, NNTK_ACTIVATION_SIGMOID),                 \
        NNTK_FIELD_FLAG("use_bias", 1)
#define NNTK_RECURRENT_SEQUENCE                                                                   \
    NNTK_FIELD_FLAG("return_sequences", 0), NNTK_FIELD_FLAG("go_backwards", 0)

/* A recurrent layer's type: its names and tag stem (NNTK_LAYER_NAMES), the
 * file's `fields` table and `cell`, its keras_positional count, and the shared ops. */
#define NNTK_RECURRENT_TYPE(Name, KerasName, a, b, c, keras_positional_)                          \
    {                                                                                             \
        NNTK_LAYER_NAMES(Name, KerasName, a, b, c),                                               \
        NNTK_LAYER_FIELDS(fields), .keras_positional = (keras_positional_),                       \
        .impl = &cell, .check = nntk_recurrent_check, .weights = nntk_recurrent_weight_blocks,    \
        .states = nntk_recurrent_states, .state_size = sizeof(NNTKRecurrentFilter),               \
        .init = nntk_recurrent_init, .release = nntk_recurrent_release,                           \
        .output_shape = nntk_recurrent_output_shape, .reserve = nntk_recurrent_reserve,           \
        .forward = nntk_recurrent_forward, .backward = nntk_recurrent_backward,                   \
        .sequence_input = 1, .drops_steps = nntk_recurrent_drops_steps,                           \
        .streams = nntk_stream_states,                                                            \
    }

/* tf.keras's shapes: (B, T, D) input only; (B, U) out without return_sequences. */
int32_t nntk_recurrent_drops_steps(const NNTKLayerConfig *config);

/* Steps whose projection a forward pass holds at once: one when training (each
 * step's, made just before it), else at most one block. */
static inline int64_t nntk_recurrent_projected_steps(int64_t steps, int training) {
    if (training) return 1;
    return steps < NNTK_RECURRENT_PROJECTION_STEPS ? steps : NNTK_RECURRENT_PROJECTION_STEPS;
}

/* --- the cells' helpers ---------------------------------------------------------------- */
/* hp (B, n) with row stride ldc = h (B, U) · recurrent_kernel[:, :n] [+ bias (n,)]
 * for processing step k: the same bits as nntk_matmul on the unpacked kernel
 * (every element is one sequential chain over U), read from the panels in an
 * order that alternates with k when f->use_panels. */
void nntk_recurrent_product(const NNTKRecurrentFilter *f, int64_t k, int64_t batch, int64_t n,
                            const float *h, const float *bias, float *hp, int64_t ldc);

/* out (B, U) = a (B, n), rows lda apart, · rt[k0 : k0+n, :] (accumulate: out +=),
 * rt = recurrent_kernelᵀ as the gradient call laid it out (f->rt_panel_width):
 * the same bits as nntk_matmul on the plain rt (every element one sequential
 * chain over the n rows). */
void nntk_recurrent_product_t(const NNTKRecurrentFilter *f, int64_t batch, int64_t k0, int64_t n,
                              const float *a, int64_t lda, const float *rt, int accumulate,
                              float *out);

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
