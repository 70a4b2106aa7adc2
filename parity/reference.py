"""The tf.keras side: builds a case's data and runs the Keras layer in float32 and,
as the referee, in float64 with the same (float32-valued) weights and inputs.

TensorFlow is imported lazily, on the first call that needs it, after the
reference settings (settings.py) are applied; nothing else in `parity` needs it.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from parity import settings
from parity.case import Case
from parity.spec import LayerSpec, float32_range


@dataclass
class CaseData:
    """Everything both sides are given for one case."""

    weight_names: list[str]
    weights: list[np.ndarray]  # float32, tf.keras get_weights() order
    x: np.ndarray  # float32 input
    upstream: list[np.ndarray]  # float32 upstream gradient per output
    states: list[np.ndarray] = field(default_factory=list)  # extra inputs (initial states)


@dataclass
class Reference:
    data: CaseData
    float64: dict[str, np.ndarray]  # the referee
    float32: dict[str, np.ndarray]  # tf.keras float32, to measure its own error


@lru_cache(maxsize=1)
def tensorflow():
    """The tensorflow module, imported once with the reference settings (quietly)."""
    return settings.import_tensorflow()


@lru_cache(maxsize=1)
def keras():
    """tf.keras as Keras 2 (the tf_keras package). Imported, every object alive
    (TensorFlow's and Keras's modules, ~280,000 objects) leaves the garbage
    collector's care (gc.freeze): each full collection walked them all (0.14 s a
    collection, measured), and the cases' Keras twins trigger several a run."""
    tensorflow()
    import tf_keras

    gc.freeze()
    return tf_keras


def versions() -> dict[str, str]:
    tf = tensorflow()
    return {
        "tensorflow": tf.__version__,
        "tf_keras": keras().__version__,
        "numpy": np.__version__,
    }


@lru_cache(maxsize=256)
def _keras_layer(spec_name: str, config_json: str, dtype: str, input_shape: tuple):
    from parity.specs import get_spec

    spec = get_spec(spec_name)
    # every weight is set from the case's data before each call (run_keras), and
    # draw_case_data reads the twin's weights for their shapes only
    config = json.loads(config_json)
    return spec.build_keras(keras(), config, dtype, input_shape, initialized=False)


def keras_layer(spec: LayerSpec, case: Case, dtype: str):
    """The Keras layer for a case's config and input rank, built once and reused
    (weights are set per case)."""
    features = spec.input_features(case.config)
    input_shape = (None,) * (case.rank - 1) + (features,)
    return _keras_layer(spec.name, json.dumps(case.config, sort_keys=True), dtype, input_shape)


def _shapes(shape) -> list[tuple[int, ...]]:
    """compute_output_shape's answer as a list of tuples."""
    tf = tensorflow()
    if isinstance(shape, (list, tuple)) and shape and not isinstance(shape[0], (int, type(None))):
        return [tuple(tf.TensorShape(s).as_list()) for s in shape]
    return [tuple(tf.TensorShape(shape).as_list())]


def draw_case_data(spec: LayerSpec, case: Case) -> CaseData:
    """The case's weights, input and upstream gradients, from its seed."""
    layer32 = keras_layer(spec, case, "float32")
    rng = np.random.default_rng(case.seed)
    names = spec.weight_names(layer32)
    scale = spec.scales[case.scale]
    weights = [
        spec.draw_weight(name, tuple(w.shape), scale, rng)
        for name, w in zip(names, layer32.get_weights(), strict=True)
    ]
    x = spec.draw_input(case, rng)
    states = spec.draw_states(case, rng)
    upstream = [
        rng.standard_normal(shape).astype(np.float32)
        for shape in _shapes(layer32.compute_output_shape(spec.call_input_shape(x)))
    ]
    return CaseData(names, weights, x, upstream, states)


def run_keras(spec: LayerSpec, case: Case, data: CaseData, dtype: str) -> dict[str, np.ndarray]:
    tf = tensorflow()
    layer = keras_layer(spec, case, dtype)
    np_dtype = np.float64 if dtype == "float64" else np.float32
    layer.set_weights([np.asarray(w, np_dtype) for w in data.weights])
    quantities = spec.run_keras(
        tf,
        layer,
        data.x.astype(np_dtype),
        [u.astype(np_dtype) for u in data.upstream],
        states=[s.astype(np_dtype) for s in data.states],
    )
    # Every float32 implementation overflows where the float64 referee still has range:
    # the referee's values are mapped to float32's range once, here, for every spec.
    return {k: np.asarray(v) for k, v in float32_range(quantities).items()}


def sensitivity(spec: LayerSpec, case: Case, data: CaseData, trials: int = 2):
    """How far the float64 referee moves when every float32 input moves by a random
    +-1 ulp (relative 2**-24): per quantity, the elementwise max over `trials`."""
    base = run_keras(spec, case, data, "float64")
    rng = np.random.default_rng(case.seed ^ 0x5EED)

    def nudge(a: np.ndarray) -> np.ndarray:
        signs = rng.choice(np.array([-1.0, 1.0]), size=a.shape)
        return a.astype(np.float64) * (1.0 + signs * 2.0**-24)

    moved: dict[str, np.ndarray] = {}
    for _ in range(trials):
        nudged = CaseData(
            data.weight_names,
            [nudge(w) for w in data.weights],
            nudge(data.x),
            [nudge(u) for u in data.upstream],
            [nudge(s) for s in data.states],
        )
        result = run_keras(spec, case, nudged, "float64")
        for key, value in result.items():
            change = np.abs(value - base[key])
            moved[key] = change if key not in moved else np.maximum(moved[key], change)
    return moved


def compute(spec: LayerSpec, case: Case) -> Reference:
    """The case's data and both Keras results."""
    data = draw_case_data(spec, case)
    return Reference(
        data=data,
        float64=run_keras(spec, case, data, "float64"),
        float32=run_keras(spec, case, data, "float32"),
    )
