"""`nntk-parity example NAME`: runs one of the worked examples."""

from __future__ import annotations

from nntk_examples import personalize

# example name -> its module, which holds `main(args)`
EXAMPLES = {"personalize": personalize}


def main(args) -> int:
    return EXAMPLES[args.name].main(args)


def add_parser(subparsers) -> None:
    """`nntk-parity example` (registered by parity/cli.py)."""
    example = subparsers.add_parser("example", help="worked examples")
    example.add_argument("name", choices=tuple(EXAMPLES), help="the example to run")
    example.add_argument(
        "--tiny", action="store_true", help="a tiny, fast configuration (what the test runs)"
    )
    example.add_argument("--epochs", type=int, help="training epochs")
    example.add_argument("--seed", type=int, default=0, help="data and initial weights")
    example.add_argument("--no-keras", action="store_true", help="nntk only (no TensorFlow needed)")
    example.add_argument("--out", help="a directory to keep the model files in (default: none)")
    example.set_defaults(func=main)
