"""The recurrent layers RNN (tf.keras SimpleRNN), GRU and LSTM, with tf.keras's
constructor arguments, initial / returned states and streaming.

    gru = nn.GRU(8, input_dim=4, return_sequences=True, return_state=True)
    gru.set_weights([kernel, recurrent_kernel, bias])     # tf.keras order
    out, h = gru(x, training=True, initial_state=h0)      # x (B, T, 4)
    dx, (d_kernel, d_recurrent, d_bias), [d_h0] = gru.backward([d_out, d_h])

Calls:
- ``layer(x, training=False, initial_state=None)``: x (B, T, input_dim). The
  output is (B, T, units) with return_sequences, else (B, units); with
  go_backwards the sequence is in processing order (as Keras). With
  ``return_state`` the call returns a list as Keras does: ``[out, h]``
  (RNN, GRU) or ``[out, h, c]`` (LSTM). ``initial_state``: an array (B, units)
  or ``[h]`` for RNN/GRU, ``[h, c]`` for LSTM; None starts from zeros (every
  call does: no state is carried between calls).
- ``backward(dy)`` after a training call: ``dy`` matches what the call
  returned (an array, or with return_state the list ``[d_out, d_h(, d_c)]``,
  where None means zeros). Returns ``(dx, weight_grads)`` with the weight
  gradients in tf.keras trainable_weights order, summed over the batch, or
  ``(dx, weight_grads, d_initial_state)`` when that training call was given an
  initial_state; ``d_initial_state`` is a list like initial_state's list form
  (``[d_h]`` or ``[d_h, d_c]``).
- ``stream(chunk, state=None) -> (out, new_state)``: inference on one chunk
  (B, t, input_dim) starting from ``state`` (None = zeros; else the list a
  previous stream call returned). Feeding a sequence chunk by chunk gives
  bit for bit the whole-sequence output (with go_backwards: feed the chunks
  last first).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nntk_core import activations
from nntk_core.layer import Layer, as_float32, check_bool, check_positive_int, float_ptr


class RecurrentLayer(Layer):
    """Shared Python side of RNN, GRU, LSTM and Bidirectional: states, the list
    forms of outputs and gradients, and streaming. A subclass describes its
    states (`state_names`) and, if its native output is not a single
    (B, T', F) tensor, how to split and join it."""

    input_ranks = (3,)
    return_sequences: bool
    return_state: bool
    units: int

    def __init__(self, input_dim: int):
        super().__init__(input_dim)
        self._last_had_state = False  # the last training call was given an initial_state

    @property
    def output_dim(self) -> int:
        return self.units

    # -- what a subclass may override ------------------------------------------------------
    def state_names(self) -> list[str]:
        """Names of the state tensors, in Keras order (each (batch, units))."""
        raise NotImplementedError

    def _out_buffer_shape(self, batch: int, steps: int) -> tuple[int, ...]:
        """Shape of the native output buffer."""
        features = self._native_out_features(batch, steps)
        return (batch, steps, features) if self.return_sequences else (batch, features)

    def _split_output(self, buffer: np.ndarray) -> list[np.ndarray]:
        """The output tensor(s) the call returns, from the native buffer."""
        return [buffer]

    def _join_output_grad(self, parts: list[np.ndarray]) -> np.ndarray:
        """The native d_out buffer from the gradient(s) of the output tensor(s)."""
        return parts[0]

    # -- helpers ---------------------------------------------------------------------------
    def _native_out_features(self, batch: int, steps: int) -> int:
        import ctypes

        out_steps, out_features = ctypes.c_int64(), ctypes.c_int64()
        self._fn("OutputShape")(
            self._live_handle(), batch, steps, ctypes.byref(out_steps), ctypes.byref(out_features)
        )
        return out_features.value

    def _prepare_states(self, states, batch: int, name: str) -> np.ndarray | None:
        """`states` (None, an array, or a list of arrays (batch, units)) as one
        C-contiguous (n_states, batch, units) float32 array, or None."""
        if states is None:
            return None
        names = self.state_names()
        n = len(names)
        if isinstance(states, np.ndarray) or not isinstance(states, Sequence):
            if n != 1:
                raise ValueError(
                    f"{name} must be a list of {n} arrays [{', '.join(names)}], "
                    f"each (batch, units), got a single array"
                )
            states = [states]
        if len(states) != n:
            raise ValueError(
                f"{name} must be a list of {n} array{'s' if n > 1 else ''} "
                f"[{', '.join(names)}], each (batch, units), got {len(states)}"
            )
        expected = (batch, self.units)
        arrays = []
        for i, (state_name, s) in enumerate(zip(names, states, strict=True)):
            arr = as_float32(s, f"{name}[{i}] ({state_name})")
            if arr.shape != expected:
                raise ValueError(
                    f"{name}[{i}] ({state_name}) must have shape (batch, units) = {expected}, "
                    f"got {arr.shape}"
                )
            arrays.append(arr)
        return np.ascontiguousarray(np.stack(arrays))

    def _run(self, x, training: bool, initial_state):
        """Runs the native layer: (output parts, final states (n, B, U), x shape)."""
        training = check_bool(training, "training")
        arr, batch, steps = self._prepare_input(x)
        states = self._prepare_states(initial_state, batch, "initial_state")
        handle = self._live_handle()
        out = np.empty(self._out_buffer_shape(batch, steps), dtype=np.float32)
        final = np.empty((len(self.state_names()), batch, self.units), dtype=np.float32)
        suffix = "ApplyTrainingBatchWithState" if training else "ApplyInferenceWithState"
        fn = getattr(_lib(), f"NNTK{self._native}{suffix}")
        if training:
            self._last_training_shape = None
        fn(
            handle,
            batch,
            steps,
            float_ptr(arr),
            float_ptr(states),
            float_ptr(out),
            float_ptr(final),
        )
        if training:
            self._weights_set_after_call = False
            self._last_training_shape = out.shape
            self._last_input_shape = arr.shape
            self._last_had_state = states is not None
        return self._split_output(out), list(final)

    # -- the Keras-shaped API --------------------------------------------------------------
    def __call__(self, x, training: bool = False, initial_state=None):
        """The output (or, with return_state, [output(s)..., states...]); see the module doc."""
        parts, states = self._run(x, training, initial_state)
        if self.return_state:
            return [*parts, *states]
        return parts[0] if len(parts) == 1 else parts

    def stream(self, chunk, state=None):
        """Inference on one chunk from `state` (None = zeros): (output, new_state list)."""
        parts, states = self._run(chunk, False, state)
        return (parts[0] if len(parts) == 1 else parts), states

    def backward(self, dy):
        """Gradients of the last training call; see the module doc for the forms."""
        self._require_training_call()
        buffer_shape = self._last_training_shape
        batch = self._last_input_shape[0]
        out_parts = self._split_output(np.empty(buffer_shape, dtype=np.float32))
        names = self.state_names()
        n_out = len(out_parts)
        if self.return_state:
            expected = n_out + len(names)
            form = f"a list of {expected} gradients [output{'s' if n_out > 1 else ''}, " + (
                ", ".join(names) + "] (None = zeros)"
            )
        elif n_out > 1:
            expected = n_out
            form = f"a list of {n_out} gradients [forward, backward] (None = zeros)"
        else:
            expected = 0
            form = "an array"
        if expected:
            if isinstance(dy, np.ndarray) or not isinstance(dy, Sequence) or len(dy) != expected:
                got = len(dy) if isinstance(dy, Sequence) else type(dy).__name__
                raise ValueError(f"dy must be {form}, matching the training call; got {got}")
            items = list(dy)
        else:
            if isinstance(dy, (list, tuple)):
                raise ValueError(
                    f"dy must be an array of the output's shape {out_parts[0].shape} "
                    "(the layer has return_state=False)"
                )
            items = [dy]
        grads = []
        for i, part in enumerate(out_parts):
            label = "dy" if not expected else f"dy[{i}]"
            grads.append(self._check_grad(items[i], part.shape, label))
        d_out = np.ascontiguousarray(self._join_output_grad(grads), dtype=np.float32)
        d_final = None
        if self.return_state:
            state_items = items[n_out:]
            if any(s is not None for s in state_items):
                d_final = np.ascontiguousarray(
                    np.stack(
                        [
                            self._check_grad(s, (batch, self.units), f"dy[{n_out + i}] ({name})")
                            for i, (name, s) in enumerate(zip(names, state_items, strict=True))
                        ]
                    )
                )
        handle = self._live_handle()
        dx = np.empty(self._last_input_shape, dtype=np.float32)
        d_init = (
            np.empty((len(names), batch, self.units), dtype=np.float32)
            if self._last_had_state
            else None
        )
        fn = getattr(_lib(), f"NNTK{self._native}CalculateGradientWithState")
        fn(
            handle,
            self._gradient_handle(),
            float_ptr(d_out),
            float_ptr(d_final),
            float_ptr(dx),
            float_ptr(d_init),
        )
        weight_grads = self._weight_gradients()
        if d_init is not None:
            return dx, weight_grads, list(d_init)
        return dx, weight_grads

    @staticmethod
    def _check_grad(g, shape: tuple[int, ...], label: str) -> np.ndarray:
        if g is None:
            return np.zeros(shape, dtype=np.float32)
        arr = as_float32(g, label)
        if arr.shape != tuple(shape):
            raise ValueError(
                f"{label} must have the shape of the matching training output {tuple(shape)}, "
                f"got {arr.shape}"
            )
        return arr


def _lib():
    from nntk_core._native import lib

    return lib


class _Cell(RecurrentLayer):
    """RNN, GRU and LSTM: one recurrent layer with a (D, G·U) kernel."""

    _gates = 1

    def __init__(
        self,
        units: int,
        input_dim: int,
        activation: str | None,
        use_bias: bool,
        return_sequences: bool,
        go_backwards: bool,
        return_state: bool,
    ):
        super().__init__(input_dim)
        self.units = check_positive_int(units, "units")
        self.activation = activations.canonical(activation, "activation")
        self.use_bias = check_bool(use_bias, "use_bias")
        self.return_sequences = check_bool(return_sequences, "return_sequences")
        self.go_backwards = check_bool(go_backwards, "go_backwards")
        self.return_state = check_bool(return_state, "return_state")

    def state_names(self) -> list[str]:
        return ["h"]

    def weight_names(self) -> list[str]:
        names = ["kernel", "recurrent_kernel"]
        return names + ["bias"] if self.use_bias else names

    def weight_shapes(self) -> list[tuple[int, ...]]:
        wide = self._gates * self.units
        shapes = [(self.input_dim, wide), (self.units, wide)]
        return shapes + [self._bias_shape()] if self.use_bias else shapes

    def _bias_shape(self) -> tuple[int, ...]:
        return (self._gates * self.units,)

    def _flags(self) -> str:
        return (
            f"use_bias={self.use_bias}, return_sequences={self.return_sequences}, "
            f"go_backwards={self.go_backwards}, return_state={self.return_state}"
        )


class RNN(_Cell):
    """tf.keras.layers.SimpleRNN: h_t = act((x_t · kernel + bias) + h_{t-1} · recurrent_kernel).

    Weights (Keras order): kernel (input_dim, units), recurrent_kernel (units, units),
    bias (units,) when use_bias.
    """

    _native = "RNN"
    _gates = 1

    def __init__(
        self,
        units: int,
        input_dim: int,
        activation: str | None = "tanh",
        use_bias: bool = True,
        return_sequences: bool = False,
        go_backwards: bool = False,
        return_state: bool = False,
    ):
        super().__init__(
            units, input_dim, activation, use_bias, return_sequences, go_backwards, return_state
        )

    def _config_args(self) -> tuple:
        return (
            self.input_dim,
            self.units,
            activations.kind(self.activation),
            int(self.use_bias),
            int(self.return_sequences),
            int(self.go_backwards),
        )

    def _config_repr(self) -> str:
        return (
            f"units={self.units}, input_dim={self.input_dim}, activation={self.activation!r}, "
            + self._flags()
        )


class GRU(_Cell):
    """tf.keras.layers.GRU (gates z, r, h; both reset_after variants).

    Weights (Keras order): kernel (input_dim, 3·units), recurrent_kernel (units, 3·units),
    bias when use_bias: (2, 3·units) [input row; recurrent row] with reset_after,
    else (3·units,).
    """

    _native = "GRU"
    _gates = 3

    def __init__(
        self,
        units: int,
        input_dim: int,
        activation: str | None = "tanh",
        recurrent_activation: str | None = "sigmoid",
        use_bias: bool = True,
        return_sequences: bool = False,
        go_backwards: bool = False,
        return_state: bool = False,
        reset_after: bool = True,
    ):
        super().__init__(
            units, input_dim, activation, use_bias, return_sequences, go_backwards, return_state
        )
        self.recurrent_activation = activations.canonical(
            recurrent_activation, "recurrent_activation"
        )
        self.reset_after = check_bool(reset_after, "reset_after")

    def _bias_shape(self) -> tuple[int, ...]:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _config_args(self) -> tuple:
        return (
            self.input_dim,
            self.units,
            activations.kind(self.activation),
            activations.kind(self.recurrent_activation),
            int(self.use_bias),
            int(self.reset_after),
            int(self.return_sequences),
            int(self.go_backwards),
        )

    def _config_repr(self) -> str:
        return (
            f"units={self.units}, input_dim={self.input_dim}, activation={self.activation!r}, "
            f"recurrent_activation={self.recurrent_activation!r}, reset_after={self.reset_after}, "
            + self._flags()
        )


class LSTM(_Cell):
    """tf.keras.layers.LSTM (gates i, f, c, o; the bias is added after both products).

    Weights (Keras order): kernel (input_dim, 4·units), recurrent_kernel (units, 4·units),
    bias (4·units,) when use_bias. States [h, c].
    """

    _native = "LSTM"
    _gates = 4

    def __init__(
        self,
        units: int,
        input_dim: int,
        activation: str | None = "tanh",
        recurrent_activation: str | None = "sigmoid",
        use_bias: bool = True,
        return_sequences: bool = False,
        go_backwards: bool = False,
        return_state: bool = False,
    ):
        super().__init__(
            units, input_dim, activation, use_bias, return_sequences, go_backwards, return_state
        )
        self.recurrent_activation = activations.canonical(
            recurrent_activation, "recurrent_activation"
        )

    def state_names(self) -> list[str]:
        return ["h", "c"]

    def initial_weights(self) -> list[np.ndarray]:
        """Keras's unit_forget_bias=True: the forget gate's bias block starts at one."""
        weights = super().initial_weights()
        if self.use_bias:
            weights[2][self.units : 2 * self.units] = 1.0
        return weights

    def _config_args(self) -> tuple:
        return (
            self.input_dim,
            self.units,
            activations.kind(self.activation),
            activations.kind(self.recurrent_activation),
            int(self.use_bias),
            int(self.return_sequences),
            int(self.go_backwards),
        )

    def _config_repr(self) -> str:
        return (
            f"units={self.units}, input_dim={self.input_dim}, activation={self.activation!r}, "
            f"recurrent_activation={self.recurrent_activation!r}, " + self._flags()
        )
