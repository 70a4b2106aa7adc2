"""`nntk-parity`: the parity suite's command line.

    nntk-parity run [--layer NAME ...] [--profile dev|ci|nightly] [--report DIR] [--seed N]
                    [-j N] [--shard I/N]            live against tf.keras; keeps going
                                                    after a failure and reports every
                                                    distinct one with its minimal case;
                                                    on every core (-j N: N processes);
                                                    --shard: a 1/N share of the cases
    nntk-parity report merge DIR... [--report OUT]  the shards' results joined into the
                                                    whole run's report
    nntk-parity replay [--fixtures DIR] [--layer NAME ...] [--report DIR]
                                                    the native library against the
                                                    recorded fixtures (no TensorFlow)
    nntk-parity record [--layer NAME ...] [--out DIR] [--seed N]
                                                    (re)record the fixtures (TensorFlow)
    nntk-parity record --from-failure 'CASE_ID'     add a failing case as a fixture
    nntk-parity record --training                   (re)record the training fixtures
    nntk-parity record --check                      freshness: are the fixtures still
                                                    what tf.keras computes?
    nntk-parity repro 'CASE_ID' | FIXTURE           rerun one case in full (a fixture
                                                    id or file: replayed, no TensorFlow)
    nntk-parity list                                the layer specs
    nntk-parity model [NETWORK ...] [--optimizer NAME] [--full]
                                                    whole-model training parity: per
                                                    step, the worst error of the loss,
                                                    every weight and moving statistic
    nntk-parity verify MODEL [--input-shape B,T,F] [--steps N] [--report DIR]
                                                    your own tf.keras model file, whole
                                                    (parity/verify.py)
    nntk-parity example personalize [--tiny]        the worked example: on-device
                                                    training of the keyword detector
                                                    beside the same run in tf.keras

Exit status 0 only when everything passed; 1 on a parity failure (or a missing,
altered or corrupt fixture, or a worker process that died); 2 on bad usage (unknown
layer, unwritable report directory, library not loadable, shards that are not one
run).
"""

from __future__ import annotations

import argparse
import sys

from parity.terminal import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError


def _load_library() -> None:
    """Imports the native library up front, so a missing or broken build is one clear
    message instead of a failure per case."""
    try:
        import nntk_core  # noqa: F401
    except OSError as exc:
        raise UsageError(f"cannot load the native library: {exc}") from exc


def build_parser() -> argparse.ArgumentParser:
    """The subcommands, each registered by its own module's add_parser(subparsers)
    (which sets `func`, its main(args)). A new subcommand: its module, and one line in
    the import and in `registered` below, whose order `nntk-parity -h` lists."""
    from nntk_bench import run as bench_command
    from nntk_examples import command as example_command
    from parity import (
        list_command,
        model_command,
        record_command,
        replay_command,
        report_command,
        repro_command,
        run_command,
        verify_command,
    )

    registered = (
        run_command,
        report_command,
        replay_command,
        record_command,
        repro_command,
        bench_command,
        list_command,
        model_command,
        example_command,
        verify_command,
    )
    parser = argparse.ArgumentParser(prog="nntk-parity", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in registered:
        command.add_parser(sub)
    for command in sub.choices.values():
        command.add_argument(
            "--verbose", action="store_true", help="show TensorFlow's own start-up and log lines"
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    from parity import settings
    from parity.fixtures import FixtureError
    from parity.parallel import WorkerDied
    from parity.record import RecordError
    from parity.report import ReportError

    args = build_parser().parse_args(argv)
    settings.set_verbose(args.verbose)
    try:
        _load_library()  # every command reads the specs, which import nntk_core
        return args.func(args)
    except (UsageError, ReportError, RecordError) as exc:
        print(f"nntk-parity {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (FixtureError, WorkerDied) as exc:
        print(f"nntk-parity {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("nntk-parity: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader stopped early (`| head`): no traceback
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
