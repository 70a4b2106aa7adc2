"""The frameworks the bench knows, and how each builds its runners."""

from __future__ import annotations

from nntk_bench.nntk_runners import nntk_runners
from nntk_bench.peer_keras import tf_runners, tflite_runners
from nntk_bench.peer_onnx import ort_runners
from nntk_bench.peer_torch import torch_runners

IN_PROCESS = ("nntk", "nntk-py")  # the frameworks run in this process; each peer in its own
BUILDERS = {
    "nntk": lambda w: nntk_runners(w, python_api=False),
    "nntk-py": lambda w: nntk_runners(w, python_api=True),
    "onnxruntime": ort_runners,
    "tflite": tflite_runners,
    "torch": torch_runners,
    "tf": lambda w: tf_runners(w, xla=False),
    "tf-xla": lambda w: tf_runners(w, xla=True),
}
FRAMEWORKS = tuple(BUILDERS)
