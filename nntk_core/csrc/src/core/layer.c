/* What every layer shares (core/layer.h): config validation from the field
 * table, handles and tags, weights, capacity reservation, gradient handles,
 * the argument checks of the standard functions and the kept training batch.
 * The layer-specific work is the type's ops. */
#include "core/layer.h"

#include <stdlib.h>
#include <string.h>

#include "nntk/conv1d.h" /* NNTKPadding */

/* The registry: every layer type, for the lookups of the generic API. The list
 * is generated from the layer sources (CMakeLists.txt: src/<stem>.c defines
 * nntk_<stem>_type), in file-name order. */
#define NNTK_LAYER_TYPE(stem) &nntk_##stem##_type,
static const NNTKLayerType *const types[] = {
#include "nntk_layer_types.inc"
};
#undef NNTK_LAYER_TYPE
#define TYPE_COUNT ((int32_t)(sizeof types / sizeof types[0]))

int32_t nntk_layer_type_count(void) { return TYPE_COUNT; }

const NNTKLayerType *nntk_layer_type_at(int32_t i) {
    return i >= 0 && i < TYPE_COUNT ? types[i] : NULL;
}

static uint32_t tag_of(const NNTKLayerType *type, NNTKHandleRole role) {
    return role == NNTK_ROLE_CONFIG ? type->config_tag
           : role == NNTK_ROLE_FILTER ? type->filter_tag
                                      : type->gradient_tag;
}

const NNTKLayerType *nntk_layer_type_of(const void *handle, NNTKHandleRole role) {
    if (handle == NULL) return NULL;
    uint32_t found;
    memcpy(&found, handle, sizeof found);
    for (int32_t i = 0; i < TYPE_COUNT; i++)
        if (found == tag_of(types[i], role)) return types[i];
    return NULL;
}

/* The tag a handle must carry to be destroyed as `type` (NULL: the layer type
 * its tag names), and a value it does not carry when there is none (a dead or
 * foreign handle: the destroy functions then leave it alone). */
static uint32_t owned_tag(const void *handle, const NNTKLayerType *type, NNTKHandleRole role) {
    if (type == NULL) type = nntk_layer_type_of(handle, role);
    if (type != NULL) return tag_of(type, role);
    uint32_t found = 0;
    if (handle != NULL) memcpy(&found, handle, sizeof found);
    return ~found;
}

NNTKStatus nntk_layer_check_handle(const char *fn, const char *arg, const void *handle,
                                   const NNTKLayerType *type, NNTKHandleRole role) {
    if (type == NULL && handle != NULL) { /* any layer type: the tag says which */
        type = nntk_layer_type_of(handle, role);
        if (type == NULL) return nntk_check_handle(fn, arg, handle, 0); /* dead or foreign: its message */
    }
    return nntk_check_handle(fn, arg, handle, type != NULL ? tag_of(type, role) : 0);
}

int32_t nntk_layer_field_index(const NNTKLayerType *type, const char *name) {
    for (int32_t i = 0; i < type->field_count; i++)
        if (strcmp(type->fields[i].name, name) == 0) return i;
    return -1;
}

/* --- configs ------------------------------------------------------------------------------ */
/* GCOVR_EXCL_BR_START: argument validation */
static NNTKStatus check_field(const char *fn, const NNTKLayerField *field, NNTKLayerValue value) {
    const char *arg = field->arg != NULL ? field->arg : field->name;
    switch (field->kind) {
    case NNTK_FIELD_INT:
        if (value.i == 0 && field->min == 0) return NNTK_OK; /* None (NNTK_FIELD_SIZE_OR_NONE) */
        return nntk_check_size(fn, arg, value.i, (int64_t)field->max);
    case NNTK_FIELD_BOOL:
        if (value.i != 0 && value.i != 1)
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s must be 0 or 1 (got %lld)", fn, arg,
                             (long long)value.i);
        return NNTK_OK;
    case NNTK_FIELD_ENUM:
        if (value.i < INT32_MIN || value.i > INT32_MAX || field->check == NULL) {
            if (value.i < 0 || value.i >= field->enum_count)
                return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s = %lld is not in [0, %d)", fn,
                                 arg, (long long)value.i, (int)field->enum_count);
            return NNTK_OK;
        }
        return field->check(fn, arg, (int32_t)value.i);
    case NNTK_FIELD_FLOAT:
        if (field->min_exclusive) {
            if (!(value.f > field->min && value.f <= field->max)) /* also refuses NaN */
                return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s must be finite and > %g (got %g)",
                                 fn, arg, field->min, value.f);
        } else if (!(value.f >= field->min && value.f <= field->max)) {
            return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s must be in [%g, %g] (got %g)", fn, arg,
                             field->min, field->max, value.f);
        }
        return NNTK_OK;
    }
    return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: %s has an unknown field kind", fn, arg);
}
/* GCOVR_EXCL_BR_STOP */

NNTKLayerConfig *nntk_layer_config_create(const char *fn, const NNTKLayerType *type,
                                          const NNTKLayerValue *values) {
    for (int32_t i = 0; i < type->field_count; i++)
        if (check_field(fn, &type->fields[i], values[i]) != NNTK_OK) return NULL;
    NNTKLayerConfig *config = calloc(1, sizeof *config);
    if (config == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    config->tag = type->config_tag;
    config->type = type;
    memcpy(config->values, values, (size_t)type->field_count * sizeof *values);
    if (type->check != NULL && type->check(fn, config) != NNTK_OK) {
        free(config);
        return NULL;
    }
    return config;
}

NNTKLayerConfig *nntk_layer_config_copy(const char *fn, const NNTKLayerConfig *config) {
    NNTKLayerConfig *copy = calloc(1, sizeof *copy);
    if (copy == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *copy = *config;
    copy->inner = NULL;
    if (config->inner != NULL && (copy->inner = nntk_layer_config_copy(fn, config->inner)) == NULL) {
        free(copy);
        return NULL;
    }
    return copy;
}

void nntk_layer_config_destroy(NNTKLayerConfig *config, const NNTKLayerType *type) {
    const uint32_t tag = owned_tag(config, type, NNTK_ROLE_CONFIG);
    if (config == NULL || config->tag != tag) return;
    config->tag = NNTK_TAG_DEAD;
    nntk_layer_config_destroy(config->inner, NULL);
    free(config);
}

/* --- weights -------------------------------------------------------------------------------- */
int32_t nntk_layer_weight_blocks(const NNTKLayerConfig *config, NNTKWeightBlock *blocks) {
    return config->type->weights != NULL ? config->type->weights(config, blocks) : 0;
}

int32_t nntk_layer_state_widths(const NNTKLayerConfig *config, int64_t *widths) {
    return config->type->states != NULL ? config->type->states(config, widths) : 0;
}

int64_t nntk_layer_input_features(const NNTKLayerConfig *config) {
    const NNTKLayerConfig *c = config->type->wraps ? config->inner : config;
    const int32_t i = nntk_layer_field_index(c->type, "input_dim");
    return i >= 0 ? c->values[i].i : 0;
}

NNTKStatus nntk_layer_output_features(const char *fn, const NNTKLayer *layer, int64_t *features) {
    for (int64_t steps = 1; steps <= NNTK_MAX_DIM; steps *= 2) {
        int64_t out_steps;
        if (nntk_layer_output_shape(fn, NULL, layer, 1, steps, &out_steps, features) == NNTK_OK)
            return NNTK_OK;
    }
    return NNTKLastStatus();
}

int32_t nntk_stream_stepwise(const NNTKLayerConfig *config) {
    (void)config;
    return NNTK_STREAM_STEPWISE;
}

int32_t nntk_stream_states(const NNTKLayerConfig *config) {
    (void)config;
    return NNTK_STREAM_STATES;
}

int32_t nntk_stream_convolution(int64_t kernel_size, int64_t strides, int32_t padding) {
    if (kernel_size == 1 && strides == 1) return NNTK_STREAM_STEPWISE;
    return padding == NNTK_PADDING_VALID ? NNTK_STREAM_WINDOW : NNTK_STREAM_NONE;
}

int64_t nntk_layer_block_size(const NNTKWeightBlock *block) {
    int64_t n = 1;
    for (int32_t d = 0; d < block->rank; d++) n *= block->shape[d];
    return n;
}

/* Allocates the weights; the blocks with a constant Keras initial value
 * ("ones") get it, every other block starts at zero. */
static NNTKStatus allocate_weights(const char *fn, NNTKLayer *f) {
    NNTKWeightBlock blocks[NNTK_LAYER_MAX_WEIGHTS];
    const int32_t n = nntk_layer_weight_blocks(&f->config, blocks);
    for (int32_t i = 0; i < n; i++) f->weight_count += nntk_layer_block_size(&blocks[i]);
    if (f->weight_count == 0) return NNTK_OK;
    f->weights = nntk_alloc_floats(f->weight_count);
    if (f->weights == NULL)
        return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for %lld weights", fn,
                         (long long)f->weight_count);
    float *w = f->weights;
    for (int32_t i = 0; i < n; i++) {
        const int64_t size = nntk_layer_block_size(&blocks[i]);
        if (strcmp(blocks[i].initializer, "ones") == 0)
            for (int64_t j = 0; j < size; j++) w[j] = 1.0f;
        w += size;
    }
    return NNTK_OK;
}

/* --- handles -------------------------------------------------------------------------------- */
NNTKLayer *nntk_layer_create(const char *fn, const NNTKLayerType *type, const NNTKLayerConfig *config,
                             int training, const NNTKTrainingConfig *training_config) {
    if (nntk_layer_check_handle(fn, "config", config, type, NNTK_ROLE_CONFIG) != NNTK_OK) return NULL;
    type = config->type;
    NNTKLayer *f = calloc(1, sizeof *f);
    if (f == NULL) {
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    f->tag = type->filter_tag;
    f->type = type;
    atomic_flag_clear(&f->in_call);
    f->config = *config;
    f->config.inner = NULL;
    f->training = training;
    NNTKStatus s = NNTK_OK;
    if (config->inner != NULL && (f->config.inner = nntk_layer_config_copy(fn, config->inner)) == NULL)
        s = NNTKLastStatus();
    if (s == NNTK_OK) s = allocate_weights(fn, f);
    if (s == NNTK_OK && type->state_size > 0 && (f->state = calloc(1, type->state_size)) == NULL)
        s = nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
    if (s == NNTK_OK && type->init != NULL) s = type->init(fn, f, config, training_config);
    int64_t max_batch = 0, max_steps = 0;
    if (s == NNTK_OK && training)
        s = nntk_training_capacity(fn, training_config, &max_batch, &max_steps);
    /* Output steps never exceed input steps: the capacity is an upper bound. */
    if (s == NNTK_OK && max_batch > 0 && type->reserve != NULL)
        s = type->reserve(fn, f, max_batch, max_steps, max_steps);
    if (s != NNTK_OK) {
        nntk_layer_destroy(f, type);
        return NULL;
    }
    return f;
}

void nntk_layer_destroy(NNTKLayer *filter, const NNTKLayerType *type) {
    const uint32_t tag = owned_tag(filter, type, NNTK_ROLE_FILTER);
    if (filter == NULL || filter->tag != tag) return;
    type = filter->type;
    filter->tag = NNTK_TAG_DEAD;
    if (type->release != NULL && filter->state != NULL) type->release(filter);
    if (filter->config.inner != NULL)
        nntk_layer_config_destroy(filter->config.inner, filter->config.inner->type);
    nntk_free(filter->weights);
    nntk_free(filter->workspace);
    free(filter->state);
    free(filter);
}

NNTKStatus nntk_layer_get_weights(const char *fn, const NNTKLayerType *type, NNTKLayer *filter,
                                  float **weights, int64_t *count) {
    NNTKStatus s;
    if ((s = nntk_layer_check_handle(fn, "filter", filter, type, NNTK_ROLE_FILTER)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *weights = filter->weights;
    *count = filter->weight_count;
    return NNTK_OK;
}

NNTKStatus nntk_layer_output_shape(const char *fn, const NNTKLayerType *type,
                                   const NNTKLayer *filter, int64_t batch, int64_t steps,
                                   int64_t *out_steps, int64_t *out_features) {
    NNTKStatus s;
    if ((s = nntk_layer_check_handle(fn, "filter", filter, type, NNTK_ROLE_FILTER)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_steps", out_steps)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_features", out_features)) != NNTK_OK) return s;
    int64_t o_steps, o_features;
    if ((s = filter->type->output_shape(fn, filter, batch, steps, &o_steps, &o_features)) != NNTK_OK)
        return s;
    *out_steps = o_steps;
    *out_features = o_features;
    return NNTK_OK;
}

/* nntk_layer_apply once the filter is checked and its call flag taken. */
static NNTKStatus apply_in_call(const char *fn, NNTKLayer *filter, NNTKApplyMode mode,
                                int64_t batch, int64_t steps, const float *in,
                                const float *initial_state, float *out, float *final_state) {
    const NNTKLayerType *type = filter->type;
    NNTKStatus s;
    int64_t out_steps, out_features;
    if ((s = type->output_shape(fn, filter, batch, steps, &out_steps, &out_features)) != NNTK_OK)
        return s;
    if (mode == NNTK_APPLY_INFERENCE)
        return type->forward(fn, filter, mode, batch, steps, out_steps, in, initial_state, out,
                             final_state);
    if (!filter->training)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
    filter->kept = NNTK_APPLY_INFERENCE; /* nothing kept until this batch is complete */
    if (type->reserve != NULL && (s = type->reserve(fn, filter, batch, steps, out_steps)) != NNTK_OK)
        return s;
    s = type->forward(fn, filter, mode, batch, steps, out_steps, in, initial_state, out, final_state);
    if (s != NNTK_OK) return s;
    filter->kept = mode;
    filter->batch = batch;
    filter->steps = steps;
    filter->out_steps = out_steps;
    return NNTK_OK;
}

NNTKStatus nntk_layer_apply(const char *fn, const NNTKLayerType *type, NNTKLayer *filter,
                            NNTKApplyMode mode, int64_t batch, int64_t steps, const float *in,
                            const float *initial_state, float *out, float *final_state) {
    NNTKStatus s;
    if ((s = nntk_layer_check_handle(fn, "filter", filter, type, NNTK_ROLE_FILTER)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "in", in)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out", out)) != NNTK_OK) return s;
    if ((s = nntk_call_enter(fn, "filter", &filter->in_call)) != NNTK_OK) return s;
    s = apply_in_call(fn, filter, mode, batch, steps, in, initial_state, out, final_state);
    nntk_call_leave(&filter->in_call);
    return s;
}

NNTKStatus nntk_layer_apply_shaped(const char *fn, NNTKLayer *filter, int64_t batch,
                                   int64_t steps, int64_t out_steps, const float *in,
                                   const float *initial_state, float *out, float *final_state) {
    NNTKStatus s;
    if ((s = nntk_call_enter(fn, "filter", &filter->in_call)) != NNTK_OK) return s;
    s = filter->type->forward(fn, filter, NNTK_APPLY_INFERENCE, batch, steps, out_steps, in,
                              initial_state, out, final_state);
    nntk_call_leave(&filter->in_call);
    return s;
}

/* --- gradients ------------------------------------------------------------------------------ */
NNTKLayerGradient *nntk_layer_gradient_create(const char *fn, const NNTKLayerType *type,
                                              const NNTKLayer *filter) {
    if (nntk_layer_check_handle(fn, "filter", filter, type, NNTK_ROLE_FILTER) != NNTK_OK) return NULL;
    if (!filter->training) {
        nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
        return NULL;
    }
    NNTKLayerGradient *g = calloc(1, sizeof *g);
    float *block = filter->weight_count > 0 ? nntk_alloc_floats(filter->weight_count) : NULL;
    if (g == NULL || (block == NULL && filter->weight_count > 0)) {
        free(g);
        nntk_free(block);
        nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    *g = (NNTKLayerGradient){filter->type->gradient_tag, filter, block, filter->weight_count};
    return g;
}

void nntk_layer_gradient_destroy(NNTKLayerGradient *gradient, const NNTKLayerType *type) {
    const uint32_t tag = owned_tag(gradient, type, NNTK_ROLE_GRADIENT);
    if (gradient == NULL || gradient->tag != tag) return;
    gradient->tag = NNTK_TAG_DEAD;
    nntk_free(gradient->d_weights);
    free(gradient);
}

NNTKStatus nntk_layer_gradient_get_weights(const char *fn, const NNTKLayerType *type,
                                           NNTKLayerGradient *gradient, float **weights,
                                           int64_t *count) {
    NNTKStatus s;
    if ((s = nntk_layer_check_handle(fn, "gradient", gradient, type, NNTK_ROLE_GRADIENT)) != NNTK_OK)
        return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    *weights = gradient->d_weights;
    *count = gradient->count;
    return NNTK_OK;
}

/* nntk_layer_calculate_gradient once the handles are checked and the filter's
 * call flag taken. */
static NNTKStatus gradient_in_call(const char *fn, NNTKLayer *filter, NNTKLayerGradient *gradient,
                                  const float *d_out, const float *d_final_state, float *d_in,
                                  float *d_initial_state) {
    const NNTKLayerType *type = filter->type;
    if (filter->kept == NNTK_APPLY_INFERENCE) {
        if (type->has_frozen)
            return nntk_fail(NNTK_ERROR_INVALID_STATE,
                             "%s: no training batch yet (call NNTK%sApplyTrainingBatch or "
                             "NNTK%sApplyFrozenBatch first)",
                             fn, type->name, type->name);
        return nntk_fail(NNTK_ERROR_INVALID_STATE,
                         "%s: no training batch yet (call NNTK%sApplyTrainingBatch first)", fn,
                         type->name);
    }
    return type->backward(fn, filter, d_out, d_final_state, d_in, d_initial_state, gradient->d_weights);
}

NNTKStatus nntk_layer_calculate_gradient(const char *fn, const NNTKLayerType *type,
                                         NNTKLayer *filter, NNTKLayerGradient *gradient,
                                         const float *d_out, const float *d_final_state,
                                         float *d_in, float *d_initial_state) {
    NNTKStatus s;
    if ((s = nntk_layer_check_handle(fn, "filter", filter, type, NNTK_ROLE_FILTER)) != NNTK_OK) return s;
    if ((s = nntk_layer_check_handle(fn, "gradient", gradient, type, NNTK_ROLE_GRADIENT)) != NNTK_OK)
        return s;
    if ((s = nntk_check_pointer(fn, "d_out", d_out)) != NNTK_OK) return s;
    if (gradient->filter != filter)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: gradient was created for another filter", fn);
    if (!filter->training)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: filter was created for inference", fn);
    /* The filter's flag covers the gradient too (see NNTKLayer.in_call). */
    if ((s = nntk_call_enter(fn, "filter", &filter->in_call)) != NNTK_OK) return s;
    s = gradient_in_call(fn, filter, gradient, d_out, d_final_state, d_in, d_initial_state);
    nntk_call_leave(&filter->in_call);
    return s;
}
