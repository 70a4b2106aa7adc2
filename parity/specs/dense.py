"""Dense: tf.keras.layers.Dense on (B, D) and (B, T, D) input (docs/KERAS_SEMANTICS.md §7)."""

from hypothesis import strategies as st

from nntk_core.activations import ACTIVATIONS
from parity.compare import Tolerance
from parity.spec import Bucket, LayerSpec


def keras_activation(keras, name: str):
    """The Keras activation for an nntk activation name."""
    if name == "gelu_approximate":

        def gelu_approximate(x):
            return keras.activations.gelu(x, approximate=True)

        return gelu_approximate
    return name


class DenseSpec(LayerSpec):
    name = "dense"
    layer_class = "Dense"
    ranks = (2, 3)
    base_config = {"units": 5, "input_dim": 4, "activation": "tanh", "use_bias": True}
    options = {"activation": ACTIVATIONS, "use_bias": (True, False), "rank": (2, 3)}
    # One matrix product of K = D <= 32 terms and one activation. A float32 dot
    # product of K terms is accurate to ~K·eps relative to the terms' size;
    # measured worst over the ci profile: see the issue note.
    tolerances = {
        "output": Tolerance(
            atol=5e-6,
            rtol=5e-5,
            reason="one K<=32 float32 dot product + activation; exponential amplifies the "
            "product's rounding: measured 8.5e-7*scale, equal to Keras float32's own error",
        ),
        "grad": Tolerance(
            atol=1e-5,
            rtol=1e-4,
            reason="weight gradients sum B*T<=128 products: cancellation (docs/DESIGN.md §5)",
        ),
    }

    def config_strategy(self):
        return st.fixed_dictionaries(
            {
                "units": st.integers(1, 32),
                "input_dim": st.integers(1, 32),
                "activation": st.sampled_from(ACTIVATIONS),
                "use_bias": st.booleans(),
            }
        )

    def extra_buckets(self):
        # One unit (a (.., 1) output and kernel column) and one input feature.
        return [Bucket.config("units", 1), Bucket.config("input_dim", 1)]

    def build_keras(self, keras, config, dtype, input_shape):
        layer = keras.layers.Dense(
            config["units"],
            activation=keras_activation(keras, config["activation"]),
            use_bias=config["use_bias"],
            dtype=dtype,
        )
        layer.build(input_shape)
        return layer

    def build_native(self, nn, config):
        return nn.Dense(
            config["units"],
            input_dim=config["input_dim"],
            activation=config["activation"],
            use_bias=config["use_bias"],
        )

    def axis_names(self, quantity, config, ndim):
        if quantity == "grad:kernel":
            return ("in", "unit")
        if quantity == "grad:bias":
            return ("unit",)
        return super().axis_names(quantity, config, ndim)


SPEC = DenseSpec()
