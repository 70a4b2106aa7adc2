"""Bit-identity proof for a C refactoring: dump the installed library's results on every
recorded fixture, then compare two dumps byte for byte.

    python tools/bitwise_dump.py dump OUT [--layer NAME ...]   # replay + save nntk's arrays
    python tools/bitwise_dump.py compare BEFORE AFTER           # exit 1 unless identical

`dump` runs the replay machinery (parity.replay: the layer fixtures, fixtures/training/
and fixtures/sequences/) and keeps every array the native side returned (outputs, final
states, input and weight gradients, weights after training steps): one .npz per replayed
case or sequence step, in replay order, plus index.json. `compare` checks that both dumps
hold the same cases with the same quantities, and that every array has the same dtype,
shape and bytes (np.array_equal on the raw bytes: NaN and -0.0 count). Set NNTK_ISA to
dump another kernel set (e.g. NNTK_ISA=generic).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def dump(out: Path, layers: list[str] | None) -> int:
    from parity import runner, sequences
    from parity.fixtures import default_dir
    from parity.replay import replay

    out.mkdir(parents=True, exist_ok=True)
    index: list[dict] = []

    def capturing(original):
        def compare_quantities(spec, case, float64, float32, native, *args, **kwargs):
            n = len(index)
            arrays = {k: np.asarray(v) for k, v in native.items()}
            np.savez(out / f"{n:05d}.npz", **arrays)
            index.append({"n": n, "case": case.id, "quantities": sorted(arrays)})
            return original(spec, case, float64, float32, native, *args, **kwargs)

        return compare_quantities

    # Every kind of replay compares the native side's quantities through this function
    # (parity.runner.check_case for layers and training, parity.sequences.check_step).
    runner.compare_quantities = capturing(runner.compare_quantities)
    sequences.compare_quantities = capturing(sequences.compare_quantities)
    run = replay(default_dir(), layers)
    (out / "index.json").write_text(json.dumps(index, indent=0))
    arrays = sum(len(e["quantities"]) for e in index)
    print(f"{run.ran} fixture cases replayed, {len(index)} native results, {arrays} arrays")
    for problem in run.problems:
        print("problem:", problem.splitlines()[0])
    failed = [r.case.id for r in run.failed_cases]
    for case in failed:
        print("failed:", case)
    return 0 if run.passed else 1


def compare(before: Path, after: Path) -> int:
    a = json.loads((before / "index.json").read_text())
    b = json.loads((after / "index.json").read_text())
    problems: list[str] = []
    if [(e["case"], e["quantities"]) for e in a] != [(e["case"], e["quantities"]) for e in b]:
        problems.append("the dumps hold different cases or quantities")
    arrays = 0
    for ea, eb in zip(a, b, strict=False):
        name_a, name_b = f"{ea['n']:05d}.npz", f"{eb['n']:05d}.npz"
        with np.load(before / name_a) as za, np.load(after / name_b) as zb:
            for q in sorted(set(za.files) & set(zb.files)):
                x, y = za[q], zb[q]
                arrays += 1
                if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                    problems.append(f"{ea['case']}: {q} differs")
    print(f"{len(a)} vs {len(b)} native results, {arrays} arrays compared, {len(problems)} differ")
    for p in problems[:20]:
        print(" ", p)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("--layer", action="append")
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "dump":
        return dump(args.out, args.layer)
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
