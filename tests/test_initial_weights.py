"""A new nntk layer starts from tf.keras's initial weights.

Derived from the specs: for every layer and every option value the sweep covers, the
Keras twin is built twice. A weight whose two builds agree is deterministic (biases,
BatchNorm's gamma and moving variance, LSTM's forget-gate bias) and nntk's must
equal it exactly. A weight that differs between builds is a random draw (kernels):
nntk's must be random too and have the property of Keras's initializer, checked on
Keras's own draw first: orthonormal rows or columns for a recurrent kernel
(orthogonal), within glorot_uniform's limit sqrt(6 / (fan_in + fan_out)) otherwise.
"""

import json

import numpy as np
import pytest

from parity import reference
from parity.specs import all_specs

pytestmark = pytest.mark.tf


def _distinct_configs(spec):
    seen, cases = set(), []
    for case in spec.coverage_cases():
        key = json.dumps(case.config, sort_keys=True)
        if key not in seen:
            seen.add(key)
            cases.append(case)
    return cases


CASES = [
    pytest.param(spec, case, id=case.id) for spec in all_specs() for case in _distinct_configs(spec)
]


# Weights with fewer elements are built up to MORE_BUILDS more times before they are
# judged deterministic (rebuilt): a chance agreement of 21 draws of two values is 2**-20.
SMALL_WEIGHT, MORE_BUILDS = 4, 19


@pytest.mark.parametrize(("spec", "case"), CASES)
def test_new_layer_starts_from_keras_initial_weights(spec, case):
    import nntk_core

    keras = reference.keras()
    input_shape = (None,) * (case.rank - 1) + (spec.input_features(case.config),)

    def keras_weights():
        layer = spec.build_keras(keras, case.config, "float32", input_shape)
        return spec.weight_names(layer), layer.get_weights()

    def native_weights():
        layer = spec.build_native(nntk_core, case.config)
        try:
            return layer.get_weights()
        finally:
            layer.close()

    names, first = keras_weights()
    second = rebuilt(lambda: keras_weights()[1], first)
    native = native_weights()
    native_again = rebuilt(native_weights, native)

    assert len(native) == len(first), f"{names}: nntk has {len(native)} weights"
    for name, a, b, mine, mine_again in zip(
        names, first, second, native, native_again, strict=True
    ):
        assert mine.shape == a.shape, f"{name}: shape {mine.shape}, Keras {a.shape}"
        if np.array_equal(a, b):
            np.testing.assert_array_equal(mine, a, err_msg=f"{name}: Keras's initial value")
        else:
            assert not np.array_equal(mine, mine_again), f"{name}: Keras draws it at random"
            _assert_initializer_property(name, a, "Keras")
            _assert_initializer_property(name, mine, "nntk")


def rebuilt(build, first: list[np.ndarray]) -> list[np.ndarray]:
    """A second build's weights. A random weight of a few elements can come out equal
    twice by chance (a 1x1 orthogonal recurrent kernel is +1 or -1), so while such a
    weight still equals `first`'s it is built again, up to MORE_BUILDS times: each
    weight returned differs from `first`'s if any build's did."""
    second = build()
    for _ in range(MORE_BUILDS):
        if not any(
            w.size < SMALL_WEIGHT and np.array_equal(w, v)
            for w, v in zip(first, second, strict=True)
        ):
            break
        more = build()
        second = [
            v if not np.array_equal(w, v) else m
            for w, v, m in zip(first, second, more, strict=True)
        ]
    return second


def _assert_initializer_property(name: str, w: np.ndarray, side: str) -> None:
    if name.endswith("recurrent_kernel"):  # orthogonal
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        np.testing.assert_allclose(
            gram, np.eye(len(gram)), atol=1e-5, err_msg=f"{side} {name} is not orthogonal"
        )
    else:  # glorot_uniform: fans as Keras counts them (a conv kernel's taps multiply both)
        receptive = int(np.prod(w.shape[:-2]))
        limit = np.sqrt(6.0 / ((w.shape[-2] + w.shape[-1]) * receptive))
        assert np.abs(w).max() <= limit * (1 + 1e-6), (
            f"{side} {name} draws up to {np.abs(w).max():.4g}, past glorot's {limit:.4g}"
        )


NATIVE_CASES = [pytest.param(spec, spec.coverage_cases()[0], id=spec.name) for spec in all_specs()]


@pytest.mark.parametrize(("spec", "case"), NATIVE_CASES)
def test_set_weights_first_draws_nothing(spec, case, monkeypatch):
    """A layer whose first use is set_weights() starts its handle from those weights:
    no initializer draws what is about to be overwritten (a recurrent kernel's draw is a
    numpy QR), and the layer holds exactly the weights given."""
    import nntk_core
    import nntk_core.layer

    given_by = spec.build_native(nntk_core, case.config)
    given = [w + 0.5 for w in given_by.get_weights()]  # any values but the draw's
    given_by.close()

    def refuse(shape):
        raise AssertionError(f"an initializer drew weights of shape {shape}")

    for initializer in list(nntk_core.layer.INITIALIZERS):
        monkeypatch.setitem(nntk_core.layer.INITIALIZERS, initializer, refuse)
    layer = spec.build_native(nntk_core, case.config)
    try:
        layer.set_weights(given)
        for mine, expected in zip(layer.get_weights(), given, strict=True):
            np.testing.assert_array_equal(mine, expected)
    finally:
        layer.close()
