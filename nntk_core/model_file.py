"""The nntk model file: `Sequential.save(path)` writes it, `nn.load(path)` reads it.

    model.save("detector.nntk")          # exactly that path, atomically
    model = nn.load("detector.nntk")     # the same layers, the same weights, bit for bit

The format (docs/MODEL_FILE.md), little-endian:

    offset      size  what
    0           8     MAGIC, b"\\x89NTK\\r\\n\\x1a\\n"
    8           4     version, uint32 (VERSION)
    12          4     C, the config's length in bytes, uint32
    16          8     W, the weights' length in bytes, uint64
    24          C     the config: UTF-8 JSON (below)
    24 + C      W     every layer's weights, float32, in Model.get_weights() order
    24 + C + W  4     CRC-32 (zlib.crc32) of every byte before it

The config is {"layers": [layer, ...]}, a layer {"type": the library's layer type
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

Version 1 holds no optimizer state: the library gives no access to an optimizer's
slots (Adam's moments) or to set its step, so a saved optimizer could not be
restored exactly; that needs the C model API (issue 14 §4).
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

MAGIC = b"\x89NTK\r\n\x1a\n"  # 8 bytes, as PNG's: a text-mode copy breaks it
VERSION = 1
_HEADER = struct.Struct("<8sIIQ")  # magic, version, config length, weights length
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


def encode(model: Sequential) -> bytes:
    """The model file's bytes."""
    layers = []
    for layer in model.layers:
        entry = _layer_config(layer)
        entry["weights"] = [
            {"name": n, "shape": list(s)}
            for n, s in zip(layer.weight_names(), layer.weight_shapes(), strict=True)
        ]
        layers.append(entry)
    config = json.dumps({"layers": layers}, allow_nan=False).encode()
    weights = b"".join(np.asarray(w, _WEIGHT_DTYPE).tobytes() for w in model.get_weights())
    body = _HEADER.pack(MAGIC, VERSION, len(config), len(weights)) + config + weights
    return body + _CHECKSUM.pack(zlib.crc32(body))


def _check_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"path {str(path)!r} is a directory, not a model file")
    return path


def save(model: Sequential, path) -> None:
    """Writes `model` to exactly `path`, atomically (see the module doc)."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    data = encode(model)
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
def _sections(data: bytes, where: str) -> tuple[bytes, bytes]:
    """The config and weight bytes, after checking magic, version, lengths and checksum."""
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        if MAGIC.startswith(data):
            raise ModelFileError(f"{where}: truncated ({len(data)} bytes, inside the magic)")
        raise ModelFileError(f"{where}: not an nntk model file (no nntk magic)")
    if len(data) < _HEADER.size:
        raise ModelFileError(f"{where}: truncated ({len(data)} bytes, inside the header)")
    _, version, config_length, weights_length = _HEADER.unpack_from(data)
    if version != VERSION:
        raise ModelFileError(
            f"{where}: format version {version}; this nntk reads version {VERSION}"
        )
    expected = _HEADER.size + config_length + weights_length + _CHECKSUM.size
    if len(data) < expected:
        raise ModelFileError(f"{where}: truncated ({len(data)} bytes of {expected})")
    if len(data) > expected:
        raise ModelFileError(f"{where}: {len(data) - expected} bytes after the end of the model")
    body = data[: -_CHECKSUM.size]
    (stored,) = _CHECKSUM.unpack_from(data, len(body))
    if zlib.crc32(body) != stored:
        raise ModelFileError(f"{where}: checksum mismatch (the file is corrupted)")
    config_end = _HEADER.size + config_length
    return data[_HEADER.size : config_end], data[config_end : len(body)]


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
    config_bytes, weight_bytes = _sections(data, where)
    try:
        config = json.loads(config_bytes.decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{where}: the config is not JSON ({exc})") from None
    entries = _dict(config, f"{where}: the config").get("layers")
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
        return model
    except BaseException:
        for layer in layers:
            layer.close()
        raise


def load(path) -> Sequential:
    """The model saved at `path` by Sequential.save (see the module doc for the errors)."""
    path = _check_path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    return decode(path.read_bytes(), str(path))
