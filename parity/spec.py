"""LayerSpec: how the suite sees a layer.

A spec is data plus a few hooks. From the layer's description (parity/spec_fields.py)
it takes its config fields, base config, option values and tf.keras arguments; it
states what is about testing: the draws that matter (`draws`, the sizes and shapes),
how to build the tf.keras twin where that is not mechanical, names for the axes of
every quantity (so a failure reads `kernel grad [in=3, unit=7]`), and a declared
tolerance with its reason for every quantity. The generic machinery (runner, tests,
CLI) does the rest. Its cases are parity/case.py's, its explicit sweep
parity/sweep.py's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from parity.case import Case
from parity.compare import Tolerance
from parity.spec_fields import (
    Argument,
    Draw,
    field_strategy,
    keras_arguments,
    layer_arguments,
    swept_values,
)
from parity.sweep import Sweep

# Weight draws: Glorot-like at the realistic scale, with a share of larger draws
# to stress saturation and growth. Hypothesis shrinks toward the first entry.
SCALES: dict[str, float] = {"realistic": 1.0, "large": 3.0}


def float32_range(quantities: dict[str, Any]) -> dict[str, Any]:
    """Keras quantities with every value too large for float32 made ±inf. The float64
    referee has the wider range: exp(88.7229) = 3.4028245e38 is finite there, but
    every float32 implementation (IEEE rounding) must give inf. A no-op for float32."""
    out = {}
    for name, value in quantities.items():
        array = np.asarray(value)
        if array.dtype == np.float64:
            with np.errstate(over="ignore"):
                narrow = array.astype(np.float32)
            array = np.where(np.isinf(narrow) & np.isfinite(array), narrow, array)
        out[name] = array
    return out


class LayerSpec(Sweep):
    """Base spec. A subclass names its layer (`name`, `layer_class`), says what its
    test needs (`base_values`, `draws`, `tolerances`) and overrides hooks where its
    layer differs from a one-input one-output layer."""

    name: str = ""  # registry key and case-id prefix, e.g. "dense"
    layer_class: str = ""  # the nntk_core class it covers, e.g. "Dense"
    ranks: tuple[int, ...] = (2, 3)  # input ranks to draw
    batch_range: tuple[int, int] = (1, 8)
    steps_range: tuple[int, int] = (1, 16)
    # The base config's values where the description has no default (units) or the
    # test starts elsewhere (Dense at tanh): the sweep varies one option at a time
    # from it.
    base_values: dict[str, Any] = {}
    # What the test says about a field, where the description's values are not what
    # it wants (spec_fields.Draw): the others are drawn and swept as described.
    draws: dict[str, Draw] = {}
    # Weight-draw regimes (name -> multiple of the Glorot-like draw).
    scales: dict[str, float] = SCALES
    # Tolerances by quantity prefix ("output", "grad:input", "grad:kernel", "grad",
    # "state"): the longest matching prefix wins. Each with its reason.
    tolerances: dict[str, Tolerance] = {}

    # -- the layer's arguments, from its description ---------------------------------------
    def arguments(self) -> list[Argument]:
        """The layer's constructor arguments (a wrapper's spec adds its inner layer's)."""
        return layer_arguments(self.layer_class)

    def drawn_arguments(self) -> list[Argument]:
        """The arguments a case's config holds: all but those the spec holds fixed."""
        if "_drawn" not in self.__dict__:
            arguments = self.arguments()
            names = {a.name for a in arguments}
            for attribute in ("draws", "base_values"):
                unknown = set(getattr(self, attribute)) - names
                if unknown:
                    raise ValueError(
                        f"spec {self.name!r}: {attribute} names {sorted(unknown)}, which "
                        f"{self.layer_class} does not take (it takes {sorted(names)})"
                    )
            self.__dict__["_drawn"] = [a for a in arguments if not self.draw_of(a.name).fixed]
        return self.__dict__["_drawn"]

    def draw_of(self, name: str) -> Draw:
        return self.draws.get(name, Draw())

    @property
    def options(self) -> dict[str, tuple]:
        """The option values every run must exercise (attribute coverage): each drawn
        argument's swept values, and `rank` where the spec draws several."""
        if "_options" not in self.__dict__:
            options = {}
            for argument in self.drawn_arguments():
                values = swept_values(self.name, argument, self.draw_of(argument.name))
                if values:
                    options[argument.name] = values
            if len(self.ranks) > 1:
                options["rank"] = tuple(self.ranks)
            self.__dict__["_options"] = options
        return self.__dict__["_options"]

    @property
    def base_config(self) -> dict[str, Any]:
        """A typical config: the described defaults, with the spec's `base_values`."""
        config = {}
        for argument in self.drawn_arguments():
            if argument.name in self.base_values:
                config[argument.name] = self.base_values[argument.name]
            elif argument.required:
                raise ValueError(
                    f"spec {self.name!r}: {argument.name} has no default: give it in base_values"
                )
            else:
                config[argument.name] = argument.default
        return config

    # -- what is drawn -----------------------------------------------------------------
    def field_strategies(self) -> dict[str, st.SearchStrategy]:
        """How hypothesis draws each argument of the config (spec_fields.field_strategy)."""
        return {
            a.name: field_strategy(self.name, a, self.draw_of(a.name))
            for a in self.drawn_arguments()
        }

    def config_strategy(self) -> st.SearchStrategy[dict]:
        """Every drawn argument, made valid where they interact (adjust_sweep_config)."""
        return st.fixed_dictionaries(self.field_strategies()).map(self.adjust_sweep_config)

    def case_strategy(self) -> st.SearchStrategy[Case]:
        @st.composite
        def cases(draw):
            config = draw(self.config_strategy())
            rank = draw(st.sampled_from(self.ranks))
            batch = draw(st.integers(*self.batch_range))
            steps = draw(self.steps_strategy(config)) if rank == 3 else 1
            seed = draw(st.integers(0, 2**31 - 1))
            scale = draw(self.scale_strategy(config))
            extra = draw(self.extra_strategy(config))
            return Case(self.name, config, batch, steps, rank, seed, scale, extra)

        return cases()

    def extra_strategy(self, config: dict) -> st.SearchStrategy[dict]:
        """Spec-specific draws stored in Case.extra (none by default)."""
        return st.just({})

    def scale_strategy(self, config: dict) -> st.SearchStrategy[str]:
        """Weight-draw regimes for a config (a spec may keep some configs realistic)."""
        return st.sampled_from(list(self.scales))

    def steps_strategy(self, config: dict) -> st.SearchStrategy[int]:
        """Sequence lengths to draw for a config (a layer may need a minimum)."""
        return st.integers(*self.steps_range)

    def call_input(self, x: np.ndarray) -> np.ndarray:
        """One call's input, given the drawn input (a spec drawing several batches at
        once stacks them on a leading axis and returns the last)."""
        return x

    def call_input_shape(self, x: np.ndarray) -> tuple[int, ...]:
        return self.call_input(x).shape

    def input_features(self, config: dict) -> int:
        return config["input_dim"]

    def input_shape(self, case: Case) -> tuple[int, ...]:
        features = self.input_features(case.config)
        if case.rank == 3:
            return (case.batch, case.steps, features)
        return (case.batch, features)

    def draw_input(self, case: Case, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal(self.input_shape(case)).astype(np.float32)

    def draw_weight(
        self, name: str, shape: tuple[int, ...], scale: float, rng: np.random.Generator
    ) -> np.ndarray:
        """Glorot-uniform-like for matrices (fan_in = shape[-2]·taps, fan_out = shape[-1]);
        uniform(-0.5, 0.5) for vectors; times the case's scale."""
        if len(shape) >= 2:
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
            limit = np.sqrt(6.0 / (fan_in + fan_out))
        else:
            limit = 0.5
        return (rng.uniform(-limit, limit, size=shape) * scale).astype(np.float32)

    # -- the two implementations ---------------------------------------------------------
    def build_keras(
        self, keras, config: dict, dtype: str, input_shape: tuple, initialized: bool = True
    ):
        """The tf.keras twin in `dtype`, built for `input_shape` ((None, ..., features)).
        `initialized=False`: its weights start as zeros instead of its initializers' draws,
        for a caller that sets every weight before any call (the live gate's twins: the
        draws, the orthogonal initializer's QR most, were ~17 % of building them all)."""
        layer = self.keras_layer(keras, config, dtype)
        if not initialized:
            zeros = keras.initializers.Zeros()
            # the layer, its cells, a wrapper's inner layers: where Keras keeps them
            for part in layer._flatten_layers():
                for name, value in list(vars(part).items()):
                    if name.endswith("_initializer") and isinstance(
                        value, keras.initializers.Initializer
                    ):
                        setattr(part, name, zeros)
        layer.build(input_shape)
        return layer

    def keras_layer(self, keras, config: dict, dtype: str):
        """The tf.keras twin: the described tf.keras class with the config's arguments
        (and `keras_fixed`). A spec overrides it where the twin is not one class."""
        cls = getattr(keras.layers, self.keras_class_name())
        arguments = keras_arguments(keras, self.drawn_arguments(), config)
        return cls(**arguments, **self.keras_fixed, dtype=dtype)

    # tf.keras arguments the twin always takes (BatchNormalization's axis=-1: nntk
    # normalises the last axis).
    keras_fixed: dict[str, Any] = {}

    def keras_class_name(self) -> str:
        import nntk_core

        return nntk_core.LAYER_CLASSES[self.layer_class].layer_type.keras_name

    def build_native(self, nn, config: dict):
        """The nntk layer: its class with the config (the config holds its arguments)."""
        return getattr(nn, self.layer_class)(**config)

    def weight_names(self, keras_layer) -> list[str]:
        """Names of the Keras layer's weights in get_weights() order."""
        return self.weight_names_of(keras_layer.weights)

    def output_names(self, config: dict, count: int) -> list[str]:
        """Names of the layer's outputs (one for most layers)."""
        return ["output"] if count == 1 else [f"output{i}" for i in range(count)]

    def draw_states(self, case: Case, rng: np.random.Generator) -> list[np.ndarray]:
        """Extra inputs of the call (a recurrent layer's initial state); none by default."""
        return []

    def run_keras(
        self, tf, layer, x: np.ndarray, upstream: list[np.ndarray], states=()
    ) -> dict[str, Any]:
        """Every quantity of the tf.keras side: the inference output, then under a
        GradientTape the training output and the gradients of x and of every trainable
        weight for `upstream`, then the non-trainable weights after the training call."""
        xt = tf.constant(x)
        outputs = tf.nest.flatten(layer(xt, training=False))
        names = self.output_names(layer.get_config(), len(outputs))
        quantities: dict[str, Any] = {
            f"{n}:inference": y for n, y in zip(names, outputs, strict=True)
        }
        with tf.GradientTape() as tape:
            tape.watch(xt)
            outputs = tf.nest.flatten(layer(xt, training=True))
        quantities.update({f"{n}:training": y for n, y in zip(names, outputs, strict=True)})
        sources = [xt] + list(layer.trainable_weights)
        grads = tape.gradient(
            outputs,
            sources,
            output_gradients=[tf.constant(u) for u in upstream],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        quantities["grad:input"] = grads[0]
        for name, grad in zip(
            self.weight_names_of(layer.trainable_weights), grads[1:], strict=True
        ):
            quantities[f"grad:{name}"] = grad
        for name, var in zip(
            self.weight_names_of(layer.non_trainable_weights),
            layer.non_trainable_weights,
            strict=True,
        ):
            quantities[f"state:{name}"] = var.numpy()  # a snapshot, not the live variable
        return quantities

    def run_native(
        self, layer, x: np.ndarray, upstream: list[np.ndarray], names: list[str], states=()
    ):
        """The same quantities from the nntk layer. `names` are the Keras weight names."""
        outputs = layer(x, training=False)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        out_names = self.output_names({}, len(outputs))
        quantities: dict[str, Any] = {
            f"{n}:inference": y for n, y in zip(out_names, outputs, strict=True)
        }
        outputs = layer(x, training=True)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        quantities.update({f"{n}:training": y for n, y in zip(out_names, outputs, strict=True)})
        dx, dweights = layer.backward(upstream if len(upstream) > 1 else upstream[0])
        quantities["grad:input"] = dx
        mask = layer.trainable_mask()
        trainable = [n for n, t in zip(names, mask, strict=True) if t]
        for name, grad in zip(trainable, dweights, strict=True):
            quantities[f"grad:{name}"] = grad
        for name, value, t in zip(names, layer.get_weights(), mask, strict=True):
            if not t:
                quantities[f"state:{name}"] = value
        return quantities

    def weight_names_of(self, variables) -> list[str]:
        """Names of Keras variables: the last path component ("dense/kernel:0" -> "kernel")."""
        return [v.name.split("/")[-1].split(":")[0] for v in variables]

    # -- reading results -------------------------------------------------------------------
    def axis_names(self, quantity: str, config: dict, ndim: int) -> tuple[str, ...]:
        """Names of the axes of a quantity, for locating an element in layer terms."""
        if quantity.startswith(("output", "grad:input")):
            last = "in" if quantity.startswith("grad:input") else "unit"
            return ("b", "t", last)[-ndim:] if ndim == 3 else ("b", last)[-ndim:]
        return tuple(f"axis{i}" for i in range(ndim))

    def locate(self, quantity: str, index: tuple[int, ...], config: dict) -> str:
        """`kernel grad [in=3, unit=7]`-style description of an element."""
        names = self.axis_names(quantity, config, len(index))
        label = quantity
        if quantity.startswith("grad:"):
            label = f"{quantity[5:]} grad"
        elif quantity.startswith("state:"):
            label = quantity[6:]
        inside = ", ".join(f"{n}={i}" for n, i in zip(names, index, strict=False))
        return f"{label} [{inside}]"

    def tolerance(self, quantity: str) -> Tolerance:
        best = ""
        for prefix in self.tolerances:
            if quantity.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        if not best:
            raise KeyError(f"spec {self.name!r} declares no tolerance for {quantity!r}")
        return self.tolerances[best]
