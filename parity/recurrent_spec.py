"""The shared spec of the recurrent layers (RNN, GRU, LSTM) and Bidirectional
(docs/KERAS_SEMANTICS.md §1-§4): the activations drawn, initial states, the list
forms of outputs and gradients, and error locations in gate terms."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from parity.blocking import around, boundaries, kernel_constants, tile_heights
from parity.case import Bucket, Case
from parity.compare import Tolerance
from parity.spec import LayerSpec
from parity.spec_fields import SMALL_SIZE, Draw, sizes

# The activations drawn are every described one but MORE_ACTIVATIONS and
# NEVER_ACTIVATIONS (ACTIVATION_DRAW), the gate functions these (GATE_DRAW): the ones
# that keep a 64-step recurrence bounded. Every Activation-layer function works
# natively.
RECURRENT_ACTIVATIONS = ("sigmoid", "hard_sigmoid", "tanh", "softsign")

# Gate functions with values in [0, 1] make every step a convex blend; the others
# (tanh, softsign: negative gates) and unbounded output activations let a recurrence
# grow without bound. Those "wild" configs are drawn at the realistic weight scale
# and T <= 16 only, where the exact result is still well-conditioned: with large
# weights over long sequences they are chaotic (the float64 result moves by more
# than the tolerance under 1-ulp input changes) and compare noise with noise.
BOUNDED_GATES = ("sigmoid", "hard_sigmoid")
# Functions never drawn, run once each by the sweep (RecurrentSpec.sweep_cases).
MORE_ACTIVATIONS = ("selu", "softplus", "gelu", "relu6", "leaky_relu", "softmax")
MORE_GATES = ("relu", "linear")
# Activations the recurrent specs do not run (they did not before the specs took
# their values from the description either): exponential, whose growth over 64
# steps overflows, and the tanh-approximated gelu. The Activation and Dense specs
# exercise both; running them here would add sweep cases and their fixtures.
NEVER_ACTIVATIONS = ("exponential", "gelu_approximate")
BOUNDED_ACTIVATIONS = ("tanh", "sigmoid", "hard_sigmoid", "softsign")
ACTIVATION_DRAW = Draw(without=(*MORE_ACTIVATIONS, *NEVER_ACTIVATIONS))
GATE_DRAW = Draw(values=RECURRENT_ACTIVATIONS)
# LSTM's unit_forget_bias sets only the initial bias (Keras's forget-gate ones),
# and the suite sets every weight itself: both values compute the same.
UNIT_FORGET_BIAS = Draw(fixed="only the initial bias, which every case sets")


def is_wild(config: dict) -> bool:
    gate = config.get("recurrent_activation")  # None: SimpleRNN has no gates
    return config["activation"] not in BOUNDED_ACTIVATIONS or gate not in (None, *BOUNDED_GATES)


# Real sequence lengths at batch 1 (>= 200 steps): many inference projection blocks
# of recurrent_projection_steps and a partial one (201 = 6·32 + 9).
LONG_STEPS = 201
# The recurrent kernels (units x gates·units floats each) of a shape bucket: a
# fixture stores them three times over (weights, float64 and float32 gradients: 16
# bytes a float), so column buckets whose kernels are larger are left out. Their
# boundary is covered by a spec with more gates (the same C function), the explicit
# large cases (`large_buckets`) and the Dense spec.
BUCKET_KERNEL_FLOATS = 3000

# Gradients through time: T <= 64 products of U <= 160 terms (T <= 201 at batch
# 1), with the weight gradients summed over B*T <= 512 steps (measured worst before
# the sizes grew from 32 to 160: 5.4% of this bound; see the commit for after).
TOLERANCES = {
    "output": Tolerance(atol=1e-5, rtol=1e-4, reason="T<=201 recurrent steps of float32 products"),
    "state": Tolerance(atol=1e-5, rtol=1e-4, reason="the last step of the recurrence"),
    "grad": Tolerance(atol=1e-5, rtol=1e-4, reason="BPTT over T<=201 steps, sums over B*T"),
}


class RecurrentSpec(LayerSpec):
    ranks = (3,)
    # Large draws at 2x Glorot: a gated recurrence over 64 steps with 3x weights is
    # mostly chaotic (its float64 result moves by ~1e-3 under 1-ulp input changes).
    scales = {"realistic": 1.0, "large": 2.0}
    batch_range = (1, 8)
    steps_range = (1, 64)
    n_states = 1  # h; LSTM: h, c
    gates = ("",)  # column blocks of the kernels, in Keras order
    tolerances = TOLERANCES
    base_values = {"units": 5, "input_dim": 4, "return_sequences": True}
    draws = {"activation": ACTIVATION_DRAW}

    # -- drawing ---------------------------------------------------------------------------
    def config_strategy(self):
        fields = self.field_strategies()
        del fields["units"], fields["input_dim"]

        def with_sizes(config):
            # Wild configs keep to small sizes too: a growing recurrence over more
            # terms amplifies float32 rounding beyond any input's ulp (measured: GRU,
            # linear activation, tanh gates, 26 units, 56 inputs, T=13: Keras float32
            # off by 0.14 and nntk by 0.26 on gradients of 20; the float64 result
            # barely moves under 1-ulp input changes). Bounded configs draw up to 160.
            size = st.integers(1, SMALL_SIZE) if is_wild(config) else sizes()
            return st.fixed_dictionaries({"units": size, "input_dim": size}).map(
                lambda drawn: {**drawn, **config}
            )

        return st.fixed_dictionaries(fields).flatmap(with_sizes)

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

    extra_options = {"initial_state": (True, False)}

    def sweep_cases(self):
        """The sweep, plus each activation outside the drawn sets once (the
        unbounded ones, and softmax: a row-wise function over the units, the one
        that shows rows and features swapped), the first ones with a gate function
        outside the drawn sets (relu, linear; GRU: reset_after in turn), short and
        realistic as `is_wild` keeps such configs (Bidirectional runs these specs'
        cells: not there); and the smallest layer (one unit, one feature, one
        step). Small (2 units, 2 features): the fixture set's budget."""
        cases = super().sweep_cases()
        smallest = self.case_with({"units": 1, "input_dim": 1}, seed=len(cases) + 1)
        cases.append(replace(smallest, batch=1, steps=1))
        if self.directions > 1:
            return cases
        turns = self.options.get("reset_after", (None,))
        for i, activation in enumerate(MORE_ACTIVATIONS):
            values = {"activation": activation, "units": 2, "input_dim": 2}
            if "recurrent_activation" in self.options and i < len(MORE_GATES):
                values["recurrent_activation"] = MORE_GATES[i]
                if turns[0] is not None:
                    values["reset_after"] = turns[i % len(turns)]
            cases.append(self.case_with(values, seed=len(cases) + 1))
        return cases

    def extra_strategy(self, config):
        return st.fixed_dictionaries({"initial_state": st.booleans()})

    def sweep_extra(self, config):
        return {"initial_state": True}

    # -- shape buckets at the kernels' boundaries (NNTKKernelConstants) ------------------
    def gates_count(self, config) -> int:
        return len(self.gates)

    def lean(self, case: Case, batch: int = 1, steps: int | None = None) -> Case:
        """A bucket case kept small: batch 1 (the panel and one-row paths), a
        sequence just long enough for the panels, two input features."""
        if steps is None:
            steps = kernel_constants()["recurrent_panel_min_steps"] + 1
        return replace(case, batch=batch, steps=steps, config={**case.config, "input_dim": 2})

    def extra_buckets(self):
        return (
            self.step_buckets() + self.row_buckets() + self.column_buckets() + self.large_buckets()
        )

    def step_buckets(self) -> list[Bucket]:
        """At batch 1, sequence lengths around the recurrent product's switch to
        panels and around the blocks of inference, and a real length."""
        panel_min = kernel_constants()["recurrent_panel_min_steps"]
        steps = sorted({*around([panel_min]), *around(self.step_blocks()), LONG_STEPS})
        return [
            Bucket.shape(
                f"B=1, T={t}", lambda c, t=t: c.batch == 1 and c.steps == t, batch=1, steps=t
            )
            for t in steps
        ]

    def row_buckets(self) -> list[Bucket]:
        """The recurrent product's rows: batch sizes around every table's tile height."""
        return [
            Bucket.shape(f"B={b}", lambda c, b=b: c.batch == b, batch=b)
            for b in around(tile_heights())
            if b <= self.batch_range[1]
        ]

    def column_buckets(self) -> list[Bucket]:
        """gates·units columns around every panel (the recurrent product at batch 1)
        and column tile (the input projection), at batch 1 with the panels on (small
        enough kernels only: BUCKET_KERNEL_FLOATS). With panels no product is wider
        than one panel, so row_cols does not apply; avx512 reads no panels (kernels.h,
        recurrent_panels): its one-row blocks of row_cols columns are Conv1D's kernel-product
        buckets (parity.blocking.kernel_products), and the fused cell's large bucket
        (4·65 LSTM columns) crosses its first."""
        gates = self.gates_count(self.base_config)
        columns = around(boundaries("recurrent_panel", "tile_cols"), step=gates)
        return Bucket.sizes(
            "units",
            [u for u in columns if self.directions * u * gates * u <= BUCKET_KERNEL_FLOATS],
            self.lean,
            ("B=1", lambda c: c.batch == 1),
        )

    def step_blocks(self) -> list[int]:
        """Sequence blocks of the layer's C code (steps)."""
        return [kernel_constants()["recurrent_projection_steps"]]

    directions = 1  # recurrent kernels per layer
    # The fused GRU/LSTM cells (kernels.h) work in blocks of cell_block units.
    has_fused_cell = False

    def large_buckets(self) -> list[Bucket]:
        """Few large cases, always present: a second block of the fused cell (units
        one above cell_block; every smaller case is one partial block), which also
        puts an LSTM's 4·units columns above the K block of its backward products."""
        if not self.has_fused_cell:
            return []
        units = [n for n in around(boundaries("cell_block")) if n > max(boundaries("cell_block"))]
        return Bucket.sizes("units", units, self.lean, ("B=1", lambda c: c.batch == 1))

    def draw_states(self, case, rng):
        if not case.extra.get("initial_state"):
            return []
        shape = (case.batch, case.config["units"])
        return [(0.5 * rng.standard_normal(shape)).astype(np.float32) for _ in range(self.n_states)]

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
