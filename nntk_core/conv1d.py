"""Conv1d (tf.keras.layers.Conv1D, channels_last, groups=1)."""

from __future__ import annotations

import numpy as np

from nntk_core.layer import Layer, check_positive_int

# The arguments tf.keras also takes as a tuple of one integer.
_TUPLE_FORMS = ("kernel_size", "strides", "dilation_rate")


def _single(value, name: str) -> int:
    """An int or a 1-tuple/list of one int (as tf.keras accepts), as an int >= 1."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name} must be an integer or a tuple of 1 integer, got {value!r}")
        value = value[0]
    return check_positive_int(value, name)


class Conv1d(Layer, layer="Conv1d"):
    """tf.keras.layers.Conv1D on (batch, steps, input_dim) input:

        y[b, o, f] = activation(bias[f] + Σ_j Σ_c x_pad[b, o·strides + j·dilation_rate, c]
                                          · kernel[j, c, f])

    a cross-correlation (no kernel flip). padding "valid" (no padding), "same" (zeros split
    evenly, the extra one on the right) or "causal" ((kernel_size-1)·dilation_rate zeros on the
    left). strides > 1 together with dilation_rate > 1 is refused, as tf.keras does.

    Weights (Keras order): kernel (kernel_size, input_dim, filters), bias (filters,) when use_bias.
    What Python adds: kernel_size, strides and dilation_rate also as 1-tuples (as tf.keras
    takes them), the output length, and a refusal naming x of an input too short for a
    "valid" window.
    """

    input_ranks = (3,)

    def _check_argument(self, field, value):
        if field.name in _TUPLE_FORMS:
            value = _single(value, field.name)
        return super()._check_argument(field, value)

    @property
    def effective_kernel_size(self) -> int:
        """(kernel_size - 1) · dilation_rate + 1: the input span one output step reads."""
        return (self.kernel_size - 1) * self.dilation_rate + 1

    def output_steps(self, steps: int) -> int:
        """Output length for an input of `steps` steps (tf.keras Conv1D)."""
        n = steps if self.padding != "valid" else steps - self.effective_kernel_size + 1
        return -(-n // self.strides)

    def _prepare_input(self, x, name: str = "x") -> tuple[np.ndarray, int, int]:
        arr, batch, steps = super()._prepare_input(x, name)
        if self.padding == "valid" and steps < self.effective_kernel_size:
            raise ValueError(
                f"{name} has {steps} steps, shorter than the effective kernel length "
                f"{self.effective_kernel_size} (kernel_size={self.kernel_size}, "
                f"dilation_rate={self.dilation_rate}) that padding='valid' needs; "
                f"shape {arr.shape}"
            )
        return arr, batch, steps
