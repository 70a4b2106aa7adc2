/* Pieces shared by the recurrent layers RNN (SimpleRNN), GRU and LSTM: the
 * configuration they have in common, the handle boilerplate (create, destroy,
 * weights, gradients, argument checks), the order in which the sequence is
 * processed (go_backwards), where outputs and upstream gradients live, and
 * the initial / final state. Not part of the public API.
 *
 * The cell math (forward and backward of one step) and the loop over time
 * stay in each layer's own file; this file only holds what would otherwise be
 * copied three times.
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

/* What RNN, GRU and LSTM configurations have in common (validated). */
typedef struct NNTKRecurrentSpec {
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

/* Validates the arguments of a layer's ConfigCreate and fills `spec`.
 * `recurrent_activation` is checked only when gates > 1. */
NNTKStatus nntk_recurrent_spec_init(const char *fn, NNTKRecurrentSpec *spec, int64_t input_dim,
                                    int64_t units, int64_t gates, int64_t states,
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

/* Sizes of the two workspaces for a batch (the layer computes them). */
typedef int64_t (*NNTKRecurrentSizeFn)(const NNTKRecurrentSpec *spec, int64_t batch, int64_t steps);

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
 * reserves inference_scratch(spec, B, NNTK_RECURRENT_PROJECTION_STEPS) for
 * B = 1 or the capacity's batch; training filters also reserve the cache and
 * the scratch for training_config's capacity (so that no call up to that size
 * allocates). */
NNTKRecurrentFilter *nntk_recurrent_create(const char *fn, const NNTKRecurrentConfig *config,
                                           uint32_t config_tag, uint32_t filter_tag, int training,
                                           const NNTKTrainingConfig *training_config,
                                           NNTKRecurrentSizeFn cache_size,
                                           NNTKRecurrentSizeFn scratch_size,
                                           NNTKRecurrentSizeFn inference_scratch);
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

/* --- argument checks -------------------------------------------------------------------- */
/* Apply*: the handle, in, out, the sizes; training: a training handle. */
NNTKStatus nntk_recurrent_check_apply(const char *fn, const NNTKRecurrentFilter *filter,
                                      uint32_t tag, int training, int64_t batch, int64_t steps,
                                      const float *in, const float *out);
/* CalculateGradient*: handles, their pairing, d_out, a kept training batch. */
NNTKStatus nntk_recurrent_check_gradient(const char *fn, const NNTKRecurrentFilter *filter,
                                         uint32_t filter_tag,
                                         const NNTKRecurrentGradient *gradient,
                                         uint32_t gradient_tag, const float *d_out,
                                         const char *apply_name);

/* Reserves `floats` of the filter's scratch (grows only; contents are not
 * kept or cleared); *scratch points at it. */
NNTKStatus nntk_recurrent_reserve_scratch(const char *fn, NNTKRecurrentFilter *f, int64_t floats,
                                          float **scratch);
/* Reserves the training cache for (batch, steps). */
NNTKStatus nntk_recurrent_reserve_cache(const char *fn, NNTKRecurrentFilter *f, int64_t floats);

/* --- the recurrent product ------------------------------------------------------------- */
/* Called by a layer's forward before its loop: packs recurrent_kernel into
 * f->panels and sets f->use_panels when the batch is 1 and the sequence long
 * enough to repay the copy; clears use_panels otherwise. */
void nntk_recurrent_prepare_product(NNTKRecurrentFilter *f, int64_t batch, int64_t steps);

/* hp (B, n) with row stride ldc = h (B, U) · recurrent_kernel[:, :n] [+ bias (n,)]
 * for processing step k: the same bits as nntk_matmul on the unpacked kernel
 * (every element is one sequential chain over U), read from the panels in an
 * order that alternates with k when f->use_panels. */
void nntk_recurrent_product(const NNTKRecurrentFilter *f, int64_t k, int64_t batch, int64_t n,
                            const float *h, const float *bias, float *hp, int64_t ldc);

/* --- the sequence ------------------------------------------------------------------------ */
/* Input position of processing step k. */
static inline int64_t nntk_recurrent_position(const NNTKRecurrentSpec *spec, int64_t k,
                                              int64_t steps) {
    return spec->go_backwards ? steps - 1 - k : k;
}

/* Writes h (B, U), the state after processing step k, into the output:
 * out (B, T, U) at [:, k, :] (processing order, as Keras) with
 * return_sequences, else out (B, U) when k is the last step. */
void nntk_recurrent_store_output(const NNTKRecurrentSpec *spec, int64_t batch, int64_t steps,
                                 int64_t k, const float *h, float *out);

/* dh (B, U) = d_out's part for processing step k (zeros when k has no output)
 * + carry (B, U) (may be NULL). The mirror of nntk_recurrent_store_output. */
void nntk_recurrent_output_gradient(const NNTKRecurrentSpec *spec, int64_t batch, int64_t steps,
                                    int64_t k, const float *d_out, const float *carry, float *dh);

/* The input projection of processing steps k0 .. k0+n-1 for inference:
 * xp (B, n, G·U), row j of sample b = in[b, t_lo + j] · kernel [+ bias (G·U,)],
 * where t_lo is the first input position of the block (returned): k0, or
 * T-k0-n with go_backwards. Step k's row is position(k) - t_lo. Rows are
 * computed independently (nntk_matmul), so the bits are those of one product
 * over the whole sequence. */
int64_t nntk_recurrent_project_block(const NNTKRecurrentFilter *f, int64_t batch, int64_t steps,
                                     int64_t k0, int64_t n, const float *in, const float *bias,
                                     float *xp);

/* d_in (B, T, D) = a · kernelᵀ, step by step to each step's input position:
 * a (T, B, G·U) the input-side pre-activation gradients in processing order;
 * wt (G·U, D) scratch for kernelᵀ. */
void nntk_recurrent_input_gradient(const NNTKRecurrentFilter *f, int64_t batch, int64_t steps,
                                   const float *a, float *wt, float *d_in);

/* x (T, B, D) = in (B, T, D) in processing order: x[k, b] = in[b, position(k)]. */
void nntk_recurrent_gather_input(const NNTKRecurrentSpec *spec, int64_t batch, int64_t steps,
                                 const float *in, float *x);

/* dst (B, U) = state (B, U), or zeros when state is NULL. */
void nntk_recurrent_load_state(int64_t batch, int64_t units, const float *state, float *dst);

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
