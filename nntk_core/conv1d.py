"""Conv1d (tf.keras.layers.Conv1D, channels_last, groups=1)."""

from __future__ import annotations

import numpy as np

from nntk_core import activations
from nntk_core.layer import Layer, check_bool, check_positive_int

# nntk/conv1d.h NNTKPadding.
PADDINGS: dict[str, int] = {"valid": 0, "same": 1, "causal": 2}


def _single(value, name: str) -> int:
    """An int or a 1-tuple/list of one int (as tf.keras accepts), as an int >= 1."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name} must be an integer or a tuple of 1 integer, got {value!r}")
        value = value[0]
    return check_positive_int(value, name)


class Conv1d(Layer):
    """tf.keras.layers.Conv1D on (batch, steps, input_dim) input:

        y[b, o, f] = activation(bias[f] + Σ_j Σ_c x_pad[b, o·strides + j·dilation_rate, c]
                                          · kernel[j, c, f])

    a cross-correlation (no kernel flip). padding "valid" (no padding), "same" (zeros split
    evenly, the extra one on the right) or "causal" ((kernel_size-1)·dilation_rate zeros on the
    left). strides > 1 together with dilation_rate > 1 is refused, as tf.keras does.

    Weights (Keras order): kernel (kernel_size, input_dim, filters), bias (filters,) when use_bias.
    """

    _native = "Conv1d"
    input_ranks = (3,)

    def __init__(
        self,
        filters: int,
        kernel_size,
        input_dim: int,
        strides=1,
        padding: str = "valid",
        dilation_rate=1,
        activation: str | None = None,
        use_bias: bool = True,
    ):
        super().__init__(input_dim)
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = _single(kernel_size, "kernel_size")
        self.strides = _single(strides, "strides")
        self.dilation_rate = _single(dilation_rate, "dilation_rate")
        if not isinstance(padding, str):
            raise TypeError(f"padding must be one of {sorted(PADDINGS)}, got {padding!r}")
        if padding.lower() not in PADDINGS:
            raise ValueError(f"padding must be one of {sorted(PADDINGS)}, got {padding!r}")
        self.padding = padding.lower()
        if self.strides > 1 and self.dilation_rate > 1:
            raise ValueError(
                f"strides={self.strides} and dilation_rate={self.dilation_rate}: strides > 1 "
                "together with dilation_rate > 1 is not supported (tf.keras raises too)"
            )
        self.activation = activations.canonical(activation)
        self.use_bias = check_bool(use_bias, "use_bias")

    @property
    def effective_kernel_size(self) -> int:
        """(kernel_size - 1) · dilation_rate + 1: the input span one output step reads."""
        return (self.kernel_size - 1) * self.dilation_rate + 1

    def _config_args(self) -> tuple:
        return (
            self.input_dim,
            self.filters,
            self.kernel_size,
            self.strides,
            PADDINGS[self.padding],
            self.dilation_rate,
            activations.kind(self.activation),
            int(self.use_bias),
        )

    @property
    def output_dim(self) -> int:
        return self.filters

    def weight_names(self) -> list[str]:
        return ["kernel", "bias"] if self.use_bias else ["kernel"]

    def weight_shapes(self) -> list[tuple[int, ...]]:
        shapes = [(self.kernel_size, self.input_dim, self.filters)]
        return shapes + [(self.filters,)] if self.use_bias else shapes

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

    def _config_repr(self) -> str:
        return (
            f"filters={self.filters}, kernel_size={self.kernel_size}, input_dim={self.input_dim}, "
            f"strides={self.strides}, padding={self.padding!r}, "
            f"dilation_rate={self.dilation_rate}, activation={self.activation!r}, "
            f"use_bias={self.use_bias}"
        )
