/* Dense: y = act(x · kernel + bias). Inference, training forward and gradient
 * side by side. Shapes: rows = batch·steps, D = input_dim, U = units. */
#include <stdlib.h>

#include "core/internal.h"
#include "core/ops.h"
#include "nntk/dense.h"

#define CONFIG_TAG NNTK_TAG('D', 'n', 's', 'C')
#define FILTER_TAG NNTK_TAG('D', 'n', 's', 'F')
#define GRADIENT_TAG NNTK_TAG('D', 'n', 's', 'G')

struct NNTKDenseConfig {
    uint32_t tag;
    int64_t input_dim; /* D */
    int64_t units;     /* U */
    NNTKActivationKind activation;
    int32_t use_bias;
};

struct NNTKDense {
    uint32_t tag;
    NNTKDenseConfig config;
    int32_t training;     /* created for training */
    float *weights;       /* kernel (D, U), then bias (U,) if use_bias */
    int64_t weight_count;
    /* Kept by the last training batch for the gradient; all four live in one
     * workspace block that grows with the batch. */
    int64_t rows;           /* batch·steps of that batch; 0 = none yet */
    float *x;               /* (rows, D) its input */
    float *pre;             /* (rows, U) pre-activation x·kernel + bias */
    float *y;               /* (rows, U) its output */
    float *delta;           /* (rows, U) scratch: d pre-activation */
    float *workspace;
    int64_t workspace_capacity;
};

struct NNTKDenseGradient {
    uint32_t tag;
    const NNTKDense *filter; /* the filter it was created for */
    float *d_weights;        /* same layout as the weights */
    int64_t count;
};

NNTK_API NNTKDenseConfig *NNTKDenseConfigCreate(int64_t input_dim, int64_t units,
                                                int32_t activation, int32_t use_bias) {
    static const char fn[] = "NNTKDenseConfigCreate";
    if (nntk_check_size(fn, "input_dim", input_dim, NNTK_MAX_DIM) != NNTK_OK) return NULL;
    if (nntk_check_size(fn, "units", units, NNTK_MAX_DIM) != NNTK_OK) return NULL;
    /* GCOVR_EXCL_BR_START: argument validation */
    if (input_dim * units > NNTK_MAX_ELEMENTS) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: input_dim*units = %lld*%lld is too large", fn,
                  (long long)input_dim, (long long)units);
        return NULL;
    }
    if (nntk_check_activation(fn, "activation", activation) != NNTK_OK) return NULL;
    if (use_bias != 0 && use_bias != 1) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: use_bias must be 0 or 1 (got %d)", fn, (int)use_bias);
        return NULL;
    }
    /* GCOVR_EXCL_BR_STOP */
    NNTKDenseConfig *config = calloc(1, sizeof *config);
    if (config == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *config = (NNTKDenseConfig){CONFIG_TAG, input_dim, units, (NNTKActivationKind)activation, use_bias};
    return config;
}

NNTK_API void NNTKDenseConfigDestroy(NNTKDenseConfig *config) {
    if (config == NULL || config->tag != CONFIG_TAG) return;
    config->tag = NNTK_TAG_DEAD;
    free(config);
}

/* Reserves the training workspace for `rows` rows and points x, pre, y and
 * delta into it. */
static NNTKStatus reserve_rows(const char *fn, NNTKDense *f, int64_t rows) {
    const int64_t d = f->config.input_dim, u = f->config.units;
    NNTKStatus s = nntk_reserve(fn, &f->workspace, &f->workspace_capacity, rows * (d + 3 * u));
    if (s != NNTK_OK) return s;
    f->x = f->workspace;
    f->pre = f->x + rows * d;
    f->y = f->pre + rows * u;
    f->delta = f->y + rows * u;
    return NNTK_OK;
}

static NNTKDense *create(const char *fn, const NNTKDenseConfig *config, int training,
                         const NNTKTrainingConfig *training_config) {
    if (nntk_check_handle(fn, "config", config, CONFIG_TAG) != NNTK_OK) return NULL;
    NNTKDense *f = calloc(1, sizeof *f);
    if (f == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    f->tag = FILTER_TAG;
    f->config = *config;
    f->training = training;
    f->weight_count = config->input_dim * config->units + (config->use_bias ? config->units : 0);
    f->weights = nntk_alloc_floats(f->weight_count);
    if (f->weights == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for %lld weights", fn,
                  (long long)f->weight_count);
        NNTKDenseDestroy(f);
        return NULL;
    }
    int64_t max_batch = 0, max_steps = 0;
    if (training && (nntk_training_capacity(fn, training_config, &max_batch, &max_steps) != NNTK_OK ||
                     (max_batch > 0 && reserve_rows(fn, f, max_batch * max_steps) != NNTK_OK))) {
        NNTKDenseDestroy(f);
        return NULL;
    }
    return f;
}

NNTK_API NNTKDense *NNTKDenseCreateForInference(const NNTKDenseConfig *config) {
    return create("NNTKDenseCreateForInference", config, 0, NULL);
}

NNTK_API NNTKDense *NNTKDenseCreateForTraining(const NNTKDenseConfig *config,
                                               const NNTKTrainingConfig *training_config) {
    return create("NNTKDenseCreateForTraining", config, 1, training_config);
}

NNTK_API void NNTKDenseDestroy(NNTKDense *filter) {
    if (filter == NULL || filter->tag != FILTER_TAG) return;
    filter->tag = NNTK_TAG_DEAD;
    nntk_free(filter->weights);
    nntk_free(filter->workspace);
    free(filter);
}

NNTK_API NNTKStatus NNTKDenseGetWeights(NNTKDense *filter, float **weights, int64_t *count) {
    static const char fn[] = "NNTKDenseGetWeights";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *weights = filter->weights;
    *count = filter->weight_count;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKDenseOutputShape(const NNTKDense *filter, int64_t batch, int64_t steps,
                                         int64_t *out_steps, int64_t *out_features) {
    static const char fn[] = "NNTKDenseOutputShape";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_steps", out_steps)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_features", out_features)) != NNTK_OK) return s;
    /* The same bound as the Apply functions (the wider of input and output), so
     * OutputShape accepts exactly the sizes they accept. */
    const int64_t widest = filter->config.input_dim > filter->config.units ? filter->config.input_dim
                                                                           : filter->config.units;
    if ((s = nntk_check_batch(fn, batch, steps, widest)) != NNTK_OK) return s;
    *out_steps = steps;
    *out_features = filter->config.units;
    return NNTK_OK;
}

/* pre (rows, U) = x (rows, D) · kernel (D, U) + bias (U,). */
static void project(const NNTKDense *f, int64_t rows, const float *x, float *pre) {
    const int64_t d = f->config.input_dim, u = f->config.units;
    const float *kernel = f->weights;    /* (D, U) */
    const float *bias = f->weights + d * u; /* (U,) */
    nntk_gemm(0, 0, rows, u, d, 1.0f, x, d, kernel, u, 0.0f, pre, u);
    if (f->config.use_bias)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < u; j++) pre[r * u + j] += bias[j];
}

static NNTKStatus check_apply(const char *fn, const NNTKDense *filter, int64_t batch, int64_t steps,
                              const float *in, const float *out) {
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "in", in)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out", out)) != NNTK_OK) return s;
    const int64_t widest = filter->config.input_dim > filter->config.units ? filter->config.input_dim
                                                                           : filter->config.units;
    return nntk_check_batch(fn, batch, steps, widest);
}

NNTK_API NNTKStatus NNTKDenseApplyInference(NNTKDense *filter, int64_t batch, int64_t steps,
                                            const float *in, float *out) {
    NNTKStatus s = check_apply("NNTKDenseApplyInference", filter, batch, steps, in, out);
    if (s != NNTK_OK) return s;
    const int64_t rows = batch * steps;
    project(filter, rows, in, out);
    nntk_activation_forward(filter->config.activation, rows, filter->config.units, out, out);
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKDenseApplyTrainingBatch(NNTKDense *filter, int64_t batch, int64_t steps,
                                                const float *in, float *out) {
    static const char fn[] = "NNTKDenseApplyTrainingBatch";
    NNTKStatus s = check_apply(fn, filter, batch, steps, in, out);
    if (s != NNTK_OK) return s;
    if (!filter->training)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
    const int64_t rows = batch * steps, d = filter->config.input_dim, u = filter->config.units;
    filter->rows = 0; /* invalid until this batch is complete */
    if ((s = reserve_rows(fn, filter, rows)) != NNTK_OK) return s;
    nntk_copy(filter->x, in, rows * d);
    project(filter, rows, filter->x, filter->pre);
    nntk_activation_forward(filter->config.activation, rows, u, filter->pre, filter->y);
    nntk_copy(out, filter->y, rows * u);
    filter->rows = rows;
    return NNTK_OK;
}

NNTK_API NNTKDenseGradient *NNTKDenseGradientCreate(const NNTKDense *filter) {
    static const char fn[] = "NNTKDenseGradientCreate";
    if (nntk_check_handle(fn, "filter", filter, FILTER_TAG) != NNTK_OK) return NULL;
    if (!filter->training) {
        nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
        return NULL;
    }
    NNTKDenseGradient *g = calloc(1, sizeof *g);
    float *block = nntk_alloc_floats(filter->weight_count);
    if (g == NULL || block == NULL) {
        free(g);
        nntk_free(block);
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *g = (NNTKDenseGradient){GRADIENT_TAG, filter, block, filter->weight_count};
    return g;
}

NNTK_API void NNTKDenseGradientDestroy(NNTKDenseGradient *gradient) {
    if (gradient == NULL || gradient->tag != GRADIENT_TAG) return;
    gradient->tag = NNTK_TAG_DEAD;
    nntk_free(gradient->d_weights);
    free(gradient);
}

NNTK_API NNTKStatus NNTKDenseGradientGetWeights(NNTKDenseGradient *gradient, float **weights,
                                                int64_t *count) {
    static const char fn[] = "NNTKDenseGradientGetWeights";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "gradient", gradient, GRADIENT_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *weights = gradient->d_weights;
    *count = gradient->count;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKDenseCalculateGradient(NNTKDense *filter, NNTKDenseGradient *gradient,
                                               const float *d_out, float *d_in) {
    static const char fn[] = "NNTKDenseCalculateGradient";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_handle(fn, "gradient", gradient, GRADIENT_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "d_out", d_out)) != NNTK_OK) return s;
    if (gradient->filter != filter)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: gradient was created for another filter", fn);
    if (!filter->training)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
    if (filter->rows == 0)
        return nntk_fail(NNTK_ERROR_INVALID_STATE,
                         "%s: no training batch yet (call NNTKDenseApplyTrainingBatch first)", fn);
    const int64_t rows = filter->rows, d = filter->config.input_dim, u = filter->config.units;
    const float *kernel = filter->weights;     /* (D, U) */
    float *d_kernel = gradient->d_weights;     /* (D, U) */
    float *d_bias = gradient->d_weights + d * u; /* (U,) */
    float *delta = filter->delta;              /* (rows, U) d pre-activation */

    /* y = act(pre): delta = d_out ⊙ act'(pre). */
    nntk_activation_backward(filter->config.activation, rows, u, filter->pre, filter->y, d_out, delta);
    /* pre = x · kernel + bias: d_kernel = xᵀ · delta, d_bias = Σ_rows delta, d_in = delta · kernelᵀ. */
    nntk_gemm(1, 0, d, u, rows, 1.0f, filter->x, d, delta, u, 0.0f, d_kernel, u);
    if (filter->config.use_bias) nntk_sum_rows(rows, u, delta, d_bias, 0);
    if (d_in != NULL) nntk_gemm(0, 1, rows, d, u, 1.0f, delta, u, kernel, u, 0.0f, d_in, d);
    return NNTK_OK;
}
