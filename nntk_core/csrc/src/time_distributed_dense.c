/* TimeDistributedDense: every call forwards to the wrapped Dense (dense.c) on
 * the (batch·steps, D) view of the input; nothing of Dense is repeated here. */
#include <stdlib.h>

#include "core/internal.h"
#include "nntk/dense.h"
#include "nntk/time_distributed_dense.h"

#define CONFIG_TAG NNTK_TAG('T', 'd', 'D', 'C')
#define FILTER_TAG NNTK_TAG('T', 'd', 'D', 'F')
#define GRADIENT_TAG NNTK_TAG('T', 'd', 'D', 'G')

struct NNTKTimeDistributedDenseConfig {
    uint32_t tag;
    NNTKDenseConfig *dense;
};

struct NNTKTimeDistributedDense {
    uint32_t tag;
    NNTKDense *dense;
};

struct NNTKTimeDistributedDenseGradient {
    uint32_t tag;
    const NNTKTimeDistributedDense *filter;
    NNTKDenseGradient *dense;
};

/* Dense's messages name the Dense function; nntk_relabel prefixes ours so the
 * caller sees which public function failed. */
#define relabel nntk_relabel

NNTK_API NNTKTimeDistributedDenseConfig *NNTKTimeDistributedDenseConfigCreate(int64_t input_dim,
                                                                              int64_t units,
                                                                              int32_t activation,
                                                                              int32_t use_bias) {
    static const char fn[] = "NNTKTimeDistributedDenseConfigCreate";
    NNTKDenseConfig *dense = NNTKDenseConfigCreate(input_dim, units, activation, use_bias);
    if (dense == NULL) {
        relabel(fn, NNTKLastStatus());
        return NULL;
    }
    NNTKTimeDistributedDenseConfig *config = calloc(1, sizeof *config);
    if (config == NULL) {
        NNTKDenseConfigDestroy(dense);
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *config = (NNTKTimeDistributedDenseConfig){CONFIG_TAG, dense};
    return config;
}

NNTK_API void NNTKTimeDistributedDenseConfigDestroy(NNTKTimeDistributedDenseConfig *config) {
    if (config == NULL || config->tag != CONFIG_TAG) return;
    config->tag = NNTK_TAG_DEAD;
    NNTKDenseConfigDestroy(config->dense);
    free(config);
}

static NNTKTimeDistributedDense *create(const char *fn, const NNTKTimeDistributedDenseConfig *config,
                                        int training, const NNTKTrainingConfig *training_config) {
    if (nntk_check_handle(fn, "config", config, CONFIG_TAG) != NNTK_OK) return NULL;
    NNTKDense *dense = training ? NNTKDenseCreateForTraining(config->dense, training_config)
                                : NNTKDenseCreateForInference(config->dense);
    if (dense == NULL) {
        relabel(fn, NNTKLastStatus());
        return NULL;
    }
    NNTKTimeDistributedDense *f = calloc(1, sizeof *f);
    if (f == NULL) {
        NNTKDenseDestroy(dense);
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *f = (NNTKTimeDistributedDense){FILTER_TAG, dense};
    return f;
}

NNTK_API NNTKTimeDistributedDense *NNTKTimeDistributedDenseCreateForInference(
    const NNTKTimeDistributedDenseConfig *config) {
    return create("NNTKTimeDistributedDenseCreateForInference", config, 0, NULL);
}

NNTK_API NNTKTimeDistributedDense *NNTKTimeDistributedDenseCreateForTraining(
    const NNTKTimeDistributedDenseConfig *config, const NNTKTrainingConfig *training_config) {
    return create("NNTKTimeDistributedDenseCreateForTraining", config, 1, training_config);
}

NNTK_API void NNTKTimeDistributedDenseDestroy(NNTKTimeDistributedDense *filter) {
    if (filter == NULL || filter->tag != FILTER_TAG) return;
    filter->tag = NNTK_TAG_DEAD;
    NNTKDenseDestroy(filter->dense);
    free(filter);
}

NNTK_API NNTKStatus NNTKTimeDistributedDenseGetWeights(NNTKTimeDistributedDense *filter,
                                                       float **weights, int64_t *count) {
    static const char fn[] = "NNTKTimeDistributedDenseGetWeights";
    NNTKStatus s = nntk_check_handle(fn, "filter", filter, FILTER_TAG);
    if (s != NNTK_OK) return s;
    return relabel(fn, NNTKDenseGetWeights(filter->dense, weights, count));
}

NNTK_API NNTKStatus NNTKTimeDistributedDenseOutputShape(const NNTKTimeDistributedDense *filter,
                                                        int64_t batch, int64_t steps,
                                                        int64_t *out_steps, int64_t *out_features) {
    static const char fn[] = "NNTKTimeDistributedDenseOutputShape";
    NNTKStatus s = nntk_check_handle(fn, "filter", filter, FILTER_TAG);
    if (s != NNTK_OK) return s;
    return relabel(fn, NNTKDenseOutputShape(filter->dense, batch, steps, out_steps, out_features));
}

NNTK_API NNTKStatus NNTKTimeDistributedDenseApplyInference(NNTKTimeDistributedDense *filter,
                                                           int64_t batch, int64_t steps,
                                                           const float *in, float *out) {
    static const char fn[] = "NNTKTimeDistributedDenseApplyInference";
    NNTKStatus s = nntk_check_handle(fn, "filter", filter, FILTER_TAG);
    if (s != NNTK_OK) return s;
    return relabel(fn, NNTKDenseApplyInference(filter->dense, batch, steps, in, out));
}

NNTK_API NNTKStatus NNTKTimeDistributedDenseApplyTrainingBatch(NNTKTimeDistributedDense *filter,
                                                               int64_t batch, int64_t steps,
                                                               const float *in, float *out) {
    static const char fn[] = "NNTKTimeDistributedDenseApplyTrainingBatch";
    NNTKStatus s = nntk_check_handle(fn, "filter", filter, FILTER_TAG);
    if (s != NNTK_OK) return s;
    return relabel(fn, NNTKDenseApplyTrainingBatch(filter->dense, batch, steps, in, out));
}

NNTK_API NNTKTimeDistributedDenseGradient *NNTKTimeDistributedDenseGradientCreate(
    const NNTKTimeDistributedDense *filter) {
    static const char fn[] = "NNTKTimeDistributedDenseGradientCreate";
    if (nntk_check_handle(fn, "filter", filter, FILTER_TAG) != NNTK_OK) return NULL;
    NNTKDenseGradient *dense = NNTKDenseGradientCreate(filter->dense);
    if (dense == NULL) {
        relabel(fn, NNTKLastStatus());
        return NULL;
    }
    NNTKTimeDistributedDenseGradient *g = calloc(1, sizeof *g);
    if (g == NULL) {
        NNTKDenseGradientDestroy(dense);
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *g = (NNTKTimeDistributedDenseGradient){GRADIENT_TAG, filter, dense};
    return g;
}

NNTK_API void NNTKTimeDistributedDenseGradientDestroy(NNTKTimeDistributedDenseGradient *gradient) {
    if (gradient == NULL || gradient->tag != GRADIENT_TAG) return;
    gradient->tag = NNTK_TAG_DEAD;
    NNTKDenseGradientDestroy(gradient->dense);
    free(gradient);
}

NNTK_API NNTKStatus NNTKTimeDistributedDenseGradientGetWeights(
    NNTKTimeDistributedDenseGradient *gradient, float **weights, int64_t *count) {
    static const char fn[] = "NNTKTimeDistributedDenseGradientGetWeights";
    NNTKStatus s = nntk_check_handle(fn, "gradient", gradient, GRADIENT_TAG);
    if (s != NNTK_OK) return s;
    return relabel(fn, NNTKDenseGradientGetWeights(gradient->dense, weights, count));
}

NNTK_API NNTKStatus NNTKTimeDistributedDenseCalculateGradient(
    NNTKTimeDistributedDense *filter, NNTKTimeDistributedDenseGradient *gradient,
    const float *d_out, float *d_in) {
    static const char fn[] = "NNTKTimeDistributedDenseCalculateGradient";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "filter", filter, FILTER_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_handle(fn, "gradient", gradient, GRADIENT_TAG)) != NNTK_OK) return s;
    if (gradient->filter != filter)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: gradient was created for another filter", fn);
    return relabel(fn, NNTKDenseCalculateGradient(filter->dense, gradient->dense, d_out, d_in));
}
