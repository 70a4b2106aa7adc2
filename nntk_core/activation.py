"""The Activation layer (tf.keras.layers.Activation): what Python adds to the
library's description is an optional input_dim, the layer then adapting to
each input's last axis (the native layer re-created for a new size)."""

from __future__ import annotations

from nntk_core.layer import Layer, as_float32


class Activation(Layer, layer="Activation"):
    """tf.keras.layers.Activation(name): y = act(x), elementwise, softmax over the last axis.

    `input_dim` is optional: without it the layer adapts to each input's last axis.
    No weights.
    """

    _defaults = {"input_dim": None}

    def _check_argument(self, field, value):
        if field.name == "input_dim":
            self._fixed_dim = value is not None
            if value is None:
                return 1  # until the first input says
        return super()._check_argument(field, value)

    @property
    def output_dim(self) -> int | None:
        return self.input_dim if self._fixed_dim else None

    @property
    def adapts_input_dim(self) -> bool:
        return not self._fixed_dim

    def _prepare_input(self, x, name: str = "x"):
        if not self._fixed_dim:
            if self._closed:  # a closed layer stays closed, whatever size comes next
                raise RuntimeError(f"{type(self).__name__} was closed")
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
