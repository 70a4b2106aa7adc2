"""The networks, as lists of (layer spec name, config) pairs: the spec names and
config fields are those of parity/specs/, which builds each layer on both sides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


def conv_bn_relu(
    input_dim: int, filters: int, kernel: int, padding: str = "valid", momentum: float = 0.99
):
    """Conv1d(input_dim -> filters, kernel) -> BatchNorm -> Activation("relu")."""
    return [
        (
            "conv1d",
            {
                "filters": filters,
                "input_dim": input_dim,
                "kernel_size": kernel,
                "strides": 1,
                "padding": padding,
                "dilation_rate": 1,
                "activation": "linear",
                "use_bias": True,
            },
        ),
        batch_norm(filters, momentum),
        ("activation", {"activation": "relu", "input_dim": filters}),
    ]


def batch_norm(input_dim: int, momentum: float = 0.99):
    """BatchNorm with tf.keras's defaults (momentum 0.99)."""
    return (
        "batch_norm",
        {
            "input_dim": input_dim,
            "momentum": momentum,
            "epsilon": 1e-3,
            "center": True,
            "scale": True,
        },
    )


def softmax_head(input_dim: int, classes: int):
    """TimeDistributedDense(classes, activation="softmax")."""
    return [
        (
            "time_distributed_dense",
            {"units": classes, "input_dim": input_dim, "activation": "softmax", "use_bias": True},
        )
    ]


def _recurrent_config(input_dim: int, units: int) -> dict:
    return {
        "units": units,
        "input_dim": input_dim,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "return_sequences": True,
        "go_backwards": False,
        "return_state": False,
    }


def gru(input_dim: int, units: int):
    """GRU(units, return_sequences=True) with tf.keras's defaults (reset_after=True)."""
    return ("gru", {**_recurrent_config(input_dim, units), "reset_after": True})


def bidirectional_lstm(input_dim: int, units: int):
    """Bidirectional(LSTM(units, return_sequences=True)), merge_mode="concat"."""
    config = {**_recurrent_config(input_dim, units), "reset_after": False}
    return ("bidirectional", {"layer": "lstm", "merge_mode": "concat", **config})


def keyword_detector(
    input_dim: int = 40,
    filters: int = 64,
    kernel: int = 5,
    units: int = 64,
    classes: int = 2,
    padding: str = "same",
    momentum: float = 0.99,
):
    """Conv1d -> BatchNorm -> relu -> GRU -> BatchNorm -> GRU -> TimeDistributedDense(softmax)
    (`momentum`: the BatchNorms')."""
    return [
        *conv_bn_relu(input_dim, filters, kernel, padding, momentum),
        gru(filters, units),
        batch_norm(units, momentum),
        gru(units, units),
        *softmax_head(units, classes),
    ]


def bidirectional_detector(
    input_dim: int = 40,
    filters: int = 64,
    kernel: int = 5,
    units: int = 32,
    classes: int = 2,
    padding: str = "same",
):
    """Conv1d -> BatchNorm -> relu -> Bidirectional(LSTM) -> TimeDistributedDense(softmax)."""
    return [
        *conv_bn_relu(input_dim, filters, kernel, padding),
        bidirectional_lstm(filters, units),
        *softmax_head(2 * units, classes),
    ]


def conv_head(
    input_dim: int = 40,
    filters: int = 64,
    kernel: int = 5,
    classes: int = 2,
    padding: str = "valid",
):
    """Conv1d -> BatchNorm -> relu -> TimeDistributedDense(softmax): no recurrence."""
    return conv_bn_relu(input_dim, filters, kernel, padding) + softmax_head(filters, classes)


@dataclass(frozen=True)
class Network:
    """A model of the issue: how to build its layer list, its full sizes (and the
    batch and sequence length they are trained on), and the weights whose true
    gradient is zero (parity/model_parity.py, NOISE_ONLY_TOLERANCE)."""

    name: str
    build: Callable[..., list]
    full: dict
    small: dict  # the default of `nntk-parity model` without --full
    noise_only: frozenset[tuple[int, str]]
    description: str
    full_batch: int = 8
    full_length: int = 50

    def layers(self, **sizes) -> list[tuple[str, dict]]:
        return self.build(**sizes)


# The conv bias (layer 0) feeds BatchNorm: its true gradient is zero.
_CONV_BIAS = frozenset({(0, "bias")})

NETWORKS = {
    "keyword": Network(
        "keyword",
        keyword_detector,
        {"input_dim": 40, "filters": 64, "kernel": 5, "units": 64, "classes": 2},
        {"input_dim": 8, "filters": 8, "kernel": 5, "units": 6, "classes": 2},
        _CONV_BIAS,
        "Conv1d(40->64, k5) BN relu GRU(64) BN GRU(64) TimeDistributedDense(2, softmax)",
    ),
    "bidirectional": Network(
        "bidirectional",
        bidirectional_detector,
        {"input_dim": 40, "filters": 64, "kernel": 5, "units": 32, "classes": 2},
        {"input_dim": 8, "filters": 8, "kernel": 5, "units": 5, "classes": 3},
        _CONV_BIAS,
        "Conv1d(40->64, k5) BN relu Bidirectional(LSTM(32)) TimeDistributedDense(2, softmax)",
    ),
    "conv_head": Network(
        "conv_head",
        conv_head,
        {"input_dim": 40, "filters": 64, "kernel": 5, "classes": 2},
        {"input_dim": 8, "filters": 8, "kernel": 5, "classes": 3},
        _CONV_BIAS,
        "Conv1d(40->64, k5) BN relu TimeDistributedDense(2, softmax)",
    ),
}
