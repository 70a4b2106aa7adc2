"""ONNX Runtime, inference: W1-W3, W6 (with state inputs and outputs) and W7's inference
workloads as ONNX graphs built with onnx.helper."""

from __future__ import annotations

import numpy as np

from nntk_bench.workloads import (
    CLASSES,
    RECURRENT,
    D,
    K,
    Runner,
    Skip,
    T,
    U,
    Weights,
    frame_runner,
)


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


ONNX_WEIGHTS = {"GRU": _onnx_gru_weights, "LSTM": _onnx_lstm_weights}


def onnx_models(w: Weights):
    """name -> serialized model: every inference workload of RECURRENT, W3, and W6 (W3's
    network on one conv window (1, K, D), the GRUs' states h1, h2 (1, 1, U) as inputs
    and their final states h1_out, h2_out as outputs)."""
    try:
        import onnx  # noqa: F401
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise Skip(f"onnx not installed ({exc})") from None

    def const(name, arr):
        return numpy_helper.from_array(np.ascontiguousarray(arr, np.float32), name)

    def value(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))

    def rnn_nodes(prefix, op, x_tbd, weights, hidden, initial=None):
        """x (T, B, Din) -> y (T, B, H) nodes and initialisers; with `initial` (the name of
        an (1, B, H) state input) the final state is the output f"{prefix}_out_state"."""
        wn, rn, bn = (f"{prefix}_W", f"{prefix}_R", f"{prefix}_B")
        inits = [const(wn, weights[0]), const(rn, weights[1]), const(bn, weights[2])]
        attrs = {"hidden_size": hidden}
        if op == "GRU":
            attrs["linear_before_reset"] = 1
        inputs = [x_tbd, wn, rn, bn] + (["", initial] if initial else [])
        outputs = [f"{prefix}_Y"] + ([f"{prefix}_out_state"] if initial else [])
        nodes = [
            helper.make_node(op, inputs, outputs, **attrs),
            helper.make_node("Squeeze", [f"{prefix}_Y", "axis1"], [f"{prefix}_out"]),
        ]
        return nodes, inits, f"{prefix}_out"

    axis1 = numpy_helper.from_array(np.array([1], np.int64), "axis1")
    models = {}
    for name, r in RECURRENT.items():
        if r.training:
            continue
        nodes = [helper.make_node("Transpose", ["x"], ["x_tbd"], perm=[1, 0, 2])]
        weights = ONNX_WEIGHTS[r.cell](*w.recurrent(r))
        rn, inits, y = rnn_nodes("r", r.cell, "x_tbd", weights, r.units)
        nodes += rn + [helper.make_node("Transpose", [y], ["y"], perm=[1, 0, 2])]
        models[name] = helper.make_graph(
            nodes, name, [value("x", (1, T, D))], [value("y", (1, T, r.units))], inits + [axis1]
        )

    def kws_graph(name, steps, stateful):
        """W3's network: x (1, steps, D) -> (1, steps - K + 1, CLASSES)."""
        out_steps = steps - K + 1
        ck, cb = w.conv
        inits = [const("conv_W", np.transpose(ck, (2, 1, 0))), const("conv_B", cb), axis1]
        for i, bn in ((1, w.bn1), (2, w.bn2)):
            names = ("g", "b", "m", "v")
            inits += [const(f"bn{i}_{n}", a) for n, a in zip(names, bn, strict=True)]
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
        g1 = _onnx_gru_weights(*w.gru1)
        n1, i1, y1 = rnn_nodes("g1", "GRU", "g1_in", g1, U, "h1" if stateful else None)
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
        g2 = _onnx_gru_weights(*w.gru2)
        n2, i2, y2 = rnn_nodes("g2", "GRU", "g2_in", g2, U, "h2" if stateful else None)
        nodes += n2
        inits += i2 + [const("dense_W", w.dense[0]), const("dense_B", w.dense[1])]
        nodes += [
            helper.make_node("Transpose", [y2], ["g2_bt"], perm=[1, 0, 2]),
            helper.make_node("MatMul", ["g2_bt", "dense_W"], ["logits0"]),
            helper.make_node("Add", ["logits0", "dense_B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["y"], axis=-1),
        ]
        inputs, outputs = [value("x", (1, steps, D))], [value("y", (1, out_steps, CLASSES))]
        if stateful:
            inputs += [value("h1", (1, 1, U)), value("h2", (1, 1, U))]
            outputs += [value("g1_out_state", (1, 1, U)), value("g2_out_state", (1, 1, U))]
        return helper.make_graph(nodes, name, inputs, outputs, inits)

    models["W3"] = kws_graph("W3", T, stateful=False)
    models["W6"] = kws_graph("W6", K, stateful=True)
    return {
        name: helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
        for name, g in models.items()
    }


def ort_runners(w: Weights) -> dict[str, Runner]:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise Skip(f"onnxruntime not installed ({exc})") from None
    models = onnx_models(w)
    runners: dict[str, Runner] = {}
    sessions = {}
    for name, model in models.items():
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sessions[name] = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    for name, sess in sessions.items():
        if name == "W6":
            continue
        feed = {"x": w.x1}

        def run(sess=sess, feed=feed):
            return sess.run(None, feed)[0]

        runners[name] = Runner(run, run)

    # W6: one run per frame, the states fed back (as a user of the Python API would)
    stream = sessions["W6"]
    windows = w.windows()
    zeros = np.zeros((1, 1, U), np.float32)
    states = [zeros, zeros]

    def step(i):
        y, states[0], states[1] = stream.run(
            None, {"x": windows[i], "h1": states[0], "h2": states[1]}
        )
        return y

    def reset():
        states[:] = [zeros, zeros]

    runners["W6"] = frame_runner(step, reset)
    return runners
