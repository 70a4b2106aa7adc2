"""Optimizers over the native library (nntk/optimizer.h), with tf_keras 2.21's
update forms, bit for bit.

    import nntk_core as nn
    opt = nn.optimizers.Adam(learning_rate=1e-3)
    opt.apply_gradients(zip(grads, params))  # float32 C-contiguous arrays, updated in place

Slots (SGD's momentum, Adam's moments) are keyed by position in the list passed
to apply_gradients: created at the first call, after which every call must pass
the same number of parameters with the same shapes, in the same order (an error
otherwise). The arrays themselves may be new objects at each call, e.g. the
copies returned by `layer.get_weights()`, as long as they line up.

`get_state()` / `set_state(state)` save and restore the step count and the slots
(nntk/optimizer.h's NNTKOptimizerGetState/SetState/SetIterations), and
`get_config()` the hyperparameters: `type(opt)(**opt.get_config())` then
`set_state(opt.get_state())` continues bit for bit where `opt` stopped (the nntk
model file stores the optimizer this way).
"""

from __future__ import annotations

import ctypes
import math
from numbers import Real

import numpy as np

from nntk_core._native import lib
from nntk_core.layer import as_float32, check_bool

__all__ = ["SGD", "Adam", "Optimizer", "OPTIMIZER_CLASSES"]

_FLOAT_PTR = ctypes.POINTER(ctypes.c_float)


def _check_real(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _check_learning_rate(value) -> float:
    value = _check_real(value, "learning_rate")
    if value <= 0.0:
        raise ValueError(f"learning_rate must be > 0, got {value}")
    as32 = float(np.float32(value)) if value < 3.5e38 else float("inf")
    if as32 == 0.0 or not math.isfinite(as32):
        raise ValueError(
            f"learning_rate = {value!r} is not a positive finite float32 (it is stored as "
            "float32, as in Keras)"
        )
    return value


def _check_beta(value, name: str) -> float:
    value = _check_real(value, name)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    if np.float32(value) == 1.0:
        raise ValueError(
            f"{name} = {value!r} rounds to 1 in float32 (the bias correction would divide by 0)"
        )
    return value


class Optimizer:
    """Base class: owns the native optimizer; `apply_gradients`, `iterations`."""

    _handle = None  # the native NNTKOptimizer (None once closed)

    def __init__(self, handle):
        if type(self) is Optimizer:  # a raw pointer from the caller could crash in close()
            raise TypeError("Optimizer is a base class: create SGD or Adam")
        self._handle = handle
        self._shapes: list[tuple[int, ...]] | None = None

    def _live_handle(self):
        if self._handle is None:
            raise RuntimeError(f"{type(self).__name__} was closed")
        return self._handle

    @property
    def iterations(self) -> int:
        """The number of completed apply_gradients calls (Keras's optimizer.iterations)."""
        count = ctypes.c_int64()
        lib.NNTKOptimizerIterations(self._live_handle(), ctypes.byref(count))
        return count.value

    @property
    def variable_shapes(self) -> list[tuple[int, ...]] | None:
        """The shapes of the variables this optimizer updates (fixed by its first
        apply_gradients: its slots are keyed by position), or None before the first."""
        return None if self._shapes is None else list(self._shapes)

    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        value = _check_learning_rate(value)
        lib.NNTKOptimizerSetLearningRate(self._live_handle(), value)
        self._learning_rate = value

    def apply_gradients(self, grads_and_vars) -> int:
        """One step: each (grad, var) pair updates var in place, like Keras's
        optimizer.apply_gradients(zip(grads, vars)). var must be a writeable
        float32 C-contiguous numpy array; grad anything real with var's shape.
        Returns the new iteration count."""
        try:
            pairs = list(grads_and_vars)
        except TypeError:
            raise TypeError(
                "grads_and_vars must be an iterable of (gradient, variable) pairs"
            ) from None
        if not pairs:
            raise ValueError("grads_and_vars is empty: there is nothing to update")
        grads, params = [], []
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(
                    f"grads_and_vars[{i}] must be a (gradient, variable) pair, got {type(pair)}"
                )
            grad, var = pair
            if not isinstance(var, np.ndarray):
                raise TypeError(
                    f"grads_and_vars[{i}]: the variable must be a numpy array "
                    f"(updated in place), got {type(var).__name__}"
                )
            if var.dtype != np.float32:
                raise TypeError(
                    f"grads_and_vars[{i}]: the variable must be float32, got {var.dtype}"
                )
            if not var.flags.c_contiguous:
                raise ValueError(f"grads_and_vars[{i}]: the variable must be C-contiguous")
            if not var.flags.writeable:
                raise ValueError(f"grads_and_vars[{i}]: the variable is read-only")
            if var.size == 0:
                raise ValueError(f"grads_and_vars[{i}]: the variable is empty (shape {var.shape})")
            if grad is None:
                raise ValueError(
                    f"grads_and_vars[{i}]: the gradient is None (slots are keyed by position, "
                    "so every variable needs a gradient at every step)"
                )
            g = as_float32(grad, f"grads_and_vars[{i}] gradient")
            if g.shape != var.shape:
                raise ValueError(
                    f"grads_and_vars[{i}]: gradient shape {g.shape} does not match the "
                    f"variable's {var.shape}"
                )
            grads.append(g)
            params.append(var)
        shapes = [v.shape for v in params]
        if self._shapes is not None and shapes != self._shapes:
            raise ValueError(
                "apply_gradients: the variables must keep the shapes and order of the first "
                f"call (slots are keyed by position): first {self._shapes}, now {shapes}"
            )
        n = len(params)
        param_ptrs = (_FLOAT_PTR * n)(*(p.ctypes.data_as(_FLOAT_PTR) for p in params))
        grad_ptrs = (_FLOAT_PTR * n)(*(g.ctypes.data_as(_FLOAT_PTR) for g in grads))
        sizes = (ctypes.c_int64 * n)(*(p.size for p in params))
        lib.NNTKOptimizerStep(self._live_handle(), n, param_ptrs, grad_ptrs, sizes)
        self._shapes = shapes
        return self.iterations

    def get_config(self) -> dict:
        """The hyperparameters, as the constructor's keyword arguments."""
        raise NotImplementedError

    def get_state(self) -> dict:
        """{"iterations": the step count, "variable_shapes": the shapes of the
        variables (None before the first step), "slots": float32 array: every slot
        (SGD m; Adam m, v and with amsgrad v̂), each over the variables in order, flat;
        empty before the first step}."""
        handle = self._live_handle()
        if self._shapes is None:
            return {
                "iterations": self.iterations,
                "variable_shapes": None,
                "slots": np.zeros(0, np.float32),
            }
        sizes = self._sizes(self._shapes)
        slots = np.empty(self._state_size(sizes), np.float32)
        lib.NNTKOptimizerGetState(
            handle, len(sizes), sizes, slots.ctypes.data_as(_FLOAT_PTR), slots.size
        )
        return {
            "iterations": self.iterations,
            "variable_shapes": list(self._shapes),
            "slots": slots,
        }

    def set_state(self, state: dict) -> None:
        """Restores what get_state() returned (of an optimizer of the same type and
        hyperparameters), before this optimizer's first step or for the variables it
        already updates. Everything is checked before anything changes."""
        if not isinstance(state, dict) or set(state) != {"iterations", "variable_shapes", "slots"}:
            raise ValueError(
                "state must be a dict with the keys iterations, variable_shapes and slots "
                "(as get_state() returns)"
            )
        iterations = state["iterations"]
        if isinstance(iterations, (bool, np.bool_)) or not isinstance(
            iterations, (int, np.integer)
        ):
            raise TypeError(f"state['iterations'] must be an int, got {iterations!r}")
        if not 0 <= iterations <= 1 << 62:
            raise ValueError(f"state['iterations'] must be in [0, 2^62], got {iterations}")
        slots = np.asarray(state["slots"])
        if slots.dtype != np.float32 or slots.ndim != 1:
            raise TypeError(
                f"state['slots'] must be a 1-D float32 array, got {slots.dtype} {slots.shape}"
            )
        handle = self._live_handle()
        shapes = state["variable_shapes"]
        if shapes is None:
            if slots.size:
                raise ValueError("state['slots'] must be empty when variable_shapes is None")
            if self._shapes is not None:
                raise ValueError(
                    "set_state: this optimizer already has slots; a state without "
                    "variable_shapes cannot replace them"
                )
            lib.NNTKOptimizerSetIterations(handle, int(iterations))
            return
        try:
            shapes = [tuple(int(d) for d in shape) for shape in shapes]
        except TypeError:
            raise TypeError("state['variable_shapes'] must be a list of shapes") from None
        if not shapes or any(not shape or min(shape) < 1 for shape in shapes):
            raise ValueError(f"state['variable_shapes'] must be non-empty shapes, got {shapes}")
        if self._shapes is not None and shapes != self._shapes:
            raise ValueError(
                f"set_state: the state's variable shapes {shapes} are not this optimizer's "
                f"{self._shapes}"
            )
        sizes = self._sizes(shapes)
        if slots.size != self._state_size(sizes):
            raise ValueError(
                f"state['slots'] holds {slots.size} values; {type(self).__name__} keeps "
                f"{self._state_size(sizes)} for variables of shapes {shapes}"
            )
        slots = np.ascontiguousarray(slots)
        lib.NNTKOptimizerSetState(
            handle, len(sizes), sizes, slots.ctypes.data_as(_FLOAT_PTR), slots.size
        )
        self._shapes = shapes
        lib.NNTKOptimizerSetIterations(handle, int(iterations))

    @staticmethod
    def _sizes(shapes):
        return (ctypes.c_int64 * len(shapes))(*(math.prod(shape) for shape in shapes))

    def _state_size(self, sizes) -> int:
        count = ctypes.c_int64()
        lib.NNTKOptimizerStateSize(self._live_handle(), sum(sizes), ctypes.byref(count))
        return count.value

    def close(self) -> None:
        """Frees the native optimizer (and its slots)."""
        if self._handle is not None:
            lib.NNTKOptimizerDestroy(self._handle)
            self._handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may already be gone
            pass


class SGD(Optimizer):
    """keras.optimizers.SGD(learning_rate=0.01, momentum=0.0, nesterov=False):
    m ← (−g·lr) + m·momentum; w ← w + m (nesterov: w ← w + (−g·lr) + m·momentum)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        learning_rate = _check_learning_rate(learning_rate)
        momentum = _check_real(momentum, "momentum")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.momentum = momentum
        self.nesterov = check_bool(nesterov, "nesterov")
        self._learning_rate = learning_rate
        super().__init__(lib.NNTKOptimizerCreateSGD(learning_rate, momentum, int(self.nesterov)))

    def get_config(self) -> dict:
        return {
            "learning_rate": self._learning_rate,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
        }

    def __repr__(self) -> str:
        return (
            f"SGD(learning_rate={self._learning_rate}, momentum={self.momentum}, "
            f"nesterov={self.nesterov})"
        )


class Adam(Optimizer):
    """keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999,
    epsilon=1e-7, amsgrad=False), with Keras's epsilon placement (on √v of the
    uncorrected v) and its bias correction folded into the step size."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False):
        learning_rate = _check_learning_rate(learning_rate)
        self.beta_1 = _check_beta(beta_1, "beta_1")
        self.beta_2 = _check_beta(beta_2, "beta_2")
        epsilon = _check_real(epsilon, "epsilon")
        if epsilon < 0.0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        self.epsilon = epsilon
        self.amsgrad = check_bool(amsgrad, "amsgrad")
        self._learning_rate = learning_rate
        super().__init__(
            lib.NNTKOptimizerCreateAdam(
                learning_rate, self.beta_1, self.beta_2, epsilon, int(self.amsgrad)
            )
        )

    def get_config(self) -> dict:
        return {
            "learning_rate": self._learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }

    def __repr__(self) -> str:
        return (
            f"Adam(learning_rate={self._learning_rate}, beta_1={self.beta_1}, "
            f"beta_2={self.beta_2}, epsilon={self.epsilon}, amsgrad={self.amsgrad})"
        )


# The optimizer classes by name (the model file's "type").
OPTIMIZER_CLASSES = {cls.__name__: cls for cls in (SGD, Adam)}
