"""Timing: a framework's runners in this process (`Local`) or in a process of its own
(`Worker`), interleaved rounds, and the machine's one-thread sgemm peak."""

from __future__ import annotations

import ctypes
import os
import sys
import time

import numpy as np

from nntk_bench.frameworks import BUILDERS
from nntk_bench.workloads import Runner, Skip, make_weights


# --- timing --------------------------------------------------------------------------------------
def _calibrate(fn, target: float) -> int:
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return max(1, min(10000, int(target / max(dt, 1e-7))))


class Local:
    """A framework's runners in this process. `Worker` offers the same methods for a
    framework in a process of its own."""

    def __init__(self, runners: dict[str, Runner]):
        self.runners = runners

    def ready(self) -> dict[str, str]:
        """workload -> note, for every workload the framework runs."""
        return {wl: getattr(r, "note", "") for wl, r in self.runners.items()}

    def result(self, wl: str):
        return self.runners[wl].result()

    def warmup(self, wl: str, calls: int) -> None:
        for _ in range(calls):
            self.runners[wl].fn()

    def calibrate(self, wl: str, target: float) -> int:
        return _calibrate(self.runners[wl].fn, target)

    def sample(self, wl: str, calls: int) -> tuple[float, float]:
        """(wall, CPU) seconds per call, the means over `calls` back-to-back calls. The
        CPU time is the process's (every thread's): on a shared machine it leaves out the
        time the process waited for a core, which the wall time does not."""
        fn = self.runners[wl].fn
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t0) / calls, (time.process_time() - c0) / calls


class Worker:
    """A peer framework in a process of its own (spawned, so it imports only what it
    needs): it builds its runners there and answers `Local`'s methods over a pipe."""

    def __init__(self, framework: str):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.framework = framework
        self.conn, child = context.Pipe()
        # Not a daemon: TFLite's worker starts a process of its own (the conversion). If
        # this process dies, the worker's next recv() ends it (EOFError).
        self.process = context.Process(target=_serve, args=(framework, child))
        self.process.start()
        child.close()

    def ready(self) -> dict[str, str]:
        """Waits for the runners: workload -> note; raises Skip if the framework is not
        there or its process died."""
        status, value = self._receive()
        if status == "skip":
            raise Skip(value)
        return value

    def _receive(self):
        try:
            status, value = self.conn.recv()
        except EOFError:
            self.process.join(10)
            raise Skip(
                f"its process died (exit status {self.process.exitcode}); "
                f"`nntk-parity bench --verbose --frameworks {self.framework}` shows its output"
            ) from None
        if status == "error":
            raise RuntimeError(f"{self.framework}: {value}")
        return status, value

    def _call(self, method: str, *args):
        self.conn.send((method, args))
        return self._receive()[1]

    def result(self, wl: str):
        return self._call("result", wl)

    def warmup(self, wl: str, calls: int) -> None:
        self._call("warmup", wl, calls)

    def calibrate(self, wl: str, target: float) -> int:
        return self._call("calibrate", wl, target)

    def sample(self, wl: str, calls: int) -> tuple[float, float]:
        return self._call("sample", wl, calls)

    def close(self) -> None:
        if self.process.is_alive():
            try:
                self.conn.send(("quit", ()))
            except OSError:
                pass
            self.process.join(30)
        if self.process.is_alive():
            self.process.kill()
        self.conn.close()


def _serve(framework: str, conn) -> None:
    """A Worker's process: build the framework's runners, then answer requests."""
    from parity import settings

    settings.quiet_tensorflow()
    from threadpoolctl import threadpool_limits  # hard: see run.run_bench

    threadpool_limits(1)
    # A runtime's own lines on file descriptor 2 (LiteRT: "Created TensorFlow Lite XNNPACK
    # delegate"; XLA: "slow_operation_alarm ... Constant folding") are shown only with
    # --verbose; a failure reaches the parent as a skip note or an error.
    with settings.stderr_captured():
        _answer(framework, conn)
    conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the runtime's native teardown at exit: it has nothing left to write, and a
    # crash there (seen with TensorFlow) would only add noise to the bench's output.
    os._exit(0)


def _answer(framework: str, conn) -> None:
    try:
        local = Local(BUILDERS[framework](make_weights()))
    except Skip as exc:
        conn.send(("skip", str(exc)))
        return
    except Exception as exc:  # a peer that fails to build its models: say so, go on
        conn.send(("skip", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", local.ready()))
    while True:
        try:
            method, args = conn.recv()
        except EOFError:  # the parent is gone
            return
        if method == "quit":
            return
        try:
            conn.send(("ok", getattr(local, method)(*args)))
        except Exception as exc:
            conn.send(("error", f"{method}{args}: {type(exc).__name__}: {exc}"))


def time_interleaved(frameworks: dict, wl: str, rounds: int, target: float, warmup: int):
    """Per framework (a Local or a Worker), `rounds` samples of workload wl: (wall, CPU)
    seconds per call; the rounds visit the frameworks in a rotating order."""
    names = list(frameworks)
    for name in names:
        frameworks[name].warmup(wl, warmup)
    inner = {name: frameworks[name].calibrate(wl, target) for name in names}
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            samples[name].append(frameworks[name].sample(wl, inner[name]))
    return samples


def measure_peak(size: int) -> float:
    """GFLOP/s of a size^3 one-thread float32 sgemm through the OpenBLAS nntk links
    (scipy-openblas32), best of 5 in thread CPU time; without that wheel, numpy's."""
    a = np.random.default_rng(1).standard_normal((size, size)).astype(np.float32)
    b = np.random.default_rng(2).standard_normal((size, size)).astype(np.float32)
    c = np.empty((size, size), np.float32)
    gemm = None
    try:
        import scipy_openblas32

        so = ctypes.CDLL(
            os.path.join(scipy_openblas32.get_lib_dir(), f"lib{scipy_openblas32.get_library()}.so")
        )
        so.scipy_openblas_set_num_threads(1)
        gemm = so.scipy_cblas_sgemm
        gemm.restype = None
        gemm.argtypes = [ctypes.c_int] * 6 + [
            ctypes.c_float,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_float,
            ctypes.c_void_p,
            ctypes.c_int,
        ]

        def run():
            gemm(
                101,
                111,
                111,
                size,
                size,
                size,
                1.0,
                a.ctypes.data,
                size,
                b.ctypes.data,
                size,
                0.0,
                c.ctypes.data,
                size,
            )
    except (ImportError, OSError, AttributeError):

        def run():
            np.matmul(a, b, out=c)

    run()
    best = min(_timed(run) for _ in range(5))
    return 2.0 * size**3 / best / 1e9


def _timed(fn) -> float:
    """CPU time of the calling thread (the one-thread sgemm runs in it): a busy machine
    delays the run but does not make the core slower, so this measures the core."""
    t0 = time.thread_time()
    fn()
    return time.thread_time() - t0
