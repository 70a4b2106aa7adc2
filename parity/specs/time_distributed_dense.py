"""TimeDistributedDense: TimeDistributed(Dense) on (B, T, D) (docs/KERAS_SEMANTICS.md §7)."""

from parity.spec import Bucket
from parity.specs.dense import DenseSpec, keras_activation


class TimeDistributedDenseSpec(DenseSpec):
    name = "time_distributed_dense"
    layer_class = "TimeDistributedDense"
    ranks = (3,)
    options = {k: v for k, v in DenseSpec.options.items() if k != "rank"}

    def extra_buckets(self):
        # Its C code runs Dense's on the B·T rows: the rows around the tile heights are
        # its own; the column and depth boundaries of the products are bucketed by the
        # Dense spec.
        return [
            Bucket.config("units", 1),
            Bucket.config("input_dim", 1),
            *self.row_buckets(depth=False),
        ]

    def build_keras(self, keras, config, dtype, input_shape):
        inner = keras.layers.Dense(
            config["units"],
            activation=keras_activation(keras, config["activation"]),
            use_bias=config["use_bias"],
            dtype=dtype,
        )
        layer = keras.layers.TimeDistributed(inner, dtype=dtype)
        layer.build(input_shape)
        return layer

    def build_native(self, nn, config):
        return nn.TimeDistributedDense(
            config["units"],
            input_dim=config["input_dim"],
            activation=config["activation"],
            use_bias=config["use_bias"],
        )


SPEC = TimeDistributedDenseSpec()
