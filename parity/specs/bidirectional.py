"""Bidirectional: tf.keras.layers.Bidirectional around SimpleRNN, GRU or LSTM
(docs/KERAS_SEMANTICS.md §4): every merge mode, the backward sequence reversed back
before merging, weights forward then backward, states forward then backward."""

from dataclasses import replace
from functools import cache

import numpy as np

from parity.blocking import around, boundaries, kernel_constants
from parity.case import Bucket
from parity.recurrent_spec import ACTIVATION_DRAW, GATE_DRAW, UNIT_FORGET_BIAS, RecurrentSpec
from parity.spec_fields import ENUM, Argument, keras_arguments, layer_arguments


@cache
def inner_types() -> dict:
    """The layers it wraps: every described layer type with states that is no wrapper
    itself, by the name of its spec ("gru": the GRU type)."""
    from nntk_core._native import LAYERS
    from parity.specs import all_specs

    types = {spec.name: LAYERS[spec.layer_class] for spec in all_specs()}
    return {name: t for name, t in types.items() if t.has_states and not t.wraps}


def gates_of(layer: str) -> tuple[str, ...]:
    """The column blocks of a wrapped layer's kernels, as its own spec names them."""
    from parity.specs import get_spec

    return get_spec(layer).gates


def _is_lstm(layer) -> bool:
    """Whether a (Keras or nntk) Bidirectional wraps an LSTM."""
    inner = getattr(layer, "forward_layer", None) or layer.layer
    return type(inner).__name__ == "LSTM"


class BidirectionalSpec(RecurrentSpec):
    name = "bidirectional"
    layer_class = "Bidirectional"
    # A wrapped SimpleRNN is chaotic with large weights (see specs/rnn.py).
    scales = {"realistic": 1.0, "large": 1.5}
    steps_range = (1, 32)
    base_values = {"layer": "gru", "units": 5, "input_dim": 4, "return_sequences": True}
    draws = {
        "activation": ACTIVATION_DRAW,
        "recurrent_activation": GATE_DRAW,
        "unit_forget_bias": UNIT_FORGET_BIAS,
    }

    def arguments(self):
        """Its own (merge_mode), the wrapped layer's spec name (`layer`), and every
        argument of the layers it wraps (a config holds them all; each inner layer
        takes its own)."""
        inner = {}
        for name in inner_types():
            inner.update({a.name: a for a in self.inner_arguments(name)})
        wrapped = Argument("layer", ENUM, None, required=True, names=tuple(inner_types()))
        return [*layer_arguments(self.layer_class), wrapped, *inner.values()]

    def inner_arguments(self, layer: str) -> list[Argument]:
        return layer_arguments(inner_types()[layer].name)

    def inner_config(self, config) -> dict:
        """The wrapped layer's arguments in a config."""
        names = {a.name for a in self.inner_arguments(config["layer"])}
        return {k: v for k, v in config.items() if k in names}

    directions = 2

    def sweep_cases(self):
        """The sweep (which runs every merge mode around the base inner layer with
        return_sequences; five merge modes are too many for the pairwise sweep),
        plus every merge mode without return_sequences, returning the states,
        around the other inner layers in turn, initial states given every other
        case. Small (2 units, 2 features, 4 steps): the fixture set's budget."""
        cases = super().sweep_cases()
        others = [layer for layer in inner_types() if layer != self.base_config["layer"]]
        for i, merge_mode in enumerate(self.options["merge_mode"]):
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
        return len(gates_of(config["layer"]))

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
        units = around(boundaries("recurrent_panel"), step=len(gates_of("lstm")))
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

    def keras_layer(self, keras, config, dtype):
        inner_class = getattr(keras.layers, inner_types()[config["layer"]].keras_name)
        arguments = keras_arguments(keras, self.inner_arguments(config["layer"]), config)
        inner = inner_class(**arguments, dtype=dtype)
        return keras.layers.Bidirectional(inner, merge_mode=config["merge_mode"], dtype=dtype)

    def build_native(self, nn, config):
        inner = getattr(nn, inner_types()[config["layer"]].name)(**self.inner_config(config))
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
        self.gates = gates_of(config["layer"])
        if quantity.startswith("output:") and config["merge_mode"] == "concat":
            units = config["units"]
            *lead, unit = index
            direction = "forward" if unit < units else "backward"
            names = ("b", "t") if len(lead) == 2 else ("b",)
            inside = ", ".join(f"{n}={i}" for n, i in zip(names, lead, strict=True))
            return f"{quantity} [{inside}, direction={direction}, unit={unit % units}]"
        return super().locate(quantity, index, config)


SPEC = BidirectionalSpec()
