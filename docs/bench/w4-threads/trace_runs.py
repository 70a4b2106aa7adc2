"""One line per workload per run: W4's step and W5's call (the bench's C-level runners) in
blocks of BLOCK calls, the thread count alternated 1, 2, 2, 1 (ROUNDS times) and W4's and
W5's blocks interleaved, in one process with the profiling library (threads_profile.patch,
through NNTK_CORE_LIB). For the 2-thread blocks, per dispatch: whether both parts ran on the
same CPU, the worker's start lag (median), and the parts' thread CPU per call against the
process CPU of a 1-thread call. Also the CPU the machine's other processes used over the
run (/proc/stat busy time minus this process's), and the steal time."""

import ctypes
import os
import time

import numpy as np

import nntk_core as nn
from nntk_bench.nntk_runners import NNTKRaw, nntk_runners
from nntk_bench.workloads import make_weights


def busy_jiffies():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(v) - v[3] - v[4], v[7]  # busy (without idle, iowait), steal


def own_jiffies():
    f = open(f"/proc/{os.getpid()}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


lib = NNTKRaw().cdll
lib.NNTKProfCount.restype = ctypes.c_int64
lib.NNTKProfDump.restype = ctypes.c_int64
runners = nntk_runners(make_weights(), python_api=False)
names = ("W4", "W5")
BLOCK = int(os.environ.get("BLOCK", "30"))
ROUNDS = int(os.environ.get("ROUNDS", "2"))
for name in names:
    for _ in range(5):
        runners[name].fn()
b0, s0, o0, t0 = *busy_jiffies(), own_jiffies(), time.monotonic()
med = {(n, th): [] for n in names for th in (1, 2)}
cpu = {(n, th): [] for n in names for th in (1, 2)}
recs = {n: [] for n in names}
for th in [1, 2, 2, 1] * ROUNDS:
    nn.set_thread_count(th)
    for name in names:
        fn = runners[name].fn
        fn()
        lib.NNTKProfDump(None, 0)
        walls, cpus = [], []
        for _ in range(BLOCK):
            c0 = time.process_time_ns()
            a = time.perf_counter_ns()
            fn()
            b = time.perf_counter_ns()
            c1 = time.process_time_ns()
            walls.append((b - a) / 1e3)
            cpus.append((c1 - c0) / 1e3)
        med[name, th].append(np.median(walls))
        cpu[name, th].append(np.median(cpus))
        if th == 2:
            n = lib.NNTKProfCount()
            buf = (ctypes.c_int64 * (13 * n))()
            lib.NNTKProfDump(buf, n)
            recs[name].append(np.frombuffer(buf, dtype=np.int64).reshape(n, 13).copy())
nn.set_thread_count(1)
b1, s1, o1, t1 = *busy_jiffies(), own_jiffies(), time.monotonic()
hz = os.sysconf("SC_CLK_TCK")
others = ((b1 - b0) - (o1 - o0)) / hz / (t1 - t0)
for name in names:
    Q = np.concatenate(recs[name])
    same = (Q[:, 11] == Q[:, 12]).mean() * 100
    lag = np.median(Q[:, 4] - Q[:, 0]) / 1e3
    parts = ((Q[:, 7] - Q[:, 6]) + (Q[:, 9] - Q[:, 8])).sum() / 1e3 / (ROUNDS * 2 * BLOCK)
    m1, m2 = np.median(med[name, 1]), np.median(med[name, 2])
    ratios = [a / b for a, b in zip(med[name, 1], med[name, 2], strict=True)]
    best = min(med[name, 1]) / min(med[name, 2])
    print(
        f"{time.strftime('%H:%M:%S', time.gmtime())} {name} 1t {m1:6.0f} us  2t {m2:6.0f} us  "
        f"x{m1 / m2:5.2f} (blocks {min(ratios):.2f}-{max(ratios):.2f}, best {best:.2f})  "
        f"same-CPU {same:5.1f} %  lag {lag:6.1f} us  parts CPU {parts:6.0f} us "
        f"(1t CPU {np.median(cpu[name, 1]):6.0f})  other procs {others:4.2f} cores  "
        f"steal {(s1 - s0) / hz:.2f} s  load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
