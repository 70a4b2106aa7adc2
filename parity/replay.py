"""Replay: the native library against recorded fixtures, without TensorFlow.

Each fixture holds a case's data and the tf.keras references (float64 referee and
float32); replay runs the spec's native side on that data and compares with the same
`compare_quantities` and spec tolerances as the live suite. It fails when a case
fails, when a file is missing, altered (sha256) or corrupt, when the manifest names
an unknown spec, when a spec has no fixtures or its fixtures miss a declared option
value, shape bucket or (training specs) pair of option values, and when fewer cases
ran than a manifest lists (zero cases included).

The fixtures come in kinds (`fixture_kinds()`), each a directory with its own
manifest and its own specs: the layer fixtures (fixtures/), the training fixtures
(fixtures/training/, parity/training.py). A new kind is one more FixtureKind.

A layer fixture's calls also run through the C API's on-device paths (an inference
handle, a reserved capacity, no input gradient, no final state: parity/variants.py),
each compared with the same references and bit for bit with the plain path; the
optimizer fixtures' and training steps' optimizer is also saved and restored into a
new one after every step (parity/training.py), bit for bit the uninterrupted run.

Every fixture case, the call sequences and the contract must also give back every byte
the library allocated (NNTKMemoryStats' current bytes: the same before and after, with
every layer, gradient and optimizer closed): a leak fails replay, naming the case.

A whole replay of the real library (no spec, kind or backend chosen) also checks the
C API's invalid-call contract (parity/c_contract.py, derived from the public headers:
every function refuses NULL, bad sizes and options and handles of the wrong kind, with
the documented status and a message naming the function and the argument): what the
binding, which checks its arguments itself, never sends. Its failures are problems.

Nothing here imports TensorFlow (tests/test_fixtures.py runs it with TensorFlow
made unimportable; ci/replay-no-tf.sh in a virtual environment without it).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parity.case import Case
from parity.fixtures import (
    MANIFEST,
    FixtureError,
    entry_problem,
    find_entry,
    load_manifest,
    read_entry,
)
from parity.runner import CaseResult
from parity.spec_run import SpecRun


@dataclass(frozen=True)
class FixtureKind:
    """One kind of fixture: where its manifest is (relative to the fixture directory),
    its specs, how one case is checked and what its fixtures must cover."""

    name: str
    subdir: str  # "" for the fixture directory itself
    specs: Callable[[], list]  # every spec of the kind
    get_spec: Callable[[str], Any]  # KeyError if unknown
    check: Callable[..., CaseResult]  # (spec, case, data, float64, float32, backend, keep)
    record_command: str  # how to (re)record one spec's fixtures; {name}: the spec
    gaps: Callable[[Any, list[Case]], list[str]] = lambda spec, cases: []  # beyond values

    def spec_names(self) -> list[str]:
        return [s.name for s in self.specs()]


def fixture_kinds() -> list[FixtureKind]:
    from parity import specs, training, variants

    return [
        FixtureKind(
            "layers",
            "",
            specs.all_specs,
            specs.get_spec,
            variants.check_case,  # the plain path, then its on-device variants
            "nntk-parity record --layer {name}",
        ),
        FixtureKind(
            "training",
            training.SUBDIR,
            training.all_specs,
            training.get_spec,
            training.check_case,
            "nntk-parity record --training",
            lambda spec, cases: (
                [f"option pairs {spec.missing_pairs(cases)}"] if spec.missing_pairs(cases) else []
            ),
        ),
    ]


def kind_of(name: str) -> FixtureKind | None:
    """The kind whose specs include `name`."""
    return next((k for k in fixture_kinds() if name in k.spec_names()), None)


def find_fixture(directory: Path, ident: str) -> tuple[FixtureKind, Path, dict] | None:
    """The fixture whose file stem, file name or case id is `ident`, in `directory` or
    in its kinds' subdirectories: (its kind, the directory of its manifest, its entry)."""
    for kind in fixture_kinds():
        where = Path(directory) / kind.subdir
        if not (where / MANIFEST).is_file():
            continue
        entry = find_entry(where, ident)
        if entry is not None:
            return kind_of(str(entry.get("layer"))) or kind, where, entry
    return None


def count_cases(directory: Path, layers: list[str] | None = None) -> int:
    """How many cases replay(directory, layers) will run (for a progress bar)."""
    total = 0
    for kind in _selected(layers):
        entries = load_manifest(Path(directory) / kind.subdir)["cases"]
        total += sum(1 for e in entries if _wanted(e, layers))
    return total


def _selected(layers: list[str] | None, kinds: list[str] | None = None) -> list[FixtureKind]:
    chosen = [k for k in fixture_kinds() if kinds is None or k.name in kinds]
    if layers:
        chosen = [k for k in chosen if set(layers) & set(k.spec_names())] or chosen[:1]
    return chosen


def _wanted(entry, layers: list[str] | None) -> bool:
    return not layers or (isinstance(entry, dict) and entry.get("layer") in layers)


@dataclass
class ReplayRun:
    directory: Path
    manifest: dict  # the layer fixtures' manifest (versions, CPU)
    expected: int = 0  # cases the manifests list (for the selected specs)
    runs: dict[str, SpecRun] = field(default_factory=dict)  # by layer, manifest order
    results: list[CaseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # fixture-level failures
    cases_by_spec: dict[str, list[Case]] = field(default_factory=dict)  # the cases that ran
    contract_calls: int = 0  # the C API contract's calls checked (0: not checked)
    # damaged model files both loaders must refuse, and unusual valid ones both must read
    # (parity/damaged_model_files.py; 0: not checked)
    model_files: int = 0
    elapsed: float = 0.0

    @property
    def ran(self) -> int:
        return len(self.results)

    @property
    def failed_cases(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    @property
    def passed(self) -> bool:
        return not self.problems and not self.failed_cases and self.ran == self.expected > 0

    def versions_line(self) -> str:
        versions = self.manifest.get("versions", {})
        return ", ".join(f"{k} {v}" for k, v in versions.items()) or "unknown versions"


def replay_command(entry: dict) -> str:
    return f"nntk-parity repro {Path(entry['file']).stem}"


def replay_entry(
    directory: Path,
    entry: dict,
    backend=None,
    keep_arrays: bool = False,
    kind: FixtureKind | None = None,
) -> tuple[CaseResult, object]:
    """Replays one manifest entry of `directory` (a `kind`'s directory; default: the
    layer fixtures): checks the file (present, sha256, readable, the case the manifest
    says) and runs the native side. FixtureError on a fixture problem, an unknown spec
    included. Returns the result and the spec."""
    kind = kind or fixture_kinds()[0]
    problem = entry_problem(entry)
    if problem:
        raise FixtureError(problem)
    name = f"{entry['file']} ({entry['id']})"
    try:
        spec = kind.get_spec(entry["layer"])
    except KeyError:
        what = "layer spec" if kind.name == "layers" else f"{kind.name} spec"
        raise FixtureError(
            f"{name}: the manifest names {what} {entry['layer']!r}, which does not exist "
            f"(known: {', '.join(kind.spec_names())})"
        ) from None
    fixture = read_entry(directory, entry, name)
    try:
        case = Case.from_id(fixture.case_id)
    except ValueError as exc:
        raise FixtureError(f"{name}: {exc}") from exc
    if case.layer != entry["layer"]:
        raise FixtureError(f"{name}: the case is of layer {case.layer!r}, not {entry['layer']!r}")
    result = kind.check(
        spec, case, fixture.data, fixture.float64, fixture.float32, backend, keep_arrays
    )
    return result, spec


def replay(
    directory: Path,
    layers: list[str] | None = None,
    backend=None,
    on_case: Callable[[dict, CaseResult | None], None] | None = None,
    check_coverage: bool = True,
    kinds: list[str] | None = None,
    backends: dict | None = None,
) -> ReplayRun:
    """Replays every fixture in `directory` and its kinds' subdirectories (only the specs
    named in `layers`, only the kinds named in `kinds`, when given). `backend` runs the
    layer fixtures, `backends` any kind by name (harness tests' fakes). Raises
    FixtureError when a manifest itself is unusable."""
    directory = Path(directory)
    selected = _selected(layers, kinds)
    manifests = {k.name: load_manifest(directory / k.subdir) for k in selected}
    main = manifests.get("layers") or next(iter(manifests.values()))
    run = ReplayRun(directory, main)
    real_library = backend is None and not backends and not layers and kinds is None
    backends = {"layers": backend, **(backends or {})}
    # Each case's native bytes are measured before and after it: the caller's garbage
    # (a closed-over model in a reference cycle) is freed now, not inside a case, where
    # its free would read as the case freeing what it never allocated.
    gc.collect()
    start = time.perf_counter()
    for kind in selected:
        kind_dir = directory / kind.subdir
        entries = [e for e in manifests[kind.name]["cases"] if _wanted(e, layers)]
        run.expected += len(entries)
        _replay_kind(run, kind, kind_dir, entries, backends.get(kind.name), on_case)
        names = [n for n in layers if n in kind.spec_names()] if layers else None
        if check_coverage and names != []:  # [] : only unknown names asked for
            _check_coverage(run, kind, kind_dir, names)
        if not entries:
            where = f" for {', '.join(layers)}" if layers else ""
            run.problems.append(f"no fixture cases{where} in {kind_dir / 'manifest.json'}")
    if kinds is None or "sequences" in kinds:
        # The recorded call sequences (<directory>/sequences, parity/sequences.py) of the
        # selected layer specs.
        from parity.sequences import replay_sequences
        from parity.specs import spec_names

        seq_layers = [n for n in layers if n in spec_names()] if layers else None
        if seq_layers != []:
            before = library_bytes()
            sequences = replay_sequences(directory, seq_layers, backend, check_coverage)
            run.problems += sequences.problems
            run.problems += _leak("the call sequences", before)
    if real_library:  # the whole replay of the real library: its C API contract too
        from parity import c_contract

        before = library_bytes()
        run.contract_calls, problems = c_contract.problems()
        run.problems += [f"C API contract: {p}" for p in problems]
        run.problems += _leak("the C API contract's calls", before)
        from parity import damaged_model_files

        before = library_bytes()
        run.model_files, problems = damaged_model_files.problems()
        run.problems += problems
        run.problems += _leak("the model files' loads", before)
    if run.expected and run.ran < run.expected:
        run.problems.append(
            f"only {run.ran} of the {run.expected} fixture cases the manifests list ran"
        )
    run.elapsed = time.perf_counter() - start
    return run


def _replay_kind(run: ReplayRun, kind: FixtureKind, directory: Path, entries, backend, on_case):
    for entry in entries:
        layer = entry.get("layer") if isinstance(entry, dict) else None
        spec_run = run.runs.setdefault(str(layer), SpecRun(str(layer)))
        result = None
        entry_start = time.perf_counter()
        before = library_bytes()
        try:
            result, spec = replay_entry(directory, entry, backend, kind=kind)
        except FixtureError as exc:
            _fail(run, spec_run, str(exc))
        else:
            for leak in _leak(f"{entry['file']} ({entry['id']})", before):
                _fail(run, spec_run, leak)
            run.results.append(result)
            spec_run.record(spec, result)
            run.cases_by_spec.setdefault(spec.name, []).append(result.case)
            if not result.passed:
                message = result.failure_message()
                message += f"\n  replay this fixture (no TensorFlow): {replay_command(entry)}"
                spec_run.failure = "\n".join(filter(None, [spec_run.failure, message]))
        spec_run.elapsed += time.perf_counter() - entry_start
        if on_case is not None:
            on_case(entry, result)


def _check_coverage(run: ReplayRun, kind: FixtureKind, directory: Path, names) -> None:
    specs = [kind.get_spec(n) for n in names] if names else kind.specs()
    for spec in specs:
        record = kind.record_command.format(name=spec.name)
        spec_run = run.runs.get(spec.name)
        if spec_run is None:
            run.runs[spec.name] = spec_run = SpecRun(spec.name)
            _fail(
                run,
                spec_run,
                f"{'layer ' if kind.name == 'layers' else ''}spec {spec.name!r} has no "
                f"fixtures in {directory}: record them with `{record}`",
            )
            continue
        if not spec_run.cases:
            continue  # its fixtures failed to load: already a problem
        gaps = []
        missing = spec_run.missing_coverage(spec)
        if missing:
            gaps.append(f"option values {missing}")
        buckets = spec_run.missing_buckets(spec)
        if buckets:
            gaps.append(f"shape buckets {buckets}")
        gaps += kind.gaps(spec, run.cases_by_spec.get(spec.name, []))
        if gaps:
            _fail(
                run,
                spec_run,
                f"the fixtures of {spec.name!r} never exercise {' and '.join(gaps)}: "
                f"re-record with `{record}`",
            )


def library_bytes() -> int:
    """The bytes the loaded library holds now (NNTKMemoryStats' current_bytes)."""
    import ctypes

    from nntk_core import _native

    current, peak = ctypes.c_int64(), ctypes.c_int64()
    _native.lib.NNTKMemoryStats(ctypes.byref(current), ctypes.byref(peak))
    return current.value


def _leak(what: str, before: int) -> list[str]:
    """A problem when the library holds more bytes than `before` after `what` (which
    closes everything it creates)."""
    leaked = library_bytes() - before
    if leaked == 0:
        return []
    return [
        f"{what}: the library holds {leaked:+d} bytes after it than before, with every "
        "layer, gradient and optimizer closed (a leak, or a free of what it never allocated)"
    ]


def _fail(run: ReplayRun, spec_run: SpecRun, message: str) -> None:
    run.problems.append(message)
    spec_run.failure = "\n".join(filter(None, [spec_run.failure, message]))
