"""nntk's runners: through its C API (ctypes, preallocated buffers, as an app would
call it) and through its Python layer classes ("nntk-py")."""

from __future__ import annotations

import ctypes
import functools
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from nntk_bench.workloads import (
    CLASSES,
    RECURRENT,
    TRAIN_B,
    D,
    F,
    K,
    O,
    Recurrent,
    Runner,
    T,
    U,
    Weights,
    frame_runner,
)


# --- nntk through the C API --------------------------------------------------------------------
def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    """The array's data pointer; the pointer object holds a reference to the array, so
    an argument tuple keeps alive every buffer it points into."""
    return a.ctypes.data_as(ctypes.c_void_p)


class NNTKRaw:
    """The library's C functions without the binding's per-call checks: argument types
    as plain integers and pointers; the status of each call is checked once, when the
    runner is validated, not inside the timed loop."""

    def __init__(self):
        from nntk_core._native import lib

        self.cdll = ctypes.CDLL(lib._name)

    def fn(self, name: str, n_args: int):
        f = getattr(self.cdll, name)
        f.restype = ctypes.c_int32
        f.argtypes = None  # arguments are passed as prepared ctypes objects (see _args)
        return f


def _args(*values) -> tuple:
    """C arguments prepared once: Python ints are the library's handles (c_void_p), None
    is NULL, ctypes objects (integers, `_ptr` pointers, `ctypes.byref`) stay as they are.
    A timed call may outlive the function that built its arguments, so whatever memory an
    argument points into must be held by that argument: `_ptr` for arrays, `ctypes.byref`
    for ctypes objects, never a bare address."""
    return tuple(ctypes.c_void_p(v) if isinstance(v, int) else v for v in values)


def nntk_model(w: Weights, batch: int):
    import nntk_core as nn

    layers = [
        nn.Conv1d(F, K, input_dim=D),
        nn.BatchNorm(F),
        nn.Activation("relu", input_dim=F),
        nn.GRU(U, input_dim=F, return_sequences=True),
        nn.BatchNorm(U),
        nn.GRU(U, input_dim=U, return_sequences=True),
        nn.TimeDistributedDense(CLASSES, input_dim=U, activation="softmax"),
    ]
    model = nn.Sequential(layers)
    model.set_weights(w.kws())
    return model


def nntk_runners(w: Weights, python_api: bool) -> dict[str, Runner]:
    import nntk_core as nn

    raw = NNTKRaw()
    c_int = ctypes.c_int64
    runners: dict[str, Runner] = {}

    def check(status: int, what: str):
        if status != 0:
            raise RuntimeError(f"nntk {what}: {nn.lib.NNTKLastError().decode()}")

    for name, r in RECURRENT.items():
        runners[name] = _recurrent_runner(raw, r, w, python_api, check)

    # W3: the layer stack, inference
    model = nntk_model(w, 1)
    if python_api:
        runners["W3"] = Runner(lambda: model(w.x1), lambda: model(w.x1))
    else:
        shapes = [(1, O, F), (1, O, F), (1, O, F), (1, O, U), (1, O, U), (1, O, U), (1, O, CLASSES)]
        bufs = [np.empty(s, np.float32) for s in shapes]
        calls = []
        src, steps = w.x1, T
        for layer, buf in zip(model.layers, bufs, strict=True):
            f = raw.fn(f"NNTK{layer.layer_type.name}ApplyInference", 5)
            calls.append(
                (f, _args(layer._live_handle(), c_int(1), c_int(steps), _ptr(src), _ptr(buf)))
            )
            src, steps = buf, O
        for f, args in calls:
            check(f(*args), "W3")

        def w3(calls=calls):
            for f, args in calls:
                f(*args)

        runners["W3"] = Runner(w3, lambda: bufs[-1])
        runners["W3"].keep = (model, bufs)

    # W4: one training step
    tmodel = nntk_model(w, TRAIN_B)
    if python_api:
        loss = nn.losses.CategoricalCrossentropy()
        opt = nn.optimizers.Adam(learning_rate=1e-3, epsilon=1e-7)
        runners["W4"] = Runner(
            lambda: tmodel.train_step(w.x32, w.y32, loss, opt),
            lambda: nntk_first_loss(w, python_api=True),
        )
    else:
        runners["W4"] = nntk_train_runner(raw, tmodel, w, check)

    # W6: W3's network streamed, one frame per call
    runners["W6"] = _stream_runner(raw, w, python_api, check)
    return runners


def nntk_train_runner(raw: NNTKRaw, model, w: Weights, check) -> Runner:
    """A C-level train step over the model's native handles: ApplyTrainingBatch of every
    layer, NNTKLossCompute, CalculateGradient of every layer (no input gradient for the
    first), NNTKOptimizerStep over the trainable blocks."""
    import nntk_core as nn

    c_int = ctypes.c_int64
    layers = model.layers
    shapes = [(TRAIN_B, O, F)] * 3 + [(TRAIN_B, O, U)] * 3 + [(TRAIN_B, O, CLASSES)]
    outs = [np.empty(s, np.float32) for s in shapes]
    douts = [np.empty(s, np.float32) for s in shapes]
    forward, backward, params = [], [], []
    src, steps = w.x32, T
    grads = []
    for i, (layer, out) in enumerate(zip(layers, outs, strict=True)):
        handle = layer._live_handle()
        f = raw.fn(f"NNTK{layer.layer_type.name}ApplyTrainingBatch", 5)
        forward.append((f, _args(handle, c_int(TRAIN_B), c_int(steps), _ptr(src), _ptr(out))))
        grad = getattr(nn.lib, f"NNTK{layer.layer_type.name}GradientCreate")(handle)
        grads.append((layer, grad))
        d_in = None if i == 0 else _ptr(douts[i - 1])
        g = raw.fn(f"NNTK{layer.layer_type.name}CalculateGradient", 4)
        backward.append((g, _args(handle, grad, _ptr(douts[i]), d_in)))
        # trainable blocks: the weights' leading part (BatchNorm: gamma, beta)
        n_train = sum(
            int(np.prod(s))
            for s, t in zip(layer.weight_shapes(), layer.trainable_mask(), strict=True)
            if t
        )
        if n_train:
            wp, wc = ctypes.POINTER(ctypes.c_float)(), ctypes.c_int64()
            getattr(nn.lib, f"NNTK{layer.layer_type.name}GetWeights")(
                handle, ctypes.byref(wp), ctypes.byref(wc)
            )
            gp, gc = ctypes.POINTER(ctypes.c_float)(), ctypes.c_int64()
            getattr(nn.lib, f"NNTK{layer.layer_type.name}GradientGetWeights")(
                grad, ctypes.byref(gp), ctypes.byref(gc)
            )
            params.append(
                (
                    ctypes.cast(wp, ctypes.c_void_p).value,
                    ctypes.cast(gp, ctypes.c_void_p).value,
                    n_train,
                )
            )
        src, steps = out, O
    backward.reverse()
    n = len(params)
    param_ptrs = (ctypes.c_void_p * n)(*(p[0] for p in params))
    grad_ptrs = (ctypes.c_void_p * n)(*(p[1] for p in params))
    sizes = (ctypes.c_int64 * n)(*(p[2] for p in params))
    opt = nn.lib.NNTKOptimizerCreateAdam(1e-3, 0.9, 0.999, 1e-7, 0)
    loss_fn = raw.fn("NNTKLossCompute", 8)
    loss_value = ctypes.c_float()
    loss_args = _args(
        ctypes.c_int32(1),
        ctypes.c_int32(0),
        c_int(TRAIN_B * O),
        c_int(CLASSES),
        _ptr(outs[-1]),
        _ptr(w.y32),
        ctypes.byref(loss_value),
        _ptr(douts[-1]),
    )
    step_fn = raw.fn("NNTKOptimizerStep", 5)
    step_args = _args(
        opt,
        c_int(n),
        ctypes.byref(param_ptrs),
        ctypes.byref(grad_ptrs),
        ctypes.byref(sizes),
    )

    def train_step():
        for f, args in forward:
            f(*args)
        loss_fn(*loss_args)
        for g, args in backward:
            g(*args)
        step_fn(*step_args)

    # validate once, statuses checked (on a copy of the weights: the step updates them)
    saved = model.get_weights()
    for f, args in forward:
        check(f(*args), "W4 forward")
    check(loss_fn(*loss_args), "W4 loss")
    first_loss = float(loss_value.value)
    for g, args in backward:
        check(g(*args), "W4 gradient")
    check(step_fn(*step_args), "W4 optimizer")
    model.set_weights(saved)
    runner = Runner(train_step, lambda: first_loss)
    runner.keep = (model, grads, opt, param_ptrs, grad_ptrs, sizes, outs, douts)
    return runner


def nntk_first_loss(w: Weights, python_api: bool) -> float:
    import nntk_core as nn

    model = nntk_model(w, TRAIN_B)
    loss = nn.losses.CategoricalCrossentropy()
    return float(loss(w.y32, model(w.x32, training=True)))


def _recurrent_runner(raw: NNTKRaw, r: Recurrent, w: Weights, python_api: bool, check) -> Runner:
    """W1, W2, W5, W7: one GRU or LSTM layer; inference at B=1, or forward + backward at
    B=32 (the result: the input gradient and the kernel's gradient)."""
    import nntk_core as nn

    c_int = ctypes.c_int64
    layer = getattr(nn, r.cell)(r.units, input_dim=D, return_sequences=True)
    layer.set_weights(w.recurrent(r))
    x, dy = w.recurrent_data(r)
    if not r.training:
        if python_api:
            return Runner(lambda: layer(x), lambda: layer(x))
        out = np.empty((1, T, r.units), np.float32)
        apply = raw.fn(f"NNTK{r.cell}ApplyInference", 5)
        args = _args(layer._live_handle(), c_int(1), c_int(T), _ptr(x), _ptr(out))
        check(apply(*args), r.cell)
        runner = Runner(lambda: apply(*args), lambda: out)
        runner.keep = layer  # the handle lives as long as the layer object
        return runner
    if python_api:

        def fwd_bwd_py():
            layer(x, training=True)
            return layer.backward(dy)

        def result_py():
            dx, grads = fwd_bwd_py()
            return dx, grads[0]

        return Runner(fwd_bwd_py, result_py)
    out = np.empty((TRAIN_B, T, r.units), np.float32)
    dx = np.empty((TRAIN_B, T, D), np.float32)
    handle = layer._live_handle()
    grad = getattr(nn.lib, f"NNTK{r.cell}GradientCreate")(handle)
    gw_ptr, gw_count = ctypes.POINTER(ctypes.c_float)(), ctypes.c_int64()
    getattr(nn.lib, f"NNTK{r.cell}GradientGetWeights")(
        grad, ctypes.byref(gw_ptr), ctypes.byref(gw_count)
    )
    kernel_size = D * r.gates * r.units
    d_kernel = np.ctypeslib.as_array(gw_ptr, shape=(gw_count.value,))[:kernel_size]
    fwd = raw.fn(f"NNTK{r.cell}ApplyTrainingBatch", 5)
    bwd = raw.fn(f"NNTK{r.cell}CalculateGradient", 4)
    fargs = _args(handle, c_int(TRAIN_B), c_int(T), _ptr(x), _ptr(out))
    bargs = _args(handle, grad, _ptr(dy), _ptr(dx))
    check(fwd(*fargs), f"{r.cell} forward")
    check(bwd(*bargs), f"{r.cell} gradient")

    def fwd_bwd():
        fwd(*fargs)
        bwd(*bargs)

    runner = Runner(fwd_bwd, lambda: (dx, d_kernel.reshape(D, r.gates * r.units)))
    runner.keep = (layer, grad, out, dx)  # the handles and buffers stay alive
    return runner


class _BenchCall(ctypes.Structure):
    """nntk_bench/c/stream_frames.c's NNTKBenchCall: one library call and its arguments
    (raw addresses: the runner holding the table keeps what they point into)."""

    _fields_ = [
        ("apply", ctypes.c_void_p),
        ("apply_with_state", ctypes.c_void_p),
        ("handle", ctypes.c_void_p),
        ("batch", ctypes.c_int64),
        ("steps", ctypes.c_int64),
        ("input", ctypes.c_void_p),
        ("initial_state", ctypes.c_void_p),
        ("out", ctypes.c_void_p),
        ("final_state", ctypes.c_void_p),
    ]


@functools.cache
def _frame_driver() -> ctypes.CDLL:
    """nntk_bench/c/stream_frames.c compiled (by $CC, default cc) into a temporary
    shared library and loaded, once per process (the file removed once loaded)."""
    source = Path(__file__).with_name("c") / "stream_frames.c"
    out_dir = Path(tempfile.mkdtemp(prefix="nntk_bench_"))
    so = out_dir / "stream_frames.so"
    cc = os.environ.get("CC", "cc")  # may be words: "ccache gcc"
    cmd = [
        *shlex.split(cc),
        "-O2",
        "-std=c11",
        "-shared",
        "-fPIC",
        "-Wall",
        "-Wextra",
        "-o",
        str(so),
        str(source),
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        driver = ctypes.CDLL(str(so))
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        raise RuntimeError(
            f"W6 drives nntk's frames from C and needs a C compiler (CC={cc}): {detail}"
        ) from None
    finally:
        shutil.rmtree(out_dir)  # once loaded, the mapping outlives the file
    driver.nntk_bench_frames.restype = ctypes.c_int32
    driver.nntk_bench_frames.argtypes = None  # prepared ctypes arguments (see _args)
    driver.nntk_bench_ns_per_frame.restype = ctypes.c_double
    driver.nntk_bench_ns_per_frame.argtypes = None
    return driver


def _stream_runner(
    raw: NNTKRaw, w: Weights, python_api: bool, check, python_call: str = "streamer"
) -> Runner:
    """W6: W3's network fed one frame per call (frame i: the conv's window x1[:, i:i+K],
    one output step), the GRUs' states carried from call to call. Through the C API:
    one NNTKLayerChainStream per frame on a chain of the model's seven layers (what
    Sequential.stream runs, nntk/layer.h), into buffers prepared once; the chain's
    states alternate between two buffers (frame i reads one and writes the other; O is
    even, so a new pass starts from the first again), and frame i's output goes
    straight into row i of an (O, CLASSES) array. The calls are made from C
    (nntk_bench/c/stream_frames.c), as an app would make them: one ctypes call per
    frame; `ns_per_frame` times frames in C alone. Through Python (the nntk-py row):
    the call a user who counts per-frame latency makes, `python_call`="streamer":
    `Sequential.streamer`'s object, its states kept inside, each frame's output written
    into one reused array (`s(window, y)`, out by position; nntk_core/streamer.py);
    "streamer-kw": the same with `out=y` by keyword; "stream":
    `Sequential.stream(window, states)`, a new output and new states per frame
    (tools/call_overhead.py times both). The same native call per frame, the same bits."""
    model = nntk_model(w, 1)
    windows = w.windows()
    if python_api and python_call in ("streamer", "streamer-kw"):
        streamer = model.streamer(batch=1, steps=K)
        frame_out = np.empty(streamer.output_shape, np.float32)

        def step_streamer(i):
            return streamer(windows[i], frame_out)

        def step_streamer_kw(i):
            return streamer(windows[i], out=frame_out)

        step = step_streamer if python_call == "streamer" else step_streamer_kw
        runner = frame_runner(step, streamer.reset_states)
        runner.keep = (model, streamer, frame_out)
        return runner
    if python_api:
        if python_call != "stream":
            raise ValueError(
                f"python_call must be 'streamer', 'streamer-kw' or 'stream', got {python_call!r}"
            )
        states = [None]  # the model's states, as the last stream() returned them

        def step_py(i):
            out, states[0] = model.stream(windows[i], states[0])
            return out

        def reset_py():
            states[0] = None

        runner = frame_runner(step_py, reset_py)
        runner.keep = model
        return runner

    from nntk_core.layer_chain import LayerChain  # here: importing it loads the library

    handles = tuple(layer._live_handle() for layer in model.layers)
    chain = LayerChain(model.layers, handles, windows[0].shape, (1, 1, CLASSES))
    states = np.zeros((2, chain.state_floats), np.float32)  # frame i: reads [i % 2]
    outs = np.zeros((O, CLASSES), np.float32)
    stream = ctypes.cast(raw.cdll.NNTKLayerChainStream, ctypes.c_void_p).value

    def frame_call(i):
        return _BenchCall(
            None,
            stream,
            chain._handle,
            1,
            K,
            windows[i].ctypes.data,
            states[i % 2].ctypes.data,
            outs[i].ctypes.data,
            states[1 - i % 2].ctypes.data,
        )

    per_frame = 1
    table = (_BenchCall * O)(*(frame_call(i) for i in range(O)))
    driver = _frame_driver()
    c_int = ctypes.c_int64
    frame_args = [
        _args(ctypes.byref(table), c_int(per_frame), c_int(O), c_int(i), c_int(1)) for i in range(O)
    ]
    check(driver.nntk_bench_frames(*frame_args[0]), "W6")  # statuses checked once

    def step(i):
        driver.nntk_bench_frames(*frame_args[i])
        return outs[i]

    def reset():
        states.fill(0.0)

    def ns_per_frame(frames: int) -> float:
        """Nanoseconds per frame timed in C over `frames` frames (no ctypes inside)."""
        ns = driver.nntk_bench_ns_per_frame(
            ctypes.byref(table), c_int(per_frame), c_int(O), c_int(frames)
        )
        if ns < 0:
            check(driver.nntk_bench_frames(*frame_args[0]), "W6")
        return ns

    runner = frame_runner(step, reset)
    runner.ns_per_frame = ns_per_frame
    runner.keep = (model, chain, windows, table, states, outs)
    return runner
