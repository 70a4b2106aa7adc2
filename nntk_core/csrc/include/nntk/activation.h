/* Activation: y = act(x), elementwise, or over the last axis for softmax
 * (tf.keras Activation layer; docs/KERAS_SEMANTICS.md §8).
 *
 * Input (B, T, F) float32 row-major, or (B, F) passed as steps = 1; output of
 * the same shape. No weights (GetWeights gives count 0).
 *
 * Gradients: NNTKActivationCalculateGradient writes the input gradient of the
 * last NNTKActivationApplyTrainingBatch: exactly what
 * tf.GradientTape.gradient(y, x, output_gradients=d_out) returns. */
#ifndef NNTK_ACTIVATION_H
#define NNTK_ACTIVATION_H

#include "nntk/layer_functions.h"
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Activation's standard functions (nntk/layer_functions.h), F = features:
 * OutputShape gives out_steps = steps, out_features = F; ApplyInference and
 * ApplyTrainingBatch: in (batch, steps, F) -> out (batch, steps, F), out may
 * equal in. No weights: GetWeights and GradientGetWeights give NULL and 0;
 * CalculateGradient: d_out (batch, steps, F) -> d_in (batch, steps, F) (nothing
 * is computed when d_in is NULL). */
NNTK_DECLARE_LAYER(Activation)

/* kind a NNTKActivationKind; features F >= 1 is the last axis. */
NNTK_API NNTKActivationConfig *NNTKActivationConfigCreate(int32_t kind, int64_t features);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_ACTIVATION_H */
