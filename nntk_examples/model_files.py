"""The model files of `nntk-parity example personalize` (issue 14 §5): the detector's
life from a tf.keras model file to a personalised model back in tf.keras.

    1. tf.keras writes the model file (model.save, .keras) the app starts from;
    2. `nntk-parity verify`'s check of that file (parity/verify.py): nntk computes
       what tf.keras computes, layer by layer and over training steps;
    3. (personalize.run) nn.load_keras reads it and nntk trains it on device;
    4. the nntk model file: Sequential.save with the optimizer, and nn.load gives it
       back bit for bit;
    5. from C: the C library's model (nntk/model.h, through nntk_core.c_model) loads
       that file, gives bitwise Python's predictions, takes one more training step
       bitwise as Python's, and saves the very bytes Python saves;
    6. back to tf.keras: save_keras_weights, and keras_model.load_weights holds nntk's
       weights bit for bit, predicting what nntk predicts (float32 rounding apart).

Each step is checked and printed; `Step.ok` says whether it held.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# tf.keras's and nntk's predictions from the same float32 weights: float32 rounding
# noise apart (the parity suite bounds it per layer); a probability further off is wrong.
PREDICTION_AGREEMENT = 1e-4


@dataclass
class Step:
    title: str
    detail: str
    ok: bool


def keras_file(directory: Path, config, layers: list) -> Path:
    """Step 1: the keyword detector (`layers`: its (spec name, config) pairs) built,
    compiled (the loss and optimizer verify uses) and saved by tf.keras, from tf.keras's
    initializers (seeded)."""
    from parity import reference
    from parity.model_training import build_keras_model

    keras = reference.keras()
    keras.utils.set_random_seed(config.seed)
    model = build_keras_model(layers, "float32", config.features)
    model.compile(
        loss=keras.losses.CategoricalCrossentropy(),
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
    )
    path = directory / "detector.keras"
    model.save(path)
    return path


def written(path: Path) -> Step:
    return Step("tf.keras wrote the model file", f"{path.name}, {path.stat().st_size} bytes", True)


def verified(path: Path, config) -> Step:
    """Step 2: parity/verify.py on the file, for a training batch's shape."""
    from parity.verify import verify

    result = verify(path, input_shape=(config.batch, config.frames, config.features), steps=3)
    detail = (
        f"{len(result.layers)} layers and 3 training steps ({result.loss}, {result.optimizer}) "
        "against tf.keras float32 and float64"
    )
    if not result.passed:
        detail += ": " + result.failures()
    return Step("verified against tf.keras", detail, result.passed)


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def after_training(
    directory: Path, config, result, keras_path: Path | None, utterances
) -> list[Step]:
    """Steps 4 to 6 on the trained model of personalize.run(keep=True);
    `utterances`: personalize.data(config)."""
    import nntk_core as nn
    from nntk_core.c_model import CModel

    model, optimizer = result.model, result.optimizer
    x_train, y_train, x_test, _, _ = utterances
    steps = []

    path = directory / "personal.nntk"
    model.save(path, optimizer=optimizer)
    loaded = nn.load(path)
    same = (
        _same(loaded.get_weights(), model.get_weights())
        and loaded.optimizer.iterations == optimizer.iterations
    )
    steps.append(
        Step(
            "saved the nntk model file",
            f"{path.name}, {path.stat().st_size} bytes, Adam at step {optimizer.iterations}; "
            f"nn.load gives {'the same' if same else 'OTHER'} weights and optimizer state",
            same,
        )
    )
    loaded.close()

    loss = nn.losses.CategoricalCrossentropy()
    x, y = x_train[: config.batch], y_train[: config.batch]
    with CModel(path, max(config.batch, len(x_test)), config.frames) as native:
        predictions_same = np.array_equal(native(x_test), model(x_test))
        losses_same = native.train_step(x, y, loss) == model.train_step(x, y, loss, optimizer)
        weights_same = np.array_equal(
            native.weights(), np.concatenate([w.ravel() for w in model.get_weights()])
        )
        native.save(directory / "personal_from_c.nntk")
    model.save(directory / "personal_from_python.nntk", optimizer=optimizer)
    bytes_same = (directory / "personal_from_c.nntk").read_bytes() == (
        directory / "personal_from_python.nntk"
    ).read_bytes()
    ok = predictions_same and losses_same and weights_same and bytes_same
    steps.append(
        Step(
            "ran it from C (nntk/model.h)",
            f"predictions on {len(x_test)} utterances {'bitwise' if predictions_same else 'NOT'} "
            f"Python's; one more training step: loss and weights "
            f"{'bitwise' if losses_same and weights_same else 'NOT'} Python's; the file C saves "
            f"{'is' if bytes_same else 'is NOT'} the file Python saves",
            ok,
        )
    )

    if keras_path is None:
        steps.append(Step("back to tf.keras", "skipped (--no-keras)", True))
        return steps
    from parity import reference

    weights_path = directory / "personal.weights.h5"
    model.save_keras_weights(weights_path)
    keras_model = reference.keras().models.load_model(keras_path, compile=False)
    keras_model.load_weights(weights_path)
    weights_same = _same(keras_model.get_weights(), model.get_weights())
    difference = float(np.max(np.abs(keras_model.predict(x_test, verbose=0) - model(x_test))))
    ok = weights_same and difference <= PREDICTION_AGREEMENT
    steps.append(
        Step(
            "back to tf.keras",
            f"{weights_path.name}: keras_model.load_weights holds "
            f"{'nntk' if weights_same else 'OTHER'}'s weights bit for bit; predictions differ "
            f"by at most {difference:.1e} (allowed {PREDICTION_AGREEMENT:g})",
            ok,
        )
    )
    return steps
