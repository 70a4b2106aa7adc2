/* LayerNorm: tf.keras LayerNormalization(axis=-1) on (B, T, C) or (B, C): each
 * row (one position's C channels) is normalised by its own statistics.
 * Shapes: N = B·T rows, C = input_dim.
 *
 * Per row, in double (two passes): μ = Σx/C, σ² = Σ(x−μ)²/C (biased),
 * r = 1/√(σ² + ε), x̂ = (x−μ)·r, y = γ·x̂ + β, rounded once. Over one channel
 * x − μ is 0 exactly, so y = β and every gradient but β's is 0, as tf.keras.
 *
 * Gradients over the N rows: dγ = Σ dY⊙x̂, dβ = Σ dY, and per row, with
 * g = dY⊙γ: dx = r·(g − mean(g) − x̂·mean(g⊙x̂)). Training keeps the input; the
 * statistics are computed again (the same operations, the same bits); the
 * sums over rows are taken in double. */
#include <float.h>

#include "core/layer.h"
#include "core/ops.h"
#include "nntk/layer_norm.h"

enum { INPUT_DIM, EPSILON, CENTER, SCALE };

static const NNTKLayerField fields[] = {
    [INPUT_DIM] = NNTK_FIELD_SIZE("input_dim"),
    [EPSILON] = {.name = "epsilon", .kind = NNTK_FIELD_FLOAT, .default_value = 1e-3, .min = 0,
                 .max = DBL_MAX, .min_exclusive = 1},
    [CENTER] = NNTK_FIELD_FLAG("center", 1),
    [SCALE] = NNTK_FIELD_FLAG("scale", 1),
};

/* The weights of a layer (or their gradients: the same layout); NULL when absent. */
typedef struct Affine {
    float *gamma, *beta;
} Affine;

static Affine affine(const NNTKLayer *f, float *block) {
    Affine a = {NULL, NULL};
    if (nntk_layer_int(&f->config, SCALE)) {
        a.gamma = block;
        block += nntk_layer_int(&f->config, INPUT_DIM);
    }
    if (nntk_layer_int(&f->config, CENTER)) a.beta = block;
    return a;
}

/* gamma (C,) if scale, beta (C,) if center: tf.keras's get_weights() order. */
static int32_t weights(const NNTKLayerConfig *config, NNTKWeightBlock *blocks) {
    const int64_t channels = nntk_layer_int(config, INPUT_DIM);
    int32_t n = 0;
    if (nntk_layer_int(config, SCALE)) blocks[n++] = (NNTKWeightBlock){"gamma", 1, {channels}, "ones", 1};
    if (nntk_layer_int(config, CENTER)) blocks[n++] = (NNTKWeightBlock){"beta", 1, {channels}, "zeros", 1};
    return n;
}

static int64_t channels_of(const NNTKLayer *f) { return nntk_layer_int(&f->config, INPUT_DIM); }

static NNTKStatus output_shape(const char *fn, const NNTKLayer *f, int64_t batch, int64_t steps,
                               int64_t *out_steps, int64_t *out_features) {
    *out_steps = steps;
    *out_features = channels_of(f);
    return nntk_check_batch(fn, batch, steps, channels_of(f));
}

/* The training workspace: the input (N, C). */
static NNTKStatus reserve(const char *fn, NNTKLayer *f, int64_t batch, int64_t steps, int64_t out_steps) {
    (void)out_steps;
    return nntk_layer_reserve(fn, f, batch * steps * channels_of(f));
}

/* The statistics of one row x (C,): *mean and *rstd = 1/√(σ² + ε). */
static void statistics(const NNTKLayer *f, const float *x, double *mean, double *rstd) {
    const int64_t channels = channels_of(f);
    double sum = 0.0, squares = 0.0;
    for (int64_t c = 0; c < channels; c++) sum += (double)x[c];
    *mean = sum / (double)channels;
    for (int64_t c = 0; c < channels; c++) {
        const double centered = (double)x[c] - *mean;
        squares += centered * centered;
    }
    *rstd = 1.0 / sqrt(squares / (double)channels + nntk_layer_float(&f->config, EPSILON));
}

static NNTKStatus forward(const char *fn, NNTKLayer *f, NNTKApplyMode mode, int64_t batch,
                          int64_t steps, int64_t out_steps, const float *in,
                          const float *initial_state, float *out, float *final_state) {
    (void)fn, (void)out_steps, (void)initial_state, (void)final_state;
    const int64_t rows = batch * steps, channels = channels_of(f);
    const Affine w = affine(f, f->weights);
    if (mode != NNTK_APPLY_INFERENCE) nntk_copy(f->workspace, in, rows * channels);
    for (int64_t r = 0; r < rows; r++) {
        const float *x = in + r * channels; /* (C,) */
        float *y = out + r * channels;      /* (C,); may be x: read before written */
        double mean, rstd;
        statistics(f, x, &mean, &rstd);
        for (int64_t c = 0; c < channels; c++) {
            const double xhat = ((double)x[c] - mean) * rstd;
            y[c] = (float)((w.gamma != NULL ? (double)w.gamma[c] : 1.0) * xhat +
                           (w.beta != NULL ? (double)w.beta[c] : 0.0));
        }
    }
    return NNTK_OK;
}

static NNTKStatus backward(const char *fn, NNTKLayer *f, const float *d_out, const float *d_final_state,
                           float *d_in, float *d_initial_state, float *d_weights) {
    (void)fn, (void)d_final_state, (void)d_initial_state;
    const int64_t rows = f->batch * f->steps, channels = channels_of(f);
    const Affine w = affine(f, f->weights), dw = affine(f, d_weights);
    double *sum_dy = *(double **)f->state, *sum_dy_xhat = sum_dy + channels; /* (C,) each */
    for (int64_t c = 0; c < channels; c++) sum_dy[c] = sum_dy_xhat[c] = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = f->workspace + r * channels, *dy = d_out + r * channels; /* (C,) */
        double mean, rstd, sum_g = 0.0, sum_g_xhat = 0.0; /* Σ g, Σ g⊙x̂ with g = dY⊙γ */
        statistics(f, x, &mean, &rstd);
        for (int64_t c = 0; c < channels; c++) {
            const double xhat = ((double)x[c] - mean) * rstd;
            const double g = (double)dy[c] * (w.gamma != NULL ? (double)w.gamma[c] : 1.0);
            sum_dy[c] += (double)dy[c];
            sum_dy_xhat[c] += (double)dy[c] * xhat;
            sum_g += g;
            sum_g_xhat += g * xhat;
        }
        if (d_in == NULL) continue;
        const double n = (double)channels;
        for (int64_t c = 0; c < channels; c++) {
            const double xhat = ((double)x[c] - mean) * rstd;
            const double g = (double)dy[c] * (w.gamma != NULL ? (double)w.gamma[c] : 1.0);
            d_in[r * channels + c] = (float)(rstd * (g - sum_g / n - xhat * (sum_g_xhat / n)));
        }
    }
    for (int64_t c = 0; c < channels; c++) {
        if (dw.gamma != NULL) dw.gamma[c] = (float)sum_dy_xhat[c];
        if (dw.beta != NULL) dw.beta[c] = (float)sum_dy[c];
    }
    return NNTK_OK;
}

/* A training handle's scratch: Σ dY and Σ dY⊙x̂ per channel, in double (the
 * state holds the pointer). */
static NNTKStatus init(const char *fn, NNTKLayer *f, const NNTKLayerConfig *config,
                       const NNTKTrainingConfig *training_config) {
    (void)training_config;
    if (!f->training) return NNTK_OK;
    double *sums = nntk_alloc_bytes(2 * nntk_layer_int(config, INPUT_DIM) * (int64_t)sizeof(double));
    if (sums == NULL) return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
    *(double **)f->state = sums;
    return NNTK_OK;
}

static void release(NNTKLayer *f) { nntk_free(*(double **)f->state); }

const NNTKLayerType nntk_layer_norm_type = {
    NNTK_LAYER_NAMES("LayerNorm", "LayerNormalization", 'L', 'N', 'm'),
    NNTK_LAYER_FIELDS(fields),
    .weights = weights,
    .state_size = sizeof(double *),
    .streams = nntk_stream_stepwise, /* normalises each step over its features */
    .init = init,
    .release = release,
    NNTK_LAYER_STANDARD_OPS,
};

NNTK_API NNTKLayerNormConfig *NNTKLayerNormConfigCreate(int64_t input_dim, double epsilon,
                                                        int32_t center, int32_t scale) {
    const NNTKLayerValue values[] = {{.i = input_dim}, {.f = epsilon}, {.i = center}, {.i = scale}};
    return (NNTKLayerNormConfig *)nntk_layer_config_create("NNTKLayerNormConfigCreate",
                                                          &nntk_layer_norm_type, values);
}

NNTK_DEFINE_LAYER(LayerNorm, nntk_layer_norm_type)
