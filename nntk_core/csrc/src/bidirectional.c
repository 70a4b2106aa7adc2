/* Bidirectional: every call forwards to two instances of the wrapped layer
 * (RNN, GRU or LSTM) through their public functions; this file only merges
 * the two outputs, splits the merged gradient, and keeps the one contiguous
 * weight block (copied into the inner layers before they run).
 *
 * Shapes: B = batch, T = steps, D = input_dim, U = units, S = states per
 * direction, T' = return_sequences ? T : 1. */
#include <stdlib.h>
#include <string.h>

#include "core/blocking.h"
#include "core/internal.h"
#include "nntk/bidirectional.h"
#include "nntk/gru.h"
#include "nntk/lstm.h"
#include "nntk/rnn.h"

#define CONFIG_TAG NNTK_TAG('B', 'i', 'd', 'C')
#define FILTER_TAG NNTK_TAG('B', 'i', 'd', 'F')
#define GRADIENT_TAG NNTK_TAG('B', 'i', 'd', 'G')

#define relabel nntk_relabel

/* --- the wrapped layer's public API, by kind ---------------------------------------------- */

static void inner_config_destroy(NNTKRecurrentKind kind, void *config) {
    switch (kind) {
    case NNTK_RECURRENT_RNN: NNTKRNNConfigDestroy(config); break;
    case NNTK_RECURRENT_GRU: NNTKGRUConfigDestroy(config); break;
    case NNTK_RECURRENT_LSTM: NNTKLSTMConfigDestroy(config); break;
    }
}

static void *inner_create(NNTKRecurrentKind kind, const void *config, int training,
                          const NNTKTrainingConfig *training_config) {
    switch (kind) {
    case NNTK_RECURRENT_RNN:
        return training ? (void *)NNTKRNNCreateForTraining(config, training_config)
                        : (void *)NNTKRNNCreateForInference(config);
    case NNTK_RECURRENT_GRU:
        return training ? (void *)NNTKGRUCreateForTraining(config, training_config)
                        : (void *)NNTKGRUCreateForInference(config);
    case NNTK_RECURRENT_LSTM:
        return training ? (void *)NNTKLSTMCreateForTraining(config, training_config)
                        : (void *)NNTKLSTMCreateForInference(config);
    }
    return NULL;
}

static void inner_destroy(NNTKRecurrentKind kind, void *filter) {
    switch (kind) {
    case NNTK_RECURRENT_RNN: NNTKRNNDestroy(filter); break;
    case NNTK_RECURRENT_GRU: NNTKGRUDestroy(filter); break;
    case NNTK_RECURRENT_LSTM: NNTKLSTMDestroy(filter); break;
    }
}

static NNTKStatus inner_get_weights(NNTKRecurrentKind kind, void *filter, float **w, int64_t *n) {
    switch (kind) {
    case NNTK_RECURRENT_RNN: return NNTKRNNGetWeights(filter, w, n);
    case NNTK_RECURRENT_GRU: return NNTKGRUGetWeights(filter, w, n);
    case NNTK_RECURRENT_LSTM: return NNTKLSTMGetWeights(filter, w, n);
    }
    return NNTK_ERROR_INVALID_STATE;
}

static NNTKStatus inner_apply(NNTKRecurrentKind kind, void *filter, int training, int64_t batch,
                              int64_t steps, const float *in, const float *initial_state,
                              float *out, float *final_state) {
    switch (kind) {
    case NNTK_RECURRENT_RNN:
        return training ? NNTKRNNApplyTrainingBatchWithState(filter, batch, steps, in, initial_state,
                                                             out, final_state)
                        : NNTKRNNApplyInferenceWithState(filter, batch, steps, in, initial_state,
                                                         out, final_state);
    case NNTK_RECURRENT_GRU:
        return training ? NNTKGRUApplyTrainingBatchWithState(filter, batch, steps, in, initial_state,
                                                             out, final_state)
                        : NNTKGRUApplyInferenceWithState(filter, batch, steps, in, initial_state,
                                                         out, final_state);
    case NNTK_RECURRENT_LSTM:
        return training ? NNTKLSTMApplyTrainingBatchWithState(filter, batch, steps, in,
                                                              initial_state, out, final_state)
                        : NNTKLSTMApplyInferenceWithState(filter, batch, steps, in, initial_state,
                                                          out, final_state);
    }
    return NNTK_ERROR_INVALID_STATE;
}

static void *inner_gradient_create(NNTKRecurrentKind kind, const void *filter) {
    switch (kind) {
    case NNTK_RECURRENT_RNN: return NNTKRNNGradientCreate(filter);
    case NNTK_RECURRENT_GRU: return NNTKGRUGradientCreate(filter);
    case NNTK_RECURRENT_LSTM: return NNTKLSTMGradientCreate(filter);
    }
    return NULL;
}

static void inner_gradient_destroy(NNTKRecurrentKind kind, void *gradient) {
    switch (kind) {
    case NNTK_RECURRENT_RNN: NNTKRNNGradientDestroy(gradient); break;
    case NNTK_RECURRENT_GRU: NNTKGRUGradientDestroy(gradient); break;
    case NNTK_RECURRENT_LSTM: NNTKLSTMGradientDestroy(gradient); break;
    }
}

static NNTKStatus inner_gradient_get_weights(NNTKRecurrentKind kind, void *gradient, float **w,
                                             int64_t *n) {
    switch (kind) {
    case NNTK_RECURRENT_RNN: return NNTKRNNGradientGetWeights(gradient, w, n);
    case NNTK_RECURRENT_GRU: return NNTKGRUGradientGetWeights(gradient, w, n);
    case NNTK_RECURRENT_LSTM: return NNTKLSTMGradientGetWeights(gradient, w, n);
    }
    return NNTK_ERROR_INVALID_STATE;
}

static NNTKStatus inner_calculate(NNTKRecurrentKind kind, void *filter, void *gradient,
                                  const float *d_out, const float *d_final_state, float *d_in,
                                  float *d_initial_state) {
    switch (kind) {
    case NNTK_RECURRENT_RNN:
        return NNTKRNNCalculateGradientWithState(filter, gradient, d_out, d_final_state, d_in,
                                                 d_initial_state);
    case NNTK_RECURRENT_GRU:
        return NNTKGRUCalculateGradientWithState(filter, gradient, d_out, d_final_state, d_in,
                                                 d_initial_state);
    case NNTK_RECURRENT_LSTM:
        return NNTKLSTMCalculateGradientWithState(filter, gradient, d_out, d_final_state, d_in,
                                                  d_initial_state);
    }
    return NNTK_ERROR_INVALID_STATE;
}

/* --- handles ------------------------------------------------------------------------------ */

struct NNTKBidirectionalConfig {
    uint32_t tag;
    NNTKRecurrentKind kind;
    NNTKMergeMode merge;
    int64_t input_dim, units, states; /* D, U, S */
    int32_t return_sequences, go_backwards;
    void *forward, *backward; /* the inner layers' configs (backward: go_backwards negated) */
};

struct NNTKBidirectional {
    uint32_t tag;
    NNTKRecurrentKind kind;
    NNTKMergeMode merge;
    int64_t input_dim, units, states;
    int32_t return_sequences, go_backwards, training;
    void *forward, *backward; /* the inner filters */
    float *weights;           /* forward block, then backward block */
    int64_t half;             /* floats in one inner block */
    /* The last training batch (batch = 0: none). */
    int64_t batch, steps;
    /* Workspace: the two inner outputs (B, T', U) each, kept from the last
     * training batch (mul needs them for the gradient); inference uses
     * `scratch` instead so a training batch survives it. */
    float *kept;
    int64_t kept_capacity;
    float *scratch;
    int64_t scratch_capacity;
};

struct NNTKBidirectionalGradient {
    uint32_t tag;
    const NNTKBidirectional *filter;
    NNTKRecurrentKind kind;   /* kept: the filter may be destroyed first */
    void *forward, *backward; /* the inner gradients */
    float *d_weights;         /* same layout as the weights */
    int64_t count;
};

NNTK_API NNTKBidirectionalConfig *NNTKBidirectionalConfigCreate(
    int32_t layer, int64_t input_dim, int64_t units, int32_t activation,
    int32_t recurrent_activation, int32_t use_bias, int32_t reset_after,
    int32_t return_sequences, int32_t go_backwards, int32_t merge_mode) {
    static const char fn[] = "NNTKBidirectionalConfigCreate";
    /* GCOVR_EXCL_BR_START: argument validation */
    if (layer < NNTK_RECURRENT_RNN || layer > NNTK_RECURRENT_LSTM) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                  "%s: layer = %d is not a recurrent layer (NNTK_RECURRENT_RNN, _GRU or _LSTM)", fn,
                  (int)layer);
        return NULL;
    }
    if (merge_mode < NNTK_MERGE_CONCAT || merge_mode > NNTK_MERGE_NONE) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: merge_mode = %d is not a NNTKMergeMode", fn,
                  (int)merge_mode);
        return NULL;
    }
    /* Checked for every layer kind, although an RNN has no gates: an out-of-range
     * value is a caller's mistake, not a "don't care". */
    if (nntk_check_activation(fn, "recurrent_activation", recurrent_activation) != NNTK_OK)
        return NULL;
    if (reset_after != 0 && layer != NNTK_RECURRENT_GRU) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: reset_after must be 0 unless layer is GRU (got %d)",
                  fn, (int)reset_after);
        return NULL;
    }
    if (go_backwards != 0 && go_backwards != 1) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: go_backwards must be 0 or 1 (got %d)", fn,
                  (int)go_backwards);
        return NULL;
    }
    /* GCOVR_EXCL_BR_STOP */
    void *inner[2] = {NULL, NULL};
    for (int dir = 0; dir < 2; dir++) {
        const int32_t backwards = dir == 0 ? go_backwards : !go_backwards;
        switch ((NNTKRecurrentKind)layer) {
        case NNTK_RECURRENT_RNN:
            inner[dir] = NNTKRNNConfigCreate(input_dim, units, activation, use_bias,
                                             return_sequences, backwards);
            break;
        case NNTK_RECURRENT_GRU:
            inner[dir] = NNTKGRUConfigCreate(input_dim, units, activation, recurrent_activation,
                                             use_bias, reset_after, return_sequences, backwards);
            break;
        case NNTK_RECURRENT_LSTM:
            inner[dir] = NNTKLSTMConfigCreate(input_dim, units, activation, recurrent_activation,
                                              use_bias, return_sequences, backwards);
            break;
        }
        /* GCOVR_EXCL_BR_START: an inner config refused (argument validation) or out of memory */
        if (inner[dir] == NULL) {
            relabel(fn, NNTKLastStatus());
            if (dir == 1) inner_config_destroy((NNTKRecurrentKind)layer, inner[0]);
            return NULL;
        }
        /* GCOVR_EXCL_BR_STOP */
    }
    NNTKBidirectionalConfig *config = calloc(1, sizeof *config);
    if (config == NULL) {
        inner_config_destroy((NNTKRecurrentKind)layer, inner[0]);
        inner_config_destroy((NNTKRecurrentKind)layer, inner[1]);
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *config = (NNTKBidirectionalConfig){CONFIG_TAG,
                                        (NNTKRecurrentKind)layer,
                                        (NNTKMergeMode)merge_mode,
                                        input_dim,
                                        units,
                                        layer == NNTK_RECURRENT_LSTM ? 2 : 1,
                                        return_sequences,
                                        go_backwards,
                                        inner[0],
                                        inner[1]};
    return config;
}

NNTK_API void NNTKBidirectionalConfigDestroy(NNTKBidirectionalConfig *config) {
    if (config == NULL || config->tag != CONFIG_TAG) return;
    config->tag = NNTK_TAG_DEAD;
    inner_config_destroy(config->kind, config->forward);
    inner_config_destroy(config->kind, config->backward);
    free(config);
}

/* --- inference, streamed ----------------------------------------------------------------- */
/* Inference with return_sequences streams each direction through the sequence
 * CHUNK_STEPS steps at a time (the inner layers' WithState calls carry the
 * state, and streaming gives the whole-sequence bits) and merges each chunk's
 * outputs into `out` as they come: the backward direction first, stored where
 * the merge puts it, then the forward direction combined with it (the merge
 * operations are commutative, so the bits are those of merge_forward). The
 * scratch then does not grow with T: it is reserved at Create. */
enum { CHUNK_STEPS = NNTK_BIDIRECTIONAL_CHUNK_STEPS }; /* core/blocking.h */

/* Scratch of an inference call: without return_sequences the two outputs
 * (2, B, U); with it a gathered input chunk (B, C, D) when B > 1, one chunk's
 * output (B, C, U) and two states (S, B, U). */
static int64_t inference_scratch(const NNTKBidirectional *f, int64_t batch) {
    const int64_t bu = batch * f->units;
    if (!f->return_sequences) return 2 * bu;
    return (batch > 1 ? batch * CHUNK_STEPS * f->input_dim : 0) + CHUNK_STEPS * bu +
           2 * f->states * bu;
}

/* Puts v (U,), the value of direction `dir` (0 forward, 1 backward) at merged
 * position p of sample b, into out; the backward direction's comes first. */
static void merge_streamed(const NNTKBidirectional *f, int dir, int64_t batch, int64_t steps,
                           int64_t b, int64_t p, const float *v, float *out) {
    const int64_t u = f->units, row = b * steps + p;
    float *o;
    switch (f->merge) {
    case NNTK_MERGE_CONCAT: nntk_copy(out + row * 2 * u + dir * u, v, u); return;
    case NNTK_MERGE_NONE: nntk_copy(out + (dir * batch * steps + row) * u, v, u); return;
    default: break;
    }
    o = out + row * u; /* (U,): the backward value, then the merge */
    if (dir == 1) {
        nntk_copy(o, v, u);
        return;
    }
    for (int64_t j = 0; j < u; j++) {
        switch (f->merge) {
        case NNTK_MERGE_SUM: o[j] = v[j] + o[j]; break;
        case NNTK_MERGE_MUL: o[j] = v[j] * o[j]; break;
        case NNTK_MERGE_AVE: o[j] = (v[j] + o[j]) / 2.0f; break;
        default: break;
        }
    }
}

static NNTKStatus apply_streamed(const char *fn, NNTKBidirectional *f, int64_t batch, int64_t steps,
                                 const float *in, const float *initial_state, float *out,
                                 float *final_state) {
    const int64_t u = f->units, d = f->input_dim, state = f->states * batch * u; /* S·B·U */
    NNTKStatus s = nntk_reserve(fn, &f->scratch, &f->scratch_capacity, inference_scratch(f, batch));
    if (s != NNTK_OK) return s;
    float *x = f->scratch;                                /* (B, C, D), batch > 1 */
    float *y = x + (batch > 1 ? batch * CHUNK_STEPS * d : 0); /* (B, C, U) */
    float *states[2] = {y + batch * CHUNK_STEPS * u, y + batch * CHUNK_STEPS * u + state};
    for (int dir = 1; dir >= 0; dir--) { /* backward direction first */
        void *inner = dir ? f->backward : f->forward;
        const int backwards = dir ? !f->go_backwards : f->go_backwards; /* the inner layer's */
        const float *carry = initial_state ? initial_state + dir * state : NULL; /* (S, B, U) */
        int64_t chunk = 0;
        for (int64_t k0 = 0; k0 < steps; k0 += CHUNK_STEPS, chunk++) {
            const int64_t n = steps - k0 < CHUNK_STEPS ? steps - k0 : CHUNK_STEPS;
            const int64_t lo = backwards ? steps - k0 - n : k0; /* the chunk's first position */
            const float *xc = in + lo * d;                      /* (1, n, D) */
            if (batch > 1) {
                for (int64_t b = 0; b < batch; b++) nntk_copy(x + b * n * d, in + (b * steps + lo) * d, n * d);
                xc = x;
            }
            float *next = states[chunk % 2];
            s = inner_apply(f->kind, inner, 0, batch, n, xc, carry, y, next);
            if (s != NNTK_OK) return relabel(fn, s);
            carry = next;
            /* y[b, j] is the inner layer's processing step k0 + j: merged position
             * k0 + j for the forward layer, T-1-(k0+j) for the backward one. */
            for (int64_t b = 0; b < batch; b++)
                for (int64_t j = 0; j < n; j++) {
                    const int64_t p = dir ? steps - 1 - (k0 + j) : k0 + j;
                    merge_streamed(f, dir, batch, steps, b, p, y + (b * n + j) * u, out);
                }
        }
        if (final_state) nntk_copy(final_state + dir * state, carry, state);
    }
    return NNTK_OK;
}

static NNTKBidirectional *create(const char *fn, const NNTKBidirectionalConfig *config,
                                 int training, const NNTKTrainingConfig *training_config) {
    if (nntk_check_handle(fn, "config", config, CONFIG_TAG) != NNTK_OK) return NULL;
    NNTKBidirectional *f = calloc(1, sizeof *f);
    if (f == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    f->tag = FILTER_TAG;
    f->kind = config->kind;
    f->merge = config->merge;
    f->input_dim = config->input_dim;
    f->units = config->units;
    f->states = config->states;
    f->return_sequences = config->return_sequences;
    f->go_backwards = config->go_backwards;
    f->training = training;
    f->forward = inner_create(f->kind, config->forward, training, training_config);
    /* GCOVR_EXCL_BR_START: out of memory: the forward direction was not created */
    f->backward = f->forward ? inner_create(f->kind, config->backward, training, training_config) : NULL;
    /* GCOVR_EXCL_BR_STOP */
    if (f->backward == NULL) {
        relabel(fn, NNTKLastStatus());
        NNTKBidirectionalDestroy(f);
        return NULL;
    }
    float *inner_weights;
    if (relabel(fn, inner_get_weights(f->kind, f->forward, &inner_weights, &f->half)) != NNTK_OK) {
        NNTKBidirectionalDestroy(f);
        return NULL;
    }
    f->weights = nntk_alloc_floats(2 * f->half);
    if (f->weights == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for %lld weights", fn,
                  (long long)(2 * f->half));
        NNTKBidirectionalDestroy(f);
        return NULL;
    }
    /* Every handle reserves the inference scratch for batch 1 (any length:
     * see apply_streamed); a training capacity also reserves the two
     * directions' outputs kept for the gradient (2·B·T'·U), the gradient's
     * scratch (2·B·T'·U + B·T·D + S·B·U) and the inference scratch of its batch,
     * so no call up to that size allocates. */
    int64_t max_batch = 0, max_steps = 0;
    if (training && nntk_training_capacity(fn, training_config, &max_batch, &max_steps) != NNTK_OK) {
        NNTKBidirectionalDestroy(f);
        return NULL;
    }
    /* GCOVR_EXCL_BR_START: out of memory */
    if (nntk_reserve(fn, &f->scratch, &f->scratch_capacity,
                     inference_scratch(f, max_batch > 0 ? max_batch : 1)) != NNTK_OK) {
    /* GCOVR_EXCL_BR_STOP */
        NNTKBidirectionalDestroy(f);
        return NULL;
    }
    if (max_batch > 0) {
        const int64_t one = max_batch * (f->return_sequences ? max_steps : 1) * f->units;
        const int64_t dx = max_batch * max_steps * f->input_dim;
        const int64_t state = f->states * max_batch * f->units;
        /* GCOVR_EXCL_BR_START: out of memory */
        if (nntk_reserve(fn, &f->kept, &f->kept_capacity, 2 * one) != NNTK_OK ||
            nntk_reserve(fn, &f->scratch, &f->scratch_capacity, 2 * one + dx + state) != NNTK_OK) {
        /* GCOVR_EXCL_BR_STOP */
            NNTKBidirectionalDestroy(f);
            return NULL;
        }
    }
    return f;
}

NNTK_API NNTKBidirectional *NNTKBidirectionalCreateForInference(
    const NNTKBidirectionalConfig *config) {
    return create("NNTKBidirectionalCreateForInference", config, 0, NULL);
}

NNTK_API NNTKBidirectional *NNTKBidirectionalCreateForTraining(
    const NNTKBidirectionalConfig *config, const NNTKTrainingConfig *training_config) {
    return create("NNTKBidirectionalCreateForTraining", config, 1, training_config);
}

NNTK_API void NNTKBidirectionalDestroy(NNTKBidirectional *filter) {
    if (filter == NULL || filter->tag != FILTER_TAG) return;
    filter->tag = NNTK_TAG_DEAD;
    inner_destroy(filter->kind, filter->forward);
    inner_destroy(filter->kind, filter->backward);
    nntk_free(filter->weights);
    nntk_free(filter->kept);
    nntk_free(filter->scratch);
    free(filter);
}

NNTK_API NNTKStatus NNTKBidirectionalGetWeights(NNTKBidirectional *filter, float **weights,
                                                int64_t *count) {
    static const char fn[] = "NNTKBidirectionalGetWeights";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *weights = filter->weights;
    *count = 2 * filter->half;
    return NNTK_OK;
}

/* Copies the weight block into the two inner layers (the user may have
 * written it since the last call). */
static NNTKStatus sync_weights(const char *fn, NNTKBidirectional *f) {
    void *inner[2] = {f->forward, f->backward};
    for (int dir = 0; dir < 2; dir++) {
        float *w;
        int64_t n;
        NNTKStatus s = relabel(fn, inner_get_weights(f->kind, inner[dir], &w, &n));
        if (s != NNTK_OK) return s;
        nntk_copy(w, f->weights + dir * f->half, n);
    }
    return NNTK_OK;
}

static int64_t out_features(const NNTKBidirectional *f) {
    return (f->merge == NNTK_MERGE_CONCAT || f->merge == NNTK_MERGE_NONE) ? 2 * f->units : f->units;
}

NNTK_API NNTKStatus NNTKBidirectionalOutputShape(const NNTKBidirectional *filter, int64_t batch,
                                                 int64_t steps, int64_t *out_steps,
                                                 int64_t *out_features_) {
    static const char fn[] = "NNTKBidirectionalOutputShape";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_steps", out_steps)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_features", out_features_)) != NNTK_OK) return s;
    if ((s = nntk_check_batch(fn, batch, steps, filter->input_dim + 2 * filter->units)) != NNTK_OK)
        return s;
    *out_steps = filter->return_sequences ? steps : 1;
    *out_features_ = out_features(filter);
    return NNTK_OK;
}

/* --- merge ---------------------------------------------------------------------------------- */

/* Where the backward output aligned with merged position p (of T') lives in
 * the backward layer's own output (its processing order). */
static int64_t backward_index(const NNTKBidirectional *f, int64_t p, int64_t steps) {
    return f->return_sequences ? steps - 1 - p : p;
}

/* out = merge(fwd, bwd reversed back); fwd, bwd (B, T', U). */
static void merge_forward(const NNTKBidirectional *f, int64_t batch, int64_t steps,
                          const float *fwd, const float *bwd, float *out) {
    const int64_t u = f->units, tp = f->return_sequences ? steps : 1;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t p = 0; p < tp; p++) {
            const float *fv = fwd + (b * tp + p) * u;                             /* (U,) */
            const float *bv = bwd + (b * tp + backward_index(f, p, steps)) * u;   /* (U,) */
            switch (f->merge) {
            case NNTK_MERGE_CONCAT: {
                float *o = out + (b * tp + p) * 2 * u; /* (2U,) */
                nntk_copy(o, fv, u);
                nntk_copy(o + u, bv, u);
                break;
            }
            case NNTK_MERGE_NONE:
                nntk_copy(out + (b * tp + p) * u, fv, u);
                nntk_copy(out + (batch * tp + b * tp + p) * u, bv, u);
                break;
            case NNTK_MERGE_SUM:
                for (int64_t j = 0; j < u; j++) out[(b * tp + p) * u + j] = fv[j] + bv[j];
                break;
            case NNTK_MERGE_MUL:
                for (int64_t j = 0; j < u; j++) out[(b * tp + p) * u + j] = fv[j] * bv[j];
                break;
            case NNTK_MERGE_AVE:
                for (int64_t j = 0; j < u; j++) out[(b * tp + p) * u + j] = (fv[j] + bv[j]) / 2.0f;
                break;
            }
        }
}

/* d_fwd, d_bwd (B, T', U), each in its layer's own output order, from d_out. */
static void merge_backward(const NNTKBidirectional *f, int64_t batch, int64_t steps,
                           const float *fwd, const float *bwd, const float *d_out, float *d_fwd,
                           float *d_bwd) {
    const int64_t u = f->units, tp = f->return_sequences ? steps : 1;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t p = 0; p < tp; p++) {
            const int64_t fi = (b * tp + p) * u, bi = (b * tp + backward_index(f, p, steps)) * u;
            switch (f->merge) {
            case NNTK_MERGE_CONCAT:
                nntk_copy(d_fwd + fi, d_out + (b * tp + p) * 2 * u, u);
                nntk_copy(d_bwd + bi, d_out + (b * tp + p) * 2 * u + u, u);
                break;
            case NNTK_MERGE_NONE:
                nntk_copy(d_fwd + fi, d_out + (b * tp + p) * u, u);
                nntk_copy(d_bwd + bi, d_out + (batch * tp + b * tp + p) * u, u);
                break;
            case NNTK_MERGE_SUM:
                nntk_copy(d_fwd + fi, d_out + (b * tp + p) * u, u);
                nntk_copy(d_bwd + bi, d_out + (b * tp + p) * u, u);
                break;
            case NNTK_MERGE_MUL:
                for (int64_t j = 0; j < u; j++) {
                    const float g = d_out[(b * tp + p) * u + j];
                    d_fwd[fi + j] = g * bwd[bi + j];
                    d_bwd[bi + j] = g * fwd[fi + j];
                }
                break;
            case NNTK_MERGE_AVE:
                for (int64_t j = 0; j < u; j++) {
                    const float g = d_out[(b * tp + p) * u + j] / 2.0f;
                    d_fwd[fi + j] = g;
                    d_bwd[bi + j] = g;
                }
                break;
            }
        }
}

/* --- apply ---------------------------------------------------------------------------------- */

static NNTKStatus apply(const char *fn, NNTKBidirectional *filter, int training, int64_t batch,
                        int64_t steps, const float *in, const float *initial_state, float *out,
                        float *final_state) {
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "in", in)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out", out)) != NNTK_OK) return s;
    if ((s = nntk_check_batch(fn, batch, steps, filter->input_dim + 2 * filter->units)) != NNTK_OK)
        return s;
    if (training && !filter->training)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
    if (!training && filter->return_sequences) {
        if ((s = sync_weights(fn, filter)) != NNTK_OK) return s;
        return apply_streamed(fn, filter, batch, steps, in, initial_state, out, final_state);
    }
    const int64_t one = batch * (filter->return_sequences ? steps : 1) * filter->units; /* B·T'·U */
    const int64_t state = filter->states * batch * filter->units;                       /* S·B·U */
    float *buf;
    if (training) {
        filter->batch = 0; /* invalid until this batch is complete */
        s = nntk_reserve(fn, &filter->kept, &filter->kept_capacity, 2 * one);
        buf = filter->kept;
    } else {
        s = nntk_reserve(fn, &filter->scratch, &filter->scratch_capacity, 2 * one);
        buf = filter->scratch;
    }
    if (s != NNTK_OK) return s;
    if ((s = sync_weights(fn, filter)) != NNTK_OK) return s;
    float *fwd = buf, *bwd = buf + one; /* (B, T', U) each */
    s = inner_apply(filter->kind, filter->forward, training, batch, steps, in, initial_state, fwd,
                    final_state);
    if (s != NNTK_OK) return relabel(fn, s);
    s = inner_apply(filter->kind, filter->backward, training, batch, steps, in,
                    initial_state ? initial_state + state : NULL, bwd,
                    final_state ? final_state + state : NULL);
    if (s != NNTK_OK) return relabel(fn, s);
    merge_forward(filter, batch, steps, fwd, bwd, out);
    if (training) {
        filter->batch = batch;
        filter->steps = steps;
    }
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKBidirectionalApplyInference(NNTKBidirectional *filter, int64_t batch,
                                                    int64_t steps, const float *in, float *out) {
    return apply("NNTKBidirectionalApplyInference", filter, 0, batch, steps, in, NULL, out, NULL);
}

NNTK_API NNTKStatus NNTKBidirectionalApplyTrainingBatch(NNTKBidirectional *filter, int64_t batch,
                                                        int64_t steps, const float *in,
                                                        float *out) {
    return apply("NNTKBidirectionalApplyTrainingBatch", filter, 1, batch, steps, in, NULL, out, NULL);
}

NNTK_API NNTKStatus NNTKBidirectionalApplyInferenceWithState(NNTKBidirectional *filter,
                                                             int64_t batch, int64_t steps,
                                                             const float *in,
                                                             const float *initial_state,
                                                             float *out, float *final_state) {
    return apply("NNTKBidirectionalApplyInferenceWithState", filter, 0, batch, steps, in,
                 initial_state, out, final_state);
}

NNTK_API NNTKStatus NNTKBidirectionalApplyTrainingBatchWithState(NNTKBidirectional *filter,
                                                                 int64_t batch, int64_t steps,
                                                                 const float *in,
                                                                 const float *initial_state,
                                                                 float *out, float *final_state) {
    return apply("NNTKBidirectionalApplyTrainingBatchWithState", filter, 1, batch, steps, in,
                 initial_state, out, final_state);
}

/* --- gradients ------------------------------------------------------------------------------ */

NNTK_API NNTKBidirectionalGradient *NNTKBidirectionalGradientCreate(
    const NNTKBidirectional *filter) {
    static const char fn[] = "NNTKBidirectionalGradientCreate";
    if (nntk_check_handle(fn, "filter", filter, FILTER_TAG) != NNTK_OK) return NULL;
    if (!filter->training) {
        nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
        return NULL;
    }
    NNTKBidirectionalGradient *g = calloc(1, sizeof *g);
    if (g == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    g->tag = GRADIENT_TAG;
    g->filter = filter;
    g->kind = filter->kind;
    g->count = 2 * filter->half;
    g->forward = inner_gradient_create(filter->kind, filter->forward);
    /* GCOVR_EXCL_BR_START: out of memory: the forward direction's gradient was not created */
    g->backward = g->forward ? inner_gradient_create(filter->kind, filter->backward) : NULL;
    /* GCOVR_EXCL_BR_STOP */
    if (g->backward == NULL) {
        relabel(fn, NNTKLastStatus());
        NNTKBidirectionalGradientDestroy(g);
        return NULL;
    }
    g->d_weights = nntk_alloc_floats(g->count);
    if (g->d_weights == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        NNTKBidirectionalGradientDestroy(g);
        return NULL;
    }
    return g;
}

NNTK_API void NNTKBidirectionalGradientDestroy(NNTKBidirectionalGradient *gradient) {
    if (gradient == NULL || gradient->tag != GRADIENT_TAG) return;
    gradient->tag = NNTK_TAG_DEAD;
    inner_gradient_destroy(gradient->kind, gradient->forward);
    inner_gradient_destroy(gradient->kind, gradient->backward);
    nntk_free(gradient->d_weights);
    free(gradient);
}

NNTK_API NNTKStatus NNTKBidirectionalGradientGetWeights(NNTKBidirectionalGradient *gradient,
                                                        float **weights, int64_t *count) {
    static const char fn[] = "NNTKBidirectionalGradientGetWeights";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "gradient", gradient, GRADIENT_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *weights = gradient->d_weights;
    *count = gradient->count;
    return NNTK_OK;
}

static NNTKStatus calculate(const char *fn, NNTKBidirectional *filter,
                            NNTKBidirectionalGradient *gradient, const float *d_out,
                            const float *d_final_state, float *d_in, float *d_initial_state) {
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_handle(fn, "gradient", gradient, GRADIENT_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "d_out", d_out)) != NNTK_OK) return s;
    if (gradient->filter != filter)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: gradient was created for another filter", fn);
    if (!filter->training)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
    if (filter->batch == 0)
        return nntk_fail(NNTK_ERROR_INVALID_STATE,
                         "%s: no training batch yet (call NNTKBidirectionalApplyTrainingBatch first)", fn);
    const int64_t batch = filter->batch, steps = filter->steps;
    const int64_t one = batch * (filter->return_sequences ? steps : 1) * filter->units; /* B·T'·U */
    const int64_t state = filter->states * batch * filter->units;                       /* S·B·U */
    const int64_t dx = batch * steps * filter->input_dim;                               /* B·T·D */
    /* scratch: d_fwd, d_bwd (B, T', U) each, then the backward layer's d_in (B, T, D)
     * and d_initial_state (S, B, U). */
    if ((s = nntk_reserve(fn, &filter->scratch, &filter->scratch_capacity, 2 * one + dx + state)) !=
        NNTK_OK)
        return s;
    if ((s = sync_weights(fn, filter)) != NNTK_OK) return s;
    float *d_fwd = filter->scratch, *d_bwd = d_fwd + one, *dx_bwd = d_bwd + one, *dh0_bwd = dx_bwd + dx;
    const float *fwd = filter->kept, *bwd = filter->kept + one; /* (B, T', U) each */
    merge_backward(filter, batch, steps, fwd, bwd, d_out, d_fwd, d_bwd);
    /* The backward direction first, into scratch: each inner call may still
     * allocate (growth) and fail, and a failure must leave d_in and
     * d_initial_state unwritten, so only the last call writes them. */
    s = inner_calculate(filter->kind, filter->backward, gradient->backward, d_bwd,
                        d_final_state ? d_final_state + state : NULL, d_in ? dx_bwd : NULL,
                        d_initial_state ? dh0_bwd : NULL);
    if (s != NNTK_OK) return relabel(fn, s);
    s = inner_calculate(filter->kind, filter->forward, gradient->forward, d_fwd, d_final_state,
                        d_in, d_initial_state);
    if (s != NNTK_OK) return relabel(fn, s);
    if (d_in)
        for (int64_t i = 0; i < dx; i++) d_in[i] = d_in[i] + dx_bwd[i];
    if (d_initial_state) nntk_copy(d_initial_state + state, dh0_bwd, state);
    void *inner[2] = {gradient->forward, gradient->backward};
    for (int dir = 0; dir < 2; dir++) {
        float *w;
        int64_t n;
        if ((s = relabel(fn, inner_gradient_get_weights(filter->kind, inner[dir], &w, &n))) != NNTK_OK)
            return s;
        nntk_copy(gradient->d_weights + dir * filter->half, w, n);
    }
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKBidirectionalCalculateGradient(NNTKBidirectional *filter,
                                                       NNTKBidirectionalGradient *gradient,
                                                       const float *d_out, float *d_in) {
    return calculate("NNTKBidirectionalCalculateGradient", filter, gradient, d_out, NULL, d_in, NULL);
}

NNTK_API NNTKStatus NNTKBidirectionalCalculateGradientWithState(
    NNTKBidirectional *filter, NNTKBidirectionalGradient *gradient, const float *d_out,
    const float *d_final_state, float *d_in, float *d_initial_state) {
    return calculate("NNTKBidirectionalCalculateGradientWithState", filter, gradient, d_out,
                     d_final_state, d_in, d_initial_state);
}
