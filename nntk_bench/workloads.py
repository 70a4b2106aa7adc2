"""The workloads W1-W5: their shapes, FLOP counts, weights and data, and the
check of a framework's outputs against the reference's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

WORKLOADS = {
    "W1": "GRU inference B=1 T=100 40->64",
    "W2": "LSTM inference B=1 T=100 40->64",
    "W3": "keyword detector inference B=1 T=100",
    "W4": "keyword detector train step B=32 T=100 (fwd, CCE, bwd, Adam)",
    "W5": "GRU forward+backward B=32 T=100 40->64",
}
T, D, U, F, K = 100, 40, 64, 64, 5  # steps, input features, units, conv filters, kernel
O = T - K + 1  # noqa: E741 (conv output steps, valid padding)
CLASSES = 2
TRAIN_B = 32
INFER_TOL = 1e-4
LOSS_RTOL = 1e-4
GRAD_TOL = 1e-3


# --- FLOPs (matrix products only) ------------------------------------------------------------
def gru_flops(b: int, t: int, d: int, u: int) -> float:
    return 2.0 * b * t * 3 * u * (d + u)


def lstm_flops(b: int, t: int, d: int, u: int) -> float:
    return 2.0 * b * t * 4 * u * (d + u)


def kws_flops(b: int) -> tuple[float, float]:
    """(forward FLOPs, the conv's share)."""
    conv = 2.0 * b * O * K * D * F
    return conv + 2 * gru_flops(b, O, F, U) + 2.0 * b * O * U * CLASSES, conv


def workload_flops(name: str) -> float:
    if name == "W1":
        return gru_flops(1, T, D, U)
    if name == "W2":
        return lstm_flops(1, T, D, U)
    if name == "W3":
        return kws_flops(1)[0]
    if name == "W4":  # forward + weight gradients + input gradients except the first layer's
        fwd, conv = kws_flops(TRAIN_B)
        return 3 * fwd - conv
    if name == "W5":  # forward + weight gradients + input and state gradients
        return 3 * gru_flops(TRAIN_B, T, D, U)
    raise KeyError(name)


# --- weights and data --------------------------------------------------------------------------
@dataclass
class Weights:
    gru: list  # kernel (D, 3U), recurrent (U, 3U), bias (2, 3U)
    lstm: list  # kernel (D, 4U), recurrent (U, 4U), bias (4U,)
    conv: list  # kernel (K, D, F), bias (F,)
    bn1: list  # gamma, beta, moving_mean, moving_variance (F,)
    gru1: list  # (F -> U)
    bn2: list  # (U,)
    gru2: list  # (U -> U)
    dense: list  # kernel (U, 2), bias (2,)
    x1: np.ndarray = field(repr=False)  # (1, T, D)
    x32: np.ndarray = field(repr=False)  # (32, T, D)
    y32: np.ndarray = field(repr=False)  # (32, O, 2) one-hot
    dy32: np.ndarray = field(repr=False)  # (32, T, U) upstream gradient for W5

    def kws(self) -> list:
        return self.conv + self.bn1 + self.gru1 + self.bn2 + self.gru2 + self.dense


def make_weights(seed: int = 0) -> Weights:
    rng = np.random.default_rng(seed)

    def uni(shape, fan_in, fan_out):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype(np.float32)

    def rec(n, m):
        q, _ = np.linalg.qr(rng.standard_normal((m, n)))
        return q.T[:n, :m].astype(np.float32)

    def small(shape):
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)

    def gru(d):
        return [uni((d, 3 * U), d, 3 * U), rec(U, 3 * U), small((2, 3 * U))]

    def bn(c):
        return [
            (1.0 + small((c,))).astype(np.float32),
            small((c,)),
            small((c,)),
            rng.uniform(0.5, 1.5, c).astype(np.float32),
        ]

    y = np.zeros((TRAIN_B, O, CLASSES), np.float32)
    labels = rng.integers(0, CLASSES, (TRAIN_B, O))
    y[np.arange(TRAIN_B)[:, None], np.arange(O)[None, :], labels] = 1
    return Weights(
        gru=gru(D),
        lstm=[uni((D, 4 * U), D, 4 * U), rec(U, 4 * U), small((4 * U,))],
        conv=[uni((K, D, F), K * D, K * F), small((F,))],
        bn1=bn(F),
        gru1=gru(F),
        bn2=bn(U),
        gru2=gru(U),
        dense=[uni((U, CLASSES), U, CLASSES), small((CLASSES,))],
        x1=rng.standard_normal((1, T, D)).astype(np.float32),
        x32=rng.standard_normal((TRAIN_B, T, D)).astype(np.float32),
        y32=y,
        dy32=rng.standard_normal((TRAIN_B, T, U)).astype(np.float32),
    )


# --- a framework's runners ---------------------------------------------------------------------
@dataclass
class Runner:
    """fn() runs the workload once; result() the quantity compared (after one fn())."""

    fn: Callable[[], object]
    result: Callable[[], object]


class Skip(Exception):
    """A framework (or one of its workloads) is not available; the message says why."""


# --- checks --------------------------------------------------------------------------------------
def compare(name: str, got, ref) -> tuple[bool, str]:
    if name == "W4":
        diff = abs(float(got) - float(ref))
        ok = diff <= LOSS_RTOL * abs(float(ref))
        return ok, f"loss {float(got):.6f} vs {float(ref):.6f}"
    if name == "W5":
        worst = 0.0
        for a, b in zip(got, ref, strict=True):
            a, b = np.asarray(a), np.asarray(b)
            worst = max(worst, float(np.max(np.abs(a - b)) / max(1e-30, float(np.max(np.abs(b))))))
        return worst <= GRAD_TOL, f"max |d| / max|ref| = {worst:.2e}"
    a, b = np.asarray(got, np.float32).reshape(-1), np.asarray(ref, np.float32).reshape(-1)
    if a.shape != b.shape:
        return False, f"shape {a.shape} vs {b.shape}"
    diff = float(np.max(np.abs(a - b)))
    return diff <= INFER_TOL, f"max |d| = {diff:.2e}"
