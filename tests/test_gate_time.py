"""The gate-time benchmark's own logic (nntk_bench/gate_time.py, gate_probe.py), with a
fake gate runner and a fake clock: the run order, the medians, the three comparisons,
the table, the probe's exclusive stage times. No gate runs here; the measurement itself
is the benchmark (docs/bench/README.md, Gate time)."""

import copy
import os
import statistics
import sys

import pytest

from nntk_bench import gate_probe
from nntk_bench.gate_time import (
    jobs_markdown,
    markdown,
    measure,
    run_accounted,
    schedule,
    startup,
    summarize,
    summarize_jobs,
)

pytestmark = pytest.mark.harness


def fake_run(total: float, layers: dict[str, float]) -> dict:
    """A run as run_gate returns it: CPU time half the wall time throughout."""
    return {
        "wall_s": total,
        "cpu_s": total / 2,
        "load_before": (1.0, 1.0, 1.0),
        "load_after": (1.0, 1.0, 1.0),
        "layers": {n: {"wall_s": t, "cpu_s": t / 2, "cases": 10} for n, t in layers.items()},
    }


class FakeGate:
    """Answers run_once(side) from a queue of prepared runs per side, recording the order."""

    def __init__(self, runs: dict[str, list[dict]]):
        self.runs = copy.deepcopy(runs)  # the tests alter what it answers
        self.calls: list[str] = []

    def __call__(self, side: str) -> dict:
        self.calls.append(side)
        return self.runs[side].pop(0)


BASE_RUNS = [
    fake_run(10.0, {"dense": 4.0, "gru": 5.0}),
    fake_run(14.0, {"dense": 6.0, "gru": 7.0}),
    fake_run(11.0, {"dense": 3.0, "gru": 6.0}),
]
TODAY_RUNS = [
    fake_run(20.0, {"dense": 5.0, "gru": 6.0, "layer_norm": 7.0}),
    fake_run(17.0, {"dense": 4.0, "gru": 6.5, "layer_norm": 5.0}),
    fake_run(30.0, {"dense": 9.0, "gru": 9.0, "layer_norm": 9.0}),
]


def measured() -> tuple[list[dict], FakeGate]:
    gate = FakeGate({"base": BASE_RUNS, "today": TODAY_RUNS})
    return measure(["base", "today"], 3, gate, log=lambda _: None), gate


def test_the_sides_alternate_every_round():
    runs, gate = measured()
    assert gate.calls == ["base", "today"] * 3
    assert [(r["round"], r["side"]) for r in runs] == schedule(["base", "today"], 3)
    assert [r["round"] for r in runs] == [0, 0, 1, 1, 2, 2]


def test_medians_are_per_side_over_the_rounds():
    runs, _ = measured()
    summary = summarize(runs)
    base, today = summary["sides"]["base"], summary["sides"]["today"]
    assert base["total"]["wall_s"] == statistics.median(r["wall_s"] for r in BASE_RUNS)
    assert today["total"]["cpu_s"] == statistics.median(r["cpu_s"] for r in TODAY_RUNS)
    gru = [r["layers"]["gru"]["wall_s"] for r in TODAY_RUNS]
    assert today["layers"]["gru"]["wall_s"] == statistics.median(gru)
    assert base["startup"]["wall_s"] == statistics.median(startup(r)["wall_s"] for r in BASE_RUNS)
    assert summary["original_layers"] == ["dense", "gru"]
    assert summary["new_layers"] == ["layer_norm"]


def test_the_original_layers_figure_leaves_the_new_layers_out_run_by_run():
    runs, _ = measured()
    summary = summarize(runs)
    # per today run: everything but layer_norm; the median over the runs
    expected = statistics.median(
        r["wall_s"] - r["layers"]["layer_norm"]["wall_s"] for r in TODAY_RUNS
    )
    original = summary["comparisons"]["b_today_original_layers"]
    assert original["wall_s"] == pytest.approx(expected)
    base_total = summary["comparisons"]["a_base"]["wall_s"]
    assert summary["growth"]["b_over_a"]["wall_s"] == pytest.approx(expected / base_total)
    all_layers = summary["comparisons"]["c_today_all_layers"]["wall_s"]
    assert summary["growth"]["c_over_a"]["wall_s"] == pytest.approx(all_layers / base_total)
    assert all_layers > original["wall_s"]


def test_a_base_layer_missing_today_is_refused():
    runs, _ = measured()
    for run in runs:
        if run["side"] == "today":
            del run["layers"]["gru"]
    with pytest.raises(ValueError, match="gru"):
        summarize(runs)


def test_the_table_has_every_layer_and_no_base_figure_for_a_new_one():
    runs, _ = measured()
    table = markdown({"summary": summarize(runs)})
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()}
    assert {"dense", "gru", "layer_norm", "start-up and summary"} <= set(rows)
    new = rows["layer_norm"].split(" | ")
    assert new[1] == "—" and new[3] == "—" and new[5] == "—"
    dense = rows["dense"].split(" | ")
    base_dense = statistics.median(r["layers"]["dense"]["wall_s"] for r in BASE_RUNS)
    today_dense = statistics.median(r["layers"]["dense"]["wall_s"] for r in TODAY_RUNS)
    assert dense[5] == f"{today_dense / base_dense:.2f}"


def test_stage_times_are_exclusive(monkeypatch):
    """A fake clock that advances 1 s of wall and 0.5 s of CPU per reading: a stage
    entered inside another is charged to the inner one only."""
    ticks = iter(range(100))

    def fake_clock():
        t = next(ticks)
        return float(t), t / 2

    monkeypatch.setattr(gate_probe, "_clock", fake_clock)
    clock = gate_probe.StageClock()  # reading 0
    clock.layer = "gru"
    inner = clock.wrap(lambda: None, lambda: "nntk")
    outer = clock.wrap(lambda: inner(), lambda: "keras float32")
    outer()  # readings: enter outer 1, enter inner 2, leave inner 3, leave outer 4
    split = clock.as_json()["gru"]
    assert split["keras float32"] == {"wall_s": 2.0, "cpu_s": 1.0}  # 1->2 and 3->4
    assert split["nntk"] == {"wall_s": 1.0, "cpu_s": 0.5}  # 2->3


def test_paired_ratios_divide_the_runs_of_one_round():
    runs, _ = measured()
    paired = summarize(runs)["growth_paired_by_round"]["c_over_a"]
    ratios = [new["wall_s"] / old["wall_s"] for old, new in zip(BASE_RUNS, TODAY_RUNS, strict=True)]
    assert [r["wall_s"] for r in paired["per_round"]] == pytest.approx(ratios)
    assert paired["median"]["wall_s"] == pytest.approx(statistics.median(ratios))


def test_the_totals_count_the_cases_of_their_layers():
    runs, _ = measured()
    comparisons = summarize(runs)["comparisons"]
    assert comparisons["a_base"]["cases"] == 2 * 10
    assert comparisons["b_today_original_layers"]["cases"] == 2 * 10
    assert comparisons["c_today_all_layers"]["cases"] == 3 * 10


def jobs_run(wall: float, cpu: float, digest: str = "same") -> dict:
    """A run as run_command returns it."""
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "load_before": (2.0, 2.0, 2.0),
        "load_after": (3.0, 3.0, 3.0),
        "cases": 10,
        "passed": True,
        "layers": {"dense": {"cases": 10, "seconds": wall / 2}},
        "report_sha256": digest,
    }


def test_the_jobs_comparison_pairs_the_rounds_and_checks_the_reports():
    gate = FakeGate(
        {
            "base": [jobs_run(100.0, 90.0), jobs_run(120.0, 95.0), jobs_run(110.0, 92.0)],
            "today": [jobs_run(60.0, 96.0), jobs_run(50.0, 99.0, "other"), jobs_run(55.0, 97.0)],
        }
    )
    runs = measure(["base", "today"], 3, gate, log=lambda _: None)
    summary = summarize_jobs(runs)
    assert (
        summary["sides"]["base"]["wall_s"] == 110.0 and summary["sides"]["today"]["wall_s"] == 55.0
    )
    assert summary["ratio"]["wall_s"] == pytest.approx(0.5)
    per_round = [r["wall_s"] for r in summary["ratio_paired_by_round"]["per_round"]]
    assert per_round == pytest.approx([0.6, 50 / 120, 0.5])
    assert summary["identical_reports"] == [True, False, True]
    meta = {"sides": {s: {"commit": "c", "command": f"nntk-parity {s}"} for s in ("base", "today")}}
    table = jobs_markdown({"summary": summary, "meta": meta})
    assert "**0.50**" in table and "every round: False" in table


# A command that leaves an orphan: its child forks a grandchild that burns ~0.4 s of CPU
# after the child has exited (as the gate's fork server outlives the gate's process).
ORPHAN = """
import os, time
if os.fork() == 0:
    end = time.process_time() + 0.4
    while time.process_time() < end:
        pass
    os._exit(0)
os._exit(3)
"""


def test_the_cpu_time_of_a_process_that_outlives_the_command_is_counted(tmp_path):
    """Real processes: the orphan is adopted and waited for (nntk_bench/subreaper.py), so
    its CPU time counts and the command's status comes back."""
    status, wall, cpu = run_accounted(
        [sys.executable, "-c", ORPHAN], tmp_path, dict(os.environ), tmp_path / "log"
    )
    assert status == 3
    assert cpu >= 0.4
    assert wall >= 0.4  # the run ends when the orphan does
