"""nntk_core: a small C library that runs and trains time-series layers, with
tf.keras semantics, and its Python binding (ctypes).

    import nntk_core as nn
    layer = nn.Dense(4, input_dim=3, activation="gelu")
    layer.set_weights([kernel, bias])          # tf.keras get_weights() order
    y = layer(x, training=True)
    dx, (d_kernel, d_bias) = layer.backward(dy)
"""

from nntk_core._native import NNTKError, lib
from nntk_core.activation import Activation
from nntk_core.activations import ACTIVATIONS
from nntk_core.bidirectional import Bidirectional
from nntk_core.dense import Dense, TimeDistributedDense
from nntk_core.layer import Layer
from nntk_core.recurrent import GRU, LSTM, RNN, RecurrentLayer

__version__ = lib.NNTKVersion().decode()
BACKEND = lib.NNTKBackend().decode()

# The public layer classes, one per native layer (the parity suite's coverage
# test checks that each has a spec).
LAYER_CLASSES: dict[str, type[Layer]] = {
    "Activation": Activation,
    "Dense": Dense,
    "TimeDistributedDense": TimeDistributedDense,
    "RNN": RNN,
    "GRU": GRU,
    "LSTM": LSTM,
    "Bidirectional": Bidirectional,
}

__all__ = [
    "ACTIVATIONS",
    "BACKEND",
    "LAYER_CLASSES",
    "Activation",
    "Bidirectional",
    "Dense",
    "GRU",
    "LSTM",
    "Layer",
    "NNTKError",
    "RNN",
    "RecurrentLayer",
    "TimeDistributedDense",
]
