"""The two sides of `nntk-parity verify`, per layer: tf.keras (a float32 model and its
float64 twin, the referee) and nntk, each giving every layer's inference output,
training output, gradient with respect to its input and weight gradients."""

from __future__ import annotations

import numpy as np


def keras_twin(model, dtype: str):
    """A copy of a Sequential or Functional tf.keras model computing in `dtype`, with
    the same (cast) weights: every "dtype" of its config replaced."""

    def retype(value):
        if isinstance(value, dict):
            return {k: (dtype if k == "dtype" else retype(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [retype(v) for v in value]
        return value

    twin = type(model).from_config(retype(model.get_config()))
    twin.set_weights([w.astype(dtype) for w in model.get_weights()])
    return twin


def keras_chain(model) -> list:
    """The model's layers in data-flow order without InputLayer and the dropout layers
    (nn.load_keras leaves those out): one per nntk layer."""
    from nntk_core.keras_io import DROPOUT

    return [layer for layer in model.layers if type(layer).__name__ not in ("InputLayer", *DROPOUT)]


def chain_forward(chain):
    """forward(x, training) through the chain (for parity.model_training.train_keras)."""

    def forward(x, training=False):
        for layer in chain:
            x = layer(x, training=training)
        return x

    return forward


def keras_quantities(chain, x, dy, dtype) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """Per layer i: `i:output` (inference), `i:output:training` and `i:grad:input` (the
    training call's gradient with respect to the layer's input, for the upstream
    gradient dy at the model's output); and every trainable weight's gradient, in
    model order."""
    from parity import reference

    tf = reference.tensorflow()
    out: dict[str, np.ndarray] = {}
    h = tf.constant(x.astype(dtype))
    for i, layer in enumerate(chain):
        h = layer(h, training=False)
        out[f"{i}:output"] = h.numpy()
    inputs = []
    xt = tf.constant(x.astype(dtype))
    with tf.GradientTape() as tape:
        tape.watch(xt)
        h = xt
        for layer in chain:
            inputs.append(h)
            h = layer(h, training=True)
            out[f"{len(inputs) - 1}:output:training"] = h
    weights = [w for layer in chain for w in layer.trainable_weights]
    grads = tape.gradient(
        h,
        inputs + weights,
        output_gradients=tf.constant(dy.astype(dtype)),
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    for i in range(len(chain)):
        out[f"{i}:output:training"] = out[f"{i}:output:training"].numpy()
        out[f"{i}:grad:input"] = grads[i].numpy()
    return out, [g.numpy() for g in grads[len(chain) :]]


def native_quantities(model, x, dy) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """The same quantities from the nntk model, layer by layer."""
    out: dict[str, np.ndarray] = {}
    h = x
    for i, layer in enumerate(model.layers):
        h = layer(h, training=False)
        out[f"{i}:output"] = h
    h = x
    for i, layer in enumerate(model.layers):
        h = layer(h, training=True)
        out[f"{i}:output:training"] = h
    grads_per_layer = []
    d = dy
    for i in reversed(range(len(model.layers))):
        d, grads = model.layers[i].backward(d)[:2]
        out[f"{i}:grad:input"] = d
        grads_per_layer.append(grads)
    return out, [g for grads in reversed(grads_per_layer) for g in grads]
