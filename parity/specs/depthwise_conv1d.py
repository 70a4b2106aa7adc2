"""DepthwiseConv1d: tf.keras.layers.DepthwiseConv1D, channels_last: each input channel
convolved with its own depth_multiplier filters (output channel c*M + m).

Every padding tf.keras supports for it: "valid" and "same" (it refuses "causal"),
strides, dilation_rate (not both > 1: Keras refuses that too), depth_multiplier,
activation and use_bias. The draws of shapes (steps from the effective kernel, the
invalid combinations made valid) are Conv1d's spec's."""

from dataclasses import replace

from hypothesis import strategies as st

from parity.compare import Tolerance
from parity.spec import Bucket
from parity.specs.conv1d import Conv1dSpec, effective_kernel
from parity.specs.dense import keras_activation

PADDINGS = ("valid", "same")


class DepthwiseConv1dSpec(Conv1dSpec):
    name = "depthwise_conv1d"
    layer_class = "DepthwiseConv1d"
    base_config = {
        **{k: v for k, v in Conv1dSpec.base_config.items() if k != "filters"},
        "depth_multiplier": 1,
    }
    options = {
        **{k: v for k, v in Conv1dSpec.options.items() if k != "padding"},
        "padding": PADDINGS,
        "depth_multiplier": (1, 2, 3),
    }
    # nntk sums each output's <= 5 taps, each weight gradient's B*O <= 128 products
    # and each input gradient's <= 5*M terms in double and rounds once; Keras float32
    # sums in float32. The activation adds a few float32 ulp (its own spec's bound).
    tolerances = {
        "output": Tolerance(atol=1e-6, rtol=1e-5, reason="<= 5 taps in double + activation"),
        "grad": Tolerance(
            atol=1e-5, rtol=1e-4, reason="d_pre through the activation, then double sums"
        ),
    }

    def config_strategy(self):
        """Conv1d's draws without filters and causal padding, with a depth_multiplier."""

        def depthwise(config, multiplier):
            config = {k: v for k, v in config.items() if k != "filters"}
            return {**config, "depth_multiplier": multiplier}

        convolutions = super().config_strategy().filter(lambda c: c["padding"] in PADDINGS)
        return st.builds(depthwise, convolutions, st.integers(1, 4))

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

    def build_keras(self, keras, config, dtype, input_shape):
        arguments = {k: v for k, v in config.items() if k != "input_dim"}
        arguments["activation"] = keras_activation(keras, config["activation"])
        layer = keras.layers.DepthwiseConv1D(**arguments, dtype=dtype)
        layer.build(input_shape)
        return layer

    def build_native(self, nn, config):
        return nn.DepthwiseConv1d(**config)  # the config holds its arguments

    # output channel "out" = in * depth_multiplier + multiplier
    AXES = {"grad:depthwise_kernel": ("tap", "in", "multiplier"), "grad:bias": ("out",)}

    def axis_names(self, quantity, config, ndim):
        if quantity.startswith("output"):
            return ("b", "t", "out")
        return self.AXES.get(quantity) or super().axis_names(quantity, config, ndim)


SPEC = DepthwiseConv1dSpec()
