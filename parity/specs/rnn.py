"""RNN: tf.keras.layers.SimpleRNN (docs/KERAS_SEMANTICS.md §1)."""

from parity.case import Bucket
from parity.recurrent_spec import RecurrentSpec


class RNNSpec(RecurrentSpec):
    name = "rnn"
    layer_class = "RNN"
    # A SimpleRNN with weights much larger than Glorot is chaotic over 64 steps: at
    # 2.5x Glorot, Keras float32 itself misses atol 1e-5 (by 1.36x on dx) and nntk's
    # error equals Keras's. The large draws here are 1.5x; the chaotic regime is
    # covered by tests/test_recurrent_large_weights.py against Keras float32's own error.
    scales = {"realistic": 1.0, "large": 1.5}

    def extra_buckets(self):
        # A row-wise activation in the cell: softmax normalizes each batch row over the
        # units, so a cell that hands the activation its (B, U) block with rows and
        # units swapped is wrong only here (every elementwise activation is blind to
        # it; mutant rnn.c `nntk_activation_forward(.., u, batch, ..)`, docs/mutation.md).
        return [*super().extra_buckets(), Bucket.config("activation", "softmax")]


SPEC = RNNSpec()
