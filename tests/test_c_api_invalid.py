"""Every public C function refuses bad arguments (issue #7).

The contract and its cases are derived from the headers in parity/c_contract.py (read
its docstring), which `nntk-parity replay` checks too; here each case is one pytest
case, beside the checks of the enumeration itself: the headers and the exported
symbols agree, every function with parameters has cases (a function without coverage
turns CI red), every layer has the standard function set, the binding's declarations
match the headers.
"""

from __future__ import annotations

import ctypes
import re

import pytest

from nntk_core import _native
from parity import c_api
from parity.c_contract import (
    ALL_CASES,
    API,
    NO_PARAMETERS,
    VALID_CONFIG_ARGS,
    VALID_EXCEPTIONS,
    WITH_VALID_CALL,
    World,
    argtype,
    case_problem,
    no_parameters_problem,
    valid_call_problem,
)


@pytest.fixture(scope="module")
def world():
    w = World()
    yield w
    w.close()


# -- the enumeration itself -------------------------------------------------------------
def test_headers_declare_the_api():
    assert API.layers, "no NNTK<Layer>ConfigCreate in the headers"
    assert len(API.functions) >= len(API.layers) * len(c_api.STANDARD_SUFFIXES)


def test_library_exports_exactly_the_header_functions():
    exported = c_api.dynamic_symbols(_native.library_path())
    ours = {s for s in exported if s.lower().startswith("nntk")}
    assert ours == set(API.functions), (
        f"exported but not in a header: {sorted(ours - set(API.functions))}; "
        f"in a header but not exported: {sorted(set(API.functions) - ours)}"
    )
    toolchain = re.compile(
        r"^(_init|_fini|_edata|_end|__bss_start|_+(asan|ubsan|sanitizer|odr)\w*)$"
    )
    stray = sorted(s for s in exported - ours if not toolchain.match(s))
    assert not stray, f"the library exports names outside the NNTK API: {stray}"


def test_every_function_with_parameters_has_invalid_argument_cases():
    covered = {case.function for case in ALL_CASES}
    missing = sorted(f.name for f in API.functions.values() if f.params and f.name not in covered)
    assert not missing, f"exported functions without an invalid-argument case: {missing}"
    # What the report counts: functions with parameters, all covered.
    assert len(covered) + len(NO_PARAMETERS) == len(API.functions)


@pytest.mark.parametrize("layer", API.layers)
def test_standard_function_set(layer):
    """Every layer has docs/DESIGN.md §3's functions, with the parameter kinds and names
    the generic tests, the C smoke test and the fuzzer rely on."""
    expected = {
        "ConfigDestroy": [("handle", "config")],
        "CreateForInference": [("handle", "config")],
        "CreateForTraining": [("handle", "config"), ("struct", "training_config")],
        "Destroy": [("handle", "filter")],
        "GetWeights": [("handle", "filter"), ("fptrptr", "weights"), ("i64ptr", "count")],
        "OutputShape": [
            ("handle", "filter"),
            ("i64", "batch"),
            ("i64", "steps"),
            ("i64ptr", "out_steps"),
            ("i64ptr", "out_features"),
        ],
        "ApplyInference": [
            ("handle", "filter"),
            ("i64", "batch"),
            ("i64", "steps"),
            ("fptr", "in"),
            ("fptr", "out"),
        ],
        "ApplyTrainingBatch": [
            ("handle", "filter"),
            ("i64", "batch"),
            ("i64", "steps"),
            ("fptr", "in"),
            ("fptr", "out"),
        ],
        "GradientCreate": [("handle", "filter")],
        "GradientDestroy": [("handle", "gradient")],
        "GradientGetWeights": [("handle", "gradient"), ("fptrptr", "weights"), ("i64ptr", "count")],
        "CalculateGradient": [
            ("handle", "filter"),
            ("handle", "gradient"),
            ("fptr", "d_out"),
            ("fptr", "d_in"),
        ],
    }
    for suffix, params in expected.items():
        name = f"NNTK{layer}{suffix}"
        assert name in API.functions, f"{name} is not declared"
        got = [(p.kind, p.name) for p in API.functions[name].params]
        assert got == params, f"{name}{got}: expected {params}"
    create = API.standard(layer, "ConfigCreate")
    assert create.return_kind == "handle"
    assert all(p.kind in c_api.SCALAR_KINDS for p in create.params), create.params
    # The documented contract of the set: these NULLs are accepted.
    assert "training_config" in API.standard(layer, "CreateForTraining").optional_pointers()
    assert "d_in" in API.standard(layer, "CalculateGradient").optional_pointers(), (
        f"nntk/{API.standard(layer, 'CalculateGradient').header}: document that d_in may be NULL"
    )


def test_valid_config_table_matches_the_layers():
    for layer, args in VALID_CONFIG_ARGS.items():
        assert layer in API.layers, f"VALID_CONFIG_ARGS names {layer!r}, not a layer"
        names = {p.name for p in API.standard(layer, "ConfigCreate").params}
        assert set(args) <= names, f"VALID_CONFIG_ARGS[{layer!r}]: unknown {set(args) - names}"
    for (function, param), _ in VALID_EXCEPTIONS.items():
        assert param in {p.name for p in API.functions[function].params}


def test_binding_table_matches_the_headers():
    """_native.py's declarations agree with the headers (an int32 declared where
    the C function takes an int64 would be silently wrong)."""
    typed_config_creates = {f"NNTK{layer}ConfigCreate" for layer in _native.LAYERS}
    for name, f in API.functions.items():
        if name in typed_config_creates:  # not bound: per-layer C arguments (test_coverage.py)
            continue
        func = getattr(_native.lib, name)
        declared = list(func.argtypes or [])
        assert len(declared) == len(f.params), f"{name}: {len(declared)} argtypes"
        for p, t in zip(f.params, declared, strict=True):
            want = argtype(p)
            if p.kind == "struct":
                fields = [(n, ty) for n, ty in t._type_._fields_]
                assert fields == list(want._type_._fields_), f"{name}({p.name})"
            elif p.kind == "handle":
                assert t is ctypes.c_void_p, f"{name}({p.name}): {t}"
            else:
                assert t == want, f"{name}({p.name}): declared {t}, the header says {p.ctype}"


@pytest.mark.parametrize("name", NO_PARAMETERS)
def test_functions_without_parameters(name):
    problem = no_parameters_problem(name)
    assert problem is None, problem


# -- the calls --------------------------------------------------------------------------
@pytest.mark.parametrize("name", WITH_VALID_CALL)
def test_valid_call_succeeds(world, name):
    """The baseline every case mutates: with these arguments the call succeeds."""
    problem = valid_call_problem(world, name)
    assert problem is None, problem


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_invalid_argument(world, case):
    problem = case_problem(world, case)
    assert problem is None, problem
