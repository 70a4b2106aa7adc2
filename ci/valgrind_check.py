"""Reads a valgrind memcheck log of a Python process (run with
ci/valgrind-python.supp, which suppresses CPython's, glibc's and the loader's own
reports) and fails on any report that involves the nntk library: an error (invalid
read/write, uninitialised value, bad free, ...) with an nntk frame, or a
definitely-lost block allocated through one; and on an ERROR SUMMARY other than 0, so
that a report outside nntk the suppressions do not cover is shown, not hidden.

    python ci/valgrind_check.py valgrind.log
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

OURS = re.compile(r"libnntk|\bnntk_\w+|\bNNTK\w+|nntk_core/csrc")


def records(text: str) -> list[list[str]]:
    """Valgrind's reports: runs of `==PID== ` lines separated by blank ones."""
    out, current = [], []
    for line in text.splitlines():
        m = re.match(r"==\d+== ?(.*)", line)
        if not m:
            continue
        body = m.group(1)
        if body.strip():
            current.append(body)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def main() -> int:
    text = Path(sys.argv[1]).read_text(errors="replace")
    errors, leaks, foreign = [], [], []
    for rec in records(text):
        head = rec[0]
        frames = [line for line in rec[1:] if re.match(r"\s*(at|by) 0x", line)]
        if not frames:
            continue
        ours = any(OURS.search(f) for f in frames)
        if "lost in loss record" in head and "definitely lost" not in head:
            continue  # possibly lost / still reachable: not errors (--errors-for-leak-kinds)
        if ours:
            (leaks if "definitely lost" in head else errors).append(rec)
        else:
            foreign.append(rec)
    summary = [line for rec in records(text) for line in rec if "ERROR SUMMARY" in line]
    if not summary:
        print("valgrind (python): no ERROR SUMMARY line: the process did not finish")
        return 1
    for rec in errors + leaks:
        print("\n".join(rec[:14]), end="\n\n")
    counted = re.search(r"ERROR SUMMARY: ([\d,]+) errors", summary[-1])
    summary_errors = int(counted.group(1).replace(",", "")) if counted else -1
    if summary_errors and not (errors or leaks):
        print(
            "reports outside nntk that ci/valgrind-python.supp does not cover: if none of "
            "them involves nntk, add their stacks there (valgrind --gen-suppressions=all)"
        )
        for rec in foreign[:20]:
            print("\n".join(rec[:14]), end="\n\n")
    print(
        f"valgrind (python): {len(errors)} errors and {len(leaks)} definite leaks involving "
        f"nntk; {summary[-1].strip()}"
    )
    return 1 if errors or leaks or summary_errors else 0


if __name__ == "__main__":
    sys.exit(main())
