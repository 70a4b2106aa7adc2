"""W6's frame in C, layer by layer: where the per-frame C time goes (issue 16, part 2).

    python -P tools/w6_layer_times.py [--frames 2000] [--repeats 31]

Each of the keyword detector's seven layers is called alone for one frame (its typed
NNTK<Layer>ApplyInference, the GRUs' ApplyInferenceWithState, T=1 after the Conv1d's
5-frame window), and the whole frame as one NNTKLayerChainStream (what the bench's
`nntk` row and Sequential.stream run), each timed in C by the bench's own driver
(nntk_bench/c/stream_frames.c: `frames` calls in a loop, the calling thread's CPU time).
The cases alternate, their order reversed every repeat; printed: the fastest and the
median repeat per call. A layer alone runs with its own weights warm in the caches; in
the chain the layers evict each other's (the chain's time is above the layers' sum).
A measurement, not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics

import numpy as np

import nntk_core as nn
from nntk_bench import nntk_runners as runners
from nntk_bench.workloads import CLASSES, K, U, make_weights
from nntk_core.layer_chain import LayerChain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000, help="calls per repeat")
    parser.add_argument("--repeats", type=int, default=31)
    args = parser.parse_args()

    weights = make_weights()
    model = runners.nntk_model(weights, 1)
    cdll = runners.NNTKRaw().cdll
    driver = runners._frame_driver()
    window = weights.windows()[0]  # (1, K, D): the Conv1d's window of one frame
    keep = []  # every buffer and table the raw addresses point into

    def address(name: str) -> int:
        return ctypes.cast(getattr(cdll, name), ctypes.c_void_p).value

    def buffer(shape) -> np.ndarray:
        keep.append(np.zeros(shape, np.float32))
        return keep[-1]

    def table(call) -> ctypes.Array:
        keep.append((runners._BenchCall * 1)(call))
        return keep[-1]

    cases = []
    x, steps = window, K
    for i, layer in enumerate(model.layers):
        name, handle = layer.layer_type.name, layer._live_handle()
        if name == "GRU":
            out, state, final = buffer((1, 1, U)), buffer((1, U)), buffer((1, U))
            call = runners._BenchCall(
                None,
                address(f"NNTK{name}ApplyInferenceWithState"),
                handle,
                1,
                steps,
                x.ctypes.data,
                state.ctypes.data,
                out.ctypes.data,
                final.ctypes.data,
            )
        else:
            features = CLASSES if i == len(model.layers) - 1 else layer.output_dim
            out = buffer((1, 1, features))
            call = runners._BenchCall(
                address(f"NNTK{name}ApplyInference"),
                None,
                handle,
                1,
                steps,
                x.ctypes.data,
                None,
                out.ctypes.data,
                None,
            )
        cases.append((f"{i} {name}", table(call)))
        x, steps = out, 1
    handles = tuple(layer._live_handle() for layer in model.layers)
    chain = LayerChain(model.layers, handles, window.shape, (1, 1, CLASSES))
    states, out = buffer((2, chain.state_floats)), buffer((1, CLASSES))
    stream = runners._BenchCall(
        None,
        address("NNTKLayerChainStream"),
        chain._handle,
        1,
        K,
        window.ctypes.data,
        states[0].ctypes.data,
        out.ctypes.data,
        states[1].ctypes.data,
    )
    cases.append(("the frame (NNTKLayerChainStream)", table(stream)))

    one, frames = ctypes.c_int64(1), ctypes.c_int64(args.frames)
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for repeat in range(args.repeats):
        for name, calls in cases if repeat % 2 else cases[::-1]:
            ns = driver.nntk_bench_ns_per_frame(ctypes.byref(calls), one, one, frames)
            if ns < 0:
                raise RuntimeError(f"{name}: {nn.lib.NNTKLastError().decode()}")
            times[name].append(ns)
    print(
        f"load average {os.getloadavg()[0]:.2f} (1 min), kernels {nn.lib.NNTKKernelISA().decode()}"
    )
    print(f"{'call':34} {'min ns':>8} {'median ns':>10}")
    for name, values in times.items():
        print(f"{name:34} {min(values):8.1f} {statistics.median(values):10.1f}")
    layers = [values for name, values in times.items() if not name.startswith("the frame")]
    print(f"{'the layers alone, summed':34} {sum(min(v) for v in layers):8.1f}")
    keep.append((model, chain))


if __name__ == "__main__":
    main()
