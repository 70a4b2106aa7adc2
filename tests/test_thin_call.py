"""The thin layer call (issue 16, part 4), for every class in `nntk_core.LAYER_CLASSES`
(built from its parity spec, see test_bad_input.make) and every streaming recurrent
layer: `out=` receives, bit for bit, what the call returns without it; a returned
array is never overwritten by a later call that was not given it; the fast paths
(a C-contiguous float32 input, stream()'s own state list, the remembered output
shapes, the call prepared for an input shape) and the full ones (a conversion, a state
list in another form, a read-only array) give the same bits; after a prepared call,
every other input gets what a fresh layer gives it (the same bits, or the same error
naming the argument); a bad `out` raises an error naming out.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_bad_input import NAMES, as_list, backward, make, upstream_for
from test_recurrent_api import CELLS, build

import nntk_core as nn


def out_for(layer, outputs: list[np.ndarray]) -> np.ndarray:
    """An `out` for a call that returned `outputs`, filled with NaN: the output's shape,
    or (2, *shape) for Bidirectional's two outputs (merge_mode None)."""
    n_states = len(layer.state_names()) if getattr(layer, "return_state", False) else 0
    n_out = len(outputs) - n_states
    shape = outputs[0].shape if n_out == 1 else (n_out, *outputs[0].shape)
    return np.full(shape, np.nan, np.float32)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("training", (False, True))
def test_out_receives_the_output_bit_for_bit(name, training):
    """layer(x, out=out) writes the output into out and returns it (the outputs as its
    views), with every other returned array and a later backward() as without out."""
    layer, x, _ = make(name)
    weights = layer.get_weights()
    rng = np.random.default_rng(2)
    plain = as_list(layer(x, training=training))
    dys = upstream_for(plain, rng)
    plain_grads = backward(layer, dys) if training else None
    layer.set_weights(weights)  # BatchNorm's training call updated its moving statistics
    out = out_for(layer, plain)
    given = as_list(layer(x, training=training, out=out))
    n_out = out.shape[0] if out.ndim > plain[0].ndim else 1
    assert given[0] is out if n_out == 1 else all(g.base is out for g in given[:n_out])
    for g, p in zip(given, plain, strict=True):
        assert g.tobytes() == p.tobytes()
    if training:
        for g, p in zip(backward(layer, dys)[:2], plain_grads[:2], strict=True):
            for a, b in zip(as_list(g), as_list(p), strict=True):
                assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("name", NAMES)
def test_a_returned_output_is_not_overwritten_by_the_next_call(name):
    """Without out, each call returns a new array: the next call, on another input,
    leaves the first result as it was."""
    layer, x, _ = make(name)
    first = [y.copy() for y in as_list(layer(x))]
    kept = as_list(layer(x))
    as_list(layer(x[::-1] * 0.5))
    for k, f in zip(kept, first, strict=True):
        assert k.tobytes() == f.tobytes()


@pytest.mark.parametrize("spec", CELLS, ids=lambda s: s.name)
def test_stream_with_out_and_each_state_form_gives_the_same_bits(spec):
    """Streaming frame by frame into one out array, with the state list stream()
    returned (the fast path) or the same states as a tuple of float64 arrays, as
    read-only arrays or as non-contiguous views (the full checks and conversion),
    reproduces the whole-sequence call bit for bit."""
    layer = build(spec, 6, 3, return_sequences=True, return_state=True, go_backwards=False)
    x = np.random.default_rng(4).uniform(-1, 1, (2, 12, 3)).astype(np.float32)
    whole, *whole_state = layer(x)
    forms = {
        "as returned": lambda state: state,
        "tuple of float64": lambda state: tuple(s.astype(np.float64) for s in state),
        "read-only": lambda state: [_read_only(s) for s in state],
        "non-contiguous": lambda state: [np.repeat(s, 2, axis=1)[:, ::2] for s in state],
    }
    for form, convert in forms.items():
        out = np.empty((2, 1, 6), np.float32)
        state, frames = None, []
        for t in range(x.shape[1]):
            given = None if state is None else convert(state)
            y, state = layer.stream(x[:, t : t + 1], given, out=out)
            assert y is out, form
            frames.append(y.copy())
        assert np.concatenate(frames, axis=1).tobytes() == whole.tobytes(), form
        for s, w in zip(state, whole_state, strict=True):
            assert s.tobytes() == w.tobytes(), form


class _Subclass(np.ndarray):
    pass


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.array(a, np.float32)
    a.setflags(write=False)
    return a


def _outcome(call):
    """What a call gives: ("ok", its outputs' bytes), or (exception type, message)."""
    try:
        return "ok", [y.tobytes() for y in as_list(call())]
    except Exception as e:  # the outcome compared, whatever it is
        return type(e), str(e)


def _forms(x: np.ndarray) -> dict:
    """Inputs of x's shape in every form, and the usual wrong ones."""
    wide = np.repeat(x, 2, axis=-1)
    return {
        "new values": (x * 0.5 + 0.25).astype(np.float32),
        "float64": x.astype(np.float64),
        "int": np.round(x * 4).astype(np.int32),
        "list": x.tolist(),
        "non-contiguous": wide[..., ::2],
        "fortran": np.asfortranarray(x),
        "read-only": _read_only(x),
        "big-endian": x.astype(">f4"),
        "subclass": x.view(_Subclass),
        "masked": np.ma.masked_array(x),
        "complex": x.astype(np.complex64),
        "one feature more": np.concatenate([x, x[..., :1]], axis=-1),
        "one feature less": x[..., :-1],
        "no batch": x[:0],
        "one rank less": x[0],
        "one rank more": x[None],
    }


@pytest.mark.parametrize("name", NAMES)
def test_a_prepared_call_gives_every_input_what_a_fresh_layer_gives(name):
    """After an inference call prepared the call for x's shape, each form of input (of
    that shape, converted, or wrong), with training given as True, 1 or np.False_, or
    with a bad out, gets what the same layer gets on its first call: the same bits, or
    the same exception and message."""
    layer, x, _ = make(name)
    weights = layer.get_weights()
    y = as_list(layer(x))
    # The call prepared, what is under test: all but Bidirectional's two outputs and
    # BatchNorm's call, which keeps its input for backward() (a frozen batch).
    two_outputs = out_for(layer, y).ndim > y[0].ndim
    assert (x.shape in layer._calls) is not (two_outputs or layer._keeps_for_backward(False))
    calls = {f"x {form}": (v, {}) for form, v in _forms(x).items()}
    for flag in (True, 1, np.False_):
        calls[f"training={flag!r}"] = (x, {"training": flag})
    for form, make_out, _exc, _match in BAD_OUT:
        calls[f"out {form}"] = (x, {"out": make_out(y[0].shape)})
    for what, (arg, kwargs) in calls.items():
        fresh = make(name)[0]
        want = _outcome(lambda fresh=fresh, arg=arg, kwargs=kwargs: fresh(arg, **kwargs))
        got = _outcome(lambda arg=arg, kwargs=kwargs: layer(arg, **kwargs))
        assert got == want, what
        fresh.close()
        layer.set_weights(weights)  # a training call's update (BatchNorm's statistics)


def test_read_only_input_gives_the_writable_result():
    """A read-only C-contiguous float32 input (passed by address, not over its buffer)
    gives what a writable one gives."""
    layer = nn.Dense(5, input_dim=4)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    assert layer(_read_only(x)).tobytes() == layer(x).tobytes()


def test_output_shapes_are_asked_per_size_and_errors_are_not_remembered():
    """A Conv1d called with more input lengths than the layer remembers gives each its
    own output length, and a too-short input is refused every time."""
    layer = nn.Conv1d(2, 3, input_dim=1, padding="valid")
    for steps in list(range(3, 140)) + [3, 50, 7]:
        assert layer(np.ones((1, steps, 1), np.float32)).shape == (1, steps - 2, 2)
    for _ in range(2):
        with pytest.raises(ValueError, match="shorter than the effective kernel"):
            layer(np.ones((1, 2, 1), np.float32))


def test_activation_output_follows_its_input_size_after_a_change():
    """Activation without input_dim re-creates its handle for a new feature size: the
    remembered output shapes go with the old handle."""
    layer = nn.Activation("relu")
    for features in (3, 5, 3):
        assert layer(np.ones((2, features), np.float32)).shape == (2, features)


BAD_OUT = [
    ("a list", lambda shape: np.zeros(shape).tolist(), TypeError, "out must be a float32"),
    ("float64", lambda shape: np.zeros(shape), TypeError, "out must have dtype float32"),
    ("too long", lambda shape: np.zeros((shape[0] + 1, *shape[1:]), np.float32), ValueError,
     r"out must have the output's shape \(3, 5\), got \(4, 5\)"),
    ("non-contiguous", lambda shape: np.zeros((*shape, 2), np.float32)[..., 0], ValueError,
     "out must be C-contiguous"),
    ("read-only", lambda shape: _read_only(np.zeros(shape, np.float32)), ValueError,
     "out is read-only"),
]  # fmt: skip


@pytest.mark.parametrize(("form", "make_out", "exc", "match"), BAD_OUT, ids=[b[0] for b in BAD_OUT])
def test_bad_out_is_refused_naming_out(form, make_out, exc, match):
    layer = nn.Dense(5, input_dim=4)
    x = np.ones((3, 4), np.float32)
    with pytest.raises(exc, match=match):
        layer(x, out=make_out((3, 5)))
    gru = nn.GRU(5, input_dim=4, return_sequences=False)
    with pytest.raises(exc, match=match):
        gru.stream(x[:, None], out=make_out((3, 5)))


@pytest.mark.parametrize("prepared", (False, True), ids=("first call", "prepared call"))
def test_out_sharing_memory_with_the_input_or_a_state_is_refused(prepared):
    """The library reads the input and the initial state while it writes out."""
    layer = nn.Dense(4, input_dim=4)
    x = np.ones((3, 4), np.float32)
    if prepared:
        layer(x)
    with pytest.raises(ValueError, match="out must not share memory"):
        layer(x, out=x)
    overlapping = np.ones(16, np.float32)
    with pytest.raises(ValueError, match="out must not share memory"):
        layer(overlapping[:12].reshape(3, 4), out=overlapping[4:].reshape(3, 4))
    layer(overlapping[:12].reshape(3, 4), out=np.ones(12, np.float32).reshape(3, 4))
    gru = nn.GRU(4, input_dim=4, return_sequences=False)
    _, state = gru.stream(x[:, None])
    with pytest.raises(ValueError, match="out must not share memory"):
        gru.stream(x[:, None], state, out=state[0])


def test_out_of_an_ndarray_subclass_is_accepted():
    """The fast test takes an exact ndarray; a subclass (np.memmap, ...) otherwise right
    goes through the full checks and is written all the same."""

    class Subclass(np.ndarray):
        pass

    layer = nn.Dense(5, input_dim=4)
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    out = np.zeros((3, 5), np.float32).view(Subclass)
    assert layer(x, out=out) is out
    assert out.tobytes() == layer(x).tobytes()


def test_a_model_stream_follows_a_layer_re_created_between_chunks():
    """Sequential.stream's native chain is made over the layers' handles: after one of
    them is re-created (an adaptive Activation called on another size), the next chunk
    still gives what it gave before, and after a layer is closed stream() refuses."""
    act = nn.Activation("tanh")
    model = nn.Sequential(
        [nn.GRU(3, input_dim=2, return_sequences=True), act, nn.Dense(2, input_dim=3)]
    )
    chunk = np.random.default_rng(3).uniform(-1, 1, (1, 2, 2)).astype(np.float32)
    first, states = model.stream(chunk)
    again, _ = model.stream(chunk, states)
    for size in (5, 3, 7):
        act(np.ones((1, size), np.float32))  # a new handle for 5 and 7 features
        y, _ = model.stream(chunk)
        assert y.tobytes() == first.tobytes(), size
        y, _ = model.stream(chunk, states)
        assert y.tobytes() == again.tobytes(), size
    model.layers[2].close()
    with pytest.raises(RuntimeError, match="was closed"):
        model.stream(chunk)


def test_a_closed_adaptive_activation_stays_closed_for_a_new_size():
    """Closing an adaptive Activation is final: a call, stream() or a streamer at a new
    feature size is refused, not answered by a re-created handle."""
    act = nn.Activation("relu")
    act(np.ones((2, 3), np.float32))
    act.close()
    for size in (3, 5):
        with pytest.raises(RuntimeError, match="Activation was closed"):
            act(np.ones((2, size), np.float32))
    model = nn.Sequential([nn.Activation("tanh"), nn.Dense(2, input_dim=4)])
    chunk = np.ones((1, 2, 4), np.float32)
    model.stream(chunk)
    model.layers[0].close()
    with pytest.raises(RuntimeError, match="Activation was closed"):
        model.stream(chunk)
    with pytest.raises(RuntimeError, match="Activation was closed"):
        model.streamer(steps=2, features=4)
