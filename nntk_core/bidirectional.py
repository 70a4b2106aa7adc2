"""Bidirectional (tf.keras Bidirectional) around an nntk RNN, GRU or LSTM.

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

from nntk_core import activations
from nntk_core.recurrent import GRU, LSTM, RNN, RecurrentLayer

# nntk/bidirectional.h NNTKRecurrentKind and NNTKMergeMode.
_KINDS = {RNN: 0, GRU: 1, LSTM: 2}
MERGE_MODES = {"concat": 0, "sum": 1, "mul": 2, "ave": 3, None: 4}


class Bidirectional(RecurrentLayer):
    """tf.keras.layers.Bidirectional(layer, merge_mode) for layer an nntk RNN, GRU or LSTM.

    Weights (Keras order): the forward layer's weights, then the backward layer's.
    """

    _native = "Bidirectional"

    def __init__(self, layer, merge_mode: str | None = "concat"):
        if type(layer) not in _KINDS:
            raise TypeError(
                "Bidirectional: layer must be an nntk RNN, GRU or LSTM instance, "
                f"got {type(layer).__name__}"
            )
        if not (merge_mode is None or isinstance(merge_mode, str)) or merge_mode not in MERGE_MODES:
            raise ValueError(
                f"Bidirectional: merge_mode={merge_mode!r} is not one of "
                '"concat", "sum", "mul", "ave", None'
            )
        super().__init__(layer.input_dim)
        self.layer = layer
        self.merge_mode = merge_mode
        self.units = layer.units
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.go_backwards = layer.go_backwards

    # -- description -------------------------------------------------------------------------
    def _config_args(self) -> tuple:
        layer = self.layer
        recurrent = getattr(layer, "recurrent_activation", "sigmoid")
        return (
            _KINDS[type(layer)],
            layer.input_dim,
            layer.units,
            activations.kind(layer.activation),
            activations.kind(recurrent),
            int(layer.use_bias),
            int(getattr(layer, "reset_after", False)),
            int(layer.return_sequences),
            int(layer.go_backwards),
            MERGE_MODES[self.merge_mode],
        )

    @property
    def output_dim(self) -> int | None:
        """2U for concat, U for sum/mul/ave; None when merge_mode is None (two outputs)."""
        if self.merge_mode is None:
            return None
        return 2 * self.units if self.merge_mode == "concat" else self.units

    def state_names(self) -> list[str]:
        inner = self.layer.state_names()
        return [f"forward_{n}" for n in inner] + [f"backward_{n}" for n in inner]

    def weight_names(self) -> list[str]:
        inner = self.layer.weight_names()
        return [f"forward_{n}" for n in inner] + [f"backward_{n}" for n in inner]

    def weight_shapes(self) -> list[tuple[int, ...]]:
        return self.layer.weight_shapes() * 2

    def initial_weights(self) -> list[np.ndarray]:
        """The inner layer's initial weights, drawn once per direction."""
        return self.layer.initial_weights() + self.layer.initial_weights()

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
