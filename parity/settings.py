"""Reference settings for tf.keras, applied before TensorFlow is first imported, and
the quiet import of TensorFlow every command uses.

docs/KERAS_SEMANTICS.md §11: the most reproducible CPU reference is oneDNN off, fixed
thread counts, eager execution. `TF_USE_LEGACY_KERAS=1` makes tf.keras the
Keras 2 implementation (the tf_keras package). Recorded in every report and
fixture manifest.

Quiet by default: TensorFlow's start-up lines ("All log messages before
absl::InitializeLog() ...", "Could not find cuda drivers ...", "failed call to
cuInit ...") are written by its C++ side straight to file descriptor 2, some of them
whatever TF_CPP_MIN_LOG_LEVEL says. `import_tensorflow()` sends that descriptor to a
temporary file while TensorFlow loads and sets up its devices (`stderr_captured`),
and shows what was written only if the import fails. `NNTK_VERBOSE=1`
(`nntk-parity --verbose`) shows everything, as TensorFlow prints it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

REFERENCE_ENV = {
    "TF_USE_LEGACY_KERAS": "1",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
}
VERBOSE_ENV = "NNTK_VERBOSE"
# Not recorded in the manifests: they change what is printed (and, on a machine with a
# GPU, keep TensorFlow on the CPU, where the reference is defined), not what is computed.
QUIET_ENV = {
    "CUDA_VISIBLE_DEVICES": "",
    "GRPC_VERBOSITY": "ERROR",
}


def apply() -> dict[str, str]:
    """Sets the reference environment (without overriding a value the user set) and
    returns the settings in force."""
    for key, value in REFERENCE_ENV.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in REFERENCE_ENV}


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def set_verbose(on: bool) -> None:
    """`--verbose`: TensorFlow's own lines come back, here and in child processes (as
    many as TF_CPP_MIN_LOG_LEVEL lets through: it is a reference setting, recorded in
    every manifest, so --verbose leaves it alone)."""
    if on:
        os.environ[VERBOSE_ENV] = "1"


def quiet_tensorflow() -> None:
    """The environment TensorFlow is imported in (verbose or not, so that --verbose
    changes what is printed, never what runs); child processes (a test's CLI run, a
    bench worker) inherit it."""
    apply()
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


@contextlib.contextmanager
def _stderr_into(file):
    """File descriptor 2 (C++ code's stderr, not only Python's) into `file`."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


# True in a process whose TensorFlow was imported by `preload_tensorflow` and whose
# runtime has not started yet: a process forked from the preloading one (a worker of
# parity/parallel.py) starts its own runtime at its first `import_tensorflow()`.
_runtime_pending = False


def preload_tensorflow() -> None:
    """Imports TensorFlow and tf_keras, quietly, WITHOUT starting TensorFlow's runtime
    (its thread pools and devices): for the process that forks the gate's workers, so
    that each worker starts with them imported (a runtime's threads would not survive
    the fork; each worker starts its own in `import_tensorflow`)."""
    global _runtime_pending
    quiet_tensorflow()
    if "tensorflow" in sys.modules:
        return
    with stderr_captured():
        import tensorflow  # noqa: F401
        import tf_keras  # noqa: F401
    _runtime_pending = True


def import_tensorflow():
    """The tensorflow module, imported with the reference settings and, unless verbose,
    without its start-up lines; its Python-side logging is set to errors only."""
    global _runtime_pending
    quiet_tensorflow()
    if "tensorflow" in sys.modules and not _runtime_pending:
        import tensorflow as tf

        return tf
    with stderr_captured():
        tf = _load_tensorflow()
    _runtime_pending = False
    if not verbose():
        tf.get_logger().setLevel("ERROR")
    return tf


@contextlib.contextmanager
def stderr_captured():
    """Unless verbose: what the block writes to file descriptor 2 (C++ code's stderr,
    not only Python's) goes to a temporary file, shown only if the block raises."""
    if verbose():
        yield
        return
    with tempfile.TemporaryFile("w+") as log:
        try:
            with _stderr_into(log):
                yield
        except BaseException:
            log.seek(0)
            sys.stderr.write(log.read())
            raise


def _load_tensorflow():
    import tensorflow as tf

    # The thread counts must be set before the runtime starts (list_logical_devices
    # below starts it: that is where CUDA is probed and logs).
    tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["TF_NUM_INTRAOP_THREADS"]))
    tf.config.threading.set_inter_op_parallelism_threads(int(os.environ["TF_NUM_INTEROP_THREADS"]))
    tf.config.list_logical_devices()
    return tf
