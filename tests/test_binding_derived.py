"""The Python binding is derived from the library's description (issue 13 §2): every
layer type the library describes (nntk/layer.h, read at import into
`nntk_core._native.LAYERS`) has its class, with the described tf.keras arguments and
defaults, its weights and its states; nothing in nntk_core keeps a list of layers."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import nntk_core as nn
from nntk_core import _native
from nntk_core.layer import Layer
from nntk_core.layers import derived_class
from nntk_core.recurrent import RecurrentLayer

PACKAGE = Path(__file__).resolve().parents[1] / "nntk_core"
TYPES = list(_native.LAYERS.values())


def test_the_library_describes_layers():
    assert TYPES, "NNTKLayerTypeCount gave no layer type"
    assert len({t.name for t in TYPES}) == len(TYPES)


@pytest.mark.parametrize("layer_type", TYPES, ids=lambda t: t.name)
def test_every_described_layer_has_its_class(layer_type):
    cls = nn.LAYER_CLASSES[layer_type.name]
    assert cls.layer_type is layer_type
    assert getattr(nn, layer_type.name) is cls and layer_type.name in nn.__all__
    assert issubclass(cls, RecurrentLayer) == layer_type.has_states


@pytest.mark.parametrize("layer_type", [t for t in TYPES if not t.wraps], ids=lambda t: t.name)
def test_signature_is_the_description(layer_type):
    """The constructor's arguments are the described fields, by their tf.keras names,
    with the described defaults (an enum's by its value name; none when required),
    except where a hand-written class changes one default (declared in its
    `_defaults`), plus its Python-only flags (`_flags`)."""
    cls = nn.LAYER_CLASSES[layer_type.name]
    params = inspect.signature(cls).parameters
    fields = {f.name: f for f in layer_type.fields}
    assert set(params) == set(fields) | set(cls._flags)
    for name, field in fields.items():
        want = cls._defaults.get(name, inspect.Parameter.empty if field.required else field.default)
        assert params[name].default == want, f"{layer_type.name}({name}=...)"
        if field.kind == _native.FIELD_ENUM and field.default is not None:
            assert field.default in field.enum_names
    for name, default in cls._flags.items():
        assert params[name].default is default


def _keras_constructor(keras_name: str):
    """The tf.keras class whose constructor a layer follows: a TimeDistributed(X)'s
    is X's (nntk takes the wrapped layer's arguments)."""
    from parity import reference

    inner = keras_name.removeprefix("TimeDistributed(").removesuffix(")")
    return getattr(reference.keras().layers, inner)


def _positional(signature: inspect.Signature) -> list[str]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [n for n, p in signature.parameters.items() if p.kind in kinds]


@pytest.mark.parametrize("layer_type", TYPES, ids=lambda t: t.name)
def test_positional_arguments_are_keras_constructor_order(layer_type):
    """A positional call means what it means to tf.keras: the class's positional
    arguments are the tf.keras constructor's leading ones, read from tf_keras's own
    signature, for as long as the layer has them (a wrapper's `layer` first); Keras's
    next one is an argument the layer lacks, so the rest are keyword-only. A layer
    that takes no Keras argument positionally takes its input_dim so (BatchNorm(64))."""
    cls = nn.LAYER_CLASSES[layer_type.name]
    names = {f.name for f in layer_type.fields} | ({"layer"} if layer_type.wraps else set())
    keras = _positional(inspect.signature(_keras_constructor(layer_type.keras_name)))
    leading = []
    for name in keras:
        if name not in names:
            break
        leading.append(name)
    ours = _positional(inspect.signature(cls))
    assert ours == (leading or ["input_dim"]), f"tf.keras {layer_type.keras_name}{keras}"
    assert layer_type.keras_positional == len([n for n in leading if n != "layer"])


@pytest.mark.parametrize("layer_type", [t for t in TYPES if not t.wraps], ids=lambda t: t.name)
def test_a_call_with_too_many_positional_arguments_names_the_keyword_only_ones(layer_type):
    """One positional argument more than the class takes (an old-style positional
    input_dim, a Keras argument nntk lacks): a TypeError naming the keyword-only
    arguments, before any value is checked."""
    cls = nn.LAYER_CLASSES[layer_type.name]
    signature = inspect.signature(cls)
    positional = _positional(signature)
    keyword = [n for n in signature.parameters if n not in positional]
    with pytest.raises(TypeError, match=f"takes {len(positional)} positional") as refused:
        cls(*[1] * (len(positional) + 1))
    assert all(f"{n}=" in str(refused.value) for n in keyword), refused.value


def test_a_pooling_takes_its_pool_size_first():
    """tf.keras MaxPooling1D(3) is pool_size=3, and so is nn.MaxPool1d(3); the old
    positional input_dim, nn.MaxPool1d(4, pool_size=2), is refused naming pool_size,
    and input_dim left out is refused naming it."""
    for cls in (nn.MaxPool1d, nn.AveragePool1d):
        layer = cls(3, input_dim=4)
        assert (layer.pool_size, layer.strides, layer.input_dim) == (3, None, 4)
        assert cls(3, 1, "same", input_dim=4).padding == "same"
        with pytest.raises(TypeError, match="multiple values for argument 'pool_size'"):
            cls(4, pool_size=2)
        with pytest.raises(TypeError, match="input_dim"):
            cls(3)


def test_a_positional_call_means_what_it_means_to_keras():
    """The positional forms a tf.keras user writes keep Keras's meaning; input_dim
    stays positional where it is the only one (BatchNorm(5)); an old positional
    input_dim where Keras has another argument is refused naming an argument."""
    dense = nn.Dense(3, "relu", False, input_dim=4)
    assert (dense.units, dense.activation, dense.use_bias) == (3, "relu", False)
    conv = nn.Conv1d(5, 3, 2, "same", input_dim=6)
    assert (conv.filters, conv.kernel_size, conv.strides, conv.padding) == (5, 3, 2, "same")
    gru = nn.GRU(4, "tanh", "hard_sigmoid", input_dim=5)
    assert gru.recurrent_activation == "hard_sigmoid"
    assert nn.BatchNorm(5).input_dim == 5 and nn.LayerNorm(5).input_dim == 5
    for old_style in (lambda: nn.Dense(3, 4), lambda: nn.Conv1d(5, 3, 6)):
        with pytest.raises(TypeError, match="missing a required argument: 'input_dim'"):
            old_style()
    with pytest.raises(TypeError, match="activation"):
        nn.Dense(3, 4, input_dim=4)


@pytest.mark.parametrize("layer_type", [t for t in TYPES if t.wraps], ids=lambda t: t.name)
def test_a_wrapper_takes_its_layer_and_its_described_fields(layer_type):
    """A wrapper's class (hand-written: it holds the wrapped layer) takes `layer` and
    its own fields with the described defaults."""
    params = inspect.signature(nn.LAYER_CLASSES[layer_type.name]).parameters
    assert list(params) == ["layer", *(f.name for f in layer_type.fields)]
    for field in layer_type.fields:
        assert params[field.name].default == field.default


@pytest.mark.parametrize("layer_type", [t for t in TYPES if not t.wraps], ids=lambda t: t.name)
def test_a_layer_built_from_the_defaults_has_the_described_weights(layer_type):
    """Built with its required arguments only (sizes 3), a layer's weights have the
    description's names and shapes, start from tf.keras's initializers, and its
    attributes hold the described defaults."""
    cls = nn.LAYER_CLASSES[layer_type.name]
    required = {
        f.name: (3 if f.kind == _native.FIELD_INT else f.enum_names[1])
        for f in layer_type.fields
        if f.required and f.name not in cls._defaults
    }
    layer = cls(**required)
    try:
        for field in layer_type.fields:
            if not field.required:
                assert getattr(layer, field.name) == field.default
        weights = layer.get_weights()
        assert [w.shape for w in weights] == layer.weight_shapes()
        for block, w in zip(layer._blocks, weights, strict=True):
            if block.initializer == "zeros":
                assert not w.any()
            elif block.initializer == "ones":
                assert (w == 1).all()
    finally:
        layer.close()


def test_a_new_layer_type_gets_a_class_without_python_edits():
    """derived_class on a layer type that no Python code knows (a fake description,
    named so: nothing native is created) gives the class with its arguments."""
    fake = _native.LayerType(
        index=-1,
        name="FakePool1d",
        keras_name="MaxPooling1D",
        fields=(
            _native.Field("input_dim", _native.FIELD_INT, None, 1, 2**24, False, ()),
            _native.Field("pool_size", _native.FIELD_INT, 2, 1, 2**24, False, ()),
            _native.Field("padding", _native.FIELD_ENUM, "valid", 0, 1, False, ("valid", "same")),
        ),
        has_states=False,
        wraps=False,
        has_frozen=False,
        keras_positional=2,  # MaxPooling1D(pool_size, strides, ...): strides is not a field
    )
    cls = derived_class(fake)
    assert fake.name not in nn.LAYER_CLASSES and fake.name not in Layer.hand_written
    assert cls.__name__ == "FakePool1d" and issubclass(cls, Layer)
    assert not issubclass(cls, RecurrentLayer)
    assert str(inspect.signature(cls)) == "(pool_size=2, padding='valid', *, input_dim)"
    assert "MaxPooling1D" in cls.__doc__
    with pytest.raises(ValueError, match="padding='full'"):
        cls(2, "full", input_dim=4)
    with pytest.raises(TypeError, match="pool_size"):
        cls(2.5, input_dim=4)


def _string_collections(tree: ast.AST):
    """Every list, tuple, set and dict literal, as the string constants it holds (a
    dict: its keys)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None]
        else:
            continue
        yield (
            node,
            {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)},
        )


def test_no_list_of_layers_is_kept_by_hand_in_the_package():
    """No literal in nntk_core's Python names two or more layer types (their class
    names or tf.keras names): every list of layers is derived from the description."""
    names = {t.name for t in TYPES} | {t.keras_name for t in TYPES}
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node, strings in _string_collections(ast.parse(path.read_text())):
            if len(strings & names) >= 2:
                found.append(f"{path.name}:{node.lineno}: {sorted(strings & names)}")
    assert not found, f"hand-kept lists of layers: {found}"
    assert len(names) > 2  # the check has layer names to look for


def test_derived_classes_have_no_python_source_of_their_own():
    """A class without behaviour of its own is made in nntk_core/layers.py; the
    hand-written ones each live in their own module and name their layer type."""
    for name, cls in nn.LAYER_CLASSES.items():
        if name in Layer.hand_written:
            assert cls.__module__ != "nntk_core.layers"
        else:
            assert cls.__module__ == "nntk_core.layers", name
