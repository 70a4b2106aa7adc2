"""`nntk-parity verify MODEL`: the parity of a user's own tf.keras model file.

    nntk-parity verify detector.keras [--input-shape 4,50,40] [--steps 3] [--report DIR]

nntk's side is `nn.load_keras(MODEL)`; tf.keras's is `load_model(MODEL)` in float32 and
a float64 twin with the same weights (the referee). Compared, with the whole-model
tolerance of parity/model_parity.py (STEP_TOLERANCE), on seeded random data:

- per layer, the inference output and the training output, the gradient with respect
  to the layer's input and every weight gradient, for a random upstream gradient at
  the model's output (tape.gradient(y, [x, ...] + weights, output_gradients=dy));
- N training steps (parity/model_parity.py's loop: the loss and every weight and moving
  statistic after each step, then the inference output after training), with the
  model's compiled loss and optimizer when nntk has them, or those given by flags.

Dropout layers are left out on both sides (nntk's loader omits them; the Keras
reference skips them, so training is compared without dropout). Prints the per-layer
error table and the per-step table, writes the same reports as `run` with
--report, and exits 0 when everything passes, 1 otherwise.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from parity.compare import compare
from parity.model_parity import STEP_TOLERANCE, ModelParity, compare_training
from parity.model_training import TrainingRun, train_keras, train_native
from parity.runner import CaseResult
from parity.spec import Case
from parity.spec_run import SpecRun

DEFAULT_BATCH, DEFAULT_LENGTH = 4, 16
# Keras loss names (strings and classes) -> the nntk loss class name, and the Keras
# loss options nntk computes as Keras's defaults.
LOSSES = {
    "mse": "MeanSquaredError",
    "mean_squared_error": "MeanSquaredError",
    "MeanSquaredError": "MeanSquaredError",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "CategoricalCrossentropy": "CategoricalCrossentropy",
}
LOSS_DEFAULTS = {"reduction": ("auto", "sum_over_batch_size"), "label_smoothing": (0.0,)}
LOSS_IGNORED = {"name", "axis", "fn"}
# Keras optimizer options nntk's optimizers have no argument for: the value nntk computes.
OPTIMIZER_DEFAULTS = {
    "weight_decay": None,
    "clipnorm": None,
    "global_clipnorm": None,
    "clipvalue": None,
    "use_ema": False,
}
OPTIMIZER_IGNORED = {
    "name",
    "jit_compile",
    "is_legacy_optimizer",
    "ema_momentum",
    "ema_overwrite_frequency",
}


class VerifyError(Exception):
    """The model or the flags cannot be verified (a usage problem, exit status 2)."""


# -- the tf.keras side ---------------------------------------------------------------------
def keras_twin(model, dtype: str):
    """A copy of a Sequential or Functional tf.keras model computing in `dtype`, with
    the same (cast) weights: every "dtype" of its config replaced."""

    def retype(value):
        if isinstance(value, dict):
            return {k: (dtype if k == "dtype" else retype(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [retype(v) for v in value]
        return value

    twin = type(model).from_config(retype(model.get_config()))
    twin.set_weights([w.astype(dtype) for w in model.get_weights()])
    return twin


def keras_chain(model) -> list:
    """The model's layers in data-flow order without InputLayer and the dropout layers
    (nn.load_keras leaves those out): one per nntk layer."""
    from nntk_core.keras_io import DROPOUT

    return [layer for layer in model.layers if type(layer).__name__ not in ("InputLayer", *DROPOUT)]


def chain_forward(chain):
    """forward(x, training) through the chain (for parity.model_training.train_keras)."""

    def forward(x, training=False):
        for layer in chain:
            x = layer(x, training=training)
        return x

    return forward


def keras_quantities(chain, x, dy, dtype) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """Per layer i: `i:output` (inference), `i:output:training` and `i:grad:input` (the
    training call's gradient with respect to the layer's input, for the upstream
    gradient dy at the model's output); and every trainable weight's gradient, in
    model order."""
    from parity import reference

    tf = reference.tensorflow()
    out: dict[str, np.ndarray] = {}
    h = tf.constant(x.astype(dtype))
    for i, layer in enumerate(chain):
        h = layer(h, training=False)
        out[f"{i}:output"] = h.numpy()
    inputs = []
    xt = tf.constant(x.astype(dtype))
    with tf.GradientTape() as tape:
        tape.watch(xt)
        h = xt
        for layer in chain:
            inputs.append(h)
            h = layer(h, training=True)
            out[f"{len(inputs) - 1}:output:training"] = h
    weights = [w for layer in chain for w in layer.trainable_weights]
    grads = tape.gradient(
        h,
        inputs + weights,
        output_gradients=tf.constant(dy.astype(dtype)),
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    for i in range(len(chain)):
        out[f"{i}:output:training"] = out[f"{i}:output:training"].numpy()
        out[f"{i}:grad:input"] = grads[i].numpy()
    return out, [g.numpy() for g in grads[len(chain) :]]


def native_quantities(model, x, dy) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """The same quantities from the nntk model, layer by layer."""
    out: dict[str, np.ndarray] = {}
    h = x
    for i, layer in enumerate(model.layers):
        h = layer(h, training=False)
        out[f"{i}:output"] = h
    h = x
    for i, layer in enumerate(model.layers):
        h = layer(h, training=True)
        out[f"{i}:output:training"] = h
    grads_per_layer = []
    d = dy
    for i in reversed(range(len(model.layers))):
        d, grads = model.layers[i].backward(d)[:2]
        out[f"{i}:grad:input"] = d
        grads_per_layer.append(grads)
    return out, [g for grads in reversed(grads_per_layer) for g in grads]


# -- loss and optimizer ----------------------------------------------------------------------
def _keras_loss_spec(loss) -> tuple[str, dict]:
    """(Keras loss name, its config) of a compiled loss (a string or a Loss object)."""
    if isinstance(loss, str):
        return loss, {}
    if loss is None:
        return "", {}
    if not hasattr(loss, "get_config"):  # a loss function (keras.losses.mean_squared_error)
        return getattr(loss, "__name__", repr(loss)), {}
    return type(loss).__name__, dict(loss.get_config())


def resolve_loss(keras_loss, flag: str | None):
    """(nntk loss, Keras loss factory, description) for the compiled loss or `flag`."""
    import nntk_core as nn
    from parity import reference

    keras = reference.keras()
    if flag:
        name, config = flag, {}
        if flag == "categorical_crossentropy_logits":
            name, config = "categorical_crossentropy", {"from_logits": True}
    else:
        name, config = _keras_loss_spec(keras_loss)
        if not name:
            raise VerifyError("the model is not compiled: give the loss with --loss")
    if name not in LOSSES:
        raise VerifyError(
            f"loss {name!r} is not one nntk trains with ({', '.join(sorted(LOSSES))}); "
            "give one with --loss"
        )
    options = {}
    for key, value in config.items():
        if key in LOSS_DEFAULTS:
            if value not in LOSS_DEFAULTS[key]:
                raise VerifyError(f"loss {name}: {key}={value!r} is not supported by nntk")
        elif key == "from_logits":
            options[key] = bool(value)
        elif key not in LOSS_IGNORED:
            raise VerifyError(f"loss {name}: option {key}={value!r} is unknown to nntk")
    cls = LOSSES[name]
    if cls == "MeanSquaredError":
        options = {}
    native = getattr(nn.losses, cls)(**options)

    def keras_factory():
        return getattr(keras.losses, cls)(**options)

    described = cls + (f"({', '.join(f'{k}={v}' for k, v in options.items())})" if options else "")
    return native, keras_factory, described


def resolve_optimizer(keras_optimizer, flag: str | None, learning_rate: float | None):
    """(nntk optimizer factory, Keras optimizer factory, description)."""
    import inspect

    import nntk_core as nn
    from parity import reference

    keras = reference.keras()
    if flag:
        name, config = {"adam": "Adam", "sgd": "SGD"}[flag], {}
    elif keras_optimizer is not None:
        name, config = type(keras_optimizer).__name__, dict(keras_optimizer.get_config())
    else:
        raise VerifyError("the model is not compiled: give the optimizer with --optimizer")
    native_cls = getattr(nn.optimizers, name, None)
    if native_cls is None or not isinstance(native_cls, type):
        raise VerifyError(f"optimizer {name} is not one nntk has (Adam, SGD): use --optimizer")
    wanted = set(inspect.signature(native_cls.__init__).parameters) - {"self"}
    options = {}
    for key, value in config.items():
        if key in wanted:
            if isinstance(value, dict):  # a learning-rate schedule
                raise VerifyError(f"optimizer {name}: {key}={value!r} is not supported by nntk")
            options[key] = float(value) if isinstance(value, np.floating) else value
        elif key in OPTIMIZER_DEFAULTS:
            if value != OPTIMIZER_DEFAULTS[key]:
                raise VerifyError(f"optimizer {name}: {key}={value!r} is not supported by nntk")
        elif key not in OPTIMIZER_IGNORED:
            raise VerifyError(f"optimizer {name}: option {key}={value!r} is unknown to nntk")
    if learning_rate is not None:
        options["learning_rate"] = learning_rate
    # The float32 value Keras stores (0.0010000000474974513): both sides take it as is.
    shown = [f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in options.items()]
    described = f"{name}({', '.join(shown)})"

    def native_factory():
        return native_cls(**options)

    def keras_factory():
        return getattr(keras.optimizers, name)(**options)

    return native_factory, keras_factory, described


# -- running ---------------------------------------------------------------------------------
@dataclass
class _ModelPart:
    """What SpecRun.record and the report ask of a spec, for a layer of a user's model
    (no options, no shape buckets)."""

    name: str
    layer_class: str
    options: dict = field(default_factory=dict)

    def option_values(self, case) -> dict:
        return {}

    def buckets_hit(self, case) -> list[str]:
        return []

    def shape_buckets(self) -> list:
        return []


@dataclass
class Verification:
    path: str
    layers: list[str]  # "0 Conv1D 'conv1d'" per nntk layer
    runs: list[SpecRun]  # per layer, then "training"
    parts: list[_ModelPart]
    training: ModelParity
    notes: list[str]
    input_shape: tuple[int, ...]
    loss: str
    optimizer: str

    @property
    def passed(self) -> bool:
        return all(run.passed for run in self.runs)

    def failures(self) -> str:
        return "\n".join(run.failure for run in self.runs if run.failure)


def _input_shape(native, keras32, given: tuple[int, ...] | None) -> tuple[int, ...]:
    declared = tuple(keras32.input_shape)
    if given is None:
        shape = [DEFAULT_BATCH] + [d if d is not None else DEFAULT_LENGTH for d in declared[1:]]
        given = tuple(int(d) for d in shape)
    if len(given) != len(declared):
        raise VerifyError(
            f"--input-shape {','.join(map(str, given))} has rank {len(given)}; the model takes "
            f"{declared} (None: any size)"
        )
    for i, (g, d) in enumerate(zip(given, declared, strict=True)):
        if g < 1 or (d is not None and i > 0 and g != d):
            raise VerifyError(
                f"--input-shape {','.join(map(str, given))} does not fit the model's input "
                f"{declared} (axis {i})"
            )
    try:
        native.compute_output_shape(given)
    except ValueError as exc:
        raise VerifyError(f"--input-shape {given} does not fit the model: {exc}") from None
    return given


def _noise_only(native) -> frozenset[tuple[int, str]]:
    """(index, "bias") of every layer whose output feeds a BatchNorm: that bias's true
    gradient is zero (BatchNorm removes the mean), see parity.model_parity.NOISE_ONLY_TOLERANCE."""
    from nntk_core import BatchNorm

    layers = native.layers
    return frozenset(
        (i, "bias")
        for i in range(len(layers) - 1)
        if isinstance(layers[i + 1], BatchNorm) and "bias" in layers[i].weight_names()
    )


def _targets(rng, loss_name: str, shape) -> np.ndarray:
    if "Crossentropy" in loss_name:
        labels = rng.integers(0, shape[-1], size=shape[:-1])
        return np.eye(shape[-1], dtype=np.float32)[labels]
    return rng.standard_normal(shape).astype(np.float32)


def verify(
    path,
    *,
    input_shape: tuple[int, ...] | None = None,
    steps: int = 3,
    seed: int = 0,
    loss: str | None = None,
    optimizer: str | None = None,
    learning_rate: float | None = None,
) -> Verification:
    """Loads both sides and compares them (see the module doc); VerifyError when the
    model, its compiled loss or optimizer, or the input shape cannot be verified."""
    import nntk_core as nn
    from parity import reference

    path = Path(path)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", nn.DropoutOmittedWarning)
        try:
            native = nn.load_keras(path)
        except (OSError, nn.KerasLoadError) as exc:
            raise VerifyError(str(exc)) from None
    notes += [str(w.message) for w in caught if issubclass(w.category, nn.DropoutOmittedWarning)]
    keras = reference.keras()
    try:
        keras32 = keras.models.load_model(path, compile=True)
    except Exception as exc:  # noqa: BLE001 - whatever tf.keras raises on the file
        raise VerifyError(f"tf.keras cannot load {path}: {type(exc).__name__}: {exc}") from None
    keras64 = keras_twin(keras32, "float64")
    chain32, chain64 = keras_chain(keras32), keras_chain(keras64)
    if len(chain32) != len(native.layers):
        raise VerifyError(
            f"the nntk model has {len(native.layers)} layers, the tf.keras chain {len(chain32)}"
        )
    shape = _input_shape(native, keras32, input_shape)
    native_loss, keras_loss, loss_text = resolve_loss(getattr(keras32, "loss", None), loss)
    native_opt, keras_opt, opt_text = resolve_optimizer(
        getattr(keras32, "optimizer", None), optimizer, learning_rate
    )
    initial = keras32.get_weights()
    loaded = native.get_weights()
    names = [f"{i} {type(k).__name__} {k.name!r}" for i, k in enumerate(chain32)]

    # Per layer: outputs and gradients at the file's weights.
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    out_shape = native.compute_output_shape(shape)
    dy = rng.standard_normal(out_shape).astype(np.float32)
    q64, g64 = keras_quantities(chain64, x, dy, np.float64)
    q32, g32 = keras_quantities(chain32, x, dy, np.float32)
    qn, gn = native_quantities(native, x, dy)
    parts, runs = [], []
    start = 0
    for i, (layer, k) in enumerate(zip(native.layers, chain32, strict=True)):
        comparisons = [
            compare(q, qn[f"{i}:{q}"], q64[f"{i}:{q}"], q32[f"{i}:{q}"], STEP_TOLERANCE)
            for q in ("output", "output:training", "grad:input")
        ]
        trainable = [
            n for n, t in zip(layer.weight_names(), layer.trainable_mask(), strict=True) if t
        ]
        for j, weight in enumerate(trainable):
            comparisons.append(
                compare(
                    f"grad:{weight}",
                    gn[start + j],
                    g64[start + j],
                    g32[start + j],
                    STEP_TOLERANCE,
                )
            )
        start += len(trainable)
        part = _ModelPart(_file_safe(f"{i:02d}-{k.name}"), type(k).__name__)
        parts.append(part)
        runs.append(_record(part, comparisons, shape, seed, names[i]))

    # Training steps from the weights each side loaded (the moving statistics the
    # training calls above changed are put back first).
    native.set_weights(loaded)
    keras32.set_weights(initial)
    keras64.set_weights([w.astype(np.float64) for w in initial])
    data = {
        "batches": [
            (rng.standard_normal(shape).astype(np.float32), _targets(rng, loss_text, out_shape))
            for _ in range(steps)
        ],
        "test": rng.standard_normal(shape).astype(np.float32),
    }
    run32 = _keras_training(keras32, chain32, data, keras_opt, keras_loss, np.float32)
    run64 = _keras_training(keras64, chain64, data, keras_opt, keras_loss, np.float64)
    ours = train_native(native, data, native_opt(), loss=native_loss)
    labels = [
        f"layer {i} ({type(k).__name__}) {w}"
        for i, (layer, k) in enumerate(zip(native.layers, chain32, strict=True))
        for w in layer.weight_names()
    ]
    training = compare_training(labels, ours, run32, run64, steps, _noise_only(native))
    part = _ModelPart("training", "Sequential")
    parts.append(part)
    runs.append(_record(part, training.comparisons, shape, seed, "training"))
    native.close()
    return Verification(str(path), names, runs, parts, training, notes, shape, loss_text, opt_text)


def _keras_training(model, chain, data, optimizer, loss, dtype) -> TrainingRun:
    return train_keras(model, data, optimizer(), dtype, loss=loss(), forward=chain_forward(chain))


def _file_safe(name: str) -> str:
    return re.sub(r"[^\w.-]", "_", name)


def _record(part: _ModelPart, comparisons, shape, seed: int, title: str) -> SpecRun:
    for c in comparisons:
        if not c.worst_location and c.worst_index is not None:
            c.worst_location = f"{c.quantity} {list(c.worst_index)}"
    case = Case(part.name, {}, shape[0], shape[1] if len(shape) == 3 else 1, len(shape), seed)
    result = CaseResult(case, comparisons)
    run = SpecRun(part.name)
    run.record(part, result)
    if not result.passed:
        failing = "\n".join("  " + c.describe() for c in comparisons if not c.passed)
        run.failure = f"{title}: parity failure\n{failing}"
    return run


# -- the command -----------------------------------------------------------------------------
def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise ValueError(f"not a shape: {text!r} (e.g. 4,50,40)") from None
    return shape


def add_parser(sub) -> None:
    """Registers `verify` on the nntk-parity subcommands."""
    verify_cmd = sub.add_parser(
        "verify",
        help="whole-model parity of your own tf.keras model file (.keras or .h5): per "
        "layer outputs and gradients, then N training steps, against tf.keras float32 "
        "and the float64 referee",
    )
    verify_cmd.add_argument("model", metavar="MODEL", help="a .keras or .h5 file (model.save())")
    verify_cmd.add_argument(
        "--input-shape",
        type=_shape,
        metavar="B,T,F",
        help=f"the input (default: batch {DEFAULT_BATCH}, the model's length or "
        f"{DEFAULT_LENGTH}, its features)",
    )
    verify_cmd.add_argument("--steps", type=int, default=3, help="training steps (default 3)")
    verify_cmd.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    verify_cmd.add_argument(
        "--loss",
        choices=("mse", "categorical_crossentropy", "categorical_crossentropy_logits"),
        help="the loss (default: the model's compiled loss)",
    )
    verify_cmd.add_argument(
        "--optimizer", choices=("adam", "sgd"), help="the optimizer (default: the compiled one)"
    )
    verify_cmd.add_argument("--learning-rate", type=float, help="overrides the learning rate")
    verify_cmd.add_argument("--report", metavar="DIR", help="write reports into DIR")
    verify_cmd.set_defaults(func=main)


def main(args) -> int:
    from parity import report, terminal
    from parity.model_command import model_table

    if args.steps < 1:
        raise terminal.UsageError(f"--steps must be >= 1, got {args.steps}")
    if args.report:
        report.prepare(args.report)
    console = terminal.console()
    with console.status(f"verifying {args.model} against tf.keras ..."):
        try:
            result = verify(
                args.model,
                input_shape=args.input_shape,
                steps=args.steps,
                seed=args.seed,
                loss=args.loss,
                optimizer=args.optimizer,
                learning_rate=args.learning_rate,
            )
        except VerifyError as exc:
            raise terminal.UsageError(str(exc)) from None
    title = (
        f"{args.model}: input {result.input_shape}, seed {args.seed} "
        "(nntk vs tf.keras, float64 referee)"
    )
    console.print("layers: " + "; ".join(result.layers), markup=False)
    for note in result.notes:
        console.print(f"note: {note}", markup=False)
    # The console shows the per-layer rows; the per-step rows are the table below (the
    # reports hold both).
    console.print(terminal.summary_table(result.runs[:-1], result.parts[:-1], title=title))
    terminal.print_legend(console)
    console.print(
        model_table(
            result.training,
            f"training: {args.steps} steps, {result.loss}, {result.optimizer}",
        )
    )
    if not result.passed:
        console.print(result.failures(), style="red", markup=False, highlight=False, soft_wrap=True)
    if args.report:
        from parity import reference
        from parity import settings as reference_settings

        meta = {
            "model": str(args.model),
            "input_shape": list(result.input_shape),
            "loss": result.loss,
            "optimizer": result.optimizer,
            "versions": reference.versions(),
            "reference_settings": reference_settings.apply(),
            **terminal.library_meta(),
        }
        report.write(
            args.report, result.runs, result.parts, profile="verify", source="verify", meta=meta
        )
        console.print(f"report written to {args.report}")
    verdict = "passed" if result.passed else "FAILED"
    console.print(f"verify {args.model}: {verdict}", markup=False)
    return terminal.EXIT_OK if result.passed else terminal.EXIT_FAILED
