"""nn.load_keras: a tf.keras 2.x model file as an nn.Sequential, without TensorFlow.

    model = nn.load_keras("detector.keras")     # or the legacy "detector.h5"
    y = model(x)                                 # what keras_model.predict(x) gives

Reads what `model.save()` writes: the `.keras` zip (config.json + model.weights.h5)
and the legacy HDF5 file (`model_config` + `model_weights`), with json and h5py
(`pip install nntk[keras]`). Sequential models and functional models that are one
chain (one input, one output, each layer fed by the one before it) load.

The mapping is one table, `LAYERS`: a Keras class name -> the public nntk class that
computes it, derived from the library's description of its layer types (each names
its tf.keras class). A Keras option goes to the nntk constructor's argument of the same name
(read from the constructor's signature, so the table holds no option lists); an
option the constructor has no argument for must be one that changes nothing nntk
computes (`INITIAL_ONLY`, `BOOKKEEPING`), or have the value nntk computes
(`KERAS_ONLY`). Everything else (a layer type nntk lacks, a custom layer, masking,
a stateful RNN, recurrent dropout, a regularizer, a frozen layer, a non-float32
dtype, a branch) is collected, and one `UnsupportedKerasModel` lists every such
layer and option by name before anything is built.

Dropout and SpatialDropout1D are the identity at inference: they are left out of the
nntk model, with a `DropoutOmittedWarning` saying that nntk's training does not drop
units (Keras's does): fine-tuning such a model with nntk trains it without dropout.

Errors: TypeError (path not a str / os.PathLike), FileNotFoundError,
IsADirectoryError, `KerasFileError` (empty, truncated or corrupt file, not a model
file, weights missing or of the wrong shape for the config), `UnsupportedKerasModel`,
ImportError (h5py missing). `KerasFileError` and `UnsupportedKerasModel` derive from
`KerasLoadError` (a ValueError): reading a damaged file raises one of them, never
anything else. The file's binary (HDF5) parts are read in a child process
(_keras_read.py) with a timeout, since the HDF5 library loops forever on some damaged
files; the config is checked here. docs/KERAS_MODELS.md has the details.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import re
import subprocess
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nntk_core._native import LAYERS as LAYER_TYPES
from nntk_core.layer import Layer
from nntk_core.layers import LAYER_CLASSES
from nntk_core.model import Sequential


class KerasLoadError(ValueError):
    """A tf.keras model file that nn.load_keras cannot turn into an nntk model."""


class KerasFileError(KerasLoadError):
    """The file is not a readable tf.keras model: empty, truncated, corrupt, not a
    model (e.g. weights only), or its weights do not fit its own config."""


class UnsupportedKerasModel(KerasLoadError):
    """The model holds layers or options nntk cannot compute faithfully; `problems`
    lists every one, by layer name."""

    def __init__(self, path, problems: list[str]):
        self.problems = list(problems)
        listed = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"{path}: nntk cannot represent this model faithfully "
            f"({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):\n{listed}"
        )


class DropoutOmittedWarning(UserWarning):
    """A Dropout / SpatialDropout1D layer was left out (the identity at inference)."""


# -- the mapping -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Mapping:
    """How a Keras layer class becomes an nntk layer: `nntk` is the public class whose
    constructor takes the Keras options of the same names; `fixed` are arguments the
    Keras class implies (ReLU is Activation("relu")); `wraps` maps the class name of the
    wrapped Keras layer to the nntk class it becomes, for wrappers whose inner layer is
    folded into the nntk layer (TimeDistributed(Dense) -> TimeDistributedDense)."""

    nntk: type[Layer]
    fixed: dict = field(default_factory=dict)
    wraps: dict[str, type[Layer]] | None = None


def _derive_mapping() -> dict[str, Mapping]:
    """The single table: Keras class name -> nntk layer, derived from the library's
    description of its layer types (each names its tf.keras class; "Outer(Inner)" is a
    wrapper folded into one nntk class: TimeDistributed(Dense) -> TimeDistributedDense),
    plus the Keras layer that is an nntk layer with a fixed argument (ReLU()). A
    wrapper nntk takes an inner layer for (Bidirectional) looks the inner one up here."""
    table: dict[str, Mapping] = {}
    folded: dict[str, dict[str, type[Layer]]] = {}
    for name, layer_type in LAYER_TYPES.items():
        wrapper = re.fullmatch(r"(\w+)\((\w+)\)", layer_type.keras_name)
        if wrapper:
            folded.setdefault(wrapper.group(1), {})[wrapper.group(2)] = LAYER_CLASSES[name]
        else:
            table[layer_type.keras_name] = Mapping(LAYER_CLASSES[name])
    for outer, inner in folded.items():
        table[outer] = Mapping(next(iter(inner.values())), wraps=inner)
    table["ReLU"] = Mapping(table["Activation"].nntk, fixed={"activation": "relu"})
    return table


LAYERS: dict[str, Mapping] = _derive_mapping()

# The identity at inference, left out of the nntk model (see the module doc).
DROPOUT = ("Dropout", "SpatialDropout1D")

# Options that only choose the initial weights: the file's weights replace them.
INITIAL_ONLY = frozenset(
    {
        "kernel_initializer",
        "recurrent_initializer",
        "bias_initializer",
        "beta_initializer",
        "gamma_initializer",
        "moving_mean_initializer",
        "moving_variance_initializer",
        "unit_forget_bias",
    }
)

# Options that change nothing nntk computes: names, shapes known elsewhere, and
# implementation choices of the same function (unrolling, the fused kernels).
BOOKKEEPING = frozenset(
    {"name", "batch_input_shape", "batch_size", "unroll", "implementation", "fused", "optional"}
)

# Options nntk has no argument for, with the value nntk computes; any other value is
# not representable (the message names the option and both values). "dtype" and
# BatchNormalization's "axis" are checked apart (_dtype_problem, _axis_problem).
KERAS_ONLY: dict[str, object] = {
    "trainable": True,  # frozen layers: nntk trains every weight
    "data_format": "channels_last",
    "groups": 1,
    "stateful": False,
    "time_major": False,
    "dropout": 0.0,
    "recurrent_dropout": 0.0,
    "zero_output_for_mask": False,
    "renorm": False,
    "renorm_clipping": None,
    "renorm_momentum": 0.99,
    "virtual_batch_size": None,
    "adjustment": None,
    "synchronized": False,
    "kernel_regularizer": None,
    "recurrent_regularizer": None,
    "bias_regularizer": None,
    "activity_regularizer": None,
    "beta_regularizer": None,
    "gamma_regularizer": None,
    "kernel_constraint": None,
    "recurrent_constraint": None,
    "bias_constraint": None,
    "beta_constraint": None,
    "gamma_constraint": None,
    "max_value": None,  # ReLU
    "negative_slope": 0.0,
    "threshold": 0.0,
    "sparse": False,  # InputLayer
    "ragged": False,
    "backward_layer": None,  # Bidirectional: a separately configured backward layer
}


def _constructor_args(cls: type[Layer]) -> set[str]:
    """The keyword arguments of an nntk class's constructor (input_dim is the loader's)."""
    return set(inspect.signature(cls).parameters) - {"self", "input_dim"}


# -- reading the file --------------------------------------------------------------------------
# The HDF5 library loops forever on some damaged files (and may crash on others): the
# file's binary parts are read by a child process (_keras_read.py) that is given this
# many seconds, plus one per 10 MB of file, before the file is declared unreadable.
READ_TIMEOUT = 20.0
_READER = Path(__file__).with_name("_keras_read.py")


@dataclass
class _File:
    """A model file's config and its weight arrays, as the reader found them."""

    format: str  # "keras" (zip) or "h5" (legacy)
    config: dict
    arrays: dict[str, np.ndarray]  # dataset path -> array
    names: dict[str, list[str]]  # legacy .h5: layer -> its weight_names attribute

    def weights(self, layer: _Planned) -> list[tuple[str, np.ndarray]]:
        """[(weight name, or "" when the file numbers them, array)] of one layer, in
        tf.keras get_weights() order."""
        name, class_name, config = layer.name, layer.class_name, layer.config
        if self.format == "h5":
            if name not in self.names:
                raise KerasFileError(f"the file has no weights for layer {name!r}")
            found = []
            for weight in self.names[name]:
                key = f"model_weights/{name}/{weight}"
                if key not in self.arrays:
                    raise KerasFileError(f"the file has no dataset {key!r}")
                found.append((_short_name(weight), self.arrays[key]))
            return found
        found = []
        for sub in _keras_var_paths(class_name, config):
            prefix = f"layers/{layer.key}/{sub}/"
            numbered = {k[len(prefix) :]: a for k, a in self.arrays.items() if k.startswith(prefix)}
            if sorted(numbered, key=lambda k: (len(k), k)) != [
                str(i) for i in range(len(numbered))
            ]:
                raise KerasFileError(f"the variables {prefix} are not numbered 0..n-1")
            found += [("", numbered[str(i)]) for i in range(len(numbered))]
        return found


def _archive_keys(entries: list[dict]) -> list[str]:
    """The key of each layer's weights in a .keras archive: tf.keras names them not by
    the layer's name but by its class in snake case, numbered by occurrence in the
    model's layer list ("dense", "dense_1", ...; saving_lib, to_snake_case)."""
    keys, used = [], {}
    for entry in entries:
        snake = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", str(entry.get("class_name")))
        snake = re.sub("([a-z])([A-Z])", r"\1_\2", snake).lower()
        snake = "private" + snake if snake.startswith("_") else snake
        count = used.get(snake, -1) + 1
        used[snake] = count
        keys.append(f"{snake}_{count}" if count else snake)
    return keys


def _keras_var_paths(class_name: str, config: dict) -> list[str]:
    """Where a layer's variables sit in a .keras archive's model.weights.h5, in
    get_weights() order: its own `vars`, then its RNN cell's; a wrapper's under its
    inner layer (Bidirectional: the forward layer's, then the backward layer's)."""
    if "layer" in config:  # a wrapper: TimeDistributed, Bidirectional
        inner = _dict(config.get("layer"), f"{class_name} layer")
        paths = _keras_var_paths(str(inner.get("class_name")), {})
        two_sided = class_name == "Bidirectional"
        sides = ("forward_layer", "backward_layer") if two_sided else ("layer",)
        return [f"{side}/{p}" for side in sides for p in paths]
    return ["vars", "cell/vars"]


def _read(path: Path, timeout: float | None) -> _File:
    """Runs _keras_read.py on the file; KerasFileError if it fails, hangs or crashes."""
    if timeout is None:
        timeout = READ_TIMEOUT + path.stat().st_size / 10e6
    try:
        done = subprocess.run(
            [sys.executable, "-I", str(_READER), str(path)],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise KerasFileError(
            f"{path}: reading it took more than {timeout:.0f} s: a damaged file (the HDF5 "
            "library loops on some)"
        ) from None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise KerasFileError(
            f"{path}: the reader stopped with status {done.returncode} ({tail[0]}): a damaged file"
        )
    with np.load(io.BytesIO(done.stdout), allow_pickle=False) as data:
        if "missing" in data:
            raise ImportError(
                f"nn.load_keras reads HDF5 with h5py ({data['missing']}): pip install 'nntk[keras]'"
            )
        if "error" in data:
            raise KerasFileError(f"{path} is not a readable tf.keras model file: {data['error']}")
        paths = [str(p) for p in data["paths"]]
        return _File(
            format=str(data["format"]),
            config=_json(str(data["config"]), f"{path}: the model config"),
            arrays={p: data[f"a{i}"] for i, p in enumerate(paths)},
            names={
                k[len("names:") :]: [str(n) for n in data[k]]
                for k in data
                if k.startswith("names:")
            },
        )


def _json(text: str, what: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise KerasFileError(f"{what} is not a JSON object")
    return value


# What numpy and json raise on the reader's output or a malformed (but parseable)
# config, and what our walk of a config of the wrong shape raises.
_READ_ERRORS = (
    OSError,
    KeyError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    EOFError,
    zipfile.BadZipFile,
    RecursionError,
)


def _check_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise IsADirectoryError(
            f"{path} is a directory; nn.load_keras reads a .keras or .h5 file "
            "(a SavedModel directory is not supported)"
        )
    if path.stat().st_size == 0:
        raise KerasFileError(f"{path} is empty")
    return path


# -- the plan ------------------------------------------------------------------------------
@dataclass
class _Planned:
    """One Keras layer that becomes an nntk layer."""

    name: str  # the Keras layer's name (its weights' key in a legacy .h5)
    key: str  # its weights' key in a .keras archive (see _archive_keys)
    class_name: str
    config: dict
    layer: Layer


def _dict(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise KerasFileError(f"{what} is not a JSON object: {value!r:.80}")
    return value


def _layer_list(model: dict) -> tuple[str, list[dict], dict]:
    """The model's class name and its layer entries ({class_name, config, ...})."""
    class_name = model.get("class_name")
    config = _dict(model.get("config"), "the model config")
    layers = config.get("layers")
    if not isinstance(layers, list) or not all(isinstance(e, dict) for e in layers):
        raise KerasFileError("the model config has no list of layers")
    return class_name, layers, config


def _chain(config: dict, layers: list[dict], problems: list[str]) -> list[dict]:
    """A functional model's layers in the order data flows, when they form one chain
    from the input to the output; otherwise records why not."""
    by_name = {}
    for entry in layers:
        name = entry.get("name", _dict(entry.get("config"), "a layer config").get("name"))
        by_name[str(name)] = entry
    inputs = config.get("input_layers") or []
    outputs = config.get("output_layers") or []
    # A single input/output may be stored as [name, 0, 0] rather than a list of them.
    if inputs and isinstance(inputs[0], str):
        inputs = [inputs]
    if outputs and isinstance(outputs[0], str):
        outputs = [outputs]
    if len(inputs) != 1 or len(outputs) != 1:
        problems.append(
            f"the model has {len(inputs)} inputs and {len(outputs)} outputs: nntk models "
            "have one of each"
        )
        return []
    order = []
    name = str(outputs[0][0])
    seen = set()
    while True:
        if name not in by_name or name in seen:
            raise KerasFileError(f"the model's graph names an unknown or cyclic layer {name!r}")
        seen.add(name)
        entry = by_name[name]
        order.append(entry)
        nodes = entry.get("inbound_nodes") or []
        if not nodes:
            break
        if len(nodes) != 1:
            problems.append(f"layer {name!r} is called {len(nodes)} times (shared layer)")
            return []
        tensors = nodes[0]
        if isinstance(tensors, dict):  # the newer {"args": [...], "kwargs": {...}} form
            raise KerasFileError(f"layer {name!r}: unknown inbound node form")
        if len(tensors) != 1:
            problems.append(f"layer {name!r} takes {len(tensors)} inputs: not a chain of layers")
            return []
        source, _node, tensor_index, *kwargs = tensors[0]
        if tensor_index != 0:
            problems.append(
                f"layer {name!r} takes output {tensor_index} of {source!r} (a returned state?)"
            )
        if kwargs and kwargs[0]:
            problems.append(f"layer {name!r} is called with {sorted(kwargs[0])}")
        name = str(source)
    if str(inputs[0][0]) != name:
        raise KerasFileError(f"the model's chain ends at {name!r}, not at its input")
    order.reverse()
    unused = [n for n in by_name if n not in seen]
    if unused:
        problems.append(f"layers {unused} are not on the path from the input to the output")
    return order


def _input_shape(class_name: str, model_config: dict, entries: list[dict]) -> list | None:
    """The batch input shape: from an InputLayer, the first layer's
    batch_input_shape, or the model's build_input_shape."""
    for entry in entries:
        config = entry.get("config") or {}
        if "batch_input_shape" in config:
            return config["batch_input_shape"]
        if entry.get("class_name") != "InputLayer":
            break
    for key in ("build_input_shape",):
        if model_config.get(key) is not None:
            return model_config[key]
    return None


def _dtype_problem(value) -> str:
    """'' when a layer's dtype is float32 (a string, or a Policy object)."""
    name = value
    if isinstance(value, dict):
        name = (value.get("config") or {}).get("name")
    if name in (None, "float32"):
        return ""
    return f"dtype={name!r} (nntk computes in float32)"


def _axis_problem(value, rank: int) -> str:
    axes = value if isinstance(value, list) else [value]
    if len(axes) == 1 and isinstance(axes[0], int) and axes[0] in (-1, rank - 1):
        return ""
    return f"axis={value!r} (nntk normalises the last axis, {rank - 1} for rank-{rank} inputs)"


def _options(mapping: Mapping, config: dict, rank: int, problems: list[str], where: str) -> dict:
    """The constructor arguments of `mapping.nntk` from a Keras config; every option
    nntk cannot honour is added to `problems`."""
    kwargs = dict(mapping.fixed)
    wants = _constructor_args(mapping.nntk)
    for key, value in config.items():
        if key == "layer" and (mapping.wraps is not None or "layer" in wants):
            continue  # a wrapper's inner layer: _translate's
        if key in wants and key not in mapping.fixed:
            kwargs[key] = value
        elif key in INITIAL_ONLY or key in BOOKKEEPING:
            continue
        elif key == "dtype":
            if problem := _dtype_problem(value):
                problems.append(f"{where}: {problem}")
        elif key == "axis":
            if problem := _axis_problem(value, rank):
                problems.append(f"{where}: {problem}")
        elif key in KERAS_ONLY:
            if value != KERAS_ONLY[key]:
                problems.append(
                    f"{where}: {key}={value!r} is not supported (nntk computes "
                    f"{key}={KERAS_ONLY[key]!r})"
                )
        else:
            problems.append(f"{where}: option {key}={value!r} is unknown to nntk")
    return kwargs


def _translate(
    entry: dict, features: int, rank: int, problems: list[str], where: str
) -> Layer | None:
    """The nntk layer for one Keras layer entry, or None (with `problems` added)."""
    class_name = entry.get("class_name")
    config = _dict(entry.get("config"), f"{where} config")
    registered = entry.get("registered_name")
    mapping = LAYERS.get(class_name)
    if registered not in (None, class_name) or mapping is None:
        custom = f" (registered as {registered!r})" if registered not in (None, class_name) else ""
        problems.append(f"{where}: nntk has no {class_name} layer{custom}")
        return None
    before = len(problems)
    cls = mapping.nntk
    kwargs = _options(mapping, config, rank, problems, where)
    if mapping.wraps is not None or "layer" in _constructor_args(cls):
        inner = _dict(config.get("layer"), f"{where} inner layer")
        inner_name = inner.get("class_name")
        inner_where = f"{where} wrapping {inner_name}"
        if mapping.wraps is not None:  # folded: the inner layer's options, the wrapper's class
            if inner_name not in mapping.wraps or inner.get("registered_name") not in (
                None,
                inner_name,
            ):
                problems.append(f"{where}: nntk has no {class_name}({inner_name})")
                return None
            cls = mapping.wraps[inner_name]
            inner_config = _dict(inner.get("config"), f"{inner_where} config")
            kwargs = _options(Mapping(cls), inner_config, rank, problems, inner_where)
        else:
            inner_layer = _translate(inner, features, rank, problems, inner_where)
            if inner_layer is None:
                return None
            kwargs["layer"] = inner_layer
    if len(problems) > before:
        return None
    return _construct(cls, kwargs, features, problems, where)


def _construct(cls, kwargs: dict, features: int, problems: list[str], where: str):
    """cls(**kwargs) with the input size; the constructor's own validation (an unknown
    activation, a merge mode, ...) becomes a problem. Nothing native is allocated
    until a layer first runs."""
    if "layer" in kwargs:
        args = kwargs
    else:
        args = {**kwargs, "input_dim": features}
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        problems.append(f"{where}: {exc}")
        return None


def _plan(model: dict, path) -> list[_Planned]:
    """Every Keras layer in data-flow order, translated; raises UnsupportedKerasModel
    listing every problem."""
    problems: list[str] = []
    class_name, entries, model_config = _layer_list(model)
    keys = {id(entry): key for entry, key in zip(entries, _archive_keys(entries), strict=True)}
    if class_name == "Sequential":
        order = entries
    elif class_name in ("Functional", "Model"):
        order = _chain(model_config, entries, problems)
    else:
        kind = f"the model is a {class_name!r}, not a Sequential or Functional model"
        raise UnsupportedKerasModel(path, [kind])
    shape = _input_shape(class_name, model_config, order)
    if not isinstance(shape, list) or len(shape) not in (2, 3) or not isinstance(shape[-1], int):
        problems.append(
            f"the model's input shape {shape!r} is not (batch, features) or "
            "(batch, steps, features) with a known feature size"
        )
        raise UnsupportedKerasModel(path, problems)
    features, rank = int(shape[-1]), len(shape)
    planned: list[_Planned] = []
    for index, entry in enumerate(order):
        entry = _dict(entry, f"layers[{index}]")
        kind = entry.get("class_name")
        config = _dict(entry.get("config"), f"layers[{index}] config")
        name = str(config.get("name", entry.get("name", f"#{index}")))
        where = f"layer {name!r} ({kind})"
        if kind == "InputLayer":
            for key, value in config.items():
                if key in KERAS_ONLY and value != KERAS_ONLY[key]:
                    problems.append(f"{where}: {key}={value!r} is not supported")
            continue
        if kind in DROPOUT:
            rate = config.get("rate", 0.0)
            if rate:
                warnings.warn(
                    f"nn.load_keras: {where}, rate {rate}, is the identity at inference and "
                    "is left out: training with nntk does not drop units (Keras's fit "
                    "would), so fine-tuning differs from Keras's",
                    DropoutOmittedWarning,
                    stacklevel=3,
                )
            continue
        layer = _translate(entry, features, rank, problems, where)
        if layer is None:
            continue
        planned.append(_Planned(name, keys[id(entry)], kind, config, layer))
        if layer.output_dim is not None:
            features = layer.output_dim
        if getattr(layer, "return_sequences", True) is False:
            rank = 2
    if not planned and not problems:
        problems.append("the model has no layer nntk computes")
    if not problems:
        # The Sequential's own checks: a layer returning several tensors (return_state,
        # Bidirectional merge_mode=None) cannot be one step of a chain. Nothing native
        # is allocated by them.
        try:
            Sequential([p.layer for p in planned])
        except (TypeError, ValueError) as exc:
            found = re.match(r"layers\[(\d+)\]", str(exc))
            where = f"layer {planned[int(found.group(1))].name!r}: " if found else ""
            problems.append(f"{where}{exc}")
    if problems:
        for p in planned:
            p.layer.close()
        raise UnsupportedKerasModel(path, problems)
    return planned


# -- loading -------------------------------------------------------------------------------
def _short_name(weight_name: str) -> str:
    """'bidirectional/forward_lstm/lstm_cell/kernel:0' -> 'kernel'."""
    return re.sub(r":\d+$", "", weight_name.rsplit("/", 1)[-1])


def load_keras(path, *, timeout: float | None = None) -> Sequential:
    """The nntk Sequential computing the tf.keras model saved at `path` (.keras or .h5,
    from `model.save()`), with its weights and BatchNorm moving statistics. See the
    module doc for what loads and for the errors. `timeout`: seconds allowed for
    reading the file (default READ_TIMEOUT plus one per 10 MB)."""
    path = _check_path(path)
    try:
        with open(path, "rb") as f:
            signature = f.read(8)
        if signature[:4] != b"PK\x03\x04" and signature != b"\x89HDF\r\n\x1a\n":
            raise KerasFileError(f"{path} is neither a .keras archive (zip) nor an HDF5 .h5 file")
        source = _read(path, timeout)
        planned = _plan(source.config, path)
        arrays = []
        for p in planned:
            named = source.weights(p)
            read = [a for _, a in named]
            wanted = p.layer.weight_names()
            shapes = [tuple(s) for s in p.layer.weight_shapes()]
            got = [tuple(a.shape) for a in read]
            # Bidirectional's nntk names are forward_kernel, ...; the file's kernel, ...
            names = [re.sub(r"^(forward|backward)_", "", n) for n in wanted]
            if got != shapes or any(n and n != w for (n, _), w in zip(named, names, strict=False)):
                raise KerasFileError(
                    f"{path}: layer {p.name!r} ({p.class_name}) has weights "
                    f"{[n or '?' for n, _ in named]} of shapes {got} in the file; its config "
                    f"needs {wanted} of shapes {shapes}"
                )
            for a in read:
                if a.dtype.kind != "f":
                    raise KerasFileError(
                        f"{path}: layer {p.name!r} has a weight of dtype {a.dtype}, not float"
                    )
            arrays.extend(read)
    except KerasLoadError:
        raise
    except _READ_ERRORS as exc:
        raise KerasFileError(
            f"{path} is not a readable tf.keras model file ({type(exc).__name__}: {exc})"
        ) from exc
    layers = [p.layer for p in planned]
    try:
        model = Sequential(layers)
        model.set_weights(arrays)
    except (TypeError, ValueError) as exc:
        for layer in layers:
            layer.close()
        raise KerasFileError(f"{path}: the layers do not form an nntk model: {exc}") from exc
    return model
