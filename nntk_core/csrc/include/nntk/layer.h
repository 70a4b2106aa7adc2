/* The layer description: every layer is one NNTKLayerType value (its config
 * fields, its weight blocks, its ops), and every layer's handles are handles
 * of the generic layer machinery (src/core/layer.c). The typed functions of
 * each layer's header (NNTKDenseCreateForTraining, ...) are thin wrappers over
 * it, so NNTKDense and NNTKLayer handles are the same objects under distinct
 * C types.
 *
 * This header holds the types of the description; the query and generic
 * handle functions over them are declared here as they are exported. */
#ifndef NNTK_LAYER_H
#define NNTK_LAYER_H

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One layer's description (constant, owned by the library). */
typedef struct NNTKLayerType NNTKLayerType;
/* A validated configuration of some layer type. */
typedef struct NNTKLayerConfig NNTKLayerConfig;
/* A layer handle and its weight-gradient handle. */
typedef struct NNTKLayer NNTKLayer;
typedef struct NNTKLayerGradient NNTKLayerGradient;

/* What a config field holds. Every value travels as a double in the generic
 * API; INT fields are whole numbers in [min, max], BOOL 0 or 1, ENUM an index
 * into the field's value names. */
typedef enum NNTKFieldKind {
    NNTK_FIELD_INT = 0,
    NNTK_FIELD_BOOL = 1,
    NNTK_FIELD_ENUM = 2,
    NNTK_FIELD_FLOAT = 3
} NNTKFieldKind;

/* How a forward pass runs. TRAINING and FROZEN keep what the gradient needs
 * (training handles only); FROZEN computes as INFERENCE does (moving
 * statistics: Keras training=False inside a training step), and is TRAINING
 * for a layer whose forward pass does not depend on the flag. */
typedef enum NNTKApplyMode {
    NNTK_APPLY_INFERENCE = 0,
    NNTK_APPLY_TRAINING = 1,
    NNTK_APPLY_FROZEN = 2
} NNTKApplyMode;

#ifdef __cplusplus
}
#endif

#endif /* NNTK_LAYER_H */
