"""A native chain of layers streamed in one call (nntk/layer.h, NNTKLayerChain): what
Sequential.stream runs, one chunk through every layer, the states of the layers with
states carried in one native buffer.

A chain is made for one chunk shape (batch, steps, features) and the layers' native
handles of the moment; Sequential keeps one per chunk shape and makes a new one when a
layer's handle changed (an adaptive Activation re-created for another size, a closed
layer). The states travel in Python as RecurrentLayer.stream's lists, one per layer
with states, in model order; natively as one (batch * state_width) buffer, the layers'
(n_states, batch, width) buffers one after the other.
"""

from __future__ import annotations

import ctypes
import weakref

import numpy as np

from nntk_core._native import NNTKError, lib, raise_for_status, unchecked
from nntk_core.layer import _FLOAT32, Layer, _byref, _c_float_over, _ndarray, float_ptr
from nntk_core.recurrent import RecurrentLayer, _state_list

_stream = unchecked("NNTKLayerChainStream")


def layer_name(index: int, layer) -> str:
    return f"layers[{index}] ({type(layer).__name__})"


class LayerChain:
    """The native chain of `layers` (their handles `handles`) for chunks of `shape`,
    giving outputs of `out_shape`. Raises ValueError naming the layer that cannot
    stream (the library's reason). `caller`: the API named in the errors
    (Sequential.stream, Sequential.streamer)."""

    def __init__(
        self,
        layers,
        handles: tuple,
        shape: tuple[int, int, int],
        out_shape,
        caller: str = "Sequential.stream",
    ):
        batch, steps = shape[0], shape[1]
        self.caller = caller
        self.handles = handles
        self.made_for: tuple = ()  # the layers' input sizes (Sequential's check)
        self.out_shape = tuple(out_shape)
        self.batch, self.steps = batch, steps
        self._handle = self._finalizer = None
        try:
            self._handle = lib.NNTKLayerChainCreate(handles[0], batch, steps)
            # destroyed by close(), or when the chain is collected
            self._finalizer = weakref.finalize(self, lib.NNTKLayerChainDestroy, self._handle)
            for handle in handles[1:]:
                lib.NNTKLayerChainAppend(self._handle, handle)
        except NNTKError as exc:
            index = 0 if self._handle is None else self._count()
            self.close()
            if exc.status == "NNTK_ERROR_OUT_OF_MEMORY":  # not the layer's fault: as it came
                raise
            reason = exc.message.split(": ", 1)[-1]
            raise ValueError(f"{caller}: {layer_name(index, layers[index])} {reason}") from None
        # (layer, n_states, width, start, end) per layer with states, in model order:
        # its slice of the flat state buffer.
        self.stateful = []
        start = 0
        for i, layer in enumerate(layers):
            widths = getattr(layer, "_state_widths", None)
            if isinstance(layer, RecurrentLayer) and widths:
                size = len(widths) * batch * widths[0]
                self.stateful.append((i, layer, len(widths), widths[0], start, start + size))
                start += size
        self.state_floats = start
        # The final states' buffer: with one state per layer, all of one width W (W6's
        # GRUs), shaped (layers, batch, W), a layer's state its row (the per-frame fast
        # path: one index per view); otherwise flat, a layer's states its slice.
        layout = {(n, width) for _i, _layer, n, width, _start, _end in self.stateful}
        self._one_state = len(layout) == 1 and layout.pop()[0] == 1
        if self._one_state:
            self._final_shape = (len(self.stateful), batch, self.stateful[0][3])
        else:
            self._final_shape = (start,)
        self._layer_rows = range(len(self.stateful))
        # One call's new arrays, the output then the final states, in one zeroed ctypes
        # block (out_floats + state_floats): made in 0.15 µs and passed to the library
        # as it is (a ctypes array goes as the address of its first element), the
        # arrays numpy views of it (np.ndarray over the block; they keep it alive).
        # np.empty and a pointer over its memory (c_float.from_buffer, byref) for each
        # of the two cost ~0.8 µs apiece, a sixth of the thin call's budget (W6).
        self._out_floats = int(np.prod(self.out_shape))
        self._block_type = ctypes.c_float * (self._out_floats + start)
        self._final_offset = 4 * self._out_floats  # bytes: the final states' start
        # What the last call returned: (the states list, per layer its state (one state)
        # or the tuple of its states, the final buffer's pointer argument). Passed back
        # unchanged, that buffer is the call's initial states, without a copy.
        self._returned = (None, (), None)
        # The arguments of the unchecked NNTKLayerChainStream other than the arrays.
        self._handle_arg = ctypes.c_void_p(self._handle)
        self._batch_arg, self._steps_arg = ctypes.c_int64(batch), ctypes.c_int64(steps)
        self.layers = list(layers)
        self.closes_seen = Layer.handles_closed  # see current()

    def close(self) -> None:
        """Destroys the native chain (once; the layers are the Sequential's)."""
        if self._finalizer is not None:
            self._finalizer()

    def _count(self) -> int:
        values = [ctypes.c_int64() for _ in range(4)]
        lib.NNTKLayerChainDescribe(self._handle, *[ctypes.byref(v) for v in values])
        return values[0].value

    def initial_buffer(self, states, caller: str | None = None) -> np.ndarray | None:
        """`states` (not None) as the native initial-state buffer, checked as
        RecurrentLayer.stream checks a state, each error naming states[k] (`caller`:
        the API the errors name, by default the chain's)."""
        caller = caller or self.caller
        count = len(self.stateful)
        if isinstance(states, np.ndarray) or not isinstance(states, (list, tuple)):
            raise TypeError(
                f"{caller}: states must be None or a list of {count} state lists "
                "(one per layer with states, in model order), as stream() returns"
            )
        if len(states) != count:
            raise ValueError(
                f"{caller}: states must hold {count} entries (one per layer with "
                f"states, in model order), got {len(states)}"
            )
        if not self.state_floats:  # no layer with states: nothing to pass
            return None
        buffer = np.zeros(self.state_floats, np.float32)
        for k, (i, layer, _n, _width, start, end) in enumerate(self.stateful):
            name = f"states[{k}] ({layer_name(i, layer)})"
            arr = layer._prepare_states(states[k], self.batch, name)
            if arr is not None:
                buffer[start:end] = arr.reshape(-1)
        return buffer

    def current(self, layers: list) -> bool:
        """Whether the chain still runs `layers`: the same layer objects, each with the
        native handle the chain was made over, for the same input size (an adaptive
        Activation re-created for another size may get the freed handle's address). A
        handle changes only when its layer is closed, so while no layer has been closed
        since the last look (Layer.handles_closed), the layers' identities suffice."""
        if layers != self.layers:  # list ==: element identity first, no Layer has __eq__
            return False
        if self.closes_seen == Layer.handles_closed:
            return True
        for handle, input_dim, layer in zip(self.handles, self.made_for, layers, strict=True):
            if layer._handle != handle or layer.input_dim != input_dim:
                return False
        self.closes_seen = Layer.handles_closed
        return True

    def stream(self, x: np.ndarray, states):
        """The chain on chunk `x` (float32 of the chain's shape) from `states`:
        (output, new states)."""
        returned = self._returned
        if states is None:
            initial = None
        elif states is returned[0] and self._unchanged(states, returned[1]):
            initial = returned[2]  # the last call's final states, without a copy
        else:
            initial = float_ptr(self.initial_buffer(states))
        try:
            x_arg = _byref(_c_float_over(x))
        except TypeError:  # read-only, or not C-contiguous
            x_arg = float_ptr(np.ascontiguousarray(x))
        block = self._block_type()
        final_arg = _byref(block, self._final_offset) if self.state_floats else None
        status = _stream(
            self._handle_arg,
            self._batch_arg,
            self._steps_arg,
            x_arg,
            initial,
            block,
            final_arg,
        )
        if status:
            raise_for_status(status)
        out = _ndarray(self.out_shape, _FLOAT32, block)
        if final_arg is None:
            return out, []
        final = _ndarray(self._final_shape, _FLOAT32, block, self._final_offset)
        new, kept = [], []
        if self._one_state:
            for k in self._layer_rows:
                state = final[k]
                new.append([state])
                kept.append(state)
        else:
            for _i, _layer, n, width, start, end in self.stateful:
                entry = _state_list(final[start:end].reshape(n, self.batch, width))
                new.append(entry)
                kept.append(tuple(entry))
        self._returned = (new, kept, final_arg)
        return out, new

    def _unchanged(self, states: list, kept: list) -> bool:
        """Whether `states`, the list the last call returned, still holds exactly the
        arrays `kept` recorded (by identity: an array's memory is the buffer it views,
        whatever the caller wrote into it; a replaced entry or array is checked anew)."""
        if len(states) != len(kept):
            return False
        if self._one_state:  # per frame (W6): one test per layer
            for entry, state in zip(states, kept, strict=True):
                if type(entry) is not list or len(entry) != 1 or entry[0] is not state:
                    return False
            return True
        for entry, arrays in zip(states, kept, strict=True):
            if type(entry) is not list or len(entry) != len(arrays):
                return False
            for given, array in zip(entry, arrays, strict=True):
                if given is not array:
                    return False
        return True
