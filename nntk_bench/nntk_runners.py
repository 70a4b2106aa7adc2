"""nntk's runners: through its C API (ctypes, preallocated buffers, as an app would
call it) and through its Python layer classes ("nntk-py")."""

from __future__ import annotations

import ctypes

import numpy as np

from nntk_bench.workloads import CLASSES, TRAIN_B, D, F, K, O, Runner, T, U, Weights


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
