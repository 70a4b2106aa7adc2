"""GlobalMaxPool1d: tf.keras.layers.GlobalMaxPooling1D (channels_last) on (B, T, C):
the maximum over the steps, y (B, C), or (B, 1, C) with keepdims (the draws and
shapes of GlobalAveragePool1d's spec).

The input gradient is tf.reduce_max's: d_out is shared equally by every step that
attains the maximum (ties), so the `ties` inputs (small whole numbers: many equal
values per channel) check the sharing, and the plain ones the usual single winner."""

import numpy as np
from hypothesis import strategies as st

from parity.compare import Tolerance
from parity.spec import SCALES
from parity.specs.global_average_pool1d import GlobalAveragePool1dSpec


class TiesInput:
    """Inputs with many equal values (`ties`: whole numbers in [-1, 1]) or plain ones,
    for the max poolings' gradient routing among equal maxima."""

    extra_options = {"ties": (True, False)}

    def extra_strategy(self, config):
        return st.fixed_dictionaries({"ties": st.booleans()})

    def sweep_extra(self, config):
        return {"ties": True}

    def draw_input(self, case, rng):
        shape = self.input_shape(case)
        if case.extra.get("ties"):
            return rng.integers(-1, 2, size=shape).astype(np.float32)
        return (rng.standard_normal(shape) * SCALES[case.scale]).astype(np.float32)


class GlobalMaxPool1dSpec(TiesInput, GlobalAveragePool1dSpec):
    name = "global_max_pool1d"
    layer_class = "GlobalMaxPool1d"
    # The output is an input element (exact). The gradient is float32(1/n)·d_out in
    # Keras and nntk; the float64 referee's 1/n·d_out differs by a float32 rounding.
    tolerances = {
        "output": Tolerance(
            atol=1e-12, rtol=0.0, reason="exact: the maximum is one of the inputs (atol > 0: 0/0)"
        ),
        "grad": Tolerance(atol=1e-7, rtol=1e-6, reason="float32(1/n)·d_out: two roundings"),
    }


SPEC = GlobalMaxPool1dSpec()
