/* Losses for on-device training, with tf.keras (tf_keras 2.21) semantics and
 * Keras's default reduction SUM_OVER_BATCH_SIZE.
 *
 * Shapes: a prediction / target of shape (B, C) or (B, T, C), row-major
 * float32, is passed as rows = B (or B·T) and classes = C. The loss of each of
 * the `rows` positions is computed over the class axis, and the result is the
 * mean over the `rows` positions: for a (B, T, C) target that averages over
 * both batch and time steps, as Keras does.
 *
 *   NNTK_LOSS_MEAN_SQUARED_ERROR (keras.losses.MeanSquaredError)
 *     loss   = (1/rows) Σ_r (1/C) Σ_c (ŷ − y)²
 *     d_pred = 2(ŷ − y) / (rows·C)
 *
 *   NNTK_LOSS_CATEGORICAL_CROSSENTROPY, from_logits = 0
 *   (keras.losses.CategoricalCrossentropy() on probabilities)
 *     per row: s = Σ_c p_c;  q = p / s (renormalised);  q̃ = clip(q, 1e-7, 1 − 1e-7)
 *     loss   = (1/rows) Σ_r −Σ_c y_c log q̃_c
 *     d_pred = the exact derivative of that, renormalisation included:
 *              with g_c = −y_c / q̃_c where 1e-7 <= q_c <= 1 − 1e-7 and 0 where the
 *              clip is active, d_pred_c = (g_c − Σ_k g_k q_k) / (s·rows). With no
 *              clipping this is (−y_c/p_c + Σy/Σp) / rows.
 *
 *   NNTK_LOSS_CATEGORICAL_CROSSENTROPY, from_logits = 1
 *   (keras.losses.CategoricalCrossentropy(from_logits=True))
 *     loss   = (1/rows) Σ_r Σ_c y_c (logsumexp(z) − z_c)
 *     d_pred = (softmax(z) − y) / rows: TensorFlow's softmax_cross_entropy
 *              kernel gradient, which is what Keras returns even when Σ_c y_c ≠ 1
 *              (then it is not the true derivative, which would be
 *              (softmax(z)·Σy − y)/rows).
 *
 * The sums and the gradient are computed in double and rounded once to float32,
 * so the results are closer to tf.keras in float64 than tf.keras in float32 is.
 * Non-finite inputs propagate as in tf.keras (a row whose probabilities sum to
 * zero gives inf/NaN); they are not an error. */
#ifndef NNTK_LOSS_H
#define NNTK_LOSS_H

#include "nntk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum NNTKLossKind {
    NNTK_LOSS_MEAN_SQUARED_ERROR = 0,
    NNTK_LOSS_CATEGORICAL_CROSSENTROPY = 1,
    NNTK_LOSS_COUNT_ = 2 /* not a loss: the number of kinds */
} NNTKLossKind;

/* kind: an NNTKLossKind. from_logits: 0 or 1 (1 only for the cross-entropy).
 * rows >= 1, classes >= 1 (rows·classes at most 2^31).
 * y_pred (rows, classes), y_true (rows, classes): the prediction and the target.
 * *loss = the reduced loss (a scalar).
 * d_pred (rows, classes) = d loss / d y_pred, or NULL to skip the gradient;
 * it must not overlap y_pred or y_true. */
NNTK_API NNTKStatus NNTKLossCompute(int32_t kind, int32_t from_logits, int64_t rows, int64_t classes,
                                    const float *y_pred, const float *y_true, float *loss,
                                    float *d_pred);

#ifdef __cplusplus
}
#endif

#endif /* NNTK_LOSS_H */
