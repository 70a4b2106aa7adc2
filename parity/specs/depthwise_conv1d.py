"""DepthwiseConv1d: tf.keras.layers.DepthwiseConv1D, channels_last: each input channel
convolved with its own depth_multiplier filters (output channel c*M + m).

Every padding the description gives it: "valid" and "same" (tf.keras refuses "causal"),
strides, dilation_rate (not both > 1: Keras refuses that too), depth_multiplier,
activation and use_bias. The draws of shapes (steps from the effective kernel, the
invalid combinations made valid) are Conv1d's spec's."""

from dataclasses import replace

from parity.case import Bucket
from parity.compare import Tolerance
from parity.spec_fields import Draw
from parity.specs.conv1d import Conv1dSpec, effective_kernel


class DepthwiseConv1dSpec(Conv1dSpec):
    name = "depthwise_conv1d"
    layer_class = "DepthwiseConv1d"
    base_values = {"input_dim": 3, "kernel_size": 3}
    # Conv1d's draws, and a multiplier up to 4 (1-3 swept).
    draws = {**Conv1dSpec.draws, "depth_multiplier": Draw(values=(1, 2, 3), within=(1, 4))}
    # nntk sums each output's <= 5 taps, each weight gradient's B*O <= 128 products
    # and each input gradient's <= 5*M terms in double and rounds once; Keras float32
    # sums in float32. The activation adds a few float32 ulp (its own spec's bound).
    tolerances = {
        "output": Tolerance(atol=1e-6, rtol=1e-5, reason="<= 5 taps in double + activation"),
        "grad": Tolerance(
            atol=1e-5, rtol=1e-4, reason="d_pre through the activation, then double sums"
        ),
    }

    def extra_buckets(self):
        def kernel_longer(case):
            return case.config["padding"] == "same" and case.steps < effective_kernel(case.config)

        return [
            Bucket(
                "kernel > length",
                kernel_longer,
                lambda c: replace(
                    c, steps=2, config={**c.config, "padding": "same", "kernel_size": 5}
                ),
            )
        ]

    # output channel "out" = in * depth_multiplier + multiplier
    AXES = {"grad:depthwise_kernel": ("tap", "in", "multiplier"), "grad:bias": ("out",)}

    def axis_names(self, quantity, config, ndim):
        if quantity.startswith("output"):
            return ("b", "t", "out")
        return self.AXES.get(quantity) or super().axis_names(quantity, config, ndim)


SPEC = DepthwiseConv1dSpec()
