"""The one ctypes binding table of the native library, and its error check.

Every C function is declared here once (argtypes, restype). Every function that
returns an NNTKStatus is checked in one place (`_check_status`), and every
constructor that returns NULL in another (`_check_handle`): both raise
`NNTKError` carrying the library's own message, which names the C function and
the offending argument.

The library is `libnntk.so` installed inside this package (found through the
package's import path), or the file named by the environment variable
`NNTK_CORE_LIB` (a sanitizer build, the portable build, ...).
"""

from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, c_char_p, c_double, c_float, c_int32, c_int64, c_void_p
from pathlib import Path

__all__ = ["NNTKError", "lib", "library_path", "LAYER_FUNCTIONS", "layer_function"]

LIBRARY_ENV = "NNTK_CORE_LIB"
_LIBRARY_NAMES = ("libnntk.so", "libnntk.dylib", "nntk.dll")

# NNTKStatus values (nntk/status.h).
STATUS_NAMES = {
    0: "NNTK_OK",
    1: "NNTK_ERROR_NULL_POINTER",
    2: "NNTK_ERROR_INVALID_ARGUMENT",
    3: "NNTK_ERROR_INVALID_STATE",
    4: "NNTK_ERROR_OUT_OF_MEMORY",
}


class NNTKError(RuntimeError):
    """A native call failed; `status` is the NNTKStatus name, the message the library's."""

    def __init__(self, status: int, message: str):
        self.status = STATUS_NAMES.get(status, f"status {status}")
        self.message = message
        super().__init__(f"{message} [{self.status}]")


class TrainingConfig(ctypes.Structure):
    """NNTKTrainingConfig (nntk/status.h)."""

    _fields_ = [("max_batch", c_int64), ("max_steps", c_int64)]


def library_path() -> Path:
    """The shared library to load: $NNTK_CORE_LIB, else the one inside this package."""
    override = os.environ.get(LIBRARY_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise OSError(f"{LIBRARY_ENV}={override!r} does not name a file")
        return path
    # Search every directory of the package: an editable install keeps the
    # sources and the built library in different places.
    from importlib import resources

    candidates = [resources.files(__package__)]
    import nntk_core

    candidates += [Path(p) for p in getattr(nntk_core, "__path__", [])]
    for directory in candidates:
        for name in _LIBRARY_NAMES:
            path = Path(str(directory)) / name
            if path.is_file():
                return path
    raise OSError(_not_built_message(Path(str(candidates[0]))))


def _not_built_message(package_dir: Path) -> str:
    """Why no library was found, and what to do: most often nntk_core was imported from
    the source tree (Python puts the current directory first on sys.path), which holds
    the sources but not the library the install built."""
    if not (package_dir / "csrc").is_dir():
        return (
            f"the nntk native library is not in {package_dir}: reinstall with `pip install .` "
            f"from the nntk checkout, or set {LIBRARY_ENV}=/path/to/libnntk.so"
        )
    from importlib import metadata

    try:
        installed = Path(str(metadata.distribution("nntk").locate_file("nntk_core")))
    except metadata.PackageNotFoundError:
        installed = None
    if installed is None or not installed.is_dir() or installed.resolve() == package_dir.resolve():
        return (
            f"nntk_core was imported from the source tree {package_dir}, and no built nntk is "
            "installed: run `bash ci/parity-gate.sh` or `pip install .` in the checkout "
            f"(then import from another directory), or set {LIBRARY_ENV}=/path/to/libnntk.so"
        )
    return (
        f"nntk_core was imported from the source tree {package_dir} (Python puts the "
        "current directory first on sys.path), which holds the sources, not the built "
        f"library; the installed nntk_core, with its library, is {installed}. Run Python "
        "from another directory, or as `python -P` (the current directory not on sys.path)."
    )


def _preload_openblas() -> None:
    """Load the scipy-openblas32 wheel's library globally, so the default build's
    dependency on it resolves wherever the two packages were installed."""
    try:
        import scipy_openblas32
    except ImportError:  # the portable build needs no BLAS
        return
    path = Path(scipy_openblas32.get_lib_dir()) / f"lib{scipy_openblas32.get_library()}.so"
    if path.is_file():
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)


def _check_status(result, func, args):
    if result != 0:
        raise NNTKError(result, lib.NNTKLastError().decode(errors="replace"))
    return result


def _check_handle(result, func, args):
    if not result:
        raise NNTKError(lib.NNTKLastStatus(), lib.NNTKLastError().decode(errors="replace"))
    return result


_FLOAT_PTR = POINTER(c_float)
_FLOAT_PTR_PTR = POINTER(_FLOAT_PTR)
_INT64_PTR = POINTER(c_int64)
_STATUS = c_int32

# The functions every layer L has (docs/DESIGN.md §3), with the argument types that
# follow the handle. ConfigCreate's arguments differ per layer (LAYERS below).
_STANDARD = {
    "ConfigDestroy": (None, [c_void_p]),
    "CreateForInference": (c_void_p, [c_void_p]),
    "CreateForTraining": (c_void_p, [c_void_p, POINTER(TrainingConfig)]),
    "Destroy": (None, [c_void_p]),
    "GetWeights": (_STATUS, [c_void_p, _FLOAT_PTR_PTR, _INT64_PTR]),
    "OutputShape": (_STATUS, [c_void_p, c_int64, c_int64, _INT64_PTR, _INT64_PTR]),
    "ApplyInference": (_STATUS, [c_void_p, c_int64, c_int64, _FLOAT_PTR, _FLOAT_PTR]),
    "ApplyTrainingBatch": (_STATUS, [c_void_p, c_int64, c_int64, _FLOAT_PTR, _FLOAT_PTR]),
    "GradientCreate": (c_void_p, [c_void_p]),
    "GradientDestroy": (None, [c_void_p]),
    "GradientGetWeights": (_STATUS, [c_void_p, _FLOAT_PTR_PTR, _INT64_PTR]),
    "CalculateGradient": (_STATUS, [c_void_p, c_void_p, _FLOAT_PTR, _FLOAT_PTR]),
}

# Layer name -> ConfigCreate argument types. Adding a layer = one line here
# (plus any extra functions in EXTRA_FUNCTIONS).
LAYERS: dict[str, list] = {
    "Activation": [c_int32, c_int64],  # kind, features
    "Dense": [c_int64, c_int64, c_int32, c_int32],  # input_dim, units, activation, use_bias
    "TimeDistributedDense": [c_int64, c_int64, c_int32, c_int32],
    # input_dim, filters, kernel_size, strides, padding (NNTKPadding), dilation_rate, activation,
    # use_bias
    "Conv1d": [c_int64, c_int64, c_int64, c_int64, c_int32, c_int64, c_int32, c_int32],
    # input_dim, momentum, epsilon, center, scale
    "BatchNorm": [c_int64, c_double, c_double, c_int32, c_int32],
    # input_dim, units, activation, use_bias, return_sequences, go_backwards
    "RNN": [c_int64, c_int64, c_int32, c_int32, c_int32, c_int32],
    # input_dim, units, activation, recurrent_activation, use_bias, reset_after,
    # return_sequences, go_backwards
    "GRU": [c_int64, c_int64, c_int32, c_int32, c_int32, c_int32, c_int32, c_int32],
    # input_dim, units, activation, recurrent_activation, use_bias, return_sequences, go_backwards
    "LSTM": [c_int64, c_int64, c_int32, c_int32, c_int32, c_int32, c_int32],
    # layer kind, input_dim, units, activation, recurrent_activation, use_bias, reset_after,
    # return_sequences, go_backwards, merge_mode
    "Bidirectional": [c_int32, c_int64, c_int64] + [c_int32] * 7,
}

# Functions outside the standard set: name -> (restype, argtypes).
EXTRA_FUNCTIONS: dict[str, tuple] = {
    "NNTKLastError": (c_char_p, []),
    "NNTKLastStatus": (c_int32, []),
    "NNTKClearError": (None, []),
    "NNTKVersion": (c_char_p, []),
    "NNTKBackend": (c_char_p, []),
    # Kernels and memory (nntk/runtime.h).
    "NNTKKernelISA": (c_char_p, []),
    "NNTKKernelConstants": (c_char_p, []),
    "NNTKMemoryStats": (_STATUS, [_INT64_PTR, _INT64_PTR]),
    "NNTKMemoryResetPeak": (None, []),
    # Inference-mode forward that keeps what CalculateGradient needs (nntk/batch_norm.h).
    "NNTKBatchNormApplyFrozenBatch": (
        _STATUS,
        [c_void_p, c_int64, c_int64, _FLOAT_PTR, _FLOAT_PTR],
    ),
    # Losses (nntk/loss.h): kind, from_logits, rows, classes, y_pred, y_true, loss, d_pred.
    "NNTKLossCompute": (
        _STATUS,
        [c_int32, c_int32, c_int64, c_int64, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR],
    ),
    # Optimizers (nntk/optimizer.h). Hyperparameters are doubles, as Keras's Python floats.
    "NNTKOptimizerCreateSGD": (c_void_p, [c_double, c_double, c_int32]),
    "NNTKOptimizerCreateAdam": (c_void_p, [c_double, c_double, c_double, c_double, c_int32]),
    "NNTKOptimizerDestroy": (None, [c_void_p]),
    "NNTKOptimizerStep": (_STATUS, [c_void_p, c_int64, _FLOAT_PTR_PTR, _FLOAT_PTR_PTR, _INT64_PTR]),
    "NNTKOptimizerIterations": (_STATUS, [c_void_p, _INT64_PTR]),
    "NNTKOptimizerSetLearningRate": (_STATUS, [c_void_p, c_double]),
}

# The recurrent layers' state API: initial state in, final state out, and the
# gradients of both (nntk/rnn.h, gru.h, lstm.h, bidirectional.h).
for _layer in ("RNN", "GRU", "LSTM", "Bidirectional"):
    # (filter, batch, steps, in, initial_state, out, final_state)
    _with_state = [c_void_p, c_int64, c_int64, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR]
    EXTRA_FUNCTIONS[f"NNTK{_layer}ApplyInferenceWithState"] = (_STATUS, _with_state)
    EXTRA_FUNCTIONS[f"NNTK{_layer}ApplyTrainingBatchWithState"] = (_STATUS, _with_state)
    # (filter, gradient, d_out, d_final_state, d_in, d_initial_state)
    EXTRA_FUNCTIONS[f"NNTK{_layer}CalculateGradientWithState"] = (
        _STATUS,
        [c_void_p, c_void_p, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR],
    )

# Every layer function's full name, for the API-coverage tests.
LAYER_FUNCTIONS: dict[str, list[str]] = {
    layer: [f"NNTK{layer}ConfigCreate"] + [f"NNTK{layer}{suffix}" for suffix in _STANDARD]
    for layer in LAYERS
}


def _declare(cdll: ctypes.CDLL, name: str, restype, argtypes) -> None:
    func = getattr(cdll, name)
    func.restype = restype
    func.argtypes = argtypes
    if restype is _STATUS:
        func.errcheck = _check_status
    elif restype is c_void_p and "Create" in name:  # every constructor: NULL on error
        func.errcheck = _check_handle


def _load() -> ctypes.CDLL:
    _preload_openblas()
    cdll = ctypes.CDLL(str(library_path()))
    for name, (restype, argtypes) in EXTRA_FUNCTIONS.items():
        _declare(cdll, name, restype, argtypes)
    for layer, config_args in LAYERS.items():
        _declare(cdll, f"NNTK{layer}ConfigCreate", c_void_p, config_args)
        for suffix, (restype, argtypes) in _STANDARD.items():
            _declare(cdll, f"NNTK{layer}{suffix}", restype, argtypes)
    return cdll


lib = _load()


def layer_function(layer: str, suffix: str):
    """The C function NNTK<layer><suffix>."""
    return getattr(lib, f"NNTK{layer}{suffix}")
