"""Per call of W4's step (the bench's C-level runner, the released library): wall time at
1 and 2 threads in blocks of REPS steps alternated 1, 2, 2, 1, ... (BLOCKS blocks), min and
median over all steps. ALIGN=native keeps numpy's placement of the runner's buffers;
ALIGN=<n> puts each n bytes past a 64-byte boundary."""

import os
import time
import types

import numpy as np

import nntk_bench.nntk_runners as R
import nntk_core as nn
from nntk_bench.workloads import make_weights

ALIGN = os.environ.get("ALIGN", "native")
_keep = []
if ALIGN != "native":
    offset = int(ALIGN)

    def empty(shape, dtype=np.float32):
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        raw = np.zeros(n + 128, np.uint8)
        start = (-raw.ctypes.data) % 64 + offset
        _keep.append(raw)
        return raw[start : start + n].view(dtype).reshape(shape)

    public = {k: getattr(np, k) for k in dir(np) if not k.startswith("__")}
    R.np = types.SimpleNamespace(**{**public, "empty": empty})

w = make_weights()
model = R.nntk_model(w, 32)
runner = R.nntk_train_runner(R.NNTKRaw(), model, w, lambda status, what: None)
closure = [c.cell_contents for c in runner.fn.__closure__]
fv = dict(zip(runner.fn.__code__.co_freevars, closure, strict=True))
names = [layer.layer_type.name for layer in model.layers]
calls = [("F" + n, f, a) for n, (f, a) in zip(names, fv["forward"], strict=True)]
calls.append(("loss", fv["loss_fn"], fv["loss_args"]))
calls += [("G" + n, g, a) for n, (g, a) in zip(reversed(names), fv["backward"], strict=True)]
calls.append(("adam", fv["step_fn"], fv["step_args"]))
print("offsets mod 64:", [o.ctypes.data % 64 for o in runner.keep[6]])
BLOCKS = int(os.environ.get("BLOCKS", "8"))
REPS = int(os.environ.get("REPS", "30"))
times = {1: [], 2: []}
for th in ([1, 2, 2, 1] * BLOCKS)[:BLOCKS]:
    nn.set_thread_count(th)
    for _ in range(3):
        for _, f, a in calls:
            f(*a)
    for _ in range(REPS):
        row = []
        for _, f, a in calls:
            t0 = time.perf_counter_ns()
            f(*a)
            row.append(time.perf_counter_ns() - t0)
        times[th].append(row)
nn.set_thread_count(1)
t1, t2 = np.array(times[1]) / 1e3, np.array(times[2]) / 1e3
heads = ("1t min", "med", "2t min", "med", "x(min)", "x(med)")
print(f"{'call':28s}", *(f"{h:>8s}" for h in heads[:4]), *(f"{h:>6s}" for h in heads[4:]))
columns = [(n, t1[:, i], t2[:, i]) for i, (n, _, _) in enumerate(calls)]
for n, a1, a2 in [*columns, ("step", t1.sum(1), t2.sum(1))]:
    m1, m2 = np.median(a1), np.median(a2)
    print(
        f"{n:28s} {a1.min():8.0f} {m1:8.0f} {a2.min():8.0f} {m2:8.0f} "
        f"{a1.min() / a2.min():6.2f} {m1 / m2:6.2f}"
    )
print("load", os.getloadavg())
