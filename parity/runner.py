"""Runs cases: the Keras reference, the native side (or any backend), the comparison.
A layer spec's whole live run is parity/spec_run.py (`run_spec`), its distinct
failures parity/findings.py (`Finding`)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parity.case import Case
from parity.compare import Comparison, compare, worst_elements
from parity.spec import LayerSpec


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
