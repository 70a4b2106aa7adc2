"""Coverage of the suite itself: every public native layer has a spec, and every
function the C headers export is declared in the binding table."""

from pathlib import Path

import pytest

import nntk_core
from nntk_core import _native
from parity import c_api
from parity.specs import all_specs

pytestmark = pytest.mark.harness

# The checkout's headers (an installed nntk_core carries only the built library).
HEADERS = Path(__file__).resolve().parents[1] / "nntk_core" / "csrc" / "include" / "nntk"


def exported_functions() -> set[str]:
    """Every NNTK_API function declared in the public headers (read through the
    preprocessor: a layer header declares its standard functions by a macro line)."""
    return set(c_api.parse_headers(HEADERS).functions)


def test_every_public_layer_has_a_spec():
    covered = {spec.layer_class for spec in all_specs()}
    missing = set(nntk_core.LAYER_CLASSES) - covered
    assert not missing, f"public native layers without a parity spec: {sorted(missing)}"


def test_every_spec_covers_a_public_layer():
    unknown = {s.layer_class for s in all_specs()} - set(nntk_core.LAYER_CLASSES)
    assert not unknown


def test_every_exported_c_function_is_in_the_binding_table():
    """Every exported function is declared by the binding (the non-layer ones and the
    generic layer functions by name, each layer's typed functions derived from the
    library's description), except the typed ConfigCreate functions: their C
    arguments are per layer, and the binding creates configs from field values."""
    bound = set(_native.EXTRA_FUNCTIONS)
    for functions in _native.LAYER_FUNCTIONS.values():
        bound |= set(functions)
    bound |= {f"NNTK{layer}ConfigCreate" for layer in _native.LAYERS}
    exported = exported_functions()
    assert len(exported) > 40
    assert exported - bound == set(), "exported but not declared in _native.py"
    assert bound - exported == set(), "declared in _native.py but not exported by a header"
