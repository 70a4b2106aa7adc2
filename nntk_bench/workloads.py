"""The workloads W1-W7: their shapes, FLOP counts, weights and data, and the
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
    "W6": "keyword detector streaming, one frame per call, states carried (per frame)",
    "W7a": "GRU inference B=1 T=100 40->256",
    "W7b": "LSTM inference B=1 T=100 40->256",
    "W7c": "GRU forward+backward B=32 T=100 40->256",
    "W7d": "LSTM forward+backward B=32 T=100 40->256",
}
T, D, U, F, K = 100, 40, 64, 64, 5  # steps, input features, units, conv filters, kernel
O = T - K + 1  # noqa: E741 (conv output steps, valid padding)
CLASSES = 2
TRAIN_B = 32
INFER_TOL = 1e-4
LOSS_RTOL = 1e-4
GRAD_TOL = 1e-3
BIG_U = 256  # W7's units


@dataclass(frozen=True)
class Recurrent:
    """A one-layer recurrent workload: `cell` "GRU" or "LSTM" (the nntk class and the
    ONNX operator), 40 -> `units`, T=100; inference at B=1, or (`training`) forward +
    backward at B=32 against an upstream gradient (weight and input gradients)."""

    cell: str
    units: int
    training: bool

    @property
    def gates(self) -> int:
        return 3 if self.cell == "GRU" else 4

    @property
    def batch(self) -> int:
        return TRAIN_B if self.training else 1


RECURRENT = {
    "W1": Recurrent("GRU", U, False),
    "W2": Recurrent("LSTM", U, False),
    "W5": Recurrent("GRU", U, True),
    "W7a": Recurrent("GRU", BIG_U, False),
    "W7b": Recurrent("LSTM", BIG_U, False),
    "W7c": Recurrent("GRU", BIG_U, True),
    "W7d": Recurrent("LSTM", BIG_U, True),
}
# W6 streams W3's network frame by frame: frame i (i = 0..O-1) is the conv's window of
# K input frames x[:, i:i+K] (a view of the feature history, as an app keeps it: the
# newest frame and the K-1 before it), so each call computes one output step. Its
# outputs over the sequence are checked against nntk's full-sequence W3 inference.
STREAMED_FROM = {"W6": "W3"}


# --- FLOPs (matrix products only) ------------------------------------------------------------
def gru_flops(b: int, t: int, d: int, u: int) -> float:
    return 2.0 * b * t * 3 * u * (d + u)


def kws_flops(b: int) -> tuple[float, float]:
    """(forward FLOPs, the conv's share)."""
    conv = 2.0 * b * O * K * D * F
    return conv + 2 * gru_flops(b, O, F, U) + 2.0 * b * O * U * CLASSES, conv


def recurrent_flops(r: Recurrent) -> float:
    """Forward FLOPs; with training x3 (forward + weight gradients + input and state
    gradients)."""
    fwd = 2.0 * r.batch * T * r.gates * r.units * (D + r.units)
    return 3 * fwd if r.training else fwd


def workload_flops(name: str) -> float:
    if name in RECURRENT:
        return recurrent_flops(RECURRENT[name])
    if name == "W6":  # one output step of W3's network
        return kws_flops(1)[0] / O
    if name == "W3":
        return kws_flops(1)[0]
    if name == "W4":  # forward + weight gradients + input gradients except the first layer's
        fwd, conv = kws_flops(TRAIN_B)
        return 3 * fwd - conv
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
    gru_big: list = field(repr=False)  # W7: as gru, lstm with BIG_U units
    lstm_big: list = field(repr=False)
    dy32_big: np.ndarray = field(repr=False)  # (32, T, BIG_U)

    def kws(self) -> list:
        return self.conv + self.bn1 + self.gru1 + self.bn2 + self.gru2 + self.dense

    def recurrent(self, r: Recurrent) -> list:
        """r's weights in Keras's layout."""
        big = r.units == BIG_U
        if r.cell == "GRU":
            return self.gru_big if big else self.gru
        return self.lstm_big if big else self.lstm

    def recurrent_data(self, r: Recurrent) -> tuple[np.ndarray, np.ndarray | None]:
        """(input, upstream gradient or None for inference)."""
        if not r.training:
            return self.x1, None
        return self.x32, self.dy32_big if r.units == BIG_U else self.dy32

    def windows(self) -> list[np.ndarray]:
        """W6's O conv windows (1, K, D): views of x1."""
        return [self.x1[:, i : i + K] for i in range(O)]


def make_weights(seed: int = 0) -> Weights:
    rng = np.random.default_rng(seed)

    def uni(shape, fan_in, fan_out):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype(np.float32)

    def rec(n, m):
        q, _ = np.linalg.qr(rng.standard_normal((m, n)))
        return q.T[:n, :m].astype(np.float32)

    def lstm(u):
        return [uni((D, 4 * u), D, 4 * u), rec(u, 4 * u), small((4 * u,))]

    def small(shape):
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)

    def gru(d, u=U):
        return [uni((d, 3 * u), d, 3 * u), rec(u, 3 * u), small((2, 3 * u))]

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
    weights = dict(
        gru=gru(D),
        lstm=lstm(U),
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
    # W7's drawn after W1-W5's, so those stay what they were
    return Weights(
        **weights,
        gru_big=gru(D, BIG_U),
        lstm_big=lstm(BIG_U),
        dy32_big=rng.standard_normal((TRAIN_B, T, BIG_U)).astype(np.float32),
    )


# --- a framework's runners ---------------------------------------------------------------------
@dataclass
class Runner:
    """fn() runs the workload once; result() the quantity compared (after one fn())."""

    fn: Callable[[], object]
    result: Callable[[], object]


def frame_runner(step: Callable[[int], object], reset: Callable[[], None]) -> Runner:
    """W6's runner from a framework's `step(i)` (frame i in, its output step out, the
    states carried in the step's own buffers) and `reset()` (states to zeros). fn() runs
    the next frame, cycling over the O frames with the states carried on; result()
    resets and streams the sequence: its O output steps (O, CLASSES)."""
    frame = iter(())

    def fn():
        nonlocal frame
        i = next(frame, None)
        if i is None:
            frame = iter(range(O))
            i = next(frame)
        return step(i)

    def result():
        reset()
        outs = [np.array(step(i), np.float32).reshape(-1)[-CLASSES:] for i in range(O)]
        return np.stack(outs)

    return Runner(fn, result)


class Skip(Exception):
    """A framework (or one of its workloads) is not available; the message says why."""


# --- checks --------------------------------------------------------------------------------------
def compare(name: str, got, ref) -> tuple[bool, str]:
    if name == "W4":
        diff = abs(float(got) - float(ref))
        ok = diff <= LOSS_RTOL * abs(float(ref))
        return ok, f"loss {float(got):.6f} vs {float(ref):.6f}"
    if name in RECURRENT and RECURRENT[name].training:
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
