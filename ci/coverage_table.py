"""The per-file coverage table of ci/coverage.sh, from gcovr's JSON summaries.

gcovr counts; this only arranges its figures: the files of every unit but the kernel
tables (files.json), then those of each kernel table's unit (kernels_<table>.c:
core/kernels_impl.inc and core/vmath.h), counted from that table's own counters
(kernels-<table>.json). The total is the sum of the rows; the goal figure (GOAL) the sum of
the rows of the layer, kernel and training code. Prints the table and both figures, writes
the table as table.md and the figures as summary.json, and with --floor-branch /
--floor-line / --floor-goal exits 1 when a figure is below its floor.
"""

import argparse
import json
import re
from pathlib import Path

PREFIX = "nntk_core/csrc/"

# The layer, kernel and training code: the files whose branch coverage issue 12 §2 sets
# its goal on (>= 95 % under replay alone), each kernel table's rows included. Left out:
# src/core/status.c, the C API's shared plumbing (argument checkers, allocation, the
# training capacity, error text): its branches are argument validation, out-of-memory
# and capacity checks, the invalid-argument tests' job (excluded where ci/gcovr.cfg or
# a region in the C says so, with the reason), not layer, kernel or training code.
# Left out likewise: src/core/layer.c and src/core/layer_api.c, the handle and argument
# plumbing every layer's public functions go through (tags, argument and field checks,
# the generic API's checks, allocation failures: moved there from the layer files by the
# layer type, issue 13); the total figure still counts them. Not listed either: the C
# model (src/model/) and the streaming chain (core/chain.c), which compose layers, and
# the worker pool (core/threads.c), which runs the layers' split loops (measured by the
# thread-count tests: replay runs one thread).
GOAL = re.compile(
    r"src/(\w+\.c"  # a layer (src/dense.c, ...)
    r"|core/(kernels_impl\.inc|vmath\.h|recurrent\.[ch]|activations\.c|ops\.c"
    r"|layer\.h|pool1d\.h)"  # the layer type's inline code, the poolings' shared code
    r"|train/\w+\.c)"
    r"( \[\w+\])?"  # a kernel table's unit
)


def percent(covered: int, total: int) -> float:
    return 100.0 * covered / total if total else 100.0


def rows(report: Path, tables: list[str]) -> list[dict]:
    files = json.loads((report / "files.json").read_text())["files"]
    out = list(files)
    for table in tables:
        for f in json.loads((report / f"kernels-{table}.json").read_text())["files"]:
            out.append({**f, "filename": f"{f['filename']} [{table}]"})
    return [
        {
            "file": f["filename"].removeprefix(PREFIX),
            "lines": (f["line_covered"], f["line_total"]),
            "branches": (f["branch_covered"], f["branch_total"]),
        }
        for f in out
    ]


def totals(table: list[dict]) -> dict[str, tuple[int, int]]:
    return {
        key: (sum(r[key][0] for r in table), sum(r[key][1] for r in table))
        for key in ("lines", "branches")
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", required=True)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--tables", nargs="*", default=[])
    parser.add_argument("--floor-branch", type=float)
    parser.add_argument("--floor-line", type=float)
    parser.add_argument("--floor-goal", type=float, help="branch %% of the GOAL files")
    args = parser.parse_args()

    table = rows(args.report, args.tables)
    total = totals(table)
    goal = totals([r for r in table if GOAL.fullmatch(r["file"])])
    md = ["| file | lines | line % | branches | branch % |", "|---|---:|---:|---:|---:|"]
    for r in table + [{"file": "**total**", **total}]:
        (lc, lt), (bc, bt) = r["lines"], r["branches"]
        line_pct, branch_pct = percent(lc, lt), percent(bc, bt)
        md.append(f"| {r['file']} | {lc}/{lt} | {line_pct:.1f} | {bc}/{bt} | {branch_pct:.1f} |")
    text = "\n".join(md) + "\n"
    (args.report / "table.md").write_text(text)
    print(f"coverage ({args.mode}; kernel tables run: {', '.join(args.tables) or 'none'}):")
    print(text, end="")
    (gc, gt), (glc, glt) = goal["branches"], goal["lines"]
    print(
        f"layer, kernel and training code: branches {gc}/{gt} ({percent(gc, gt):.1f} %), "
        f"lines {glc}/{glt} ({percent(glc, glt):.1f} %)"
    )
    summary = {
        "mode": args.mode,
        "tables": args.tables,
        "line_percent": round(percent(*total["lines"]), 2),
        "branch_percent": round(percent(*total["branches"]), 2),
        "goal_branch_percent": round(percent(gc, gt), 2),
        "goal_line_percent": round(percent(glc, glt), 2),
        "files": {r["file"]: {"lines": r["lines"], "branches": r["branches"]} for r in table},
    }
    (args.report / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")

    failed = False
    for name, floor, got in (
        ("branch", args.floor_branch, summary["branch_percent"]),
        ("line", args.floor_line, summary["line_percent"]),
        ("layer, kernel and training branch", args.floor_goal, summary["goal_branch_percent"]),
    ):
        if floor is None:
            continue
        verdict = "below" if got < floor else "at or above"
        print(f"coverage: {name} {got:.2f}% is {verdict} the floor {floor:.2f}%")
        failed |= got < floor
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
