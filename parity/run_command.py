"""`nntk-parity run`: the live parity suite against tf.keras. Keeps going after a
failure and reports every distinct one with its minimal case."""

from __future__ import annotations

from parity import report
from parity.terminal import (
    EXIT_FAILED,
    EXIT_OK,
    Progress,
    add_layer_option,
    add_report_option,
    plural,
    print_failures,
    print_legend,
    reference_meta,
    select_specs,
    summary_table,
)
from parity.terminal import console as _console


def _coverage_gaps(console, runs, specs) -> bool:
    failed = False
    for run, spec in zip(runs, specs, strict=True):
        missing = run.missing_coverage(spec)
        buckets = run.missing_buckets(spec)
        if missing:
            failed = True
            console.print(
                f"{spec.name}: option values never exercised: {missing}", style="red", markup=False
            )
        if buckets:
            failed = True
            console.print(
                f"{spec.name}: shape buckets never exercised: {buckets}", style="red", markup=False
            )
    return failed


def main(args) -> int:
    from hypothesis import settings

    from parity import profiles
    from parity.spec_run import run_spec

    specs = select_specs(args.layer)
    if args.report:
        report.prepare(args.report)  # fail now, not after the run
    profiles.register()
    settings.load_profile(args.profile)
    console = _console()
    runs = []
    with Progress(console, f"run ({args.profile})", len(specs)) as progress:
        for index, spec in enumerate(specs, 1):
            progress.layer(index, spec.name)
            runs.append(
                run_spec(spec, on_case=progress.advance, on_stage=progress.stage, seed=args.seed)
            )
    console.print(summary_table(runs, specs))
    print_legend(console)
    print_failures(console, runs, specs)
    failed = any(run.failure for run in runs)
    failed = _coverage_gaps(console, runs, specs) or failed
    if args.report:
        meta = reference_meta()
        report.write(args.report, runs, specs, profile=args.profile, source="live", meta=meta)
        console.print(f"report written to {args.report}")
    total = sum(r.cases for r in runs)
    verdict = "FAILED" if failed else "passed"
    failing = [r for r in runs if r.failure]
    if failing:
        found = sum(len(r.findings) for r in failing)
        names = ", ".join(r.spec for r in failing)
        verdict += f": {plural(found, 'distinct failure')} in {names}"
    console.print(
        f"{plural(len(specs), 'layer')}, {plural(total, 'case')} ({args.profile} profile): "
        f"{verdict}",
        markup=False,
    )
    return EXIT_FAILED if failed else EXIT_OK


def add_parser(subparsers) -> None:
    """`nntk-parity run` (registered by parity/cli.py)."""
    run = subparsers.add_parser("run", help="run the live parity suite against tf.keras")
    add_layer_option(run)
    run.add_argument("--profile", choices=("dev", "ci", "nightly"), default="ci")
    add_report_option(run)
    run.add_argument(
        "--seed",
        type=int,
        help="seed of the hypothesis search (default: fixed per layer in the derandomized "
        "ci profile, random in dev and nightly; a failing run prints it)",
    )
    run.set_defaults(func=main)
