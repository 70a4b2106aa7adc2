/* GRU (tf.keras GRU, both reset_after variants): the cell (one step forward,
 * one step backward, the recurrent weight gradients) and the config. The loop
 * over time, the handles and the public functions are shared
 * (core/recurrent.c).
 *
 * Shapes: B = batch, D = input_dim, U = units; gate blocks are [z | r | h],
 * each U wide, so a gate tensor is (B, 3U). */
#include "core/internal.h"
#include "core/layer.h"
#include "core/kernels.h"
#include "core/ops.h"
#include "core/recurrent.h"
#include "nntk/gru.h"

/* In the order of NNTKGRUConfigCreate's parameters. */
static const NNTKLayerField fields[] = {
    NNTK_RECURRENT_SIZES_AND_ACTIVATION,
    NNTK_RECURRENT_GATES_AND_BIAS,
    NNTK_FIELD_FLAG("reset_after", 1),
    NNTK_RECURRENT_SEQUENCE,
};

/* --- the cell ----------------------------------------------------------------------------- */

/* The fused cell (core/kernels.h) covers the Keras default: reset_after with
 * sigmoid gates and a tanh candidate. Other configurations run the generic
 * cell below, which computes the same expressions with any activation. */
static int fused(const NNTKRecurrentSpec *s) {
    return s->reset_after && s->recurrent_activation == NNTK_ACTIVATION_SIGMOID &&
           s->activation == NNTK_ACTIVATION_TANH;
}

/* One step's values (the slots of step k: the cache, or inference scratch). */
typedef struct {
    float *pre; /* (B, 3U) pre-activations [z | r | h] (generic cell only) */
    float *act; /* (B, 3U) activations [z | r | ĥ] */
    float *rec; /* (B, U) reset_after: hh = (h_prev·R + b_rec)[:, h block];
                 *        else: r ⊙ h_prev (what multiplies R[:, 2U:]) */
} Step;

static Step step_of(NNTKRecurrentSlots values) {
    return (Step){values.a[0], values.a[1], values.a[2]};
}

/* One step forward. xp: B rows of the input projection x_t·W + b_in (3U
 * each) spaced ldxp apart; h_prev, h (B, U) the states; hp (B, 3U) scratch;
 * keep: write the Step (training) or not (inference; the generic cell always
 * does). */
static void forward_step(const NNTKRecurrentFilter *f, int64_t k, int64_t batch, const float *xp,
                         int64_t ldxp, NNTKRecurrentStates states, float *hp,
                         NNTKRecurrentSlots values, int keep) {
    const int64_t u = f->spec.units, g3 = 3 * u;
    const float *h_prev = states.prev;
    float *h = states.next;
    const Step st = step_of(values);
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
 * work: q (B, U) and d_act (B, 3U) scratch. The weight gradients are formed
 * from ax and ah of all steps after the loop (weight_gradient). */
static void backward_step(const NNTKRecurrentFilter *f, int64_t batch, NNTKRecurrentStates states,
                          NNTKRecurrentSlots values, float *g, float *dh_prev, const float *rt,
                          float *work, NNTKRecurrentSlots grads) {
    const int64_t u = f->spec.units, g3 = 3 * u;
    const float *h_prev = states.prev;
    const Step st = step_of(values);
    float *q = work, *d_act = work + batch * u;
    float *ax = grads.a[0], *ah = grads.a[1];
    if (fused(&f->spec)) {
        const NNTKKernels *kern = nntk_kernels();
        for (int64_t b = 0; b < batch; b++)
            kern->gru_backward(u, g + b * u, st.act + b * g3, st.rec + b * u, h_prev + b * u,
                               ax + b * g3, ah + b * g3, dh_prev + b * u);
        /* dh_prev += ah · Rᵀ */
        nntk_recurrent_product_t(f, batch, 0, g3, ah, g3, rt, 1, dh_prev);
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
        nntk_recurrent_product_t(f, batch, 2 * u, u, ax + 2 * u, g3, rt, 0, q);
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
        nntk_recurrent_product_t(f, batch, 0, g3, ah, g3, rt, 1, dh_prev);
    } else {
        /* [hz | hr] = h_prev · R[:, :2U]; gradient [δz | δr]. */
        nntk_recurrent_product_t(f, batch, 0, 2 * u, ax, g3, rt, 1, dh_prev);
    }
}

/* The recurrent_kernel and bias gradients, summed over all steps and rows
 * (processing order): reset_after: dR = h_prevᵀ·ah, db_rec = Σ ah; else
 * dR[:, :2U] = h_prevᵀ·ax[:, :2U], dR[:, 2U:] = (r ⊙ h_prev)ᵀ·ax[:, 2U:];
 * db_in = Σ ax. (dW = xᵀ·ax and dx = ax · Wᵀ: the loop's.) */
static void weight_gradient(const NNTKRecurrentFilter *f, int64_t rows, const float *h,
                            NNTKRecurrentSlots values, NNTKRecurrentSlots grads,
                            float *g_recurrent, float *g_bias) {
    const int64_t u = f->spec.units, g3 = 3 * u;
    const float *ax = grads.a[0], *ah = grads.a[1], *rec = values.a[2];
    if (f->spec.reset_after) {
        nntk_gemm(1, 0, u, g3, rows, 1.0f, h, u, ah, g3, 0.0f, g_recurrent, g3);
    } else {
        nntk_gemm(1, 0, u, 2 * u, rows, 1.0f, h, u, ax, g3, 0.0f, g_recurrent, g3);
        nntk_gemm(1, 0, u, u, rows, 1.0f, rec, u, ax + 2 * u, g3, 0.0f, g_recurrent + 2 * u, g3);
    }
    if (f->spec.use_bias) { /* g_bias (3U,) or (2, 3U) */
        nntk_sum_rows(rows, g3, ax, g_bias, 0);
        if (f->spec.reset_after) nntk_sum_rows(rows, g3, ah, g_bias + g3, 0);
    }
}

static const NNTKRecurrentCell cell = {
    .gates = 3,
    .states = 1,
    .projection_bias = 1, /* b_in: the first 3U of the bias */
    .values = 3,
    .value_width = {3, 3, 1}, /* pre, act, rec */
    .grads = 2,
    .grad_width = {3, 3}, /* ax, ah */
    .work = 4,            /* q, d_act */
    .forward_step = forward_step,
    .backward_step = backward_step,
    .weight_gradient = weight_gradient,
};

/* --- the type and the public API ------------------------------------------------------- */

const NNTKLayerType nntk_gru_type = NNTK_RECURRENT_TYPE("GRU", "GRU", 'G', 'r', 'u',
    /* GRU(units, activation, recurrent_activation, use_bias, kernel_initializer, ...) */
    4);

NNTK_API NNTKGRUConfig *NNTKGRUConfigCreate(int64_t input_dim, int64_t units, int32_t activation,
                                            int32_t recurrent_activation, int32_t use_bias,
                                            int32_t reset_after, int32_t return_sequences,
                                            int32_t go_backwards) {
    const NNTKLayerValue values[] = {
        {.i = input_dim}, {.i = units},       {.i = activation},       {.i = recurrent_activation},
        {.i = use_bias},  {.i = reset_after}, {.i = return_sequences}, {.i = go_backwards}};
    return (NNTKGRUConfig *)nntk_layer_config_create("NNTKGRUConfigCreate", &nntk_gru_type, values);
}

NNTK_DEFINE_STATEFUL_LAYER(GRU, nntk_gru_type)
