"""Imported once by the fork server that starts the gate's worker processes
(parallel.CasePool): TensorFlow, tf_keras and the harness's modules, so that every
worker forked from it starts with them imported. TensorFlow's runtime is not started
here (settings.preload_tensorflow): each worker starts its own."""

from parity import parallel, runner, settings  # noqa: F401 (what the workers' tasks import)
from parity.specs import get_spec  # noqa: F401

settings.preload_tensorflow()
