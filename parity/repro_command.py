"""`nntk-parity repro ID`: reruns one case and prints every quantity in full: a case
id live (TensorFlow), or a fixture id or file replayed (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

from parity.terminal import EXIT_FAILED, EXIT_OK, UsageError


def main(args) -> int:
    if "?" in args.case_id:
        return _repro_live(args.case_id)
    return _repro_fixture(args)


def _repro_live(case_id: str) -> int:
    from parity import runner, training
    from parity.case import Case
    from parity.record import parse_case_arg
    from parity.specs import get_spec

    try:
        case = Case.from_id(parse_case_arg(case_id))
        is_training = case.layer in training.spec_names()  # a loss, optimizer, train_step
        spec = (training.get_spec if is_training else get_spec)(case.layer)
    except (ValueError, KeyError) as exc:
        raise UsageError(str(exc).strip('"')) from exc
    result = (training.run_case if is_training else runner.run_case)(spec, case, keep_arrays=True)
    print(result.full_report(spec))
    return EXIT_OK if result.passed else EXIT_FAILED


def _repro_fixture(args) -> int:
    from parity.fixtures import default_dir
    from parity.replay import find_fixture, replay_entry

    ident = args.case_id
    directory = Path(args.fixtures) if args.fixtures else default_dir()
    as_path = Path(ident)
    if as_path.parent != Path("."):  # a path to a fixture file: its directory's manifest
        directory, ident = as_path.parent, as_path.name
    found = find_fixture(directory, ident)  # a layer or a training fixture
    if found is None:
        raise UsageError(
            f"{args.case_id!r} is neither a case id ('layer?key=value&...') nor a fixture "
            f"listed in {directory / 'manifest.json'}"
        )
    kind, directory, entry = found
    result, spec = replay_entry(directory, entry, keep_arrays=True, kind=kind)
    print(f"fixture {directory / entry['file']} (origin: {entry.get('origin', '?')}), replayed")
    print(result.full_report(spec))
    return EXIT_OK if result.passed else EXIT_FAILED


def add_parser(subparsers) -> None:
    """`nntk-parity repro` (registered by parity/cli.py)."""
    repro = subparsers.add_parser(
        "repro",
        help="rerun one case and print every quantity in full: a case id (live, "
        "TensorFlow), or a fixture id / .npz file (replayed, no TensorFlow)",
    )
    repro.add_argument("case_id", metavar="ID")
    repro.add_argument("--fixtures", metavar="DIR", help="where fixture ids are looked up")
    repro.set_defaults(func=main)
