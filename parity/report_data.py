"""The content of report.json: everything a parity run measured, per layer and
quantity, with its attribute coverage (option values and shape buckets exercised, those
never hit). Every rendering (parity/report_tables.py, report_pages.py, report_junit.py,
the console) is made from this dictionary; JSON-safe (parity/report.py writes it)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime


def _clean(value):
    """JSON-safe: non-finite floats as strings, sets and tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        items = [_clean(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set) else items
    return value


def _coverage(run, spec) -> dict:
    if spec is None:
        return {"options": {}, "buckets": {}, "never_hit": {}}
    options = {}
    for option, values in spec.options.items():
        seen = run.coverage.get(option, set())
        options[option] = {
            (v if isinstance(v, str) else json.dumps(v)): (tuple(v) if isinstance(v, list) else v)
            in seen
            for v in values
        }
    buckets = {b.name: run.buckets.get(b.name, 0) for b in spec.shape_buckets()}
    never = {k: v for k, v in run.missing_coverage(spec).items()}
    missing_buckets = run.missing_buckets(spec)
    if missing_buckets:
        never["shape buckets"] = missing_buckets
    return {"options": options, "buckets": buckets, "never_hit": never}


def _declared_order(spec, key) -> tuple:
    """Sorts (option, value) as the spec declares them (else by name)."""
    option, value = key
    options = list(getattr(spec, "options", {}))
    if option not in options:
        return (len(options), option, 0, str(value))
    values = [tuple(v) if isinstance(v, list) else v for v in spec.options[option]]
    position = values.index(value) if value in values else len(values)
    return (options.index(option), option, position, str(value))


def build(runs, specs, profile: str = "", source: str = "live", meta: dict | None = None) -> dict:
    """The content of report.json."""
    by_name = {s.name: s for s in specs}
    layers = []
    for run in runs:
        spec = by_name.get(run.spec)
        quantities = {}
        for name, s in sorted(run.stats.items()):
            tol = s.tolerance
            quantities[name] = {
                "cases": s.cases,
                "failures": s.failures,
                "worst_error": s.worst_error,
                "worst_tolerance_used": s.worst_tolerance_used,
                "worst_keras_multiple": s.worst_keras_multiple,
                "worst_case": s.worst_case,
                "worst_location": s.worst_location,
                "by_conditioning": s.by_conditioning,
                "tolerance": (
                    {"atol": tol.atol, "rtol": tol.rtol, "k": tol.k, "reason": tol.reason}
                    if tol is not None
                    else None
                ),
                "error_by_step": list(s.error_by_step),
                "errors": list(s.errors),
            }
        coverage = _coverage(run, spec)
        layers.append(
            {
                "layer": run.spec,
                "layer_class": getattr(spec, "layer_class", None),
                "passed": run.passed and not coverage["never_hit"],
                "cases": run.cases,
                "failed_cases": run.failed_cases,
                "seconds": run.elapsed,
                "failure": run.failure,
                "seed": run.seed,
                "findings": [f.to_json() for f in run.findings],
                "matrix": [
                    {"option": option, "value": value, "columns": columns}
                    for (option, value), columns in sorted(
                        run.matrix().items(), key=lambda item: _declared_order(spec, item[0])
                    )
                ],
                "failing_columns": run.failing_columns(),
                "coverage": coverage,
                "quantities": quantities,
            }
        )
    meta = dict(meta or {})
    problems = list(meta.pop("problems", []))
    passed = all(layer["passed"] for layer in layers) and not problems and bool(layers)
    return _clean(
        {
            "tool": "nntk-parity",
            "source": source,
            "profile": profile,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "passed": passed,
            "problems": problems,
            **meta,
            "layers": layers,
        }
    )


def without_timings(report: dict) -> dict:
    """report.json's content without what says when and how fast the run went (its
    creation time, each layer's seconds): what two runs of the same cases share,
    whether in one process, in several (-j N) or in shards merged."""
    kept = {k: v for k, v in report.items() if k != "created"}
    kept["layers"] = [
        {k: v for k, v in layer.items() if k != "seconds"} for layer in kept["layers"]
    ]
    return kept
