"""tf.keras (also the reference and the source of the TFLite models), tf.keras under
XLA, and TFLite (ai-edge-litert)."""

from __future__ import annotations

import os

from nntk_bench.workloads import (
    CLASSES,
    RECURRENT,
    D,
    F,
    K,
    Recurrent,
    Runner,
    Skip,
    T,
    U,
    Weights,
    frame_runner,
)


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


def recurrent_model(w: Weights, r: Recurrent, batch: int | None):
    """r's layer as a Keras model (inference)."""
    keras = _tf().keras
    layer = getattr(keras.layers, r.cell)(r.units, return_sequences=True)
    model = keras.Sequential([keras.Input((T, D), batch_size=batch), layer])
    model.set_weights(w.recurrent(r))
    return model


def kws_model(w: Weights, batch: int | None):
    """W3's network."""
    keras = _tf().keras
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
    return kws


def stream_model(w: Weights):
    """W6: W3's network on one conv window x (1, K, D) from the GRUs' states h1, h2
    (1, U): outputs y (1, 1, CLASSES) and the final states h1_out, h2_out, named so the
    TFLite signature keeps them apart. The GRUs unrolled (one step)."""
    keras = _tf().keras
    layers = keras.layers
    x = keras.Input((K, D), batch_size=1, name="x")
    h1 = keras.Input((U,), batch_size=1, name="h1")
    h2 = keras.Input((U,), batch_size=1, name="h2")
    a = layers.Activation("relu")(layers.BatchNormalization(epsilon=1e-3)(layers.Conv1D(F, K)(x)))
    y1, s1 = layers.GRU(U, return_sequences=True, return_state=True, unroll=True)(
        a, initial_state=h1
    )
    b = layers.BatchNormalization(epsilon=1e-3)(y1)
    y2, s2 = layers.GRU(U, return_sequences=True, return_state=True, unroll=True)(
        b, initial_state=h2
    )
    y = layers.TimeDistributed(layers.Dense(CLASSES, activation="softmax"))(y2)
    outputs = [
        layers.Activation("linear", name=name)(t)
        for name, t in (("y", y), ("h1_out", s1), ("h2_out", s2))
    ]
    model = keras.Model([x, h1, h2], outputs)
    model.set_weights(w.kws())
    return model


def tf_runners(w: Weights, xla: bool) -> dict[str, Runner]:
    tf = _tf()
    runners: dict[str, Runner] = {}
    x1 = tf.constant(w.x1)
    models = {name: recurrent_model(w, r, None) for name, r in RECURRENT.items() if not r.training}
    models["W3"] = kws_model(w, None)
    for name, model in models.items():
        f = tf.function(lambda x, model=model: model(x, training=False), jit_compile=xla)
        runners[name] = Runner(lambda f=f: f(x1).numpy(), lambda f=f: f(x1).numpy())

    # W6: one call per frame, the states (tensors) carried
    smodel = stream_model(w)
    sf = tf.function(lambda x, h1, h2: smodel([x, h1, h2], training=False), jit_compile=xla)
    windows = [tf.constant(x) for x in w.windows()]
    zeros = tf.zeros((1, U))
    states = [zeros, zeros]

    def frame_step(i):
        y, states[0], states[1] = sf(windows[i], *states)
        return y.numpy()

    def frame_reset():
        states[:] = [zeros, zeros]

    runners["W6"] = frame_runner(frame_step, frame_reset)

    # W4: forward, loss and gradients in one tf.function (jit_compile=xla); the Adam
    # update in a plain tf.function. (With the optimizer inside the XLA cluster this TF
    # version recompiles at every step: seconds per call.)
    tmodel = kws_model(w, None)
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

    fresh = kws_model(w, None)
    first = float(loss_fn(y32, fresh(x32, training=True)).numpy())
    runners["W4"] = Runner(train_step, lambda: first)
    runners["W4"].note = (
        "tf-xla W4: the XLA cluster (forward, loss, gradients) is recompiled after every "
        "weight update in this TF version (seconds per step); the update itself is outside it"
        if xla
        else ""
    )

    for name, r in RECURRENT.items():
        if r.training:
            runners[name] = _tf_fwd_bwd(tf, w, r, xla)
    return runners


def _tf_fwd_bwd(tf, w: Weights, r: Recurrent, xla: bool) -> Runner:
    """W5, W7's training: forward + backward (input and kernel gradients) at B=32."""
    layer = getattr(tf.keras.layers, r.cell)(r.units, return_sequences=True)
    layer.build((None, T, D))
    layer.set_weights(w.recurrent(r))
    x, dy = (tf.constant(a) for a in w.recurrent_data(r))

    @tf.function(jit_compile=xla)
    def fwd_bwd(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
        return tape.gradient(y, [x, layer.trainable_variables[0]], output_gradients=dy)

    def result():
        dx, dk = fwd_bwd(x, dy)
        return dx.numpy(), dk.numpy()

    return Runner(lambda: [g.numpy() for g in fwd_bwd(x, dy)], result)


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
        if name == "W6":
            runners[name] = _tflite_stream(interp, w)
            continue
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


def _tflite_stream(interp, w: Weights) -> Runner:
    """W6 in TFLite: the states are the model's inputs and outputs (found by name through
    its signature), copied in with set_tensor and out with get_tensor at every frame."""
    import numpy as np

    runner = interp.get_signature_runner()
    inputs = {k: v["index"] for k, v in runner.get_input_details().items()}
    outputs = {k: v["index"] for k, v in runner.get_output_details().items()}
    windows = w.windows()
    zeros = np.zeros((1, U), np.float32)
    states = [zeros, zeros]

    def frame_step(i):
        interp.set_tensor(inputs["x"], windows[i])
        interp.set_tensor(inputs["h1"], states[0])
        interp.set_tensor(inputs["h2"], states[1])
        interp.invoke()
        states[0] = interp.get_tensor(outputs["h1_out"])
        states[1] = interp.get_tensor(outputs["h2_out"])
        return interp.get_tensor(outputs["y"])

    def frame_reset():
        states[:] = [zeros, zeros]

    return frame_runner(frame_step, frame_reset)


def tflite_models(w: Weights) -> dict[str, bytes]:
    """The inference workloads' Keras models (batch 1) converted to TFLite flatbuffers
    (needs TensorFlow)."""
    tf = _tf()
    models = {name: recurrent_model(w, r, 1) for name, r in RECURRENT.items() if not r.training}
    models |= {"W3": kws_model(w, 1), "W6": stream_model(w)}
    return {
        name: tf.lite.TFLiteConverter.from_keras_model(model).convert()
        for name, model in models.items()
    }
