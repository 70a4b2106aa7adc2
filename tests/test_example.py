"""The worked example `nntk-parity example personalize`, at a tiny size."""

import pytest

from nntk_examples import personalize as example
from parity.cli import main


@pytest.mark.tf
def test_tiny_personalisation_falls_and_agrees_with_keras(capsys, monkeypatch):
    """The command itself (--tiny): the loss falls on both sides and the nntk and
    tf.keras columns agree (same initial weights and batches)."""
    runs = []
    run = example.run
    monkeypatch.setattr(example, "run", lambda *a, **k: runs.append(run(*a, **k)) or runs[-1])
    assert main(["example", "personalize", "--tiny"]) == 0
    out = capsys.readouterr().out
    assert "tf.keras" in out and "word detected" in out
    assert out.count("│") > 10  # the side-by-side table
    # the model file's life, each step checked (nntk_examples/model_files.py)
    for number, title in enumerate(
        [
            "tf.keras wrote the model file",
            "verified against tf.keras",
            "trained with nntk",
            "saved the nntk model file",
            "ran it from C",
            "back to tf.keras",
        ],
        start=1,
    ):
        line = next(li for li in out.splitlines() if li.startswith(f"[{number}/6] {title}"))
        assert "FAILED" not in line
    assert "bitwise Python's" in out and "holds nntk's weights bit for bit" in out

    (result,) = runs
    assert result.sides == ["nntk", "tf.keras"]
    assert len(result.epochs) == example.TINY.epochs
    assert result.loss_fell("nntk") and result.loss_fell("tf.keras")
    assert result.largest_loss_difference() < 1e-5
    for e in result.epochs:
        assert e.frame_accuracy["nntk"] == pytest.approx(e.frame_accuracy["tf.keras"], abs=0.02)
        assert e.detection_accuracy["nntk"] == e.detection_accuracy["tf.keras"]
    assert result.initial_loss["nntk"] == pytest.approx(result.initial_loss["tf.keras"], rel=1e-5)


def test_tiny_personalisation_without_keras_runs_the_file_steps(capsys, tmp_path):
    """--no-keras: no tf.keras file; the nntk file, C and reload steps still run."""
    assert main(["example", "personalize", "--tiny", "--no-keras", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "[5/6] ran it from C" in out and "[6/6] back to tf.keras: skipped" in out
    assert "FAILED" not in out
    assert (tmp_path / "personal_from_c.nntk").read_bytes() == (
        tmp_path / "personal_from_python.nntk"
    ).read_bytes()


def test_tiny_personalisation_without_keras_learns():
    result = example.run(example.TINY, keras=False)
    assert result.sides == ["nntk"]
    losses = [e.loss["nntk"] for e in result.epochs]
    assert losses[-1] < 0.75 * losses[0]


def test_bad_example_arguments_are_usage_errors(capsys):
    assert main(["example", "personalize", "--tiny", "--epochs", "0", "--no-keras"]) == 2
    assert "--epochs must be >= 1" in capsys.readouterr().err
    assert main(["example", "personalize", "--tiny", "--no-keras", "--out", "/no/such/dir"]) == 2
    assert "--out /no/such/dir: no such directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["example", "nosuch"])
