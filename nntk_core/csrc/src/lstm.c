/* LSTM (tf.keras LSTM): the cell (one step forward, one step backward), the
 * loop over time, and the public functions. Shared handle code and the
 * sequence order live in core/recurrent.c.
 *
 * Shapes: B = batch, T = steps, D = input_dim, U = units; gate blocks are
 * [i | f | c | o], each U wide, so a gate tensor is (B, 4U). The state is
 * (2, B, U): h then c. Per-step values are kept in processing order
 * k = 0..T-1 (input position nntk_recurrent_position(k): k, or T-1-k with
 * go_backwards). */
#include <string.h>

#include "core/internal.h"
#include "core/kernels.h"
#include "core/ops.h"
#include "core/recurrent.h"
#include "nntk/lstm.h"

#define CONFIG_TAG NNTK_TAG('L', 's', 't', 'C')
#define FILTER_TAG NNTK_TAG('L', 's', 't', 'F')
#define GRADIENT_TAG NNTK_TAG('L', 's', 't', 'G')

/* The public handle types are the shared recurrent structs. */
#define F(filter) ((NNTKRecurrentFilter *)(filter))
#define CF(filter) ((const NNTKRecurrentFilter *)(filter))

/* --- the cell ----------------------------------------------------------------------------- */

/* The fused cell (core/kernels.h) covers the Keras default: sigmoid gates
 * and tanh. Other activations run the generic cell below (same expressions). */
static int fused(const NNTKRecurrentSpec *s) {
    return s->recurrent_activation == NNTK_ACTIVATION_SIGMOID &&
           s->activation == NNTK_ACTIVATION_TANH;
}

/* One step's values (the cache slots of step k, or inference scratch). */
typedef struct {
    float *pre; /* (B, 4U) pre-activations z = [zi | zf | zc | zo] (generic cell only) */
    float *act; /* (B, 4U) activations [i | f | g | o] */
    float *tc;  /* (B, U) act(c_t) */
} Step;

/* One step forward. xp: B rows of x_t·W (4U each, no bias) spaced ldxp
 * apart; h_prev, c_prev, h, c (B, U); hp (B, 4U) scratch; keep: write the
 * Step (training; the generic cell always does). */
static void cell_forward(const NNTKRecurrentFilter *f, int64_t k, int64_t batch, const float *xp,
                         int64_t ldxp, const float *h_prev, const float *c_prev, float *hp,
                         Step st, int keep, float *h, float *c) {
    const int64_t u = f->spec.units, g4 = 4 * u;
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    const NNTKActivationKind ra = f->spec.recurrent_activation;
    nntk_recurrent_product(f, k, batch, g4, h_prev, NULL, hp, g4); /* h · R */
    if (fused(&f->spec)) {
        const NNTKKernels *kern = nntk_kernels();
        for (int64_t b = 0; b < batch; b++)
            kern->lstm_forward(u, xp + b * ldxp, hp + b * g4, w.bias, c_prev + b * u,
                               keep ? st.act + b * g4 : NULL, keep ? st.tc + b * u : NULL,
                               c + b * u, h + b * u);
        return;
    }
    /* z = (x_t · W + h_prev · R) + b: the bias is added last, as Keras. */
    for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < g4; j++) {
            float z = xp[b * ldxp + j] + hp[b * g4 + j];
            st.pre[b * g4 + j] = w.bias ? z + w.bias[j] : z;
        }
    nntk_recurrent_activate(ra, batch, u, g4, st.pre, st.act);                                /* i */
    nntk_recurrent_activate(ra, batch, u, g4, st.pre + u, st.act + u);                        /* f */
    nntk_recurrent_activate(f->spec.activation, batch, u, g4, st.pre + 2 * u, st.act + 2 * u); /* g */
    nntk_recurrent_activate(ra, batch, u, g4, st.pre + 3 * u, st.act + 3 * u);                /* o */
    /* c = f ⊙ c_prev + i ⊙ g */
    for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < u; j++) {
            const float *a = st.act + b * g4; /* (4U,) */
            c[b * u + j] = a[u + j] * c_prev[b * u + j] + a[j] * a[2 * u + j];
        }
    /* h = o ⊙ act(c) */
    nntk_activation_forward(f->spec.activation, batch, u, c, st.tc);
    for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < u; j++) h[b * u + j] = st.act[b * g4 + 3 * u + j] * st.tc[b * u + j];
}

/* One step backward. dh (B, U) is the whole upstream gradient of h_t and dc
 * (B, U) that of c_t arriving from the next step (overwritten). Writes the
 * pre-activation gradient a (B, 4U), dh_prev (B, U) = a · Rᵀ (rt (4U, U) = Rᵀ)
 * and dc_prev (B, U). d_act (B, 4U) scratch. The weight gradients are formed
 * from a of all steps after the loop. */
static void cell_backward(const NNTKRecurrentFilter *f, int64_t batch, const float *c_prev,
                          const float *c, Step st, const float *dh, float *dc, const float *rt,
                          float *d_act, float *a, float *dh_prev, float *dc_prev) {
    const int64_t u = f->spec.units, g4 = 4 * u;
    const NNTKActivationKind ra = f->spec.recurrent_activation;
    if (fused(&f->spec)) {
        const NNTKKernels *kern = nntk_kernels();
        for (int64_t b = 0; b < batch; b++)
            kern->lstm_backward(u, dh + b * u, st.act + b * g4, st.tc + b * u, c_prev + b * u,
                                dc + b * u, a + b * g4, dc_prev + b * u);
        nntk_matmul(0, batch, u, g4, a, g4, rt, u, NULL, 0, dh_prev, u);
        return;
    }
    /* h = o ⊙ act(c): d act(c) = dh ⊙ o (into dh_prev as scratch), do = dh ⊙ act(c) */
    for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < u; j++) {
            const float gr = dh[b * u + j];
            dh_prev[b * u + j] = gr * st.act[b * g4 + 3 * u + j];
            d_act[b * g4 + 3 * u + j] = gr * st.tc[b * u + j];
        }
    /* dc (total) = dc_next + d act(c) ⊙ act'(c); dc_prev is scratch here */
    nntk_activation_backward(f->spec.activation, batch, u, c, st.tc, dh_prev, dc_prev);
    for (int64_t i = 0; i < batch * u; i++) dc[i] = dc[i] + dc_prev[i];
    /* c = f ⊙ c_prev + i ⊙ g */
    for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < u; j++) {
            const float dcv = dc[b * u + j];
            const float *ac = st.act + b * g4; /* (4U,) */
            float *da = d_act + b * g4;        /* (4U,) */
            da[j] = dcv * ac[2 * u + j];         /* di = dc ⊙ g */
            da[u + j] = dcv * c_prev[b * u + j]; /* df = dc ⊙ c_prev */
            da[2 * u + j] = dcv * ac[j];         /* dg = dc ⊙ i */
            dc_prev[b * u + j] = dcv * ac[u + j];
        }
    /* Through the gate activations: a = d z. */
    nntk_recurrent_activate_backward(ra, batch, u, g4, st.pre, st.act, d_act, a);
    nntk_recurrent_activate_backward(ra, batch, u, g4, st.pre + u, st.act + u, d_act + u, a + u);
    nntk_recurrent_activate_backward(f->spec.activation, batch, u, g4, st.pre + 2 * u,
                                     st.act + 2 * u, d_act + 2 * u, a + 2 * u);
    nntk_recurrent_activate_backward(ra, batch, u, g4, st.pre + 3 * u, st.act + 3 * u,
                                     d_act + 3 * u, a + 3 * u);
    /* z = (x_t · W + h_prev · R) + b: dh_prev = a · Rᵀ */
    nntk_matmul(0, batch, u, g4, a, g4, rt, u, NULL, 0, dh_prev, u);
}

/* --- the sequence ------------------------------------------------------------------------- */

/* Training cache (processing order k, then batch row):
 *   x   (T, B, D)    the input, x[k] = in[:, position(k), :]
 *   h   (T+1, B, U)  h[0] = initial h, h[k+1] = h after step k
 *   c   (T+1, B, U)  likewise for c
 *   pre (T, B, 4U), act (T, B, 4U), tc (T, B, U): Step of every k */
typedef struct {
    float *x, *h, *c, *pre, *act, *tc;
} Cache;

static int64_t cache_size(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps) {
    const int64_t bu = batch * s->units;
    return batch * steps * s->input_dim + 2 * (steps + 1) * bu + 9 * steps * bu;
}

static Cache cache_layout(const NNTKRecurrentFilter *f, int64_t batch, int64_t steps) {
    const int64_t bu = batch * f->spec.units;
    Cache c;
    c.x = f->cache;
    c.h = c.x + batch * steps * f->spec.input_dim;
    c.c = c.h + (steps + 1) * bu;
    c.pre = c.c + (steps + 1) * bu;
    c.act = c.pre + 4 * steps * bu;
    c.tc = c.act + 4 * steps * bu;
    return c;
}

static Step cache_step(Cache c, int64_t k, int64_t bu) {
    return (Step){c.pre + 4 * k * bu, c.act + 4 * k * bu, c.tc + k * bu};
}

/* Scratch of a forward pass: xp the input projection (training: (T·B, 4U);
 * inference: (B, block, 4U), one block of steps), hp (B, 4U); inference also
 * the states (2, 2, B, U) and one Step. */
static int64_t forward_scratch(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps, int training) {
    const int64_t bu = batch * s->units;
    return 4 * nntk_recurrent_projected_steps(steps, training) * bu + 4 * bu + (training ? 0 : 13 * bu);
}
static int64_t inference_scratch(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps) {
    return forward_scratch(s, batch, steps, 0);
}

/* Backward scratch: rt (4U, U), wt (4U, D), dh, dc, dh_prev, dc_prev (B, U),
 * d_act (B, 4U), a (T, B, 4U). */
static int64_t training_scratch(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps) {
    const int64_t u = s->units, g4 = 4 * u, bu = batch * u;
    const int64_t fwd = forward_scratch(s, batch, steps, 1);
    const int64_t bwd = g4 * u + g4 * s->input_dim + 8 * bu + steps * batch * g4;
    return fwd > bwd ? fwd : bwd;
}

/* Runs the whole sequence from state0 (2, B, U) (NULL = zeros). training:
 * keeps every step in the cache (whose x already holds the input in
 * processing order); otherwise two states and one Step live in the scratch.
 * The input projections are one row-independent product before the loop
 * (training) or per block of steps (inference); see gru.c: inference, training
 * and streaming give the same bits. */
static NNTKStatus forward(const char *fn, NNTKRecurrentFilter *f, int training, int64_t batch,
                          int64_t steps, const float *in, const float *state0, float *out,
                          float *final_state) {
    const int64_t d = f->spec.input_dim, u = f->spec.units, bu = batch * u, g4 = 4 * u;
    float *scratch;
    NNTKStatus s = nntk_recurrent_reserve_scratch(
        fn, f, forward_scratch(&f->spec, batch, steps, training), &scratch);
    if (s != NNTK_OK) return s;
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    const int64_t block = nntk_recurrent_projected_steps(steps, training);
    float *xp = scratch;             /* training (T·B, 4U); inference (B, block, 4U) */
    float *hp = xp + block * 4 * bu; /* (B, 4U) */
    float *hs, *cs;                  /* states */
    Cache c = {0};
    Step one = {0};
    if (training) {
        c = cache_layout(f, batch, steps);
        hs = c.h;
        cs = c.c;
        nntk_matmul(0, steps * batch, g4, d, c.x, d, w.kernel, g4, NULL, 0, xp, g4);
    } else {
        hs = hp + 4 * bu; /* (2, B, U): ping-pong */
        cs = hs + 2 * bu; /* (2, B, U) */
        one = (Step){cs + 2 * bu, cs + 6 * bu, cs + 10 * bu};
    }
    nntk_recurrent_load_state(batch, u, state0, hs);
    nntk_recurrent_load_state(batch, u, state0 ? state0 + bu : NULL, cs);
    nntk_recurrent_prepare_product(f, batch, steps);
    int64_t n = 0, t_lo = 0; /* inference: the projected block's steps and first position */
    for (int64_t k = 0; k < steps; k++) {
        const int64_t t = nntk_recurrent_position(&f->spec, k, steps);
        if (!training && k % block == 0) {
            n = steps - k < block ? steps - k : block;
            t_lo = nntk_recurrent_project_block(f, batch, steps, k, n, in, NULL, xp);
        }
        const int64_t prev = (training ? k : k % 2) * bu, next = (training ? k + 1 : (k + 1) % 2) * bu;
        const float *xp_k = training ? xp + k * batch * g4 : xp + (t - t_lo) * g4; /* B rows */
        const int64_t ldxp = training ? g4 : n * g4;
        cell_forward(f, k, batch, xp_k, ldxp, hs + prev, cs + prev, hp,
                     training ? cache_step(c, k, bu) : one, training, hs + next, cs + next);
        nntk_recurrent_store_output(&f->spec, batch, steps, k, hs + next, out);
    }
    if (final_state) {
        const int64_t last = (training ? steps : steps % 2) * bu;
        nntk_copy(final_state, hs + last, bu);
        nntk_copy(final_state + bu, cs + last, bu);
    }
    return NNTK_OK;
}

static NNTKStatus apply(const char *fn, NNTKLSTM *filter, int training, int64_t batch,
                        int64_t steps, const float *in, const float *initial_state, float *out,
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

/* BPTT over the kept batch, last processing step first; the weight and
 * input gradients are large products over all steps after the loop. */
static NNTKStatus backward(const char *fn, NNTKRecurrentFilter *f, NNTKRecurrentGradient *gradient,
                           const float *d_out, const float *d_final_state, float *d_in,
                           float *d_initial_state) {
    const int64_t batch = f->batch, steps = f->steps, d = f->spec.input_dim, u = f->spec.units;
    const int64_t bu = batch * u, g4 = 4 * u, rows = steps * batch;
    float *scratch;
    NNTKStatus s = nntk_recurrent_reserve_scratch(fn, f, training_scratch(&f->spec, batch, steps),
                                                  &scratch);
    if (s != NNTK_OK) return s;
    float *rt = scratch, *wt = rt + g4 * u;     /* (4U, U), (4U, D) */
    float *dh = wt + g4 * d;                    /* (B, U) upstream gradient of h_t */
    float *dc = dh + bu;                        /* (B, U) gradient of c_t from the next step */
    float *dh_prev = dc + bu, *dc_prev = dh_prev + bu; /* (B, U) each */
    float *d_act = dc_prev + bu;                /* (B, 4U) */
    float *a = d_act + 4 * bu;                  /* (T, B, 4U) */
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    nntk_transpose(u, g4, w.recurrent, rt);
    const Cache c = cache_layout(f, batch, steps);
    const float *incoming = d_final_state; /* gradient reaching h after step k (besides d_out) */
    nntk_recurrent_load_state(batch, u, d_final_state ? d_final_state + bu : NULL, dc);
    for (int64_t k = steps - 1; k >= 0; k--) {
        nntk_recurrent_output_gradient(&f->spec, batch, steps, k, d_out, incoming, dh);
        cell_backward(f, batch, c.c + k * bu, c.c + (k + 1) * bu, cache_step(c, k, bu), dh, dc, rt,
                      d_act, a + k * batch * g4, dh_prev, dc_prev);
        nntk_copy(dc, dc_prev, bu);
        incoming = dh_prev;
    }
    if (d_initial_state) {
        nntk_copy(d_initial_state, dh_prev, bu);
        nntk_copy(d_initial_state + bu, dc, bu);
    }
    /* dW = xᵀ·a, dR = h_prevᵀ·a, db = Σ a over all steps and rows. */
    float *g_kernel = gradient->d_weights;  /* (D, 4U) */
    float *g_recurrent = g_kernel + d * g4; /* (U, 4U) */
    nntk_gemm(1, 0, d, g4, rows, 1.0f, c.x, d, a, g4, 0.0f, g_kernel, g4);
    nntk_gemm(1, 0, u, g4, rows, 1.0f, c.h, u, a, g4, 0.0f, g_recurrent, g4);
    if (f->spec.use_bias) nntk_sum_rows(rows, g4, a, g_recurrent + u * g4, 0);
    /* dx = a · Wᵀ, step by step into d_in (B, T, D) at the step's position. */
    if (d_in) nntk_recurrent_input_gradient(f, batch, steps, a, wt, d_in);
    return NNTK_OK;
}

/* --- public API --------------------------------------------------------------------------- */

NNTK_API NNTKLSTMConfig *NNTKLSTMConfigCreate(int64_t input_dim, int64_t units,
                                              int32_t activation, int32_t recurrent_activation,
                                              int32_t use_bias, int32_t return_sequences,
                                              int32_t go_backwards) {
    static const char fn[] = "NNTKLSTMConfigCreate";
    NNTKRecurrentSpec spec;
    /* GCOVR_EXCL_BR_START: argument validation */
    if (nntk_recurrent_spec_init(fn, &spec, input_dim, units, 4, 2, activation,
                                 recurrent_activation, use_bias, 0, return_sequences,
                                 go_backwards) != NNTK_OK)
        return NULL;
    /* GCOVR_EXCL_BR_STOP */
    return (NNTKLSTMConfig *)nntk_recurrent_config_create(fn, CONFIG_TAG, &spec);
}

NNTK_API void NNTKLSTMConfigDestroy(NNTKLSTMConfig *config) {
    nntk_recurrent_config_destroy((NNTKRecurrentConfig *)config, CONFIG_TAG);
}

NNTK_API NNTKLSTM *NNTKLSTMCreateForInference(const NNTKLSTMConfig *config) {
    return (NNTKLSTM *)nntk_recurrent_create("NNTKLSTMCreateForInference",
                                             (const NNTKRecurrentConfig *)config, CONFIG_TAG,
                                             FILTER_TAG, 0, NULL, cache_size, training_scratch,
                                             inference_scratch);
}

NNTK_API NNTKLSTM *NNTKLSTMCreateForTraining(const NNTKLSTMConfig *config,
                                             const NNTKTrainingConfig *training_config) {
    return (NNTKLSTM *)nntk_recurrent_create("NNTKLSTMCreateForTraining",
                                             (const NNTKRecurrentConfig *)config, CONFIG_TAG,
                                             FILTER_TAG, 1, training_config, cache_size,
                                             training_scratch, inference_scratch);
}

NNTK_API void NNTKLSTMDestroy(NNTKLSTM *filter) { nntk_recurrent_destroy(F(filter), FILTER_TAG); }

NNTK_API NNTKStatus NNTKLSTMGetWeights(NNTKLSTM *filter, float **weights, int64_t *count) {
    return nntk_recurrent_get_weights("NNTKLSTMGetWeights", F(filter), FILTER_TAG, weights, count);
}

NNTK_API NNTKStatus NNTKLSTMOutputShape(const NNTKLSTM *filter, int64_t batch, int64_t steps,
                                        int64_t *out_steps, int64_t *out_features) {
    return nntk_recurrent_output_shape("NNTKLSTMOutputShape", CF(filter), FILTER_TAG, batch, steps,
                                       out_steps, out_features);
}

NNTK_API NNTKStatus NNTKLSTMApplyInference(NNTKLSTM *filter, int64_t batch, int64_t steps,
                                           const float *in, float *out) {
    return apply("NNTKLSTMApplyInference", filter, 0, batch, steps, in, NULL, out, NULL);
}

NNTK_API NNTKStatus NNTKLSTMApplyTrainingBatch(NNTKLSTM *filter, int64_t batch, int64_t steps,
                                               const float *in, float *out) {
    return apply("NNTKLSTMApplyTrainingBatch", filter, 1, batch, steps, in, NULL, out, NULL);
}

NNTK_API NNTKStatus NNTKLSTMApplyInferenceWithState(NNTKLSTM *filter, int64_t batch,
                                                    int64_t steps, const float *in,
                                                    const float *initial_state, float *out,
                                                    float *final_state) {
    return apply("NNTKLSTMApplyInferenceWithState", filter, 0, batch, steps, in, initial_state, out,
                 final_state);
}

NNTK_API NNTKStatus NNTKLSTMApplyTrainingBatchWithState(NNTKLSTM *filter, int64_t batch,
                                                        int64_t steps, const float *in,
                                                        const float *initial_state, float *out,
                                                        float *final_state) {
    return apply("NNTKLSTMApplyTrainingBatchWithState", filter, 1, batch, steps, in, initial_state,
                 out, final_state);
}

NNTK_API NNTKLSTMGradient *NNTKLSTMGradientCreate(const NNTKLSTM *filter) {
    return (NNTKLSTMGradient *)nntk_recurrent_gradient_create("NNTKLSTMGradientCreate", CF(filter),
                                                              FILTER_TAG, GRADIENT_TAG);
}

NNTK_API void NNTKLSTMGradientDestroy(NNTKLSTMGradient *gradient) {
    nntk_recurrent_gradient_destroy((NNTKRecurrentGradient *)gradient, GRADIENT_TAG);
}

NNTK_API NNTKStatus NNTKLSTMGradientGetWeights(NNTKLSTMGradient *gradient, float **weights,
                                               int64_t *count) {
    return nntk_recurrent_gradient_get_weights("NNTKLSTMGradientGetWeights",
                                               (NNTKRecurrentGradient *)gradient, GRADIENT_TAG,
                                               weights, count);
}

static NNTKStatus calculate(const char *fn, NNTKLSTM *filter, NNTKLSTMGradient *gradient,
                            const float *d_out, const float *d_final_state, float *d_in,
                            float *d_initial_state) {
    NNTKRecurrentGradient *g = (NNTKRecurrentGradient *)gradient;
    NNTKStatus s = nntk_recurrent_check_gradient(fn, CF(filter), FILTER_TAG, g, GRADIENT_TAG, d_out,
                                                 "NNTKLSTMApplyTrainingBatch");
    if (s != NNTK_OK) return s;
    return backward(fn, F(filter), g, d_out, d_final_state, d_in, d_initial_state);
}

NNTK_API NNTKStatus NNTKLSTMCalculateGradient(NNTKLSTM *filter, NNTKLSTMGradient *gradient,
                                              const float *d_out, float *d_in) {
    return calculate("NNTKLSTMCalculateGradient", filter, gradient, d_out, NULL, d_in, NULL);
}

NNTK_API NNTKStatus NNTKLSTMCalculateGradientWithState(NNTKLSTM *filter,
                                                       NNTKLSTMGradient *gradient,
                                                       const float *d_out,
                                                       const float *d_final_state, float *d_in,
                                                       float *d_initial_state) {
    return calculate("NNTKLSTMCalculateGradientWithState", filter, gradient, d_out, d_final_state,
                     d_in, d_initial_state);
}
