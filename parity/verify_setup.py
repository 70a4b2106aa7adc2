"""What `nntk-parity verify` takes from the model file and its flags, checked: the
input shape, and the loss and optimizer (the model's compiled ones, or those of --loss
and --optimizer) as an nntk object and a tf.keras factory. VerifyError names what
nntk cannot verify (a usage problem, exit status 2)."""

from __future__ import annotations

import numpy as np

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


def resolve_input_shape(native, keras32, given: tuple[int, ...] | None) -> tuple[int, ...]:
    """The input the model is verified on: `given` (--input-shape) checked against the
    model's declared input, or batch DEFAULT_BATCH with DEFAULT_LENGTH for a free length."""
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
