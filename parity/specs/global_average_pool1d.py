"""GlobalAveragePool1d: tf.keras.layers.GlobalAveragePooling1D (channels_last) on
(B, T, C): the mean over the steps, y (B, C), or (B, 1, C) with keepdims."""

from parity.compare import Tolerance
from parity.spec import SCALES, LayerSpec


class GlobalAveragePool1dSpec(LayerSpec):
    name = "global_average_pool1d"
    layer_class = "GlobalAveragePool1d"
    ranks = (3,)  # Keras's global pooling takes (B, T, C) only
    base_values = {"input_dim": 4}
    # nntk sums the T <= 16 steps in double and divides once; Keras float32 sums in
    # float32 (a few ulp of the largest term), the referee is float64. The input
    # gradient d_out/T is one float32 division on both sides.
    tolerances = {
        "output": Tolerance(atol=1e-6, rtol=1e-6, reason="a mean of T <= 16 values, one rounding"),
        "grad": Tolerance(atol=1e-7, rtol=1e-6, reason="d_out / T: one float32 division"),
    }

    def draw_input(self, case, rng):
        x = rng.standard_normal(self.input_shape(case)) * SCALES[case.scale]
        return x.astype("float32")

    def axis_names(self, quantity, config, ndim):
        if quantity.startswith("grad:input"):
            return ("b", "t", "channel")
        return ("b", "t", "channel") if ndim == 3 else ("b", "channel")


SPEC = GlobalAveragePool1dSpec()
