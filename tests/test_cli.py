"""`nntk-parity` as a user runs it, in a fresh interpreter: bad input gives a clear
message and a non-zero exit status, never a bare traceback."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from helpers import FIXTURES, cli, copy_fixtures, manifest

from parity.cli import EXIT_FAILED, EXIT_USAGE

pytestmark = pytest.mark.harness


def assert_clean_failure(result, status: int, *needles: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == status, output
    assert "Traceback" not in output, output
    for needle in needles:
        assert needle in output, output


@pytest.mark.parametrize("command", ["run", "replay", "record"])
def test_unknown_layer_name(command):
    result = cli(command, "--layer", "nosuch", no_tf=command == "replay")
    assert_clean_failure(result, EXIT_USAGE, "unknown layer nosuch", "known: activation")


def test_corrupt_fixture(tmp_path):
    directory = copy_fixtures(tmp_path)
    entry = manifest(directory)["cases"][0]
    (directory / entry["file"]).write_bytes(b"PK\x03\x04 not really a zip")
    result = cli("replay", "--fixtures", str(directory), no_tf=True)
    assert_clean_failure(result, EXIT_FAILED, entry["file"], "altered", "FAILED")


def test_unreadable_manifest_and_missing_directory(tmp_path):
    directory = copy_fixtures(tmp_path)
    (directory / "manifest.json").write_text("[")
    result = cli("replay", "--fixtures", str(directory), no_tf=True)
    assert_clean_failure(result, EXIT_FAILED, "unreadable manifest")
    result = cli("replay", "--fixtures", str(tmp_path / "nowhere"), no_tf=True)
    assert_clean_failure(result, EXIT_FAILED, "no fixture directory")


@pytest.mark.parametrize("command", ["run", "replay"])
def test_unwritable_report_directory(tmp_path, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = cli(
        command, "--fixtures" if command == "replay" else "--profile",
        str(FIXTURES) if command == "replay" else "dev",
        "--report", str(blocker / "reports"),
        no_tf=True,  # refused before anything runs, TensorFlow included
    )  # fmt: skip
    assert_clean_failure(result, EXIT_USAGE, "cannot write the report to")


def test_replay_writes_a_report(tmp_path):
    result = cli("replay", "--fixtures", str(FIXTURES), "--report", str(tmp_path), no_tf=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("report.json", "report.md", "report.html", "junit.xml"):
        assert (tmp_path / name).is_file()


def test_library_that_cannot_be_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("NNTK_CORE_LIB", str(tmp_path / "missing.so"))
    result = cli("replay", "--fixtures", str(FIXTURES), no_tf=True)
    assert_clean_failure(result, EXIT_USAGE, "cannot load the native library", "missing.so")


def test_repro_of_a_fixture_prints_every_quantity_with_its_worst_elements():
    entry = next(e for e in manifest(FIXTURES)["cases"] if e["layer"] == "dense")
    stem = entry["file"].removesuffix(".npz")
    result = cli("repro", stem, "--fixtures", str(FIXTURES), no_tf=True)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert entry["id"] in out and "PASS" in out
    for quantity in ("output:inference", "output:training", "grad:input", "grad:kernel"):
        assert f"ok   {quantity}" in out
    assert out.count("kernel grad [in=") >= 5  # the worst elements, in the layer's terms
    assert "ranked by the share of the elementwise tolerance they use" in out  # said, not implied
    # a path to the file works too
    result = cli("repro", str(FIXTURES / entry["file"]), no_tf=True)
    assert result.returncode == 0 and entry["id"] in result.stdout


def test_repro_of_an_altered_fixture_fails_clearly(tmp_path):
    directory = copy_fixtures(tmp_path)
    entry = manifest(directory)["cases"][0]
    path = directory / entry["file"]
    content = bytearray(path.read_bytes())
    content[100] ^= 0xFF
    path.write_bytes(bytes(content))
    result = cli("repro", entry["file"], "--fixtures", str(directory), no_tf=True)
    assert_clean_failure(result, EXIT_FAILED, "altered")


@pytest.mark.parametrize(
    ("ident", "needle"),
    [
        ("dense-0000000000", "neither a case id"),
        ("dense?B=1", "lacks"),
        ("nosuch?B=1&T=1&rank=2&seed=1", "no layer spec named 'nosuch'"),
    ],
)
def test_repro_bad_ids(ident, needle):
    result = cli("repro", ident, "--fixtures", str(FIXTURES), no_tf=True)
    assert_clean_failure(result, EXIT_USAGE, needle)


def test_record_from_failure_of_an_unknown_layer(tmp_path):
    result = cli(
        "record", "--out", str(tmp_path), "--from-failure", "nosuch?B=1&T=1&rank=2&seed=1",
        no_tf=True,  # refused before TensorFlow is needed
    )  # fmt: skip
    assert_clean_failure(result, EXIT_USAGE, "no layer spec named 'nosuch'")


def test_list():
    result = cli("list", no_tf=True)
    assert result.returncode == 0 and "dense" in result.stdout


@pytest.mark.tf
def test_run_with_a_report_writes_the_four_files(tmp_path):
    result = cli("run", "--layer", "activation", "--profile", "dev", "--report", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "report written to" in result.stdout
    root = ET.parse(tmp_path / "junit.xml").getroot()
    names = [c.get("name") for c in root.iter("testcase")]
    assert sorted(names) == sorted(
        ["output:inference", "output:training", "grad:input", "coverage", "run"]
    )
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html and "tensorflow=" in html


def test_the_console_prints_element_locations_and_the_failure_matrix():
    """`[unit=3]` must not be taken for rich markup and deleted."""
    import io
    import re

    from rich.console import Console
    from test_report import failing_dense_runs  # a fake zero bias gradient on dense

    from parity import terminal
    from parity.specs import get_spec

    runs = failing_dense_runs()
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, highlight=False)
    console.print(terminal.summary_table(runs, [get_spec("dense")]))
    terminal.print_failures(console, runs, [get_spec("dense")])
    out = buffer.getvalue()
    locations = re.findall(r"worst bias grad \[unit=\d+\]", runs[0].failure)
    assert locations and all(where in out for where in locations)
    assert re.search(r"│ \[unit=\d+\] +│ FAIL", out)  # the table's worst element column
    assert "failure matrix: dense" in out and "A value whose cases all fail" in out
    use_bias_true = next(line for line in out.splitlines() if "use_bias" in line and "true" in line)
    cases = int(use_bias_true.split("│")[3])
    assert f"{cases}/{cases}" in use_bias_true  # every case with a bias fails its gradient


def test_progress_lines_appear_in_a_log():
    import io

    from rich.console import Console

    from parity.terminal import Progress

    buffer = io.StringIO()
    console = Console(file=buffer, width=200)  # not a terminal: a log
    with Progress(console, "run (ci)", 9) as progress:
        progress.LOG_EVERY = 0.0
        progress.layer(3, "gru")
        progress.stage("hypothesis search", 200)
        for _ in range(50):
            progress.advance()
    lines = buffer.getvalue().splitlines()
    assert lines[0].startswith("run (ci) | layer 3/9 gru | hypothesis search: 0/200 cases")
    assert "50/200 cases | elapsed 0:00 | ETA 0:0" in lines[-1]
    assert lines[-1].endswith("for this stage")
