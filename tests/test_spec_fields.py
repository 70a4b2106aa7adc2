"""A spec takes its config fields from the layer's description (parity/spec_fields.py):
a field the description gains is drawn, swept and handed to the tf.keras twin without
a spec edit, and one whose values the description cannot give stops the spec with an
error naming it.

The description here is a fake: the real Dense type's fields plus made-up ones, under
a made-up class name (FakeDense), installed for the test in nntk_core.LAYER_CLASSES.
The real specs' derivation is checked against the real description too."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nntk_core
from nntk_core import _native
from parity.spec_fields import keras_arguments, keras_spelling
from parity.specs import all_specs
from parity.specs.dense import DenseSpec

pytestmark = pytest.mark.harness


def fake_field(name, kind, default, low=0.0, high=1.0, enum_names=()):
    return _native.Field(name, kind, default, low, high, False, tuple(enum_names))


def install_fake_dense(monkeypatch, *extra_fields) -> str:
    """A fake layer class "FakeDense": Dense's description with `extra_fields` added."""
    dense = nntk_core.LAYER_CLASSES["Dense"]
    fake_type = dataclasses.replace(
        dense.layer_type, name="FakeDense", fields=(*dense.layer_type.fields, *extra_fields)
    )
    fake_class = type("FakeDense", (), {"layer_type": fake_type, "_flags": {}})
    monkeypatch.setitem(nntk_core.LAYER_CLASSES, "FakeDense", fake_class)
    return "FakeDense"


class FakeDenseSpec(DenseSpec):
    """Dense's spec, unchanged, over the fake description."""

    name = "fake_dense"
    layer_class = "FakeDense"


def drawn_values(spec, name, examples=200) -> set:
    seen = set()

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None)
    @given(spec.config_strategy())
    def collect(config):
        seen.add(config[name])

    collect()
    return seen


def test_a_field_added_to_the_description_is_drawn_swept_and_given_to_keras(monkeypatch):
    install_fake_dense(
        monkeypatch,
        fake_field("fake_flag", _native.FIELD_BOOL, False),
        fake_field("fake_mode", _native.FIELD_ENUM, "a", 0, 2, ("a", "b", "none")),
        fake_field("fake_rate", _native.FIELD_FLOAT, 0.25, 0.0, 1.0),
    )
    spec = FakeDenseSpec()
    # swept: both booleans (the default first), every enum name (tf.keras's None for
    # "none"), a float's default and its finite ends
    assert spec.options["fake_flag"] == (False, True)
    assert spec.options["fake_mode"] == ("a", "b", None)
    assert spec.options["fake_rate"] == (0.25, 0.0, 1.0)
    # the real fields as before
    assert spec.options["use_bias"] == (True, False)
    assert spec.options["activation"] == tuple(nntk_core.activations.ACTIVATIONS)
    assert {"fake_flag": False, "fake_mode": "a", "fake_rate": 0.25}.items() <= (
        spec.base_config.items()
    )
    # drawn by hypothesis
    assert drawn_values(spec, "fake_flag") == {False, True}
    assert drawn_values(spec, "fake_mode") == {"a", "b", None}
    rates = drawn_values(spec, "fake_rate")
    assert {0.25, 0.0, 1.0} <= rates and any(r not in (0.25, 0.0, 1.0) for r in rates)
    assert all(0.0 <= r <= 1.0 for r in rates)
    # every swept value reaches a sweep case
    swept = {(c.config["fake_flag"], c.config["fake_mode"]) for c in spec.sweep_cases()}
    assert {f for f, _ in swept} == {False, True} and {m for _, m in swept} == {"a", "b", None}
    # and the tf.keras twin's arguments (input_dim is nntk's)
    arguments = keras_arguments(None, spec.drawn_arguments(), spec.base_config)
    assert arguments["fake_flag"] is False and arguments["fake_mode"] == "a"
    assert "input_dim" not in arguments and arguments["units"] == 5


def test_a_field_without_derivable_values_names_itself(monkeypatch):
    """An int with a default (which sizes matter?) and a float with an unbounded range
    (where to draw?) need the spec's word: the error names the field and what to add."""
    install_fake_dense(monkeypatch, fake_field("fake_groups", _native.FIELD_INT, 1, 1, 64))
    with pytest.raises(ValueError, match=r"fake_groups.*Draw\(values="):
        FakeDenseSpec().options  # noqa: B018
    install_fake_dense(monkeypatch, fake_field("fake_eps", _native.FIELD_FLOAT, 0.5, 0, math.inf))
    with pytest.raises(ValueError, match=r"fake_eps.*Draw\(within="):
        FakeDenseSpec().config_strategy()


def test_a_spec_naming_a_field_the_layer_lacks_is_refused(monkeypatch):
    install_fake_dense(monkeypatch)

    class Misnamed(FakeDenseSpec):
        base_values = {**FakeDenseSpec.base_values, "unit": 5}

    with pytest.raises(ValueError, match=r"base_values names \['unit'\]"):
        Misnamed().base_config  # noqa: B018


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.name)
def test_every_swept_value_is_one_the_layer_takes(spec):
    """The real specs: every option value is among the described ones (an enum's names,
    both booleans), and the layer takes each of them (the base case with that value,
    made valid as the sweep makes it, builds)."""
    arguments = {a.name: a for a in spec.arguments()}
    for option, values in spec.options.items():
        if option == "rank":
            continue
        argument = arguments[option]
        if argument.kind == "enum":
            assert set(values) <= set(argument.names), option
        if argument.kind == "bool":
            assert set(values) == {True, False}, option
        for value in values:
            config = spec.adjust_sweep_config({**spec.base_config, option: value})
            spec.build_native(nntk_core, config).close()
    assert keras_spelling("none") is None


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_the_binding_builds_every_drawn_dense_config(data):
    """The derived config is the binding's own constructor arguments."""
    spec = DenseSpec()
    config = data.draw(spec.config_strategy())
    layer = spec.build_native(nntk_core, config)
    try:
        assert layer.units == config["units"] and layer.activation == config["activation"]
    finally:
        layer.close()
