"""W4 and W5 (the bench's C-level runners) in one process, blocks of CALLS calls alternated
1, 2, 2, 1, ... threads (BLOCKS blocks each); each block's median; prints the ratio of
the two medians of block medians, the range of paired ratios, and the best blocks."""

import os
import time

import numpy as np

import nntk_core as nn
from nntk_bench.nntk_runners import nntk_runners
from nntk_bench.workloads import make_weights

CALLS = int(os.environ.get("CALLS", "30"))
BLOCKS = int(os.environ.get("BLOCKS", "10"))
runners = nntk_runners(make_weights(), python_api=False)
for name in ("W4", "W5"):
    fn = runners[name].fn
    for _ in range(5):
        fn()
    med = {1: [], 2: []}
    for th in ([1, 2, 2, 1] * BLOCKS)[: 2 * BLOCKS]:
        nn.set_thread_count(th)
        fn()
        t = []
        for _ in range(CALLS):
            a = time.perf_counter_ns()
            fn()
            t.append(time.perf_counter_ns() - a)
        med[th].append(np.median(t) / 1e6)
    nn.set_thread_count(1)
    r = [a / b for a, b in zip(med[1], med[2], strict=True)]
    print(
        f"{time.strftime('%H:%M:%S', time.gmtime())} {name}: 1t {np.median(med[1]):6.2f} ms  2t {np.median(med[2]):6.2f} ms  "  # noqa: E501
        f"x{np.median(med[1]) / np.median(med[2]):5.2f}  paired median {np.median(r):.2f} ({min(r):.2f}-{max(r):.2f})  "  # noqa: E501
        f"best {min(med[1]):.2f}/{min(med[2]):.2f} = {min(med[1]) / min(med[2]):.2f}  load {os.getloadavg()[0]:.2f}",  # noqa: E501
        flush=True,
    )
