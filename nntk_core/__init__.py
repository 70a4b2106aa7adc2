"""nntk_core: a small C library that runs and trains time-series layers, with
tf.keras semantics, and its Python binding (ctypes).

    import nntk_core as nn
    layer = nn.Dense(4, input_dim=3, activation="gelu")
    layer.set_weights([kernel, bias])          # tf.keras get_weights() order
    y = layer(x, training=True)
    dx, (d_kernel, d_bias) = layer.backward(dy)

    loss = nn.losses.CategoricalCrossentropy(from_logits=True)
    value, d_y = loss.gradient(y_true, y)      # Keras's order: target, prediction
    opt = nn.optimizers.Adam(learning_rate=1e-3)
    opt.apply_gradients(zip(grads, params))     # float32 arrays, updated in place

    model = nn.load_keras("model.keras")       # a tf.keras model file, without TensorFlow
    model.save("model.nntk")                   # the nntk model file (docs/MODEL_FILE.md)
    model = nn.load("model.nntk")
    with model.streamer(batch=1, steps=5) as s:    # live input, the states kept inside
        y = s(window)                           # or s(window, y): into y, no new array
"""

import ctypes

from nntk_core import losses, optimizers
from nntk_core._native import NNTKError, lib
from nntk_core.activations import ACTIVATIONS
from nntk_core.keras_io import (
    DropoutOmittedWarning,
    KerasFileError,
    KerasLoadError,
    UnsupportedKerasModel,
    load_keras,
)
from nntk_core.layer import Layer, check_positive_int, set_random_seed
from nntk_core.layers import LAYER_CLASSES
from nntk_core.model import Sequential
from nntk_core.model_file import ModelFileError, load
from nntk_core.recurrent import RecurrentLayer
from nntk_core.streamer import Streamer

__version__ = lib.NNTKVersion().decode()
BACKEND = lib.NNTKBackend().decode()


def _set_positive(setter, value, name: str, bits: int) -> None:
    """setter(value) for a C argument of `bits` bits that must be >= 1: TypeError /
    ValueError naming `name` for a non-integer, a value below 1 or one it cannot hold."""
    value = check_positive_int(value, name)
    if value > 2 ** (bits - 1) - 1:
        raise ValueError(f"{name} must fit an int{bits}, got {value}")
    setter(value)


def _read_int64(getter) -> int:
    """What getter(int64_t *) writes."""
    value = ctypes.c_int64()
    getter(ctypes.byref(value))
    return value.value


def set_thread_count(threads: int) -> None:
    """Threads the library's training calls may use (default 1); the results are
    bitwise the same for every count (docs/threads.md). TypeError / ValueError for
    a non-integer or a count below 1, NNTKError for one the library refuses."""
    _set_positive(lib.NNTKSetThreadCount, threads, "threads", 32)


def thread_count() -> int:
    """The count set_thread_count set (1 when never called)."""
    return _read_int64(lib.NNTKGetThreadCount)


def set_split_min_work(min_work: int) -> None:
    """The least work, in multiply-adds, of a loop the thread pool splits (default
    2**18; NNTKSetSplitMinWork in nntk/runtime.h). 1 splits every loop the pool can
    split, 2**62 none; the results are bitwise the same for every value. TypeError /
    ValueError for a non-integer or a value below 1, NNTKError for one the library
    refuses (above 2**62)."""
    _set_positive(lib.NNTKSetSplitMinWork, min_work, "min_work", 64)


def split_min_work() -> int:
    """The value set_split_min_work set (the library's default when never called)."""
    return _read_int64(lib.NNTKGetSplitMinWork)


# The layer classes (one per layer type of the library; the parity suite's coverage
# test checks that each has a spec) are this package's names too: nntk_core.GRU ...
globals().update(LAYER_CLASSES)

__all__ = [
    "ACTIVATIONS",
    "BACKEND",
    "DropoutOmittedWarning",
    "KerasFileError",
    "KerasLoadError",
    "Layer",
    "LAYER_CLASSES",
    "load",
    "load_keras",
    "ModelFileError",
    "losses",
    "NNTKError",
    "optimizers",
    "RecurrentLayer",
    "Sequential",
    "set_random_seed",
    "Streamer",
    "set_split_min_work",
    "set_thread_count",
    "split_min_work",
    "thread_count",
    "UnsupportedKerasModel",
    *LAYER_CLASSES,
]
