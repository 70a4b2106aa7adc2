"""W4's step call by call at TH threads (default 2) with the profiling library
(threads_profile.patch applied to core/threads.c, loaded through NNTK_CORE_LIB): per call
the medians over REPS steps of its dispatches' wall, the serial rest, the worker's start
lag, each part's wall and thread CPU and the caller's wait; and how many dispatches ran
both parts on the same CPU (sched_getcpu at each part's start)."""

import ctypes
import os
import time

import numpy as np

import nntk_bench.nntk_runners as R
import nntk_core as nn
from nntk_bench.workloads import make_weights

w = make_weights()
model = R.nntk_model(w, 32)
raw = R.NNTKRaw()
lib = raw.cdll
lib.NNTKProfCount.restype = ctypes.c_int64
lib.NNTKProfDump.restype = ctypes.c_int64
runner = R.nntk_train_runner(raw, model, w, lambda s, what: None)
fv = dict(
    zip(
        runner.fn.__code__.co_freevars,
        [c.cell_contents for c in runner.fn.__closure__],
        strict=True,
    )
)
names = [layer.layer_type.name for layer in model.layers]
calls = [
    ("F" + n + str(i), f, a) for i, (n, (f, a)) in enumerate(zip(names, fv["forward"], strict=True))
]
calls.append(("loss", fv["loss_fn"], fv["loss_args"]))
calls += [
    ("G" + n + str(6 - i), g, a)
    for i, (n, (g, a)) in enumerate(zip(reversed(names), fv["backward"], strict=True))
]
calls.append(("adam", fv["step_fn"], fv["step_args"]))
REPS = int(os.environ.get("REPS", "100"))
nn.set_thread_count(int(os.environ.get("TH", "2")))
for _ in range(5):
    for _, f, a in calls:
        f(*a)
lib.NNTKProfDump(None, 0)
spans = []  # per rep, per call: (t0, t1, d0, d1)
for _ in range(REPS):
    row = []
    for _, f, a in calls:
        d0 = lib.NNTKProfCount()
        t0 = time.monotonic_ns()
        f(*a)
        t1 = time.monotonic_ns()
        d1 = lib.NNTKProfCount()
        row.append((t0, t1, d0, d1))
    spans.append(row)
n = lib.NNTKProfCount()
buf = (ctypes.c_int64 * (13 * n))()
lib.NNTKProfDump(buf, n)
Q = np.frombuffer(buf, dtype=np.int64).reshape(n, 13)
P = Q.astype(float) / 1e3  # us
same = Q[:, 11] == Q[:, 12]
lagall = P[:, 4] - P[:, 0]
print(
    f"dispatches {n}: both parts on the same CPU {same.mean() * 100:.1f} %; worker start lag <20us {np.mean(lagall < 20) * 100:.1f} %"  # noqa: E501
)
print("  lag quantiles us (10,50,90):", np.percentile(lagall, [10, 50, 90]).round(1))
print(
    "  same-cpu dispatches: lag median",
    np.median(lagall[same]).round(1) if same.any() else "-",
    " different: ",
    np.median(lagall[~same]).round(1) if (~same).any() else "-",
)
# columns: pub done s0 e0 s1 e1 c0a c0b c1a c1b rows
print(
    f"{'call':22s} {'disp':>4s} {'wall':>7s} {'serial':>7s} {'lag1':>6s} {'wall0':>7s} {'cpu0':>7s} {'wall1':>7s} {'cpu1':>7s} {'wait':>6s}  (medians us over {REPS})"  # noqa: E501
)
tot = []
for j, (name, _, _) in enumerate(calls):
    rows = []
    for rep in spans:
        t0, t1, d0, d1 = rep[j]
        D = P[d0:d1]
        wall = (t1 - t0) / 1e3
        dwall = (D[:, 1] - D[:, 0]).sum()
        lag = (D[:, 4] - D[:, 0]).sum() if len(D) else 0
        w0 = (D[:, 3] - D[:, 2]).sum()
        c0 = (D[:, 7] - D[:, 6]).sum()
        w1 = (D[:, 5] - D[:, 4]).sum()
        c1 = (D[:, 9] - D[:, 8]).sum()
        wait = (D[:, 1] - D[:, 3]).sum()
        rows.append((d1 - d0, wall, wall - dwall, lag, w0, c0, w1, c1, wait))
    A = np.array(rows)
    m = np.median(A, axis=0)
    conc = A[:, 3] < 30 * np.maximum(A[:, 0], 1)
    cm = np.median(A[conc], axis=0) if conc.any() else np.full(9, np.nan)
    print(
        f"  {'(concurrent reps ' + str(conc.sum()) + ')':20s} {cm[0]:4.0f} {cm[1]:7.0f} {cm[2]:7.0f} {cm[3]:6.1f} {cm[4]:7.0f} {cm[5]:7.0f} {cm[6]:7.0f} {cm[7]:7.0f} {cm[8]:6.1f}"  # noqa: E501
    )
    tot.append(m)
    print(
        f"{name:22s} {m[0]:4.0f} {m[1]:7.0f} {m[2]:7.0f} {m[3]:6.1f} {m[4]:7.0f} {m[5]:7.0f} {m[6]:7.0f} {m[7]:7.0f} {m[8]:6.1f}"  # noqa: E501
    )
steps = np.array([[(r[j][1] - r[j][0]) / 1e3 for j in range(len(calls))] for r in spans]).sum(1)
print("step wall min/median", steps.min(), np.median(steps), "load", os.getloadavg())
