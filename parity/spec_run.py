"""A layer spec's whole live run (parity/runner.py runs one case): it keeps going
after a failure and reports every distinct failure with its own minimal case
(`run_spec`, `SpecRun`, parity/findings.py's `Finding`)."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from parity.case import Case
from parity.findings import Finding, case_size, clean_values, findings_message, hashable
from parity.runner import RAISED, UNSUPPORTED, CaseResult, run_case
from parity.spec import LayerSpec


@dataclass
class QuantityStats:
    """The worst figures of one quantity over a run."""

    cases: int = 0
    failures: int = 0
    by_conditioning: int = 0  # cases that passed only thanks to measured ill-conditioning
    worst_error: float = 0.0
    worst_tolerance_used: float = 0.0
    worst_keras_multiple: float = 0.0
    worst_case: str = ""  # case id of the worst tolerance use
    worst_location: str = ""
    tolerance: object = None
    error_by_step: list[float] = field(default_factory=list)  # max error per time step
    errors: list[float] = field(default_factory=list)  # max error of each case


@dataclass
class SpecRun:
    """What one spec's run exercised and measured."""

    spec: str
    cases: int = 0
    failed_cases: int = 0
    stats: dict[str, QuantityStats] = field(default_factory=dict)
    coverage: dict[str, set] = field(default_factory=dict)
    buckets: dict[str, int] = field(default_factory=dict)  # shape bucket -> cases in it
    # Per case run: its option values and its outcome per matrix column (CaseResult.outcomes)
    outcomes: list[tuple[dict[str, Any], dict[str, bool]]] = field(default_factory=list, repr=False)
    failed: list[CaseResult] = field(default_factory=list, repr=False)
    option_values: dict[str, dict] = field(default_factory=dict, repr=False)  # of failed
    findings: list[Finding] = field(default_factory=list)  # live runs: every distinct failure
    failure: str = ""  # the failures' message (live: the findings; replay: every case)
    elapsed: float = 0.0  # seconds
    seed: int | None = None  # the hypothesis search's seed (live runs)

    @property
    def passed(self) -> bool:
        return not self.failure

    def record(self, spec: LayerSpec, result: CaseResult) -> None:
        self.cases += 1
        self.failed_cases += not result.passed
        values = {k: hashable(v) for k, v in spec.option_values(result.case).items()}
        if not result.passed:
            self.failed.append(result)
            self.option_values[result.case.id] = values
        self.outcomes.append((values, result.outcomes()))
        for option, value in values.items():
            self.coverage.setdefault(option, set()).add(value)
        for bucket in spec.buckets_hit(result.case):
            self.buckets[bucket] = self.buckets.get(bucket, 0) + 1
        for c in result.comparisons:
            s = self.stats.setdefault(c.quantity, QuantityStats(tolerance=c.tolerance))
            s.cases += 1
            s.failures += not c.passed
            s.by_conditioning += c.by_conditioning
            if c.problem:
                continue
            s.errors.append(c.max_error)
            s.worst_error = max(s.worst_error, c.max_error)
            s.worst_keras_multiple = max(s.worst_keras_multiple, c.keras_multiple)
            if c.tolerance_used >= s.worst_tolerance_used:
                s.worst_tolerance_used = c.tolerance_used
                s.worst_case = result.case.id
                s.worst_location = c.worst_location
            for t, e in enumerate(c.errors_by_axis1):
                if t >= len(s.error_by_step):
                    s.error_by_step.append(e)
                else:
                    s.error_by_step[t] = max(s.error_by_step[t], e)

    def matrix(self, rows=None) -> dict[tuple[str, Any], dict[str, list[int]]]:
        """The failure matrix: (option, value) -> column -> [cases, failing cases]."""
        matrix: dict[tuple[str, Any], dict[str, list[int]]] = {}
        for values, outcomes in self.outcomes if rows is None else rows:
            for option, value in values.items():
                row = matrix.setdefault((option, value), {})
                for column, ok in outcomes.items():
                    counts = row.setdefault(column, [0, 0])
                    counts[0] += 1
                    counts[1] += not ok
        return matrix

    def failing_columns(self) -> list[str]:
        """Matrix columns with at least one failing case, quantities first."""
        seen = {c: None for _, outcomes in self.outcomes for c, ok in outcomes.items() if not ok}
        return sorted(seen, key=lambda c: (c in (RAISED, UNSUPPORTED), c))

    def implicated(self, column: str) -> dict[str, list]:
        """The options a column's failures go with -> their values that never fail it,
        the most specific first (fewest failing values, then the strongest evidence).
        Conditional, like a decision tree: once an option is implicated, the next is
        looked for among the cases with its failing values only (so an option is not
        implicated merely because it never met the faulty value)."""
        rows = [(v, o) for v, o in self.outcomes if column in o]
        found: dict[str, list] = {}
        while True:
            best = None
            counts_by_option: dict[str, dict] = {}
            for (option, value), row in self.matrix(rows).items():
                if option not in found:
                    counts_by_option.setdefault(option, {})[value] = row[column]
            for option, counts in sorted(counts_by_option.items()):
                clean, evidence = clean_values(counts)
                failing_values = sum(1 for _, f in counts.values() if f)
                if clean and (best is None or (failing_values, evidence) < best[2]):
                    best = (option, clean, (failing_values, evidence))
            if best is None:
                return found
            option, clean, _ = best
            found[option] = clean
            rows = [(v, o) for v, o in rows if v.get(option) not in clean]

    def diagnose(self, shrunk: frozenset[str] = frozenset()) -> list[Finding]:
        """Groups the failing cases into distinct failures (Finding): per failing column,
        the most strongly implicated option (`implicated`) keys its failing cases by
        their value; the columns failing under the same key and error kind are one
        finding. Its minimal case: a hypothesis-shrunk one (ids in `shrunk`) if any, else
        the smallest failing case seen."""
        clean = {column: self.implicated(column) for column in self.failing_columns()}
        groups: dict[tuple, dict] = {}
        for result in self.failed:
            values = self.option_values[result.case.id]
            for column in result.failing_columns():
                # Keyed by the strongest implicated option only (the others are noted):
                # one fault whose effect on a quantity also depends on another option
                # stays one finding.
                key_options = {o: values.get(o) for o in list(clean[column])[:1]}
                kind = {RAISED: "raised", UNSUPPORTED: "unsupported"}.get(column, "numeric")
                key = (kind, tuple(key_options.items()))
                group = groups.setdefault(
                    key, {"columns": {}, "cases": {}, "options": key_options, "clean": {}}
                )
                group["columns"][column] = None
                group["cases"][result.case.id] = result
                for option, never in clean[column].items():
                    group["clean"].setdefault(option, never)
        findings = []
        for (kind, _), group in groups.items():
            cases = list(group["cases"].values())
            minimal = min(cases, key=lambda r: (r.case.id not in shrunk, case_size(r)))
            findings.append(
                Finding(
                    kind,
                    sorted(group["columns"]),
                    group["options"],
                    len(cases),
                    minimal,
                    shrunk=minimal.case.id in shrunk,
                    clean=group["clean"],
                )
            )
        order = {"numeric": 0, "raised": 1, "unsupported": 2}
        return sorted(findings, key=lambda f: (order[f.kind], f.columns, str(f.options)))

    def shows(self, result: CaseResult, finding: Finding) -> bool:
        """Does a case show this finding: one of its columns fails, with its option values?"""
        if result.passed or not set(result.failing_columns()) & set(finding.columns):
            return False
        values = self.option_values[result.case.id]
        return all(values.get(k) == v for k, v in finding.options.items())

    def missing_coverage(self, spec: LayerSpec) -> dict[str, list]:
        """Declared option values that no case exercised."""
        missing = {}
        for option, values in spec.options.items():
            seen = self.coverage.get(option, set())
            absent = [v for v in values if hashable(v) not in seen]
            if absent:
                missing[option] = absent
        return missing

    def missing_buckets(self, spec: LayerSpec) -> list[str]:
        """Declared shape buckets (LayerSpec.shape_buckets) that no case exercised."""
        return [b.name for b in spec.shape_buckets() if not self.buckets.get(b.name)]


# How unlikely by chance the clean values of an option must be before the option is
# said to matter, and the least share of the cases they must hold.


class ParityFailure(AssertionError):
    """Raised inside a hypothesis search for the failure being shrunk."""

    def __init__(self, result: CaseResult):
        super().__init__(result.failure_message())
        self.result = result


# Shrinking is bounded: at most SHRINK_FINDINGS findings per spec are shrunk, each with
# at most SHRINK_CASES cases never run before (cases already run are free: cached).
SHRINK_FINDINGS = 6
SHRINK_CASES = 40


@dataclass
class SpecPlan:
    """The cases a spec's live run records, fixed before any runs: its coverage cases,
    then the cases its seeded hypothesis search draws (each distinct case once, in
    the order the search meets it). The search's test never fails while it draws
    (`check` raises only while shrinking), so what it draws does not depend on the
    results: the cases can be run anywhere, in any order (parity/parallel.py), and
    recorded in this order (`finish_spec`) for the same run."""

    spec: str
    seed: int
    cases: list[Case]
    coverage: int  # the first `coverage` cases are the coverage cases


def _chosen_settings(hypothesis_settings):
    from hypothesis import settings as current_settings

    return hypothesis_settings or current_settings()


def _search(spec: LayerSpec, chosen, seed: int, check, phases):
    """The spec's hypothesis search calling `check(case)`, under `chosen` settings."""
    from hypothesis import Verbosity, given
    from hypothesis import seed as hypothesis_seed
    from hypothesis import settings as current_settings

    test = given(case=spec.case_strategy())(check)
    test = current_settings(
        chosen,
        database=None,
        phases=phases,
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,  # the findings are reported, not hypothesis's notes
        print_blob=False,
    )(test)
    return hypothesis_seed(seed)(test)


def plan_spec(spec: LayerSpec, hypothesis_settings=None, seed: int | None = None) -> SpecPlan:
    """The spec's cases for one run (`SpecPlan`) under the current (or given)
    hypothesis profile. `seed`: the search's seed (default: fixed per spec under a
    derandomized profile, random otherwise). Draws only: no TensorFlow, no library."""
    import random

    from hypothesis import Phase

    chosen = _chosen_settings(hypothesis_settings)
    if seed is None:
        seed = zlib.crc32(spec.name.encode()) if chosen.derandomize else random.getrandbits(32)
    cases: dict[str, Case] = {}
    for case in spec.coverage_cases():
        cases.setdefault(case.id, case)
    coverage = len(cases)

    def draw(case: Case) -> None:
        cases.setdefault(case.id, case)

    _search(spec, chosen, seed, draw, (Phase.generate,))()
    return SpecPlan(spec.name, seed, list(cases.values()), coverage)


def finish_spec(
    spec: LayerSpec,
    plan: SpecPlan,
    results: list[CaseResult],
    backend=None,
    hypothesis_settings=None,
    on_case: Callable[[CaseResult], None] | None = None,
    on_stage: Callable[[str, int], None] | None = None,
    shrink_findings: int = SHRINK_FINDINGS,
    shrink_cases: int = SHRINK_CASES,
    run_one: Callable[..., CaseResult] | None = None,
) -> SpecRun:
    """A spec's run from its plan's results (one per planned case, in the plan's
    order, run wherever): each recorded, then the failing cases grouped into distinct
    failures (SpecRun.diagnose), and each shrunk by hypothesis: the same seeded search
    is replayed (the cases already run come from a cache, so it costs nothing until the
    first case of that failure) with a test that fails only on that failure, and
    hypothesis shrinks it. The cases shrinking runs anew run here, through `run_one`
    (default `run_case`: TensorFlow) and are recorded too."""
    from hypothesis import Phase

    if [r.case.id for r in results] != [c.id for c in plan.cases]:
        raise ValueError(f"{spec.name}: the results are not those of the plan's cases")
    run_one = run_one or run_case
    chosen = _chosen_settings(hypothesis_settings)
    run = SpecRun(spec.name, seed=plan.seed)
    cache: dict[str, CaseResult] = {}
    for result in results:
        cache[result.case.id] = result
        run.record(spec, result)
    shrinking = {"target": None, "budget": 0}

    def check(case: Case) -> None:
        result = cache.get(case.id)
        if result is None:  # a case the search never drew: shrinking made it
            if shrinking["budget"] <= 0:
                return
            shrinking["budget"] -= 1
            result = run_one(spec, case, backend)
            cache[case.id] = result
            run.record(spec, result)
            if on_case is not None:
                on_case(result)
        if run.shows(result, shrinking["target"]):
            raise ParityFailure(result)

    shrunk: set[str] = set()
    to_shrink = [f for f in run.diagnose() if f.kind != "unsupported"][:shrink_findings]
    for i, finding in enumerate(to_shrink, 1):
        if on_stage is not None:
            on_stage(f"shrinking failure {i}/{len(to_shrink)}", shrink_cases)
        shrinking.update(target=finding, budget=shrink_cases)
        try:
            _search(spec, chosen, plan.seed, check, (Phase.generate, Phase.shrink))()
        except ParityFailure as exc:
            shrunk.add(exc.result.case.id)
    run.findings = run.diagnose(frozenset(shrunk))
    if run.findings:
        run.failure = findings_message(spec.name, run.findings) + (
            f"\n(hypothesis search seed {plan.seed}: `nntk-parity run --layer {spec.name} "
            f"--seed {plan.seed}` with the same --profile repeats this search)"
        )
    return run


def run_spec(
    spec: LayerSpec,
    backend=None,
    hypothesis_settings=None,
    on_case: Callable[[CaseResult], None] | None = None,
    on_stage: Callable[[str, int], None] | None = None,
    seed: int | None = None,
    shrink_findings: int = SHRINK_FINDINGS,
    shrink_cases: int = SHRINK_CASES,
    run_one: Callable[..., CaseResult] | None = None,
) -> SpecRun:
    """The live run of one spec under the current (or given) hypothesis profile, in
    this process. It keeps going after a failure: (1) every coverage case (each
    declared option value, each shape bucket); (2) hypothesis's search over the
    spec's cases, all max_examples of them (both fixed first: `plan_spec`); then (3)
    the distinct failures, each shrunk (`finish_spec`). `on_stage(name, cases)`
    announces each stage. `seed`: the search's seed (default: fixed per spec under a
    derandomized profile, random otherwise). `run_one` replaces `run_case` (the
    harness's own tests)."""
    run_one = run_one or run_case
    start = time.perf_counter()
    plan = plan_spec(spec, hypothesis_settings, seed)
    results = []
    stages = (
        ("coverage cases", plan.cases[: plan.coverage]),
        ("hypothesis search", plan.cases[plan.coverage :]),
    )
    for stage, cases in stages:
        if on_stage is not None:
            on_stage(stage, len(cases))
        for case in cases:
            results.append(run_one(spec, case, backend))
            if on_case is not None:
                on_case(results[-1])
    run = finish_spec(
        spec,
        plan,
        results,
        backend,
        hypothesis_settings,
        on_case,
        on_stage,
        shrink_findings,
        shrink_cases,
        run_one,
    )
    run.elapsed = time.perf_counter() - start
    return run
