"""Writes the seed corpus of fuzz/fuzz_model_file.c: model files of the project's
networks saved by the Python binding (the keyword detector with Adam after a step,
its bidirectional variant with Adam(amsgrad), the causal-conv + SimpleRNN classifier
with SGD(nesterov), a streaming one (a valid-padding Conv1d, GRU, LSTM) with SGD, a
model without an optimizer, one in version 1's layout), so the
fuzzer mutates files that load. Deterministic (fixed seeds); fuzz/model_corpus/
holds a committed copy, which ci/fuzz.sh uses.

    python fuzz/make_model_corpus.py OUT_DIR
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np

import nntk_core as nn
from nntk_core import model_file


def networks() -> dict[str, tuple[nn.Sequential, object, np.ndarray]]:
    """name -> (model, optimizer or None, target of the step)."""
    nn.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 4)).astype(np.float32)
    frames = np.eye(2, dtype=np.float32)[rng.integers(0, 2, (2, 6))]
    return {
        "keyword_adam": (
            nn.Sequential(
                [
                    nn.Conv1d(3, 3, input_dim=4, padding="same"),
                    nn.BatchNorm(3),
                    nn.Activation("relu"),
                    nn.GRU(3, input_dim=3, return_sequences=True),
                    nn.BatchNorm(3),
                    nn.GRU(3, input_dim=3, return_sequences=True),
                    nn.TimeDistributedDense(2, input_dim=3, activation="softmax"),
                ]
            ),
            nn.optimizers.Adam(),
            (x, frames),
        ),
        "bidirectional_amsgrad": (
            nn.Sequential(
                [
                    nn.Conv1d(3, 3, input_dim=4, padding="same"),
                    nn.Bidirectional(nn.LSTM(2, input_dim=3, return_sequences=True)),
                    nn.TimeDistributedDense(2, input_dim=4, activation="softmax"),
                ]
            ),
            nn.optimizers.Adam(amsgrad=True),
            (x, frames),
        ),
        "causal_rnn_sgd": (
            nn.Sequential(
                [
                    nn.Conv1d(3, 2, input_dim=4, padding="causal", dilation_rate=2),
                    nn.RNN(3, input_dim=3),
                    nn.Dense(2, input_dim=3, activation="softmax"),
                ]
            ),
            nn.optimizers.SGD(momentum=0.9, nesterov=True),
            (x, frames[:, -1]),
        ),
        "streaming_sgd": (  # streams (NNTKModelStream): a front window, recurrent layers
            nn.Sequential(
                [
                    nn.Conv1d(3, 3, input_dim=4),
                    nn.BatchNorm(3),
                    nn.GRU(3, input_dim=3, return_sequences=True),
                    nn.LSTM(2, input_dim=3, return_sequences=True),
                    nn.TimeDistributedDense(2, input_dim=2, activation="softmax"),
                ]
            ),
            nn.optimizers.SGD(momentum=0.9),
            (x, frames[:, 2:]),
        ),
        "pooling_no_optimizer": (
            nn.Sequential(
                [
                    nn.DepthwiseConv1d(2, input_dim=4),
                    nn.MaxPool1d(2, input_dim=4),
                    nn.LayerNorm(4),
                    nn.GlobalAveragePool1d(4),
                    nn.Dense(2, input_dim=4),
                ]
            ),
            None,
            None,
        ),
    }


def write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, (model, optimizer, batch) in networks().items():
        if optimizer is not None:
            model.train_step(*batch, nn.losses.CategoricalCrossentropy(), optimizer)
        data = model_file.encode(model, optimizer)
        (directory / f"{name}.nntk").write_bytes(data)
        if optimizer is None:  # the same model in version 1's layout (no slots section)
            config_length, weights_length = struct.unpack_from("<IQ", data, 12)
            body = model_file._HEADERS[1].pack(model_file.MAGIC, 1, config_length, weights_length)
            body += data[32 : 32 + config_length + weights_length]
            (directory / f"{name}_v1.nntk").write_bytes(body + struct.pack("<I", zlib.crc32(body)))


if __name__ == "__main__":
    write(Path(sys.argv[1]))
