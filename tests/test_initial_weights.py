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


@pytest.mark.parametrize(("spec", "case"), CASES)
def test_new_layer_starts_from_keras_initial_weights(spec, case):
    import nntk_core

    keras = reference.keras()
    input_shape = (None,) * (case.rank - 1) + (spec.input_features(case.config),)
    twins = [spec.build_keras(keras, case.config, "float32", input_shape) for _ in range(2)]
    names = spec.weight_names(twins[0])
    first, second = (twin.get_weights() for twin in twins)

    layer = spec.build_native(nntk_core, case.config)
    try:
        native = layer.get_weights()
        again = spec.build_native(nntk_core, case.config)
        try:
            native_again = again.get_weights()
        finally:
            again.close()
    finally:
        layer.close()

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
