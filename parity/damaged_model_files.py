"""Damaged nntk model files, each with the problem nn.load must name: the cases of
tests/test_model_file.py, and a replay check (no TensorFlow) that nn.load and the C
loader (NNTKModelLoad) refuse every one of them.

`repack` writes a file with another config, version or payload and a *valid*
checksum, so the loaders' checks behind the checksum are reached."""

from __future__ import annotations

import json
import re
import tempfile
import zlib
from pathlib import Path

import numpy as np

import nntk_core as nn
from nntk_core import model_file


def randomize(model: nn.Sequential, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()]
    )


def small_file() -> bytes:
    model = nn.Sequential([nn.Dense(2, input_dim=1)])
    randomize(model)
    return model_file.encode(model)


def split(whole: bytes) -> tuple[int, bytes, bytes, bytes]:
    """(version, config bytes, weight bytes, slot bytes) of a valid file of any version."""
    (version,) = model_file._PREFIX.unpack_from(whole)[1:]
    header = model_file._HEADERS[version]
    _, _, config_length, weights_length, *rest = header.unpack_from(whole)
    slots_length = rest[0] if rest else 0
    start = header.size
    config_end = start + config_length
    weights_end = config_end + weights_length
    return (
        version,
        whole[start:config_end],
        whole[config_end:weights_end],
        whole[weights_end : weights_end + slots_length],
    )


def repack(whole: bytes, config=None, version=None, weights=None, slots=None, layout=None) -> bytes:
    """A file with another config, version, weight or slot bytes, and a valid checksum;
    `layout` the version whose header to write (default: the file's)."""
    old_version, old_config, old_weights, old_slots = split(whole)
    if config is None:
        config = old_config
    elif not isinstance(config, bytes):
        config = json.dumps(config).encode()
    weights = old_weights if weights is None else weights
    slots = old_slots if slots is None else slots
    version = old_version if version is None else version
    layout = old_version if layout is None else layout
    lengths = (len(config), len(weights)) + ((len(slots),) if layout >= 2 else ())
    body = model_file._HEADERS[layout].pack(model_file.MAGIC, version, *lengths)
    body += config + weights + (slots if layout >= 2 else b"")
    return body + model_file._CHECKSUM.pack(zlib.crc32(body))


def config_of(whole: bytes) -> dict:
    return json.loads(split(whole)[1])


def damaged_files() -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, the message nn.load's ModelFileError must match)."""
    whole = small_file()
    config = config_of(whole)
    layer = config["layers"][0]
    flipped = bytearray(whole)
    flipped[len(whole) // 2] ^= 0x01
    return {
        "empty": (b"", "truncated"),
        "a zip file": (b"PK\x03\x04" + bytes(40), "not an nntk model file"),
        "version 3": (repack(whole, version=3), "version 3; this nntk reads versions 1, 2"),
        "slots without an optimizer": (repack(whole, slots=bytes(8)), "8 bytes of slots but no"),
        "one bit flipped": (bytes(flipped), "checksum mismatch"),
        "trailing bytes": (whole + b"\0", "1 bytes after the end"),
        "config not JSON": (repack(whole, config=b"{not json"), "the config is not JSON"),
        "unknown layer type": (
            repack(whole, config={"layers": [{**layer, "type": "Embedding"}]}),
            "unknown layer type 'Embedding'",
        ),
        "an argument missing": (
            repack(whole, config={"layers": [{**layer, "config": {"units": 2}}]}),
            "Dense takes",
        ),
        "an argument out of range": (
            repack(
                whole, config={"layers": [{**layer, "config": {**layer["config"], "units": 0}}]}
            ),
            "units must be >= 1",
        ),
        "the wrong weight shapes": (
            repack(
                whole,
                config={
                    "layers": [
                        {
                            **layer,
                            "weights": [{"name": "kernel", "shape": [2, 1]}, layer["weights"][1]],
                        }
                    ]
                },
            ),
            r"the file's weights .* are not the layer's",
        ),
        "too few weight bytes": (repack(whole, weights=bytes(8)), "8 bytes of weights"),
        "no layers": (repack(whole, config={"layers": []}), "no list of layers"),
        # every sequence layer's description says it takes (batch, steps, features)
        "a time axis dropped before a sequence layer": (
            sequence_after_dropped_steps(),
            r"layers\[1\] \(GRU\) takes \(batch, steps, features\) inputs but layers\[0\]",
        ),
    }


def sequence_after_dropped_steps() -> bytes:
    """GRU(return_sequences=True) -> GRU, saved, then the first GRU's return_sequences
    set to False in the file: tf.keras refuses a GRU after a layer without a time axis."""
    whole = model_file.encode(
        nn.Sequential([nn.GRU(2, input_dim=2, return_sequences=True), nn.GRU(2, input_dim=2)])
    )
    config = config_of(whole)
    first, second = config["layers"]
    first = {**first, "config": {**first["config"], "return_sequences": False}}
    return repack(whole, config={**config, "layers": [first, second]})


def trained_small_model(optimizer, steps: int = 3):
    """A small model after `steps` steps of `optimizer`, and its data."""
    model = nn.Sequential([nn.Dense(3, input_dim=2), nn.Dense(2, input_dim=3)])
    randomize(model)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5, 2)).astype(np.float32)
    y = rng.standard_normal((4, 5, 2)).astype(np.float32)
    for _ in range(steps):
        model.train_step(x, y, nn.losses.MeanSquaredError(), optimizer)
    return model, x, y


def damaged_optimizer_files():
    optimizer = nn.optimizers.Adam(learning_rate=1e-2)
    model, _, _ = trained_small_model(optimizer)
    whole = model_file.encode(model, optimizer)
    config = config_of(whole)
    entry = config["optimizer"]
    slots = split(whole)[3]

    def with_optimizer(**changes):
        return {**config, "optimizer": {**entry, **changes}}

    return {
        "unknown optimizer type": (
            repack(whole, config=with_optimizer(type="RMSprop")),
            "unknown optimizer type 'RMSprop'",
        ),
        "an optimizer argument out of range": (
            repack(whole, config=with_optimizer(config={**entry["config"], "beta_1": 1.5})),
            r"beta_1 must be in \[0, 1\)",
        ),
        "optimizer variable shapes not the model's": (
            repack(whole, config=with_optimizer(variable_shapes=[[2, 3]])),
            "are not the model's trainable variables",
        ),
        "too few slot bytes": (repack(whole, slots=slots[:-4]), r"state\['slots'\] holds"),
        "a negative step": (repack(whole, config=with_optimizer(iterations=-1)), "iterations"),
        "optimizer keys missing": (
            repack(whole, config={**config, "optimizer": {"type": "Adam"}}),
            "has the keys",
        ),
    }


def damaged() -> dict[str, tuple[bytes, str]]:
    """Every damaged file: the model's and the optimizer's."""
    return {**damaged_files(), **damaged_optimizer_files()}


def problems() -> tuple[int, list[str]]:
    """(files checked, problems): each damaged file must make nn.load raise
    ModelFileError naming its problem, and NNTKModelLoad refuse it. (Replay checks
    around the call that nothing stays allocated.)"""
    from nntk_core._native import lib

    found = []
    cases = damaged()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "damaged.nntk"
        for name, (content, message) in cases.items():
            path.write_bytes(content)
            try:
                nn.load(path)
                found.append(f"damaged model file '{name}': nn.load accepted it")
            except model_file.ModelFileError as exc:
                if not re.search(message, str(exc)):
                    found.append(f"damaged model file '{name}': nn.load said {exc!s:.120}")
            try:
                handle = lib.NNTKModelLoad(str(path).encode(), 1, 1)
            except nn.NNTKError:
                handle = None
            if handle:
                lib.NNTKModelDestroy(handle)
                found.append(f"damaged model file '{name}': NNTKModelLoad accepted it")
    return len(cases), found
