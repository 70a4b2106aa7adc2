"""LSTM: tf.keras.layers.LSTM (docs/KERAS_SEMANTICS.md §3). Gate order i, f, c, o."""

from parity.recurrent_spec import ACTIVATIONS, FLAGS, RECURRENT_ACTIVATIONS, RecurrentSpec


class LSTMSpec(RecurrentSpec):
    name = "lstm"
    layer_class = "LSTM"
    keras_class = "LSTM"
    n_states = 2
    gates = ("i", "f", "c", "o")
    has_recurrent_activation = True
    has_fused_cell = True
    base_config = {
        "units": 5,
        "input_dim": 4,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "return_sequences": True,
        "go_backwards": False,
        "return_state": False,
    }
    options = {
        "activation": ACTIVATIONS,
        "recurrent_activation": RECURRENT_ACTIVATIONS,
        **{flag: (True, False) for flag in FLAGS},
    }


SPEC = LSTMSpec()
