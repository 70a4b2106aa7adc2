/* RNN (tf.keras SimpleRNN): the cell (one step forward, one step backward),
 * the loop over time, and the public functions. Shared handle code and the
 * sequence order live in core/recurrent.c.
 *
 * Shapes: B = batch, T = steps, D = input_dim, U = units. Per-step values are
 * kept in processing order k = 0..T-1 (the input position is
 * nntk_recurrent_position(k): k, or T-1-k with go_backwards). */
#include <string.h>

#include "core/internal.h"
#include "core/ops.h"
#include "core/recurrent.h"
#include "nntk/rnn.h"

#define CONFIG_TAG NNTK_TAG('R', 'n', 'n', 'C')
#define FILTER_TAG NNTK_TAG('R', 'n', 'n', 'F')
#define GRADIENT_TAG NNTK_TAG('R', 'n', 'n', 'G')

/* The public handle types are the shared recurrent structs. */
#define F(filter) ((NNTKRecurrentFilter *)(filter))
#define CF(filter) ((const NNTKRecurrentFilter *)(filter))

/* --- the cell ----------------------------------------------------------------------------- */

/* One step: pre (B, U) = xp + h_prev · recurrent_kernel, h (B, U) = act(pre),
 * where xp (B rows of U spaced ldxp apart) = x_t · kernel + bias was
 * projected for all steps before the loop. hp (B, U) scratch. */
static void cell_forward(const NNTKRecurrentFilter *f, int64_t k, int64_t batch, const float *xp,
                         int64_t ldxp, const float *h_prev, float *hp, float *pre, float *h) {
    const int64_t u = f->spec.units;
    nntk_recurrent_product(f, k, batch, u, h_prev, NULL, hp, u); /* hp (B, U) */
    for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < u; j++) pre[b * u + j] = xp[b * ldxp + j] + hp[b * u + j];
    nntk_activation_forward(f->spec.activation, batch, u, pre, h);
}

/* The step's backward: dh (B, U) is the whole upstream gradient of h_t.
 * Writes delta (B, U) = d pre and dh_prev (B, U) = delta · Rᵀ (rt = Rᵀ). The
 * weight and input gradients are formed from delta of all steps after the
 * loop. */
static void cell_backward(const NNTKRecurrentFilter *f, int64_t batch, const float *pre,
                          const float *h, const float *dh, const float *rt, float *delta,
                          float *dh_prev) {
    const int64_t u = f->spec.units;
    /* h = act(pre): delta = dh ⊙ act'(pre). */
    nntk_activation_backward(f->spec.activation, batch, u, pre, h, dh, delta);
    nntk_matmul(0, batch, u, u, delta, u, rt, u, NULL, 0, dh_prev, u);
}

/* --- the sequence ------------------------------------------------------------------------- */

/* Training cache (processing order k, then batch row):
 *   x   (T, B, D)    the input, x[k] = in[:, position(k), :]
 *   h   (T+1, B, U)  h[0] = initial state, h[k+1] = state after step k
 *   pre (T, B, U)    pre-activations */
typedef struct {
    float *x, *h, *pre;
} Cache;

static int64_t cache_size(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps) {
    return batch * steps * s->input_dim + (steps + 1) * batch * s->units +
           steps * batch * s->units;
}

static Cache cache_layout(const NNTKRecurrentFilter *f, int64_t batch, int64_t steps) {
    Cache c;
    c.x = f->cache;
    c.h = c.x + batch * steps * f->spec.input_dim;
    c.pre = c.h + (steps + 1) * batch * f->spec.units;
    return c;
}

/* Forward scratch: xp the input projection (training: (T·B, U); inference:
 * (B, block, U), one block of steps), hp (B, U); inference also two states and
 * one pre-activation. */
static int64_t forward_scratch(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps, int training) {
    const int64_t bu = batch * s->units;
    return nntk_recurrent_projected_steps(steps, training) * bu + bu + (training ? 0 : 3 * bu);
}
static int64_t inference_scratch(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps) {
    return forward_scratch(s, batch, steps, 0);
}

/* Backward scratch: rt (U, U), wt (U, D), dh, carry (B, U), delta (T, B, U). */
static int64_t training_scratch(const NNTKRecurrentSpec *s, int64_t batch, int64_t steps) {
    const int64_t u = s->units, bu = batch * u;
    const int64_t fwd = forward_scratch(s, batch, steps, 1);
    const int64_t bwd = u * u + u * s->input_dim + 2 * bu + steps * bu;
    return fwd > bwd ? fwd : bwd;
}

/* Runs the whole sequence from h0 (B, U) (NULL = zeros). training: keeps
 * every step in the cache (whose x already holds the input in processing
 * order); otherwise only two states and one pre-activation live in the
 * scratch. The input projections are one row-independent product before the
 * loop (training) or per block of steps (inference); see gru.c. */
static NNTKStatus forward(const char *fn, NNTKRecurrentFilter *f, int training, int64_t batch,
                          int64_t steps, const float *in, const float *h0, float *out,
                          float *final_state) {
    const int64_t d = f->spec.input_dim, u = f->spec.units, bu = batch * u;
    float *scratch;
    NNTKStatus s = nntk_recurrent_reserve_scratch(
        fn, f, forward_scratch(&f->spec, batch, steps, training), &scratch);
    if (s != NNTK_OK) return s;
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    const int64_t block = nntk_recurrent_projected_steps(steps, training);
    float *xp = scratch, *hp = xp + block * bu; /* training (T·B, U), inference (B, block, U); (B, U) */
    float *hs, *pres;                           /* states and pre-activations */
    if (training) {
        Cache c = cache_layout(f, batch, steps);
        hs = c.h;
        pres = c.pre;
        nntk_matmul(0, steps * batch, u, d, c.x, d, w.kernel, u, w.bias, 0, xp, u);
    } else {
        hs = hp + bu;       /* (2, B, U): ping-pong */
        pres = hs + 2 * bu; /* (B, U) */
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
        float *pre = pres + (training ? k : 0) * bu;             /* (B, U) */
        const float *xp_k = training ? xp + k * bu : xp + (t - t_lo) * u; /* B rows */
        cell_forward(f, k, batch, xp_k, training ? u : n * u, h_prev, hp, pre, h);
        nntk_recurrent_store_output(&f->spec, batch, steps, k, h, out);
    }
    if (final_state) nntk_copy(final_state, hs + (training ? steps : steps % 2) * bu, bu);
    return NNTK_OK;
}

static NNTKStatus apply(const char *fn, NNTKRNN *filter, int training, int64_t batch, int64_t steps,
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

/* BPTT over the kept batch, last processing step first; the weight and
 * input gradients are large products over all steps after the loop. */
static NNTKStatus backward(const char *fn, NNTKRecurrentFilter *f, NNTKRecurrentGradient *gradient,
                           const float *d_out, const float *d_final_state, float *d_in,
                           float *d_initial_state) {
    const int64_t batch = f->batch, steps = f->steps, d = f->spec.input_dim, u = f->spec.units;
    const int64_t bu = batch * u, rows = steps * batch;
    float *scratch;
    NNTKStatus s = nntk_recurrent_reserve_scratch(fn, f, training_scratch(&f->spec, batch, steps),
                                                  &scratch);
    if (s != NNTK_OK) return s;
    float *rt = scratch, *wt = rt + u * u;                 /* (U, U), (U, D) */
    float *dh = wt + u * d, *carry = dh + bu;              /* (B, U) each */
    float *delta = carry + bu;                             /* (T, B, U) */
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    nntk_transpose(u, u, w.recurrent, rt);
    const Cache c = cache_layout(f, batch, steps);
    const float *incoming = d_final_state; /* gradient reaching h after step k (besides d_out) */
    for (int64_t k = steps - 1; k >= 0; k--) {
        nntk_recurrent_output_gradient(&f->spec, batch, steps, k, d_out, incoming, dh);
        cell_backward(f, batch, c.pre + k * bu, c.h + (k + 1) * bu, dh, rt, delta + k * bu, carry);
        incoming = carry;
    }
    if (d_initial_state) nntk_copy(d_initial_state, carry, bu);
    /* pre = (x·W + b) + h_prev·R: dW = xᵀ·delta, dR = h_prevᵀ·delta, db = Σ delta. */
    float *g_kernel = gradient->d_weights; /* (D, U) */
    float *g_recurrent = g_kernel + d * u; /* (U, U) */
    nntk_gemm(1, 0, d, u, rows, 1.0f, c.x, d, delta, u, 0.0f, g_kernel, u);
    nntk_gemm(1, 0, u, u, rows, 1.0f, c.h, u, delta, u, 0.0f, g_recurrent, u);
    if (f->spec.use_bias) nntk_sum_rows(rows, u, delta, g_recurrent + u * u, 0);
    if (d_in) nntk_recurrent_input_gradient(f, batch, steps, delta, wt, d_in);
    return NNTK_OK;
}

/* --- public API --------------------------------------------------------------------------- */

NNTK_API NNTKRNNConfig *NNTKRNNConfigCreate(int64_t input_dim, int64_t units, int32_t activation,
                                            int32_t use_bias, int32_t return_sequences,
                                            int32_t go_backwards) {
    static const char fn[] = "NNTKRNNConfigCreate";
    NNTKRecurrentSpec spec;
    /* GCOVR_EXCL_BR_START: argument validation */
    if (nntk_recurrent_spec_init(fn, &spec, input_dim, units, 1, 1, activation, 0, use_bias, 0,
                                 return_sequences, go_backwards) != NNTK_OK)
        return NULL;
    /* GCOVR_EXCL_BR_STOP */
    return (NNTKRNNConfig *)nntk_recurrent_config_create(fn, CONFIG_TAG, &spec);
}

NNTK_API void NNTKRNNConfigDestroy(NNTKRNNConfig *config) {
    nntk_recurrent_config_destroy((NNTKRecurrentConfig *)config, CONFIG_TAG);
}

NNTK_API NNTKRNN *NNTKRNNCreateForInference(const NNTKRNNConfig *config) {
    return (NNTKRNN *)nntk_recurrent_create("NNTKRNNCreateForInference",
                                            (const NNTKRecurrentConfig *)config, CONFIG_TAG,
                                            FILTER_TAG, 0, NULL, cache_size, training_scratch,
                                            inference_scratch);
}

NNTK_API NNTKRNN *NNTKRNNCreateForTraining(const NNTKRNNConfig *config,
                                           const NNTKTrainingConfig *training_config) {
    return (NNTKRNN *)nntk_recurrent_create("NNTKRNNCreateForTraining",
                                            (const NNTKRecurrentConfig *)config, CONFIG_TAG,
                                            FILTER_TAG, 1, training_config, cache_size,
                                            training_scratch, inference_scratch);
}

NNTK_API void NNTKRNNDestroy(NNTKRNN *filter) { nntk_recurrent_destroy(F(filter), FILTER_TAG); }

NNTK_API NNTKStatus NNTKRNNGetWeights(NNTKRNN *filter, float **weights, int64_t *count) {
    return nntk_recurrent_get_weights("NNTKRNNGetWeights", F(filter), FILTER_TAG, weights, count);
}

NNTK_API NNTKStatus NNTKRNNOutputShape(const NNTKRNN *filter, int64_t batch, int64_t steps,
                                       int64_t *out_steps, int64_t *out_features) {
    return nntk_recurrent_output_shape("NNTKRNNOutputShape", CF(filter), FILTER_TAG, batch, steps,
                                       out_steps, out_features);
}

NNTK_API NNTKStatus NNTKRNNApplyInference(NNTKRNN *filter, int64_t batch, int64_t steps,
                                          const float *in, float *out) {
    return apply("NNTKRNNApplyInference", filter, 0, batch, steps, in, NULL, out, NULL);
}

NNTK_API NNTKStatus NNTKRNNApplyTrainingBatch(NNTKRNN *filter, int64_t batch, int64_t steps,
                                              const float *in, float *out) {
    return apply("NNTKRNNApplyTrainingBatch", filter, 1, batch, steps, in, NULL, out, NULL);
}

NNTK_API NNTKStatus NNTKRNNApplyInferenceWithState(NNTKRNN *filter, int64_t batch, int64_t steps,
                                                   const float *in, const float *initial_state,
                                                   float *out, float *final_state) {
    return apply("NNTKRNNApplyInferenceWithState", filter, 0, batch, steps, in, initial_state, out,
                 final_state);
}

NNTK_API NNTKStatus NNTKRNNApplyTrainingBatchWithState(NNTKRNN *filter, int64_t batch,
                                                       int64_t steps, const float *in,
                                                       const float *initial_state, float *out,
                                                       float *final_state) {
    return apply("NNTKRNNApplyTrainingBatchWithState", filter, 1, batch, steps, in, initial_state,
                 out, final_state);
}

NNTK_API NNTKRNNGradient *NNTKRNNGradientCreate(const NNTKRNN *filter) {
    return (NNTKRNNGradient *)nntk_recurrent_gradient_create("NNTKRNNGradientCreate", CF(filter),
                                                             FILTER_TAG, GRADIENT_TAG);
}

NNTK_API void NNTKRNNGradientDestroy(NNTKRNNGradient *gradient) {
    nntk_recurrent_gradient_destroy((NNTKRecurrentGradient *)gradient, GRADIENT_TAG);
}

NNTK_API NNTKStatus NNTKRNNGradientGetWeights(NNTKRNNGradient *gradient, float **weights,
                                              int64_t *count) {
    return nntk_recurrent_gradient_get_weights("NNTKRNNGradientGetWeights",
                                               (NNTKRecurrentGradient *)gradient, GRADIENT_TAG,
                                               weights, count);
}

static NNTKStatus calculate(const char *fn, NNTKRNN *filter, NNTKRNNGradient *gradient,
                            const float *d_out, const float *d_final_state, float *d_in,
                            float *d_initial_state) {
    NNTKRecurrentGradient *g = (NNTKRecurrentGradient *)gradient;
    NNTKStatus s = nntk_recurrent_check_gradient(fn, CF(filter), FILTER_TAG, g, GRADIENT_TAG, d_out,
                                                 "NNTKRNNApplyTrainingBatch");
    if (s != NNTK_OK) return s;
    return backward(fn, F(filter), g, d_out, d_final_state, d_in, d_initial_state);
}

NNTK_API NNTKStatus NNTKRNNCalculateGradient(NNTKRNN *filter, NNTKRNNGradient *gradient,
                                             const float *d_out, float *d_in) {
    return calculate("NNTKRNNCalculateGradient", filter, gradient, d_out, NULL, d_in, NULL);
}

NNTK_API NNTKStatus NNTKRNNCalculateGradientWithState(NNTKRNN *filter, NNTKRNNGradient *gradient,
                                                      const float *d_out,
                                                      const float *d_final_state, float *d_in,
                                                      float *d_initial_state) {
    return calculate("NNTKRNNCalculateGradientWithState", filter, gradient, d_out, d_final_state,
                     d_in, d_initial_state);
}
