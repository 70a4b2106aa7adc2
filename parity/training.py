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
with their reasons. Case ids are `parity.spec.Case` ids (`adam?amsgrad=true&...`).

Nothing at module level imports TensorFlow: `reference()` does, lazily (recording and
freshness only); replay needs `run_native` alone.
"""

from __future__ import annotations

import itertools

import numpy as np

from parity.compare import Tolerance, compare
from parity.fixtures import ArrayData
from parity.model_training import OPTIMIZERS
from parity.spec import Case

SUBDIR = "training"  # under the layer fixture directory, with its own manifest.json
SEED = 20240611


def _seed(name: str, config: dict) -> int:
    """A case's data seed: a function of the spec and its options only (stable ids)."""
    import zlib

    text = name + "".join(f"&{k}={v}" for k, v in sorted(config.items()))
    return (SEED + zlib.crc32(text.encode())) % 2**31


class TrainingSpec:
    """A grid of options; subclasses say how to draw a case's data, run tf.keras on it
    (`keras_quantities`) and run nntk on it (`run_native`)."""

    name = ""
    description = ""
    options: dict[str, tuple] = {}
    tolerances: dict[str, Tolerance] = {}  # by quantity name prefix ("" = the default)
    batch, steps, rank = 1, 1, 2  # the Case shape fields (see each spec)

    def valid(self, config: dict) -> bool:
        return True

    def configs(self) -> list[dict]:
        """Every valid combination of the options (rank taken out: it is a Case field)."""
        names = list(self.options)
        combos = [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*self.options.values())
        ]
        return [c for c in combos if self.valid(c)]

    def case(self, config: dict) -> Case:
        config = dict(config)
        rank = config.pop("rank", self.rank)
        return Case(
            layer=self.name,
            config=config,
            batch=self.batch,
            steps=self.steps,
            rank=rank,
            seed=_seed(self.name, {**config, "rank": rank}),
        )

    def cases(self) -> list[Case]:
        return [self.case(c) for c in self.configs()]

    # -- the interface SpecRun and the report use --------------------------------------
    def option_values(self, case: Case) -> dict:
        values = {k: case.config[k] for k in self.options if k in case.config}
        if "rank" in self.options:
            values["rank"] = case.rank
        return values

    def shape_buckets(self) -> list:
        return []

    def buckets_hit(self, case: Case) -> list[str]:
        return []

    def tolerance(self, quantity: str) -> Tolerance:
        best = ""
        for prefix in self.tolerances:
            if quantity.startswith(prefix) and len(prefix) >= len(best):
                best = prefix
        return self.tolerances[best]

    def axis_names(self, quantity: str, case_config: dict, ndim: int) -> list[str]:
        return [f"i{k}" for k in range(ndim)]

    def locate(self, quantity: str, index: tuple[int, ...], config: dict) -> str:
        names = self.axis_names(quantity, config, len(index))
        inside = ", ".join(f"{n}={i}" for n, i in zip(names, index, strict=False))
        return f"{quantity} [{inside}]" if inside else quantity

    def missing_pairs(self, cases: list[Case]) -> list[str]:
        """Option value pairs that some valid combination has and no case exercises
        (single values are SpecRun.missing_coverage's job)."""
        every = [self.option_values(self.case(c)) for c in self.configs()]
        seen = [self.option_values(c) for c in cases]
        missing = []
        for a, b in itertools.combinations(self.options, 2):
            wanted = dict.fromkeys((v[a], v[b]) for v in every)
            have = {(v.get(a), v.get(b)) for v in seen}
            missing += [f"{a}={x!r} with {b}={y!r}" for x, y in wanted if (x, y) not in have]
        return missing

    # -- data and the two sides ----------------------------------------------------------
    def draw(self, case: Case) -> ArrayData:
        """The case's data (numpy only, from case.seed)."""
        raise NotImplementedError

    def keras_quantities(self, case: Case, data: ArrayData, dtype) -> dict[str, np.ndarray]:
        """tf.keras on the data, in `dtype` (np.float64: the referee)."""
        raise NotImplementedError

    def run_native(self, nn, case: Case, data: ArrayData) -> dict[str, np.ndarray]:
        """nntk (`nn`: the nntk_core module, or a fake with the same names) on the data."""
        raise NotImplementedError

    def reference(self, case: Case) -> tuple[ArrayData, dict, dict]:
        data = self.draw(case)
        return (
            data,
            self.keras_quantities(case, data, np.float64),
            self.keras_quantities(case, data, np.float32),
        )


def _keras():
    from parity import reference

    return reference.tensorflow(), reference.keras()


# -- losses ------------------------------------------------------------------------------------
def keras_loss(keras, name: str, from_logits: bool = False):
    """The tf.keras twin of nntk loss `name` ("mean_squared_error" or
    "categorical_crossentropy"): the one place the losses' twins are built."""
    if name == "mean_squared_error":
        return keras.losses.MeanSquaredError()
    return keras.losses.CategoricalCrossentropy(from_logits=from_logits)


def native_loss(nn, name: str, from_logits: bool = False):
    """The nntk loss `name` (as keras_loss names it)."""
    if name == "mean_squared_error":
        return nn.losses.MeanSquaredError()
    return nn.losses.CategoricalCrossentropy(from_logits=from_logits)


class LossSpec(TrainingSpec):
    name = "loss"
    description = "nn.losses: value and d loss / d y_pred against keras.losses"
    options = {
        "loss": ("mean_squared_error", "categorical_crossentropy"),
        "from_logits": (False, True),
        "values": ("ordinary", "extreme"),
        "target": ("onehot", "soft"),
        "rank": (2, 3),
    }
    tolerances = {
        "": Tolerance(
            atol=1e-5,
            rtol=1e-4,
            k=8,
            reason="as tests/test_losses_keras.py: nntk sums in double and rounds once to "
            "float32, so its error is float32 rounding of the result (~1e-7 of the scale); "
            "the bound leaves room for Keras float32's own clipping at 1 - 1e-7",
        )
    }
    batch, steps = 5, 3
    classes = 4

    def valid(self, config: dict) -> bool:
        return not (config["loss"] == "mean_squared_error" and config["from_logits"])

    def axis_names(self, quantity, case_config, ndim):
        if quantity.startswith("value"):
            return []  # a scalar, stored as (1,)
        return ["b", "t", "class"] if ndim == 3 else ["b", "class"]

    def draw(self, case: Case) -> ArrayData:
        rng = np.random.default_rng(case.seed)
        c = case.config
        shape = (
            (case.batch, self.classes) if case.rank == 2 else (case.batch, case.steps, self.classes)
        )
        rows = int(np.prod(shape[:-1]))
        flat = (rows, self.classes)
        if c["target"] == "onehot":
            y_true = np.eye(self.classes)[rng.integers(0, self.classes, rows)]
        else:
            y_true = rng.uniform(0.0, 1.0, flat)
            y_true /= y_true.sum(-1, keepdims=True)
        extreme = c["values"] == "extreme"
        if c["loss"] == "mean_squared_error":
            y_pred = rng.normal(0.0, 2.0, flat)
            if extreme:  # predictions 1e3 off, and a row exactly on target (zero error)
                y_pred *= 500.0
                y_pred[0] = y_true[0]
        elif c["from_logits"]:
            y_pred = rng.normal(0.0, 3.0, flat)
            if extreme:  # logits spread over 100 apart (exp overflows float32 beyond ~88)
                y_pred = rng.uniform(-90.0, 90.0, flat)
                y_pred[0] = [150.0, -150.0, 0.0, 40.0]
                y_pred[1] = 500.0  # all equal and large: a uniform softmax
                y_pred[3] = 1e30  # the loss is log C: lost if max + log Σ is formed first
                y_pred[2, 0] = -1e3
        else:
            z = rng.normal(0.0, 2.0, flat)
            y_pred = np.exp(z - z.max(-1, keepdims=True))
            y_pred *= rng.uniform(0.3, 3.0, (rows, 1))  # Keras renormalises by the row sum
            if extreme:  # probabilities exactly 0 and 1 (clipped to [1e-7, 1 - 1e-7])
                true_class = np.argmax(y_true, -1)
                y_pred[0] = np.eye(self.classes)[true_class[0]]  # right and certain
                y_pred[1] = np.eye(self.classes)[(true_class[1] + 1) % self.classes]  # wrong
                y_pred[2, true_class[2]] = 0.0  # the true class at 0, the others not
                y_pred[3, 1:] = 0.0
                y_pred[4, 0] *= 1e-9  # below 1e-7 after renormalisation, not 0
        arrays = {
            "y_true": y_true.reshape(shape).astype(np.float32),
            "y_pred": y_pred.reshape(shape).astype(np.float32),
        }
        return ArrayData(arrays, {})

    def keras_quantities(self, case, data, dtype):
        tf, keras = _keras()
        c = case.config
        loss = keras_loss(keras, c["loss"], c["from_logits"])
        true = tf.constant(data.arrays["y_true"].astype(dtype))
        pred = tf.constant(data.arrays["y_pred"].astype(dtype))
        with tf.GradientTape() as tape:
            tape.watch(pred)
            value = loss(true, pred)
        # 1-d values: fixtures store arrays at least 1-d
        return {
            "value": np.reshape(loss(true, pred).numpy(), 1),  # a plain call
            "value:with_gradient": np.reshape(value.numpy(), 1),
            "grad:y_pred": tape.gradient(value, pred).numpy(),
        }

    def run_native(self, nn, case, data):
        c = case.config
        loss = native_loss(nn, c["loss"], c["from_logits"])
        y_true, y_pred = data.arrays["y_true"], data.arrays["y_pred"]
        value, grad = loss.gradient(y_true, y_pred)
        return {
            "value": np.full(1, loss(y_true, y_pred), np.float32),  # the value-only path
            "value:with_gradient": np.full(1, value, np.float32),
            "grad:y_pred": grad,
        }


# -- optimizers --------------------------------------------------------------------------------
class OptimizerSpec(TrainingSpec):
    """The same gradients through keras.optimizers.X and nn.optimizers.X, STEPS steps;
    with lr_change the learning rate is assigned (x0.37) before step LR_CHANGE_STEP."""

    keras_class = ""
    steps = 6  # optimizer steps: Adam's bias correction changes at every one
    lr_change_step = 3
    variable_shapes = ((3, 4), (5,), (2, 1, 3))  # three blocks: the slot offsets matter
    tolerances = {
        "": Tolerance(
            atol=1e-6,
            rtol=1e-5,
            k=2,
            reason="nntk reproduces tf.keras float32's update operation by operation (bitwise "
            "in tests/test_optimizers_keras.py), so it may be no less accurate than Keras "
            "float32 (k=2 leaves one ulp to another libm's powf); atol/rtol: a few float32 "
            "roundings per step over 6 steps",
        ),
        "iterations": Tolerance(
            atol=1e-9, rtol=0.0, k=1, reason="a step count: exact (any difference is >= 1)"
        ),
    }

    def kwargs(self, config: dict) -> dict:
        return {k: v for k, v in config.items() if k != "lr_change"}

    def axis_names(self, quantity, case_config, ndim):
        return ["step"] + [f"i{k}" for k in range(ndim - 1)]

    def draw(self, case: Case) -> ArrayData:
        rng = np.random.default_rng(case.seed)
        arrays = {}
        for i, shape in enumerate(self.variable_shapes):
            arrays[f"initial.{i}"] = rng.standard_normal(shape).astype(np.float32)
        for i, shape in enumerate(self.variable_shapes):
            # (steps, *shape): a scale that changes from step to step (amsgrad's max
            # matters), and some exact zeros
            g = rng.standard_normal((case.steps, *shape))
            g *= 10.0 ** rng.uniform(-2.0, 0.5, (case.steps,) + (1,) * len(shape))
            g[rng.uniform(size=g.shape) < 0.1] = 0.0
            arrays[f"grad.{i}"] = g.astype(np.float32)
        return ArrayData(arrays, {})

    def _learning_rates(self, case: Case) -> list[float]:
        lr = case.config["learning_rate"]
        return [
            lr * 0.37 if case.config["lr_change"] and step >= self.lr_change_step else lr
            for step in range(case.steps)
        ]

    def _collect(self, history: list[list[np.ndarray]], iterations: list[int]) -> dict:
        out = {
            f"variable {i}": np.stack([h[i] for h in history])
            for i in range(len(self.variable_shapes))
        }
        out["iterations"] = np.asarray(iterations, np.float64)
        return out

    def keras_quantities(self, case, data, dtype):
        tf, keras = _keras()
        n = len(self.variable_shapes)
        variables = [tf.Variable(data.arrays[f"initial.{i}"].astype(dtype)) for i in range(n)]
        opt = getattr(keras.optimizers, self.keras_class)(**self.kwargs(case.config))
        history, iterations = [], []
        for step, lr in enumerate(self._learning_rates(case)):
            if lr != opt.learning_rate.numpy():
                opt.learning_rate = lr
            grads = [tf.constant(data.arrays[f"grad.{i}"][step].astype(dtype)) for i in range(n)]
            opt.apply_gradients(zip(grads, variables, strict=True))
            history.append([v.numpy() for v in variables])
            iterations.append(int(opt.iterations.numpy()))
        return self._collect(history, iterations)

    def run_native(self, nn, case, data):
        n = len(self.variable_shapes)
        params = [data.arrays[f"initial.{i}"].copy() for i in range(n)]
        opt = getattr(nn.optimizers, self.keras_class)(**self.kwargs(case.config))
        history, iterations = [], []
        try:
            for step, lr in enumerate(self._learning_rates(case)):
                if lr != opt.learning_rate:
                    opt.learning_rate = lr
                grads = [data.arrays[f"grad.{i}"][step] for i in range(n)]
                iterations.append(opt.apply_gradients(zip(grads, params, strict=True)))
                history.append([p.copy() for p in params])
        finally:
            opt.close()
        return self._collect(history, iterations)


class SGDSpec(OptimizerSpec):
    name = "sgd"
    keras_class = "SGD"
    description = "nn.optimizers.SGD against keras.optimizers.SGD, 6 steps"
    options = {
        "learning_rate": (0.01, 0.2),
        "momentum": (0.0, 0.9),
        "nesterov": (False, True),
        "lr_change": (False, True),
    }


class AdamSpec(OptimizerSpec):
    name = "adam"
    keras_class = "Adam"
    description = "nn.optimizers.Adam against keras.optimizers.Adam, 6 steps"
    options = {
        "learning_rate": (0.001, 0.05),
        "beta_1": (0.9, 0.5),
        "beta_2": (0.999, 0.9),
        "epsilon": (1e-7, 0.1),
        "amsgrad": (False, True),
        "lr_change": (False, True),
    }


# -- whole-model training steps ----------------------------------------------------------------
class TrainStepSpec(TrainingSpec):
    """nn.Sequential.train_step against a tf.keras GradientTape + apply_gradients loop
    (parity/model_training.py builds both models from the layer specs)."""

    name = "train_step"
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

    def _initial(self, data: ArrayData) -> list[np.ndarray]:
        return [data.arrays[f"initial.{i}"] for i in range(len(data.settings["labels"]))]

    def _collect(self, data, losses, history, inference) -> dict:
        out = {"loss": np.asarray(losses, np.float64), "inference": inference}
        for i, label in enumerate(data.settings["labels"]):
            out[label] = np.stack([weights[i] for weights in history])
        return out

    def keras_quantities(self, case, data, dtype):
        from parity import model_training

        tf, keras = _keras()
        c = case.config
        model = model_training.build_keras_model(
            self.layers(c), np.dtype(dtype).name, self.input_dim
        )
        model.set_weights([w.astype(dtype) for w in self._initial(data)])
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
        return self._collect(data, losses, history, inference)

    def run_native(self, nn, case, data):
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
        try:
            model.set_weights(self._initial(data))
            losses, history = [], []
            for step in range(data.settings["train_steps"]):
                x, y = data.arrays["x"][step], data.arrays["y"][step]
                losses.append(model.train_step(x, y, loss, opt))
                history.append(model.get_weights())
            inference = model(data.arrays["test"], training=False)
        finally:
            model.close()
            opt.close()
        return self._collect(data, losses, history, inference)


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
    """The runner's check_case for a training spec (same CaseResult, same compare)."""
    from parity.runner import check_case as check

    return check(
        spec, case, data, float64, float32, backend or NativeTrainingBackend(), keep_arrays
    )


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
