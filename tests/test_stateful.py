"""Call sequences (issue 12 §3): for every layer spec, a hypothesis rule-based state
machine drives one nntk layer and its tf.keras twin through random sequences of
calls (parity/sequences.py): training and inference calls at changing batch sizes
and lengths, backward after either, set_weights, initial states and (RNN, GRU,
LSTM) stream chunks carrying their state. Every step's outputs, states and
gradients are compared with the float64 referee under the spec's tolerances.

CI runs a small seeded sample: SAMPLES["ci"] (derandomized: the same sequences
every run). The full run is the nightly job:

    NNTK_SEQUENCES=nightly pytest tests/test_stateful.py -n auto

The recorded sequences (fixtures/sequences/) are replayed without TensorFlow at
the end, as `nntk-parity replay` does.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from helpers import FIXTURES
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from parity.fixtures import (
    fixture_bytes,
    load_manifest,
    read_fixture,
    sha256_file,
    write_bytes,
    write_manifest,
)
from parity.live_sequence import MAX_STREAM_STEPS, LiveSequence, extra_plans, plans, run_plan
from parity.recurrent_spec import is_wild
from parity.sequence_sides import can_stream, is_recurrent
from parity.sequences import MAX_TOTAL_BYTES, SEQUENCES_DIR, check_freshness, replay_sequences
from parity.specs import all_specs

# Sequences per layer spec and calls per sequence. ci: ~30 s for all specs on one core.
SAMPLES = {
    "ci": {"max_examples": 5, "stateful_step_count": 10, "derandomize": True, "database": None},
    "nightly": {"max_examples": 200, "stateful_step_count": 30, "derandomize": False},
}
SAMPLE_ENV = "NNTK_SEQUENCES"
SEEDS = st.integers(0, 2**31 - 1)


def sample_settings() -> settings:
    name = os.environ.get(SAMPLE_ENV, "ci")
    if name not in SAMPLES:
        raise ValueError(f"{SAMPLE_ENV}={name!r}: expected one of {', '.join(SAMPLES)}")
    return settings(
        **SAMPLES[name],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def machine_for(spec, backend=None) -> type[RuleBasedStateMachine]:
    """The state machine of one layer spec. `backend`: see parity.runner.native_layer
    (the harness self-test passes fakes)."""

    class SequenceMachine(RuleBasedStateMachine):
        seq: LiveSequence | None = None

        @initialize(data=st.data(), seed=SEEDS)
        def start(self, data, seed):
            configs = spec.config_strategy()
            if is_recurrent(spec):
                # A sequence has no conditioning measurement (compare.py's sensitivity
                # rerun), and a "wild" recurrence carried over chunks can be
                # ill-conditioned (parity/recurrent_spec.py); the live suite, which
                # measures it, covers those configs.
                configs = configs.filter(lambda config: not is_wild(config))
            config = data.draw(configs, label="config")
            rank = data.draw(st.sampled_from(spec.ranks), label="rank")
            scale = data.draw(spec.scale_strategy(config), label="scale")
            self.seq = LiveSequence(spec, config, rank, scale, backend=backend)
            self.seq.set_weights(seed)

        def _shape(self, data) -> tuple[int, int]:
            batch = data.draw(st.integers(*spec.batch_range), label="batch")
            steps = 1
            if self.seq.rank == 3:
                steps = data.draw(spec.steps_strategy(self.seq.config), label="steps")
            return batch, steps

        # set_weights is a flag of the call rule, not a rule of its own: hypothesis
        # chooses among rules evenly, and sequences of set_weights alone check little.
        @rule(
            data=st.data(),
            seed=SEEDS,
            training=st.booleans(),
            with_state=st.booleans(),
            new_weights=st.booleans(),
        )
        def call(self, data, seed, training, with_state, new_weights):
            if new_weights:
                self.seq.set_weights(seed + 1)
            batch, steps = self._shape(data)
            extra = data.draw(spec.extra_strategy(self.seq.config), label="extra")
            self.seq.call(seed, batch, steps, training, with_state and is_recurrent(spec), extra)

        @precondition(lambda self: self.seq.pending_shapes is not None)
        @rule(seed=SEEDS)
        def backward(self, seed):
            self.seq.backward(seed)

        if can_stream(spec):

            @rule(
                data=st.data(),
                seed=SEEDS,
                steps=st.integers(1, MAX_STREAM_STEPS // 2),
                state=st.sampled_from(("carried", "none", "given")),
            )
            def stream(self, data, seed, steps, state):
                seq = self.seq
                if state == "carried" and seq.stream_batch:
                    batch = seq.stream_batch  # continue the stream
                else:
                    batch = data.draw(st.integers(*spec.batch_range), label="batch")
                if state == "carried" and not seq.can_carry(batch, steps):
                    state = "none"  # no stream to continue, or long enough: a new one
                seq.stream(seed, batch, steps, state)

        def teardown(self):
            if self.seq is not None:
                self.seq.close()

    SequenceMachine.__name__ = SequenceMachine.__qualname__ = f"{spec.name}_sequences"
    return SequenceMachine


@pytest.mark.tf
@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.name)
def test_call_sequences_match_keras(spec):
    run_state_machine_as_test(machine_for(spec), settings=sample_settings())


def all_plans() -> list[tuple]:
    return [(spec, plan) for spec in all_specs() for plan in plans(spec) + extra_plans(spec)]


@pytest.mark.tf
@pytest.mark.parametrize(
    "spec, plan", all_plans(), ids=[f"{s.name}-{p.name}" for s, p in all_plans()]
)
def test_recorded_plans_match_keras_live_and_their_fixtures_are_fresh(spec, plan):
    """The recorded sequences' plans, live: part of the gate (they reach faults the
    random sample may miss: above 64 units, logits spread beyond exp's range); and
    the recorded fixtures still hold what they compute now (freshness)."""
    seq = run_plan(spec, plan)  # raises SequenceFailure at a failing step
    assert all(step.float64 for step in seq.steps if step.op.kind != "set_weights")
    drift = check_freshness(FIXTURES, seq)
    assert not drift, "\n".join(drift) + "\nre-record: python -m parity.sequences record"


# -- the recorded sequences (no TensorFlow) ----------------------------------------------------
def recorded_steps() -> list[dict]:
    """Every recorded step's id fields, with its layer, sequence and input shape."""
    directory = FIXTURES / SEQUENCES_DIR
    steps = []
    for entry in load_manifest(directory)["cases"]:
        fields = dict(parse_qsl(entry["id"].partition("?")[2]))
        shape = read_fixture(directory / entry["file"]).data.x.shape
        steps.append({**fields, **entry, "shape": shape})
    return steps


def test_recorded_sequences_replay():
    result = replay_sequences(FIXTURES)
    assert not result.problems, "\n".join(result.problems)
    assert result.sequences == len({s["sequence"] for s in recorded_steps()})
    assert result.steps == len(recorded_steps())
    assert set(result.by_layer) == {s.name for s in all_specs()}


def test_recorded_sequences_hold_the_call_patterns_that_hide_bugs():
    """Per layer spec: training calls whose batch size changes, backward right after an
    inference call, two backward calls of one training call; streams carrying their
    state (RNN, GRU, LSTM); calls with initial states (recurrent)."""
    by_sequence: dict[str, list[dict]] = {}
    for step in recorded_steps():
        by_sequence.setdefault(step["sequence"], []).append(step)
    for spec in all_specs():
        sequences = [s for s in by_sequence.values() if s[0]["layer"] == spec.name]
        ops = [[(s["op"], s["training"], s["state"]) for s in seq] for seq in sequences]
        training_batches = [
            {s["shape"][0] for s in seq if s["op"] == "call" and s["training"] == "1"}
            for seq in sequences
        ]
        assert any(len(b) >= 3 for b in training_batches), f"{spec.name}: batch never changes"
        assert any(
            ("call", "0", "none") == a and b[0] == "backward"
            for o in ops
            for a, b in zip(o, o[1:], strict=False)
        ), f"{spec.name}: no backward right after an inference call"
        assert any(
            a[0] == b[0] == "backward" for o in ops for a, b in zip(o, o[1:], strict=False)
        ), f"{spec.name}: no second backward of one call"
        if can_stream(spec):
            assert any(("stream", "0", "carried") in o for o in ops), spec.name
        if is_recurrent(spec):
            assert any(("call", "1", "given") in o for o in ops), spec.name


def test_the_sequence_fixture_set_is_small():
    total = sum(p.stat().st_size for p in (FIXTURES / SEQUENCES_DIR).iterdir())
    assert total < MAX_TOTAL_BYTES, f"sequence fixtures take {total / 2**20:.2f} MiB"


def _copy(tmp_path) -> Path:
    target = tmp_path / "fixtures"
    shutil.copytree(FIXTURES / SEQUENCES_DIR, target / SEQUENCES_DIR)
    return target


def test_an_altered_or_missing_step_fails_replay(tmp_path):
    directory = _copy(tmp_path)
    entries = load_manifest(directory / SEQUENCES_DIR)["cases"]
    altered, removed = entries[3], entries[-1]
    path = directory / SEQUENCES_DIR / altered["file"]
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))
    (directory / SEQUENCES_DIR / removed["file"]).unlink()
    problems = "\n".join(replay_sequences(directory).problems)
    assert altered["file"] in problems and "altered" in problems
    assert removed["file"] in problems and "missing" in problems


def test_a_layer_without_a_sequence_or_no_sequence_set_fails_replay(tmp_path):
    directory = _copy(tmp_path)
    manifest = load_manifest(directory / SEQUENCES_DIR)
    manifest["cases"] = [e for e in manifest["cases"] if e["layer"] != "conv1d"]
    write_manifest(directory / SEQUENCES_DIR, manifest)
    problems = replay_sequences(directory).problems
    assert problems == [
        f"layer spec 'conv1d' has no recorded call sequence in {directory / SEQUENCES_DIR}"
    ]
    shutil.rmtree(directory / SEQUENCES_DIR)
    assert "no call-sequence fixtures" in replay_sequences(directory).problems[0]
    assert replay_sequences(directory, required=False).problems == []


def test_a_wrong_reference_fails_the_step_and_names_it(tmp_path):
    """Replay really compares: a step whose float64 reference is off fails, naming the
    step, the quantity and the element."""
    directory = _copy(tmp_path)
    where = directory / SEQUENCES_DIR
    manifest = load_manifest(where)
    entry = next(e for e in manifest["cases"] if e["layer"] == "gru" and "&op=backward" in e["id"])
    fixture = read_fixture(where / entry["file"])
    fixture.float64["grad:recurrent_kernel"] = fixture.float64["grad:recurrent_kernel"] * (1 + 1e-3)
    write_bytes(where / entry["file"], fixture_bytes(fixture))
    entry["sha256"] = sha256_file(where / entry["file"])
    write_manifest(where, manifest)
    [problem] = replay_sequences(directory, layers=["gru"]).problems
    assert f"step {entry['step']}: backward(dy" in problem
    assert "FAIL grad:recurrent_kernel" in problem and "recurrent_kernel grad [row=" in problem


@pytest.mark.tf
def test_freshness_reports_a_recorded_reference_that_drifted(tmp_path):
    spec = next(s for s in all_specs() if s.name == "dense")
    plan = next(p for p in plans(spec) if p.name == "batch-change")
    directory = _copy(tmp_path)
    where = directory / SEQUENCES_DIR
    manifest = load_manifest(where)
    entry = next(
        e for e in manifest["cases"] if e["layer"] == "dense" and "&op=backward" in e["id"]
    )
    fixture = read_fixture(where / entry["file"])
    fixture.float64["grad:kernel"] = fixture.float64["grad:kernel"] + 1e-3
    write_bytes(where / entry["file"], fixture_bytes(fixture))
    entry["sha256"] = sha256_file(where / entry["file"])
    write_manifest(where, manifest)
    [message] = check_freshness(directory, run_plan(spec, plan))
    assert "reference drift" in message and entry["file"] in message and "grad:kernel" in message
