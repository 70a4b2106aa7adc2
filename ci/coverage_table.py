"""The per-file coverage table of ci/coverage.sh, from gcovr's JSON summaries.

gcovr counts; this only arranges its figures: the files of every unit but the kernel
tables (files.json), then those of each kernel table's unit (kernels_<table>.c:
core/kernels_impl.inc and core/vmath.h), counted from that table's own counters
(kernels-<table>.json). The total is the sum of the rows. Prints the table, writes it as
table.md and the totals as summary.json, and with --floor-branch / --floor-line exits 1
when a total is below its floor.
"""

import argparse
import json
from pathlib import Path

PREFIX = "nntk_core/csrc/"


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", required=True)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--tables", nargs="*", default=[])
    parser.add_argument("--floor-branch", type=float)
    parser.add_argument("--floor-line", type=float)
    args = parser.parse_args()

    table = rows(args.report, args.tables)
    total = {
        key: (sum(r[key][0] for r in table), sum(r[key][1] for r in table))
        for key in ("lines", "branches")
    }
    md = ["| file | lines | line % | branches | branch % |", "|---|---:|---:|---:|---:|"]
    for r in table + [{"file": "**total**", **total}]:
        (lc, lt), (bc, bt) = r["lines"], r["branches"]
        line_pct, branch_pct = percent(lc, lt), percent(bc, bt)
        md.append(f"| {r['file']} | {lc}/{lt} | {line_pct:.1f} | {bc}/{bt} | {branch_pct:.1f} |")
    text = "\n".join(md) + "\n"
    (args.report / "table.md").write_text(text)
    print(f"coverage ({args.mode}; kernel tables run: {', '.join(args.tables) or 'none'}):")
    print(text, end="")
    summary = {
        "mode": args.mode,
        "tables": args.tables,
        "line_percent": round(percent(*total["lines"]), 2),
        "branch_percent": round(percent(*total["branches"]), 2),
        "files": {r["file"]: {"lines": r["lines"], "branches": r["branches"]} for r in table},
    }
    (args.report / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")

    failed = False
    for name, floor, got in (
        ("branch", args.floor_branch, summary["branch_percent"]),
        ("line", args.floor_line, summary["line_percent"]),
    ):
        if floor is None:
            continue
        verdict = "below" if got < floor else "at or above"
        print(f"coverage: {name} {got:.2f}% is {verdict} the floor {floor:.2f}%")
        failed |= got < floor
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
