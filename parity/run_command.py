"""`nntk-parity run`: the live parity suite against tf.keras. Keeps going after a
failure and reports every distinct one with its minimal case."""

from __future__ import annotations

import argparse
from contextlib import nullcontext

from parity import parallel, report, shards
from parity.terminal import (
    EXIT_FAILED,
    EXIT_OK,
    Progress,
    UsageError,
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


def _jobs(text: str) -> int:
    jobs = int(text) if text.isdigit() else 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"a number of processes >= 1, not {text!r}")
    return jobs


def _shard(text: str):
    try:
        return shards.Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(args) -> int:
    from hypothesis import settings

    from parity import profiles

    specs = select_specs(args.layer)
    jobs = parallel.default_jobs() if args.jobs is None else args.jobs
    if args.shard and not args.report:
        raise UsageError(
            "--shard writes its results for `nntk-parity report merge`: give --report DIR"
        )
    if args.report:
        report.prepare(args.report)  # fail now, not after the run
    profiles.register()
    settings.load_profile(args.profile)
    if args.shard and args.seed is None and not settings().derandomize:
        raise UsageError(
            f"--shard with the {args.profile} profile needs --seed N (the same in every "
            "shard): its search is random otherwise, and the shards would draw other cases"
        )
    console = _console()
    with parallel.CasePool(jobs) if jobs > 1 else nullcontext() as pool:
        # Every way of running plans every spec first (parallel.py says why)
        plans = parallel.plan_specs(specs, args.seed)
        if args.shard is not None:
            return _run_shard(console, specs, plans, args, pool)
        plotted: dict[str, bytes | None] = {}
        if pool is None:
            runs, meta = _run_here(console, specs, plans, args), reference_meta
        else:
            runs, meta = _run_pool(console, specs, plans, args, pool, plotted)
    return conclude(console, runs, specs, args.profile, args.report, meta, plotted)


def _run_here(console, specs, plans, args):
    """Every spec in this process, one after another (`-j 1`)."""
    runs = []
    with Progress(console, f"run ({args.profile})", len(specs)) as progress:
        for index, (spec, plan) in enumerate(zip(specs, plans, strict=True), 1):
            progress.layer(index, spec.name)
            progress.stage("cases", len(plan.cases))
            done = parallel.run_selected([spec], [plan], None, None, on_case=progress.advance)
            runs += parallel.finish_all(
                [spec], [plan], done, on_case=progress.advance, on_stage=progress.stage
            )
    return runs


def _run_pool(console, specs, plans, args, pool, plotted: dict):
    """The specs' cases spread over the pool's worker processes (parity/parallel.py),
    each spec finished and, with --report, plotted into `plotted` while the workers
    run the later specs' cases; (runs, a function giving the report's meta)."""

    def plot(spec, run) -> None:
        plotted[spec.name] = report.plot(run, spec)

    total = sum(len(p.cases) for p in plans)
    with Progress(console, f"run ({args.profile}, -j {pool.jobs})") as progress:
        progress.stage(f"{total} cases of {plural(len(specs), 'layer')}", total)
        runs = parallel.run_and_finish(
            specs,
            plans,
            pool,
            on_case=progress.advance,
            on_stage=progress.stage,
            on_finished=plot if args.report else None,
        )
    meta = pool.reference_meta()
    return runs, lambda: meta


def _run_shard(console, specs, plans, args, pool) -> int:
    """This shard's share of the cases (in the pool's processes, or here); its results
    written for `nntk-parity report merge`. Exit status 1 if one of its cases failed."""
    total = sum(len(p.cases) for p in plans)
    share = len([p for p, *_ in parallel.positions(plans) if args.shard.takes(p)])
    jobs = 1 if pool is None else pool.jobs
    with Progress(console, f"run ({args.profile}, -j {jobs}, shard {args.shard})") as progress:
        progress.stage(f"{share} of the {total} cases of {plural(len(specs), 'layer')}", share)
        done = parallel.run_selected(specs, plans, args.shard.takes, pool, on_case=progress.advance)
    meta = pool.reference_meta() if pool is not None else reference_meta()
    path = shards.write(args.report, args.shard, args.profile, plans, done, meta)
    failed = sum(not r.passed for spec in done.results.values() for r in spec.values())
    console.print(
        f"shard {args.shard}: {plural(share, 'case')} of {total}, {failed} failing; results "
        f"written to {path} (`nntk-parity report merge` joins the shards into the report)",
        markup=False,
    )
    return EXIT_FAILED if failed else EXIT_OK


def conclude(console, runs, specs, profile: str, report_dir, meta, plotted=None) -> int:
    """A live run's end (or its shards' merge): the summary, the failures, the
    coverage gaps, the report (`meta()`: its reference's description; `plotted`: the
    plots made ahead, report.write) and the verdict; the exit status."""
    console.print(summary_table(runs, specs))
    print_legend(console)
    print_failures(console, runs, specs)
    failed = any(run.failure for run in runs)
    failed = _coverage_gaps(console, runs, specs) or failed
    if report_dir:
        report.write(
            report_dir, runs, specs, profile=profile, source="live", meta=meta(), plotted=plotted
        )
        console.print(f"report written to {report_dir}")
    total = sum(r.cases for r in runs)
    verdict = "FAILED" if failed else "passed"
    failing = [r for r in runs if r.failure]
    if failing:
        found = sum(len(r.findings) for r in failing)
        names = ", ".join(r.spec for r in failing)
        verdict += f": {plural(found, 'distinct failure')} in {names}"
    console.print(
        f"{plural(len(specs), 'layer')}, {plural(total, 'case')} ({profile} profile): {verdict}",
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
        "-j",
        "--jobs",
        type=_jobs,
        metavar="N",
        help="worker processes to run the cases in (default: every core this process may "
        "use); 1: every case in this process, spec after spec",
    )
    run.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help="run only shard I of N (every N-th case, a deterministic share) and write its "
        "results into the --report DIR, for `nntk-parity report merge`",
    )
    run.add_argument(
        "--seed",
        type=int,
        help="seed of the hypothesis search (default: fixed per layer in the derandomized "
        "ci profile, random in dev and nightly; a failing run prints it)",
    )
    run.set_defaults(func=main)
