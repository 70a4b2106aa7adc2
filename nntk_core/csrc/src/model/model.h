/* The model (nntk/model.h): what the loader (model/load.c) builds, the runtime
 * (model/model.c) runs and the writer (model/save.c) saves. Not part of the
 * public API. */
#ifndef NNTK_MODEL_INTERNAL_H
#define NNTK_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"
#include "core/layer.h"
#include "nntk/model.h"
#include "nntk/optimizer.h"

#define NNTK_MODEL_TAG NNTK_TAG('M', 'o', 'd', 'l')

/* The model file (docs/MODEL_FILE.md). */
#define NNTK_MODEL_MAGIC "\x89NTK\r\n\x1a\n"
#define NNTK_MODEL_MAGIC_SIZE 8
#define NNTK_MODEL_VERSION 2

/* The optimizer types of the file, by their Python class names, with their
 * constructor arguments in get_config() order (nntk_core/optimizers.py) and
 * defaults (a file's config may leave an argument out, as Python's cls(**config)
 * takes its default). */
typedef enum ModelOptimizerKind { MODEL_SGD = 0, MODEL_ADAM = 1, MODEL_OPTIMIZER_KINDS = 2 } ModelOptimizerKind;
#define MODEL_OPTIMIZER_MAX_ARGS 5
typedef struct ModelOptimizerType {
    const char *name;
    int32_t arg_count;
    const char *args[MODEL_OPTIMIZER_MAX_ARGS];
    int32_t is_flag[MODEL_OPTIMIZER_MAX_ARGS]; /* a bool argument (JSON true / false) */
    double defaults[MODEL_OPTIMIZER_MAX_ARGS];
} ModelOptimizerType;
extern const ModelOptimizerType nntk_model_optimizer_types[MODEL_OPTIMIZER_KINDS];

typedef struct ModelLayer {
    NNTKLayer *layer; /* created for training with the model's capacity */
    NNTKLayerGradient *gradient;
    int64_t in_features, out_features;
    int32_t block_count;
    NNTKWeightBlock blocks[NNTK_LAYER_MAX_WEIGHTS];
} ModelLayer;

struct NNTKModel {
    uint32_t tag;
    atomic_flag in_call; /* one call at a time (docs/DESIGN.md §3) */
    int32_t count;
    ModelLayer *layers; /* (count,) */
    int64_t max_batch, max_steps;
    int64_t input_features, weight_count;
    /* Two activation buffers of max_batch * max_steps * the widest layer side:
     * the forward pass and the backward pass alternate between them. */
    float *buffers[2];
    /* The trainable blocks, in Sequential.trainable_variables() order: the
     * optimizer's list (params, sizes) and the gradients (grads; logits_grads
     * for the logits path of a Dense(softmax) head: its blocks in the twin's
     * gradient). */
    int64_t n_params, parameter_total;
    float **params;
    const float **grads, **logits_grads;
    int64_t *sizes;
    int64_t *steps_at; /* (count,): the steps each layer takes in the current call */
    /* The softmax head of Keras's implicit logits path (docs/KERAS_SEMANTICS.md §9):
     * HEAD_ACTIVATION, the last layer is Activation("softmax") (the logits are
     * its input); HEAD_DENSE, a Dense(softmax), whose logits come from `twin`,
     * a linear Dense given the last layer's weights at every step. */
    enum { HEAD_NONE, HEAD_ACTIVATION, HEAD_DENSE } head;
    NNTKLayer *twin;
    NNTKLayerGradient *twin_gradient;
    /* The optimizer (NULL: none), its kind and constructor arguments (saved as
     * the file's "config"), and whether its variables are bound (the file gave
     * variable_shapes, or a step ran: Python's get_state then has them). */
    NNTKOptimizer *optimizer;
    ModelOptimizerKind optimizer_kind;
    double optimizer_args[MODEL_OPTIMIZER_MAX_ARGS];
    int32_t optimizer_bound;
    /* Streaming (NNTKModelStream): a chain of the layers (its own activation
     * buffers, the capacity's), or NULL when a layer cannot stream: then
     * stream_refusal holds why (the chain's message, naming layers[i]). */
    NNTKLayerChain *stream_chain;
    char stream_refusal[320];
    /* The config's "layers" value as the file held it (saved verbatim: the
     * layers do not change). */
    char *layers_json;
    size_t layers_json_length;
};

/* model/model.c: creates `kind`'s optimizer from args (its typed function's
 * checks, messages relabelled with fn), with zero slots for the model's
 * trainable blocks; replaces the model's on success. */
NNTKStatus nntk_model_set_optimizer(const char *fn, NNTKModel *model, ModelOptimizerKind kind,
                                    const double *args);
/* model/model.c: frees everything the model holds (any part may be NULL). */
void nntk_model_free(NNTKModel *model);
/* model/model.c: the trainable blocks' lists and the activation buffers, once
 * the layers exist. */
NNTKStatus nntk_model_reserve(const char *fn, NNTKModel *model);

/* CRC-32 of zip, PNG and zlib.crc32, continuing from crc (0 to start). */
uint32_t nntk_crc32(uint32_t crc, const unsigned char *data, size_t length);

#endif /* NNTK_MODEL_INTERNAL_H */
