"""Whole-model training on both sides: a model built from its layer specs in nntk
and in tf.keras, trained step by step on the same random batches, and the tf.keras
side's runs (float32, and float64 as the referee) cached across processes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

# The optimizers a model is trained with, and their settings.
OPTIMIZERS = {
    "adam": {"learning_rate": 1e-3},
    "sgd_momentum": {"learning_rate": 0.05, "momentum": 0.9},
}


@dataclass
class TrainingRun:
    losses: list[float] = field(default_factory=list)
    weights: list[list[np.ndarray]] = field(default_factory=list)  # after each step
    inference: np.ndarray | None = None  # inference output after training
    seconds: float = 0.0  # wall time of the training steps and the inference call


def keras_optimizer(keras, name: str, overrides: dict | None = None):
    kwargs = {**OPTIMIZERS[name], **(overrides or {})}
    if name == "adam":
        return keras.optimizers.Adam(**kwargs)
    return keras.optimizers.SGD(**kwargs)


def native_optimizer(nn, name: str, overrides: dict | None = None):
    kwargs = {**OPTIMIZERS[name], **(overrides or {})}
    if name == "adam":
        return nn.optimizers.Adam(**kwargs)
    return nn.optimizers.SGD(**kwargs)


def build_keras_model(layers: list[tuple[str, dict]], dtype: str, input_dim: int):
    from parity import reference
    from parity.specs import get_spec

    keras = reference.keras()
    built = []
    for name, config in layers:
        spec = get_spec(name)
        built.append(
            spec.build_keras(keras, config, dtype, (None, None, spec.input_features(config)))
        )
    model = keras.Sequential(built)
    model.build((None, None, input_dim))
    return model


def build_native_model(layers: list[tuple[str, dict]]):
    import nntk_core as nn
    from parity.specs import get_spec

    return nn.Sequential([get_spec(name).build_native(nn, config) for name, config in layers])


def train_keras(model, data, optimizer, dtype, *, loss=None, forward=None) -> TrainingRun:
    """Keras's custom training loop: GradientTape + optimizer.apply_gradients, eager.

    The loss is keras.losses.CategoricalCrossentropy() on the model's output (or
    `loss`, a Keras loss). For a TimeDistributed(Dense(softmax)) head that output is a
    reshape of the softmax and carries no `_keras_logits`, so Keras takes the
    probability path (renormalise, clip to [1e-7, 1 - 1e-7]): the path nntk's
    CategoricalCrossentropy() takes (tests/test_model_keras.py checks both paths).
    `optimizer`: an OPTIMIZERS name or a Keras optimizer; `forward(x, training)`: the
    model's call (default: the model itself)."""
    from parity import reference

    tf, keras = reference.tensorflow(), reference.keras()
    opt = keras_optimizer(keras, optimizer) if isinstance(optimizer, str) else optimizer
    loss_fn = loss or keras.losses.CategoricalCrossentropy()
    forward = forward or model
    run = TrainingRun()
    start = time.perf_counter()
    for x, y in data["batches"]:
        x, y = tf.constant(x.astype(dtype)), tf.constant(y.astype(dtype))
        with tf.GradientTape() as tape:
            loss = loss_fn(y, forward(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        run.losses.append(float(loss))
        run.weights.append([w.copy() for w in model.get_weights()])
    run.inference = forward(tf.constant(data["test"].astype(dtype)), training=False).numpy()
    run.seconds = time.perf_counter() - start
    return run


def train_native(
    model, data, optimizer, overrides: dict | None = None, *, loss=None
) -> TrainingRun:
    """nntk's train_step on the same batches; `optimizer` an OPTIMIZERS name (with
    `overrides` of its arguments) or an nntk optimizer, `loss` an nntk loss (default
    CategoricalCrossentropy()). The optimizer is closed afterwards."""
    import nntk_core as nn

    opt = native_optimizer(nn, optimizer, overrides) if isinstance(optimizer, str) else optimizer
    loss = loss or nn.losses.CategoricalCrossentropy()
    run = TrainingRun()
    start = time.perf_counter()
    for x, y in data["batches"]:
        run.losses.append(model.train_step(x, y, loss, opt))
        run.weights.append(model.get_weights())
    run.inference = model(data["test"], training=False)
    run.seconds = time.perf_counter() - start
    opt.close()
    return run


def draw_data(rng, steps: int, batch: int, length: int, input_dim: int, classes: int, out_len):
    """Random batches (x, one-hot y) and a test batch."""
    batches = []
    for _ in range(steps):
        x = rng.standard_normal((batch, length, input_dim)).astype(np.float32)
        labels = rng.integers(0, classes, size=(batch, out_len))
        batches.append((x, np.eye(classes, dtype=np.float32)[labels]))
    test = rng.standard_normal((batch, length, input_dim)).astype(np.float32)
    return {"batches": batches, "test": test}


def weight_labels(keras_model) -> list[str]:
    """'layer 3 (gru) recurrent_kernel' for every weight of the Keras model, in
    get_weights() order (Bidirectional: forward_kernel, backward_kernel, ...)."""
    from parity.specs import get_spec

    labels = []
    for index, layer in enumerate(keras_model.layers):
        spec_name = _SPEC_OF_KERAS.get(type(layer).__name__, "")
        names = (
            get_spec(spec_name).weight_names_of(layer.weights)
            if spec_name
            else [w.name.split("/")[-1].split(":")[0] for w in layer.weights]
        )
        kind = type(layer).__name__
        labels.extend(f"layer {index} ({kind}) {n}" for n in names)
    return labels


_SPEC_OF_KERAS = {"Bidirectional": "bidirectional"}


@dataclass
class KerasReference:
    """The tf.keras side of a model-parity run: the initial weights (Keras float32
    initializers), the data's output shape, and the float32 and float64 runs."""

    initial: list[np.ndarray]
    labels: list[str]  # weight_labels() of the Keras model
    out_len: int
    classes: int
    run32: TrainingRun
    run64: TrainingRun


# The Keras side depends only on the model, the optimizer, the sizes, the seed and the
# reference stack, never on nntk; ci/test.sh sets this variable so the second pass
# (the portable build) reuses the first pass's tf.keras runs instead of recomputing
# them (every CI run still computes each reference live, once).
CACHE_ENV = "NNTK_MODEL_REFERENCE_CACHE"
_CACHE_FORMAT = 1


def _cache_key(layers, optimizer, steps, batch, length, seed) -> str:
    import hashlib
    import json
    from importlib import metadata

    from parity import settings

    versions = {}
    for dist in ("tensorflow", "tf-keras", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "absent"
    payload = {
        "format": _CACHE_FORMAT,
        "layers": layers,
        "optimizer": [optimizer, OPTIMIZERS[optimizer]],
        "sizes": [steps, batch, length, seed],
        "versions": versions,
        "settings": settings.REFERENCE_ENV,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _save_reference(path, ref: KerasReference) -> None:
    import json

    arrays = {f"initial_{i}": w for i, w in enumerate(ref.initial)}
    for tag, run in (("f32", ref.run32), ("f64", ref.run64)):
        arrays[f"{tag}_losses"] = np.array(run.losses)
        arrays[f"{tag}_inference"] = run.inference
        arrays[f"{tag}_seconds"] = np.array(run.seconds)
        for step, weights in enumerate(run.weights):
            arrays.update({f"{tag}_w{step}_{i}": w for i, w in enumerate(weights)})
    meta = {"labels": ref.labels, "out_len": ref.out_len, "classes": ref.classes}
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _load_reference(path) -> KerasReference | None:
    import json

    try:
        with np.load(path) as f:
            meta = json.loads(str(f["meta"]))
            count = len(meta["labels"])
            runs = []
            for tag in ("f32", "f64"):
                losses = [float(v) for v in f[f"{tag}_losses"]]
                weights = [
                    [f[f"{tag}_w{step}_{i}"] for i in range(count)] for step in range(len(losses))
                ]
                runs.append(
                    TrainingRun(losses, weights, f[f"{tag}_inference"], float(f[f"{tag}_seconds"]))
                )
            initial = [f[f"initial_{i}"] for i in range(count)]
    except (OSError, KeyError, ValueError):
        return None  # missing or unreadable: recompute
    return KerasReference(initial, meta["labels"], meta["out_len"], meta["classes"], *runs)


def keras_reference(
    layers: list[tuple[str, dict]],
    optimizer: str,
    *,
    steps: int,
    batch: int,
    length: int,
    seed: int,
) -> KerasReference:
    """Runs tf.keras (float32, and float64 as the referee) for a model-parity run,
    or reads the run from the cache directory named by $NNTK_MODEL_REFERENCE_CACHE."""
    import os
    from pathlib import Path

    key = _cache_key(layers, optimizer, steps, batch, length, seed)
    if key in _MEMO:
        return _MEMO[key]
    cache = os.environ.get(CACHE_ENV)
    path = None
    if cache:
        path = Path(cache) / f"{key}.npz"
        cached = _load_reference(path) if path.exists() else None
        if cached is not None:
            return _remember(key, cached)

    from parity import reference
    from parity.specs import get_spec

    reference.keras().utils.set_random_seed(seed)
    input_dim = get_spec(layers[0][0]).input_features(layers[0][1])
    keras32 = build_keras_model(layers, "float32", input_dim)
    keras64 = build_keras_model(layers, "float64", input_dim)
    initial = keras32.get_weights()
    keras64.set_weights([w.astype(np.float64) for w in initial])
    out_shape = keras32.compute_output_shape((batch, length, input_dim))
    out_len, classes = int(out_shape[1]), int(out_shape[2])
    data = model_data(seed, steps, batch, length, input_dim, classes, out_len)
    ref = KerasReference(
        initial,
        weight_labels(keras32),
        out_len,
        classes,
        train_keras(keras32, data, optimizer, np.float32),
        train_keras(keras64, data, optimizer, np.float64),
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_reference(path, ref)
    return _remember(key, ref)


_MEMO: dict[str, KerasReference] = {}  # the last few runs of this process


def _remember(key: str, ref: KerasReference) -> KerasReference:
    while len(_MEMO) >= 4:
        _MEMO.pop(next(iter(_MEMO)))
    _MEMO[key] = ref
    return ref


def model_data(seed: int, steps: int, batch: int, length: int, input_dim, classes, out_len):
    """The batches of a model-parity run: a function of the seed and the sizes only."""
    return draw_data(np.random.default_rng(seed), steps, batch, length, input_dim, classes, out_len)
