"""`nntk-parity`: the parity suite's command line.

    nntk-parity run [--layer NAME ...] [--profile dev|ci|nightly] [--report DIR] [--seed N]
                                                    live against tf.keras; keeps going
                                                    after a failure and reports every
                                                    distinct one with its minimal case
    nntk-parity replay [--fixtures DIR] [--layer NAME ...] [--report DIR]
                                                    the native library against the
                                                    recorded fixtures (no TensorFlow)
    nntk-parity record [--layer NAME ...] [--out DIR] [--seed N]
                                                    (re)record the fixtures (TensorFlow)
    nntk-parity record --from-failure 'CASE_ID'     add a failing case as a fixture
    nntk-parity record --training                   (re)record the training fixtures
    nntk-parity record --check                      freshness: are the fixtures still
                                                    what tf.keras computes?
    nntk-parity repro 'CASE_ID' | FIXTURE           rerun one case in full (a fixture
                                                    id or file: replayed, no TensorFlow)
    nntk-parity list                                the layer specs
    nntk-parity model [NETWORK ...] [--optimizer NAME] [--full]
                                                    whole-model training parity: per
                                                    step, the worst error of the loss,
                                                    every weight and moving statistic
    nntk-parity verify MODEL [--input-shape B,T,F] [--steps N] [--report DIR]
                                                    your own tf.keras model file, whole
                                                    (parity/verify.py)
    nntk-parity example personalize [--tiny]        the worked example: on-device
                                                    training of the keyword detector
                                                    beside the same run in tf.keras

Exit status 0 only when everything passed; 1 on a parity failure (or a missing,
altered or corrupt fixture); 2 on bad usage (unknown layer, unwritable report
directory, library not loadable).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from parity.terminal import (  # the names every command shares
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Progress,
    UsageError,
    plural,
    print_legend,
    summary_table,
)
from parity.terminal import console as _console
from parity.terminal import library_meta as _library_meta


def _load_library() -> None:
    """Imports the native library up front, so a missing or broken build is one clear
    message instead of a failure per case."""
    try:
        import nntk_core  # noqa: F401
    except OSError as exc:
        raise UsageError(f"cannot load the native library: {exc}") from exc


def _select_specs(names: list[str] | None):
    from parity.specs import all_specs, get_spec, spec_names

    if not names:
        return all_specs()
    unknown = [n for n in names if n not in spec_names()]
    if unknown:
        raise UsageError(f"unknown layer {', '.join(unknown)}; known: {', '.join(spec_names())}")
    return [get_spec(n) for n in names]


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


def cmd_run(args) -> int:
    from hypothesis import settings

    from parity import profiles
    from parity.spec_run import run_spec

    specs = _select_specs(args.layer)
    if args.report:
        from parity import report

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
        from parity import reference, report
        from parity import settings as reference_settings

        meta = {
            "versions": reference.versions(),
            "reference_settings": reference_settings.apply(),
            **_library_meta(),
        }
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


def cmd_replay(args) -> int:
    from parity import training
    from parity.fixtures import default_dir, load_manifest
    from parity.replay import count_cases, replay

    directory = Path(args.fixtures) if args.fixtures else default_dir()
    # --layer may name layer specs and training specs (parity/training.py)
    layer_names = [n for n in args.layer or [] if n not in training.spec_names()]
    specs = _select_specs(layer_names) if layer_names or not args.layer else []
    specs += [s for s in training.all_specs() if not args.layer or s.name in args.layer]
    if args.report:
        from parity import report

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
        from parity import report

        meta = {
            "versions": manifest.get("versions", {}),
            "reference_settings": manifest.get("reference_settings", {}),
            "fixtures": f"{directory} ({plural(run.expected, 'case')}, "
            f"recorded on {manifest.get('cpu', '?')})",
            "problems": run.problems,
            **_library_meta(),
        }
        report.write(args.report, runs, specs, profile="fixtures", source="replay", meta=meta)
        console.print(f"report written to {args.report}")
    verdict = "passed" if run.passed else "FAILED"
    console.print(
        f"replayed {run.ran} of {plural(run.expected, 'fixture case')} from {directory} "
        f"(references: {run.versions_line()}) in {elapsed:.2f} s: {verdict}",
        markup=False,
    )
    return EXIT_OK if run.passed else EXIT_FAILED


def cmd_record(args) -> int:
    from parity import freshness, record
    from parity.fixtures import MAX_TOTAL_BYTES, default_dir
    from parity.training import SUBDIR

    # an unknown layer is reported before a missing fixture directory
    specs = _select_specs(args.layer) if args.layer and not args.training else None
    directory = Path(args.out) if args.out else default_dir(writing=True)
    console = _console()
    if args.check:
        messages, checked = freshness.check_freshness(directory, args.sample, args.layer)
        if not args.layer:  # and the training fixtures (parity/training.py)
            more, count = freshness.check_training_freshness(directory / SUBDIR, args.sample)
            messages, checked = messages + more, checked + count
        for message in messages:
            console.print(message, style="red", markup=False)
        state = "drift found" if messages else "fresh"
        console.print(
            f"freshness: re-recorded {plural(checked, 'fixture case')} from {directory}: {state}"
        )
        return EXIT_FAILED if messages or not checked else EXIT_OK
    if args.from_failure:
        if args.layer:
            raise UsageError("--from-failure records one case; drop --layer")
        try:
            entry, _ = record.record_failure(directory, args.from_failure)
        except (ValueError, KeyError) as exc:
            raise UsageError(str(exc).strip('"')) from exc
        console.print(
            f"added regression fixture {entry['file']} ({entry['bytes']} bytes) for\n"
            f"  {entry['id']}\nto {directory / 'manifest.json'}; replay it with "
            f"`nntk-parity repro {Path(entry['file']).stem}`"
        )
        return EXIT_OK
    if args.training:
        target = directory / SUBDIR
        console.print(f"recording the training fixtures into {target} ...")
        manifest = record.record_training(target)
        console.print(
            f"{len(manifest['cases'])} training fixture cases, "
            f"{manifest['total_bytes'] / 1024:.0f} KiB, "
            f"with {record.versions_text(manifest['versions'])}"
        )
        return EXIT_OK
    console.print(f"recording fixtures into {directory} (seed {args.seed}) ...")
    with Progress(console, "record") as progress:
        progress.stage("recording fixture cases", None)
        manifest = record.record(
            directory,
            specs,
            seed=args.seed,
            random_count=args.random,
            on_case=progress.advance,
        )
    size = sum((directory / e["file"]).stat().st_size for e in manifest["cases"])
    size += (directory / "manifest.json").stat().st_size
    layers = {}
    for e in manifest["cases"]:
        layers[e["layer"]] = layers.get(e["layer"], 0) + 1
    per_layer = ", ".join(f"{k}: {v}" for k, v in layers.items())
    console.print(
        f"{plural(len(manifest['cases']), 'fixture case')} ({per_layer}), "
        f"{size / 1024:.0f} KiB, with {record.versions_text(manifest['versions'])}"
    )
    if size > MAX_TOTAL_BYTES:
        console.print(
            f"[red]the fixture set is {size / 2**20:.1f} MiB, over the "
            f"{MAX_TOTAL_BYTES / 2**20:g} MiB budget: shrink the specs' shapes[/red]"
        )
        return EXIT_FAILED
    return EXIT_OK


def cmd_repro(args) -> int:
    if "?" in args.case_id:
        return _repro_live(args.case_id)
    return _repro_fixture(args)


def _repro_live(case_id: str) -> int:
    from parity import runner, training
    from parity.record import parse_case_arg
    from parity.spec import Case
    from parity.specs import get_spec

    try:
        case = Case.from_id(parse_case_arg(case_id))
        is_training = case.layer in training.spec_names()  # a loss, optimizer, train_step
        spec = (training.get_spec if is_training else get_spec)(case.layer)
    except (ValueError, KeyError) as exc:
        raise UsageError(str(exc).strip('"')) from exc
    result = (training.run_case if is_training else runner.run_case)(spec, case, keep_arrays=True)
    print(result.full_report(spec))
    return EXIT_OK if result.passed else EXIT_FAILED


def _repro_fixture(args) -> int:
    from parity.fixtures import default_dir
    from parity.replay import find_fixture, replay_entry

    ident = args.case_id
    directory = Path(args.fixtures) if args.fixtures else default_dir()
    as_path = Path(ident)
    if as_path.parent != Path("."):  # a path to a fixture file: its directory's manifest
        directory, ident = as_path.parent, as_path.name
    found = find_fixture(directory, ident)  # a layer or a training fixture
    if found is None:
        raise UsageError(
            f"{args.case_id!r} is neither a case id ('layer?key=value&...') nor a fixture "
            f"listed in {directory / 'manifest.json'}"
        )
    kind, directory, entry = found
    result, spec = replay_entry(directory, entry, keep_arrays=True, kind=kind)
    print(f"fixture {directory / entry['file']} (origin: {entry.get('origin', '?')}), replayed")
    print(result.full_report(spec))
    return EXIT_OK if result.passed else EXIT_FAILED


def cmd_list(args) -> int:
    from parity.specs import all_specs

    for spec in all_specs():
        options = ", ".join(f"{k}={list(v)}" for k, v in spec.options.items())
        print(f"{spec.name:24s} {spec.layer_class:22s} {options}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from nntk_bench.run import add_parser as add_bench_parser
    from nntk_examples.command import add_parser as add_example_parser
    from parity.model_command import add_parser as add_model_parser
    from parity.record import DEFAULT_SEED, RANDOM_CASES
    from parity.verify_command import add_parser as add_verify_parser

    parser = argparse.ArgumentParser(prog="nntk-parity", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the live parity suite against tf.keras")
    run.add_argument("--layer", action="append", help="only this layer spec (repeatable)")
    run.add_argument("--profile", choices=("dev", "ci", "nightly"), default="ci")
    run.add_argument("--report", metavar="DIR", help="write reports into DIR")
    run.add_argument(
        "--seed",
        type=int,
        help="seed of the hypothesis search (default: fixed per layer in the derandomized "
        "ci profile, random in dev and nightly; a failing run prints it)",
    )
    run.set_defaults(func=cmd_run)

    replay = sub.add_parser(
        "replay", help="check the native library against the recorded fixtures (no TensorFlow)"
    )
    replay.add_argument(
        "--fixtures",
        metavar="DIR",
        help="fixture directory (default: the checkout's fixtures/, else the installed copy)",
    )
    replay.add_argument("--layer", action="append", help="only this layer spec (repeatable)")
    replay.add_argument("--report", metavar="DIR", help="write reports into DIR")
    replay.set_defaults(func=cmd_replay)

    record = sub.add_parser("record", help="(re)record the golden fixtures from tf.keras")
    record.add_argument("--layer", action="append", help="only this layer spec (repeatable)")
    record.add_argument(
        "--out", metavar="DIR", help="fixture directory (default: the checkout's fixtures/)"
    )
    record.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the random cases")
    record.add_argument(
        "--random", type=int, default=RANDOM_CASES, help="random cases per layer (default 4)"
    )
    record.add_argument(
        "--from-failure",
        metavar="CASE_ID",
        help="add this case (the id of a failure's rerun: line) as a regression fixture",
    )
    record.add_argument(
        "--check",
        action="store_true",
        help="freshness: re-record a sample and report reference drift (writes nothing)",
    )
    record.add_argument("--sample", type=int, default=1, help="--check: fixtures per layer")
    record.add_argument(
        "--training",
        action="store_true",
        help="(re)record the training fixtures (losses, optimizers, train_step) into DIR/training/",
    )
    record.set_defaults(func=cmd_record)

    repro = sub.add_parser(
        "repro",
        help="rerun one case and print every quantity in full: a case id (live, "
        "TensorFlow), or a fixture id / .npz file (replayed, no TensorFlow)",
    )
    repro.add_argument("case_id", metavar="ID")
    repro.add_argument("--fixtures", metavar="DIR", help="where fixture ids are looked up")
    repro.set_defaults(func=cmd_repro)
    add_bench_parser(sub)  # nntk_bench/run.py
    listing = sub.add_parser("list", help="list the layer specs and their options")
    listing.set_defaults(func=cmd_list)

    add_model_parser(sub)  # parity/model_command.py

    add_example_parser(sub)  # nntk_examples/command.py
    add_verify_parser(sub)  # parity/verify_command.py
    for command in sub.choices.values():
        command.add_argument(
            "--verbose", action="store_true", help="show TensorFlow's own start-up and log lines"
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    from parity import settings
    from parity.fixtures import FixtureError
    from parity.record import RecordError
    from parity.report import ReportError

    args = build_parser().parse_args(argv)
    settings.set_verbose(args.verbose)
    try:
        _load_library()  # every command reads the specs, which import nntk_core
        return args.func(args)
    except (UsageError, ReportError, RecordError) as exc:
        print(f"nntk-parity {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FixtureError as exc:
        print(f"nntk-parity {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("nntk-parity: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader stopped early (`| head`): no traceback
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
