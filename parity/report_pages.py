"""The pages of a parity report: report.md and report.html, each with the summary
table and its legend, the problems, the failing quantities with their reruns, the
failure matrix of each failing layer, the failures in full, the attribute coverage and
the plots (the HTML embeds the PNGs; the Markdown links them in plots/)."""

from __future__ import annotations

import base64
import html

from parity.report_tables import (
    FAILING_COLUMNS,
    MATRIX_LEGEND,
    NUMERIC_COLUMNS,
    SUMMARY_COLUMNS,
    failing_quantities,
    header_lines,
    legend_lines,
    matrix_table,
    summary_rows,
)
from parity.terminal import plural

NO_PLOTS = "(no plots: matplotlib is not installed, or nothing was measured)"


def _verdict(report: dict) -> str:
    return "PASSED" if report["passed"] else "FAILED"


def _coverage_heading(layer: dict) -> str:
    return f"{layer['layer']} ({plural(layer['cases'], 'case')})"


def _md(text: str) -> str:
    """A Markdown table cell: pipes escaped."""
    return str(text).replace("|", "\\|")


def markdown(report: dict, plots: dict[str, str]) -> str:
    verdict = _verdict(report)
    out = [f"# nntk parity report: {verdict}", ""]
    out += [f"- {line}" for line in header_lines(report)]
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
        out.append("| " + " | ".join(FAILING_COLUMNS) + " |")
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
        out += [f"### {_coverage_heading(layer)}", ""]
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
        out.append(NO_PLOTS)
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
    verdict = _verdict(report)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>nntk parity report: {verdict}</title><style>{_CSS}</style></head><body>",
        f'<h1>nntk parity report: <span class="{verdict.lower()}">{verdict}</span></h1>',
        "<ul>" + "".join(f"<li>{e(line)}</li>" for line in header_lines(report)) + "</ul>",
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
            "<h2>Failing quantities</h2><table><tr>"
            + "".join(f"<th>{e(c)}</th>" for c in FAILING_COLUMNS)
            + "</tr>"
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
        out.append(f"<h3>{e(_coverage_heading(layer))}</h3><table>")
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
        out.append(f"<p>{NO_PLOTS}</p>")
    for layer, png in images.items():
        data = base64.b64encode(png).decode()
        out.append(f'<h3>{e(layer)}</h3><img alt="{e(layer)}" src="data:image/png;base64,{data}">')
    out.append("</body></html>")
    return "\n".join(out) + "\n"
