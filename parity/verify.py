"""`nntk-parity verify MODEL`: the parity of a user's own tf.keras model file.

    nntk-parity verify detector.keras [--input-shape 4,50,40] [--steps 3] [--report DIR]

nntk's side is `nn.load_keras(MODEL)`; tf.keras's is `load_model(MODEL)` in float32 and
a float64 twin with the same weights (the referee). Compared, with the whole-model
tolerance of parity/model_parity.py (STEP_TOLERANCE), on seeded random data:

- per layer, the inference output and the training output, the gradient with respect
  to the layer's input and every weight gradient, for a random upstream gradient at
  the model's output (tape.gradient(y, [x, ...] + weights, output_gradients=dy));
- N training steps (parity/model_parity.py's loop: the loss and every weight and moving
  statistic after each step, then the inference output after training), with the
  model's compiled loss and optimizer when nntk has them, or those given by flags.

Dropout layers are left out on both sides (nntk's loader omits them; the Keras
reference skips them, so training is compared without dropout). Prints the per-layer
error table and the per-step table, writes the same reports as `run` with
--report, and exits 0 when everything passes, 1 otherwise.

Here: `verify`, the comparison. The input shape, loss and optimizer it takes from the
model and the flags are checked in parity/verify_setup.py; each side's per-layer
quantities are computed in parity/verify_sides.py; the command is
parity/verify_command.py.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from parity.case import Case
from parity.compare import compare
from parity.model_parity import STEP_TOLERANCE, ModelParity, compare_training
from parity.model_training import TrainingRun, train_keras, train_native
from parity.runner import CaseResult
from parity.spec_run import SpecRun
from parity.verify_setup import (
    VerifyError,
    resolve_input_shape,
    resolve_loss,
    resolve_optimizer,
)
from parity.verify_sides import (
    chain_forward,
    keras_chain,
    keras_quantities,
    keras_twin,
    native_quantities,
)


@dataclass
class _ModelPart:
    """What SpecRun.record and the report ask of a spec, for a layer of a user's model
    (no options, no shape buckets)."""

    name: str
    layer_class: str
    options: dict = field(default_factory=dict)

    def option_values(self, case) -> dict:
        return {}

    def buckets_hit(self, case) -> list[str]:
        return []

    def shape_buckets(self) -> list:
        return []


@dataclass
class Verification:
    path: str
    layers: list[str]  # "0 Conv1D 'conv1d'" per nntk layer
    runs: list[SpecRun]  # per layer, then "training"
    parts: list[_ModelPart]
    training: ModelParity
    notes: list[str]
    input_shape: tuple[int, ...]
    loss: str
    optimizer: str

    @property
    def passed(self) -> bool:
        return all(run.passed for run in self.runs)

    def failures(self) -> str:
        return "\n".join(run.failure for run in self.runs if run.failure)


def _noise_only(native) -> frozenset[tuple[int, str]]:
    """(index, "bias") of every layer whose output feeds a BatchNorm: that bias's true
    gradient is zero (BatchNorm removes the mean), see parity.model_parity.NOISE_ONLY_TOLERANCE."""
    from nntk_core import BatchNorm

    layers = native.layers
    return frozenset(
        (i, "bias")
        for i in range(len(layers) - 1)
        if isinstance(layers[i + 1], BatchNorm) and "bias" in layers[i].weight_names()
    )


def _targets(rng, loss_name: str, shape) -> np.ndarray:
    if "Crossentropy" in loss_name:
        labels = rng.integers(0, shape[-1], size=shape[:-1])
        return np.eye(shape[-1], dtype=np.float32)[labels]
    return rng.standard_normal(shape).astype(np.float32)


def verify(
    path,
    *,
    input_shape: tuple[int, ...] | None = None,
    steps: int = 3,
    seed: int = 0,
    loss: str | None = None,
    optimizer: str | None = None,
    learning_rate: float | None = None,
) -> Verification:
    """Loads both sides and compares them (see the module doc); VerifyError when the
    model, its compiled loss or optimizer, or the input shape cannot be verified."""
    import nntk_core as nn
    from parity import reference

    path = Path(path)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", nn.DropoutOmittedWarning)
        try:
            native = nn.load_keras(path)
        except (OSError, nn.KerasLoadError) as exc:
            raise VerifyError(str(exc)) from None
    notes += [str(w.message) for w in caught if issubclass(w.category, nn.DropoutOmittedWarning)]
    keras = reference.keras()
    try:
        keras32 = keras.models.load_model(path, compile=True)
    except Exception as exc:  # noqa: BLE001 - whatever tf.keras raises on the file
        raise VerifyError(f"tf.keras cannot load {path}: {type(exc).__name__}: {exc}") from None
    keras64 = keras_twin(keras32, "float64")
    chain32, chain64 = keras_chain(keras32), keras_chain(keras64)
    if len(chain32) != len(native.layers):
        raise VerifyError(
            f"the nntk model has {len(native.layers)} layers, the tf.keras chain {len(chain32)}"
        )
    shape = resolve_input_shape(native, keras32, input_shape)
    native_loss, keras_loss, loss_text = resolve_loss(getattr(keras32, "loss", None), loss)
    native_opt, keras_opt, opt_text = resolve_optimizer(
        getattr(keras32, "optimizer", None), optimizer, learning_rate
    )
    initial = keras32.get_weights()
    loaded = native.get_weights()
    names = [f"{i} {type(k).__name__} {k.name!r}" for i, k in enumerate(chain32)]

    # Per layer: outputs and gradients at the file's weights.
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    out_shape = native.compute_output_shape(shape)
    dy = rng.standard_normal(out_shape).astype(np.float32)
    q64, g64 = keras_quantities(chain64, x, dy, np.float64)
    q32, g32 = keras_quantities(chain32, x, dy, np.float32)
    qn, gn = native_quantities(native, x, dy)
    parts, runs = [], []
    start = 0
    for i, (layer, k) in enumerate(zip(native.layers, chain32, strict=True)):
        comparisons = [
            compare(q, qn[f"{i}:{q}"], q64[f"{i}:{q}"], q32[f"{i}:{q}"], STEP_TOLERANCE)
            for q in ("output", "output:training", "grad:input")
        ]
        trainable = [
            n for n, t in zip(layer.weight_names(), layer.trainable_mask(), strict=True) if t
        ]
        for j, weight in enumerate(trainable):
            comparisons.append(
                compare(
                    f"grad:{weight}",
                    gn[start + j],
                    g64[start + j],
                    g32[start + j],
                    STEP_TOLERANCE,
                )
            )
        start += len(trainable)
        part = _ModelPart(_file_safe(f"{i:02d}-{k.name}"), type(k).__name__)
        parts.append(part)
        runs.append(_record(part, comparisons, shape, seed, names[i]))

    # Training steps from the weights each side loaded (the moving statistics the
    # training calls above changed are put back first).
    native.set_weights(loaded)
    keras32.set_weights(initial)
    keras64.set_weights([w.astype(np.float64) for w in initial])
    data = {
        "batches": [
            (rng.standard_normal(shape).astype(np.float32), _targets(rng, loss_text, out_shape))
            for _ in range(steps)
        ],
        "test": rng.standard_normal(shape).astype(np.float32),
    }
    run32 = _keras_training(keras32, chain32, data, keras_opt, keras_loss, np.float32)
    run64 = _keras_training(keras64, chain64, data, keras_opt, keras_loss, np.float64)
    ours = train_native(native, data, native_opt(), loss=native_loss)
    labels = [
        f"layer {i} ({type(k).__name__}) {w}"
        for i, (layer, k) in enumerate(zip(native.layers, chain32, strict=True))
        for w in layer.weight_names()
    ]
    training = compare_training(labels, ours, run32, run64, steps, _noise_only(native))
    part = _ModelPart("training", "Sequential")
    parts.append(part)
    runs.append(_record(part, training.comparisons, shape, seed, "training"))
    native.close()
    return Verification(str(path), names, runs, parts, training, notes, shape, loss_text, opt_text)


def _keras_training(model, chain, data, optimizer, loss, dtype) -> TrainingRun:
    return train_keras(model, data, optimizer(), dtype, loss=loss(), forward=chain_forward(chain))


def _file_safe(name: str) -> str:
    return re.sub(r"[^\w.-]", "_", name)


def _record(part: _ModelPart, comparisons, shape, seed: int, title: str) -> SpecRun:
    for c in comparisons:
        if not c.worst_location and c.worst_index is not None:
            c.worst_location = f"{c.quantity} {list(c.worst_index)}"
    case = Case(part.name, {}, shape[0], shape[1] if len(shape) == 3 else 1, len(shape), seed)
    result = CaseResult(case, comparisons)
    run = SpecRun(part.name)
    run.record(part, result)
    if not result.passed:
        failing = "\n".join("  " + c.describe() for c in comparisons if not c.passed)
        run.failure = f"{title}: parity failure\n{failing}"
    return run
