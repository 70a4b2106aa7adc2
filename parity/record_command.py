"""`nntk-parity record`: (re)records the golden fixtures from tf.keras
(parity/record.py): the layer fixtures, a failure's case as a regression fixture
(--from-failure), the training fixtures (--training); --check: are they still what
tf.keras computes (parity/freshness.py)?"""

from __future__ import annotations

from pathlib import Path

from parity.record import DEFAULT_SEED, RANDOM_CASES
from parity.terminal import (
    EXIT_FAILED,
    EXIT_OK,
    Progress,
    UsageError,
    add_layer_option,
    plural,
    select_specs,
)
from parity.terminal import console as _console


def main(args) -> int:
    from parity import freshness, record
    from parity.fixtures import MAX_TOTAL_BYTES, default_dir
    from parity.training import SUBDIR

    # an unknown layer is reported before a missing fixture directory
    specs = select_specs(args.layer) if args.layer and not args.training else None
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


def add_parser(subparsers) -> None:
    """`nntk-parity record` (registered by parity/cli.py)."""
    record = subparsers.add_parser("record", help="(re)record the golden fixtures from tf.keras")
    add_layer_option(record)
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
    record.set_defaults(func=main)
