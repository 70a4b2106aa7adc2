"""Activation names, as tf.keras spells them, mapped to NNTKActivationKind."""

from __future__ import annotations

# nntk/status.h NNTKActivationKind, in enum order.
KINDS: dict[str, int] = {
    "linear": 0,
    "relu": 1,
    "relu6": 2,
    "leaky_relu": 3,  # the string form: tf.nn.leaky_relu with alpha 0.2
    "sigmoid": 4,
    "hard_sigmoid": 5,
    "tanh": 6,
    "softmax": 7,
    "elu": 8,
    "selu": 9,
    "softplus": 10,
    "softsign": 11,
    "swish": 12,
    "gelu": 13,  # exact erf form, Keras gelu(approximate=False)
    "gelu_approximate": 14,  # the tanh form, Keras gelu(approximate=True)
    "exponential": 15,
}

# Other spellings tf.keras accepts for the same function.
ALIASES: dict[str, str] = {"silu": "swish"}

ACTIVATIONS: tuple[str, ...] = tuple(KINDS)


def canonical(name: str | None, argument: str = "activation") -> str:
    """The canonical name of an activation (None -> "linear"); ValueError names `argument`."""
    if name is None:
        return "linear"
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be an activation name or None, not {type(name).__name__}")
    key = ALIASES.get(name, name)
    if key not in KINDS:
        known = ", ".join(sorted(set(KINDS) | set(ALIASES)))
        raise ValueError(f"{argument}={name!r} is not a known activation; known: {known}")
    return key


def kind(name: str | None, argument: str = "activation") -> int:
    """The NNTKActivationKind value of an activation name."""
    return KINDS[canonical(name, argument)]
