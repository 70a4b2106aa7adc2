"""BatchNorm: tf.keras.layers.BatchNormalization(axis=-1) on (B, T, C) and (B, C)
(docs/KERAS_SEMANTICS.md §6), over several consecutive training calls.

A case draws `calls` (1-5) fresh batches: calls-1 training calls first, then on the
last batch the inference output, the training output and gradients, the moving
statistics, and the inference-mode ("frozen") output and gradients afterwards.
"""

from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from parity.blocking import around, kernel_constants
from parity.case import Bucket
from parity.compare import Tolerance
from parity.spec import SCALES, LayerSpec
from parity.spec_fields import Draw

# (offset, spread) of the inputs: ordinary data, a large common offset with a
# small spread (the case that breaks one-pass variance), and a larger negative
# offset (a float32 input's ulp there is 2e-3: E[x²] - E[x]² loses every digit).
INPUT_KINDS = {"normal": (0.0, 1.0), "offset": (1000.0, 0.01), "far_offset": (-3.0e4, 3.0)}
# Channels far apart: each channel shifted by N(0, 50) and spread by exp(U(-3, 3))
# (0.05 to 20), so that each must be normalised by its own statistics. Run by the
# sweep (BatchNormSpec.sweep_cases).
SPREAD_CHANNELS = "spread_channels"


class BatchNormSpec(LayerSpec):
    name = "batch_norm"
    layer_class = "BatchNorm"
    ranks = (2, 3)
    base_values = {"input_dim": 4}
    keras_fixed = {"axis": -1}  # nntk normalises the last axis
    draws = {
        # swept as described: the default, no update (1.0) and a full overwrite of the
        # moving statistics (0.0); drawn also at typical values and anywhere in [0, 1]
        "momentum": Draw(points=(0.9, 0.5)),
        # the default and a large one swept; drawn also at a small one and in [1e-6, 1]
        "epsilon": Draw(more=(0.1,), points=(1e-5,), within=(1e-6, 1.0)),
    }
    # Normalisation is elementwise after two reductions over N = B*T <= 128 values;
    # nntk accumulates the statistics in double. Keras float32 computes
    # x*inv + (beta - mean*inv), which cancels catastrophically for large offsets
    # (1000 +- 0.01: Keras float32 is off by ~1e-3 there; the referee is float64).
    tolerances = {
        "output": Tolerance(atol=1e-6, rtol=1e-5, reason="elementwise after double statistics"),
        "grad": Tolerance(atol=1e-5, rtol=1e-4, reason="sums over N = B*T <= 200 positions"),
        "state": Tolerance(atol=1e-6, rtol=1e-5, reason="a lerp of double-accumulated statistics"),
    }

    extra_options = {"inputs": tuple(INPUT_KINDS)}

    def extra_strategy(self, config):
        return st.fixed_dictionaries(
            {"calls": st.integers(1, 5), "inputs": st.sampled_from(tuple(INPUT_KINDS))}
        )

    def sweep_extra(self, config):
        return {"calls": 2, "inputs": "normal"}

    def sweep_cases(self):
        cases = super().sweep_cases()
        # The edges every profile runs: B*T = 1 (zero variance) and the large offset.
        first = cases[0]
        cases.append(
            type(first)(
                self.name,
                dict(self.base_config),
                1,
                1,
                3,
                101,
                "realistic",
                {"calls": 3, "inputs": "normal"},
            )
        )
        cases.append(
            type(first)(
                self.name,
                dict(self.base_config),
                4,
                6,
                3,
                102,
                "realistic",
                {"calls": 3, "inputs": "offset"},
            )
        )
        # Channels of very different offsets and spreads, and a long sequence: the
        # statistics of N = B*T = 200 positions (one batch: the fixture set's budget).
        cases.append(
            type(first)(
                self.name,
                {**self.base_config, "input_dim": 3},
                2,
                10,
                3,
                103,
                "realistic",
                {"calls": 2, "inputs": SPREAD_CHANNELS},
            )
        )
        cases.append(
            type(first)(
                self.name,
                {**self.base_config, "input_dim": 2},
                1,
                200,
                3,
                104,
                "realistic",
                {"calls": 2},
            )
        )
        return cases

    def extra_buckets(self):
        # channels around the block of the workspace-free inference path
        block = kernel_constants()["batch_norm_channel_block"]
        return Bucket.sizes(
            "input_dim", around([block]), lambda c: replace(c, rank=2, batch=2, steps=1)
        )

    def draw_input(self, case, rng):
        """`calls` batches stacked on a leading axis."""
        shape = (case.extra.get("calls", 1), *self.input_shape(case))
        if case.extra.get("inputs") == SPREAD_CHANNELS:
            channels = shape[-1]
            shift = rng.normal(0.0, 50.0, channels)
            spread = np.exp(rng.uniform(-3.0, 3.0, channels))
            return (shift + spread * rng.standard_normal(shape)).astype(np.float32)
        offset, spread = INPUT_KINDS[case.extra.get("inputs", "normal")]
        x = offset + spread * SCALES[case.scale] * rng.standard_normal(shape)
        return x.astype(np.float32)

    def call_input(self, x):
        return x[-1]

    def draw_weight(self, name, shape, scale, rng):
        if name == "gamma":
            return rng.uniform(0.5, 1.5, size=shape).astype(np.float32) * np.float32(scale)
        if name == "moving_variance":
            return rng.uniform(0.5, 2.0, size=shape).astype(np.float32)
        return super().draw_weight(name, shape, scale, rng)

    @staticmethod
    def _store_state_as_float32(tf, layer):
        """Rounds the moving statistics to float32 after each call, as nntk and Keras
        float32 store them between calls.

        The referee then carries the same stored state from call to call, and the
        inference-mode quantities are computed from it; the state itself is compared
        too (state:*). Without this the float64 referee's moving mean alone (e.g.
        1000.00312 where float32 stores 1000.00311) moves an inference output by
        |dmean| / sqrt(var + eps) ~ 1e-3 for inputs 1000 +- 0.01, which no float32
        implementation can reproduce."""
        for var in layer.non_trainable_weights:
            var.assign(tf.cast(tf.cast(var, tf.float32), var.dtype))

    def run_keras(self, tf, layer, x, upstream, states=()):
        for batch in x[:-1]:
            layer(tf.constant(batch), training=True)
            self._store_state_as_float32(tf, layer)
        quantities = super().run_keras(tf, layer, x[-1], upstream)
        self._store_state_as_float32(tf, layer)
        xt = tf.constant(x[-1])
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt, training=False)
        grads = tape.gradient(
            y,
            [xt] + list(layer.trainable_weights),
            output_gradients=tf.constant(upstream[0]),
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        quantities["output:frozen"] = y
        quantities["grad_frozen:input"] = grads[0]
        names = self.weight_names_of(layer.trainable_weights)
        for name, grad in zip(names, grads[1:], strict=True):
            quantities[f"grad_frozen:{name}"] = grad
        return quantities

    def run_native(self, layer, x, upstream, names, states=()):
        for batch in x[:-1]:
            layer(batch, training=True)
        quantities = super().run_native(layer, x[-1], upstream, names)
        quantities["output:frozen"] = layer(x[-1], training=False)
        dx, dweights = layer.backward(upstream[0])
        quantities["grad_frozen:input"] = dx
        trainable = [n for n, t in zip(names, layer.trainable_mask(), strict=True) if t]
        for name, grad in zip(trainable, dweights, strict=True):
            quantities[f"grad_frozen:{name}"] = grad
        return quantities

    def axis_names(self, quantity, config, ndim):
        if quantity.startswith(
            ("state:", "grad:gamma", "grad:beta", "grad_frozen:gamma", "grad_frozen:beta")
        ):
            return ("channel",)
        if ndim == 3:
            return ("b", "t", "channel")
        return ("b", "channel")


SPEC = BatchNormSpec()
