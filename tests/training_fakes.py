"""Fakes (named so) of the training code for the harness tests: a loss derivative
missing 1/batch and Adam's bias correction off by one step, run through the training
fixtures' replay (tests/test_training_fixtures.py) and through the live check of the
fault catalogue (tests/test_harness_selftest.py)."""

from __future__ import annotations

import types

import numpy as np
from helpers import FIXTURES

import nntk_core as nn
from parity import training
from parity.replay import replay


class FakeNN:
    """A fake of the nntk_core module for the harness tests: the real library, except
    for the losses / optimizers given."""

    def __init__(self, **overrides):
        self._overrides = overrides

    def __getattr__(self, name):
        if name in self._overrides:
            return self._overrides[name]
        return getattr(nn, name)


class FakeLossMissingInverseBatch:
    """A real nntk loss whose gradient lacks the 1/batch of the mean over positions
    (faulty=False: the real gradient, the control)."""

    def __init__(self, real, faulty: bool):
        self.real, self.faulty = real, faulty

    def __call__(self, y_true, y_pred):
        return self.real(y_true, y_pred)

    def gradient(self, y_true, y_pred):
        value, grad = self.real.gradient(y_true, y_pred)
        rows = np.size(y_pred) // np.shape(y_pred)[-1]
        return value, grad * np.float32(rows if self.faulty else 1)


def fake_losses(faulty: bool):
    return types.SimpleNamespace(
        MeanSquaredError=lambda **k: FakeLossMissingInverseBatch(
            nn.losses.MeanSquaredError(**k), faulty
        ),
        CategoricalCrossentropy=lambda **k: FakeLossMissingInverseBatch(
            nn.losses.CategoricalCrossentropy(**k), faulty
        ),
    )


class FakeAdamBiasCorrectionOffByOne:
    """Adam in numpy float32, in tf.keras's operation order (optimizer.c's), with the
    bias correction computed for step t + `offset` (offset 0: right, the control)."""

    def __init__(self, offset: int, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False):  # fmt: skip
        self.offset, self.learning_rate = offset, learning_rate
        self.beta_1, self.beta_2 = np.float32(beta_1), np.float32(beta_2)
        self.c1, self.c2 = np.float32(1.0 - beta_1), np.float32(1.0 - beta_2)
        self.epsilon, self.amsgrad = np.float32(epsilon), amsgrad
        self.iterations, self.slots = 0, None

    def apply_gradients(self, pairs):
        pairs = list(pairs)
        if self.slots is None:
            self.slots = [[np.zeros_like(w) for _ in range(3)] for _, w in pairs]
        t = np.float32(self.iterations + 1 + self.offset)
        one = np.float32(1.0)
        root = np.sqrt(one - np.power(self.beta_2, t))
        alpha = np.float32(self.learning_rate) * root / (one - np.power(self.beta_1, t))
        for (g, w), (m, v, v_hat) in zip(pairs, self.slots, strict=True):
            m += (g - m) * self.c1
            v += (g * g - v) * self.c2
            used = v
            if self.amsgrad:
                np.maximum(v_hat, v, out=v_hat)
                used = v_hat
            w -= (m * alpha) / (np.sqrt(used) + self.epsilon)
        self.iterations += 1
        return self.iterations

    def close(self):
        pass


def fake_optimizers(offset: int):
    return types.SimpleNamespace(
        SGD=nn.optimizers.SGD,
        Adam=lambda **k: FakeAdamBiasCorrectionOffByOne(offset, **k),
    )


def replay_with(nn_fake, layers):
    """Replays the training fixtures of `layers` with `nn_fake` in place of nntk_core."""
    backend = training.NativeTrainingBackend(nn_fake)
    return replay(FIXTURES, layers=layers, backends={"training": backend})
