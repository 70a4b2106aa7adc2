"""Golden fixtures: the on-disk format (no TensorFlow here).

A fixture directory holds one compressed `.npz` per case and `manifest.json`:

- `<layer>-<hash>.npz`: the case's data (every `CaseData` field: weights in
  tf.keras `get_weights()` order, input x, upstream gradients, weight names), the
  float64 referee's quantities and tf.keras float32's quantities, and a `meta` entry
  (JSON) with the case id, the data layout, the quantity names and how the case was
  chosen (`origin`: sweep, bucket, random, regression). The file name's hash is of
  the case id, so a case keeps its name across recordings. Files are written
  deterministically (fixed zip timestamps): recording the same references twice
  gives the same bytes.
- `manifest.json`: format, seed, the TensorFlow / tf_keras / numpy versions, the
  reference settings, the CPU, and per case its file, id, layer, origin and sha256.

Fixtures that are not one layer's case (the training fixtures of `parity.training`,
in their own directory with its own manifest) hold an `ArrayData` instead of a
`CaseData`: named arrays and JSON settings, in the same file format (their `meta`
says `data_type`; a layer fixture's bytes are unchanged by this).

`parity.record` writes fixtures (with TensorFlow); `parity.replay` checks the native
library against them (without).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import platform
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity.reference import CaseData  # a dataclass: importing it does not import TensorFlow

FORMAT = 1
MANIFEST = "manifest.json"
DEFAULT_DIR = "fixtures"
FIXTURES_ENV = "NNTK_FIXTURES"
# The whole committed set: 6.8 MiB in Dec 2026, of which 0.6 MiB the kernel sweep (the
# Conv1D products at every tile and one-row block of every table), 0.9 MiB the one
# Dense case large enough for OpenBLAS (128³ multiply-adds: the smallest such product)
# and 0.6 MiB the six layers of issue 13 §6; 7.1 MiB since the one-row K-block buckets
# of the Dense spec (three cases of 31-33 x 97, 55 KiB each: their float64 gradients).
MAX_TOTAL_BYTES = 7.5 * 2**20
ORIGINS = ("sweep", "bucket", "random", "regression")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass
class ArrayData:
    """The data of a fixture that is not one layer's case: named arrays (inputs,
    initial values, per-step data) and JSON-able settings."""

    arrays: dict[str, np.ndarray]
    settings: dict


# The dataclasses a fixture's data may be; a fixture without `data_type` holds a CaseData.
_DATA_TYPES = {"CaseData": CaseData, "ArrayData": ArrayData}


class FixtureError(Exception):
    """A fixture or manifest that cannot be used (missing, altered, corrupt, unknown)."""


@dataclass
class Fixture:
    case_id: str
    layer: str
    origin: str
    data: CaseData | ArrayData
    float64: dict[str, np.ndarray]  # the referee
    float32: dict[str, np.ndarray]  # tf.keras float32


def checkout_dir() -> Path | None:
    """The fixtures/ of the nntk checkout holding the current directory (searched
    upwards, as git finds its repository), or None outside one."""
    for directory in (Path.cwd(), *Path.cwd().parents):
        if (directory / DEFAULT_DIR / MANIFEST).is_file() and (directory / "parity").is_dir():
            return directory / DEFAULT_DIR
    return None


def default_dir(writing: bool = False) -> Path:
    """Where the fixtures are unless a command names a directory: $NNTK_FIXTURES, else
    the fixtures/ of the checkout holding the current directory, else (for reading) the
    copy installed with this package (pyproject.toml puts it in the wheel as
    parity/fixtures/), so `nntk-parity replay` works from any directory. Writing
    (`record`) needs a checkout: the installed copy is never changed."""
    if FIXTURES_ENV in os.environ:
        return Path(os.environ[FIXTURES_ENV])
    found = checkout_dir()
    if found is not None:
        return found
    package = Path(__file__).resolve().parent
    # the copy installed with the package; or, parity imported from a checkout, its own
    for beside in (package / DEFAULT_DIR, package.parent / DEFAULT_DIR):
        if not writing and (beside / MANIFEST).is_file():
            return beside
    raise FixtureError(
        "no fixture directory: run this inside the nntk checkout, or name one with "
        f"--fixtures / --out DIR or ${FIXTURES_ENV}"
    )


def fixture_stem(case_id: str) -> str:
    """`dense-3f2a9c1b0e`: the layer and a hash of the case id (stable across records)."""
    layer = case_id.partition("?")[0]
    return f"{layer}-{hashlib.sha256(case_id.encode()).hexdigest()[:10]}"


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- one fixture -------------------------------------------------------------------------
def _pack_data(data: CaseData | ArrayData) -> tuple[dict, dict[str, np.ndarray]]:
    """Every field of the data, generically (a field added to CaseData later is stored
    too): arrays and lists/dicts of arrays as npy entries, anything else as JSON."""
    layout: dict[str, dict] = {}
    arrays: dict[str, np.ndarray] = {}
    for f in dataclasses.fields(data):
        value = getattr(data, f.name)
        if isinstance(value, np.ndarray):
            layout[f.name] = {"kind": "array"}
            arrays[f"data.{f.name}"] = value
        elif (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(v, np.ndarray) for v in value)
        ):
            layout[f.name] = {"kind": "arrays", "count": len(value)}
            arrays.update({f"data.{f.name}.{i}": v for i, v in enumerate(value)})
        elif (
            isinstance(value, dict)
            and value
            and all(isinstance(v, np.ndarray) for v in value.values())
        ):
            layout[f.name] = {"kind": "array_dict", "keys": list(value)}
            arrays.update({f"data.{f.name}.{i}": v for i, v in enumerate(value.values())})
        else:
            try:
                json.dumps(value)
            except TypeError as exc:
                raise FixtureError(
                    f"CaseData.{f.name} ({type(value).__name__}) cannot be stored in a fixture"
                ) from exc
            layout[f.name] = {"kind": "json", "value": value}
    return layout, arrays


def _unpack_data(layout: dict, npz, data_type: str = "CaseData") -> CaseData | ArrayData:
    values = {}
    for name, item in layout.items():
        kind = item["kind"]
        if kind == "array":
            values[name] = npz[f"data.{name}"]
        elif kind == "arrays":
            values[name] = [npz[f"data.{name}.{i}"] for i in range(int(item["count"]))]
        elif kind == "array_dict":
            values[name] = {k: npz[f"data.{name}.{i}"] for i, k in enumerate(item["keys"])}
        elif kind == "json":
            values[name] = item["value"]
        else:
            raise ValueError(f"unknown data kind {kind!r}")
    return _DATA_TYPES[data_type](**values)


def fixture_bytes(fixture: Fixture) -> bytes:
    """The `.npz` file's bytes, deterministic for the same content."""
    names = sorted(fixture.float64)
    layout, data_arrays = _pack_data(fixture.data)
    meta = {
        "format": FORMAT,
        "case_id": fixture.case_id,
        "layer": fixture.layer,
        "origin": fixture.origin,
        "data": layout,
        "quantities": names,
    }
    if not isinstance(fixture.data, CaseData):
        meta["data_type"] = type(fixture.data).__name__
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta, sort_keys=True))}
    arrays.update(data_arrays)
    for i, name in enumerate(names):
        arrays[f"float64.{i}"] = np.asarray(fixture.float64[name], dtype=np.float64)
        arrays[f"float32.{i}"] = np.asarray(fixture.float32[name])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            entry = io.BytesIO()
            # (stored at least 1-d: ascontiguousarray makes a 0-d array 1-d)
            np.lib.format.write_array(entry, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, entry.getvalue(), compresslevel=9)
    return buffer.getvalue()


def write_bytes(path: Path, content: bytes) -> None:
    """Writes atomically (a reader never sees half a file)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)


def read_fixture(path: Path) -> Fixture:
    """Reads a fixture file; FixtureError (naming the file) if it is not a valid one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].item())
            if meta.get("format") != FORMAT:
                raise FixtureError(
                    f"{path}: fixture format {meta.get('format')!r}, expected {FORMAT}; "
                    "re-record with `nntk-parity record`"
                )
            names = list(meta["quantities"])
            data = _unpack_data(meta["data"], npz, meta.get("data_type", "CaseData"))
            float64 = {n: npz[f"float64.{i}"] for i, n in enumerate(names)}
            float32 = {n: npz[f"float32.{i}"] for i, n in enumerate(names)}
            return Fixture(
                case_id=str(meta["case_id"]),
                layer=str(meta["layer"]),
                origin=str(meta.get("origin", "")),
                data=data,
                float64=float64,
                float32=float32,
            )
    except FixtureError:
        raise
    except FileNotFoundError as exc:
        raise FixtureError(f"{path}: fixture file is missing") from exc
    except Exception as exc:  # zip, npy header, JSON, missing key, zlib: all "corrupt"
        raise FixtureError(
            f"{path}: corrupt or truncated fixture ({type(exc).__name__}: {exc})"
        ) from exc


# -- the manifest ------------------------------------------------------------------------
def load_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST
    if not Path(directory).is_dir():
        raise FixtureError(
            f"no fixture directory at {directory} (pass --fixtures DIR, or record them "
            "with `nntk-parity record`)"
        )
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise FixtureError(
            f"{path} is missing (record fixtures with `nntk-parity record`)"
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FixtureError(f"{path}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("cases"), list):
        raise FixtureError(f"{path}: not a fixture manifest (no 'cases' list)")
    if manifest.get("format") != FORMAT:
        raise FixtureError(
            f"{path}: manifest format {manifest.get('format')!r}, expected {FORMAT}; "
            "re-record with `nntk-parity record`"
        )
    return manifest


def write_manifest(directory: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=1, sort_keys=False) + "\n"
    write_bytes(Path(directory) / MANIFEST, text.encode())


def write_fixture_set(directory: Path, manifest: dict, entries: list[dict]) -> dict:
    """Completes a freshly recorded set: `manifest` gets `entries` and their total size,
    is written to `directory`, and every fixture file there it no longer lists is
    removed. Returns the manifest. (The layer, training and sequence recorders.)"""
    manifest["cases"] = entries
    manifest["total_bytes"] = sum(int(e.get("bytes", 0)) for e in entries)
    write_manifest(directory, manifest)
    listed = {e["file"] for e in entries}
    for path in sorted(Path(directory).glob("*.npz")):
        if path.name not in listed:
            path.unlink()
    return manifest


def entry_problem(entry) -> str:
    """What is wrong with a manifest entry's fields ('' if nothing)."""
    if not isinstance(entry, dict):
        return f"manifest entry {entry!r} is not an object"
    missing = [k for k in ("file", "id", "layer", "sha256") if not isinstance(entry.get(k), str)]
    if missing:
        return f"manifest entry {entry.get('file', entry)!r} lacks {', '.join(missing)}"
    if Path(entry["file"]).name != entry["file"]:
        return f"manifest entry {entry['file']!r}: a fixture file name may not contain a path"
    return ""


def read_entry(directory: Path, entry: dict, name: str) -> Fixture:
    """The fixture a manifest entry names, checked: present, unaltered (sha256) and
    holding the case the manifest says. FixtureError (prefixed with `name`) if not."""
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
    return fixture


def find_entry(directory: Path, ident: str) -> dict | None:
    """The manifest entry whose file stem, file name or case id is `ident`."""
    manifest = load_manifest(directory)
    for entry in manifest["cases"]:
        if entry_problem(entry):
            continue
        if ident in (Path(entry["file"]).stem, entry["file"], entry["id"]):
            return entry
    return None


def environment() -> dict:
    """The machine a recording ran on (for the manifest)."""
    return {"cpu": cpu_model(), "machine": platform.machine(), "system": platform.system()}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
