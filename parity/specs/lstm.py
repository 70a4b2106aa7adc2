"""LSTM: tf.keras.layers.LSTM (docs/KERAS_SEMANTICS.md §3). Gate order i, f, c, o."""

from parity.recurrent_spec import ACTIVATION_DRAW, GATE_DRAW, UNIT_FORGET_BIAS, RecurrentSpec


class LSTMSpec(RecurrentSpec):
    name = "lstm"
    layer_class = "LSTM"
    n_states = 2
    gates = ("i", "f", "c", "o")
    has_fused_cell = True
    draws = {
        "activation": ACTIVATION_DRAW,
        "recurrent_activation": GATE_DRAW,
        "unit_forget_bias": UNIT_FORGET_BIAS,
    }


SPEC = LSTMSpec()
