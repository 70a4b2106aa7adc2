/* GlobalAveragePool1d: tf.keras GlobalAveragePooling1D (channels_last): the mean
 * over the steps of each channel. Shapes: B = batch, T = steps, C = input_dim;
 * in (B, T, C) -> out (B, C) (out_steps 1). No weights. */
#include "core/pool1d.h"
#include "nntk/global_average_pool1d.h"

static int64_t channels_of(const NNTKLayer *f) {
    return nntk_layer_int(&f->config, NNTK_GLOBAL_POOL1D_INPUT_DIM);
}

/* out[b, c] = Σ_t x[b, t, c] / T, summed in double, rounded once. Nothing is
 * kept for the gradient but the shape (the core keeps batch and steps). */
static NNTKStatus forward(const char *fn, NNTKLayer *f, NNTKApplyMode mode, int64_t batch,
                          int64_t steps, int64_t out_steps, const float *in,
                          const float *initial_state, float *out, float *final_state) {
    (void)fn, (void)mode, (void)out_steps, (void)initial_state, (void)final_state;
    const int64_t channels = channels_of(f);
    for (int64_t b = 0; b < batch; b++) {
        const float *x_b = in + b * steps * channels; /* (T, C) */
        float *y_b = out + b * channels;              /* (C,) */
        for (int64_t c = 0; c < channels; c++) {
            double sum = 0.0;
            for (int64_t t = 0; t < steps; t++) sum += (double)x_b[t * channels + c];
            y_b[c] = (float)(sum / (double)steps);
        }
    }
    return NNTK_OK;
}

/* d_in[b, t, c] = d_out[b, c] / T, the float32 quotient tf.keras's mean
 * gradient computes (T < 2^24 is exact in float). */
static NNTKStatus backward(const char *fn, NNTKLayer *f, const float *d_out, const float *d_final_state,
                           float *d_in, float *d_initial_state, float *d_weights) {
    (void)fn, (void)d_final_state, (void)d_initial_state, (void)d_weights;
    if (d_in == NULL) return NNTK_OK; /* no weights: nothing else to compute */
    const int64_t channels = channels_of(f), steps = f->steps;
    for (int64_t b = 0; b < f->batch; b++)
        for (int64_t t = 0; t < steps; t++)
            for (int64_t c = 0; c < channels; c++)
                d_in[(b * steps + t) * channels + c] = d_out[b * channels + c] / (float)steps;
    return NNTK_OK;
}

const NNTKLayerType nntk_global_average_pool1d_type = {
    NNTK_LAYER_NAMES("GlobalAveragePool1d", "GlobalAveragePooling1D", 'G', 'A', 'p'),
    NNTK_GLOBAL_POOL1D_MEMBERS,
    .forward = forward,
    .backward = backward,
};

NNTK_DEFINE_GLOBAL_POOL1D_CONFIG_CREATE(GlobalAveragePool1d, nntk_global_average_pool1d_type)
NNTK_DEFINE_LAYER(GlobalAveragePool1d, nntk_global_average_pool1d_type)
