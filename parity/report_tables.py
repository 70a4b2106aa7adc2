"""The tables of a parity report, shared by every rendering (the console, report.md,
report.html, junit.xml): the summary table's columns, legend and rows, the failure
matrix of a failing layer, the failing quantities with the command that reruns each,
and the header lines. Cells are plain text, made from the content of report.json
(parity/report_data.py)."""

from __future__ import annotations

import json
import shlex


# -- the renderings ------------------------------------------------------------------------------
def percent(value) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, float) else str(value)


def _num(value, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, float) else str(value)


# The summary table's columns, the same in the console, report.md and report.html,
# each with its legend line: what it holds and which direction is good.
SUMMARY_COLUMNS = {
    "layer": "",
    "quantity": "what is compared: an output (inference / training call), the gradient of "
    "the input or of a weight, or a state after the training call",
    "cases": "cases that compared it; failed: those where it failed",
    "failed": "",
    "worst error": "the largest |nntk - float64 referee| over every element of every case, "
    "in the quantity's own units. It is absolute: a gradient summed over many steps, or "
    "an activation at large inputs, has large values and so can show a large error and "
    "still pass, since the tolerance grows with the quantity's size",
    "tolerance used": "the worst element's error as a share of its elementwise tolerance, "
    "rtol*|float64| + atol*max(1, max|float64|) from the layer's spec; up to 100% "
    "passes, lower is better",
    "x Keras f32": "nntk's error over tf.keras float32's own error on the same case "
    "(worst over cases); lower is better, below 1 nntk is closer to the exact result "
    "than Keras. A case fails above k times (8 by default) plus the float32 rounding floor "
    "16*eps*max(1, max|float64|): so a large multiple of a tiny Keras error can pass",
    "ill-cond.": "cases that passed only because the referee itself moves that much "
    "under 1-ulp input changes (measured; parity/compare.py)",
    "worst element": "where the worst tolerance use happened, in the layer's axis names "
    "(b: batch, t: time step, ...; its case: report.json, worst_case)",
    "status": "FAIL when any case failed the quantity; warn: over 50% of tolerance used",
}
NUMERIC_COLUMNS = ("cases", "failed", "worst error", "tolerance used", "x Keras f32", "ill-cond.")


def legend_lines() -> list[str]:
    """The summary table's legend, one line per column."""
    lines = [
        f"{column}: {text}" if column != "cases" else f"cases / failed: {text}"
        for column, text in SUMMARY_COLUMNS.items()
        if text
    ]
    return lines + [
        "A quantity passes a case when every element is within its tolerance AND the "
        "worst error is within the Keras bound; the row shows the worst over all cases."
    ]


def _status(s: dict) -> str:
    used = s["worst_tolerance_used"]
    if s["failures"]:
        return "FAIL"
    return "warn" if isinstance(used, float) and used > 0.5 else "ok"


def _element(location: str) -> str:
    """`kernel grad [in=3, unit=7]` -> `[in=3, unit=7]`: the quantity has its own column."""
    location = str(location or "")
    return location[location.index(" [") + 1 :] if " [" in location else location


def summary_rows(report: dict):
    """(cells in SUMMARY_COLUMNS order, status, worst case id) per layer and quantity."""
    for layer in report["layers"]:
        for q, s in layer["quantities"].items():
            status = _status(s)
            cells = [
                layer["layer"],
                q,
                str(s["cases"]),
                str(s["failures"]) if s["failures"] else "",
                _num(s["worst_error"], ".2e"),
                percent(s["worst_tolerance_used"]),
                _num(s["worst_keras_multiple"], ".3g"),
                str(s.get("by_conditioning") or ""),
                _element(s["worst_location"]),
                status,
            ]
            yield cells, status, s["worst_case"]


MATRIX_LEGEND = (
    "Failure matrix: one row per option value; a cell is failing cases / cases run with "
    "that value, for that quantity (only quantities that failed somewhere are shown; "
    "(raised): the native side raised an error, (unsupported): it said it does not "
    "support the case). A value whose cases all fail while the other values pass points "
    "at the faulty option."
)


def matrix_table(layer: dict) -> tuple[list[str], list[tuple[list[str], bool]]]:
    """A failing layer's failure matrix: the header, then (cells, has a failure) per
    option value. Empty when nothing failed."""
    columns = layer.get("failing_columns") or []
    if not columns:
        return [], []
    header = ["option", "value", "cases"] + columns
    rows = []
    for entry in layer["matrix"]:
        counts = entry["columns"]
        cases = max((n for n, _ in counts.values()), default=0)
        cells = [entry["option"], json.dumps(entry["value"]), str(cases)]
        failing = False
        for column in columns:
            if column in counts:
                n, f = counts[column]
                cells.append(f"{f}/{n}")
                failing = failing or f > 0
            else:
                cells.append("-")
        rows.append((cells, failing))
    return header, rows


# The failing quantities' table: one row per failing_quantities() item.
FAILING_COLUMNS = ("layer", "quantity", "failed", "worst case", "worst element", "rerun")


def failing_quantities(report: dict):
    """(layer, quantity, failing cases, cases, worst case id, worst location, repro)."""
    for layer in report["layers"]:
        for q, s in layer["quantities"].items():
            if s["failures"]:
                case = s["worst_case"]
                repro = f"nntk-parity repro {shlex.quote(case)}" if case else "-"
                yield (
                    layer["layer"],
                    q,
                    s["failures"],
                    s["cases"],
                    case or "-",
                    s["worst_location"] or "-",
                    repro,
                )


def header_lines(report: dict) -> list[str]:
    lines = [
        f"source: {report['source']}"
        + (f", profile: {report['profile']}" if report["profile"] else "")
    ]
    for key in ("versions", "reference_settings"):
        if report.get(key):
            lines.append(f"{key}: " + ", ".join(f"{k}={v}" for k, v in report[key].items()))
    for key in ("nntk", "backend", "library", "fixtures", "cpu"):
        if report.get(key):
            lines.append(f"{key}: {report[key]}")
    return lines
