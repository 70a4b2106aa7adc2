"""Error metrics and the tolerance policy (docs/DESIGN.md §5).

A tolerance (atol, rtol, k) for a quantity q means, against the float64 referee:

  elementwise:  |native_i - ref_i| <= rtol*|ref_i| + atol*scale_q,   scale_q = max(1, max_i |ref_i|)
  tensor-level: max_i |native_i - ref_i| <= k * max_i |keras32_i - ref_i| + 16*eps32*scale_q

The first bounds the error in absolute terms relative to the tensor's size (float32
sums cancel, so a near-zero element of a large gradient cannot be held to a pure
relative test); the second keeps us honest against TensorFlow's own float32 accuracy.
Both margins are reported: the fraction of the elementwise tolerance used, and the
error as a multiple of Keras float32's own error. Without a Keras float32 value (a
test that has only the referee, or a bitwise-reproduced operation) only the first
applies.

Ill-conditioned cases. Some drawn cases (a gated recurrence with large weights and a
tanh gate, say) amplify a 1-ulp change of their float32 inputs into a change of 1e-3
in the exact result: no float32 implementation can be held to 1e-5 there, and Keras
float32 meets it only by luck. Only when a quantity fails both checks is the case's
conditioning measured: the float64 referee is rerun with every float32 input
(weights, x, states, upstream gradient) moved by a random +-1 ulp, and
`sensitivity_i` = the largest move of element i. The quantity then passes if

  |native_i - ref_i| <= rtol*|ref_i| + atol*scale_q + k*sensitivity_i     (elementwise)
  max_i |native_i - ref_i| <= k * max(keras32 error, max_i sensitivity_i) + 16*eps32*scale_q

and is reported as passing "by conditioning" with the sensitivity, so such passes are
visible and counted, never silent. A well-conditioned case has sensitivity ~1e-7*scale
and gains nothing from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 2**-23


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    k: float = 8.0  # allowed multiple of Keras float32's own error
    reason: str = ""


@dataclass
class Comparison:
    """The comparison of one quantity of one case."""

    quantity: str
    shape: tuple[int, ...]
    tolerance: Tolerance
    passed: bool
    max_error: float  # max |native - ref|
    keras32_error: float  # max |keras32 - ref|
    tolerance_used: float  # max_i err_i / allowed_i (1.0 = at the elementwise limit)
    keras_multiple: float  # max_error / keras32_error (inf when Keras is exact and we are not)
    tensor_bound: float  # k * keras32_error + 16 eps scale
    scale: float
    worst_index: tuple[int, ...] | None
    worst_native: float = float("nan")
    worst_reference: float = float("nan")
    worst_keras32: float = float("nan")
    problem: str = ""  # shape mismatch, NaN placement, missing quantity
    sensitivity: float = 0.0  # max move of the referee under 1-ulp input changes (if measured)
    by_conditioning: bool = False  # passed only thanks to the measured sensitivity
    worst_location: str = ""
    errors_by_axis1: list[float] = field(default_factory=list)  # max error per time step

    @property
    def explained_by_conditioning(self) -> bool:
        """Does the measured sensitivity account for the error: is the error within
        what the quantity's k allows for that sensitivity (the module doc's rule)?"""
        return self.sensitivity > 0 and self.max_error <= self.tolerance.k * self.sensitivity

    def describe(self) -> str:
        tol = self.tolerance
        if self.problem:
            return f"{self.quantity}: {self.problem}"
        status = "ok  " if self.passed else "FAIL"
        multiple = "exact" if self.keras_multiple == 0 else f"{self.keras_multiple:.3g}x"
        against_keras = (
            f"{multiple} Keras float32's error {self.keras32_error:.3g} "
            f"(bound {self.tensor_bound:.3g}, k={tol.k:g})"
            if self.keras32_error == self.keras32_error  # not NaN: Keras float32 given
            else "no Keras float32 value (elementwise bound only)"
        )
        conditioning = ""
        if self.by_conditioning or (not self.passed and self.explained_by_conditioning):
            verdict = "passes by conditioning" if self.by_conditioning else "fails even so"
            conditioning = (
                f" (ill-conditioned case, {verdict}: the float64 result moves by "
                f"{self.sensitivity:.3g} under 1-ulp input changes)"
            )
        elif self.sensitivity and not self.passed:
            conditioning = (
                f" (well-conditioned: 1-ulp input changes move the float64 result by only "
                f"{self.sensitivity:.3g}, {self.max_error / self.sensitivity:.3g}x less than "
                "the error)"
            )
        given = self.worst_keras32 == self.worst_keras32  # not NaN
        worst_keras32 = f", keras32 {self.worst_keras32:.9g}" if given else ""
        return (
            f"{status} {self.quantity} {self.shape}: max err {self.max_error:.3g} "
            f"({100 * self.tolerance_used:.1f}% of tolerance atol={tol.atol:g} rtol={tol.rtol:g}); "
            f"{against_keras}; worst {self.worst_location}: "
            f"nntk {self.worst_native:.9g}, float64 {self.worst_reference:.9g}"
            f"{worst_keras32}{conditioning}"
        )


def compare(
    quantity: str,
    native: np.ndarray | None,
    reference: np.ndarray,
    keras32: np.ndarray | None,
    tolerance: Tolerance,
    sensitivity: np.ndarray | None = None,
) -> Comparison:
    """Compares one quantity; `reference` is the float64 referee. `keras32` None: no
    Keras float32 value, the elementwise bound alone (the tensor-level one needs it).
    `sensitivity` (elementwise, see the module doc) is given only for an ill-conditioned
    case."""
    ref = np.asarray(reference, dtype=np.float64)
    k32 = ref if keras32 is None else np.asarray(keras32, dtype=np.float64)
    shape = tuple(ref.shape)

    def failed(problem: str) -> Comparison:
        return Comparison(
            quantity,
            shape,
            tolerance,
            False,
            float("inf"),
            float("nan"),
            float("inf"),
            float("inf"),
            float("nan"),
            float("nan"),
            None,
            problem=problem,
        )

    if native is None:
        return failed("the native side did not produce this quantity")
    nat = np.asarray(native, dtype=np.float64)
    if nat.shape != shape:
        return failed(f"shape {nat.shape} differs from the reference's {shape}")
    if ref.size == 0:
        return Comparison(quantity, shape, tolerance, True, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, None)

    # Non-finite values must sit where the float64 reference has them (tf.keras
    # propagates NaN/Inf; so must we), and are excluded from the metrics.
    ref_bad, nat_bad = ~np.isfinite(ref), ~np.isfinite(nat)
    same_value = (np.isnan(ref) & np.isnan(nat)) | (ref == nat)
    mismatched = (ref_bad != nat_bad) | (ref_bad & ~same_value)
    if np.any(mismatched):
        first = tuple(int(i) for i in np.argwhere(mismatched)[0])
        return failed(
            f"non-finite values differ from the reference's (first at {first}: "
            f"nntk {nat[first]}, float64 {ref[first]})"
        )
    ok = ~ref_bad
    ref = np.where(ok, ref, 0.0)
    nat = np.where(ok, nat, 0.0)
    k32 = np.where(ok & np.isfinite(k32), k32, ref)  # Keras float32 overflow: no information

    scale = max(1.0, float(np.max(np.abs(ref))))
    err = np.abs(nat - ref)
    allowed = tolerance.rtol * np.abs(ref) + tolerance.atol * scale
    sens = 0.0
    if sensitivity is not None:
        sens_i = np.where(ok, np.nan_to_num(np.asarray(sensitivity, np.float64), posinf=0.0), 0.0)
        allowed = allowed + tolerance.k * sens_i
        sens = float(sens_i.max())
    ratio = err / allowed
    worst = np.unravel_index(int(np.argmax(ratio)), shape)
    max_error = float(err.max())
    if keras32 is None:
        keras32_error, tensor_bound = float("nan"), float("inf")
    else:
        keras32_error = float(np.max(np.abs(k32 - ref)))
        tensor_bound = tolerance.k * max(keras32_error, sens) + 16 * EPS32 * scale
    tolerance_used = float(ratio.max())
    if keras32 is None:
        keras_multiple = float("nan")
    elif keras32_error > 0:
        keras_multiple = max_error / keras32_error
    else:
        keras_multiple = 0.0 if max_error == 0 else float("inf")
    passed = tolerance_used <= 1.0 and max_error <= tensor_bound
    by_time = []
    # (B, T, ...) quantities only: on a (B, D) tensor axis 1 is features, not time.
    if err.ndim >= 3 and quantity.startswith(("output", "grad:input")):
        by_time = [float(v) for v in err.reshape(err.shape[0], err.shape[1], -1).max(axis=(0, 2))]
    return Comparison(
        quantity=quantity,
        shape=shape,
        tolerance=tolerance,
        passed=passed,
        max_error=max_error,
        keras32_error=keras32_error,
        tolerance_used=tolerance_used,
        keras_multiple=keras_multiple,
        tensor_bound=tensor_bound,
        scale=scale,
        worst_index=tuple(int(i) for i in worst),
        worst_native=float(nat[worst]),
        worst_reference=float(ref[worst]),
        worst_keras32=float("nan") if keras32 is None else float(k32[worst]),
        errors_by_axis1=by_time,
        sensitivity=sens,
    )


def worst_elements(
    native: np.ndarray,
    reference: np.ndarray,
    keras32: np.ndarray,
    tolerance: Tolerance,
    count: int = 5,
) -> list[dict]:
    """The `count` elements that use the most of the elementwise tolerance (the same
    bound as `compare`), worst first: index, error, share of tolerance, the three values.
    For printing after a Comparison; empty when the shapes differ."""
    ref = np.asarray(reference, dtype=np.float64)
    nat = np.asarray(native, dtype=np.float64)
    k32 = np.asarray(keras32, dtype=np.float64)
    if nat.shape != ref.shape or ref.size == 0:
        return []
    finite = np.isfinite(ref) & np.isfinite(nat)
    scale = max(1.0, float(np.max(np.abs(np.where(np.isfinite(ref), ref, 0.0)))))
    err = np.where(finite, np.abs(nat - ref), 0.0)
    allowed = tolerance.rtol * np.abs(np.where(finite, ref, 0.0)) + tolerance.atol * scale
    ratio = (err / allowed).ravel()
    order = np.argsort(-ratio, kind="stable")[:count]
    rows = []
    for flat in order:
        index = tuple(int(i) for i in np.unravel_index(int(flat), ref.shape))
        rows.append(
            {
                "index": index,
                "error": float(err[index]),
                "tolerance_used": float(ratio[flat]),
                "native": float(nat[index]),
                "reference": float(ref[index]),
                "keras32": float(k32[index]) if k32.shape == ref.shape else float("nan"),
            }
        )
    return rows
