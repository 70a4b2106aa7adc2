"""Replay's C-model variant of the training-step fixtures: the case's network, with its
initial weights and its optimizer, saved as an nntk model file by Python, loaded by the
C library's own model code (nntk/model.h, through nntk_core.c_model.CModel) and trained
there, as an app on a device does. Each step's loss and weights and the inference after
the last step are compared with the references (the spec's tolerances) and bit for bit
with nn.Sequential's run of the same case; the files the C model writes (before and
after training) must be byte for byte what Python writes for the same model.

This is what runs src/model/ (the model file's reader, runtime and writer) under
`nntk-parity replay`, which has no tf.keras to run."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

C_MODEL = "C model (NNTKModel)"  # the variant's name in reports


def c_model_comparisons(spec, case, data, float64, float32, plain) -> list:
    import nntk_core as nn
    from nntk_core.c_model import CModel
    from parity import variants

    variant = variants.Variant(C_MODEL, lambda build, case: None)
    initial = spec.initial_weights(data)
    x, y, test = data.arrays["x"], data.arrays["y"], data.arrays["test"]
    model, opt, loss = spec.native_model(nn, case, data)
    try:
        with tempfile.TemporaryDirectory(prefix="nntk-replay-model-") as directory:
            folder = Path(directory)
            model.set_weights(initial)
            model.save(folder / "python.nntk", optimizer=opt)
            losses, history = [], []
            capacity = (max(x.shape[1], test.shape[0]), max(x.shape[2], test.shape[1]))
            with CModel(folder / "python.nntk", *capacity) as native:
                native.save(folder / "c-loaded.nntk")
                for step in range(data.settings["train_steps"]):
                    losses.append(native.train_step(x[step], y[step], loss))
                    history.append(_unflatten(native.weights(), initial))
                inference = native(test)
                native.save(folder / "c-trained.nntk")
            problems = _same_bytes(folder / "c-loaded.nntk", folder / "python.nntk", "loaded")
            # what Python writes for the model the C side trained: its file, read and rewritten
            trained = nn.load(folder / "c-trained.nntk")
            trained.save(folder / "python-trained.nntk", optimizer=trained.optimizer)
            problems += _same_bytes(
                folder / "c-trained.nntk", folder / "python-trained.nntk", "trained"
            )
            trained.close()
            if trained.optimizer is not None:
                trained.optimizer.close()
    except Exception as exc:  # a native error fails the variant, reported as such
        return [variants.failed(variant, f"the native side raised: {type(exc).__name__}: {exc}")]
    finally:
        model.close()
        opt.close()
    produced = spec.quantities(data, losses, history, inference)
    comparisons = variants.compare_produced(variant, spec, case, produced, float64, float32, plain)
    return comparisons + [variants.failed(variant, problem) for problem in problems]


def _unflatten(flat: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    """The C model's weights (flat, in the model file's order: get_weights() order, layer
    after layer) as arrays shaped like `like`."""
    sizes = [w.size for w in like]
    if flat.size != sum(sizes):
        raise ValueError(f"the C model holds {flat.size} weights, the model {sum(sizes)}")
    parts = np.split(flat, np.cumsum(sizes)[:-1])
    return [part.reshape(w.shape) for part, w in zip(parts, like, strict=True)]


def _same_bytes(written: Path, expected: Path, when: str) -> list[str]:
    a, b = written.read_bytes(), expected.read_bytes()
    if a == b:
        return []
    first = next(
        (i for i, (p, q) in enumerate(zip(a, b, strict=False)) if p != q), min(len(a), len(b))
    )
    return [
        f"the model file the C model saved ({when}) is not the one Python writes: "
        f"{len(a)} against {len(b)} bytes, first difference at byte {first}"
    ]
