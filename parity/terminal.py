"""What every `nntk-parity` command shares: the exit statuses, UsageError, the
console, the progress display, plural(), the --layer and --report options and the
layer specs --layer selects, the summary table of a parity run with its legend and
its failures, and the library's and reference's description for a report."""

from __future__ import annotations

import time

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input on the command line: a message and exit status 2."""


def console():
    """The rich console a command prints to."""
    from rich.console import Console

    terminal = Console()
    # A log (not a terminal) gets wide lines rather than a squeezed table.
    width = max(120, terminal.width) if terminal.is_terminal else 160
    return Console(highlight=False, width=width)


class Progress:
    """Progress of a long command: stage, layer k/N, cases done, elapsed time and ETA.
    On a terminal, a live bar; otherwise (CI, a file, a pipe) plain lines, one when a
    stage starts and then one every LOG_EVERY seconds, so a log shows signs of life."""

    LOG_EVERY = 15.0  # seconds between log lines within a stage

    def __init__(self, console, command: str, layers: int = 0):
        self.console, self.command, self.layers = console, command, layers
        self.start = time.monotonic()
        self.layer_label = ""
        self.stage_name, self.total, self.done = "", None, 0
        self.stage_start = self.last_line = self.start
        self.bar = self.task = None

    def __enter__(self):
        if self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar

            self.bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("cases, elapsed"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def layer(self, index: int, name: str) -> None:
        """Layer `index` (1-based) of the command's `layers` starts."""
        self.layer_label = f"layer {index}/{self.layers} {name}"

    def stage(self, name: str, total: int | None) -> None:
        self.stage_name, self.total, self.done = name, total, 0
        self.stage_start = time.monotonic()
        description = ", ".join(filter(None, [self.command, self.layer_label, name]))
        if self.bar is not None:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.task = self.bar.add_task(description, total=total)
        else:
            self._line()

    def advance(self, *_ignored) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.advance(self.task)
        elif time.monotonic() - self.last_line >= self.LOG_EVERY:
            self._line()

    def _line(self) -> None:
        now = time.monotonic()
        self.last_line = now
        cases = f"{self.done}/{self.total}" if self.total else str(self.done)
        noun = "case" if self.total == 1 or (not self.total and self.done == 1) else "cases"
        parts = [self.command, self.layer_label, f"{self.stage_name}: {cases} {noun}"]
        parts.append(f"elapsed {_clock(now - self.start)}")
        if self.total and 0 < self.done < self.total:
            rate = (now - self.stage_start) / self.done
            parts.append(f"ETA {_clock(rate * (self.total - self.done))} for this stage")
        line = " | ".join(filter(None, parts))
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        self.console.file.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 layer', '2 layers'."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def add_layer_option(parser) -> None:
    parser.add_argument("--layer", action="append", help="only this layer spec (repeatable)")


def add_report_option(parser) -> None:
    parser.add_argument("--report", metavar="DIR", help="write reports into DIR")


def select_specs(names: list[str] | None):
    """The layer specs named by --layer (all of them without it); UsageError naming an
    unknown one."""
    from parity.specs import all_specs, get_spec, spec_names

    if not names:
        return all_specs()
    unknown = [n for n in names if n not in spec_names()]
    if unknown:
        raise UsageError(f"unknown layer {', '.join(unknown)}; known: {', '.join(spec_names())}")
    return [get_spec(n) for n in names]


def summary_table(runs, specs=None, title="nntk vs tf.keras (float64 referee)"):
    """Per layer and quantity, the columns of report_tables.SUMMARY_COLUMNS (the same as
    in report.md and report.html); cells are plain text (no rich markup: an element
    location reads `[b=2, t=1, unit=3]`)."""
    from rich.table import Table
    from rich.text import Text

    from parity.report_data import build
    from parity.report_tables import NUMERIC_COLUMNS, SUMMARY_COLUMNS, summary_rows

    table = Table(title=title)
    for column in SUMMARY_COLUMNS:
        numeric = column in NUMERIC_COLUMNS
        table.add_column(
            column,
            justify="right" if numeric else "left",
            no_wrap=column in ("layer", "quantity", "worst element"),
        )
    styles = {"FAIL": "red", "warn": "yellow", "ok": ""}
    for cells, status, _ in summary_rows(build(runs, specs or [])):
        table.add_row(*(Text(c) for c in cells), style=styles[status])
    return table


def print_legend(console) -> None:
    from parity.report_tables import legend_lines

    console.print("Legend:", markup=False)
    for line in legend_lines():
        console.print(f"  {line}", markup=False, highlight=False)


def print_failures(console, runs, specs=None) -> None:
    """The failure matrix of each failing layer, then its failures in full. Printed
    without markup, so element locations like `[b=2, t=1, unit=3]` stay."""
    from rich.table import Table
    from rich.text import Text

    from parity.report_data import build
    from parity.report_tables import MATRIX_LEGEND, matrix_table

    data = build(runs, specs or [])
    shown = False
    for layer in data["layers"]:
        header, rows = matrix_table(layer)
        if not header:
            continue
        table = Table(title=f"failure matrix: {layer['layer']}")
        for i, column in enumerate(header):
            table.add_column(column, justify="left" if i < 2 else "right")
        for cells, failing in rows:
            table.add_row(*(Text(c) for c in cells), style="red" if failing else "")
        console.print(table)
        shown = True
    if shown:
        console.print(MATRIX_LEGEND, markup=False, highlight=False)
    for run in runs:
        if run.failure:
            # soft_wrap: long lines (a rerun command) stay whole, to copy and paste
            console.print(run.failure, style="red", markup=False, highlight=False, soft_wrap=True)


def library_meta() -> dict:
    """The nntk version, backend, library path and CPU, for a report's meta."""
    import nntk_core
    from nntk_core import _native
    from parity.fixtures import cpu_model

    return {
        "nntk": nntk_core.__version__,
        "backend": nntk_core.BACKEND,
        "library": str(_native.library_path()),
        "cpu": cpu_model(),
    }


def reference_meta() -> dict:
    """A live run's tf.keras versions and reference settings, and the library
    (library_meta), for its report's meta."""
    from parity import reference, settings

    return {
        "versions": reference.versions(),
        "reference_settings": settings.apply(),
        **library_meta(),
    }
