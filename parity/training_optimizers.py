"""The `sgd` and `adam` training specs (parity/training.py describes the training
fixtures): every optimizer option against tf.keras's optimizers."""

from __future__ import annotations

import numpy as np

from parity.case import Case
from parity.compare import Tolerance
from parity.fixtures import ArrayData
from parity.training_spec import TrainingSpec, tf_and_keras


# -- optimizers --------------------------------------------------------------------------------
class OptimizerSpec(TrainingSpec):
    """The same gradients through keras.optimizers.X and nn.optimizers.X, STEPS steps;
    with lr_change the learning rate is assigned (x0.37) before step LR_CHANGE_STEP."""

    keras_class = ""
    uses_optimizer = True
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
        tf, keras = tf_and_keras()
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
