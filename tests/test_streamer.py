"""Sequential.streamer (nntk_core/streamer.py): the stateful streaming object gives,
bit for bit, the outputs and states of Sequential.stream fed the same chunks frame by
frame, whatever the form of the call (a new output, `out` by keyword or position, a
chunk converted or passed as it is), across reset_states() (to zeros or to given
states), over many frames, for GRU, LSTM (two states), SimpleRNN, a model without
states and batches above one, and over random chains drawn by hypothesis. Bad chunks,
bad `out`s and bad states are refused naming the argument, leaving the states as they
were; the object follows the model's layers (weights set, a handle re-created, a layer
replaced or closed) and never runs a chain over a stale handle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_model_stream import chains, randomize

import nntk_core as nn

F32 = np.float32


def keyword_detector(units: int = 12, cell=nn.GRU) -> nn.Sequential:
    """W6's network at a small size: Conv1D k=5 valid -> BN -> relu -> RNN -> BN -> RNN
    -> softmax head; fed 5-frame windows."""
    model = nn.Sequential([
        nn.Conv1d(16, 5, input_dim=8), nn.BatchNorm(16), nn.Activation("relu"),
        cell(units, input_dim=16, return_sequences=True), nn.BatchNorm(units),
        cell(units, input_dim=units, return_sequences=True),
        nn.TimeDistributedDense(4, "softmax", input_dim=units),
    ])  # fmt: skip
    randomize(model, np.random.default_rng(1))
    return model


def mixed_states() -> nn.Sequential:
    """Layers with states of different counts and widths: GRU [h], LSTM [h, c], RNN [h]."""
    model = nn.Sequential([
        nn.Dense(5, "tanh", input_dim=3), nn.GRU(4, input_dim=5, return_sequences=True),
        nn.LSTM(6, input_dim=4, return_sequences=True), nn.LayerNorm(6),
        nn.RNN(3, input_dim=6, return_sequences=True),
    ])  # fmt: skip
    randomize(model, np.random.default_rng(2))
    return model


def stateless() -> nn.Sequential:
    model = nn.Sequential([
        nn.Conv1d(6, 3, input_dim=4), nn.BatchNorm(6), nn.Activation("gelu"),
        nn.TimeDistributedDense(2, "softmax", input_dim=6),
    ])  # fmt: skip
    randomize(model, np.random.default_rng(3))
    return model


def last_step_lstm() -> nn.Sequential:
    """A last layer without return_sequences: a (batch, units) output per chunk."""
    model = nn.Sequential([nn.Dense(4, "tanh", input_dim=3), nn.LSTM(5, input_dim=4)])
    randomize(model, np.random.default_rng(4))
    return model


# (model maker, chunk steps (the front window's frames), features)
MODELS = {
    "keyword detector (GRU)": (keyword_detector, 5, 8),
    "keyword detector (LSTM)": (lambda: keyword_detector(cell=nn.LSTM), 5, 8),
    "GRU, LSTM, RNN": (mixed_states, 1, 3),
    "GRU, LSTM, RNN, chunks of 3": (mixed_states, 3, 3),
    "no states": (stateless, 3, 4),
    "last step of an LSTM": (last_step_lstm, 2, 3),
}


def chunks_of(steps: int, features: int, batch: int, frames: int, seed: int = 0):
    """`frames` chunks (batch, steps, features), views of one feature history as a live
    loop makes them: chunk i the `steps` newest frames at frame i."""
    rng = np.random.default_rng(seed)
    history = rng.uniform(-1, 1, (batch, frames + steps - 1, features)).astype(F32)
    return [history[:, i : i + steps] for i in range(frames)]


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def same_states(got: list, want: list | None, model) -> bool:
    """`got` (a streamer's states) equals `want` (stream()'s; None = zeros) bitwise."""
    if want is None:
        want = [
            [np.zeros(s.shape, F32) for s in entry] for entry in got
        ]  # stream(chunk, None)'s zeros
    return len(got) == len(want) and all(
        len(g) == len(w) and all(same_bits(a, b) for a, b in zip(g, w, strict=True))
        for g, w in zip(got, want, strict=True)
    )


@pytest.mark.parametrize("batch", (1, 3))
@pytest.mark.parametrize("name", list(MODELS))
def test_the_streamer_is_stream_frame_by_frame(name, batch):
    """Over 60 frames, each call form in turn (a new output; out by position; out by
    keyword; a float64 chunk, converted), with a reset to zeros after frame 25 and a
    reset to stream()'s states of frame 40 (copies) after frame 45: every output and
    the states after every frame are stream()'s, bit for bit."""
    make, steps, features = MODELS[name]
    model = make()
    frames = chunks_of(steps, features, batch, 60, seed=batch)
    s = model.streamer(batch=batch, steps=steps)
    assert s.shape == (batch, steps, features)
    out = np.full(s.output_shape, np.nan, F32)
    states, kept = None, None
    for i, chunk in enumerate(frames):
        want, states = model.stream(chunk, states)
        form = i % 4
        if form == 0:
            got = s(chunk)
        elif form == 1:
            got = s(chunk, out)
            assert got is out
        elif form == 2:
            got = s(chunk, out=out)
            assert got is out
        else:
            got = s(chunk.astype(np.float64))
        assert got.shape == want.shape == s.output_shape
        assert same_bits(got, want), i
        assert same_states(s.states, states, model), i
        if i == 40:
            kept = [[a.copy() for a in entry] for entry in states]
        if i == 25:
            s.reset_states()
            states = None
            assert same_states(s.states, None, model)
        if i == 45:
            s.reset_states(kept)
            states = kept
            assert same_states(s.states, kept, model)


@pytest.mark.parametrize("model", [None, [nn.Dense(2, input_dim=3)], nn.Dense(2, input_dim=3)])
def test_a_streamer_of_something_else_than_a_sequential_is_refused_naming_model(model):
    with pytest.raises(
        TypeError, match="Sequential.streamer: model must be an nntk_core.Sequential"
    ):
        nn.Streamer(model)


def test_a_new_output_is_not_overwritten_and_states_are_copies():
    """Without out each call returns a new array; the states property gives copies:
    writing into them changes neither the object's states nor the next output."""
    model = mixed_states()
    frames = chunks_of(1, 3, 2, 6)
    s = model.streamer(batch=2)
    first = s(frames[0])
    first_bits = first.tobytes()
    states = s.states
    for entry in states:
        for state in entry:
            state[...] = 7.0
    second = s(frames[1])
    assert first.tobytes() == first_bits
    want, ref = model.stream(frames[0])
    want, ref = model.stream(frames[1], ref)
    assert same_bits(second, want)
    assert same_states(s.states, ref, model)


def test_an_entry_none_in_reset_states_is_that_layers_zeros():
    model = mixed_states()
    frames = chunks_of(1, 3, 1, 4)
    _, states = model.stream(frames[0])
    given = [None, states[1], None]
    s = model.streamer()
    s.reset_states(given)
    want, _ = model.stream(frames[1], given)
    assert same_bits(s(frames[1]), want)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chain=chains(), batch=st.integers(1, 3), data=st.data())
def test_random_chains_and_call_sequences_are_stream(chain, batch, data):
    """Random streamable chains, chunk sizes and sequences of calls, resets and state
    reads: the streamer tracks stream() bit for bit."""
    layers, window, d = chain
    model = nn.Sequential(layers)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    randomize(model, rng)
    steps = window + data.draw(st.integers(1, 3))
    s = model.streamer(batch=batch, steps=steps, features=d)  # d: a front Activation adapts
    out = np.empty(s.output_shape, F32)
    states = None
    actions = data.draw(
        st.lists(st.sampled_from(["new", "out", "reset", "reset to", "read"]), max_size=12)
    )
    for action in actions:
        if action in ("new", "out"):
            chunk = rng.uniform(-1, 1, (batch, steps, d)).astype(F32)
            want, states = model.stream(chunk, states)
            got = s(chunk) if action == "new" else s(chunk, out=out)
            assert same_bits(got, want)
        elif action == "reset":
            s.reset_states()
            states = None
        elif action == "reset to":
            _, states = model.stream(rng.uniform(-1, 1, (batch, steps, d)).astype(F32))
            s.reset_states(states)
        assert same_states(s.states, states, model)


# --- bad arguments ---------------------------------------------------------------------


def _read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


def test_chunk_forms_converted_give_the_same_bits():
    """A read-only, a strided, a float64 chunk and a nested list are converted (or, read
    only, passed by address) as stream() does: the bits of the float32 chunk."""
    model = keyword_detector()
    chunk = chunks_of(5, 8, 2, 1)[0]
    forms = [
        _read_only(chunk),
        np.repeat(chunk, 2, axis=2)[..., ::2],
        chunk.astype(np.float64),
        chunk.tolist(),
    ]
    want, states = model.stream(chunk)
    want_next, _ = model.stream(chunk, states)
    for form in forms:
        s = model.streamer(batch=2, steps=5)
        assert same_bits(s(form), want)
        assert same_bits(s(form, np.empty(s.output_shape, F32)), want_next)


SHAPE = "chunk must have the streamer's shape"


@pytest.mark.parametrize(
    ("chunk", "exc", "match"),
    [
        (np.zeros((2, 5, 9), F32), ValueError, SHAPE + r".* \(2, 5, 8\), got \(2, 5, 9\)"),
        (np.zeros((1, 5, 8), F32), ValueError, SHAPE + r".*got \(1, 5, 8\)"),
        (np.zeros((2, 6, 8), F32), ValueError, SHAPE + r".*got \(2, 6, 8\)"),
        (np.zeros((10, 8), F32), ValueError, SHAPE + r".*got \(10, 8\)"),
        (np.array([["a"]]), TypeError, "chunk must hold real numbers"),
        ([[1.0], [1.0, 2.0]], ValueError, "chunk is not an array of real numbers"),
        (None, TypeError, "chunk must hold real numbers"),
    ],
    ids=["features", "batch", "steps", "rank", "strings", "ragged", "None"],
)  # fmt: skip
def test_a_bad_chunk_is_refused_naming_it_and_the_states_stay(chunk, exc, match):
    model = keyword_detector()
    frames = chunks_of(5, 8, 2, 3)
    s = model.streamer(batch=2, steps=5)
    _, states = model.stream(frames[0])
    s(frames[0])
    with pytest.raises(exc, match=match):
        s(chunk)
    want, states = model.stream(frames[1], states)
    assert same_bits(s(frames[1]), want)
    assert same_states(s.states, states, model)


BAD_OUT = [
    ("a list", lambda shape: np.zeros(shape).tolist(), TypeError, "out must be a float32"),
    ("float64", lambda shape: np.zeros(shape), TypeError, "out must have dtype float32"),
    ("too long", lambda shape: np.zeros((shape[0] + 1, *shape[1:]), F32), ValueError,
     r"out must have the output's shape \(2, 1, 4\), got \(3, 1, 4\)"),
    ("flat", lambda shape: np.zeros(int(np.prod(shape)), F32), ValueError,
     r"out must have the output's shape \(2, 1, 4\), got \(8,\)"),
    ("non-contiguous", lambda shape: np.zeros((*shape, 2), F32)[..., 0], ValueError,
     "out must be C-contiguous"),
    ("read-only", lambda shape: _read_only(np.zeros(shape, F32)), ValueError,
     "out is read-only"),
]  # fmt: skip


@pytest.mark.parametrize("positional", (False, True), ids=("out=", "out by position"))
@pytest.mark.parametrize(("form", "make_out", "exc", "match"), BAD_OUT, ids=[b[0] for b in BAD_OUT])
def test_a_bad_out_is_refused_naming_out_and_the_states_stay(
    form, make_out, exc, match, positional
):
    model = keyword_detector()
    frames = chunks_of(5, 8, 2, 3)
    s = model.streamer(batch=2, steps=5)
    assert s.output_shape == (2, 1, 4)
    _, states = model.stream(frames[0])
    s(frames[0])
    bad = make_out(s.output_shape)
    with pytest.raises(exc, match=match):
        s(frames[1], bad) if positional else s(frames[1], out=bad)
    want, states = model.stream(frames[1], states)
    assert same_bits(s(frames[1]), want)
    assert same_states(s.states, states, model)


def test_out_sharing_memory_with_the_chunk_is_refused():
    """The library reads the chunk while it writes out: an overlap is refused, a
    neighbour in the same buffer is not."""
    model = nn.Sequential([nn.Dense(4, "tanh", input_dim=4), nn.GRU(4, input_dim=4)])
    s = model.streamer(batch=2, steps=1)
    assert s.output_shape == (2, 4)
    memory = np.ones(16, F32)
    with pytest.raises(ValueError, match="out must not share memory"):
        s(memory[:8].reshape(2, 1, 4), out=memory[4:12].reshape(2, 4))
    with pytest.raises(ValueError, match="out must not share memory"):
        s(memory[:8].reshape(2, 1, 4), memory[:8].reshape(2, 4))
    want, _ = model.stream(memory[:8].reshape(2, 1, 4))
    assert same_bits(s(memory[:8].reshape(2, 1, 4), out=memory[8:].reshape(2, 4)), want)


def test_out_of_an_ndarray_subclass_is_written():
    class Subclass(np.ndarray):
        pass

    model = stateless()
    chunk = chunks_of(3, 4, 1, 1)[0]
    s = model.streamer(steps=3)
    out = np.zeros(s.output_shape, F32).view(Subclass)
    assert s(chunk, out=out) is out
    assert out.tobytes() == model.stream(chunk)[0].tobytes()


def test_bad_states_in_reset_states_name_the_argument_and_change_nothing():
    model = mixed_states()
    frames = chunks_of(1, 3, 2, 3)
    s = model.streamer(batch=2)
    s(frames[0])
    before = s.states
    with pytest.raises(ValueError, match=r"Sequential.streamer.reset_states: states must hold 3"):
        s.reset_states([])
    with pytest.raises(TypeError, match="Sequential.streamer.reset_states: states must be None"):
        s.reset_states(np.zeros((2, 4), F32))
    with pytest.raises(
        ValueError, match=r"states\[1\] \(layers\[2\] \(LSTM\)\) must be a list of 2"
    ):
        s.reset_states([None, [np.zeros((2, 6), F32)], None])
    with pytest.raises(ValueError, match=r"states\[0\] \(layers\[1\] \(GRU\)\)\[0\] \(h\) must"):
        s.reset_states([[np.zeros((1, 4), F32)], None, None])
    assert same_states(s.states, before, model)
    free = stateless().streamer(steps=3)
    assert free.states == []
    free.reset_states([])
    with pytest.raises(ValueError, match="states must hold 0 entries"):
        free.reset_states([None])


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"batch": 0}, ValueError, "batch must be >= 1"),
        ({"steps": 1.5}, TypeError, "steps must be an integer"),
        ({"steps": 4}, ValueError, r"layers\[0\] \(Conv1d\)"),  # a window of 5 frames
        ({"steps": 5, "features": 7}, ValueError, r"layers\[0\] \(Conv1d\) has input_dim=8"),
    ],
)
def test_bad_streamer_arguments_are_named(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        keyword_detector().streamer(**kwargs)


def test_a_layer_that_cannot_stream_is_refused_by_name():
    model = nn.Sequential([nn.Dense(2, input_dim=2), nn.MaxPool1d(2, input_dim=2)])
    with pytest.raises(ValueError, match=r"Sequential.streamer: layers\[1\] \(MaxPool1d\)"):
        model.streamer(steps=4)


def test_features_of_a_model_that_adapts_to_its_input():
    with pytest.raises(ValueError, match="give features="):
        nn.Sequential([nn.Activation("tanh")]).streamer()
    model = nn.Sequential([nn.Activation("tanh"), nn.GRU(3, input_dim=4)])
    s = model.streamer(batch=2)
    assert s.shape == (2, 1, 4)
    only = nn.Sequential([nn.Activation("tanh")]).streamer(features=6)
    x = np.linspace(-2, 2, 6, dtype=F32).reshape(1, 1, 6)
    assert same_bits(only(x), only._model.stream(x)[0])


# --- the model's layers change between calls -------------------------------------------


def test_weights_set_between_calls_are_used():
    model = keyword_detector()
    frames = chunks_of(5, 8, 1, 6)
    s = model.streamer(steps=5)
    states = None
    for i, chunk in enumerate(frames):
        if i == 3:
            randomize(model, np.random.default_rng(9))
        want, states = model.stream(chunk, states)
        assert same_bits(s(chunk), want), i


def test_a_re_created_handle_is_followed_and_the_states_carried():
    """An adaptive Activation called on another size gets a new native handle (the old
    one destroyed): the streamer makes its chain again and carries its states, as does
    the model's own stream() on another chunk shape in between."""
    act = nn.Activation("tanh")
    model = nn.Sequential(
        [nn.GRU(3, input_dim=2, return_sequences=True), act, nn.Dense(2, input_dim=3)]
    )
    frames = chunks_of(1, 2, 1, 8)
    s = model.streamer()
    states = None
    for i, chunk in enumerate(frames):
        if i % 2:
            act(np.ones((1, 3 + i), F32))  # a new handle for another size
        if i == 5:
            model.stream(np.ones((2, 4, 2), F32))  # stream()'s own chain, another shape
        want, states = model.stream(chunk, states)
        assert same_bits(s(chunk, np.empty(s.output_shape, F32)), want), i
        assert same_states(s.states, states, model), i


def test_a_replaced_layer_is_followed():
    """A layer of model.layers replaced: by one with the same states, the states carry
    over; by one with other states, calls raise until reset_states()."""
    model = mixed_states()
    frames = chunks_of(1, 3, 1, 6)
    s = model.streamer()
    want, states = model.stream(frames[0])
    assert same_bits(s(frames[0]), want)
    model.layers[3] = nn.LayerNorm(6)  # no states: the layout stays
    randomize(model, np.random.default_rng(7))
    want, states = model.stream(frames[1], states)
    assert same_bits(s(frames[1]), want)
    model.layers[4] = nn.RNN(5, input_dim=6, return_sequences=True)  # a wider state
    for _ in range(2):
        with pytest.raises(ValueError, match=r"layers with states changed.*reset_states\(\)"):
            s(frames[2])
    s.reset_states()
    assert s.output_shape == (1, 1, 5)
    want, states = model.stream(frames[2])
    assert same_bits(s(frames[2]), want)
    assert same_states(s.states, states, model)


def test_a_closed_layer_or_model_is_refused_every_call():
    model = keyword_detector()
    frames = chunks_of(5, 8, 1, 2)
    s = model.streamer(steps=5)
    out = np.empty(s.output_shape, F32)
    s(frames[0], out)
    model.layers[3].close()
    for _ in range(2):
        with pytest.raises(RuntimeError, match="GRU was closed"):
            s(frames[1], out)
        with pytest.raises(RuntimeError, match="GRU was closed"):
            s(frames[1])
    other = keyword_detector()
    t = other.streamer(steps=5)
    other.close()
    with pytest.raises(RuntimeError, match="was closed"):
        t(frames[0])


def test_close_and_the_context_manager():
    model = stateless()
    chunk = chunks_of(3, 4, 1, 1)[0]
    with model.streamer(steps=3) as s:
        y = s(chunk)
    assert same_bits(y, model.stream(chunk)[0])
    for call in (lambda: s(chunk), lambda: s(chunk, y), lambda: s.states, s.reset_states):
        with pytest.raises(RuntimeError, match="the streamer was closed"):
            call()
    s.close()  # again: nothing
    assert "closed" in repr(s)
    assert same_bits(model.stream(chunk)[0], y)  # the model is the caller's still
