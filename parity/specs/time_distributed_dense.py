"""TimeDistributedDense: TimeDistributed(Dense) on (B, T, D) (docs/KERAS_SEMANTICS.md §7)."""

from parity.case import Bucket
from parity.spec_fields import keras_arguments
from parity.specs.dense import DenseSpec


class TimeDistributedDenseSpec(DenseSpec):
    name = "time_distributed_dense"
    layer_class = "TimeDistributedDense"
    ranks = (3,)

    def extra_buckets(self):
        # Its C code runs Dense's on the B·T rows: the rows around the tile heights are
        # its own; the column and depth boundaries of the products are bucketed by the
        # Dense spec.
        return [
            Bucket.config("units", 1),
            Bucket.config("input_dim", 1),
            *self.row_buckets(depth=False),
        ]

    def keras_layer(self, keras, config, dtype):
        # tf.keras's class is the wrapper of its Dense (keras_name "TimeDistributed(Dense)")
        arguments = keras_arguments(keras, self.drawn_arguments(), config)
        inner = keras.layers.Dense(**arguments, dtype=dtype)
        return keras.layers.TimeDistributed(inner, dtype=dtype)


SPEC = TimeDistributedDenseSpec()
