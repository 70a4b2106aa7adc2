"""Reads a valgrind memcheck log of a Python process and fails on any report that
involves the nntk library: an error (invalid read/write, uninitialised value,
bad free, ...) with an nntk frame, or a definitely-lost block allocated through
one. CPython and numpy leak a little at exit by design; those reports carry no
nntk frame and are only counted.

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
    errors, leaks, foreign = [], [], 0
    for rec in records(text):
        head = rec[0]
        frames = [line for line in rec[1:] if re.match(r"\s*(at|by) 0x", line)]
        if not frames:
            continue
        ours = any(OURS.search(f) for f in frames)
        if "definitely lost" in head:
            if ours:
                leaks.append(rec)
            else:
                foreign += 1
        elif "lost in loss record" in head:
            continue  # possibly lost / still reachable: not counted
        elif ours:
            errors.append(rec)
    summary = [line for rec in records(text) for line in rec if "ERROR SUMMARY" in line]
    for rec in errors + leaks:
        print("\n".join(rec[:14]), end="\n\n")
    print(
        f"valgrind (python): {len(errors)} errors and {len(leaks)} definite leaks involving nntk; "
        f"{foreign} definite leak records outside nntk (CPython/numpy at exit, ignored); "
        + (summary[-1].strip() if summary else "no ERROR SUMMARY line")
    )
    if not summary:
        return 1  # the process did not finish under valgrind
    return 1 if errors or leaks else 0


if __name__ == "__main__":
    sys.exit(main())
