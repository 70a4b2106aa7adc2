"""Activation names, as the library spells them (its one table, core/activations.c,
read through the description), and the other spellings tf.keras accepts."""

from __future__ import annotations

from nntk_core._native import FIELD_ENUM, LAYERS

# Other spellings tf.keras accepts for the same function (not in the library's table).
ALIASES: dict[str, str] = {"silu": "swish"}

# Every activation, in NNTKActivationKind order: the value names of the layers'
# "activation" fields (every one lists the same table).
ACTIVATIONS: tuple[str, ...] = next(
    field.enum_names
    for layer in LAYERS.values()
    for field in layer.fields
    if field.name == "activation" and field.kind == FIELD_ENUM
)
