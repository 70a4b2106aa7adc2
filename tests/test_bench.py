"""`nntk-parity bench` runs every peer framework in a process of its own: here
TensorFlow (the test extras have it), on one workload, quick. The peers' full set runs
nightly in ci/bench-smoke.sh."""

from __future__ import annotations

import subprocess
import sys
import tempfile

import pytest
from helpers import _env

PROGRAM = """
import sys
from nntk_bench import run as bench
report = bench.run_bench(["nntk", "tf"], ["W1"], quick=True, out_dir=None, log=lambda *a: None)
ran = report["workloads"]["W1"]["frameworks"]
assert report["notes"] == {}, report["notes"]
assert ran["tf"]["check"] == "ok" and ran["nntk"]["check"] == "ok", ran
assert ran["tf"]["samples"] == 3 and ran["tf"]["median_ms"] > 0, ran["tf"]
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "tf_keras"))
assert not loaded, f"TensorFlow was loaded in the bench's own process: {loaded[:5]}"
print("tf ran in its own process")
"""


@pytest.mark.tf
@pytest.mark.slow
def test_a_peer_runs_in_its_own_process():
    """TensorFlow is timed and checked against nntk, yet never imported by the
    process that runs the bench."""
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tempfile.gettempdir(),  # not the checkout, whose nntk_core has no library
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "tf ran in its own process" in result.stdout
    assert result.stderr == "", result.stderr[-3000:]  # quiet: no TensorFlow start-up lines
