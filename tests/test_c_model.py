"""The C model (nntk/model.h) against the Python Sequential, through ctypes.

A model saved by Python (Sequential.save) loads in C and gives bitwise the same
inference output, the same losses and the same weights after training steps; the
file C saves is the very bytes Python saves for the same model and optimizer state,
and nn.load reads it. Networks: the keyword detector, its bidirectional variant and
the causal-conv + SimpleRNN classifier (whose Dense(softmax) head takes Keras's
logits path), with Adam, Adam(amsgrad) and SGD(momentum, nesterov). The loader
refuses every damaged file nn.load refuses (the same files), naming the problem,
and accepts exactly the mutated configs nn.load accepts; a step allocates nothing."""

from __future__ import annotations

import ctypes
import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_keras_io import _live_allocations
from test_model_api import data, keyword_detector
from test_model_file import _WHOLE as DETECTOR_FILE  # the keyword detector after an Adam step
from test_model_file import DAMAGED, FUZZ, mutated_config

import nntk_core as nn
from nntk_core import model_file
from nntk_core._native import NNTKError
from nntk_core.c_model import CModel
from parity.damaged_model_files import (
    c_message_problem,
    repack,
    split,
    valid_file_problems,
    valid_files,
)

FLOAT_PTR = ctypes.POINTER(ctypes.c_float)


def bidirectional_detector():
    return nn.Sequential(
        [
            nn.Conv1d(5, 3, input_dim=6, padding="same"),
            nn.BatchNorm(5),
            nn.Activation("relu"),
            nn.Bidirectional(nn.LSTM(4, input_dim=5, return_sequences=True)),
            nn.TimeDistributedDense(2, input_dim=8, activation="softmax"),
        ]
    )


def causal_rnn_classifier():
    """Conv1d(causal, dilated) -> SimpleRNN -> Dense(softmax): the last step only, and
    Keras's logits path through the Dense's twin."""
    return nn.Sequential(
        [
            nn.Conv1d(5, 3, input_dim=6, padding="causal", dilation_rate=2, activation="relu"),
            nn.RNN(4, input_dim=5),
            nn.Dense(2, input_dim=4, activation="softmax"),
        ]
    )


def activation_head():
    """Dense -> Activation("softmax"): the logits are the Activation's input."""
    return nn.Sequential(
        [
            nn.Dense(3, input_dim=6),
            nn.Activation("tanh"),
            nn.Dense(2, input_dim=3),
            nn.Activation("softmax"),
        ]
    )


NETWORKS = {
    "keyword": (keyword_detector, 8),
    "bidirectional": (bidirectional_detector, 8),
    "causal_rnn": (causal_rnn_classifier, None),  # (batch, classes) targets
    "activation_head": (activation_head, 8),
}
OPTIMIZERS = {
    "adam": lambda: nn.optimizers.Adam(learning_rate=1e-2),
    "amsgrad": lambda: nn.optimizers.Adam(learning_rate=1e-2, amsgrad=True),
    "sgd_nesterov": lambda: nn.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
}


def network_data(name: str, batch: int = 3, steps: int = 8, seed: int = 0):
    x, y = data(batch=batch, steps=steps, seed=seed)
    if NETWORKS[name][1] is None:
        y = y[:, -1]
    return x, y


def trained(name: str, optimizer, tmp_path, steps: int = 1):
    """The network after `steps` Python steps, saved with its optimizer; (model, path)."""
    nn.set_random_seed(3)
    model = NETWORKS[name][0]()
    x, y = network_data(name, seed=1)
    for _ in range(steps):
        model.train_step(x, y, nn.losses.CategoricalCrossentropy(), optimizer)
    path = tmp_path / f"{name}.nntk"
    model.save(path, optimizer=optimizer)
    return model, path


def flat(weights) -> np.ndarray:
    return np.concatenate([w.ravel() for w in weights])


@pytest.mark.parametrize("name", list(NETWORKS))
def test_inference_is_bitwise_pythons(name, tmp_path):
    model, path = trained(name, nn.optimizers.Adam(), tmp_path)
    with CModel(path, 4, 10) as native:
        assert native.describe() == (len(model.layers), 6, flat(model.get_weights()).size)
        np.testing.assert_array_equal(native.weights(), flat(model.get_weights()))
        for batch, steps in ((3, 8), (1, 10), (4, 3)):
            x, _ = network_data(name, batch, steps, seed=batch)
            expected = model(x)
            got = native(x)
            np.testing.assert_array_equal(got.reshape(expected.shape), expected)


def test_stream_frame_by_frame_is_bitwise_the_whole_sequence(tmp_path):
    """NNTKModelStream on a loaded keyword detector (Conv1d padding valid, kernel 3: each
    frame's 3-frame window), the states carried: the whole-sequence inference bit for
    bit, and Python's Sequential.stream's states bit for bit."""
    nn.set_random_seed(4)
    model = keyword_detector(padding="valid")
    x, y = data(batch=2, steps=8, seed=2)
    model.train_step(x, y[:, 2:], nn.losses.CategoricalCrossentropy(), nn.optimizers.Adam())
    model.save(tmp_path / "valid.nntk")
    whole = model(x)
    with CModel(tmp_path / "valid.nntk", 2, 3) as native:
        assert native.state_width() == 4 + 4  # the two GRUs' h
        states, py_states, frames = None, None, []
        for i in range(6):
            out, states = native.stream(x[:, i : i + 3], states)
            py_out, py_states = model.stream(x[:, i : i + 3], py_states)
            np.testing.assert_array_equal(out, py_out)
            np.testing.assert_array_equal(states, np.concatenate([s[0].ravel() for s in py_states]))
            frames.append(out)
        np.testing.assert_array_equal(np.concatenate(frames, axis=1), whole)
        chunk, out = np.ascontiguousarray(x[:, :4]), np.zeros((2, 2, 2), np.float32)
        with pytest.raises(NNTKError, match=r"NNTKModelStream: steps must be <= 3"):
            nn.lib.NNTKModelStream(  # beyond the capacity: refused, nothing written
                native.handle, 2, 4, chunk.ctypes.data_as(FLOAT_PTR), None,
                out.ctypes.data_as(FLOAT_PTR), None,
            )  # fmt: skip
        assert not out.any()


def test_a_model_that_cannot_stream_is_refused_naming_the_layer(tmp_path):
    model, path = trained("bidirectional", nn.optimizers.Adam(), tmp_path)
    with CModel(path, 3, 8) as native:
        x = network_data("bidirectional")[0]
        np.testing.assert_array_equal(native(x), model(x))  # loaded and runs all the same
        with pytest.raises(NNTKError, match=r"NNTKModelStreamStates: .*layers\[0\] \(Conv1d\)"):
            native.state_width()


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("name", list(NETWORKS))
def test_training_steps_are_bitwise_pythons_and_save_writes_pythons_bytes(
    name, optimizer, tmp_path
):
    python_optimizer = OPTIMIZERS[optimizer]()
    model, path = trained(name, python_optimizer, tmp_path)
    loss = nn.losses.CategoricalCrossentropy()
    with CModel(path, 3, 8) as native:
        native.save(tmp_path / "unchanged.nntk")  # load -> save: the same bytes
        assert (tmp_path / "unchanged.nntk").read_bytes() == path.read_bytes()
        for step in range(3):
            x, y = network_data(name, seed=10 + step)
            assert native.train_step(x, y, loss) == model.train_step(x, y, loss, python_optimizer)
            np.testing.assert_array_equal(native.weights(), flat(model.get_weights()))
        assert native.iterations() == python_optimizer.iterations == 4
        native.save(tmp_path / "c.nntk")
    model.save(tmp_path / "python.nntk", optimizer=python_optimizer)
    assert (tmp_path / "c.nntk").read_bytes() == (tmp_path / "python.nntk").read_bytes()
    # nn.load reads the C file, and its restored optimizer continues bit for bit
    loaded = nn.load(tmp_path / "c.nntk")
    x, y = network_data(name, seed=20)
    assert loaded.train_step(x, y, loss, loaded.optimizer) == model.train_step(
        x, y, loss, python_optimizer
    )
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_new_optimizer_from_c_trains_and_saves_as_python(tmp_path):
    """NNTKModelSetOptimizerAdam on a file saved without an optimizer: the steps and
    the saved file are Python's for Adam(learning_rate=0.003, epsilon=1e-5)."""
    nn.set_random_seed(5)
    model = keyword_detector()
    model.save(tmp_path / "bare.nntk")
    loss = nn.losses.CategoricalCrossentropy()
    with CModel(tmp_path / "bare.nntk", 3, 8) as native:
        x, y = network_data("keyword")
        with pytest.raises(NNTKError, match="NNTKModelTrainStep: model has no optimizer"):
            native.train_step(x, y, loss)
        native.save(tmp_path / "c0.nntk")  # no optimizer: the same file
        assert (tmp_path / "c0.nntk").read_bytes() == (tmp_path / "bare.nntk").read_bytes()
        nn.lib.NNTKModelSetOptimizerAdam(native.handle, 0.003, 0.9, 0.999, 1e-5, 0)
        python_optimizer = nn.optimizers.Adam(learning_rate=0.003, epsilon=1e-5)
        native.save(tmp_path / "c1.nntk")  # before its first step: variable_shapes null
        model.save(tmp_path / "p1.nntk", optimizer=python_optimizer)
        assert (tmp_path / "c1.nntk").read_bytes() == (tmp_path / "p1.nntk").read_bytes()
        for _ in range(2):
            assert native.train_step(x, y, loss) == model.train_step(x, y, loss, python_optimizer)
        native.save(tmp_path / "c2.nntk")
    model.save(tmp_path / "p2.nntk", optimizer=python_optimizer)
    assert (tmp_path / "c2.nntk").read_bytes() == (tmp_path / "p2.nntk").read_bytes()


def test_mean_squared_error_and_a_version_1_file(tmp_path):
    """A version 1 file (no optimizer section) loads; MSE steps match Python's."""
    nn.set_random_seed(7)
    model = nn.Sequential([nn.Dense(3, input_dim=6), nn.LayerNorm(3), nn.Dense(2, input_dim=3)])
    whole = model_file.encode(model)
    path = tmp_path / "v1.nntk"
    path.write_bytes(repack(whole, version=1, layout=1))
    loss = nn.losses.MeanSquaredError()
    optimizer = nn.optimizers.SGD(learning_rate=0.1)
    x = np.random.default_rng(2).standard_normal((3, 5, 6)).astype(np.float32)
    y = np.random.default_rng(3).standard_normal((3, 5, 2)).astype(np.float32)
    with CModel(path, 3, 5) as native:
        nn.lib.NNTKModelSetOptimizerSGD(native.handle, 0.1, 0.0, 0)
        for _ in range(2):
            assert native.train_step(x, y, loss) == model.train_step(x, y, loss, optimizer)
        np.testing.assert_array_equal(native.weights(), flat(model.get_weights()))


def test_a_step_allocates_nothing_and_capacity_is_enforced(tmp_path):
    _, path = trained("keyword", nn.optimizers.Adam(), tmp_path)
    loss = nn.losses.CategoricalCrossentropy()
    with CModel(path, 4, 8) as native:
        x, y = network_data("keyword", batch=4, steps=8)
        native.train_step(x, y, loss)  # a first step at full capacity
        native(x)
        nn.lib.NNTKMemoryResetPeak()
        before = _live_allocations()
        for batch, steps in ((4, 8), (1, 3), (2, 8)):
            x, y = network_data("keyword", batch=batch, steps=steps)
            native.train_step(x, y, loss)
            native(x)
        current, peak = ctypes.c_int64(), ctypes.c_int64()
        nn.lib.NNTKMemoryStats(ctypes.byref(current), ctypes.byref(peak))
        assert (current.value, peak.value) == (before, before)
        weights = native.weights()
        for batch, steps, named in ((5, 8, "batch"), (4, 9, "steps")):
            x, y = network_data("keyword", batch=batch, steps=steps)
            with pytest.raises(NNTKError, match=rf"NNTKModelTrainStep: {named} must be <="):
                native.train_step(x, y, loss)
            out = np.empty((batch, steps, 2), np.float32)
            with pytest.raises(NNTKError, match=rf"NNTKModelApplyInference: {named} must be <="):
                nn.lib.NNTKModelApplyInference(
                    native.handle,
                    batch,
                    steps,
                    x.ctypes.data_as(FLOAT_PTR),
                    out.ctypes.data_as(FLOAT_PTR),
                )
        # a refused step (a target of the wrong kind of loss) changes nothing
        x, y = network_data("keyword", batch=2, steps=4)
        with pytest.raises(NNTKError, match="from_logits"):
            nn.lib.NNTKModelTrainStep(
                native.handle,
                0,
                1,
                2,
                4,
                x.ctypes.data_as(FLOAT_PTR),
                y.ctypes.data_as(FLOAT_PTR),
                ctypes.byref(ctypes.c_float()),
            )
        np.testing.assert_array_equal(native.weights(), weights)


# -- damaged files: the same ones nn.load refuses (tests/test_model_file.py) ---------------------
@pytest.mark.parametrize("name", list(DAMAGED))
def test_a_damaged_file_is_refused_naming_its_problem(name, tmp_path):
    content, message = DAMAGED[name]
    path = tmp_path / "damaged"
    path.write_bytes(content)
    before = _live_allocations()
    with pytest.raises(NNTKError) as refused:
        CModel(path, 2, 4)
    assert refused.value.status == "NNTK_ERROR_INVALID_ARGUMENT"
    assert refused.value.message.startswith(f"NNTKModelLoad: path '{path}': ")
    assert c_message_problem(name, message, refused.value.message) is None, refused.value.message
    assert _live_allocations() == before


@pytest.mark.parametrize("name", list(valid_files()))
def test_a_valid_file_is_read_with_its_weights(name, tmp_path):
    """The JSON spelled otherwise than nn.save spells it, a wrapper's file: the C loader
    reads the weights, leaves the last error clear, and predicts as nn.load's model."""
    content, weights = valid_files()[name]
    path = tmp_path / "valid"
    path.write_bytes(content)
    assert valid_file_problems(path, weights) == []
    model = nn.load(path)
    x = np.linspace(-1, 1, 2 * 3 * model.layers[0].input_dim, dtype=np.float32)
    x = x.reshape(2, 3, -1)
    expected = model(x)
    model.close()
    with CModel(path, 2, 3) as native:  # (batch, out_steps, features): out_steps 1 kept
        np.testing.assert_array_equal(native(x).reshape(expected.shape), expected)


def test_truncation_at_every_byte_and_bad_paths(tmp_path):
    _, path = trained("causal_rnn", nn.optimizers.SGD(), tmp_path)
    whole = path.read_bytes()
    cut = tmp_path / "cut"
    for size in range(len(whole)):
        cut.write_bytes(whole[:size])
        with pytest.raises(NNTKError, match="truncated"):
            CModel(cut, 1, 1)
    for target, message in ((tmp_path / "missing", "no such file"), (tmp_path, "is a directory")):
        with pytest.raises(NNTKError, match=f"path '{target}': {message}"):
            CModel(target, 1, 1)
    with CModel(path, 1, 1) as native:
        with pytest.raises(NNTKError, match="is a directory"):
            native.save(tmp_path)
        with pytest.raises(NNTKError, match="no directory"):
            native.save(tmp_path / "missing" / "model.nntk")
        os.chmod(tmp_path, 0o500)  # a save that cannot write leaves the file as it was
        try:
            if not os.access(tmp_path, os.W_OK):  # (root writes anyway)
                with pytest.raises(NNTKError, match="cannot create a temporary file"):
                    native.save(path)
        finally:
            os.chmod(tmp_path, 0o700)
    assert path.read_bytes() == whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["causal_rnn.nntk", "cut"]


@FUZZ
@given(draws=st.data())
def test_c_accepts_exactly_the_mutated_configs_python_accepts(draws, tmp_path_factory):
    """The checksum recomputed (tests/test_model_file.py's config mutations): C loads
    a mutated file iff nn.load does, and then holds the same weights."""
    content = mutated_config(draws, DETECTOR_FILE)
    path = tmp_path_factory.mktemp("mutated") / "m.nntk"
    path.write_bytes(content)
    try:
        python = model_file.decode(content)
    except model_file.ModelFileError as exc:
        python_error = str(exc)
        python = None
    try:
        native = CModel(path, 2, 8)
    except NNTKError as exc:
        assert python is None, f"C refused what nn.load accepts: {exc.message}"
        return
    with native:
        assert python is not None, f"C accepted what nn.load refuses: {python_error}"
        np.testing.assert_array_equal(native.weights(), flat(python.get_weights()))
        x, _ = network_data("keyword", 2, 8)
        np.testing.assert_array_equal(native(x), python(x))
    python.close()


def test_the_layers_text_is_kept_verbatim(tmp_path):
    """A file whose JSON is spaced otherwise (any JSON loads) keeps its layers' text;
    the rest is written in json.dumps's form."""
    _, path = trained("keyword", nn.optimizers.SGD(), tmp_path)
    whole = path.read_bytes()
    config = json.loads(split(whole)[1])
    spaced = json.dumps(config, indent=2).encode()
    (tmp_path / "spaced.nntk").write_bytes(repack(whole, config=spaced))
    with CModel(tmp_path / "spaced.nntk", 1, 4) as native:
        native.save(tmp_path / "again.nntk")
    again = json.loads(split((tmp_path / "again.nntk").read_bytes())[1])
    assert again == config
    start = spaced.index(b'"layers": ') + len(b'"layers": ')
    layers_text = spaced[start : spaced.index(b',\n  "optimizer"')]
    assert split((tmp_path / "again.nntk").read_bytes())[1].startswith(
        b'{"layers": ' + layers_text + b', "optimizer": {"type": "SGD", "config": {'
    )
