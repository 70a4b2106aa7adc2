"""Losses over the native library (nntk/loss.h), with tf.keras's semantics.

    import nntk_core as nn
    loss = nn.losses.CategoricalCrossentropy(from_logits=True)
    value = loss(y_true, y_pred)                      # a float, like Keras
    value, d_pred = loss.gradient(y_true, y_pred)     # and d value / d y_pred

Arguments come in Keras's order: target first, prediction second. Both are
(batch, classes) or (batch, steps, classes) and have the same shape. The value
is Keras's default reduction (SUM_OVER_BATCH_SIZE): the mean of the per-position
losses over batch (and steps). Sums are taken in double in the native library.
"""

from __future__ import annotations

import ctypes

import numpy as np

from nntk_core._native import lib
from nntk_core.layer import as_float32, check_bool, float_ptr

__all__ = ["CategoricalCrossentropy", "Loss", "MeanSquaredError"]

# NNTKLossKind (nntk/loss.h).
_MEAN_SQUARED_ERROR = 0
_CATEGORICAL_CROSSENTROPY = 1


class Loss:
    """Base class: `loss(y_true, y_pred) -> float`, `loss.gradient(y_true, y_pred)`."""

    _kind: int = -1

    def __init__(self, name: str):
        self.name = name

    def _from_logits(self) -> int:
        return 0

    def _prepare(self, y_true, y_pred) -> tuple[np.ndarray, np.ndarray, int, int]:
        pred = as_float32(y_pred, "y_pred")
        if pred.ndim not in (2, 3):
            raise ValueError(
                "y_pred must be (batch, classes) or (batch, steps, classes), "
                f"got shape {pred.shape}"
            )
        if pred.size == 0:
            raise ValueError(f"y_pred is empty (shape {pred.shape})")
        true = as_float32(y_true, "y_true")
        if true.ndim != pred.ndim:
            raise ValueError(
                f"y_true must have the rank of y_pred ({pred.ndim}): y_true has shape "
                f"{true.shape}, y_pred {pred.shape}"
            )
        if true.shape != pred.shape:
            raise ValueError(
                f"y_true and y_pred must have the same shape: y_true {true.shape}, "
                f"y_pred {pred.shape}"
            )
        classes = pred.shape[-1]
        return true, pred, pred.size // classes, classes

    def _compute(self, y_true, y_pred, want_gradient: bool):
        true, pred, rows, classes = self._prepare(y_true, y_pred)
        value = ctypes.c_float()
        d_pred = np.empty_like(pred) if want_gradient else None
        lib.NNTKLossCompute(
            self._kind,
            self._from_logits(),
            rows,
            classes,
            float_ptr(pred),
            float_ptr(true),
            ctypes.pointer(value),
            float_ptr(d_pred),
        )
        return float(value.value), d_pred

    def __call__(self, y_true, y_pred) -> float:
        """The reduced loss (a float32 value as a Python float)."""
        return self._compute(y_true, y_pred, want_gradient=False)[0]

    def gradient(self, y_true, y_pred) -> tuple[float, np.ndarray]:
        """(loss, d loss / d y_pred): the gradient has y_pred's shape, float32,
        exactly what tf.GradientTape.gradient(loss, y_pred) returns."""
        return self._compute(y_true, y_pred, want_gradient=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MeanSquaredError(Loss):
    """keras.losses.MeanSquaredError(): mean over the class axis of (y_pred − y_true)²,
    then the mean over batch (and steps)."""

    _kind = _MEAN_SQUARED_ERROR

    def __init__(self, name: str = "mean_squared_error"):
        super().__init__(name)


class CategoricalCrossentropy(Loss):
    """keras.losses.CategoricalCrossentropy(from_logits=False).

    On probabilities, each row of y_pred is renormalised to sum to 1 and clipped
    to [1e-7, 1 − 1e-7] before −Σ y·log p (the gradient includes both, as in Keras).
    With from_logits=True, Σ y·(logsumexp(z) − z), whose gradient is TensorFlow's
    softmax(z) − y (per position, then averaged).

    Keras switches to the logits path by itself when y_pred came out of a Keras
    softmax (Dense(activation="softmax"), Activation("softmax")): the tensor carries
    its logits. A TimeDistributed(Dense(softmax)) output is a reshape of the softmax
    and carries none, so Keras takes the probability path there (checked in eager
    mode, in model.fit/evaluate and with a fixed batch size). Called directly, this
    loss takes the path from_logits says; Sequential.train_step picks the path Keras
    would for the model's last layer (Sequential.uses_logits).
    """

    _kind = _CATEGORICAL_CROSSENTROPY

    def __init__(self, from_logits: bool = False, name: str = "categorical_crossentropy"):
        super().__init__(name)
        self.from_logits = check_bool(from_logits, "from_logits")

    def _from_logits(self) -> int:
        return int(self.from_logits)

    def __repr__(self) -> str:
        return f"CategoricalCrossentropy(from_logits={self.from_logits})"
