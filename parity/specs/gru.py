"""GRU: tf.keras.layers.GRU, reset_after True (bias (2, 3U)) and False (bias (3U,))
(docs/KERAS_SEMANTICS.md §2). Gate order z, r, h."""

from parity.recurrent_spec import ACTIVATION_DRAW, GATE_DRAW, RecurrentSpec


class GRUSpec(RecurrentSpec):
    name = "gru"
    layer_class = "GRU"
    gates = ("z", "r", "h")
    has_fused_cell = True
    draws = {"activation": ACTIVATION_DRAW, "recurrent_activation": GATE_DRAW}


SPEC = GRUSpec()
