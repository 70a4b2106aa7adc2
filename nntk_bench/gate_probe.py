"""Runs the real parity gate (`nntk-parity run`, parity.cli.main) in this process and
writes, per layer spec, its wall time, CPU time and case count to a JSON file.

Run as a script by path, by the interpreter of the tree being measured, so it must not
import nntk_bench (an older tree has none) and must work with every version of the
parity package: it wraps `run_spec` where that version's `cmd_run` imports it from
(parity.spec_run, parity.runner before the split) or, since the runs are planned
first (`-j N`), parity.parallel's run_selected and finish_all, then calls the command
itself with `-j 1`.

    python -P nntk_bench/gate_probe.py OUT.json [--stages] -- run --profile ci [...]

--stages also splits each layer's time by stage (gate_time.STAGES: the Keras float32
run, the float64 referee, the sensitivity check, nntk, the comparison, drawing the case
data and building the Keras layers; the rest is hypothesis and the harness), through
timing wrappers around the parity functions of today's tree (exclusive time: a stage
called inside another counts for the inner one only).
"""

from __future__ import annotations

import importlib
import json
import runpy
import sys
import time
from collections import defaultdict


def _clock() -> tuple[float, float]:
    # process_time: every thread of this process (TensorFlow's pools included)
    return time.perf_counter(), time.process_time()


class StageClock:
    """Exclusive wall and CPU time per stage, per layer: a stack of open stages, where
    entering an inner stage pauses the outer one."""

    def __init__(self) -> None:
        self.layer = "(none)"
        self.totals: dict[str, dict[str, list[float]]] = defaultdict(
            lambda: defaultdict(lambda: [0.0, 0.0])
        )
        self._stack: list[str] = []
        self._since = _clock()

    def _charge(self) -> None:
        now = _clock()
        if self._stack:
            slot = self.totals[self.layer][self._stack[-1]]
            slot[0] += now[0] - self._since[0]
            slot[1] += now[1] - self._since[1]
        self._since = now

    def enter(self, stage: str) -> None:
        self._charge()
        self._stack.append(stage)

    def leave(self) -> None:
        self._charge()
        self._stack.pop()

    def wrap(self, fn, stage_of):
        """fn, timed under the stage `stage_of(*args, **kwargs)` names."""

        def timed(*args, **kwargs):
            self.enter(stage_of(*args, **kwargs))
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave()

        timed.__wrapped__ = fn
        return timed

    def as_json(self) -> dict:
        return {
            layer: {stage: {"wall_s": w, "cpu_s": c} for stage, (w, c) in stages.items()}
            for layer, stages in self.totals.items()
        }


def _install_stage_wrappers(clock: StageClock) -> None:
    """Today's tree: parity.reference (Keras side), parity.runner (nntk side)."""
    from functools import lru_cache

    from parity import reference, runner

    in_sensitivity = []

    def keras_stage(spec, case, data, dtype):
        if in_sensitivity:
            return "sensitivity check"
        return "keras float64 referee" if dtype == "float64" else "keras float32"

    run_keras = clock.wrap(reference.run_keras, keras_stage)
    reference.run_keras = run_keras
    sensitivity = reference.sensitivity

    def sensitivity_marked(*args, **kwargs):
        in_sensitivity.append(True)
        try:
            return sensitivity(*args, **kwargs)
        finally:
            in_sensitivity.pop()

    reference.sensitivity = clock.wrap(sensitivity_marked, lambda *a, **k: "sensitivity check")
    reference.draw_case_data = clock.wrap(reference.draw_case_data, lambda *a, **k: "case data")
    # Building a Keras layer happens on an lru_cache miss: time the inner function and
    # keep the cache in front of it.
    build = reference._keras_layer.__wrapped__
    reference._keras_layer = lru_cache(maxsize=256)(
        clock.wrap(build, lambda *a, **k: "keras layer build")
    )
    runner.NativeBackend.run = clock.wrap(runner.NativeBackend.run, lambda *a, **k: "nntk")
    runner.compare_quantities = clock.wrap(runner.compare_quantities, lambda *a, **k: "comparison")


def _time_planned_runs(layers: dict[str, dict], clock: StageClock | None) -> bool:
    """Today's tree, whose `run` plans every spec first and then, with -j 1, runs and
    finishes them spec by spec through parity.parallel (run_selected, finish_all):
    each such call's time counts for its spec (the planning, before, for start-up)."""
    try:
        parallel = importlib.import_module("parity.parallel")
    except ModuleNotFoundError:
        return False

    def timed(fn):
        def for_one_spec(specs, *args, **kwargs):
            if len(specs) != 1:
                raise RuntimeError("gate_probe times the gate per layer with -j 1 only")
            name = specs[0].name
            if clock:
                clock.layer = name
                clock.enter("hypothesis and harness")
            begin = _clock()
            try:
                result = fn(specs, *args, **kwargs)
            finally:
                end = _clock()
                if clock:
                    clock.leave()
            figures = layers.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0})
            figures["wall_s"] += end[0] - begin[0]
            figures["cpu_s"] += end[1] - begin[1]
            if isinstance(result, list):  # finish_all: the spec's run
                figures.update(cases=result[0].cases, failed=bool(result[0].failure))
            return result

        return for_one_spec

    parallel.run_selected = timed(parallel.run_selected)
    parallel.finish_all = timed(parallel.finish_all)
    return True


def main(argv: list[str]) -> int:
    out, rest = argv[0], argv[1:]
    stages = "--stages" in rest[: rest.index("--")]
    command = rest[rest.index("--") + 1 :]
    start = _clock()
    # cmd_run does `from <module> import run_spec` when it runs, so the wrapper is seen
    module_name = "parity.spec_run"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        module_name = "parity.runner"
        module = importlib.import_module(module_name)
    layers: dict[str, dict] = {}
    clock = StageClock() if stages else None
    if clock:
        _install_stage_wrappers(clock)
    run_spec = module.run_spec

    def timed_run_spec(spec, *args, **kwargs):
        if clock:
            clock.layer = spec.name
            clock.enter("hypothesis and harness")
        begin = _clock()
        try:
            run = run_spec(spec, *args, **kwargs)
        finally:
            end = _clock()
            if clock:
                clock.leave()
        layers[spec.name] = {
            "wall_s": end[0] - begin[0],
            "cpu_s": end[1] - begin[1],
            "cases": run.cases,
            "failed": bool(run.failure),
        }
        return run

    module.run_spec = timed_run_spec
    if _time_planned_runs(layers, clock) and "-j" not in command:
        command = [*command, "-j", "1"]  # its default is every core
    imported = _clock()
    # The gate through its own entry point, `python -m parity` (only that imports cli.py)
    sys.argv = ["nntk-parity", *command]
    try:
        runpy.run_module("parity", run_name="__main__", alter_sys=True)
        status = 0
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    end = _clock()
    result = {
        "module": module_name,
        "command": command,
        "exit_status": status,
        "import_wall_s": imported[0] - start[0],
        "wall_s": end[0] - start[0],
        "cpu_s": end[1] - start[1],
        "layers": layers,
    }
    if clock:
        result["stages"] = clock.as_json()
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
