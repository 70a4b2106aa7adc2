"""The Python layer call's overhead above the C call it makes (issue 16, part 4).

    python -P tools/call_overhead.py [--repeats 41] [--calls 2000] [--only W1,W6,...]

Two kinds of case, each a C call and a Python call on the same native handle:
- the bench's own runners (nntk_bench/nntk_runners.py) for W1, W2 and W6: the `nntk`
  row (the C API through ctypes with its arguments prepared once; W6: one
  NNTKLayerChainStream per frame made from C) against the `nntk-py` row (`layer(x)`;
  W6: the streamer with a reused output, `s(window, y)`), the figure issue 16's goal
  (≤ 5 µs above C) is judged on; for W6 also the same with `out=y` by keyword and
  `Sequential.stream(window, states)` (a new output and new states per frame) against
  the same C row;
- single calls: the layer's typed C function with prepared arguments against `layer(x)`
  and `layer.stream(...)`, also with `out=` (the output written into one array, not a
  new one each call).
The two loops of a case are interleaved (their order swapped every repeat), each repeat
timing `calls` calls by the thread's CPU time and by wall time. Printed per case: the C
and Python times (the fastest repeat, CPU time) and the Python call's excess over C,
from the fastest repeats (on a shared machine the least disturbed: other work inflates
a repeat, never shrinks it) and as the median of the repeats' paired differences (the
two loops of a repeat ran side by side), by CPU time and by wall time. CPU time leaves
out the time the process waits for a core, so it is the load-robust figure; wall time is
what the bench's median columns show. At T=100 the C call's own time varies by a few µs
from repeat to repeat on a loaded machine (cache traffic of the co-runners), more than
the excess measured: many repeats are needed there (--repeats 301). A measurement, not
a test: the figures depend on the machine and its load (the load average is printed).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import time

import numpy as np

import nntk_core as nn
from nntk_core._native import lib


def _raw(name: str):
    """NNTK<name> without the binding's argtypes and errcheck: arguments passed as
    prepared ctypes objects (the bench's C rows call it the same way)."""
    f = getattr(ctypes.CDLL(lib._name), name)
    f.restype, f.argtypes = ctypes.c_int32, None
    return f


def _ptr(a: np.ndarray | None):
    return None if a is None else a.ctypes.data_as(ctypes.c_void_p)


def _c_call(layer, x: np.ndarray, out: np.ndarray, state=None, final=None):
    """The C call of the layer's inference on x, checked once: a function of no arguments."""
    handle = ctypes.c_void_p(layer._live_handle())
    batch, steps = ctypes.c_int64(x.shape[0]), ctypes.c_int64(x.shape[1] if x.ndim == 3 else 1)
    name = layer.layer_type.name
    if state is None and final is None:
        fn, args = _raw(f"NNTK{name}ApplyInference"), (handle, batch, steps, _ptr(x), _ptr(out))
    else:
        args = (handle, batch, steps, _ptr(x), _ptr(state), _ptr(out), _ptr(final))
        fn = _raw(f"NNTK{name}ApplyInferenceWithState")
    if fn(*args) != 0:
        raise RuntimeError(f"{name}: {lib.NNTKLastError().decode()}")
    return lambda: fn(*args)


def bench_cases(only: set[str]):
    """(name, C call, Python call, calls per repeat / 2000) of the bench's W1, W2 and W6
    runners (nntk against nntk-py)."""
    from nntk_bench import nntk_runners as runners
    from nntk_bench.workloads import RECURRENT, make_weights

    w = make_weights()
    raw = runners.NNTKRaw()

    def check(status: int, what: str):
        if status != 0:
            raise RuntimeError(f"nntk {what}: {lib.NNTKLastError().decode()}")

    for name in ("W1", "W2"):
        if name in only:
            c, py = (
                runners._recurrent_runner(raw, RECURRENT[name], w, p, check) for p in (False, True)
            )
            yield f"bench {name} ({RECURRENT[name].cell} B=1 T=100)", c.fn, py.fn, 1 / 200, (c, py)
    if "W6" in only:
        c = runners._stream_runner(raw, w, False, check)
        for call, label in (
            ("streamer", "streamer, out"),
            ("streamer-kw", "streamer, out="),
            ("stream", "stream"),
        ):
            py = runners._stream_runner(raw, w, True, check, python_call=call)
            yield f"bench W6 (frame, {label})", c.fn, py.fn, 1, (c, py)


def call_cases(rng: np.random.Generator, only: set[str]):
    """(name, C call, Python call, calls per repeat / 2000) of single layer calls."""
    f32 = np.float32
    if "calls" not in only:
        return
    dense = nn.Dense(4, input_dim=4)
    x_dense = rng.standard_normal((1, 4)).astype(f32)
    dense_out = np.empty((1, 4), f32)
    c_dense = _c_call(dense, x_dense, np.empty((1, 4), f32))
    yield "Dense 4->4 B=1", c_dense, lambda: dense(x_dense), 1, dense
    yield "  the same, out=", c_dense, lambda: dense(x_dense, out=dense_out), 1, dense

    gru = nn.GRU(64, input_dim=40, return_sequences=True)
    frame = rng.standard_normal((1, 1, 40)).astype(f32)
    h = [np.zeros((1, 64), f32)]
    state, final = np.zeros((1, 1, 64), f32), np.empty((1, 1, 64), f32)
    c_stream = _c_call(gru, frame, np.empty((1, 1, 64), f32), state, final)
    frame_out = np.empty((1, 1, 64), f32)

    def py_stream(**out):
        nonlocal h
        _, h = gru.stream(frame, h, **out)

    yield "GRU 40->64 stream() T=1", c_stream, py_stream, 1, gru
    yield "  the same, out=", c_stream, lambda: py_stream(out=frame_out), 1, gru

    x100 = rng.standard_normal((1, 100, 40)).astype(f32)
    for workload, cls in (("W1 GRU", nn.GRU), ("W2 LSTM", nn.LSTM)):
        layer = cls(64, input_dim=40, return_sequences=True)
        out = np.empty((1, 100, 64), f32)
        c_call = _c_call(layer, x100, out)
        yield (
            f"{workload} B=1 T=100 40->64",
            c_call,
            lambda layer=layer: layer(x100),
            1 / 200,
            layer,
        )
        yield (
            "  the same, out=",
            c_call,
            lambda layer=layer, out=out: layer(x100, out=out),
            1 / 200,
            layer,
        )


def per_call_us(call, calls: int) -> tuple[float, float]:
    """(thread CPU time, wall time) per call, µs. CPU time leaves out the time the thread
    waited for a core (the library runs on this thread: OpenBLAS is pinned to one)."""
    cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
    for _ in range(calls):
        call()
    return (time.thread_time_ns() - cpu) / calls / 1e3, (
        time.perf_counter_ns() - wall
    ) / calls / 1e3


def measure(c_call, py_call, calls: int, repeats: int) -> dict[str, float]:
    """The two calls timed in interleaved repeats, their order swapped every repeat (the
    first after the other's work may find the caches colder): per clock (cpu, wall) the
    fastest repeats' times and the median over the repeats of the Python call's excess
    over the C call's in the same repeat (µs per call)."""
    c_call(), py_call()  # warm
    times = {"c_cpu": [], "c_wall": [], "py_cpu": [], "py_wall": []}
    for repeat in range(repeats):
        order = (("c", c_call), ("py", py_call))
        for who, call in order if repeat % 2 else order[::-1]:
            cpu, wall = per_call_us(call, calls)
            times[f"{who}_cpu"].append(cpu)
            times[f"{who}_wall"].append(wall)
    figures = {}
    for clock in ("cpu", "wall"):
        c, py = times[f"c_{clock}"], times[f"py_{clock}"]
        figures[f"c_{clock}"], figures[f"py_{clock}"] = min(c), min(py)
        figures[f"excess_{clock}_min"] = min(py) - min(c)
        figures[f"excess_{clock}_paired"] = statistics.median(
            p - q for p, q in zip(py, c, strict=True)
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=41)
    parser.add_argument("--calls", type=int, default=2000, help="calls per repeat (T=100: /200)")
    parser.add_argument(
        "--only", default="W1,W2,W6,calls", help="W1, W2, W6 (the bench's runners), calls"
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    print(
        f"{'case':34} {'C µs':>8} {'Py µs':>8}   above C, µs: {'CPU min':>7} {'paired':>7}"
        f" {'wall min':>8} {'paired':>7}"
    )
    cases = [*bench_cases(only), *call_cases(np.random.default_rng(0), only)]
    for name, c_call, py_call, share, _keep in cases:
        f = measure(c_call, py_call, max(10, int(args.calls * share)), args.repeats)
        print(
            f"{name:34} {f['c_cpu']:8.2f} {f['py_cpu']:8.2f}   {'':13}"
            f"{f['excess_cpu_min']:7.2f} {f['excess_cpu_paired']:7.2f} "
            f"{f['excess_wall_min']:8.2f} {f['excess_wall_paired']:7.2f}"
        )


if __name__ == "__main__":
    main()
