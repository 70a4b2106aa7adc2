"""LayerNorm: tf.keras.layers.LayerNormalization(axis=-1) on (B, T, C) and (B, C):
each position normalised over its own C channels.

Where Keras surprises: over one channel (input_dim 1) x - mean is 0, so the output
is beta and the input and gamma gradients are 0. Keras float32 gives exactly beta
only on its fused path (epsilon >= 1.001e-5); below that it computes
x*inv + (beta - mean*inv), which cancels (epsilon 1e-6: errors ~1e-4), so the
epsilon option includes 1e-6 and the float64 referee is the judge."""

import numpy as np
from hypothesis import strategies as st

from parity.case import Bucket
from parity.compare import Tolerance
from parity.spec import SCALES, LayerSpec
from parity.spec_fields import Draw

# (offset, spread) of the inputs: ordinary data, and a large common offset with a
# small spread (one-pass variance loses every digit there).
INPUT_KINDS = {"normal": (0.0, 1.0), "offset": (1000.0, 0.01)}


class LayerNormSpec(LayerSpec):
    name = "layer_norm"
    layer_class = "LayerNorm"
    ranks = (2, 3)
    base_values = {"input_dim": 4}
    keras_fixed = {"axis": -1}  # nntk normalises the last axis
    # epsilon swept at the default, below Keras's fused-path limit 1.001e-5 and a
    # large one; drawn also anywhere in [1e-6, 1]
    draws = {"epsilon": Draw(more=(1e-6, 0.1), within=(1e-6, 1.0))}
    extra_options = {"inputs": tuple(INPUT_KINDS)}
    # nntk takes each position's statistics over C <= 160 channels in double and
    # rounds once; the weight gradients sum over N = B*T <= 128 positions in double.
    # Keras float32 is the less exact side (its fused path computes in float32).
    tolerances = {
        "output": Tolerance(atol=1e-7, rtol=1e-6, reason="one rounding after double statistics"),
        "grad": Tolerance(
            atol=1e-6, rtol=1e-5, reason="double sums over C <= 160 channels, N <= 128 positions"
        ),
    }

    def extra_strategy(self, config):
        return st.fixed_dictionaries({"inputs": st.sampled_from(tuple(INPUT_KINDS))})

    def sweep_extra(self, config):
        return {"inputs": "normal"}

    def extra_buckets(self):
        return [Bucket.config("input_dim", 1)]  # one channel: y = beta, zero gradients

    def draw_input(self, case, rng):
        offset, spread = INPUT_KINDS[case.extra.get("inputs", "normal")]
        x = offset + spread * SCALES[case.scale] * rng.standard_normal(self.input_shape(case))
        return x.astype(np.float32)

    def draw_weight(self, name, shape, scale, rng):
        if name == "gamma":
            return rng.uniform(0.5, 1.5, size=shape).astype(np.float32) * np.float32(scale)
        return super().draw_weight(name, shape, scale, rng)

    def axis_names(self, quantity, config, ndim):
        if quantity.startswith(("grad:gamma", "grad:beta")):
            return ("channel",)
        return ("b", "t", "channel") if ndim == 3 else ("b", "channel")


SPEC = LayerNormSpec()
