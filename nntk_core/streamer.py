"""A stateful streaming object for live input (Sequential.streamer): the model fed one
chunk of a fixed shape per call, its layers' states kept between calls by the object,
as a tf.keras model built with `stateful=True` keeps them (`reset_states()` to start a
new sequence).

    with model.streamer(batch=1, steps=5) as s:     # chunks (1, 5, features)
        y = np.empty(s.output_shape, np.float32)
        for window in live_windows():                # each (1, 5, features) float32
            s(window, y)                             # y (= out): this chunk's output
        s.reset_states()                             # the next sequence starts from zeros

`s(chunk)` gives bit for bit what `model.stream(chunk, states)` gives, the states
carried as stream()'s caller carries them (one native NNTKLayerChainStream per call,
the same chain). What it saves per call is Python's work around that call: the states
stay in two native-ready buffers of the object, the call reading one and writing the
other (the library's inputs and outputs must not overlap, nntk/layer.h), so no state
array or list is made; with `out=` no output array either, and the call's other
arguments are ctypes objects made once. `out` may be given by keyword or by position
(as numpy's ufuncs take it): `s(chunk, y)` is ~0.3 µs cheaper than `s(chunk, out=y)`,
which makes Python build a keyword dictionary for the object's call.
"""

from __future__ import annotations

import ctypes
import math

import numpy as np

from nntk_core._native import raise_for_status, unchecked
from nntk_core.layer import (
    _FLOAT32,
    Layer,
    _addressof,
    _byref,
    _c_float_over,
    _ndarray,
    as_float32,
    check_out,
    check_positive_int,
    float_ptr,
)
from nntk_core.layer_chain import LayerChain
from nntk_core.recurrent import _state_list

_stream = unchecked("NNTKLayerChainStream")

CALLER = "Sequential.streamer"


def _state_layout(chain: LayerChain) -> tuple:
    """Where each layer's states lie in the chain's flat state buffer."""
    return tuple((n, width, start, end) for _i, _layer, n, width, start, end in chain.stateful)


class Streamer:
    """`model` fed chunks of (batch, steps, features) one call at a time, the layers'
    states kept in the object (Sequential.streamer makes it; see the module doc).

    - `s(chunk, out=None)` (`out` by keyword or position): the output for `chunk`, a
      (batch, steps, features) array, from the states the previous call left (zeros
      after creation or reset), the new states kept. A new array, or written into `out`
      and returned: a writeable C-contiguous float32 ndarray of `output_shape` sharing
      no memory with the chunk. A C-contiguous float32 ndarray of the shape is passed
      as it is; anything else is converted as stream() converts it (a strided or
      float64 array copied, a read-only one passed by address, a list of numbers made
      an array) or refused naming `chunk` or `out`; a refused argument leaves the
      states as they were (the native call reads one state buffer and writes the
      other: a failed call leaves them too).
    - `states`: copies of the current states, in stream()'s format (one list per layer
      with states, in model order: [h] or [h, c], each (batch, units)).
    - `reset_states(states=None)`: zeros (the next call starts a sequence), or the
      given states in stream()'s format (checked as stream() checks them).
    - `close()` (or `with`): destroys the native chain; calls then raise RuntimeError.
      The model and its layers stay the caller's.

    The object follows the model: weights set or trained between calls are used by the
    next call (the layers' native weights are read by every call); when a layer's
    native handle changed (a layer closed, an adaptive Activation re-created, a layer
    of model.layers replaced), the next call makes the chain again over the current
    handles, or raises what stream() would (a closed layer), and never runs the old
    chain. The states carry over a remade chain when its layers with states keep their
    sizes; otherwise the call raises until reset_states(). One call at a time (the
    native chain refuses an overlapping call)."""

    def __init__(self, model, batch: int = 1, steps: int = 1, features: int | None = None):
        self._chain: LayerChain | None = None
        self._closed = False
        self.output_shape: tuple[int, ...] | None = None  # the chain's (made below)
        from nntk_core.model import Sequential  # (model.py imports this module)

        if not isinstance(model, Sequential):
            raise TypeError(f"{CALLER}: model must be an nntk_core.Sequential, got {model!r:.80}")
        batch = check_positive_int(batch, "batch")
        steps = check_positive_int(steps, "steps")
        if features is None:
            features = _input_features(model.layers)
            if features is None:
                raise ValueError(
                    f"{CALLER}: the model's layers all adapt to their input's size: give features="
                )
        features = check_positive_int(features, "features")
        self._model = model
        self.shape = (batch, steps, features)  # every chunk's
        self._make_chain(keep_states=False)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{CALLER}: the streamer was closed")

    # -- the chain and its buffers ------------------------------------------------------
    def _make_chain(self, keep_states: bool) -> LayerChain:
        """A chain over the model's current layers and handles, replacing the old one;
        the state buffers kept when the layers with states keep their sizes, else made
        anew (zeros), or with `keep_states` (states not zeros) a ValueError."""
        self._check_open()
        chain = self._model._new_chain(self.shape, CALLER)
        old = self._chain
        same_layout = old is not None and _state_layout(old) == _state_layout(chain)
        if not same_layout and keep_states and self._step is not self._from_zeros:
            chain.close()
            raise ValueError(
                f"{CALLER}: the model's layers with states changed since the states were "
                "set (their sizes differ): call reset_states() to start from zeros or "
                "from states of the new layers"
            )
        if old is not None:
            old.close()
        self._chain = chain
        self.output_shape = chain.out_shape
        self._out_floats = math.prod(chain.out_shape)
        self._out_block = ctypes.c_float * self._out_floats
        self._in_bytes = 4 * math.prod(self.shape)
        self._out_bytes = 4 * self._out_floats
        self._handle_arg = ctypes.c_void_p(chain._handle)
        self._batch_arg = ctypes.c_int64(self.shape[0])
        self._steps_arg = ctypes.c_int64(self.shape[1])
        if not same_layout:
            self._make_state_buffers(chain.state_floats)
        return chain

    def _make_state_buffers(self, floats: int) -> None:
        """Two zeroed state buffers of `floats` (the chain's state layout) and the calls'
        state arguments: a step [initial, final, the step after] per place the current
        states are in: zeros (initial NULL, as stream(chunk, None)), the first buffer,
        the second. A call reads one buffer and writes the other (the library's inputs
        and outputs must not overlap)."""
        if floats:
            self._buffers = np.zeros((2, floats), np.float32)
            first, second = (_byref(_c_float_over(b)) for b in self._buffers)
            self._from_zeros = [None, first, None]
            self._from_first = [first, second, None]
            self._from_second = [second, first, None]
            self._from_zeros[2] = self._from_second[2] = self._from_first
            self._from_first[2] = self._from_second
        else:  # no layer with states: no state arguments
            self._buffers = None
            self._from_zeros = [None, None, None]
            self._from_zeros[2] = self._from_zeros
            self._from_first = self._from_second = self._from_zeros
        self._step = self._from_zeros

    def _current_chain(self, keep_states: bool = True) -> LayerChain:
        """The chain, made again when the model's layers or handles changed."""
        chain = self._chain
        if chain is not None and chain.current(self._model.layers):
            return chain
        return self._make_chain(keep_states)

    # -- the call -----------------------------------------------------------------------
    def __call__(self, chunk, out=None) -> np.ndarray:
        # The fast lane: a float32 ndarray of the shape, the chain current (the test of
        # LayerChain.current while no layer handle was destroyed since: the model's
        # layers are the chain's), the arrays what the library reads as they are;
        # anything else takes the checked call, which raises the errors.
        chain = self._chain
        if (
            type(chunk) is _ndarray
            and chunk.dtype is _FLOAT32
            and chunk.shape == self.shape
            and chain is not None
            and chain.closes_seen == Layer.handles_closed
            and self._model.layers == chain.layers
        ):
            try:
                x_c = _c_float_over(chunk)  # TypeError: read-only, or not C-contiguous
                if out is None:
                    out_arg = self._out_block()  # passed as the address of its first float
                    out = _ndarray(self.output_shape, _FLOAT32, out_arg)
                elif (
                    type(out) is not _ndarray
                    or out.dtype is not _FLOAT32
                    or out.shape != self.output_shape
                ):
                    return self._checked_call(chunk, out)
                else:
                    out_c = _c_float_over(out)  # TypeError: read-only, or not C-contiguous
                    # what np.may_share_memory tests for C-contiguous arrays. (out cannot
                    # share the state buffers: the object never hands them out.)
                    at, x_at = _addressof(out_c), _addressof(x_c)
                    if x_at < at + self._out_bytes and at < x_at + self._in_bytes:
                        return self._checked_call(chunk, out)
                    out_arg = _byref(out_c)
            except TypeError:
                return self._checked_call(chunk, out)
            self._run(_byref(x_c), out_arg)
            return out
        return self._checked_call(chunk, out)

    def _run(self, x_arg, out_arg) -> None:
        """The native call on arguments ready for it: from the current states, the next
        kept (a failed call raises and keeps them)."""
        initial, final, after = self._step
        status = _stream(
            self._handle_arg, self._batch_arg, self._steps_arg, x_arg, initial, out_arg, final
        )
        if status:
            raise_for_status(status)
        self._step = after

    def _checked_call(self, chunk, out) -> np.ndarray:
        """The call with every argument checked (and converted as stream() converts)."""
        self._check_open()
        x = as_float32(chunk, "chunk")
        if x.shape != self.shape:
            raise ValueError(
                f"{CALLER}: chunk must have the streamer's shape (batch, steps, features) = "
                f"{self.shape}, got {x.shape}"
            )
        self._current_chain()
        if out is None:
            out = np.empty(self.output_shape, np.float32)
        else:
            out = check_out(out, self.output_shape, x)
        self._run(float_ptr(x), float_ptr(out))
        return out

    # -- states -------------------------------------------------------------------------
    @property
    def states(self) -> list[list[np.ndarray]]:
        """Copies of the current states in stream()'s format: per layer with states, in
        model order, the list of its states ([h] or [h, c]), each (batch, units); [] for
        a model without states. Writing into them changes nothing here."""
        self._check_open()
        chain = self._chain
        if not chain.state_floats:
            return []
        if self._step is self._from_zeros:
            flat = np.zeros(chain.state_floats, np.float32)
        else:
            flat = self._buffers[0 if self._step is self._from_first else 1].copy()
        batch = self.shape[0]
        return [
            _state_list(flat[start:end].reshape(n, batch, width))
            for _i, _layer, n, width, start, end in chain.stateful
        ]

    def reset_states(self, states=None) -> None:
        """The next call starts from zeros (states None: a new sequence, as stream()'s
        states=None), or from `states`, in stream()'s format (a list with one entry per
        layer with states, in model order, each that layer's [h] or [h, c] or None =
        zeros), checked as stream() checks them, each error naming states[k]."""
        self._check_open()
        chain = self._current_chain(keep_states=False)
        if states is None:
            self._step = self._from_zeros
            return
        buffer = chain.initial_buffer(states, f"{CALLER}.reset_states")
        if buffer is None:  # no layer with states
            self._step = self._from_zeros
            return
        self._buffers[0] = buffer
        self._step = self._from_first

    # -- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        """Destroys the native chain (the layers are the model's); calls then raise."""
        self._closed = True
        if self._chain is not None:
            self._chain.close()
            self._chain = None

    def __enter__(self) -> Streamer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"output {self.output_shape}"
        return f"<Streamer chunks {getattr(self, 'shape', None)}, {state}>"


def _input_features(layers) -> int | None:
    """The model's input features: the first layer's input_dim (an adaptive Activation
    passes its input's size through); None when every layer adapts."""
    for layer in layers:
        if not getattr(layer, "adapts_input_dim", False):
            return layer.input_dim
    return None
