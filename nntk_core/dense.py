"""Dense and TimeDistributedDense, with tf.keras's constructor arguments."""

from __future__ import annotations

from nntk_core import activations
from nntk_core.layer import Layer, check_bool, check_positive_int


class Dense(Layer):
    """tf.keras.layers.Dense: y = activation(x · kernel + bias) on (B, D) or (B, T, D).

    Weights (Keras order): kernel (input_dim, units), bias (units,) when use_bias.
    """

    _native = "Dense"

    def __init__(
        self, units: int, input_dim: int, activation: str | None = None, use_bias: bool = True
    ):
        super().__init__(input_dim)
        self.units = check_positive_int(units, "units")
        self.activation = activations.canonical(activation)
        self.use_bias = check_bool(use_bias, "use_bias")

    def _config_args(self) -> tuple:
        return (self.input_dim, self.units, activations.kind(self.activation), int(self.use_bias))

    @property
    def output_dim(self) -> int:
        return self.units

    def weight_names(self) -> list[str]:
        return ["kernel", "bias"] if self.use_bias else ["kernel"]

    def weight_shapes(self) -> list[tuple[int, ...]]:
        shapes = [(self.input_dim, self.units)]
        return shapes + [(self.units,)] if self.use_bias else shapes

    def _config_repr(self) -> str:
        return (
            f"units={self.units}, input_dim={self.input_dim}, "
            f"activation={self.activation!r}, use_bias={self.use_bias}"
        )


class TimeDistributedDense(Dense):
    """tf.keras.layers.TimeDistributed(Dense(...)) on (B, T, D) input.

    The native layer calls the native Dense on every time step (one reshaped product).
    """

    _native = "TimeDistributedDense"
    input_ranks = (3,)
