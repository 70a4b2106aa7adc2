/* Bidirectional: wraps a layer with states (any layer type whose config has
 * go_backwards: RNN, GRU, LSTM), given by its type and config. A handle holds
 * two inner layer handles created through the generic layer functions, the
 * backward one with go_backwards negated; this file only merges the two
 * outputs, splits the merged gradient, and keeps the one contiguous weight
 * block (copied into the inner layers before they run).
 *
 * Shapes: B = batch, T = steps, D = input_dim, U = units, S = state floats
 * per batch row of one direction (U per state), T' = return_sequences ? T : 1. */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "core/blocking.h"
#include "core/internal.h"
#include "core/layer.h"
#include "core/recurrent.h"
#include "nntk/bidirectional.h"

#define relabel nntk_relabel

enum { MERGE_MODE, FIELDS };

static const char *const merge_names[] = {"concat", "sum", "mul", "ave", "none"};

/* GCOVR_EXCL_BR_START: argument validation */
static NNTKStatus check_merge(const char *fn, const char *arg, int32_t value) {
    if (value < NNTK_MERGE_CONCAT || value > NNTK_MERGE_NONE)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s = %d is not a NNTKMergeMode", fn, arg,
                         (int)value);
    return NNTK_OK;
}
/* GCOVR_EXCL_BR_STOP */

static const NNTKLayerField fields[FIELDS] = {
    [MERGE_MODE] = {.name = "merge_mode",
                    .kind = NNTK_FIELD_ENUM,
                    .default_value = NNTK_MERGE_CONCAT,
                    .min = NNTK_MERGE_CONCAT,
                    .max = NNTK_MERGE_NONE,
                    .enum_names = merge_names,
                    .enum_count = NNTK_MERGE_NONE + 1,
                    .check = check_merge},
};

/* A config field of the wrapped layer, by its Keras name (its own code knows
 * it by its index). -1 when it has none. */
static int64_t inner_field(const NNTKLayerConfig *inner, const char *name) {
    const int32_t i = nntk_layer_field_index(inner->type, name);
    return i >= 0 ? nntk_layer_int(inner, i) : -1;
}

/* GCOVR_EXCL_BR_START: argument validation */
static NNTKStatus check_wrappable(const char *fn, const NNTKLayerConfig *inner) {
    int64_t widths[NNTK_LAYER_MAX_STATES];
    const int32_t n = nntk_layer_state_widths(inner, widths);
    if (n == 0 || 2 * n > NNTK_LAYER_MAX_STATES || inner_field(inner, "go_backwards") < 0)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: inner: a %s layer cannot be wrapped (Bidirectional needs a layer with "
                         "states and go_backwards)",
                         fn, inner->type->name);
    return NNTK_OK;
}
/* GCOVR_EXCL_BR_STOP */

/* The wrapped layer's blocks, for the forward then the backward direction
 * (none for a config without its inner config, which init refuses). */
static int32_t weights(const NNTKLayerConfig *config, NNTKWeightBlock *blocks) {
    if (config->inner == NULL) return 0;
    const int32_t n = nntk_layer_weight_blocks(config->inner, blocks);
    for (int32_t i = 0; i < n; i++) blocks[n + i] = blocks[i];
    return 2 * n;
}

/* The forward direction's states, then the backward direction's. */
static int32_t states(const NNTKLayerConfig *config, int64_t *widths) {
    if (config->inner == NULL) return 0;
    const int32_t n = nntk_layer_state_widths(config->inner, widths);
    for (int32_t i = 0; i < n; i++) widths[n + i] = widths[i];
    return 2 * n;
}

/* --- the handle's state ---------------------------------------------------------------------- */

typedef struct Wrapper {
    const NNTKLayerType *type; /* the wrapped layer's */
    NNTKLayer *inner[2];       /* the forward and backward directions */
    NNTKLayerGradient *inner_gradient[2]; /* training handles: theirs */
    NNTKMergeMode merge;
    int64_t input_dim, units, state_row; /* D, U, S */
    int32_t return_sequences, go_backwards;
    int64_t half; /* floats in one direction's weight block */
    /* The workspace (NNTKLayer.workspace) keeps the two directions' outputs
     * (B, T', U) each of the last training batch (mul needs them for the
     * gradient); inference and the gradient use `scratch` so that a training
     * batch survives them. */
    float *scratch;
    int64_t scratch_capacity;
} Wrapper;

/* The public name of the wrapped layer's function `what` ("NNTKGRUCreateForTraining"). */
static const char *inner_name(const Wrapper *w, const char *what, char *buf, size_t size) {
    snprintf(buf, size, "NNTK%s%s", w->type->name, what);
    return buf;
}

enum { CHUNK_STEPS = NNTK_BIDIRECTIONAL_CHUNK_STEPS }; /* core/blocking.h */

/* Scratch of an inference call: without return_sequences the two outputs
 * (2, B, U); with it a gathered input chunk (B, C, D) when B > 1, one chunk's
 * output (B, C, U) and two states (S, B, U). */
static int64_t inference_scratch(const Wrapper *w, int64_t batch) {
    const int64_t bu = batch * w->units;
    if (!w->return_sequences) return 2 * bu;
    return (batch > 1 ? batch * CHUNK_STEPS * w->input_dim : 0) + CHUNK_STEPS * bu +
           2 * w->state_row * batch;
}

/* Creates the two directions (the backward one from a copy of the inner config
 * with go_backwards negated) and, for training, their gradients. Every handle
 * reserves the inference scratch for batch 1 (any length: see apply_streamed);
 * a training capacity is reserved by `reserve` and by the inner layers. */
static NNTKStatus init(const char *fn, NNTKLayer *layer, const NNTKLayerConfig *config,
                       const NNTKTrainingConfig *training_config) {
    Wrapper *w = layer->state;
    const NNTKLayerConfig *inner = config->inner;
    char name[96];
    /* GCOVR_EXCL_BR_START: argument validation */
    if (inner == NULL)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: config has no inner layer config (see NNTKBidirectionalConfigCreate)", fn);
    /* GCOVR_EXCL_BR_STOP */
    w->type = inner->type;
    w->merge = (NNTKMergeMode)nntk_layer_int(config, MERGE_MODE);
    w->input_dim = inner_field(inner, "input_dim");
    w->units = inner_field(inner, "units");
    w->return_sequences = (int32_t)inner_field(inner, "return_sequences");
    w->go_backwards = (int32_t)inner_field(inner, "go_backwards");
    int64_t widths[NNTK_LAYER_MAX_STATES];
    const int32_t n = nntk_layer_state_widths(inner, widths);
    for (int32_t i = 0; i < n; i++) w->state_row += widths[i];
    NNTKLayerConfig backward = *inner;
    backward.values[nntk_layer_field_index(w->type, "go_backwards")].i = !w->go_backwards;
    const NNTKLayerConfig *directions[2] = {inner, &backward};
    const char *create = inner_name(w, layer->training ? "CreateForTraining" : "CreateForInference",
                                    name, sizeof name);
    for (int dir = 0; dir < 2; dir++) {
        w->inner[dir] = nntk_layer_create(create, w->type, directions[dir], layer->training,
                                          training_config);
        /* GCOVR_EXCL_BR_START: out of memory */
        if (w->inner[dir] == NULL) return relabel(fn, NNTKLastStatus());
        if (layer->training) {
            w->inner_gradient[dir] = nntk_layer_gradient_create(
                inner_name(w, "GradientCreate", name, sizeof name), w->type, w->inner[dir]);
            if (w->inner_gradient[dir] == NULL) return relabel(fn, NNTKLastStatus());
        }
        /* GCOVR_EXCL_BR_STOP */
    }
    w->half = w->inner[0]->weight_count;
    return nntk_reserve(fn, &w->scratch, &w->scratch_capacity, inference_scratch(w, 1));
}

static void release(NNTKLayer *layer) {
    Wrapper *w = layer->state;
    for (int dir = 0; dir < 2; dir++) {
        nntk_layer_gradient_destroy(w->inner_gradient[dir], w->type);
        nntk_layer_destroy(w->inner[dir], w->type);
    }
    nntk_free(w->scratch);
}

/* A training batch: the two directions' outputs kept (2·B·T'·U) and the
 * gradient's scratch (2·B·T'·U + B·T·D + 2·S·B, see backward), and the
 * inference scratch of its batch, so that no call up to that size allocates. */
static NNTKStatus reserve(const char *fn, NNTKLayer *layer, int64_t batch, int64_t steps,
                          int64_t out_steps) {
    Wrapper *w = layer->state;
    const int64_t one = batch * out_steps * w->units;
    const int64_t gradient = 2 * one + batch * steps * w->input_dim + w->state_row * batch;
    const int64_t inference = inference_scratch(w, batch);
    NNTKStatus s = nntk_layer_reserve(fn, layer, 2 * one);
    if (s != NNTK_OK) return s;
    return nntk_reserve(fn, &w->scratch, &w->scratch_capacity,
                        gradient > inference ? gradient : inference);
}

static int64_t out_features(const Wrapper *w) {
    return (w->merge == NNTK_MERGE_CONCAT || w->merge == NNTK_MERGE_NONE) ? 2 * w->units : w->units;
}

static NNTKStatus output_shape(const char *fn, const NNTKLayer *layer, int64_t batch, int64_t steps,
                               int64_t *out_steps, int64_t *out_features_) {
    const Wrapper *w = layer->state;
    NNTKStatus s = nntk_check_batch(fn, batch, steps, w->input_dim + 2 * w->units);
    *out_steps = w->return_sequences ? steps : 1;
    *out_features_ = out_features(w);
    return s;
}

/* Copies the weight block into the two inner layers (the user may have
 * written it since the last call). */
static void sync_weights(const NNTKLayer *layer) {
    const Wrapper *w = layer->state;
    for (int dir = 0; dir < 2; dir++)
        nntk_copy(w->inner[dir]->weights, layer->weights + dir * w->half, w->half);
}

/* One direction's forward pass, from initial_state (S, B, U) (NULL = zeros). */
static NNTKStatus inner_apply(const char *fn, const Wrapper *w, int dir, NNTKApplyMode mode,
                              int64_t batch, int64_t steps, const float *in,
                              const float *initial_state, float *out, float *final_state) {
    char name[96];
    inner_name(w, mode == NNTK_APPLY_INFERENCE ? "ApplyInferenceWithState"
                                               : "ApplyTrainingBatchWithState",
               name, sizeof name);
    return relabel(fn, nntk_layer_apply(name, w->type, w->inner[dir], mode, batch, steps, in,
                                        initial_state, out, final_state));
}

/* --- merge ---------------------------------------------------------------------------------- */

/* Where the backward output aligned with merged position p (of T') lives in
 * the backward layer's own output (its processing order). */
static int64_t backward_index(const Wrapper *w, int64_t p, int64_t steps) {
    return w->return_sequences ? steps - 1 - p : p;
}

/* out = merge(fwd, bwd reversed back); fwd, bwd (B, T', U). */
static void merge_forward(const Wrapper *w, int64_t batch, int64_t steps, const float *fwd,
                          const float *bwd, float *out) {
    const int64_t u = w->units, tp = w->return_sequences ? steps : 1;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t p = 0; p < tp; p++) {
            const float *fv = fwd + (b * tp + p) * u;                           /* (U,) */
            const float *bv = bwd + (b * tp + backward_index(w, p, steps)) * u; /* (U,) */
            switch (w->merge) {
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
static void merge_backward(const Wrapper *w, int64_t batch, int64_t steps, const float *fwd,
                           const float *bwd, const float *d_out, float *d_fwd, float *d_bwd) {
    const int64_t u = w->units, tp = w->return_sequences ? steps : 1;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t p = 0; p < tp; p++) {
            const int64_t fi = (b * tp + p) * u, bi = (b * tp + backward_index(w, p, steps)) * u;
            switch (w->merge) {
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

/* --- inference, streamed ----------------------------------------------------------------- */
/* Inference with return_sequences streams each direction through the sequence
 * CHUNK_STEPS steps at a time (the inner layers' WithState calls carry the
 * state, and streaming gives the whole-sequence bits) and merges each chunk's
 * outputs into `out` as they come: the backward direction first, stored where
 * the merge puts it, then the forward direction combined with it (the merge
 * operations are commutative, so the bits are those of merge_forward). The
 * scratch then does not grow with T: it is reserved at Create. */

/* Puts v (U,), the value of direction `dir` (0 forward, 1 backward) at merged
 * position p of sample b, into out; the backward direction's comes first. */
static void merge_streamed(const Wrapper *w, int dir, int64_t batch, int64_t steps, int64_t b,
                           int64_t p, const float *v, float *out) {
    const int64_t u = w->units, row = b * steps + p;
    float *o;
    switch (w->merge) {
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
        switch (w->merge) {
        case NNTK_MERGE_SUM: o[j] = v[j] + o[j]; break;
        case NNTK_MERGE_MUL: o[j] = v[j] * o[j]; break;
        case NNTK_MERGE_AVE: o[j] = (v[j] + o[j]) / 2.0f; break;
        default: break;
        }
    }
}

static NNTKStatus apply_streamed(const char *fn, Wrapper *w, int64_t batch, int64_t steps,
                                 const float *in, const float *initial_state, float *out,
                                 float *final_state) {
    const int64_t u = w->units, d = w->input_dim, state = w->state_row * batch; /* S·B */
    NNTKStatus s = nntk_reserve(fn, &w->scratch, &w->scratch_capacity, inference_scratch(w, batch));
    if (s != NNTK_OK) return s;
    float *x = w->scratch;                                    /* (B, C, D), batch > 1 */
    float *y = x + (batch > 1 ? batch * CHUNK_STEPS * d : 0); /* (B, C, U) */
    float *states_[2] = {y + batch * CHUNK_STEPS * u, y + batch * CHUNK_STEPS * u + state};
    for (int dir = 1; dir >= 0; dir--) { /* backward direction first */
        const int backwards = dir ? !w->go_backwards : w->go_backwards; /* the inner layer's */
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
            float *next = states_[chunk % 2];
            s = inner_apply(fn, w, dir, NNTK_APPLY_INFERENCE, batch, n, xc, carry, y, next);
            if (s != NNTK_OK) return s;
            carry = next;
            /* y[b, j] is the inner layer's processing step k0 + j: merged position
             * k0 + j for the forward layer, T-1-(k0+j) for the backward one. */
            for (int64_t b = 0; b < batch; b++)
                for (int64_t j = 0; j < n; j++) {
                    const int64_t p = dir ? steps - 1 - (k0 + j) : k0 + j;
                    merge_streamed(w, dir, batch, steps, b, p, y + (b * n + j) * u, out);
                }
        }
        if (final_state) nntk_copy(final_state + dir * state, carry, state);
    }
    return NNTK_OK;
}

/* --- forward and backward ---------------------------------------------------------------- */

static NNTKStatus forward(const char *fn, NNTKLayer *layer, NNTKApplyMode mode, int64_t batch,
                          int64_t steps, int64_t out_steps, const float *in,
                          const float *initial_state, float *out, float *final_state) {
    Wrapper *w = layer->state;
    sync_weights(layer);
    if (mode == NNTK_APPLY_INFERENCE && w->return_sequences)
        return apply_streamed(fn, w, batch, steps, in, initial_state, out, final_state);
    const int64_t one = batch * out_steps * w->units; /* B·T'·U */
    const int64_t state = w->state_row * batch;       /* S·B */
    float *buf = layer->workspace;                    /* training: reserved by `reserve` */
    if (mode == NNTK_APPLY_INFERENCE) {
        NNTKStatus s = nntk_reserve(fn, &w->scratch, &w->scratch_capacity, 2 * one);
        if (s != NNTK_OK) return s;
        buf = w->scratch;
    }
    float *fwd = buf, *bwd = buf + one; /* (B, T', U) each */
    NNTKStatus s = inner_apply(fn, w, 0, mode, batch, steps, in, initial_state, fwd, final_state);
    if (s != NNTK_OK) return s;
    s = inner_apply(fn, w, 1, mode, batch, steps, in, initial_state ? initial_state + state : NULL,
                    bwd, final_state ? final_state + state : NULL);
    if (s != NNTK_OK) return s;
    merge_forward(w, batch, steps, fwd, bwd, out);
    return NNTK_OK;
}

/* One direction's gradient (of its last training batch). */
static NNTKStatus inner_calculate(const char *fn, const Wrapper *w, int dir, const float *d_out,
                                  const float *d_final_state, float *d_in,
                                  float *d_initial_state) {
    char name[96];
    inner_name(w, "CalculateGradientWithState", name, sizeof name);
    return relabel(fn, nntk_layer_calculate_gradient(name, w->type, w->inner[dir],
                                                     w->inner_gradient[dir], d_out, d_final_state,
                                                     d_in, d_initial_state));
}

static NNTKStatus backward(const char *fn, NNTKLayer *layer, const float *d_out,
                           const float *d_final_state, float *d_in, float *d_initial_state,
                           float *d_weights) {
    Wrapper *w = layer->state;
    const int64_t batch = layer->batch, steps = layer->steps;
    const int64_t one = batch * layer->out_steps * w->units; /* B·T'·U */
    const int64_t state = w->state_row * batch;              /* S·B */
    const int64_t dx = batch * steps * w->input_dim;         /* B·T·D */
    /* scratch: d_fwd, d_bwd (B, T', U) each, then the backward layer's d_in (B, T, D)
     * and d_initial_state (S, B, U). */
    NNTKStatus s = nntk_reserve(fn, &w->scratch, &w->scratch_capacity, 2 * one + dx + state);
    if (s != NNTK_OK) return s;
    sync_weights(layer);
    float *d_fwd = w->scratch, *d_bwd = d_fwd + one, *dx_bwd = d_bwd + one, *dh0_bwd = dx_bwd + dx;
    const float *fwd = layer->workspace, *bwd = layer->workspace + one; /* (B, T', U) each */
    merge_backward(w, batch, steps, fwd, bwd, d_out, d_fwd, d_bwd);
    /* The backward direction first, into scratch: each inner call may still
     * allocate (growth) and fail, and a failure must leave d_in and
     * d_initial_state unwritten, so only the last call writes them. */
    s = inner_calculate(fn, w, 1, d_bwd, d_final_state ? d_final_state + state : NULL,
                        d_in ? dx_bwd : NULL, d_initial_state ? dh0_bwd : NULL);
    if (s != NNTK_OK) return s;
    s = inner_calculate(fn, w, 0, d_fwd, d_final_state, d_in, d_initial_state);
    if (s != NNTK_OK) return s;
    if (d_in)
        for (int64_t i = 0; i < dx; i++) d_in[i] = d_in[i] + dx_bwd[i];
    if (d_initial_state) nntk_copy(d_initial_state + state, dh0_bwd, state);
    for (int dir = 0; dir < 2; dir++)
        nntk_copy(d_weights + dir * w->half, w->inner_gradient[dir]->d_weights, w->half);
    return NNTK_OK;
}

static NNTKLayerConfig *create_for(const char *fn, const NNTKLayerConfig *inner,
                                   const NNTKLayerValue *values);

/* The wrapped layer's shapes (its return_sequences). */
static int32_t drops_steps(const NNTKLayerConfig *config) {
    const NNTKLayerConfig *inner = config->inner;
    return inner != NULL && inner->type->drops_steps != NULL && inner->type->drops_steps(inner);
}

const NNTKLayerType nntk_bidirectional_type = {
    NNTK_LAYER_NAMES("Bidirectional", "Bidirectional", 'B', 'i', 'd'),
    NNTK_LAYER_FIELDS(fields),
    .keras_positional = 1, /* Bidirectional(layer, merge_mode, weights, ...) */
    .weights = weights,
    .states = states,
    .wraps = 1,
    .create_for = create_for,
    .sequence_input = 1, /* tf.keras takes (B, T, D) only */
    .drops_steps = drops_steps,
    .state_size = sizeof(Wrapper),
    .init = init,
    .release = release,
    NNTK_LAYER_STANDARD_OPS,
};

/* --- public API --------------------------------------------------------------------------- */

/* The real interface: Bidirectional around `inner` (any layer with states and
 * go_backwards; copied), merged by merge_mode: NNTKBidirectionalConfigCreateFor. */
static NNTKLayerConfig *config_create_for(const char *fn, const NNTKLayerConfig *inner,
                                          int32_t merge_mode) {
    if (nntk_layer_check_handle(fn, "inner", inner, NULL, NNTK_ROLE_CONFIG) != NNTK_OK) return NULL;
    if (check_wrappable(fn, inner) != NNTK_OK) return NULL;
    const NNTKLayerValue values[FIELDS] = {{.i = merge_mode}};
    NNTKLayerConfig *config = nntk_layer_config_create(fn, &nntk_bidirectional_type, values);
    if (config == NULL) return NULL;
    if ((config->inner = nntk_layer_config_copy(fn, inner)) == NULL) {
        nntk_layer_config_destroy(config, &nntk_bidirectional_type);
        return NULL;
    }
    return config;
}

/* The type's create_for op: its one field is merge_mode. */
static NNTKLayerConfig *create_for(const char *fn, const NNTKLayerConfig *inner,
                                   const NNTKLayerValue *values) {
    return config_create_for(fn, inner, (int32_t)values[0].i);
}

NNTK_API NNTKBidirectionalConfig *NNTKBidirectionalConfigCreateFor(const NNTKLayerConfig *inner,
                                                                   int32_t merge_mode) {
    return (NNTKBidirectionalConfig *)config_create_for("NNTKBidirectionalConfigCreateFor", inner,
                                                        merge_mode);
}

/* The compatibility interface: the wrapped layer by kind (the one place the
 * kinds appear) and its arguments by their Keras names. */
static const NNTKLayerType *const kinds[] = {
    [NNTK_RECURRENT_RNN] = &nntk_rnn_type,
    [NNTK_RECURRENT_GRU] = &nntk_gru_type,
    [NNTK_RECURRENT_LSTM] = &nntk_lstm_type,
};

NNTK_API NNTKBidirectionalConfig *NNTKBidirectionalConfigCreate(
    int32_t layer, int64_t input_dim, int64_t units, int32_t activation,
    int32_t recurrent_activation, int32_t use_bias, int32_t reset_after,
    int32_t return_sequences, int32_t go_backwards, int32_t merge_mode) {
    static const char fn[] = "NNTKBidirectionalConfigCreate";
    const struct {
        const char *name;
        int64_t value;
    } args[] = {{"input_dim", input_dim},
                {"units", units},
                {"activation", activation},
                {"recurrent_activation", recurrent_activation},
                {"use_bias", use_bias},
                {"reset_after", reset_after},
                {"return_sequences", return_sequences},
                {"go_backwards", go_backwards}};
    enum { ARGS = sizeof args / sizeof args[0] };
    /* GCOVR_EXCL_BR_START: argument validation */
    if (layer < NNTK_RECURRENT_RNN || layer > NNTK_RECURRENT_LSTM) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                  "%s: layer = %d is not a recurrent layer (NNTK_RECURRENT_RNN, _GRU or _LSTM)", fn,
                  (int)layer);
        return NULL;
    }
    const NNTKLayerType *type = kinds[layer];
    if (check_merge(fn, "merge_mode", merge_mode) != NNTK_OK) return NULL;
    /* Checked for every layer kind, although an RNN has no gates: an out-of-range
     * value is a caller's mistake, not a "don't care". */
    if (nntk_check_activation(fn, "recurrent_activation", recurrent_activation) != NNTK_OK)
        return NULL;
    /* Any other argument the wrapped layer does not have must be 0. */
    for (int a = 0; a < ARGS; a++) {
        if (nntk_layer_field_index(type, args[a].name) >= 0 || args[a].value == 0 ||
            strcmp(args[a].name, "recurrent_activation") == 0)
            continue;
        const char *having = "no layer";
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            if (nntk_layer_field_index(kinds[k], args[a].name) >= 0) having = kinds[k]->name;
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s must be 0 unless layer is %s (got %lld)", fn,
                  args[a].name, having, (long long)args[a].value);
        return NULL;
    }
    if (go_backwards != 0 && go_backwards != 1) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: go_backwards must be 0 or 1 (got %d)", fn,
                  (int)go_backwards);
        return NULL;
    }
    /* GCOVR_EXCL_BR_STOP */
    /* The wrapped layer's config: each field from the argument of its name,
     * else its default. */
    NNTKLayerValue values[NNTK_LAYER_MAX_FIELDS];
    for (int32_t i = 0; i < type->field_count; i++) {
        const double fallback = type->fields[i].default_value; /* NAN: required (an argument) */
        values[i].i = isnan(fallback) ? 0 : (int64_t)fallback;
        for (int a = 0; a < ARGS; a++)
            if (strcmp(type->fields[i].name, args[a].name) == 0) values[i].i = args[a].value;
    }
    char name[96];
    snprintf(name, sizeof name, "NNTK%sConfigCreate", type->name);
    NNTKLayerConfig *inner = nntk_layer_config_create(name, type, values);
    /* GCOVR_EXCL_BR_START: an inner config refused (argument validation) or out of memory */
    if (inner == NULL) {
        relabel(fn, NNTKLastStatus());
        return NULL;
    }
    /* GCOVR_EXCL_BR_STOP */
    NNTKLayerConfig *config = config_create_for(fn, inner, merge_mode);
    nntk_layer_config_destroy(inner, type);
    return (NNTKBidirectionalConfig *)config;
}

NNTK_DEFINE_STATEFUL_LAYER(Bidirectional, nntk_bidirectional_type)
