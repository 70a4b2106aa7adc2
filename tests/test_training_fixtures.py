"""The training fixtures (fixtures/training/, parity/training.py): replay passes on
the committed set without TensorFlow, covers every option value and pair, fails on a
missing or altered fixture, and catches planted faults in a loss derivative and in
an optimizer's bias correction. Recording and freshness (TensorFlow) at the end."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from helpers import FIXTURES, cli, copy_fixtures, manifest, save_manifest
from training_fakes import FakeNN, fake_losses, fake_optimizers, replay_with

import nntk_core as nn
from parity import training
from parity.case import Case
from parity.fixtures import read_fixture
from parity.replay import replay

TRAINING = FIXTURES / training.SUBDIR


def problems_text(run) -> str:
    return "\n".join(run.problems + [r.failure_message() for r in run.failed_cases])


def entries(spec: str | None = None) -> list[dict]:
    return [e for e in manifest(TRAINING)["cases"] if spec is None or e["layer"] == spec]


# -- the committed set ------------------------------------------------------------------
def test_replay_passes_on_the_training_fixtures():
    run = replay(FIXTURES, kinds=["training"])
    assert run.passed, problems_text(run)
    assert run.ran == run.expected == len(entries())
    assert {r.case.layer for r in run.results} == set(training.spec_names())


def test_every_option_value_and_every_pair_of_values_is_recorded():
    """No option has a single value across a spec's fixtures, alone or together with
    another option: every valid pair of option values is exercised."""
    for spec in training.all_specs():
        cases = [Case.from_id(e["id"]) for e in entries(spec.name)]
        assert cases, spec.name
        assert spec.missing_pairs(cases) == [], spec.name
        for option, values in spec.options.items():
            seen = {json.dumps(spec.option_values(c)[option]) for c in cases}
            assert len(seen) == len(values) >= 2, (spec.name, option, seen)


def test_missing_pairs_names_an_unexercised_combination():
    spec = training.get_spec("adam")
    cases = [c for c in spec.cases() if not (c.config["amsgrad"] and c.config["beta_1"] == 0.5)]
    assert "beta_1=0.5 with amsgrad=True" in spec.missing_pairs(cases)


def test_the_loss_fixtures_hold_exact_0_and_1_probabilities_and_large_logits():
    probability_extremes = logit_spreads = 0
    for entry in entries("loss"):
        case = Case.from_id(entry["id"])
        if case.config["values"] != "extreme" or case.config["loss"] == "mean_squared_error":
            continue
        pred = read_fixture(TRAINING / entry["file"]).data.arrays["y_pred"]
        rows = pred.reshape(-1, pred.shape[-1])
        if case.config["from_logits"]:
            assert np.ptp(rows, axis=-1).max() > 100  # exp(z) overflows float32 past ~88
            logit_spreads += 1
        else:
            assert np.any(rows == 0.0) and np.any(np.all(rows == np.eye(4)[rows.argmax(-1)], -1))
            probability_extremes += 1
    assert probability_extremes == logit_spreads == 4  # 2 targets x 2 ranks


def test_the_training_fixtures_are_small():
    """Under 1.5 MiB (run with -s for the size and the replay time; the time budget of
    all replay, 5 s, is a benchmark figure that ci/replay-no-tf.sh reports)."""
    total = sum(p.stat().st_size for p in TRAINING.iterdir())
    assert total < 1.5 * 2**20, f"{total / 2**20:.2f} MiB"
    run = replay(FIXTURES, kinds=["training"])
    print(f"training fixtures: {total / 1024:.0f} KiB, replay {run.elapsed:.2f} s")


def test_replay_and_repro_of_a_training_fixture_import_no_tensorflow():
    result = cli("replay", "--fixtures", str(FIXTURES), "--layer", "adam", no_tf=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "replayed 64 of 64" in result.stdout.replace("\n", " ")
    stem = entries("train_step")[0]["file"].removesuffix(".npz")
    result = cli("repro", stem, "--fixtures", str(FIXTURES), no_tf=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "replayed" in result.stdout and "PASS" in result.stdout
    assert "layer 0" in result.stdout and "[step=" in result.stdout


# -- every way the set can be wrong -----------------------------------------------------
def test_a_removed_training_fixture_fails(tmp_path):
    directory = copy_fixtures(tmp_path)
    entry = entries("sgd")[2]
    (directory / training.SUBDIR / entry["file"]).unlink()
    run = replay(directory, layers=["sgd"])
    assert_problem(run, "missing", entry["file"])
    assert_problem(run, f"only {run.expected - 1} of the {run.expected}")


def test_an_altered_training_fixture_fails(tmp_path):
    directory = copy_fixtures(tmp_path)
    entry = entries("loss")[5]
    path = directory / training.SUBDIR / entry["file"]
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))
    run = replay(directory, kinds=["training"])
    assert_problem(run, "altered", entry["id"])


def replay_keeping(tmp_path, keep, **kwargs):
    """Replays a copy of the fixtures whose training manifest keeps only `keep(entry)`."""
    directory = copy_fixtures(tmp_path)
    m = manifest(directory / training.SUBDIR)
    m["cases"] = [e for e in m["cases"] if keep(e)]
    save_manifest(directory / training.SUBDIR, m)
    return replay(directory, **kwargs)


def assert_problem(run, *needles: str) -> None:
    """The run failed with a fixture-level problem that says every one of `needles`."""
    assert not run.passed
    assert any(all(n in p for n in needles) for p in run.problems), run.problems


def test_a_training_spec_without_fixtures_fails(tmp_path):
    # the whole replay: the layer fixtures pass, this fails it
    run = replay_keeping(tmp_path, lambda e: e["layer"] != "train_step")
    assert_problem(run, "'train_step' has no fixtures", "nntk-parity record --training")


def test_fixtures_missing_an_option_pair_fail(tmp_path):
    def keep(entry):
        config = Case.from_id(entry["id"]).config
        return not (entry["layer"] == "sgd" and config["nesterov"] and config["lr_change"])

    run = replay_keeping(tmp_path, keep, layers=["sgd"])
    assert_problem(run, "never exercise option pairs", "nesterov=True with lr_change=True")


def test_a_missing_training_directory_is_an_error(tmp_path):
    from parity.fixtures import FixtureError

    directory = copy_fixtures(tmp_path)
    for path in (directory / training.SUBDIR).iterdir():
        path.unlink()
    (directory / training.SUBDIR).rmdir()
    with pytest.raises(FixtureError, match="training"):
        replay(directory)
    assert replay(directory, layers=["dense"]).passed  # the layer fixtures alone still replay


# -- planted faults: replay catches them, naming the quantity and the element ----------------
def test_replay_catches_a_loss_derivative_missing_one_over_batch():
    control = replay_with(FakeNN(losses=fake_losses(faulty=False)), ["loss"])
    assert control.passed, problems_text(control)  # the fake itself is sound
    run = replay_with(FakeNN(losses=fake_losses(faulty=True)), ["loss", "train_step"])
    assert not run.passed and not run.problems
    failed = {r.case.id for r in run.failed_cases}
    assert {e["id"] for e in entries("loss")} <= failed  # every loss fixture
    for result in run.failed_cases:
        message = result.failure_message()
        if result.case.layer == "loss":
            assert "FAIL grad:y_pred" in message and "grad:y_pred [b=" in message
            assert "FAIL value" not in message  # the value is right: only the derivative
        else:  # a whole-model step: a weight after some step, or the inference output
            assert re.search(r"FAIL (layer \d|inference).*worst .*\[(step|b)=\d+", message)
    # SGD steps by the gradient itself, so every SGD model fixture catches it too. (Adam
    # divides a constant gradient scale out, m/sqrt(v): there only epsilon shows it,
    # which is why the loss fixtures check the derivative directly.)
    sgd_steps = {e["id"] for e in entries("train_step") if "sgd_momentum" in e["id"]}
    assert sgd_steps <= failed


def test_replay_catches_adam_bias_correction_off_by_one_step():
    control = replay_with(FakeNN(optimizers=fake_optimizers(0)), ["adam"])
    assert control.passed, problems_text(control)  # the numpy Adam is Keras's update
    run = replay_with(FakeNN(optimizers=fake_optimizers(1)), ["adam", "train_step"])
    assert not run.passed and not run.problems
    assert {e["id"] for e in entries("adam")} <= {r.case.id for r in run.failed_cases}
    for result in run.failed_cases:
        message = result.failure_message()
        assert "FAIL " in message and "[step=" in message
        if result.case.layer == "adam":
            assert "FAIL variable" in message and "FAIL iterations" not in message
    adam_steps = {e["id"] for e in entries("train_step") if "%22adam%22" in e["id"]}
    assert adam_steps == {r.case.id for r in run.failed_cases if r.case.layer == "train_step"}


class FakeSequentialNeverFromLogits(nn.Sequential):
    """A Sequential that always takes the probability path of the cross-entropy, where
    Keras takes a Dense / Activation softmax's logits (docs/KERAS_SEMANTICS.md §9)."""

    def uses_logits(self, loss) -> bool:
        return False


def test_replay_catches_train_step_taking_the_probability_path_after_a_softmax_layer():
    run = replay_with(FakeNN(Sequential=FakeSequentialNeverFromLogits), ["train_step"])
    assert not run.passed and not run.problems
    failed = {r.case.id for r in run.failed_cases}
    saturated = {
        e["id"]
        for e in entries("train_step")
        if "confident=true" in e["id"] and "time_distributed_softmax" not in e["id"]
    }
    assert saturated and saturated <= failed
    assert all("dense_softmax" in i or "activation_softmax" in i for i in failed)


# -- recording and freshness (TensorFlow) ------------------------------------------------------
@pytest.mark.tf
def test_training_fixtures_are_fresh():
    """tf.keras, rerun on the stored data of one fixture per training spec, still gives
    the recorded references, and the specs still draw the same data."""
    from parity.freshness import check_training_freshness

    messages, checked = check_training_freshness(TRAINING)
    assert checked == len(training.all_specs())
    assert not messages, "\n".join(messages)


@pytest.mark.tf
def test_freshness_reports_a_changed_training_reference(tmp_path):
    from parity.fixtures import fixture_bytes, sha256_file, write_bytes
    from parity.freshness import check_training_freshness

    directory = copy_fixtures(tmp_path) / training.SUBDIR
    m = manifest(directory)
    entry = next(e for e in m["cases"] if e["layer"] == "adam")
    path = directory / entry["file"]
    fixture = read_fixture(path)
    fixture.float64["variable 1"] = fixture.float64["variable 1"] + 1e-3
    write_bytes(path, fixture_bytes(fixture))
    entry["sha256"] = sha256_file(path)
    save_manifest(directory, m)
    messages, _ = check_training_freshness(directory)
    text = "\n".join(messages)
    assert "reference drift" in text and "variable 1" in text and entry["file"] in text


@pytest.mark.tf
def test_recording_is_deterministic_for_a_spec(tmp_path):
    """A case's data and references recorded again give the committed file's bytes on
    the CPU model that recorded them. tf.keras's float32 arithmetic depends on the
    instruction set TensorFlow's kernels run (train_step's float32 weights differed by
    an ulp on an AMD EPYC from the Intel Xeon's recording, 2026-12-07), so on another
    CPU the data and the float64 referee must still be the committed bytes, and two
    recordings here the same bytes."""
    from parity.fixtures import Fixture, cpu_model, fixture_bytes

    recorded_here = manifest(TRAINING)["cpu"] == cpu_model()
    for spec in training.all_specs():
        entry = entries(spec.name)[-1]
        case = Case.from_id(entry["id"])
        data, float64, float32 = spec.reference(case)
        content = fixture_bytes(Fixture(case.id, spec.name, "sweep", data, float64, float32))
        committed_bytes = (TRAINING / entry["file"]).read_bytes()
        if recorded_here:
            assert content == committed_bytes, spec.name
            continue
        again = fixture_bytes(Fixture(case.id, spec.name, "sweep", *spec.reference(case)))
        assert again == content, f"{spec.name}: two recordings differ"
        committed_float32 = read_fixture(TRAINING / entry["file"]).float32
        mixed = Fixture(case.id, spec.name, "sweep", data, float64, committed_float32)
        assert fixture_bytes(mixed) == committed_bytes, f"{spec.name}: data or referee differ"


@pytest.mark.tf
def test_the_live_repro_of_a_training_case_reruns_it():
    """A failure's `rerun: nntk-parity repro 'loss?...'` line reruns the case live."""
    case = training.get_spec("loss").cases()[-1]
    result = cli("repro", case.id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "grad:y_pred" in result.stdout and "PASS" in result.stdout
