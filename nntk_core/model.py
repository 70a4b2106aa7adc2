"""Sequential: a stack of nntk layers trained step by step, as a tf.keras Sequential
model trained with GradientTape + optimizer.apply_gradients.

    model = nn.Sequential([nn.Conv1d(64, 5, input_dim=40), nn.BatchNorm(64), ...])
    model.set_weights(keras_model.get_weights())          # Keras model order
    loss = model.train_step(x, y, nn.losses.CategoricalCrossentropy(), nn.optimizers.Adam())
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nntk_core.layer import Layer, check_bool


class Sequential:
    """Layers applied in order. Weights are the layers' weights concatenated in layer
    order (tf.keras Model.get_weights() order); trainable variables likewise."""

    def __init__(self, layers: Sequence):
        if isinstance(layers, Layer) or not isinstance(layers, Sequence) or not layers:
            raise TypeError("layers must be a non-empty list of nntk layers")
        for i, layer in enumerate(layers):
            if not hasattr(layer, "backward") or not hasattr(layer, "get_weights"):
                raise TypeError(f"layers[{i}] is not an nntk layer: {layer!r}")
        # Sizes must chain: each layer's input_dim is the size the layers before it
        # produce (an Activation without input_dim passes its input's size through).
        produced, producer = None, None
        for i, layer in enumerate(layers):
            wanted = None if getattr(layer, "adapts_input_dim", False) else layer.input_dim
            if produced is not None and wanted is not None and produced != wanted:
                raise ValueError(
                    f"layers[{i}] ({layer!r}) expects input_dim={wanted} but "
                    f"layers[{producer}] ({layers[producer]!r}) produces {produced} features"
                )
            if layer.output_dim is not None:
                produced, producer = layer.output_dim, i
        self.layers = list(layers)

    # -- weights -----------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: Sequence) -> None:
        counts = [len(layer.weight_shapes()) for layer in self.layers]
        if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence):
            raise TypeError("weights must be a list of arrays in tf.keras model order")
        if len(weights) != sum(counts):
            raise ValueError(
                f"Sequential.set_weights: expected {sum(counts)} arrays "
                f"({' + '.join(str(c) for c in counts)} for the {len(counts)} layers), "
                f"got {len(weights)}"
            )
        start = 0
        for i, (layer, count) in enumerate(zip(self.layers, counts, strict=True)):
            try:
                layer.set_weights(list(weights[start : start + count]))
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"layers[{i}] ({type(layer).__name__}): {exc}") from None
            start += count

    def trainable_variables(self) -> list[np.ndarray]:
        """Views onto the layers' native trainable weights (updated in place by an optimizer)."""
        return [v for layer in self.layers for v in layer.trainable_weight_views()]

    # -- forward / backward ------------------------------------------------------------
    def __call__(self, x, training: bool = False):
        training = check_bool(training, "training")
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    def backward(self, dy) -> tuple[np.ndarray, list[np.ndarray]]:
        """(dx, gradients of the trainable variables in model order) of the last
        training call, for the upstream gradient dy."""
        grads_per_layer = []
        for layer in reversed(self.layers):
            dy, grads = layer.backward(dy)
            grads_per_layer.append(grads)
        return dy, [g for grads in reversed(grads_per_layer) for g in grads]

    def train_step(self, x, y, loss, optimizer) -> float:
        """One step: forward (training=True), loss, backward, optimizer update.
        Returns the loss value (before the update), as tf.keras's train step does."""
        checks = (("loss", loss, "gradient"), ("optimizer", optimizer, "apply_gradients"))
        for name, obj, method in checks:
            if not hasattr(obj, method):
                raise TypeError(f"{name} must be an nntk {name} (with .{method}), got {obj!r}")
        prediction = self(x, training=True)
        value, d_prediction = loss.gradient(y, prediction)
        _, grads = self.backward(d_prediction)
        optimizer.apply_gradients(zip(grads, self.trainable_variables(), strict=True))
        return value

    def close(self) -> None:
        for layer in self.layers:
            layer.close()

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n])"
