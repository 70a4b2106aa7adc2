"""The live run's diagnosis when many things fail (parity/spec_run.py run_spec): it keeps
going, groups the failures into distinct ones, shrinks each, reports "unsupported"
apart, without TensorFlow: the cases run on a fake reference and fake native sides
(named as such); hypothesis, the dense spec's strategy and the comparison are real."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings
from test_parity import search_seed

from parity.runner import RAISED, UNSUPPORTED, check_case
from parity.spec_fields import SMALL_SIZE
from parity.spec_run import run_spec
from parity.specs import get_spec

pytestmark = pytest.mark.harness

QUANTITIES = ("output:training", "grad:input", "grad:kernel")


class FakeFaultyBackend:
    """A fake native side: the reference's values, except where a planted fault applies.
    `faults`: quantity -> predicate on the case (the element [0, 1] is then off by 1);
    `unsupported`: a predicate on the case for which it raises NotImplementedError."""

    name = "fake"

    def __init__(self, faults, unsupported=lambda case: False):
        self.faults, self.unsupported = faults, unsupported

    def run(self, spec, case, data):
        if self.unsupported(case):
            raise NotImplementedError("this fake does not implement it")
        native = {q: np.ones((case.batch, 3)) for q in QUANTITIES}
        for quantity, applies in self.faults.items():
            if applies(case):
                native[quantity][0, 1] += 1.0
        return native


def fake_run_case(backend):
    """A fake `run_case`: a reference of ones (float64 and float32 alike)."""

    def run_one(spec, case, _backend=None):
        reference = {q: np.ones((case.batch, 3)) for q in QUANTITIES}
        return check_case(spec, case, None, reference, reference, backend)

    return run_one


def run_dense(backend, examples=60, **kwargs):
    chosen = settings(max_examples=examples, derandomize=True, database=None, deadline=None)
    return run_spec(
        get_spec("dense"), hypothesis_settings=chosen, run_one=fake_run_case(backend), **kwargs
    )


def test_every_distinct_failure_is_reported_with_its_own_shrunk_case():
    backend = FakeFaultyBackend(
        {
            "grad:input": lambda c: c.config["activation"] == "gelu",
            "output:training": lambda c: c.config["units"] > 20,  # only above 20 units
        },
        unsupported=lambda c: c.config["activation"] == "selu",
    )
    run = run_dense(backend)
    by_title = {f.title(): f for f in run.findings}
    assert sorted(by_title) == [
        "grad:input with activation='gelu'",
        "output:training with any option value",
        "unsupported with activation='selu'",
    ], by_title
    wide = by_title["output:training with any option value"]
    # hypothesis shrank it to a boundary: the smallest failing size of the branch of
    # sizes() it was found in (21 among the small sizes, SMALL_SIZE + 1 among the large)
    assert wide.shrunk and wide.minimal.case.config["units"] in (21, SMALL_SIZE + 1)
    assert wide.minimal.case.batch == 1
    gelu = by_title["grad:input with activation='gelu'"]
    assert gelu.minimal.case.config["activation"] == "gelu"
    assert "input grad [b=0, in=1]" in gelu.describe()
    unsupported = by_title["unsupported with activation='selu'"]
    assert unsupported.kind == "unsupported"
    assert "does not support this case: NotImplementedError" in unsupported.describe()
    # every finding carries a repro command of its own minimal case
    for finding in run.findings:
        assert f"nntk-parity repro '{finding.minimal.case.id}'" in run.failure
    # the search kept going: every example ran, not just up to the first failure
    assert run.cases >= 60 + len(get_spec("dense").coverage_cases())


def test_the_failure_matrix_makes_the_faulty_option_stand_out():
    backend = FakeFaultyBackend({"grad:kernel": lambda c: c.config["activation"] == "elu"})
    run = run_dense(backend, examples=150)  # enough elu cases to pin the fault on it
    assert run.failing_columns() == ["grad:kernel"]
    for (option, value), row in run.matrix().items():
        cases, failures = row["grad:kernel"]
        if option == "activation":
            assert failures == (cases if value == "elu" else 0), (value, row)
        assert row[RAISED] == [cases, 0] and row[UNSUPPORTED] == [cases, 0]
    assert [f.title() for f in run.findings] == ["grad:kernel with activation='elu'"]


def test_a_passing_run_has_no_findings_and_no_shrinking():
    run = run_dense(FakeFaultyBackend({}), examples=20)
    assert run.passed and not run.findings and not run.failed
    assert run.cases == 20 + len(get_spec("dense").coverage_cases())


def test_shrinking_is_bounded():
    backend = FakeFaultyBackend({"grad:input": lambda c: c.batch > 1})
    searched = 40 + len(get_spec("dense").coverage_cases())
    bounded = run_dense(backend, examples=40, shrink_cases=3)
    assert searched < bounded.cases <= searched + 3  # at most 3 new cases to shrink it
    assert len(bounded.findings) == 1 and bounded.findings[0].shrunk
    free = run_dense(backend, examples=40)  # the default budget reaches the boundary
    assert free.findings[0].minimal.case.batch == 2 and free.cases > searched + 3


def test_an_error_is_a_finding_of_its_own_and_hides_no_numeric_failure():
    class FakeRaisingBackend(FakeFaultyBackend):
        def run(self, spec, case, data):
            if not case.config["use_bias"]:
                raise RuntimeError("fake: out of memory")
            return super().run(spec, case, data)

    backend = FakeRaisingBackend({"grad:kernel": lambda c: c.config["activation"] == "tanh"})
    run = run_dense(backend, examples=150)
    titles = [f.title() for f in run.findings]
    assert titles == [
        "grad:kernel with activation='tanh'",
        "the native side raised with use_bias=False",
    ], titles
    assert "the native side raised: RuntimeError: fake: out of memory" in run.failure


@pytest.mark.parametrize(
    ("exc", "unsupported"),
    [
        (NotImplementedError("x"), True),
        (RuntimeError("padding 'causal' is not supported [NNTK_ERROR_INVALID_ARGUMENT]"), True),
        (ValueError("units must be >= 1"), False),
    ],
)
def test_unsupported_errors_are_told_apart(exc, unsupported):
    from parity.runner import is_unsupported

    assert is_unsupported(exc) is unsupported


def test_hypothesis_seed_repeats_a_layers_randomized_search():
    """pytest --hypothesis-seed=N (ci/nightly-seeds.sh) seeds each layer's search in a
    randomized profile: the same N draws the same cases again, another N others; a
    derandomized profile keeps run_spec's fixed search (None)."""
    chosen = settings(max_examples=8, derandomize=False, database=None, deadline=None)
    run_one = fake_run_case(FakeFaultyBackend({}))

    def drawn(forced):
        seen = []

        def recording(spec, case, backend=None):
            seen.append(case.id)
            return run_one(spec, case, backend)

        seed = search_seed("dense", forced, chosen.derandomize)
        run_spec(get_spec("dense"), hypothesis_settings=chosen, run_one=recording, seed=seed)
        return seen

    assert drawn("1") == drawn("1")
    assert drawn("1") != drawn("2")
    assert search_seed("dense", "1", False) != search_seed("gru", "1", False)
    assert search_seed("dense", "1", True) is None
    assert search_seed("dense", None, False) is None
