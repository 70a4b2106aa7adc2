/* Activation layer: the activation math of core/activations.c as a layer.
 * Shapes: rows = batch·steps, F = features. No weights. */
#include "core/layer.h"
#include "core/ops.h"
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

static NNTKStatus forward(const char *fn, NNTKLayer *f, NNTKApplyMode mode, int64_t batch,
                          int64_t steps, int64_t out_steps, const float *in,
                          const float *initial_state, float *out, float *final_state) {
    (void)fn, (void)out_steps, (void)initial_state, (void)final_state;
    const int64_t rows = batch * steps, features = nntk_layer_int(&f->config, INPUT_DIM);
    if (mode == NNTK_APPLY_INFERENCE) {
        nntk_activation_forward(kind_of(f), rows, features, in, out);
        return NNTK_OK;
    }
    float *x = f->workspace, *y = f->workspace + rows * features;
    nntk_copy(x, in, rows * features);
    nntk_activation_forward(kind_of(f), rows, features, x, y);
    nntk_copy(out, y, rows * features);
    return NNTK_OK;
}

static NNTKStatus backward(const char *fn, NNTKLayer *f, const float *d_out, const float *d_final_state,
                           float *d_in, float *d_initial_state, float *d_weights) {
    (void)fn, (void)d_final_state, (void)d_initial_state, (void)d_weights;
    /* No weights: with d_in NULL (the standard contract allows it) there is
     * nothing to compute. */
    const int64_t rows = f->batch * f->steps, features = nntk_layer_int(&f->config, INPUT_DIM);
    if (d_in != NULL)
        nntk_activation_backward(kind_of(f), rows, features, f->workspace, f->workspace + rows * features,
                                 d_out, d_in);
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
