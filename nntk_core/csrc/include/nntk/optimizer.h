/* Optimizers for on-device training, with exactly tf_keras 2.21's update forms
 * (the new keras.optimizers.SGD and Adam), every operation rounded to float32
 * in tf.keras's order, so that a step reproduces tf.keras's apply_gradients
 * bit for bit on the same parameters and gradients.
 *
 * An optimizer updates a list of parameter blocks in place: block i is
 * params[i] (sizes[i] floats) with its gradient grads[i]. Its slots (SGD: m;
 * Adam: m, v, and v̂ with amsgrad) are keyed by position in that list: they are
 * created, zero, at the first NNTKOptimizerStep, and every later step must pass
 * a list of the same shape (the same n_params and sizes) — otherwise the step
 * fails and nothing is updated. `iterations` counts the completed steps; it is
 * incremented once per step, after all blocks (tf.keras: t = iterations + 1 in
 * the update).
 *
 * Hyperparameters are passed as double, the way Keras receives Python floats,
 * and rounded the way tf_keras rounds them: learning_rate, momentum, β and
 * epsilon to float32, while 1 − β is computed in double and then rounded
 * (passing β as a float32 instead would give different bits: 1 − 0.9f is not
 * float32(1 − 0.9)). Pass the same literal you would give Keras.
 *
 * SGD(learning_rate, momentum μ, nesterov), per element, float32:
 *     m ← (−g·lr) + m·μ
 *     w ← w + m,  or with nesterov  w ← w + ((−g·lr) + m·μ)  (the new m)
 *   The slot m exists and is updated also when μ = 0, as in tf.keras.
 *
 * Adam(learning_rate, β₁, β₂, ε, amsgrad), t = iterations + 1, float32:
 *     α = (lr·√(1 − β₂ᵗ)) / (1 − β₁ᵗ),   βᵗ = powf(β, (float)t)
 *     m ← m + (g − m)·(1 − β₁)
 *     v ← v + (g² − v)·(1 − β₂)
 *     amsgrad: v̂ ← max(v̂, v), and v̂ replaces v below
 *     w ← w − (m·α) / (√v + ε)          (ε added to √v of the uncorrected v)
 *
 * Differences from TensorFlow that remain: TF's CPU kernels flush subnormal
 * results to zero and this library does not (only values below ~1.2e-38 are
 * affected); βᵗ uses the C library's powf, which matched TF on glibc. */
#ifndef NNTK_OPTIMIZER_H
#define NNTK_OPTIMIZER_H

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NNTKOptimizer NNTKOptimizer;

/* learning_rate > 0 and finite (also after rounding to float32); momentum in
 * [0, 1]; nesterov 0 or 1. Keras defaults: (0.01, 0.0, 0). NULL on error. */
NNTK_API NNTKOptimizer *NNTKOptimizerCreateSGD(double learning_rate, double momentum,
                                               int32_t nesterov);

/* learning_rate > 0 and finite; beta_1, beta_2 in [0, 1) (and below 1 after
 * rounding to float32); epsilon >= 0 and finite; amsgrad 0 or 1.
 * Keras defaults: (0.001, 0.9, 0.999, 1e-7, 0). NULL on error. */
NNTK_API NNTKOptimizer *NNTKOptimizerCreateAdam(double learning_rate, double beta_1, double beta_2,
                                                double epsilon, int32_t amsgrad);

/* NULL-safe. */
NNTK_API void NNTKOptimizerDestroy(NNTKOptimizer *optimizer);

/* One step over n_params >= 1 blocks: params[i] (sizes[i],) is updated in place
 * from grads[i] (sizes[i],); sizes[i] >= 1. The list must keep the shape of the
 * first step (see above). All arguments are checked before anything is
 * updated: on error no block, slot or the iteration count changes. */
NNTK_API NNTKStatus NNTKOptimizerStep(NNTKOptimizer *optimizer, int64_t n_params,
                                      float *const *params, const float *const *grads,
                                      const int64_t *sizes);

/* *iterations = the number of completed steps. */
NNTK_API NNTKStatus NNTKOptimizerIterations(const NNTKOptimizer *optimizer, int64_t *iterations);

/* Changes the learning rate for the following steps (as assigning Keras's
 * optimizer.learning_rate); same rules as at creation. */
NNTK_API NNTKStatus NNTKOptimizerSetLearningRate(NNTKOptimizer *optimizer, double learning_rate);

/* The state, to save an optimizer and restore it (e.g. in a model file).
 * Restoring the slots (SetState) and the step count (SetIterations) into a new
 * optimizer created with the same hyperparameters makes its next steps
 * bit-identical to the saved optimizer's.
 *
 * The state of a list of blocks (n_params, sizes, as passed to Step) is
 * slot_count · Σ sizes floats, slot by slot: [m] for SGD, [m, v] for Adam and
 * [m, v, v̂] with amsgrad; within a slot, block after block in list order.
 * *count = that length for parameter_count = Σ sizes parameters (in
 * [1, 2^31]). */
NNTK_API NNTKStatus NNTKOptimizerStateSize(const NNTKOptimizer *optimizer, int64_t parameter_count,
                                           int64_t *count);

/* Copies the slots into state (count floats, count as StateSize gives for
 * Σ sizes). Once the slots exist (after the first Step or SetState), n_params
 * and sizes must be their list's; before, any valid list is accepted and the
 * state is all zero (the slots the first step would create). On error nothing
 * is written. */
NNTK_API NNTKStatus NNTKOptimizerGetState(const NNTKOptimizer *optimizer, int64_t n_params,
                                          const int64_t *sizes, float *state, int64_t count);

/* Replaces the slots with state (count floats, laid out as above). Before the
 * first step this creates the slots for the list (n_params, sizes), fixing the
 * list every later Step must pass, as a first step would; after, the list must
 * be theirs. The step count is left as it is. All arguments are checked first:
 * on error nothing changes. */
NNTK_API NNTKStatus NNTKOptimizerSetState(NNTKOptimizer *optimizer, int64_t n_params,
                                          const int64_t *sizes, const float *state, int64_t count);

/* Sets the number of completed steps (Adam's bias correction uses t =
 * iterations + 1 at the next step); iterations in [0, 2^62], 0 being a new
 * optimizer's. */
NNTK_API NNTKStatus NNTKOptimizerSetIterations(NNTKOptimizer *optimizer, int64_t iterations);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_OPTIMIZER_H */
