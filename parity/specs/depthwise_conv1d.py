"""DepthwiseConv1d: tf.keras.layers.DepthwiseConv1D, channels_last: each input channel
convolved with its own depth_multiplier filters (output channel c*M + m).

Every padding tf.keras supports for it: "valid" and "same" (it refuses "causal"),
strides, dilation_rate (not both > 1: Keras refuses that too), depth_multiplier,
activation and use_bias."""

from dataclasses import replace

from hypothesis import strategies as st

from nntk_core.activations import ACTIVATIONS
from parity.compare import Tolerance
from parity.spec import Bucket, LayerSpec, sizes
from parity.specs.conv1d import effective_kernel
from parity.specs.dense import keras_activation

PADDINGS = ("valid", "same")


class DepthwiseConv1dSpec(LayerSpec):
    name = "depthwise_conv1d"
    layer_class = "DepthwiseConv1d"
    ranks = (3,)
    steps_range = (1, 16)
    base_config = {
        "input_dim": 3,
        "kernel_size": 3,
        "strides": 1,
        "padding": "valid",
        "depth_multiplier": 1,
        "dilation_rate": 1,
        "activation": "linear",
        "use_bias": True,
    }
    options = {
        "padding": PADDINGS,
        "strides": (1, 2, 3),
        "dilation_rate": (1, 2, 3),
        "kernel_size": (1, 2, 3, 5),
        "depth_multiplier": (1, 2, 3),
        "activation": ACTIVATIONS,
        "use_bias": (True, False),
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
        @st.composite
        def configs(draw):
            strides = draw(st.sampled_from((1, 2, 3)))
            dilation = 1 if strides > 1 else draw(st.sampled_from((1, 2, 3)))
            return {
                "input_dim": draw(sizes()),
                "kernel_size": draw(st.integers(1, 5)),
                "strides": strides,
                "padding": draw(st.sampled_from(PADDINGS)),
                "depth_multiplier": draw(st.integers(1, 4)),
                "dilation_rate": dilation,
                "activation": draw(st.sampled_from(ACTIVATIONS)),
                "use_bias": draw(st.booleans()),
            }

        return configs()

    def steps_strategy(self, config):
        # same padding may be shorter than the kernel (an edge worth drawing)
        low = effective_kernel(config) if config["padding"] == "valid" else 1
        return st.integers(low, low + 15)

    def sweep_steps(self, config):
        return effective_kernel(config) + 4

    def adjust_sweep_config(self, config):
        if config["strides"] > 1:
            config["dilation_rate"] = 1
        return config

    def adjust_case(self, case):
        if case.config["padding"] == "valid" and case.steps < effective_kernel(case.config):
            return replace(case, config={**case.config, "padding": "same"})
        return case

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
        layer = keras.layers.DepthwiseConv1D(
            config["kernel_size"],
            strides=config["strides"],
            padding=config["padding"],
            depth_multiplier=config["depth_multiplier"],
            dilation_rate=config["dilation_rate"],
            activation=keras_activation(keras, config["activation"]),
            use_bias=config["use_bias"],
            dtype=dtype,
        )
        layer.build(input_shape)
        return layer

    def build_native(self, nn, config):
        return nn.DepthwiseConv1d(
            kernel_size=config["kernel_size"],
            input_dim=config["input_dim"],
            strides=config["strides"],
            padding=config["padding"],
            depth_multiplier=config["depth_multiplier"],
            dilation_rate=config["dilation_rate"],
            activation=config["activation"],
            use_bias=config["use_bias"],
        )

    def axis_names(self, quantity, config, ndim):
        if quantity == "grad:depthwise_kernel":
            return ("tap", "in", "multiplier")
        if quantity == "grad:bias":
            return ("out",)
        if quantity.startswith("output"):
            return ("b", "t", "out")
        return super().axis_names(quantity, config, ndim)


SPEC = DepthwiseConv1dSpec()
