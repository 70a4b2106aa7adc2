"""TimeDistributedDense: tf.keras TimeDistributed(Dense(...)), which needs a time axis."""

from __future__ import annotations

from nntk_core.layer import Layer


class TimeDistributedDense(Layer, layer="TimeDistributedDense"):
    """tf.keras.layers.TimeDistributed(Dense(...)) on (B, T, D) input: the Dense on
    every time step (one reshaped product in the library)."""

    input_ranks = (3,)
