"""Sequential.stream (nntk_core/model.py, one native NNTKLayerChainStream per chunk):
bit for bit each layer in turn on the chunk (a layer with states through its own
stream()), and, fed a sequence chunk by chunk, bit for bit the whole sequence's
output; over small random chains drawn by hypothesis (a front convolution with
padding valid fed its windows whole, per-step layers, layers with states). Layers that
cannot stream are refused naming the layer and why; bad states name the argument."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nntk_core as nn

FEATURES = st.integers(1, 6)


@st.composite
def chains(draw):
    """(layers, kernel_steps): a chain and the input steps its front convolution eats
    beyond one output step (0 without one)."""
    d = draw(FEATURES)
    input_dim, layers, window = d, [], 0
    if draw(st.booleans()):  # a front window: Conv1d / DepthwiseConv1d, padding valid
        k = draw(st.integers(1, 4))
        dilation = draw(st.integers(1, 2))
        if draw(st.booleans()):
            f = draw(FEATURES)
            layers.append(nn.Conv1d(f, k, input_dim=d, dilation_rate=dilation))
        else:
            f = d * draw(st.integers(1, 2))
            layers.append(
                nn.DepthwiseConv1d(k, depth_multiplier=f // d, input_dim=d, dilation_rate=dilation)
            )
        window, d = (k - 1) * dilation, f
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(["dense", "tdd", "bn", "ln", "act", "conv1", "rnn", "gru", "lstm"])
        )
        units = draw(FEATURES)
        if kind == "dense":
            layer = nn.Dense(units, draw(st.sampled_from(["linear", "tanh"])), input_dim=d)
        elif kind == "tdd":
            layer = nn.TimeDistributedDense(units, "softmax", input_dim=d)
        elif kind == "bn":
            layer, units = nn.BatchNorm(d), d
        elif kind == "ln":
            layer, units = nn.LayerNorm(d), d
        elif kind == "act":
            layer, units = nn.Activation(draw(st.sampled_from(["relu", "sigmoid"]))), d
        elif kind == "conv1":
            layer = nn.Conv1d(
                units, 1, padding=draw(st.sampled_from(["valid", "same"])), input_dim=d
            )
        else:
            cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind]
            layer = cls(units, input_dim=d, return_sequences=True)
        layers.append(layer)
        d = units
    return layers, window, input_dim


def randomize(model: nn.Sequential, rng) -> None:
    weights = []
    for layer in model.layers:
        for name, w in zip(layer.weight_names(), layer.get_weights(), strict=True):
            value = rng.uniform(-0.8, 0.8, w.shape)
            weights.append(np.abs(value) + 0.5 if name == "moving_variance" else value)
    model.set_weights(weights)


def per_layer(model: nn.Sequential, chunk, states):
    """Each layer in turn on the chunk (a layer with states: its own stream())."""
    states = list(states) if states is not None else None
    new, k = [], 0
    for layer in model.layers:
        if isinstance(layer, nn.recurrent.RecurrentLayer):
            chunk, state = layer.stream(chunk, None if states is None else states[k])
            new.append(state)
            k += 1
        else:
            chunk = layer(chunk)
    return chunk, new


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chain=chains(), batch=st.integers(1, 3), steps=st.integers(1, 9), data=st.data())
def test_stream_is_each_layer_in_turn_and_the_whole_sequence(chain, batch, steps, data):
    layers, window, d = chain
    model = nn.Sequential(layers)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    randomize(model, rng)
    x = rng.uniform(-1, 1, (batch, steps + window, d)).astype(np.float32)
    whole = model(x)
    cuts = sorted(data.draw(st.sets(st.integers(1, steps - 1), max_size=3)) if steps > 1 else [])
    states = reference_states = None
    parts = []
    for start, end in zip([0, *cuts], [*cuts, steps], strict=True):
        chunk = x[:, start : end + window]  # the front window's input steps, whole
        out, new = model.stream(chunk, states)
        expected, reference_states = per_layer(model, chunk, reference_states)
        assert out.shape == expected.shape
        np.testing.assert_array_equal(out, expected)
        assert len(new) == len(reference_states)
        for got, want in zip(new, reference_states, strict=True):
            for a, b in zip(got, want, strict=True):
                np.testing.assert_array_equal(a, b)
        # alternately the returned list itself (no copy) and a copy of it (checked, copied)
        states = new if len(parts) % 2 == 0 else [[s.copy() for s in entry] for entry in new]
        parts.append(out)
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)


def test_the_keyword_detector_frame_by_frame_is_the_whole_sequence():
    """W6's network (Conv1D k=5 -> BN -> relu -> GRU -> BN -> GRU -> softmax head), one
    window of 5 frames per call: bit for bit the whole-sequence inference; a None state
    restarts the sequence."""
    model = nn.Sequential([
        nn.Conv1d(16, 5, input_dim=8), nn.BatchNorm(16), nn.Activation("relu"),
        nn.GRU(12, input_dim=16, return_sequences=True), nn.BatchNorm(12),
        nn.GRU(12, input_dim=12, return_sequences=True),
        nn.TimeDistributedDense(4, "softmax", input_dim=12),
    ])  # fmt: skip
    rng = np.random.default_rng(1)
    randomize(model, rng)
    x = rng.uniform(-1, 1, (1, 30, 8)).astype(np.float32)
    whole = model(x)
    for _ in range(2):  # a second pass from None: the same frames
        states, frames = None, []
        for i in range(26):
            out, states = model.stream(x[:, i : i + 5], states)
            frames.append(out)
        np.testing.assert_array_equal(np.concatenate(frames, axis=1), whole)


def test_a_last_layer_without_sequences_streams_its_last_step():
    model = nn.Sequential([nn.Dense(4, "tanh", input_dim=3), nn.LSTM(5, input_dim=4)])
    rng = np.random.default_rng(2)
    randomize(model, rng)
    x = rng.uniform(-1, 1, (2, 7, 3)).astype(np.float32)
    out, states = model.stream(x[:, :4])
    out, states = model.stream(x[:, 4:], states)
    assert out.shape == (2, 5)
    np.testing.assert_array_equal(out, model(x))
    assert [len(entry) for entry in states] == [2]  # the LSTM's [h, c]


@pytest.mark.parametrize(
    ("layers", "named", "why"),
    [
        ([nn.Conv1d(2, 3, padding="same", input_dim=2)], "layers[0] (Conv1d)", "cannot stream"),
        ([nn.Dense(2, input_dim=2), nn.MaxPool1d(2, input_dim=2)], "layers[1] (MaxPool1d)",
         "cannot stream"),
        ([nn.Bidirectional(nn.GRU(2, input_dim=2, return_sequences=True))],
         "layers[0] (Bidirectional)", "cannot stream"),
        ([nn.GRU(2, input_dim=2, return_sequences=True), nn.Conv1d(2, 3, input_dim=2)],
         "layers[1] (Conv1d)", "before every layer with states"),
    ],
)  # fmt: skip
def test_a_layer_that_cannot_stream_is_refused_by_name(layers, named, why):
    model = nn.Sequential(layers)
    with pytest.raises(ValueError, match="Sequential.stream") as info:
        model.stream(np.zeros((1, 4, 2), np.float32))
    assert named in str(info.value) and why in str(info.value)


def test_bad_states_name_the_argument():
    model = nn.Sequential([nn.GRU(3, input_dim=2, return_sequences=True), nn.Dense(2, input_dim=3)])
    x = np.zeros((1, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"states must hold 1 entries"):
        model.stream(x, [])
    with pytest.raises(ValueError, match=r"states\[0\] \(layers\[0\] \(GRU\)\)"):
        model.stream(x, [[np.zeros((1, 4), np.float32)]])
    with pytest.raises(TypeError, match="states must be None or a list"):
        model.stream(x, np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="chunk must be"):
        model.stream(np.zeros((2, 2), np.float32))


def test_an_entry_none_is_that_layers_zero_state():
    model = nn.Sequential([nn.GRU(3, input_dim=2, return_sequences=True), nn.LSTM(2, input_dim=3)])
    randomize(model, np.random.default_rng(5))
    x = np.random.default_rng(6).uniform(-1, 1, (2, 4, 2)).astype(np.float32)
    _, states = model.stream(x[:, :2])
    zero_gru = [[np.zeros((2, 3), np.float32)], states[1]]
    out_none, _ = model.stream(x[:, 2:], [None, states[1]])
    out_zero, _ = model.stream(x[:, 2:], zero_gru)
    np.testing.assert_array_equal(out_none, out_zero)
    assert not np.array_equal(out_none, model.stream(x[:, 2:], states)[0])  # the state matters


def _raw_chain(layers, max_batch: int, max_steps: int):
    """A native chain of `layers` (nntk/layer.h), through the checked raw functions."""
    from nntk_core._native import lib

    chain = lib.NNTKLayerChainCreate(layers[0]._live_handle(), max_batch, max_steps)
    for layer in layers[1:]:
        lib.NNTKLayerChainAppend(chain, layer._live_handle())
    return chain


def _raw_stream(chain, x: np.ndarray, states: np.ndarray, out_features: int):
    """(out, final states) of one NNTKLayerChainStream on x (batch, steps, features), the
    output (batch, steps - 3, out_features) (a kernel of 4 in front; at least one step,
    so that a chunk the chain refuses still gets its buffers)."""
    from nntk_core._native import lib

    batch, steps = x.shape[0], x.shape[1]
    out = np.zeros((batch, max(steps - 3, 1), out_features), np.float32)
    final = np.zeros_like(states)
    ptr = ctypes.POINTER(ctypes.c_float)
    lib.NNTKLayerChainStream(
        chain, batch, steps, x.ctypes.data_as(ptr), states.ctypes.data_as(ptr),
        out.ctypes.data_as(ptr), final.ctypes.data_as(ptr),
    )  # fmt: skip
    return out, final


def test_a_chunk_is_checked_again_after_the_same_one_passed():
    """A chain keeps the per-layer steps of the last chunk shape that passed its checks
    (core/chain.c, same_chunk) and runs a repeat of that shape without them: a chunk of
    another shape after it is still checked layer by layer (a too-short window for the
    convolution, too many steps, a batch over the capacity, each refused naming the
    argument) and computed with its own steps; the same chunk again after a refused one
    gives the same bits; a layer appended after a Stream runs (a fresh chain's bits)."""
    from nntk_core._native import NNTKError, lib

    rng = np.random.default_rng(21)
    conv, gru = nn.Conv1d(3, 4, input_dim=2), nn.GRU(3, input_dim=3, return_sequences=True)
    act = nn.Activation("tanh", input_dim=3)
    model = nn.Sequential([conv, gru, act])
    randomize(model, rng)
    chain = _raw_chain([conv, gru, act], 2, 6)
    fresh = _raw_chain([conv, gru, act], 2, 6)
    grown = _raw_chain([conv], 2, 6)
    try:
        x = rng.uniform(-1, 1, (2, 6, 2)).astype(np.float32)
        states = rng.uniform(-1, 1, (2 * 3,)).astype(np.float32)
        first = _raw_stream(chain, x[:1, :4], states[:3], 3)
        for steps, batch, named in ((3, 1, "steps"), (7, 1, "steps"), (4, 3, "batch")):
            with pytest.raises(NNTKError, match=named):
                bad = np.zeros((batch, steps, 2), np.float32)
                _raw_stream(chain, bad, np.zeros(3 * batch, np.float32), 3)
        wide = _raw_stream(chain, x, states, 3)  # 3 output steps of 2 sequences
        again = _raw_stream(chain, x[:1, :4], states[:3], 3)
        for got, want in zip(wide + again, _raw_stream(fresh, x, states, 3) + first, strict=True):
            np.testing.assert_array_equal(got, want)
        _raw_stream(grown, x[:1, :4], states[:0], 3)  # the conv alone, shape worked out
        lib.NNTKLayerChainAppend(grown, gru._live_handle())
        lib.NNTKLayerChainAppend(grown, act._live_handle())
        for got, want in zip(_raw_stream(grown, x[:1, :4], states[:3], 3), first, strict=True):
            np.testing.assert_array_equal(got, want)
    finally:
        for c in (chain, fresh, grown):
            lib.NNTKLayerChainDestroy(c)
