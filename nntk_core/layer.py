"""The Python side of a native layer: handle lifetime, argument checks, and the
Keras-shaped API (`__call__`, `backward`, `get_weights`, `set_weights`).

A concrete layer says which native layer it drives (`_native`), its
ConfigCreate arguments, and its weights' Keras names and shapes; everything
else is here.

Inputs: any real numeric array-like is converted to a C-contiguous float32
array (tf.keras likewise casts inputs to the layer's float32 dtype); complex,
boolean, object and string arrays are rejected with TypeError. Rank 2 (B, F)
and rank 3 (B, T, F) inputs are accepted unless a layer says otherwise.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np

from nntk_core import _native
from nntk_core._native import TrainingConfig, layer_function

_FLOAT_PTR = ctypes.POINTER(ctypes.c_float)


def as_float32(array, name: str) -> np.ndarray:
    """`array` as a C-contiguous float32 ndarray; TypeError naming `name` unless real numbers."""
    try:
        arr = np.asarray(array)
    except (TypeError, ValueError) as e:  # ragged nested lists, ...
        raise type(e)(f"{name} is not an array of real numbers: {e}") from e
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers (float or int), got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def float_ptr(arr: np.ndarray | None):
    """A float* into a float32 C-contiguous array (None -> NULL)."""
    if arr is None:
        return None
    return arr.ctypes.data_as(_FLOAT_PTR)


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
    """Seeds the generator of the layers' initial weights (like keras.utils.set_random_seed)."""
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


class Layer:
    """Base class of the native layers. Subclasses set `_native` and implement
    `_config_args()`, `weight_names()` and `weight_shapes()`."""

    _native: str = ""  # the C layer name: NNTK<_native>ConfigCreate ...
    input_ranks: tuple[int, ...] = (2, 3)

    def __init__(self, input_dim: int):
        self.input_dim = check_positive_int(input_dim, "input_dim")
        self._handle = None
        self._gradient = None
        self._last_training_shape: tuple[int, ...] | None = (
            None  # output shape of the last training call
        )
        self._weights_set_after_call = False  # set_weights() came after that call
        self._closed = False

    # -- what a subclass provides ---------------------------------------------------------
    def _config_args(self) -> tuple:
        raise NotImplementedError

    def weight_names(self) -> list[str]:
        """Keras names of the weights, in get_weights() order (e.g. ["kernel", "bias"])."""
        raise NotImplementedError

    def weight_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the weights, in get_weights() order."""
        raise NotImplementedError

    def trainable_mask(self) -> list[bool]:
        """Which weights are trainable (receive a gradient from backward); all by default."""
        return [True] * len(self.weight_shapes())

    @property
    def output_dim(self) -> int | None:
        """Size of the output's last axis (None: the same as the input's)."""
        raise NotImplementedError

    # -- handle lifetime -------------------------------------------------------------------
    def _fn(self, suffix: str):
        return layer_function(self._native, suffix)

    def _create(self) -> None:
        config = self._fn("ConfigCreate")(*self._config_args())
        try:
            self._handle = self._fn("CreateForTraining")(config, ctypes.byref(TrainingConfig(0, 0)))
        finally:
            self._fn("ConfigDestroy")(config)
        _, count = self._weights_view_raw()
        expected = sum(int(np.prod(s)) for s in self.weight_shapes())
        if count != expected:  # the Python and C descriptions of the weights disagree
            raise RuntimeError(
                f"{type(self).__name__}: native weight block has {count} floats, "
                f"the declared shapes {self.weight_shapes()} hold {expected}"
            )
        initial = self.initial_weights()
        if initial is not None:
            self.set_weights(initial)

    def initial_weights(self) -> list[np.ndarray] | None:
        """tf.keras's default initial weights (None: keep the native layer's own).
        The default: glorot_uniform for "kernel", orthogonal for "recurrent_kernel",
        zeros for everything else."""
        weights = []
        for name, shape in zip(self.weight_names(), self.weight_shapes(), strict=True):
            if name.endswith("recurrent_kernel"):
                weights.append(orthogonal(shape))
            elif name.endswith("kernel"):
                weights.append(glorot_uniform(shape))
            else:
                weights.append(np.zeros(shape, np.float32))
        return weights

    def _live_handle(self):
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} was closed")
        if self._handle is None:
            self._create()
        return self._handle

    def close(self) -> None:
        """Frees the native objects; the layer cannot be used afterwards."""
        if self._gradient is not None:
            self._fn("GradientDestroy")(self._gradient)
            self._gradient = None
        if self._handle is not None:
            self._fn("Destroy")(self._handle)
            self._handle = None
        self._closed = True

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may already be gone
            pass

    # -- weights ---------------------------------------------------------------------------
    def _weights_view_raw(self):
        ptr = _FLOAT_PTR()
        count = ctypes.c_int64()
        self._fn("GetWeights")(self._handle, ctypes.byref(ptr), ctypes.byref(count))
        return ptr, count.value

    def _weights_view(self) -> np.ndarray:
        """A float32 view of the native weight block (no copy)."""
        handle = self._live_handle()
        del handle
        ptr, count = self._weights_view_raw()
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        return np.ctypeslib.as_array(ptr, shape=(count,))

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
        block = self._weights_view()
        if arrays:
            block[:] = np.concatenate(arrays)
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

    def _output_shape(self, x_shape: tuple[int, ...], batch: int, steps: int) -> tuple[int, ...]:
        out_steps, out_features = ctypes.c_int64(), ctypes.c_int64()
        self._fn("OutputShape")(
            self._live_handle(), batch, steps, ctypes.byref(out_steps), ctypes.byref(out_features)
        )
        if len(x_shape) == 3:
            return (batch, out_steps.value, out_features.value)
        return (batch, out_features.value)

    def _keeps_for_backward(self, training: bool) -> bool:
        """Whether a call with this `training` flag keeps what backward() needs.
        Training calls do; a layer whose inference-mode call can keep it too
        (BatchNorm) overrides this and `_apply`."""
        return training

    def _apply(self, handle, training: bool, batch: int, steps: int, arr, out) -> None:
        """Runs the native forward pass for `training` (ApplyTrainingBatch / ApplyInference)."""
        suffix = "ApplyTrainingBatch" if training else "ApplyInference"
        self._fn(suffix)(handle, batch, steps, float_ptr(arr), float_ptr(out))

    def __call__(self, x, training: bool = False) -> np.ndarray:
        """y = layer(x); with training=True also keeps what backward() needs."""
        training = check_bool(training, "training")
        arr, batch, steps = self._prepare_input(x)
        handle = self._live_handle()
        out = np.empty(self._output_shape(arr.shape, batch, steps), dtype=np.float32)
        keeps = self._keeps_for_backward(training)
        if keeps:
            self._last_training_shape = None  # the native side drops the old state first
        self._apply(handle, training, batch, steps, arr, out)
        if keeps:
            self._weights_set_after_call = False
            self._last_training_shape = out.shape
            self._last_input_shape = arr.shape
        return out

    def backward(self, dy) -> tuple[np.ndarray, list[np.ndarray]]:
        """Gradients of the last training call (for BatchNorm: of the last call, in its
        mode) for the upstream gradient dy:
        (dx, [d weight for each trainable weight, in tf.keras trainable_weights order]),
        summed over the batch, as tf.GradientTape.gradient(y, [x] + weights, dy) gives."""
        self._require_training_call()
        grad = as_float32(dy, "dy")
        if grad.shape != self._last_training_shape:
            raise ValueError(
                f"dy must have the shape of the last training output {self._last_training_shape}, "
                f"got {grad.shape}"
            )
        handle = self._live_handle()
        dx = np.empty(self._last_input_shape, dtype=np.float32)
        self._fn("CalculateGradient")(
            handle, self._gradient_handle(), float_ptr(grad), float_ptr(dx)
        )
        return dx, self._weight_gradients()

    def _require_training_call(self) -> None:
        """Raises unless a training call keeps what backward() needs."""
        if self._last_training_shape is not None:
            return
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
            self._gradient = self._fn("GradientCreate")(self._live_handle())
        return self._gradient

    def _weight_gradients(self) -> list[np.ndarray]:
        """Copies of the trainable weights' gradients from the native gradient block."""
        ptr = _FLOAT_PTR()
        count = ctypes.c_int64()
        self._fn("GradientGetWeights")(self._gradient, ctypes.byref(ptr), ctypes.byref(count))
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
        return f"input_dim={self.input_dim}"


_ = _native  # the binding is loaded when the first layer module is imported
