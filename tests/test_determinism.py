"""Determinism and threads (issue #7), for every class in `nntk_core.LAYER_CLASSES`
(built from its parity spec, see test_bad_input.make):

- the same call twice, and a fresh layer with the same weights, give bitwise-equal
  outputs and gradients (no hidden state, no uninitialised memory in the result);
- the results do not depend on OpenBLAS's thread count (1 vs 2 vs 4, set through
  `scipy_openblas_set_num_threads` on the loaded OpenBLAS, and through
  OPENBLAS_NUM_THREADS in a fresh process);
- distinct layer objects used from several Python threads at once (ctypes releases
  the GIL, so the C code really runs concurrently) give what serial use gives, and
  each thread sees its own NNTKLastError();
- one layer object called from two threads at once: the overlapping call raises
  NNTKError (NNTK_ERROR_INVALID_STATE, "... is in use by another call"), and every
  call that was accepted gives what serial use gives;
- the C library has no mutable global state besides the thread-local error: no
  writable data symbol outside .tdata/.tbss but the toolchain's own.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bad_input import NAMES, as_list, backward, make, run, upstream_for

import nntk_core as nn
from nntk_core import _native
from parity import c_api

RESULT_KEYS = ("inference", "training", "dx", "dweights")


def results(layer, x, seed=1):
    y_inf, y_train, dx, dw = run(layer, x, seed)
    return {"inference": y_inf, "training": y_train, "dx": [dx], "dweights": dw}


def assert_bitwise(a: dict, b: dict, what: str):
    for key in RESULT_KEYS:
        assert len(a[key]) == len(b[key])
        for i, (u, v) in enumerate(zip(a[key], b[key], strict=True)):
            assert u.shape == v.shape
            assert u.tobytes() == v.tobytes(), f"{what}: {key}[{i}] differs"


def big_input(name: str, seed: int = 0):
    """The layer and an input with many rows (B=32, T=16 where it has time)."""
    layer, x, _ = make(name, seed)
    rng = np.random.default_rng(seed + 100)
    shape = (32, 16, x.shape[-1]) if x.ndim == 3 else (64, x.shape[-1])
    return layer, (rng.standard_normal(shape) * 0.5).astype(np.float32)


# -- repeatability ----------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_same_call_twice_is_bitwise_equal(name):
    layer, x = big_input(name)
    first = results(layer, x)
    assert_bitwise(first, results(layer, x), f"{name} called twice")
    # an unrelated call in between leaves no trace in the next result
    results(layer, x[: max(1, x.shape[0] // 3)] * 3 + 1, seed=9)
    assert_bitwise(first, results(layer, x), f"{name} after another call")
    # a fresh layer with the same weights: no state carried by the object
    fresh, _, _ = make(name)
    fresh.set_weights(layer.get_weights())
    assert_bitwise(first, results(fresh, x), f"{name} fresh layer")


# -- BLAS threads -----------------------------------------------------------------------
def _openblas():
    """The scipy-openblas32 library the binding preloaded, or None."""
    try:
        import scipy_openblas32
    except ImportError:
        return None
    path = Path(scipy_openblas32.get_lib_dir()) / f"lib{scipy_openblas32.get_library()}.so"
    lib = ctypes.CDLL(str(path))
    lib.scipy_openblas_set_num_threads.argtypes = [ctypes.c_int]
    lib.scipy_openblas_get_num_threads.restype = ctypes.c_int
    return lib


needs_openblas = pytest.mark.skipif(
    nn.BACKEND != "openblas", reason=f"the {nn.BACKEND} backend has no OpenBLAS"
)


def _wide_layers():
    """Every layer class at B·T = 512, and a 256-wide Dense whose products are
    large enough for OpenBLAS to split them over threads."""
    cases = [(name, *big_input(name)) for name in NAMES]
    rng = np.random.default_rng(7)
    dense = nn.Dense(256, input_dim=256, activation="tanh")
    dense.set_weights([rng.uniform(-0.1, 0.1, (256, 256)), rng.uniform(-0.1, 0.1, 256)])
    cases.append(("Dense 256x256", dense, rng.standard_normal((8, 64, 256)).astype(np.float32)))
    return cases


def _child_json(code: str, env: dict[str, str], *args: str) -> dict:
    """The JSON last printed by `code` run in a fresh Python process with `env` added,
    given this tests/ directory, the directory nntk_core came from, and `args`."""
    package_dir = str(Path(nn.__file__).resolve().parents[1])
    out = subprocess.run(
        # -P: not the current directory's nntk_core (a checkout has no library)
        [sys.executable, "-P", "-c", code, str(Path(__file__).parent), package_dir, *args],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


_CHILD = """
import hashlib, json, sys
sys.path[:0] = sys.argv[1:3]  # the parent's tests/ and the directory its nntk_core came from
import test_determinism as t
out = {"threads before": t._openblas().scipy_openblas_get_num_threads()}
for label, layer, x in t._wide_layers():
    r = t.results(layer, x)
    data = b"".join(a.tobytes() for k in t.RESULT_KEYS for a in r[k])
    out[label] = hashlib.sha256(data).hexdigest()
out["threads after"] = t._openblas().scipy_openblas_get_num_threads()
print(json.dumps(out))
"""


@needs_openblas
def test_results_do_not_depend_on_openblas_num_threads_env():
    """Fresh processes started with OPENBLAS_NUM_THREADS=1 and =2 give the same bits:
    the library sets OpenBLAS to one thread before its first product (core/ops.c), as
    OpenBLAS's own threads split a product into parts whose bits depend on the split
    on some CPUs (its Haswell kernels on AMD EPYC: a 40x192x3200 product differed)."""
    digests = []
    for threads in ("1", "2"):
        digest = _child_json(_CHILD, {"OPENBLAS_NUM_THREADS": threads})
        assert digest.pop("threads before") == int(threads)
        assert digest.pop("threads after") == 1
        digests.append(digest)
    assert digests[0] == digests[1]


# -- Python threads ---------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_layers_in_concurrent_threads_match_serial_use(name):
    threads, rounds = 4, 12
    layers, inputs = [], []
    for i in range(threads):
        layer, x = big_input(name, seed=i)
        layers.append(layer)
        inputs.append([x * (1 + 0.1 * r) for r in range(rounds)])
    serial = [[results(layers[i], x) for x in inputs[i]] for i in range(threads)]
    barrier = threading.Barrier(threads)

    def work(i):
        barrier.wait()  # start together
        return [results(layers[i], x) for x in inputs[i]]

    with ThreadPoolExecutor(threads) as pool:
        concurrent = list(pool.map(work, range(threads)))
    for i in range(threads):
        for r in range(rounds):
            assert_bitwise(serial[i][r], concurrent[i][r], f"{name} thread {i} round {r}")


def test_each_thread_sees_its_own_last_error():
    lib = _native.lib
    raw = ctypes.CDLL(str(_native.library_path()))  # without the binding's errcheck
    threads = 6
    # One layer per thread: a handle takes one call at a time and refuses an overlapping
    # one (NNTK_ERROR_INVALID_STATE, docs/DESIGN.md §3), so a shared handle would mix
    # that refusal into what this test isolates, the per-thread last error.
    layers = [nn.Dense(3, input_dim=4) for _ in range(threads)]
    for layer in layers:
        layer(np.zeros((1, 4)))
    apply = raw.NNTKDenseApplyInference
    apply.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                      ctypes.c_void_p]  # fmt: skip
    x = np.zeros(4 * 8, np.float32)
    y = np.zeros(3 * 8, np.float32)
    barrier = threading.Barrier(threads)

    def work(i):
        barrier.wait()
        seen = []
        for _ in range(300):
            status = apply(layers[i]._handle, -(i + 1), 1, x.ctypes.data, y.ctypes.data)
            seen.append((status, lib.NNTKLastError().decode()))
        lib.NNTKClearError()
        return seen, lib.NNTKLastError().decode()

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(work, range(threads)))
    for i, (seen, cleared) in enumerate(outcomes):
        assert {s for s, _ in seen} == {2}
        assert {m for _, m in seen} == {
            f"NNTKDenseApplyInference: batch must be >= 1 (got {-(i + 1)})"
        }, f"thread {i} saw another thread's error"
        assert cleared == ""


def test_one_layer_from_two_threads_refuses_the_overlap():
    """The C library takes one call at a time per handle and refuses an overlapping
    one (docs/DESIGN.md §3, Threads). A call here lasts milliseconds and the Python
    loop around it microseconds, so an overlap comes at once; the loop ends when one
    call has been refused and each thread has had `accepted` calls through, and
    `deadline_s` without a refusal fails the test."""
    layer, accepted, deadline_s = nn.Dense(256, input_dim=256), 5, 60.0
    x = np.random.default_rng(0).standard_normal((8, 64, 256)).astype(np.float32)
    reference = layer(x)
    refusals: list[nn.NNTKError] = []
    deadline = time.monotonic() + deadline_s
    barrier = threading.Barrier(2)

    def work(_):
        barrier.wait()
        ok = 0
        while not (refusals and ok >= accepted) and time.monotonic() < deadline:
            try:
                y = layer(x)
            except nn.NNTKError as error:
                refusals.append(error)
                continue
            assert y.tobytes() == reference.tobytes(), "an accepted call differs from serial use"
            ok += 1
        return ok

    with ThreadPoolExecutor(2) as pool:
        counts = list(pool.map(work, range(2)))
    assert refusals, f"no call refused in {deadline_s} s of two threads calling one layer"
    assert min(counts) >= accepted
    for error in refusals:
        assert error.status == "NNTK_ERROR_INVALID_STATE"
        assert error.message.startswith("NNTKLayerApply: filter is in use by another call")
    np.testing.assert_array_equal(layer(x), reference)  # the handle is free again


# -- global state -----------------------------------------------------------------------
# Writable objects every shared library has (crtstuff, the dynamic linker's tables).
TOOLCHAIN_OBJECTS = {
    "completed.0",
    "completed.1",
    "__dso_handle",
    "__TMC_END__",
    "_DYNAMIC",
    "_GLOBAL_OFFSET_TABLE_",
    "__do_global_dtors_aux_fini_array_entry",
    "__frame_dummy_init_array_entry",
}
TOOLCHAIN_SECTIONS = {".init_array", ".fini_array", ".got", ".got.plt", ".dynamic"}
# The library's own process-wide objects, each a C11 atomic that no result depends on
# (a new one must be added here with its reason, or removed).
DECLARED_GLOBALS = {
    # core/ops.c: the kernel table chosen once from the CPU (same value in every thread).
    "chosen": "kernel table, atomic once-only choice",
    # core/ops.c: OpenBLAS pinned to one thread once.
    "done": "BLAS thread pin, atomic once-only flag",
    # core/status.c: NNTKMemoryStats' counters (bytes allocated now and at the peak).
    "allocated_now": "memory counter, atomic",
    "allocated_peak": "memory counter, atomic",
    # core/threads.c: NNTKSetThreadCount's worker pool and its one-call-at-a-time flag
    # (a result never depends on them: every thread count gives the same bits).
    "pool_now": "worker pool, atomic pointer",
    "pool_busy": "worker pool in use, atomic flag",
    # NNTKSetSplitMinWork's threshold (atomic; no result depends on it)
    "split_min_work": "split threshold, atomic",
    # libgcc's CPU feature cache behind __builtin_cpu_supports (the dispatch reads it).
    "__cpu_model": "libgcc CPU features",
    "__cpu_features2": "libgcc CPU features",
}


def test_no_mutable_global_state():
    library = _native.library_path()
    if not c_api.has_symbol_table(library):
        pytest.skip(f"{library} is stripped (the cmake builds in CI are not)")
    found = [
        (name, section, bind)
        for name, section, bind in c_api.writable_objects(library)
        if name not in TOOLCHAIN_OBJECTS
        and name.split(".")[0] not in DECLARED_GLOBALS
        and section not in TOOLCHAIN_SECTIONS
        and not name.startswith(("__asan", "__ubsan", "__sancov", ".L", "__odr_asan"))
    ]
    assert not found, (
        "writable global data besides the thread-local error (a static cache, counter, "
        f"buffer?): {found}"
    )


def test_last_error_is_thread_local():
    """The one piece of state the library keeps is in .tbss/.tdata."""
    library = _native.library_path()
    text = subprocess.run(
        ["readelf", "-SW", str(library)], check=True, capture_output=True, text=True
    ).stdout
    assert ".tbss" in text or ".tdata" in text


def test_backward_of_one_layer_is_independent_of_another():
    """Two layers of the same kind interleaved give what each gives alone."""
    for name in NAMES:
        a, xa, _ = make(name, 1)
        b, xb, _ = make(name, 2)
        alone_a, alone_b = results(a, xa), results(b, xb)
        ya = as_list(a(xa, training=True))
        yb = as_list(b(xb, training=True))
        rng = np.random.default_rng(1)
        dya, dyb = upstream_for(ya, rng), upstream_for(yb, np.random.default_rng(1))
        dxb, dwb = backward(b, dyb)
        dxa, dwa = backward(a, dya)
        assert dxa.tobytes() == alone_a["dx"][0].tobytes()
        assert dxb.tobytes() == alone_b["dx"][0].tobytes()
        assert all(
            u.tobytes() == v.tobytes() for u, v in zip(dwa, alone_a["dweights"], strict=True)
        )


# -- the thread count (docs/threads.md) --------------------------------------------------
@pytest.fixture
def one_thread_after():
    yield
    nn.set_thread_count(1)


def _recurrent_training(cls, kwargs, weights, x, h0, dys):
    """Training output and states, dx, the weight gradients and d_initial_state of a
    fresh layer, in one flat list of arrays."""
    layer = cls(**kwargs)
    layer.set_weights(weights)
    outs = layer(x, training=True, initial_state=h0)
    dx, dw, d_h0 = layer.backward(dys)
    return [*outs, dx, *dw, *d_h0]


@settings(max_examples=max(10, settings.default.max_examples // 4), deadline=None)
@given(data=st.data())
def test_recurrent_training_is_bitwise_equal_for_any_thread_count(data):
    """RNN, GRU (both reset_after, the fused and the generic cell) and LSTM, trained
    with 1 thread and with 2-5: every output, state, gradient and initial-state
    gradient has the same bits, whatever batch (1, below and not divisible by the
    thread count) and sequence flags are drawn."""
    name = data.draw(st.sampled_from(["RNN", "GRU", "LSTM"]), label="layer")
    cls = nn.LAYER_CLASSES[name]
    batch = data.draw(st.integers(1, 11), label="batch")
    steps = data.draw(st.integers(1, 7), label="steps")
    input_dim = data.draw(st.integers(1, 9), label="input_dim")
    units = data.draw(st.integers(1, 20), label="units")
    threads = data.draw(st.integers(2, 5), label="threads")
    kwargs = {
        "units": units,
        "input_dim": input_dim,
        "return_sequences": data.draw(st.booleans(), label="return_sequences"),
        "go_backwards": data.draw(st.booleans(), label="go_backwards"),
        "return_state": True,
    }
    if name == "GRU":
        kwargs["reset_after"] = data.draw(st.booleans(), label="reset_after")
        kwargs["activation"] = data.draw(st.sampled_from(["tanh", "relu"]), label="activation")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    probe = cls(**kwargs)
    weights = [(rng.standard_normal(s) * 0.5).astype(np.float32) for s in probe.weight_shapes()]
    x = rng.standard_normal((batch, steps, input_dim)).astype(np.float32)
    states = 2 if name == "LSTM" else 1
    h0 = [rng.standard_normal((batch, units)).astype(np.float32) for _ in range(states)]
    out_shape = (batch, steps, units) if kwargs["return_sequences"] else (batch, units)
    dys = [rng.standard_normal(out_shape).astype(np.float32)]
    dys += [rng.standard_normal((batch, units)).astype(np.float32) for _ in range(states)]

    nn.set_thread_count(1)
    serial = _recurrent_training(cls, kwargs, weights, x, h0, dys)
    nn.set_thread_count(threads)
    try:
        assert nn.thread_count() == threads
        split = _recurrent_training(cls, kwargs, weights, x, h0, dys)
    finally:
        nn.set_thread_count(1)
    assert len(split) == len(serial)
    for i, (a, b) in enumerate(zip(serial, split, strict=True)):
        assert a.shape == b.shape
        assert a.tobytes() == b.tobytes(), f"{name} {kwargs}: result {i} differs"


@pytest.mark.parametrize("threads", [65, 2**31 - 1])
def test_thread_count_above_the_limit_is_refused_by_the_library(threads, one_thread_after):
    nn.set_thread_count(3)
    with pytest.raises(nn.NNTKError) as error:
        nn.set_thread_count(threads)
    assert error.value.status == "NNTK_ERROR_INVALID_ARGUMENT"
    assert error.value.message.startswith(f"NNTKSetThreadCount: threads={threads} is not in 1..64")
    assert nn.thread_count() == 3  # unchanged


def test_thread_count_at_the_limit_is_accepted(one_thread_after):
    nn.set_thread_count(64)
    assert nn.thread_count() == 64


@pytest.mark.parametrize(
    ("threads", "error"), [(0, ValueError), (-1, ValueError), (2**31, ValueError), (2.0, TypeError)]
)
def test_thread_count_of_a_bad_value_is_refused_by_the_binding(threads, error, one_thread_after):
    with pytest.raises(error, match="threads must"):
        nn.set_thread_count(threads)
    assert nn.thread_count() == 1


@pytest.fixture
def split_min_work_after():
    """Restores the library's split threshold after the test."""
    default = nn.split_min_work()
    yield default
    nn.set_split_min_work(default)


def test_split_min_work_is_set_and_read_back(split_min_work_after):
    for value in (1, 7, 2**62):
        nn.set_split_min_work(value)
        assert nn.split_min_work() == value


@pytest.mark.parametrize("value", [2**62 + 1, 2**63 - 1])
def test_split_min_work_above_the_limit_is_refused_by_the_library(value, split_min_work_after):
    with pytest.raises(nn.NNTKError) as error:
        nn.set_split_min_work(value)
    assert error.value.status == "NNTK_ERROR_INVALID_ARGUMENT"
    assert error.value.message.startswith("NNTKSetSplitMinWork: min_work must be <= ")
    assert nn.split_min_work() == split_min_work_after  # unchanged


@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (-1, ValueError), (2**63, ValueError), (1.0, TypeError)]
)
def test_split_min_work_of_a_bad_value_is_refused_by_the_binding(
    value, error, split_min_work_after
):
    with pytest.raises(error, match="min_work must"):
        nn.set_split_min_work(value)
    assert nn.split_min_work() == split_min_work_after


# Shapes whose products are large enough to be split by columns (ops.c SPLIT_MIN_MACS)
# and to go to OpenBLAS (BLAS_MIN_MACS): W5's GRU, W7c's, and odd sizes whose column
# parts end mid-unit.
LARGE_RECURRENT = [
    ("GRU", 32, 100, 40, 64),
    ("GRU", 32, 100, 40, 256),
    ("GRU", 13, 37, 29, 71),
    ("LSTM", 7, 61, 45, 50),
    ("RNN", 5, 90, 130, 150),
]


def _large_recurrent_case(name, batch, steps, input_dim, units):
    """A LARGE_RECURRENT layer's class and options, its weights, input, initial states
    and upstream gradients (seeded by units)."""
    cls = nn.LAYER_CLASSES[name]
    kwargs = {"units": units, "input_dim": input_dim, "return_sequences": True}
    kwargs["return_state"] = True
    rng = np.random.default_rng(units)
    probe = cls(**kwargs)
    weights = [(rng.standard_normal(s) * 0.3).astype(np.float32) for s in probe.weight_shapes()]
    x = rng.standard_normal((batch, steps, input_dim)).astype(np.float32)
    states = 2 if name == "LSTM" else 1
    h0 = [rng.standard_normal((batch, units)).astype(np.float32) for _ in range(states)]
    dys = [rng.standard_normal((batch, steps, units)).astype(np.float32)]
    dys += [rng.standard_normal((batch, units)).astype(np.float32) for _ in range(states)]
    return cls, kwargs, weights, x, h0, dys


@pytest.mark.parametrize(("name", "batch", "steps", "input_dim", "units"), LARGE_RECURRENT)
def test_large_recurrent_training_is_bitwise_equal_for_any_thread_count(
    name, batch, steps, input_dim, units, one_thread_after
):
    cls, kwargs, weights, x, h0, dys = _large_recurrent_case(name, batch, steps, input_dim, units)
    serial = _recurrent_training(cls, kwargs, weights, x, h0, dys)
    for threads in (2, 3):
        nn.set_thread_count(threads)
        split = _recurrent_training(cls, kwargs, weights, x, h0, dys)
        for i, (a, b) in enumerate(zip(serial, split, strict=True)):
            assert a.tobytes() == b.tobytes(), f"{name} threads={threads}: result {i} differs"


_HASWELL_CHILD = """
import ctypes, json, sys
sys.path[:0] = sys.argv[1:3]  # the parent's tests/ and the directory its nntk_core came from
import test_determinism as t
cls, kwargs, weights, x, h0, dys = t._large_recurrent_case(*json.loads(sys.argv[3]))
runs = {}
for threads in (1, 2, 3):
    t.nn.set_thread_count(threads)
    runs[threads] = t._recurrent_training(cls, kwargs, weights, x, h0, dys)
openblas = t._openblas()
openblas.scipy_openblas_get_corename.restype = ctypes.c_char_p
differ = [f"threads={n}: result {i}" for n in (2, 3)
          for i, (a, b) in enumerate(zip(runs[1], runs[n], strict=True))
          if a.tobytes() != b.tobytes()]
print(json.dumps({"core": openblas.scipy_openblas_get_corename().decode(), "differ": differ}))
"""


@needs_openblas
@pytest.mark.parametrize(("name", "batch", "steps", "input_dim", "units"), LARGE_RECURRENT[:3])
def test_thread_count_keeps_the_bits_on_openblas_haswell_kernels(
    name, batch, steps, input_dim, units
):
    """OpenBLAS's Haswell kernels (what it runs on AMD EPYC) give a column other bits
    when it is computed in a call of other columns, so the pool's split of an OpenBLAS
    product must not change the calls (core/ops.c: fixed calls per shape). Forced with
    OPENBLAS_CORETYPE in a child process, so that any AVX2 CPU checks it (on a CPU whose
    OpenBLAS kernels are split-invariant the tests above cannot fail on this)."""
    shape = json.dumps([name, batch, steps, input_dim, units])
    result = _child_json(_HASWELL_CHILD, {"OPENBLAS_CORETYPE": "Haswell"}, shape)
    assert result["core"] == "Haswell"
    assert result["differ"] == []


@pytest.mark.parametrize("name", NAMES)
def test_every_layer_is_bitwise_equal_for_any_thread_count(name, one_thread_after):
    """Every layer (its products and sums may be split by columns) with 1 and 3 threads."""
    layer, x = big_input(name)
    serial = results(layer, x)
    nn.set_thread_count(3)
    assert_bitwise(serial, results(layer, x), f"{name}, 3 threads")


# Layers whose own loops the pool splits (docs/threads.md): BatchNorm by channels,
# Conv1d's kernel gradient by filters and its input gradient by samples, the Activation
# layer by rows, Dense and TimeDistributedDense by rows (their kernel gradient by its
# rows). Sizes on both sides of the split unit (16 channels or filters: 71 and
# 50 end mid-unit, 20 holds one unit) and of the least work split; every padding,
# strides and dilation (the edge taps' products); W4's softmax head, rows that do not
# divide by the thread count, and a head whose products go to OpenBLAS (1079 x 48 x 200,
# above 2^21 multiply-adds: projected whole, its activation split).
SPLIT_LAYERS = [
    ("BatchNorm", {"input_dim": 64}, (32, 96)),
    ("BatchNorm", {"input_dim": 71}, (13, 100)),
    ("BatchNorm", {"input_dim": 20, "center": False}, (40, 50)),
    ("Activation", {"activation": "relu", "input_dim": 64}, (32, 96)),
    ("Activation", {"activation": "softmax", "input_dim": 37}, (29, 83)),
    ("TimeDistributedDense", {"units": 2, "input_dim": 64, "activation": "softmax"}, (32, 95)),
    (
        "TimeDistributedDense",
        {"units": 5, "input_dim": 33, "activation": "relu", "use_bias": False},
        (7, 61),
    ),
    ("TimeDistributedDense", {"units": 48, "input_dim": 200, "activation": "tanh"}, (13, 83)),
    ("Dense", {"units": 3, "input_dim": 130, "activation": "sigmoid"}, (1001, 1)),
    ("Conv1d", {"filters": 64, "kernel_size": 5, "input_dim": 40}, (32, 100)),
    ("Conv1d", {"filters": 64, "kernel_size": 5, "input_dim": 40, "activation": "relu"}, (31, 100)),
    (
        "Conv1d",
        {"filters": 21, "kernel_size": 3, "input_dim": 10, "activation": "softmax"},
        (127, 41),
    ),
    (
        "Conv1d",
        {"filters": 50, "kernel_size": 3, "input_dim": 17, "padding": "same", "strides": 2},
        (9, 61),
    ),
    (
        "Conv1d",
        {"filters": 33, "kernel_size": 4, "input_dim": 8, "padding": "causal", "dilation_rate": 3},
        (16, 80),
    ),
]


@pytest.mark.parametrize(("name", "kwargs", "shape"), SPLIT_LAYERS)
def test_split_layers_are_bitwise_equal_for_any_thread_count(name, kwargs, shape, one_thread_after):
    layer = nn.LAYER_CLASSES[name](**kwargs)
    rng = np.random.default_rng(len(kwargs) + shape[0])
    layer.set_weights(
        [
            (rng.standard_normal(s) * 0.3 + (1 if n == "moving_variance" else 0)).astype(np.float32)
            for n, s in zip(layer.weight_names(), layer.weight_shapes(), strict=True)
        ]
    )
    x = rng.standard_normal((*shape, kwargs["input_dim"])).astype(np.float32)
    serial = results(layer, x)
    for threads in (2, 3, 5):
        nn.set_thread_count(threads)
        assert_bitwise(serial, results(layer, x), f"{name} {kwargs}, {threads} threads")


def test_keyword_detector_training_is_bitwise_equal_for_any_thread_count(one_thread_after):
    """W4's network (Conv1d, BatchNorm, ReLU, GRU, BatchNorm, GRU, TimeDistributedDense
    softmax) trained three Adam steps at B=32, T=100 with 1, 2 and 3 threads: the losses
    and every weight after the steps (BatchNorm's moving statistics included) have the
    same bits."""
    from nntk_bench.nntk_runners import nntk_model
    from nntk_bench.workloads import make_weights

    w = make_weights()

    def train(threads):
        nn.set_thread_count(threads)
        model = nntk_model(w, 32)
        loss, opt = nn.losses.CategoricalCrossentropy(), nn.optimizers.Adam(learning_rate=1e-3)
        losses = [model.train_step(w.x32, w.y32, loss, opt) for _ in range(3)]
        return np.array(losses, np.float32), model.get_weights()

    serial_losses, serial_weights = train(1)
    for threads in (2, 3):
        losses, weights = train(threads)
        assert losses.tobytes() == serial_losses.tobytes(), f"{threads} threads: losses differ"
        for i, (a, b) in enumerate(zip(serial_weights, weights, strict=True)):
            assert a.tobytes() == b.tobytes(), f"{threads} threads: weight {i} differs"


# Adam (plain and amsgrad) and SGD (momentum, nesterov) over a list of blocks whose
# sizes do not divide by the thread count, and W4's list: the pool splits the list by
# parameters, across the blocks' ends.
OPTIMIZERS = [
    ("Adam", {"learning_rate": 1e-3}, (12864, 128, 24960, 128, 24960, 130)),
    ("Adam", {"learning_rate": 3e-3, "amsgrad": True}, (1, 40001, 7, 33333)),
    ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}, (50001, 3, 29999)),
    ("SGD", {"learning_rate": 0.05}, (70001,)),
]


@pytest.mark.parametrize(("name", "kwargs", "sizes"), OPTIMIZERS)
def test_optimizer_steps_are_bitwise_equal_for_any_thread_count(
    name, kwargs, sizes, one_thread_after
):
    def train(threads):
        nn.set_thread_count(threads)
        rng = np.random.default_rng(len(sizes))
        params = [rng.standard_normal(n).astype(np.float32) for n in sizes]
        opt = getattr(nn.optimizers, name)(**kwargs)
        for _ in range(3):
            grads = [rng.standard_normal(n).astype(np.float32) for n in sizes]
            opt.apply_gradients(zip(grads, params, strict=True))
        return [*params, opt.get_state()["slots"]]

    serial = train(1)
    for threads in (2, 3):
        split = train(threads)
        for i, (a, b) in enumerate(zip(serial, split, strict=True)):
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), (
                f"{name} {kwargs}, {threads} threads: result {i} differs"
            )


# The losses split by rows in blocks of 2048 (their values summed after, in row order):
# W4's 3040 x 2, and 5001 rows (three blocks, odd sizes).
@pytest.mark.parametrize("rows", [3040, 5001])
@pytest.mark.parametrize(
    "loss",
    [
        nn.losses.CategoricalCrossentropy,
        lambda: nn.losses.CategoricalCrossentropy(from_logits=True),
        nn.losses.MeanSquaredError,
    ],
    ids=["cce", "cce_logits", "mse"],
)
def test_losses_are_bitwise_equal_for_any_thread_count(loss, rows, one_thread_after):
    rng = np.random.default_rng(rows)
    classes = 7 if rows == 5001 else 2
    y_pred = (rng.uniform(0.01, 1.0, (rows, classes))).astype(np.float32)
    y_true = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, rows)]

    def compute(threads):
        nn.set_thread_count(threads)
        value, gradient = loss().gradient(y_true, y_pred)
        return np.float32(value).tobytes(), gradient.tobytes()

    serial = compute(1)
    for threads in (2, 3):
        assert compute(threads) == serial, f"{threads} threads"
