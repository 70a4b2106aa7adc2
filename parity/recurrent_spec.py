"""The shared spec of the recurrent layers (RNN, GRU, LSTM) and Bidirectional
(docs/KERAS_SEMANTICS.md §1-§4): options, initial states, the list forms of outputs
and gradients, and error locations in gate terms."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from parity.compare import Tolerance
from parity.spec import LayerSpec
from parity.specs.dense import keras_activation

# Activations drawn for the layer's output and for its gates. Every Activation-layer
# function works natively; these are the ones that keep a 64-step recurrence bounded
# (exponential, softplus-like growth and softmax over units are exercised by the
# Activation and Dense specs).
ACTIVATIONS = ("tanh", "relu", "sigmoid", "hard_sigmoid", "linear", "softsign", "elu", "swish")
RECURRENT_ACTIVATIONS = ("sigmoid", "hard_sigmoid", "tanh", "softsign")

# Gate functions with values in [0, 1] make every step a convex blend; the others
# (tanh, softsign: negative gates) and unbounded output activations let a recurrence
# grow without bound. Those "wild" configs are drawn at the realistic weight scale
# and T <= 16 only, where the exact result is still well-conditioned: with large
# weights over long sequences they are chaotic (the float64 result moves by more
# than the tolerance under 1-ulp input changes) and compare noise with noise.
BOUNDED_GATES = ("sigmoid", "hard_sigmoid")
BOUNDED_ACTIVATIONS = ("tanh", "sigmoid", "hard_sigmoid", "softsign")


def is_wild(config: dict) -> bool:
    return (
        config["activation"] not in BOUNDED_ACTIVATIONS
        or config.get("recurrent_activation", "sigmoid") not in BOUNDED_GATES
    )


FLAGS = ("use_bias", "return_sequences", "go_backwards", "return_state")

# Gradients through time: T <= 64 products of U <= 32 terms, with the weight
# gradients summed over B*T <= 512 steps (measured worst: 5.4% of this bound).
TOLERANCES = {
    "output": Tolerance(atol=1e-5, rtol=1e-4, reason="T<=64 recurrent steps of float32 products"),
    "state": Tolerance(atol=1e-5, rtol=1e-4, reason="the last step of the recurrence"),
    "grad": Tolerance(atol=1e-5, rtol=1e-4, reason="BPTT over T<=64 steps, sums over B*T"),
}


class RecurrentSpec(LayerSpec):
    ranks = (3,)
    # Large draws at 2x Glorot: a gated recurrence over 64 steps with 3x weights is
    # mostly chaotic (its float64 result moves by ~1e-3 under 1-ulp input changes).
    scales = {"realistic": 1.0, "large": 2.0}
    batch_range = (1, 8)
    steps_range = (1, 64)
    keras_class = ""  # "SimpleRNN", "GRU", "LSTM"
    n_states = 1  # h; LSTM: h, c
    gates = ("",)  # column blocks of the kernels, in Keras order
    has_recurrent_activation = False
    tolerances = TOLERANCES

    # -- drawing ---------------------------------------------------------------------------
    def config_strategy(self):
        fields = {
            "units": st.integers(1, 32),
            "input_dim": st.integers(1, 32),
            "activation": st.sampled_from(ACTIVATIONS),
            **{flag: st.booleans() for flag in FLAGS},
        }
        if self.has_recurrent_activation:
            fields["recurrent_activation"] = st.sampled_from(RECURRENT_ACTIVATIONS)
        fields.update(self.more_options())
        return st.fixed_dictionaries(fields)

    def more_options(self) -> dict:
        return {}

    def steps_strategy(self, config):
        # Mostly short sequences (fast, and where off-by-one bugs show), some long.
        if is_wild(config):
            return st.integers(1, 16)
        # Three in four sequences short; the longest length is also a coverage bucket.
        short = st.integers(1, 12)
        return st.one_of(short, short, short, st.integers(13, self.steps_range[1]))

    def scale_strategy(self, config):
        if is_wild(config):
            return st.just("realistic")
        return super().scale_strategy(config)

    def extra_strategy(self, config):
        return st.fixed_dictionaries({"initial_state": st.booleans()})

    def sweep_extra(self, config):
        return {"initial_state": True}

    def draw_states(self, case, rng):
        if not case.extra.get("initial_state"):
            return []
        shape = (case.batch, case.config["units"])
        return [(0.5 * rng.standard_normal(shape)).astype(np.float32) for _ in range(self.n_states)]

    # -- building --------------------------------------------------------------------------
    def keras_kwargs(self, keras, config) -> dict:
        kwargs = {
            "activation": keras_activation(keras, config["activation"]),
            **{flag: config[flag] for flag in FLAGS},
        }
        if self.has_recurrent_activation:
            kwargs["recurrent_activation"] = keras_activation(keras, config["recurrent_activation"])
        return kwargs

    def build_keras(self, keras, config, dtype, input_shape):
        layer = getattr(keras.layers, self.keras_class)(
            config["units"], dtype=dtype, **self.keras_kwargs(keras, config)
        )
        layer.build(input_shape)
        return layer

    def native_kwargs(self, config) -> dict:
        kwargs = {"activation": config["activation"], **{flag: config[flag] for flag in FLAGS}}
        if self.has_recurrent_activation:
            kwargs["recurrent_activation"] = config["recurrent_activation"]
        return kwargs

    def build_native(self, nn, config):
        cls = getattr(nn, self.layer_class)
        return cls(config["units"], input_dim=config["input_dim"], **self.native_kwargs(config))

    # -- running ---------------------------------------------------------------------------
    def output_names_of(self, layer) -> list[str]:
        """Names of everything a call with return_state returns (Keras or nntk layer)."""
        return ["output", *self.state_names_of(layer, "state")]

    def state_names_of(self, layer, prefix: str) -> list[str]:
        return [f"{prefix}_{n}" for n in ("h", "c")[: self.n_states]]

    def run_keras(self, tf, layer, x, upstream, states=()):
        xt = tf.constant(x)
        initial = [tf.constant(s) for s in states] or None
        names = self.output_names_of(layer)
        quantities = {}
        with tf.GradientTape() as tape:
            tape.watch(xt)
            for s in initial or []:
                tape.watch(s)
            outputs = tf.nest.flatten(layer(xt, initial_state=initial, training=True))
        # Without dropout a tf.keras recurrent layer computes the same in both modes
        # (docs/KERAS_SEMANTICS.md §1: `training` only matters when dropout > 0), so the
        # Keras side is run once (the slowest part of a case); nntk's inference and
        # training calls are both run and each compared with it.
        for mode in ("inference", "training"):
            quantities.update({f"{n}:{mode}": y for n, y in zip(names, outputs, strict=False)})
        sources = [xt] + list(initial or []) + list(layer.trainable_weights)
        grads = tape.gradient(
            outputs,
            sources,
            output_gradients=[tf.constant(u) for u in upstream],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        quantities["grad:input"] = grads[0]
        n_init = len(initial or [])
        initial_names = self.state_names_of(layer, "initial")
        for name, grad in zip(initial_names[:n_init], grads[1 : 1 + n_init], strict=True):
            quantities[f"grad:{name}"] = grad
        weight_names = self.weight_names_of(layer.trainable_weights)
        for name, grad in zip(weight_names, grads[1 + n_init :], strict=True):
            quantities[f"grad:{name}"] = grad
        return quantities

    def run_native(self, layer, x, upstream, names, states=()):
        initial = list(states) or None
        out_names = self.output_names_of(layer)
        quantities = {}
        for mode, training in (("inference", False), ("training", True)):
            outputs = layer(x, training=training, initial_state=initial)
            outputs = outputs if isinstance(outputs, list) else [outputs]
            quantities.update({f"{n}:{mode}": y for n, y in zip(out_names, outputs, strict=False)})
        result = layer.backward(list(upstream) if len(upstream) > 1 else upstream[0])
        quantities["grad:input"] = result[0]
        for name, grad in zip(names, result[1], strict=True):
            quantities[f"grad:{name}"] = grad
        if initial is not None:
            initial_names = self.state_names_of(layer, "initial")
            for name, grad in zip(initial_names, result[2], strict=True):
                quantities[f"grad:{name}"] = grad
        return quantities

    # -- reading ---------------------------------------------------------------------------
    def locate_column(self, column: int, units: int) -> str:
        gate, unit = divmod(column, units)
        if len(self.gates) == 1:
            return f"unit={unit}"
        return f"gate={self.gates[gate]}, unit={unit}"

    def locate(self, quantity, index, config):
        units = config["units"]
        weight = quantity.split(":", 1)[1]
        direction = ""
        if weight.startswith(("forward_", "backward_")):
            direction, weight = weight.split("_", 1)
            direction = f"direction={direction}, "
        if quantity.startswith("grad:") and weight in ("kernel", "recurrent_kernel", "bias"):
            where = self.locate_column(index[-1], units)
            if weight == "kernel":
                rows = f"in={index[0]}, "
            elif weight == "recurrent_kernel":
                rows = f"row={index[0]}, "
            else:
                rows = f"{('input', 'recurrent')[index[0]]} bias, " if len(index) == 2 else ""
            return f"{weight} grad [{direction}{rows}{where}]"
        if quantity.startswith("grad:initial"):
            return f"{quantity[5:]} grad [b={index[0]}, unit={index[1]}]"
        if quantity.startswith("state"):
            return f"{quantity} [b={index[0]}, unit={index[1]}]"
        if quantity.startswith("grad:input"):
            names = ("b", "t", "in")
        else:
            names = ("b", "t", "unit") if len(index) == 3 else ("b", "unit")
        inside = ", ".join(f"{n}={i}" for n, i in zip(names, index, strict=False))
        return f"{quantity} [{direction}{inside}]"
