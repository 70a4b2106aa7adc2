"""The live gate's cases run in parallel processes (`nntk-parity run -j N`), or a
deterministic share of them (`--shard I/N`), put back together into the same
SpecRuns a one-process run makes.

Every spec's cases are fixed before any runs (spec_run.plan_spec: the coverage cases
and the seeded search's draws, no TensorFlow), so they can run anywhere: here in a
pool of worker processes (concurrent.futures; forked from a fork server that has
imported TensorFlow once for all of them, each worker starting its own TensorFlow
runtime under the reference settings, which give TensorFlow one intra-op and one
inter-op thread, so N workers keep to N cores), or on another
machine (a shard). The results are recorded in the plan's order, and the failures
grouped and shrunk, by spec_run.finish_spec, as in a one-process run: the report is
the same, timings apart.

Hypothesis also draws values from the constants of the *local* modules loaded when it
draws (those not installed in a site-packages directory: a checkout on PYTHONPATH),
so from a checkout the cases drawn depend on which modules are loaded. Every way of
running (`nntk-parity run` with -j 1, -j N, --shard, and the merge's shrinking) plans
every spec first, with the command modules and the modules its cases need (the
imports below: parity.reference imports TensorFlow only when used) already loaded.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context

from parity import reference  # noqa: F401 (loaded before any draw: the module doc)
from parity.case import Case
from parity.runner import CaseResult
from parity.spec import LayerSpec
from parity.spec_run import SpecPlan, SpecRun, finish_spec, plan_spec

# Cases per task: few enough that the last tasks end together, enough that a task's
# round trip (pickling, the pool's bookkeeping: about a millisecond) is small against
# its cases (10-300 ms each).
CHUNK = 4


def default_jobs() -> int:
    """The cores this process may run on (its affinity mask where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def plan_specs(
    specs: list[LayerSpec], seed: int | None, hypothesis_settings=None
) -> list[SpecPlan]:
    """Every spec's plan under the loaded (or given) hypothesis profile."""
    return [plan_spec(spec, hypothesis_settings, seed) for spec in specs]


def positions(plans: list[SpecPlan]) -> Iterator[tuple[int, str, int, Case]]:
    """(position in the run, spec, index in its plan, case) over every planned case."""
    position = 0
    for plan in plans:
        for index, case in enumerate(plan.cases):
            yield position, plan.spec, index, case
            position += 1


# -- the worker processes ------------------------------------------------------------------
def _start_worker(verbose: bool) -> None:
    """Each worker: TensorFlow and tf.keras imported once, quietly, with the reference
    settings."""
    from parity import settings

    settings.set_verbose(verbose)
    reference.keras()


def _started() -> None:
    """A task that only makes the pool start a worker."""


def _run_cases(spec_name: str, cases: list[Case]) -> list[tuple[CaseResult, float]]:
    """A task: cases of one spec run in a worker, each with its wall time."""
    from parity.runner import run_case
    from parity.specs import get_spec

    spec = get_spec(spec_name)
    done = []
    for case in cases:
        start = time.perf_counter()
        result = run_case(spec, case)
        done.append((result, time.perf_counter() - start))
    return done


def _reference_meta() -> dict:
    from parity.terminal import reference_meta

    return reference_meta()


def _worker_context():
    """Workers forked from a fork server that imported TensorFlow, tf_keras and the
    harness once (parity/worker_preload.py), instead of each worker importing them
    (~3.5 s CPU each). The fork server never starts TensorFlow's runtime, so no
    TensorFlow thread is forked: each worker starts its own runtime, with the reference
    settings, in `reference.keras()`. Where there is no fork server: fresh interpreters."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return get_context("spawn")
    context = get_context("forkserver")
    context.set_forkserver_preload(["parity.worker_preload"])
    return context


class WorkerDied(Exception):
    """A worker process ended without an answer (killed, or crashed in native code)."""


class CasePool:
    """A pool of `jobs` worker processes that run cases (a context manager)."""

    def __init__(self, jobs: int):
        from parity import settings

        settings.quiet_tensorflow()  # the workers inherit the reference environment
        self.jobs = jobs
        self.executor = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=_worker_context(),
            initializer=_start_worker,
            initargs=(settings.verbose(),),
        )
        # Start every worker now (one task each), from a thread: a worker's start waits
        # for the fork server's imports (~4 s), which go on while this process draws
        # the cases. (The executor's submit is thread-safe: the first task of the run
        # waits for these starts, not the other way round.)
        self.starting = threading.Thread(target=self._start_workers, daemon=True)
        self.starting.start()

    def _start_workers(self) -> None:
        for _ in range(self.jobs):
            self.executor.submit(_started)

    def __enter__(self) -> CasePool:
        return self

    def __exit__(self, *exc) -> None:
        self.starting.join()
        # An interrupt or error: the queued tasks are dropped, the running ones end.
        self.executor.shutdown(wait=True, cancel_futures=exc[0] is not None)

    def _result(self, future, what: str):
        try:
            return future.result()
        except BrokenProcessPool as exc:
            raise WorkerDied(
                f"a worker process died while running {what} (crashed in native code, or "
                "killed); `-j 1` runs every case in this process, where the crash shows"
            ) from exc

    def run(self, tasks: list[tuple[str, list[tuple[int, Case]]]]):
        """Runs tasks (spec, [(index, case), ...]); yields (spec, index, result,
        seconds) as tasks finish."""
        pending = {}
        for spec_name, chunk in tasks:
            future = self.executor.submit(_run_cases, spec_name, [case for _, case in chunk])
            pending[future] = (spec_name, [index for index, _ in chunk])
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                spec_name, indices = pending.pop(future)
                done = self._result(future, f"cases of {spec_name}")
                for index, (result, seconds) in zip(indices, done, strict=True):
                    yield spec_name, index, result, seconds

    def run_one(self, spec: LayerSpec, case: Case, backend=None) -> CaseResult:
        """One case in a worker and its result (finish_spec's shrinking cases)."""
        if backend is not None:
            raise ValueError("the worker processes run the native library only")
        future = self.executor.submit(_run_cases, spec.name, [case])
        [(result, _)] = self._result(future, f"a case of {spec.name}")
        return result

    def reference_meta(self) -> dict:
        """The reference's description (TensorFlow's versions: from a worker, which has
        imported it), for a report's meta."""
        return self._result(self.executor.submit(_reference_meta), "the reference's versions")


def chunks(selected: list[tuple[str, int, Case]], size: int = CHUNK):
    """Tasks of about `size` cases of one spec, in the run's order, the cases of one
    Keras twin (a spec, config and input rank: reference.keras_layer's cache key) in
    one task, so that each twin is built in one worker only."""
    twins: dict[tuple, list[tuple[int, Case]]] = {}
    for spec_name, index, case in selected:
        key = (spec_name, json.dumps(case.config, sort_keys=True), case.rank)
        twins.setdefault(key, []).append((index, case))
    tasks: list[tuple[str, list[tuple[int, Case]]]] = []
    for (spec_name, *_), cases in twins.items():
        if not tasks or tasks[-1][0] != spec_name or len(tasks[-1][1]) + len(cases) > size:
            tasks.append((spec_name, []))
        tasks[-1][1].extend(cases)
    return tasks


@dataclass
class CaseResults:
    """Results by spec and plan index, with the time each case took."""

    results: dict[str, dict[int, CaseResult]]
    seconds: dict[str, float]

    @classmethod
    def empty(cls, plans: list[SpecPlan]) -> CaseResults:
        return cls({p.spec: {} for p in plans}, {p.spec: 0.0 for p in plans})

    def add(self, spec_name: str, index: int, result: CaseResult, seconds: float) -> None:
        self.results[spec_name][index] = result
        self.seconds[spec_name] += seconds


def run_selected(
    specs: list[LayerSpec],
    plans: list[SpecPlan],
    takes: Callable[[int], bool] | None,
    pool: CasePool | None,
    on_case: Callable[[CaseResult], None] | None = None,
    backend=None,
) -> CaseResults:
    """The plans' cases (those whose run position `takes` accepts, e.g. a shard's
    `Shard.takes`; None: all), in the pool's workers or, without a
    pool, here one after another (on `backend`: default the native library)."""
    by_name = {spec.name: spec for spec in specs}
    selected = [
        (spec_name, index, case)
        for position, spec_name, index, case in positions(plans)
        if takes is None or takes(position)
    ]
    done = CaseResults.empty(plans)
    if pool is not None:
        finished = pool.run(chunks(selected))
    else:
        finished = _run_here(by_name, selected, backend)
    for spec_name, index, result, seconds in finished:
        done.add(spec_name, index, result, seconds)
        if on_case is not None:
            on_case(result)
    return done


def _run_here(by_name, selected, backend):
    from parity.runner import run_case

    for spec_name, index, case in selected:
        start = time.perf_counter()
        result = run_case(by_name[spec_name], case, backend)
        yield spec_name, index, result, time.perf_counter() - start


def run_and_finish(
    specs: list[LayerSpec],
    plans: list[SpecPlan],
    pool: CasePool,
    on_case: Callable[[CaseResult], None] | None = None,
    on_stage: Callable[[str, int], None] | None = None,
    on_finished: Callable[[LayerSpec, SpecRun], None] | None = None,
) -> list[SpecRun]:
    """Every plan's cases in the pool's workers, each spec finished (`finish_all`)
    here as soon as its last result is in, and then `on_finished(spec, run)` (the
    report's plot of it): that work overlaps the later specs' cases instead of
    following them all. The runs in the specs' order, the same as run_selected and
    finish_all make."""
    by_name = {spec.name: spec for spec in specs}
    by_plan = {plan.spec: plan for plan in plans}
    waiting = {plan.spec: len(plan.cases) for plan in plans}
    done = CaseResults.empty(plans)
    runs: dict[str, SpecRun] = {}

    def finish(name: str) -> None:
        [runs[name]] = finish_all(
            [by_name[name]],
            [by_plan[name]],
            done,
            run_one=pool.run_one,
            on_case=on_case,
            on_stage=on_stage,
        )
        if on_finished is not None:
            on_finished(by_name[name], runs[name])

    for name in [name for name, count in waiting.items() if count == 0]:
        finish(name)
    selected = [(name, index, case) for _, name, index, case in positions(plans)]
    for name, index, result, seconds in pool.run(chunks(selected)):
        done.add(name, index, result, seconds)
        if on_case is not None:
            on_case(result)
        waiting[name] -= 1
        if waiting[name] == 0:
            finish(name)
    return [runs[spec.name] for spec in specs]


def _named(on_stage, name: str):
    return lambda stage, cases: on_stage(f"{name}: {stage}", cases)


def finish_all(
    specs: list[LayerSpec],
    plans: list[SpecPlan],
    done: CaseResults,
    run_one: Callable[..., CaseResult] | None = None,
    on_case: Callable[[CaseResult], None] | None = None,
    on_stage: Callable[[str, int], None] | None = None,
    backend=None,
    hypothesis_settings=None,
) -> list[SpecRun]:
    """Every spec's SpecRun from all its plan's results (spec_run.finish_spec); the
    cases shrinking needs run through `run_one` (default: here, TensorFlow, on
    `backend`)."""
    runs = []
    for spec, plan in zip(specs, plans, strict=True):
        results = done.results[spec.name]
        missing = len(plan.cases) - len(results)
        if missing:
            raise ValueError(f"{spec.name}: {missing} of {len(plan.cases)} cases have no result")
        start = time.perf_counter()
        run = finish_spec(
            spec,
            plan,
            [results[i] for i in range(len(plan.cases))],
            backend,
            hypothesis_settings,
            on_case=on_case,
            on_stage=None if on_stage is None else _named(on_stage, spec.name),
            run_one=run_one,
        )
        # the time its cases took, wherever they ran, and its own shrinking
        run.elapsed = done.seconds[spec.name] + time.perf_counter() - start
        runs.append(run)
    return runs
