"""GlobalMaxPool1d: tf.keras.layers.GlobalMaxPooling1D (channels_last) on (B, T, C):
the maximum over the steps, y (B, C), or (B, 1, C) with keepdims.

The input gradient is tf.reduce_max's: d_out is shared equally by every step that
attains the maximum (ties), so the `ties` inputs (small whole numbers: many equal
values per channel) check the sharing, and the plain ones the usual single winner."""

import numpy as np
from hypothesis import strategies as st

from parity.compare import Tolerance
from parity.spec import SCALES, LayerSpec, sizes


class GlobalMaxPool1dSpec(LayerSpec):
    name = "global_max_pool1d"
    layer_class = "GlobalMaxPool1d"
    ranks = (3,)  # Keras's global pooling takes (B, T, C) only
    base_config = {"input_dim": 4, "keepdims": False}
    options = {"keepdims": (False, True)}
    extra_options = {"ties": (True, False)}
    # The output is an input element (exact). The gradient is float32(1/n)·d_out in
    # Keras and nntk; the float64 referee's 1/n·d_out differs by a float32 rounding.
    tolerances = {
        "output": Tolerance(
            atol=1e-12, rtol=0.0, reason="exact: the maximum is one of the inputs (atol > 0: 0/0)"
        ),
        "grad": Tolerance(atol=1e-7, rtol=1e-6, reason="float32(1/n)·d_out: two roundings"),
    }

    def config_strategy(self):
        return st.fixed_dictionaries({"input_dim": sizes(), "keepdims": st.booleans()})

    def extra_strategy(self, config):
        return st.fixed_dictionaries({"ties": st.booleans()})

    def sweep_extra(self, config):
        return {"ties": True}

    def draw_input(self, case, rng):
        shape = self.input_shape(case)
        if case.extra.get("ties"):
            return rng.integers(-2, 3, size=shape).astype(np.float32)
        return (rng.standard_normal(shape) * SCALES[case.scale]).astype(np.float32)

    def build_keras(self, keras, config, dtype, input_shape):
        layer = keras.layers.GlobalMaxPooling1D(keepdims=config["keepdims"], dtype=dtype)
        layer.build(input_shape)
        return layer

    def build_native(self, nn, config):
        return nn.GlobalMaxPool1d(input_dim=config["input_dim"], keepdims=config["keepdims"])

    def axis_names(self, quantity, config, ndim):
        if quantity.startswith("grad:input"):
            return ("b", "t", "channel")
        return ("b", "t", "channel") if ndim == 3 else ("b", "channel")


SPEC = GlobalMaxPool1dSpec()
