"""Bidirectional(RNN | GRU | LSTM) against real tf.keras float64
Bidirectional layers (dtype float64 on both the wrapper and the inner layer)
with the same weights: merged outputs, returned states, dx, initial-state
gradients and every weight gradient, for every merge mode; bad input.

Bound, elementwise: |nntk - ref| <= 1e-5*max(1, max|ref|) + 1e-4*|ref|.
"""

from __future__ import annotations

import itertools
import os
import zlib

import c_api

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("tensorflow")
pytest.importorskip("tf_keras")

from keras_recurrent import (  # noqa: E402
    KINDS,
    check_against_keras,
    draw_weights,
    make,
    report_worst_errors,  # noqa: F401 (autouse fixture)
)

import nntk_core as nn  # noqa: E402
from nntk_core._native import NNTKError, lib  # noqa: E402

pytestmark = pytest.mark.tf

MERGE_MODES = ("concat", "sum", "mul", "ave", None)
# (go_backwards of the wrapped layer, return_state, initial_state given)
VARIANTS = [(False, False, False), (True, True, True), (False, True, True), (True, False, False)]


def seed_of(*key) -> int:
    return zlib.crc32(repr(key).encode())


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "gb{:d}-rs{:d}-init{:d}".format(*v))
@pytest.mark.parametrize("return_sequences", (False, True))
@pytest.mark.parametrize("merge_mode", MERGE_MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_merge_modes(kind, merge_mode, return_sequences, variant):
    go_backwards, return_state, with_state = variant
    inner = make(
        kind,
        3,
        4,
        return_sequences=return_sequences,
        go_backwards=go_backwards,
        return_state=return_state,
    )
    layer = nn.Bidirectional(inner, merge_mode=merge_mode)
    seed = seed_of(kind, merge_mode, return_sequences, variant)
    check_against_keras(layer, batch=3, steps=7, seed=seed, with_state=with_state)


@pytest.mark.parametrize("use_bias", (False, True))
@pytest.mark.parametrize("kind", KINDS)
def test_without_bias(kind, use_bias):
    inner = make(kind, 2, 3, use_bias=use_bias, return_sequences=True, return_state=True)
    check_against_keras(nn.Bidirectional(inner, "sum"), 2, 5, seed=3, with_state=True)


SIZES = [(1, 1, 1, 1), (2, 1, 3, 2), (1, 64, 3, 4), (3, 17, 2, 1), (2, 40, 8, 12)]


@pytest.mark.parametrize("merge_mode", ("concat", None))
@pytest.mark.parametrize("return_sequences", (False, True))
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "B{}T{}D{}U{}".format(*s))
@pytest.mark.parametrize("kind", KINDS)
def test_sizes(kind, size, return_sequences, merge_mode):
    batch, steps, d, u = size
    inner = make(kind, u, d, return_sequences=return_sequences, return_state=True)
    layer = nn.Bidirectional(inner, merge_mode=merge_mode)
    check_against_keras(layer, batch, steps, seed=seed_of(size, kind), with_state=True)


@pytest.mark.parametrize(
    "activation,recurrent_activation",
    list(itertools.product(("relu", "hard_sigmoid", "softsign"), ("hard_sigmoid", "tanh"))),
)
@pytest.mark.parametrize("kind", KINDS)
def test_activations(kind, activation, recurrent_activation):
    inner = make(
        kind,
        4,
        3,
        activation=activation,
        recurrent_activation=recurrent_activation,
        return_sequences=True,
        go_backwards=True,
    )
    layer = nn.Bidirectional(inner, merge_mode="mul")
    check_against_keras(layer, 2, 12, seed=seed_of(kind, activation), with_state=False)


# --- structure --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_matches_two_inner_layers(kind):
    """The wrapper equals its two directions run separately: the forward layer,
    and the go_backwards layer's sequence reversed back; dx is their sum."""
    rng = np.random.default_rng(4)
    fwd = make(kind, 3, 2, return_sequences=True)
    bwd = make(kind, 3, 2, return_sequences=True, go_backwards=True)
    bi = nn.Bidirectional(make(kind, 3, 2, return_sequences=True), merge_mode=None)
    wf, wb = draw_weights(fwd, rng), draw_weights(bwd, rng)
    fwd.set_weights(wf)
    bwd.set_weights(wb)
    bi.set_weights(wf + wb)
    x = rng.uniform(-1, 1, (2, 6, 2)).astype(np.float32)
    f_out, b_out = bi(x, training=True)
    np.testing.assert_array_equal(f_out, fwd(x, training=True))
    np.testing.assert_array_equal(b_out, bwd(x, training=True)[:, ::-1])
    df = rng.normal(size=f_out.shape).astype(np.float32)
    db = rng.normal(size=b_out.shape).astype(np.float32)
    dx, dw = bi.backward([df, db])
    dx_f, dw_f = fwd.backward(df)
    dx_b, dw_b = bwd.backward(np.ascontiguousarray(db[:, ::-1]))
    np.testing.assert_array_equal(dx, dx_f + dx_b)
    for a, b in zip(dw, dw_f + dw_b, strict=True):
        np.testing.assert_array_equal(a, b)


def test_weights_forward_then_backward():
    bi = nn.Bidirectional(nn.GRU(3, 2), merge_mode="concat")
    names = bi.weight_names()
    assert names == [
        "forward_kernel",
        "forward_recurrent_kernel",
        "forward_bias",
        "backward_kernel",
        "backward_recurrent_kernel",
        "backward_bias",
    ]
    assert bi.weight_shapes() == [(2, 9), (3, 9), (2, 9)] * 2
    w = draw_weights(bi, np.random.default_rng(0))
    bi.set_weights(w)
    for a, b in zip(bi.get_weights(), w, strict=True):
        np.testing.assert_array_equal(a, b)


def test_default_apply_starts_from_zero_state():
    rng = np.random.default_rng(2)
    bi = nn.Bidirectional(nn.LSTM(3, 2, return_sequences=True), merge_mode="ave")
    bi.set_weights(draw_weights(bi, rng))
    x = rng.uniform(-1, 1, (2, 5, 2)).astype(np.float32)
    first = bi(x)
    bi(rng.uniform(-1, 1, (2, 9, 2)))
    np.testing.assert_array_equal(bi(x), first)
    zeros = [np.zeros((2, 3), np.float32)] * 4
    np.testing.assert_array_equal(bi(x, initial_state=zeros), first)


# --- bad input --------------------------------------------------------------------------------


def test_bad_wrapped_layer_and_merge_mode():
    with pytest.raises(TypeError, match="layer must be an nntk RNN, GRU or LSTM.*Dense"):
        nn.Bidirectional(nn.Dense(3, 2))
    with pytest.raises(TypeError, match="layer must be .*Bidirectional"):
        nn.Bidirectional(nn.Bidirectional(nn.GRU(3, 2)))
    with pytest.raises(TypeError, match="layer must be"):
        nn.Bidirectional("gru")
    with pytest.raises(ValueError, match="merge_mode='max'"):
        nn.Bidirectional(nn.GRU(3, 2), merge_mode="max")
    with pytest.raises(ValueError, match="merge_mode=3"):
        nn.Bidirectional(nn.GRU(3, 2), merge_mode=3)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs(kind):
    inner = make(kind, 3, 2, return_sequences=True, return_state=True)
    bi = nn.Bidirectional(inner, merge_mode=None)
    n = 2 * len(inner.state_names())
    x = np.zeros((2, 4, 2), np.float32)
    with pytest.raises(ValueError, match="input_dim"):
        bi(np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match=r"\(batch, steps, features\)"):
        bi(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=f"initial_state must be a list of {n}"):
        bi(x, initial_state=[np.zeros((2, 3))] * (n - 1))
    with pytest.raises(ValueError, match=f"initial_state must be a list of {n}"):
        bi(x, initial_state=np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"initial_state\[1\] \(.*\) must have shape"):
        bi(x, initial_state=[np.zeros((2, 3)), np.zeros((2, 2))] + [np.zeros((2, 3))] * (n - 2))
    with pytest.raises(TypeError, match="cannot stream"):
        bi.stream(x)
    bi(x, training=True)
    with pytest.raises(ValueError, match=f"dy must be a list of {2 + n}"):
        bi.backward([np.zeros((2, 4, 3))] * 2)
    dx, dw = bi.backward([np.zeros((2, 4, 3)), None] + [None] * n)
    assert dx.shape == x.shape and len(dw) == 6


def test_merge_none_without_return_state_takes_two_gradients():
    bi = nn.Bidirectional(nn.RNN(3, 2), merge_mode=None)
    x = np.zeros((2, 4, 2), np.float32)
    out = bi(x, training=True)
    assert isinstance(out, list) and [o.shape for o in out] == [(2, 3), (2, 3)]
    with pytest.raises(ValueError, match="dy must be a list of 2 gradients"):
        bi.backward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"dy\[1\] must have the shape"):
        bi.backward([np.zeros((2, 3)), np.zeros((2, 4, 3))])


def test_c_errors():
    create = c_api.config_create("Bidirectional")
    tanh, sigmoid = 6, 4
    with pytest.raises(NNTKError, match="layer = 7 is not a recurrent layer"):
        create(7, 3, 2, tanh, sigmoid, 1, 0, 0, 0, 0)
    with pytest.raises(NNTKError, match="merge_mode = 5"):
        create(1, 3, 2, tanh, sigmoid, 1, 1, 0, 0, 5)
    with pytest.raises(NNTKError, match="reset_after must be 0 unless layer is GRU"):
        create(2, 3, 2, tanh, sigmoid, 1, 1, 0, 0, 0)
    # The inner layer's own check, relabelled with the wrapper's name.
    with pytest.raises(
        NNTKError, match="NNTKBidirectionalConfigCreate: NNTKLSTMConfigCreate: units must be >= 1"
    ):
        create(2, 3, 0, tanh, sigmoid, 1, 0, 0, 0, 0)
    config = create(1, 3, 2, tanh, sigmoid, 1, 1, 0, 0, 0)
    try:
        infer = lib.NNTKBidirectionalCreateForInference(config)
    finally:
        lib.NNTKBidirectionalConfigDestroy(config)
    try:
        with pytest.raises(NNTKError, match="NNTKBidirectionalApplyInference: in is NULL"):
            lib.NNTKBidirectionalApplyInference(infer, 1, 1, None, None)
        with pytest.raises(NNTKError, match="created for inference"):
            lib.NNTKBidirectionalGradientCreate(infer)
        with pytest.raises(NNTKError, match="not a handle of the expected kind"):
            lib.NNTKGRUApplyInference(infer, 1, 1, None, None)
    finally:
        lib.NNTKBidirectionalDestroy(infer)
