"""Damaged nntk model files, each with the problem nn.load must name: the cases of
tests/test_model_file.py and tests/test_c_model.py, and a replay check (no TensorFlow)
that nn.load and the C loader (NNTKModelLoad) refuse every one of them, each naming its
problem. Also valid files (`valid_files`: the JSON text spelled otherwise than nn.save
spells it, a wrapper layer's file), which both loaders must read with their weights.

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


def encoded(model: nn.Sequential) -> bytes:
    """The model's file, the model closed after (its native memory freed now, not when
    the garbage collector finds it: replay measures what each check leaves)."""
    try:
        return model_file.encode(model)
    finally:
        model.close()


def small_file() -> bytes:
    model = nn.Sequential([nn.Dense(2, input_dim=1)])
    randomize(model)
    return encoded(model)


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
        # deeper than the C parser's limit (NNTK_JSON_MAX_DEPTH, model/json.h: 64): it
        # stops there; Python's json reads it and finds no layer object
        "lists nested 200 deep": (
            repack(whole, config=b'{"layers": ' + b"[" * 200 + b"]" * 200 + b"}"),
            r"layers\[0\] is not a JSON object",
        ),
        # a name the loaders must decode to quote it: 2-, 4- and 2-byte UTF-8 written
        # as is, and the same as JSON escapes (the 4-byte one a surrogate pair)
        "an activation named outside ASCII": (
            repack(whole, config=with_activation(config, UNKNOWN_NAME, ensure_ascii=False)),
            f"activation='{UNKNOWN_NAME}' is not one of",
        ),
        "an activation named outside ASCII in escapes": (
            repack(whole, config=with_activation(config, UNKNOWN_NAME, ensure_ascii=True)),
            f"activation='{UNKNOWN_NAME}' is not one of",
        ),
    }


# A name no activation has, outside ASCII (U+0400 has the bit that tells a 2-byte UTF-8
# lead's 5 payload bits from 4).
UNKNOWN_NAME = "\u0400\U0001f642\u00df"

# The C loader's words where they are not nn.load's (a C constructor's own message, or
# the C parser's): a substring of its message; the other files' C message must match
# nn.load's pattern.
C_MESSAGES = {
    "an argument missing": "the config has no argument 'input_dim'",
    # small_file()'s Dense(2, input_dim=1), each shape written out
    "the wrong weight shapes": "the file's weights are not the layer's [kernel (1, 2), bias (2)]",
    "too few slot bytes": "float32 of slots; its slots for the model's variables hold",
    "optimizer keys missing": "must have exactly the keys config, iterations, type and",
    "config not JSON": "the config is not JSON",
    "lists nested 200 deep": "the config is not JSON (nested too deeply",
    "an activation named outside ASCII": f"activation is '{UNKNOWN_NAME}', not one of its names",
    "an activation named outside ASCII in escapes": (
        f"activation is '{UNKNOWN_NAME}', not one of its names"
    ),
}


def c_message_problem(name: str, message: str, said: str) -> str | None:
    """Why the C loader's message `said` for damaged file `name` does not name its
    problem (None when it does): C_MESSAGES' words, or nn.load's pattern `message`."""
    if name in C_MESSAGES:
        return None if C_MESSAGES[name] in said else f"not {C_MESSAGES[name]!r}"
    return None if re.search(message, said) else f"no match for {message!r}"


def with_activation(config: dict, name: str, ensure_ascii: bool) -> bytes:
    """`config` with its first layer's activation `name`, as JSON text."""
    first = config["layers"][0]
    first = {**first, "config": {**first["config"], "activation": name}}
    return json.dumps({**config, "layers": [first]}, ensure_ascii=ensure_ascii).encode()


def valid_files() -> dict[str, tuple[bytes, list[np.ndarray]]]:
    """name -> (a valid file, the weights both loaders must read from it): files nn.save
    does not write this way, and a wrapper's as it does (the loaders' other path)."""
    whole = small_file()
    config = config_of(whole)
    # whitespace of every kind between the tokens; an enum value in escapes
    spaced = json.dumps(config, indent="\t").replace("\n", "\r\n")
    spaced = spaced.replace('"linear"', '"\\u006c\\u0069near"')
    wrapper = nn.Sequential([nn.Bidirectional(nn.GRU(2, input_dim=3), merge_mode="concat")])
    randomize(wrapper, seed=1)
    wrapper_weights = wrapper.get_weights()
    return {
        "tabs, CRLF line ends and escapes in the config": (
            repack(whole, config=spaced.encode()),
            weights_of(whole),
        ),
        "a Bidirectional GRU as nn.save writes it": (
            encoded(wrapper),
            wrapper_weights,
        ),
    }


def weights_of(whole: bytes) -> list[np.ndarray]:
    """The weights of a valid file, as nn.load reads them."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.nntk"
        path.write_bytes(whole)
        return loaded_weights(path)


def sequence_after_dropped_steps() -> bytes:
    """GRU(return_sequences=True) -> GRU, saved, then the first GRU's return_sequences
    set to False in the file: tf.keras refuses a GRU after a layer without a time axis."""
    whole = encoded(
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
    try:
        whole = model_file.encode(model, optimizer)
    finally:  # native memory freed now (see `encoded`)
        model.close()
        optimizer.close()
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
    ModelFileError naming its problem, and NNTKModelLoad refuse it naming its problem;
    each valid file must load in both with its weights, NNTKModelLoad leaving the
    thread's last error clear (it names failing calls only). (Replay checks around the
    call that nothing stays allocated.)"""
    from nntk_core._native import lib

    found = []
    cases = damaged()
    valid = valid_files()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "damaged.nntk"
        for name, (content, message) in cases.items():
            path.write_bytes(content)
            try:
                nn.load(path).close()
                found.append(f"damaged model file '{name}': nn.load accepted it")
            except model_file.ModelFileError as exc:
                if not re.search(message, str(exc)):
                    found.append(f"damaged model file '{name}': nn.load said {exc!s:.120}")
            try:
                handle = lib.NNTKModelLoad(str(path).encode(), 1, 1)
            except nn.NNTKError as exc:
                handle = None
                why = c_message_problem(name, message, exc.message)
                if why:
                    said = f"NNTKModelLoad said {exc.message!r:.160}"
                    found.append(f"damaged model file '{name}': {said}: {why}")
            if handle:
                lib.NNTKModelDestroy(handle)
                found.append(f"damaged model file '{name}': NNTKModelLoad accepted it")
        for name, (content, weights) in valid.items():
            path.write_bytes(content)
            found += [f"model file '{name}': {p}" for p in valid_file_problems(path, weights)]
    return len(cases) + len(valid), found


def loaded_weights(path: Path) -> list[np.ndarray]:
    """nn.load's weights of the file at `path`, the model closed after (its native
    memory freed now, not when the garbage collector finds it: replay measures each
    case's)."""
    model = nn.load(path)
    try:
        return model.get_weights()
    finally:
        model.close()


def valid_file_problems(path: Path, weights: list[np.ndarray]) -> list[str]:
    """What nn.load and NNTKModelLoad get wrong about the valid file at `path`, whose
    weights are `weights`."""
    import ctypes

    from nntk_core._native import lib

    found = []
    flat = np.concatenate([w.ravel() for w in weights]).astype(np.float32)
    try:
        read = loaded_weights(path)
        if any(not np.array_equal(a, b) for a, b in zip(read, weights, strict=True)):
            found.append("nn.load read other weights")
    except (model_file.ModelFileError, ValueError) as exc:
        found.append(f"nn.load refused it: {exc!s:.120}")
    try:  # an earlier failing call: its error must outlive the load (nntk/status.h)
        lib.NNTKSetThreadCount(0)
    except nn.NNTKError as exc:
        earlier = exc.message
    try:
        handle = lib.NNTKModelLoad(str(path).encode(), 1, 1)
    except nn.NNTKError as exc:
        return [*found, f"NNTKModelLoad refused it: {exc.message:.160}"]
    try:
        if lib.NNTKLastError().decode(errors="replace") != earlier:
            found.append(
                f"NNTKModelLoad succeeded but changed the thread's last error from the earlier "
                f"failure's to {lib.NNTKLastError()!r}"
            )
        native = np.zeros(flat.size, np.float32)
        lib.NNTKModelGetWeights(
            handle, native.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), native.size
        )
        if not np.array_equal(native, flat):
            found.append("NNTKModelLoad read other weights")
    finally:
        lib.NNTKModelDestroy(handle)
    return found
