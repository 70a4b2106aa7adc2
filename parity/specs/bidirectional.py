"""Bidirectional: tf.keras.layers.Bidirectional around SimpleRNN, GRU or LSTM
(docs/KERAS_SEMANTICS.md §4): every merge mode, the backward sequence reversed back
before merging, weights forward then backward, states forward then backward."""

from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from parity.recurrent_spec import ACTIVATIONS, FLAGS, RECURRENT_ACTIVATIONS, RecurrentSpec
from parity.spec import Bucket, around, boundaries, kernel_constants
from parity.specs.dense import keras_activation

INNER_KERAS = {"rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}
INNER_NATIVE = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
GATES = {"rnn": ("",), "gru": ("z", "r", "h"), "lstm": ("i", "f", "c", "o")}
MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _is_lstm(layer) -> bool:
    """Whether a (Keras or nntk) Bidirectional wraps an LSTM."""
    inner = getattr(layer, "forward_layer", None) or layer.layer
    return type(inner).__name__ == "LSTM"


class BidirectionalSpec(RecurrentSpec):
    name = "bidirectional"
    layer_class = "Bidirectional"
    has_recurrent_activation = True
    # A wrapped SimpleRNN is chaotic with large weights (see specs/rnn.py).
    scales = {"realistic": 1.0, "large": 1.5}
    steps_range = (1, 32)
    base_config = {
        "layer": "gru",
        "merge_mode": "concat",
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
        "layer": tuple(INNER_KERAS),
        "merge_mode": MERGE_MODES,
        "activation": ACTIVATIONS,
        "recurrent_activation": RECURRENT_ACTIVATIONS,
        "reset_after": (True, False),
        **{flag: (True, False) for flag in FLAGS},
    }

    def more_options(self):
        return {
            "layer": st.sampled_from(tuple(INNER_KERAS)),
            "merge_mode": st.sampled_from(MERGE_MODES),
            "reset_after": st.booleans(),
        }

    directions = 2

    def sweep_cases(self):
        """The sweep (which runs every merge mode around the base inner layer with
        return_sequences; five merge modes are too many for the pairwise sweep),
        plus every merge mode without return_sequences, returning the states,
        around the other inner layers in turn, initial states given every other
        case. Small (2 units, 2 features, 4 steps): the fixture set's budget."""
        cases = super().sweep_cases()
        others = [layer for layer in INNER_KERAS if layer != self.base_config["layer"]]
        for i, merge_mode in enumerate(MERGE_MODES):
            values = {
                "layer": others[i % len(others)],
                "merge_mode": merge_mode,
                "return_sequences": False,
                "return_state": True,
                "initial_state": i % 2 == 0,
                "units": 2,
                "input_dim": 2,
            }
            case = self.case_with(values, seed=len(cases) + 1)
            cases.append(replace(case, steps=4))
        return cases

    def gates_count(self, config):
        return len(GATES[config["layer"]])

    def step_blocks(self):
        # inference streams each direction bidirectional_chunk_steps at a time
        const = kernel_constants()
        return [const["recurrent_projection_steps"], const["bidirectional_chunk_steps"]]

    def step_buckets(self):
        # and a sequence longer than one chunk at batch > 1 (its input is gathered)
        chunk = kernel_constants()["bidirectional_chunk_steps"]
        return super().step_buckets() + [
            Bucket.shape(
                f"B=3, T={chunk + 1}",
                lambda c: c.batch == 3 and c.steps == chunk + 1,
                batch=3,
                steps=chunk + 1,
            )
        ]

    # The rows and columns of the products are the inner layers' C code, bucketed by
    # their own specs (rnn, gru, lstm); here only an LSTM's 4·units columns past a
    # recurrent panel, for the merge and the states at another width.
    def row_buckets(self):
        return []

    def column_buckets(self):
        units = around(boundaries("recurrent_panel"), step=len(GATES["lstm"]))
        return Bucket.sizes(
            "units",
            units[-1:],  # two panels; the boundary itself is the LSTM spec's bucket
            lambda c: self.lean(replace(c, config={**c.config, "layer": "lstm"})),
            ("B=1", lambda c: c.batch == 1),
        )

    def draw_states(self, case, rng):
        if not case.extra.get("initial_state"):
            return []
        shape = (case.batch, case.config["units"])
        count = 2 * (2 if case.config["layer"] == "lstm" else 1)
        return [(0.5 * rng.standard_normal(shape)).astype(np.float32) for _ in range(count)]

    def _inner_kwargs(self, config) -> dict:
        kwargs = {"activation": config["activation"], **{f: config[f] for f in FLAGS}}
        if config["layer"] != "rnn":
            kwargs["recurrent_activation"] = config["recurrent_activation"]
        if config["layer"] == "gru":
            kwargs["reset_after"] = config["reset_after"]
        return kwargs

    def build_keras(self, keras, config, dtype, input_shape):
        kwargs = self._inner_kwargs(config)
        for key in ("activation", "recurrent_activation"):
            if key in kwargs:
                kwargs[key] = keras_activation(keras, kwargs[key])
        inner_class = getattr(keras.layers, INNER_KERAS[config["layer"]])
        inner = inner_class(config["units"], dtype=dtype, **kwargs)
        layer = keras.layers.Bidirectional(inner, merge_mode=config["merge_mode"], dtype=dtype)
        layer.build(input_shape)
        return layer

    def build_native(self, nn, config):
        inner = getattr(nn, INNER_NATIVE[config["layer"]])(
            config["units"], input_dim=config["input_dim"], **self._inner_kwargs(config)
        )
        return nn.Bidirectional(inner, merge_mode=config["merge_mode"])

    def weight_names_of(self, variables):
        names = []
        for v in variables:
            direction = "forward" if "/forward_" in f"/{v.name}" else "backward"
            names.append(f"{direction}_{v.name.split('/')[-1].split(':')[0]}")
        return names

    def output_names_of(self, layer):
        mains = (
            ["output"] if layer.merge_mode is not None else ["output_forward", "output_backward"]
        )
        return mains + self.state_names_of(layer, "state")

    def state_names_of(self, layer, prefix):
        inner = ("h", "c") if _is_lstm(layer) else ("h",)
        return [f"{prefix}_{d}_{n}" for d in ("forward", "backward") for n in inner]

    def locate(self, quantity, index, config):
        self.gates = GATES[config["layer"]]
        if quantity.startswith("output:") and config["merge_mode"] == "concat":
            units = config["units"]
            *lead, unit = index
            direction = "forward" if unit < units else "backward"
            names = ("b", "t") if len(lead) == 2 else ("b",)
            inside = ", ".join(f"{n}={i}" for n, i in zip(names, lead, strict=True))
            return f"{quantity} [{inside}, direction={direction}, unit={unit % units}]"
        return super().locate(quantity, index, config)


SPEC = BidirectionalSpec()
