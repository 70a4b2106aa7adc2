"""`nntk-parity list`: the layer specs and their options."""

from __future__ import annotations

from parity.terminal import EXIT_OK


def main(args) -> int:
    from parity.specs import all_specs

    for spec in all_specs():
        options = ", ".join(f"{k}={list(v)}" for k, v in spec.options.items())
        print(f"{spec.name:24s} {spec.layer_class:22s} {options}")
    return EXIT_OK


def add_parser(subparsers) -> None:
    """`nntk-parity list` (registered by parity/cli.py)."""
    listing = subparsers.add_parser("list", help="list the layer specs and their options")
    listing.set_defaults(func=main)
