"""`nntk-parity report merge DIR...`: the shards of a live run (`nntk-parity run
--shard I/N --report DIR`, parity/shards.py) joined into the run's report, the same
as one unsharded run's (timings apart), with the same summary and exit status."""

from __future__ import annotations

from parity import parallel, report, shards
from parity.terminal import Progress, add_report_option
from parity.terminal import console as _console


def merge(args) -> int:
    from hypothesis import settings

    from parity import profiles
    from parity.run_command import conclude
    from parity.spec_run import plan_spec
    from parity.specs import get_spec, spec_names

    if args.report:
        report.prepare(args.report)  # fail now, not after the merge
    profile = shards.profile_of(args.shards)
    profiles.register()
    settings.load_profile(profile)

    def plan_again(name: str, seed: int):
        if name not in spec_names():
            raise shards.ShardError(f"the shards ran a layer spec this version lacks: {name}")
        return plan_spec(get_spec(name), seed=seed)

    merged = shards.read(args.shards, plan_again)
    specs = [get_spec(plan.spec) for plan in merged.plans]
    console = _console()
    with Progress(console, "report merge", len(specs)) as progress:
        # Shrinking a failure runs new cases: here, with TensorFlow (imported only then)
        runs = parallel.finish_all(
            specs, merged.plans, merged.done, on_case=progress.advance, on_stage=progress.stage
        )
    return conclude(console, runs, specs, merged.profile, args.report, lambda: merged.meta)


def add_parser(subparsers) -> None:
    """`nntk-parity report merge` (registered by parity/cli.py)."""
    command = subparsers.add_parser("report", help="work with the reports of live runs")
    verbs = command.add_subparsers(dest="verb", required=True)
    merge_parser = verbs.add_parser(
        "merge",
        help="join the shards of a live run (`run --shard I/N --report DIR`) into its report",
    )
    merge_parser.add_argument(
        "shards",
        nargs="+",
        metavar="DIR",
        help="a shard's --report directory (or any directory holding shard files, or a file)",
    )
    add_report_option(merge_parser)
    merge_parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow's own start-up and log lines"
    )
    merge_parser.set_defaults(func=merge)
