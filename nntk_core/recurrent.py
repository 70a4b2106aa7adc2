"""What a layer with states (RNN = tf.keras SimpleRNN, GRU, LSTM, and any layer the
library describes with states) adds to a layer: tf.keras's initial / returned
states, the `return_state` flag, and streaming. The layer classes themselves are
derived from the description (nntk_core/layers.py) on RecurrentLayer.

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
- ``out=`` (keyword, of the call and of stream()): a float32 C-contiguous array
  of the output's shape that the output is written into and returned as, instead
  of a new array each call (for a per-frame loop: no allocation, and the
  output's memory stays warm). Only a caller who passes the same array again
  sees it overwritten. With merge_mode=None, Bidirectional's two outputs are
  ``out[0]`` and ``out[1]`` of an out of shape (2, *output shape).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nntk_core._native import APPLY_INFERENCE, lib
from nntk_core.layer import (
    _FLOAT32,
    Layer,
    _byref,
    _c_float_over,
    _empty,
    _ndarray,
    as_float32,
    check_bool,
    check_out,
    float_ptr,
    is_float32_block,
)

# Keras's names of a recurrent layer's states, in order (LSTM: [h, c]).
STATE_NAMES = ("h", "c")


class RecurrentLayer(Layer):
    """Shared Python side of the layers with states (RNN, GRU, LSTM, Bidirectional):
    states, the list forms of outputs and gradients, and streaming. A subclass
    whose native output is not a single (B, T', F) tensor says how to split and
    join it."""

    input_ranks = (3,)
    _flags = {"return_state": False}
    return_sequences: bool
    return_state: bool

    def _setup(self) -> None:
        super()._setup()
        self._last_had_state = False  # the last training call was given an initial_state

    # -- what a subclass may override ------------------------------------------------------
    def state_names(self) -> list[str]:
        """Names of the state tensors, in Keras order (each (batch, width))."""
        return list(STATE_NAMES[: len(self._state_widths)])

    @property
    def drops_steps(self) -> bool:
        """Without return_sequences the output has no time axis."""
        return not self.return_sequences

    def _out_buffer_shape(self, batch: int, steps: int) -> tuple[int, ...]:
        """Shape of the native output buffer (no time axis without return_sequences)."""
        out_steps, out_features = self._native_output_shape(batch, steps)
        if self.return_sequences:
            return (batch, out_steps, out_features)
        return (batch, out_features)

    def _split_output(self, buffer: np.ndarray) -> list[np.ndarray]:
        """The output tensor(s) the call returns, from the native buffer."""
        return [buffer]

    def _join_output_grad(self, parts: list[np.ndarray]) -> np.ndarray:
        """The native d_out buffer from the gradient(s) of the output tensor(s)."""
        return parts[0]

    # -- helpers ---------------------------------------------------------------------------
    def _state_buffer(self, batch: int) -> np.ndarray:
        """An uninitialised native state buffer (n_states, batch, width)."""
        return np.empty(self._state_shape(batch), dtype=np.float32)

    def _state_shape(self, batch: int) -> tuple[int, ...]:
        """(n_states, batch, width): every state of these layers has the width units."""
        return (len(self._state_widths), batch, self._state_widths[0])

    def _prepare_states(self, states, batch: int, name: str) -> np.ndarray | None:
        """`states` (None, an array, or a list of arrays (batch, units)) as what the
        native call reads, one C-contiguous (n_states, batch, units) float32 buffer
        (a single state's checked array itself: the same memory), or None."""
        if states is None:
            return None
        expected = (batch, self._state_widths[0])
        if not _is_state_list(states, len(self._state_widths), expected):
            # not what stream() returned: the full checks, each error naming the argument
            states = self._checked_states(states, expected, name)
        if len(states) == 1:
            return states[0]
        buffer = np.empty((len(states), *expected), np.float32)  # cheaper than np.stack
        for i, arr in enumerate(states):
            buffer[i] = arr
        return buffer

    def _checked_states(self, states, expected: tuple[int, int], name: str) -> list[np.ndarray]:
        """`states` as a list of C-contiguous float32 arrays of the `expected` shape;
        TypeError / ValueError naming `name` and the state."""
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
        arrays = []
        for i, (state_name, s) in enumerate(zip(names, states, strict=True)):
            arr = as_float32(s, f"{name}[{i}] ({state_name})")
            if arr.shape != expected:
                raise ValueError(
                    f"{name}[{i}] ({state_name}) must have shape (batch, units) = {expected}, "
                    f"got {arr.shape}"
                )
            arrays.append(arr)
        return arrays

    def _run(self, x, training: bool, initial_state, final_state: bool = True, out=None):
        """Runs the native layer: (output parts, the final states' native buffer
        (n, B, U), or None when `final_state` is False: not asked of the native side,
        final_state NULL).
        `out`: the caller's native output buffer (check_out), else a new one."""
        training = check_bool(training, "training")
        self._check_mode(training)
        arr, batch, steps = self._prepare_input(x)
        states = self._prepare_states(initial_state, batch, "initial_state")
        handle = self._live_handle()
        shape = self._out_buffer_shape(batch, steps)
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        else:
            out = check_out(out, shape, arr, states)
        final = self._state_buffer(batch) if final_state else None
        if training:
            self._last_training_shape = None
        lib.NNTKLayerApply(
            handle,
            self._mode(training),
            batch,
            steps,
            float_ptr(arr),
            float_ptr(states),
            float_ptr(out),
            float_ptr(final),
        )
        parts = self._split_output(out)
        if training:
            self._weights_set_after_call = False
            self._last_training_shape = out.shape
            self._last_input_shape = arr.shape
            self._last_had_state = states is not None
        elif self._mode(training) == APPLY_INFERENCE and len(parts) == 1:
            # an inference call whose one output tensor is the native buffer
            self._remember_call(arr.shape, batch, steps, shape, self._state_shape(batch))
        return parts, final

    # -- the Keras-shaped API --------------------------------------------------------------
    def __call__(
        self, x, training: bool = False, initial_state=None, final_state: bool = True, *, out=None
    ):
        """The output (or, with return_state, [output(s)..., states...]); see the module doc.
        `final_state=False` (return_state=False only): the native call is not asked for
        the final state (final_state NULL). `out`: an array to write the output into
        (see the module doc)."""
        # The fast lane (Layer.__call__): an inference call without states in or out on
        # a float32 ndarray of a prepared shape; the final states go to the prepared
        # call's scratch buffer, as the checked call gives them a buffer it drops.
        if (
            training is False
            and initial_state is None
            and final_state is True
            and self.return_state is False
            and type(x) is _ndarray
            and x.dtype is _FLOAT32
        ):
            call = self._calls.get(x.shape)
            if call is not None:
                y = call.run(x, out, None, call.scratch_arg)
                if y is not None:
                    return y
        final_state = check_bool(final_state, "final_state")
        if self.return_state and not final_state:
            raise ValueError("final_state=False: the layer has return_state=True")
        parts, final = self._run(x, training, initial_state, final_state, out)
        if self.return_state:
            return [*parts, *_state_list(final)]
        return parts[0] if len(parts) == 1 else parts

    def stream(self, chunk, state=None, *, out=None):
        """Inference on one chunk from `state` (None = zeros): (output, new_state list).
        `out`: an array to write the output into (see the module doc)."""
        if type(chunk) is _ndarray and chunk.dtype is _FLOAT32:
            call = self._calls.get(chunk.shape)
            if call is not None:  # the fast lane (Layer.__call__)
                result = self._stream_prepared(call, chunk, state, out)
                if result is not None:
                    return result
        parts, final = self._run(chunk, False, state, out=out)
        return (parts[0] if len(parts) == 1 else parts), _state_list(final)

    def _stream_prepared(self, call, chunk, state, out):
        """stream() through a prepared call: the states checked as the checked call
        checks them (the chunk's shape passed already), a new final-state buffer; None
        when the chunk, out or the states are in a form the checked call converts."""
        initial = None
        if state is not None:
            states = self._prepare_states(state, call.state_shape[1], "initial_state")
            try:
                initial = _c_float_over(states)
            except TypeError:  # read-only states: the checked call passes them by address
                return None
        final = _empty(call.state_shape, _FLOAT32)
        y = call.run(chunk, out, initial, _byref(_c_float_over(final)))
        if y is None:
            return None
        return y, _state_list(final)

    def backward(self, dy, input_gradient: bool = True):
        """Gradients of the last training call; see the module doc for the forms.
        `input_gradient=False`: dx is not computed (d_in NULL) and is returned as None."""
        input_gradient = check_bool(input_gradient, "input_gradient")
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
        state_shape = self._state_shape(batch)
        if self.return_state:
            state_items = items[n_out:]
            if any(s is not None for s in state_items):
                d_final = np.ascontiguousarray(
                    np.stack(
                        [
                            self._check_grad(s, state_shape[1:], f"dy[{n_out + i}] ({name})")
                            for i, (name, s) in enumerate(zip(names, state_items, strict=True))
                        ]
                    )
                )
        handle = self._live_handle()
        dx = np.empty(self._last_input_shape, dtype=np.float32) if input_gradient else None
        d_init = self._state_buffer(batch) if self._last_had_state else None
        lib.NNTKLayerCalculateGradient(
            handle,
            self._gradient_handle(),
            float_ptr(d_out),
            float_ptr(d_final),
            float_ptr(dx),
            float_ptr(d_init),
        )
        weight_grads = self._weight_gradients()
        if d_init is not None:
            return dx, weight_grads, _state_list(d_init)
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


def _is_state_list(states, count: int, shape: tuple[int, int]) -> bool:
    """Whether `states` is a list of `count` C-contiguous float32 arrays of `shape`, as
    stream() returns them: the per-call fast path (a loop, not all() over a generator:
    a tenth of a microsecond a state)."""
    if type(states) is not list or len(states) != count:
        return False
    for state in states:
        if not (is_float32_block(state) and state.shape == shape):
            return False
    return True


def _state_list(buffer: np.ndarray) -> list[np.ndarray]:
    """The states of a native (n_states, batch, units) buffer as the list of their
    (batch, units) views, by index (list() of an array costs several times more)."""
    if len(buffer) == 1:  # RNN, GRU
        return [buffer[0]]
    return [buffer[i] for i in range(len(buffer))]
