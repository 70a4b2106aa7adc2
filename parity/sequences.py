"""Call sequences: one nntk layer and its tf.keras twin driven through the same
sequence of calls, every step compared (issue 12 §3).

A layer case (parity/runner.py) runs one fresh layer through a fixed protocol.
Real use is a long-lived layer: training calls at changing batch sizes and lengths,
inference calls in between, backward after either, new weights from an optimizer,
initial states, and (recurrent layers) a live input streamed chunk by chunk. A bug
that lives in what a layer keeps between calls (a cached row count, an accumulated
gradient, a carried state) passes every layer case and fails here.

An `Op` is one call on the layer:

- `set_weights`: the weights in `data.weights` (tf.keras get_weights() order);
- `call`: `layer(data.x, training=...)`, with `initial_state=data.states` when
  `state == "given"` (recurrent layers);
- `stream`: `layer.stream(data.x, state)` (RNN, GRU, LSTM) from zeros (`none`), from
  `data.states` (`given`) or from the state the previous stream call returned
  (`carried`); the tf.keras twin computes `layer(chunk, initial_state=state)`;
- `backward`: `layer.backward(data.upstream)`, the gradients of the last call that
  keeps what backward needs (nntk's rule: the last training call; BatchNorm: the
  last call, in its mode); tf.keras differentiates that call's recorded tape.

`LiveSequence` runs ops on the nntk layer and on its tf.keras twin in float64 (the
referee) and float32, and compares every step's outputs, states and gradients with
the spec's declared tolerances (parity.runner.compare_quantities, the suite's
comparator). tests/test_stateful.py drives it with hypothesis's rule-based state
machines; `record` stores representative sequences as fixtures, which
`nntk-parity replay` checks without TensorFlow (`replay_sequences`).

The fixtures live in `<fixture dir>/sequences/`, one `.npz` per step in the format
of parity/fixtures.py (the op's inputs as CaseData, the step's float64 and float32
references), with their own `manifest.json` (sha256 per file, the step's sequence
and index). A step's id is self-contained: the layer, config, input rank and
sequence name, then the step's index and op.

The modules: parity/sequence_sides.py (an op and the two sides that run it),
parity/live_sequence.py (the live run, step ids and the recorded plans) and this one
(recording, freshness and replay of the fixtures, and the command line).

    python -m parity.sequences record [--out fixtures]      # TensorFlow
    python -m parity.sequences replay [--fixtures fixtures] # no TensorFlow
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from parity.fixtures import (
    FORMAT,
    Fixture,
    FixtureError,
    entry_problem,
    environment,
    fixture_bytes,
    fixture_stem,
    load_manifest,
    read_entry,
    sha256_file,
    write_bytes,
    write_fixture_set,
)
from parity.live_sequence import (
    LiveSequence,
    check_step,
    extra_plans,
    parse_step_id,
    plans,
    run_plan,
    sequence_id,
    step_id,
)
from parity.runner import native_layer
from parity.sequence_sides import NativeSide, SequenceVariants
from parity.spec import LayerSpec

SEQUENCES_DIR = "sequences"  # under the fixture directory
MAX_TOTAL_BYTES = 2 * 2**20  # the committed sequence set (the wide layers' gradients dominate)


# -- fixtures --------------------------------------------------------------------------------
def record(directory: Path, specs: list[LayerSpec] | None = None, on_sequence=None) -> dict:
    """Records every spec's plans into `directory`/sequences (TensorFlow); a step that
    fails live is an error (fix the library first, then record)."""
    from parity.record import versions
    from parity.settings import apply
    from parity.specs import all_specs

    out = Path(directory) / SEQUENCES_DIR
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for spec in specs or all_specs():
        for plan in plans(spec) + extra_plans(spec):
            seq = run_plan(spec, plan)
            seq_id = sequence_id(spec.name, seq.config, seq.rank, plan.name)
            for index, step in enumerate(seq.steps, start=1):
                case_id = step_id(seq_id, index, step.op)
                fixture = Fixture(
                    case_id, spec.name, "sequence", step.op.data, step.float64, step.float32
                )
                content = fixture_bytes(fixture)
                name = fixture_stem(case_id) + ".npz"
                write_bytes(out / name, content)
                entries.append(
                    {
                        "file": name,
                        "id": case_id,
                        "layer": spec.name,
                        "origin": "sequence",
                        "sha256": sha256_file(out / name),
                        "bytes": len(content),
                        "sequence": seq_id,
                        "step": index,
                    }
                )
            if on_sequence:
                on_sequence(seq_id)
    manifest = {
        "format": FORMAT,
        "generated_by": "python -m parity.sequences record",
        "versions": versions(),
        "reference_settings": apply(),
        **environment(),
        "total_bytes": 0,  # keys in the recorded order; filled by write_fixture_set
        "cases": [],
    }
    return write_fixture_set(out, manifest, entries)


def check_freshness(directory: Path, seq: LiveSequence) -> list[str]:
    """The recorded steps of a plan that `seq` ran live, against what it computed now:
    the same op inputs (data drift: the spec now draws differently) and the same
    references within the spec's tolerance (reference drift: TensorFlow changed).
    Returns the drift messages."""
    from parity.compare import compare

    where = Path(directory) / SEQUENCES_DIR
    seq_id = sequence_id(seq.spec.name, seq.config, seq.rank, seq.name)
    entries = [e for e in load_manifest(where)["cases"] if e.get("sequence") == seq_id]
    if len(entries) != len(seq.steps):
        return [f"{seq_id}: {len(entries)} recorded steps, the plan now has {len(seq.steps)}"]
    messages = []
    for entry, step in zip(sorted(entries, key=lambda e: e["step"]), seq.steps, strict=True):
        fixture = _read_step(where, entry)
        old, new = fixture.data, step.op.data
        arrays = [(old.x, new.x), *zip(old.weights, new.weights, strict=False)]
        arrays += [*zip(old.upstream, new.upstream, strict=False)]
        arrays += [*zip(old.states, new.states, strict=False)]
        if step_id(seq_id, entry["step"], step.op) != entry["id"] or not all(
            np.array_equal(a, b) for a, b in arrays
        ):
            messages.append(f"data drift in {entry['file']} ({entry['id']})")
            continue
        if set(fixture.float64) != set(step.float64):
            messages.append(f"reference drift in {entry['file']}: other quantities now")
            continue
        for quantity, recorded in fixture.float64.items():
            tolerance = seq.spec.tolerance(quantity)
            c = compare(
                quantity, step.float64[quantity], recorded, fixture.float32[quantity], tolerance
            )
            if not c.passed:
                messages.append(
                    f"reference drift in {entry['file']} ({entry['id']}): the float64 referee's "
                    f"{quantity} now differs from the recorded one by {c.max_error:.3g}"
                )
    return messages


@dataclass
class SequenceReplay:
    problems: list[str] = field(default_factory=list)
    sequences: int = 0
    steps: int = 0
    by_layer: dict[str, int] = field(default_factory=dict)  # sequences replayed per layer


def _read_step(directory: Path, entry: dict) -> Fixture:
    problem = entry_problem(entry)
    if problem:
        raise FixtureError(problem)
    return read_entry(directory, entry, entry["file"])


def replay_sequences(
    directory: Path, layers: list[str] | None = None, backend=None, required: bool = True
) -> SequenceReplay:
    """Replays the recorded call sequences under `directory`/sequences on the native
    library (no TensorFlow). A sequence stops at its first failing step (the later
    steps depend on the layer's state). With `required`, a missing sequence set, or a
    selected layer spec without a sequence, is a problem too."""
    from parity.specs import all_specs, get_spec

    out = SequenceReplay()
    where = Path(directory) / SEQUENCES_DIR
    if not where.is_dir():
        if required:
            out.problems.append(
                f"no call-sequence fixtures in {where} (record them with "
                "`python -m parity.sequences record`)"
            )
        return out
    try:
        manifest = load_manifest(where)
    except FixtureError as exc:
        out.problems.append(str(exc))
        return out
    sequences: dict[str, list[dict]] = {}
    for entry in manifest["cases"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("sequence"), str):
            out.problems.append(f"{where / 'manifest.json'}: entry {entry!r} names no sequence")
            continue
        if layers and entry.get("layer") not in layers:
            continue
        sequences.setdefault(entry["sequence"], []).append(entry)
    for seq_id, entries in sequences.items():
        problem = _replay_one(
            where, seq_id, sorted(entries, key=lambda e: e.get("step", 0)), backend, out
        )
        if problem:
            out.problems.append(problem)
    if required:
        for spec in [get_spec(n) for n in layers] if layers else all_specs():
            if not out.by_layer.get(spec.name):
                out.problems.append(
                    f"layer spec {spec.name!r} has no recorded call sequence in {where}"
                )
    return out


def _replay_one(where: Path, seq_id: str, entries: list[dict], backend, out: SequenceReplay) -> str:
    from parity.specs import get_spec

    native = on_device = None
    history: list[str] = []
    try:
        for expected, entry in enumerate(entries, start=1):
            fixture = _read_step(where, entry)
            layer, config, rank, name, index, op = parse_step_id(fixture.case_id)
            if index != expected:
                raise FixtureError(f"{seq_id}: step {expected} is missing (found step {index})")
            try:
                spec = get_spec(layer)
            except KeyError as exc:
                raise FixtureError(f"{entry['file']}: {exc}") from None
            if native is None:
                native = NativeSide(spec, native_layer(backend, spec, config))
                # The on-device variants of the sequence, in lockstep (parity/variants.py)
                on_device = SequenceVariants(spec, config, backend, native.layer)
            op.data = fixture.data
            description = f"{layer} {name!r} {config} (rank {rank}) [{where}]"
            result = check_step(
                spec,
                config,
                description,
                index,
                op,
                native,
                fixture.float64,
                fixture.float32,
                history,
            )
            if result.passed:
                result.comparisons += on_device.check(
                    op, result.case, fixture.float64, fixture.float32, result.native
                )
            out.steps += 1
            history.append(op.describe())
            if not result.passed:
                return (
                    result.failure_message()
                    + f"\n  replay: python -m parity.sequences replay --layer {layer}"
                )
        out.sequences += 1
        out.by_layer[entries[0]["layer"]] = out.by_layer.get(entries[0]["layer"], 0) + 1
        return ""
    except (FixtureError, ValueError) as exc:
        return f"call sequence {seq_id}: {exc}"
    finally:
        if native is not None and hasattr(native.layer, "close"):
            native.layer.close()
        if on_device is not None:
            on_device.close()


# -- command line ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    import argparse

    from parity.fixtures import default_dir

    parser = argparse.ArgumentParser(
        prog="python -m parity.sequences", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="record the call-sequence fixtures (TensorFlow)")
    rec.add_argument("--out", metavar="DIR", help="fixture directory (default: fixtures/)")
    rec.add_argument("--layer", action="append", help="only this layer spec (repeatable)")
    rep = sub.add_parser("replay", help="replay them on the native library (no TensorFlow)")
    rep.add_argument("--fixtures", metavar="DIR", help="fixture directory (default: fixtures/)")
    rep.add_argument("--layer", action="append", help="only this layer spec (repeatable)")
    args = parser.parse_args(argv)
    from parity.specs import get_spec

    if args.command == "record":
        directory = Path(args.out) if args.out else default_dir(writing=True)
        if args.layer:
            raise SystemExit("record rewrites the whole sequence set: --layer is for replay")
        manifest = record(directory, on_sequence=lambda s: print(f"recorded {s}"))
        print(f"{len(manifest['cases'])} steps, {manifest['total_bytes'] / 2**10:.0f} KiB")
        return 0
    directory = Path(args.fixtures) if args.fixtures else default_dir()
    for name in args.layer or []:
        get_spec(name)
    start = time.perf_counter()
    result = replay_sequences(directory, args.layer)
    for problem in result.problems:
        print(problem)
    verdict = "FAILED" if result.problems else "passed"
    print(
        f"replayed {result.sequences} call sequences ({result.steps} steps) from "
        f"{directory / SEQUENCES_DIR} in {time.perf_counter() - start:.2f} s: {verdict}"
    )
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
