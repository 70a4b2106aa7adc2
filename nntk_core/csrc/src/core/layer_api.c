/* The public face of the layer description (nntk/layer.h): the queries over
 * every NNTKLayerType, the config from field values, and the generic handle
 * functions (the standard functions of core/layer.c for any layer type). The
 * Python binding derives its layers from these alone. */
#include <math.h>
#include <stdint.h>

#include "core/layer.h"

_Static_assert(NNTK_LAYER_MAX_RANK <= NNTK_MAX_WEIGHT_RANK, "public weight rank bound");
_Static_assert(NNTK_LAYER_MAX_STATES <= NNTK_MAX_STATES, "public state count bound");

/* GCOVR_EXCL_BR_START: argument validation */
static const NNTKLayerType *type_at(const char *fn, int32_t type) {
    const NNTKLayerType *t = nntk_layer_type_at(type);
    if (t == NULL)
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: type = %d is not a layer type (0 .. %d)", fn,
                  (int)type, (int)nntk_layer_type_count() - 1);
    return t;
}

static const NNTKLayerField *field_at(const char *fn, int32_t type, int32_t field) {
    const NNTKLayerType *t = type_at(fn, type);
    if (t == NULL) return NULL;
    if (field < 0 || field >= t->field_count) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: field = %d is not a field of %s (0 .. %d)", fn,
                  (int)field, t->name, (int)t->field_count - 1);
        return NULL;
    }
    return &t->fields[field];
}

/* Checks that every pointer of a query is non-NULL (names the first NULL). */
static NNTKStatus check_outputs(const char *fn, int n, const char *const *names,
                                const void *const *pointers) {
    for (int i = 0; i < n; i++) {
        const NNTKStatus s = nntk_check_pointer(fn, names[i], pointers[i]);
        if (s != NNTK_OK) return s;
    }
    return NNTK_OK;
}
/* GCOVR_EXCL_BR_STOP */

NNTK_API NNTKStatus NNTKLayerTypeCount(int64_t *count) {
    const NNTKStatus s = nntk_check_pointer("NNTKLayerTypeCount", "count", count);
    if (s != NNTK_OK) return s;
    *count = nntk_layer_type_count();
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKLayerTypeDescribe(int32_t type, const char **name, const char **keras_name,
                                          int64_t *field_count, int64_t *has_states, int64_t *wraps,
                                          int64_t *has_frozen) {
    static const char fn[] = "NNTKLayerTypeDescribe";
    static const char *const names[] = {"name",       "keras_name", "field_count",
                                        "has_states", "wraps",      "has_frozen"};
    const void *const outputs[] = {name, keras_name, field_count, has_states, wraps, has_frozen};
    const NNTKLayerType *t = type_at(fn, type);
    if (t == NULL) return NNTKLastStatus();
    const NNTKStatus s = check_outputs(fn, 6, names, outputs);
    if (s != NNTK_OK) return s;
    *name = t->name;
    *keras_name = t->keras_name;
    *field_count = t->field_count;
    *has_states = t->states != NULL;
    *wraps = t->wraps;
    *has_frozen = t->has_frozen;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKLayerTypeKerasPositional(int32_t type, int64_t *count) {
    static const char fn[] = "NNTKLayerTypeKerasPositional";
    const NNTKLayerType *t = type_at(fn, type);
    if (t == NULL) return NNTKLastStatus();
    const NNTKStatus s = nntk_check_pointer(fn, "count", count);
    if (s != NNTK_OK) return s;
    *count = t->keras_positional;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKLayerTypeField(int32_t type, int32_t field, const char **name,
                                       int64_t *kind, double *default_value, double *min,
                                       double *max, int64_t *min_exclusive, int64_t *enum_count) {
    static const char fn[] = "NNTKLayerTypeField";
    static const char *const names[] = {"name",  "kind",          "default_value", "min",
                                        "max",   "min_exclusive", "enum_count"};
    const void *const outputs[] = {name, kind, default_value, min, max, min_exclusive, enum_count};
    const NNTKLayerField *f = field_at(fn, type, field);
    if (f == NULL) return NNTKLastStatus();
    const NNTKStatus s = check_outputs(fn, 7, names, outputs);
    if (s != NNTK_OK) return s;
    *name = f->name;
    *kind = f->kind;
    *default_value = f->default_value;
    *min = f->min;
    *max = f->max;
    *min_exclusive = f->min_exclusive;
    *enum_count = f->kind == NNTK_FIELD_ENUM ? f->enum_count : 0;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKLayerTypeFieldEnumName(int32_t type, int32_t field, int32_t value,
                                               const char **name) {
    static const char fn[] = "NNTKLayerTypeFieldEnumName";
    const NNTKLayerField *f = field_at(fn, type, field);
    if (f == NULL) return NNTKLastStatus();
    /* GCOVR_EXCL_BR_START: argument validation */
    if (f->kind != NNTK_FIELD_ENUM)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: field = %d (%s) is not an enum field", fn,
                         (int)field, f->name);
    if (value < 0 || value >= f->enum_count)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: value = %d is not a value of %s (0 .. %d)",
                         fn, (int)value, f->name, (int)f->enum_count - 1);
    /* GCOVR_EXCL_BR_STOP */
    const NNTKStatus s = nntk_check_pointer(fn, "name", name);
    if (s != NNTK_OK) return s;
    *name = f->enum_names[value];
    return NNTK_OK;
}

/* --- configs -------------------------------------------------------------------------------- */
NNTK_API NNTKLayerConfig *NNTKLayerConfigCreateFromValues(int32_t type, const double *values,
                                                          int64_t count) {
    static const char fn[] = "NNTKLayerConfigCreateFromValues";
    const NNTKLayerType *t = type_at(fn, type);
    if (t == NULL) return NULL;
    /* GCOVR_EXCL_BR_START: argument validation */
    if (t->wraps) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                  "%s: type = %d (%s) wraps an inner layer: create its config with NNTK%sConfigCreateFor",
                  fn, (int)type, t->name, t->name);
        return NULL;
    }
    if (nntk_check_pointer(fn, "values", values) != NNTK_OK) return NULL;
    if (count != t->field_count) {
        nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: count = %lld, but %s has %d fields", fn,
                  (long long)count, t->name, (int)t->field_count);
        return NULL;
    }
    NNTKLayerValue converted[NNTK_LAYER_MAX_FIELDS] = {{0}};
    for (int32_t i = 0; i < t->field_count; i++) {
        if (t->fields[i].kind == NNTK_FIELD_FLOAT) {
            converted[i].f = values[i];
            continue;
        }
        /* A whole number in int64's range (the field check then applies its own). */
        if (!(values[i] == floor(values[i]) && fabs(values[i]) < 9.2e18)) {
            nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: values[%d] (%s) = %g is not a whole number",
                      fn, (int)i, t->fields[i].name, values[i]);
            return NULL;
        }
        converted[i].i = (int64_t)values[i];
    }
    /* GCOVR_EXCL_BR_STOP */
    return nntk_layer_config_create(fn, t, converted);
}

NNTK_API void NNTKLayerConfigDestroy(NNTKLayerConfig *config) { nntk_layer_config_destroy(config, NULL); }

NNTK_API NNTKStatus NNTKLayerConfigWeightCount(const NNTKLayerConfig *config, int64_t *count) {
    static const char fn[] = "NNTKLayerConfigWeightCount";
    NNTKStatus s;
    if ((s = nntk_layer_check_handle(fn, "config", config, NULL, NNTK_ROLE_CONFIG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    NNTKWeightBlock blocks[NNTK_LAYER_MAX_WEIGHTS];
    *count = nntk_layer_weight_blocks(config, blocks);
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKLayerConfigWeightBlock(const NNTKLayerConfig *config, int32_t block,
                                               const char **name, const char **initializer,
                                               int64_t *rank, int64_t *shape,
                                               int64_t *trainable) {
    static const char fn[] = "NNTKLayerConfigWeightBlock";
    static const char *const names[] = {"name", "initializer", "rank", "shape", "trainable"};
    const void *const outputs[] = {name, initializer, rank, shape, trainable};
    NNTKStatus s;
    if ((s = nntk_layer_check_handle(fn, "config", config, NULL, NNTK_ROLE_CONFIG)) != NNTK_OK) return s;
    NNTKWeightBlock blocks[NNTK_LAYER_MAX_WEIGHTS];
    const int32_t n = nntk_layer_weight_blocks(config, blocks);
    /* GCOVR_EXCL_BR_START: argument validation */
    if (block < 0 || block >= n)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: block = %d is not a weight block (%s has %d)",
                         fn, (int)block, config->type->name, (int)n);
    /* GCOVR_EXCL_BR_STOP */
    if ((s = check_outputs(fn, 5, names, outputs)) != NNTK_OK) return s;
    const NNTKWeightBlock *b = &blocks[block];
    *name = b->name;
    *initializer = b->initializer;
    *rank = b->rank;
    for (int32_t d = 0; d < b->rank; d++) shape[d] = b->shape[d];
    *trainable = b->trainable;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKLayerConfigStates(const NNTKLayerConfig *config, int64_t *count,
                                          int64_t *widths) {
    static const char fn[] = "NNTKLayerConfigStates";
    NNTKStatus s;
    if ((s = nntk_layer_check_handle(fn, "config", config, NULL, NNTK_ROLE_CONFIG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "count", count)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "widths", widths)) != NNTK_OK) return s;
    int64_t found[NNTK_LAYER_MAX_STATES];
    const int32_t n = nntk_layer_state_widths(config, found);
    for (int32_t i = 0; i < n; i++) widths[i] = found[i];
    *count = n;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKLayerConfigRanks(const NNTKLayerConfig *config, int64_t *sequence_input,
                                         int64_t *drops_steps) {
    static const char fn[] = "NNTKLayerConfigRanks";
    NNTKStatus s;
    if ((s = nntk_layer_check_handle(fn, "config", config, NULL, NNTK_ROLE_CONFIG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "sequence_input", sequence_input)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "drops_steps", drops_steps)) != NNTK_OK) return s;
    const NNTKLayerType *type = config->type;
    *sequence_input = type->sequence_input;
    *drops_steps = type->drops_steps != NULL ? type->drops_steps(config) : 0;
    return NNTK_OK;
}

/* --- the generic handle functions ---------------------------------------------------------- */
NNTK_API NNTKLayer *NNTKLayerCreateForTraining(const NNTKLayerConfig *config,
                                               const NNTKTrainingConfig *training_config) {
    return nntk_layer_create("NNTKLayerCreateForTraining", NULL, config, 1, training_config);
}

NNTK_API NNTKLayer *NNTKLayerCreateForInference(const NNTKLayerConfig *config) {
    return nntk_layer_create("NNTKLayerCreateForInference", NULL, config, 0, NULL);
}

NNTK_API void NNTKLayerDestroy(NNTKLayer *filter) { nntk_layer_destroy(filter, NULL); }

NNTK_API NNTKStatus NNTKLayerGetWeights(NNTKLayer *filter, float **weights, int64_t *count) {
    return nntk_layer_get_weights("NNTKLayerGetWeights", NULL, filter, weights, count);
}

NNTK_API NNTKStatus NNTKLayerOutputShape(const NNTKLayer *filter, int64_t batch, int64_t steps,
                                         int64_t *out_steps, int64_t *out_features) {
    return nntk_layer_output_shape("NNTKLayerOutputShape", NULL, filter, batch, steps, out_steps,
                                   out_features);
}

NNTK_API NNTKStatus NNTKLayerApply(NNTKLayer *filter, NNTKApplyMode mode, int64_t batch,
                                   int64_t steps, const float *in, const float *initial_state,
                                   float *out, float *final_state) {
    static const char fn[] = "NNTKLayerApply";
    /* GCOVR_EXCL_BR_START: argument validation */
    if (mode != NNTK_APPLY_INFERENCE && mode != NNTK_APPLY_TRAINING && mode != NNTK_APPLY_FROZEN)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: mode = %d is not an NNTKApplyMode", fn,
                         (int)mode);
    /* GCOVR_EXCL_BR_STOP */
    return nntk_layer_apply(fn, NULL, filter, mode, batch, steps, in, initial_state, out,
                            final_state);
}

NNTK_API NNTKLayerGradient *NNTKLayerGradientCreate(const NNTKLayer *filter) {
    return nntk_layer_gradient_create("NNTKLayerGradientCreate", NULL, filter);
}

NNTK_API void NNTKLayerGradientDestroy(NNTKLayerGradient *gradient) {
    nntk_layer_gradient_destroy(gradient, NULL);
}

NNTK_API NNTKStatus NNTKLayerGradientGetWeights(NNTKLayerGradient *gradient, float **weights,
                                                int64_t *count) {
    return nntk_layer_gradient_get_weights("NNTKLayerGradientGetWeights", NULL, gradient, weights,
                                           count);
}

NNTK_API NNTKStatus NNTKLayerCalculateGradient(NNTKLayer *filter, NNTKLayerGradient *gradient,
                                               const float *d_out, const float *d_final_state,
                                               float *d_in, float *d_initial_state) {
    return nntk_layer_calculate_gradient("NNTKLayerCalculateGradient", NULL, filter, gradient, d_out,
                                         d_final_state, d_in, d_initial_state);
}
