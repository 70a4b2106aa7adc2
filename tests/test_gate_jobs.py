"""The live gate in parallel and in shards: `nntk-parity run -j N`, `--shard I/N` and
`nntk-parity report merge` give the report of a one-process run, timings apart
(parity/parallel.py, parity/shards.py). The shard partition, the shard file and the
merge's refusals without TensorFlow; the reports compared with real TensorFlow on
small layer subsets."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import numpy as np
import pytest
from helpers import cli
from hypothesis import settings

from parity import parallel, report_data, shards
from parity.compare import Tolerance, compare
from parity.report_data import without_timings
from parity.runner import CaseResult, run_case
from parity.spec_run import plan_spec, run_spec
from parity.specs import get_spec
from parity.terminal import EXIT_OK, EXIT_USAGE

pytestmark = pytest.mark.harness


# -- the partition ---------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_every_case_is_in_exactly_one_shard_and_the_shares_are_even(count):
    positions = range(100)
    owners = [
        [i for i in range(1, count + 1) if shards.Shard(i, count).takes(p)] for p in positions
    ]
    assert all(len(owner) == 1 for owner in owners)
    shares = [sum(owner == [i] for owner in owners) for i in range(1, count + 1)]
    assert max(shares) - min(shares) <= 1


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2", "1/2/3"])
def test_a_bad_shard_is_refused(text):
    with pytest.raises(ValueError, match="I/N"):
        shards.Shard.parse(text)


# -- the shard file, with results made without TensorFlow ------------------------------------
TOLERANCE = Tolerance(atol=1e-6, rtol=1e-5, reason="a test's")


def made_results(plan) -> list[CaseResult]:
    """A result per planned case without running it (no TensorFlow): comparisons of
    made-up arrays, one passing, one failing with non-finite figures, one that raised."""
    rng = np.random.default_rng(1)
    results = []
    for i, case in enumerate(plan.cases):
        reference = rng.standard_normal((2, 3, 4))
        native = reference + (1e-3 if i % 5 == 0 else 1e-9)
        native[0, 0, 0] = np.inf if i % 7 == 0 else native[0, 0, 0]
        result = CaseResult(case)
        if i % 11 == 3:
            result.error, result.unsupported = "RuntimeError: made up", i % 2 == 0
        else:
            result.comparisons = [
                compare("output:inference", native, reference, reference, TOLERANCE),
                compare("grad:kernel", reference, reference, None, TOLERANCE),
            ]
        results.append(result)
    return results


def exact(result: CaseResult) -> str:
    """A result's every field as text (NaN equal to NaN)."""
    fields = [asdict(c) for c in result.comparisons]
    return json.dumps([result.case.id, result.error, result.unsupported, fields])


@pytest.fixture
def two_shards(tmp_path):
    """dense's ci plan, its made-up results written as shards 1/2 and 2/2."""
    spec = get_spec("dense")
    plan = plan_spec(spec, settings.get_profile("ci"))
    results = made_results(plan)
    done = {}
    for index in (1, 2):
        shard = shards.Shard(index, 2)
        part = parallel.CaseResults.empty([plan])
        for position, _, i, _ in parallel.positions([plan]):
            if shard.takes(position):
                part.add("dense", i, results[i], 0.25)
        directory = tmp_path / f"shard{index}"
        directory.mkdir()
        meta = {"versions": {"tensorflow": "x"}, "cpu": f"machine {index}"}
        done[index] = shards.write(directory, shard, "ci", [plan], part, meta)
    return spec, plan, results, done


def plan_again(name, seed):
    return plan_spec(get_spec(name), settings.get_profile("ci"), seed)


def test_a_shard_file_gives_back_every_result_exactly(two_shards):
    spec, plan, results, written = two_shards
    merged = shards.read([str(p.parent) for p in written.values()], plan_again)
    back = merged.done.results["dense"]
    assert sorted(back) == list(range(len(plan.cases)))
    assert [exact(back[i]) for i in range(len(plan.cases))] == [exact(r) for r in results]
    assert any(math.isinf(c.max_error) for r in results for c in r.comparisons)  # kept as such
    assert merged.done.seconds["dense"] == pytest.approx(0.25 * len(plan.cases))
    assert merged.meta["cpu"] == "machine 1" and merged.profile == "ci"


def test_the_merge_refuses_shards_that_are_not_one_whole_run(two_shards, tmp_path):
    _, _, _, written = two_shards
    first, second = str(written[1]), str(written[2])
    with pytest.raises(shards.ShardError, match="missing 2/2"):
        shards.read([first], plan_again)
    with pytest.raises(shards.ShardError, match="given twice"):
        shards.read([first, first, second], plan_again)
    other = json.loads(written[2].read_text())
    other["specs"][0]["seed"] += 1
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(shards.ShardError, match="different runs"):
        shards.read([first, str(tmp_path / "other.json")], plan_again)
    other = json.loads(written[2].read_text())
    other["meta"]["versions"] = {"tensorflow": "y"}
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(shards.ShardError, match="different versions"):
        shards.read([first, str(tmp_path / "other.json")], plan_again)
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(shards.ShardError, match="not a shard file"):
        shards.read([first, str(tmp_path / "other.json")], plan_again)
    (tmp_path / "empty").mkdir()
    with pytest.raises(shards.ShardError, match="no shard file"):
        shards.read([str(tmp_path / "empty")], plan_again)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--shard", "1/2"], "give --report DIR"),
        (["--shard", "3/2"], "I/N with 1 <= I <= N"),
        (["-j", "0"], "a number of processes >= 1"),
        (["--profile", "dev", "--shard", "1/2", "--report", "REPORT"], "needs --seed N"),
    ],
)
def test_bad_parallel_options_are_refused_before_anything_runs(args, needle, tmp_path):
    args = [str(tmp_path) if a == "REPORT" else a for a in args]
    result = cli("run", "--layer", "dense", *args, no_tf=True)
    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_merging_nothing_is_refused(tmp_path):
    result = cli("report", "merge", str(tmp_path / "nowhere"), no_tf=True)
    assert result.returncode == EXIT_USAGE and "no such shard file" in result.stderr


# -- with TensorFlow ---------------------------------------------------------------------------
class FakeZeroBiasGradient:
    """A fake native side: the real library, but a zero bias gradient (a failure for
    every case with a bias, for the merge to group and shrink)."""

    def run(self, spec, case, data):
        from parity.runner import NativeBackend

        quantities = NativeBackend().run(spec, case, data)
        if "grad:bias" in quantities:
            quantities["grad:bias"] = np.zeros_like(quantities["grad:bias"])
        return quantities


@pytest.mark.tf
def test_two_shards_merged_find_and_shrink_what_one_run_does(tmp_path):
    """A failing layer: the shards' merge reports the same distinct failures, shrunk
    to the same minimal cases, with the same figures, as a one-process run."""
    spec = get_spec("dense")
    chosen = settings(settings.get_profile("ci"), max_examples=10)
    backend = FakeZeroBiasGradient()
    whole = run_spec(spec, backend, chosen, seed=5)
    assert whole.failure and any(f.shrunk for f in whole.findings)

    plans = parallel.plan_specs([spec], 5, chosen)
    for index in (1, 2):
        done = parallel.run_selected(
            [spec], plans, shards.Shard(index, 2).takes, None, backend=backend
        )
        shards.write(tmp_path, shards.Shard(index, 2), "ci", plans, done, {})
    merged = shards.read(
        [str(tmp_path)], lambda name, seed: plan_spec(get_spec(name), chosen, seed)
    )
    runs = parallel.finish_all(
        [spec],
        merged.plans,
        merged.done,
        run_one=lambda s, case, _: run_case(s, case, backend),
        hypothesis_settings=chosen,
    )
    one, two = (without_timings(report_data.build(r, [spec], "ci")) for r in ([whole], runs))
    assert one == two
    assert runs[0].failure == whole.failure


@pytest.mark.tf
def test_parallel_and_sharded_runs_write_the_report_of_one_process(tmp_path):
    """`run -j 1`, `run -j 2`, and two shards merged: the same report.json."""
    layers = ["--layer", "dense", "--layer", "global_max_pool1d", "--profile", "dev"]
    layers += ["--seed", "7"]
    reports = {}
    for name, extra in [("j1", ["-j", "1"]), ("j2", ["-j", "2"])]:
        result = cli("run", *layers, *extra, "--report", str(tmp_path / name))
        assert result.returncode == EXIT_OK, result.stdout + result.stderr
        reports[name] = tmp_path / name
    for index in (1, 2):
        result = cli(
            "run",
            *layers,
            "-j",
            "1",
            "--shard",
            f"{index}/2",
            "--report",
            str(tmp_path / f"s{index}"),
        )
        assert result.returncode == EXIT_OK, result.stdout + result.stderr
        assert f"shard {index}/2:" in result.stdout
    result = cli(
        "report",
        "merge",
        str(tmp_path / "s1"),
        str(tmp_path / "s2"),
        "--report",
        str(tmp_path / "merged"),
    )
    assert result.returncode == EXIT_OK, result.stdout + result.stderr
    assert "2 layers" in result.stdout and "passed" in result.stdout
    reports["merged"] = tmp_path / "merged"
    loaded = {
        name: json.loads((path / "report.json").read_text()) for name, path in reports.items()
    }
    assert loaded["j1"]["layers"][0]["cases"] > 30  # the coverage cases and the draws
    assert without_timings(loaded["j2"]) == without_timings(loaded["j1"])
    assert without_timings(loaded["merged"]) == without_timings(loaded["j1"])


def test_tasks_hold_every_case_once_and_each_keras_twin_in_one_task():
    specs = [get_spec("dense"), get_spec("conv1d")]
    plans = parallel.plan_specs(specs, None, settings.get_profile("ci"))
    selected = [(name, index, case) for _, name, index, case in parallel.positions(plans)]
    tasks = parallel.chunks(selected)
    run = [(name, index) for name, chunk in tasks for index, _ in chunk]
    assert sorted(run) == sorted((name, index) for name, index, _ in selected)
    twins = {}
    for number, (name, chunk) in enumerate(tasks):
        for _, case in chunk:
            assert case.layer == name
            twins.setdefault((name, json.dumps(case.config, sort_keys=True), case.rank), set()).add(
                number
            )
    assert all(len(numbers) == 1 for numbers in twins.values())
    assert len(twins) < len(selected)  # some twins serve several cases
    # a task exceeds CHUNK only with the cases of a single twin
    for _, chunk in tasks:
        keys = {(json.dumps(case.config, sort_keys=True), case.rank) for _, case in chunk}
        assert len(chunk) <= parallel.CHUNK or len(keys) == 1


class FakePool:
    """A stand-in for parallel.CasePool (no processes, no TensorFlow): a passing
    made-up result per case, yielded task by task; `log` records what happens."""

    def __init__(self, log: list):
        self.log = log

    def run(self, tasks):
        for name, chunk in tasks:
            for index, case in chunk:
                self.log.append(("result", name))
                yield name, index, self.result(case), 0.0

    def run_one(self, spec, case, backend=None):
        return self.result(case)

    def result(self, case) -> CaseResult:
        reference = np.ones(3)
        return CaseResult(
            case, [compare("output:inference", reference, reference, None, TOLERANCE)]
        )


def test_each_spec_is_finished_as_its_last_case_comes_in_with_the_runs_of_one_pass():
    specs = [get_spec("dense"), get_spec("conv1d")]
    plans = parallel.plan_specs(specs, None, settings.get_profile("ci"))
    log = []
    runs = parallel.run_and_finish(
        specs, plans, FakePool(log), on_finished=lambda spec, run: log.append(("done", spec.name))
    )
    dense_cases = len(plans[0].cases)
    assert log[dense_cases] == ("done", "dense")  # before any conv1d result
    assert log[-1] == ("done", "conv1d") and len(log) == dense_cases + len(plans[1].cases) + 2
    done = parallel.CaseResults.empty(plans)
    pool = FakePool([])
    for name, index, result, seconds in pool.run(
        parallel.chunks([(name, index, case) for _, name, index, case in parallel.positions(plans)])
    ):
        done.add(name, index, result, seconds)
    whole = parallel.finish_all(specs, plans, done, run_one=pool.run_one)
    one, two = (without_timings(report_data.build(r, specs, "ci")) for r in (whole, runs))
    assert one == two and one["layers"][0]["cases"] == dense_cases


@pytest.mark.tf
def test_the_workers_run_tensorflow_with_the_reference_thread_counts():
    """The workers are forked from a process that imported TensorFlow without starting
    its runtime (parity/worker_preload.py); each must still start it with the reference
    settings (parity/settings.py: one intra-op and one inter-op thread)."""
    from parity import reference

    threading = reference.tensorflow().config.threading
    with parallel.CasePool(2) as pool:
        asked = [
            (
                pool.executor.submit(threading.get_intra_op_parallelism_threads),
                pool.executor.submit(threading.get_inter_op_parallelism_threads),
            )
            for _ in range(4)
        ]
        counts = {(intra.result(), inter.result()) for intra, inter in asked}
    assert counts == {(1, 1)}
