"""Runs a command as the subreaper of every process it starts (Linux), waits for all of
them, and exits with the command's status:

    python nntk_bench/subreaper.py COMMAND [ARG...]

A process that outlives its parent (the gate's fork server, which exits just after
the gate's main process, and the workers it forked) is reparented here instead of to
init, and waited for here; so the caller's RUSAGE_CHILDREN, once it has waited for this
process, counts the CPU time of everything the command started
(nntk_bench.gate_time.run_accounted)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python subreaper.py COMMAND [ARG...]", file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    status = subprocess.call(argv)
    while True:  # the orphans adopted: this process starts no other children
        try:
            os.wait()
        except ChildProcessError:
            return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
