"""The nntk model file: `Sequential.save(path)` writes it, `nn.load(path)` reads it.

    model.save("detector.nntk")          # exactly that path, atomically
    model = nn.load("detector.nntk")     # the same layers, the same weights, bit for bit

    model.save("p.nntk", optimizer=opt)  # with the optimizer: type, hyperparameters, step, slots
    model = nn.load("p.nntk")            # model.optimizer: the restored optimizer (else None)

The format (docs/MODEL_FILE.md), version 2, little-endian:

    offset          size  what
    0               8     MAGIC, b"\x89NTK\r\n\x1a\n"
    8               4     version, uint32 (VERSION)
    12              4     C, the config's length in bytes, uint32
    16              8     W, the weights' length in bytes, uint64
    24              8     S, the optimizer slots' length in bytes, uint64
    32              C     the config: UTF-8 JSON (below)
    32 + C          W     every layer's weights, float32, in Model.get_weights() order
    32 + C + W      S     the optimizer's slots, float32 (Optimizer.get_state()["slots"])
    32 + C + W + S  4     CRC-32 (zlib.crc32) of every byte before it

Version 1 (still read) has no S field (a 24-byte header) and no slots.

The config is {"layers": [layer, ...]} and, with an optimizer, "optimizer": {"type":
"SGD" | "Adam", "config": its get_config(), "iterations", "variable_shapes"}; a
layer {"type": the library's layer type
name, "config": {argument: value} for every argument of its constructor, "weights":
[{"name", "shape"}, ...]}, and a wrapper's (Bidirectional's) "layer": its inner
layer's {"type", "config"}. The arguments are the ones the library describes for the
layer type (the class's signature), so a new layer type needs no change here.

Errors: TypeError (path not a str / os.PathLike), FileNotFoundError,
IsADirectoryError, and `ModelFileError` (a ValueError) for anything wrong in the
file: not an nntk model file, another version, truncated, trailing bytes, checksum
mismatch, a config that is not what this nntk builds, weights of the wrong shapes.
Load checks all of it before returning; on an error nothing is returned and every
layer it created is closed.

Saving writes a temporary file next to `path`, fsyncs it, renames it onto `path`
(os.replace, atomic on POSIX) and fsyncs the directory: an interrupted save leaves
the previous file whole.
"""

from __future__ import annotations

import inspect
import json
import os
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nntk_core.layer import Layer
from nntk_core.layers import LAYER_CLASSES
from nntk_core.model import Sequential
from nntk_core.optimizers import OPTIMIZER_CLASSES, Optimizer

MAGIC = b"\x89NTK\r\n\x1a\n"  # 8 bytes, as PNG's: a text-mode copy breaks it
VERSION = 2
_HEADERS = {  # by version: magic, version, config length, weights length[, slots length]
    1: struct.Struct("<8sIIQ"),
    2: struct.Struct("<8sIIQQ"),
}
_HEADER = _HEADERS[VERSION]
_PREFIX = struct.Struct("<8sI")  # magic, version: the same in every version
_CHECKSUM = struct.Struct("<I")
_WEIGHT_DTYPE = np.dtype("<f4")


class ModelFileError(ValueError):
    """The file is not a whole, valid nntk model file of a version this nntk reads."""


# -- writing ---------------------------------------------------------------------------------
def _layer_config(layer: Layer) -> dict:
    """{"type", "config"} of a layer: every constructor argument's value."""
    config = {}
    for name in inspect.signature(type(layer)).parameters:
        if name == "layer":
            continue
        value = getattr(layer, name)
        if name == "input_dim" and getattr(layer, "adapts_input_dim", False):
            value = None  # an Activation taking each input's size
        config[name] = value.item() if isinstance(value, np.generic) else value
    entry = {"type": layer.layer_type.name, "config": config}
    if layer.layer_type.wraps:
        entry["layer"] = _layer_config(layer.layer)
    return entry


def _optimizer_entry(model: Sequential, optimizer: Optimizer) -> tuple[dict, bytes]:
    """The config entry and the slot bytes of an optimizer training `model`."""
    if not isinstance(optimizer, Optimizer) or type(optimizer).__name__ not in OPTIMIZER_CLASSES:
        raise TypeError(
            f"optimizer must be an nntk optimizer ({', '.join(OPTIMIZER_CLASSES)}), "
            f"got {type(optimizer).__name__}"
        )
    state = optimizer.get_state()
    shapes = state["variable_shapes"]
    model_shapes = [v.shape for v in model.trainable_variables()]
    if shapes is not None and list(shapes) != model_shapes:
        raise ValueError(
            f"optimizer: {optimizer!r} updates variables of shapes {shapes}, not this "
            f"model's trainable variables {model_shapes}"
        )
    entry = {
        "type": type(optimizer).__name__,
        "config": optimizer.get_config(),
        "iterations": state["iterations"],
        "variable_shapes": None if shapes is None else [list(s) for s in shapes],
    }
    return entry, np.asarray(state["slots"], _WEIGHT_DTYPE).tobytes()


def encode(model: Sequential, optimizer: Optimizer | None = None) -> bytes:
    """The model file's bytes (with the optimizer's state unless it is None)."""
    layers = []
    for layer in model.layers:
        entry = _layer_config(layer)
        entry["weights"] = [
            {"name": n, "shape": list(s)}
            for n, s in zip(layer.weight_names(), layer.weight_shapes(), strict=True)
        ]
        layers.append(entry)
    config: dict = {"layers": layers}
    slots = b""
    if optimizer is not None:
        config["optimizer"], slots = _optimizer_entry(model, optimizer)
    config_bytes = json.dumps(config, allow_nan=False).encode()
    weights = b"".join(np.asarray(w, _WEIGHT_DTYPE).tobytes() for w in model.get_weights())
    header = _HEADER.pack(MAGIC, VERSION, len(config_bytes), len(weights), len(slots))
    body = header + config_bytes + weights + slots
    return body + _CHECKSUM.pack(zlib.crc32(body))


def _check_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"path {str(path)!r} is a directory, not a model file")
    return path


def save(model: Sequential, path, optimizer: Optimizer | None = None) -> None:
    """Writes `model` (and `optimizer`'s state, unless None) to exactly `path`,
    atomically (see the module doc)."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    data = encode(model, optimizer)
    write_atomically(path, lambda f: f.write(data))


def write_atomically(path, write: Callable[[BinaryIO], object]) -> None:
    """Creates or replaces the file `path` with what `write(file)` writes, atomically: a
    temporary file in the same directory, fsync, rename onto `path`, fsync of the
    directory. On any error `path` is untouched and the temporary file removed."""
    path = _check_path(path)
    directory = path.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"path {str(path)!r}: no directory {str(directory)!r}")
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w+b") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Makes the rename durable (POSIX); a platform without directory fds skips it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


# -- reading ---------------------------------------------------------------------------------
def _sections(data: bytes, where: str) -> tuple[bytes, bytes, bytes]:
    """The config, weight and slot bytes, after checking magic, version, lengths and
    checksum."""
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        if MAGIC.startswith(data):
            raise ModelFileError(f"{where}: truncated ({len(data)} bytes, inside the magic)")
        raise ModelFileError(f"{where}: not an nntk model file (no nntk magic)")
    if len(data) < _PREFIX.size:
        raise ModelFileError(f"{where}: truncated ({len(data)} bytes, inside the header)")
    _, version = _PREFIX.unpack_from(data)
    header = _HEADERS.get(version)
    if header is None:
        raise ModelFileError(
            f"{where}: format version {version}; this nntk reads versions "
            f"{', '.join(map(str, _HEADERS))}"
        )
    if len(data) < header.size:
        raise ModelFileError(f"{where}: truncated ({len(data)} bytes, inside the header)")
    _, _, config_length, weights_length, *rest = header.unpack_from(data)
    slots_length = rest[0] if rest else 0
    expected = header.size + config_length + weights_length + slots_length + _CHECKSUM.size
    if len(data) < expected:
        raise ModelFileError(f"{where}: truncated ({len(data)} bytes of {expected})")
    if len(data) > expected:
        raise ModelFileError(f"{where}: {len(data) - expected} bytes after the end of the model")
    body = data[: -_CHECKSUM.size]
    (stored,) = _CHECKSUM.unpack_from(data, len(body))
    if zlib.crc32(body) != stored:
        raise ModelFileError(f"{where}: checksum mismatch (the file is corrupted)")
    config_end = header.size + config_length
    weights_end = config_end + weights_length
    return (
        data[header.size : config_end],
        data[config_end:weights_end],
        data[weights_end : len(body)],
    )


def _dict(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise ModelFileError(f"{what} is not a JSON object")
    return value


def _build(entry, where: str) -> Layer:
    """The layer of a config entry (a wrapper with its inner layer)."""
    entry = _dict(entry, where)
    kind = entry.get("type")
    cls = LAYER_CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ModelFileError(f"{where}: unknown layer type {kind!r}")
    config = _dict(entry.get("config"), f"{where} config")
    arguments = [n for n in inspect.signature(cls).parameters if n != "layer"]
    if sorted(config) != sorted(arguments):
        raise ModelFileError(
            f"{where} ({kind}): the config has the arguments {sorted(config)}; "
            f"{kind} takes {sorted(arguments)}"
        )
    inner = None
    if cls.layer_type.wraps:
        inner = _build(entry.get("layer"), f"{where} inner layer")
        config = {**config, "layer": inner}
    try:
        return cls(**config)
    except (TypeError, ValueError) as exc:
        if inner is not None:
            inner.close()
        raise ModelFileError(f"{where} ({kind}): {exc}") from None


def _check_weights(layer: Layer, entry: dict, where: str) -> int:
    """The layer's weight count in floats; the file's names and shapes must be its own."""
    declared = entry.get("weights")
    wanted = [
        {"name": n, "shape": list(s)}
        for n, s in zip(layer.weight_names(), layer.weight_shapes(), strict=True)
    ]
    if declared != wanted:
        raise ModelFileError(
            f"{where} ({type(layer).__name__}): the file's weights {declared!r:.200} are not "
            f"the layer's {wanted}"
        )
    return sum(int(np.prod(s)) for s in layer.weight_shapes())


def decode(data: bytes, where: str = "the model file") -> Sequential:
    """The model of a model file's bytes (see the module doc for the errors)."""
    config_bytes, weight_bytes, slot_bytes = _sections(data, where)
    try:
        config = json.loads(config_bytes.decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{where}: the config is not JSON ({exc})") from None
    config = _dict(config, f"{where}: the config")
    entries = config.get("layers")
    if "optimizer" not in config and slot_bytes:
        raise ModelFileError(f"{where}: {len(slot_bytes)} bytes of slots but no optimizer")
    if not isinstance(entries, list) or not entries:
        raise ModelFileError(f"{where}: the config has no list of layers")
    layers: list[Layer] = []
    try:
        counts = []
        for i, entry in enumerate(entries):
            layer = _build(entry, f"{where}: layers[{i}]")
            layers.append(layer)
            counts.append(_check_weights(layer, entry, f"{where}: layers[{i}]"))
        if len(weight_bytes) != 4 * sum(counts):
            raise ModelFileError(
                f"{where}: {len(weight_bytes)} bytes of weights; the layers hold "
                f"{sum(counts)} float32 ({4 * sum(counts)} bytes)"
            )
        try:
            model = Sequential(layers)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{where}: the layers do not form a model: {exc}") from None
        flat = np.frombuffer(weight_bytes, _WEIGHT_DTYPE).astype(np.float32)
        arrays, start = [], 0
        for layer in layers:
            for shape in layer.weight_shapes():
                size = int(np.prod(shape))
                arrays.append(flat[start : start + size].reshape(shape))
                start += size
        model.set_weights(arrays)
        if "optimizer" in config:
            model.optimizer = _build_optimizer(model, config["optimizer"], slot_bytes, where)
        return model
    except BaseException:
        for layer in layers:
            layer.close()
        raise


def _build_optimizer(model: Sequential, entry, slot_bytes: bytes, where: str) -> Optimizer:
    """The optimizer of the config's "optimizer" entry, its state restored."""
    where = f"{where}: the optimizer"
    entry = _dict(entry, where)
    if sorted(entry) != ["config", "iterations", "type", "variable_shapes"]:
        raise ModelFileError(
            f"{where} has the keys {sorted(entry)}; expected config, iterations, type and "
            "variable_shapes"
        )
    kind = entry["type"]
    cls = OPTIMIZER_CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ModelFileError(f"{where}: unknown optimizer type {kind!r}")
    config = _dict(entry["config"], f"{where} config")
    shapes = entry["variable_shapes"]
    model_shapes = [list(v.shape) for v in model.trainable_variables()]
    if shapes is not None and shapes != model_shapes:
        raise ModelFileError(
            f"{where}: variable_shapes {shapes!r:.200} are not the model's trainable "
            f"variables {model_shapes}"
        )
    if len(slot_bytes) % _WEIGHT_DTYPE.itemsize:
        raise ModelFileError(f"{where}: {len(slot_bytes)} bytes of slots, not float32 values")
    try:
        optimizer = cls(**config)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{where} ({kind}): {exc}") from None
    try:
        optimizer.set_state(
            {
                "iterations": entry["iterations"],
                "variable_shapes": shapes,
                "slots": np.frombuffer(slot_bytes, _WEIGHT_DTYPE).astype(np.float32),
            }
        )
    except (TypeError, ValueError) as exc:
        optimizer.close()
        raise ModelFileError(f"{where} ({kind}): {exc}") from None
    return optimizer


def load(path) -> Sequential:
    """The model saved at `path` by Sequential.save (see the module doc for the errors)."""
    path = _check_path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    return decode(path.read_bytes(), str(path))
