"""nntk losses against tf.keras (tf_keras 2.21): value and gradient w.r.t. y_pred.

The referee is the same Keras loss in float64 (GradientTape for the gradient);
Keras float32 is measured too, as the honest float32 noise of each case. The
native error must satisfy, elementwise,

    |native − ref| ≤ ATOL·max(1, max|ref|) + RTOL·|ref|

and, per tensor, be at most K × Keras float32's own error plus 16 ulp of the scale.
Bad-input tests at the end need no TensorFlow.

Run: NNTK_CORE_LIB=build/dev/libnntk.so python -m pytest tests/test_losses_keras.py
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from helpers import WorstErrors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nntk_core as nn
from nntk_core._native import NNTKError, lib
from parity import reference, training_losses
from parity.compare import Tolerance

# The bounds of the module doc (parity/compare.py); the worst errors seen are printed
# at the end of the module.
TOLERANCE = Tolerance(atol=1e-5, rtol=1e-4, k=8, reason="the module's bound against float64")
WORST = WorstErrors("losses vs tf.keras float64")


@pytest.fixture(scope="module", autouse=True)
def _report_worst(request):
    yield
    WORST.report(request)


@pytest.fixture(scope="module")
def tfk():
    pytest.importorskip("tensorflow")
    return reference.tensorflow(), reference.keras()  # with parity/settings.py's settings


# The tests' short names of the losses, as parity/training.py (the twins) names them.
LOSS_NAMES = {"mse": "mean_squared_error", "cce": "categorical_crossentropy"}


def keras_loss(tfk, name: str, from_logits: bool):
    return training_losses.keras_loss(tfk[1], LOSS_NAMES[name], from_logits)


def native_loss(name: str, from_logits: bool):
    return training_losses.native_loss(nn, LOSS_NAMES[name], from_logits)


def keras_value_and_grad(tfk, name, from_logits, y_true, y_pred, dtype):
    tf, _ = tfk
    loss = keras_loss(tfk, name, from_logits)
    pred = tf.constant(y_pred.astype(dtype))
    with tf.GradientTape() as tape:
        tape.watch(pred)
        value = loss(tf.constant(y_true.astype(dtype)), pred)
    return float(value.numpy()), tape.gradient(value, pred).numpy()


def check_against_keras(tfk, name, from_logits, y_true, y_pred, label, nonzero=True):
    """Native value and gradient vs Keras float64 (and Keras float32 for scale)."""
    y_true = np.asarray(y_true, np.float32)
    y_pred = np.asarray(y_pred, np.float32)
    ref_v, ref_g = keras_value_and_grad(tfk, name, from_logits, y_true, y_pred, np.float64)
    k32_v, k32_g = keras_value_and_grad(tfk, name, from_logits, y_true, y_pred, np.float32)
    loss = native_loss(name, from_logits)
    value, grad = loss.gradient(y_true, y_pred)
    assert value == loss(y_true, y_pred)  # the call and the gradient path agree
    assert grad.shape == y_pred.shape and grad.dtype == np.float32
    for quantity, native, ref, k32 in (
        ("value", np.float64(value), np.float64(ref_v), np.float64(k32_v)),
        ("d_pred", grad, ref_g, k32_g),
    ):
        WORST.check(f"{label} {quantity}", native, ref, TOLERANCE, keras32=k32, case=label)
    # A check that passes on zeros is not a check: the cases are built so that
    # the gradient is not all zero (all-clipped rows are zero in Keras too).
    if nonzero:
        assert np.any(ref_g != 0) and np.any(grad != 0)
    return value, grad


def probabilities(rng, shape, kind: str) -> np.ndarray:
    """y_pred for the probability path."""
    z = rng.normal(0.0, 2.0, shape)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    if kind == "normalised":
        return p
    if kind == "unnormalised":  # Keras renormalises by the row sum
        return p * rng.uniform(0.2, 3.0, shape[:-1] + (1,))
    if kind == "uniform":  # positive, arbitrary sums
        return rng.uniform(0.01, 2.0, shape)
    if kind == "clip_low":  # some entries below 1e-7 after renormalisation, some exactly 0
        p[..., 0] = 0.0
        if shape[-1] >= 4:  # keep at least two classes unclipped
            p[..., -1] *= 1e-9
        return p
    if kind == "clip_high":  # in about half the rows one entry dominates: it clips high,
        # the others clip low; the other rows are ordinary
        peaked = rng.uniform(0.0, 1e-9, shape)
        idx = rng.integers(0, shape[-1], shape[:-1])
        np.put_along_axis(peaked, idx[..., None], 1.0, axis=-1)
        rows = rng.uniform(size=shape[:-1] + (1,)) < 0.5
        rows.flat[0] = True
        return np.where(rows, peaked, p)
    raise ValueError(kind)


def targets(rng, shape, kind: str) -> np.ndarray:
    if kind == "onehot":
        idx = rng.integers(0, shape[-1], shape[:-1])
        return np.eye(shape[-1])[idx]
    if kind == "soft":
        y = rng.uniform(0.0, 1.0, shape)
        return y / y.sum(-1, keepdims=True)
    if kind == "unnormalised":  # Σy ≠ 1: Keras's formulas still apply
        return rng.uniform(0.0, 1.5, shape)
    raise ValueError(kind)


SHAPES = [(1, 1), (4, 3), (7, 10), (2, 5, 4), (3, 1, 6), (1, 9, 2)]


@pytest.mark.tf
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_mse(tfk, shape):
    rng = np.random.default_rng(sum(shape))
    y_pred = rng.normal(0.0, 3.0, shape)
    y_true = rng.normal(0.0, 1.0, shape)
    value, _ = check_against_keras(tfk, "mse", False, y_true, y_pred, f"mse {shape}")
    assert value > 0


@pytest.mark.tf
@pytest.mark.parametrize("shape", SHAPES[1:], ids=str)
@pytest.mark.parametrize("pred_kind", ["normalised", "unnormalised", "uniform"])
@pytest.mark.parametrize("true_kind", ["onehot", "soft", "unnormalised"])
def test_cce_probabilities(tfk, shape, pred_kind, true_kind):
    rng = np.random.default_rng(sum(shape) + len(pred_kind) * 7 + len(true_kind))
    y_pred = probabilities(rng, shape, pred_kind)
    y_true = targets(rng, shape, true_kind)
    check_against_keras(tfk, "cce", False, y_true, y_pred, f"cce-prob {pred_kind}/{true_kind}")


@pytest.mark.tf
@pytest.mark.parametrize("shape", [(4, 3), (7, 10), (2, 5, 4), (3, 2, 6)], ids=str)
@pytest.mark.parametrize("pred_kind", ["clip_low", "clip_high"])
@pytest.mark.parametrize("true_kind", ["onehot", "soft", "unnormalised"])
def test_cce_probabilities_clipping(tfk, shape, pred_kind, true_kind):
    rng = np.random.default_rng(sum(shape) + len(pred_kind) * 7 + len(true_kind))
    y_pred = probabilities(rng, shape, pred_kind)
    y_true = targets(rng, shape, true_kind)
    check_against_keras(tfk, "cce", False, y_true, y_pred, f"cce-prob {pred_kind}/{true_kind}")


@pytest.mark.tf
def test_cce_probabilities_clip_caps_the_loss(tfk):
    """−log(1e-7) = 16.118095 caps the loss of a confidently wrong prediction."""
    y_true = np.array([[0.0, 0.0, 1.0]])
    y_pred = np.array([[1.0, 0.0, 0.0]])
    value, grad = check_against_keras(
        tfk, "cce", False, y_true, y_pred, "cce-prob cap", nonzero=False
    )
    assert value == pytest.approx(16.118095, abs=1e-5)
    # Every class is clipped (1 high, 0 low), so the gradient is exactly zero, as in Keras.
    assert np.all(grad == 0.0)
    # The true class clipped, the others not: the clipped class gets only the
    # renormalisation term Σ_unclipped y / Σp, the others −y/p + that.
    value, grad = check_against_keras(
        tfk, "cce", False, [[0.2, 0.0, 0.8]], [[0.7, 0.3, 0.0]], "cce-prob cap"
    )
    assert grad[0] == pytest.approx([-0.2 / 0.7 + 0.2, 0.2, 0.2], abs=1e-6)


@pytest.mark.tf
@pytest.mark.parametrize("shape", SHAPES[1:], ids=str)
@pytest.mark.parametrize("scale", [0.5, 4.0, 40.0])
@pytest.mark.parametrize("true_kind", ["onehot", "soft", "unnormalised"])
def test_cce_logits(tfk, shape, scale, true_kind):
    rng = np.random.default_rng(sum(shape) + int(scale) + len(true_kind))
    z = rng.normal(0.0, scale, shape)
    y_true = targets(rng, shape, true_kind)
    check_against_keras(tfk, "cce", True, y_true, z, f"cce-logits x{scale}/{true_kind}")


@pytest.mark.tf
def test_cce_logits_large_margin(tfk):
    """docs/KERAS_SEMANTICS.md §9: logits [20, 0, −5], y = [0, 0, 1] gives 25.0 (no clipping)."""
    value, _ = check_against_keras(
        tfk, "cce", True, [[0.0, 0.0, 1.0]], [[20.0, 0.0, -5.0]], "cce-logits margin"
    )
    assert value == pytest.approx(25.0, abs=1e-5)


@st.composite
def loss_cases(draw):
    name = draw(st.sampled_from(["mse", "cce-prob", "cce-logits"]))
    rank = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.integers(1, 6)) for _ in range(rank - 1)) + (draw(st.integers(2, 12)),)
    seed = draw(st.integers(0, 2**32 - 1))
    pred_kind = draw(st.sampled_from(["normalised", "unnormalised", "uniform", "clip_low"]))
    true_kind = draw(st.sampled_from(["onehot", "soft", "unnormalised"]))
    return name, shape, seed, pred_kind, true_kind


@pytest.mark.tf
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=loss_cases())
def test_losses_hypothesis(tfk, case):
    name, shape, seed, pred_kind, true_kind = case
    rng = np.random.default_rng(seed)
    y_true = targets(rng, shape, true_kind)
    if name == "mse":
        y_pred = rng.normal(0.0, 2.0, shape)
    elif name == "cce-logits":
        y_pred = rng.normal(0.0, 5.0, shape)
    else:
        y_pred = probabilities(rng, shape, pred_kind)
    y_true = y_true.astype(np.float32)
    y_pred = y_pred.astype(np.float32)
    check_against_keras(
        tfk,
        "mse" if name == "mse" else "cce",
        name == "cce-logits",
        y_true,
        y_pred,
        f"hyp {name}",
        # e.g. clip_low with two classes: one clipped low, the other then high
        nonzero=False,
    )


@pytest.mark.tf
@pytest.mark.filterwarnings("ignore:In loss categorical_crossentropy:SyntaxWarning")
@pytest.mark.parametrize("from_logits", [False, True])
def test_cce_one_class(tfk, from_logits):
    """One class: p/Σp = 1 clips high (probabilities) or softmax = 1 (logits): the
    gradient is exactly 0 when y = 1; Keras warns but computes."""
    y_true = np.array([[1.0], [1.0], [0.5]], np.float32)
    y_pred = np.array([[0.3], [2.0], [0.7]], np.float32)
    value, grad = nn.losses.CategoricalCrossentropy(from_logits=from_logits).gradient(
        y_true, y_pred
    )
    ref_v, ref_g = keras_value_and_grad(tfk, "cce", from_logits, y_true, y_pred, np.float64)
    assert value == pytest.approx(ref_v, abs=1e-7)
    assert np.allclose(grad, ref_g, rtol=0, atol=1e-7)


# -- bad input (no TensorFlow needed) -----------------------------------------------------------


@pytest.mark.parametrize(
    "loss", [nn.losses.MeanSquaredError(), nn.losses.CategoricalCrossentropy()]
)
def test_bad_shapes(loss):
    y = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="same shape"):
        loss(y, np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="y_true must have the rank"):
        loss(np.ones((2, 1, 3)), y)
    with pytest.raises(ValueError, match="y_pred must be"):
        loss(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="y_pred must be"):
        loss(np.ones((1, 2, 2, 3)), np.ones((1, 2, 2, 3)))
    with pytest.raises(ValueError, match="y_pred is empty"):
        loss(np.ones((0, 3)), np.ones((0, 3)))
    with pytest.raises(TypeError, match="y_true must hold real numbers"):
        loss(np.array([["a", "b", "c"]] * 2), y)
    with pytest.raises(TypeError, match="y_pred must hold real numbers"):
        loss(y, y.astype(np.complex64))


def test_bad_constructor():
    with pytest.raises(TypeError, match="from_logits"):
        nn.losses.CategoricalCrossentropy(from_logits=1)


def test_accepts_lists_and_float64():
    loss = nn.losses.MeanSquaredError()
    assert loss([[0.0, 2.0]], [[1.0, 0.0]]) == pytest.approx(2.5)
    value, grad = loss.gradient(np.zeros((1, 2)), np.array([[1.0, -1.0]]))
    assert value == pytest.approx(1.0) and np.allclose(grad, [[1.0, -1.0]])


def _ptr(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def test_c_level_errors():
    y = np.ones((2, 3), np.float32)
    d = np.empty_like(y)
    out = ctypes.c_float()
    f = lib.NNTKLossCompute

    def expect(match, status, *args):
        with pytest.raises(NNTKError, match=match) as info:
            f(*args)
        assert info.value.status == status
        assert "NNTKLossCompute" in info.value.message

    ok = (_ptr(y), _ptr(y), ctypes.byref(out), _ptr(d))
    expect("kind = 5", "NNTK_ERROR_INVALID_ARGUMENT", 5, 0, 2, 3, *ok)
    expect("kind = -1", "NNTK_ERROR_INVALID_ARGUMENT", -1, 0, 2, 3, *ok)
    expect("from_logits must be 0 or 1", "NNTK_ERROR_INVALID_ARGUMENT", 1, 2, 2, 3, *ok)
    expect("from_logits = 1 is only", "NNTK_ERROR_INVALID_ARGUMENT", 0, 1, 2, 3, *ok)
    expect("rows must be >= 1", "NNTK_ERROR_INVALID_ARGUMENT", 0, 0, 0, 3, *ok)
    expect("classes must be >= 1", "NNTK_ERROR_INVALID_ARGUMENT", 0, 0, 2, -4, *ok)
    expect("rows\\*classes", "NNTK_ERROR_INVALID_ARGUMENT", 0, 0, 2**20, 2**20, *ok)
    expect("y_pred is NULL", "NNTK_ERROR_NULL_POINTER", 1, 0, 2, 3, None, _ptr(y), ok[2], ok[3])
    expect("y_true is NULL", "NNTK_ERROR_NULL_POINTER", 1, 0, 2, 3, _ptr(y), None, ok[2], ok[3])
    expect("loss is NULL", "NNTK_ERROR_NULL_POINTER", 1, 0, 2, 3, _ptr(y), _ptr(y), None, ok[3])
    expect("d_pred must not be the same buffer as y_pred", "NNTK_ERROR_INVALID_ARGUMENT",
           1, 0, 2, 3, _ptr(d), _ptr(y), ok[2], _ptr(d))  # fmt: skip
    # d_pred may be NULL: the value alone.
    assert f(0, 0, 2, 3, _ptr(y), _ptr(np.zeros_like(y)), ctypes.byref(out), None) == 0
    assert out.value == 1.0
