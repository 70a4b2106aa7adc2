/* Activation layer: the activation math of core/activations.c as a layer.
 * Shapes: rows = batch·steps, F = features. No weights. */
#include "core/layer.h"
#include "core/ops.h"
#include "core/threads.h"
#include "nntk/activation.h"

enum { ACTIVATION, INPUT_DIM };

static const NNTKLayerField fields[] = {
    [ACTIVATION] = NNTK_FIELD_ACTIVATION("activation", "kind", NAN),
    [INPUT_DIM] = {.name = "input_dim", .arg = "features", .kind = NNTK_FIELD_INT,
                   .default_value = NAN, .min = 1, .max = (double)NNTK_MAX_DIM},
};

static NNTKActivationKind kind_of(const NNTKLayer *f) {
    return (NNTKActivationKind)nntk_layer_int(&f->config, ACTIVATION);
}

/* The training workspace of `rows` rows: the input x, then the output y. */
static NNTKStatus reserve(const char *fn, NNTKLayer *f, int64_t batch, int64_t steps, int64_t out_steps) {
    (void)out_steps; /* = steps */
    return nntk_layer_reserve(fn, f, 2 * batch * steps * nntk_layer_int(&f->config, INPUT_DIM));
}

static NNTKStatus output_shape(const char *fn, const NNTKLayer *f, int64_t batch, int64_t steps,
                               int64_t *out_steps, int64_t *out_features) {
    const int64_t features = nntk_layer_int(&f->config, INPUT_DIM);
    *out_steps = steps;
    *out_features = features;
    return nntk_check_batch(fn, batch, steps, features);
}

/* Training rows [r0, r1) of `Rows`: every activation is per element or (softmax) per
 * row, so the pool may split the rows (docs/threads.md). */
typedef struct {
    const NNTKLayer *f;
    int64_t rows, features;
    const float *in; /* forward: the input; backward: d_out */
    float *out;      /* forward: the output; backward: d_in */
} Rows;

static void forward_rows(void *context, int64_t r0, int64_t r1) {
    const Rows *p = context;
    const int64_t rows = p->rows, n = p->features;
    float *x = p->f->workspace + r0 * n, *y = p->f->workspace + (rows + r0) * n;
    nntk_copy(x, p->in + r0 * n, (r1 - r0) * n);
    nntk_activation_forward(kind_of(p->f), r1 - r0, n, x, y);
    nntk_copy(p->out + r0 * n, y, (r1 - r0) * n);
}

static void backward_rows(void *context, int64_t r0, int64_t r1) {
    const Rows *p = context;
    const int64_t rows = p->rows, n = p->features;
    nntk_activation_backward(kind_of(p->f), r1 - r0, n, p->f->workspace + r0 * n,
                             p->f->workspace + (rows + r0) * n, p->in + r0 * n, p->out + r0 * n);
}

/* Runs fn over every row, split when worth a dispatch (an element is two copies and a
 * few operations, about four multiply-adds' time). */
static void split_rows(NNTKRowsFn fn, Rows *p) {
    nntk_split_rows(4 * p->rows * p->features, p->rows, fn, p);
}

static NNTKStatus forward(const char *fn, NNTKLayer *f, NNTKApplyMode mode, int64_t batch,
                          int64_t steps, int64_t out_steps, const float *in,
                          const float *initial_state, float *out, float *final_state) {
    (void)fn, (void)out_steps, (void)initial_state, (void)final_state;
    const int64_t rows = batch * steps, features = nntk_layer_int(&f->config, INPUT_DIM);
    if (mode == NNTK_APPLY_INFERENCE) {
        nntk_activation_forward(kind_of(f), rows, features, in, out);
        return NNTK_OK;
    }
    Rows p = {f, rows, features, in, out};
    split_rows(forward_rows, &p);
    return NNTK_OK;
}

static NNTKStatus backward(const char *fn, NNTKLayer *f, const float *d_out, const float *d_final_state,
                           float *d_in, float *d_initial_state, float *d_weights) {
    (void)fn, (void)d_final_state, (void)d_initial_state, (void)d_weights;
    /* No weights: with d_in NULL (the standard contract allows it) there is
     * nothing to compute. */
    Rows p = {f, f->batch * f->steps, nntk_layer_int(&f->config, INPUT_DIM), d_out, d_in};
    if (d_in != NULL) split_rows(backward_rows, &p);
    return NNTK_OK;
}

const NNTKLayerType nntk_activation_type = {
    NNTK_LAYER_NAMES("Activation", "Activation", 'A', 'c', 't'),
    NNTK_LAYER_FIELDS(fields),
    .keras_positional = 1, /* Activation(activation) */
    .streams = nntk_stream_stepwise,
    NNTK_LAYER_STANDARD_OPS,
};

NNTK_API NNTKActivationConfig *NNTKActivationConfigCreate(int32_t kind, int64_t features) {
    const NNTKLayerValue values[] = {{.i = kind}, {.i = features}};
    return (NNTKActivationConfig *)nntk_layer_config_create("NNTKActivationConfigCreate",
                                                           &nntk_activation_type, values);
}

NNTK_DEFINE_LAYER(Activation, nntk_activation_type)
