"""ONNX Runtime, inference: W1-W3 as ONNX graphs built with onnx.helper."""

from __future__ import annotations

import numpy as np

from nntk_bench.workloads import CLASSES, D, K, O, Runner, Skip, T, U, Weights


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
