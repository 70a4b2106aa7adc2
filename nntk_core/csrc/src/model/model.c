/* The model at run time (nntk/model.h): inference, one training step, the
 * optimizer, and what the loader reserves for them. A step is what
 * nntk_core's Sequential.train_step does, with the same calls in the same
 * order, so it gives the same bits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "nntk/loss.h"

const ModelOptimizerType nntk_model_optimizer_types[MODEL_OPTIMIZER_KINDS] = {
    [MODEL_SGD] = {"SGD", 3, {"learning_rate", "momentum", "nesterov"}, {0, 0, 1}, {0.01, 0.0, 0}},
    [MODEL_ADAM] = {"Adam",
                    5,
                    {"learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad"},
                    {0, 0, 0, 0, 1},
                    {0.001, 0.9, 0.999, 1e-7, 0}},
};

/* --- memory ------------------------------------------------------------------------------- */
void nntk_model_free(NNTKModel *model) {
    for (int32_t i = 0; model->layers != NULL && i < model->count; i++) {
        nntk_layer_gradient_destroy(model->layers[i].gradient, NULL);
        nntk_layer_destroy(model->layers[i].layer, NULL);
    }
    free(model->layers);
    nntk_layer_gradient_destroy(model->twin_gradient, NULL);
    nntk_layer_destroy(model->twin, NULL);
    nntk_free(model->buffers[0]);
    nntk_free(model->buffers[1]);
    free(model->params);
    free((void *)model->grads);
    free((void *)model->logits_grads);
    free(model->sizes);
    free(model->steps_at);
    NNTKOptimizerDestroy(model->optimizer);
    NNTKLayerChainDestroy(model->stream_chain);
    free(model->layers_json);
    model->tag = NNTK_TAG_DEAD;
    free(model);
}

NNTK_API void NNTKModelDestroy(NNTKModel *model) {
    if (model == NULL || model->tag != NNTK_MODEL_TAG) return;
    nntk_model_free(model);
}

/* The activation field of a layer, or -1. */
static int64_t activation_of(const NNTKLayer *layer) {
    const int32_t i = nntk_layer_field_index(layer->type, "activation");
    return i >= 0 ? layer->config.values[i].i : -1;
}

/* The head of Keras's logits path, and its twin for a Dense(softmax). */
static NNTKStatus make_head(const char *fn, NNTKModel *model) {
    const NNTKLayer *last = model->layers[model->count - 1].layer;
    if (activation_of(last) != NNTK_ACTIVATION_SOFTMAX) return NNTK_OK;
    if (strcmp(last->type->name, "Activation") == 0) {
        model->head = HEAD_ACTIVATION;
        return NNTK_OK;
    }
    if (strcmp(last->type->name, "Dense") != 0) return NNTK_OK;
    model->head = HEAD_DENSE;
    NNTKLayerValue values[NNTK_LAYER_MAX_FIELDS];
    memcpy(values, last->config.values, sizeof values);
    values[nntk_layer_field_index(last->type, "activation")].i = NNTK_ACTIVATION_LINEAR;
    NNTKLayerConfig *linear = nntk_layer_config_create(fn, last->type, values);
    if (linear == NULL) return NNTKLastStatus();
    const NNTKTrainingConfig capacity = {model->max_batch, model->max_steps};
    model->twin = nntk_layer_create(fn, NULL, linear, 1, &capacity);
    nntk_layer_config_destroy(linear, NULL);
    if (model->twin == NULL || (model->twin_gradient = nntk_layer_gradient_create(fn, NULL, model->twin)) == NULL)
        return NNTKLastStatus();
    return NNTK_OK;
}

/* The streaming chain of the layers (NNTKModelStream); a layer that cannot
 * stream leaves it NULL, its reason kept: not an error of the load. */
static NNTKStatus make_stream_chain(const char *fn, NNTKModel *model) {
    NNTKSavedError caller; /* a refused chain is not the load's failure */
    nntk_error_save(&caller);
    NNTKLayerChain *chain = NNTKLayerChainCreate(model->layers[0].layer, model->max_batch, model->max_steps);
    int32_t i = 0;
    NNTKStatus s = chain != NULL ? NNTK_OK : NNTKLastStatus();
    while (s == NNTK_OK && ++i < model->count) s = NNTKLayerChainAppend(chain, model->layers[i].layer);
    if (s == NNTK_OK) {
        model->stream_chain = chain;
        return NNTK_OK;
    }
    NNTKLayerChainDestroy(chain);
    if (s == NNTK_ERROR_OUT_OF_MEMORY) return nntk_relabel(fn, s);
    const char *reason = strstr(NNTKLastError(), ": layer ");
    snprintf(model->stream_refusal, sizeof model->stream_refusal, "layers[%d] %s", (int)i,
             reason != NULL ? reason + 8 : NNTKLastError());
    nntk_error_restore(&caller);
    return NNTK_OK;
}

NNTKStatus nntk_model_reserve(const char *fn, NNTKModel *model) {
    int64_t widest = 1, n_params = 0;
    for (int32_t i = 0; i < model->count; i++) {
        const ModelLayer *l = &model->layers[i];
        if (l->in_features > widest) widest = l->in_features;
        if (l->out_features > widest) widest = l->out_features;
        for (int32_t b = 0; b < l->block_count; b++) n_params += l->blocks[b].trainable;
    }
    /* max_batch * max_steps <= 2^31 (nntk_training_capacity), widest <= 2^24 */
    const int64_t floats = model->max_batch * model->max_steps * widest;
    if (floats > NNTK_MAX_ELEMENTS)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "%s: max_batch*max_steps*features = %lld*%lld*%lld exceeds the largest tensor "
                         "(%lld elements)",
                         fn, (long long)model->max_batch, (long long)model->max_steps, (long long)widest,
                         (long long)NNTK_MAX_ELEMENTS);
    for (int k = 0; k < 2; k++)
        if ((model->buffers[k] = nntk_alloc_floats(floats)) == NULL)
            return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for the activations", fn);
    NNTKStatus s;
    if ((s = make_head(fn, model)) != NNTK_OK || (s = make_stream_chain(fn, model)) != NNTK_OK) return s;
    const size_t n = (size_t)(n_params > 0 ? n_params : 1);
    model->params = malloc(n * sizeof *model->params);
    model->grads = malloc(n * sizeof *model->grads);
    model->logits_grads = malloc(n * sizeof *model->logits_grads);
    model->sizes = malloc(n * sizeof *model->sizes);
    model->steps_at = malloc((size_t)model->count * sizeof *model->steps_at);
    if (model->params == NULL || model->grads == NULL || model->logits_grads == NULL ||
        model->sizes == NULL || model->steps_at == NULL)
        return nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory", fn);
    int64_t p = 0;
    for (int32_t i = 0; i < model->count; i++) {
        const ModelLayer *l = &model->layers[i];
        const int head = model->head == HEAD_DENSE && i == model->count - 1;
        int64_t offset = 0;
        for (int32_t b = 0; b < l->block_count; b++) {
            const int64_t size = nntk_layer_block_size(&l->blocks[b]);
            if (l->blocks[b].trainable) {
                model->params[p] = l->layer->weights + offset;
                model->grads[p] = l->gradient->d_weights + offset;
                model->logits_grads[p] = (head ? model->twin_gradient->d_weights : l->gradient->d_weights) + offset;
                model->sizes[p] = size;
                model->parameter_total += size;
                p++;
            }
            offset += size;
        }
    }
    model->n_params = n_params;
    return NNTK_OK;
}

/* --- the optimizer ------------------------------------------------------------------------ */
NNTKStatus nntk_model_set_optimizer(const char *fn, NNTKModel *model, ModelOptimizerKind kind,
                                    const double *args) {
    NNTKOptimizer *optimizer = kind == MODEL_SGD
                                   ? NNTKOptimizerCreateSGD(args[0], args[1], (int32_t)args[2])
                                   : NNTKOptimizerCreateAdam(args[0], args[1], args[2], args[3],
                                                             (int32_t)args[4]);
    if (optimizer == NULL) return nntk_relabel(fn, NNTKLastStatus());
    if (model->n_params > 0) { /* its slots now: a step allocates nothing */
        int64_t count = 0;
        NNTKStatus s = NNTKOptimizerStateSize(optimizer, model->parameter_total, &count);
        float *zeros = NULL;
        if (s == NNTK_OK && (zeros = nntk_alloc_floats(count)) == NULL)
            s = nntk_fail(NNTK_ERROR_OUT_OF_MEMORY, "%s: out of memory for the optimizer's slots", fn);
        else if (s == NNTK_OK)
            s = nntk_relabel(fn, NNTKOptimizerSetState(optimizer, model->n_params, model->sizes, zeros,
                                                       count));
        nntk_free(zeros);
        if (s != NNTK_OK) {
            NNTKOptimizerDestroy(optimizer);
            return s;
        }
    }
    NNTKOptimizerDestroy(model->optimizer);
    model->optimizer = optimizer;
    model->optimizer_kind = kind;
    const ModelOptimizerType *t = &nntk_model_optimizer_types[kind];
    for (int32_t a = 0; a < t->arg_count; a++) model->optimizer_args[a] = args[a];
    model->optimizer_bound = 0;
    return NNTK_OK;
}

static NNTKStatus set_optimizer(const char *fn, NNTKModel *model, ModelOptimizerKind kind,
                                const double *args) {
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "model", model, NNTK_MODEL_TAG)) != NNTK_OK) return s;
    if ((s = nntk_call_enter(fn, "model", &model->in_call)) != NNTK_OK) return s;
    s = nntk_model_set_optimizer(fn, model, kind, args);
    nntk_call_leave(&model->in_call);
    return s;
}

NNTK_API NNTKStatus NNTKModelSetOptimizerSGD(NNTKModel *model, double learning_rate,
                                             double momentum, int32_t nesterov) {
    /* the flag checked here: a double would take any int32 */
    if (nesterov != 0 && nesterov != 1)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "NNTKModelSetOptimizerSGD: nesterov must be 0 or 1 (got %d)", (int)nesterov);
    const double args[] = {learning_rate, momentum, nesterov};
    return set_optimizer("NNTKModelSetOptimizerSGD", model, MODEL_SGD, args);
}

NNTK_API NNTKStatus NNTKModelSetOptimizerAdam(NNTKModel *model, double learning_rate,
                                              double beta_1, double beta_2, double epsilon,
                                              int32_t amsgrad) {
    if (amsgrad != 0 && amsgrad != 1)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT,
                         "NNTKModelSetOptimizerAdam: amsgrad must be 0 or 1 (got %d)", (int)amsgrad);
    const double args[] = {learning_rate, beta_1, beta_2, epsilon, amsgrad};
    return set_optimizer("NNTKModelSetOptimizerAdam", model, MODEL_ADAM, args);
}

NNTK_API NNTKStatus NNTKModelIterations(const NNTKModel *model, int64_t *iterations) {
    static const char fn[] = "NNTKModelIterations";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "model", model, NNTK_MODEL_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "iterations", iterations)) != NNTK_OK) return s;
    if (model->optimizer == NULL)
        return nntk_fail(NNTK_ERROR_INVALID_STATE,
                         "%s: model has no optimizer (NNTKModelSetOptimizerSGD / Adam)", fn);
    return nntk_relabel(fn, NNTKOptimizerIterations(model->optimizer, iterations));
}

/* --- shapes ------------------------------------------------------------------------------- */
NNTK_API NNTKStatus NNTKModelDescribe(const NNTKModel *model, int64_t *layer_count,
                                      int64_t *input_features, int64_t *weight_count) {
    static const char fn[] = "NNTKModelDescribe";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "model", model, NNTK_MODEL_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "layer_count", layer_count)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "input_features", input_features)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weight_count", weight_count)) != NNTK_OK) return s;
    *layer_count = model->count;
    *input_features = model->input_features;
    *weight_count = model->weight_count;
    return NNTK_OK;
}

/* Checks (batch, steps) against the capacity and through every layer's own
 * checks: steps_at[i] = the steps layer i takes (steps_at may be NULL),
 * *out_steps and *out_features the output's. */
static NNTKStatus chain(const char *fn, const NNTKModel *model, int64_t batch, int64_t steps,
                        int64_t *steps_at, int64_t *out_steps, int64_t *out_features) {
    NNTKStatus s;
    char message[512]; /* the layer's or the size check's message, then what it was about */
    if ((s = nntk_check_size(fn, "batch", batch, model->max_batch)) != NNTK_OK ||
        (s = nntk_check_size(fn, "steps", steps, model->max_steps)) != NNTK_OK) {
        snprintf(message, sizeof message, "%s", NNTKLastError());
        return nntk_fail(s, "%s (the capacity NNTKModelLoad reserved: max_batch %lld, max_steps %lld)",
                         message, (long long)model->max_batch, (long long)model->max_steps);
    }
    for (int32_t i = 0; i < model->count; i++) {
        if (steps_at != NULL) steps_at[i] = steps;
        if ((s = nntk_layer_output_shape(fn, NULL, model->layers[i].layer, batch, steps, &steps,
                                         out_features)) != NNTK_OK) {
            snprintf(message, sizeof message, "%s", NNTKLastError());
            return nntk_fail(s, "%s (layers[%d], %s)", message, (int)i, model->layers[i].layer->type->name);
        }
    }
    *out_steps = steps;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKModelOutputShape(const NNTKModel *model, int64_t batch, int64_t steps,
                                         int64_t *out_steps, int64_t *out_features) {
    static const char fn[] = "NNTKModelOutputShape";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "model", model, NNTK_MODEL_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_steps", out_steps)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out_features", out_features)) != NNTK_OK) return s;
    int64_t o_steps, o_features;
    if ((s = chain(fn, model, batch, steps, NULL, &o_steps, &o_features)) != NNTK_OK) return s;
    *out_steps = o_steps;
    *out_features = o_features;
    return NNTK_OK;
}

/* --- inference ---------------------------------------------------------------------------- */
/* Runs layers [0, count) in `mode` from `in`; the last one writes `out` (NULL:
 * a buffer, returned in *result). steps_at from chain. */
static NNTKStatus forward(const char *fn, NNTKModel *model, int32_t count, NNTKApplyMode mode,
                          int64_t batch, const int64_t *steps_at, const float *in, float *out,
                          const float **result) {
    const float *x = in;
    for (int32_t i = 0; i < count; i++) {
        float *y = (i == count - 1 && out != NULL) ? out
                   : (x == model->buffers[0])       ? model->buffers[1]
                                                     : model->buffers[0];
        const NNTKStatus s =
            nntk_layer_apply(fn, NULL, model->layers[i].layer, mode, batch, steps_at[i], x, NULL, y, NULL);
        if (s != NNTK_OK) return s;
        x = y;
    }
    *result = x;
    return NNTK_OK;
}

static NNTKStatus apply_in_call(const char *fn, NNTKModel *model, int64_t batch, int64_t steps,
                                const float *in, float *out) {
    int64_t *steps_at = model->steps_at, out_steps, features;
    NNTKStatus s = chain(fn, model, batch, steps, steps_at, &out_steps, &features);
    const float *result;
    if (s == NNTK_OK)
        s = forward(fn, model, model->count, NNTK_APPLY_INFERENCE, batch, steps_at, in, out, &result);
    return s;
}

NNTK_API NNTKStatus NNTKModelApplyInference(NNTKModel *model, int64_t batch, int64_t steps,
                                            const float *in, float *out) {
    static const char fn[] = "NNTKModelApplyInference";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "model", model, NNTK_MODEL_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "in", in)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out", out)) != NNTK_OK) return s;
    if ((s = nntk_call_enter(fn, "model", &model->in_call)) != NNTK_OK) return s;
    s = apply_in_call(fn, model, batch, steps, in, out);
    nntk_call_leave(&model->in_call);
    return s;
}

/* --- streaming ---------------------------------------------------------------------------- */
/* The streaming chain, or the refusal naming the layer that cannot stream. */
static NNTKStatus stream_chain(const char *fn, const NNTKModel *model) {
    if (model->stream_chain == NULL)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: the model cannot stream: %s", fn,
                         model->stream_refusal);
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKModelStreamStates(const NNTKModel *model, int64_t *state_width) {
    static const char fn[] = "NNTKModelStreamStates";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "model", model, NNTK_MODEL_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "state_width", state_width)) != NNTK_OK) return s;
    if ((s = stream_chain(fn, model)) != NNTK_OK) return s;
    int64_t layers, in, out;
    return nntk_relabel(fn, NNTKLayerChainDescribe(model->stream_chain, &layers, &in, &out, state_width));
}

NNTK_API NNTKStatus NNTKModelStream(NNTKModel *model, int64_t batch, int64_t steps, const float *in,
                                    const float *initial_states, float *out, float *final_states) {
    static const char fn[] = "NNTKModelStream";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "model", model, NNTK_MODEL_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "in", in)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "out", out)) != NNTK_OK) return s;
    if ((s = stream_chain(fn, model)) != NNTK_OK) return s;
    if ((s = nntk_call_enter(fn, "model", &model->in_call)) != NNTK_OK) return s;
    /* the capacity and the layers' checks as ApplyInference's, with its messages */
    int64_t out_steps, out_features;
    s = chain(fn, model, batch, steps, NULL, &out_steps, &out_features);
    if (s == NNTK_OK)
        s = nntk_relabel(fn, NNTKLayerChainStream(model->stream_chain, batch, steps, in, initial_states,
                                                  out, final_states));
    nntk_call_leave(&model->in_call);
    return s;
}

NNTK_API NNTKStatus NNTKModelGetWeights(NNTKModel *model, float *weights, int64_t count) {
    static const char fn[] = "NNTKModelGetWeights";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "model", model, NNTK_MODEL_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "weights", weights)) != NNTK_OK) return s;
    if (count != model->weight_count)
        return nntk_fail(NNTK_ERROR_INVALID_ARGUMENT, "%s: count must be the model's %lld weights (got %lld)",
                         fn, (long long)model->weight_count, (long long)count);
    if ((s = nntk_call_enter(fn, "model", &model->in_call)) != NNTK_OK) return s;
    for (int32_t i = 0; i < model->count; i++) {
        const NNTKLayer *l = model->layers[i].layer;
        if (l->weight_count > 0) memcpy(weights, l->weights, (size_t)l->weight_count * sizeof *weights);
        weights += l->weight_count;
    }
    nntk_call_leave(&model->in_call);
    return NNTK_OK;
}

/* --- training ----------------------------------------------------------------------------- */
static const float *other(const NNTKModel *model, const float *buffer) {
    return buffer == model->buffers[0] ? model->buffers[1] : model->buffers[0];
}

static NNTKStatus train_in_call(const char *fn, NNTKModel *model, int32_t loss, int32_t from_logits,
                                int64_t batch, int64_t steps, const float *x, const float *y,
                                float *loss_value) {
    NNTKStatus s;
    int64_t *steps_at = model->steps_at, out_steps, features;
    if ((s = chain(fn, model, batch, steps, steps_at, &out_steps, &features)) != NNTK_OK) return s;
    if (model->optimizer == NULL)
        return nntk_fail(NNTK_ERROR_INVALID_STATE,
                         "%s: model has no optimizer (its file holds none: NNTKModelSetOptimizerSGD / "
                         "Adam)",
                         fn);
    if (model->n_params == 0)
        return nntk_fail(NNTK_ERROR_INVALID_STATE, "%s: model has no trainable weights", fn);
    /* Keras's implicit logits path (docs/KERAS_SEMANTICS.md §9) */
    const int logits = model->head != HEAD_NONE && loss == NNTK_LOSS_CATEGORICAL_CROSSENTROPY && !from_logits;
    const int32_t body = logits ? model->count - 1 : model->count;
    const int64_t rows = batch * out_steps;
    /* forward: the body in training mode (the caller's x never written) */
    const float *prediction = x;
    if (body > 0 && (s = forward(fn, model, body, NNTK_APPLY_TRAINING, batch, steps_at, x, NULL,
                                 &prediction)) != NNTK_OK)
        return s;
    NNTKLayer *last = model->layers[model->count - 1].layer;
    if (logits && model->head == HEAD_DENSE) {
        memcpy(model->twin->weights, last->weights, (size_t)last->weight_count * sizeof *last->weights);
        float *z = (float *)(body > 0 ? other(model, prediction) : model->buffers[0]);
        if ((s = nntk_layer_apply(fn, NULL, model->twin, NNTK_APPLY_TRAINING, batch, steps_at[body],
                                  prediction, NULL, z, NULL)) != NNTK_OK)
            return s;
        prediction = z;
    }
    float *d = (float *)(prediction == model->buffers[0] ? model->buffers[1] : model->buffers[0]);
    float value;
    if ((s = NNTKLossCompute(loss, logits ? 1 : from_logits, rows, features, prediction, y, &value, d)) !=
        NNTK_OK)
        return nntk_relabel(fn, s);
    /* backward */
    if (logits && model->head == HEAD_DENSE) {
        float *d_in = body > 0 ? (float *)other(model, d) : NULL;
        if ((s = nntk_layer_calculate_gradient(fn, NULL, model->twin, model->twin_gradient, d, NULL, d_in,
                                               NULL)) != NNTK_OK)
            return s;
        d = d_in;
    }
    for (int32_t i = body - 1; i >= 0; i--) {
        float *d_in = i > 0 ? (float *)other(model, d) : NULL; /* no input gradient for x */
        if ((s = nntk_layer_calculate_gradient(fn, NULL, model->layers[i].layer, model->layers[i].gradient,
                                               d, NULL, d_in, NULL)) != NNTK_OK)
            return s;
        d = d_in;
    }
    const float *const *grads = (logits && model->head == HEAD_DENSE) ? model->logits_grads : model->grads;
    if ((s = NNTKOptimizerStep(model->optimizer, model->n_params, model->params, grads, model->sizes)) !=
        NNTK_OK)
        return nntk_relabel(fn, s);
    model->optimizer_bound = 1;
    *loss_value = value;
    return NNTK_OK;
}

NNTK_API NNTKStatus NNTKModelTrainStep(NNTKModel *model, int32_t loss, int32_t from_logits,
                                       int64_t batch, int64_t steps, const float *x,
                                       const float *y, float *loss_value) {
    static const char fn[] = "NNTKModelTrainStep";
    NNTKStatus s;
    if ((s = nntk_check_handle(fn, "model", model, NNTK_MODEL_TAG)) != NNTK_OK) return s;
    if ((s = nntk_check_loss(fn, "loss", loss, from_logits)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "x", x)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "y", y)) != NNTK_OK) return s;
    if ((s = nntk_check_pointer(fn, "loss_value", loss_value)) != NNTK_OK) return s;
    if ((s = nntk_call_enter(fn, "model", &model->in_call)) != NNTK_OK) return s;
    s = train_in_call(fn, model, loss, from_logits, batch, steps, x, y, loss_value);
    nntk_call_leave(&model->in_call);
    return s;
}

/* --- CRC-32 (zlib.crc32), four bits at a time ---------------------------------------------- */
uint32_t nntk_crc32(uint32_t crc, const unsigned char *data, size_t length) {
    static const uint32_t table[16] = {0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC,
                                       0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
                                       0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
                                       0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C};
    crc = ~crc;
    for (size_t i = 0; i < length; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ table[crc & 15];
        crc = (crc >> 4) ^ table[crc & 15];
    }
    return ~crc;
}
