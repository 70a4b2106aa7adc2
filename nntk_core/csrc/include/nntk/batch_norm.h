/* BatchNorm: tf.keras BatchNormalization over the last axis (axis=-1) of a
 * (B, T, C) input, or of a (B, C) input passed as steps = 1. Statistics are
 * taken over the N = B·T positions of each channel.
 *
 * Training (NNTKBatchNormApplyTrainingBatch), per channel:
 *   μ = Σx/N,  σ² = Σ(x−μ)²/N   (biased, two-pass, accumulated in double),
 *   inv = γ/√(σ²+ε),  y = x·inv + (β − μ·inv),
 * and the moving statistics are updated in place (no Bessel correction):
 *   moving_mean     −= (moving_mean − μ)·(1 − momentum)
 *   moving_variance −= (moving_variance − σ²)·(1 − momentum).
 * Inference (NNTKBatchNormApplyInference): the same y with moving_mean and
 * moving_variance in place of μ and σ²; nothing is changed.
 * scale = 0 means γ = 1 and center = 0 means β = 0 (and they are not stored).
 *
 * Weights: one contiguous block in tf.keras get_weights() order:
 *   gamma (C,) if scale, beta (C,) if center, moving_mean (C,),
 *   moving_variance (C,).
 * Create initialises them as tf.keras does: gamma 1, beta 0, moving_mean 0,
 * moving_variance 1.
 *
 * Gradients: NNTKBatchNormCalculateGradient overwrites the gradient buffers
 * with the gradients of the last NNTKBatchNormApplyTrainingBatch or
 * NNTKBatchNormApplyFrozenBatch, summed over the batch: exactly what
 * tf.GradientTape.gradient(y, [x] + weights, output_gradients=d_out) returns
 * for layer(x, training=True) or layer(x, training=False) respectively.
 * With x̂ = (x−μ)/√(σ²+ε):
 *   after a training batch:  dβ = ΣdY, dγ = Σ dY⊙x̂,
 *                            dx = γ/√(σ²+ε)/N · (N·dY − ΣdY − x̂·Σ(dY⊙x̂));
 *   after a frozen batch:    dβ = ΣdY, dγ = Σ dY⊙(x−mm)/√(mv+ε),
 *                            dx = dY·γ/√(mv+ε).
 * The gradient block has the layout of the weights; the moving-statistics
 * slots are 0 (they receive no gradient). */
#ifndef NNTK_BATCH_NORM_H
#define NNTK_BATCH_NORM_H

#include "nntk/layer_functions.h"
#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* BatchNorm's standard functions (nntk/layer_functions.h): the weights start at
 * the tf.keras initial values (see above); OutputShape gives out_steps = steps,
 * out_features = C; ApplyInference: in (batch, steps, C) -> out (batch, steps,
 * C) with the moving statistics, changing nothing and using no workspace;
 * ApplyTrainingBatch: with the batch statistics, updating the moving statistics;
 * CalculateGradient: d_out (batch, steps, C) of the last training or frozen
 * batch -> d_in (batch, steps, C). */
NNTK_DECLARE_LAYER(BatchNorm)

/* input_dim C >= 1, momentum finite in [0, 1], epsilon finite and > 0,
 * center and scale 0 or 1. NULL on error (see NNTKLastError).
 *
 * momentum and epsilon are doubles, as the Python floats tf.keras is given:
 * the decay is float32(1 − momentum), exactly as tf.keras rounds it. Taking a
 * float momentum would round it first, and 1 − float32(momentum) loses the
 * decay's precision near 1 (momentum 0.999: a 1.3e-5 relative error in the
 * decay, so in every moving-statistics update). */
NNTK_API NNTKBatchNormConfig *NNTKBatchNormConfigCreate(int64_t input_dim, double momentum,
                                                        double epsilon, int32_t center,
                                                        int32_t scale);

/* Inference mode (the same output as NNTKBatchNormApplyInference, moving
 * statistics unchanged) that also keeps what the gradient needs, so that
 * NNTKBatchNormCalculateGradient then returns the inference-mode gradients
 * (those of tf.keras layer(x, training=False)). Training handles only. */
NNTK_API NNTKStatus NNTKBatchNormApplyFrozenBatch(NNTKBatchNorm *filter, int64_t batch,
                                                  int64_t steps, const float *in, float *out);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_BATCH_NORM_H */
