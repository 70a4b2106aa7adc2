"""Gate time: the wall and CPU time of the ci-profile parity gate (`nntk-parity run
--profile ci`, what `ci/parity-gate.sh` runs) for two source trees, measured in one run.

    python -m nntk_bench.gate_time --base-site DIR [--rounds 2] [--nice 10] [--out docs/bench]
    python -m nntk_bench.gate_time --base-site DIR --jobs 2 [--rounds 2] [--out docs/bench]
    python -m nntk_bench.gate_time --stages [--layer gru ...] [--out DIR]

Each side is the same command in a fresh process of this interpreter (the TensorFlow
installed here serves both): `base` imports its nntk_core and parity from --base-site
(an older checkout installed with `pip install --no-deps --target DIR .`), `today` the
ones installed in this environment. The runs alternate (base, today, base, today, ...)
so a change in the machine's load falls on both sides alike; both run under the same
`nice`. Per run: the process's wall and CPU time (user + system, every thread, from the
kernel's accounting of the child) and, from gate_probe.py inside it, each layer spec's.
Medians over the rounds are compared three ways:

- (a) base: the base tree's gate, all its layers;
- (b) today over (a)'s layers: today's start-up plus its time in the layers the base
  tree has (the same process as (c), so (b) and (c) need no extra run) — the growth
  figure of the added coverage;
- (c) today: today's gate, all its layers.

--stages runs today's gate once with every stage timed (gate_probe.py --stages) and
writes where a live case's time goes, per layer.

--jobs N compares the ways of running instead of the trees' growth: base as it runs
(one process) against today with `-j N` (its cases in N worker processes). Both run
the plain command (`python -m parity run --profile ci --report DIR`, no probe: the
CPU time is the kernel's account of the whole process tree, workers included) and
write their reports, which must be the same but for timings (report_data's
`without_timings`): the same cases with the same results, checked every round. The
base tree must be installed in a directory named site-packages (`pip install
--target .../lib/python3.11/site-packages`), as today's is: hypothesis draws from the
constants of modules loaded from anywhere else, so a base tree elsewhere would draw
other cases.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROBE = Path(__file__).with_name("gate_probe.py")
# gate_probe.py's stage names, in the order the tables show them
STAGES = (
    "keras float32",
    "keras float64 referee",
    "sensitivity check",
    "nntk",
    "comparison",
    "case data",
    "keras layer build",
    "hypothesis and harness",
)


def schedule(sides: list[str], rounds: int) -> list[tuple[int, str]]:
    """(round, side) in run order: every side once per round, in the same order."""
    return [(r, side) for r in range(rounds) for side in sides]


def measure(
    sides: list[str],
    rounds: int,
    run_once: Callable[[str], dict],
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Runs `run_once(side)` in schedule order; each run's dict gains its side and round."""
    runs = []
    for r, side in schedule(sides, rounds):
        run = run_once(side)
        run.update(side=side, round=r)
        log(
            f"  round {r + 1}/{rounds} {side}: wall {run['wall_s']:.1f} s, "
            f"CPU {run['cpu_s']:.1f} s, load {run['load_before'][0]:.2f}"
        )
        runs.append(run)
    return runs


def startup(run: dict) -> dict[str, float]:
    """What the process spent outside the layers: imports, TensorFlow's start, the
    summary table, the exit."""
    return {
        key: run[key] - sum(layer[key] for layer in run["layers"].values())
        for key in ("wall_s", "cpu_s")
    }


def over_layers(run: dict, layers: list[str]) -> dict[str, float]:
    """A run's time restricted to `layers`: its start-up plus those layers' times."""
    rest = startup(run)
    return {key: rest[key] + sum(run["layers"][n][key] for n in layers) for key in rest}


def _median(values: list[float]) -> float:
    return statistics.median(values)


def summarize(runs: list[dict], base: str = "base", today: str = "today") -> dict:
    """Medians over the rounds, per side (total, start-up, each layer) and the three
    comparisons of the module docstring, with today / base ratios."""
    by_side = {side: [r for r in runs if r["side"] == side] for side in (base, today)}
    sides = {}
    for side, side_runs in by_side.items():
        names = list(side_runs[0]["layers"])
        sides[side] = {
            "runs": len(side_runs),
            "total": {k: _median([r[k] for r in side_runs]) for k in ("wall_s", "cpu_s")},
            "startup": {
                k: _median([startup(r)[k] for r in side_runs]) for k in ("wall_s", "cpu_s")
            },
            "layers": {
                name: {
                    "cases": side_runs[0]["layers"][name]["cases"],
                    **{
                        k: _median([r["layers"][name][k] for r in side_runs])
                        for k in ("wall_s", "cpu_s")
                    },
                }
                for name in names
            },
        }
    base_layers = list(sides[base]["layers"])
    missing = [n for n in base_layers if n not in sides[today]["layers"]]
    if missing:
        raise ValueError(f"layers of the base tree missing today: {missing}")
    new_layers = [n for n in sides[today]["layers"] if n not in base_layers]
    original = {
        k: _median([over_layers(r, base_layers)[k] for r in by_side[today]])
        for k in ("wall_s", "cpu_s")
    }
    comparisons = {
        "a_base": sides[base]["total"],
        "b_today_original_layers": original,
        "c_today_all_layers": sides[today]["total"],
    }
    for key, side, names in (
        ("a_base", base, base_layers),
        ("b_today_original_layers", today, base_layers),
        ("c_today_all_layers", today, list(sides[today]["layers"])),
    ):
        comparisons[key] = {
            **comparisons[key],
            "cases": sum(sides[side]["layers"][n]["cases"] for n in names),
        }
    # The runs of one round ran next to each other: their ratio sees nearly the same
    # machine load, so the median of the per-round ratios is a second, load-paired figure.
    rounds = sorted({r["round"] for r in runs})
    paired = {"b_over_a": [], "c_over_a": []}
    for r in rounds:
        old = next(run for run in by_side[base] if run["round"] == r)
        new = next(run for run in by_side[today] if run["round"] == r)
        paired["b_over_a"].append(_ratios(over_layers(new, base_layers), old))
        paired["c_over_a"].append(_ratios(new, old))
    return {
        "sides": sides,
        "original_layers": base_layers,
        "new_layers": new_layers,
        "comparisons": comparisons,
        "growth": {
            "b_over_a": _ratios(original, sides[base]["total"]),
            "c_over_a": _ratios(sides[today]["total"], sides[base]["total"]),
        },
        "growth_paired_by_round": {
            key: {
                "per_round": ratios,
                "median": {k: _median([x[k] for x in ratios]) for k in ("wall_s", "cpu_s")},
            }
            for key, ratios in paired.items()
        },
    }


def _ratios(new: dict, old: dict) -> dict[str, float]:
    return {k: new[k] / old[k] for k in ("wall_s", "cpu_s")}


def _fmt_ratio(new: float, old: float | None) -> str:
    return f"{new / old:.2f}" if old else "—"


def markdown(report: dict) -> str:
    """The per-layer table and the three totals."""
    summary = report["summary"]
    base, today = summary["sides"]["base"], summary["sides"]["today"]
    lines = [
        "| layer | cases base | cases today | wall s base | wall s today | wall ×"
        " | CPU s base | CPU s today | CPU × | CPU ms/case base | CPU ms/case today |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def per_case(figures):
        if not figures or "cases" not in figures:
            return "—"
        return f"{1000 * figures['cpu_s'] / figures['cases']:.0f}"

    def row(name, old, new):
        old = old or {}
        cells = [
            name,
            str(old.get("cases", "—")),
            str(new.get("cases", "—")),
            f"{old['wall_s']:.1f}" if old else "—",
            f"{new['wall_s']:.1f}",
            _fmt_ratio(new["wall_s"], old.get("wall_s")),
            f"{old['cpu_s']:.1f}" if old else "—",
            f"{new['cpu_s']:.1f}",
            _fmt_ratio(new["cpu_s"], old.get("cpu_s")),
            per_case(old),
            per_case(new),
        ]
        lines.append("| " + " | ".join(cells) + " |")

    for name in summary["original_layers"] + summary["new_layers"]:
        row(name, base["layers"].get(name), today["layers"][name])
    row("start-up and summary", base["startup"], today["startup"])
    comparisons = summary["comparisons"]
    row(
        "**(b) original layers: today / (a) base**",
        comparisons["a_base"],
        comparisons["b_today_original_layers"],
    )
    row(
        "**(c) all layers: today / (a) base**",
        comparisons["a_base"],
        comparisons["c_today_all_layers"],
    )
    paired = {k: v["median"] for k, v in summary["growth_paired_by_round"].items()}
    b, c = paired["b_over_a"], paired["c_over_a"]
    lines.append("")
    lines.append(
        "Paired by round (median of each round's today / base): "
        f"(b) wall {b['wall_s']:.2f}, CPU {b['cpu_s']:.2f}; "
        f"(c) wall {c['wall_s']:.2f}, CPU {c['cpu_s']:.2f}."
    )
    return "\n".join(lines) + "\n"


def stages_markdown(stages: dict[str, dict]) -> str:
    """Per layer, each stage's share of the layer's wall and CPU time."""
    header = ["layer", "wall s", "CPU s", *(f"{s} % CPU" for s in STAGES)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    totals: dict[str, list[float]] = {s: [0.0, 0.0] for s in STAGES}
    for layer, split in stages.items():
        wall = sum(v["wall_s"] for v in split.values())
        cpu = sum(v["cpu_s"] for v in split.values())
        for s in STAGES:
            totals[s][0] += split.get(s, {}).get("wall_s", 0.0)
            totals[s][1] += split.get(s, {}).get("cpu_s", 0.0)
        shares = [f"{100 * split.get(s, {}).get('cpu_s', 0.0) / cpu:.0f}" for s in STAGES]
        lines.append(f"| {layer} | {wall:.1f} | {cpu:.1f} | " + " | ".join(shares) + " |")
    wall = sum(w for w, _ in totals.values())
    cpu = sum(c for _, c in totals.values())
    shares = [f"**{100 * totals[s][1] / cpu:.0f}**" for s in STAGES]
    lines.append(f"| **all** | **{wall:.1f}** | **{cpu:.1f}** | " + " | ".join(shares) + " |")
    return "\n".join(lines) + "\n"


def run_gate(
    python: str, extra_path: str | None, nice: int, probe_args: list[str], gate: list[str]
) -> dict:
    """One gate run in a child process: its kernel-accounted wall and CPU time and the
    probe's per-layer figures."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if extra_path:
        env["PYTHONPATH"] = extra_path
    with tempfile.TemporaryDirectory(prefix="gate-time-") as tmp:
        out = Path(tmp) / "probe.json"
        log = Path(tmp) / "gate.log"
        command = ["nice", "-n", str(nice), python, "-P", str(PROBE), str(out), *probe_args]
        command += ["--", *gate]
        load_before = os.getloadavg()
        # cwd: the temporary directory, so no checkout is on the import path
        status, wall, cpu = run_accounted(command, tmp, env, log)
        if status != 0 or not out.exists():
            tail = log.read_text(errors="replace").splitlines()[-30:]
            raise RuntimeError(f"the gate exited {status}:\n" + "\n".join(tail))
        probe = json.loads(out.read_text())
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "probe_wall_s": probe["wall_s"],
        "probe_cpu_s": probe["cpu_s"],
        "layers": probe["layers"],
        **({"stages": probe["stages"]} if "stages" in probe else {}),
    }


def run_accounted(command: list[str], cwd, env: dict, log: Path) -> tuple[int, float, float]:
    """Runs `command` (output to `log`) under nntk_bench.subreaper: its exit status,
    wall time, and the CPU time (user + system) of it and of every process it started,
    those that outlive it included (the gate's fork server and workers)."""
    # run as a script (stdlib only): the command's PYTHONPATH may hold another tree
    command = [sys.executable, "-P", str(Path(__file__).with_name("subreaper.py")), *command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log, "w") as f:
        status = subprocess.call(command, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return status, wall, cpu


def run_command(
    python: str, extra_path: str | None, nice: int, gate: list[str], report_dir: Path
) -> dict:
    """One run of `nntk-parity` (gate + --report report_dir) in a child process: its
    wall time, the CPU time of it and every process it waited for (its workers), the
    load around it, and from its report the cases and seconds of each layer and a
    digest of its timeless content."""
    import hashlib

    from parity.report_data import without_timings

    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if extra_path:
        env["PYTHONPATH"] = extra_path
    command = ["nice", "-n", str(nice), python, "-P", "-m", "parity", *gate]
    command += ["--report", str(report_dir)]
    load_before = os.getloadavg()
    log = report_dir.with_suffix(".log")
    # cwd: the report's parent, so no checkout is on the import path
    status, wall, cpu = run_accounted(command, report_dir.parent, env, log)
    if status != 0 or not (report_dir / "report.json").exists():
        tail = log.read_text(errors="replace").splitlines()[-30:]
        raise RuntimeError(f"the gate exited {status}:\n" + "\n".join(tail))
    report = json.loads((report_dir / "report.json").read_text())
    # the library's path is each side's install, not a result
    content = without_timings({k: v for k, v in report.items() if k != "library"})
    content = json.dumps(content, sort_keys=True).encode()
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "cases": sum(layer["cases"] for layer in report["layers"]),
        "passed": report["passed"],
        "layers": {
            layer["layer"]: {"cases": layer["cases"], "seconds": layer["seconds"]}
            for layer in report["layers"]
        },
        "report_sha256": hashlib.sha256(content).hexdigest(),
    }


def summarize_jobs(runs: list[dict], base: str = "base", today: str = "today") -> dict:
    """Jobs mode: per side the medians of wall and CPU time, today / base of the
    medians and the median of each round's ratio, and whether every round's two
    reports were the same (timings apart)."""
    by_side = {side: [r for r in runs if r["side"] == side] for side in (base, today)}
    medians = {
        side: {k: _median([r[k] for r in side_runs]) for k in ("wall_s", "cpu_s")}
        for side, side_runs in by_side.items()
    }
    rounds = sorted({r["round"] for r in runs})
    per_round = []
    identical = []
    for r in rounds:
        old = next(run for run in by_side[base] if run["round"] == r)
        new = next(run for run in by_side[today] if run["round"] == r)
        per_round.append(_ratios(new, old))
        identical.append(old["report_sha256"] == new["report_sha256"])
    return {
        "sides": {
            side: {"runs": len(side_runs), "cases": side_runs[0]["cases"], **medians[side]}
            for side, side_runs in by_side.items()
        },
        "ratio": _ratios(medians[today], medians[base]),
        "ratio_paired_by_round": {
            "per_round": per_round,
            "median": {k: _median([x[k] for x in per_round]) for k in ("wall_s", "cpu_s")},
        },
        "identical_reports": identical,
        "loads": [(r["side"], r["load_before"][0], r["load_after"][0]) for r in runs],
    }


def jobs_markdown(report: dict) -> str:
    """Jobs mode: the two sides, their ratio, the rounds."""
    summary, meta = report["summary"], report["meta"]
    sides = summary["sides"]
    lines = [
        "| side | command | runs | cases | wall s | CPU s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for side in ("base", "today"):
        figures = sides[side]
        lines.append(
            f"| {side} ({meta['sides'][side]['commit']}) | `{meta['sides'][side]['command']}` "
            f"| {figures['runs']} | {figures['cases']} | {figures['wall_s']:.1f} "
            f"| {figures['cpu_s']:.1f} |"
        )
    ratio, paired = summary["ratio"], summary["ratio_paired_by_round"]
    lines.append(
        f"| **today / base** | | | | **{ratio['wall_s']:.2f}** | **{ratio['cpu_s']:.2f}** |"
    )
    lines.append("")
    rounds = ", ".join(f"wall {r['wall_s']:.2f} CPU {r['cpu_s']:.2f}" for r in paired["per_round"])
    lines.append(
        f"Medians over the rounds. Paired by round (today / base of the two runs of a "
        f"round): {rounds}; median wall {paired['median']['wall_s']:.2f}, CPU "
        f"{paired['median']['cpu_s']:.2f}. Reports the same but for timings in every "
        f"round: {all(summary['identical_reports'])}. Load average (1 min) before/after "
        "each run: " + ", ".join(f"{side} {a:.1f}/{b:.1f}" for side, a, b in summary["loads"]) + "."
    )
    return "\n".join(lines) + "\n"


def _commit(path: Path) -> str:
    try:
        return subprocess.check_output(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"], text=True
        ).strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _utc() -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime())


def _meta(args, sides: dict, gate: list[str], started: str) -> dict:
    from nntk_bench.report import cpu_name

    return {
        "started_utc": started,
        "finished_utc": _utc(),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "nice": args.nice,
        "command": " ".join(["nntk-parity", *gate]),
        "sides": sides,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nntk_bench.gate_time", description=__doc__)
    parser.add_argument("--base-site", metavar="DIR", help="the base tree's installed packages")
    parser.add_argument("--base-tree", metavar="DIR", help="its checkout (for the commit id)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per side (default 2)")
    parser.add_argument("--nice", type=int, default=10, help="nice level of every run")
    parser.add_argument("--stages", action="store_true", help="today's stage split instead")
    parser.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="compare base in one process with today's `-j N` instead (the module doc)",
    )
    parser.add_argument(
        "--base-jobs",
        type=int,
        metavar="N",
        help="with --jobs: run base with `-j N` (a base tree that has -j runs on every core"
        " by default; `--base-jobs 1` makes it the one-process gate of the same cases)",
    )
    parser.add_argument("--layer", action="append", help="only this layer spec (repeatable)")
    parser.add_argument(
        "--profile", default="ci", help="the gate's profile (default ci; dev: a quick check)"
    )
    parser.add_argument("--out", metavar="DIR", type=Path, help="write JSON and Markdown here")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parents[1]
    started = _utc()
    gate = ["run", "--profile", args.profile]
    gate += [a for name in args.layer or [] for a in ("--layer", name)]
    if args.stages:
        sides = {"today": {"commit": _commit(here), "site": "installed"}}
        run = run_gate(sys.executable, None, args.nice, ["--stages"], gate)
        report = {"meta": _meta(args, sides, gate, started), "run": run}
        table = stages_markdown(run["stages"])
        name = "gate-stages"
    else:
        if not args.base_site:
            parser.error("--base-site is required (or --stages)")
        sides = {
            "base": {
                "commit": _commit(Path(args.base_tree or args.base_site)),
                "site": args.base_site,
            },
            "today": {"commit": _commit(here), "site": "installed"},
        }
        if args.jobs:
            base = gate if args.base_jobs is None else [*gate, "-j", str(args.base_jobs)]
            commands = {"base": base, "today": [*gate, "-j", str(args.jobs)]}
            for side, command in commands.items():
                sides[side]["command"] = " ".join(["nntk-parity", *command])
            work = Path(tempfile.mkdtemp(prefix="gate-jobs-"))
            count = iter(range(1_000_000))

            def run_once(side: str) -> dict:
                extra = args.base_site if side == "base" else None
                report_dir = work / f"{side}-{next(count)}"
                return run_command(sys.executable, extra, args.nice, commands[side], report_dir)

            base_how = "one process" if args.base_jobs in (None, 1) else f"-j {args.base_jobs}"
            what = f"base ({base_how}), today (-j {args.jobs})"
            summarize_runs, render, name = summarize_jobs, jobs_markdown, "gate-jobs"
        else:

            def run_once(side: str) -> dict:
                extra = args.base_site if side == "base" else None
                return run_gate(sys.executable, extra, args.nice, [], gate)

            what = "base, today"
            summarize_runs, render, name = summarize, markdown, "gate-time"
        print(f"gate time: {args.rounds} rounds of {what} (nice {args.nice})")
        runs = measure(["base", "today"], args.rounds, run_once)
        report = {"meta": _meta(args, sides, gate, started), "runs": runs}
        report["summary"] = summarize_runs(runs)
        table = render(report)
        if not all(report["summary"].get("identical_reports", [True])):
            print(f"the two sides' reports differ (kept in {work}): not the same run")
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
        (args.out / f"{name}.md").write_text(table)
        print(f"written: {args.out / name}.json, .md")
    identical = report.get("summary", {}).get("identical_reports", [True])
    return 0 if all(identical) else 1


if __name__ == "__main__":
    sys.exit(main())
