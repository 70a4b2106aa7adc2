"""Reports of a parity run (live or replayed fixtures), without TensorFlow:

- `report.json`: everything measured, per layer and quantity, plus coverage;
- `report.md` and `report.html`: the summary table, failures, attribute coverage
  (option values and shape buckets exercised, those never hit flagged), and plots:
  the error along the time axis (`QuantityStats.error_by_step`) and a histogram per
  quantity of the per-case max errors (`QuantityStats.errors`). The HTML embeds the
  plots; the Markdown links the same PNGs in `plots/`;
- `junit.xml`: per layer spec one testcase per quantity, plus `coverage` (declared
  option values and shape buckets never exercised) and `run` (failures that belong
  to no single quantity: the native side raised, a fixture is missing or corrupt).

Plots need matplotlib (`pip install nntk[report]`); without it the reports say so
and everything else is written.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

FILES = ("report.json", "report.md", "report.html", "junit.xml")


class ReportError(Exception):
    """The report directory cannot be written."""


# -- the data ------------------------------------------------------------------------------
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


# -- plots -----------------------------------------------------------------------------------
def plot_layer(layer: dict) -> bytes | None:
    """One PNG per layer: the error along the time axis (all quantities that have it)
    and a histogram of per-case max errors for each quantity. None if matplotlib is
    missing or there is nothing to plot."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    quantities = layer["quantities"]
    timed = {q: s["error_by_step"] for q, s in quantities.items() if s["error_by_step"]}
    histos = {q: s["errors"] for q, s in quantities.items() if s["errors"]}
    if not timed and not histos:
        return None
    cols = 3
    rows = (1 if timed else 0) + math.ceil(len(histos) / cols)
    fig = Figure(figsize=(10, 2.6 * rows))
    grid = fig.add_gridspec(rows, cols)
    row = 0
    if timed:
        ax = fig.add_subplot(grid[0, :])
        positive = False
        styles = ("-", "--", ":", "-.")
        for i, (q, errs) in enumerate(sorted(timed.items())):
            ax.plot(range(len(errs)), errs, styles[i % 4], marker="o", markersize=3, label=q)
            positive = positive or any(e > 0 for e in errs)
        if positive:
            ax.set_yscale("symlog", linthresh=1e-9)
        ax.set_xlabel("time step t")
        ax.set_ylabel("max |nntk - float64|")
        ax.set_title(f"{layer['layer']}: error along the time axis (max over cases)")
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
        row = 1
    for i, (q, errs) in enumerate(sorted(histos.items())):
        ax = fig.add_subplot(grid[row + i // cols, i % cols])
        values = [e for e in errs if isinstance(e, float) and e > 0 and math.isfinite(e)]
        exact = sum(1 for e in errs if e == 0)
        if values:
            lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
            hi = max(hi, lo + 1)
            bins = [10 ** (lo + (hi - lo) * k / 20) for k in range(21)]
            ax.hist(values, bins=bins, color="#4878a8")
            ax.set_xscale("log")
        ax.set_title(f"{q}: {len(errs)} cases, {exact} exact", fontsize="small")
        ax.set_xlabel("per-case max error", fontsize="small")
        ax.tick_params(labelsize="x-small")
    for ax in fig.axes:
        ax.minorticks_off()  # log-axis minor ticks cost most of the drawing time
    fig.subplots_adjust(left=0.07, right=0.98, top=0.95, bottom=0.08, hspace=0.6, wspace=0.25)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    return buffer.getvalue()


# -- the renderings ------------------------------------------------------------------------------
def _pct(value) -> str:
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
                _pct(s["worst_tolerance_used"]),
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


def failing_quantities(report: dict):
    """(layer, quantity, failing cases, cases, worst case id, worst location, repro)."""
    import shlex

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


def _header_lines(report: dict) -> list[str]:
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


def _md(text: str) -> str:
    """A Markdown table cell: pipes escaped."""
    return str(text).replace("|", "\\|")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def markdown(report: dict, plots: dict[str, str]) -> str:
    verdict = "PASSED" if report["passed"] else "FAILED"
    out = [f"# nntk parity report: {verdict}", ""]
    out += [f"- {line}" for line in _header_lines(report)]
    out += ["", "## Summary", ""]
    out.append("| " + " | ".join(SUMMARY_COLUMNS) + " |")
    out.append(
        "|" + "|".join("---:" if c in NUMERIC_COLUMNS else "---" for c in SUMMARY_COLUMNS) + "|"
    )
    for cells, _, _ in summary_rows(report):
        out.append("| " + " | ".join(_md(c) for c in cells) + " |")
    out += ["", "Legend:", ""] + [f"- {_md(line)}" for line in legend_lines()]
    if report["problems"]:
        out += ["", "## Problems", ""] + [f"- {p}" for p in report["problems"]]
    failing = list(failing_quantities(report))
    if failing:
        out += ["", "## Failing quantities", ""]
        out.append("| layer | quantity | failed | worst case | worst element | rerun |")
        out.append("|---|---|---:|---|---|---|")
        for layer, q, f, n, case, where, repro in failing:
            out.append(f"| {layer} | {q} | {f} of {n} | `{case}` | {_md(where)} | `{repro}` |")
    for layer in report["layers"]:
        header, rows = matrix_table(layer)
        if not header:
            continue
        out += ["", f"## Failure matrix: {layer['layer']}", ""]
        out.append("| " + " | ".join(_md(h) for h in header) + " |")
        out.append("|---|---|" + "---:|" * (len(header) - 2))
        for cells, failing_row in rows:
            shown = [f"**{c}**" if failing_row and i < 2 else c for i, c in enumerate(cells)]
            out.append("| " + " | ".join(_md(c) for c in shown) + " |")
        out += ["", MATRIX_LEGEND]
    failures = [layer for layer in report["layers"] if layer["failure"]]
    if failures:
        out += ["", "## Failures", ""]
        for layer in failures:
            out += [f"### {layer['layer']}", "", "```text", layer["failure"], "```", ""]
    out += ["", "## Attribute coverage", ""]
    for layer in report["layers"]:
        cov = layer["coverage"]
        out += [f"### {layer['layer']} ({_plural(layer['cases'], 'case')})", ""]
        out += ["| option | exercised | never hit |", "|---|---|---|"]
        for option, values in cov["options"].items():
            hit = [v for v, ok in values.items() if ok]
            miss = [v for v, ok in values.items() if not ok]
            out.append(f"| {option} | {', '.join(hit) or '-'} | {', '.join(miss) or '-'} |")
        hit_buckets = [f"{b} ({n})" for b, n in cov["buckets"].items() if n]
        miss_buckets = [b for b, n in cov["buckets"].items() if not n]
        hit_text, miss_text = ", ".join(hit_buckets) or "-", ", ".join(miss_buckets) or "-"
        out.append(f"| shape buckets | {hit_text} | {miss_text} |")
        if cov["never_hit"]:
            out += ["", f"**Never exercised:** {cov['never_hit']}"]
        out.append("")
    out += ["## Plots", ""]
    if not plots:
        out.append("(no plots: matplotlib is not installed, or nothing was measured)")
    for layer, path in plots.items():
        out += [f"![{layer}]({path})", ""]
    return "\n".join(out).rstrip() + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; font-size: 0.9em; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.fail td { background: #fde2e2; } tr.warn td { background: #fff6d6; }
.passed { color: #1a7f37; } .failed { color: #c62828; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; font-size: 0.85em; }
.miss { color: #c62828; font-weight: bold; }
td.bad { color: #c62828; font-weight: bold; }
"""


def to_html(report: dict, images: dict[str, bytes]) -> str:
    e = html.escape
    verdict = "PASSED" if report["passed"] else "FAILED"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>nntk parity report: {verdict}</title><style>{_CSS}</style></head><body>",
        f'<h1>nntk parity report: <span class="{verdict.lower()}">{verdict}</span></h1>',
        "<ul>" + "".join(f"<li>{e(line)}</li>" for line in _header_lines(report)) + "</ul>",
        "<h2>Summary</h2><table><tr>"
        + "".join(f"<th>{e(c)}</th>" for c in SUMMARY_COLUMNS)
        + "</tr>",
    ]
    for cells, status, case in summary_rows(report):
        tds = [
            f'<td class="n">{e(c)}</td>' if column in NUMERIC_COLUMNS else f"<td>{e(c)}</td>"
            for column, c in zip(SUMMARY_COLUMNS, cells, strict=True)
        ]
        where = list(SUMMARY_COLUMNS).index("worst element")
        tds[where] = f'<td title="{e(str(case))}">{e(cells[where])}</td>'
        css = {"FAIL": "fail", "warn": "warn"}.get(status, "")
        out.append(f'<tr class="{css}">' + "".join(tds) + "</tr>")
    out.append("</table><p>Legend:</p><ul>")
    out += [f"<li>{e(line)}</li>" for line in legend_lines()]
    out.append("</ul>")
    if report["problems"]:
        out.append("<h2>Problems</h2><ul>")
        out += [f'<li class="failed">{e(p)}</li>' for p in report["problems"]]
        out.append("</ul>")
    failing = list(failing_quantities(report))
    if failing:
        out.append(
            "<h2>Failing quantities</h2><table><tr><th>layer</th><th>quantity</th>"
            "<th>failed</th><th>worst case</th><th>worst element</th><th>rerun</th></tr>"
        )
        for layer, q, f, n, case, where, repro in failing:
            out.append(
                f'<tr class="fail"><td>{e(layer)}</td><td>{e(q)}</td><td class="n">{f} of '
                f"{n}</td><td><code>{e(case)}</code></td><td>{e(where)}</td>"
                f"<td><code>{e(repro)}</code></td></tr>"
            )
        out.append("</table>")
    for layer in report["layers"]:
        header, rows = matrix_table(layer)
        if not header:
            continue
        out.append(f"<h2>Failure matrix: {e(layer['layer'])}</h2><table><tr>")
        out.append("".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        for cells, failing_row in rows:
            tds = [f"<td>{e(c)}</td>" for c in cells[:2]]
            for c in cells[2:]:
                bad = "/" in c and not c.startswith("0/")
                tds.append(f'<td class="n{" bad" if bad else ""}">{e(c)}</td>')
            out.append(f'<tr class="{"fail" if failing_row else ""}">' + "".join(tds) + "</tr>")
        out.append(f"</table><p>{e(MATRIX_LEGEND)}</p>")
    failures = [layer for layer in report["layers"] if layer["failure"]]
    if failures:
        out.append("<h2>Failures</h2>")
        for layer in failures:
            out.append(f"<h3>{e(layer['layer'])}</h3><pre>{e(layer['failure'])}</pre>")
    out.append("<h2>Attribute coverage</h2>")
    for layer in report["layers"]:
        cov = layer["coverage"]
        out.append(f"<h3>{e(layer['layer'])} ({_plural(layer['cases'], 'case')})</h3><table>")
        out.append("<tr><th>option</th><th>values (never hit in red)</th></tr>")
        for option, values in cov["options"].items():
            cells = [
                e(v) if ok else f'<span class="miss">{e(v)}</span>' for v, ok in values.items()
            ]
            out.append(f"<tr><td>{e(option)}</td><td>{', '.join(cells)}</td></tr>")
        cells = [
            f"{e(b)} ({n})" if n else f'<span class="miss">{e(b)} (never)</span>'
            for b, n in cov["buckets"].items()
        ]
        out.append(f"<tr><td>shape buckets</td><td>{', '.join(cells)}</td></tr></table>")
    out.append("<h2>Plots</h2>")
    if not images:
        out.append("<p>(no plots: matplotlib is not installed, or nothing was measured)</p>")
    for layer, png in images.items():
        data = base64.b64encode(png).decode()
        out.append(f'<h3>{e(layer)}</h3><img alt="{e(layer)}" src="data:image/png;base64,{data}">')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def junit(report: dict) -> str:
    """JUnit XML: a testsuite per layer; a testcase per quantity, plus `coverage` and `run`."""
    suites = ET.Element("testsuites", name="nntk-parity")
    total = failures = 0
    for layer in report["layers"]:
        name = f"parity.{layer['layer']}"
        suite = ET.SubElement(suites, "testsuite", name=name)
        props = ET.SubElement(suite, "properties")
        for key in ("source", "profile"):
            ET.SubElement(props, "property", name=key, value=str(report.get(key, "")))
        for key, value in (report.get("versions") or {}).items():
            ET.SubElement(props, "property", name=key, value=str(value))
        cases = fails = 0
        quantity_failed = False
        for q, s in layer["quantities"].items():
            case = ET.SubElement(suite, "testcase", classname=name, name=q, time="0")
            cases += 1
            if s["failures"]:
                fails += 1
                quantity_failed = True
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=f"{s['failures']} of {s['cases']} cases failed; worst "
                    f"{s['worst_location']} ({_pct(s['worst_tolerance_used'])} of tolerance)",
                    type="ParityFailure",
                )
                failure.text = f"worst case: {s['worst_case']}\n\n{layer['failure']}"
        coverage = ET.SubElement(suite, "testcase", classname=name, name="coverage", time="0")
        cases += 1
        if layer["coverage"]["never_hit"]:
            fails += 1
            failure = ET.SubElement(
                coverage,
                "failure",
                message=f"never exercised: {layer['coverage']['never_hit']}",
                type="CoverageGap",
            )
            failure.text = json.dumps(layer["coverage"], indent=1)
        run = ET.SubElement(
            suite,
            "testcase",
            classname=name,
            name="run",
            time=f"{float(layer['seconds'] or 0):.3f}",
        )
        cases += 1
        if layer["failure"] and not quantity_failed:
            fails += 1
            failure = ET.SubElement(
                run, "failure", message=layer["failure"].splitlines()[0], type="RunFailure"
            )
            failure.text = layer["failure"]
        suite.set("tests", str(cases))
        suite.set("failures", str(fails))
        suite.set("errors", "0")
        suite.set("time", f"{float(layer['seconds'] or 0):.3f}")
        total += cases
        failures += fails
    if report["problems"] and not report["layers"]:
        suite = ET.SubElement(suites, "testsuite", name="parity.fixtures", tests="1", failures="1")
        case = ET.SubElement(suite, "testcase", classname="parity.fixtures", name="run", time="0")
        failure = ET.SubElement(case, "failure", message=report["problems"][0], type="RunFailure")
        failure.text = "\n".join(report["problems"])
        total += 1
        failures += 1
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


# -- writing ---------------------------------------------------------------------------------------
def prepare(directory) -> Path:
    """Creates the report directory and checks it is writable (before a long run);
    ReportError with the reason otherwise."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".nntk-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ReportError(f"cannot write the report to {directory}: {exc.strerror or exc}") from exc
    return directory


def write(
    directory,
    runs,
    specs,
    profile: str = "",
    source: str = "live",
    meta: dict | None = None,
) -> list[Path]:
    """Writes report.json, report.md, report.html, junit.xml (and plots/*.png) into
    `directory`; returns the paths. ReportError if the directory cannot be written."""
    directory = prepare(directory)
    report = build(runs, specs, profile, source, meta)
    images = {}
    for layer in report["layers"]:
        png = plot_layer(layer)
        if png is not None:
            images[layer["layer"]] = png
    try:
        paths = []
        plots = {}
        if images:
            (directory / "plots").mkdir(exist_ok=True)
            for layer, png in images.items():
                path = directory / "plots" / f"{layer}.png"
                path.write_bytes(png)
                plots[layer] = f"plots/{layer}.png"
        contents = {
            "report.json": json.dumps(report, indent=1) + "\n",
            "report.md": markdown(report, plots),
            "report.html": to_html(report, images),
            "junit.xml": junit(report),
        }
        for name, text in contents.items():
            path = directory / name
            path.write_text(text, encoding="utf-8")
            paths.append(path)
    except OSError as exc:
        raise ReportError(f"cannot write the report to {directory}: {exc.strerror or exc}") from exc
    return paths
