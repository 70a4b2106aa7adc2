"""AveragePool1d: tf.keras.layers.AveragePooling1D (channels_last) on (B, L, C): the
draws and options of MaxPool1d's spec (valid and same padding, strides None, 1 and
beyond the pool).

What it checks beyond them: with "same" padding tf.nn.avg_pool divides an edge
window by the number of its steps inside the input, not by pool_size (the swept
cases with padding "same" and pool_size 4 have edge windows of 2 and 3 steps); the
gradient shares d_out/n over each window's steps.

A Keras defect, declared here: with "same" padding and pool_size > T, TensorFlow's
average-pooling gradient kernel (float64, and float32 with oneDNN off, the reference
setting) is not the derivative of its own forward pass: a window that starts in the
left padding and ends before the last step sends 1/T to all T steps instead of 1/n
to its n real ones (docs/KERAS_SEMANTICS.md §14; found by seed 15 of the 20-seed run,
docs/reliability.md §3). For those configs the reference input gradient is the
transpose of Keras's own forward map, read off by running the Keras layer on unit
inputs; the `pool wider than T` bucket keeps such a case in the fixtures."""

from dataclasses import replace

import numpy as np

from parity.case import Bucket
from parity.compare import Tolerance
from parity.specs.max_pool1d import MaxPool1dSpec


def pool_wider_than_input(config: dict, steps: int) -> bool:
    """Where TF's AvgPoolGrad departs from the derivative of AvgPool (see above)."""
    return config["padding"] == "same" and config["pool_size"] > steps


class AveragePool1dSpec(MaxPool1dSpec):
    name = "average_pool1d"
    layer_class = "AveragePool1d"
    # nntk sums a window (<= 6 steps) in double and divides once; Keras float32 sums
    # in float32. The gradient is float32 d_out/n added over <= pool_size windows,
    # in TF's order; the referee is float64.
    tolerances = {
        "output": Tolerance(atol=1e-6, rtol=1e-6, reason="a mean of <= 6 values, one rounding"),
        "grad": Tolerance(
            atol=1e-6, rtol=1e-6, reason="float32 sums of <= pool_size shares d_out/n"
        ),
    }

    def extra_buckets(self):
        return [
            *super().extra_buckets(),
            Bucket(
                "same, pool_size > T",
                lambda case: pool_wider_than_input(case.config, case.steps),
                lambda case: replace(
                    case,
                    steps=5,
                    config={**case.config, "padding": "same", "pool_size": 6, "strides": 1},
                ),
            ),
        ]

    def run_keras(self, tf, layer, x, upstream, states=()):
        quantities = super().run_keras(tf, layer, x, upstream, states)
        config = layer.get_config()
        steps = x.shape[1]
        if pool_wider_than_input({**config, "pool_size": config["pool_size"][0]}, steps):
            # Row t of `unit` is e_t on every channel: Keras's output for it is column t
            # of the (linear, per-channel) forward map A, so dx = Aᵀ·d_out.
            unit = np.repeat(np.eye(steps, dtype=x.dtype)[:, :, None], x.shape[2], axis=2)
            forward_map = np.asarray(layer(tf.constant(unit), training=False))
            quantities["grad:input"] = np.einsum("toc,boc->btc", forward_map, upstream[0])
        return quantities


SPEC = AveragePool1dSpec()
