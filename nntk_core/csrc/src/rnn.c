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

/* One step: pre (B, U) = (x_t · kernel + bias) + h_prev · recurrent_kernel,
 * h (B, U) = act(pre). x_t holds B rows of D spaced ldx apart. */
static void cell_forward(const NNTKRecurrentFilter *f, int64_t batch, const float *x_t,
                         int64_t ldx, const float *h_prev, float *xp, float *hp, float *pre,
                         float *h) {
    const int64_t d = f->spec.input_dim, u = f->spec.units;
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    nntk_gemm(0, 0, batch, u, d, 1.0f, x_t, ldx, w.kernel, u, 0.0f, xp, u);   /* xp (B, U) */
    nntk_gemm(0, 0, batch, u, u, 1.0f, h_prev, u, w.recurrent, u, 0.0f, hp, u); /* hp (B, U) */
    for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < u; j++) {
            float a = xp[b * u + j];
            if (w.bias) a = a + w.bias[j];
            pre[b * u + j] = a + hp[b * u + j];
        }
    nntk_activation_forward(f->spec.activation, batch, u, pre, h);
}

/* Gradient pointers into the gradient block. */
typedef struct {
    float *kernel;    /* (D, U) */
    float *recurrent; /* (U, U) */
    float *bias;      /* (U,) or NULL */
} Grads;

/* The step's backward: dh (B, U) is the whole upstream gradient of h_t.
 * Accumulates the weight gradients, writes d_x_t (B rows of D spaced ldx
 * apart, unless NULL) and dh_prev (B, U). delta (B, U) is scratch. */
static void cell_backward(const NNTKRecurrentFilter *f, int64_t batch, const float *x_t,
                          int64_t ldx, const float *h_prev, const float *pre, const float *h,
                          const float *dh, float *delta, Grads g, float *d_x_t, float *dh_prev) {
    const int64_t d = f->spec.input_dim, u = f->spec.units;
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    /* h = act(pre): delta = dh ⊙ act'(pre). */
    nntk_activation_backward(f->spec.activation, batch, u, pre, h, dh, delta);
    /* pre = (x·W + b) + h_prev·R. */
    nntk_gemm(1, 0, d, u, batch, 1.0f, x_t, ldx, delta, u, 1.0f, g.kernel, u);
    nntk_gemm(1, 0, u, u, batch, 1.0f, h_prev, u, delta, u, 1.0f, g.recurrent, u);
    if (g.bias) nntk_sum_rows(batch, u, delta, g.bias, 1);
    if (d_x_t) nntk_gemm(0, 1, batch, d, u, 1.0f, delta, u, w.kernel, u, 0.0f, d_x_t, ldx);
    nntk_gemm(0, 1, batch, u, u, 1.0f, delta, u, w.recurrent, u, 0.0f, dh_prev, u);
}

/* --- the sequence ------------------------------------------------------------------------- */

/* Training cache (processing order):
 *   x   (B, T, D)    the input
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

/* Runs the whole sequence from h0 (B, U) (NULL = zeros). training: keeps
 * every step in the cache (whose x already holds the input); otherwise only
 * two states and one pre-activation live in the scratch. */
static NNTKStatus forward(const char *fn, NNTKRecurrentFilter *f, int training, int64_t batch,
                          int64_t steps, const float *in, const float *h0, float *out,
                          float *final_state) {
    const int64_t d = f->spec.input_dim, u = f->spec.units, bu = batch * u;
    float *scratch;
    NNTKStatus s = nntk_recurrent_reserve_scratch(fn, f, training ? 2 * bu : 5 * bu, &scratch);
    if (s != NNTK_OK) return s;
    float *xp = scratch, *hp = xp + bu; /* (B, U) each */
    float *hs, *pres;                   /* states and pre-activations */
    if (training) {
        Cache c = cache_layout(f, batch, steps);
        in = c.x;
        hs = c.h;
        pres = c.pre;
    } else {
        hs = hp + bu;     /* (2, B, U): ping-pong */
        pres = hs + 2 * bu; /* (B, U) */
    }
    nntk_recurrent_load_state(batch, u, h0, hs);
    for (int64_t k = 0; k < steps; k++) {
        const int64_t t = nntk_recurrent_position(&f->spec, k, steps);
        const float *h_prev = hs + (training ? k : k % 2) * bu; /* (B, U) */
        float *h = hs + (training ? k + 1 : (k + 1) % 2) * bu;   /* (B, U) */
        float *pre = pres + (training ? k : 0) * bu;             /* (B, U) */
        cell_forward(f, batch, in + t * d, steps * d, h_prev, xp, hp, pre, h);
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
    const int64_t bu = batch * u;
    float *scratch;
    NNTKStatus s = nntk_recurrent_reserve_scratch(fn, f, 3 * bu, &scratch);
    if (s != NNTK_OK) return s;
    float *dh = scratch, *delta = dh + bu, *carry = delta + bu; /* (B, U) each */
    const Cache c = cache_layout(f, batch, steps);
    memset(gradient->d_weights, 0, (size_t)gradient->count * sizeof(float));
    Grads g;
    g.kernel = gradient->d_weights;
    g.recurrent = g.kernel + d * u;
    g.bias = f->spec.use_bias ? g.recurrent + u * u : NULL;
    const float *incoming = d_final_state; /* gradient reaching h after step k (besides d_out) */
    for (int64_t k = steps - 1; k >= 0; k--) {
        const int64_t t = nntk_recurrent_position(&f->spec, k, steps);
        nntk_recurrent_output_gradient(&f->spec, batch, steps, k, d_out, incoming, dh);
        cell_backward(f, batch, c.x + t * d, steps * d, c.h + k * bu, c.pre + k * bu,
                      c.h + (k + 1) * bu, dh, delta, g, d_in ? d_in + t * d : NULL, carry);
        incoming = carry;
    }
    if (d_initial_state) nntk_copy(d_initial_state, carry, bu);
    return NNTK_OK;
}

/* --- public API --------------------------------------------------------------------------- */

NNTK_API NNTKRNNConfig *NNTKRNNConfigCreate(int64_t input_dim, int64_t units, int32_t activation,
                                            int32_t use_bias, int32_t return_sequences,
                                            int32_t go_backwards) {
    static const char fn[] = "NNTKRNNConfigCreate";
    NNTKRecurrentSpec spec;
    if (nntk_recurrent_spec_init(fn, &spec, input_dim, units, 1, 1, activation, 0, use_bias, 0,
                                 return_sequences, go_backwards) != NNTK_OK)
        return NULL;
    return (NNTKRNNConfig *)nntk_recurrent_config_create(fn, CONFIG_TAG, &spec);
}

NNTK_API void NNTKRNNConfigDestroy(NNTKRNNConfig *config) {
    nntk_recurrent_config_destroy((NNTKRecurrentConfig *)config, CONFIG_TAG);
}

NNTK_API NNTKRNN *NNTKRNNCreateForInference(const NNTKRNNConfig *config) {
    return (NNTKRNN *)nntk_recurrent_create("NNTKRNNCreateForInference",
                                            (const NNTKRecurrentConfig *)config, CONFIG_TAG,
                                            FILTER_TAG, 0, NULL, cache_size);
}

NNTK_API NNTKRNN *NNTKRNNCreateForTraining(const NNTKRNNConfig *config,
                                           const NNTKTrainingConfig *training_config) {
    return (NNTKRNN *)nntk_recurrent_create("NNTKRNNCreateForTraining",
                                            (const NNTKRecurrentConfig *)config, CONFIG_TAG,
                                            FILTER_TAG, 1, training_config, cache_size);
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
