"""Replay: the native library against recorded fixtures, without TensorFlow.

Each fixture holds a case's data and the tf.keras references (float64 referee and
float32); replay runs the spec's native side on that data and compares with the same
`compare_quantities` and spec tolerances as the live suite. It fails when a case
fails, when a file is missing, altered (sha256) or corrupt, when the manifest names
an unknown spec, when a layer spec has no fixtures or its fixtures miss a declared
option value or shape bucket, and when fewer cases ran than the manifest lists
(zero cases included).

Nothing here imports TensorFlow (tests/test_fixtures.py runs it with TensorFlow
made unimportable; ci/replay-no-tf.sh in a virtual environment without it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from parity.fixtures import (
    FixtureError,
    entry_problem,
    load_manifest,
    read_fixture,
    sha256_file,
)
from parity.runner import CaseResult, SpecRun, check_case
from parity.spec import Case


@dataclass
class ReplayRun:
    directory: Path
    manifest: dict
    expected: int = 0  # cases the manifest lists (for the selected layers)
    runs: dict[str, SpecRun] = field(default_factory=dict)  # by layer, manifest order
    results: list[CaseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # fixture-level failures
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
    directory: Path, entry: dict, backend=None, keep_arrays: bool = False
) -> tuple[CaseResult, object]:
    """Replays one manifest entry: checks the file (present, sha256, readable, the case
    the manifest says) and runs the native side. FixtureError on a fixture problem;
    KeyError if the layer spec is unknown. Returns the result and the spec."""
    from parity.specs import get_spec, spec_names

    problem = entry_problem(entry)
    if problem:
        raise FixtureError(problem)
    name = f"{entry['file']} ({entry['id']})"
    try:
        spec = get_spec(entry["layer"])
    except KeyError:
        raise FixtureError(
            f"{name}: the manifest names layer spec {entry['layer']!r}, which does not exist "
            f"(known: {', '.join(spec_names())})"
        ) from None
    path = Path(directory) / entry["file"]
    if not path.is_file():
        raise FixtureError(f"{name}: fixture file {path} is missing")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise FixtureError(
            f"{name}: fixture file altered: sha256 {digest[:16]}... differs from the "
            f"manifest's {entry['sha256'][:16]}..."
        )
    fixture = read_fixture(path)
    if fixture.case_id != entry["id"]:
        raise FixtureError(
            f"{name}: the file holds case {fixture.case_id!r}, not the manifest's case"
        )
    try:
        case = Case.from_id(fixture.case_id)
    except ValueError as exc:
        raise FixtureError(f"{name}: {exc}") from exc
    if case.layer != entry["layer"]:
        raise FixtureError(f"{name}: the case is of layer {case.layer!r}, not {entry['layer']!r}")
    result = check_case(
        spec, case, fixture.data, fixture.float64, fixture.float32, backend, keep_arrays
    )
    return result, spec


def replay(
    directory: Path,
    layers: list[str] | None = None,
    backend=None,
    on_case: Callable[[dict, CaseResult | None], None] | None = None,
    check_coverage: bool = True,
) -> ReplayRun:
    """Replays every fixture in `directory` (only `layers` when given). Raises
    FixtureError when the manifest itself is unusable."""
    from parity.specs import all_specs, get_spec

    directory = Path(directory)
    manifest = load_manifest(directory)
    entries = manifest["cases"]
    if layers:
        entries = [e for e in entries if isinstance(e, dict) and e.get("layer") in layers]
    run = ReplayRun(directory, manifest, expected=len(entries))
    start = time.perf_counter()
    for entry in entries:
        layer = entry.get("layer") if isinstance(entry, dict) else None
        spec_run = run.runs.setdefault(str(layer), SpecRun(str(layer)))
        result = None
        entry_start = time.perf_counter()
        try:
            result, spec = replay_entry(directory, entry, backend)
        except FixtureError as exc:
            _fail(run, spec_run, str(exc))
        else:
            run.results.append(result)
            spec_run.record(spec, result)
            if not result.passed:
                message = result.failure_message()
                message += f"\n  replay this fixture (no TensorFlow): {replay_command(entry)}"
                spec_run.failure = "\n".join(filter(None, [spec_run.failure, message]))
        spec_run.elapsed += time.perf_counter() - entry_start
        if on_case is not None:
            on_case(entry, result)

    if check_coverage:
        specs = [get_spec(n) for n in layers] if layers else all_specs()
        for spec in specs:
            spec_run = run.runs.get(spec.name)
            if spec_run is None:
                run.runs[spec.name] = spec_run = SpecRun(spec.name)
                _fail(
                    run,
                    spec_run,
                    f"layer spec {spec.name!r} has no fixtures in {directory}: record them "
                    f"with `nntk-parity record --layer {spec.name}`",
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
            if gaps:
                _fail(
                    run,
                    spec_run,
                    f"the fixtures of {spec.name!r} never exercise {' and '.join(gaps)}: "
                    f"re-record with `nntk-parity record --layer {spec.name}`",
                )

    # The recorded call sequences (<directory>/sequences, parity/sequences.py).
    from parity.sequences import replay_sequences

    run.problems += replay_sequences(directory, layers, backend, check_coverage).problems

    if run.expected == 0:
        where = f" for layer {', '.join(layers)}" if layers else ""
        run.problems.append(f"no fixture cases{where} in {directory / 'manifest.json'}")
    elif run.ran < run.expected:
        run.problems.append(
            f"only {run.ran} of the {run.expected} fixture cases the manifest lists ran"
        )
    run.elapsed = time.perf_counter() - start
    return run


def _fail(run: ReplayRun, spec_run: SpecRun, message: str) -> None:
    run.problems.append(message)
    spec_run.failure = "\n".join(filter(None, [spec_run.failure, message]))
