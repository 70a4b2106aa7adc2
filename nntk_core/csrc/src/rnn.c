/* RNN (tf.keras SimpleRNN): the cell (one step forward, one step backward)
 * and the config. The loop over time, the handles and the public functions
 * are shared (core/recurrent.c).
 *
 * Shapes: B = batch, D = input_dim, U = units. */
#include "core/internal.h"
#include "core/layer.h"
#include "core/ops.h"
#include "core/recurrent.h"
#include "nntk/rnn.h"

/* In the order of NNTKRNNConfigCreate's parameters. */
static const NNTKLayerField fields[] = {
    NNTK_RECURRENT_SIZES_AND_ACTIVATION,
    NNTK_FIELD_FLAG("use_bias", 1),
    NNTK_RECURRENT_SEQUENCE,
};

/* --- the cell ----------------------------------------------------------------------------- */

/* One step: pre (B, U) = xp + h_prev · recurrent_kernel, h (B, U) = act(pre),
 * where xp (B rows of U spaced ldxp apart) = x_t · kernel + bias was
 * projected before the loop. hp (B, U) scratch. Kept: pre (B, U). */
static void forward_step(const NNTKRecurrentFilter *f, int64_t k, int64_t batch, const float *xp,
                         int64_t ldxp, NNTKRecurrentStates st, float *hp, NNTKRecurrentSlots values,
                         int keep) {
    (void)keep; /* pre is always written: the activation reads it */
    const int64_t u = f->spec.units;
    float *pre = values.a[0];
    nntk_recurrent_product(f, k, batch, u, st.prev, NULL, hp, u); /* hp (B, U) */
    for (int64_t b = 0; b < batch; b++)
        for (int64_t j = 0; j < u; j++) pre[b * u + j] = xp[b * ldxp + j] + hp[b * u + j];
    nntk_activation_forward(f->spec.activation, batch, u, pre, st.next);
}

/* The step's backward: d_state (B, U) is the whole upstream gradient of h_t.
 * Writes delta (B, U) = d pre and d_prev (B, U) = delta · Rᵀ (rt = Rᵀ). The
 * weight and input gradients are formed from delta of all steps after the
 * loop (pre = (x·W + b) + h_prev·R: dW = xᵀ·delta, dR = h_prevᵀ·delta,
 * db = Σ delta, the loop's default). */
static void backward_step(const NNTKRecurrentFilter *f, int64_t batch, NNTKRecurrentStates st,
                          NNTKRecurrentSlots values, float *d_state, float *d_prev,
                          const float *rt, float *work, NNTKRecurrentSlots grads) {
    (void)work;
    const int64_t u = f->spec.units;
    float *delta = grads.a[0];
    /* h = act(pre): delta = dh ⊙ act'(pre). */
    nntk_activation_backward(f->spec.activation, batch, u, values.a[0], st.next, d_state, delta);
    nntk_recurrent_product_t(f, batch, 0, u, delta, u, rt, 0, d_prev);
}

static const NNTKRecurrentCell cell = {
    .gates = 1,
    .states = 1,
    .projection_bias = 1,
    .values = 1,
    .value_width = {1}, /* pre */
    .grads = 1,
    .grad_width = {1}, /* delta */
    .work = 0,
    .forward_step = forward_step,
    .backward_step = backward_step,
    .weight_gradient = NULL,
};

/* --- the type and the public API ------------------------------------------------------- */

const NNTKLayerType nntk_rnn_type = NNTK_RECURRENT_TYPE("RNN", "SimpleRNN", 'R', 'n', 'n',
    /* SimpleRNN(units, activation, use_bias, kernel_initializer, ...) */
    3);

NNTK_API NNTKRNNConfig *NNTKRNNConfigCreate(int64_t input_dim, int64_t units, int32_t activation,
                                            int32_t use_bias, int32_t return_sequences,
                                            int32_t go_backwards) {
    const NNTKLayerValue values[] = {{.i = input_dim}, {.i = units},
                                     {.i = activation}, {.i = use_bias},
                                     {.i = return_sequences}, {.i = go_backwards}};
    return (NNTKRNNConfig *)nntk_layer_config_create("NNTKRNNConfigCreate", &nntk_rnn_type, values);
}

NNTK_DEFINE_STATEFUL_LAYER(RNN, nntk_rnn_type)
