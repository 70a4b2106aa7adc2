"""Activation: tf.keras.layers.Activation(name) (docs/KERAS_SEMANTICS.md §8)."""

import numpy as np
from hypothesis import strategies as st

from parity.case import Bucket
from parity.compare import Tolerance
from parity.spec import SCALES, LayerSpec

# Points where an activation has a kink or switches formula: TF's gradient
# conventions there (relu'(0) = 0, hard_sigmoid'(±2.5) = 0.2, relu6'(6) = 0,
# elu'(0) = 1, leaky_relu'(0) = alpha) and softplus's thresholds (±13.94).
_KINKS = [0.0, 2.5, -2.5, 6.0, -6.0, 13.9424, -13.9424, 16.6355, -16.6355]


def _either_side(x: float) -> list[float]:
    """The float32 values just below, at and just above x."""
    at = np.float32(x)
    return [float(np.nextafter(at, -np.inf)), float(at), float(np.nextafter(at, np.inf))]


# Where a naive formula breaks: exp overflows above log(FLT_MAX) (exponential, and
# softplus, sigmoid, elu, selu, swish written with exp(±x)); exp's result turns
# subnormal below log(FLT_MIN); ±100 for the tails of every function (and a
# softmax row whose logits lie over 100 apart).
# TF's float32 sigmoid (core/vmath.h, Eigen's kernel) is 0 below -104: either side of it.
# (Its tanh clamps the argument at ±7.90738964, which every value from ±13.94 on passes;
# no value is placed at the clamp itself: TF's float32 tanh is already exactly 1 there,
# so its derivative is 0 where the float64 referee's is 5.5e-7: times an upstream
# gradient above 2, over the gradient's atol. A property of TF's float32 tanh, which
# nntk's equals; measured in a live run, 1.13e-6 against atol 1e-6.)
_FINFO = np.finfo(np.float32)
OVERFLOW = float(np.log(_FINFO.max))  # 88.72284
UNDERFLOW = float(np.log(_FINFO.tiny))  # -87.33655
SIGMOID_ZERO_BELOW = -104.0
_EDGES = [
    *(sign * v for v in _either_side(OVERFLOW) for sign in (1.0, -1.0)),
    *_either_side(UNDERFLOW),
    *_either_side(SIGMOID_ZERO_BELOW),
    *(sign * v for v in (20.0, 50.0, 100.0) for sign in (1.0, -1.0)),
]
KINKS = np.array(_KINKS + _EDGES, np.float32)


class ActivationSpec(LayerSpec):
    name = "activation"
    layer_class = "Activation"
    ranks = (2, 3)
    base_values = {"activation": "tanh", "input_dim": 6}
    tolerances = {
        "output": Tolerance(
            atol=1e-6, rtol=1e-5, reason="one libm float32 function per element (<= a few ulp)"
        ),
        "grad": Tolerance(
            atol=1e-6,
            rtol=1e-5,
            reason="derivative from the forward value: a few float32 ulp per element",
        ),
    }

    extra_options = {"kinks": (True, False)}

    def extra_strategy(self, config):
        return st.fixed_dictionaries({"kinks": st.booleans()})

    def sweep_extra(self, config):
        return {"kinks": True}

    def draw_input(self, case, rng):
        """Inputs over the interesting range (N(0, 3), or N(0, 9) at the large scale);
        with `kinks`, every kink, threshold and overflow point once (as many as the
        input holds) at random places, and a fifth of the rest at such points too
        (so a softmax row mixes logits over 100 apart)."""
        x = rng.standard_normal(self.input_shape(case)) * 3.0 * SCALES[case.scale]
        if case.extra.get("kinks"):
            flat = x.reshape(-1)
            at_kink = rng.random(flat.shape) < 0.2
            flat[at_kink] = rng.choice(KINKS, size=int(at_kink.sum()))
            count = min(len(KINKS), flat.size)
            flat[rng.choice(flat.size, count, replace=False)] = rng.permutation(KINKS)[:count]
        return x.astype(np.float32)

    def extra_buckets(self):
        return [Bucket.config("input_dim", 1)]  # softmax over one feature: 1, zero gradient

    def run_keras(self, tf, layer, x, upstream, states=()):
        """The exponential's gradient is dy·y with y = exp(x) (Keras, nntk): where y
        overflows float32 (x >= log(FLT_MAX)) it is dy·inf in float32 even when the
        float64 referee's dy·exp(x) would fit (exp(88.72284)·0.74 = 2.5e38), so
        there the referee's gradient is dy·inf too (nan where dy = 0, as Keras)."""
        quantities = super().run_keras(tf, layer, x, upstream, states)
        if layer.get_config()["activation"] == "exponential":
            y = np.asarray(quantities["output:training"])
            with np.errstate(over="ignore", invalid="ignore"):
                y32 = y.astype(np.float32)  # what float32 gives (the referee's y is mapped
                overflowed = np.isinf(y32) & np.isfinite(np.asarray(x, np.float64))  # later)
                quantities["grad:input"] = np.where(
                    overflowed, y32.astype(y.dtype) * upstream[0], quantities["grad:input"]
                )
        return quantities

    def axis_names(self, quantity, config, ndim):
        names = ("b", "t", "feature") if ndim == 3 else ("b", "feature")
        return names


SPEC = ActivationSpec()
