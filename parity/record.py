"""Recording golden fixtures from tf.keras (needs TensorFlow): the layer fixtures, a
failure's case as a regression fixture, and the training fixtures. Checking that the
recorded references are still what tf.keras computes is parity/freshness.py.

What is recorded for each layer spec, all from a fixed seed:

- `spec.coverage_cases()`: one case per declared option value and one per shape
  bucket the sweep misses (origin `sweep` / `bucket`);
- `random` cases drawn from `spec.case_strategy()` by hypothesis with a seed derived
  from `--seed` and the spec's name (origin `random`); draws whose fixture would be
  larger than CASE_BUDGET bytes are skipped, keeping the set small;
- every `regression` case of the existing manifest (added by `record --from-failure`),
  recomputed, so a re-record never drops a captured bug.
"""

from __future__ import annotations

import platform
import zlib
from collections.abc import Callable
from pathlib import Path

from parity import settings
from parity.case import Case
from parity.fixtures import (
    FORMAT,
    MANIFEST,
    Fixture,
    entry_problem,
    environment,
    fixture_bytes,
    fixture_stem,
    load_manifest,
    sha256_file,
    write_bytes,
    write_fixture_set,
    write_manifest,
)
from parity.spec import LayerSpec

DEFAULT_SEED = 20240611
RANDOM_CASES = 4  # per layer spec
CASE_BUDGET = 48 * 1024  # bytes per random case's file
_CANDIDATES = 40  # hypothesis draws considered per spec for the random cases


class RecordError(Exception):
    """Recording refused (e.g. mixing references of different TensorFlow versions)."""


def versions() -> dict[str, str]:
    import hypothesis

    from parity import reference

    return {
        **reference.versions(),
        "hypothesis": hypothesis.__version__,
        "python": platform.python_version(),
    }


def blocking_versions(versions: dict) -> dict:
    """The versions that must match to mix fixtures in one manifest."""
    return {k: versions.get(k) for k in ("tensorflow", "tf_keras")}


def drawn_cases(spec: LayerSpec, seed: int, count: int = _CANDIDATES) -> list[Case]:
    """`count` cases drawn from the spec's strategy by hypothesis, deterministically
    for a given seed and hypothesis version (the cases are stored by id, so a later
    hypothesis drawing differently changes only what a re-record picks)."""
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import seed as hypothesis_seed
    from hypothesis import settings as hypothesis_settings

    drawn: list[Case] = []

    @hypothesis_seed(seed * 1_000_003 + zlib.crc32(spec.name.encode()))
    @hypothesis_settings(
        max_examples=count,
        derandomize=False,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=spec.case_strategy())
    def collect(case: Case) -> None:
        drawn.append(case)

    collect()
    return drawn


def make_fixture(spec: LayerSpec, case: Case, origin: str) -> Fixture:
    from parity import reference

    ref = reference.compute(spec, case)
    return Fixture(case.id, spec.name, origin, ref.data, ref.float64, ref.float32)


def _entry(directory: Path, fixture: Fixture, content: bytes) -> dict:
    name = fixture_stem(fixture.case_id) + ".npz"
    write_bytes(directory / name, content)
    return {
        "file": name,
        "id": fixture.case_id,
        "layer": fixture.layer,
        "origin": fixture.origin,
        "sha256": sha256_file(directory / name),
        "bytes": len(content),
    }


def planned_cases(spec: LayerSpec, regressions: list[str]) -> list[tuple[Case, str]]:
    """The deterministic part of a spec's recording: coverage cases, then regressions."""
    sweep = {c.id for c in spec.sweep_cases()}
    plan = [(c, "sweep" if c.id in sweep else "bucket") for c in spec.coverage_cases()]
    plan += [(Case.from_id(case_id), "regression") for case_id in regressions]
    return plan


def record_spec(
    spec: LayerSpec,
    directory: Path,
    seed: int,
    random_count: int,
    regressions: list[str],
    on_case: Callable[[str], None] | None = None,
) -> list[dict]:
    """Records one spec's fixtures into `directory`; returns their manifest entries."""
    entries: list[dict] = []
    seen: set[str] = set()
    for case, origin in planned_cases(spec, regressions):
        if case.id in seen:
            continue
        seen.add(case.id)
        fixture = make_fixture(spec, case, origin)
        entries.append(_entry(directory, fixture, fixture_bytes(fixture)))
        if on_case:
            on_case(case.id)
    taken = 0
    for case in drawn_cases(spec, seed) if random_count else []:
        if taken >= random_count:
            break
        if case.id in seen:
            continue
        seen.add(case.id)
        fixture = make_fixture(spec, case, "random")
        content = fixture_bytes(fixture)
        if len(content) > CASE_BUDGET:
            continue
        entries.append(_entry(directory, fixture, content))
        taken += 1
        if on_case:
            on_case(case.id)
    return entries


def _new_manifest(seed: int, random_count: int, current: dict) -> dict:
    return {
        "format": FORMAT,
        "generated_by": "nntk-parity record",
        "seed": seed,
        "random_cases_per_layer": random_count,
        "versions": current,
        "reference_settings": settings.apply(),
        **environment(),
        "total_bytes": 0,
        "cases": [],
    }


def _existing(directory: Path) -> dict | None:
    if not (directory / MANIFEST).exists():
        return None
    return load_manifest(directory)


def _check_compatible(existing: dict, current: dict, what: str) -> None:
    old, new = blocking_versions(existing.get("versions", {})), blocking_versions(current)
    if old != new:
        raise RecordError(
            f"the fixtures were recorded with {versions_text(old)}, this environment has "
            f"{versions_text(new)}: {what} would mix references of two TensorFlow versions in "
            "one manifest. Re-record everything with `nntk-parity record` (or install the "
            "manifest's versions)."
        )
    old_settings = existing.get("reference_settings")
    if old_settings is not None and old_settings != settings.apply():
        raise RecordError(
            f"the fixtures were recorded with reference settings {old_settings}, this "
            f"environment has {settings.apply()}: re-record everything with `nntk-parity record`"
        )


def versions_text(versions: dict) -> str:
    """'tensorflow 2.21.0, tf_keras 2.21.0'."""
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def record(
    directory: Path,
    specs: list[LayerSpec] | None = None,
    seed: int = DEFAULT_SEED,
    random_count: int = RANDOM_CASES,
    on_case: Callable[[str], None] | None = None,
) -> dict:
    """(Re)records fixtures. With `specs`, only those layers' fixtures are replaced and
    the rest of the manifest is kept (same TensorFlow versions required); without,
    the whole set is rewritten and files no longer listed are removed. Regression
    cases of the existing manifest are always recomputed and kept."""
    from parity.specs import all_specs

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    partial = specs is not None
    specs = list(specs) if partial else all_specs()
    current = versions()
    existing = _existing(directory)
    if partial and existing is not None:
        _check_compatible(existing, current, "recording only some layers")
    old_entries = [e for e in (existing or {}).get("cases", []) if not entry_problem(e)]
    manifest = _new_manifest(seed, random_count, current)
    if partial and existing is not None:
        manifest["seed"] = existing.get("seed", seed)
        manifest["random_cases_per_layer"] = existing.get("random_cases_per_layer", random_count)

    chosen = {s.name for s in specs}
    order = [s.name for s in all_specs()]
    layers = order + [e["layer"] for e in old_entries if e["layer"] not in order]
    entries: list[dict] = []
    for layer in dict.fromkeys(layers):
        if layer in chosen:
            spec = next(s for s in specs if s.name == layer)
            regressions = [
                e["id"]
                for e in old_entries
                if e["layer"] == layer and e.get("origin") == "regression"
            ]
            entries += record_spec(spec, directory, seed, random_count, regressions, on_case)
        elif partial:
            entries += [e for e in old_entries if e["layer"] == layer]
    return write_fixture_set(directory, manifest, entries)


def record_failure(directory: Path, case_arg: str) -> tuple[dict, Fixture]:
    """Adds one case (a failure's case id) as a `regression` fixture and updates the
    manifest (creating it if needed). A later full `record` keeps it."""
    from parity.specs import get_spec

    directory = Path(directory)
    case = Case.from_id(parse_case_arg(case_arg))
    spec = get_spec(case.layer)
    current = versions()
    existing = _existing(directory)
    if existing is not None:
        _check_compatible(existing, current, "adding a regression case")
        manifest = existing
    else:
        directory.mkdir(parents=True, exist_ok=True)
        manifest = _new_manifest(DEFAULT_SEED, RANDOM_CASES, current)
    fixture = make_fixture(spec, case, "regression")
    entry = _entry(directory, fixture, fixture_bytes(fixture))
    cases = [e for e in manifest["cases"] if not isinstance(e, dict) or e.get("id") != case.id]
    same_layer = [
        i for i, e in enumerate(cases) if isinstance(e, dict) and e.get("layer") == spec.name
    ]
    cases.insert(same_layer[-1] + 1 if same_layer else len(cases), entry)
    manifest["cases"] = cases
    manifest["total_bytes"] = sum(int(e.get("bytes", 0)) for e in cases if isinstance(e, dict))
    write_manifest(directory, manifest)
    return entry, fixture


def parse_case_arg(text: str) -> str:
    """A case id as given on the command line; also accepts the whole `rerun:` line
    (`rerun: nntk-parity repro 'dense?...'`)."""
    import shlex

    text = text.strip()
    if text.startswith("rerun:"):
        text = text[len("rerun:") :].strip()
    if text.startswith("nntk-parity repro"):
        parts = shlex.split(text)
        text = parts[-1] if len(parts) >= 3 else ""
    return text


# -- training fixtures (parity/training.py) -------------------------------------------------------
def record_training(directory: Path, on_case: Callable[[str], None] | None = None) -> dict:
    """(Re)records every training fixture (losses, optimizers, train_step) into
    `directory` (normally fixtures/training/) with its own manifest; files no longer
    listed are removed. The cases are the specs' full option grids (no random draws)."""
    from parity import training, training_spec

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest = _new_manifest(training_spec.SEED, 0, versions())
    manifest["generated_by"] = "nntk-parity record --training"
    entries = []
    for spec in training.all_specs():
        for case in spec.cases():
            data, float64, float32 = spec.reference(case)
            fixture = Fixture(case.id, spec.name, "sweep", data, float64, float32)
            entries.append(_entry(directory, fixture, fixture_bytes(fixture)))
            if on_case:
                on_case(case.id)
    return write_fixture_set(directory, manifest, entries)
