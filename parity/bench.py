"""`nntk-parity bench`: nntk side by side with the other CPU runtimes, one thread each.

Workloads (float32, one thread):
  W1  GRU inference, B=1, T=100, 40 -> 64 units, return_sequences
  W2  LSTM inference, same shapes
  W3  keyword detector inference, B=1, T=100: Conv1D(40->64, k=5, valid) -> BatchNorm
      -> relu -> GRU(64, seq) -> BatchNorm -> GRU(64, seq) -> TimeDistributed(Dense(2, softmax))
  W4  one training step of W3's network at B=32: forward, categorical crossentropy,
      backward (weight gradients), Adam update
  W5  GRU forward + backward alone, B=32, T=100, 40 -> 64 (weight and input gradients)

Every framework gets the same weights (converted to its gate layout: PyTorch GRU gates
r, z, n with two biases = Keras reset_after=True; ONNX GRU z, r, h with
linear_before_reset=1; ONNX LSTM i, o, f, c) and the same inputs, and its outputs are
checked against the reference (tf.keras when installed, else nntk) before anything is
timed: inference outputs within |a - b| <= 1e-4 (they are in [-1, 1] or probabilities),
W4's first-step loss within 1e-4 relative, W5's input and kernel gradients within
1e-3 of the largest reference element. A peer that fails the check is reported as
MISMATCH and gets no ratio.

Timing: after warm-up (XLA compiles there), rounds visit the frameworks in a rotating
order (interleaved, so a change in machine load hits all alike); one sample is the mean
of enough back-to-back calls to last ~5 ms. Reported: median, IQR (p75 - p25) and min
per call, GFLOP/s of the matrix products (2 FLOPs per multiply-add; the transcendental
and elementwise work is not counted), % of the machine's measured single-core peak (a
large one-thread OpenBLAS sgemm), and the ratio nntk / framework.

nntk is driven through its C API (ctypes, preallocated buffers, as an app would call
it); "nntk-py" is the same through the Python layer classes, to show the binding's
cost. Peers are driven through their Python APIs.

Processes: nntk and nntk-py run in this process; every peer runs in a process of its
own (`Worker`, multiprocessing spawn), so no two native runtimes (TensorFlow, PyTorch,
ONNX Runtime, TFLite) ever share a process: loaded together they can crash at import or
at exit (seen: TensorFlow and triton, and the teardown of all four). The TFLite worker
gets its models converted by TensorFlow in a short-lived process of their own. This
process sends the requests (warm up, calibrate, time one sample) to one framework at a
time, so the frameworks still take turns and only one of them runs at any moment.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WORKLOADS = {
    "W1": "GRU inference B=1 T=100 40->64",
    "W2": "LSTM inference B=1 T=100 40->64",
    "W3": "keyword detector inference B=1 T=100",
    "W4": "keyword detector train step B=32 T=100 (fwd, CCE, bwd, Adam)",
    "W5": "GRU forward+backward B=32 T=100 40->64",
}
FRAMEWORKS = ("nntk", "nntk-py", "onnxruntime", "tflite", "torch", "tf", "tf-xla")
T, D, U, F, K = 100, 40, 64, 64, 5  # steps, input features, units, conv filters, kernel
O = T - K + 1  # noqa: E741 (conv output steps, valid padding)
CLASSES = 2
TRAIN_B = 32
INFER_TOL = 1e-4
LOSS_RTOL = 1e-4
GRAD_TOL = 1e-3


# --- FLOPs (matrix products only) ------------------------------------------------------------
def gru_flops(b: int, t: int, d: int, u: int) -> float:
    return 2.0 * b * t * 3 * u * (d + u)


def lstm_flops(b: int, t: int, d: int, u: int) -> float:
    return 2.0 * b * t * 4 * u * (d + u)


def kws_flops(b: int) -> tuple[float, float]:
    """(forward FLOPs, the conv's share)."""
    conv = 2.0 * b * O * K * D * F
    return conv + 2 * gru_flops(b, O, F, U) + 2.0 * b * O * U * CLASSES, conv


def workload_flops(name: str) -> float:
    if name == "W1":
        return gru_flops(1, T, D, U)
    if name == "W2":
        return lstm_flops(1, T, D, U)
    if name == "W3":
        return kws_flops(1)[0]
    if name == "W4":  # forward + weight gradients + input gradients except the first layer's
        fwd, conv = kws_flops(TRAIN_B)
        return 3 * fwd - conv
    if name == "W5":  # forward + weight gradients + input and state gradients
        return 3 * gru_flops(TRAIN_B, T, D, U)
    raise KeyError(name)


# --- weights and data --------------------------------------------------------------------------
@dataclass
class Weights:
    gru: list  # kernel (D, 3U), recurrent (U, 3U), bias (2, 3U)
    lstm: list  # kernel (D, 4U), recurrent (U, 4U), bias (4U,)
    conv: list  # kernel (K, D, F), bias (F,)
    bn1: list  # gamma, beta, moving_mean, moving_variance (F,)
    gru1: list  # (F -> U)
    bn2: list  # (U,)
    gru2: list  # (U -> U)
    dense: list  # kernel (U, 2), bias (2,)
    x1: np.ndarray = field(repr=False)  # (1, T, D)
    x32: np.ndarray = field(repr=False)  # (32, T, D)
    y32: np.ndarray = field(repr=False)  # (32, O, 2) one-hot
    dy32: np.ndarray = field(repr=False)  # (32, T, U) upstream gradient for W5

    def kws(self) -> list:
        return self.conv + self.bn1 + self.gru1 + self.bn2 + self.gru2 + self.dense


def make_weights(seed: int = 0) -> Weights:
    rng = np.random.default_rng(seed)

    def uni(shape, fan_in, fan_out):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype(np.float32)

    def rec(n, m):
        q, _ = np.linalg.qr(rng.standard_normal((m, n)))
        return q.T[:n, :m].astype(np.float32)

    def small(shape):
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)

    def gru(d):
        return [uni((d, 3 * U), d, 3 * U), rec(U, 3 * U), small((2, 3 * U))]

    def bn(c):
        return [
            (1.0 + small((c,))).astype(np.float32),
            small((c,)),
            small((c,)),
            rng.uniform(0.5, 1.5, c).astype(np.float32),
        ]

    y = np.zeros((TRAIN_B, O, CLASSES), np.float32)
    labels = rng.integers(0, CLASSES, (TRAIN_B, O))
    y[np.arange(TRAIN_B)[:, None], np.arange(O)[None, :], labels] = 1
    return Weights(
        gru=gru(D),
        lstm=[uni((D, 4 * U), D, 4 * U), rec(U, 4 * U), small((4 * U,))],
        conv=[uni((K, D, F), K * D, K * F), small((F,))],
        bn1=bn(F),
        gru1=gru(F),
        bn2=bn(U),
        gru2=gru(U),
        dense=[uni((U, CLASSES), U, CLASSES), small((CLASSES,))],
        x1=rng.standard_normal((1, T, D)).astype(np.float32),
        x32=rng.standard_normal((TRAIN_B, T, D)).astype(np.float32),
        y32=y,
        dy32=rng.standard_normal((TRAIN_B, T, U)).astype(np.float32),
    )


# --- a framework's runners ---------------------------------------------------------------------
@dataclass
class Runner:
    """fn() runs the workload once; result() the quantity compared (after one fn())."""

    fn: Callable[[], object]
    result: Callable[[], object]


class Skip(Exception):
    """A framework (or one of its workloads) is not available; the message says why."""


# --- nntk through the C API --------------------------------------------------------------------
def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


class _NNTKRaw:
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
    """C arguments prepared once: Python ints are pointers (c_void_p), None is NULL,
    ctypes integers stay as they are."""
    return tuple(ctypes.c_void_p(v) if isinstance(v, int) else v for v in values)


def _nntk_model_layers() -> list:
    """The W3/W4 model's nntk layers (no native handle yet)."""
    import nntk_core as nn

    return [
        nn.Conv1d(F, K, input_dim=D),
        nn.BatchNorm(F),
        nn.Activation("relu", input_dim=F),
        nn.GRU(U, input_dim=F, return_sequences=True),
        nn.BatchNorm(U),
        nn.GRU(U, input_dim=U, return_sequences=True),
        nn.TimeDistributedDense(CLASSES, input_dim=U, activation="softmax"),
    ]


def _nntk_layers(w: Weights, batch: int):
    import nntk_core as nn

    model = nn.Sequential(_nntk_model_layers())
    model.set_weights(w.kws())
    return model


def nntk_runners(w: Weights, python_api: bool) -> dict[str, Runner]:
    import nntk_core as nn

    raw = _NNTKRaw()
    c_int = ctypes.c_int64
    runners: dict[str, Runner] = {}

    def check(status: int, what: str):
        if status != 0:
            raise RuntimeError(f"nntk {what}: {nn.lib.NNTKLastError().decode()}")

    # W1, W2
    for name, cls, weights in (("W1", nn.GRU, w.gru), ("W2", nn.LSTM, w.lstm)):
        layer = cls(U, input_dim=D, return_sequences=True)
        layer.set_weights(weights)
        out = np.empty((1, T, U), np.float32)
        if python_api:
            runners[name] = Runner(lambda layer=layer: layer(w.x1), lambda layer=layer: layer(w.x1))
            continue
        apply = raw.fn(f"NNTK{layer.layer_type.name}ApplyInference", 5)
        args = _args(layer._live_handle(), c_int(1), c_int(T), _ptr(w.x1), _ptr(out))
        check(apply(*args), name)
        runners[name] = Runner(lambda apply=apply, args=args: apply(*args), lambda out=out: out)
        runners[name].keep = layer  # the handle lives as long as the layer object

    # W3: the layer stack, inference
    model = _nntk_layers(w, 1)
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
    tmodel = _nntk_layers(w, TRAIN_B)
    if python_api:
        loss = nn.losses.CategoricalCrossentropy()
        opt = nn.optimizers.Adam(learning_rate=1e-3, epsilon=1e-7)
        runners["W4"] = Runner(
            lambda: tmodel.train_step(w.x32, w.y32, loss, opt),
            lambda: _nntk_first_loss(w, python_api=True),
        )
    else:
        runners["W4"] = _nntk_train_runner(raw, tmodel, w, check)

    # W5: GRU forward + backward
    gru = nn.GRU(U, input_dim=D, return_sequences=True)
    gru.set_weights(w.gru)
    if python_api:

        def w5py():
            gru(w.x32, training=True)
            return gru.backward(w.dy32)

        def w5py_result():
            dx, grads = w5py()
            return dx, grads[0]

        runners["W5"] = Runner(w5py, w5py_result)
    else:
        out = np.empty((TRAIN_B, T, U), np.float32)
        dx = np.empty((TRAIN_B, T, D), np.float32)
        handle = gru._live_handle()
        grad = nn.lib.NNTKGRUGradientCreate(handle)
        gw_ptr, gw_count = ctypes.POINTER(ctypes.c_float)(), ctypes.c_int64()
        nn.lib.NNTKGRUGradientGetWeights(grad, ctypes.byref(gw_ptr), ctypes.byref(gw_count))
        d_kernel = np.ctypeslib.as_array(gw_ptr, shape=(gw_count.value,))[: D * 3 * U]
        fwd = raw.fn("NNTKGRUApplyTrainingBatch", 5)
        bwd = raw.fn("NNTKGRUCalculateGradient", 4)
        fargs = _args(handle, c_int(TRAIN_B), c_int(T), _ptr(w.x32), _ptr(out))
        bargs = _args(handle, grad, _ptr(w.dy32), _ptr(dx))
        check(fwd(*fargs), "W5 forward")
        check(bwd(*bargs), "W5 gradient")

        def w5(fwd=fwd, bwd=bwd, fargs=fargs, bargs=bargs):
            fwd(*fargs)
            bwd(*bargs)

        runners["W5"] = Runner(w5, lambda: (dx, d_kernel.reshape(D, 3 * U)))
        runners["W5"].keep = (gru, grad, out, dx)  # the handles and buffers stay alive
    return runners


def _nntk_train_runner(raw: _NNTKRaw, model, w: Weights, check) -> Runner:
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
        d_in = 0 if i == 0 else _ptr(douts[i - 1])
        g = raw.fn(f"NNTK{layer.layer_type.name}CalculateGradient", 4)
        backward.append((g, _args(handle, grad, _ptr(douts[i]), d_in or None)))
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
        ctypes.addressof(loss_value),
        _ptr(douts[-1]),
    )
    step_fn = raw.fn("NNTKOptimizerStep", 5)
    step_args = _args(
        opt,
        c_int(n),
        ctypes.addressof(param_ptrs),
        ctypes.addressof(grad_ptrs),
        ctypes.addressof(sizes),
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


def _nntk_first_loss(w: Weights, python_api: bool) -> float:
    import nntk_core as nn

    model = _nntk_layers(w, TRAIN_B)
    loss = nn.losses.CategoricalCrossentropy()
    return float(loss(w.y32, model(w.x32, training=True)))


# --- tf.keras (also the reference and the source of the TFLite models) -------------------------
def _tf():
    """TensorFlow, imported quietly: tf.keras is Keras 2, one thread (the reference
    settings), but oneDNN on, as TF ships: the timings are TF's own (the parity reference
    turns oneDNN off, for reproducible bits)."""
    from parity import settings

    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    try:
        return settings.import_tensorflow()
    except ImportError as exc:
        raise Skip(f"tensorflow not installed ({exc})") from None


def keras_models(w: Weights, batch: int | None):
    tf = _tf()
    keras = tf.keras
    gru = keras.Sequential(
        [keras.Input((T, D), batch_size=batch), keras.layers.GRU(U, return_sequences=True)]
    )
    gru.set_weights(w.gru)
    lstm = keras.Sequential(
        [keras.Input((T, D), batch_size=batch), keras.layers.LSTM(U, return_sequences=True)]
    )
    lstm.set_weights(w.lstm)
    kws = keras.Sequential(
        [
            keras.Input((T, D), batch_size=batch),
            keras.layers.Conv1D(F, K),
            keras.layers.BatchNormalization(epsilon=1e-3),
            keras.layers.Activation("relu"),
            keras.layers.GRU(U, return_sequences=True),
            keras.layers.BatchNormalization(epsilon=1e-3),
            keras.layers.GRU(U, return_sequences=True),
            keras.layers.TimeDistributed(keras.layers.Dense(CLASSES, activation="softmax")),
        ]
    )
    kws.set_weights(w.kws())
    return gru, lstm, kws


def tf_runners(w: Weights, xla: bool) -> dict[str, Runner]:
    tf = _tf()
    gru, lstm, kws = keras_models(w, None)
    runners: dict[str, Runner] = {}
    x1 = tf.constant(w.x1)
    for name, model in (("W1", gru), ("W2", lstm), ("W3", kws)):
        f = tf.function(lambda x, model=model: model(x, training=False), jit_compile=xla)
        runners[name] = Runner(lambda f=f: f(x1).numpy(), lambda f=f: f(x1).numpy())

    # W4: forward, loss and gradients in one tf.function (jit_compile=xla); the Adam
    # update in a plain tf.function. (With the optimizer inside the XLA cluster this TF
    # version recompiles at every step: seconds per call.)
    _, _, tmodel = keras_models(w, None)
    opt = tf.keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-7)
    loss_fn = tf.keras.losses.CategoricalCrossentropy()
    x32, y32 = tf.constant(w.x32), tf.constant(w.y32)

    @tf.function(jit_compile=xla)
    def loss_and_grads(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, tmodel(x, training=True))
        return loss, tape.gradient(loss, tmodel.trainable_variables)

    @tf.function
    def apply(grads):
        opt.apply_gradients(zip(grads, tmodel.trainable_variables, strict=True))

    def train_step():
        loss, grads = loss_and_grads(x32, y32)
        apply(grads)
        return loss

    _, _, fresh = keras_models(w, None)
    first = float(loss_fn(y32, fresh(x32, training=True)).numpy())
    runners["W4"] = Runner(train_step, lambda: first)
    runners["W4"].note = (
        "tf-xla W4: the XLA cluster (forward, loss, gradients) is recompiled after every "
        "weight update in this TF version (seconds per step); the update itself is outside it"
        if xla
        else ""
    )

    # W5
    layer = tf.keras.layers.GRU(U, return_sequences=True)
    layer.build((None, T, D))
    layer.set_weights(w.gru)
    dy32 = tf.constant(w.dy32)

    @tf.function(jit_compile=xla)
    def fwd_bwd(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
        return tape.gradient(y, [x, layer.trainable_variables[0]], output_gradients=dy)

    def w5_result():
        dx, dk = fwd_bwd(x32, dy32)
        return dx.numpy(), dk.numpy()

    runners["W5"] = Runner(lambda: [g.numpy() for g in fwd_bwd(x32, dy32)], w5_result)
    return runners


# --- TFLite (ai-edge-litert), inference ----------------------------------------------------------
def tflite_runners(w: Weights) -> dict[str, Runner]:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise Skip(f"ai-edge-litert not installed ({exc})") from None
    import concurrent.futures
    import multiprocessing

    # TensorFlow converts the models in a process of its own: it and LiteRT never share one.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        blobs = pool.submit(tflite_models, w).result()
    runners: dict[str, Runner] = {}
    for name, blob in blobs.items():
        interp = Interpreter(model_content=blob, num_threads=1)
        interp.allocate_tensors()
        inp = interp.get_input_details()[0]["index"]
        out = interp.get_output_details()[0]["index"]

        def run(interp=interp, inp=inp, out=out):
            interp.set_tensor(inp, w.x1)
            interp.invoke()
            return interp.get_tensor(out)

        def result(interp=interp, run=run):
            # The fused LSTM keeps its state in variable tensors from one invoke to the
            # next: the output compared is that of a fresh sequence.
            interp.reset_all_variables()
            return run()

        runners[name] = Runner(run, result)
    return runners


def tflite_models(w: Weights) -> dict[str, bytes]:
    """W1-W3's Keras models converted to TFLite flatbuffers (needs TensorFlow)."""
    tf = _tf()
    gru, lstm, kws = keras_models(w, 1)
    return {
        name: tf.lite.TFLiteConverter.from_keras_model(model).convert()
        for name, model in (("W1", gru), ("W2", lstm), ("W3", kws))
    }


# --- ONNX Runtime, inference (graphs built with onnx.helper) ----------------------------------
def _onnx_gru_weights(kernel, recurrent, bias):
    # ONNX gate order z, r, h = Keras's; W (1, 3H, D), R (1, 3H, H), B (1, 6H) = [Wb | Rb]
    return (kernel.T[None], recurrent.T[None], bias.reshape(1, -1))


def _onnx_lstm_weights(kernel, recurrent, bias):
    # Keras i, f, c, o -> ONNX i, o, f, c
    def reorder(m):
        i, f, c, o = np.split(m, 4, axis=-1)
        return np.concatenate([i, o, f, c], axis=-1)

    b = np.concatenate([reorder(bias), np.zeros_like(bias)])
    return (reorder(kernel).T[None], reorder(recurrent).T[None], b[None])


def onnx_models(w: Weights):
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise Skip(f"onnx not installed ({exc})") from None

    def const(name, arr):
        return numpy_helper.from_array(np.ascontiguousarray(arr, np.float32), name)

    def rnn_nodes(prefix, op, x_tbd, weights, hidden):
        """x (T, B, Din) -> y (T, B, H) nodes and initialisers."""
        wn, rn, bn = (f"{prefix}_W", f"{prefix}_R", f"{prefix}_B")
        inits = [const(wn, weights[0]), const(rn, weights[1]), const(bn, weights[2])]
        attrs = {"hidden_size": hidden}
        if op == "GRU":
            attrs["linear_before_reset"] = 1
        nodes = [
            helper.make_node(op, [x_tbd, wn, rn, bn], [f"{prefix}_Y"], **attrs),
            helper.make_node("Squeeze", [f"{prefix}_Y", "axis1"], [f"{prefix}_out"]),
        ]
        return nodes, inits, f"{prefix}_out"

    axis1 = numpy_helper.from_array(np.array([1], np.int64), "axis1")
    models = {}
    for name, op, weights in (
        ("W1", "GRU", _onnx_gru_weights(*w.gru)),
        ("W2", "LSTM", _onnx_lstm_weights(*w.lstm)),
    ):
        nodes = [helper.make_node("Transpose", ["x"], ["x_tbd"], perm=[1, 0, 2])]
        rn, inits, y = rnn_nodes("r", op, "x_tbd", weights, U)
        nodes += rn + [helper.make_node("Transpose", [y], ["y"], perm=[1, 0, 2])]
        graph = helper.make_graph(
            nodes,
            name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, T, D])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, T, U])],
            inits + [axis1],
        )
        models[name] = graph

    # W3: x (B, T, D) -> (B, D, T) conv -> BN -> relu -> (T, B, F) GRU -> BN -> GRU -> dense
    ck, cb = w.conv
    inits = [const("conv_W", np.transpose(ck, (2, 1, 0))), const("conv_B", cb), axis1]
    for i, bn in ((1, w.bn1), (2, w.bn2)):
        inits += [const(f"bn{i}_{n}", a) for n, a in zip(("g", "b", "m", "v"), bn, strict=True)]
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_bdt"], perm=[0, 2, 1]),
        helper.make_node("Conv", ["x_bdt", "conv_W", "conv_B"], ["conv"], kernel_shape=[K]),
        helper.make_node(
            "BatchNormalization",
            ["conv", "bn1_g", "bn1_b", "bn1_m", "bn1_v"],
            ["bn1"],
            epsilon=1e-3,
        ),
        helper.make_node("Relu", ["bn1"], ["relu"]),
        helper.make_node("Transpose", ["relu"], ["g1_in"], perm=[2, 0, 1]),
    ]
    n1, i1, y1 = rnn_nodes("g1", "GRU", "g1_in", _onnx_gru_weights(*w.gru1), U)
    nodes += n1
    inits += i1
    nodes += [
        helper.make_node("Transpose", [y1], ["bn2_in"], perm=[1, 2, 0]),
        helper.make_node(
            "BatchNormalization",
            ["bn2_in", "bn2_g", "bn2_b", "bn2_m", "bn2_v"],
            ["bn2"],
            epsilon=1e-3,
        ),
        helper.make_node("Transpose", ["bn2"], ["g2_in"], perm=[2, 0, 1]),
    ]
    n2, i2, y2 = rnn_nodes("g2", "GRU", "g2_in", _onnx_gru_weights(*w.gru2), U)
    nodes += n2
    inits += i2 + [const("dense_W", w.dense[0]), const("dense_B", w.dense[1])]
    nodes += [
        helper.make_node("Transpose", [y2], ["g2_bt"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["g2_bt", "dense_W"], ["logits0"]),
        helper.make_node("Add", ["logits0", "dense_B"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=-1),
    ]
    models["W3"] = helper.make_graph(
        nodes,
        "W3",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, T, D])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, O, CLASSES])],
        inits,
    )
    return {
        name: helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
        for name, g in models.items()
    } | {"_onnx": onnx}


def ort_runners(w: Weights) -> dict[str, Runner]:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise Skip(f"onnxruntime not installed ({exc})") from None
    models = onnx_models(w)
    runners: dict[str, Runner] = {}
    for name in ("W1", "W2", "W3"):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(models[name], opts, providers=["CPUExecutionProvider"])
        feed = {"x": w.x1}

        def run(sess=sess, feed=feed):
            return sess.run(None, feed)[0]

        runners[name] = Runner(run, run)
    return runners


# --- PyTorch (CPU) -------------------------------------------------------------------------------
def torch_runners(w: Weights) -> dict[str, Runner]:
    try:
        import torch
    except ImportError as exc:
        raise Skip(
            f"torch not installed ({exc}); install its CPU build on its own: README, Benchmark"
        ) from None
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    nn = torch.nn

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a))

    def torch_gru(din, weights):
        kernel, recurrent, bias = weights

        def zrh_to_rzn(m):  # Keras columns [z | r | h] -> torch rows [r | z | n]
            z, r, h = np.split(m, 3, axis=-1)
            return np.concatenate([r, z, h], axis=-1)

        g = nn.GRU(din, U, batch_first=True)
        with torch.no_grad():
            g.weight_ih_l0.copy_(t(zrh_to_rzn(kernel).T))
            g.weight_hh_l0.copy_(t(zrh_to_rzn(recurrent).T))
            g.bias_ih_l0.copy_(t(zrh_to_rzn(bias[0])))
            g.bias_hh_l0.copy_(t(zrh_to_rzn(bias[1])))
        return g

    def torch_lstm(weights):
        kernel, recurrent, bias = weights  # gates i, f, c(g), o: the same order as torch
        g = nn.LSTM(D, U, batch_first=True)
        with torch.no_grad():
            g.weight_ih_l0.copy_(t(kernel.T))
            g.weight_hh_l0.copy_(t(recurrent.T))
            g.bias_ih_l0.copy_(t(bias))
            g.bias_hh_l0.zero_()
        return g

    def torch_bn(c, weights):
        bn = nn.BatchNorm1d(c, eps=1e-3, momentum=0.01)
        with torch.no_grad():
            for p, a in zip(
                (bn.weight, bn.bias, bn.running_mean, bn.running_var), weights, strict=True
            ):
                p.copy_(t(a))
        return bn

    class KWS(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(D, F, K)
            with torch.no_grad():
                self.conv.weight.copy_(t(np.transpose(w.conv[0], (2, 1, 0))))
                self.conv.bias.copy_(t(w.conv[1]))
            self.bn1 = torch_bn(F, w.bn1)
            self.gru1 = torch_gru(F, w.gru1)
            self.bn2 = torch_bn(U, w.bn2)
            self.gru2 = torch_gru(U, w.gru2)
            self.dense = nn.Linear(U, CLASSES)
            with torch.no_grad():
                self.dense.weight.copy_(t(w.dense[0].T))
                self.dense.bias.copy_(t(w.dense[1]))

        def forward(self, x):  # x (B, T, D)
            h = torch.relu(self.bn1(self.conv(x.transpose(1, 2))))  # (B, F, O)
            h, _ = self.gru1(h.transpose(1, 2))  # (B, O, U)
            h = self.bn2(h.transpose(1, 2)).transpose(1, 2)
            h, _ = self.gru2(h)
            return torch.softmax(self.dense(h), dim=-1)

    def cce(p, y):  # Keras CategoricalCrossentropy on probabilities (they sum to 1 here)
        return -(y * torch.log(torch.clamp(p, 1e-7, 1 - 1e-7))).sum(-1).mean()

    runners: dict[str, Runner] = {}
    x1 = t(w.x1)
    gru, lstm, kws = torch_gru(D, w.gru).eval(), torch_lstm(w.lstm).eval(), KWS().eval()
    for name, model in (("W1", lambda x: gru(x)[0]), ("W2", lambda x: lstm(x)[0]), ("W3", kws)):

        def run(model=model):
            with torch.inference_mode():
                return model(x1).numpy()

        runners[name] = Runner(run, run)

    train = KWS().train()
    opt = torch.optim.Adam(train.parameters(), lr=1e-3, eps=1e-7)
    x32, y32 = t(w.x32), t(w.y32)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = cce(train(x32), y32)
        loss.backward()
        opt.step()
        return loss

    first = float(cce(KWS().train()(x32), y32).detach())
    runners["W4"] = Runner(step, lambda: first)

    g5 = torch_gru(D, w.gru).train()
    xg = t(w.x32).clone().requires_grad_(True)
    dy = t(w.dy32)

    def fwd_bwd():
        g5.zero_grad(set_to_none=True)
        xg.grad = None
        y, _ = g5(xg)
        y.backward(dy)
        return xg.grad, g5.weight_ih_l0.grad

    def w5_result():
        dx, dwi = fwd_bwd()
        r, z, n = np.split(dwi.numpy().T, 3, axis=-1)  # back to Keras [z | r | h]
        return dx.numpy(), np.concatenate([z, r, n], axis=-1)

    runners["W5"] = Runner(fwd_bwd, w5_result)
    return runners


# --- checks --------------------------------------------------------------------------------------
def compare(name: str, got, ref) -> tuple[bool, str]:
    if name == "W4":
        diff = abs(float(got) - float(ref))
        ok = diff <= LOSS_RTOL * abs(float(ref))
        return ok, f"loss {float(got):.6f} vs {float(ref):.6f}"
    if name == "W5":
        worst = 0.0
        for a, b in zip(got, ref, strict=True):
            a, b = np.asarray(a), np.asarray(b)
            worst = max(worst, float(np.max(np.abs(a - b)) / max(1e-30, float(np.max(np.abs(b))))))
        return worst <= GRAD_TOL, f"max |d| / max|ref| = {worst:.2e}"
    a, b = np.asarray(got, np.float32).reshape(-1), np.asarray(ref, np.float32).reshape(-1)
    if a.shape != b.shape:
        return False, f"shape {a.shape} vs {b.shape}"
    diff = float(np.max(np.abs(a - b)))
    return diff <= INFER_TOL, f"max |d| = {diff:.2e}"


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

    def sample(self, wl: str, calls: int) -> float:
        """Seconds per call, the mean of `calls` back-to-back calls."""
        fn = self.runners[wl].fn
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t0) / calls


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

    def sample(self, wl: str, calls: int) -> float:
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
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
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
    """Per framework (a Local or a Worker), `rounds` samples of workload wl in seconds
    per call; the rounds visit the frameworks in a rotating order."""
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


# --- the run -------------------------------------------------------------------------------------
IN_PROCESS = ("nntk", "nntk-py")  # the frameworks run in this process; each peer in its own
BUILDERS = {
    "nntk": lambda w: nntk_runners(w, python_api=False),
    "nntk-py": lambda w: nntk_runners(w, python_api=True),
    "onnxruntime": ort_runners,
    "tflite": tflite_runners,
    "torch": torch_runners,
    "tf": lambda w: tf_runners(w, xla=False),
    "tf-xla": lambda w: tf_runners(w, xla=True),
}


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for dist in (
        "numpy",
        "tensorflow",
        "tf-keras",
        "torch",
        "onnxruntime",
        "onnx",
        "ai-edge-litert",
        "scipy-openblas32",
    ):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_report() -> dict:
    """Bytes each W4 layer allocates at Create (handle, weights, training capacity for
    B=32, T=100 reserved up front) and the peak allocated during one W4 step."""
    import nntk_core as nn
    from nntk_core import _native

    if not hasattr(nn.lib, "NNTKMemoryStats"):
        return {"note": "this build has no NNTKMemoryStats"}
    current, peak = ctypes.c_int64(), ctypes.c_int64()

    def stats():
        nn.lib.NNTKMemoryStats(ctypes.byref(current), ctypes.byref(peak))
        return current.value, peak.value

    layers = []
    for layer in _nntk_model_layers():  # each layer's config, created alone
        config = layer._new_config()
        for mode, extra in (
            ("inference", ()),
            ("training", (ctypes.byref(_native.TrainingConfig(TRAIN_B, T)),)),
        ):
            before, _ = stats()
            handle = getattr(nn.lib, f"NNTKLayerCreateFor{mode.capitalize()}")(config, *extra)
            after, _ = stats()
            layers.append({"layer": layer.layer_type.name, "mode": mode, "bytes": after - before})
            nn.lib.NNTKLayerDestroy(handle)
        nn.lib.NNTKLayerConfigDestroy(config)
    w = make_weights()
    base, _ = stats()

    def check(status, what):
        if status != 0:
            raise RuntimeError(f"nntk {what}: {nn.lib.NNTKLastError().decode()}")

    runner = _nntk_train_runner(_NNTKRaw(), _nntk_layers(w, TRAIN_B), w, check)
    runner.fn()  # the first step grows the workspaces and creates Adam's slots
    before, _ = stats()
    nn.lib.NNTKMemoryResetPeak()
    runner.fn()
    after, peak_bytes = stats()
    return {
        "create": layers,
        "w4": {
            "resident_bytes": before - base,
            "peak_bytes_during_step": peak_bytes - base,
            "allocated_during_step": peak_bytes - before,
            "note": "W4's model (weights, gradients, training caches, workspaces) and Adam's "
            "slots, after one step; a later step allocates nothing",
        },
    }


def run_bench(
    frameworks: list[str], workloads: list[str], quick: bool, out_dir: Path | None, log=print
) -> dict:
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(1)
    except ImportError:
        limiter = None
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rounds = 3 if quick else 15
    target = 0.002 if quick else 0.005
    warmup = 2 if quick else 5
    w = make_weights()
    load_before = os.getloadavg()
    peak = measure_peak(512 if quick else 2048)
    log(f"single-core sgemm peak: {peak:.1f} GFLOP/s")

    # Every peer starts its process now (they build their models side by side); nntk's
    # runners are built here. Timing starts when all are ready.
    workers = {fw: Worker(fw) for fw in frameworks if fw not in IN_PROCESS}
    ran: dict[str, Local | Worker] = {}  # the frameworks that run
    offered: dict[str, dict[str, str]] = {}  # framework -> its workloads -> note
    notes: dict[str, str] = {}
    try:
        for fw in frameworks:
            runner = workers.get(fw)
            try:
                runner = runner or Local(BUILDERS[fw](w))
                offered[fw] = runner.ready()
                ran[fw] = runner
            except Skip as exc:
                notes[fw] = f"skipped: {exc}"
                log(f"{fw}: {notes[fw]}")
        # reference outputs: tf.keras when present (the spec), else nntk
        reference = "tf" if "tf" in ran else ("nntk" if "nntk" in ran else None)
        results = _run_workloads(
            ran, offered, reference, workloads, rounds, target, warmup, peak, log
        )
    finally:  # whatever happened: no worker outlives the run
        for worker in workers.values():
            worker.close()

    import nntk_core

    report = {
        "machine": {
            "cpu": _cpu(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        },
        "nntk": {
            "backend": nntk_core.BACKEND,
            "kernels": _kernel_isa(),
            "library": nntk_core.lib._name,
        },
        "versions": _versions(),
        "threads": "1 everywhere: threadpoolctl limits BLAS/OpenMP pools to 1, torch "
        "set_num_threads(1), ORT intra/inter_op 1, TF intra/inter_op 1, TFLite "
        "num_threads=1, nntk's OpenBLAS 1",
        "settings": {
            "quick": quick,
            "rounds": rounds,
            "sample_target_s": target,
            "warmup": warmup,
            "inference_tolerance_abs": INFER_TOL,
            "loss_rtol": LOSS_RTOL,
            "gradient_tolerance_rel_max": GRAD_TOL,
            "reference": reference,
        },
        "peak_gflops": peak,
        "notes": notes,
        "workloads": results,
    }
    try:
        report["memory"] = memory_report()
    except Exception as exc:  # never lose the timings for the memory figures
        report["memory"] = {"error": f"{type(exc).__name__}: {exc}"}
    if limiter is not None:
        limiter.restore_original_limits()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "bench.json").write_text(json.dumps(report, indent=2))
        (out_dir / "bench.md").write_text(markdown(report))
        plot(report, out_dir / "bench.png")
    return report


def _run_workloads(ran, offered, ref_fw, workloads, rounds, target, warmup, peak, log) -> dict:
    """Per workload: every framework's outputs checked against ref_fw's, then timed."""
    log(LEGEND)
    results: dict[str, dict] = {}
    for wl in workloads:
        entry = {"description": WORKLOADS[wl], "flops": workload_flops(wl), "frameworks": {}}
        present = {fw: runner for fw, runner in ran.items() if wl in offered[fw]}
        ref = present[ref_fw].result(wl) if ref_fw in present else None
        for fw, runner in present.items():
            if ref is None or fw == ref_fw:
                ok, detail = True, "reference" if fw == ref_fw else "no reference"
            else:
                ok, detail = compare(wl, runner.result(wl), ref)
            entry["frameworks"][fw] = {"check": "ok" if ok else "MISMATCH", "check_detail": detail}
            if not ok:
                log(f"{wl} {fw}: MISMATCH ({detail})")
        samples = time_interleaved(present, wl, rounds, target, warmup)
        for fw, s in samples.items():
            ms = sorted(x * 1e3 for x in s)
            q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
            med = statistics.median(ms)
            info = entry["frameworks"][fw]
            info.update(
                median_ms=med,
                p25_ms=q[0],
                p75_ms=q[2],
                iqr_ms=q[2] - q[0],
                min_ms=ms[0],
                samples=len(ms),
                gflops=entry["flops"] / (med * 1e-3) / 1e9,
            )
            info["pct_peak"] = 100.0 * info["gflops"] / peak
        base = entry["frameworks"].get("nntk")
        for fw, info in entry["frameworks"].items():
            if base and fw != "nntk" and info["check"] == "ok":
                info["nntk_ratio"] = base["median_ms"] / info["median_ms"]
        peers = [
            i["median_ms"]
            for fw, i in entry["frameworks"].items()
            if not fw.startswith("nntk") and i["check"] == "ok"
        ]
        if base and peers:
            entry["fastest_peer_ms"] = min(peers)
            entry["nntk_vs_fastest_peer"] = base["median_ms"] / min(peers)
        for fw in present:
            if offered[fw][wl]:
                entry["frameworks"][fw]["note"] = offered[fw][wl]
        results[wl] = entry
        log(format_workload(wl, entry))
    return results


def _kernel_isa() -> str:
    import nntk_core as nn

    try:
        f = nn.lib.NNTKKernelISA
        f.restype = ctypes.c_char_p
        f.argtypes = []
        return f().decode()
    except AttributeError:
        return "n/a"


# What the columns mean (printed once before the workloads, and under bench.md's table).
LEGEND = (
    "median / IQR / min: milliseconds per call (IQR = p75 - p25 over the samples); "
    "GFLOP/s and %peak: the matrix products' rate, and as a share of the measured one-thread "
    "sgemm peak (higher is better); nntk/x: nntk's median time / this framework's "
    "(below 1: nntk is faster); check: outputs against the reference before timing."
)


def format_workload(wl: str, entry: dict) -> str:
    lines = [
        f"\n{wl}  {entry['description']}  ({entry['flops'] / 1e6:.1f} MFLOP)",
        f"  {'framework':12s} {'median ms':>10s} {'IQR ms':>8s} {'min ms':>8s} "
        f"{'GFLOP/s':>8s} {'%peak':>6s} {'nntk/x':>7s}  check",
    ]
    for fw, i in sorted(entry["frameworks"].items(), key=lambda kv: kv[1].get("median_ms", 1e9)):
        ratio = f"{i['nntk_ratio']:.2f}" if "nntk_ratio" in i else "-"
        lines.append(
            f"  {fw:12s} {i['median_ms']:10.3f} {i['iqr_ms']:8.3f} {i['min_ms']:8.3f} "
            f"{i['gflops']:8.1f} {i['pct_peak']:6.1f} {ratio:>7s}  {i['check']} "
            f"({i['check_detail']})"
        )
    if "nntk_vs_fastest_peer" in entry:
        ratio = entry["nntk_vs_fastest_peer"]
        lines.append(
            f"  nntk time / fastest peer's = {ratio:.2f} "
            f"({'nntk faster' if ratio < 1 else 'nntk slower'}; lower is better for nntk)"
        )
    return "\n".join(lines)


def markdown(report: dict) -> str:
    """The run as a Markdown table (what docs/bench/README.md shows), one row per
    workload and framework, fastest first."""
    m, k = report["machine"], report["nntk"]
    load = "/".join(f"{x[0]:.2f}" for x in (m["load_average_before"], m["load_average_after"]))
    lines = [
        f"nntk `{k['backend']}` backend, `{k['kernels']}` kernels; {m['cpu']}, {m['cores']} "
        f"cores, one thread per framework; measured sgemm peak {report['peak_gflops']:.1f} "
        f"GFLOP/s; load average before/after {load}.",
        "",
        "| workload | framework | median ms | IQR ms | GFLOP/s | % peak | nntk / framework |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    ratios = []
    for wl, entry in report["workloads"].items():
        by_time = sorted(entry["frameworks"].items(), key=lambda kv: kv[1].get("median_ms", 1e9))
        for fw, i in by_time:
            ratio = f"{i['nntk_ratio']:.2f}" if "nntk_ratio" in i and fw != "nntk" else "—"
            if i["check"] != "ok":
                ratio = f"MISMATCH ({i['check_detail']})"
            lines.append(
                f"| {wl} | {fw} | {i['median_ms']:.3f} | {i['iqr_ms']:.3f} | {i['gflops']:.1f} "
                f"| {i['pct_peak']:.1f} | {ratio} |"
            )
        if "nntk_vs_fastest_peer" in entry:
            ratios.append(f"{wl} {entry['nntk_vs_fastest_peer']:.2f}")
    if ratios:
        lines += ["", "nntk time / fastest peer's (below 1: nntk is faster): " + ", ".join(ratios)]
    lines += ["", LEGEND.replace("nntk/x", "nntk / framework")]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    wls = list(report["workloads"])
    fws = [fw for fw in FRAMEWORKS if any(fw in report["workloads"][w]["frameworks"] for w in wls)]
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.8 / max(1, len(fws))
    for i, fw in enumerate(fws):
        xs, ys, lo, hi = [], [], [], []
        for j, wl in enumerate(wls):
            info = report["workloads"][wl]["frameworks"].get(fw)
            if info is None:
                continue
            xs.append(j + (i - (len(fws) - 1) / 2) * width)
            ys.append(info["median_ms"])
            lo.append(info["median_ms"] - info["p25_ms"])
            hi.append(info["p75_ms"] - info["median_ms"])
        ax.bar(xs, ys, width, yerr=[lo, hi], label=fw, capsize=2)
    ax.set_yscale("log")
    ax.set_xticks(range(len(wls)))
    short = {
        "W1": "GRU inference\nB=1",
        "W2": "LSTM inference\nB=1",
        "W3": "keyword detector\ninference B=1",
        "W4": "keyword detector\ntrain step B=32",
        "W5": "GRU fwd+bwd\nB=32",
    }
    ax.set_xticklabels([f"{wl}: {short.get(wl, wl)}" for wl in wls], fontsize=8)
    ax.set_ylabel("median ms per call (log; bars: IQR)")
    ax.set_title(
        f"nntk vs peers, one thread, {report['machine']['cpu']} "
        f"(sgemm peak {report['peak_gflops']:.0f} GFLOP/s)",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(args) -> int:
    frameworks = args.frameworks.split(",") if args.frameworks else list(FRAMEWORKS)
    unknown = [f for f in frameworks if f not in BUILDERS]
    workloads = args.workloads.split(",") if args.workloads else list(WORKLOADS)
    unknown += [w for w in workloads if w not in WORKLOADS]
    if unknown:
        print(
            f"nntk-parity bench: unknown framework or workload: {', '.join(unknown)} "
            f"(frameworks: {', '.join(FRAMEWORKS)}; workloads: {', '.join(WORKLOADS)})",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out) if args.out else None
    report = run_bench(frameworks, workloads, args.quick, out)
    mem = report.get("memory", {})
    if "w4" in mem:
        print(
            f"\nnntk memory: W4 peak {mem['w4']['peak_bytes_during_step']} bytes, "
            f"{mem['w4']['allocated_during_step']} allocated during a step; at Create "
            "(training: capacity B=32, T=100): "
            + ", ".join(f"{m['layer']}/{m['mode']} {m['bytes']}" for m in mem["create"])
        )
    if out is not None:
        written = [out / name for name in ("bench.json", "bench.md", "bench.png")]
        print("\nwrote " + ", ".join(str(path) for path in written if path.exists()))
    bad = [
        (wl, fw)
        for wl, e in report["workloads"].items()
        for fw, i in e["frameworks"].items()
        if i["check"] != "ok"
    ]
    return 1 if any(fw.startswith("nntk") for _, fw in bad) else 0
