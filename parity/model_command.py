"""`nntk-parity model`: whole-model training parity, a per-step table of the worst
errors (parity/model_parity.py)."""

from __future__ import annotations

import re

from nntk_models import NETWORKS
from parity.model_parity import STEP_TOLERANCE, run_network
from parity.model_training import OPTIMIZERS
from parity.terminal import EXIT_FAILED, EXIT_OK, UsageError
from parity.terminal import console as _console

_SHORT_KERAS = {
    "Conv1D": "conv",
    "BatchNormalization": "bn",
    "Activation": "act",
    "GRU": "gru",
    "LSTM": "lstm",
    "Bidirectional": "bidi",
    "TimeDistributed": "tdd",
}


def _short_quantity(quantity: str) -> str:
    """'layer 4 (BatchNormalization) moving_mean' -> '4 bn moving_mean'."""
    match = re.fullmatch(r"layer (\d+) \((\w+)\) (.+)", quantity)
    if not match:
        return quantity
    index, kind, weight = match.groups()
    return f"{index} {_SHORT_KERAS.get(kind, kind)} {weight}"


def model_table(result, title: str):
    """The per-step table of a model-parity run (parity.model_parity.ModelParity): errors
    are max|nntk - float64| / max(1, max|float64|) of a tensor."""
    from rich.table import Table

    table = Table(title=title)
    for column in (
        "step",
        "loss err",
        "worst err",
        "in (layer, weight)",
        "Keras f32 err",
        "tol. used",
        "noise-only",
    ):
        table.add_column(
            column, justify="left" if column in ("step", "in (layer, weight)") else "right"
        )
    for s in result.by_step():
        table.add_row(
            s.label + ("" if s.passed else " FAIL"),
            "" if s.loss_error != s.loss_error else f"{s.loss_error:.2e}",
            f"{s.worst_error:.2e}",
            _short_quantity(s.worst_quantity),
            f"{s.keras32_error:.2e}",
            f"{100 * s.tolerance_used:.1f}%",
            "" if s.noise_error != s.noise_error else f"{s.noise_error:.2e}",
            style="" if s.passed else "red",
        )
    return table


def main(args) -> int:
    networks = args.network or ["keyword", "bidirectional"]
    unknown = [n for n in networks if n not in NETWORKS]
    if unknown:
        raise UsageError(f"unknown network {', '.join(unknown)}; known: {', '.join(NETWORKS)}")
    optimizers = args.optimizer or sorted(OPTIMIZERS)
    for name, value in (
        ("--steps", args.steps),
        ("--batch", args.batch),
        ("--length", args.length),
    ):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be >= 1, got {value}")
    console = _console()
    failed = False
    tol = STEP_TOLERANCE
    for network in networks:
        net = NETWORKS[network]
        sizes = net.full if args.full else net.small
        batch = args.batch or (net.full_batch if args.full else 4)
        length = args.length or (net.full_length if args.full else 12)
        for optimizer in optimizers:
            with console.status(f"{network} / {optimizer}: training nntk and tf.keras ..."):
                result = run_network(
                    network,
                    optimizer,
                    full=args.full,
                    steps=args.steps,
                    batch=batch,
                    length=length,
                    seed=args.seed,
                )
            sized = ", ".join(f"{k}={v}" for k, v in sizes.items())
            title = (
                f"{network} ({sized}; batch {batch}, length {length}), "
                f"{optimizer} {OPTIMIZERS[optimizer]}, seed {args.seed}"
            )
            console.print(model_table(result, title))
            sec = result.seconds
            console.print(
                "  err = max|nntk - float64| / max(1, max|float64|) of a tensor, worst over "
                f"the loss and every weight and moving statistic;\n  tolerance per step "
                f"atol={tol.atol:g} rtol={tol.rtol:g} (noise-only: the conv bias before "
                f"BatchNorm, gradient 0 in exact arithmetic).\n  Training time: nntk "
                f"{sec['nntk']:.2f} s, tf.keras eager float32 {sec['keras32']:.2f} s, "
                f"float64 {sec['keras64']:.2f} s"
            )
            if not result.passed:
                failed = True
                console.print(result.failures(), style="red", markup=False)
    verdict = "FAILED" if failed else "passed"
    console.print(f"model parity ({', '.join(networks)} x {', '.join(optimizers)}): {verdict}")
    return EXIT_FAILED if failed else EXIT_OK


def add_parser(subparsers) -> None:
    """`nntk-parity model` (registered by parity/cli.py)."""
    model = subparsers.add_parser(
        "model",
        help="whole-model training parity (nntk vs tf.keras, float64 referee): "
        "a per-step table of the worst errors",
    )
    model.add_argument(
        "network",
        nargs="*",
        metavar="NETWORK",
        help=f"{', '.join(list(NETWORKS)[:-1])} or {list(NETWORKS)[-1]} "
        "(default: keyword bidirectional)",
    )
    model.add_argument(
        "--optimizer",
        action="append",
        choices=tuple(OPTIMIZERS),
        help="only this optimizer (repeatable; default: both)",
    )
    model.add_argument(
        "--full",
        action="store_true",
        help="the full sizes (40->64, GRU(64) / LSTM(32); batch 8, length 50)",
    )
    model.add_argument("--steps", type=int, default=10, help="training steps (default 10)")
    model.add_argument("--batch", type=int, help="batch size (default 4, --full 8)")
    model.add_argument("--length", type=int, help="sequence length (default 12, --full 50)")
    model.add_argument("--seed", type=int, default=0, help="initial weights and data (default 0)")
    model.set_defaults(func=main)
