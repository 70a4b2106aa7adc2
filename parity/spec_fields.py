"""What a spec takes from the layer's description instead of restating it.

The library describes every layer type (nntk/layer.h, read by the binding into
`nntk_core._native.LAYERS`): its config fields by their tf.keras names, with kind,
default, range and enum names; the binding's class adds its Python-only flags
(`return_state`). From that one place a spec gets its config fields, its base config
(the defaults), the option values a run sweeps and hypothesis draws (an enum's names,
both booleans, a number's default and finite ends, None where tf.keras takes it) and
the tf.keras constructor arguments of a config. A spec states only what is about
testing, field by field (`Draw`): a narrower or wider set of values, a draw range,
a field held at its default with the reason.

A field the description gains is thus drawn and swept without a spec edit; one whose
values the description cannot give (an int with a default, a float with an unbounded
range) stops the spec with an error naming it until the spec says (`Draw`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

# Sizes (units, filters, features) drawn: mostly up to SMALL_SIZE (fast, and where
# off-by-one bugs show), one draw in four up to MAX_SIZE (real models use 64-256
# units: a second column tile, panel and cell block, inner sizes above 128).
SMALL_SIZE, MAX_SIZE = 32, 160

# The field kinds (nntk/layer.h NNTKFieldKind, as the binding reads them).
INT, BOOL, ENUM, FLOAT = "int", "bool", "enum", "float"


def sizes(low: int = 1) -> st.SearchStrategy[int]:
    small = st.integers(low, SMALL_SIZE)
    return st.one_of(small, small, small, st.integers(SMALL_SIZE + 1, MAX_SIZE))


@dataclass(frozen=True)
class Argument:
    """A constructor argument of a layer as the suite sees it: a described config
    field or a Python-only flag of the binding's class (a bool)."""

    name: str  # the tf.keras argument name
    kind: str  # INT, BOOL, ENUM, FLOAT
    default: Any  # the Python value (an enum's name; None: tf.keras's None)
    required: bool = False
    low: float = 0.0
    high: float = 0.0
    low_exclusive: bool = False
    names: tuple = ()  # ENUM: the values as tf.keras spells them
    allows_none: bool = False  # INT: tf.keras also takes None (its default)


@dataclass(frozen=True)
class Draw:
    """What a spec says about one field where the description's values are not what
    the test wants. Every member is optional.

    values: the values every run sweeps and hypothesis draws, instead of the derived
        ones (an enum's names, both booleans, a float's default and finite ends);
    more: values swept besides the derived ones (a large epsilon);
    without: derived values left out (with the reason in a comment at the spec);
    points: values drawn often but not swept (typical momentum values);
    within: the draw range of a number (ints: any in it, besides `values`);
    fixed: the field is not drawn, the layers on both sides keep its default; this
        is the reason (an argument that only sets initial weights the suite draws).
    """

    values: tuple | None = None
    more: tuple = ()
    without: tuple = ()
    points: tuple = ()
    within: tuple[float, float] | None = None
    fixed: str = ""


_KINDS = {0: INT, 1: BOOL, 2: ENUM, 3: FLOAT}  # nntk_core._native.FIELD_*


def keras_spelling(name: str) -> Any:
    """An enum value as tf.keras spells it: the description's "none" is tf.keras's None
    (Bidirectional's merge_mode; the binding takes both)."""
    return None if name == "none" else name


def layer_arguments(layer_class: str) -> list[Argument]:
    """The constructor arguments of a binding class (nntk_core.LAYER_CLASSES): its
    layer type's described fields in their order, then the class's Python-only flags.
    A wrapper's own fields only (its spec adds the wrapped layer's)."""
    import nntk_core

    cls = nntk_core.LAYER_CLASSES[layer_class]
    fields = [
        Argument(
            name=f.name,
            kind=_KINDS[f.kind],
            default=keras_spelling(f.default) if isinstance(f.default, str) else f.default,
            required=f.required,
            low=f.min,
            high=f.max,
            low_exclusive=f.min_exclusive,
            names=tuple(keras_spelling(n) for n in f.enum_names),
            allows_none=f.allows_none,
        )
        for f in cls.layer_type.fields
    ]
    flags = [Argument(name, BOOL, default) for name, default in cls._flags.items()]
    return fields + flags


def _finite(x: float) -> bool:
    return math.isfinite(x) and abs(x) < 1e300


def swept_values(spec_name: str, field: Argument, draw: Draw) -> tuple:
    """The values of a field every run exercises (empty: a size, drawn but not swept)."""
    if draw.values is not None:
        values = tuple(draw.values)
        if field.kind == ENUM:
            unknown = [v for v in values if v not in field.names]
            if unknown:
                raise ValueError(
                    f"spec {spec_name!r}: {field.name} values {unknown} are not among the "
                    f"described ones {list(field.names)}"
                )
    elif field.kind == BOOL:
        values = (field.default, not field.default) if field.default is not None else (True, False)
    elif field.kind == ENUM:
        values = field.names
    elif field.kind == FLOAT:
        ends = [field.low] if not field.low_exclusive else []
        ends.append(field.high)
        values = tuple(dict.fromkeys([field.default, *(e for e in ends if _finite(e))]))
        values = tuple(v for v in values if v is not None)
    elif field.required:  # a size: drawn by sizes(), not swept
        values = ()
    else:
        raise ValueError(
            f"spec {spec_name!r}: the description cannot say which values of {field.name!r} "
            f"(an int with a default) to test: give Draw(values=...) in the spec's `draws`"
        )
    values = tuple(v for v in (*values, *draw.more) if v not in draw.without)
    return tuple(dict.fromkeys(values))  # once each, in order


def field_strategy(spec_name: str, field: Argument, draw: Draw) -> st.SearchStrategy:
    """How hypothesis draws a field: one of its swept values or points; a number also
    anywhere in its range (`within`, else the description's); a size by sizes()."""
    values = swept_values(spec_name, field, draw)
    choices = tuple(dict.fromkeys((*values, *draw.points)))
    if field.kind in (BOOL, ENUM):
        return st.sampled_from(choices)
    if field.kind == INT:
        if draw.within is None:
            return st.sampled_from(choices) if choices else sizes(max(1, int(field.low)))
        ints = st.integers(int(draw.within[0]), int(draw.within[1]))
        return st.none() | ints if field.allows_none else ints
    low, high = draw.within or (field.low, field.high)
    if not (_finite(low) and _finite(high)):
        raise ValueError(
            f"spec {spec_name!r}: {field.name!r} has the range ({low:g}, {high:g}): give "
            "Draw(within=(low, high)) in the spec's `draws`"
        )
    exclude = field.low_exclusive and draw.within is None
    numbers = st.floats(low, high, exclude_min=exclude, allow_subnormal=False)
    return st.sampled_from(choices) | numbers if choices else numbers


def keras_activation(keras, name: str):
    """The tf.keras activation for an nntk activation name (the one name tf.keras does
    not take as a string is the tanh-approximated gelu)."""
    if name == "gelu_approximate":

        def gelu_approximate(x):
            return keras.activations.gelu(x, approximate=True)

        return gelu_approximate
    return name


def keras_arguments(keras, fields: Iterable[Argument], config: dict) -> dict:
    """The tf.keras constructor arguments of a config: every field it holds by its
    tf.keras name (input_dim is nntk's: tf.keras reads the input), activations as
    tf.keras takes them."""
    arguments = {}
    for field in fields:
        if field.name == "input_dim" or field.name not in config:
            continue
        value = config[field.name]
        arguments[field.name] = keras_activation(keras, value) if field.kind == ENUM else value
    return arguments
