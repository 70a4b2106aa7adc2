/* GlobalMaxPool1d: tf.keras GlobalMaxPooling1D (channels_last): the maximum
 * over the steps of each channel. Shapes: B = batch, T = steps, C = input_dim;
 * in (B, T, C) -> out (B, C) (out_steps 1). No weights.
 *
 * The gradient is tf.reduce_max's: d_out[b, c] is shared equally by every step
 * that attains the maximum, d_in = (1/n)·d_out with n the number of ties
 * (float32 1/n times d_out, as TF computes it). Training keeps the input and
 * the output for it. */
#include "core/ops.h"
#include "core/pool1d.h"
#include "nntk/global_max_pool1d.h"

static int64_t channels_of(const NNTKLayer *f) {
    return nntk_layer_int(&f->config, NNTK_GLOBAL_POOL1D_INPUT_DIM);
}

/* The training workspace: the input x (B, T, C), then the output y (B, C). */
static NNTKStatus reserve(const char *fn, NNTKLayer *f, int64_t batch, int64_t steps, int64_t out_steps) {
    (void)out_steps;
    return nntk_layer_reserve(fn, f, batch * (steps + 1) * channels_of(f));
}

/* y[b, c] = max_t x[b, t, c]. */
static void maximum(int64_t batch, int64_t steps, int64_t channels, const float *in, float *out) {
    for (int64_t b = 0; b < batch; b++) {
        const float *x_b = in + b * steps * channels; /* (T, C) */
        float *y_b = out + b * channels;              /* (C,) */
        nntk_copy(y_b, x_b, channels);
        for (int64_t t = 1; t < steps; t++)
            for (int64_t c = 0; c < channels; c++)
                if (x_b[t * channels + c] > y_b[c]) y_b[c] = x_b[t * channels + c];
    }
}

static NNTKStatus forward(const char *fn, NNTKLayer *f, NNTKApplyMode mode, int64_t batch,
                          int64_t steps, int64_t out_steps, const float *in,
                          const float *initial_state, float *out, float *final_state) {
    (void)fn, (void)out_steps, (void)initial_state, (void)final_state;
    const int64_t channels = channels_of(f);
    if (mode == NNTK_APPLY_INFERENCE) {
        maximum(batch, steps, channels, in, out);
        return NNTK_OK;
    }
    float *x = f->workspace, *y = f->workspace + batch * steps * channels;
    nntk_copy(x, in, batch * steps * channels);
    maximum(batch, steps, channels, x, y);
    nntk_copy(out, y, batch * channels);
    return NNTK_OK;
}

static NNTKStatus backward(const char *fn, NNTKLayer *f, const float *d_out, const float *d_final_state,
                           float *d_in, float *d_initial_state, float *d_weights) {
    (void)fn, (void)d_final_state, (void)d_initial_state, (void)d_weights;
    if (d_in == NULL) return NNTK_OK; /* no weights: nothing else to compute */
    const int64_t batch = f->batch, steps = f->steps, channels = channels_of(f);
    const float *x = f->workspace, *y = f->workspace + batch * steps * channels;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t c = 0; c < channels; c++) {
            const float top = y[b * channels + c];
            int64_t ties = 0;
            for (int64_t t = 0; t < steps; t++) ties += x[(b * steps + t) * channels + c] == top;
            const float share = (1.0f / (float)ties) * d_out[b * channels + c];
            for (int64_t t = 0; t < steps; t++) {
                const int64_t i = (b * steps + t) * channels + c;
                d_in[i] = x[i] == top ? share : 0.0f;
            }
        }
    return NNTK_OK;
}

const NNTKLayerType nntk_global_max_pool1d_type = {
    NNTK_LAYER_NAMES("GlobalMaxPool1d", "GlobalMaxPooling1D", 'G', 'M', 'p'),
    NNTK_GLOBAL_POOL1D_MEMBERS,
    .reserve = reserve,
    .forward = forward,
    .backward = backward,
};

NNTK_DEFINE_GLOBAL_POOL1D_CONFIG_CREATE(GlobalMaxPool1d, nntk_global_max_pool1d_type)
NNTK_DEFINE_LAYER(GlobalMaxPool1d, nntk_global_max_pool1d_type)
