/* BatchNorm: tf.keras BatchNormalization over the last axis. Inference,
 * training forward, frozen (inference-mode, kept for the gradient) forward and
 * gradient side by side. Shapes: N = rows = batch·steps, C = input_dim.
 *
 * Every per-channel statistic and every sum over the N positions is
 * accumulated in double, and the mean and variance are two-pass: an input
 * like 1000 ± 0.01 keeps its variance. Each output element is computed in
 * double and rounded once to float. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/blocking.h"
#include "core/layer.h"
#include "core/threads.h"
#include "nntk/batch_norm.h"

#define CHANNEL_BLOCK NNTK_BATCH_NORM_CHANNEL_BLOCK /* core/blocking.h */
/* Training splits the channels over the pool in units of this many (16 floats, one
 * 64-byte cache line: parts meet at a line boundary when the rows start at one). */
#define CHANNEL_UNIT 16

enum { INPUT_DIM, MOMENTUM, EPSILON, CENTER, SCALE };

static const NNTKLayerField fields[] = {
    [INPUT_DIM] = NNTK_FIELD_SIZE("input_dim"),
    [MOMENTUM] = {.name = "momentum", .kind = NNTK_FIELD_FLOAT, .default_value = 0.99, .min = 0, .max = 1},
    [EPSILON] = {.name = "epsilon", .kind = NNTK_FIELD_FLOAT, .default_value = 1e-3, .min = 0,
                 .max = DBL_MAX, .min_exclusive = 1},
    [CENTER] = NNTK_FIELD_FLAG("center", 1),
    [SCALE] = NNTK_FIELD_FLAG("scale", 1),
};

/* [gamma (C,) if scale][beta (C,) if center] moving_mean (C,), moving_variance (C,);
 * the moving statistics are not trainable (their gradient is 0). */
static int32_t weights(const NNTKLayerConfig *c, NNTKWeightBlock *blocks) {
    const int64_t n = nntk_layer_int(c, INPUT_DIM);
    int32_t i = 0;
    if (nntk_layer_int(c, SCALE)) blocks[i++] = (NNTKWeightBlock){"gamma", 1, {n}, "ones", 1};
    if (nntk_layer_int(c, CENTER)) blocks[i++] = (NNTKWeightBlock){"beta", 1, {n}, "zeros", 1};
    blocks[i++] = (NNTKWeightBlock){"moving_mean", 1, {n}, "zeros", 0};
    blocks[i++] = (NNTKWeightBlock){"moving_variance", 1, {n}, "ones", 0};
    return i;
}

/* The layer's state: its config decoded, (training handles) the per-channel
 * doubles of the kept batch, one block of 4·C, and (every handle) the factors
 * of inference with the weights they were computed from. */
typedef struct BatchNorm {
    int64_t input_dim; /* C */
    double momentum;
    double epsilon;
    int32_t center;
    int32_t scale;
    double *mean;      /* (C,) μ of the kept batch (frozen: moving_mean then) */
    double *rstd;      /* (C,) 1/√(σ²+ε) of the kept batch (frozen: 1/√(mv+ε)) */
    double *scratch_a; /* (C,) inv, then Σ dY */
    double *scratch_b; /* (C,) offset, then Σ dY⊙x̂ */
    /* Inference: inv = γ/√(mv+ε) and offset = β − mm·inv per channel (affine) as the
     * last inference call computed them, and a copy of the weights they came from.
     * A call whose weights equal the copy bit for bit reuses them (the same
     * arithmetic on the same bits: the same factors); any other (weights set, edited
     * through GetWeights, or moved by training) computes them anew. At one row per
     * call (W6 streams one frame) the square roots and divisions took ~3/4 of the
     * call (AMD EPYC: 197 ns of 64 channels). One call at a time per handle (the
     * in_call flag of nntk_layer_apply), so the handle may keep them. */
    double *factor_inv;    /* (C,) */
    double *factor_offset; /* (C,) */
    float *factors_of;     /* (weight_count,) */
    int32_t factors_valid;
} BatchNorm;

static const BatchNorm *bn(const NNTKLayer *f) { return f->state; }

static NNTKStatus init(const char *fn, NNTKLayer *f, const NNTKLayerConfig *c,
                       const NNTKTrainingConfig *training_config) {
    (void)training_config;
    BatchNorm *b = f->state;
    const int64_t n = nntk_layer_int(c, INPUT_DIM);
    *b = (BatchNorm){.input_dim = n,
                     .momentum = nntk_layer_float(c, MOMENTUM),
                     .epsilon = nntk_layer_float(c, EPSILON),
                     .center = (int32_t)nntk_layer_int(c, CENTER),
                     .scale = (int32_t)nntk_layer_int(c, SCALE)};
    /* the inference factors' block: (2C,) doubles, then (weight_count,) floats */
    b->factor_inv = nntk_alloc_bytes(2 * n * (int64_t)sizeof(double) +
                                     f->weight_count * (int64_t)sizeof(float));
    if (b->factor_inv == NULL) return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
    b->factor_offset = b->factor_inv + n;
    b->factors_of = (float *)(b->factor_offset + n);
    if (!f->training) return NNTK_OK;
    b->mean = nntk_alloc_bytes(4 * n * (int64_t)sizeof(double));
    if (b->mean == NULL) return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
    b->rstd = b->mean + n;
    b->scratch_a = b->rstd + n;
    b->scratch_b = b->scratch_a + n;
    return NNTK_OK;
}

static void release(NNTKLayer *f) {
    nntk_free(bn(f)->mean);
    nntk_free(bn(f)->factor_inv);
}

/* Pointers into a weight (or weight-gradient) block. gamma and beta are NULL
 * when scale / center are off. */
typedef struct Parts {
    float *gamma, *beta, *moving_mean, *moving_variance; /* each (C,) */
} Parts;

static Parts parts(const BatchNorm *c, float *block) {
    const int64_t n = c->input_dim;
    Parts p;
    p.gamma = c->scale ? block : NULL;
    p.beta = c->center ? block + (c->scale ? n : 0) : NULL;
    p.moving_mean = block + (c->scale ? n : 0) + (c->center ? n : 0);
    p.moving_variance = p.moving_mean + n;
    return p;
}

/* The training workspace: the kept input x (N, C). */
static NNTKStatus reserve(const char *fn, NNTKLayer *f, int64_t batch, int64_t steps, int64_t out_steps) {
    (void)out_steps; /* = steps */
    return nntk_layer_reserve(fn, f, batch * steps * bn(f)->input_dim);
}

static NNTKStatus output_shape(const char *fn, const NNTKLayer *f, int64_t batch, int64_t steps,
                               int64_t *out_steps, int64_t *out_features) {
    *out_steps = steps;
    *out_features = bn(f)->input_dim;
    return nntk_check_batch(fn, batch, steps, bn(f)->input_dim);
}

/* inv[c] = γ·rstd[c], offset[c] = β − mean[c]·inv[c] for the `width` channels
 * starting at c0 (inv, offset indexed from 0). */
static void affine(const NNTKLayer *f, int64_t c0, int64_t width, const double *mean,
                   const double *rstd, double *inv, double *offset) {
    const Parts w = parts(bn(f), f->weights);
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
static void moving_statistics(const NNTKLayer *f, int64_t c0, int64_t width, double *mean,
                              double *rstd) {
    const Parts w = parts(bn(f), f->weights);
    const double eps = bn(f)->epsilon;
    for (int64_t i = 0; i < width; i++) {
        mean[i] = (double)w.moving_mean[c0 + i];
        rstd[i] = 1.0 / sqrt((double)w.moving_variance[c0 + i] + eps);
    }
}

static void apply_inference(NNTKLayer *filter, int64_t batch, int64_t steps, const float *in,
                            float *out) {
    BatchNorm *state = filter->state;
    const int64_t rows = batch * steps, channels = state->input_dim;
    const size_t weight_bytes = (size_t)filter->weight_count * sizeof(float);
    if (!state->factors_valid || memcmp(state->factors_of, filter->weights, weight_bytes) != 0) {
        double mean[CHANNEL_BLOCK], rstd[CHANNEL_BLOCK];
        for (int64_t c0 = 0; c0 < channels; c0 += CHANNEL_BLOCK) {
            const int64_t width = channels - c0 < CHANNEL_BLOCK ? channels - c0 : CHANNEL_BLOCK;
            moving_statistics(filter, c0, width, mean, rstd);
            affine(filter, c0, width, mean, rstd, state->factor_inv + c0,
                   state->factor_offset + c0);
        }
        memcpy(state->factors_of, filter->weights, weight_bytes);
        state->factors_valid = 1;
    }
    normalize(rows, channels, 0, channels, in, state->factor_inv, state->factor_offset, out);
}

/* Channels [c0, c1) of a training forward or a gradient (`Channels`): every statistic
 * and sum is per channel, one chain over the rows, and every output element depends on
 * its own channel's, so the pool may split the channels (docs/threads.md). */
typedef struct {
    NNTKLayer *filter;
    int64_t rows;
    const float *in;    /* the training forward's input (N, C) */
    const float *d_out; /* the gradient's */
    float *out;         /* the forward's output, or the gradient's d_in (may be NULL) */
    float *d_weights;   /* the gradient's */
} Channels;

/* Runs fn over every channel: split when worth a dispatch (each element costs about
 * as much as four multiply-adds: two or three passes in double). */
static void split_channels(NNTKRowsFn fn, Channels *p) {
    const int64_t channels = bn(p->filter)->input_dim;
    nntk_split_columns(4 * p->rows * channels, channels, CHANNEL_UNIT, fn, p);
}

/* Training: the batch statistics (the moving ones updated), for channels [c0, c1). */
static void train_channels(void *context, int64_t c0, int64_t c1) {
    const Channels *p = context;
    NNTKLayer *filter = p->filter;
    BatchNorm *state = filter->state;
    const int64_t rows = p->rows, channels = state->input_dim;
    const float *x = p->in; /* (N, C): the input (its copy is kept by normalize_rows) */
    double *mean = state->mean, *var = state->rstd; /* var becomes rstd below */

    /* Pass 1: μ = Σx / N.  Pass 2: σ² = Σ(x−μ)² / N (biased). */
    for (int64_t c = c0; c < c1; c++) mean[c] = var[c] = 0.0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = c0; c < c1; c++) mean[c] += (double)x[r * channels + c];
    for (int64_t c = c0; c < c1; c++) mean[c] /= (double)rows;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = c0; c < c1; c++) {
            const double centered = (double)x[r * channels + c] - mean[c];
            var[c] += centered * centered;
        }
    for (int64_t c = c0; c < c1; c++) var[c] /= (double)rows;

    /* moving −= (moving − batch statistic)·(1 − momentum), with the batch's
     * biased variance (tf.keras applies no Bessel correction for rank 2/3). */
    const Parts w = parts(state, filter->weights);
    /* tf.keras: decay = float32(1 − momentum), also in a float64 layer. */
    const double decay = (double)(float)(1.0 - state->momentum);
    for (int64_t c = c0; c < c1; c++) {
        const double mm = (double)w.moving_mean[c], mv = (double)w.moving_variance[c];
        w.moving_mean[c] = (float)(mm - (mm - mean[c]) * decay);
        w.moving_variance[c] = (float)(mv - (mv - var[c]) * decay);
    }

    /* y = x·inv + (β − μ·inv), inv = γ/√(σ²+ε). */
    const double eps = state->epsilon;
    for (int64_t c = c0; c < c1; c++) state->rstd[c] = 1.0 / sqrt(var[c] + eps);
    affine(filter, c0, c1 - c0, mean + c0, state->rstd + c0, state->scratch_a + c0,
           state->scratch_b + c0);
}

/* Training rows [r0, r1) once every channel's inv and offset are made: the input kept,
 * y = x·inv + offset. Per element, so the pool may split the rows; contiguous rows
 * (a channel part would read every row's cache lines from both threads). */
static void normalize_rows(void *context, int64_t r0, int64_t r1) {
    const Channels *p = context;
    const BatchNorm *state = bn(p->filter);
    const int64_t channels = state->input_dim, first = r0 * channels;
    float *x = p->filter->workspace; /* (N, C) */
    nntk_copy(x + first, p->in + first, (r1 - r0) * channels);
    normalize(r1 - r0, channels, 0, channels, x + first, state->scratch_a, state->scratch_b,
              p->out + first);
}

static void apply_training(NNTKLayer *filter, int64_t batch, int64_t steps, const float *in,
                           float *out) {
    Channels p = {.filter = filter, .rows = batch * steps, .in = in, .out = out};
    split_channels(train_channels, &p);
    nntk_split_rows(4 * p.rows * bn(filter)->input_dim, p.rows, normalize_rows, &p);
}

/* Frozen: the moving statistics, kept for the gradient. */
static void apply_frozen(NNTKLayer *filter, int64_t batch, int64_t steps, float *out) {
    const BatchNorm *state = bn(filter);
    const int64_t rows = batch * steps, channels = state->input_dim;
    moving_statistics(filter, 0, channels, state->mean, state->rstd);
    affine(filter, 0, channels, state->mean, state->rstd, state->scratch_a, state->scratch_b);
    normalize(rows, channels, 0, channels, filter->workspace, state->scratch_a, state->scratch_b, out);
}

static NNTKStatus forward(const char *fn, NNTKLayer *f, NNTKApplyMode mode, int64_t batch,
                          int64_t steps, int64_t out_steps, const float *in,
                          const float *initial_state, float *out, float *final_state) {
    (void)fn, (void)out_steps, (void)initial_state, (void)final_state;
    if (mode == NNTK_APPLY_INFERENCE) {
        apply_inference(f, batch, steps, in, out);
        return NNTK_OK;
    }
    if (mode == NNTK_APPLY_FROZEN) {
        nntk_copy(f->workspace, in, batch * steps * bn(f)->input_dim);
        apply_frozen(f, batch, steps, out);
    } else {
        apply_training(f, batch, steps, in, out); /* keeps the input in its parts */
    }
    return NNTK_OK;
}

/* The gradient for channels [c0, c1). */
static void gradient_channels(void *context, int64_t c0, int64_t c1) {
    const Channels *p = context;
    const NNTKLayer *filter = p->filter;
    const BatchNorm *state = bn(filter);
    const int64_t rows = p->rows, channels = state->input_dim;
    const float *x = filter->workspace;                            /* (N, C) */
    const float *d_out = p->d_out;                                 /* (N, C) */
    float *d_in = p->out;                                          /* (N, C) or NULL */
    const double *mean = state->mean, *rstd = state->rstd; /* (C,) */
    double *sum_dy = state->scratch_a, *sum_dy_xhat = state->scratch_b; /* (C,) */
    const Parts w = parts(state, filter->weights);
    const Parts dw = parts(state, p->d_weights);

    /* x̂ = (x − μ)·rstd:  Σ dY and Σ dY⊙x̂ per channel. */
    for (int64_t c = c0; c < c1; c++) sum_dy[c] = sum_dy_xhat[c] = 0.0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = c0; c < c1; c++) {
            const double dy = (double)d_out[r * channels + c];
            sum_dy[c] += dy;
            sum_dy_xhat[c] += dy * (((double)x[r * channels + c] - mean[c]) * rstd[c]);
        }
    /* y = γ·x̂ + β:  dγ = Σ dY⊙x̂, dβ = Σ dY; the moving statistics get 0. */
    for (int64_t c = c0; c < c1; c++) {
        if (dw.gamma != NULL) dw.gamma[c] = (float)sum_dy_xhat[c];
        if (dw.beta != NULL) dw.beta[c] = (float)sum_dy[c];
        dw.moving_mean[c] = 0.0f;
        dw.moving_variance[c] = 0.0f;
    }
    if (d_in == NULL) return;
    if (filter->kept == NNTK_APPLY_FROZEN) {
        /* Constant statistics: dx = dY·γ·rstd. */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = c0; c < c1; c++) {
                const double g = (w.gamma != NULL ? (double)w.gamma[c] : 1.0) * rstd[c];
                d_in[r * channels + c] = (float)((double)d_out[r * channels + c] * g);
            }
    } else {
        /* Batch statistics depend on x:
         * dx = γ·rstd/N · (N·dY − ΣdY − x̂·Σ(dY⊙x̂)) = γ·rstd·(dY − ΣdY/N − x̂·Σ(dY⊙x̂)/N). */
        const double n = (double)rows;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = c0; c < c1; c++) {
                const double g = (w.gamma != NULL ? (double)w.gamma[c] : 1.0) * rstd[c];
                const double xhat = ((double)x[r * channels + c] - mean[c]) * rstd[c];
                const double dy = (double)d_out[r * channels + c];
                d_in[r * channels + c] = (float)(g * (dy - sum_dy[c] / n - xhat * (sum_dy_xhat[c] / n)));
            }
    }
}

static NNTKStatus backward(const char *fn, NNTKLayer *filter, const float *d_out,
                           const float *d_final_state, float *d_in, float *d_initial_state,
                           float *d_weights) {
    (void)fn, (void)d_final_state, (void)d_initial_state;
    Channels p = {.filter = filter, .rows = filter->batch * filter->steps, .d_out = d_out,
                  .out = d_in, .d_weights = d_weights};
    split_channels(gradient_channels, &p);
    return NNTK_OK;
}

const NNTKLayerType nntk_batch_norm_type = {
    NNTK_LAYER_NAMES("BatchNorm", "BatchNormalization", 'B', 'N', 'm'),
    NNTK_LAYER_FIELDS(fields),
    .weights = weights,
    .has_frozen = 1,
    .streams = nntk_stream_stepwise, /* inference: the moving statistics, per step */
    .state_size = sizeof(BatchNorm),
    .init = init,
    .release = release,
    NNTK_LAYER_STANDARD_OPS,
};

NNTK_API NNTKBatchNormConfig *NNTKBatchNormConfigCreate(int64_t input_dim, double momentum,
                                                        double epsilon, int32_t center,
                                                        int32_t scale) {
    const NNTKLayerValue values[] = {{.i = input_dim}, {.f = momentum}, {.f = epsilon}, {.i = center},
                                     {.i = scale}};
    return (NNTKBatchNormConfig *)nntk_layer_config_create("NNTKBatchNormConfigCreate",
                                                          &nntk_batch_norm_type, values);
}

NNTK_DEFINE_LAYER(BatchNorm, nntk_batch_norm_type)

NNTK_API NNTKStatus NNTKBatchNormApplyFrozenBatch(NNTKBatchNorm *filter, int64_t batch,
                                                  int64_t steps, const float *in, float *out) {
    return nntk_layer_apply("NNTKBatchNormApplyFrozenBatch", &nntk_batch_norm_type,
                            (NNTKLayer *)filter, NNTK_APPLY_FROZEN, batch, steps, in, NULL, out, NULL);
}
