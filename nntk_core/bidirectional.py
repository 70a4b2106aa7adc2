"""Bidirectional (tf.keras Bidirectional) around an nntk RNN, GRU or LSTM (any layer
the library can wrap: one with states and go_backwards).

    bi = nn.Bidirectional(nn.LSTM(8, input_dim=4, return_sequences=True), merge_mode="concat")
    bi.set_weights(forward_weights + backward_weights)    # Keras order: forward, then backward
    y = bi(x, training=True)                              # (B, T, 16)
    dx, weight_grads = bi.backward(dy)

As in Keras, the wrapped layer only supplies the configuration: two new
layers are created from it (the backward one with go_backwards negated) and
the passed instance itself is not run. With return_sequences the backward
layer's sequence is reversed back along time before merging.

Forms (as Keras):
- merge_mode "concat" (B, T', 2U), "sum"/"mul"/"ave" (B, T', U); None returns
  the list [forward, backward] (T' = T with return_sequences, else the time
  axis is absent).
- return_state: [merged, forward states..., backward states...]; with
  merge_mode None [forward, backward, forward states..., backward states...].
- initial_state: the list [forward states..., backward states...]
  (2 arrays for RNN/GRU, 4 for LSTM: [h_f, c_f, h_b, c_b]).
- backward(dy): dy mirrors what the training call returned; returns
  (dx, weight_grads) or (dx, weight_grads, d_initial_state) when that call was
  given an initial_state (d_initial_state in the initial_state list form).
- No stream(): the backward direction starts at the end of the sequence, so a
  Bidirectional layer cannot consume a sequence chunk by chunk.
"""

from __future__ import annotations

import numpy as np

from nntk_core._native import LAYERS, layer_function, lib
from nntk_core.layer import _check_enum
from nntk_core.recurrent import RecurrentLayer

# merge_mode, the one field of the wrapper's own config.
(_MERGE_MODE,) = LAYERS["Bidirectional"].fields


class Bidirectional(RecurrentLayer, layer="Bidirectional"):
    """tf.keras.layers.Bidirectional(layer, merge_mode) for layer an nntk RNN, GRU or LSTM.

    Weights (Keras order): the forward layer's weights, then the backward layer's.
    """

    def __init__(self, layer, merge_mode=_MERGE_MODE.default):
        self._setup()
        merge_field = _MERGE_MODE
        if not isinstance(layer, RecurrentLayer) or isinstance(layer, Bidirectional):
            raise TypeError(
                "Bidirectional: layer must be an nntk RNN, GRU or LSTM instance, "
                f"got {type(layer).__name__}"
            )
        # Keras spells the library's "none" as None (the two outputs as a list).
        if merge_mode is None or merge_mode == "none":
            self.merge_mode = None
        else:
            try:
                self.merge_mode = _check_enum(merge_field, merge_mode)
            except (TypeError, ValueError):
                raise ValueError(
                    f"Bidirectional: merge_mode={merge_mode!r} is not one of "
                    + ", ".join(repr(n) for n in merge_field.enum_names if n != "none")
                    + ", None"
                ) from None
        self.layer = layer
        self.input_dim = layer.input_dim
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.go_backwards = layer.go_backwards
        try:
            self._describe()
        except ValueError as e:  # a layer the library cannot wrap
            raise TypeError(str(e)) from None

    # -- description -------------------------------------------------------------------------
    def _new_config(self):
        inner = self.layer._new_config()
        try:
            merge = _MERGE_MODE.enum_names.index(self.merge_mode or "none")
            return layer_function(self.layer_type.name, "ConfigCreateFor")(inner, merge)
        finally:
            lib.NNTKLayerConfigDestroy(inner)

    @property
    def units(self) -> int:
        return self._state_widths[0]

    @property
    def output_dim(self) -> int | None:
        """2U for concat, U for sum/mul/ave; None when merge_mode is None (two outputs)."""
        return None if self.merge_mode is None else super().output_dim

    def state_names(self) -> list[str]:
        inner = self.layer.state_names()
        return [f"forward_{n}" for n in inner] + [f"backward_{n}" for n in inner]

    def weight_names(self) -> list[str]:
        half = super().weight_names()[: len(self._blocks) // 2]
        return [f"forward_{n}" for n in half] + [f"backward_{n}" for n in half]

    def stream(self, chunk, state=None):
        raise TypeError(
            "Bidirectional cannot stream: its backward direction needs the whole sequence "
            "(call the layer on the whole sequence, or stream the forward layer alone)"
        )

    # -- the output layout -------------------------------------------------------------------
    def _out_buffer_shape(self, batch: int, steps: int) -> tuple[int, ...]:
        if self.merge_mode is None:  # native layout (2, B, T', U)
            inner = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
            return (2, *inner)
        return super()._out_buffer_shape(batch, steps)

    def _split_output(self, buffer: np.ndarray) -> list[np.ndarray]:
        if self.merge_mode is None:
            return [buffer[0], buffer[1]]
        return [buffer]

    def _join_output_grad(self, parts: list[np.ndarray]) -> np.ndarray:
        if self.merge_mode is None:
            return np.stack(parts)
        return parts[0]

    def _config_repr(self) -> str:
        return f"{self.layer!r}, merge_mode={self.merge_mode!r}"
