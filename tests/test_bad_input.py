"""Bad input through the Python API (issue #7), for every class in
`nntk_core.LAYER_CLASSES`: each is built from its parity spec's first sweep case,
so a new layer with a spec is covered without edits here.

Wrong dtype, rank, feature size, weights, calls after close() raise an exception
naming the argument; non-contiguous, read-only and other-dtype arrays work and
give the same result as a C-contiguous float32 copy; empty arrays are a
ValueError; NaN and Inf propagate (never a crash) and stay in their own batch
element; layers created and dropped in a loop do not grow the process.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import gc
import os
import weakref

import numpy as np
import pytest

import nntk_core as nn
from parity.specs import all_specs

SPECS = {spec.layer_class: spec for spec in all_specs()}


def spec_of(name: str):
    assert name in SPECS, f"{name} in LAYER_CLASSES has no parity spec (parity/specs/)"
    return SPECS[name]


@functools.cache
def first_case(name: str):
    """The spec's first sweep case, at B = 3 (T = 4)."""
    case = spec_of(name).sweep_cases()[0]
    return dataclasses.replace(case, batch=3, steps=4 if case.rank == 3 else 1)


def make(name: str, seed: int = 0):
    """A layer of class `name` with drawn weights, its input x, and its spec case."""
    spec = spec_of(name)
    case = first_case(name)
    layer = spec.build_native(nn, case.config)
    assert isinstance(layer, nn.LAYER_CLASSES[name])
    rng = np.random.default_rng(seed)
    weights = [
        spec.draw_weight(n, s, 1.0, rng)
        for n, s in zip(layer.weight_names(), layer.weight_shapes(), strict=True)
    ]
    layer.set_weights(weights)
    x = spec.call_input(spec.draw_input(case, rng))
    return layer, x, case


def as_list(outputs):
    return outputs if isinstance(outputs, list) else [outputs]


def upstream_for(outputs, rng):
    return [rng.standard_normal(y.shape).astype(np.float32) for y in as_list(outputs)]


def backward(layer, dys):
    return layer.backward(dys if len(dys) > 1 else dys[0])


def run(layer, x, seed=1):
    """Inference output, training output, dx and the weight gradients. The layer is
    left as found: a training call's state update (BatchNorm's moving statistics) is
    undone, so repeated runs start from the same state."""
    rng = np.random.default_rng(seed)
    state = layer.get_weights()
    y_inf = as_list(layer(x))
    y_train = as_list(layer(x, training=True))
    dx, dw = backward(layer, upstream_for(y_train, rng))
    layer.set_weights(state)
    return y_inf, y_train, dx, dw


def assert_same(a, b):
    for u, v in zip(a, b, strict=True):
        if isinstance(u, list):
            assert_same(u, v)
        else:
            np.testing.assert_array_equal(u, v)


NAMES = list(nn.LAYER_CLASSES)
# Each test runs only where it applies (no skipped cases): layers whose spec draws a
# time axis first, and layers that have weights.
WITH_TIME = [n for n in NAMES if first_case(n).rank == 3]
WITH_WEIGHTS = [n for n in NAMES if make(n)[0].weight_shapes()]


# -- dtype, rank, features --------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "dtype", [np.complex64, np.bool_, object, "U3", "S3", "datetime64[s]", "timedelta64[s]"]
)
def test_wrong_dtype_is_a_type_error_naming_x(name, dtype):
    layer, x, _ = make(name)
    bad = np.zeros(x.shape, dtype=dtype)
    with pytest.raises(TypeError, match=r"\bx\b"):
        layer(bad)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [None, "abc", b"abc", {"a": 1}, [[1.0, 2.0], [3.0]]])
def test_non_arrays_raise_naming_x(name, bad):
    layer, _, _ = make(name)
    with pytest.raises((TypeError, ValueError), match=r"\bx\b"):
        layer(bad)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.int64, np.uint8])
def test_real_dtypes_are_converted_like_keras_casts(name, dtype):
    layer, x, _ = make(name)
    if np.issubdtype(dtype, np.integer):
        x = np.clip(np.round(x), 0 if dtype == np.uint8 else -100, 100)
    converted = x.astype(dtype)
    assert_same(as_list(layer(converted)), as_list(layer(converted.astype(np.float32))))


@pytest.mark.parametrize("name", NAMES)
def test_wrong_rank_names_x(name):
    layer, x, _ = make(name)
    for shape in [(), (x.shape[-1],), (1, 1, 2, x.shape[-1]), (1, 1, 1, 1, x.shape[-1])]:
        with pytest.raises(ValueError, match=r"\bx\b"):
            layer(np.zeros(shape, np.float32))
    for rank in {2, 3} - set(layer.input_ranks):
        shape = (2, x.shape[-1]) if rank == 2 else (2, 3, x.shape[-1])
        with pytest.raises(ValueError, match=r"\bx\b"):
            layer(np.zeros(shape, np.float32))


@pytest.mark.parametrize("name", NAMES)
def test_wrong_feature_size_names_x(name):
    layer, x, _ = make(name)
    for features in (x.shape[-1] + 1, max(x.shape[-1] - 1, 0) or x.shape[-1] + 2):
        bad = np.zeros(x.shape[:-1] + (features,), np.float32)
        with pytest.raises(ValueError, match=r"\bx\b"):
            layer(bad)


@pytest.mark.parametrize(("name", "axis"), [(n, 0) for n in NAMES] + [(n, 1) for n in WITH_TIME])
def test_empty_batch_or_time_is_a_value_error(name, axis):
    """B = 0 or T = 0: a defined ValueError (the C API refuses sizes < 1)."""
    layer, x, _ = make(name)
    shape = list(x.shape)
    shape[axis] = 0
    with pytest.raises(ValueError, match="empty"):
        layer(np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match="empty"):
        layer(np.zeros(shape, np.float32), training=True)


@pytest.mark.parametrize("name", NAMES)
def test_training_flag_must_be_a_bool(name):
    layer, x, _ = make(name)
    for bad in ("yes", 1, None, 1.0):
        with pytest.raises(TypeError, match="training"):
            layer(x, training=bad)


# -- memory layout ------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_non_contiguous_and_fortran_inputs(name):
    layer, x, _ = make(name)
    expected = run(layer, x)
    wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), np.float32)
    wide[..., ::2] = x
    assert not wide[..., ::2].flags.c_contiguous
    assert_same(run(layer, wide[..., ::2]), expected)
    assert_same(run(layer, np.asfortranarray(x)), expected)
    flipped = np.ascontiguousarray(x[::-1])[::-1]  # negative strides
    assert_same(run(layer, flipped), expected)


@pytest.mark.parametrize("name", NAMES)
def test_read_only_arrays_work(name):
    """x and dy are only read, and set_weights only copies: read-only arrays work."""
    layer, x, _ = make(name)
    expected = run(layer, x)
    frozen = x.copy()
    frozen.flags.writeable = False
    weights = layer.get_weights()
    for w in weights:
        w.flags.writeable = False
    layer.set_weights(weights)
    rng = np.random.default_rng(1)
    y_inf = as_list(layer(frozen))
    y_train = as_list(layer(frozen, training=True))
    dys = upstream_for(y_train, rng)
    for dy in dys:
        dy.flags.writeable = False
    dx, dw = backward(layer, dys)
    assert_same([y_inf, y_train, dx, dw], list(expected))
    np.testing.assert_array_equal(frozen, x)  # untouched


@pytest.mark.parametrize("name", NAMES)
def test_outputs_are_fresh_arrays(name):
    """Outputs and gradients are the caller's: not views of native memory that a later
    call overwrites (or that close() frees)."""
    layer, x, _ = make(name)
    first = run(layer, x)
    snapshot = [
        [a.copy() for a in group] if isinstance(group, list) else group.copy() for group in first
    ]
    run(layer, x * 2 + 1, seed=7)
    layer.close()
    assert_same(first, snapshot)
    for group in first:
        for a in group if isinstance(group, list) else [group]:
            assert a.flags.owndata or a.base is not None and a.base.flags.owndata


# -- NaN and Inf ------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_stay_in_their_batch_element(name, bad):
    """A NaN or ±Inf in batch element 0 never crashes; the other batch elements give
    what they give without it (inference mode: nothing mixes across the batch)."""
    layer, x, _ = make(name)
    clean = as_list(layer(x))
    poisoned = x.copy()
    poisoned[0].flat[0] = bad
    y = as_list(layer(poisoned))
    for a, b in zip(y, clean, strict=True):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a[1:], b[1:])
    # training mode and the gradients: no crash, shapes right
    y_train = as_list(layer(poisoned, training=True))
    dx, dw = backward(layer, upstream_for(y_train, np.random.default_rng(2)))
    assert dx.shape == poisoned.shape
    assert [g.shape for g in dw] == [
        s for s, t in zip(layer.weight_shapes(), layer.trainable_mask(), strict=True) if t
    ]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_upstream_gradients(name, bad):
    layer, x, _ = make(name)
    y = as_list(layer(x, training=True))
    dys = upstream_for(y, np.random.default_rng(3))
    dys[0].flat[0] = bad
    dx, dw = backward(layer, dys)
    assert dx.shape == x.shape
    assert len(dw) == sum(layer.trainable_mask())


@pytest.mark.parametrize("name", WITH_WEIGHTS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights(name, bad):
    layer, x, _ = make(name)
    weights = layer.get_weights()
    for w in weights:
        w.flat[0] = bad
    layer.set_weights(weights)
    y_inf, y_train, dx, dw = run(layer, x)
    assert any(not np.isfinite(y).all() for y in y_inf + y_train + [dx] + dw), (
        "a non-finite weight vanished from every output and gradient"
    )


# -- weights ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_wrong_weight_lists(name):
    layer, _, _ = make(name)
    weights = layer.get_weights()
    names = layer.weight_names()
    with pytest.raises(TypeError, match="weights"):
        layer.set_weights(np.zeros(3))
    with pytest.raises(TypeError, match="weights"):
        layer.set_weights(None)
    with pytest.raises(ValueError, match=f"expected {len(weights)} arrays"):
        layer.set_weights(weights + [np.zeros(1)])
    if not weights:
        return
    with pytest.raises(ValueError, match=f"expected {len(weights)} arrays"):
        layer.set_weights(weights[:-1])
    for i, name_i in enumerate(names):
        bad = list(weights)
        bad[i] = np.zeros(weights[i].shape + (1,), np.float32)
        with pytest.raises(ValueError, match=rf"\b{name_i}\b"):
            layer.set_weights(bad)
        bad[i] = np.zeros(weights[i].size + 1, np.float32)
        with pytest.raises(ValueError, match=rf"\b{name_i}\b"):
            layer.set_weights(bad)
        bad[i] = np.zeros(weights[i].shape, np.complex64)
        with pytest.raises(TypeError, match=rf"\b{name_i}\b"):
            layer.set_weights(bad)
        bad[i] = None
        with pytest.raises((TypeError, ValueError), match=rf"\b{name_i}\b"):
            layer.set_weights(bad)
    # a refused set_weights left the weights alone
    assert_same(layer.get_weights(), weights)
    layer.set_weights(tuple(w.astype(np.float64) for w in weights))  # any sequence, any real dtype
    assert_same(layer.get_weights(), weights)


# -- backward -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_bad_upstream_gradients(name):
    layer, x, _ = make(name)
    if layer._keeps_for_backward(False):
        # BatchNorm: backward after a training=False call gives the inference-mode
        # gradients (as tf.GradientTape does), so it is defined there.
        dx, _ = backward(layer, upstream_for(as_list(layer(x)), np.random.default_rng(0)))
        assert dx.shape == x.shape
    else:
        with pytest.raises(RuntimeError, match="no training call"):
            backward(layer, upstream_for(as_list(layer(x)), np.random.default_rng(0)))
    y = as_list(layer(x, training=True))
    dys = upstream_for(y, np.random.default_rng(0))
    wrong = [np.zeros(d.shape[:-1] + (d.shape[-1] + 1,), np.float32) for d in dys]
    with pytest.raises(ValueError, match="dy"):
        backward(layer, wrong)
    with pytest.raises(TypeError, match="dy"):
        backward(layer, [d.astype(np.complex64) for d in dys])
    # the gradient still belongs to the last training call
    dx, _ = backward(layer, dys)
    assert dx.shape == x.shape


@pytest.mark.parametrize("name", NAMES)
def test_backward_on_a_fresh_layer_is_refused(name):
    """Before any call there is nothing to differentiate (BatchNorm included, whose
    backward after an inference call is defined)."""
    layer, x, _ = make(name)
    dys = upstream_for(as_list(make(name)[0](x, training=True)), np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="no training call"):
        backward(layer, dys)


# -- lifetime -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_calls_after_close_raise(name):
    layer, x, _ = make(name)
    y = as_list(layer(x, training=True))
    dys = upstream_for(y, np.random.default_rng(0))
    weights = layer.get_weights()
    layer.close()
    for action in (
        lambda: layer(x),
        lambda: layer(x, training=True),
        lambda: backward(layer, dys),
        layer.get_weights,
        lambda: layer.set_weights(weights),
    ):
        with pytest.raises(RuntimeError, match="closed"):
            action()
    layer.close()  # idempotent


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _under_address_sanitizer() -> bool:
    try:
        ctypes.CDLL(None).__asan_init  # noqa: B018
    except AttributeError:
        return False
    return True


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.skipif(
    _under_address_sanitizer(),
    reason="ASan's quarantine keeps freed memory resident; ASan/valgrind check leaks instead",
)
def test_layers_created_and_dropped_do_not_grow_the_process():
    """Thousands of layers, each trained once and dropped: the resident size stays
    flat (each holds ~0.3 MB of native memory, so a leak would show as hundreds
    of MB). The exact leak check is valgrind over tests/c/smoke.c (ci/sanitize.sh)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 8, 64)).astype(np.float32)
    dy = rng.standard_normal((16, 8, 64)).astype(np.float32)

    def cycle(count):
        refs = []
        for _ in range(count):
            for name in NAMES:
                layer, xs, _ = make(name)
                layer(xs, training=True)
                refs.append(weakref.ref(layer))
            dense = nn.Dense(64, input_dim=64, activation="tanh")
            dense(x, training=True)
            dense.backward(dy)
            refs.append(weakref.ref(dense))
            del dense, layer
        return refs

    cycle(100)  # warm-up: allocator pools, caches
    gc.collect()
    before = _rss_bytes()
    refs = cycle(600)
    gc.collect()
    grown = _rss_bytes() - before
    assert all(r() is None for r in refs), "a layer object was kept alive"
    assert grown < 32 * 2**20, f"RSS grew by {grown / 2**20:.1f} MB over 600 cycles"


# -- NaN placement against tf.keras ----------------------------------------------------
def _non_finite_pattern(a):
    """NaN positions, +Inf positions, -Inf positions."""
    a = np.asarray(a, np.float64)
    return np.isnan(a), np.isposinf(a), np.isneginf(a)


@pytest.mark.tf
@pytest.mark.parametrize("activation", nn.ACTIVATIONS)
def test_dense_non_finite_placement_matches_keras(activation):
    """NaN and ±Inf in the input of a Dense layer: the output and every gradient has
    NaN and ±Inf exactly where tf.keras float32 has them, and the finite elements agree."""
    from parity.reference import keras, tensorflow
    from parity.specs import get_spec

    tf, k = tensorflow(), keras()
    spec = get_spec("dense")
    config = {"units": 4, "input_dim": 5, "activation": activation, "use_bias": True}
    rng = np.random.default_rng(5)
    kernel = rng.uniform(-1, 1, (5, 4)).astype(np.float32)
    kernel[2, 1] = 0.0  # 0 * Inf = NaN
    bias = rng.uniform(-1, 1, 4).astype(np.float32)
    x = rng.standard_normal((5, 5)).astype(np.float32)
    x[0, 1], x[1, 2], x[2, 3], x[3, 2] = np.nan, np.inf, -np.inf, np.inf
    x[4, :] = [np.inf, -np.inf, 0, 1, 2]  # Inf - Inf
    dy = rng.standard_normal((5, 4)).astype(np.float32)
    dy[4, 0] = np.nan

    ours = nn.Dense(4, input_dim=5, activation=activation)
    ours.set_weights([kernel, bias])
    got = {"inference": ours(x), "training": ours(x, training=True)}
    got["dx"], (got["dkernel"], got["dbias"]) = ours.backward(dy)

    layer = spec.build_keras(k, config, "float32", (None, config["input_dim"]))
    layer.set_weights([kernel, bias])
    xt = tf.constant(x)
    want = {"inference": layer(xt, training=False)}
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt, training=True)
    want["training"] = y
    want["dx"], want["dkernel"], want["dbias"] = tape.gradient(
        y, [xt, layer.kernel, layer.bias], output_gradients=tf.constant(dy)
    )
    for key, value in want.items():
        ref = np.asarray(value)
        for kind, mine, theirs in zip(
            ("NaN", "+Inf", "-Inf"),
            _non_finite_pattern(got[key]),
            _non_finite_pattern(ref),
            strict=True,
        ):
            np.testing.assert_array_equal(
                mine, theirs, err_msg=f"{activation}: {kind} positions of {key} differ"
            )
        finite = np.isfinite(ref)
        np.testing.assert_allclose(
            got[key][finite], ref[finite], rtol=1e-4, atol=1e-5, err_msg=f"{activation}: {key}"
        )


@pytest.mark.tf
@pytest.mark.parametrize("activation", nn.ACTIVATIONS)
def test_activation_edges_match_keras_float32(activation):
    """The Activation layer at NaN, ±Inf, ±0, the kinks and one float32 ulp either side
    of them, with a NaN in the upstream gradient too: outputs and input gradients equal
    tf.keras float32 (NaN where it has NaN; the kink decisions as float32 makes them,
    e.g. hard_sigmoid passes the gradient at 2.5000002 because 0.2x + 0.5 rounds to 1)."""
    from parity.reference import keras, tensorflow
    from parity.spec_fields import keras_activation
    from parity.specs.activation import KINKS

    tf, k = tensorflow(), keras()
    kinks = np.concatenate([KINKS, [1.0, -1.0]]).astype(np.float32)
    up = np.nextafter(kinks, np.float32(np.inf))
    down = np.nextafter(kinks, np.float32(-np.inf))
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 88.8, -88.8, 1e-30], np.float32)
    assert special.size == 8  # dy is NaN at these in the second row
    x = np.concatenate([special, kinks, up, down]).astype(np.float32)
    # TensorFlow flushes subnormals to zero on CPU; the suite draws none (docs/DESIGN.md §5)
    x = x[~((x != 0) & (np.abs(x) < np.finfo(np.float32).tiny))]
    x = np.concatenate([x, x]).reshape(2, -1)
    dy = np.ones_like(x)
    dy[1, :8] = np.nan  # NaN upstream at the special points

    ours = nn.Activation(activation, input_dim=x.shape[-1])
    got_y = ours(x, training=True)
    got_dx, _ = ours.backward(dy)

    layer = k.layers.Activation(keras_activation(k, activation), dtype="float32")
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt, training=True)
    dx = tape.gradient(y, xt, output_gradients=tf.constant(dy))
    for what, mine, theirs in (("output", got_y, y.numpy()), ("input grad", got_dx, dx.numpy())):
        for kind, a, b in zip(
            ("NaN", "+Inf", "-Inf"),
            _non_finite_pattern(mine),
            _non_finite_pattern(theirs),
            strict=True,
        ):
            bad = np.flatnonzero(a != b)
            assert bad.size == 0, (
                f"{activation} {what}: {kind} differs at x = {x.ravel()[bad]} "
                f"(nntk {mine.ravel()[bad]}, keras {theirs.ravel()[bad]})"
            )
        finite = np.isfinite(theirs)
        # loose: this is about NaN and the branch taken (a wrong branch is off by
        # >= 0.2·|dy|), not accuracy, which the parity suite measures
        close = np.isclose(mine, theirs, rtol=1e-4, atol=1e-5) | ~finite
        bad = np.flatnonzero(~close)
        assert bad.size == 0, (
            f"{activation} {what} differs at x = {x.ravel()[bad]}, dy = {dy.ravel()[bad]}: "
            f"nntk {mine.ravel()[bad]}, keras {theirs.ravel()[bad]}"
        )


@pytest.mark.parametrize("name", NAMES)
def test_backward_after_set_weights_is_refused(name):
    """The kept training batch was computed with the old weights; the gradient would read
    the new ones (a mix Keras never computes: it differentiates at the call's weights).
    backward() is refused until the next training call, which it then answers."""
    layer, x, _ = make(name)
    y = as_list(layer(x, training=True))
    dys = upstream_for(y, np.random.default_rng(0))
    layer.set_weights(layer.get_weights())
    with pytest.raises(RuntimeError, match="weights were set after the last training call"):
        backward(layer, dys)
    layer(x, training=True)
    dx, _ = backward(layer, dys)
    assert dx.shape == x.shape
