"""`nntk-parity verify MODEL`: the command (parity/verify.py holds the comparison)."""

from __future__ import annotations

from parity import report, terminal
from parity.verify import verify
from parity.verify_setup import DEFAULT_BATCH, DEFAULT_LENGTH, VerifyError


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
    terminal.add_report_option(verify_cmd)
    verify_cmd.set_defaults(func=main)


def main(args) -> int:
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
        meta = {
            "model": str(args.model),
            "input_shape": list(result.input_shape),
            "loss": result.loss,
            "optimizer": result.optimizer,
            **terminal.reference_meta(),
        }
        report.write(
            args.report, result.runs, result.parts, profile="verify", source="verify", meta=meta
        )
        console.print(f"report written to {args.report}")
    verdict = "passed" if result.passed else "FAILED"
    console.print(f"verify {args.model}: {verdict}", markup=False)
    return terminal.EXIT_OK if result.passed else terminal.EXIT_FAILED
