/* GRU (tf.keras GRU, both reset_after variants): the cell (one step forward,
 * one step backward), the loop over time, and the public functions. Shared
 * handle code and the sequence order live in core/recurrent.c.
 *
 * Shapes: B = batch, T = steps, D = input_dim, U = units; gate blocks are
 * [z | r | h], each U wide, so a gate tensor is (B, 3U). Per-step values are
 * kept in processing order k = 0..T-1 (input position
 * nntk_recurrent_position(k): k, or T-1-k with go_backwards). */
#include <string.h>

#include "core/internal.h"
#include "core/ops.h"
#include "core/recurrent.h"
#include "nntk/gru.h"

#define CONFIG_TAG NNTK_TAG('G', 'r', 'u', 'C')
#define FILTER_TAG NNTK_TAG('G', 'r', 'u', 'F')
#define GRADIENT_TAG NNTK_TAG('G', 'r', 'u', 'G')

/* The public handle types are the shared recurrent structs. */
#define F(filter) ((NNTKRecurrentFilter *)(filter))
#define CF(filter) ((const NNTKRecurrentFilter *)(filter))

/* --- the cell ----------------------------------------------------------------------------- */

/* One step's values (the cache slots of step k, or inference scratch). */
typedef struct {
    float *pre; /* (B, 3U) pre-activations [z | r | h] */
    float *act; /* (B, 3U) activations [z | r | ĥ] */
    float *rec; /* (B, U) reset_after: hh = (h_prev·R + b_rec)[:, h block];
                 *        else: r ⊙ h_prev (what multiplies R[:, 2U:]) */
} Step;

/* One step forward. x_t holds B rows of D spaced ldx apart; h_prev, h (B, U);
 * xp, hp (B, 3U) scratch. */
static void cell_forward(const NNTKRecurrentFilter *f, int64_t batch, const float *x_t,
                         int64_t ldx, const float *h_prev, float *xp, float *hp, Step st,
                         float *h) {
    const int64_t d = f->spec.input_dim, u = f->spec.units, g3 = 3 * u;
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    const float *b_in = w.bias;                                            /* (3U,) or NULL */
    const float *b_rec = (w.bias && f->spec.reset_after) ? w.bias + g3 : NULL; /* (3U,) or NULL */
    /* xp = x_t · W + b_in */
    nntk_gemm(0, 0, batch, g3, d, 1.0f, x_t, ldx, w.kernel, g3, 0.0f, xp, g3);
    if (b_in)
        for (int64_t b = 0; b < batch; b++)
            for (int64_t j = 0; j < g3; j++) xp[b * g3 + j] = xp[b * g3 + j] + b_in[j];
    /* hp = h_prev · R + b_rec (reset_after), else only the z, r blocks: h_prev · R[:, :2U] */
    nntk_gemm(0, 0, batch, f->spec.reset_after ? g3 : 2 * u, u, 1.0f, h_prev, u, w.recurrent, g3,
              0.0f, hp, g3);
    if (b_rec)
        for (int64_t b = 0; b < batch; b++)
            for (int64_t j = 0; j < g3; j++) hp[b * g3 + j] = hp[b * g3 + j] + b_rec[j];
    /* z = σ(xz + hz), r = σ(xr + hr) */
    for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < 2 * u; j++) st.pre[b * g3 + j] = xp[b * g3 + j] + hp[b * g3 + j];
    nntk_recurrent_activate(f->spec.recurrent_activation, batch, u, g3, st.pre, st.act);
    nntk_recurrent_activate(f->spec.recurrent_activation, batch, u, g3, st.pre + u, st.act + u);
    if (f->spec.reset_after) {
        /* ĥ = act(xh + r ⊙ hh) */
        for (int64_t b = 0; b < batch; b++)
            for (int64_t j = 0; j < u; j++) {
                const float hh = hp[b * g3 + 2 * u + j], r = st.act[b * g3 + u + j];
                st.rec[b * u + j] = hh;
                st.pre[b * g3 + 2 * u + j] = xp[b * g3 + 2 * u + j] + r * hh;
            }
    } else {
        /* ĥ = act(xh + (r ⊙ h_prev) · R[:, 2U:]) */
        for (int64_t b = 0; b < batch; b++)
            for (int64_t j = 0; j < u; j++) st.rec[b * u + j] = st.act[b * g3 + u + j] * h_prev[b * u + j];
        nntk_gemm(0, 0, batch, u, u, 1.0f, st.rec, u, w.recurrent + 2 * u, g3, 0.0f, hp + 2 * u, g3);
        for (int64_t b = 0; b < batch; b++)
            for (int64_t j = 0; j < u; j++)
                st.pre[b * g3 + 2 * u + j] = xp[b * g3 + 2 * u + j] + hp[b * g3 + 2 * u + j];
    }
    nntk_recurrent_activate(f->spec.activation, batch, u, g3, st.pre + 2 * u, st.act + 2 * u);
    /* h = z ⊙ h_prev + (1 - z) ⊙ ĥ, evaluated in exactly this form (as Keras) */
    for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < u; j++) {
            const float z = st.act[b * g3 + j], hc = st.act[b * g3 + 2 * u + j];
            h[b * u + j] = z * h_prev[b * u + j] + (1.0f - z) * hc;
        }
}

/* Gradient pointers into the gradient block. */
typedef struct {
    float *kernel;    /* (D, 3U) */
    float *recurrent; /* (U, 3U) */
    float *b_in;      /* (3U,) input bias (reset_after = 0: the only bias), or NULL */
    float *b_rec;     /* (3U,) recurrent bias (reset_after = 1), or NULL */
} Grads;

/* Backward scratch, (B, 3U) each. */
typedef struct {
    float *d_act; /* d of the activations [z | r | ĥ] */
    float *a_x;   /* d of the input-side pre-activations [xz | xr | xh] */
    float *a_h;   /* d of the recurrent-side projection [hz | hr | hh] (reset_after) */
} Scratch;

/* One step backward. dh (B, U) is the whole upstream gradient of h_t.
 * Accumulates the weight gradients, writes d_x_t (B rows of D spaced ldx
 * apart, unless NULL) and dh_prev (B, U). */
static void cell_backward(const NNTKRecurrentFilter *f, int64_t batch, const float *x_t,
                          int64_t ldx, const float *h_prev, Step st, const float *dh, Scratch sc,
                          Grads g, float *d_x_t, float *dh_prev) {
    const int64_t d = f->spec.input_dim, u = f->spec.units, g3 = 3 * u;
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    /* h = z ⊙ h_prev + (1 - z) ⊙ ĥ */
    for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < u; j++) {
            const float gr = dh[b * u + j], z = st.act[b * g3 + j], hc = st.act[b * g3 + 2 * u + j];
            sc.d_act[b * g3 + j] = gr * h_prev[b * u + j] - gr * hc; /* dz */
            sc.d_act[b * g3 + 2 * u + j] = gr * (1.0f - z);        /* dĥ */
            dh_prev[b * u + j] = gr * z;
        }
    /* ĥ = act(pre_h) */
    nntk_recurrent_activate_backward(f->spec.activation, batch, u, g3, st.pre + 2 * u,
                                     st.act + 2 * u, sc.d_act + 2 * u, sc.a_x + 2 * u);
    if (f->spec.reset_after) {
        /* pre_h = xh + r ⊙ hh: dr = δ ⊙ hh, d hh = δ ⊙ r */
        for (int64_t b = 0; b < batch; b++)
            for (int64_t j = 0; j < u; j++) {
                const float delta = sc.a_x[b * g3 + 2 * u + j];
                sc.d_act[b * g3 + u + j] = delta * st.rec[b * u + j];
                sc.a_h[b * g3 + 2 * u + j] = delta * st.act[b * g3 + u + j];
            }
    } else {
        /* pre_h = xh + (r ⊙ h_prev) · R_h: q = δ · R_hᵀ, dr = q ⊙ h_prev, dh_prev += q ⊙ r,
         * dR_h += (r ⊙ h_prev)ᵀ · δ. a_h's h block holds q. */
        float *q = sc.a_h + 2 * u; /* (B, U) spaced 3U apart */
        nntk_gemm(0, 1, batch, u, u, 1.0f, sc.a_x + 2 * u, g3, w.recurrent + 2 * u, g3, 0.0f, q, g3);
        for (int64_t b = 0; b < batch; b++)
            for (int64_t j = 0; j < u; j++) {
                sc.d_act[b * g3 + u + j] = q[b * g3 + j] * h_prev[b * u + j];
                dh_prev[b * u + j] = dh_prev[b * u + j] + q[b * g3 + j] * st.act[b * g3 + u + j];
            }
        nntk_gemm(1, 0, u, u, batch, 1.0f, st.rec, u, sc.a_x + 2 * u, g3, 1.0f, g.recurrent + 2 * u, g3);
    }
    /* z = σ(pre_z), r = σ(pre_r) */
    nntk_recurrent_activate_backward(f->spec.recurrent_activation, batch, u, g3, st.pre, st.act,
                                     sc.d_act, sc.a_x);
    nntk_recurrent_activate_backward(f->spec.recurrent_activation, batch, u, g3, st.pre + u,
                                     st.act + u, sc.d_act + u, sc.a_x + u);
    /* Input side: xp = x_t · W + b_in. */
    nntk_gemm(1, 0, d, g3, batch, 1.0f, x_t, ldx, sc.a_x, g3, 1.0f, g.kernel, g3);
    if (g.b_in) nntk_sum_rows(batch, g3, sc.a_x, g.b_in, 1);
    if (d_x_t) nntk_gemm(0, 1, batch, d, g3, 1.0f, sc.a_x, g3, w.kernel, g3, 0.0f, d_x_t, ldx);
    /* Recurrent side. */
    if (f->spec.reset_after) {
        /* hp = h_prev · R + b_rec; its gradient is [δz | δr | δ ⊙ r]. */
        for (int64_t b = 0; b < batch; b++)
            for (int64_t j = 0; j < 2 * u; j++) sc.a_h[b * g3 + j] = sc.a_x[b * g3 + j];
        nntk_gemm(1, 0, u, g3, batch, 1.0f, h_prev, u, sc.a_h, g3, 1.0f, g.recurrent, g3);
        if (g.b_rec) nntk_sum_rows(batch, g3, sc.a_h, g.b_rec, 1);
        nntk_gemm(0, 1, batch, u, g3, 1.0f, sc.a_h, g3, w.recurrent, g3, 1.0f, dh_prev, u);
    } else {
        /* [hz | hr] = h_prev · R[:, :2U]; gradient [δz | δr]. */
        nntk_gemm(1, 0, u, 2 * u, batch, 1.0f, h_prev, u, sc.a_x, g3, 1.0f, g.recurrent, g3);
        nntk_gemm(0, 1, batch, u, 2 * u, 1.0f, sc.a_x, g3, w.recurrent, g3, 1.0f, dh_prev, u);
    }
}

/* --- the sequence ------------------------------------------------------------------------- */

/* Training cache (processing order):
 *   x   (B, T, D)    the input
 *   h   (T+1, B, U)  h[0] = initial state, h[k+1] = state after step k
 *   pre (T, B, 3U), act (T, B, 3U), rec (T, B, U): Step of every k */
typedef struct {
    float *x, *h, *pre, *act, *rec;
} Cache;

static int64_t cache_size(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps) {
    const int64_t bu = batch * s->units;
    return batch * steps * s->input_dim + (steps + 1) * bu + 7 * steps * bu;
}

static Cache cache_layout(const NNTKRecurrentFilter *f, int64_t batch, int64_t steps) {
    const int64_t bu = batch * f->spec.units;
    Cache c;
    c.x = f->cache;
    c.h = c.x + batch * steps * f->spec.input_dim;
    c.pre = c.h + (steps + 1) * bu;
    c.act = c.pre + 3 * steps * bu;
    c.rec = c.act + 3 * steps * bu;
    return c;
}

static Step cache_step(Cache c, int64_t k, int64_t bu) {
    return (Step){c.pre + 3 * k * bu, c.act + 3 * k * bu, c.rec + k * bu};
}

/* Runs the whole sequence from h0 (B, U) (NULL = zeros). training: keeps
 * every step in the cache (whose x already holds the input); otherwise two
 * states and one Step live in the scratch. */
static NNTKStatus forward(const char *fn, NNTKRecurrentFilter *f, int training, int64_t batch,
                          int64_t steps, const float *in, const float *h0, float *out,
                          float *final_state) {
    const int64_t d = f->spec.input_dim, u = f->spec.units, bu = batch * u;
    float *scratch;
    NNTKStatus s = nntk_recurrent_reserve_scratch(fn, f, training ? 6 * bu : 15 * bu, &scratch);
    if (s != NNTK_OK) return s;
    float *xp = scratch, *hp = xp + 3 * bu; /* (B, 3U) each */
    float *hs;                              /* states */
    Cache c = {0};
    Step one = {0};
    if (training) {
        c = cache_layout(f, batch, steps);
        in = c.x;
        hs = c.h;
    } else {
        hs = hp + 3 * bu; /* (2, B, U): ping-pong */
        one = (Step){hs + 2 * bu, hs + 5 * bu, hs + 8 * bu};
    }
    nntk_recurrent_load_state(batch, u, h0, hs);
    for (int64_t k = 0; k < steps; k++) {
        const int64_t t = nntk_recurrent_position(&f->spec, k, steps);
        const float *h_prev = hs + (training ? k : k % 2) * bu; /* (B, U) */
        float *h = hs + (training ? k + 1 : (k + 1) % 2) * bu;   /* (B, U) */
        cell_forward(f, batch, in + t * d, steps * d, h_prev, xp, hp,
                     training ? cache_step(c, k, bu) : one, h);
        nntk_recurrent_store_output(&f->spec, batch, steps, k, h, out);
    }
    if (final_state) nntk_copy(final_state, hs + (training ? steps : steps % 2) * bu, bu);
    return NNTK_OK;
}

static NNTKStatus apply(const char *fn, NNTKGRU *filter, int training, int64_t batch, int64_t steps,
                        const float *in, const float *initial_state, float *out,
                        float *final_state) {
    NNTKStatus s = nntk_recurrent_check_apply(fn, CF(filter), FILTER_TAG, training, batch, steps, in, out);
    if (s != NNTK_OK) return s;
    NNTKRecurrentFilter *f = F(filter);
    if (training) {
        f->batch = 0; /* invalid until this batch is complete */
        if ((s = nntk_recurrent_reserve_cache(fn, f, cache_size(&f->spec, batch, steps))) != NNTK_OK)
            return s;
        nntk_copy(cache_layout(f, batch, steps).x, in, batch * steps * f->spec.input_dim);
    }
    if ((s = forward(fn, f, training, batch, steps, in, initial_state, out, final_state)) != NNTK_OK)
        return s;
    if (training) {
        f->batch = batch;
        f->steps = steps;
    }
    return NNTK_OK;
}

/* BPTT over the kept batch, last processing step first. */
static NNTKStatus backward(const char *fn, NNTKRecurrentFilter *f, NNTKRecurrentGradient *gradient,
                           const float *d_out, const float *d_final_state, float *d_in,
                           float *d_initial_state) {
    const int64_t batch = f->batch, steps = f->steps, d = f->spec.input_dim, u = f->spec.units;
    const int64_t bu = batch * u, g3 = 3 * u;
    float *scratch;
    NNTKStatus s = nntk_recurrent_reserve_scratch(fn, f, 11 * bu, &scratch);
    if (s != NNTK_OK) return s;
    float *dh = scratch, *carry = dh + bu; /* (B, U) each */
    Scratch sc = {carry + bu, carry + 4 * bu, carry + 7 * bu};
    const Cache c = cache_layout(f, batch, steps);
    memset(gradient->d_weights, 0, (size_t)gradient->count * sizeof(float));
    Grads g;
    g.kernel = gradient->d_weights;
    g.recurrent = g.kernel + d * g3;
    g.b_in = f->spec.use_bias ? g.recurrent + u * g3 : NULL;
    g.b_rec = (f->spec.use_bias && f->spec.reset_after) ? g.b_in + g3 : NULL;
    const float *incoming = d_final_state; /* gradient reaching h after step k (besides d_out) */
    for (int64_t k = steps - 1; k >= 0; k--) {
        const int64_t t = nntk_recurrent_position(&f->spec, k, steps);
        nntk_recurrent_output_gradient(&f->spec, batch, steps, k, d_out, incoming, dh);
        cell_backward(f, batch, c.x + t * d, steps * d, c.h + k * bu, cache_step(c, k, bu), dh, sc,
                      g, d_in ? d_in + t * d : NULL, carry);
        incoming = carry;
    }
    if (d_initial_state) nntk_copy(d_initial_state, carry, bu);
    return NNTK_OK;
}

/* --- public API --------------------------------------------------------------------------- */

NNTK_API NNTKGRUConfig *NNTKGRUConfigCreate(int64_t input_dim, int64_t units, int32_t activation,
                                            int32_t recurrent_activation, int32_t use_bias,
                                            int32_t reset_after, int32_t return_sequences,
                                            int32_t go_backwards) {
    static const char fn[] = "NNTKGRUConfigCreate";
    NNTKRecurrentSpec spec;
    if (nntk_recurrent_spec_init(fn, &spec, input_dim, units, 3, 1, activation,
                                 recurrent_activation, use_bias, reset_after, return_sequences,
                                 go_backwards) != NNTK_OK)
        return NULL;
    return (NNTKGRUConfig *)nntk_recurrent_config_create(fn, CONFIG_TAG, &spec);
}

NNTK_API void NNTKGRUConfigDestroy(NNTKGRUConfig *config) {
    nntk_recurrent_config_destroy((NNTKRecurrentConfig *)config, CONFIG_TAG);
}

NNTK_API NNTKGRU *NNTKGRUCreateForInference(const NNTKGRUConfig *config) {
    return (NNTKGRU *)nntk_recurrent_create("NNTKGRUCreateForInference",
                                            (const NNTKRecurrentConfig *)config, CONFIG_TAG,
                                            FILTER_TAG, 0, NULL, cache_size);
}

NNTK_API NNTKGRU *NNTKGRUCreateForTraining(const NNTKGRUConfig *config,
                                           const NNTKTrainingConfig *training_config) {
    return (NNTKGRU *)nntk_recurrent_create("NNTKGRUCreateForTraining",
                                            (const NNTKRecurrentConfig *)config, CONFIG_TAG,
                                            FILTER_TAG, 1, training_config, cache_size);
}

NNTK_API void NNTKGRUDestroy(NNTKGRU *filter) { nntk_recurrent_destroy(F(filter), FILTER_TAG); }

NNTK_API NNTKStatus NNTKGRUGetWeights(NNTKGRU *filter, float **weights, int64_t *count) {
    return nntk_recurrent_get_weights("NNTKGRUGetWeights", F(filter), FILTER_TAG, weights, count);
}

NNTK_API NNTKStatus NNTKGRUOutputShape(const NNTKGRU *filter, int64_t batch, int64_t steps,
                                       int64_t *out_steps, int64_t *out_features) {
    return nntk_recurrent_output_shape("NNTKGRUOutputShape", CF(filter), FILTER_TAG, batch, steps,
                                       out_steps, out_features);
}

NNTK_API NNTKStatus NNTKGRUApplyInference(NNTKGRU *filter, int64_t batch, int64_t steps,
                                          const float *in, float *out) {
    return apply("NNTKGRUApplyInference", filter, 0, batch, steps, in, NULL, out, NULL);
}

NNTK_API NNTKStatus NNTKGRUApplyTrainingBatch(NNTKGRU *filter, int64_t batch, int64_t steps,
                                              const float *in, float *out) {
    return apply("NNTKGRUApplyTrainingBatch", filter, 1, batch, steps, in, NULL, out, NULL);
}

NNTK_API NNTKStatus NNTKGRUApplyInferenceWithState(NNTKGRU *filter, int64_t batch, int64_t steps,
                                                   const float *in, const float *initial_state,
                                                   float *out, float *final_state) {
    return apply("NNTKGRUApplyInferenceWithState", filter, 0, batch, steps, in, initial_state, out,
                 final_state);
}

NNTK_API NNTKStatus NNTKGRUApplyTrainingBatchWithState(NNTKGRU *filter, int64_t batch,
                                                       int64_t steps, const float *in,
                                                       const float *initial_state, float *out,
                                                       float *final_state) {
    return apply("NNTKGRUApplyTrainingBatchWithState", filter, 1, batch, steps, in, initial_state,
                 out, final_state);
}

NNTK_API NNTKGRUGradient *NNTKGRUGradientCreate(const NNTKGRU *filter) {
    return (NNTKGRUGradient *)nntk_recurrent_gradient_create("NNTKGRUGradientCreate", CF(filter),
                                                             FILTER_TAG, GRADIENT_TAG);
}

NNTK_API void NNTKGRUGradientDestroy(NNTKGRUGradient *gradient) {
    nntk_recurrent_gradient_destroy((NNTKRecurrentGradient *)gradient, GRADIENT_TAG);
}

NNTK_API NNTKStatus NNTKGRUGradientGetWeights(NNTKGRUGradient *gradient, float **weights,
                                              int64_t *count) {
    return nntk_recurrent_gradient_get_weights("NNTKGRUGradientGetWeights",
                                               (NNTKRecurrentGradient *)gradient, GRADIENT_TAG,
                                               weights, count);
}

static NNTKStatus calculate(const char *fn, NNTKGRU *filter, NNTKGRUGradient *gradient,
                            const float *d_out, const float *d_final_state, float *d_in,
                            float *d_initial_state) {
    NNTKRecurrentGradient *g = (NNTKRecurrentGradient *)gradient;
    NNTKStatus s = nntk_recurrent_check_gradient(fn, CF(filter), FILTER_TAG, g, GRADIENT_TAG, d_out,
                                                 "NNTKGRUApplyTrainingBatch");
    if (s != NNTK_OK) return s;
    return backward(fn, F(filter), g, d_out, d_final_state, d_in, d_initial_state);
}

NNTK_API NNTKStatus NNTKGRUCalculateGradient(NNTKGRU *filter, NNTKGRUGradient *gradient,
                                             const float *d_out, float *d_in) {
    return calculate("NNTKGRUCalculateGradient", filter, gradient, d_out, NULL, d_in, NULL);
}

NNTK_API NNTKStatus NNTKGRUCalculateGradientWithState(NNTKGRU *filter, NNTKGRUGradient *gradient,
                                                      const float *d_out,
                                                      const float *d_final_state, float *d_in,
                                                      float *d_initial_state) {
    return calculate("NNTKGRUCalculateGradientWithState", filter, gradient, d_out, d_final_state,
                     d_in, d_initial_state);
}
