"""`nntk-parity`: the parity suite's command line.

    nntk-parity run [--layer NAME ...] [--profile dev|ci|nightly]   live against tf.keras
    nntk-parity repro 'CASE_ID'                                      rerun one case in full
    nntk-parity list                                                 the layer specs

Exit status 0 only when everything passed; 1 on a parity failure; 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _console():
    from rich.console import Console

    return Console(highlight=False, width=max(120, Console().width))


def _select_specs(names: list[str] | None):
    from parity.specs import all_specs, get_spec, spec_names

    if not names:
        return all_specs()
    unknown = [n for n in names if n not in spec_names()]
    if unknown:
        raise SystemExit(
            f"nntk-parity: unknown layer {', '.join(unknown)}; known: {', '.join(spec_names())}"
        )
    return [get_spec(n) for n in names]


def summary_table(runs, specs):
    """Per layer and quantity: cases, worst error, % of tolerance used, x Keras's error,
    and how many cases passed only by measured ill-conditioning (compare.py)."""
    from rich.table import Table

    table = Table(title="nntk vs tf.keras (float64 referee)")
    columns = (
        "layer",
        "quantity",
        "cases",
        "worst error",
        "tolerance used",
        "x Keras f32",
        "ill-cond.",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("layer", "quantity") else "right")
    for run in runs:
        for quantity, s in sorted(run.stats.items()):
            used = 100 * s.worst_tolerance_used
            style = "red" if s.failures else ("yellow" if used > 50 else "")
            table.add_row(
                run.spec,
                quantity,
                str(s.cases),
                f"{s.worst_error:.2e}",
                f"{used:.1f}%",
                f"{s.worst_keras_multiple:.3g}",
                str(s.by_conditioning) if s.by_conditioning else "",
                style=style,
            )
    return table


def cmd_run(args) -> int:
    from hypothesis import settings
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from parity import profiles
    from parity.runner import run_spec

    profiles.register()
    settings.load_profile(args.profile)
    specs = _select_specs(args.layer)
    console = _console()
    runs = []
    expected = settings().max_examples
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as progress:
        for spec in specs:
            task = progress.add_task(spec.name, total=expected + len(spec.sweep_cases()))
            runs.append(run_spec(spec, on_case=lambda _r, t=task: progress.advance(t)))
    console.print(summary_table(runs, specs))
    failed = False
    for run, spec in zip(runs, specs, strict=True):
        missing = run.missing_coverage(spec)
        if run.failure:
            failed = True
            console.print(f"[red]{run.failure}[/red]")
        if missing:
            failed = True
            console.print(f"[red]{spec.name}: option values never exercised: {missing}[/red]")
    if args.report:
        from parity import report

        report.write(args.report, runs, specs, profile=args.profile)
        console.print(f"report written to {args.report}")
    total = sum(r.cases for r in runs)
    verdict = "FAILED" if failed else "passed"
    console.print(f"{len(specs)} layers, {total} cases ({args.profile} profile): {verdict}")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_repro(args) -> int:
    from parity.runner import run_case
    from parity.spec import Case
    from parity.specs import get_spec

    try:
        case = Case.from_id(args.case_id)
        spec = get_spec(case.layer)
    except (ValueError, KeyError) as exc:
        print(f"nntk-parity repro: {exc}", file=sys.stderr)
        return EXIT_USAGE
    result = run_case(spec, case)
    print(result.full_report())
    return EXIT_OK if result.passed else EXIT_FAILED


def cmd_list(args) -> int:
    from parity.specs import all_specs

    for spec in all_specs():
        options = ", ".join(f"{k}={list(v)}" for k, v in spec.options.items())
        print(f"{spec.name:24s} {spec.layer_class:22s} {options}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nntk-parity", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the live parity suite against tf.keras")
    run.add_argument("--layer", action="append", help="only this layer spec (repeatable)")
    run.add_argument("--profile", choices=("dev", "ci", "nightly"), default="ci")
    run.add_argument("--report", metavar="DIR", help="write reports into DIR")
    run.set_defaults(func=cmd_run)
    repro = sub.add_parser("repro", help="rerun one case and print every quantity in full")
    repro.add_argument("case_id")
    repro.set_defaults(func=cmd_repro)
    listing = sub.add_parser("list", help="list the layer specs and their options")
    listing.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SystemExit as exc:  # usage errors raised by helpers
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    sys.exit(main())
