"""Fixture variety (issue 12): no option of a layer spec has a single value across
the spec's committed fixtures, alone or in combination with another option.

The options come from the specs: the declared options and extra options
(`LayerSpec.options`, `LayerSpec.extra_options`, e.g. a recurrent layer's
`initial_state`) and every config key the fixtures carry (units, momentum, ...).

- Alone: every option takes at least two values (every declared value is already
  required by replay's attribute coverage).
- In pairs: every combination of two paired options (at most PAIRWISE_MAX_VALUES
  values each: the flags, `initial_state`, `reset_after`, `rank`, `padding`, ...)
  that the layer allows appears in some fixture: recurrent fixtures with and
  without `initial_state`, each with and without `use_bias`. "Allowed" is the
  spec's own judgement: `case_with` keeps both values (Keras refuses strides > 1
  with dilation > 1, say).
- The options with more values (activation, ...) take at least two values among
  the fixtures with each value of every paired option (not every fixture without
  `initial_state` uses tanh).
"""

from __future__ import annotations

import itertools

import pytest
from helpers import FIXTURES, manifest

from parity.case import Case, hashable
from parity.spec import LayerSpec
from parity.specs import all_specs
from parity.sweep import PAIRWISE_MAX_VALUES

pytestmark = pytest.mark.harness

SPECS = all_specs()


def fixture_cases(spec: LayerSpec, entries: list[dict]) -> list[Case]:
    return [Case.from_id(e["id"]) for e in entries if e["layer"] == spec.name]


def committed(spec: LayerSpec) -> list[Case]:
    # The layer fixtures only: other fixture kinds (training, sequences) live in
    # subdirectories with manifests of their own.
    return fixture_cases(spec, manifest(FIXTURES)["cases"])


def values_of(spec: LayerSpec, case: Case) -> dict:
    values = {k: hashable(v) for k, v in case.config.items()}
    values.update({k: hashable(v) for k, v in spec.variety_values(case).items()})
    return values


def single_valued(spec: LayerSpec, cases: list[Case]) -> dict:
    """Options with one value across the cases: {option: value}."""
    seen: dict[str, set] = {}
    for case in cases:
        for option, value in values_of(spec, case).items():
            seen.setdefault(option, set()).add(value)
    declared = {**spec.options, **spec.extra_options}
    return {
        option: next(iter(values))
        for option, values in seen.items()
        if len(values) == 1 and len(declared.get(option, (0, 1))) > 1
    }


def missing_pairs(spec: LayerSpec, cases: list[Case]) -> list[tuple]:
    """Allowed combinations of two paired options that no case has."""
    recorded = set().union(*(spec.pairs_of(c) for c in cases)) if cases else set()
    missing = []
    paired = spec.paired_options()
    for (a, a_values), (b, b_values) in itertools.combinations(paired.items(), 2):
        for x, y in itertools.product(a_values, b_values):
            allowed = spec.pairs_of(spec.case_with({a: x, b: y}, seed=0))
            pair = tuple(sorted(((a, hashable(x)), (b, hashable(y))), key=repr))
            if pair in allowed and pair not in recorded:
                missing.append(pair)
    return missing


def constant_within(spec: LayerSpec, cases: list[Case]) -> list[str]:
    """Options of more than PAIRWISE_MAX_VALUES values that keep one value among the
    cases with some value of a paired option."""
    problems = []
    wide = [k for k, v in spec.options.items() if len(v) > PAIRWISE_MAX_VALUES]
    for option, values in spec.paired_options().items():
        for value in values:
            group = [c for c in cases if spec.variety_values(c).get(option) == value]
            for other in wide:
                seen = {hashable(spec.variety_values(c).get(other)) for c in group}
                if len(seen) == 1:
                    problems.append(
                        f"every fixture with {option}={value!r} has {other}={next(iter(seen))!r}"
                    )
    return problems


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_no_option_has_a_single_value(spec):
    assert not single_valued(spec, committed(spec))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_allowed_pair_of_small_options_has_a_fixture(spec):
    assert not missing_pairs(spec, committed(spec))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_wide_options_vary_with_every_value_of_a_small_option(spec):
    assert not constant_within(spec, committed(spec))


def test_recurrent_fixtures_pair_initial_state_with_use_bias():
    """The gap issue 12 found, named: every combination is committed for every
    recurrent spec (a spec of these layers that lost it would fail above too)."""
    for spec in SPECS:
        if "initial_state" not in spec.extra_options:
            continue
        combos = {(c.extra.get("initial_state"), c.config.get("use_bias")) for c in committed(spec)}
        assert combos == {(True, True), (True, False), (False, True), (False, False)}, spec.name


# -- the checks can fail ------------------------------------------------------------------
def test_the_checks_name_a_lost_combination_and_a_constant_option():
    """Dropping the GRU fixtures without initial_state that use a bias (and fixing
    the activation of those without initial_state) is reported by each check."""
    spec = next(s for s in SPECS if s.name == "gru")
    cases = committed(spec)
    without_state = [c for c in cases if not c.extra.get("initial_state")]
    doctored = [c for c in cases if c.extra.get("initial_state") or not c.config["use_bias"]]
    pair = tuple(sorted((("initial_state", False), ("use_bias", True)), key=repr))
    assert pair in missing_pairs(spec, doctored)

    tanh_only = [c for c in cases if c.extra.get("initial_state")] + [
        c for c in without_state if c.config["activation"] == "tanh"
    ]
    assert "every fixture with initial_state=False has activation='tanh'" in constant_within(
        spec, tanh_only
    )
    backwards_only = [c for c in cases if c.config["go_backwards"]]
    assert single_valued(spec, backwards_only).get("go_backwards") is True
    assert single_valued(spec, cases[:1])  # one fixture: every option has one value
