"""Freshness: are the recorded fixtures still what tf.keras computes (needs
TensorFlow)? A sample of the fixtures is recomputed from its stored data and compared
with the stored references (`nntk-parity record --check`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from parity.case import Case
from parity.compare import compare
from parity.fixtures import FixtureError, entry_problem, load_manifest, read_fixture
from parity.record import blocking_versions, versions, versions_text


def _sample(
    directory: Path, manifest: dict, per_layer: int, get_spec: Callable, layers=None
) -> Iterator[tuple[dict, object, object, str]]:
    """The first `per_layer` fixtures of each layer of the manifest (of `layers` only,
    when given), as (entry, spec, fixture, problem): problem is the message for a
    fixture that cannot be read or whose spec is unknown (spec and fixture None)."""
    counts: dict[str, int] = {}
    for entry in manifest["cases"]:
        if entry_problem(entry) or (layers and entry["layer"] not in layers):
            continue
        if counts.get(entry["layer"], 0) >= per_layer:
            continue
        counts[entry["layer"]] = counts.get(entry["layer"], 0) + 1
        try:
            spec = get_spec(entry["layer"])
            fixture = read_fixture(directory / entry["file"])
        except (KeyError, FixtureError) as exc:
            yield entry, None, None, f"{entry['file']}: {exc}"
            continue
        yield entry, spec, fixture, ""


def check_freshness(
    directory: Path, per_layer: int = 1, layers: list[str] | None = None
) -> tuple[list[str], int]:
    """Re-records a sample (the first `per_layer` fixtures of each layer) and compares
    with the stored ones. Returns (drift messages, cases checked). Reference drift: the
    float64 referee or tf.keras float32 now differs from the fixture beyond the spec's
    tolerance. Data drift: the spec now draws different data for the case id (the
    fixture stays valid, but a re-record would change it)."""
    from parity import reference
    from parity.specs import get_spec

    directory = Path(directory)
    manifest = load_manifest(directory)
    recorded = manifest.get("versions", {})
    now = versions()
    changed = {k: (recorded.get(k), v) for k, v in now.items() if recorded.get(k) != v}
    version_note = (
        "versions differ from the manifest: "
        + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
        if changed
        else f"same versions as the manifest ({versions_text(blocking_versions(now))})"
    )
    messages: list[str] = []
    checked = 0
    for entry, spec, fixture, problem in _sample(directory, manifest, per_layer, get_spec, layers):
        if problem:
            messages.append(problem)
            continue
        case = Case.from_id(fixture.case_id)
        checked += 1
        where = f"{entry['file']} ({case.id})"
        fresh = reference.draw_case_data(spec, case)
        stored = fixture.data
        same_data = (
            fresh.weight_names == stored.weight_names
            and len(fresh.weights) == len(stored.weights)
            and all(
                np.array_equal(a, b) for a, b in zip(fresh.weights, stored.weights, strict=True)
            )
            and np.array_equal(fresh.x, stored.x)
            and len(fresh.upstream) == len(stored.upstream)
            and all(
                np.array_equal(a, b) for a, b in zip(fresh.upstream, stored.upstream, strict=True)
            )
        )
        if not same_data:
            messages.append(
                f"data drift in {where}: the spec now draws different weights, input or "
                f"upstream gradients for this case id (the fixture is still valid; "
                f"`nntk-parity record` would change it); {version_note}"
            )
        # The references, recomputed from the stored data: only TensorFlow can drift here.
        f64 = reference.run_keras(spec, case, stored, "float64")
        f32 = reference.run_keras(spec, case, stored, "float32")
        if set(f64) != set(fixture.float64):
            messages.append(
                f"reference drift in {where}: tf.keras now gives quantities {sorted(f64)}, "
                f"the fixture holds {sorted(fixture.float64)}; {version_note}"
            )
            continue
        for quantity in sorted(f64):
            tol = spec.tolerance(quantity)
            for label, new in (("float64 referee", f64), ("tf.keras float32", f32)):
                c = compare(
                    quantity,
                    new[quantity],
                    fixture.float64[quantity],
                    fixture.float32[quantity],
                    tol,
                )
                if not c.passed:
                    messages.append(
                        f"reference drift in {where}: {label} {quantity} now differs from the "
                        f"recorded float64 by {c.max_error:.3g} "
                        f"({100 * c.tolerance_used:.0f}% of tolerance); {version_note}"
                    )
    return messages, checked


def check_training_freshness(directory: Path, per_spec: int = 1) -> tuple[list[str], int]:
    """check_freshness for the training fixtures: re-runs tf.keras on the stored data
    of the first `per_spec` fixtures of each training spec."""
    from parity import training

    directory = Path(directory)
    manifest = load_manifest(directory)
    messages: list[str] = []
    sampled = 0  # counted as checked, readable or not
    for entry, spec, fixture, problem in _sample(directory, manifest, per_spec, training.get_spec):
        sampled += 1
        if problem:
            messages.append(problem)
            continue
        case = Case.from_id(fixture.case_id)
        for message in training.freshness(
            spec, case, fixture.data, fixture.float64, fixture.float32
        ):
            messages.append(f"{entry['file']} ({case.id}): {message}")
    return messages, sampled
