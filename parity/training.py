"""Golden fixtures of the training code: losses, optimizers and whole-model training
steps, recorded from tf.keras so that the TF-free replay covers `csrc/src/train/`
(loss.c, optimizer.c) and `Sequential.train_step`.

Three kinds of spec, each a grid of options:

- `loss`: every nntk loss (MeanSquaredError, CategoricalCrossentropy both ways) on
  ordinary values and on extreme ones (probabilities exactly 0 and 1, logits spread
  over 100 apart, predictions 1e3 off), one-hot and soft targets, (B, C) and (B, T, C).
  Quantities: the loss value (alone, and alongside the gradient) and its gradient
  w.r.t. y_pred.
- `sgd`, `adam`: every optimizer option (learning rate, momentum, nesterov; betas,
  epsilon, amsgrad) and a learning rate assigned between steps, over STEPS steps of
  the same gradients on three variables (so bias correction and step counts matter).
  Quantities: each variable after every step (axis 0 = step), the iteration count.
- `train_step`: nn.Sequential.train_step over a few steps: a conv (Conv1d, BatchNorm,
  relu) or GRU body, four heads (TimeDistributedDense softmax: Keras's probability
  path; Dense softmax and linear + Activation softmax: Keras's implicit logits path,
  two branches of train_step; linear), every loss and both optimizers. Quantities:
  the loss per step, every weight (BatchNorm moving statistics included) after every
  step, the inference output after training.

Each spec's fixtures are the full product of its valid option combinations, so no
option has a single value across a spec's fixtures, alone or together with any other
option (`missing_pairs` checks that on replay). Tolerances are declared on each spec
with their reasons. Case ids are `parity.case.Case` ids (`adam?amsgrad=true&...`).

Nothing at module level imports TensorFlow: `reference()` does, lazily (recording and
freshness only); replay needs `run_native` alone.

The specs' base is in parity/training_spec.py, the loss spec in
parity/training_losses.py, the optimizer specs in parity/training_optimizers.py; this
module holds the train_step spec, the registry and the native side.
"""

from __future__ import annotations

import numpy as np

from parity.case import Case
from parity.compare import compare
from parity.fixtures import ArrayData
from parity.model_training import OPTIMIZERS
from parity.training_losses import LossSpec
from parity.training_optimizers import AdamSpec, SGDSpec
from parity.training_spec import TrainingSpec, tf_and_keras

SUBDIR = "training"  # under the layer fixture directory, with its own manifest.json


# -- whole-model training steps ----------------------------------------------------------------
class TrainStepSpec(TrainingSpec):
    """nn.Sequential.train_step against a tf.keras GradientTape + apply_gradients loop
    (parity/model_training.py builds both models from the layer specs)."""

    name = "train_step"
    uses_optimizer = True
    description = "nn.Sequential.train_step over 3 steps against a tf.keras training loop"
    options = {
        "body": ("conv", "gru"),
        "head": ("time_distributed_softmax", "dense_softmax", "activation_softmax", "linear"),
        "loss": (
            "categorical_crossentropy",
            "categorical_crossentropy_from_logits",
            "mean_squared_error",
        ),
        "optimizer": tuple(OPTIMIZERS),
        # the head's initial kernel x100: a saturated softmax, probabilities clipped at
        # 1e-7 and 1 - 1e-7, where Keras's probability and logits paths part ways
        "confident": (False, True),
    }
    confident_scale = 100.0
    batch, steps, rank = 3, 7, 3  # batch and sequence length of every training step
    train_steps = 3
    input_dim, width, classes, kernel = 3, 4, 3, 3

    @property
    def tolerances(self):
        from parity.model_parity import STEP_TOLERANCE

        return {"": STEP_TOLERANCE}

    def valid(self, config):
        if config["confident"] and config["loss"] != "categorical_crossentropy":
            return False  # saturation matters only where the two paths differ
        if config["confident"] and config["body"] == "conv":
            # The conv bias's true gradient is 0 (it feeds BatchNorm): Adam turns its float32
            # noise into moves that reach the inference output, x100 here. Measured at x30: Keras
            # float32 itself is then off by 2.2e-3 there (nntk 0.05-0.35x that).
            return False
        # cross-entropy on probabilities needs a softmax head; from_logits a linear one
        if config["loss"] == "categorical_crossentropy":
            return config["head"] != "linear"
        if config["loss"] == "categorical_crossentropy_from_logits":
            return config["head"] == "linear"
        return True

    def layers(self, config: dict) -> list[tuple[str, dict]]:
        import nntk_models

        if config["body"] == "conv":
            body = nntk_models.conv_bn_relu(self.input_dim, self.width, self.kernel, padding="same")
        else:
            body = [nntk_models.gru(self.input_dim, self.width)]
        head = {"units": self.classes, "input_dim": self.width, "use_bias": True}
        if config["head"] == "time_distributed_softmax":
            return body + [("time_distributed_dense", {**head, "activation": "softmax"})]
        if config["head"] == "dense_softmax":
            return body + [("dense", {**head, "activation": "softmax"})]
        linear = ("time_distributed_dense", {**head, "activation": "linear"})
        if config["head"] == "activation_softmax":
            softmax = ("activation", {"activation": "softmax", "input_dim": self.classes})
            return body + [linear, softmax]
        return body + [linear]

    def tolerance(self, quantity):
        from parity.model_parity import NOISE_ONLY_TOLERANCE

        # the conv bias feeds BatchNorm: its true gradient is zero (parity/model_parity.py explains)
        if quantity.startswith("layer 0 (Conv1D) bias"):
            return NOISE_ONLY_TOLERANCE
        return super().tolerance(quantity)

    def axis_names(self, quantity, case_config, ndim):
        if quantity == "inference":
            return ["b", "t", "class"]
        return ["step"] + [f"i{k}" for k in range(ndim - 1)]

    def draw(self, case: Case) -> ArrayData:
        """Initial weights from the Keras float32 model's initializers (TensorFlow),
        batches from the seed."""
        from parity import model_training, reference

        layers = self.layers(case.config)
        reference.keras().utils.set_random_seed(case.seed)
        keras32 = model_training.build_keras_model(layers, "float32", self.input_dim)
        out = keras32.compute_output_shape((case.batch, case.steps, self.input_dim))
        data = model_training.draw_data(
            np.random.default_rng(case.seed),
            self.train_steps,
            case.batch,
            case.steps,
            self.input_dim,
            self.classes,
            int(out[1]),
        )
        labels = model_training.weight_labels(keras32)
        arrays = {f"initial.{i}": w for i, w in enumerate(keras32.get_weights())}
        if case.config["confident"]:
            head = len(layers) - (2 if case.config["head"] == "activation_softmax" else 1)
            i = labels.index(next(x for x in labels if x.startswith(f"layer {head} ")))
            assert labels[i].endswith("kernel"), labels[i]
            arrays[f"initial.{i}"] = arrays[f"initial.{i}"] * np.float32(self.confident_scale)
        arrays["x"] = np.stack([x for x, _ in data["batches"]])  # (train_steps, B, T, D)
        arrays["y"] = np.stack([y for _, y in data["batches"]])
        arrays["test"] = data["test"]
        settings = {"labels": labels, "train_steps": self.train_steps}
        return ArrayData(arrays, settings)

    def initial_weights(self, data: ArrayData) -> list[np.ndarray]:
        """The case's initial weights (every run starts from them), in get_weights() order."""
        return [data.arrays[f"initial.{i}"] for i in range(len(data.settings["labels"]))]

    def quantities(self, data: ArrayData, losses, history, inference) -> dict:
        """The compared quantities of one run of the case (Keras's, nn.Sequential's, the C
        model's): each step's loss, each weight after every step, the final inference."""
        out = {"loss": np.asarray(losses, np.float64), "inference": inference}
        for i, label in enumerate(data.settings["labels"]):
            out[label] = np.stack([weights[i] for weights in history])
        return out

    def keras_quantities(self, case, data, dtype):
        from parity import model_training

        tf, keras = tf_and_keras()
        c = case.config
        model = model_training.build_keras_model(
            self.layers(c), np.dtype(dtype).name, self.input_dim
        )
        model.set_weights([w.astype(dtype) for w in self.initial_weights(data)])
        opt = model_training.keras_optimizer(keras, c["optimizer"])
        loss_fn = {
            # on a Dense(softmax) output Keras takes the softmax's logits by itself
            "categorical_crossentropy": keras.losses.CategoricalCrossentropy(),
            "categorical_crossentropy_from_logits": keras.losses.CategoricalCrossentropy(
                from_logits=True
            ),
            "mean_squared_error": keras.losses.MeanSquaredError(),
        }[c["loss"]]
        losses, history = [], []
        for step in range(data.settings["train_steps"]):
            x = tf.constant(data.arrays["x"][step].astype(dtype))
            y = tf.constant(data.arrays["y"][step].astype(dtype))
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            losses.append(float(loss))
            history.append(model.get_weights())
        inference = model(tf.constant(data.arrays["test"].astype(dtype)), training=False).numpy()
        return self.quantities(data, losses, history, inference)

    def native_model(self, nn, case, data):
        """The case's nn.Sequential (with its initial weights), optimizer and loss."""
        from parity import model_training
        from parity.specs import get_spec

        c = case.config
        model = nn.Sequential(
            [get_spec(name).build_native(nn, config) for name, config in self.layers(c)]
        )
        opt = model_training.native_optimizer(nn, c["optimizer"])
        loss = {
            "categorical_crossentropy": lambda: nn.losses.CategoricalCrossentropy(),
            "categorical_crossentropy_from_logits": lambda: nn.losses.CategoricalCrossentropy(
                from_logits=True
            ),
            "mean_squared_error": lambda: nn.losses.MeanSquaredError(),
        }[c["loss"]]()
        return model, opt, loss

    def run_native(self, nn, case, data):
        model, opt, loss = self.native_model(nn, case, data)
        try:
            model.set_weights(self.initial_weights(data))
            losses, history = [], []
            for step in range(data.settings["train_steps"]):
                x, y = data.arrays["x"][step], data.arrays["y"][step]
                losses.append(model.train_step(x, y, loss, opt))
                history.append(model.get_weights())
            inference = model(data.arrays["test"], training=False)
        finally:
            model.close()
            opt.close()
        return self.quantities(data, losses, history, inference)


_SPECS = [LossSpec(), SGDSpec(), AdamSpec(), TrainStepSpec()]


def all_specs() -> list[TrainingSpec]:
    return list(_SPECS)


def spec_names() -> list[str]:
    return [s.name for s in _SPECS]


def get_spec(name: str) -> TrainingSpec:
    for spec in _SPECS:
        if spec.name == name:
            return spec
    raise KeyError(name)


# -- the native side, and checking one case --------------------------------------------------
class NativeTrainingBackend:
    """The real library: the spec runs with `nn` = the nntk_core module. A harness
    test's fake passes another object with the same names (losses, optimizers, ...)."""

    name = "nntk"

    def __init__(self, nn=None):
        self.nn = nn

    def run(self, spec: TrainingSpec, case: Case, data: ArrayData) -> dict[str, np.ndarray]:
        nn = self.nn
        if nn is None:
            import nntk_core as nn
        return {k: np.asarray(v) for k, v in spec.run_native(nn, case, data).items()}


def check_case(spec, case, data, float64, float32, backend=None, keep_arrays=False):
    """The runner's check_case for a training spec (same CaseResult, same compare); then,
    for a spec that trains with an optimizer, on the real library (or a backend with
    another `nn`), the same case with the optimizer saved and restored after every step
    (`restored_optimizer_comparisons`)."""
    from parity.runner import check_case as check

    backend = backend or NativeTrainingBackend()
    result = check(spec, case, data, float64, float32, backend, keep_arrays=True)
    if not result.error and spec.uses_optimizer and isinstance(backend, NativeTrainingBackend):
        plain = result.arrays[2]
        result.comparisons += restored_optimizer_comparisons(
            spec, case, data, float64, float32, backend.nn, plain
        )
        if isinstance(spec, TrainStepSpec) and backend.nn is None:
            from parity.c_model_variant import c_model_comparisons

            result.comparisons += c_model_comparisons(spec, case, data, float64, float32, plain)
    if not keep_arrays:
        result.arrays = None
    return result


# -- the optimizer saved and restored ----------------------------------------------------------
RESTORED = "optimizer restored every step"  # the variant's name in reports


class RestoredEveryStep:
    """An nntk optimizer that, after each step, is saved and replaced by a new one
    restored from what was saved, as an app that saves its training and resumes it
    later does: get_state (NNTKOptimizerIterations, StateSize, GetState) and get_config,
    then a new optimizer of that type and configuration given set_state (SetState,
    SetIterations). nntk/optimizer.h promises the next steps are then bit for bit the
    saved optimizer's."""

    def __init__(self, make, **kwargs):
        object.__setattr__(self, "_make", make)
        object.__setattr__(self, "_optimizer", make(**kwargs))
        object.__setattr__(self, "restores", 0)
        # A harness fake's optimizer may have no state to save: it then runs as it is.
        object.__setattr__(self, "saveable", hasattr(self._optimizer, "get_state"))

    def __getattr__(self, name):
        return getattr(self._optimizer, name)

    def __setattr__(self, name, value):  # e.g. learning_rate: the current optimizer's
        setattr(self._optimizer, name, value)

    def apply_gradients(self, pairs):
        result = self._optimizer.apply_gradients(pairs)
        if not self.saveable:
            return result
        state, config = self._optimizer.get_state(), self._optimizer.get_config()
        restored = self._make(**config)
        restored.set_state(state)
        self._optimizer.close()
        object.__setattr__(self, "_optimizer", restored)
        object.__setattr__(self, "restores", self.restores + 1)
        return result

    def close(self):
        self._optimizer.close()


class _RestoringOptimizers:
    """Stands in for nn.optimizers: every optimizer class (anything callable) makes
    RestoredEveryStep optimizers (`made`); anything else is nn.optimizers' own."""

    def __init__(self, optimizers):
        self._optimizers = optimizers
        self.made: list[RestoredEveryStep] = []

    def __getattr__(self, name):
        found = getattr(self._optimizers, name)
        if not callable(found):
            return found

        def make(**kwargs):
            self.made.append(RestoredEveryStep(found, **kwargs))
            return self.made[-1]

        return make


class _WithRestoringOptimizers:
    """Stands in for the nn module, with _RestoringOptimizers as its optimizers."""

    def __init__(self, nn):
        self._nn = nn
        self.optimizers = _RestoringOptimizers(nn.optimizers)

    def __getattr__(self, name):
        return getattr(self._nn, name)


def restored_optimizer_comparisons(spec, case, data, float64, float32, nn, plain):
    """The case run again (`spec.run_native`) with every optimizer saved and restored
    into a new one after every step: each quantity compared with the references (the
    spec's tolerances) and bit for bit with the uninterrupted run's `plain`."""
    from parity import variants

    if nn is None:
        import nntk_core as nn
    variant = variants.Variant(RESTORED, lambda build, case: None)
    restoring = _WithRestoringOptimizers(nn)
    try:
        produced = {k: np.asarray(v) for k, v in spec.run_native(restoring, case, data).items()}
    except Exception as exc:  # a native error fails the variant, reported as such
        return [variants.failed(variant, f"the native side raised: {type(exc).__name__}: {exc}")]
    made = restoring.optimizers.made
    if made and not any(o.saveable for o in made):
        return []  # a harness fake's optimizers, with no state to save: nothing to vary
    if not any(o.restores for o in made):
        return [variants.failed(variant, "no optimizer step ran: nothing was saved or restored")]
    return variants.compare_produced(variant, spec, case, produced, float64, float32, plain)


def run_case(spec: TrainingSpec, case: Case, backend=None, keep_arrays: bool = False):
    """One case live: tf.keras on freshly drawn data, then the native side."""
    data, float64, float32 = spec.reference(case)
    return check_case(spec, case, data, float64, float32, backend, keep_arrays)


def freshness(spec: TrainingSpec, case: Case, stored: ArrayData, float64: dict, float32: dict):
    """Drift messages for one recorded case: data drift (the spec now draws other data)
    and reference drift (tf.keras on the stored data now differs beyond tolerance)."""
    messages = []
    fresh = spec.draw(case)
    same = fresh.settings == stored.settings and set(fresh.arrays) == set(stored.arrays)
    same = same and all(np.array_equal(fresh.arrays[k], stored.arrays[k]) for k in fresh.arrays)
    if not same:
        messages.append(
            "data drift: the spec now draws different data for this case id (the fixture is "
            "still valid; `nntk-parity record --training` would change it)"
        )
    for label, dtype, recorded in (
        ("float64 referee", np.float64, float64),
        ("tf.keras float32", np.float32, float32),
    ):
        new = spec.keras_quantities(case, stored, dtype)
        if set(new) != set(recorded):
            messages.append(f"reference drift: tf.keras now gives quantities {sorted(new)}")
            continue
        for quantity in sorted(new):
            c = compare(
                quantity,
                new[quantity],
                float64[quantity],
                float32[quantity],
                spec.tolerance(quantity),
            )
            if not c.passed:
                messages.append(
                    f"reference drift: {label} {quantity} now differs from the recorded float64 "
                    f"by {c.max_error:.3g} ({100 * c.tolerance_used:.0f}% of tolerance)"
                )
    return messages
