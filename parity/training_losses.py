"""The `loss` training spec (parity/training.py describes the training fixtures): every
nntk loss against its tf.keras twin."""

from __future__ import annotations

import numpy as np

from parity.case import Case
from parity.compare import Tolerance
from parity.fixtures import ArrayData
from parity.training_spec import TrainingSpec, tf_and_keras


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
        tf, keras = tf_and_keras()
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
