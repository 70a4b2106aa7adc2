"""The recurrent layers' Python contract beyond the generic one (tests/test_bad_input.py):
initial states, the list forms of outputs and gradients, streaming, and Bidirectional's
structure. No TensorFlow: their agreement with tf.keras is the parity specs' (rnn, gru,
lstm, bidirectional) and tests/test_stateful.py's.

The layers are every spec whose class is a recurrent layer (GRU also with
reset_after=False), built by the spec from its base config: a new recurrent layer with
a spec is covered without edits here.
"""

from __future__ import annotations

import numpy as np
import pytest

import nntk_core as nn
from parity.sequence_sides import can_stream
from parity.specs import all_specs

RECURRENT = [
    s for s in all_specs() if issubclass(nn.LAYER_CLASSES[s.layer_class], nn.RecurrentLayer)
]
CELLS = [s for s in RECURRENT if can_stream(s)]
WRAPPERS = [s for s in RECURRENT if not can_stream(s)]
# Every cell from its base config, and with each other two-valued option flipped
# (GRU: reset_after=False); the flags are set per test.
FLAGS = ("use_bias", "return_sequences", "go_backwards", "return_state")
CELL_CONFIGS = [(spec, {}) for spec in CELLS] + [
    (spec, {option: not spec.base_config[option]})
    for spec in CELLS
    for option, values in spec.options.items()
    if option not in FLAGS and values == (True, False)
]


def config_id(item) -> str:
    spec, values = item
    return spec.name + "".join(f"-{k}={v}" for k, v in values.items())


def build(spec, units: int, input_dim: int, **values):
    """The spec's layer from its base config with drawn weights."""
    config = {**spec.base_config, "units": units, "input_dim": input_dim, **values}
    layer = spec.build_native(nn, config)
    layer.set_weights(draw_weights(spec, layer, np.random.default_rng(units)))
    return layer


def draw_weights(spec, layer, rng) -> list[np.ndarray]:
    return [
        spec.draw_weight(name, shape, 1.0, rng)
        for name, shape in zip(layer.weight_names(), layer.weight_shapes(), strict=True)
    ]


# -- states ------------------------------------------------------------------------------
@pytest.mark.parametrize("item", CELL_CONFIGS + [(s, {}) for s in WRAPPERS], ids=config_id)
def test_default_call_starts_from_zero_state(item):
    """No hidden state between calls: the same input gives the same output, and an
    explicit zero initial state equals none."""
    spec, values = item
    layer = build(spec, 3, 2, **values, return_sequences=True, return_state=False)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 5, 2)).astype(np.float32)
    first = layer(x)
    layer(rng.uniform(-1, 1, (2, 9, 2)))
    np.testing.assert_array_equal(layer(x), first)
    zeros = [np.zeros((2, 3), np.float32) for _ in layer.state_names()]
    np.testing.assert_array_equal(layer(x, initial_state=zeros), first)
    assert np.any(first != 0)


@pytest.mark.parametrize("go_backwards", (False, True))
@pytest.mark.parametrize("item", CELL_CONFIGS, ids=config_id)
def test_streaming_reproduces_the_whole_sequence(item, go_backwards):
    """Chunks of random sizes, each from the previous chunk's final state, reproduce
    the whole-sequence output and final state bit for bit (with go_backwards the
    chunks are fed last first)."""
    spec, values = item
    layer = build(
        spec, 6, 3, **values, return_sequences=True, return_state=True, go_backwards=go_backwards
    )
    rng = np.random.default_rng(3)
    steps = 50
    x = rng.uniform(-1, 1, (2, steps, 3)).astype(np.float32)
    whole, *whole_state = layer(x)
    for trial in range(5):
        cuts = np.sort(rng.choice(np.arange(1, steps), size=trial + 2, replace=False))
        chunks = np.split(x, cuts, axis=1)
        if go_backwards:
            chunks = chunks[::-1]
        state, outs = None, []
        for chunk in chunks:
            out, state = layer.stream(chunk, state)
            outs.append(out)
        np.testing.assert_array_equal(np.concatenate(outs, axis=1), whole)
        for s, w in zip(state, whole_state, strict=True):
            np.testing.assert_array_equal(s, w)


@pytest.mark.parametrize("item", CELL_CONFIGS, ids=config_id)
def test_streaming_without_sequences_gives_the_last_output(item):
    """return_sequences=False: streaming gives the last output of the whole sequence."""
    spec, values = item
    layer = build(spec, 4, 2, **values, return_sequences=False, return_state=False)
    x = np.random.default_rng(5).uniform(-1, 1, (3, 20, 2)).astype(np.float32)
    state = None
    for chunk in np.split(x, [3, 4, 11], axis=1):
        out, state = layer.stream(chunk, state)
    np.testing.assert_array_equal(out, layer(x))
    np.testing.assert_array_equal(state[0], out)


# -- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize("item", CELL_CONFIGS, ids=config_id)
def test_bad_initial_states_and_gradient_lists(item):
    spec, values = item
    layer = build(spec, 3, 2, **values, return_sequences=True, return_state=True)
    x = np.zeros((2, 4, 2), np.float32)
    with pytest.raises(ValueError, match=r"\(batch, steps, features\)"):
        layer(np.zeros((2, 2)))
    n = len(layer.state_names())
    with pytest.raises(ValueError, match="initial_state"):
        layer(x, initial_state=[np.zeros((2, 3))] * (n + 1))
    if n == 2:
        with pytest.raises(ValueError, match=r"initial_state must be a list of 2"):
            layer(x, initial_state=np.zeros((2, 3)))
    # wrong shape: batch, units
    with pytest.raises(ValueError, match=r"initial_state\[0\] \(h\) must have shape"):
        layer(x, initial_state=[np.zeros((3, 3))] * n)
    with pytest.raises(ValueError, match=rf"initial_state\[{n - 1}\].*must have shape"):
        layer(x, initial_state=[np.zeros((2, 3))] * (n - 1) + [np.zeros((2, 4))])
    with pytest.raises(RuntimeError, match="no training call"):
        layer.backward([np.zeros((2, 4, 3))] + [None] * n)
    layer(x, training=True)
    with pytest.raises(ValueError, match="dy must be a list of"):
        layer.backward(np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=r"dy\[0\] must have the shape"):
        layer.backward([np.zeros((2, 3, 3))] + [None] * n)
    with pytest.raises(ValueError, match=r"dy\[1\] \(h\) must have the shape"):
        layer.backward([np.zeros((2, 4, 3)), np.zeros((2, 4))] + [None] * (n - 1))
    dx, dw = layer.backward([np.ones((2, 4, 3))] + [None] * n)
    assert dx.shape == x.shape and len(dw) == len(layer.weight_names())


# -- Bidirectional ---------------------------------------------------------------------------
@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda s: s.name)
@pytest.mark.parametrize("item", CELL_CONFIGS, ids=config_id)
def test_wrapper_equals_its_two_directions(wrapper, item):
    """The wrapper equals its two directions run separately: the forward layer, and
    the go_backwards layer's sequence reversed back; dx is their sum."""
    spec, values = item
    rng = np.random.default_rng(4)
    fwd = build(spec, 3, 2, **values, return_sequences=True, return_state=False)
    bwd = build(spec, 3, 2, **values, return_sequences=True, go_backwards=True, return_state=False)
    inner = build(spec, 3, 2, **values, return_sequences=True, return_state=False)
    bi = nn.LAYER_CLASSES[wrapper.layer_class](inner, merge_mode=None)
    wf, wb = draw_weights(spec, fwd, rng), draw_weights(spec, bwd, rng)
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
    assert bi.weight_names() == [
        f"{d}_{n}" for d in ("forward", "backward") for n in fwd.weight_names()
    ]
    assert bi.weight_shapes() == fwd.weight_shapes() * 2


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda s: s.name)
def test_wrapper_bad_layer_and_merge_mode(wrapper):
    cls = nn.LAYER_CLASSES[wrapper.layer_class]
    with pytest.raises(TypeError, match="layer must be an nntk RNN, GRU or LSTM.*Dense"):
        cls(nn.Dense(3, input_dim=2))
    with pytest.raises(TypeError, match="layer must be .*Bidirectional"):
        cls(cls(nn.GRU(3, input_dim=2)))
    with pytest.raises(TypeError, match="layer must be"):
        cls("gru")
    with pytest.raises(ValueError, match="merge_mode='max'"):
        cls(nn.GRU(3, input_dim=2), merge_mode="max")
    with pytest.raises(ValueError, match="merge_mode=3"):
        cls(nn.GRU(3, input_dim=2), merge_mode=3)


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda s: s.name)
@pytest.mark.parametrize("item", CELL_CONFIGS, ids=config_id)
def test_wrapper_bad_states_and_gradient_lists(wrapper, item):
    spec, values = item
    inner = build(spec, 3, 2, **values, return_sequences=True, return_state=True)
    bi = nn.LAYER_CLASSES[wrapper.layer_class](inner, merge_mode=None)
    n = 2 * len(inner.state_names())
    x = np.zeros((2, 4, 2), np.float32)
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
    assert dx.shape == x.shape and len(dw) == 2 * len(inner.weight_names())


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda s: s.name)
def test_wrapper_without_merge_or_states_takes_two_gradients(wrapper):
    bi = nn.LAYER_CLASSES[wrapper.layer_class](nn.RNN(3, input_dim=2), merge_mode=None)
    out = bi(np.zeros((2, 4, 2), np.float32), training=True)
    assert isinstance(out, list) and [o.shape for o in out] == [(2, 3), (2, 3)]
    with pytest.raises(ValueError, match="dy must be a list of 2 gradients"):
        bi.backward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"dy\[1\] must have the shape"):
        bi.backward([np.zeros((2, 3)), np.zeros((2, 4, 3))])
