"""GRU: tf.keras.layers.GRU, reset_after True (bias (2, 3U)) and False (bias (3U,))
(docs/KERAS_SEMANTICS.md §2). Gate order z, r, h."""

from hypothesis import strategies as st

from parity.recurrent_spec import ACTIVATIONS, FLAGS, RECURRENT_ACTIVATIONS, RecurrentSpec


class GRUSpec(RecurrentSpec):
    name = "gru"
    layer_class = "GRU"
    keras_class = "GRU"
    gates = ("z", "r", "h")
    has_recurrent_activation = True
    has_fused_cell = True
    base_config = {
        "units": 5,
        "input_dim": 4,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "reset_after": True,
        "return_sequences": True,
        "go_backwards": False,
        "return_state": False,
    }
    options = {
        "activation": ACTIVATIONS,
        "recurrent_activation": RECURRENT_ACTIVATIONS,
        "reset_after": (True, False),
        **{flag: (True, False) for flag in FLAGS},
    }

    def more_options(self):
        return {"reset_after": st.booleans()}

    def keras_kwargs(self, keras, config):
        return {**super().keras_kwargs(keras, config), "reset_after": config["reset_after"]}

    def native_kwargs(self, config):
        return {**super().native_kwargs(config), "reset_after": config["reset_after"]}


SPEC = GRUSpec()
