/* MaxPool1d: tf.keras MaxPooling1D (channels_last); the fields and the window
 * geometry are core/pool1d.h's. Shapes: B = batch, L = input steps, O = output
 * steps, C = input_dim. Padded positions never win (tf.nn.max_pool pads with −∞).
 *
 * The gradient is TF's MaxPoolGrad: each output's d_out goes to the FIRST step
 * of its window holding the maximum (ties: the earliest), and windows that
 * overlap add their shares (in output order, in float32). Training keeps the
 * input; backward finds the winners again. */
#include "core/ops.h"
#include "core/pool1d.h"
#include "nntk/max_pool1d.h"

static NNTKStatus output_shape(const char *fn, const NNTKLayer *f, int64_t batch, int64_t steps,
                               int64_t *out_steps, int64_t *out_features) {
    return nntk_pool1d_output_shape(fn, f, batch, steps, out_steps, out_features);
}

/* The training workspace: the input (B, L, C). */
static NNTKStatus reserve(const char *fn, NNTKLayer *f, int64_t batch, int64_t steps, int64_t out_steps) {
    (void)out_steps;
    return nntk_layer_reserve(fn, f, batch * steps * nntk_layer_int(&f->config, NNTK_POOL1D_INPUT_DIM));
}

/* The step of window o of channel c holding the maximum (the first of equals);
 * x_b is one batch row (L, C). */
static int64_t winner(const NNTKPool1dWindows *w, const float *x_b, int64_t o, int64_t c) {
    int64_t lo, hi;
    nntk_pool1d_window(w, o, &lo, &hi);
    int64_t best = lo;
    for (int64_t i = lo + 1; i < hi; i++)
        if (x_b[i * w->channels + c] > x_b[best * w->channels + c]) best = i;
    return best;
}

static NNTKStatus forward(const char *fn, NNTKLayer *f, NNTKApplyMode mode, int64_t batch,
                          int64_t steps, int64_t out_steps, const float *in,
                          const float *initial_state, float *out, float *final_state) {
    (void)out_steps, (void)initial_state, (void)final_state;
    NNTKPool1dWindows w;
    const NNTKStatus s = nntk_pool1d_windows(fn, &f->config, steps, &w);
    if (s != NNTK_OK) return s; /* output_shape checked it */
    const int64_t C = w.channels;
    if (mode != NNTK_APPLY_INFERENCE) nntk_copy(f->workspace, in, batch * steps * C);
    for (int64_t b = 0; b < batch; b++) {
        const float *x_b = in + b * steps * C; /* (L, C) */
        for (int64_t o = 0; o < w.out_steps; o++)
            for (int64_t c = 0; c < C; c++)
                out[(b * w.out_steps + o) * C + c] = x_b[winner(&w, x_b, o, c) * C + c];
    }
    return NNTK_OK;
}

/* The whole d goes to the window's winner. */
static void route(const NNTKPool1dWindows *w, const float *x_b, int64_t o, int64_t c, float d,
                  float *d_in_b) {
    d_in_b[winner(w, x_b, o, c) * w->channels + c] += d;
}

static NNTKStatus backward(const char *fn, NNTKLayer *f, const float *d_out, const float *d_final_state,
                           float *d_in, float *d_initial_state, float *d_weights) {
    (void)d_final_state, (void)d_initial_state, (void)d_weights;
    return nntk_pool1d_backward(fn, f, d_out, d_in, route);
}

const NNTKLayerType nntk_max_pool1d_type = {
    NNTK_LAYER_NAMES("MaxPool1d", "MaxPooling1D", 'M', 'P', '1'),
    NNTK_LAYER_FIELDS(nntk_pool1d_fields),
    .keras_positional = 3, /* MaxPooling1D(pool_size, strides, padding, data_format) */
    NNTK_LAYER_STANDARD_OPS,
    .sequence_input = 1, /* tf.keras takes (B, L, C) only */
};

NNTK_API NNTKMaxPool1dConfig *NNTKMaxPool1dConfigCreate(int64_t input_dim, int64_t pool_size,
                                                        int64_t strides, int32_t padding) {
    return (NNTKMaxPool1dConfig *)nntk_pool1d_config_create(
        "NNTKMaxPool1dConfigCreate", &nntk_max_pool1d_type, input_dim, pool_size, strides, padding);
}

NNTK_DEFINE_LAYER(MaxPool1d, nntk_max_pool1d_type)
