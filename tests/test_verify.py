"""`nntk-parity verify MODEL` (parity/verify.py) on tf.keras model files saved by real
tf.keras: the issue's three networks in both formats pass (per-layer outputs and
gradients, 3 training steps with the compiled loss and optimizer); an nntk model that
differs from the file is caught at the layer that differs; bad input exits 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import cli
from keras_networks import build

import nntk_core as nn
from parity import cli as parity_cli
from parity.verify import verify

pytestmark = pytest.mark.tf


def keras():
    from parity import reference

    return reference.keras()


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("network", ["keyword", "bidirectional", "causal_rnn"])
def test_the_issue_networks_pass(network, fmt, tmp_path):
    path = tmp_path / f"{network}.{fmt}"
    build(network).save(path)
    result = verify(path, steps=3)
    assert result.passed, result.failures()
    # Every layer's outputs and gradients, and 3 steps: loss and every weight each step.
    layers = nn.load_keras(path).layers
    assert len(result.runs) == len(layers) + 1
    for run, layer in zip(result.runs, layers, strict=False):
        trainable = sum(layer.trainable_mask())
        assert run.cases == 1 and len(run.stats) == 3 + trainable, sorted(run.stats)
    steps = {c.quantity.split(":")[0] for c in result.training.comparisons}
    assert steps == {"step 1", "step 2", "step 3", "inference"}
    assert result.optimizer.startswith("Adam(learning_rate=0.003")


def test_sgd_and_mean_squared_error_from_the_compiled_model(tmp_path):
    path = tmp_path / "sgd.keras"
    build("causal_rnn", optimizer="sgd", loss="mse").save(path)
    result = verify(path, steps=3)
    assert result.passed, result.failures()
    assert result.loss == "MeanSquaredError"
    assert result.optimizer.startswith("SGD(learning_rate=0.05, momentum=0.9")


def test_dropout_is_compared_as_the_identity_and_said_so(tmp_path):
    """Dropout(0.5) would make every Keras training step differ; verify's reference
    skips it as nntk's model does, and prints why."""
    k = keras()
    L = k.layers
    model = k.Sequential(
        [
            k.Input((None, 3)),
            L.GRU(4, return_sequences=True),
            L.Dropout(0.5),
            L.TimeDistributed(L.Dense(2)),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    path = tmp_path / "dropout.keras"
    model.save(path)
    result = verify(path, steps=2)
    assert result.passed, result.failures()
    assert len(result.layers) == 2
    assert any("(Dropout), rate 0.5" in note for note in result.notes), result.notes


def test_an_nntk_model_that_differs_from_the_file_fails_at_that_layer(tmp_path, monkeypatch):
    """A fake loader (test only) that alters the GRU's recurrent kernel by 1e-3: verify
    exits 1; the outputs of the layers before the GRU pass (their gradients flow back
    through it and fail), the GRU's output fails."""
    path = tmp_path / "keyword.keras"
    build("keyword").save(path)
    real_load = nn.load_keras

    def altered_load(p, **kwargs):
        model = real_load(p, **kwargs)
        gru = model.layers[3]
        weights = gru.get_weights()
        weights[1] = weights[1] + np.float32(1e-3)
        gru.set_weights(weights)
        return model

    monkeypatch.setattr(nn, "load_keras", altered_load)
    report = tmp_path / "report"
    code = parity_cli.main(["verify", str(path), "--steps", "2", "--report", str(report)])
    assert code == parity_cli.EXIT_FAILED
    data = json.loads((report / "report.json").read_text())
    layers = {layer["layer"][:2]: layer for layer in data["layers"]}
    for index in ("00", "01", "02"):
        outputs = layers[index]["quantities"]
        assert outputs["output"]["failures"] == outputs["output:training"]["failures"] == 0
    assert layers["03"]["quantities"]["output"]["failures"] == 1
    assert layers["tr"]["passed"] is False  # the training steps
    assert data["passed"] is False


def test_the_command_writes_the_reports_and_exits_0(tmp_path):
    path = tmp_path / "bidirectional.h5"
    build("bidirectional").save(path)
    report = tmp_path / "report"
    result = cli(
        "verify", str(path), "--input-shape", "2,7,4", "--steps", "2", "--report", str(report)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verify" in result.stdout and "passed" in result.stdout
    for name in ("report.json", "report.md", "report.html", "junit.xml"):
        assert (report / name).stat().st_size > 0
    data = json.loads((report / "report.json").read_text())
    assert data["passed"] and data["input_shape"] == [2, 7, 4]


def test_bad_input_exits_2_naming_the_problem(tmp_path):
    k = keras()
    uncompiled = k.Sequential([k.Input((None, 3)), k.layers.GRU(2)])
    plain = tmp_path / "plain.keras"
    uncompiled.save(plain)
    masked = k.Sequential([k.Input((None, 3)), k.layers.Masking(), k.layers.GRU(2)])
    masked.compile(optimizer="adam", loss="mse")
    unsupported = tmp_path / "masked.keras"
    masked.save(unsupported)
    cases = [
        ((str(tmp_path / "absent.keras"),), "no such file"),
        ((str(plain),), "give the loss with --loss"),
        ((str(plain), "--loss", "mse"), "give the optimizer with --optimizer"),
        ((str(plain), "--loss", "mse", "--optimizer", "sgd", "--input-shape", "2,5,4"), "axis 2"),
        ((str(unsupported),), "nntk has no Masking layer"),
        ((str(plain), "--steps", "0"), "--steps must be >= 1"),
    ]
    for args, needle in cases:
        result = cli("verify", *args)
        output = result.stdout + result.stderr
        assert result.returncode == parity_cli.EXIT_USAGE, (args, output)
        assert needle in output and "Traceback" not in output, (args, output)
