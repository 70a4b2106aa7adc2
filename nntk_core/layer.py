"""The Python side of a native layer: handle lifetime, argument checks, and the
Keras-shaped API (`__call__`, `backward`, `get_weights`, `set_weights`).

Everything about a layer comes from the library's description (nntk/layer.h,
`_native.LAYERS`): its constructor's arguments with their tf.keras names and
defaults (`Layer.__init_subclass__` builds the signature), their checks (kind
and range), the config (NNTKLayerConfigCreateFromValues), its weights' names,
shapes, Keras initializers and trainability, its states, and the modes it runs
in. A layer class is derived from it (nntk_core/layers.py); a hand-written
subclass only adds behaviour (streaming, a wrapped layer, a time axis).

Inputs: any real numeric array-like is converted to a C-contiguous float32
array (tf.keras likewise casts inputs to the layer's float32 dtype); complex,
boolean, object and string arrays are rejected with TypeError. Rank 2 (B, F)
and rank 3 (B, T, F) inputs are accepted unless a layer says otherwise. An input
already C-contiguous float32 is passed as it is, and `out=` writes a call's output
into the caller's array (check_out): the per-call cost above the C call is a few
microseconds (tools/call_overhead.py).
"""

from __future__ import annotations

import ctypes
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nntk_core import _native, activations
from nntk_core._native import (
    APPLY_FROZEN,
    APPLY_INFERENCE,
    APPLY_TRAINING,
    FIELD_BOOL,
    FIELD_ENUM,
    FIELD_FLOAT,
    FIELD_INT,
    Field,
    LayerType,
    NNTKError,
    TrainingConfig,
    lib,
    raise_for_status,
)

_FLOAT_PTR = ctypes.POINTER(ctypes.c_float)
_FLOAT32 = np.dtype(np.float32)


def is_float32_block(array) -> bool:
    """Whether `array` is already what the library reads: a C-contiguous float32 ndarray
    (the per-call fast path, checked in a fraction of a microsecond)."""
    return type(array) is np.ndarray and array.dtype is _FLOAT32 and array.flags.c_contiguous


def as_float32(array, name: str) -> np.ndarray:
    """`array` as a C-contiguous float32 ndarray; TypeError naming `name` unless real numbers."""
    if is_float32_block(array):
        return array
    try:
        arr = np.asarray(array)
    except (TypeError, ValueError) as e:  # ragged nested lists, ...
        raise type(e)(f"{name} is not an array of real numbers: {e}") from e
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers (float or int), got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def float_ptr(arr: np.ndarray | None):
    """A float* argument into a float32 C-contiguous array (None -> NULL), holding the
    array, for a declared function (a POINTER(c_float) parameter) and an unchecked one
    (_native.unchecked) alike: `ctypes.byref` of a c_float over the array's first
    element (a tenth of the cost of `arr.ctypes.data_as`); a read-only array, which
    from_buffer refuses, as a pointer cast from its address."""
    if arr is None:
        return None
    try:
        return _byref(_c_float_over(arr))
    except TypeError:  # read-only memory
        return arr.ctypes.data_as(_FLOAT_PTR)


# The per-call fast lane's names, bound once (a module global is a dictionary lookup,
# an attribute of ctypes or numpy one more).
_c_float_over = ctypes.c_float.from_buffer
_byref = ctypes.byref
_addressof = ctypes.addressof
_ndarray = np.ndarray
_empty = np.empty
_apply = _native.unchecked("NNTKLayerApply")


class PreparedCall:
    """A layer's inference call for inputs of one shape, prepared by a checked call of
    that shape (Layer._remember_call): the arguments of NNTKLayerApply other than the
    arrays, as the ctypes objects the unchecked function takes, and the shapes. A later
    call whose input has that shape runs it (`run`) without checking again what the
    shape already passed (rank, features, steps) and without converting an argument.
    Handle-bound: Layer.close() drops the layer's prepared calls."""

    __slots__ = (
        "handle",
        "batch",
        "steps",
        "in_bytes",
        "out_shape",
        "out_bytes",
        "state_shape",
        "state_bytes",
        "scratch",
        "scratch_arg",
    )

    def __init__(self, handle, batch: int, steps: int, in_shape, out_shape, state_shape=None):
        self.handle = ctypes.c_void_p(handle)
        self.batch, self.steps = ctypes.c_int64(batch), ctypes.c_int64(steps)
        self.in_bytes = 4 * math.prod(in_shape)
        self.out_shape = tuple(out_shape)
        self.out_bytes = 4 * math.prod(out_shape)
        self.state_shape = state_shape
        self.state_bytes = 4 * math.prod(state_shape) if state_shape else 0
        # A layer with states: the buffer a call that returns no state gives the native
        # side for the final state (which it writes and nobody reads), one for all calls.
        self.scratch = None if state_shape is None else np.empty(state_shape, np.float32)
        self.scratch_arg = float_ptr(self.scratch)

    def run(self, x, out, initial=None, final=None):
        """NNTKLayerApply in inference mode on `x`, an exact float32 ndarray of the prepared
        shape, into `out` (None: a new array), from the initial states `initial` (a
        c_float over their buffer of state_bytes, or None: zeros), the final states
        written to `final` (a pointer argument, or None: NULL); returns the output. None
        when x or out is not what the library reads as it is (x read-only or not
        C-contiguous; out not an exact writeable C-contiguous float32 ndarray of the
        output's shape, or sharing memory with x or the states): the checked call then
        converts, or raises the error naming the argument."""
        try:
            x_c = _c_float_over(x)  # TypeError: read-only, or not C-contiguous
            if out is None:
                out = _empty(self.out_shape, _FLOAT32)
                out_c = _c_float_over(out)
            else:
                if type(out) is not _ndarray or out.dtype is not _FLOAT32:
                    return None
                if out.shape != self.out_shape:
                    return None
                out_c = _c_float_over(out)
                # what np.may_share_memory tests for C-contiguous arrays: overlapping bounds
                at, end = _addressof(out_c), _addressof(out_c) + self.out_bytes
                x_at = _addressof(x_c)
                if x_at < end and at < x_at + self.in_bytes:
                    return None
                if initial is not None:
                    s_at = _addressof(initial)
                    if s_at < end and at < s_at + self.state_bytes:
                        return None
        except TypeError:
            return None
        status = _apply(
            self.handle,
            _INFERENCE,
            self.batch,
            self.steps,
            _byref(x_c),
            None if initial is None else _byref(initial),
            _byref(out_c),
            final,
        )
        if status:
            raise_for_status(status)
        return out


_INFERENCE = ctypes.c_int32(APPLY_INFERENCE)

# How many input sizes a layer remembers the output shape (Layer._native_output_shape) and
# the prepared call (Layer._calls) of.
_MAX_OUTPUT_SHAPES = 64


def check_out(out, shape: tuple[int, ...], *inputs: np.ndarray | None) -> np.ndarray:
    """`out`, the caller's array a call writes its output into and returns instead of a
    new one: a writeable C-contiguous float32 ndarray of exactly the output's `shape`,
    sharing no memory with the call's `inputs` (the library reads them while it writes
    out); TypeError / ValueError naming out."""
    if not (is_float32_block(out) and out.shape == shape and out.flags.writeable):
        _check_out_fully(out, shape)
    for array in inputs:
        if array is not None and np.may_share_memory(out, array):
            raise ValueError("out must not share memory with the call's input or states")
    return out


def _check_out_fully(out, shape: tuple[int, ...]) -> None:
    """Raises what is wrong with `out` (check_out), naming it; returns for an ndarray
    subclass (np.memmap, ...) that is otherwise right, the one `out` the fast test
    (an exact ndarray) sends here without a fault."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a float32 numpy array of shape {shape}, got {out!r}")
    if out.dtype != _FLOAT32:
        raise TypeError(f"out must have dtype float32, got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"out must have the output's shape {shape}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous (the library writes it as one block)")
    if not out.flags.writeable:
        raise ValueError("out is read-only")


def check_positive_int(value, name: str) -> int:
    """`value` as an int >= 1; TypeError/ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


_init_rng = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Seeds the generator of the layers' initial weights (like keras.utils.set_random_seed).
    A layer draws them at its first use, unless that use is set_weights()."""
    global _init_rng
    _init_rng = np.random.default_rng(seed)


def glorot_uniform(shape: tuple[int, ...]) -> np.ndarray:
    """Keras's default kernel initializer: U(±sqrt(6 / (fan_in + fan_out))), with the
    receptive field (leading axes of a conv kernel) multiplied into both fans."""
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return _init_rng.uniform(-limit, limit, size=shape).astype(np.float32)


def orthogonal(shape: tuple[int, int]) -> np.ndarray:
    """Keras's default recurrent initializer: a (semi-)orthogonal matrix."""
    rows, cols = shape
    a = _init_rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    q = q if rows >= cols else q.T
    return q[:rows, :cols].astype(np.float32)


def zeros(shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape, np.float32)


def ones(shape: tuple[int, ...]) -> np.ndarray:
    return np.ones(shape, np.float32)


def unit_forget_bias(shape: tuple[int, ...]) -> np.ndarray:
    """Keras LSTM's bias initializer with unit_forget_bias=True: zeros, but the second
    quarter of the last axis (the forget gate's) ones."""
    bias = np.zeros(shape, np.float32)
    quarter = shape[-1] // 4
    bias[..., quarter : 2 * quarter] = 1.0
    return bias


# tf.keras initializers by the name the description gives a weight block.
INITIALIZERS = {
    "glorot_uniform": glorot_uniform,
    "orthogonal": orthogonal,
    "zeros": zeros,
    "ones": ones,
    "unit_forget_bias": unit_forget_bias,
}


def _check_real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_field(field: Field, value):
    """`value` of constructor argument `field` as its Python value (an enum's
    canonical name); TypeError / ValueError naming the argument."""
    name = field.name
    if field.kind == FIELD_BOOL:
        return check_bool(value, name)
    if field.kind == FIELD_INT:
        if value is None and field.allows_none:
            return None
        value = check_positive_int(value, name) if field.min <= 1 else value
        if not max(field.min, 1) <= value <= field.max:
            raise ValueError(f"{name} must be in [{field.min:g}, {field.max:g}], got {value}")
        return value
    if field.kind == FIELD_FLOAT:
        value = _check_real(value, name)
        if field.min_exclusive and not (field.min < value <= field.max):
            upper = f" and <= {field.max:g}" if math.isfinite(field.max) else ""
            raise ValueError(f"{name} must be > {field.min:g}{upper}, got {value}")
        if not field.min_exclusive and not (field.min <= value <= field.max):
            raise ValueError(f"{name} must be in [{field.min:g}, {field.max:g}], got {value}")
        return value
    return _check_enum(field, value)


def _check_enum(field: Field, value) -> str:
    """An enum argument by its tf.keras name: None is Keras's "no function" (the
    "linear" activation), an alias or another case of a name is accepted."""
    name, names = field.name, field.enum_names
    if value is None and "linear" in names:
        return "linear"
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {list(names)}, not {type(value).__name__}")
    key = activations.ALIASES.get(value, value)
    if key not in names and key.lower() in names:
        key = key.lower()
    if key not in names:
        known = ", ".join(
            sorted(set(names) | {a for a, n in activations.ALIASES.items() if n in names})
        )
        raise ValueError(f"{name}={value!r} is not one of: {known}")
    return key


@dataclass(frozen=True)
class WeightBlock:
    """One weight of a config, as the library describes it."""

    name: str  # tf.keras weight name
    shape: tuple[int, ...]
    initializer: str  # tf.keras initializer (INITIALIZERS)
    trainable: bool


def positional_fields(layer_type: LayerType) -> list[str]:
    """The arguments a layer's constructor takes positionally, in order: tf.keras's
    leading constructor arguments that the layer has (`keras_positional` of its fields,
    input_dim aside), so that a positional call means what it means to tf.keras
    (`MaxPool1d(3)` is pool_size=3, `Dense(8, "relu")` units and activation). Keras's
    next argument is one the layer lacks (kernel_initializer, data_format, axis), so
    the others are keyword-only, input_dim among them as in tf.keras (`input_dim=`),
    except in a layer that takes no Keras argument positionally (Keras's first is axis
    or data_format, e.g. BatchNorm, LayerNorm, the global poolings): there input_dim,
    its one required argument, is the positional one (`nn.BatchNorm(64)`)."""
    keras = [f.name for f in layer_type.fields if f.name != "input_dim"]
    positional = keras[: layer_type.keras_positional]
    has_input_dim = any(f.name == "input_dim" for f in layer_type.fields)
    return positional or (["input_dim"] if has_input_dim else [])


def signature_of(
    layer_type: LayerType, defaults: dict | None = None, flags: dict | None = None
) -> inspect.Signature:
    """The constructor's signature: the positional_fields, then, keyword-only,
    input_dim and the other fields in the description's order, then the flags.
    `defaults` overrides a field's default (a hand-written class's behaviour, e.g. an
    optional input_dim); `flags` are Python-only keyword flags (name -> default)."""
    defaults = defaults or {}
    empty = inspect.Parameter.empty
    default_of = {
        f.name: defaults.get(f.name, empty if f.required else f.default) for f in layer_type.fields
    }
    positional = positional_fields(layer_type)
    keyword = sorted(
        (f.name for f in layer_type.fields if f.name not in positional),
        key=lambda name: name != "input_dim",
    )
    params = [
        inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default_of[n])
        for n in positional
    ]
    params += [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=default_of[n]) for n in keyword
    ]
    params += [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d)
        for n, d in (flags or {}).items()
    ]
    return inspect.Signature(params)


def bind_arguments(cls: type, args: tuple, kwargs: dict) -> inspect.BoundArguments:
    """The constructor's arguments bound to its signature, its defaults applied; a
    call the signature refuses raises TypeError naming the class and the arguments."""
    signature = cls.__signature__
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as e:
        positional = [
            n for n, p in signature.parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD
        ]
        if len(args) <= len(positional):
            raise TypeError(f"{cls.__name__}(): {e}") from None
        keyword = [n for n in signature.parameters if n not in positional]
        raise TypeError(
            f"{cls.__name__}() takes {len(positional)} positional argument"
            f"{'s' * (len(positional) != 1)} ({', '.join(positional)}) but {len(args)} were "
            f"given; the others are keyword-only: {', '.join(f'{n}=' for n in keyword)}"
        ) from None
    bound.apply_defaults()
    return bound


class Layer:
    """Base class of the native layers. A subclass names its layer type
    (`class X(Layer, layer="X")`, or the derived classes of nntk_core/layers.py);
    its constructor's signature, checks and weights then come from the description."""

    layer_type: LayerType | None = None  # the library's description of the layer
    input_ranks: tuple[int, ...] = (2, 3)
    # What a hand-written subclass may change: a field's default, and Python-only
    # keyword flags (name -> default, True or False).
    _defaults: dict = {}
    _flags: dict = {}
    # Hand-written subclasses by layer type name (nntk_core/layers.py uses them).
    hand_written: dict[str, type] = {}
    # How many native layer handles close() has destroyed, in every layer: a layer's
    # handle changes only then (LayerChain.current's quick test).
    handles_closed = 0

    def __init_subclass__(cls, layer: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if layer is not None:
            cls.layer_type = _native.LAYERS[layer]
            Layer.hand_written[layer] = cls
        if cls.layer_type is not None and not cls.layer_type.wraps:
            cls.__signature__ = signature_of(cls.layer_type, cls._defaults, cls._flags)

    def __init__(self, *args, **kwargs):
        if self.layer_type is None:
            raise TypeError(
                f"{type(self).__name__} is a base class: create a layer of one of the classes "
                "of nntk_core.LAYER_CLASSES"
            )
        bound = bind_arguments(type(self), args, kwargs)
        self._setup()
        for field in self.layer_type.fields:
            setattr(self, field.name, self._check_argument(field, bound.arguments[field.name]))
        for name in self._flags:
            setattr(self, name, check_bool(bound.arguments[name], name))
        self._describe()

    def _setup(self) -> None:
        """The handle's bookkeeping (before the arguments are read)."""
        self._handle = None
        self._gradient = None
        self._last_training_shape: tuple[int, ...] | None = (
            None  # output shape of the last training call
        )
        self._weights_set_after_call = False  # set_weights() came after that call
        self._closed = False
        self._output_dim: int | None = None
        # NNTKLayerOutputShape's answers by (batch, steps), asked once per input size:
        # they depend on the config alone; close() clears them (a closed layer refuses
        # even a shape question, and Activation re-creates its handle for a new size).
        self._output_shapes: dict[tuple[int, int], tuple[int, int]] = {}
        # The inference calls prepared by input shape (PreparedCall; same lifetime).
        self._calls: dict[tuple[int, ...], PreparedCall] = {}
        # How the native handle is created (set_handle_options): inference only, or
        # for training with this reserved capacity (NNTKTrainingConfig).
        self._inference_only = False
        self._capacity = TrainingConfig(0, 0)

    def _check_argument(self, field: Field, value):
        """A constructor argument's value (check_field; a subclass may accept more forms)."""
        return check_field(field, value)

    # -- the config and what the library says about it -----------------------------------
    def _config_values(self) -> list[float]:
        """The fields' values as NNTKLayerConfigCreateFromValues takes them."""
        values = []
        for field in self.layer_type.fields:
            value = getattr(self, field.name)
            if field.kind == FIELD_ENUM:
                value = field.enum_names.index(value)
            values.append(0 if value is None else value)  # None: an INT field's 0
        return [float(v) for v in values]

    def _new_config(self):
        """A new native config of this layer (the caller destroys it)."""
        values = self._config_values()
        array = (ctypes.c_double * max(len(values), 1))(*values)
        return lib.NNTKLayerConfigCreateFromValues(self.layer_type.index, array, len(values))

    def _describe(self) -> None:
        """Creates the config once (the library's checks across arguments) and reads its
        weight blocks and states."""
        try:
            config = self._new_config()
        except NNTKError as e:
            if e.status != "NNTK_ERROR_INVALID_ARGUMENT":
                raise
            # The library's check across arguments (the C function's name left out).
            reason = e.message.removeprefix("NNTKLayerConfigCreateFromValues: ")
            raise ValueError(f"{type(self).__name__}: {reason}") from None
        try:
            self._blocks = _weight_blocks(config)
            self._state_widths = _state_widths(config)
            sequence_input, self._drops_steps = _ranks(config)
        finally:
            lib.NNTKLayerConfigDestroy(config)
        if sequence_input:  # the description narrows the input ranks (never widens them)
            self.input_ranks = (3,)

    @property
    def drops_steps(self) -> bool:
        """Whether a (batch, steps, features) input gives a (batch, features) output
        (tf.keras's shapes, as the library describes them)."""
        return self._drops_steps

    def weight_names(self) -> list[str]:
        """Keras names of the weights, in get_weights() order (e.g. ["kernel", "bias"])."""
        return [b.name for b in self._blocks]

    def weight_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the weights, in get_weights() order."""
        return [b.shape for b in self._blocks]

    def trainable_mask(self) -> list[bool]:
        """Which weights are trainable (receive a gradient from backward)."""
        return [b.trainable for b in self._blocks]

    @property
    def output_dim(self) -> int | None:
        """Size of the output's last axis, as the library computes it."""
        if self._output_dim is None:
            self._output_dim = self._probe_output_features()
        return self._output_dim

    def _probe_output_features(self) -> int:
        """out_features of NNTKLayerOutputShape on a scratch inference handle, for the
        first input length the layer accepts (a "valid" window needs enough steps)."""
        config = self._new_config()
        try:
            handle = lib.NNTKLayerCreateForInference(config)
        finally:
            lib.NNTKLayerConfigDestroy(config)
        try:
            out_steps, out_features = ctypes.c_int64(), ctypes.c_int64()
            for power in range(25):
                try:
                    lib.NNTKLayerOutputShape(
                        handle, 1, 2**power, ctypes.byref(out_steps), ctypes.byref(out_features)
                    )
                    return out_features.value
                except NNTKError:
                    continue
            raise RuntimeError(f"{type(self).__name__}: no input length accepted")
        finally:
            lib.NNTKLayerDestroy(handle)
            lib.NNTKClearError()

    # -- handle lifetime -------------------------------------------------------------------
    def set_handle_options(
        self, *, inference_only: bool = False, max_batch: int = 0, max_steps: int = 0
    ) -> None:
        """Creates the native handle now, with these options, instead of on first use
        with the defaults (CreateForTraining, no reserved capacity); before the layer's
        first use (set_weights or a call). `inference_only`: CreateForInference, the
        on-device handle (inference calls only: no training call, no backward).
        `max_batch`, `max_steps`: the NNTKTrainingConfig of CreateForTraining, the
        workspace reserved at creation so that calls up to that size do not allocate
        (0, 0: reserve on first use; max_steps 0 with max_batch > 0 reserves one step,
        as for (batch, features) input). The library checks the sizes (NNTKError)."""
        if self._handle is not None:
            raise RuntimeError(
                f"{type(self).__name__}.set_handle_options: the native handle exists already; "
                "set the options before the first set_weights() or call"
            )
        inference_only = check_bool(inference_only, "inference_only")
        for value, name in ((max_batch, "max_batch"), (max_steps, "max_steps")):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an integer, got {value!r}")
            if not 0 <= value <= np.iinfo(np.int64).max:  # what the int64_t field holds
                raise ValueError(f"{name} must be >= 0 and fit in int64, got {value}")
        if inference_only and (max_batch or max_steps):
            raise ValueError(
                "max_batch and max_steps reserve training capacity: not with inference_only"
            )
        previous = self._inference_only, self._capacity
        self._inference_only = inference_only
        self._capacity = TrainingConfig(int(max_batch), int(max_steps))
        try:
            self._live_handle()
        except Exception:  # refused: the layer keeps its previous options
            self._inference_only, self._capacity = previous
            raise

    def _check_mode(self, training: bool) -> None:
        """Refuses a training call on an inference-only handle (before the native side does)."""
        if training and self._inference_only:
            raise RuntimeError(
                f"{type(self).__name__}: training call on a handle created for inference only "
                "(set_handle_options(inference_only=True))"
            )

    def _create(self, weights: np.ndarray | None = None) -> None:
        """Makes the native handle, starting from `weights` (the flat float32 block of a
        set_weights() before first use) or else from the initializers' draw (none is
        drawn for weights about to be overwritten: a recurrent kernel's orthogonal draw
        is a numpy QR on numpy's multithreaded BLAS)."""
        config = self._new_config()
        try:
            if self._inference_only:
                self._handle = lib.NNTKLayerCreateForInference(config)
            else:
                self._handle = lib.NNTKLayerCreateForTraining(config, ctypes.byref(self._capacity))
        finally:
            lib.NNTKLayerConfigDestroy(config)
        if weights is None:
            self.set_weights(self.initial_weights())
        else:
            self._weights_view()[:] = weights

    def initial_weights(self) -> list[np.ndarray]:
        """tf.keras's initial weights: each block drawn by its Keras initializer."""
        return [INITIALIZERS[b.initializer](b.shape) for b in self._blocks]

    def _live_handle(self):
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} was closed")
        if self._handle is None:
            self._create()
        return self._handle

    def close(self) -> None:
        """Frees the native objects; the layer cannot be used afterwards."""
        if self._gradient is not None:
            lib.NNTKLayerGradientDestroy(self._gradient)
            self._gradient = None
        if self._handle is not None:
            lib.NNTKLayerDestroy(self._handle)
            self._handle = None
            Layer.handles_closed += 1
        self._output_shapes.clear()
        self._calls.clear()
        self._closed = True

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may already be gone
            pass

    # -- weights ---------------------------------------------------------------------------
    def _weights_view(self) -> np.ndarray:
        """A float32 view of the native weight block (no copy)."""
        handle = self._live_handle()
        ptr = _FLOAT_PTR()
        count = ctypes.c_int64()
        lib.NNTKLayerGetWeights(handle, ctypes.byref(ptr), ctypes.byref(count))
        if count.value == 0:
            return np.zeros(0, dtype=np.float32)
        return np.ctypeslib.as_array(ptr, shape=(count.value,))

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, in tf.keras get_weights() order and shapes."""
        block = self._weights_view()
        out, offset = [], 0
        for shape in self.weight_shapes():
            size = int(np.prod(shape))
            out.append(block[offset : offset + size].reshape(shape).copy())
            offset += size
        return out

    def trainable_weight_views(self) -> list[np.ndarray]:
        """Writeable float32 views onto the native trainable weights, in tf.keras
        trainable_weights order: an optimizer updates them in place."""
        block = self._weights_view()
        views, offset = [], 0
        for shape, trainable in zip(self.weight_shapes(), self.trainable_mask(), strict=True):
            size = int(np.prod(shape))
            if trainable:
                views.append(block[offset : offset + size].reshape(shape))
            offset += size
        return views

    def set_weights(self, weights: Sequence) -> None:
        """Sets the weights from arrays in tf.keras get_weights() order and shapes."""
        shapes = self.weight_shapes()
        names = self.weight_names()
        if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence):
            raise TypeError("weights must be a list of arrays in tf.keras get_weights() order")
        if len(weights) != len(shapes):
            raise ValueError(
                f"{type(self).__name__}.set_weights: expected {len(shapes)} arrays "
                f"({', '.join(names)}), got {len(weights)}"
            )
        arrays = []
        for name, shape, w in zip(names, shapes, weights, strict=True):
            arr = as_float32(w, f"weights[{name}]")
            if arr.shape != tuple(shape):
                raise ValueError(
                    f"{type(self).__name__}.set_weights: {name} must have shape {tuple(shape)}, "
                    f"got {arr.shape}"
                )
            arrays.append(arr.ravel())
        flat = np.concatenate(arrays) if arrays else np.zeros(0, np.float32)
        if self._handle is None and not self._closed:
            self._create(flat)
        else:  # (a closed layer raises here)
            self._weights_view()[:] = flat
        # The kept training batch was computed with the old weights, but the native
        # gradient reads the current ones: the mix is neither Keras's gradient (taken at
        # the call's weights) nor any other. backward() is refused until the next
        # training call.
        if self._last_training_shape is not None:
            self._weights_set_after_call = True
        self._last_training_shape = None

    # -- forward / backward ----------------------------------------------------------------
    def _prepare_input(self, x, name: str = "x") -> tuple[np.ndarray, int, int]:
        """x as float32 (B, T, F) plus (B, T); checks rank and the feature size."""
        arr = as_float32(x, name)
        if arr.ndim not in self.input_ranks:
            ranks = " or ".join(
                {2: "(batch, features)", 3: "(batch, steps, features)"}[r] for r in self.input_ranks
            )
            raise ValueError(f"{name} must be {ranks}, got shape {arr.shape}")
        if arr.shape[-1] != self.input_dim:
            raise ValueError(
                f"{name} has {arr.shape[-1]} features (last axis) but the layer's input_dim "
                f"is {self.input_dim}; shape {arr.shape}"
            )
        if arr.size == 0:
            raise ValueError(f"{name} is empty (shape {arr.shape}): batch and steps must be >= 1")
        batch = arr.shape[0]
        steps = arr.shape[1] if arr.ndim == 3 else 1
        return arr, batch, steps

    def _native_output_shape(self, batch: int, steps: int) -> tuple[int, int]:
        """(out_steps, out_features) of NNTKLayerOutputShape for (batch, steps), asked of
        the library once per input size (the call's NNTKError, e.g. too few steps for a
        "valid" window, each time)."""
        shape = self._output_shapes.get((batch, steps))
        if shape is None:
            out_steps, out_features = ctypes.c_int64(), ctypes.c_int64()
            lib.NNTKLayerOutputShape(
                self._live_handle(),
                batch,
                steps,
                ctypes.byref(out_steps),
                ctypes.byref(out_features),
            )
            shape = out_steps.value, out_features.value
            if len(self._output_shapes) >= _MAX_OUTPUT_SHAPES:  # many sizes: keep it small
                self._output_shapes.clear()
            self._output_shapes[batch, steps] = shape
        return shape

    def _output_shape(self, x_shape: tuple[int, ...], batch: int, steps: int) -> tuple[int, ...]:
        out_steps, out_features = self._native_output_shape(batch, steps)
        if len(x_shape) == 3 and not self.drops_steps:
            return (batch, out_steps, out_features)
        return (batch, out_features)

    # A layer whose inference-mode call differs from its training call (has_frozen:
    # BatchNorm's moving statistics) keeps what backward() needs in both: training=False
    # runs the native frozen batch (inference plus a copy of x), so that backward()
    # then returns the inference-mode gradients, as tf.keras does for training=False.
    # An inference-only handle keeps nothing: its calls are plain inference.
    def _keeps_for_backward(self, training: bool) -> bool:
        """Whether a call with this `training` flag keeps what backward() needs."""
        return training or (self.layer_type.has_frozen and not self._inference_only)

    def _mode(self, training: bool) -> int:
        """The NNTKApplyMode of a call."""
        if training:
            return APPLY_TRAINING
        return APPLY_FROZEN if self._keeps_for_backward(training) else APPLY_INFERENCE

    def _apply(self, handle, training: bool, batch: int, steps: int, arr, out) -> None:
        """Runs the native forward pass of a call."""
        lib.NNTKLayerApply(
            handle, self._mode(training), batch, steps, float_ptr(arr), None, float_ptr(out), None
        )

    def _remember_call(self, x_shape, batch: int, steps: int, out_shape, state_shape=None) -> None:
        """Prepares the inference call for inputs of `x_shape` (PreparedCall), after a
        checked inference call of that shape passed."""
        if len(self._calls) >= _MAX_OUTPUT_SHAPES:  # many sizes: keep it small
            self._calls.clear()
        self._calls[x_shape] = PreparedCall(
            self._handle, batch, steps, x_shape, out_shape, state_shape
        )

    def __call__(self, x, training: bool = False, *, out=None) -> np.ndarray:
        """y = layer(x); with training=True also keeps what backward() needs.
        `out`: an array to write y into and return (check_out), instead of a new array
        each call; the next call with the same `out` overwrites it."""
        # The fast lane: an inference call on a float32 ndarray of a shape a checked call
        # prepared (its checks passed for that shape); anything else takes the checked
        # call, which raises the errors naming the argument.
        if training is False and type(x) is _ndarray and x.dtype is _FLOAT32:
            call = self._calls.get(x.shape)
            if call is not None:
                y = call.run(x, out)
                if y is not None:
                    return y
        return self._checked_call(x, training, out)

    def _checked_call(self, x, training, out) -> np.ndarray:
        """layer(x) with every argument checked (and converted where Keras would)."""
        training = check_bool(training, "training")
        self._check_mode(training)
        arr, batch, steps = self._prepare_input(x)
        handle = self._live_handle()
        shape = self._output_shape(arr.shape, batch, steps)
        out = np.empty(shape, dtype=np.float32) if out is None else check_out(out, shape, arr)
        keeps = self._keeps_for_backward(training)
        if keeps:
            self._last_training_shape = None  # the native side drops the old state first
        self._apply(handle, training, batch, steps, arr, out)
        if keeps:
            self._weights_set_after_call = False
            self._last_training_shape = out.shape
            self._last_input_shape = arr.shape
        else:  # an inference call (APPLY_INFERENCE)
            self._remember_call(arr.shape, batch, steps, shape)
        return out

    def backward(
        self, dy, input_gradient: bool = True
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """Gradients of the last training call (for BatchNorm: of the last call, in its
        mode) for the upstream gradient dy:
        (dx, [d weight for each trainable weight, in tf.keras trainable_weights order]),
        summed over the batch, as tf.GradientTape.gradient(y, [x] + weights, dy) gives.
        `input_gradient=False`: dx is not computed (d_in NULL) and is returned as None."""
        input_gradient = check_bool(input_gradient, "input_gradient")
        self._require_training_call()
        grad = as_float32(dy, "dy")
        if grad.shape != self._last_training_shape:
            raise ValueError(
                f"dy must have the shape of the last training output {self._last_training_shape}, "
                f"got {grad.shape}"
            )
        handle = self._live_handle()
        dx = np.empty(self._last_input_shape, dtype=np.float32) if input_gradient else None
        lib.NNTKLayerCalculateGradient(
            handle, self._gradient_handle(), float_ptr(grad), None, float_ptr(dx), None
        )
        return dx, self._weight_gradients()

    def _require_training_call(self) -> None:
        """Raises unless a training call keeps what backward() needs."""
        if self._last_training_shape is not None:
            return
        if self._inference_only:
            raise RuntimeError(
                f"{type(self).__name__}.backward: the handle was created for inference only "
                "(set_handle_options(inference_only=True)): no gradients"
            )
        if self._weights_set_after_call:
            raise RuntimeError(
                f"{type(self).__name__}.backward: the weights were set after the last training "
                "call; call layer(x, training=True) again (the gradient is taken at the weights "
                "of the call)"
            )
        raise RuntimeError(
            f"{type(self).__name__}.backward: no training call yet; "
            "call layer(x, training=True) first"
        )

    def _gradient_handle(self):
        """The native gradient object (created on first use)."""
        if self._gradient is None:
            self._gradient = lib.NNTKLayerGradientCreate(self._live_handle())
        return self._gradient

    def _weight_gradients(self) -> list[np.ndarray]:
        """Copies of the trainable weights' gradients from the native gradient block."""
        ptr = _FLOAT_PTR()
        count = ctypes.c_int64()
        lib.NNTKLayerGradientGetWeights(self._gradient, ctypes.byref(ptr), ctypes.byref(count))
        block = (
            np.ctypeslib.as_array(ptr, shape=(count.value,))
            if count.value
            else np.zeros(0, np.float32)
        )
        grads, offset = [], 0
        for shape, trainable in zip(self.weight_shapes(), self.trainable_mask(), strict=True):
            size = int(np.prod(shape))
            if trainable:
                grads.append(block[offset : offset + size].reshape(shape).copy())
            offset += size
        return grads

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._config_repr()})"

    def _config_repr(self) -> str:
        names = inspect.signature(type(self)).parameters
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in names)


def _weight_blocks(config) -> list[WeightBlock]:
    """The weight blocks of a native config (NNTKLayerConfigWeightBlock)."""
    count = ctypes.c_int64()
    lib.NNTKLayerConfigWeightCount(config, ctypes.byref(count))
    blocks = []
    for i in range(count.value):
        name, initializer = ctypes.c_char_p(), ctypes.c_char_p()
        rank, trainable = ctypes.c_int64(), ctypes.c_int64()
        shape = (ctypes.c_int64 * _native.MAX_WEIGHT_RANK)()
        lib.NNTKLayerConfigWeightBlock(
            config,
            i,
            ctypes.byref(name),
            ctypes.byref(initializer),
            ctypes.byref(rank),
            shape,
            ctypes.byref(trainable),
        )
        blocks.append(
            WeightBlock(
                name.value.decode(),
                tuple(shape[: rank.value]),
                initializer.value.decode(),
                bool(trainable.value),
            )
        )
    return blocks


def _ranks(config) -> tuple[bool, bool]:
    """(sequence_input, drops_steps) of a native config (NNTKLayerConfigRanks)."""
    sequence_input, drops_steps = ctypes.c_int64(), ctypes.c_int64()
    lib.NNTKLayerConfigRanks(config, ctypes.byref(sequence_input), ctypes.byref(drops_steps))
    return bool(sequence_input.value), bool(drops_steps.value)


def _state_widths(config) -> list[int]:
    """The widths of a native config's states (NNTKLayerConfigStates; [] without states)."""
    count = ctypes.c_int64()
    widths = (ctypes.c_int64 * _native.MAX_STATES)()
    lib.NNTKLayerConfigStates(config, ctypes.byref(count), widths)
    return list(widths[: count.value])
