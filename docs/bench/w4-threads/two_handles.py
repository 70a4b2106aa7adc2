"""Thread CPU per call of a GRU 64->64 training forward at B=16, T=96 on its own handle:
alone, and with a second thread running its own handle at the same time (pool at 1)."""

import ctypes
import os
import sys
import threading
import time

import numpy as np

import nntk_bench.nntk_runners as R
import nntk_core as nn

raw = R.NNTKRaw()
MODE = sys.argv[1]  # gru / gru_bwd
B = int(os.environ.get("B", "16"))


def make(seed):
    rng = np.random.default_rng(seed)
    layer = nn.GRU(64, input_dim=64, return_sequences=True)
    x = rng.standard_normal((B, 96, 64)).astype(np.float32)
    out = np.empty((B, 96, 64), np.float32)
    dy = rng.standard_normal((B, 96, 64)).astype(np.float32)
    dx = np.empty((B, 96, 64), np.float32)
    h = layer._live_handle()
    grad = nn.lib.NNTKGRUGradientCreate(h)
    f = raw.fn("NNTKGRUApplyTrainingBatch", 5)
    g = raw.fn("NNTKGRUCalculateGradient", 4)
    fa = R._args(h, ctypes.c_int64(B), ctypes.c_int64(96), R._ptr(x), R._ptr(out))
    ga = R._args(h, grad, R._ptr(dy), R._ptr(dx))
    f(*fa)
    g(*ga)
    return (layer, x, out, dy, dx), f, fa, g, ga


def loop(obj, n, res, barrier):
    keep, f, fa, g, ga = obj
    barrier.wait()
    for _ in range(n):
        t0 = time.thread_time_ns()
        f(*fa)
        t1 = time.thread_time_ns()
        if MODE == "gru_bwd":
            g(*ga)
        t2 = time.thread_time_ns()
        res.append((t1 - t0, t2 - t1))


objs = [make(1), make(2)]
N = int(os.environ.get("N", "200"))
for _round in range(3):
    for k in (1, 2):
        res = [[] for _ in range(k)]
        bar = threading.Barrier(k)
        ths = [threading.Thread(target=loop, args=(objs[i], N, res[i], bar)) for i in range(k)]
        [t.start() for t in ths]
        [t.join() for t in ths]
        s = " | ".join(
            f"fwd {np.median([r[0] for r in rr]) / 1e3:7.0f} min {min(r[0] for r in rr) / 1e3:7.0f} bwd {np.median([r[1] for r in rr]) / 1e3:7.0f}"  # noqa: E501
            for rr in res
        )
        print(f"{k} thread(s) B={B}: {s}   load {os.getloadavg()[0]:.2f}")
