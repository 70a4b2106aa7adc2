"""MaxPool1d: tf.keras.layers.MaxPooling1D (channels_last) on (B, L, C), valid and
same padding, strides None (= pool_size) or given, overlapping windows included.

The input gradient is TF's MaxPoolGrad: d_out goes to the FIRST step of a window
that holds the maximum, and overlapping windows add. The `ties` inputs (TiesInput:
small whole numbers, many equal values per window) check the routing of equal
maxima."""

from dataclasses import replace

from hypothesis import strategies as st

from parity.compare import Tolerance
from parity.spec import LayerSpec
from parity.spec_fields import Draw
from parity.specs.global_max_pool1d import TiesInput


def window_steps(config: dict) -> int:
    """The fewest steps a valid window needs (any length under same padding)."""
    return config["pool_size"] if config["padding"] == "valid" else 1


class MaxPool1dSpec(TiesInput, LayerSpec):
    name = "max_pool1d"
    layer_class = "MaxPool1d"
    ranks = (3,)  # Keras's 1-D pooling takes (B, L, C) only
    steps_range = (1, 20)
    base_values = {"input_dim": 3}
    draws = {
        # strides None is pool_size; 1 overlaps windows; 3 > pool_size skips steps
        "strides": Draw(values=(None, 1, 3), within=(1, 6)),
        "pool_size": Draw(values=(1, 2, 4), within=(1, 6)),
    }
    # The output is one of the inputs; the gradient adds float32 d_out values where
    # windows overlap (at most pool_size of them), in the same order as TF.
    tolerances = {
        "output": Tolerance(
            atol=1e-12, rtol=0.0, reason="exact: the maximum is one of the inputs (atol > 0: 0/0)"
        ),
        "grad": Tolerance(
            atol=1e-6, rtol=1e-6, reason="float32 sums of <= pool_size overlapping shares"
        ),
    }

    def steps_strategy(self, config):
        return st.integers(window_steps(config), self.steps_range[1])

    def sweep_steps(self, config):
        return max(7, window_steps(config))

    def adjust_case(self, case):
        return case if case.steps >= window_steps(case.config) else replace(case, steps=7)

    def axis_names(self, quantity, config, ndim):
        return ("b", "t", "channel")


SPEC = MaxPool1dSpec()
