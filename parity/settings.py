"""Reference settings for tf.keras, applied before TensorFlow is first imported.

docs/KERAS_SEMANTICS.md §11: the most reproducible CPU reference is oneDNN off, fixed
thread counts, eager execution. `TF_USE_LEGACY_KERAS=1` makes tf.keras the
Keras 2 implementation (the tf_keras package). Recorded in every report and
fixture manifest.
"""

from __future__ import annotations

import os

REFERENCE_ENV = {
    "TF_USE_LEGACY_KERAS": "1",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
}


def apply() -> dict[str, str]:
    """Sets the reference environment (without overriding a value the user set) and
    returns the settings in force."""
    for key, value in REFERENCE_ENV.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in REFERENCE_ENV}
