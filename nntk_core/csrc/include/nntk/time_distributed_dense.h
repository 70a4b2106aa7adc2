/* TimeDistributedDense: tf.keras TimeDistributed(Dense(...)). Dense applied to
 * every time step; implemented by calling the Dense layer (nntk/dense.h) on
 * the (B·T, D) reshaped input, which is what Keras does for built-in layers.
 *
 * Input (B, T, D) float32 row-major; output (B, T, U).
 * Weights: kernel (D, U), then bias (U,) when use_bias (Keras order).
 * Gradients: NNTKTimeDistributedDenseCalculateGradient overwrites the gradient
 * buffers with the gradients of the last ApplyTrainingBatch, summed over batch
 * and time: exactly what tf.GradientTape.gradient(y, [x] + weights,
 * output_gradients=d_out) returns. */
#ifndef NNTK_TIME_DISTRIBUTED_DENSE_H
#define NNTK_TIME_DISTRIBUTED_DENSE_H

#include "nntk/layer_functions.h"
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TimeDistributedDense's standard functions (nntk/layer_functions.h):
 * OutputShape gives out_steps = steps, out_features = U; Apply*: in (batch,
 * steps, D) -> out (batch, steps, U); CalculateGradient: d_out (batch, steps, U)
 * -> d_in (batch, steps, D). */
NNTK_DECLARE_LAYER(TimeDistributedDense)

NNTK_API NNTKTimeDistributedDenseConfig *NNTKTimeDistributedDenseConfigCreate(int64_t input_dim,
                                                                              int64_t units,
                                                                              int32_t activation,
                                                                              int32_t use_bias);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_TIME_DISTRIBUTED_DENSE_H */
