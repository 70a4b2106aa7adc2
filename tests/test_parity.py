"""The parity properties: every layer spec, hypothesis-drawn configs and data, the real
compiled library against real tf.keras (float32) and the float64 referee."""

import pytest
from hypothesis import settings

from parity.spec_run import run_spec
from parity.specs import all_specs


@pytest.mark.tf
@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.name)
def test_layer_matches_keras(spec):
    run = run_spec(spec)
    if run.failure:
        pytest.fail(run.failure, pytrace=False)
    assert run.cases >= min(settings().max_examples, 10)
    missing = run.missing_coverage(spec)
    assert not missing, f"{spec.name}: option values never exercised: {missing}"
    buckets = run.missing_buckets(spec)
    assert not buckets, f"{spec.name}: shape buckets never exercised: {buckets}"
