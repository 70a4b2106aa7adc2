"""The tf.keras side of the recurrent-layer tests: build the float64 Keras twin
of an nntk RNN / GRU / LSTM / Bidirectional, give it nntk's weights, and return
its outputs and GradientTape gradients; plus the comparison used by the tests.

Importing this module needs TensorFlow and tf_keras (tests skip without them).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

import nntk_core as nn  # noqa: E402

# Elementwise bound of the task: |nntk - ref| <= ATOL*max(1, max|ref|) + RTOL*|ref|.
ATOL = 1e-5
RTOL = 1e-4

# Worst observed use of the bound, per (layer, quantity): filled by assert_close
# and printed by the tests' session summary.
WORST: dict[tuple[str, str], dict] = defaultdict(lambda: {"ratio": 0.0, "abs": 0.0, "case": ""})


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


KINDS = ("rnn", "gru", "gru_v1", "lstm")  # gru_v1: GRU(reset_after=False)


def make(kind: str, units: int, input_dim: int, **options):
    if kind == "rnn":
        options.pop("recurrent_activation", None)
        return nn.RNN(units, input_dim, **options)
    if kind == "lstm":
        return nn.LSTM(units, input_dim, **options)
    return nn.GRU(units, input_dim, reset_after=(kind == "gru"), **options)


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


def bound(ref: np.ndarray) -> np.ndarray:
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    return ATOL * scale + RTOL * np.abs(ref)


def assert_close(actual, ref, layer_name: str, quantity: str, case: str = "") -> None:
    """The elementwise bound; records the worst use of it per layer and quantity."""
    actual = np.asarray(actual, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert actual.shape == ref.shape, f"{quantity}: shape {actual.shape} != Keras {ref.shape}"
    assert np.all(np.isfinite(actual)), f"{quantity}: non-finite values"
    err = np.abs(actual - ref)
    limit = bound(ref)
    ratio = err / limit
    worst = WORST[(layer_name, quantity)]
    if ratio.size and float(ratio.max()) >= worst["ratio"]:
        worst.update(ratio=float(ratio.max()), abs=float(err.max()), case=case)
    if ratio.size and not np.all(ratio <= 1.0):
        i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        raise AssertionError(
            f"{layer_name} {quantity} [{case}]: worst element {tuple(int(v) for v in i)}: "
            f"nntk {actual[i]:.9g} vs Keras float64 {ref[i]:.9g} (|err| {err[i]:.3g} > bound "
            f"{limit[i]:.3g}; {ratio[i]:.2f}x the tolerance)"
        )


@pytest.fixture(scope="module", autouse=True)
def report_worst_errors():
    """Prints (and with NNTK_RECURRENT_REPORT=path.json, saves) the worst errors."""
    yield
    print("\n" + summary())
    path = os.environ.get("NNTK_RECURRENT_REPORT")
    if path:
        existing = json.load(open(path)) if os.path.exists(path) else {}
        existing.update({f"{k[0]} | {k[1]}": v for k, v in WORST.items()})
        with open(path, "w") as f:
            json.dump(existing, f, indent=1, sort_keys=True)


def summary() -> str:
    """A table of the worst errors seen, per layer and quantity."""
    lines = [f"{'layer':<16} {'quantity':<28} {'max |err|':>10} {'% of bound':>10}  case"]
    for (layer, quantity), w in sorted(WORST.items()):
        lines.append(
            f"{layer:<16} {quantity:<28} {w['abs']:10.3g} {100 * w['ratio']:9.2f}%  {w['case']}"
        )
    return "\n".join(lines)
