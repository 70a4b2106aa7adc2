"""The tf.keras side of the recurrent-layer tests: build the float64 Keras twin
of an nntk RNN / GRU / LSTM / Bidirectional, give it nntk's weights, and return
its outputs and GradientTape gradients; plus the comparison used by the tests.

Importing this module needs TensorFlow and tf_keras (tests skip without them).
"""

from __future__ import annotations

import inspect
import json
import os

import numpy as np
import pytest
from helpers import WorstErrors

import nntk_core as nn
from parity import reference
from parity.compare import Tolerance

# TensorFlow with the reference settings (parity/settings.py)
tf, keras = reference.tensorflow(), reference.keras()

# Elementwise bound of the task: |nntk - ref| <= ATOL*max(1, max|ref|) + RTOL*|ref|.
TOLERANCE = Tolerance(atol=1e-5, rtol=1e-4, reason="the task's bound against float64")

# Worst observed use of the bound, per "layer quantity": filled by assert_close and
# printed at the end of each module that uses it.
WORST = WorstErrors("recurrent layers vs tf.keras float64")


def keras_cell(layer: nn.RNN | nn.GRU | nn.LSTM, dtype: str = "float64"):
    """The tf.keras twin of an nntk RNN, GRU or LSTM (not built)."""
    common = dict(
        units=layer.units,
        activation=layer.activation,
        use_bias=layer.use_bias,
        return_sequences=layer.return_sequences,
        go_backwards=layer.go_backwards,
        return_state=layer.return_state,
        dtype=dtype,
    )
    if isinstance(layer, nn.GRU):
        return keras.layers.GRU(
            recurrent_activation=layer.recurrent_activation, reset_after=layer.reset_after, **common
        )
    if isinstance(layer, nn.LSTM):
        return keras.layers.LSTM(recurrent_activation=layer.recurrent_activation, **common)
    return keras.layers.SimpleRNN(**common)


def keras_twin(layer, dtype: str = "float64"):
    """The tf.keras twin of any nntk recurrent layer (not built). For float64 the
    dtype goes on both the inner layer and the wrapper (docs/KERAS_SEMANTICS.md §4)."""
    if isinstance(layer, nn.Bidirectional):
        return keras.layers.Bidirectional(
            keras_cell(layer.layer, dtype), merge_mode=layer.merge_mode, dtype=dtype
        )
    return keras_cell(layer, dtype)


def as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def keras_run(layer, weights, x, dys, initial_state=None, dtype: str = "float64"):
    """Runs the Keras twin of `layer` with `weights` on x under a GradientTape
    (float64 unless `dtype` says otherwise; float32 measures tf.keras's own noise).

    dys: the upstream gradients, one per output tensor (Keras's flattened
    output list). Returns (outputs list, dx, d_initial_state list, weight grads).
    """
    twin = keras_twin(layer, dtype)
    x64 = tf.constant(np.asarray(x, dtype=dtype))
    init64 = (
        None
        if initial_state is None
        else [tf.constant(np.asarray(s, dtype=dtype)) for s in initial_state]
    )
    twin(x64, initial_state=init64)  # build
    twin.set_weights([np.asarray(w, dtype=dtype) for w in weights])
    with tf.GradientTape() as tape:
        tape.watch(x64)
        if init64 is not None:
            for s in init64:
                tape.watch(s)
        outputs = as_list(twin(x64, initial_state=init64, training=True))
    sources = [x64] + (init64 or []) + list(twin.trainable_weights)
    grads = tape.gradient(
        outputs,
        sources,
        output_gradients=[tf.constant(np.asarray(d, dtype=dtype)) for d in dys],
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    grads = [g.numpy() for g in grads]
    n_init = 0 if init64 is None else len(init64)
    outs = [o.numpy().astype(np.float64) for o in outputs]
    grads = [g.astype(np.float64) for g in grads]
    return outs, grads[0], grads[1 : 1 + n_init], grads[1 + n_init :]


# The library's recurrent cells (every recurrent layer class but the wrapper), by
# lower-case name: derived, so a new cell is tested without edits here.
CELLS = {
    name.lower(): cls
    for name, cls in nn.LAYER_CLASSES.items()
    if issubclass(cls, nn.RecurrentLayer) and cls is not nn.Bidirectional
}
KINDS = (*CELLS, "gru_v1")  # gru_v1: GRU(reset_after=False)


def make(kind: str, units: int, input_dim: int, **options):
    if kind == "gru_v1":
        return nn.GRU(units, input_dim, reset_after=False, **options)
    cls = CELLS[kind]
    if "recurrent_activation" not in inspect.signature(cls).parameters:  # RNN has none
        options.pop("recurrent_activation", None)
    return cls(units, input_dim, **options)


def draw_weights(layer, rng: np.random.Generator, scale: float = 1.0) -> list[np.ndarray]:
    """Glorot-like draws for the layer's fan-in / fan-out, times `scale`."""
    out = []
    for name, shape in zip(layer.weight_names(), layer.weight_shapes(), strict=True):
        if name.endswith("bias"):
            w = rng.uniform(-0.5, 0.5, shape)
        else:
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            w = rng.uniform(-limit, limit, shape)
        out.append((scale * w).astype(np.float32))
    return out


def output_names(layer) -> list[str]:
    parts = ["output"]
    if isinstance(layer, nn.Bidirectional) and layer.merge_mode is None:
        parts = ["output forward", "output backward"]
    if layer.return_state:
        parts += [f"state {n}" for n in layer.state_names()]
    return parts


def check_against_keras(
    layer, batch: int, steps: int, seed: int, with_state: bool, scale: float = 1.0
) -> None:
    """Runs nntk and its float64 Keras twin on the same draw and compares everything."""
    rng = np.random.default_rng(seed)
    weights = draw_weights(layer, rng, scale)
    layer.set_weights(weights)
    x = rng.uniform(-1, 1, (batch, steps, layer.input_dim)).astype(np.float32)
    init = (
        [rng.uniform(-1, 1, (batch, layer.units)).astype(np.float32) for _ in layer.state_names()]
        if with_state
        else None
    )
    result = layer(x, training=True, initial_state=init)
    outs = list(result) if isinstance(result, list) else [result]
    dys = [rng.normal(size=o.shape).astype(np.float32) for o in outs]
    back = layer.backward(dys if isinstance(result, list) else dys[0])
    k_outs, k_dx, k_dinit, k_dw = keras_run(layer, weights, x, dys, init)

    name = kr_name(layer)
    case = f"{layer!r} B={batch} T={steps} seed={seed} init={with_state} scale={scale}"
    assert len(outs) == len(k_outs)
    for label, ours, ref in zip(output_names(layer), outs, k_outs, strict=True):
        assert_close(ours, ref, name, label, case)
    assert_close(back[0], k_dx, name, "dx", case)
    assert len(back[1]) == len(k_dw)
    for wname, ours, ref in zip(layer.weight_names(), back[1], k_dw, strict=True):
        assert_close(ours, ref, name, f"d {wname}", case)
    if with_state:
        assert len(back) == 3 and len(back[2]) == len(k_dinit)
        for sname, ours, ref in zip(layer.state_names(), back[2], k_dinit, strict=True):
            assert_close(ours, ref, name, f"d initial {sname}", case)
    else:
        assert len(back) == 2

    # Inference gives bit for bit the training forward.
    again = layer(x, training=False, initial_state=init)
    for ours, inferred in zip(outs, again if isinstance(again, list) else [again], strict=True):
        np.testing.assert_array_equal(ours, inferred)


def kr_name(layer) -> str:
    if isinstance(layer, nn.Bidirectional):
        return f"Bi{kr_name(layer.layer)}/{layer.merge_mode}"
    if isinstance(layer, nn.GRU):
        return "GRU" if layer.reset_after else "GRU(reset_after=F)"
    return type(layer).__name__


def assert_close(actual, ref, layer_name: str, quantity: str, case: str = "") -> None:
    """The elementwise bound (parity/compare.py); records the worst use of it per layer
    and quantity."""
    WORST.check(f"{layer_name} {quantity}", actual, ref, TOLERANCE, case=case)


@pytest.fixture(scope="module", autouse=True)
def report_worst_errors(request):
    """Prints (and with NNTK_RECURRENT_REPORT=path.json, saves) the worst errors."""
    yield
    WORST.report(request)
    path = os.environ.get("NNTK_RECURRENT_REPORT")
    if path:
        existing = json.load(open(path)) if os.path.exists(path) else {}
        existing.update(
            {
                quantity: {"ratio": c.tolerance_used, "abs": c.max_error, "case": case}
                for quantity, (c, case) in WORST.rows.items()
            }
        )
        with open(path, "w") as f:
            json.dump(existing, f, indent=1, sort_keys=True)
