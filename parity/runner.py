"""Runs cases: the Keras reference, the native side (or any backend), the comparison."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field

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
            layer.set_weights(data.weights)
            quantities = spec.run_native(
                layer, data.x, data.upstream, data.weight_names, states=data.states
            )
        finally:
            layer.close()
        return {k: np.asarray(v) for k, v in quantities.items()}


@dataclass
class CaseResult:
    case: Case
    comparisons: list[Comparison] = field(default_factory=list)
    error: str = ""  # the native side raised
    # (float64, keras float32, native) quantities, kept only when asked (repro)
    arrays: tuple[dict, dict, dict] | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return not self.error and all(c.passed for c in self.comparisons)

    def repro_command(self) -> str:
        return f"nntk-parity repro {shlex.quote(self.case.id)}"

    def failure_message(self) -> str:
        lines = [f"parity failure: {self.case.describe()}"]
        if self.error:
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
        for c in self.comparisons:
            lines.append("  " + c.describe())
            if spec is not None and self.arrays is not None and worst > 0:
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
class SpecRun:
    """What one spec's run exercised and measured."""

    spec: str
    cases: int = 0
    failed_cases: int = 0
    stats: dict[str, QuantityStats] = field(default_factory=dict)
    coverage: dict[str, set] = field(default_factory=dict)
    buckets: dict[str, int] = field(default_factory=dict)  # shape bucket -> cases in it
    failure: str = ""  # the minimal failing case's message, after shrinking
    elapsed: float = 0.0  # seconds

    @property
    def passed(self) -> bool:
        return not self.failure

    def record(self, spec: LayerSpec, result: CaseResult) -> None:
        self.cases += 1
        self.failed_cases += not result.passed
        for option, value in spec.option_values(result.case).items():
            self.coverage.setdefault(option, set()).add(_hashable(value))
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


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def run_spec(spec: LayerSpec, backend=None, hypothesis_settings=None, on_case=None) -> SpecRun:
    """Runs hypothesis over the spec's cases under the current (or given) profile;
    stops at the first failure, shrinks it, and keeps the minimal case's message."""
    from hypothesis import example, given
    from hypothesis import settings as current_settings

    run = SpecRun(spec.name)
    chosen = hypothesis_settings or current_settings()

    def check(case: Case) -> None:
        result = run_case(spec, case, backend)
        run.record(spec, result)
        if on_case is not None:
            on_case(result)
        if not result.passed:
            raise AssertionError(result.failure_message())

    # Explicit examples: every declared option value and every shape bucket.
    for case in spec.coverage_cases():
        check = example(case=case)(check)
    check = current_settings(chosen)(given(case=spec.case_strategy())(check))

    start = time.perf_counter()
    try:
        check()
    except AssertionError as exc:
        run.failure = str(exc)
    run.elapsed = time.perf_counter() - start
    return run
