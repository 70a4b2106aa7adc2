/* BatchNorm: tf.keras BatchNormalization over the last axis. Inference,
 * training forward, frozen (inference-mode, kept for the gradient) forward and
 * gradient side by side. Shapes: N = rows = batch·steps, C = input_dim.
 *
 * Every per-channel statistic and every sum over the N positions is
 * accumulated in double, and the mean and variance are two-pass: an input
 * like 1000 ± 0.01 keeps its variance. Each output element is computed in
 * double and rounded once to float. */
#include <math.h>
#include <stdlib.h>

#include "core/blocking.h"
#include "core/internal.h"
#include "nntk/batch_norm.h"

#define CONFIG_TAG NNTK_TAG('B', 'N', 'm', 'C')
#define FILTER_TAG NNTK_TAG('B', 'N', 'm', 'F')
#define GRADIENT_TAG NNTK_TAG('B', 'N', 'm', 'G')

#define CHANNEL_BLOCK NNTK_BATCH_NORM_CHANNEL_BLOCK /* core/blocking.h */

struct NNTKBatchNormConfig {
    uint32_t tag;
    int64_t input_dim; /* C */
    double momentum;
    double epsilon;
    int32_t center;
    int32_t scale;
};

/* What the last forward pass kept for the gradient. */
typedef enum Kept { KEPT_NONE = 0, KEPT_TRAINING = 1, KEPT_FROZEN = 2 } Kept;

struct NNTKBatchNorm {
    uint32_t tag;
    NNTKBatchNormConfig config;
    int32_t training;     /* created for training */
    float *weights;       /* [gamma (C,)][beta (C,)] moving_mean (C,), moving_variance (C,) */
    int64_t weight_count;
    /* Kept by the last training or frozen batch for the gradient. */
    Kept kept;
    int64_t rows;         /* N of that batch */
    float *x;             /* (N, C) its input, in `workspace` */
    float *workspace;
    int64_t workspace_capacity;
    /* Per-channel doubles (training handles only), one block of 4·C: */
    double *mean;         /* (C,) μ of the kept batch (frozen: moving_mean then) */
    double *rstd;         /* (C,) 1/√(σ²+ε) of the kept batch (frozen: 1/√(mv+ε)) */
    double *scratch_a;    /* (C,) inv, then Σ dY */
    double *scratch_b;    /* (C,) offset, then Σ dY⊙x̂ */
};

struct NNTKBatchNormGradient {
    uint32_t tag;
    const NNTKBatchNorm *filter; /* the filter it was created for */
    float *d_weights;            /* same layout as the weights */
    int64_t count;
};

/* Pointers into a weight (or weight-gradient) block. gamma and beta are NULL
 * when scale / center are off. */
typedef struct Parts {
    float *gamma, *beta, *moving_mean, *moving_variance; /* each (C,) */
} Parts;

static Parts parts(const NNTKBatchNormConfig *c, float *block) {
    const int64_t n = c->input_dim;
    Parts p;
    p.gamma = c->scale ? block : NULL;
    p.beta = c->center ? block + (c->scale ? n : 0) : NULL;
    p.moving_mean = block + (c->scale ? n : 0) + (c->center ? n : 0);
    p.moving_variance = p.moving_mean + n;
    return p;
}

NNTK_API NNTKBatchNormConfig *NNTKBatchNormConfigCreate(int64_t input_dim, double momentum,
                                                        double epsilon, int32_t center,
                                                        int32_t scale) {
    static const char fn[] = "NNTKBatchNormConfigCreate";
    if (nntk_check_size(fn, "input_dim", input_dim, NNTK_MAX_DIM) != NNTK_OK) return NULL;
    /* GCOVR_EXCL_BR_START: argument validation */
    if (!(momentum >= 0.0 && momentum <= 1.0)) { /* also refuses NaN */
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: momentum must be in [0, 1] (got %g)", fn, momentum);
        return NULL;
    }
    if (!(epsilon > 0.0) || isinf(epsilon)) { /* also refuses NaN */
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: epsilon must be finite and > 0 (got %g)", fn, epsilon);
        return NULL;
    }
    if (center != 0 && center != 1) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: center must be 0 or 1 (got %d)", fn, (int)center);
        return NULL;
    }
    if (scale != 0 && scale != 1) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: scale must be 0 or 1 (got %d)", fn, (int)scale);
        return NULL;
    }
    /* GCOVR_EXCL_BR_STOP */
    NNTKBatchNormConfig *config = calloc(1, sizeof *config);
    if (config == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *config = (NNTKBatchNormConfig){CONFIG_TAG, input_dim, momentum, epsilon, center, scale};
    return config;
}

NNTK_API void NNTKBatchNormConfigDestroy(NNTKBatchNormConfig *config) {
    if (config == NULL || config->tag != CONFIG_TAG) return;
    config->tag = NNTK_TAG_DEAD;
    free(config);
}

/* Reserves the training workspace for `rows` rows and points x into it. */
static NNTKStatus reserve_rows(const char *fn, NNTKBatchNorm *f, int64_t rows) {
    NNTKStatus s = nntk_reserve(fn, &f->workspace, &f->workspace_capacity, rows * f->config.input_dim);
    if (s != NNTK_OK) return s;
    f->x = f->workspace;
    return NNTK_OK;
}

static NNTKBatchNorm *create(const char *fn, const NNTKBatchNormConfig *config, int training,
                             const NNTKTrainingConfig *training_config) {
    if (nntk_check_handle(fn, "config", config, CONFIG_TAG) != NNTK_OK) return NULL;
    NNTKBatchNorm *f = calloc(1, sizeof *f);
    if (f == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    const int64_t n = config->input_dim;
    f->tag = FILTER_TAG;
    f->config = *config;
    f->training = training;
    f->weight_count = (config->scale ? n : 0) + (config->center ? n : 0) + 2 * n;
    f->weights = nntk_alloc_floats(f->weight_count);
    if (f->weights == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for %lld weights", fn,
                  (long long)f->weight_count);
        NNTKBatchNormDestroy(f);
        return NULL;
    }
    /* tf.keras initial values: gamma 1, beta 0, moving_mean 0, moving_variance 1. */
    Parts w = parts(config, f->weights);
    for (int64_t c = 0; c < n; c++) {
        if (w.gamma != NULL) w.gamma[c] = 1.0f;
        w.moving_variance[c] = 1.0f;
    }
    if (training) {
        f->mean = nntk_alloc_bytes(4 * n * (int64_t)sizeof(double));
        if (f->mean == NULL) {
            nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
            NNTKBatchNormDestroy(f);
            return NULL;
        }
        f->rstd = f->mean + n;
        f->scratch_a = f->rstd + n;
        f->scratch_b = f->scratch_a + n;
        int64_t max_batch = 0, max_steps = 0;
        if (nntk_training_capacity(fn, training_config, &max_batch, &max_steps) != NNTK_OK ||
            (max_batch > 0 && reserve_rows(fn, f, max_batch * max_steps) != NNTK_OK)) {
            NNTKBatchNormDestroy(f);
            return NULL;
        }
    }
    return f;
}

NNTK_API NNTKBatchNorm *NNTKBatchNormCreateForInference(const NNTKBatchNormConfig *config) {
    return create("NNTKBatchNormCreateForInference", config, 0, NULL);
}

NNTK_API NNTKBatchNorm *NNTKBatchNormCreateForTraining(const NNTKBatchNormConfig *config,
                                                       const NNTKTrainingConfig *training_config) {
    return create("NNTKBatchNormCreateForTraining", config, 1, training_config);
}

NNTK_API void NNTKBatchNormDestroy(NNTKBatchNorm *filter) {
    if (filter == NULL || filter->tag != FILTER_TAG) return;
    filter->tag = NNTK_TAG_DEAD;
    nntk_free(filter->weights);
    nntk_free(filter->workspace);
    nntk_free(filter->mean);
    free(filter);
}

NNTK_API NNTKStatus NNTKBatchNormGetWeights(NNTKBatchNorm *filter, float **weights, int64_t *count) {
    static const char fn[] = "NNTKBatchNormGetWeights";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *weights = filter->weights;
    *count = filter->weight_count;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKBatchNormOutputShape(const NNTKBatchNorm *filter, int64_t batch,
                                             int64_t steps, int64_t *out_steps,
                                             int64_t *out_features) {
    static const char fn[] = "NNTKBatchNormOutputShape";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_steps", out_steps)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_features", out_features)) != NNTK_OK) return s;
    if ((s = nntk_check_batch(fn, batch, steps, filter->config.input_dim)) != NNTK_OK) return s;
    *out_steps = steps;
    *out_features = filter->config.input_dim;
    return NNTK_OK;
}

/* inv[c] = γ·rstd[c], offset[c] = β − mean[c]·inv[c] for the `width` channels
 * starting at c0 (inv, offset indexed from 0). */
static void affine(const NNTKBatchNorm *f, int64_t c0, int64_t width, const double *mean,
                   const double *rstd, double *inv, double *offset) {
    const Parts w = parts(&f->config, f->weights);
    for (int64_t i = 0; i < width; i++) {
        const int64_t c = c0 + i;
        inv[i] = (w.gamma != NULL ? (double)w.gamma[c] : 1.0) * rstd[i];
        offset[i] = (w.beta != NULL ? (double)w.beta[c] : 0.0) - mean[i] * inv[i];
    }
}

/* y[r, c0:c0+width] = x·inv + offset, for all `rows` rows of x, y (rows, C). */
static void normalize(int64_t rows, int64_t channels, int64_t c0, int64_t width, const float *x,
                      const double *inv, const double *offset, float *y) {
    for (int64_t r = 0; r < rows; r++) {
        const float *x_r = x + r * channels + c0; /* (width,) */
        float *y_r = y + r * channels + c0;       /* (width,) */
        for (int64_t i = 0; i < width; i++) y_r[i] = (float)((double)x_r[i] * inv[i] + offset[i]);
    }
}

/* Moving statistics as the forward statistics: mean = moving_mean,
 * rstd = 1/√(moving_variance + ε), for channels [c0, c0+width). */
static void moving_statistics(const NNTKBatchNorm *f, int64_t c0, int64_t width, double *mean,
                              double *rstd) {
    const Parts w = parts(&f->config, f->weights);
    const double eps = f->config.epsilon;
    for (int64_t i = 0; i < width; i++) {
        mean[i] = (double)w.moving_mean[c0 + i];
        rstd[i] = 1.0 / sqrt((double)w.moving_variance[c0 + i] + eps);
    }
}

static NNTKStatus check_apply(const char *fn, const NNTKBatchNorm *filter, int64_t batch, int64_t steps,
                              const float *in, const float *out) {
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "in", in)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out", out)) != NNTK_OK) return s;
    return nntk_check_batch(fn, batch, steps, filter->config.input_dim);
}

NNTK_API NNTKStatus NNTKBatchNormApplyInference(NNTKBatchNorm *filter, int64_t batch, int64_t steps,
                                                const float *in, float *out) {
    NNTKStatus s = check_apply("NNTKBatchNormApplyInference", filter, batch, steps, in, out);
    if (s != NNTK_OK) return s;
    const int64_t rows = batch * steps, channels = filter->config.input_dim;
    /* No workspace (an inference handle may be shared by threads): the
     * per-channel factors of one block of channels live on the stack. */
    double mean[CHANNEL_BLOCK], rstd[CHANNEL_BLOCK], inv[CHANNEL_BLOCK], offset[CHANNEL_BLOCK];
    for (int64_t c0 = 0; c0 < channels; c0 += CHANNEL_BLOCK) {
        const int64_t width = channels - c0 < CHANNEL_BLOCK ? channels - c0 : CHANNEL_BLOCK;
        moving_statistics(filter, c0, width, mean, rstd);
        affine(filter, c0, width, mean, rstd, inv, offset);
        normalize(rows, channels, c0, width, in, inv, offset, out);
    }
    return NNTK_OK;
}

/* Common start of the two forward passes that keep state: checks, and copies
 * the input into the workspace. */
static NNTKStatus begin_kept(const char *fn, NNTKBatchNorm *filter, int64_t batch, int64_t steps,
                             const float *in, const float *out) {
    NNTKStatus s = check_apply(fn, filter, batch, steps, in, out);
    if (s != NNTK_OK) return s;
    if (!filter->training)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
    filter->kept = KEPT_NONE; /* invalid until this batch is complete */
    const int64_t rows = batch * steps;
    if ((s = reserve_rows(fn, filter, rows)) != NNTK_OK) return s;
    nntk_copy(filter->x, in, rows * filter->config.input_dim);
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKBatchNormApplyTrainingBatch(NNTKBatchNorm *filter, int64_t batch,
                                                    int64_t steps, const float *in, float *out) {
    static const char fn[] = "NNTKBatchNormApplyTrainingBatch";
    NNTKStatus s = begin_kept(fn, filter, batch, steps, in, out);
    if (s != NNTK_OK) return s;
    const int64_t rows = batch * steps, channels = filter->config.input_dim;
    const float *x = filter->x; /* (N, C) */
    double *mean = filter->mean, *var = filter->rstd; /* var becomes rstd below */

    /* Pass 1: μ = Σx / N.  Pass 2: σ² = Σ(x−μ)² / N (biased). */
    for (int64_t c = 0; c < channels; c++) mean[c] = var[c] = 0.0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < channels; c++) mean[c] += (double)x[r * channels + c];
    for (int64_t c = 0; c < channels; c++) mean[c] /= (double)rows;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < channels; c++) {
            const double centered = (double)x[r * channels + c] - mean[c];
            var[c] += centered * centered;
        }
    for (int64_t c = 0; c < channels; c++) var[c] /= (double)rows;

    /* moving −= (moving − batch statistic)·(1 − momentum), with the batch's
     * biased variance (tf.keras applies no Bessel correction for rank 2/3). */
    const Parts w = parts(&filter->config, filter->weights);
    /* tf.keras: decay = float32(1 − momentum), also in a float64 layer. */
    const double decay = (double)(float)(1.0 - filter->config.momentum);
    for (int64_t c = 0; c < channels; c++) {
        const double mm = (double)w.moving_mean[c], mv = (double)w.moving_variance[c];
        w.moving_mean[c] = (float)(mm - (mm - mean[c]) * decay);
        w.moving_variance[c] = (float)(mv - (mv - var[c]) * decay);
    }

    /* y = x·inv + (β − μ·inv), inv = γ/√(σ²+ε). */
    const double eps = filter->config.epsilon;
    for (int64_t c = 0; c < channels; c++) filter->rstd[c] = 1.0 / sqrt(var[c] + eps);
    affine(filter, 0, channels, mean, filter->rstd, filter->scratch_a, filter->scratch_b);
    normalize(rows, channels, 0, channels, x, filter->scratch_a, filter->scratch_b, out);
    filter->rows = rows;
    filter->kept = KEPT_TRAINING;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKBatchNormApplyFrozenBatch(NNTKBatchNorm *filter, int64_t batch,
                                                  int64_t steps, const float *in, float *out) {
    static const char fn[] = "NNTKBatchNormApplyFrozenBatch";
    NNTKStatus s = begin_kept(fn, filter, batch, steps, in, out);
    if (s != NNTK_OK) return s;
    const int64_t rows = batch * steps, channels = filter->config.input_dim;
    moving_statistics(filter, 0, channels, filter->mean, filter->rstd);
    affine(filter, 0, channels, filter->mean, filter->rstd, filter->scratch_a, filter->scratch_b);
    normalize(rows, channels, 0, channels, filter->x, filter->scratch_a, filter->scratch_b, out);
    filter->rows = rows;
    filter->kept = KEPT_FROZEN;
    return NNTK_OK;
}

NNTK_API NNTKBatchNormGradient *NNTKBatchNormGradientCreate(const NNTKBatchNorm *filter) {
    static const char fn[] = "NNTKBatchNormGradientCreate";
    if (nntk_check_handle(fn, "filter", filter, FILTER_TAG) != NNTK_OK) return NULL;
    if (!filter->training) {
        nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
        return NULL;
    }
    NNTKBatchNormGradient *g = calloc(1, sizeof *g);
    float *block = nntk_alloc_floats(filter->weight_count);
    if (g == NULL || block == NULL) {
        free(g);
        nntk_free(block);
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *g = (NNTKBatchNormGradient){GRADIENT_TAG, filter, block, filter->weight_count};
    return g;
}

NNTK_API void NNTKBatchNormGradientDestroy(NNTKBatchNormGradient *gradient) {
    if (gradient == NULL || gradient->tag != GRADIENT_TAG) return;
    gradient->tag = NNTK_TAG_DEAD;
    nntk_free(gradient->d_weights);
    free(gradient);
}

NNTK_API NNTKStatus NNTKBatchNormGradientGetWeights(NNTKBatchNormGradient *gradient, float **weights,
                                                    int64_t *count) {
    static const char fn[] = "NNTKBatchNormGradientGetWeights";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "gradient", gradient, GRADIENT_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *weights = gradient->d_weights;
    *count = gradient->count;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKBatchNormCalculateGradient(NNTKBatchNorm *filter,
                                                   NNTKBatchNormGradient *gradient,
                                                   const float *d_out, float *d_in) {
    static const char fn[] = "NNTKBatchNormCalculateGradient";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_handle(fn, "gradient", gradient, GRADIENT_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "d_out", d_out)) != NNTK_OK) return s;
    if (gradient->filter != filter)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: gradient was created for another filter", fn);
    if (!filter->training)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
    if (filter->kept == KEPT_NONE)
        return nntk_fail(NNTK_ERROR_INVALID_STATE,
                         "%s: no training batch yet (call NNTKBatchNormApplyTrainingBatch or "
                         "NNTKBatchNormApplyFrozenBatch first)",
                         fn);
    const int64_t rows = filter->rows, channels = filter->config.input_dim;
    const float *x = filter->x;                            /* (N, C) */
    const double *mean = filter->mean, *rstd = filter->rstd; /* (C,) */
    double *sum_dy = filter->scratch_a, *sum_dy_xhat = filter->scratch_b; /* (C,) */
    const Parts w = parts(&filter->config, filter->weights);
    const Parts dw = parts(&filter->config, gradient->d_weights);

    /* x̂ = (x − μ)·rstd:  Σ dY and Σ dY⊙x̂ per channel. */
    for (int64_t c = 0; c < channels; c++) sum_dy[c] = sum_dy_xhat[c] = 0.0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < channels; c++) {
            const double dy = (double)d_out[r * channels + c];
            sum_dy[c] += dy;
            sum_dy_xhat[c] += dy * (((double)x[r * channels + c] - mean[c]) * rstd[c]);
        }
    /* y = γ·x̂ + β:  dγ = Σ dY⊙x̂, dβ = Σ dY; the moving statistics get 0. */
    for (int64_t c = 0; c < channels; c++) {
        if (dw.gamma != NULL) dw.gamma[c] = (float)sum_dy_xhat[c];
        if (dw.beta != NULL) dw.beta[c] = (float)sum_dy[c];
        dw.moving_mean[c] = 0.0f;
        dw.moving_variance[c] = 0.0f;
    }
    if (d_in == NULL) return NNTK_OK;
    if (filter->kept == KEPT_FROZEN) {
        /* Constant statistics: dx = dY·γ·rstd. */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < channels; c++) {
                const double g = (w.gamma != NULL ? (double)w.gamma[c] : 1.0) * rstd[c];
                d_in[r * channels + c] = (float)((double)d_out[r * channels + c] * g);
            }
    } else {
        /* Batch statistics depend on x:
         * dx = γ·rstd/N · (N·dY − ΣdY − x̂·Σ(dY⊙x̂)) = γ·rstd·(dY − ΣdY/N − x̂·Σ(dY⊙x̂)/N). */
        const double n = (double)rows;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < channels; c++) {
                const double g = (w.gamma != NULL ? (double)w.gamma[c] : 1.0) * rstd[c];
                const double xhat = ((double)x[r * channels + c] - mean[c]) * rstd[c];
                const double dy = (double)d_out[r * channels + c];
                d_in[r * channels + c] = (float)(g * (dy - sum_dy[c] / n - xhat * (sum_dy_xhat[c] / n)));
            }
    }
    return NNTK_OK;
}
