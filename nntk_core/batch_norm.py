"""BatchNorm (tf.keras.layers.BatchNormalization over the last axis)."""

from __future__ import annotations

import math

import numpy as np

from nntk_core import _native
from nntk_core.layer import Layer, check_bool, float_ptr


def _check_real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


class BatchNorm(Layer):
    """tf.keras.layers.BatchNormalization(axis=-1) on (batch, steps, C) or (batch, C) input.

    layer(x, training=True): normalises with the batch statistics over all batch·steps
    positions (biased variance) and updates the moving statistics in place:
    moving -= (moving - batch_stat) · (1 - momentum).
    layer(x, training=False): normalises with the moving statistics, changes nothing.

    backward(dy) after either call returns the gradients of that call's mode, as
    tf.GradientTape gives for layer(x, training=...): (dx, [d gamma, d beta]) for the
    weights present (the moving statistics are not trainable).

    Weights (Keras order): gamma (C,) if scale, beta (C,) if center, moving_mean (C,),
    moving_variance (C,); initially 1, 0, 0, 1 as in tf.keras.
    """

    _native = "BatchNorm"

    def __init__(
        self,
        input_dim: int,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
    ):
        super().__init__(input_dim)
        self.momentum = _check_real(momentum, "momentum")
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {self.momentum}")
        self.epsilon = _check_real(epsilon, "epsilon")
        if self.epsilon <= 0.0:
            raise ValueError(f"epsilon must be > 0, got {self.epsilon}")
        self.center = check_bool(center, "center")
        self.scale = check_bool(scale, "scale")

    def _config_args(self) -> tuple:
        return (self.input_dim, self.momentum, self.epsilon, int(self.center), int(self.scale))

    def initial_weights(self):
        return None  # the native layer starts at tf.keras's values (1, 0, 0, 1)

    @property
    def output_dim(self) -> int:
        return self.input_dim

    def weight_names(self) -> list[str]:
        names = ["gamma"] if self.scale else []
        names += ["beta"] if self.center else []
        return names + ["moving_mean", "moving_variance"]

    def weight_shapes(self) -> list[tuple[int, ...]]:
        return [(self.input_dim,)] * len(self.weight_names())

    def trainable_mask(self) -> list[bool]:
        return [name in ("gamma", "beta") for name in self.weight_names()]

    # Every call keeps what backward() needs: training=False runs the native
    # frozen-batch pass (inference plus a copy of x), so that backward() then
    # returns the inference-mode gradients, as tf.keras does for training=False.
    # An inference-only handle keeps nothing: its calls are plain inference.
    def _keeps_for_backward(self, training: bool) -> bool:
        return not self._inference_only

    def _apply(self, handle, training: bool, batch: int, steps: int, arr, out) -> None:
        if training or self._inference_only:
            super()._apply(handle, training, batch, steps, arr, out)
        else:
            _native.lib.NNTKBatchNormApplyFrozenBatch(
                handle, batch, steps, float_ptr(arr), float_ptr(out)
            )

    def _config_repr(self) -> str:
        return (
            f"input_dim={self.input_dim}, momentum={self.momentum}, epsilon={self.epsilon}, "
            f"center={self.center}, scale={self.scale}"
        )
