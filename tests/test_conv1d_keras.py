"""Conv1d against real tf.keras Conv1D (float64 reference), plus bad-input tests.

For every config of the grid: the same weights, x and dY go through nntk and through a
float64 tf.keras Conv1D; the forward output (inference and training), dx, and every weight
gradient must satisfy, elementwise against the float64 reference,

    |nntk_i - ref_i| <= 1e-5 * max(1, max|ref|) + 1e-4 * |ref_i|.

The worst error per quantity is printed at the end of the module (the fraction of the
tolerance used, and the error relative to the tensor's scale).
"""

from __future__ import annotations

import ctypes
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
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    err = np.abs(native - ref)
    tol = ATOL * scale + RTOL * np.abs(ref)
    used = float(np.max(err / tol)) if ref.size else 0.0
    rel = float(np.max(err) / scale) if ref.size else 0.0
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
        reporter.write_line("Conv1d vs tf.keras float64: worst error per quantity")
        for quantity, (used, rel, case) in sorted(WORST.items()):
            reporter.write_line(
                f"  {quantity:12s} {100 * used:7.3f}% of tolerance  "
                f"max|err|/scale={rel:.2e}  ({case})"
            )


# -- the tf.keras side ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("tensorflow")
    import tf_keras

    return tf_keras


def keras_activation(keras, name: str):
    if name == "gelu_approximate":
        return lambda x: keras.activations.gelu(x, approximate=True)
    return name


def keras_reference(keras, cfg: dict, weights, x: np.ndarray, dy: np.ndarray):
    """y, dx and the weight gradients of a float64 tf.keras Conv1D."""
    import tensorflow as tf

    layer = keras.layers.Conv1D(
        cfg["filters"],
        cfg["kernel_size"],
        strides=cfg["strides"],
        padding=cfg["padding"],
        dilation_rate=cfg["dilation_rate"],
        activation=keras_activation(keras, cfg["activation"]),
        use_bias=cfg["use_bias"],
        dtype="float64",
    )
    layer.build((None, x.shape[1], x.shape[2]))
    layer.set_weights([w.astype(np.float64) for w in weights])
    xt = tf.constant(x.astype(np.float64))
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt, training=True)
    grads = tape.gradient(
        y, [xt] + layer.trainable_weights, output_gradients=tf.constant(dy.astype(np.float64))
    )
    return y.numpy(), grads[0].numpy(), [g.numpy() for g in grads[1:]]


# -- the grid ---------------------------------------------------------------------------------


def make_cases() -> list[dict]:
    base = dict(filters=3, input_dim=2, activation="linear", use_bias=True, batch=2)
    cases = []
    # Every padding x stride x dilation x kernel size, with lengths covering every residue of
    # L mod strides.
    for padding in ("valid", "same", "causal"):
        for strides, dilation in ((1, 1), (2, 1), (3, 1), (1, 2)):
            for kernel_size in (1, 2, 3, 4):
                for steps in (7, 8, 9):
                    cases.append(
                        dict(
                            base,
                            padding=padding,
                            strides=strides,
                            dilation_rate=dilation,
                            kernel_size=kernel_size,
                            steps=steps,
                        )
                    )
    # Kernel longer than the input (same/causal pad it), and the shortest inputs.
    for padding in ("same", "causal"):
        for strides, dilation, kernel_size, steps in (
            (1, 1, 5, 3),
            (2, 1, 5, 3),
            (3, 1, 6, 2),
            (1, 2, 3, 2),
            (1, 2, 4, 1),
            (1, 1, 3, 1),
            (2, 1, 3, 1),
            (1, 1, 1, 1),
        ):
            cases.append(
                dict(
                    base,
                    padding=padding,
                    strides=strides,
                    dilation_rate=dilation,
                    kernel_size=kernel_size,
                    steps=steps,
                )
            )
    # Output length 1 under valid padding (L = k_eff, and the largest L with one output).
    for strides, dilation, kernel_size, steps in (
        (1, 1, 3, 3),
        (1, 2, 3, 5),
        (2, 1, 3, 4),
        (3, 1, 2, 4),
        (1, 1, 1, 1),
    ):
        cases.append(
            dict(
                base,
                padding="valid",
                strides=strides,
                dilation_rate=dilation,
                kernel_size=kernel_size,
                steps=steps,
            )
        )
    # Activations, no bias, channel counts, batch sizes.
    for activation in ("relu", "tanh", "sigmoid", "gelu", "gelu_approximate", "softmax", "elu"):
        cases.append(
            dict(
                base,
                padding="same",
                strides=2,
                dilation_rate=1,
                kernel_size=3,
                steps=9,
                activation=activation,
            )
        )
    for use_bias in (False,):
        for padding in ("valid", "same", "causal"):
            cases.append(
                dict(
                    base,
                    padding=padding,
                    strides=1,
                    dilation_rate=2,
                    kernel_size=3,
                    steps=10,
                    use_bias=use_bias,
                    activation="tanh",
                )
            )
    for input_dim, filters, batch in ((1, 1, 1), (5, 4, 3), (8, 16, 2), (16, 1, 4)):
        cases.append(
            dict(
                base,
                input_dim=input_dim,
                filters=filters,
                batch=batch,
                padding="causal",
                strides=1,
                dilation_rate=2,
                kernel_size=3,
                steps=12,
                activation="relu",
            )
        )
    # A longer sequence (accumulation over many positions).
    cases.append(
        dict(
            base,
            input_dim=6,
            filters=8,
            batch=4,
            padding="same",
            strides=1,
            dilation_rate=1,
            kernel_size=5,
            steps=100,
        )
    )
    return cases


CASES = make_cases()


def case_id(cfg: dict) -> str:
    return (
        f"{cfg['padding']}-k{cfg['kernel_size']}-s{cfg['strides']}-d{cfg['dilation_rate']}"
        f"-L{cfg['steps']}-C{cfg['input_dim']}-F{cfg['filters']}-B{cfg['batch']}"
        f"-{cfg['activation']}{'' if cfg['use_bias'] else '-nobias'}"
    )


def draw(cfg: dict, seed: int):
    rng = np.random.default_rng(seed)
    k, c, f = cfg["kernel_size"], cfg["input_dim"], cfg["filters"]
    limit = np.sqrt(6.0 / (k * c + k * f))  # Glorot uniform
    kernel = rng.uniform(-limit, limit, (k, c, f)).astype(np.float32)
    weights = [kernel]
    if cfg["use_bias"]:
        weights.append(rng.normal(0.0, 0.5, f).astype(np.float32))
    x = rng.normal(0.0, 1.0, (cfg["batch"], cfg["steps"], c)).astype(np.float32)
    return rng, weights, x


def expected_out_steps(cfg: dict) -> int:
    k_eff = (cfg["kernel_size"] - 1) * cfg["dilation_rate"] + 1
    n = cfg["steps"] if cfg["padding"] != "valid" else cfg["steps"] - k_eff + 1
    return -(-n // cfg["strides"])


def make_layer(cfg: dict) -> nn.Conv1d:
    return nn.Conv1d(
        cfg["filters"],
        cfg["kernel_size"],
        input_dim=cfg["input_dim"],
        strides=cfg["strides"],
        padding=cfg["padding"],
        dilation_rate=cfg["dilation_rate"],
        activation=cfg["activation"],
        use_bias=cfg["use_bias"],
    )


@pytest.mark.tf
@pytest.mark.parametrize("cfg", CASES, ids=[case_id(c) for c in CASES])
def test_conv1d_matches_keras(keras, cfg):
    case = case_id(cfg)
    rng, weights, x = draw(cfg, seed=zlib.crc32(case.encode()))
    out_steps = expected_out_steps(cfg)
    dy = rng.normal(0.0, 1.0, (cfg["batch"], out_steps, cfg["filters"])).astype(np.float32)
    y_ref, dx_ref, grads_ref = keras_reference(keras, cfg, weights, x, dy)
    assert y_ref.shape == (cfg["batch"], out_steps, cfg["filters"])

    layer = make_layer(cfg)
    layer.set_weights(weights)
    y_inf = layer(x)
    check_close("y inference", case, y_inf, y_ref)
    y_train = layer(x, training=True)
    check_close("y training", case, y_train, y_ref)
    dx, grads = layer.backward(dy)
    check_close("dx", case, dx, dx_ref)
    names = layer.weight_names()
    assert len(grads) == len(grads_ref) == len(names)
    for name, g, g_ref in zip(names, grads, grads_ref, strict=True):
        check_close(f"d{name}", case, g, g_ref)
    # A check that passes on zeros is not a check.
    assert np.any(dx != 0) or not np.any(dx_ref != 0)
    layer.close()


@pytest.mark.tf
def test_conv1d_gradient_follows_the_last_training_batch(keras):
    """Two training calls of different lengths: backward uses the second (and the workspace
    grows and shrinks); an inference call in between changes nothing."""
    cfg = dict(
        filters=4,
        input_dim=3,
        activation="tanh",
        use_bias=True,
        batch=2,
        padding="same",
        strides=2,
        dilation_rate=1,
        kernel_size=3,
        steps=20,
    )
    rng, weights, x1 = draw(cfg, seed=1)
    layer = make_layer(cfg)
    layer.set_weights(weights)
    layer(x1, training=True)
    cfg2 = dict(cfg, steps=7, batch=3)
    x2 = rng.normal(size=(3, 7, 3)).astype(np.float32)
    layer(x2, training=True)
    layer(x1)  # inference must not disturb the kept batch
    dy = rng.normal(size=(3, expected_out_steps(cfg2), 4)).astype(np.float32)
    y_ref, dx_ref, grads_ref = keras_reference(keras, cfg2, weights, x2, dy)
    dx, grads = layer.backward(dy)
    check_close("dx", "sequence", dx, dx_ref)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        check_close("dkernel" if g.ndim == 3 else "dbias", "sequence", g, g_ref)


def test_conv1d_keras_default_arguments():
    layer = nn.Conv1d(2, 3, input_dim=4)
    assert (layer.strides, layer.padding, layer.dilation_rate) == (1, "valid", 1)
    assert (layer.activation, layer.use_bias) == ("linear", True)
    assert layer.weight_shapes() == [(3, 4, 2), (2,)]
    assert nn.Conv1d(2, (3,), input_dim=4, strides=(2,), padding="SAME").padding == "same"
    assert nn.LAYER_CLASSES["Conv1d"] is nn.Conv1d


# -- bad input: Python ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "word"),
    [
        (dict(filters=0), ValueError, "filters"),
        (dict(filters=-2), ValueError, "filters"),
        (dict(filters=2.5), TypeError, "filters"),
        (dict(kernel_size=0), ValueError, "kernel_size"),
        (dict(kernel_size=(3, 3)), ValueError, "kernel_size"),
        (dict(kernel_size="3"), TypeError, "kernel_size"),
        (dict(strides=0), ValueError, "strides"),
        (dict(strides=-1), ValueError, "strides"),
        (dict(dilation_rate=0), ValueError, "dilation_rate"),
        (dict(padding="full"), ValueError, "padding"),
        (dict(padding=1), TypeError, "padding"),
        (dict(strides=2, dilation_rate=2), ValueError, "dilation_rate"),
        (dict(activation="nope"), ValueError, "activation"),
        (dict(use_bias=1), TypeError, "use_bias"),
        (dict(input_dim=0), ValueError, "input_dim"),
    ],
)
def test_conv1d_bad_arguments(kwargs, exc, word):
    args = dict(filters=2, kernel_size=3, input_dim=4)
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        nn.Conv1d(**args)


def test_conv1d_strides_with_dilation_names_both():
    with pytest.raises(ValueError, match="strides ?= ?2.*dilation_rate ?= ?3"):
        nn.Conv1d(2, 3, input_dim=4, strides=2, dilation_rate=3)


def test_conv1d_input_too_short_for_valid_padding():
    layer = nn.Conv1d(2, 3, input_dim=4, dilation_rate=2)  # effective kernel 5
    with pytest.raises(ValueError, match=r"4 steps.*effective kernel length 5"):
        layer(np.zeros((1, 4, 4), np.float32))
    assert layer(np.zeros((1, 5, 4), np.float32)).shape == (1, 1, 2)
    # same / causal pad any length
    for padding in ("same", "causal"):
        short = nn.Conv1d(2, 3, input_dim=4, dilation_rate=2, padding=padding)
        assert short(np.zeros((1, 1, 4), np.float32)).shape == (1, 1, 2)


def test_conv1d_bad_inputs():
    layer = nn.Conv1d(2, 3, input_dim=4, padding="same")
    with pytest.raises(ValueError, match="features"):
        layer(np.zeros((1, 5, 3), np.float32))
    with pytest.raises(ValueError, match="x must be"):
        layer(np.zeros((5, 4), np.float32))  # rank 2 is not a sequence
    with pytest.raises(TypeError, match="x"):
        layer(np.array([[["a"] * 4]]))
    with pytest.raises(ValueError, match="empty"):
        layer(np.zeros((1, 0, 4), np.float32))
    with pytest.raises(RuntimeError, match="no training call"):
        layer.backward(np.zeros((1, 5, 2), np.float32))
    layer(np.zeros((1, 5, 4), np.float32), training=True)
    with pytest.raises(ValueError, match="dy must have the shape"):
        layer.backward(np.zeros((1, 4, 2), np.float32))
    with pytest.raises(ValueError, match="kernel must have shape"):
        layer.set_weights([np.zeros((3, 4, 3)), np.zeros(2)])


# -- bad input: the C API through the binding -------------------------------------------------

FP = ctypes.POINTER(ctypes.c_float)


def config(**kw):
    args = dict(
        input_dim=4,
        filters=2,
        kernel_size=3,
        strides=1,
        padding=0,
        dilation_rate=1,
        activation=0,
        use_bias=1,
    )
    args.update(kw)
    return c_api.config_create("Conv1d")(*args.values())


@pytest.mark.parametrize(
    ("kw", "word"),
    [
        (dict(input_dim=0), "input_dim"),
        (dict(filters=0), "filters"),
        (dict(filters=-1), "filters"),
        (dict(kernel_size=0), "kernel_size"),
        (dict(strides=0), "strides"),
        (dict(dilation_rate=0), "dilation_rate"),
        (dict(padding=3), "padding"),
        (dict(padding=-1), "padding"),
        (dict(strides=2, dilation_rate=2), "dilation_rate"),
        (dict(activation=99), "activation"),
        (dict(use_bias=2), "use_bias"),
        (dict(kernel_size=1 << 23, input_dim=1 << 10, filters=1 << 10), "too large"),
        (dict(kernel_size=1 << 23, dilation_rate=4), "effective kernel"),
    ],
)
def test_c_config_rejects(kw, word):
    with pytest.raises(NNTKError, match=word) as info:
        config(**kw)
    assert "NNTKConv1dConfigCreate" in str(info.value)
    assert info.value.status == "NNTK_ERROR_INVALID_ARGUMENT"


@pytest.fixture
def handles():
    cfg = config(dilation_rate=2)  # valid, effective kernel 5
    train = lib.NNTKConv1dCreateForTraining(cfg, None)
    infer = lib.NNTKConv1dCreateForInference(cfg)
    lib.NNTKConv1dConfigDestroy(cfg)
    yield train, infer
    lib.NNTKConv1dDestroy(train)
    lib.NNTKConv1dDestroy(infer)


def buf(n):
    arr = np.zeros(n, np.float32)
    return arr, arr.ctypes.data_as(FP)


def test_c_null_and_size_errors(handles):
    train, infer = handles
    _, x = buf(2 * 8 * 4)
    _, y = buf(2 * 8 * 2)
    with pytest.raises(NNTKError, match="filter is NULL"):
        lib.NNTKConv1dApplyInference(None, 2, 8, x, y)
    with pytest.raises(NNTKError, match="in is NULL"):
        lib.NNTKConv1dApplyInference(infer, 2, 8, None, y)
    with pytest.raises(NNTKError, match="out is NULL"):
        lib.NNTKConv1dApplyTrainingBatch(train, 2, 8, x, None)
    with pytest.raises(NNTKError, match="batch"):
        lib.NNTKConv1dApplyInference(infer, 0, 8, x, y)
    with pytest.raises(NNTKError, match="steps"):
        lib.NNTKConv1dApplyInference(infer, 2, -1, x, y)
    out_steps, out_features = ctypes.c_int64(), ctypes.c_int64()
    with pytest.raises(NNTKError, match=r"steps = 4 .*effective kernel length 5") as info:
        lib.NNTKConv1dOutputShape(infer, 1, 4, ctypes.byref(out_steps), ctypes.byref(out_features))
    assert info.value.status == "NNTK_ERROR_INVALID_ARGUMENT"
    with pytest.raises(NNTKError, match="effective kernel"):
        lib.NNTKConv1dApplyInference(infer, 1, 4, x, y)
    lib.NNTKConv1dOutputShape(infer, 1, 5, ctypes.byref(out_steps), ctypes.byref(out_features))
    assert (out_steps.value, out_features.value) == (1, 2)
    with pytest.raises(NNTKError, match="out_steps is NULL"):
        lib.NNTKConv1dOutputShape(infer, 1, 5, None, ctypes.byref(out_features))
    with pytest.raises(NNTKError, match="weights is NULL"):
        lib.NNTKConv1dGetWeights(infer, None, ctypes.byref(out_steps))


def test_c_state_errors(handles):
    train, infer = handles
    _, x = buf(2 * 8 * 4)
    _, y = buf(2 * 8 * 2)
    with pytest.raises(NNTKError, match="created for inference") as info:
        lib.NNTKConv1dApplyTrainingBatch(infer, 2, 8, x, y)
    assert info.value.status == "NNTK_ERROR_INVALID_STATE"
    with pytest.raises(NNTKError, match="created for inference"):
        lib.NNTKConv1dGradientCreate(infer)
    grad = lib.NNTKConv1dGradientCreate(train)
    try:
        with pytest.raises(NNTKError, match="no training batch yet"):
            lib.NNTKConv1dCalculateGradient(train, grad, y, x)
        lib.NNTKConv1dApplyTrainingBatch(train, 2, 8, x, y)
        with pytest.raises(NNTKError, match="d_out is NULL"):
            lib.NNTKConv1dCalculateGradient(train, grad, None, x)
        lib.NNTKConv1dCalculateGradient(train, grad, y, None)  # d_in may be NULL
        with pytest.raises(NNTKError, match="gradient is NULL"):
            lib.NNTKConv1dCalculateGradient(train, None, y, x)
        # A handle of another layer is refused, not misused.
        with pytest.raises(NNTKError, match="expected kind"):
            lib.NNTKConv1dCalculateGradient(grad, grad, y, x)
        bn_cfg = c_api.config_create("BatchNorm")(4, 0.99, 1e-3, 1, 1)
        try:
            with pytest.raises(NNTKError, match="expected kind"):
                lib.NNTKConv1dCreateForInference(bn_cfg)
        finally:
            lib.NNTKBatchNormConfigDestroy(bn_cfg)
        # A gradient belongs to its filter.
        cfg = config(dilation_rate=2)
        other = lib.NNTKConv1dCreateForTraining(cfg, None)
        lib.NNTKConv1dConfigDestroy(cfg)
        try:
            lib.NNTKConv1dApplyTrainingBatch(other, 2, 8, x, y)
            with pytest.raises(NNTKError, match="another filter"):
                lib.NNTKConv1dCalculateGradient(other, grad, y, x)
        finally:
            lib.NNTKConv1dDestroy(other)
    finally:
        lib.NNTKConv1dGradientDestroy(grad)
    # NULL-safe destroys.
    lib.NNTKConv1dDestroy(None)
    lib.NNTKConv1dConfigDestroy(None)
    lib.NNTKConv1dGradientDestroy(None)
