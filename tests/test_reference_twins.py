"""The live gate's reference work per case (parity/reference.py, runner.NativeBackend):
no initializer draws what the case then overwrites, and a Keras twin built once serves
cases of other batch sizes and lengths with a fresh twin's bits."""

import json

import numpy as np
import pytest

from parity import reference, runner
from parity.specs import get_spec

pytestmark = pytest.mark.tf


@pytest.mark.parametrize("name", ["gru", "lstm", "bidirectional", "dense"])
def test_native_side_draws_no_initial_weights(name, monkeypatch):
    """The nntk layer starts from the case's weights: its initializers (a numpy QR for
    a recurrent kernel, on numpy's multithreaded BLAS) are never called."""
    import nntk_core.layer

    spec = get_spec(name)
    case = spec.coverage_cases()[0]
    data = reference.draw_case_data(spec, case)

    def refuse(shape):
        raise AssertionError(f"an initializer drew weights of shape {shape}")

    for initializer in list(nntk_core.layer.INITIALIZERS):
        monkeypatch.setitem(nntk_core.layer.INITIALIZERS, initializer, refuse)
    quantities = runner.NativeBackend().run(spec, case, data)
    assert quantities


@pytest.mark.parametrize("name", ["bidirectional", "batch_norm", "time_distributed_dense"])
def test_gate_twin_starts_from_zeros(name):
    """initialized=False reaches every weight, a wrapper's inner layers and the cells
    included; the default build keeps Keras's initial weights."""
    spec = get_spec(name)
    case = spec.coverage_cases()[0]
    keras = reference.keras()
    input_shape = (None,) * (case.rank - 1) + (spec.input_features(case.config),)
    bare = spec.build_keras(keras, case.config, "float32", input_shape, initialized=False)
    drawn = spec.build_keras(keras, case.config, "float32", input_shape)
    assert [w.shape for w in bare.get_weights()] == [w.shape for w in drawn.get_weights()]
    assert all(not w.any() for w in bare.get_weights())
    assert any(w.any() for w in drawn.get_weights())


def _twin_key(case) -> tuple:
    return json.dumps(case.config, sort_keys=True), case.rank


@pytest.mark.parametrize("name", ["gru", "batch_norm", "conv1d"])
def test_reused_twin_gives_a_fresh_twins_bits(name):
    """A case run on a twin that first ran a case of another batch size or length
    gets the same float32 and float64 quantities as on a twin built for it."""
    spec = get_spec(name)
    first: dict[tuple, object] = {}
    pair = None
    for case in spec.coverage_cases():
        earlier = first.setdefault(_twin_key(case), case)
        if (earlier.batch, earlier.steps) != (case.batch, case.steps):
            pair = earlier, case
            break
    assert pair is not None, f"{name}: no two coverage cases share a twin at other B or T"
    earlier, case = pair
    reference._keras_layer.cache_clear()
    reference.compute(spec, earlier)
    reused = reference.compute(spec, case)
    reference._keras_layer.cache_clear()
    fresh = reference.compute(spec, case)
    for which in ("float64", "float32"):
        a, b = getattr(reused, which), getattr(fresh, which)
        assert a.keys() == b.keys()
        for quantity in a:
            assert np.array_equal(a[quantity], b[quantity], equal_nan=True), (which, quantity)
