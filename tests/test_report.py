"""Reports: report.json, report.md, report.html (with plots), junit.xml, from replayed
fixtures (no TensorFlow), passing and failing, with coverage gaps flagged."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from helpers import FIXTURES

from parity import report
from parity.replay import replay
from parity.report_tables import MATRIX_LEGEND, SUMMARY_COLUMNS, legend_lines
from parity.runner import NativeBackend
from parity.specs import all_specs, get_spec

pytestmark = pytest.mark.harness


def strict_json(path):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def junit_cases(path):
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return {(case.get("classname"), case.get("name")): case for case in root.iter("testcase")}, root


class FakeZeroBiasGradient(NativeBackend):
    """A fake native side: the real library, but a zero bias gradient."""

    def run(self, spec, case, data):
        q = super().run(spec, case, data)
        if "grad:bias" in q:
            q["grad:bias"] = np.zeros_like(q["grad:bias"])
        return q


def failing_dense_runs():
    """The dense fixtures replayed on FakeZeroBiasGradient (also used by test_cli.py)."""
    return list(replay(FIXTURES, layers=["dense"], backend=FakeZeroBiasGradient()).runs.values())


def no_plots(runs):
    """`plotted` for report.write that leaves every layer without a plot: for the tests
    of the tables (the plots take ~1.5 s a layer; the first test checks them)."""
    return {run.spec: None for run in runs}


@pytest.fixture(scope="module")
def passing_runs():
    run = replay(FIXTURES)
    assert run.passed
    return list(run.runs.values())


def test_writes_the_four_files_with_one_testcase_per_spec_and_quantity(tmp_path, passing_runs):
    paths = report.write(tmp_path, passing_runs, all_specs(), profile="fixtures", source="replay")
    assert sorted(p.name for p in paths) == sorted(report.FILES)
    cases, root = junit_cases(tmp_path / "junit.xml")
    quantity_cases = {(c, n) for c, n in cases if n not in ("coverage", "run")}
    expected = {(f"parity.{r.spec}", q) for r in passing_runs for q in r.stats}
    assert quantity_cases == expected
    assert len(cases) == len(expected) + 2 * len(passing_runs)  # + coverage and run per spec
    assert root.get("failures") == "0" and int(root.get("tests")) == len(cases)
    assert not any(case.find("failure") is not None for case in cases.values())

    data = strict_json(tmp_path / "report.json")
    assert data["passed"] and data["source"] == "replay"
    dense = next(layer for layer in data["layers"] if layer["layer"] == "dense")
    assert dense["quantities"]["grad:kernel"]["tolerance"]["reason"]
    assert dense["coverage"]["options"]["activation"]["gelu"] is True
    assert dense["coverage"]["buckets"]["B=1"] >= 1 and not dense["coverage"]["never_hit"]

    md = (tmp_path / "report.md").read_text()
    assert "PASSED" in md and "| dense | grad:kernel |" in md and "shape buckets" in md
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(passing_runs)  # one figure per layer
    assert "error along the time axis" not in html  # the title is inside the PNG
    for run in passing_runs:
        assert (tmp_path / "plots" / f"{run.spec}.png").read_bytes()[:4] == b"\x89PNG"
        assert f"plots/{run.spec}.png" in md


def test_a_failing_quantity_gets_a_failure_element(tmp_path):
    runs = failing_dense_runs()
    report.write(tmp_path, runs, [get_spec("dense")], source="replay", meta={"problems": []})
    cases, root = junit_cases(tmp_path / "junit.xml")
    failure = cases[("parity.dense", "grad:bias")].find("failure")
    assert failure is not None and "bias grad [" in failure.get("message")
    assert "nntk-parity repro" in failure.text
    assert cases[("parity.dense", "grad:kernel")].find("failure") is None
    assert cases[("parity.dense", "run")].find("failure") is None  # attributed to grad:bias
    assert root.get("failures") == "1"
    assert not strict_json(tmp_path / "report.json")["passed"]
    assert "FAILED" in (tmp_path / "report.md").read_text()
    assert "<h2>Failures</h2>" in (tmp_path / "report.html").read_text()


def test_coverage_gaps_and_run_failures_are_flagged(tmp_path, passing_runs):
    import copy

    runs = copy.deepcopy(passing_runs)
    dense = next(r for r in runs if r.spec == "dense")
    dense.buckets.pop("B=1")
    dense.coverage["activation"].discard("selu")
    activation = next(r for r in runs if r.spec == "activation")
    activation.failure = "parity failure: activation ...\n  the native side raised: boom"
    report.write(tmp_path, runs, all_specs(), plotted=no_plots(runs))
    cases, _ = junit_cases(tmp_path / "junit.xml")
    coverage = cases[("parity.dense", "coverage")].find("failure")
    assert coverage is not None and "B=1" in coverage.get("message")
    assert "selu" in coverage.get("message")
    run_failure = cases[("parity.activation", "run")].find("failure")
    assert run_failure is not None and "boom" in run_failure.text
    data = strict_json(tmp_path / "report.json")
    never = next(x for x in data["layers"] if x["layer"] == "dense")["coverage"]["never_hit"]
    assert never == {"activation": ["selu"], "shape buckets": ["B=1"]}
    md = (tmp_path / "report.md").read_text()
    assert "**Never exercised:**" in md and "B=1" in md
    assert 'class="miss">B=1 (never)' in (tmp_path / "report.html").read_text()


def test_non_finite_numbers_stay_strict_json(tmp_path, passing_runs):
    import copy

    runs = copy.deepcopy(passing_runs)
    next(iter(runs[0].stats.values())).worst_keras_multiple = float("inf")
    report.write(tmp_path, runs, all_specs(), plotted=no_plots(runs))
    strict_json(tmp_path / "report.json")


def test_reports_without_matplotlib_say_so(tmp_path, passing_runs, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    report.write(tmp_path, passing_runs, all_specs())
    assert "no plots: matplotlib is not installed" in (tmp_path / "report.html").read_text()
    assert not (tmp_path / "plots").exists()


def test_an_unwritable_report_directory_is_a_clear_error(tmp_path, passing_runs):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(report.ReportError, match="cannot write the report to"):
        report.write(blocker / "reports", passing_runs, all_specs())


def test_markdown_and_html_carry_the_same_columns_a_legend_the_matrix_and_reruns(tmp_path):
    runs = failing_dense_runs()
    report.write(tmp_path, runs, [get_spec("dense")], source="replay")
    md = (tmp_path / "report.md").read_text()
    page = (tmp_path / "report.html").read_text()
    header = "| " + " | ".join(SUMMARY_COLUMNS) + " |"
    assert header in md and "worst element" in header
    assert all(f"<th>{column}</th>" in page for column in SUMMARY_COLUMNS)
    for line in legend_lines():
        assert line.split(":")[0] in md
    assert "Legend:" in md and "Legend:" in page and "lower is better" in page
    # the failing quantity: its worst case, the element and the command to rerun it
    stats = runs[0].stats["grad:bias"]
    failing = md[md.index("## Failing quantities") :]
    row = next(line for line in failing.splitlines() if line.startswith("| dense | grad:bias | "))
    assert f"| {stats.failures} of {stats.cases} |" in row
    assert f"`{stats.worst_case}`" in row and stats.worst_location in row
    assert "`nntk-parity repro '" in row
    # the failure matrix: use_bias=True fails every case, False has no bias gradient
    assert "## Failure matrix: dense" in md and "Failure matrix: dense" in page
    true_row = next(line for line in md.splitlines() if line.startswith("| **use_bias** | **true"))
    cases = true_row.split("|")[3].strip()
    assert f"| {cases}/{cases} |" in true_row
    assert MATRIX_LEGEND in md
    data = strict_json(tmp_path / "report.json")
    assert data["layers"][0]["failing_columns"] == ["grad:bias"]


def test_plots_made_ahead_are_the_ones_the_report_makes(tmp_path, passing_runs):
    """`run -j N` plots each layer as soon as it is finished (report.plot) and hands
    the plots to report.write: the same images as the report makes itself."""
    specs = {spec.name: spec for spec in all_specs()}
    runs = passing_runs[:3]
    report.write(tmp_path / "here", runs, list(specs.values()))
    plotted = {run.spec: report.plot(run, specs[run.spec]) for run in runs[:2]}
    report.write(tmp_path / "ahead", runs, list(specs.values()), plotted=plotted)
    pngs = sorted(p.name for p in (tmp_path / "here" / "plots").glob("*.png"))
    assert pngs == sorted(f"{run.spec}.png" for run in runs)
    for name in pngs:
        here = (tmp_path / "here" / "plots" / name).read_bytes()
        assert (tmp_path / "ahead" / "plots" / name).read_bytes() == here
