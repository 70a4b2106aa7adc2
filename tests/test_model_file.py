"""The nntk model file (nntk_core/model_file.py, docs/MODEL_FILE.md): save -> load is
bit for bit for every layer type the library describes; a save is atomic; a damaged
file (truncated at any byte, mutated, of another version, of the wrong shapes) raises
ModelFileError naming the problem, never anything else, and builds nothing."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_keras_io import _live_allocations
from test_model_api import data, keyword_detector

import nntk_core as nn
from nntk_core import _native, model_file
from parity.damaged_model_files import (
    config_of,
    damaged,
    randomize,
    repack,
    small_file,
    trained_small_model,
)

TYPES = list(_native.LAYERS.values())
# The layer types a wrapper (Bidirectional) can take: the ones with states.
WRAPPABLE = [t for t in TYPES if t.has_states and not t.wraps]


def required_arguments(cls) -> dict:
    """A layer type's required constructor arguments, sizes 3 (an enum's second name)."""
    return {
        f.name: (3 if f.kind == _native.FIELD_INT else f.enum_names[1])
        for f in cls.layer_type.fields
        if f.required and f.name not in cls._defaults
    }


def other_value(field: _native.Field):
    """A legal value of an optional field other than its default."""
    if field.kind == _native.FIELD_BOOL:
        return not field.default
    if field.kind == _native.FIELD_ENUM:
        return next(n for n in field.enum_names if n != field.default)
    if field.kind == _native.FIELD_INT:  # None: a value of its own (a pool's strides)
        return 3 if field.default is None else field.default + 1
    low = field.min if np.isfinite(field.min) else field.default - 1.0
    return (low + field.default) / 2  # inside the range: between its bound and the default


def variants(layer_type) -> list[tuple[str, dict]]:
    """(id, constructor arguments): the required ones, then each optional field changed."""
    cls = nn.LAYER_CLASSES[layer_type.name]
    base = required_arguments(cls)
    found = [("defaults", base)]
    for field in layer_type.fields:
        if field.name in cls._defaults:  # made optional by the class (Activation's input_dim)
            found.append((f"{field.name}=3", {**base, field.name: 3}))
        elif not field.required:
            found.append(
                (f"{field.name}={other_value(field)!r}", {**base, field.name: other_value(field)})
            )
    return found


def layer_cases():
    for layer_type in TYPES:
        if layer_type.wraps:
            for inner in WRAPPABLE:
                for merge in layer_type.fields[0].enum_names:
                    if merge != "none":  # two outputs: not a step of a Sequential
                        yield pytest.param(
                            layer_type,
                            inner,
                            {"merge_mode": merge},
                            id=f"{layer_type.name}({inner.name})-{merge}",
                        )
            continue
        for variant, arguments in variants(layer_type):
            yield pytest.param(layer_type, None, arguments, id=f"{layer_type.name}-{variant}")


def build(layer_type, inner, arguments) -> nn.Sequential:
    cls = nn.LAYER_CLASSES[layer_type.name]
    if inner is not None:
        inner_cls = nn.LAYER_CLASSES[inner.name]
        return nn.Sequential([cls(inner_cls(**required_arguments(inner_cls)), **arguments)])
    return nn.Sequential([cls(**arguments)])


def same_bits(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert [w.shape for w in a] == [w.shape for w in b]
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype == np.float32 and x.tobytes() == y.tobytes()


@pytest.mark.parametrize(("layer_type", "inner", "arguments"), list(layer_cases()))
def test_every_layer_type_round_trips_bit_for_bit(layer_type, inner, arguments, tmp_path):
    """Config, weights and output of the loaded model are the saved one's, bit for bit,
    and saving it again gives the same bytes."""
    model = build(layer_type, inner, arguments)
    randomize(model)
    path = tmp_path / "model"
    model.save(path)
    loaded = nn.load(path)
    assert repr(loaded) == repr(model)
    same_bits(loaded.get_weights(), model.get_weights())
    x = np.random.default_rng(1).standard_normal((2, 7, model.layers[0].input_dim))
    np.testing.assert_array_equal(loaded(x), model(x))
    loaded.save(tmp_path / "again")
    assert (tmp_path / "again").read_bytes() == path.read_bytes()


def test_the_keyword_detector_trained_with_adam_round_trips(tmp_path):
    """After 3 Adam steps (BatchNorm moving statistics moved), the loaded model holds
    every weight and statistic bit for bit and predicts the same."""
    model = keyword_detector()
    x, y = data()
    before = model.get_weights()
    optimizer = nn.optimizers.Adam(learning_rate=1e-2)
    loss = nn.losses.CategoricalCrossentropy()
    for _ in range(3):
        model.train_step(x, y, loss, optimizer)
    moving = [i for i, layer in enumerate(model.layers) if isinstance(layer, nn.BatchNorm)]
    assert moving and all(
        not np.array_equal(a, b) for a, b in zip(model.get_weights(), before, strict=True)
    )
    path = tmp_path / "detector.nntk"
    model.save(path)
    loaded = nn.load(path)
    same_bits(loaded.get_weights(), model.get_weights())
    np.testing.assert_array_equal(loaded(x), model(x))
    # The loaded model trains on: the same step from the same weights, the same result.
    optimizer_2 = nn.optimizers.Adam(learning_rate=1e-2)
    twin = nn.load(path)
    assert loaded.train_step(x, y, loss, optimizer_2) == twin.train_step(
        x, y, loss, nn.optimizers.Adam(learning_rate=1e-2)
    )
    same_bits(loaded.get_weights(), twin.get_weights())


OPTIMIZERS = {
    "Adam": lambda: nn.optimizers.Adam(learning_rate=1e-2),
    "Adam amsgrad": lambda: nn.optimizers.Adam(learning_rate=1e-2, amsgrad=True),
    "SGD momentum": lambda: nn.optimizers.SGD(learning_rate=1e-2, momentum=0.9),
    "SGD nesterov": lambda: nn.optimizers.SGD(learning_rate=1e-2, momentum=0.9, nesterov=True),
}


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_training_resumes_from_the_file_bit_for_bit(kind, tmp_path):
    """3 steps, save with the optimizer, load, 3 more steps: the weights and the
    optimizer state are those of 6 uninterrupted steps, bit for bit."""
    loss = nn.losses.MeanSquaredError()
    optimizer = OPTIMIZERS[kind]()
    model, x, y = trained_small_model(optimizer)
    path = tmp_path / "resume.nntk"
    model.save(path, optimizer=optimizer)
    loaded = nn.load(path)
    assert type(loaded.optimizer) is type(optimizer)
    assert loaded.optimizer.get_config() == optimizer.get_config()
    assert loaded.optimizer.iterations == 3
    same_bits([loaded.optimizer.get_state()["slots"]], [optimizer.get_state()["slots"]])
    for _ in range(3):
        loaded.train_step(x, y, loss, loaded.optimizer)
    straight = OPTIMIZERS[kind]()
    uninterrupted, _, _ = trained_small_model(straight, steps=6)
    same_bits(loaded.get_weights(), uninterrupted.get_weights())
    same_bits([loaded.optimizer.get_state()["slots"]], [straight.get_state()["slots"]])
    assert loaded.optimizer.iterations == straight.iterations == 6
    # A fresh optimizer (zero slots, step 0) would have diverged: the test can fail.
    fresh_start = nn.load(path)
    fresh = OPTIMIZERS[kind]()
    for _ in range(3):
        fresh_start.train_step(x, y, loss, fresh)
    assert any(
        a.tobytes() != b.tobytes()
        for a, b in zip(fresh_start.get_weights(), uninterrupted.get_weights(), strict=True)
    )


def test_an_optimizer_before_its_first_step_round_trips(tmp_path):
    model = nn.Sequential([nn.Dense(2, input_dim=1)])
    model.save(tmp_path / "m", optimizer=nn.optimizers.SGD(momentum=0.5))
    loaded = nn.load(tmp_path / "m")
    assert loaded.optimizer.get_state()["variable_shapes"] is None
    assert loaded.optimizer.iterations == 0
    assert nn.load(tmp_path / "m").optimizer is not None
    model.save(tmp_path / "plain")
    assert nn.load(tmp_path / "plain").optimizer is None


def test_save_refuses_an_optimizer_of_another_model(tmp_path):
    optimizer = nn.optimizers.Adam()
    trained_small_model(optimizer)
    other = nn.Sequential([nn.Dense(2, input_dim=1)])
    with pytest.raises(ValueError, match="not this model's trainable variables"):
        other.save(tmp_path / "m", optimizer=optimizer)
    with pytest.raises(TypeError, match="optimizer must be an nntk optimizer"):
        other.save(tmp_path / "m", optimizer="adam")
    assert not (tmp_path / "m").exists()


def test_a_version_1_file_still_loads(tmp_path):
    """A file in version 1's layout (24-byte header, no slots) loads as before."""
    model = nn.Sequential([nn.Dense(2, input_dim=1)])
    randomize(model)
    version_1 = repack(model_file.encode(model), version=1, layout=1)
    assert len(version_1) == len(model_file.encode(model)) - 8
    path = tmp_path / "v1"
    path.write_bytes(version_1)
    loaded = nn.load(path)
    same_bits(loaded.get_weights(), model.get_weights())
    assert loaded.optimizer is None


def test_save_writes_exactly_the_path_and_replaces_it(tmp_path):
    model = keyword_detector()
    path = tmp_path / "no_suffix"
    model.save(path)
    model.save(str(path))  # replaces it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no_suffix"]


# -- atomic writes -------------------------------------------------------------------------------
class FailingReplace:
    """A fake os.replace that raises, as if the process died between the temporary
    file's write and the rename; it checks that the temporary file was whole."""

    def __init__(self, expected: bytes):
        self.expected = expected
        self.calls = 0

    def __call__(self, source, destination):
        self.calls += 1
        with open(source, "rb") as f:
            assert f.read() == self.expected
        raise OSError("FailingReplace: the rename did not happen")


class FailingFsync:
    """A fake os.fsync that raises (a full disk, an I/O error) after the temp write."""

    def __call__(self, fd):
        raise OSError("FailingFsync: no space left on device")


@pytest.mark.parametrize("fake", ["replace", "fsync"])
def test_an_interrupted_save_leaves_the_previous_file_whole(fake, tmp_path, monkeypatch):
    old, new = keyword_detector(), keyword_detector()
    randomize(old, 1)
    randomize(new, 2)
    path = tmp_path / "model.nntk"
    old.save(path)
    previous = path.read_bytes()
    failing = FailingReplace(model_file.encode(new)) if fake == "replace" else FailingFsync()
    monkeypatch.setattr(model_file.os, fake, failing)
    with pytest.raises(OSError, match="Failing"):
        new.save(path)
    monkeypatch.undo()
    assert fake == "fsync" or failing.calls == 1
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nntk"]  # no temp file left
    same_bits(nn.load(path).get_weights(), old.get_weights())


_SAVER = """
import sys
import numpy as np
import nntk_core as nn
path = sys.argv[1]
models = [nn.Sequential([nn.Dense(64, input_dim=64)]) for _ in range(2)]
for i, m in enumerate(models):
    m.set_weights([np.full(s, i, np.float32) for s in m.layers[0].weight_shapes()])
print("ready", flush=True)
while True:
    for m in models:
        m.save(path)
"""


def test_a_process_killed_during_repeated_saves_leaves_a_loadable_file(tmp_path):
    """SIGKILL at random moments of a loop saving two models in turn: the file always
    loads, holding one of the two (weights all 0 or all 1)."""
    path = tmp_path / "model.nntk"
    rng = np.random.default_rng(0)
    for _ in range(8):
        saver = subprocess.Popen(
            [sys.executable, "-P", "-c", _SAVER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert saver.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.3))
        saver.send_signal(signal.SIGKILL)
        saver.wait()
        kernel, bias = nn.load(path).get_weights()
        assert kernel[0, 0] in (0.0, 1.0)
        assert (kernel == kernel[0, 0]).all() and (bias == kernel[0, 0]).all()
    temps = [p.name for p in tmp_path.iterdir() if p.name != "model.nntk"]
    assert all(n.startswith(".model.nntk.") and n.endswith(".tmp") for n in temps)


# -- damaged files -------------------------------------------------------------------------------
DAMAGED = damaged()


def test_truncation_at_every_byte_gives_the_truncated_error(tmp_path):
    whole = small_file()
    path = tmp_path / "cut"
    for size in range(len(whole)):
        path.write_bytes(whole[:size])
        with pytest.raises(model_file.ModelFileError, match="truncated"):
            nn.load(path)


@pytest.mark.parametrize("name", list(DAMAGED))
def test_a_damaged_file_names_its_problem(name, tmp_path):
    """... and leaves nothing allocated (no half-loaded model)."""
    content, message = DAMAGED[name]
    path = tmp_path / "damaged"
    path.write_bytes(content)
    gc.collect()  # earlier tests' garbage freed now, not during the load
    before = _live_allocations()
    with pytest.raises(model_file.ModelFileError, match=message):
        nn.load(path)
    assert _live_allocations() == before


BAD_PATHS = {
    "load a missing file": (lambda d: nn.load(d / "missing"), FileNotFoundError, "no such file"),
    "load a directory": (lambda d: nn.load(d), IsADirectoryError, "directory"),
    "load a number": (lambda d: nn.load(3), TypeError, "path must be"),
    "save onto a directory": (
        lambda d: nn.Sequential([nn.Dense(1, input_dim=1)]).save(d),
        IsADirectoryError,
        "directory",
    ),
    "save into a missing directory": (
        lambda d: nn.Sequential([nn.Dense(1, input_dim=1)]).save(d / "missing" / "model"),
        FileNotFoundError,
        "no directory",
    ),
}


@pytest.mark.parametrize("name", list(BAD_PATHS))
def test_bad_paths(name, tmp_path):
    action, error, message = BAD_PATHS[name]
    with pytest.raises(error, match=message):
        action(tmp_path)
    assert list(tmp_path.iterdir()) == []


# CI: a seeded sample of 150 examples per test (under a second); NNTK_MODEL_FILE_FUZZ=nightly
# runs 20000 random ones (=N: N random ones).
_FUZZ = os.environ.get("NNTK_MODEL_FILE_FUZZ", "")
FUZZ = settings(
    max_examples=20000 if _FUZZ == "nightly" else int(_FUZZ) if _FUZZ.isdigit() else 150,
    deadline=None,
    derandomize=not _FUZZ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _detector_file() -> bytes:
    """The keyword detector after one Adam step, saved with its optimizer."""
    model, optimizer = keyword_detector(), nn.optimizers.Adam(learning_rate=1e-2)
    model.train_step(*data(), nn.losses.CategoricalCrossentropy(), optimizer)
    return model_file.encode(model, optimizer)


_WHOLE = _detector_file()


@FUZZ
@given(st.data())
def test_mutated_files_raise_only_model_file_error(data):
    """Random byte edits (flips, insertions, deletions) of a valid file."""
    content = bytearray(_WHOLE)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(content) - 1))
        kind = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if kind == "flip":
            content[at] ^= data.draw(st.integers(1, 255))
        elif kind == "insert":
            content[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del content[at : at + data.draw(st.integers(1, 8))]
    assume(bytes(content) != _WHOLE)  # edits that cancel out are no mutation
    with pytest.raises(model_file.ModelFileError):
        model_file.decode(bytes(content))


def _json_values():
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-5, 70)
        | st.floats(allow_nan=False)
        | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=6,
    )


def mutated_config(data, whole: bytes) -> bytes:
    """`whole` with one drawn change of its config (a value, key or type replaced, or a
    key removed, in the top level, a layer or the optimizer entry, a layer's config or
    weights), the checksum recomputed."""
    config = config_of(whole)
    entry = data.draw(st.sampled_from([*config["layers"], config["optimizer"]]))
    parts = [entry["config"], *entry.get("weights", [])]
    target = data.draw(st.sampled_from([config, entry, *parts]))
    key = data.draw(st.sampled_from(sorted(target) + ["extra"]))
    if data.draw(st.booleans()):
        target[key] = data.draw(_json_values())
    else:
        target.pop(key, None)
    return repack(whole, config=config)


@FUZZ
@given(st.data())
def test_mutated_configs_with_a_valid_checksum_raise_only_model_file_error(data):
    """The checksum recomputed: the config's own checks must catch a changed value,
    key or type. A mutation that still describes this model loads it."""
    try:
        model = model_file.decode(mutated_config(data, _WHOLE))
    except model_file.ModelFileError:
        return
    model.close()


# -- back to Keras -------------------------------------------------------------------------------
def _repeated_classes(L):
    """Layers of one class several times (keys dense, dense_1, ...), a Dropout between,
    and the other layer types with weights (pooling between)."""
    return [
        L.Dense(4, activation="tanh"),
        L.Dropout(0.3),
        L.Dense(5),
        L.BatchNormalization(),
        L.TimeDistributed(L.Dense(3)),
        L.BatchNormalization(center=False),
        L.DepthwiseConv1D(3, padding="same", depth_multiplier=2),
        L.MaxPooling1D(2),
        L.LayerNormalization(),
        L.AveragePooling1D(2, padding="same"),
        L.DepthwiseConv1D(2, use_bias=False),
        L.LayerNormalization(scale=False),
    ]


@pytest.mark.tf
@pytest.mark.parametrize("network", ["keyword", "bidirectional", "causal_rnn", "repeated"])
def test_keras_load_weights_reads_save_keras_weights_bit_for_bit(network, tmp_path):
    """A tf.keras model file -> nn.load_keras -> new weights (3 Adam steps in nntk for
    the issue's networks) -> save_keras_weights -> tf.keras's load_model(...).
    load_weights(): Keras then holds nntk's weights bit for bit, and predicts what the
    nntk model does."""
    import keras_networks

    from parity import reference
    from parity.compare import compare
    from parity.model_parity import STEP_TOLERANCE
    from parity.verify_sides import keras_twin

    k = reference.keras()
    if network == "repeated":
        k.utils.set_random_seed(3)
        keras_model = k.Sequential([k.Input((None, 4)), *_repeated_classes(k.layers)])
    else:
        keras_model = keras_networks.build(network)
    keras_path = tmp_path / "model.keras"
    keras_model.save(keras_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nn.DropoutOmittedWarning)
        native = nn.load_keras(keras_path)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 10, 4)).astype(np.float32)
    if network == "repeated":  # no loss of its own: other weights, moving statistics too
        native.set_weights(
            [w + rng.uniform(0.1, 0.5, w.shape).astype(np.float32) for w in native.get_weights()]
        )
    else:
        out = native.compute_output_shape(x.shape)
        y = np.eye(out[-1], dtype=np.float32)[rng.integers(0, out[-1], out[:-1])]
        optimizer = nn.optimizers.Adam(learning_rate=1e-2)
        for _ in range(3):
            native.train_step(x, y, nn.losses.CategoricalCrossentropy(), optimizer)
    changed = native.get_weights()
    assert all(
        not np.array_equal(a, b) for a, b in zip(changed, keras_model.get_weights(), strict=True)
    )
    weights_path = tmp_path / "personal.weights.h5"
    native.save_keras_weights(weights_path)
    restored = k.models.load_model(keras_path)
    restored.load_weights(weights_path)
    same_bits([np.asarray(w) for w in restored.get_weights()], changed)
    # Its predictions are nntk's, held as nn.load_keras's (the whole-model tolerance
    # against the float64 twin).
    twin = keras_twin(restored, "float64")
    reference_output = twin(x.astype(np.float64), training=False).numpy()
    result = compare(
        "output", native(x), reference_output, restored.predict(x, verbose=0), STEP_TOLERANCE
    )
    assert result.passed, result.describe()


def test_save_keras_weights_needs_the_keras_suffix_and_writes_atomically(tmp_path, monkeypatch):
    model = nn.Sequential([nn.Dense(2, input_dim=1)])
    with pytest.raises(ValueError, match=r"must end in '\.weights\.h5'"):
        model.save_keras_weights(tmp_path / "model.h5")
    path = tmp_path / "model.weights.h5"
    model.save_keras_weights(path)
    previous = path.read_bytes()
    monkeypatch.setattr(model_file.os, "fsync", FailingFsync())
    randomize(model, 4)
    with pytest.raises(OSError, match="FailingFsync"):
        model.save_keras_weights(path)
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.weights.h5"]
