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

from nntk_core._native import NNTKError, lib
from nntk_core.layer import float_ptr
from nntk_core.recurrent import RecurrentLayer, _state_list


def layer_name(index: int, layer) -> str:
    return f"layers[{index}] ({type(layer).__name__})"


def _unchanged(states: list, kept: tuple) -> bool:
    """Whether `states` still holds exactly the arrays `kept` recorded (identity: the
    arrays' memory is the buffer they view, whatever the caller wrote into it)."""
    if len(states) != len(kept):
        return False
    for entry, arrays in zip(states, kept, strict=True):
        if type(entry) is not list or len(entry) != len(arrays):
            return False
        for given, array in zip(entry, arrays, strict=True):
            if given is not array:
                return False
    return True


class LayerChain:
    """The native chain of `layers` (their handles `handles`) for chunks of `shape`,
    giving outputs of `out_shape`. Raises ValueError naming the layer that cannot
    stream (the library's reason)."""

    def __init__(self, layers, handles: tuple, shape: tuple[int, int, int], out_shape):
        batch, steps = shape[0], shape[1]
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
            raise ValueError(
                f"Sequential.stream: {layer_name(index, layers[index])} {reason}"
            ) from None
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
        self._returned = None  # (states list, its entries, the buffer): the fast path

    def close(self) -> None:
        """Destroys the native chain (once; the layers are the Sequential's)."""
        if self._finalizer is not None:
            self._finalizer()

    def _count(self) -> int:
        values = [ctypes.c_int64() for _ in range(4)]
        lib.NNTKLayerChainDescribe(self._handle, *[ctypes.byref(v) for v in values])
        return values[0].value

    def initial_buffer(self, states) -> np.ndarray | None:
        """`states` as the native initial-state buffer (None: zeros). What the last
        call returned, unchanged, is its own buffer; anything else is checked as
        RecurrentLayer.stream checks a state, each error naming states[k]."""
        if states is None:
            return None
        returned = self._returned
        if returned is not None and states is returned[0] and _unchanged(states, returned[1]):
            return returned[2]
        count = len(self.stateful)
        if isinstance(states, np.ndarray) or not isinstance(states, (list, tuple)):
            raise TypeError(
                f"Sequential.stream: states must be None or a list of {count} state lists "
                "(one per layer with states, in model order), as stream() returns"
            )
        if len(states) != count:
            raise ValueError(
                f"Sequential.stream: states must hold {count} entries (one per layer with "
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

    def stream(self, x: np.ndarray, states):
        initial = self.initial_buffer(states)
        out = np.empty(self.out_shape, np.float32)
        final = np.empty(self.state_floats, np.float32) if self.state_floats else None
        lib.NNTKLayerChainStream(
            self._handle,
            self.batch,
            self.steps,
            float_ptr(x),
            float_ptr(initial),
            float_ptr(out),
            float_ptr(final),
        )
        if final is None:
            return out, []
        new = []
        for _i, _layer, n, width, start, end in self.stateful:
            new.append(_state_list(final[start:end].reshape(n, self.batch, width)))
        self._returned = (new, tuple(tuple(entry) for entry in new), final)
        return out, new
