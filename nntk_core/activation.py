"""The Activation layer (tf.keras.layers.Activation)."""

from __future__ import annotations

from nntk_core import activations
from nntk_core.layer import Layer, check_positive_int


class Activation(Layer):
    """tf.keras.layers.Activation(name): y = act(x), elementwise, softmax over the last axis.

    `input_dim` is optional: without it the layer adapts to each input's last axis.
    No weights.
    """

    _native = "Activation"

    def __init__(self, activation: str | None, input_dim: int | None = None):
        self.activation = activations.canonical(activation)
        self._fixed_dim = input_dim is not None
        super().__init__(check_positive_int(input_dim, "input_dim") if input_dim is not None else 1)

    def _config_args(self) -> tuple:
        return (activations.kind(self.activation), self.input_dim)

    @property
    def output_dim(self) -> int | None:
        return self.input_dim if self._fixed_dim else None

    @property
    def adapts_input_dim(self) -> bool:
        return not self._fixed_dim

    def weight_names(self) -> list[str]:
        return []

    def weight_shapes(self) -> list[tuple[int, ...]]:
        return []

    def _prepare_input(self, x, name: str = "x"):
        if not self._fixed_dim:
            from nntk_core.layer import as_float32

            arr = as_float32(x, name)
            if (
                arr.ndim in self.input_ranks
                and arr.shape[-1] >= 1
                and arr.shape[-1] != self.input_dim
            ):
                # A new feature size: the native layer is re-created for it.
                self.close()
                self._closed = False
                self.input_dim = arr.shape[-1]
                self._last_training_shape = None
        return super()._prepare_input(x, name)

    def _config_repr(self) -> str:
        return f"{self.activation!r}" + (f", input_dim={self.input_dim}" if self._fixed_dim else "")
