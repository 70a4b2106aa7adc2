/* LSTM (tf.keras LSTM): the cell (one step forward, one step backward) and
 * the config. The loop over time, the handles and the public functions are
 * shared (core/recurrent.c).
 *
 * Shapes: B = batch, D = input_dim, U = units; gate blocks are
 * [i | f | c | o], each U wide, so a gate tensor is (B, 4U). The state is
 * (2, B, U): h then c. */
#include "core/internal.h"
#include "core/layer.h"
#include "core/kernels.h"
#include "core/ops.h"
#include "core/recurrent.h"
#include "nntk/lstm.h"

/* In the order of NNTKLSTMConfigCreate's parameters, then unit_forget_bias
 * (Keras's bias initializer: the forget gate's bias starts at 1). */
static const NNTKLayerField fields[] = {
    NNTK_RECURRENT_SIZES_AND_ACTIVATION,
    NNTK_RECURRENT_GATES_AND_BIAS,
    NNTK_RECURRENT_SEQUENCE,
    NNTK_FIELD_FLAG("unit_forget_bias", 1),
};

/* --- the cell ----------------------------------------------------------------------------- */

/* The fused cell (core/kernels.h) covers the Keras default: sigmoid gates
 * and tanh. Other activations run the generic cell below (same expressions). */
static int fused(const NNTKRecurrentSpec *s) {
    return s->recurrent_activation == NNTK_ACTIVATION_SIGMOID &&
           s->activation == NNTK_ACTIVATION_TANH;
}

/* One step's values (the slots of step k: the cache, or inference scratch). */
typedef struct {
    float *pre; /* (B, 4U) pre-activations z = [zi | zf | zc | zo] (generic cell only) */
    float *act; /* (B, 4U) activations [i | f | g | o] */
    float *tc;  /* (B, U) act(c_t) (generic cell only: the fused one recomputes it) */
} Step;

static Step step_of(NNTKRecurrentSlots values) {
    return (Step){values.a[0], values.a[1], values.a[2]};
}

/* One step forward. xp: B rows of x_t·W (4U each, no bias) spaced ldxp
 * apart; the states h_prev, c_prev, h, c (B, U); hp (B, 4U) scratch; keep:
 * write the Step (training; the generic cell always does). */
static void forward_step(const NNTKRecurrentFilter *f, int64_t k, int64_t batch, const float *xp,
                         int64_t ldxp, NNTKRecurrentStates states, float *hp,
                         NNTKRecurrentSlots values, int keep) {
    const int64_t u = f->spec.units, g4 = 4 * u;
    const float *h_prev = states.prev, *c_prev = states.prev + states.stride;
    float *h = states.next, *c = states.next + states.stride;
    const Step st = step_of(values);
    const NNTKRecurrentWeights w = nntk_recurrent_weights(f);
    const NNTKActivationKind ra = f->spec.recurrent_activation;
    nntk_recurrent_product(f, k, batch, g4, h_prev, NULL, hp, g4); /* h · R */
    if (fused(&f->spec)) {
        const NNTKKernels *kern = nntk_kernels();
        for (int64_t b = 0; b < batch; b++)
            kern->lstm_forward(u, xp + b * ldxp, hp + b * g4, w.bias, c_prev + b * u,
                               keep ? st.act + b * g4 : NULL, c + b * u, h + b * u);
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

/* One step backward. d_state = [dh | dc]: dh (B, U) is the whole upstream
 * gradient of h_t and dc (B, U) that of c_t arriving from the next step
 * (overwritten). Writes the pre-activation gradient a (B, 4U) and
 * d_prev = [dh_prev | dc_prev]: dh_prev (B, U) = a · Rᵀ (rt (4U, U) = Rᵀ),
 * dc_prev (B, U). work: d_act (B, 4U) scratch. The weight gradients are
 * formed from a of all steps after the loop (z = (x_t · W + h_prev · R) + b:
 * dW = xᵀ·a, dR = h_prevᵀ·a, db = Σ a, the loop's default). */
static void backward_step(const NNTKRecurrentFilter *f, int64_t batch, NNTKRecurrentStates states,
                          NNTKRecurrentSlots values, float *d_state, float *d_prev,
                          const float *rt, float *work, NNTKRecurrentSlots grads) {
    const int64_t u = f->spec.units, g4 = 4 * u, bu = batch * u;
    const float *c_prev = states.prev + states.stride, *c = states.next + states.stride;
    const Step st = step_of(values);
    const float *dh = d_state;
    float *dc = d_state + bu, *dh_prev = d_prev, *dc_prev = d_prev + bu;
    float *d_act = work, *a = grads.a[0];
    const NNTKActivationKind ra = f->spec.recurrent_activation;
    if (fused(&f->spec)) {
        const NNTKKernels *kern = nntk_kernels();
        for (int64_t b = 0; b < batch; b++)
            kern->lstm_backward(u, dh + b * u, st.act + b * g4, c + b * u, c_prev + b * u,
                                dc + b * u, a + b * g4, dc_prev + b * u);
        nntk_recurrent_product_t(f, batch, 0, g4, a, g4, rt, 0, dh_prev);
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
    nntk_recurrent_product_t(f, batch, 0, g4, a, g4, rt, 0, dh_prev);
}

static const NNTKRecurrentCell cell = {
    .gates = 4,
    .states = 2,
    .projection_bias = 0, /* the cell adds the bias last, as Keras */
    .values = 3,
    .value_width = {4, 4, 1}, /* pre, act, tc */
    .grads = 1,
    .grad_width = {4}, /* a */
    .work = 4,         /* d_act */
    .forward_step = forward_step,
    .backward_step = backward_step,
    .weight_gradient = NULL,
};

/* --- the type and the public API ------------------------------------------------------- */

const NNTKLayerType nntk_lstm_type = NNTK_RECURRENT_TYPE("LSTM", "LSTM", 'L', 's', 't',
    /* LSTM(units, activation, recurrent_activation, use_bias, kernel_initializer, ...) */
    4);

NNTK_API NNTKLSTMConfig *NNTKLSTMConfigCreate(int64_t input_dim, int64_t units,
                                              int32_t activation, int32_t recurrent_activation,
                                              int32_t use_bias, int32_t return_sequences,
                                              int32_t go_backwards) {
    const NNTKLayerValue values[] = {
        {.i = input_dim}, {.i = units}, {.i = activation}, {.i = recurrent_activation},
        {.i = use_bias}, {.i = return_sequences}, {.i = go_backwards},
        {.i = 1} /* unit_forget_bias: Keras's default */};
    return (NNTKLSTMConfig *)nntk_layer_config_create("NNTKLSTMConfigCreate", &nntk_lstm_type,
                                                      values);
}

NNTK_DEFINE_STATEFUL_LAYER(LSTM, nntk_lstm_type)
