/* Activation layer: the activation math of core/activations.c as a layer.
 * Shapes: rows = batch·steps, F = features. */
#include <stdlib.h>

#include "core/internal.h"
#include "core/ops.h"
#include "nntk/activation.h"

#define CONFIG_TAG NNTK_TAG('A', 'c', 't', 'C')
#define FILTER_TAG NNTK_TAG('A', 'c', 't', 'F')
#define GRADIENT_TAG NNTK_TAG('A', 'c', 't', 'G')

struct NNTKActivationConfig {
    uint32_t tag;
    NNTKActivationKind kind;
    int64_t features; /* F */
};

struct NNTKActivation {
    uint32_t tag;
    NNTKActivationConfig config;
    int32_t training;
    int64_t rows;       /* rows of the last training batch; 0 = none yet */
    float *x;           /* (rows, F) its input */
    float *y;           /* (rows, F) its output */
    float *workspace;   /* holds x then y */
    int64_t workspace_capacity;
};

struct NNTKActivationGradient {
    uint32_t tag;
    const NNTKActivation *filter;
};

NNTK_API NNTKActivationConfig *NNTKActivationConfigCreate(int32_t kind, int64_t features) {
    static const char fn[] = "NNTKActivationConfigCreate";
    if (nntk_check_activation(fn, "kind", kind) != NNTK_OK) return NULL;
    if (nntk_check_size(fn, "features", features, NNTK_MAX_DIM) != NNTK_OK) return NULL;
    NNTKActivationConfig *config = calloc(1, sizeof *config);
    if (config == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *config = (NNTKActivationConfig){CONFIG_TAG, (NNTKActivationKind)kind, features};
    return config;
}

NNTK_API void NNTKActivationConfigDestroy(NNTKActivationConfig *config) {
    if (config == NULL || config->tag != CONFIG_TAG) return;
    config->tag = NNTK_TAG_DEAD;
    free(config);
}

static NNTKStatus reserve_rows(const char *fn, NNTKActivation *f, int64_t rows) {
    const int64_t n = rows * f->config.features;
    NNTKStatus s = nntk_reserve(fn, &f->workspace, &f->workspace_capacity, 2 * n);
    if (s != NNTK_OK) return s;
    f->x = f->workspace;
    f->y = f->workspace + n;
    return NNTK_OK;
}

static NNTKActivation *create(const char *fn, const NNTKActivationConfig *config, int training,
                              const NNTKTrainingConfig *training_config) {
    if (nntk_check_handle(fn, "config", config, CONFIG_TAG) != NNTK_OK) return NULL;
    NNTKActivation *f = calloc(1, sizeof *f);
    if (f == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    f->tag = FILTER_TAG;
    f->config = *config;
    f->training = training;
    int64_t max_batch = 0, max_steps = 0;
    if (training && (nntk_training_capacity(fn, training_config, &max_batch, &max_steps) != NNTK_OK ||
                     (max_batch > 0 && reserve_rows(fn, f, max_batch * max_steps) != NNTK_OK))) {
        NNTKActivationDestroy(f);
        return NULL;
    }
    return f;
}

NNTK_API NNTKActivation *NNTKActivationCreateForInference(const NNTKActivationConfig *config) {
    return create("NNTKActivationCreateForInference", config, 0, NULL);
}

NNTK_API NNTKActivation *NNTKActivationCreateForTraining(const NNTKActivationConfig *config,
                                                         const NNTKTrainingConfig *training_config) {
    return create("NNTKActivationCreateForTraining", config, 1, training_config);
}

NNTK_API void NNTKActivationDestroy(NNTKActivation *filter) {
    if (filter == NULL || filter->tag != FILTER_TAG) return;
    filter->tag = NNTK_TAG_DEAD;
    nntk_free(filter->workspace);
    free(filter);
}

NNTK_API NNTKStatus NNTKActivationGetWeights(NNTKActivation *filter, float **weights, int64_t *count) {
    static const char fn[] = "NNTKActivationGetWeights";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *weights = NULL;
    *count = 0;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKActivationOutputShape(const NNTKActivation *filter, int64_t batch,
                                              int64_t steps, int64_t *out_steps,
                                              int64_t *out_features) {
    static const char fn[] = "NNTKActivationOutputShape";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_steps", out_steps)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_features", out_features)) != NNTK_OK) return s;
    if ((s = nntk_check_batch(fn, batch, steps, filter->config.features)) != NNTK_OK) return s;
    *out_steps = steps;
    *out_features = filter->config.features;
    return NNTK_OK;
}

static NNTKStatus check_apply(const char *fn, const NNTKActivation *filter, int64_t batch,
                              int64_t steps, const float *in, const float *out) {
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "in", in)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out", out)) != NNTK_OK) return s;
    return nntk_check_batch(fn, batch, steps, filter->config.features);
}

NNTK_API NNTKStatus NNTKActivationApplyInference(NNTKActivation *filter, int64_t batch,
                                                 int64_t steps, const float *in, float *out) {
    NNTKStatus s = check_apply("NNTKActivationApplyInference", filter, batch, steps, in, out);
    if (s != NNTK_OK) return s;
    nntk_activation_forward(filter->config.kind, batch * steps, filter->config.features, in, out);
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKActivationApplyTrainingBatch(NNTKActivation *filter, int64_t batch,
                                                     int64_t steps, const float *in, float *out) {
    static const char fn[] = "NNTKActivationApplyTrainingBatch";
    NNTKStatus s = check_apply(fn, filter, batch, steps, in, out);
    if (s != NNTK_OK) return s;
    if (!filter->training)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
    const int64_t rows = batch * steps, n = rows * filter->config.features;
    filter->rows = 0;
    if ((s = reserve_rows(fn, filter, rows)) != NNTK_OK) return s;
    nntk_copy(filter->x, in, n);
    nntk_activation_forward(filter->config.kind, rows, filter->config.features, filter->x, filter->y);
    nntk_copy(out, filter->y, n);
    filter->rows = rows;
    return NNTK_OK;
}

NNTK_API NNTKActivationGradient *NNTKActivationGradientCreate(const NNTKActivation *filter) {
    static const char fn[] = "NNTKActivationGradientCreate";
    if (nntk_check_handle(fn, "filter", filter, FILTER_TAG) != NNTK_OK) return NULL;
    if (!filter->training) {
        nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
        return NULL;
    }
    NNTKActivationGradient *g = calloc(1, sizeof *g);
    if (g == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *g = (NNTKActivationGradient){GRADIENT_TAG, filter};
    return g;
}

NNTK_API void NNTKActivationGradientDestroy(NNTKActivationGradient *gradient) {
    if (gradient == NULL || gradient->tag != GRADIENT_TAG) return;
    gradient->tag = NNTK_TAG_DEAD;
    free(gradient);
}

NNTK_API NNTKStatus NNTKActivationGradientGetWeights(NNTKActivationGradient *gradient,
                                                     float **weights, int64_t *count) {
    static const char fn[] = "NNTKActivationGradientGetWeights";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "gradient", gradient, GRADIENT_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *weights = NULL;
    *count = 0;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKActivationCalculateGradient(NNTKActivation *filter,
                                                    NNTKActivationGradient *gradient,
                                                    const float *d_out, float *d_in) {
    static const char fn[] = "NNTKActivationCalculateGradient";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_handle(fn, "gradient", gradient, GRADIENT_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "d_out", d_out)) != NNTK_OK) return s;
    if (gradient->filter != filter)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: gradient was created for another filter", fn);
    if (filter->rows == 0)
        return nntk_fail(NNTK_ERROR_INVALID_STATE,
                         "%s: no training batch yet (call NNTKActivationApplyTrainingBatch first)", fn);
    /* No weights: with d_in NULL (the standard contract allows it) there is
     * nothing to compute. */
    if (d_in != NULL)
        nntk_activation_backward(filter->config.kind, filter->rows, filter->config.features,
                                 filter->x, filter->y, d_out, d_in);
    return NNTK_OK;
}
