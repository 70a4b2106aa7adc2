"""The C API's invalid-call contract, derived from the public headers (issue #7).

The functions are enumerated from the headers (parity/c_api.py, every `NNTK_API`
declaration). For each one, valid arguments are built generically from the parameter
types (handles from live objects, sizes and options by a search the library's own
error messages guide, buffers of ample size), the valid call must succeed, and then
one argument at a time is made invalid:

- NULL for every pointer (handle, array, out-parameter, struct) the header does
  not document as optional; a documented-optional NULL must succeed;
- 0, -1, INT64_MIN, INT64_MAX for every int64 size; -1, 1000, INT32_MIN,
  INT32_MAX for every int32 option or flag; NaN, ±Inf, -1 for every
  floating-point hyperparameter; out-of-range fields of a struct argument;
- a directory, and a file in a missing directory, for every path (a model file's);
- a live handle of another kind (another layer's, or the config where a filter
  is expected) for every handle;
- for the layers' standard functions: an inference handle in a training call, a
  gradient created for another filter, CalculateGradient before any training
  batch.

Each must return an error status (constructors: NULL) with an NNTKLastError()
message that starts with the function's name and names the argument, leave every
output buffer untouched, and never crash. Destroy functions must shrug off NULL
and a handle of another kind.

The layer description (NNTKLayerTypeField, which the binding builds its layers from) is
checked against what nntk/layer.h says of it: every field's kind, range, default and
enum_count (`description_problems`); so are the kernel constants the specs derive their
shape buckets from (`kernel_constants_problems`).

Checked twice from this one derivation: by `nntk-parity replay` (`problems()`: every
case against the library replay loads, TF-free, from the installed package: the wheel
carries the headers as nntk_core/include/nntk) and by tests/test_c_api_invalid.py (one
pytest case each, plus the checks of the enumeration itself).
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import math
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nntk_core import _native
from parity import c_api

API = c_api.parse_headers()
RAW = ctypes.CDLL(str(_native.library_path()))  # the same library, without errcheck

NNTK_OK = 0
NULL_POINTER, INVALID_ARGUMENT, INVALID_STATE = 1, 2, 3

BUFFER_FLOATS = 1 << 14  # every float buffer: far more than any valid call here reads
SENTINEL = np.float32(-1234.5)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# Invalid values by parameter kind: every size is >= 1, every option and flag a
# small non-negative enum, every hyperparameter finite and non-negative.
INVALID_SCALARS = {
    "i64": [0, -1, INT64_MIN, INT64_MAX],
    "i32": [-1, 1000, INT32_MIN, INT32_MAX],
    "f64": [math.nan, math.inf, -math.inf, -1.0],
    "f32": [math.nan, math.inf, -math.inf, -1.0],
}
# Valid-value candidates, tried in order where the library's message names the argument.
CANDIDATES = {
    "i64": [2, 3, 1, 4, 5, 8],
    "i32": [0, 1, 2, 3, 4, 5, 6, 7],
    "f64": [0.5, 0.1, 0.01, 0.9, 1.0, 2.0, 0.0],
    "f32": [0.5, 0.1, 0.01, 0.9, 1.0, 2.0, 0.0],
}
# The few ConfigCreate arguments the generic search cannot find, per layer (keep
# minimal: every key must be a layer of the headers, every name a parameter).
VALID_CONFIG_ARGS: dict[str, dict[str, float]] = {}
# Documented exceptions to INVALID_SCALARS: (function, parameter) -> values that
# are valid for it, with the reason. Keep empty unless the header says so.
VALID_EXCEPTIONS: dict[tuple[str, str], tuple] = {
    # nntk/optimizer.h: iterations in [0, 2^62], 0 being a new optimizer's step count.
    ("NNTKOptimizerSetIterations", "iterations"): (0,),
}

_CTYPES = {
    "i64": ctypes.c_int64,
    "i32": ctypes.c_int32,
    "f64": ctypes.c_double,
    "f32": ctypes.c_float,
    "fptr": ctypes.POINTER(ctypes.c_float),
    "fptrptr": ctypes.POINTER(ctypes.POINTER(ctypes.c_float)),
    "i64ptr": ctypes.POINTER(ctypes.c_int64),
    "f64ptr": ctypes.POINTER(ctypes.c_double),
    "strptr": ctypes.POINTER(ctypes.c_char_p),
    "str": ctypes.c_char_p,
    "handle": ctypes.c_void_p,
}
# nntk/layer.h's generic handle types: a handle of any layer, in one role (the typed
# handles are the same objects). Their foreign handles are the other roles'.
GENERIC_ROLES = {
    "NNTKLayerConfig": "config",
    "NNTKLayer": "filter",
    "NNTKLayerGradient": "gradient",
}
OTHER_ROLE = {"config": "filter", "filter": "gradient", "gradient": "config"}
_FIELD_CTYPES = {"int64_t": ctypes.c_int64, "int32_t": ctypes.c_int32, "double": ctypes.c_double}
_STRUCTS = {
    name: type(name, (ctypes.Structure,), {"_fields_": [(f, _FIELD_CTYPES[t]) for t, f in fields]})
    for name, fields in API.structs.items()
}


def argtype(p: c_api.Param):
    if p.kind == "struct":
        return ctypes.POINTER(_STRUCTS[p.target])
    return _CTYPES[p.kind]


@functools.cache
def raw(name: str):
    """The C function with argtypes/restype from its header declaration."""
    f = API.functions[name]
    func = getattr(RAW, name)
    func.argtypes = [argtype(p) for p in f.params]
    func.restype = {
        "status": ctypes.c_int32,
        "handle": ctypes.c_void_p,
        "void": None,
        "string": ctypes.c_char_p,
    }[f.return_kind]
    return func


def last_error() -> str:
    return raw("NNTKLastError")().decode(errors="replace")


def last_status() -> int:
    return raw("NNTKLastStatus")()


def named(message: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}\b", message) is not None


# -- argument values --------------------------------------------------------------------
@functools.cache
def model_file_path() -> Path:
    """A model file (nntk/model.h's path arguments): the smallest model with an
    optimizer, 2 weights (a count the scalar search finds), saved by Python."""
    import nntk_core as nn

    directory = Path(tempfile.mkdtemp(prefix="nntk-c-api-"))
    atexit.register(shutil.rmtree, directory, True)
    model = nn.Sequential([nn.Dense(1, input_dim=1)])
    model.save(directory / "model.nntk", optimizer=nn.optimizers.SGD())
    return directory / "model.nntk"


class Buffers:
    """Float buffers, pointer arrays and int64 arrays, filled with sentinels so a
    refused call can be checked to have written nothing."""

    def __init__(self):
        self.arrays: list[np.ndarray] = []

    def floats(self, fill=SENTINEL) -> np.ndarray:
        arr = np.full(BUFFER_FLOATS, fill, np.float32)
        self.arrays.append(arr)
        return arr

    def value(self, kind: str):
        if kind == "fptr":
            return self.floats().ctypes.data_as(_CTYPES["fptr"])
        if kind == "fptrptr":  # an out-parameter, or an array of buffers
            array = (ctypes.POINTER(ctypes.c_float) * 4)()
            for i in range(4):
                array[i] = self.floats().ctypes.data_as(_CTYPES["fptr"])
            self.arrays.append(array)
            return ctypes.cast(array, _CTYPES["fptrptr"])
        if kind == "i64ptr":  # an out-parameter, or an array of sizes
            array = np.full(4, 2, np.int64)
            self.arrays.append(array)
            return array.ctypes.data_as(_CTYPES["i64ptr"])
        if kind == "f64ptr":  # an out-parameter, or an array of values (sizes, options)
            array = np.full(16, 2.0, np.float64)
            self.arrays.append(array)
            return array.ctypes.data_as(_CTYPES["f64ptr"])
        if kind == "strptr":  # a string out-parameter
            array = (ctypes.c_char_p * 4)()
            self.arrays.append(array)
            return ctypes.cast(array, _CTYPES["strptr"])
        if kind == "str":  # a path: a model file (nntk/model.h), read or rewritten
            return bytes(model_file_path())
        raise KeyError(kind)

    def snapshot(self) -> list[bytes]:
        return [bytes(a) for a in self.arrays]


def call(name: str, args: dict, before=None) -> tuple[int, int | None]:
    """Calls `name` with named arguments; (status, returned handle or None).
    A constructor's status is NNTKLastStatus() when it returns NULL. The thread's last
    error is cleared first, or set by `before()` (a failing call)."""
    f = API.functions[name]
    raw("NNTKClearError")()
    if before is not None:
        before()
    result = raw(name)(*[args[p.name] for p in f.params])
    if f.return_kind == "status":
        return result, None
    if f.return_kind == "handle":
        return (NNTK_OK if result else last_status()), result
    return NNTK_OK, None


def search_scalars(name: str, args: dict, fixed: set[str], attempt: Callable) -> dict:
    """Fills the scalar arguments of `name` with values the library accepts:
    starts from each kind's first candidate and, while the call fails, moves the
    argument its error message names to its next candidate."""
    f = API.functions[name]
    scalars = [p for p in f.params if p.kind in c_api.SCALAR_KINDS and p.name not in fixed]
    index = {p.name: 0 for p in scalars}
    for p in scalars:
        args[p.name] = CANDIDATES[p.kind][0]
    for _ in range(64):
        status = attempt(args)
        if status == NNTK_OK:
            return args
        message = last_error()
        mentioned = [
            (m.start(), p)
            for p in scalars
            for m in [re.search(rf"(?<![\w.]){re.escape(p.name)}\b", message)]
            if m
        ]
        if not mentioned:
            break
        p = min(mentioned, key=lambda t: t[0])[1]
        index[p.name] += 1
        if index[p.name] >= len(CANDIDATES[p.kind]):
            break
        args[p.name] = CANDIDATES[p.kind][index[p.name]]
    raise AssertionError(
        f"cannot build a valid call of {name} from the generic candidates (last error: "
        f"{last_error()!r}); add its arguments to VALID_CONFIG_ARGS in {__file__}"
    )


# -- live objects -----------------------------------------------------------------------
class LayerObjects:
    """For one layer: a config, a trained training filter and its gradient, an
    inference filter, a second trained filter, and an untrained filter with its
    gradient. Built only from the standard function set."""

    def __init__(self, world: World, layer: str):
        self.layer = layer
        self.world = world
        std = lambda suffix: API.standard(layer, suffix)  # noqa: E731
        create = std("ConfigCreate")

        def attempt(args):
            status, handle = call(create.name, args)
            if handle:
                raw(std("ConfigDestroy").name)(handle)
            return status

        overrides = VALID_CONFIG_ARGS.get(layer, {})
        self.config_args = search_scalars(create.name, dict(overrides), set(overrides), attempt)
        _, self.config = call(create.name, self.config_args)
        world.own(std("ConfigDestroy").name, self.config)
        self.types = {
            create.returned_type: "config",
            std("CreateForTraining").returned_type: "filter",
            std("GradientCreate").returned_type: "gradient",
        }
        self.inference = world.make(std("CreateForInference").name, {"config": self.config})
        self.filter = self.new_training_filter()
        self.batch, self.steps = 2, None
        for steps in (8, 5, 16, 3, 1, 32):
            out = (ctypes.c_int64(), ctypes.c_int64())
            status, _ = call(
                std("OutputShape").name,
                {
                    "filter": self.filter,
                    "batch": self.batch,
                    "steps": steps,
                    "out_steps": ctypes.byref(out[0]),
                    "out_features": ctypes.byref(out[1]),
                },
            )
            if status == NNTK_OK:
                self.steps = steps
                break
        if self.steps is None:
            raise AssertionError(f"{layer}: no input length accepted: {last_error()}")
        self.train(self.filter)
        self.gradient = world.make(std("GradientCreate").name, {"filter": self.filter})
        self.other = self.new_training_filter()
        self.train(self.other)
        self.fresh = self.new_training_filter()
        self.fresh_gradient = world.make(std("GradientCreate").name, {"filter": self.fresh})

    def new_training_filter(self):
        return self.world.make(
            API.standard(self.layer, "CreateForTraining").name,
            {"config": self.config, "training_config": None},
        )

    def train(self, filter_):
        buffers = self.world.buffers
        x = buffers.floats(0.25)
        status, _ = call(
            API.standard(self.layer, "ApplyTrainingBatch").name,
            {
                "filter": filter_,
                "batch": self.batch,
                "steps": self.steps,
                "in": x.ctypes.data_as(_CTYPES["fptr"]),
                "out": buffers.value("fptr"),
            },
        )
        if status != NNTK_OK:
            raise AssertionError(last_error())

    def handle(self, role: str):
        return {"config": self.config, "filter": self.filter, "gradient": self.gradient}[role]


class World:
    """Every live object the cases use, built once and destroyed at the end."""

    def __init__(self):
        self.buffers = Buffers()
        self.owned: list[tuple[str, int]] = []
        self.layers: dict[str, LayerObjects] = {}
        self.others: dict[str, int] = {}  # non-layer handle types -> a live object

    def own(self, destroy: str, handle: int) -> None:
        self.owned.append((destroy, handle))

    def make(self, constructor: str, args: dict) -> int:
        status, handle = call(constructor, args)
        if not (status == NNTK_OK and handle):
            raise AssertionError(f"{constructor}: {last_error()}")
        destroy = API.destroyer_of(API.functions[constructor].returned_type)
        if destroy is None:
            raise AssertionError(f"no destroy function for {constructor}'s type")
        self.own(destroy.name, handle)
        return handle

    def layer(self, name: str) -> LayerObjects:
        if name not in self.layers:
            self.layers[name] = LayerObjects(self, name)
        return self.layers[name]

    def layer_of_type(self, type_name: str) -> tuple[LayerObjects, str] | None:
        for layer in API.layers:
            for suffix, role in (
                ("ConfigCreate", "config"),
                ("CreateForTraining", "filter"),
                ("GradientCreate", "gradient"),
            ):
                if API.standard(layer, suffix).returned_type == type_name:
                    return self.layer(layer), role
        return None

    def handle_of(self, type_name: str) -> int:
        found = self.layer_of_type(type_name)
        if found:
            objects, role = found
            return objects.handle(role)
        if type_name not in self.others:
            constructors = API.constructors_of(type_name)
            if not constructors:
                raise AssertionError(f"no exported constructor returns {type_name} *")
            constructor = constructors[0]
            args = self.valid_args(constructor)
            self.others[type_name] = self.make(constructor.name, args)
        return self.others[type_name]

    def foreign_handles(self, type_name: str) -> list[tuple[str, int]]:
        """Live handles that are not of `type_name`: another role of the same
        layer (a config where a filter is expected) and another layer's."""
        found = self.layer_of_type(type_name)
        foreign = []
        if type_name in GENERIC_ROLES:  # any layer's handle of the role is valid
            objects = self.layer(API.layers[0])
            other_role = OTHER_ROLE[GENERIC_ROLES[type_name]]
            return [(f"{objects.layer} {other_role}", objects.handle(other_role))]
        if found:
            objects, role = found
            other_role = {"config": "filter", "filter": "gradient", "gradient": "config"}[role]
            foreign.append((f"{objects.layer} {other_role}", objects.handle(other_role)))
            others = [layer for layer in API.layers if layer != objects.layer]
            if others:
                other = self.layer(others[0])
                foreign.append((f"{other.layer} {role}", other.handle(role)))
        else:
            layer = self.layer(API.layers[0])
            foreign.append((f"{layer.layer} filter", layer.filter))
        return foreign

    def valid_args(self, f: c_api.Function, buffers: Buffers | None = None) -> dict:
        """Arguments with which `f` succeeds (destroy functions excepted); its
        buffers are allocated in `buffers`. A generic layer handle is taken from the
        first layer (in API.layers order) with which the call can succeed."""
        if not any(p.kind == "handle" and p.target in GENERIC_ROLES for p in f.params):
            return self._valid_args(f, buffers, None)
        failures = []
        for layer in API.layers:
            try:
                return self._valid_args(f, buffers, layer)
            except AssertionError as e:
                failures.append(f"{layer}: {e}")
        raise AssertionError(f"{f.name}: no layer's handles make a valid call: {failures}")

    def _valid_args(self, f: c_api.Function, buffers: Buffers | None, generic: str | None) -> dict:
        buffers = buffers or self.buffers
        args: dict = {}
        layer = API.layer_of(f.name)
        objects = self.layer(layer or generic) if layer or generic else None
        for p in f.params:
            if p.name in args:
                continue
            if p.kind == "handle" and p.target in GENERIC_ROLES:
                args[p.name] = self.layer(generic).handle(GENERIC_ROLES[p.target])
            elif p.kind == "handle":
                args[p.name] = self.handle_of(p.target)
            elif p.kind == "struct":
                args[p.name] = None if p.name in f.optional_pointers() else _STRUCTS[p.target]()
            elif p.kind in ("fptr", "fptrptr", "i64ptr", "f64ptr", "strptr", "str"):
                args[p.name] = buffers.value(p.kind)
            elif objects is not None and p.name in ("batch", "steps"):
                args[p.name] = getattr(objects, p.name)
        if f.name.endswith("ConfigCreate") and layer:
            return dict(objects.config_args)
        fixed_names = set(args)

        def attempt(a):
            status, handle = call(f.name, a)
            if handle:
                raw(API.destroyer_of(f.returned_type).name)(handle)
            return status

        return search_scalars(f.name, args, fixed_names, attempt)

    def close(self):
        for destroy, handle in reversed(self.owned):
            raw(destroy)(handle)
        self.owned.clear()


# -- the cases --------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    function: str
    label: str  # what is wrong, e.g. "batch=0", "in=NULL", "filter=Dense config"
    param: str | None  # the argument the message must name (None: the function only)
    mutate: Callable  # (world, valid args, buffers) -> args
    expect: str = "error"  # "error" | "ok" (a documented-optional NULL) | "harmless" (destroy)
    status: int | None = None  # the NNTKStatus an error must carry (None: any error)

    @property
    def id(self) -> str:
        return f"{self.function}[{self.label}]"


def _set(name, value):
    return lambda world, args, buffers: {**args, name: value}


def _foreign(param: c_api.Param, index: int):
    def mutate(world, args, buffers):
        foreign = world.foreign_handles(param.target)
        return {**args, param.name: foreign[min(index, len(foreign) - 1)][1]}

    return mutate


def _layer_role(role: str, name: str):
    def mutate(world, args, buffers):
        objects = world.layer(API.layer_of(name))
        return {**args, "filter": getattr(objects, role)}

    return mutate


def _struct(param: c_api.Param, **fields):
    def mutate(world, args, buffers):
        value = _STRUCTS[param.target](**fields)
        buffers.arrays.append(value)
        return {**args, param.name: ctypes.pointer(value)}

    return mutate


def _role(f: c_api.Function, p: c_api.Param) -> str | None:
    layer = API.layer_of(f.name)
    if not layer or p.kind != "handle":
        return None
    for suffix, role in (
        ("CreateForTraining", "filter"),
        ("GradientCreate", "gradient"),
        ("ConfigCreate", "config"),
    ):
        if API.standard(layer, suffix).returned_type == p.target:
            return role
    return None


def described_edges(f: c_api.Function, p: c_api.Param) -> list:
    """The first invalid values past each end of a ConfigCreate argument's described
    range (nntk/layer.h): one past an enum's last value or a flag's 1, one above a
    size's maximum, an exclusive minimum itself, the first double above a maximum."""
    layer = API.layer_of(f.name)
    if layer not in _native.LAYERS or not f.name.endswith("ConfigCreate"):
        return []
    field = {x.name: x for x in _native.LAYERS[layer].fields}.get(p.name)
    if field is None:
        return []
    if field.kind == _native.FIELD_FLOAT:
        above = math.nextafter(field.max, math.inf)
        return [field.min] * field.min_exclusive + [above] * math.isfinite(above)
    return [int(field.max) + 1]


def cases_for(f: c_api.Function) -> list[Case]:
    """The invalid-argument cases of one function, from its parameter kinds."""
    cases: list[Case] = []
    if f.is_destroy:
        p = f.params[0]
        cases.append(Case(f.name, f"{p.name}=NULL", p.name, _set(p.name, None), "harmless"))
        for i in range(2):
            cases.append(Case(f.name, f"{p.name}=foreign{i}", p.name, _foreign(p, i), "harmless"))
        return cases
    optional = f.optional_pointers()
    for p in f.params:
        if p.kind in c_api.SCALAR_KINDS:
            valid = VALID_EXCEPTIONS.get((f.name, p.name), ())
            values = INVALID_SCALARS[p.kind]
            values = values + [v for v in described_edges(f, p) if v not in values]
            for value in values:
                if not any(value == v for v in valid):
                    cases.append(
                        Case(
                            f.name,
                            f"{p.name}={value}",
                            p.name,
                            _set(p.name, value),
                            status=INVALID_ARGUMENT,
                        )
                    )
            continue
        if p.name in optional:
            cases.append(Case(f.name, f"{p.name}=NULL(optional)", p.name, _set(p.name, None), "ok"))
        else:
            cases.append(
                Case(f.name, f"{p.name}=NULL", p.name, _set(p.name, None), status=NULL_POINTER)
            )
        if p.kind == "str":  # a path: a directory, a missing directory's file
            for label, value in (
                ("directory", lambda: bytes(model_file_path().parent)),
                ("in a missing directory", lambda: bytes(model_file_path().parent / "no" / "m")),
            ):
                cases.append(
                    Case(
                        f.name,
                        f"{p.name}={label}",
                        p.name,
                        lambda world, args, buffers, n=p.name, v=value: {**args, n: v()},
                        status=INVALID_ARGUMENT,
                    )
                )
        if p.kind == "handle":
            for i in range(2):
                cases.append(
                    Case(
                        f.name, f"{p.name}=foreign{i}", p.name, _foreign(p, i), status=INVALID_STATE
                    )
                )
        if p.kind == "struct":
            int_fields = [n for t, n in API.structs[p.target] if t == "int64_t"]
            for field in int_fields:
                for value in (-1, INT64_MAX):
                    cases.append(
                        Case(
                            f.name,
                            f"{p.name}.{field}={value}",
                            p.name,
                            _struct(p, **{field: value}),
                            status=INVALID_ARGUMENT,
                        )
                    )
            if len(int_fields) >= 2:  # each field in range, their product not
                big = {n: 1 << 24 for n in int_fields}
                cases.append(
                    Case(
                        f.name,
                        f"{p.name}=all 2^24",
                        p.name,
                        _struct(p, **big),
                        status=INVALID_ARGUMENT,
                    )
                )
    # batch and steps each within its limit (2^24), their product times the features
    # not (the largest tensor: 2^31 elements): a size check of the combination.
    sizes = {p.name for p in f.params if p.kind == "i64"}
    if {"batch", "steps"} <= sizes:
        cases.append(
            Case(
                f.name,
                "batch=2^23 x steps=2^23",
                "batch",
                lambda world, args, buffers: {**args, "batch": 1 << 23, "steps": 1 << 23},
                status=INVALID_ARGUMENT,
            )
        )
    # States of the standard layer API.
    roles = {_role(f, p): p.name for p in f.params}
    if "filter" in roles and f.return_kind in ("status", "handle"):
        if "Training" in f.name or "Gradient" in f.name:
            cases.append(
                Case(
                    f.name,
                    "filter=inference handle",
                    None,
                    _layer_role("inference", f.name),
                    status=INVALID_STATE,
                )
            )
        if "gradient" in roles:
            cases.append(
                Case(
                    f.name,
                    "gradient of another filter",
                    "gradient",
                    _layer_role("other", f.name),
                    status=INVALID_STATE,
                )
            )
        if "gradient" in roles and "CalculateGradient" in f.name:

            def before_training(world, args, buffers, name=f.name):
                objects = world.layer(API.layer_of(name))
                return {**args, "filter": objects.fresh, "gradient": objects.fresh_gradient}

            cases.append(
                Case(
                    f.name, "before any training batch", None, before_training, status=INVALID_STATE
                )
            )
    return cases


ALL_CASES = [case for f in API.functions.values() for case in cases_for(f)]
NO_PARAMETERS = sorted(f.name for f in API.functions.values() if not f.params)
WITH_VALID_CALL = sorted(f.name for f in API.functions.values() if f.params and not f.is_destroy)


def alive_problem(world: World, case: Case) -> str | None:
    """None when every layer's objects still work (a destroy given a foreign handle
    left it alone); else what failed."""
    for objects in world.layers.values():
        weights, count = ctypes.POINTER(ctypes.c_float)(), ctypes.c_int64()
        status, _ = call(
            API.standard(objects.layer, "GetWeights").name,
            {
                "filter": objects.filter,
                "weights": ctypes.byref(weights),
                "count": ctypes.byref(count),
            },
        )
        if status != NNTK_OK:
            return f"{case.id}: {objects.layer}'s filter no longer works: {last_error()}"
        objects.train(objects.filter)
    return None


# -- checking ---------------------------------------------------------------------------
def valid_call_problem(world: World, name: str) -> str | None:
    """None when the baseline every case mutates succeeds: with these arguments the call
    of `name` succeeds; else what went wrong."""
    f = API.functions[name]
    args = world.valid_args(f)
    status, handle = call(name, args, before=earlier_failure)
    left = success_problem(name) if status == NNTK_OK else None
    if handle:
        raw(API.destroyer_of(f.returned_type).name)(handle)
    if status != NNTK_OK:
        return f"{name}: the valid call fails: {last_error()}"
    return left


def earlier_failure() -> None:
    """A failing call (the thread's last error before a valid call): NNTKSetThreadCount
    refuses 0 threads."""
    raw("NNTKSetThreadCount")(0)


EARLIER_FAILURE = "NNTKSetThreadCount: threads=0"


def success_problem(label: str) -> str | None:
    """None when the thread's last error is still the earlier failing call's
    (`earlier_failure`): NNTKLastError names the last *failing* call and stays until
    the next one (nntk/status.h), so a call that succeeds neither sets nor clears it."""
    if last_status() == INVALID_ARGUMENT and last_error().startswith(EARLIER_FAILURE):
        return None
    return (
        f"{label} succeeded but changed the last error from the earlier failure's to: "
        f"status {last_status()}, {last_error()!r}"
    )


def case_problem(world: World, case: Case) -> str | None:
    """None when the library meets `case`'s contract; else what it did instead."""
    f = API.functions[case.function]
    if case.expect == "harmless":
        foreign = case.mutate(world, {}, None)[f.params[0].name]
        raw(f.name)(foreign)  # must neither crash nor free what it does not own
        return alive_problem(world, case)
    buffers = Buffers()
    args = case.mutate(world, world.valid_args(f, buffers), buffers)
    before = buffers.snapshot()
    status, handle = call(f.name, args, before=earlier_failure if case.expect == "ok" else None)
    message = last_error()
    left = success_problem(case.id) if status == NNTK_OK else None
    if handle:
        raw(API.destroyer_of(f.returned_type).name)(handle)
    if case.expect == "ok":
        if status != NNTK_OK:
            return f"{case.id}: documented optional, refused: {message}"
        return left
    if status == NNTK_OK:
        return f"{case.id} was accepted"
    if handle:
        return f"{case.id}: refused (status {status}) but returned a handle"
    if not message.startswith(f"{f.name}:"):
        return f"{case.id}: message {message!r} does not start with {f.name}:"
    if case.param is not None and not named(message, case.param):
        return f"{case.id}: message does not name {case.param}: {message!r}"
    if case.status is not None and status != case.status:
        return f"{case.id}: status {status}, expected {case.status} ({message})"
    if last_status() != status:
        return f"{case.id}: NNTKLastStatus() {last_status()} is not the status {status}"
    if buffers.snapshot() != before:
        return f"{case.id}: a refused call wrote to a buffer"
    return None


def no_parameters_problem(name: str) -> str | None:
    result = raw(name)()
    if API.functions[name].return_kind == "string" and result is None:
        return f"{name} returned NULL"
    return None


# What nntk/layer.h says of the layer description (NNTKLayerTypeField): a field's kind is an
# NNTKFieldKind; INT fields are whole numbers in [min, max], BOOL 0 or 1, ENUM an index into
# the field's value names; *enum_count is the number of those names for an ENUM field and 0
# otherwise; the default is NaN (required) or a value of the field.
FIELD_KINDS = {0: "INT", 1: "BOOL", 2: "ENUM", 3: "FLOAT"}


def field_problem(kind, default, low, high, exclusive, enum_count) -> str | None:
    """What a field's description breaks of nntk/layer.h's rules (None: nothing)."""
    name = FIELD_KINDS.get(kind)
    if name is None:
        return f"kind {kind} is not an NNTKFieldKind"
    if (enum_count != 0) != (name == "ENUM") or enum_count < 0:
        return f"{name} field with enum_count {enum_count} (the ENUM's value names; 0 otherwise)"
    if name == "BOOL" and (low, high, exclusive) != (0, 1, 0):
        return f"BOOL field with range {low}..{high} (exclusive {exclusive}): BOOL is 0 or 1"
    if name == "ENUM" and not (0 <= low <= high <= enum_count - 1 and not exclusive):
        return f"ENUM field with range {low}..{high}: an index into its {enum_count} names"
    if name == "INT" and (exclusive or not (low >= 1 or (low == 0 and default == 0))):
        return (
            f"INT field with range {low}..{high} (exclusive {exclusive}, default {default}): "
            "a size from 1, or from 0 where 0 is tf.keras's None and the default"
        )
    if math.isnan(default):
        return None
    if name != "FLOAT" and default != int(default):
        return f"{name} field with default {default}: a whole number"
    below = default <= low if exclusive else default < low
    if below or default > high:
        return f"default {default} outside the field's range {low}..{high} (exclusive {exclusive})"
    return None


def description_problems() -> tuple[int, list[str]]:
    """Every field of every layer type as NNTKLayerTypeField describes it, against
    nntk/layer.h's rules (`field_problem`): (fields checked, what failed)."""
    count = ctypes.c_int64()
    raw("NNTKLayerTypeCount")(ctypes.byref(count))
    checked, found = 0, []
    for t in range(count.value):
        type_name, keras, fields = ctypes.c_char_p(), ctypes.c_char_p(), ctypes.c_int64()
        flags = [ctypes.c_int64() for _ in range(3)]
        raw("NNTKLayerTypeDescribe")(
            t, ctypes.byref(type_name), ctypes.byref(keras), ctypes.byref(fields),
            *(ctypes.byref(f) for f in flags),
        )  # fmt: skip
        for i in range(fields.value):
            name, kind, exclusive, enum_count = (
                ctypes.c_char_p(), ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
            )  # fmt: skip
            default, low, high = ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
            status = raw("NNTKLayerTypeField")(
                t, i, ctypes.byref(name), ctypes.byref(kind), ctypes.byref(default),
                ctypes.byref(low), ctypes.byref(high), ctypes.byref(exclusive),
                ctypes.byref(enum_count),
            )  # fmt: skip
            checked += 1
            where = f"NNTKLayerTypeField({type_name.value.decode()}, {i})"
            if status != NNTK_OK:
                found.append(f"{where}: status {status} ({last_error()})")
                continue
            problem = field_problem(
                kind.value, default.value, low.value, high.value, exclusive.value,
                enum_count.value,
            )  # fmt: skip
            if problem:
                found.append(f"{where} {name.value.decode()}: {problem}")
    return checked, found


# NNTKKernelConstants (nntk/runtime.h): each kernel table compiled in as "<isa>.<name>";
# the specs derive their kernel-boundary shape buckets from these (parity.spec.boundaries),
# so a table missing or a zero constant would drop buckets silently.
KERNEL_TABLES = ["generic", "avx2", "avx512"]  # lowest first: NNTK_ISA forces a lower one
TABLE_CONSTANTS = (
    "k_block",
    "vector",
    "tile_rows",
    "tile_cols",
    "row_cols",
    "row_k_block",
    "cell_block",
    "packed_stride",
)
MAY_BE_ZERO = ("packed_stride",)  # 0: the table never takes that path (never packs B)


def tables_this_machine_runs() -> list[str]:
    """The kernel tables this machine runs: the one in use and every lower one."""
    best = raw("NNTKKernelISA")().decode()
    return KERNEL_TABLES[: KERNEL_TABLES.index(best) + 1] if best in KERNEL_TABLES else [best]


def kernel_constants_problems() -> list[str]:
    """Every table this machine runs is described by NNTKKernelConstants, each constant a
    size (>= 1, or >= 0 for MAY_BE_ZERO), a tile's and a row's columns whole
    vectors (the masked last one included)."""
    text = raw("NNTKKernelConstants")().decode()
    constants = {k: v for k, _, v in (line.partition("=") for line in text.split())}
    found = []
    for isa in tables_this_machine_runs():
        table = {name: constants.get(f"{isa}.{name}") for name in TABLE_CONSTANTS}
        least = {name: 0 if name in MAY_BE_ZERO else 1 for name in table}
        if not all(v is not None and v.isdigit() and int(v) >= least[k] for k, v in table.items()):
            found.append(f"NNTKKernelConstants: the {isa} table is described as {table}")
            continue
        for name in ("tile_cols", "row_cols"):
            if int(table[name]) % int(table["vector"]):
                found.append(f"NNTKKernelConstants: {isa}.{name} is not whole vectors: {table}")
    return found


def problems() -> tuple[int, list[str]]:
    """Every call of the contract against the loaded library, and the layer description
    against the header's rules: (how many calls and fields were checked, what failed). A
    crash ends the process (replay then fails)."""
    world = World()
    checked, found = description_problems()
    checked += 1
    found += kernel_constants_problems()
    try:
        for name in NO_PARAMETERS:
            checked += 1
            found += filter(None, [no_parameters_problem(name)])
        for check, items in ((valid_call_problem, WITH_VALID_CALL), (case_problem, ALL_CASES)):
            for item in items:
                checked += 1
                try:
                    problem = check(world, item)
                except (AssertionError, ctypes.ArgumentError, KeyError, ValueError) as exc:
                    problem = f"{getattr(item, 'id', item)}: {type(exc).__name__}: {exc}"
                found += filter(None, [problem])
    finally:
        world.close()
    return checked, found


if __name__ == "__main__":
    # For the scripts that replay under each table (ci/kernel-tables.sh, ci/coverage.sh):
    # `python -P -m parity.c_contract tables`: the kernel tables this machine runs, lowest
    # first; `... table`: the one the library runs now (NNTK_ISA honoured), to check that
    # NNTK_ISA=name really selects that table here.
    if sys.argv[1:] == ["tables"]:
        print(" ".join(tables_this_machine_runs()))
    elif sys.argv[1:] == ["table"]:
        print(raw("NNTKKernelISA")().decode())
    else:
        sys.exit("usage: python -m parity.c_contract tables|table")
