"""Runs cases: the Keras reference, the native side (or any backend), the comparison;
and a layer spec's whole live run, which keeps going after a failure and reports
every distinct failure with its own minimal case (`run_spec`, `Finding`)."""

from __future__ import annotations

import math
import re
import shlex
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parity.compare import Comparison, compare, worst_elements
from parity.spec import Case, LayerSpec


class NativeBackend:
    """The real compiled library through its Python binding (NNTK_CORE_LIB honoured)."""

    name = "nntk"

    def run(self, spec: LayerSpec, case: Case, data) -> dict[str, np.ndarray]:
        import nntk_core

        layer = spec.build_native(nntk_core, case.config)
        try:
            return {k: np.asarray(v) for k, v in drive(spec, layer, data).items()}
        finally:
            layer.close()


def native_layer(backend, spec: LayerSpec, config: dict):
    """The nntk layer a call sequence or a replay variant drives:
    `backend.build_layer(spec, config)` when the backend builds layers (a harness
    self-test fake wraps the real one), else the real layer from the spec."""
    build = getattr(backend, "build_layer", None)
    if build is not None:
        return build(spec, config)
    import nntk_core

    return spec.build_native(nntk_core, config)


def drive(spec: LayerSpec, layer, data) -> dict[str, Any]:
    """A case's protocol on an nntk layer (or a stand-in for one): its weights set from
    the case's data, then the spec's calls. The quantities as the calls returned them."""
    layer.set_weights(data.weights)
    return spec.run_native(layer, data.x, data.upstream, data.weight_names, states=data.states)


# Failure-matrix columns for a case that produced no quantities: the native side
# raised, or said the case is unsupported. Every case counts in both columns.
RAISED, UNSUPPORTED = "(raised)", "(unsupported)"
_UNSUPPORTED_MESSAGE = re.compile(r"\b(unsupported|not supported)\b", re.IGNORECASE)


def is_unsupported(exc: BaseException) -> bool:
    """NotImplementedError, or an error whose message says the case is unsupported."""
    return isinstance(exc, NotImplementedError) or bool(_UNSUPPORTED_MESSAGE.search(str(exc)))


@dataclass
class CaseResult:
    case: Case
    comparisons: list[Comparison] = field(default_factory=list)
    error: str = ""  # the native side raised
    unsupported: bool = False  # ... saying it does not support the case (is_unsupported)
    # (float64, keras float32, native) quantities, kept only when asked (repro)
    arrays: tuple[dict, dict, dict] | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return not self.error and all(c.passed for c in self.comparisons)

    def outcomes(self) -> dict[str, bool]:
        """Failure-matrix column -> passed: every compared quantity, and the two
        error columns (a case that raised compared nothing)."""
        outcomes = {c.quantity: c.passed for c in self.comparisons}
        outcomes[RAISED] = not self.error or self.unsupported
        outcomes[UNSUPPORTED] = not self.unsupported
        return outcomes

    def failing_columns(self) -> list[str]:
        return [column for column, ok in self.outcomes().items() if not ok]

    def repro_command(self) -> str:
        return f"nntk-parity repro {shlex.quote(self.case.id)}"

    def failure_message(self) -> str:
        lines = [f"parity failure: {self.case.describe()}"]
        if self.unsupported:
            lines.append(f"  the native side does not support this case: {self.error}")
        elif self.error:
            lines.append(f"  the native side raised: {self.error}")
        for c in self.comparisons:
            if not c.passed:
                lines.append("  " + c.describe())
        if self.comparisons and not self.error:
            passed = [c.quantity for c in self.comparisons if c.passed]
            lines.append(f"  (passed: {', '.join(passed) or 'none'})")
        lines.append(f"  rerun: {self.repro_command()}")
        return "\n".join(lines)

    def full_report(self, spec: LayerSpec | None = None, worst: int = 5) -> str:
        """Every quantity's comparison; with `spec` and kept arrays, also the `worst`
        elements of each quantity in the layer's terms."""
        lines = [self.case.describe(), f"id: {self.case.id}"]
        if self.error:
            lines.append(f"the native side raised: {self.error}")
        ranked = spec is not None and self.arrays is not None and worst > 0
        if ranked:
            lines.append(
                f"(under each quantity: its {worst} worst elements, ranked by the share of "
                "the elementwise tolerance they use, not by absolute error)"
            )
        for c in self.comparisons:
            lines.append("  " + c.describe())
            if ranked:
                float64, float32, native = self.arrays
                if c.quantity in float64 and c.quantity in native:
                    for row in worst_elements(
                        native[c.quantity],
                        float64[c.quantity],
                        float32[c.quantity],
                        c.tolerance,
                        worst,
                    ):
                        where = spec.locate(c.quantity, row["index"], self.case.config)
                        lines.append(
                            f"      {where}: err {row['error']:.3g} "
                            f"({100 * row['tolerance_used']:.1f}%), nntk {row['native']:.9g}, "
                            f"float64 {row['reference']:.9g}, keras32 {row['keras32']:.9g}"
                        )
        lines.append("PASS" if self.passed else "FAIL")
        return "\n".join(lines)


def compare_quantities(
    spec: LayerSpec,
    case: Case,
    float64: dict[str, np.ndarray],
    float32: dict[str, np.ndarray],
    native: dict[str, np.ndarray],
    sensitivity: dict[str, np.ndarray] | None = None,
) -> list[Comparison]:
    comparisons = []
    for quantity in sorted(float64):
        result = compare(
            quantity,
            native.get(quantity),
            float64[quantity],
            float32[quantity],
            spec.tolerance(quantity),
            None if sensitivity is None else sensitivity.get(quantity),
        )
        if result.worst_index is not None:
            result.worst_location = spec.locate(quantity, result.worst_index, case.config)
        comparisons.append(result)
    for quantity in sorted(set(native) - set(float64)):
        comparisons.append(
            compare(quantity, native[quantity], np.zeros(0), np.zeros(0), spec.tolerance(quantity))
        )
        comparisons[-1].passed = False
        comparisons[-1].problem = "produced by the native side but not by tf.keras"
    return comparisons


def run_case(spec: LayerSpec, case: Case, backend=None, keep_arrays: bool = False) -> CaseResult:
    """Runs one case on tf.keras (float32 and the float64 referee) and on `backend`."""
    from parity import reference

    ref = reference.compute(spec, case)
    return check_case(
        spec,
        case,
        ref.data,
        ref.float64,
        ref.float32,
        backend,
        keep_arrays,
        sensitivity=lambda: reference.sensitivity(spec, case, ref.data),
    )


def check_case(
    spec: LayerSpec,
    case: Case,
    data,
    float64: dict[str, np.ndarray],
    float32: dict[str, np.ndarray],
    backend=None,
    keep_arrays: bool = False,
    sensitivity=None,
) -> CaseResult:
    """Runs `backend` on a case's data and compares it with given reference quantities
    (computed live, or read from a fixture: no TensorFlow needed here). `sensitivity`,
    when given (live runs), measures the referee's conditioning for a case that fails
    on numbers alone (compare.py); replay judges without it."""
    backend = backend or NativeBackend()
    result = CaseResult(case)
    try:
        native = backend.run(spec, case, data)
    except Exception as exc:  # a native error is a failed case, reported as such
        result.error = f"{type(exc).__name__}: {exc}"
        result.unsupported = is_unsupported(exc)
        return result
    result.comparisons = compare_quantities(spec, case, float64, float32, native)
    if sensitivity is not None and not result.passed:
        if not any(c.problem for c in result.comparisons):
            # Failed on numbers alone: measure the case's conditioning and judge again
            # (compare.py explains the rule; such passes are reported as such).
            moved = sensitivity()
            judged = compare_quantities(spec, case, float64, float32, native, moved)
            for before, after in zip(result.comparisons, judged, strict=True):
                after.by_conditioning = after.passed and not before.passed
            result.comparisons = judged
    if keep_arrays:
        result.arrays = (float64, float32, native)
    return result


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
class Finding:
    """One distinct failure of a layer spec: the matrix columns (quantities, or RAISED /
    UNSUPPORTED) that fail under the same implicated option values, and its minimal case.

    `options` holds the option values the failure goes with: those of the failing cases,
    for every option that has a value whose cases provably never fail these columns
    (SpecRun.implicated; empty: the failure does not depend on the options)."""

    kind: str  # "numeric", "raised" or "unsupported"
    columns: list[str]
    options: dict[str, Any]
    failing_cases: int
    minimal: CaseResult
    shrunk: bool = False  # the minimal case is hypothesis's shrunk one
    clean: dict[str, list] = field(default_factory=dict)  # option -> values that never fail

    def title(self) -> str:
        where = (
            "with " + ", ".join(f"{k}={_show(v)}" for k, v in self.options.items())
            if self.options
            else "with any option value"
        )
        if self.kind == "unsupported":
            return f"unsupported {where}"
        if self.kind == "raised":
            return f"the native side raised {where}"
        return f"{', '.join(self.columns)} {where}"

    def describe(self) -> str:
        plural = "s" if self.failing_cases != 1 else ""
        clean = "; ".join(
            f"{option} = {', '.join(_show(v) for v in values)} never "
            f"fail{'s' if len(values) == 1 else ''}"
            for option, values in self.clean.items()
        )
        origin = (
            "minimal case (shrunk by hypothesis)"
            if self.shrunk
            else "smallest failing case seen (not shrunk)"
        )
        lines = [
            f"{self.title()}: {self.failing_cases} failing case{plural}"
            + (f" ({clean})" if clean else ""),
            f"  {origin}:",
        ]
        lines += ["  " + line for line in self.minimal.failure_message().splitlines()]
        return "\n".join(lines)

    def to_json(self) -> dict:
        worst = {
            c.quantity: {"location": c.worst_location, "tolerance_used": c.tolerance_used}
            for c in self.minimal.comparisons
            if not c.passed
        }
        return {
            "kind": self.kind,
            "title": self.title(),
            "columns": self.columns,
            "options": self.options,
            "failing_cases": self.failing_cases,
            "shrunk": self.shrunk,
            "case": self.minimal.case.id,
            "repro": self.minimal.repro_command(),
            "error": self.minimal.error,
            "worst": worst,
            "text": self.describe(),
        }


def _show(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _case_size(result: CaseResult) -> tuple:
    """A size order for picking the smallest failing case of a finding: elements of
    the input and sum of the integer options (units, filters, ...), then the id."""
    case = result.case
    sizes = sum(v for v in case.config.values() if isinstance(v, int) and not isinstance(v, bool))
    return (case.batch * case.steps * max(1, sizes), case.scale != "realistic", case.id)


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
        values = {k: _hashable(v) for k, v in spec.option_values(result.case).items()}
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
                clean, evidence = _clean_values(counts)
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
            minimal = min(cases, key=lambda r: (r.case.id not in shrunk, _case_size(r)))
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
            absent = [v for v in values if _hashable(v) not in seen]
            if absent:
                missing[option] = absent
        return missing

    def missing_buckets(self, spec: LayerSpec) -> list[str]:
        """Declared shape buckets (LayerSpec.shape_buckets) that no case exercised."""
        return [b.name for b in spec.shape_buckets() if not self.buckets.get(b.name)]


# How unlikely by chance the clean values of an option must be before the option is
# said to matter, and the least share of the cases they must hold.
CLEAN_SIGNIFICANCE = 0.01
CLEAN_SHARE = 0.25


def _clean_values(counts: dict[Any, list[int]]) -> tuple[list, float]:
    """The values of an option that never fail a column, when that is evidence that the
    option matters, given value -> [cases, failing cases]; else none. Evidence: the
    clean values hold at least CLEAN_SHARE of the N cases, and the f failures would all
    miss their n_clean cases by chance (failures placed at random among the cases) with
    probability C(N - n_clean, f) / C(N, f) <= CLEAN_SIGNIFICANCE. So a fault in one
    value of an option is pinned to it, while a fault that depends on the shape (units
    > 32, say) strikes a share of every value's cases and implicates no option (a few
    rarely drawn values may pass by chance, but they hold too few cases). Also returns
    that probability (1.0: no evidence)."""
    total = sum(n for n, _ in counts.values())
    failures = sum(f for _, f in counts.values())
    if not failures:
        return [], 1.0
    clean = [v for v, (n, f) in counts.items() if n and not f]
    n_clean = sum(counts[v][0] for v in clean)
    chance = math.comb(total - n_clean, failures) / math.comb(total, failures)
    if n_clean < CLEAN_SHARE * total or chance > CLEAN_SIGNIFICANCE:
        return [], 1.0
    return clean, chance


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def findings_message(spec_name: str, findings: list[Finding]) -> str:
    """The failure text of a live run: every distinct failure, then, apart, what the
    native side said it does not support."""
    failures = [f for f in findings if f.kind != "unsupported"]
    unsupported = [f for f in findings if f.kind == "unsupported"]
    lines = []
    for title, group in (
        ("distinct failure", failures),
        ("unsupported case group (apart from the numeric failures)", unsupported),
    ):
        if not group:
            continue
        count = len(group)
        noun = title.replace("failure", "failures" if count != 1 else "failure", 1)
        noun = noun.replace("group", "groups" if count != 1 else "group", 1)
        lines.append(f"{spec_name}: {count} {noun}")
        for i, finding in enumerate(group, 1):
            lines.append(f"[{i}/{count}] {finding.describe()}")
    return "\n".join(lines)


class ParityFailure(AssertionError):
    """Raised inside a hypothesis search for the failure being shrunk."""

    def __init__(self, result: CaseResult):
        super().__init__(result.failure_message())
        self.result = result


# Shrinking is bounded: at most SHRINK_FINDINGS findings per spec are shrunk, each with
# at most SHRINK_CASES cases never run before (cases already run are free: cached).
SHRINK_FINDINGS = 6
SHRINK_CASES = 40


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
    """The live run of one spec under the current (or given) hypothesis profile.

    It keeps going after a failure: (1) every coverage case (each declared option value,
    each shape bucket); (2) hypothesis's search over the spec's cases, all max_examples
    of them, recording each; then (3) the failing cases are grouped into distinct
    failures (SpecRun.diagnose), and each is shrunk by hypothesis: the same seeded
    search is replayed (the cases already run come from a cache, so it costs nothing
    until the first case of that failure) with a test that fails only on that
    failure, and hypothesis shrinks it. `on_stage(name, cases)` announces each stage.
    `seed`: the search's seed (default: fixed per spec under a derandomized profile,
    random otherwise). `run_one` replaces `run_case` (the harness's own tests)."""
    import random

    from hypothesis import Phase, Verbosity, given
    from hypothesis import seed as hypothesis_seed
    from hypothesis import settings as current_settings

    run_one = run_one or run_case
    chosen = hypothesis_settings or current_settings()
    if seed is None:
        seed = zlib.crc32(spec.name.encode()) if chosen.derandomize else random.getrandbits(32)
    run = SpecRun(spec.name, seed=seed)
    cache: dict[str, CaseResult] = {}
    shrinking = {"target": None, "budget": 0}

    def evaluate(case: Case) -> CaseResult | None:
        """The case's result: from the cache, or run now (None: shrink budget spent)."""
        if case.id in cache:
            return cache[case.id]
        if shrinking["target"] is not None:
            if shrinking["budget"] <= 0:
                return None
            shrinking["budget"] -= 1
        result = run_one(spec, case, backend)
        cache[case.id] = result
        run.record(spec, result)
        if on_case is not None:
            on_case(result)
        return result

    def check(case: Case) -> None:
        result = evaluate(case)
        target = shrinking["target"]
        if target is not None and result is not None and run.shows(result, target):
            raise ParityFailure(result)

    def search(phases):
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

    start = time.perf_counter()
    coverage = spec.coverage_cases()
    if on_stage is not None:
        on_stage("coverage cases", len(coverage))
    for case in coverage:
        evaluate(case)
    if on_stage is not None:
        on_stage("hypothesis search", chosen.max_examples)
    search((Phase.generate,))()  # never raises: `check` fails only while shrinking

    shrunk: set[str] = set()
    to_shrink = [f for f in run.diagnose() if f.kind != "unsupported"][:shrink_findings]
    for i, finding in enumerate(to_shrink, 1):
        if on_stage is not None:
            on_stage(f"shrinking failure {i}/{len(to_shrink)}", shrink_cases)
        shrinking.update(target=finding, budget=shrink_cases)
        try:
            search((Phase.generate, Phase.shrink))()
        except ParityFailure as exc:
            shrunk.add(exc.result.case.id)
        finally:
            shrinking["target"] = None
    run.findings = run.diagnose(frozenset(shrunk))
    if run.findings:
        run.failure = findings_message(spec.name, run.findings) + (
            f"\n(hypothesis search seed {seed}: `nntk-parity run --layer {spec.name} "
            f"--seed {seed}` with the same --profile repeats this search)"
        )
    run.elapsed = time.perf_counter() - start
    return run
