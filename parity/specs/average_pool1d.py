"""AveragePool1d: tf.keras.layers.AveragePooling1D (channels_last) on (B, L, C): the
draws and options of MaxPool1d's spec (valid and same padding, strides None, 1 and
beyond the pool).

What it checks beyond them: with "same" padding tf.nn.avg_pool divides an edge
window by the number of its steps inside the input, not by pool_size (the swept
cases with padding "same" and pool_size 4 have edge windows of 2 and 3 steps); the
gradient shares d_out/n over each window's steps."""

from parity.compare import Tolerance
from parity.specs.max_pool1d import MaxPool1dSpec


class AveragePool1dSpec(MaxPool1dSpec):
    name = "average_pool1d"
    layer_class = "AveragePool1d"
    # nntk sums a window (<= 6 steps) in double and divides once; Keras float32 sums
    # in float32. The gradient is float32 d_out/n added over <= pool_size windows,
    # in TF's order; the referee is float64.
    tolerances = {
        "output": Tolerance(atol=1e-6, rtol=1e-6, reason="a mean of <= 6 values, one rounding"),
        "grad": Tolerance(
            atol=1e-6, rtol=1e-6, reason="float32 sums of <= pool_size shares d_out/n"
        ),
    }


SPEC = AveragePool1dSpec()
