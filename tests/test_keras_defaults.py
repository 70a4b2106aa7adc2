"""Every default the library's layer description declares is tf.keras's own.

A layer made without an optional argument (`nn.DepthwiseConv1D(kernel_size=3)`, a
loaded model's config that leaves a key out) takes the description's default; the
parity cases give every argument explicitly, so a default that differs from tf.keras's
(use_bias False where Keras has True) would pass them all. Here each described default
is compared with the default of the tf.keras constructor's argument. Found by a mutant
of depthwise_conv1d.c (use_bias default 1 -> 0) that survived replay
(tools/mutation/mutate.py --seed 9).
"""

from __future__ import annotations

import inspect
import math

import pytest

from nntk_core import _native


def keras_class(keras, layer_type: _native.LayerType):
    """The tf.keras class whose constructor takes the layer's fields: TimeDistributed's
    inner class for TimeDistributed(Dense)."""
    outer, _, inner = layer_type.keras_name.partition("(")
    return getattr(keras.layers, (inner.rstrip(")") or outer))


def keras_default(cls, name: str):
    """The default of the tf.keras constructor's argument `name` (its own, or a base
    class's when __init__ passes **kwargs on: Conv1D's come from Conv)."""
    for klass in cls.__mro__:
        parameter = inspect.signature(klass.__init__).parameters.get(name)
        if parameter is not None:
            return parameter.default
    raise AssertionError(f"tf.keras {cls.__name__} takes no argument {name!r}")


def same_default(field: _native.Field, theirs) -> bool:
    ours = field.default
    if field.kind == _native.FIELD_ENUM and ours in ("none", "linear") and theirs is None:
        return True  # tf.keras's None: no activation ("linear"), or an enum's "none"
    if field.kind == _native.FIELD_FLOAT:
        return isinstance(theirs, float) and math.isclose(ours, theirs)
    return ours == theirs and type(ours) is type(theirs)


@pytest.mark.tf
@pytest.mark.parametrize("layer_type", list(_native.LAYERS.values()), ids=lambda t: t.name)
def test_every_described_default_is_tf_keras_default(layer_type):
    from parity.reference import keras

    cls = keras_class(keras(), layer_type)
    optional = [f for f in layer_type.fields if f.name != "input_dim" and not f.required]
    differing = {
        f.name: (f.default, keras_default(cls, f.name))
        for f in optional
        if not same_default(f, keras_default(cls, f.name))
    }
    assert not differing, f"{layer_type.name}: description default, tf.keras default: {differing}"
    assert optional or layer_type.name == "Activation", "no default was compared"
