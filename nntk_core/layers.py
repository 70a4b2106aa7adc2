"""Every layer class, one per layer type the library describes (nntk/layer.h).

A layer type with a hand-written class (a subclass of Layer naming its type:
`class Conv1d(Layer, layer="Conv1d")`, imported below) gets it; every other one
gets a class derived here, on Layer, or on RecurrentLayer when the library
describes it with states, with the constructor signature, docstring and weights
of its description. A layer added to the library thus appears here, with its
tf.keras arguments and defaults, without edits.
"""

from __future__ import annotations

import inspect

# The modules of the hand-written classes: importing them registers the classes.
from nntk_core import activation, bidirectional, conv1d, time_distributed_dense  # noqa: F401
from nntk_core._native import LAYERS, LayerType
from nntk_core.layer import Layer
from nntk_core.recurrent import RecurrentLayer


def _docstring(layer_type: LayerType, cls: type) -> str:
    signature = inspect.signature(cls)
    return (
        f"tf.keras.layers.{layer_type.keras_name}{signature}, as the library describes it "
        f"(its fields {', '.join(f.name for f in layer_type.fields)}; input_dim is the input's "
        "last axis). Weights: weight_names() / weight_shapes(), in tf.keras get_weights() "
        "order, starting from tf.keras's initializers."
    )


def derived_class(layer_type: LayerType) -> type[Layer]:
    """The class of a layer type without a hand-written one."""
    base = RecurrentLayer if layer_type.has_states else Layer
    cls = type(layer_type.name, (base,), {"__module__": __name__, "layer_type": layer_type})
    cls.__doc__ = _docstring(layer_type, cls)
    return cls


# name -> class, in the library's order of the layer types.
LAYER_CLASSES: dict[str, type[Layer]] = {
    name: Layer.hand_written.get(name) or derived_class(layer_type)
    for name, layer_type in LAYERS.items()
}
