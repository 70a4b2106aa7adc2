"""Bitwise proof that a refactoring of the C library changed no number.

`dump` runs the installed library on every fixture (the layer fixtures, fixtures/training/
and the call sequences in fixtures/sequences/) through the replay machinery and writes
one .npz per fixture (per sequence) holding nntk's own arrays: forward outputs, states,
input and weight gradients; a case where the native side raised keeps its message.
`compare` then checks two dumps (before / after a change) array by array on the raw
bytes (dtype, shape and every bit), not with a tolerance.

    python tools/bitwise_dump.py dump /tmp/before          # from the unmodified build
    python tools/bitwise_dump.py dump /tmp/after
    python tools/bitwise_dump.py compare /tmp/before /tmp/after

`--layers dense conv1d` restricts both to some layer specs (the training fixtures are
dumped whole whenever no layer list is given). NNTK_ISA=generic selects the generic
kernels as usual. Nothing is compared with tf.keras here: that is the replay's job.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

ERROR_KEY = "__error__"


def _save(path: Path, arrays: dict[str, np.ndarray], error: str = "") -> int:
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    if error:
        payload[ERROR_KEY] = np.array(error)
    np.savez(path, **payload)
    return len(arrays)


def _dump_kind(kind, directory: Path, out: Path, layers: list[str] | None) -> tuple[int, int]:
    from parity.fixtures import load_manifest
    from parity.replay import replay_entry

    files = arrays = 0
    for entry in load_manifest(directory)["cases"]:
        if layers and entry.get("layer") not in layers:
            continue
        result, _ = replay_entry(directory, entry, keep_arrays=True, kind=kind)
        native = result.arrays[2] if result.arrays else {}
        arrays += _save(out / Path(entry["file"]).name, native, result.error)
        files += 1
    return files, arrays


def _dump_sequences(directory: Path, out: Path, layers: list[str] | None) -> tuple[int, int]:
    """Every step's native quantities of every recorded sequence, in one .npz per
    sequence (keys `<step>/<quantity>`), following parity.sequences._replay_one."""
    from parity.fixtures import load_manifest, read_entry
    from parity.sequences import SEQUENCES_DIR, NativeSide, native_layer, parse_step_id
    from parity.specs import get_spec

    where = directory / SEQUENCES_DIR
    sequences: dict[str, list[dict]] = {}
    for entry in load_manifest(where)["cases"]:
        if not layers or entry.get("layer") in layers:
            sequences.setdefault(entry["sequence"], []).append(entry)
    files = arrays = 0
    for entries in sequences.values():
        entries.sort(key=lambda e: e.get("step", 0))
        native, found, error = None, {}, ""
        try:
            for entry in entries:
                fixture = read_entry(where, entry, entry["file"])
                layer, config, _, _, index, op = parse_step_id(fixture.case_id)
                spec = get_spec(layer)
                if native is None:
                    native = NativeSide(spec, native_layer(None, spec, config))
                op.data = fixture.data
                for key, value in native.apply(op).items():
                    found[f"{index:03d}/{key}"] = np.asarray(value)
        except Exception as exc:  # the native side raised: the message is the result
            error = f"{type(exc).__name__}: {exc}"
        finally:
            if native is not None and hasattr(native.layer, "close"):
                native.layer.close()
        digest = hashlib.sha256(entries[0]["sequence"].encode()).hexdigest()[:12]
        arrays += _save(out / f"{entries[0]['layer']}-{digest}.npz", found, error)
        files += 1
    return files, arrays


def dump(out: Path, layers: list[str] | None = None) -> tuple[int, int]:
    from parity.fixtures import default_dir
    from parity.replay import fixture_kinds

    directory = default_dir()
    out.mkdir(parents=True, exist_ok=True)
    files = arrays = 0
    for kind in fixture_kinds():
        if layers and not set(layers) & set(kind.spec_names()):
            continue
        sub = out / (kind.subdir or "layers")
        sub.mkdir(exist_ok=True)
        f, a = _dump_kind(kind, directory / kind.subdir, sub, layers)
        files, arrays = files + f, arrays + a
    sub = out / "sequences"
    sub.mkdir(exist_ok=True)
    f, a = _dump_sequences(directory, sub, layers)
    return files + f, arrays + a


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def compare(before: Path, after: Path) -> tuple[int, int, list[str]]:
    """(files, arrays compared, differences) of two dumps."""
    names = {p.relative_to(before) for p in before.rglob("*.npz")}
    names_after = {p.relative_to(after) for p in after.rglob("*.npz")}
    problems = [f"{n}: only in {before}" for n in sorted(names - names_after)]
    problems += [f"{n}: only in {after}" for n in sorted(names_after - names)]
    arrays = 0
    for name in sorted(names & names_after):
        with np.load(before / name) as a, np.load(after / name) as b:
            if set(a.files) != set(b.files):
                problems.append(f"{name}: keys {sorted(a.files)} != {sorted(b.files)}")
                continue
            for key in a.files:
                arrays += key != ERROR_KEY
                if not _same(a[key], b[key]):
                    problems.append(f"{name}: {key} differs")
    return len(names & names_after), arrays, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="dump the installed library's results on every fixture")
    d.add_argument("out", type=Path)
    d.add_argument("--layers", nargs="*")
    c = sub.add_parser("compare", help="compare two dumps bytewise")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "dump":
        files, arrays = dump(args.out, args.layers)
        print(f"{files} fixtures, {arrays} arrays dumped to {args.out}")
        return 0
    files, arrays, problems = compare(args.before, args.after)
    for p in problems:
        print(p)
    verdict = "all bit-identical" if not problems else f"{len(problems)} differences"
    print(f"{files} fixtures, {arrays} arrays: {verdict}")
    return 1 if problems or not files else 0


if __name__ == "__main__":
    sys.exit(main())
