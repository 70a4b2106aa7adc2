"""The parity properties: every layer spec, hypothesis-drawn configs and data, the real
compiled library against real tf.keras (float32) and the float64 referee."""

import zlib

import pytest
from hypothesis import settings

from parity.spec_run import run_spec
from parity.specs import all_specs


def search_seed(layer: str, forced: str | None, derandomize: bool) -> int | None:
    """The layer's search seed under `pytest --hypothesis-seed=N` (`forced`, N) in a
    randomized profile (ci/nightly-seeds.sh): derived from N and the layer's name, so N
    repeats the run. run_spec seeds its search itself, so the option would not reach
    it. None otherwise: run_spec's default (fixed per layer when derandomized, random)."""
    if forced is None or derandomize:
        return None
    return zlib.crc32(f"{forced}:{layer}".encode())


@pytest.mark.tf
@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.name)
def test_layer_matches_keras(spec, request):
    forced = request.config.getoption("hypothesis_seed", None)
    run = run_spec(spec, seed=search_seed(spec.name, forced, settings().derandomize))
    if run.failure:
        pytest.fail(run.failure, pytrace=False)
    assert run.cases >= min(settings().max_examples, 10)
    missing = run.missing_coverage(spec)
    assert not missing, f"{spec.name}: option values never exercised: {missing}"
    buckets = run.missing_buckets(spec)
    assert not buckets, f"{spec.name}: shape buckets never exercised: {buckets}"
