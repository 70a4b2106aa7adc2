"""The golden fixtures: replay passes on the committed set, without TensorFlow, and
fails on every way a fixture set can be wrong. Recording, regression capture and
freshness (those need TensorFlow) at the end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import FIXTURES, cli, copy_fixtures, manifest, save_manifest

from parity.fixtures import (
    MAX_TOTAL_BYTES,
    fixture_bytes,
    read_fixture,
    sha256_file,
    write_bytes,
)
from parity.replay import replay
from parity.runner import NativeBackend
from parity.specs import all_specs


def problems_text(run) -> str:
    return "\n".join(run.problems + [r.failure_message() for r in run.failed_cases])


# -- the committed set ------------------------------------------------------------------
@pytest.fixture(scope="module")
def committed_replay():
    """One whole replay of the committed set, for the tests that read it."""
    return replay(FIXTURES)


def test_replay_passes_on_the_committed_fixtures(committed_replay):
    run = committed_replay
    assert run.passed, problems_text(run)
    training = len(manifest(FIXTURES / "training")["cases"])  # tests/test_training_fixtures.py
    assert run.ran == run.expected == len(manifest(FIXTURES)["cases"]) + training


def test_every_layer_spec_has_fixtures_covering_every_option_value_and_bucket(committed_replay):
    run = committed_replay
    for spec in all_specs():
        spec_run = run.runs[spec.name]
        assert spec_run.cases >= len(spec.coverage_cases())
        assert not spec_run.missing_coverage(spec)
        assert not spec_run.missing_buckets(spec)


def test_manifest_records_versions_settings_cpu_seed_and_a_checksum_per_file():
    m = manifest(FIXTURES)
    assert {"tensorflow", "tf_keras", "numpy"} <= set(m["versions"])
    assert m["reference_settings"]["TF_USE_LEGACY_KERAS"] == "1"
    assert m["cpu"] and isinstance(m["seed"], int)
    listed = {e["file"] for e in m["cases"]}
    assert listed == {p.name for p in FIXTURES.glob("*.npz")}
    for entry in m["cases"]:
        assert sha256_file(FIXTURES / entry["file"]) == entry["sha256"]
        assert entry["layer"] == entry["id"].partition("?")[0]
    origins = {e["origin"] for e in m["cases"]}
    assert {"sweep", "bucket", "random"} <= origins


def test_the_fixture_set_is_small():
    total = sum(p.stat().st_size for p in FIXTURES.iterdir())
    assert total < MAX_TOTAL_BYTES, f"fixtures take {total / 2**20:.2f} MiB"


def test_fixture_files_are_written_deterministically():
    path = FIXTURES / manifest(FIXTURES)["cases"][0]["file"]
    assert fixture_bytes(read_fixture(path)) == path.read_bytes()


def test_replay_imports_no_tensorflow():
    """Replay and fixture repro in a fresh interpreter where TensorFlow cannot be imported."""
    result = cli("replay", "--fixtures", str(FIXTURES), no_tf=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout
    stem = manifest(FIXTURES)["cases"][0]["file"].removesuffix(".npz")
    result = cli("repro", stem, "--fixtures", str(FIXTURES), no_tf=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "replayed" in result.stdout and "PASS" in result.stdout


# -- every way the set can be wrong -----------------------------------------------------------
# Each test damages a copy of the set and replays the damaged layer's fixtures only:
# the checks are per file, and a whole replay takes ~8 s.
def test_one_changed_byte_fails(tmp_path):
    directory = copy_fixtures(tmp_path)
    entry = manifest(directory)["cases"][3]
    path = directory / entry["file"]
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))
    run = replay(directory, layers=[entry["layer"]])
    assert not run.passed
    text = problems_text(run)
    assert entry["file"] in text and "altered" in text and entry["id"] in text
    assert run.ran == run.expected - 1


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not-a-fixture"])
def test_a_corrupt_fixture_with_a_matching_checksum_fails(tmp_path, damage):
    """Even if someone updates the checksum, a file that is not a fixture is caught."""
    directory = copy_fixtures(tmp_path)
    m = manifest(directory)
    entry = m["cases"][0]
    path = directory / entry["file"]
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 1000)
    else:
        np.savez(path.with_suffix(""), x=np.zeros(3))  # a valid npz, not a fixture
    entry["sha256"] = sha256_file(path)
    save_manifest(directory, m)
    run = replay(directory, layers=[entry["layer"]])
    assert not run.passed
    assert any("corrupt" in p and entry["file"] in p for p in run.problems), run.problems


def test_a_removed_fixture_fails(tmp_path):
    directory = copy_fixtures(tmp_path)
    entry = manifest(directory)["cases"][-1]
    (directory / entry["file"]).unlink()
    run = replay(directory, layers=[entry["layer"]])
    assert not run.passed
    assert any("missing" in p and entry["file"] in p for p in run.problems)
    assert any(f"only {run.expected - 1} of the {run.expected}" in p for p in run.problems)


def test_a_manifest_entry_for_an_unknown_spec_fails(tmp_path):
    directory = copy_fixtures(tmp_path)
    m = manifest(directory)
    fake = dict(m["cases"][0])
    fake.update(layer="conv9d", id=fake["id"].replace("activation?", "conv9d?", 1))
    m["cases"].append(fake)
    save_manifest(directory, m)
    run = replay(directory, layers=["conv9d"])
    assert not run.passed
    assert any("'conv9d'" in p and "does not exist" in p for p in run.problems)


def test_zero_cases_fail(tmp_path):
    directory = copy_fixtures(tmp_path)
    m = manifest(directory)
    m["cases"] = []
    save_manifest(directory, m)
    run = replay(directory, kinds=["layers"])
    assert not run.passed and run.ran == 0
    assert any("no fixture cases" in p for p in run.problems)
    run = replay(directory, check_coverage=False, kinds=["layers"])
    assert not run.passed


def test_a_layer_spec_without_fixtures_fails(tmp_path):
    directory = copy_fixtures(tmp_path)
    m = manifest(directory)
    m["cases"] = [e for e in m["cases"] if e["layer"] != "activation"]
    save_manifest(directory, m)
    run = replay(directory, layers=["activation"])
    assert not run.passed
    assert any(
        "'activation' has no fixtures" in p and "nntk-parity record --layer activation" in p
        for p in run.problems
    )


def test_fixtures_missing_an_option_value_fail(tmp_path):
    directory = copy_fixtures(tmp_path)
    m = manifest(directory)
    m["cases"] = [e for e in m["cases"] if "%22selu%22" not in e["id"]]
    save_manifest(directory, m)
    run = replay(directory, layers=["activation"])
    assert not run.passed
    assert any("never exercise" in p and "selu" in p for p in run.problems)


def test_a_wrong_reference_fails_the_case_and_names_it(tmp_path):
    """Replay really compares: a fixture whose float64 reference is off fails."""
    directory = copy_fixtures(tmp_path)
    m = manifest(directory)
    entry = next(e for e in m["cases"] if e["layer"] == "dense")
    path = directory / entry["file"]
    fixture = read_fixture(path)
    fixture.float64["grad:kernel"] = fixture.float64["grad:kernel"] * (1 + 1e-3)
    write_bytes(path, fixture_bytes(fixture))
    entry["sha256"] = sha256_file(path)
    save_manifest(directory, m)
    run = replay(directory, layers=["dense"])
    assert not run.passed and not run.problems
    [failed] = run.failed_cases
    message = failed.failure_message()
    assert failed.case.id == entry["id"] and "kernel grad [" in message
    assert "FAIL grad:kernel" in message


def test_a_broken_native_side_fails_replay():
    class FakeZeroKernelGradient(NativeBackend):
        def run(self, spec, case, data):
            q = super().run(spec, case, data)
            if "grad:kernel" in q:
                q["grad:kernel"] = np.zeros_like(q["grad:kernel"])
            return q

    run = replay(FIXTURES, layers=["dense"], backend=FakeZeroKernelGradient())
    assert not run.passed
    assert all("FAIL grad:kernel" in r.failure_message() for r in run.failed_cases)
    assert "replay this fixture (no TensorFlow): nntk-parity repro dense-" in (
        run.runs["dense"].failure
    )


def test_unreadable_manifest_is_a_fixture_error(tmp_path):
    from parity.fixtures import FixtureError

    directory = copy_fixtures(tmp_path)
    (directory / "manifest.json").write_text("{not json")
    with pytest.raises(FixtureError, match="unreadable manifest"):
        replay(directory)
    with pytest.raises(FixtureError, match="no fixture directory"):
        replay(tmp_path / "nowhere")


# -- recording (TensorFlow) ---------------------------------------------------------------------
@pytest.mark.tf
def test_record_one_layer_into_a_copy_keeps_the_rest_and_replays(tmp_path):
    from parity import record
    from parity.specs import get_spec

    directory = copy_fixtures(tmp_path)
    before = manifest(directory)
    record.record(directory, [get_spec("activation")], seed=before["seed"])
    after = manifest(directory)
    others = [e for e in before["cases"] if e["layer"] != "activation"]
    assert [e for e in after["cases"] if e["layer"] != "activation"] == others

    # The coverage cases are the spec's, whatever the hypothesis version (the random
    # draws are deterministic for one hypothesis version only).
    def fixed(m):
        return [
            e["id"] for e in m["cases"] if e["layer"] == "activation" and e["origin"] != "random"
        ]

    assert fixed(after) == fixed(before)
    randoms = [e for e in after["cases"] if e["layer"] == "activation" and e["origin"] == "random"]
    assert len(randoms) == before["random_cases_per_layer"]
    run = replay(directory)
    assert run.passed, problems_text(run)


@pytest.mark.tf
def test_record_from_failure_adds_a_regression_fixture_that_a_rerecord_keeps(tmp_path):
    from parity import record
    from parity.specs import get_spec

    directory = copy_fixtures(tmp_path)
    case_id = (
        "dense?activation=%22elu%22&input_dim=7&units=2&use_bias=false"
        "&B=2&T=3&rank=3&seed=99&draw=large"
    )
    # the whole rerun: line of a failure message is accepted too
    entry, _ = record.record_failure(directory, f"  rerun: nntk-parity repro '{case_id}'")
    m = manifest(directory)
    assert entry in m["cases"] and entry["origin"] == "regression" and entry["id"] == case_id
    assert len(m["cases"]) == len(manifest(FIXTURES)["cases"]) + 1
    run = replay(directory)
    assert run.passed, problems_text(run)
    record.record(directory, [get_spec("dense")], seed=m["seed"])
    assert case_id in {e["id"] for e in manifest(directory)["cases"]}


@pytest.mark.tf
def test_fixtures_are_fresh():
    """Re-records the first fixture of every layer and compares with the stored one:
    a difference beyond tolerance is reference drift, reported with the versions."""
    from parity.freshness import check_freshness

    messages, checked = check_freshness(FIXTURES, per_layer=1)
    assert checked == len({e["layer"] for e in manifest(FIXTURES)["cases"]})
    assert not messages, "\n".join(messages)


@pytest.mark.tf
def test_freshness_reports_drift_with_the_version_difference(tmp_path):
    from parity.freshness import check_freshness

    directory = copy_fixtures(tmp_path)
    m = manifest(directory)
    m["versions"]["tensorflow"] = "2.0.0"
    entry = m["cases"][0]
    path = directory / entry["file"]
    fixture = read_fixture(path)
    name = sorted(fixture.float64)[0]
    fixture.float64[name] = fixture.float64[name] + 0.5
    write_bytes(path, fixture_bytes(fixture))
    entry["sha256"] = sha256_file(path)
    save_manifest(directory, m)
    messages, _ = check_freshness(directory, per_layer=1, layers=[entry["layer"]])
    assert messages
    text = "\n".join(messages)
    assert "reference drift" in text and entry["file"] in text and "tensorflow 2.0.0 ->" in text
    json.dumps(messages)


def test_every_case_data_field_round_trips_through_a_fixture(tmp_path):
    """A field added to CaseData later is stored and read back too (no silent drop)."""
    import dataclasses

    entries = manifest(FIXTURES)["cases"]
    for n, entry in enumerate(entries[:: max(1, len(entries) // 5)]):
        fixture = read_fixture(FIXTURES / entry["file"])
        path = tmp_path / f"{n}.npz"
        write_bytes(path, fixture_bytes(fixture))
        again = read_fixture(path)
        assert again.case_id == fixture.case_id and again.origin == fixture.origin
        for f in dataclasses.fields(fixture.data):
            a, b = getattr(fixture.data, f.name), getattr(again.data, f.name)
            if isinstance(a, np.ndarray):
                assert np.array_equal(a, b) and a.dtype == b.dtype
            elif isinstance(a, list) and a and isinstance(a[0], np.ndarray):
                assert all(
                    np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(a, b, strict=True)
                )
            else:
                assert a == b, f.name
        for name in fixture.float64:
            assert again.float64[name].dtype == np.float64
            assert np.array_equal(again.float64[name], fixture.float64[name])
            assert np.array_equal(again.float32[name], fixture.float32[name])
