"""The Python layer call's overhead above the C call it makes (issue 16, part 4).

    python -P tools/call_overhead.py [--repeats 41] [--calls 2000]

For each case, the same native handle is called through the C function with its
arguments prepared once (ctypes, no checks: what an app's C call costs, as the
bench's "nntk" rows) and through the Python API (`layer(x)`, `layer.stream(...)`);
with `out=` too (the output written into one array, not a new one each call);
the two loops are interleaved, each repeat timing `calls` calls in CPU time, and
the medians over the repeats are printed with their difference, the per-call
overhead (and the same from the fastest repeats).
A measurement, not a test: the figures depend on the machine and its load (the
load average is printed with them).
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
    """The C call of the layer's inference on x: (function, its prepared arguments)."""
    handle = ctypes.c_void_p(layer._live_handle())
    batch, steps = ctypes.c_int64(x.shape[0]), ctypes.c_int64(x.shape[1] if x.ndim == 3 else 1)
    name = layer.layer_type.name
    if state is None and final is None:
        return _raw(f"NNTK{name}ApplyInference"), (handle, batch, steps, _ptr(x), _ptr(out))
    args = (handle, batch, steps, _ptr(x), _ptr(state), _ptr(out), _ptr(final))
    return _raw(f"NNTK{name}ApplyInferenceWithState"), args


def cases(rng: np.random.Generator):
    """(name, C call, Python call) of each measured case."""
    f32 = np.float32
    dense = nn.Dense(4, input_dim=4)
    x_dense = rng.standard_normal((1, 4)).astype(f32)
    c_dense = _c_call(dense, x_dense, np.empty((1, 4), f32))
    yield "Dense 4->4 B=1", c_dense, lambda: dense(x_dense)

    gru = nn.GRU(64, input_dim=40, return_sequences=True)
    frame = rng.standard_normal((1, 1, 40)).astype(f32)
    h = [np.zeros((1, 64), f32)]
    state, final = np.zeros((1, 1, 64), f32), np.empty((1, 1, 64), f32)
    c_stream = _c_call(gru, frame, np.empty((1, 1, 64), f32), state, final)

    frame_out = np.empty((1, 1, 64), f32)

    def py_stream(**out):  # out=, if given (an older nntk_core has none)
        nonlocal h
        _, h = gru.stream(frame, h, **out)

    yield "GRU 40->64 stream() T=1", c_stream, py_stream
    yield "  the same, out=", c_stream, lambda: py_stream(out=frame_out)

    x100 = rng.standard_normal((1, 100, 40)).astype(f32)
    for workload, cls in (("W1 GRU", nn.GRU), ("W2 LSTM", nn.LSTM)):
        layer = cls(64, input_dim=40, return_sequences=True)
        out = np.empty((1, 100, 64), f32)
        c_call = _c_call(layer, x100, out)
        yield f"{workload} B=1 T=100 40->64", c_call, lambda layer=layer: layer(x100)
        yield "  the same, out=", c_call, lambda layer=layer, out=out: layer(x100, out=out)


def per_call_us(call, calls: int) -> float:
    """CPU time per call (the process's, all its threads): on a machine shared with
    other work, wall time would count the time the process waits for a core."""
    start = time.process_time_ns()
    for _ in range(calls):
        call()
    return (time.process_time_ns() - start) / calls / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=41)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    print(f"{'case':28} {'C µs':>9} {'Python µs':>10} {'overhead µs':>12} {'(min)':>7}")
    for name, (c_fn, c_args), py_call in cases(np.random.default_rng(0)):
        if c_fn(*c_args) != 0:
            raise RuntimeError(f"{name}: {lib.NNTKLastError().decode()}")
        try:
            py_call()
        except TypeError as e:  # an nntk_core before out= (to compare with one)
            print(f"{name:28} not measured: {e}")
            continue
        calls = max(20, args.calls // (50 if c_args[2].value == 100 else 1))
        c_times, py_times = [], []
        for _ in range(args.repeats):
            c_times.append(per_call_us(lambda c_fn=c_fn, c_args=c_args: c_fn(*c_args), calls))
            py_times.append(per_call_us(py_call, calls))
        c_us, py_us = statistics.median(c_times), statistics.median(py_times)
        fastest = min(py_times) - min(c_times)
        print(f"{name:28} {c_us:9.2f} {py_us:10.2f} {py_us - c_us:12.2f} {fastest:7.2f}")


if __name__ == "__main__":
    main()
