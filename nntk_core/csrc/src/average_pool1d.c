/* AveragePool1d: tf.keras AveragePooling1D (channels_last); the fields and the
 * window geometry are core/pool1d.h's. Shapes: B = batch, L = input steps,
 * O = output steps, C = input_dim.
 *
 * Each output is the mean of its window's steps INSIDE the input: with "same"
 * padding the divisor counts only those (tf.nn.avg_pool excludes the padding),
 * so an edge window of n < pool_size steps divides by n. Summed in double,
 * rounded once.
 *
 * The gradient is TF's AvgPoolGrad: each output's share d_out/n (float32) is
 * added to every step of its window, windows that overlap adding in output
 * order (float32). Nothing is kept but the shape. */
#include "core/pool1d.h"
#include "nntk/average_pool1d.h"

static NNTKStatus output_shape(const char *fn, const NNTKLayer *f, int64_t batch, int64_t steps,
                               int64_t *out_steps, int64_t *out_features) {
    return nntk_pool1d_output_shape(fn, f, batch, steps, out_steps, out_features);
}

static NNTKStatus forward(const char *fn, NNTKLayer *f, NNTKApplyMode mode, int64_t batch,
                          int64_t steps, int64_t out_steps, const float *in,
                          const float *initial_state, float *out, float *final_state) {
    (void)mode, (void)out_steps, (void)initial_state, (void)final_state;
    NNTKPool1dWindows w;
    const NNTKStatus s = nntk_pool1d_windows(fn, &f->config, steps, &w);
    if (s != NNTK_OK) return s; /* output_shape checked it */
    const int64_t C = w.channels;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t o = 0; o < w.out_steps; o++) {
            int64_t lo, hi;
            nntk_pool1d_window(&w, o, &lo, &hi);
            for (int64_t c = 0; c < C; c++) {
                double sum = 0.0;
                for (int64_t i = lo; i < hi; i++) sum += (double)in[(b * steps + i) * C + c];
                out[(b * w.out_steps + o) * C + c] = (float)(sum / (double)(hi - lo));
            }
        }
    return NNTK_OK;
}

/* Every step of the window gets d/n (float32, n its steps inside the input). */
static void route(const NNTKPool1dWindows *w, const float *x_b, int64_t o, int64_t c, float d,
                  float *d_in_b) {
    (void)x_b;
    int64_t lo, hi;
    nntk_pool1d_window(w, o, &lo, &hi);
    const float share = d / (float)(hi - lo);
    for (int64_t i = lo; i < hi; i++) d_in_b[i * w->channels + c] += share;
}

static NNTKStatus backward(const char *fn, NNTKLayer *f, const float *d_out, const float *d_final_state,
                           float *d_in, float *d_initial_state, float *d_weights) {
    (void)d_final_state, (void)d_initial_state, (void)d_weights;
    return nntk_pool1d_backward(fn, f, d_out, d_in, route);
}

const NNTKLayerType nntk_average_pool1d_type = {
    NNTK_LAYER_NAMES("AveragePool1d", "AveragePooling1D", 'A', 'P', '1'),
    NNTK_LAYER_FIELDS(nntk_pool1d_fields),
    .keras_positional = 3, /* AveragePooling1D(pool_size, strides, padding, data_format) */
    .output_shape = output_shape,
    .forward = forward,
    .backward = backward,
    .sequence_input = 1, /* tf.keras takes (B, L, C) only */
};

NNTK_API NNTKAveragePool1dConfig *NNTKAveragePool1dConfigCreate(int64_t input_dim,
                                                                int64_t pool_size, int64_t strides,
                                                                int32_t padding) {
    return (NNTKAveragePool1dConfig *)nntk_pool1d_config_create(
        "NNTKAveragePool1dConfigCreate", &nntk_average_pool1d_type, input_dim, pool_size, strides,
        padding);
}

NNTK_DEFINE_LAYER(AveragePool1d, nntk_average_pool1d_type)
