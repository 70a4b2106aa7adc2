"""`nntk-parity replay`: the native library against the recorded fixtures (no
TensorFlow), layer and training fixtures (parity/replay.py)."""

from __future__ import annotations

import time
from pathlib import Path

from parity import report
from parity.terminal import (
    EXIT_FAILED,
    EXIT_OK,
    Progress,
    add_layer_option,
    add_report_option,
    library_meta,
    plural,
    print_failures,
    print_legend,
    select_specs,
    summary_table,
)
from parity.terminal import console as _console


def main(args) -> int:
    from parity import training
    from parity.fixtures import default_dir, load_manifest
    from parity.replay import count_cases, replay

    directory = Path(args.fixtures) if args.fixtures else default_dir()
    # --layer may name layer specs and training specs (parity/training.py)
    layer_names = [n for n in args.layer or [] if n not in training.spec_names()]
    specs = select_specs(layer_names) if layer_names or not args.layer else []
    specs += [s for s in training.all_specs() if not args.layer or s.name in args.layer]
    if args.report:
        report.prepare(args.report)
    console = _console()
    manifest = load_manifest(directory)
    total = count_cases(directory, args.layer)
    start = time.perf_counter()
    with Progress(console, "replay") as progress:
        progress.stage(f"fixtures in {directory}", total)
        run = replay(directory, args.layer, on_case=progress.advance)
    elapsed = time.perf_counter() - start
    runs = list(run.runs.values())
    console.print(summary_table(runs, title=f"nntk vs recorded tf.keras fixtures ({directory})"))
    print_legend(console)
    print_failures(console, runs)
    for problem in run.problems:
        if not any(problem in r.failure for r in runs):
            console.print(problem, style="red", markup=False)
    if args.report:
        meta = {
            "versions": manifest.get("versions", {}),
            "reference_settings": manifest.get("reference_settings", {}),
            "fixtures": f"{directory} ({plural(run.expected, 'case')}, "
            f"recorded on {manifest.get('cpu', '?')})",
            "problems": run.problems,
            **library_meta(),
        }
        report.write(args.report, runs, specs, profile="fixtures", source="replay", meta=meta)
        console.print(f"report written to {args.report}")
    verdict = "passed" if run.passed else "FAILED"
    console.print(
        f"replayed {run.ran} of {plural(run.expected, 'fixture case')} from {directory} "
        f"(references: {run.versions_line()})"
        + (f", {run.contract_calls} C API contract calls" if run.contract_calls else "")
        + (f" and {run.model_files} damaged or unusual model files" if run.model_files else "")
        + f" in {elapsed:.2f} s: {verdict}",
        markup=False,
    )
    return EXIT_OK if run.passed else EXIT_FAILED


def add_parser(subparsers) -> None:
    """`nntk-parity replay` (registered by parity/cli.py)."""
    replay = subparsers.add_parser(
        "replay", help="check the native library against the recorded fixtures (no TensorFlow)"
    )
    replay.add_argument(
        "--fixtures",
        metavar="DIR",
        help="fixture directory (default: the checkout's fixtures/, else the installed copy)",
    )
    add_layer_option(replay)
    add_report_option(replay)
    replay.set_defaults(func=main)
