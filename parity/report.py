"""Reports of a parity run (live or replayed fixtures), without TensorFlow, written
into a directory by `write`:

- `report.json`: everything measured, per layer and quantity, plus coverage
  (parity/report_data.py);
- `report.md` and `report.html`: the summary table, failures, attribute coverage
  (option values and shape buckets exercised, those never hit flagged), and plots
  (parity/report_pages.py; the tables they share with the console:
  parity/report_tables.py). The HTML embeds the plots (parity/report_plots.py); the
  Markdown links the same PNGs in `plots/`;
- `junit.xml`: per layer spec one testcase per quantity, plus `coverage` and `run`
  (parity/report_junit.py).

Plots need matplotlib (`pip install nntk[report]`); without it the reports say so
and everything else is written.
"""

from __future__ import annotations

import json
from pathlib import Path

from parity.report_data import build
from parity.report_junit import junit
from parity.report_pages import markdown, to_html
from parity.report_plots import plot_layer

FILES = ("report.json", "report.md", "report.html", "junit.xml")


class ReportError(Exception):
    """The report directory cannot be written."""


def _unwritable(directory: Path, exc: OSError) -> ReportError:
    return ReportError(f"cannot write the report to {directory}: {exc.strerror or exc}")


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
        raise _unwritable(directory, exc) from exc
    return directory


def plot(run, spec) -> bytes | None:
    """One layer's plot as `write` makes it, made ahead: a run on several processes
    plots each layer as soon as it is finished, while the workers run the later
    layers' cases (the plots are most of the report's time: 0.5-2 s a layer)."""
    return plot_layer(build([run], [spec])["layers"][0])


def write(
    directory,
    runs,
    specs,
    profile: str = "",
    source: str = "live",
    meta: dict | None = None,
    plotted: dict[str, bytes | None] | None = None,
) -> list[Path]:
    """Writes report.json, report.md, report.html, junit.xml (and plots/*.png) into
    `directory`; returns the paths. ReportError if the directory cannot be written.
    `plotted`: layer -> its plot made ahead (`plot`); the others are made here."""
    directory = prepare(directory)
    report = build(runs, specs, profile, source, meta)
    plotted = plotted or {}
    images = {}
    for layer in report["layers"]:
        name = layer["layer"]
        png = plotted[name] if name in plotted else plot_layer(layer)
        if png is not None:
            images[name] = png
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
        raise _unwritable(directory, exc) from exc
    return paths
