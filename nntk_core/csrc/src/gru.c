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
#include "core/kernels.h"
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

/* The fused cell (core/kernels.h) covers the Keras default: reset_after with
 * sigmoid gates and a tanh candidate. Other configurations run the generic
 * cell below, which computes the same expressions with any activation. */
static int fused(const NNTKRecurrentSpec *s) {
    return s->reset_after && s->recurrent_activation == NNTK_ACTIVATION_SIGMOID &&
           s->activation == NNTK_ACTIVATION_TANH;
}

/* One step's values (the cache slots of step k, or inference scratch). */
typedef struct {
    float *pre; /* (B, 3U) pre-activations [z | r | h] (generic cell only) */
    float *act; /* (B, 3U) activations [z | r | ĥ] */
    float *rec; /* (B, U) reset_after: hh = (h_prev·R + b_rec)[:, h block];
                 *        else: r ⊙ h_prev (what multiplies R[:, 2U:]) */
} Step;

/* One step forward. xp: B rows of the input projection x_t·W + b_in (3U
 * each) spaced ldxp apart; h_prev, h (B, U); hp (B, 3U) scratch; keep: write
 * the Step (training) or not (inference; the generic cell always does). */
static void cell_forward(const NNTKRecurrentFilter *f, int64_t k, int64_t batch, const float *xp,
                         int64_t ldxp, const float *h_prev, float *hp, Step st, int keep,
                         float *h) {
    const int64_t u = f->spec.units, g3 = 3 * u;
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    const float *b_rec = (w.bias && f->spec.reset_after) ? w.bias + g3 : NULL; /* (3U,) or NULL */
    /* hp = h_prev · R + b_rec (reset_after), else only the z, r blocks: h_prev · R[:, :2U] */
    nntk_recurrent_product(f, k, batch, f->spec.reset_after ? g3 : 2 * u, h_prev, b_rec, hp, g3);
    if (fused(&f->spec)) {
        const NNTKKernels *kern = nntk_kernels();
        for (int64_t b = 0; b < batch; b++)
            kern->gru_forward(u, xp + b * ldxp, hp + b * g3, h_prev + b * u,
                              keep ? st.act + b * g3 : NULL, keep ? st.rec + b * u : NULL,
                              h + b * u);
        return;
    }
    /* z = σ(xz + hz), r = σ(xr + hr) */
    for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < 2 * u; j++) st.pre[b * g3 + j] = xp[b * ldxp + j] + hp[b * g3 + j];
    nntk_recurrent_activate(f->spec.recurrent_activation, batch, u, g3, st.pre, st.act);
    nntk_recurrent_activate(f->spec.recurrent_activation, batch, u, g3, st.pre + u, st.act + u);
    if (f->spec.reset_after) {
        /* ĥ = act(xh + r ⊙ hh) */
        for (int64_t b = 0; b < batch; b++)
            for (int64_t j = 0; j < u; j++) {
                const float hh = hp[b * g3 + 2 * u + j], r = st.act[b * g3 + u + j];
                st.rec[b * u + j] = hh;
                st.pre[b * g3 + 2 * u + j] = xp[b * ldxp + 2 * u + j] + r * hh;
            }
    } else {
        /* ĥ = act(xh + (r ⊙ h_prev) · R[:, 2U:]) */
        for (int64_t b = 0; b < batch; b++)
            for (int64_t j = 0; j < u; j++) st.rec[b * u + j] = st.act[b * g3 + u + j] * h_prev[b * u + j];
        nntk_matmul(0, batch, u, u, st.rec, u, w.recurrent + 2 * u, g3, NULL, 0, hp + 2 * u, g3);
        for (int64_t b = 0; b < batch; b++)
            for (int64_t j = 0; j < u; j++)
                st.pre[b * g3 + 2 * u + j] = xp[b * ldxp + 2 * u + j] + hp[b * g3 + 2 * u + j];
    }
    nntk_recurrent_activate(f->spec.activation, batch, u, g3, st.pre + 2 * u, st.act + 2 * u);
    /* h = z ⊙ h_prev + (1 - z) ⊙ ĥ, evaluated in exactly this form (as Keras) */
    for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < u; j++) {
            const float z = st.act[b * g3 + j], hc = st.act[b * g3 + 2 * u + j];
            h[b * u + j] = z * h_prev[b * u + j] + (1.0f - z) * hc;
        }
}

/* One step backward. g (B, U) is the whole upstream gradient of h_t. Writes
 * the input-side pre-activation gradient ax = [δz | δr | δĥ] and (reset_after)
 * the recurrent-side ah = [δz | δr | δĥ ⊙ r], both (B, 3U), and
 * dh_prev (B, U) including the recurrent product. rt (3U, U) = Rᵀ;
 * d_act (B, 3U) and q (B, U) scratch. The weight gradients are formed from
 * ax and ah of all steps after the loop. */
static void cell_backward(const NNTKRecurrentFilter *f, int64_t batch, const float *h_prev, Step st,
                          const float *g, const float *rt, float *d_act, float *q, float *ax,
                          float *ah, float *dh_prev) {
    const int64_t u = f->spec.units, g3 = 3 * u;
    if (fused(&f->spec)) {
        const NNTKKernels *kern = nntk_kernels();
        for (int64_t b = 0; b < batch; b++)
            kern->gru_backward(u, g + b * u, st.act + b * g3, st.rec + b * u, h_prev + b * u,
                               ax + b * g3, ah + b * g3, dh_prev + b * u);
        /* dh_prev += ah · Rᵀ */
        nntk_matmul(0, batch, u, g3, ah, g3, rt, u, NULL, 1, dh_prev, u);
        return;
    }
    /* h = z ⊙ h_prev + (1 - z) ⊙ ĥ */
    for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < u; j++) {
            const float gr = g[b * u + j], z = st.act[b * g3 + j], hc = st.act[b * g3 + 2 * u + j];
            d_act[b * g3 + j] = gr * h_prev[b * u + j] - gr * hc; /* dz */
            d_act[b * g3 + 2 * u + j] = gr * (1.0f - z);        /* dĥ */
            dh_prev[b * u + j] = gr * z;
        }
    /* ĥ = act(pre_h) */
    nntk_recurrent_activate_backward(f->spec.activation, batch, u, g3, st.pre + 2 * u,
                                     st.act + 2 * u, d_act + 2 * u, ax + 2 * u);
    if (f->spec.reset_after) {
        /* pre_h = xh + r ⊙ hh: dr = δ ⊙ hh, d hh = δ ⊙ r */
        for (int64_t b = 0; b < batch; b++)
            for (int64_t j = 0; j < u; j++) {
                const float delta = ax[b * g3 + 2 * u + j];
                d_act[b * g3 + u + j] = delta * st.rec[b * u + j];
                ah[b * g3 + 2 * u + j] = delta * st.act[b * g3 + u + j];
            }
    } else {
        /* pre_h = xh + (r ⊙ h_prev) · R_h: q = δ · R_hᵀ, dr = q ⊙ h_prev, dh_prev += q ⊙ r
         * (dR_h = Σ (r ⊙ h_prev)ᵀ · δ after the loop). */
        nntk_matmul(0, batch, u, u, ax + 2 * u, g3, rt + 2 * u * u, u, NULL, 0, q, u);
        for (int64_t b = 0; b < batch; b++)
            for (int64_t j = 0; j < u; j++) {
                d_act[b * g3 + u + j] = q[b * u + j] * h_prev[b * u + j];
                dh_prev[b * u + j] = dh_prev[b * u + j] + q[b * u + j] * st.act[b * g3 + u + j];
            }
    }
    /* z = σ(pre_z), r = σ(pre_r) */
    nntk_recurrent_activate_backward(f->spec.recurrent_activation, batch, u, g3, st.pre, st.act,
                                     d_act, ax);
    nntk_recurrent_activate_backward(f->spec.recurrent_activation, batch, u, g3, st.pre + u,
                                     st.act + u, d_act + u, ax + u);
    if (f->spec.reset_after) {
        /* hp = h_prev · R + b_rec; its gradient is [δz | δr | δ ⊙ r]. */
        for (int64_t b = 0; b < batch; b++)
            for (int64_t j = 0; j < 2 * u; j++) ah[b * g3 + j] = ax[b * g3 + j];
        nntk_matmul(0, batch, u, g3, ah, g3, rt, u, NULL, 1, dh_prev, u);
    } else {
        /* [hz | hr] = h_prev · R[:, :2U]; gradient [δz | δr]. */
        nntk_matmul(0, batch, u, 2 * u, ax, g3, rt, u, NULL, 1, dh_prev, u);
    }
}

/* --- the sequence ------------------------------------------------------------------------- */

/* Training cache (processing order k, then batch row):
 *   x   (T, B, D)    the input, x[k] = in[:, position(k), :]
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

/* Scratch of a forward pass: xp the input projection (training: (T·B, 3U),
 * every step; inference: (B, block, 3U), one block of steps), hp (B, 3U);
 * inference also two states (2, B, U) and one Step. */
static int64_t forward_scratch(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps, int training) {
    const int64_t bu = batch * s->units;
    return 3 * nntk_recurrent_projected_steps(steps, training) * bu + 3 * bu + (training ? 0 : 9 * bu);
}
static int64_t inference_scratch(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps) {
    return forward_scratch(s, batch, steps, 0);
}

/* The larger of the forward (training) and backward scratch: reserved at
 * creation for a training capacity. */
static int64_t training_scratch(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps) {
    const int64_t u = s->units, g3 = 3 * u, bu = batch * u;
    const int64_t fwd = forward_scratch(s, batch, steps, 1);
    const int64_t bwd = g3 * u + g3 * s->input_dim + 6 * bu + 2 * steps * batch * g3;
    return fwd > bwd ? fwd : bwd;
}

/* Runs the whole sequence from h0 (B, U) (NULL = zeros). training: keeps
 * every step in the cache (whose x already holds the input in processing
 * order); otherwise two states and one Step live in the scratch.
 *
 * The input projections are one product for all steps before the loop
 * (training), or one per block of NNTK_RECURRENT_PROJECTION_STEPS steps inside
 * it (inference: the scratch does not grow with T). Rows are computed
 * independently of each other (nntk_matmul), so a row's bits do not depend on
 * the layout or the number of steps: inference, training and streaming chunk
 * by chunk give the same bits. */
static NNTKStatus forward(const char *fn, NNTKRecurrentFilter *f, int training, int64_t batch,
                          int64_t steps, const float *in, const float *h0, float *out,
                          float *final_state) {
    const int64_t d = f->spec.input_dim, u = f->spec.units, bu = batch * u, g3 = 3 * u;
    float *scratch;
    NNTKStatus s = nntk_recurrent_reserve_scratch(
        fn, f, forward_scratch(&f->spec, batch, steps, training), &scratch);
    if (s != NNTK_OK) return s;
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    const int64_t block = nntk_recurrent_projected_steps(steps, training);
    float *xp = scratch;             /* training (T·B, 3U); inference (B, block, 3U) */
    float *hp = xp + block * 3 * bu; /* (B, 3U) */
    float *hs;                      /* states */
    Cache c = {0};
    Step one = {0};
    if (training) {
        c = cache_layout(f, batch, steps);
        hs = c.h;
        /* x (T, B, D) in processing order: row k·B + b */
        nntk_matmul(0, steps * batch, g3, d, c.x, d, w.kernel, g3, w.bias, 0, xp, g3);
    } else {
        hs = hp + 3 * bu; /* (2, B, U): ping-pong */
        one = (Step){hs + 2 * bu, hs + 5 * bu, hs + 8 * bu};
    }
    nntk_recurrent_load_state(batch, u, h0, hs);
    nntk_recurrent_prepare_product(f, batch, steps);
    int64_t n = 0, t_lo = 0; /* inference: the projected block's steps and first position */
    for (int64_t k = 0; k < steps; k++) {
        const int64_t t = nntk_recurrent_position(&f->spec, k, steps);
        if (!training && k % block == 0) {
            n = steps - k < block ? steps - k : block;
            t_lo = nntk_recurrent_project_block(f, batch, steps, k, n, in, w.bias, xp);
        }
        const float *h_prev = hs + (training ? k : k % 2) * bu; /* (B, U) */
        float *h = hs + (training ? k + 1 : (k + 1) % 2) * bu;   /* (B, U) */
        const float *xp_k = training ? xp + k * batch * g3 : xp + (t - t_lo) * g3; /* B rows */
        const int64_t ldxp = training ? g3 : n * g3;
        cell_forward(f, k, batch, xp_k, ldxp, h_prev, hp, training ? cache_step(c, k, bu) : one,
                     training, h);
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
        nntk_recurrent_gather_input(&f->spec, batch, steps, in, cache_layout(f, batch, steps).x);
    }
    if ((s = forward(fn, f, training, batch, steps, in, initial_state, out, final_state)) != NNTK_OK)
        return s;
    if (training) {
        f->batch = batch;
        f->steps = steps;
    }
    return NNTK_OK;
}

/* BPTT over the kept batch, last processing step first. The loop carries
 * only what is sequential (the state gradient through Rᵀ); the weight
 * gradients and the input gradient are large products over all steps after
 * it. Scratch: rt (3U, U) = Rᵀ, wt (3U, D) = Wᵀ, dh, carry, q (B, U),
 * d_act (B, 3U), ax (T, B, 3U), ah (T, B, 3U). */
static NNTKStatus backward(const char *fn, NNTKRecurrentFilter *f, NNTKRecurrentGradient *gradient,
                           const float *d_out, const float *d_final_state, float *d_in,
                           float *d_initial_state) {
    const int64_t batch = f->batch, steps = f->steps, d = f->spec.input_dim, u = f->spec.units;
    const int64_t bu = batch * u, g3 = 3 * u, rows = steps * batch;
    float *scratch;
    NNTKStatus s = nntk_recurrent_reserve_scratch(fn, f, training_scratch(&f->spec, batch, steps),
                                                  &scratch);
    if (s != NNTK_OK) return s;
    float *rt = scratch, *wt = rt + g3 * u;
    float *dh = wt + g3 * d, *carry = dh + bu, *q = carry + bu; /* (B, U) each */
    float *d_act = q + bu;                                      /* (B, 3U) */
    float *ax = d_act + 3 * bu, *ah = ax + rows * g3;           /* (T, B, 3U) each */
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    nntk_transpose(u, g3, w.recurrent, rt);
    const Cache c = cache_layout(f, batch, steps);
    const float *incoming = d_final_state; /* gradient reaching h after step k (besides d_out) */
    for (int64_t k = steps - 1; k >= 0; k--) {
        nntk_recurrent_output_gradient(&f->spec, batch, steps, k, d_out, incoming, dh);
        cell_backward(f, batch, c.h + k * bu, cache_step(c, k, bu), dh, rt, d_act, q,
                      ax + k * batch * g3, ah + k * batch * g3, carry);
        incoming = carry;
    }
    if (d_initial_state) nntk_copy(d_initial_state, carry, bu);
    /* Weight gradients, summed over all steps and rows (processing order):
     *   dW = xᵀ·ax, db_in = Σ ax; reset_after: dR = h_prevᵀ·ah, db_rec = Σ ah;
     *   else dR[:, :2U] = h_prevᵀ·ax[:, :2U], dR[:, 2U:] = (r ⊙ h_prev)ᵀ·ax[:, 2U:]. */
    float *g_kernel = gradient->d_weights;      /* (D, 3U) */
    float *g_recurrent = g_kernel + d * g3;     /* (U, 3U) */
    nntk_gemm(1, 0, d, g3, rows, 1.0f, c.x, d, ax, g3, 0.0f, g_kernel, g3);
    if (f->spec.reset_after) {
        nntk_gemm(1, 0, u, g3, rows, 1.0f, c.h, u, ah, g3, 0.0f, g_recurrent, g3);
    } else {
        nntk_gemm(1, 0, u, 2 * u, rows, 1.0f, c.h, u, ax, g3, 0.0f, g_recurrent, g3);
        nntk_gemm(1, 0, u, u, rows, 1.0f, c.rec, u, ax + 2 * u, g3, 0.0f, g_recurrent + 2 * u, g3);
    }
    if (f->spec.use_bias) {
        float *g_bias = g_recurrent + u * g3; /* (3U,) or (2, 3U) */
        nntk_sum_rows(rows, g3, ax, g_bias, 0);
        if (f->spec.reset_after) nntk_sum_rows(rows, g3, ah, g_bias + g3, 0);
    }
    /* dx = ax · Wᵀ, step by step into d_in (B, T, D) at the step's position. */
    if (d_in) nntk_recurrent_input_gradient(f, batch, steps, ax, wt, d_in);
    return NNTK_OK;
}

/* --- public API --------------------------------------------------------------------------- */

NNTK_API NNTKGRUConfig *NNTKGRUConfigCreate(int64_t input_dim, int64_t units, int32_t activation,
                                            int32_t recurrent_activation, int32_t use_bias,
                                            int32_t reset_after, int32_t return_sequences,
                                            int32_t go_backwards) {
    static const char fn[] = "NNTKGRUConfigCreate";
    NNTKRecurrentSpec spec;
    /* GCOVR_EXCL_BR_START: argument validation */
    if (nntk_recurrent_spec_init(fn, &spec, input_dim, units, 3, 1, activation,
                                 recurrent_activation, use_bias, reset_after, return_sequences,
                                 go_backwards) != NNTK_OK)
        return NULL;
    /* GCOVR_EXCL_BR_STOP */
    return (NNTKGRUConfig *)nntk_recurrent_config_create(fn, CONFIG_TAG, &spec);
}

NNTK_API void NNTKGRUConfigDestroy(NNTKGRUConfig *config) {
    nntk_recurrent_config_destroy((NNTKRecurrentConfig *)config, CONFIG_TAG);
}

NNTK_API NNTKGRU *NNTKGRUCreateForInference(const NNTKGRUConfig *config) {
    return (NNTKGRU *)nntk_recurrent_create("NNTKGRUCreateForInference",
                                            (const NNTKRecurrentConfig *)config, CONFIG_TAG,
                                            FILTER_TAG, 0, NULL, cache_size, training_scratch,
                                            inference_scratch);
}

NNTK_API NNTKGRU *NNTKGRUCreateForTraining(const NNTKGRUConfig *config,
                                           const NNTKTrainingConfig *training_config) {
    return (NNTKGRU *)nntk_recurrent_create("NNTKGRUCreateForTraining",
                                            (const NNTKRecurrentConfig *)config, CONFIG_TAG,
                                            FILTER_TAG, 1, training_config, cache_size,
                                            training_scratch, inference_scratch);
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
