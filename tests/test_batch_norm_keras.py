"""BatchNorm against real tf.keras BatchNormalization (float64 reference), plus bad input.

Each case runs the same sequence on nntk and on a float64 tf.keras layer that start from the
same (random) weights: `calls` training calls, each with a fresh x and dY, then one inference
call. After every call it compares the output, dx, every trainable weight gradient
(tape.gradient(y, [x] + trainable_weights, output_gradients=dY), in the mode of that call),
and the moving statistics. Tolerance, elementwise against the float64 reference:

    |nntk_i - ref_i| <= 1e-5 * max(1, max|ref|) + 1e-4 * |ref_i|.

The worst error per quantity is printed at the end of the module.
"""

from __future__ import annotations

import ctypes
import math
import os
import zlib

import c_api
import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import nntk_core as nn  # noqa: E402
from nntk_core import NNTKError, lib  # noqa: E402

ATOL, RTOL = 1e-5, 1e-4

# quantity -> (worst fraction of tolerance used, worst |err| / scale, case)
WORST: dict[str, tuple[float, float, str]] = {}


def check_close(quantity: str, case: str, native: np.ndarray, ref: np.ndarray) -> None:
    native = np.asarray(native, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert native.shape == ref.shape, f"{case}: {quantity} shape {native.shape} != {ref.shape}"
    assert np.all(np.isfinite(native)), f"{case}: {quantity} has non-finite values"
    scale = max(1.0, float(np.max(np.abs(ref))))
    err = np.abs(native - ref)
    tol = ATOL * scale + RTOL * np.abs(ref)
    used = float(np.max(err / tol))
    rel = float(np.max(err) / scale)
    if used > WORST.get(quantity, (-1.0, 0.0, ""))[0]:
        WORST[quantity] = (used, rel, case)
    if used > 1.0:
        i = np.unravel_index(int(np.argmax(err / tol)), err.shape)
        raise AssertionError(
            f"{case}: {quantity} exceeds tolerance ({used:.3g}x): at {tuple(int(v) for v in i)} "
            f"nntk={native[i]!r} ref={ref[i]!r} err={err[i]:.3g} tol={tol[i]:.3g}"
        )


@pytest.fixture(scope="module", autouse=True)
def _report_worst(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not WORST:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line("BatchNorm vs tf.keras float64: worst error per quantity")
        for quantity, (used, rel, case) in sorted(WORST.items()):
            reporter.write_line(
                f"  {quantity:22s} {100 * used:7.3f}% of tolerance  "
                f"max|err|/scale={rel:.2e}  ({case})"
            )


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("tensorflow")
    import tf_keras

    return tf_keras


# -- the grid ---------------------------------------------------------------------------------

DEFAULT = dict(
    shape=(2, 5, 3), center=True, scale=True, momentum=0.99, epsilon=1e-3, calls=3, data="normal"
)


def make_cases() -> list[dict]:
    cases = []
    shapes = [(2, 5, 3), (4, 7, 1), (3, 16, 8), (1, 1, 4), (1, 1, 1), (6, 3), (1, 3), (64, 5)]
    for shape in shapes:
        for center in (True, False):
            for scale in (True, False):
                cases.append(dict(DEFAULT, shape=shape, center=center, scale=scale))
    for momentum, epsilon in (
        (0.99, 1e-3),
        (0.9, 1e-5),
        (0.999, 1e-3),
        (0.0, 0.1),
        (1.0, 1e-3),
        (0.5, 1e-2),
    ):
        for shape in ((2, 5, 3), (6, 3)):
            cases.append(dict(DEFAULT, shape=shape, momentum=momentum, epsilon=epsilon, calls=2))
    for calls in (1, 2, 3, 4, 5):
        cases.append(dict(DEFAULT, calls=calls))
    # 1000 ± 0.01: a one-pass variance (E[x²] − E[x]²) loses it entirely in float32.
    for shape in ((2, 5, 3), (4, 50, 2), (64, 3)):
        for epsilon in (1e-3, 1e-5):
            cases.append(dict(DEFAULT, shape=shape, epsilon=epsilon, data="offset"))
    cases.append(dict(DEFAULT, shape=(4, 50, 2), data="offset", center=False, scale=False))
    # Wider spread of values per channel, and a long sequence.
    cases.append(dict(DEFAULT, shape=(3, 20, 6), data="spread", calls=2))
    cases.append(dict(DEFAULT, shape=(8, 200, 4), calls=2))
    return cases


CASES = make_cases()


def case_id(cfg: dict) -> str:
    shape = "x".join(str(v) for v in cfg["shape"])
    flags = ("" if cfg["center"] else "-nocenter") + ("" if cfg["scale"] else "-noscale")
    return (
        f"{shape}{flags}-m{cfg['momentum']}-eps{cfg['epsilon']}-calls{cfg['calls']}-{cfg['data']}"
    )


def draw_x(rng, cfg: dict) -> np.ndarray:
    shape, channels = cfg["shape"], cfg["shape"][-1]
    if cfg["data"] == "offset":
        return (1000.0 + 0.01 * rng.normal(size=shape)).astype(np.float32)
    if cfg["data"] == "spread":
        shift = rng.normal(0.0, 50.0, channels)
        spread = np.exp(rng.uniform(-3.0, 3.0, channels))
        return (shift + spread * rng.normal(size=shape)).astype(np.float32)
    shift = rng.normal(0.0, 1.0, channels)
    return (shift + rng.uniform(0.5, 2.0, channels) * rng.normal(size=shape)).astype(np.float32)


def draw_weights(rng, cfg: dict) -> list[np.ndarray]:
    c = cfg["shape"][-1]
    weights = []
    if cfg["scale"]:
        weights.append(rng.uniform(0.5, 1.5, c).astype(np.float32))
    if cfg["center"]:
        weights.append(rng.normal(0.0, 0.5, c).astype(np.float32))
    weights.append(rng.normal(0.0, 0.5, c).astype(np.float32))  # moving_mean
    weights.append(rng.uniform(0.5, 2.0, c).astype(np.float32))  # moving_variance
    return weights


def keras_layer(keras, cfg: dict, weights):
    layer = keras.layers.BatchNormalization(
        momentum=cfg["momentum"],
        epsilon=cfg["epsilon"],
        center=cfg["center"],
        scale=cfg["scale"],
        dtype="float64",
    )
    layer.build((None,) + tuple(cfg["shape"][1:]))
    layer.set_weights([w.astype(np.float64) for w in weights])
    return layer


def keras_call(layer, x: np.ndarray, dy: np.ndarray, training: bool):
    import tensorflow as tf

    xt = tf.constant(x.astype(np.float64))
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt, training=training)
    grads = tape.gradient(
        y,
        [xt] + layer.trainable_weights,
        output_gradients=tf.constant(dy.astype(np.float64)),
    )
    return y.numpy(), grads[0].numpy(), [g.numpy() for g in grads[1:]]


def compare_call(case, layer, ref, x, dy, training: bool) -> None:
    mode = "training" if training else "inference"
    y = layer(x, training=training)
    dx, grads = layer.backward(dy)
    y_ref, dx_ref, grads_ref = keras_call(ref, x, dy, training)
    check_close(f"y {mode}", case, y, y_ref)
    check_close(f"dx {mode}", case, dx, dx_ref)
    names = [n for n, t in zip(layer.weight_names(), layer.trainable_mask(), strict=True) if t]
    assert len(grads) == len(grads_ref) == len(names), case
    for name, g, g_ref in zip(names, grads, grads_ref, strict=True):
        check_close(f"d{name} {mode}", case, g, g_ref)
    weights, weights_ref = layer.get_weights(), ref.get_weights()
    check_close("moving_mean", case, weights[-2], weights_ref[-2])
    check_close("moving_variance", case, weights[-1], weights_ref[-1])


@pytest.mark.tf
@pytest.mark.parametrize("cfg", CASES, ids=[case_id(c) for c in CASES])
def test_batch_norm_matches_keras(keras, cfg):
    case = case_id(cfg)
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    weights = draw_weights(rng, cfg)
    ref = keras_layer(keras, cfg, weights)
    layer = nn.BatchNorm(
        cfg["shape"][-1],
        momentum=cfg["momentum"],
        epsilon=cfg["epsilon"],
        center=cfg["center"],
        scale=cfg["scale"],
    )
    layer.set_weights(weights)
    for call in range(cfg["calls"]):
        x = draw_x(rng, cfg)
        dy = rng.normal(size=cfg["shape"]).astype(np.float32)
        compare_call(f"{case} call {call + 1}", layer, ref, x, dy, training=True)
    # Then inference: the moving statistics, untouched by it, and the inference-mode gradients.
    before = layer.get_weights()
    x = draw_x(rng, cfg)
    dy = rng.normal(size=cfg["shape"]).astype(np.float32)
    compare_call(f"{case} inference", layer, ref, x, dy, training=False)
    for w0, w1 in zip(before, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(w0, w1)
    layer.close()


def test_batch_norm_inference_is_the_native_inference():
    """training=False (the frozen pass that keeps state) gives exactly ApplyInference's output."""
    rng = np.random.default_rng(0)
    layer = nn.BatchNorm(70)  # more channels than one block of the inference path
    weights = [rng.uniform(0.5, 1.5, 70), rng.normal(size=70), rng.normal(size=70)]
    weights.append(rng.uniform(0.5, 2.0, 70))
    layer.set_weights(weights)
    x = rng.normal(size=(3, 4, 70)).astype(np.float32)
    y = layer(x)
    cfg = c_api.config_create("BatchNorm")(70, 0.99, 1e-3, 1, 1)
    handle = lib.NNTKBatchNormCreateForInference(cfg)
    lib.NNTKBatchNormConfigDestroy(cfg)
    try:
        ptr, count = ctypes.POINTER(ctypes.c_float)(), ctypes.c_int64()
        lib.NNTKBatchNormGetWeights(handle, ctypes.byref(ptr), ctypes.byref(count))
        np.ctypeslib.as_array(ptr, shape=(count.value,))[:] = np.concatenate(weights)
        out = np.empty_like(x)
        lib.NNTKBatchNormApplyInference(handle, 3, 4, fp(x), fp(out))
    finally:
        lib.NNTKBatchNormDestroy(handle)
    np.testing.assert_array_equal(y, out)


def test_batch_norm_keras_defaults_and_initial_weights():
    layer = nn.BatchNorm(3)
    assert (layer.momentum, layer.epsilon, layer.center, layer.scale) == (0.99, 1e-3, True, True)
    assert layer.weight_names() == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert layer.trainable_mask() == [True, True, False, False]
    for w, value in zip(layer.get_weights(), (1, 0, 0, 1), strict=True):
        np.testing.assert_array_equal(w, np.full(3, value, np.float32))
    assert nn.LAYER_CLASSES["BatchNorm"] is nn.BatchNorm
    for center, scale, names in (
        (False, True, ["gamma"]),
        (True, False, ["beta"]),
        (False, False, []),
    ):
        layer = nn.BatchNorm(2, center=center, scale=scale)
        assert layer.weight_names() == names + ["moving_mean", "moving_variance"]
        x = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
        layer(x, training=True)
        dx, grads = layer.backward(np.ones_like(x))
        assert len(grads) == len(names)


def test_batch_norm_large_offset_is_not_lost():
    """1000 ± 0.01 normalises to unit variance (a one-pass float32 variance would give 0 or
    garbage)."""
    rng = np.random.default_rng(3)
    x = (1000.0 + 0.01 * rng.normal(size=(16, 32, 2))).astype(np.float32)
    layer = nn.BatchNorm(2, epsilon=1e-8)
    y = layer(x, training=True).astype(np.float64)
    np.testing.assert_allclose(y.mean(axis=(0, 1)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 1)), 1.0, atol=1e-3)


# -- bad input: Python ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "word"),
    [
        (dict(epsilon=0.0), ValueError, "epsilon"),
        (dict(epsilon=-1e-3), ValueError, "epsilon"),
        (dict(epsilon=math.nan), ValueError, "epsilon"),
        (dict(epsilon=math.inf), ValueError, "epsilon"),
        (dict(epsilon="1e-3"), TypeError, "epsilon"),
        (dict(momentum=-0.1), ValueError, "momentum"),
        (dict(momentum=1.5), ValueError, "momentum"),
        (dict(momentum=math.nan), ValueError, "momentum"),
        (dict(momentum=None), TypeError, "momentum"),
        (dict(center="yes"), TypeError, "center"),
        (dict(scale=1), TypeError, "scale"),
        (dict(input_dim=0), ValueError, "input_dim"),
    ],
)
def test_batch_norm_bad_arguments(kwargs, exc, word):
    args = dict(input_dim=3)
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        nn.BatchNorm(**args)


def test_batch_norm_bad_inputs():
    layer = nn.BatchNorm(3)
    with pytest.raises(ValueError, match="3 features|input_dim is 3"):
        layer(np.zeros((2, 5, 4), np.float32))
    with pytest.raises(ValueError, match="x must be"):
        layer(np.zeros((2, 5, 4, 3), np.float32))
    with pytest.raises(ValueError, match="empty"):
        layer(np.zeros((0, 3), np.float32))
    with pytest.raises(TypeError, match="training"):
        layer(np.zeros((2, 3), np.float32), training="yes")
    with pytest.raises(RuntimeError, match="no training call"):
        layer.backward(np.zeros((2, 3), np.float32))
    layer(np.zeros((2, 3), np.float32), training=False)
    with pytest.raises(ValueError, match="dy must have the shape"):
        layer.backward(np.zeros((2, 5, 3), np.float32))
    with pytest.raises(ValueError, match="gamma must have shape"):
        layer.set_weights([np.ones(4), np.zeros(3), np.zeros(3), np.ones(3)])
    with pytest.raises(ValueError, match="expected 4 arrays"):
        layer.set_weights([np.ones(3)] * 2)


# -- bad input: the C API through the binding -------------------------------------------------


def fp(arr):
    return arr.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


@pytest.mark.parametrize(
    ("args", "word"),
    [
        ((0, 0.99, 1e-3, 1, 1), "input_dim"),
        ((-3, 0.99, 1e-3, 1, 1), "input_dim"),
        ((3, -0.1, 1e-3, 1, 1), "momentum"),
        ((3, 1.5, 1e-3, 1, 1), "momentum"),
        ((3, math.nan, 1e-3, 1, 1), "momentum"),
        ((3, math.inf, 1e-3, 1, 1), "momentum"),
        ((3, 0.99, 0.0, 1, 1), "epsilon"),
        ((3, 0.99, -1e-3, 1, 1), "epsilon"),
        ((3, 0.99, math.nan, 1, 1), "epsilon"),
        ((3, 0.99, math.inf, 1, 1), "epsilon"),
        ((3, 0.99, 1e-3, 2, 1), "center"),
        ((3, 0.99, 1e-3, 1, -1), "scale"),
    ],
)
def test_c_config_rejects(args, word):
    with pytest.raises(NNTKError, match=word) as info:
        c_api.config_create("BatchNorm")(*args)
    assert "NNTKBatchNormConfigCreate" in str(info.value)
    assert info.value.status == "NNTK_ERROR_INVALID_ARGUMENT"


@pytest.fixture
def handles():
    cfg = c_api.config_create("BatchNorm")(3, 0.99, 1e-3, 1, 1)
    train = lib.NNTKBatchNormCreateForTraining(cfg, None)
    infer = lib.NNTKBatchNormCreateForInference(cfg)
    lib.NNTKBatchNormConfigDestroy(cfg)
    yield train, infer
    lib.NNTKBatchNormDestroy(train)
    lib.NNTKBatchNormDestroy(infer)


@pytest.mark.parametrize("center", [0, 1])
@pytest.mark.parametrize("scale", [0, 1])
def test_c_initial_weights(center, scale):
    cfg = c_api.config_create("BatchNorm")(4, 0.99, 1e-3, center, scale)
    handle = lib.NNTKBatchNormCreateForInference(cfg)
    lib.NNTKBatchNormConfigDestroy(cfg)
    try:
        ptr, count = ctypes.POINTER(ctypes.c_float)(), ctypes.c_int64()
        lib.NNTKBatchNormGetWeights(handle, ctypes.byref(ptr), ctypes.byref(count))
        block = np.ctypeslib.as_array(ptr, shape=(count.value,)).copy()
    finally:
        lib.NNTKBatchNormDestroy(handle)
    expected = [1.0] * 4 * scale + [0.0] * 4 * center + [0.0] * 4 + [1.0] * 4
    np.testing.assert_array_equal(block, np.array(expected, np.float32))


def test_c_null_size_and_state_errors(handles):
    train, infer = handles
    x = np.ones((2, 5, 3), np.float32)
    y = np.empty_like(x)
    with pytest.raises(NNTKError, match="filter is NULL"):
        lib.NNTKBatchNormApplyInference(None, 2, 5, fp(x), fp(y))
    with pytest.raises(NNTKError, match="in is NULL"):
        lib.NNTKBatchNormApplyTrainingBatch(train, 2, 5, None, fp(y))
    with pytest.raises(NNTKError, match="out is NULL") as info:
        lib.NNTKBatchNormApplyFrozenBatch(train, 2, 5, fp(x), None)
    assert info.value.status == "NNTK_ERROR_NULL_POINTER"
    with pytest.raises(NNTKError, match="batch"):
        lib.NNTKBatchNormApplyTrainingBatch(train, 0, 5, fp(x), fp(y))
    with pytest.raises(NNTKError, match="steps"):
        lib.NNTKBatchNormApplyFrozenBatch(train, 2, 0, fp(x), fp(y))
    steps, features = ctypes.c_int64(), ctypes.c_int64()
    with pytest.raises(NNTKError, match="batch"):
        lib.NNTKBatchNormOutputShape(train, 1 << 40, 1, ctypes.byref(steps), ctypes.byref(features))
    with pytest.raises(NNTKError, match="out_steps is NULL"):
        lib.NNTKBatchNormOutputShape(train, 2, 5, None, ctypes.byref(features))
    lib.NNTKBatchNormOutputShape(train, 2, 5, ctypes.byref(steps), ctypes.byref(features))
    assert (steps.value, features.value) == (5, 3)
    for apply in (lib.NNTKBatchNormApplyTrainingBatch, lib.NNTKBatchNormApplyFrozenBatch):
        with pytest.raises(NNTKError, match="created for inference") as info:
            apply(infer, 2, 5, fp(x), fp(y))
        assert info.value.status == "NNTK_ERROR_INVALID_STATE"
    with pytest.raises(NNTKError, match="created for inference"):
        lib.NNTKBatchNormGradientCreate(infer)
    grad = lib.NNTKBatchNormGradientCreate(train)
    try:
        with pytest.raises(NNTKError, match="no training batch yet"):
            lib.NNTKBatchNormCalculateGradient(train, grad, fp(y), fp(x))
        lib.NNTKBatchNormApplyFrozenBatch(train, 2, 5, fp(x), fp(y))
        with pytest.raises(NNTKError, match="d_out is NULL"):
            lib.NNTKBatchNormCalculateGradient(train, grad, None, fp(x))
        lib.NNTKBatchNormCalculateGradient(train, grad, fp(y), None)  # d_in may be NULL
        with pytest.raises(NNTKError, match="expected kind"):
            lib.NNTKBatchNormCalculateGradient(grad, grad, fp(y), fp(x))
        with pytest.raises(NNTKError, match="expected kind"):
            lib.NNTKBatchNormApplyFrozenBatch(grad, 2, 5, fp(x), fp(y))
        lib.NNTKBatchNormApplyTrainingBatch(train, 2, 5, fp(x), fp(y))
        ptr, count = ctypes.POINTER(ctypes.c_float)(), ctypes.c_int64()
        lib.NNTKBatchNormCalculateGradient(train, grad, fp(np.ones_like(x)), fp(x))
        lib.NNTKBatchNormGradientGetWeights(grad, ctypes.byref(ptr), ctypes.byref(count))
        block = np.ctypeslib.as_array(ptr, shape=(count.value,))
        assert count.value == 12
        np.testing.assert_array_equal(block[6:], 0.0)  # no gradient for the moving statistics
        np.testing.assert_array_equal(block[3:6], 10.0)  # d beta = Σ dY over 2·5 positions
    finally:
        lib.NNTKBatchNormGradientDestroy(grad)
    lib.NNTKBatchNormDestroy(None)
    lib.NNTKBatchNormConfigDestroy(None)
    lib.NNTKBatchNormGradientDestroy(None)
