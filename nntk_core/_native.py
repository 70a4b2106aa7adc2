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
import math
import os
from ctypes import POINTER, c_char_p, c_double, c_float, c_int32, c_int64, c_void_p
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "NNTKError",
    "lib",
    "library_path",
    "LAYERS",
    "LAYER_FUNCTIONS",
    "LayerType",
    "Field",
    "layer_function",
    "unchecked",
    "raise_for_status",
]

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

# The typed functions every layer L has (docs/DESIGN.md §3: one NNTK_DEFINE_LAYER line
# per layer), with their argument types, and the ones a layer may add (probed in the
# library: the state forms of the layers with states, BatchNorm's frozen batch,
# Bidirectional's config from an inner config). The binding itself uses the generic
# functions below; the typed ones are declared for the C-level tests and tools.
# NNTK<L>ConfigCreate is not: its C arguments are per layer (the binding creates
# configs with NNTKLayerConfigCreateFromValues).
_WITH_STATE = [c_void_p, c_int64, c_int64, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR]
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
_OPTIONAL = {
    "ApplyInferenceWithState": (_STATUS, _WITH_STATE),
    "ApplyTrainingBatchWithState": (_STATUS, _WITH_STATE),
    # (filter, gradient, d_out, d_final_state, d_in, d_initial_state)
    "CalculateGradientWithState": (
        _STATUS,
        [c_void_p, c_void_p, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR],
    ),
    "ApplyFrozenBatch": (_STATUS, [c_void_p, c_int64, c_int64, _FLOAT_PTR, _FLOAT_PTR]),
    "ConfigCreateFor": (c_void_p, [c_void_p, c_int32]),
}

_STR_PTR = POINTER(c_char_p)
_DOUBLE_PTR = POINTER(c_double)

# Functions outside the layers: name -> (restype, argtypes).
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
    "NNTKSetThreadCount": (_STATUS, [c_int32]),
    "NNTKGetThreadCount": (_STATUS, [_INT64_PTR]),
    "NNTKSetSplitMinWork": (_STATUS, [c_int64]),
    "NNTKGetSplitMinWork": (_STATUS, [_INT64_PTR]),
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
    "NNTKOptimizerStateSize": (_STATUS, [c_void_p, c_int64, _INT64_PTR]),
    "NNTKOptimizerGetState": (_STATUS, [c_void_p, c_int64, _INT64_PTR, _FLOAT_PTR, c_int64]),
    "NNTKOptimizerSetState": (_STATUS, [c_void_p, c_int64, _INT64_PTR, _FLOAT_PTR, c_int64]),
    "NNTKOptimizerSetIterations": (_STATUS, [c_void_p, c_int64]),
    # The model of a model file (nntk/model.h): load, inference, training step, save.
    "NNTKModelLoad": (c_void_p, [c_char_p, c_int64, c_int64]),
    "NNTKModelDestroy": (None, [c_void_p]),
    "NNTKModelSave": (_STATUS, [c_void_p, c_char_p]),
    "NNTKModelDescribe": (_STATUS, [c_void_p, _INT64_PTR, _INT64_PTR, _INT64_PTR]),
    "NNTKModelOutputShape": (_STATUS, [c_void_p, c_int64, c_int64, _INT64_PTR, _INT64_PTR]),
    "NNTKModelApplyInference": (_STATUS, [c_void_p, c_int64, c_int64, _FLOAT_PTR, _FLOAT_PTR]),
    "NNTKModelGetWeights": (_STATUS, [c_void_p, _FLOAT_PTR, c_int64]),
    "NNTKModelStreamStates": (_STATUS, [c_void_p, _INT64_PTR]),
    # (model, batch, steps, in, initial_states, out, final_states)
    "NNTKModelStream": (
        _STATUS,
        [c_void_p, c_int64, c_int64, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR],
    ),
    "NNTKModelSetOptimizerSGD": (_STATUS, [c_void_p, c_double, c_double, c_int32]),
    "NNTKModelSetOptimizerAdam": (
        _STATUS,
        [c_void_p, c_double, c_double, c_double, c_double, c_int32],
    ),
    "NNTKModelIterations": (_STATUS, [c_void_p, _INT64_PTR]),
    # (model, loss, from_logits, batch, steps, x, y, loss_value)
    "NNTKModelTrainStep": (
        _STATUS,
        [c_void_p, c_int32, c_int32, c_int64, c_int64, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR],
    ),
    # The layer description and the generic layer functions (nntk/layer.h): every
    # layer, described and driven by the same functions.
    "NNTKLayerTypeCount": (_STATUS, [_INT64_PTR]),
    "NNTKLayerTypeDescribe": (
        _STATUS,
        [c_int32, _STR_PTR, _STR_PTR, _INT64_PTR, _INT64_PTR, _INT64_PTR, _INT64_PTR],
    ),
    "NNTKLayerTypeField": (
        _STATUS,
        [c_int32, c_int32, _STR_PTR, _INT64_PTR] + [_DOUBLE_PTR] * 3 + [_INT64_PTR, _INT64_PTR],
    ),
    "NNTKLayerTypeFieldEnumName": (_STATUS, [c_int32, c_int32, c_int32, _STR_PTR]),
    "NNTKLayerTypeKerasPositional": (_STATUS, [c_int32, _INT64_PTR]),
    "NNTKLayerConfigCreateFromValues": (c_void_p, [c_int32, _DOUBLE_PTR, c_int64]),
    "NNTKLayerConfigDestroy": (None, [c_void_p]),
    "NNTKLayerConfigWeightCount": (_STATUS, [c_void_p, _INT64_PTR]),
    "NNTKLayerConfigWeightBlock": (
        _STATUS,
        [c_void_p, c_int32, _STR_PTR, _STR_PTR, _INT64_PTR, _INT64_PTR, _INT64_PTR],
    ),
    "NNTKLayerConfigStates": (_STATUS, [c_void_p, _INT64_PTR, _INT64_PTR]),
    "NNTKLayerConfigRanks": (_STATUS, [c_void_p, _INT64_PTR, _INT64_PTR]),
    "NNTKLayerCreateForTraining": (c_void_p, [c_void_p, POINTER(TrainingConfig)]),
    "NNTKLayerCreateForInference": (c_void_p, [c_void_p]),
    "NNTKLayerDestroy": (None, [c_void_p]),
    "NNTKLayerGetWeights": (_STATUS, [c_void_p, _FLOAT_PTR_PTR, _INT64_PTR]),
    "NNTKLayerOutputShape": (_STATUS, [c_void_p, c_int64, c_int64, _INT64_PTR, _INT64_PTR]),
    # (filter, mode, batch, steps, in, initial_state, out, final_state)
    "NNTKLayerApply": (
        _STATUS,
        [c_void_p, c_int32, c_int64, c_int64, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR],
    ),
    "NNTKLayerGradientCreate": (c_void_p, [c_void_p]),
    "NNTKLayerGradientDestroy": (None, [c_void_p]),
    "NNTKLayerGradientGetWeights": (_STATUS, [c_void_p, _FLOAT_PTR_PTR, _INT64_PTR]),
    # (filter, gradient, d_out, d_final_state, d_in, d_initial_state)
    "NNTKLayerCalculateGradient": (
        _STATUS,
        [c_void_p, c_void_p, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR],
    ),
    # A chain of layers streamed in one call (nntk/layer.h, NNTKLayerChain).
    "NNTKLayerChainCreate": (c_void_p, [c_void_p, c_int64, c_int64]),
    "NNTKLayerChainDestroy": (None, [c_void_p]),
    "NNTKLayerChainAppend": (_STATUS, [c_void_p, c_void_p]),
    "NNTKLayerChainDescribe": (_STATUS, [c_void_p] + [_INT64_PTR] * 4),
    "NNTKLayerChainOutputShape": (_STATUS, [c_void_p, c_int64, c_int64, _INT64_PTR, _INT64_PTR]),
    # (chain, batch, steps, in, initial_states, out, final_states)
    "NNTKLayerChainStream": (
        _STATUS,
        [c_void_p, c_int64, c_int64, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR, _FLOAT_PTR],
    ),
}

# nntk/layer.h: NNTK_MAX_WEIGHT_RANK, NNTK_MAX_STATES.
MAX_WEIGHT_RANK, MAX_STATES = 3, 4

# NNTKApplyMode (nntk/layer.h).
APPLY_INFERENCE, APPLY_TRAINING, APPLY_FROZEN = 0, 1, 2


def unchecked(name: str):
    """A second function object of the C function `name`, for a per-call fast lane: no
    argtypes and no errcheck. Its caller passes ctypes objects that it prepared, each of
    the C parameter's type (c_void_p handles, c_int32 / c_int64 values, `ctypes.byref`
    or POINTER pointers, None for NULL), so ctypes converts nothing; and it tests the
    returned status itself (`if status: raise_for_status(status)`). The declared `lib`
    function stays as it was."""
    func = lib[name]  # a new function object, not lib's attribute
    func.restype = _STATUS
    return func


def raise_for_status(status: int) -> None:
    """Raises the NNTKError of a failed call's status (what the declared functions'
    errcheck raises)."""
    _check_status(status, None, None)


def _declare(cdll: ctypes.CDLL, name: str, restype, argtypes) -> None:
    func = getattr(cdll, name)
    func.restype = restype
    func.argtypes = argtypes
    if restype is _STATUS:
        func.errcheck = _check_status
    elif restype is c_void_p and ("Create" in name or name.endswith("Load")):  # NULL on error
        func.errcheck = _check_handle


def _load() -> ctypes.CDLL:
    _preload_openblas()
    cdll = ctypes.CDLL(str(library_path()))
    for name, (restype, argtypes) in EXTRA_FUNCTIONS.items():
        _declare(cdll, name, restype, argtypes)
    return cdll


lib = _load()


# -- the description (nntk/layer.h), read once ------------------------------------------
# NNTKFieldKind.
FIELD_INT, FIELD_BOOL, FIELD_ENUM, FIELD_FLOAT = 0, 1, 2, 3


@dataclass(frozen=True)
class Field:
    """One config field of a layer type: its tf.keras argument name, kind, default
    (None: required), range and, for an enum, its value names."""

    name: str
    kind: int
    default: object  # the Python value (an enum's name); None: required
    min: float
    max: float
    min_exclusive: bool
    enum_names: tuple[str, ...]

    @property
    def required(self) -> bool:
        return self.default is None and not self.allows_none

    @property
    def allows_none(self) -> bool:
        """An INT field whose 0 is tf.keras's None (its default, e.g. strides=None)."""
        return self.kind == FIELD_INT and self.min == 0


@dataclass(frozen=True)
class LayerType:
    """One layer type as the library describes it."""

    index: int
    name: str  # the typed infix: NNTK<name>CreateForTraining; the Python class name
    keras_name: str
    fields: tuple[Field, ...]
    has_states: bool  # recurrent: initial / final states (NNTKLayerConfigStates)
    wraps: bool  # its config holds an inner layer's config (NNTK<name>ConfigCreateFor)
    has_frozen: bool  # NNTK_APPLY_FROZEN differs from TRAINING (keeps inference batches)
    # How many of tf.keras's constructor's leading arguments are fields, in the fields'
    # order, input_dim aside (NNTKLayerTypeKerasPositional): the ones taken positionally.
    keras_positional: int = 0


def _describe_field(type_index: int, field: int) -> Field:
    name, kind = c_char_p(), c_int64()
    default, low, high = c_double(), c_double(), c_double()
    exclusive, enum_count = c_int64(), c_int64()
    lib.NNTKLayerTypeField(
        type_index,
        field,
        *(ctypes.byref(v) for v in (name, kind, default, low, high, exclusive, enum_count)),
    )
    enum_names = []
    for value in range(enum_count.value):
        enum_name = c_char_p()
        lib.NNTKLayerTypeFieldEnumName(type_index, field, value, ctypes.byref(enum_name))
        enum_names.append(enum_name.value.decode())
    value = default.value
    if math.isnan(value):
        python_default = None
    elif kind.value == FIELD_ENUM:
        python_default = enum_names[int(value)]
    elif kind.value == FIELD_BOOL:
        python_default = bool(value)
    elif kind.value == FIELD_INT:
        python_default = None if value == 0 and low.value == 0 else int(value)
    else:
        python_default = float(value)
    return Field(
        name.value.decode(),
        kind.value,
        python_default,
        low.value,
        high.value,
        bool(exclusive.value),
        tuple(enum_names),
    )


def _describe() -> dict[str, LayerType]:
    count = c_int64()
    lib.NNTKLayerTypeCount(ctypes.byref(count))
    types = {}
    for index in range(count.value):
        name, keras_name = c_char_p(), c_char_p()
        field_count, has_states, wraps, has_frozen = (c_int64() for _ in range(4))
        outputs = (name, keras_name, field_count, has_states, wraps, has_frozen)
        lib.NNTKLayerTypeDescribe(index, *(ctypes.byref(v) for v in outputs))
        fields = tuple(_describe_field(index, f) for f in range(field_count.value))
        keras_positional = c_int64()
        lib.NNTKLayerTypeKerasPositional(index, ctypes.byref(keras_positional))
        layer = LayerType(
            index,
            name.value.decode(),
            keras_name.value.decode(),
            fields,
            bool(has_states.value),
            bool(wraps.value),
            bool(has_frozen.value),
            keras_positional.value,
        )
        types[layer.name] = layer
    return types


# Every layer type of the library, by name (the Python class names).
LAYERS: dict[str, LayerType] = _describe()


def _declare_typed() -> dict[str, list[str]]:
    """Declares every layer's typed functions (the standard set, and the optional
    ones the library has); returns name -> the declared function names."""
    functions = {}
    for layer in LAYERS:
        names = []
        for suffix, (restype, argtypes) in {**_STANDARD, **_OPTIONAL}.items():
            name = f"NNTK{layer}{suffix}"
            if suffix in _STANDARD or hasattr(lib, name):
                _declare(lib, name, restype, argtypes)
                names.append(name)
        functions[layer] = names
    return functions


# Every layer's declared typed function names (for the API-coverage tests; all but
# NNTK<L>ConfigCreate, see _STANDARD).
LAYER_FUNCTIONS: dict[str, list[str]] = _declare_typed()


def layer_function(layer: str, suffix: str):
    """The C function NNTK<layer><suffix>."""
    return getattr(lib, f"NNTK{layer}{suffix}")
