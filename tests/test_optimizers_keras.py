"""nntk optimizers against tf.keras (tf_keras 2.21) optimizers, float32.

The same variables and the same random gradients go through
keras.optimizers.SGD / Adam `apply_gradients` and through nntk's; the parameters
are compared after every step. tf.keras's update is a fixed sequence of float32
elementwise ops, which nntk reproduces in the same order: the expected result
is bit-for-bit equality, and that is what is asserted (a failure reports the
worst difference in ulps, the step and the variable).
Bad-input tests at the end need no TensorFlow.

Run: NNTK_CORE_LIB=build/dev/libnntk.so python -m pytest tests/test_optimizers_keras.py
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from helpers import write_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nntk_core as nn
from nntk_core._native import NNTKError, lib
from parity import c_api, reference

# Variables of different shapes; 1037 elements exercise TF's vectorised path
# and its scalar tail (1037 = 8·129 + 5).
SHAPES = [(3, 4), (4,), (2, 3, 5), (1,), (1037,)]
STEPS = 12

# The worst ulp difference per case label, printed at the end of the module.
WORST_ULPS: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_worst_ulps(request):
    yield
    if WORST_ULPS:
        lines = ["optimizers vs tf.keras float32: worst ulp difference per case"]
        lines += [f"  {label:75s} {worst} ulp" for label, worst in sorted(WORST_ULPS.items())]
        write_lines(request, lines)


@pytest.fixture(scope="module")
def tfk():
    pytest.importorskip("tensorflow")
    return reference.tensorflow(), reference.keras()  # with parity/settings.py's settings


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise distance in float32 ulps (0 = bitwise equal; ±0 count as equal)."""

    def key(x):
        i = np.ascontiguousarray(x, np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i + 2**31), i)

    return np.abs(key(a) - key(b))


def make_gradients(rng, shapes, steps):
    """Per step, per variable: random gradients with a scale that changes from step to
    step (so amsgrad's max matters), some exact zeros and some large entries."""
    out = []
    for _ in range(steps):
        grads = []
        for shape in shapes:
            g = rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 1)
            g[rng.uniform(size=shape) < 0.1] = 0.0
            g[rng.uniform(size=shape) < 0.02] *= 1e3
            grads.append(g.astype(np.float32))
        out.append(grads)
    return out


def run_both(tfk, make_keras, make_native, steps=STEPS, seed=0, shapes=SHAPES, lr_change=None):
    """Applies the same gradients with Keras and nntk; returns per-step parameter pairs."""
    tf, keras = tfk
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = make_gradients(rng, shapes, steps)
    k_vars = [tf.Variable(w) for w in init]
    k_opt = make_keras(keras)
    params = [w.copy() for w in init]
    opt = make_native()
    history = []
    for step, gs in enumerate(grads):
        if lr_change is not None and step == lr_change[0]:
            k_opt.learning_rate = lr_change[1]
            opt.learning_rate = lr_change[1]
        k_opt.apply_gradients([(tf.constant(g), v) for g, v in zip(gs, k_vars, strict=True)])
        count = opt.apply_gradients(zip(gs, params, strict=True))
        assert count == step + 1 == opt.iterations == int(k_opt.iterations.numpy())
        history.append(([v.numpy() for v in k_vars], [p.copy() for p in params]))
    # Not a check if nothing moved.
    assert all(not np.array_equal(p, w) for p, w in zip(params, init, strict=True))
    return history


def assert_bitwise(history, label):
    worst = 0
    for step, (keras_params, native_params) in enumerate(history):
        for i, (k, n) in enumerate(zip(keras_params, native_params, strict=True)):
            assert k.dtype == n.dtype == np.float32
            d = ulp_distance(k, n)
            worst = max(worst, int(d.max()))
            if d.max() > 0:
                j = np.unravel_index(np.argmax(d), d.shape)
                pytest.fail(
                    f"{label}: step {step + 1}, variable {i} {k.shape}: {int(d.max())} ulp at "
                    f"{j}: keras {k[j]!r}, nntk {n[j]!r} "
                    f"({int(np.count_nonzero(d))} of {d.size} elements differ)"
                )
    WORST_ULPS[label] = worst


SGD_CASES = [
    dict(learning_rate=0.01),
    dict(learning_rate=0.1, momentum=0.9),
    dict(learning_rate=0.037, momentum=0.77, nesterov=True),
    dict(learning_rate=0.2, momentum=0.0, nesterov=True),
    dict(learning_rate=0.5, momentum=1.0),
    dict(learning_rate=1e-4, momentum=0.5),
]


@pytest.mark.tf
@pytest.mark.parametrize(
    "kwargs", SGD_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items())
)
def test_sgd_matches_keras(tfk, kwargs):
    history = run_both(
        tfk, lambda keras: keras.optimizers.SGD(**kwargs), lambda: nn.optimizers.SGD(**kwargs)
    )
    assert_bitwise(history, f"SGD {kwargs}")


ADAM_CASES = [
    dict(),
    dict(amsgrad=True),
    dict(learning_rate=0.01, epsilon=0.1),
    dict(learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=0.1, amsgrad=True),
    dict(learning_rate=0.3, beta_1=0.7, beta_2=0.9, epsilon=1e-3),
    dict(learning_rate=0.003, beta_1=0.77, beta_2=0.9993, amsgrad=True),
    # ε = 0 with exact-zero gradients: 0/0 = NaN in Keras too (compared bit for bit)
    dict(learning_rate=0.002, beta_1=0.0, beta_2=0.0, epsilon=0.0),
    dict(learning_rate=0.05, epsilon=1e-12, amsgrad=True),
]


@pytest.mark.tf
@pytest.mark.parametrize(
    "kwargs", ADAM_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "defaults"
)
def test_adam_matches_keras(tfk, kwargs):
    history = run_both(
        tfk, lambda keras: keras.optimizers.Adam(**kwargs), lambda: nn.optimizers.Adam(**kwargs)
    )
    assert_bitwise(history, f"Adam {kwargs}")


@pytest.mark.tf
def test_adam_many_steps(tfk):
    """200 steps: the bias correction βᵗ runs through many powers."""
    kwargs = dict(learning_rate=0.01, beta_1=0.85, beta_2=0.99, amsgrad=True)
    history = run_both(
        tfk,
        lambda keras: keras.optimizers.Adam(**kwargs),
        lambda: nn.optimizers.Adam(**kwargs),
        steps=200,
        shapes=[(5, 7), (16,)],
    )
    assert_bitwise(history, "Adam 200 steps")


@pytest.mark.tf
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_learning_rate_change(tfk, kind):
    """Assigning optimizer.learning_rate between steps, as in Keras."""
    history = run_both(
        tfk,
        lambda keras: getattr(keras.optimizers, kind)(learning_rate=0.05),
        lambda: getattr(nn.optimizers, kind)(learning_rate=0.05),
        lr_change=(5, 0.0123),
    )
    assert_bitwise(history, f"{kind} lr change")


@pytest.mark.tf
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["SGD", "Adam"]),
    lr=st.floats(1e-5, 1.0),
    a=st.floats(0.0, 0.999),
    b=st.floats(0.0, 0.9999),
    eps=st.sampled_from([0.0, 1e-8, 1e-7, 1e-3, 0.5]),
    flag=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_optimizers_hypothesis(tfk, kind, lr, a, b, eps, flag, seed):
    if kind == "SGD":
        kwargs = dict(learning_rate=lr, momentum=a, nesterov=flag)
    else:
        kwargs = dict(learning_rate=lr, beta_1=a, beta_2=b, epsilon=eps, amsgrad=flag)
    history = run_both(
        tfk,
        lambda keras: getattr(keras.optimizers, kind)(**kwargs),
        lambda: getattr(nn.optimizers, kind)(**kwargs),
        steps=6,
        seed=seed,
        shapes=[(3, 5), (11,)],
    )
    assert_bitwise(history, f"hyp {kind}")


@pytest.mark.tf
def test_training_loop_matches_keras(tfk):
    """Loss, layer gradient and optimizer together: 20 Adam steps of a TimeDistributed
    Dense under CategoricalCrossentropy(from_logits=True), nntk vs a Keras tape loop.
    Not bitwise (the loss gradient is computed in double here, matmul orders differ),
    so the weights are compared with a tolerance."""
    tf, keras = tfk
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (8, 5))]
    k_layer = keras.layers.TimeDistributed(keras.layers.Dense(3))
    k_layer.build((None, 5, 4))
    weights = [
        rng.standard_normal((4, 3)).astype(np.float32) * 0.5,
        rng.standard_normal(3).astype(np.float32) * 0.1,
    ]
    k_layer.set_weights(weights)
    layer = nn.TimeDistributedDense(3, input_dim=4)
    layer.set_weights(weights)
    loss = nn.losses.CategoricalCrossentropy(from_logits=True)
    k_loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    opt, k_opt = nn.optimizers.Adam(0.01), keras.optimizers.Adam(0.01)
    values, k_values = [], []
    for _ in range(20):
        value, d_logits = loss.gradient(y, layer(x, training=True))
        _, grads = layer.backward(d_logits)
        params = layer.get_weights()
        opt.apply_gradients(zip(grads, params, strict=True))
        layer.set_weights(params)
        with tf.GradientTape() as tape:
            k_value = k_loss(y, k_layer(x))
        k_grads = tape.gradient(k_value, k_layer.trainable_weights)
        k_opt.apply_gradients(zip(k_grads, k_layer.trainable_weights, strict=True))
        values.append(value)
        k_values.append(float(k_value))
    assert values[-1] < values[0]  # it learned something
    np.testing.assert_allclose(values, k_values, rtol=1e-5)
    for w, k_w in zip(layer.get_weights(), k_layer.get_weights(), strict=True):
        np.testing.assert_allclose(w, k_w, rtol=1e-5, atol=1e-6)


# -- behaviour and bad input (no TensorFlow needed) --------------------------------------------


def test_slots_keyed_by_position_new_arrays_allowed():
    """New array objects of the same shapes (e.g. layer.get_weights() copies) continue the
    same slots; the result equals updating the same arrays."""
    rng = np.random.default_rng(3)
    w0 = [rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal(4).astype(np.float32)]
    grads = [[rng.standard_normal(w.shape).astype(np.float32) for w in w0] for _ in range(5)]
    a = [w.copy() for w in w0]
    opt_a = nn.optimizers.Adam(0.01)
    for gs in grads:
        opt_a.apply_gradients(zip(gs, a, strict=True))
    b = [w.copy() for w in w0]
    opt_b = nn.optimizers.Adam(0.01)
    for gs in grads:
        b = [w.copy() for w in b]
        opt_b.apply_gradients(zip(gs, b, strict=True))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_list_shape_must_not_change():
    w = [np.ones((2, 3), np.float32), np.ones(4, np.float32)]
    g = [np.ones((2, 3), np.float32), np.ones(4, np.float32)]
    opt = nn.optimizers.SGD(0.1, momentum=0.5)
    opt.apply_gradients(zip(g, w, strict=True))
    before = [x.copy() for x in w]
    with pytest.raises(ValueError, match="keep the shapes and order"):
        opt.apply_gradients([(g[0], w[0])])
    with pytest.raises(ValueError, match="keep the shapes and order"):
        opt.apply_gradients([(g[1], w[1]), (g[0], w[0])])
    assert opt.iterations == 1
    assert all(np.array_equal(x, y) for x, y in zip(w, before, strict=True))


def test_bad_pairs():
    opt = nn.optimizers.SGD()
    w = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="grads_and_vars is empty"):
        opt.apply_gradients([])
    with pytest.raises(TypeError, match="iterable"):
        opt.apply_gradients(3)
    with pytest.raises(TypeError, match=r"grads_and_vars\[0\] must be a \(gradient, variable\)"):
        opt.apply_gradients([w])
    with pytest.raises(TypeError, match="must be float32"):
        opt.apply_gradients([(w, np.ones(3))])
    with pytest.raises(TypeError, match="must be a numpy array"):
        opt.apply_gradients([(w, [1.0, 2.0, 3.0])])
    with pytest.raises(ValueError, match="C-contiguous"):
        opt.apply_gradients([(np.ones(3), np.ones((3, 2), np.float32)[:, 0])])
    ro = np.ones(3, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        opt.apply_gradients([(w, ro)])
    with pytest.raises(ValueError, match="gradient shape"):
        opt.apply_gradients([(np.ones(4), w)])
    with pytest.raises(ValueError, match="gradient is None"):
        opt.apply_gradients([(None, w)])
    with pytest.raises(TypeError, match="gradient must hold real numbers"):
        opt.apply_gradients([(np.array(["a", "b", "c"]), w)])
    with pytest.raises(ValueError, match="empty"):
        opt.apply_gradients([(np.ones(0), np.ones(0, np.float32))])
    assert opt.iterations == 0 and np.all(w == 1.0)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: nn.optimizers.SGD(learning_rate=0.0), "learning_rate must be > 0"),
        (lambda: nn.optimizers.SGD(learning_rate=-1.0), "learning_rate must be > 0"),
        (lambda: nn.optimizers.SGD(learning_rate=float("nan")), "learning_rate must be finite"),
        (lambda: nn.optimizers.SGD(learning_rate="0.1"), "learning_rate must be a real number"),
        (lambda: nn.optimizers.SGD(momentum=1.5), r"momentum must be in \[0, 1\]"),
        (lambda: nn.optimizers.SGD(momentum=-0.1), r"momentum must be in \[0, 1\]"),
        (lambda: nn.optimizers.SGD(nesterov=1), "nesterov must be True or False"),
        (lambda: nn.optimizers.Adam(learning_rate=0), "learning_rate must be > 0"),
        (lambda: nn.optimizers.Adam(beta_1=1.0), r"beta_1 must be in \[0, 1\)"),
        (lambda: nn.optimizers.Adam(beta_1=-0.1), r"beta_1 must be in \[0, 1\)"),
        (lambda: nn.optimizers.Adam(beta_2=1.2), r"beta_2 must be in \[0, 1\)"),
        (lambda: nn.optimizers.Adam(beta_2=float("inf")), "beta_2 must be finite"),
        (lambda: nn.optimizers.Adam(epsilon=-1e-7), "epsilon must be >= 0"),
        (lambda: nn.optimizers.Adam(amsgrad="yes"), "amsgrad must be True or False"),
    ],
)
def test_bad_hyperparameters(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_bad_learning_rate_assignment():
    opt = nn.optimizers.Adam()
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        opt.learning_rate = 0.0
    assert opt.learning_rate == 0.001


def test_c_level_constructor_errors():
    cases = [
        (lambda: lib.NNTKOptimizerCreateSGD(0.0, 0.0, 0), "NNTKOptimizerCreateSGD: learning_rate"),
        (lambda: lib.NNTKOptimizerCreateSGD(1e-50, 0.0, 0), "rounds to 0"),  # float32 underflow
        (lambda: lib.NNTKOptimizerCreateSGD(1e39, 0.0, 0), "not a positive finite float32"),
        (lambda: lib.NNTKOptimizerCreateSGD(0.1, float("nan"), 0), "momentum"),
        (lambda: lib.NNTKOptimizerCreateSGD(0.1, 0.0, 2), "nesterov must be 0 or 1"),
        (lambda: lib.NNTKOptimizerCreateAdam(0.1, 1.0, 0.9, 1e-7, 0), "beta_1 must be in"),
        # below 1 as a double, 1.0 as a float32: Keras would divide by zero
        (lambda: lib.NNTKOptimizerCreateAdam(0.1, 0.9, 0.99999999, 1e-7, 0), "beta_2 = .* rounds"),
        (lambda: lib.NNTKOptimizerCreateAdam(0.1, 0.9, 0.9, -1.0, 0), "epsilon"),
        (lambda: lib.NNTKOptimizerCreateAdam(0.1, 0.9, 0.9, float("inf"), 0), "epsilon"),
        (lambda: lib.NNTKOptimizerCreateAdam(0.1, 0.9, 0.9, 1e-7, -1), "amsgrad must be 0 or 1"),
    ]
    for make, match in cases:
        with pytest.raises(NNTKError, match=match) as info:
            make()
        assert info.value.status == "NNTK_ERROR_INVALID_ARGUMENT"


_FP = ctypes.POINTER(ctypes.c_float)


def _step_args(arrays):
    n = len(arrays)
    ptrs = (_FP * n)(*(a.ctypes.data_as(_FP) for a in arrays))
    sizes = (ctypes.c_int64 * n)(*(a.size for a in arrays))
    return n, ptrs, sizes


def test_c_level_step_errors():
    handle = lib.NNTKOptimizerCreateAdam(0.01, 0.9, 0.999, 1e-7, 1)
    try:
        w = [np.ones(3, np.float32), np.ones(5, np.float32)]
        g = [np.full(3, 0.5, np.float32), np.full(5, 0.5, np.float32)]
        n, wp, sizes = _step_args(w)
        _, gp, _ = _step_args(g)
        step = lib.NNTKOptimizerStep

        def expect(match, status, *args):
            with pytest.raises(NNTKError, match=match) as info:
                step(*args)
            assert info.value.status == status
            assert info.value.message.startswith("NNTKOptimizerStep: ")

        expect("optimizer is NULL", "NNTK_ERROR_NULL_POINTER", None, n, wp, gp, sizes)
        config = c_api.config_create("Dense")(2, 2, 0, 1)  # a handle of another kind
        try:
            expect("expected kind", "NNTK_ERROR_INVALID_STATE", config, n, wp, gp, sizes)
        finally:
            lib.NNTKDenseConfigDestroy(config)
        expect("n_params must be >= 1", "NNTK_ERROR_INVALID_ARGUMENT", handle, 0, wp, gp, sizes)
        expect("params is NULL", "NNTK_ERROR_NULL_POINTER", handle, n, None, gp, sizes)
        expect("grads is NULL", "NNTK_ERROR_NULL_POINTER", handle, n, wp, None, sizes)
        expect("sizes is NULL", "NNTK_ERROR_NULL_POINTER", handle, n, wp, gp, None)
        bad_sizes = (ctypes.c_int64 * 2)(3, 0)
        expect(
            r"sizes\[1\] must be in", "NNTK_ERROR_INVALID_ARGUMENT", handle, n, wp, gp, bad_sizes
        )
        null_ptrs = (_FP * 2)(w[0].ctypes.data_as(_FP), None)
        expect(r"params\[1\] is NULL", "NNTK_ERROR_NULL_POINTER", handle, n, null_ptrs, gp, sizes)
        null_grads = (_FP * 2)(g[0].ctypes.data_as(_FP), None)
        expect(r"grads\[1\] is NULL", "NNTK_ERROR_NULL_POINTER", handle, n, wp, null_grads, sizes)
        count = ctypes.c_int64()
        lib.NNTKOptimizerIterations(handle, ctypes.byref(count))
        assert count.value == 0 and all(np.all(x == 1.0) for x in w)  # nothing happened

        assert step(handle, n, wp, gp, sizes) == 0
        after_one = [x.copy() for x in w]
        expect("n_params = 1 but", "NNTK_ERROR_INVALID_ARGUMENT", handle, 1, wp, gp, sizes)
        other_sizes = (ctypes.c_int64 * 2)(3, 4)
        expect(r"sizes\[1\] = 4 but", "NNTK_ERROR_INVALID_ARGUMENT", handle, n, wp, gp, other_sizes)
        lib.NNTKOptimizerIterations(handle, ctypes.byref(count))
        assert count.value == 1
        assert all(np.array_equal(x, y) for x, y in zip(w, after_one, strict=True))

        with pytest.raises(NNTKError, match="NNTKOptimizerIterations: iterations is NULL"):
            lib.NNTKOptimizerIterations(handle, None)
        with pytest.raises(NNTKError, match="NNTKOptimizerSetLearningRate: learning_rate"):
            lib.NNTKOptimizerSetLearningRate(handle, -1.0)
    finally:
        lib.NNTKOptimizerDestroy(handle)
    lib.NNTKOptimizerDestroy(None)  # NULL-safe
