"""tf.keras (also the reference and the source of the TFLite models), tf.keras under
XLA, and TFLite (ai-edge-litert)."""

from __future__ import annotations

import os

from nntk_bench.workloads import CLASSES, D, F, K, Runner, Skip, T, U, Weights


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
