"""Golden fixtures: the on-disk format (no TensorFlow here).

A fixture directory holds one compressed `.npz` per case and `manifest.json`:

- `<layer>-<hash>.npz`: the case's data (weights in tf.keras `get_weights()` order,
  input x, upstream gradients), the float64 referee's quantities and tf.keras
  float32's quantities, and a `meta` entry (JSON) with the case id, the weight and
  quantity names and how the case was chosen (`origin`: sweep, bucket, random,
  regression). The file name's hash is of the case id, so a case keeps its name
  across recordings. Files are written deterministically (fixed zip timestamps):
  recording the same references twice gives the same bytes.
- `manifest.json`: format, seed, the TensorFlow / tf_keras / numpy versions, the
  reference settings, the CPU, and per case its file, id, layer, origin and sha256.

`parity.record` writes fixtures (with TensorFlow); `parity.replay` checks the native
library against them (without).
"""

from __future__ import annotations

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
MAX_TOTAL_BYTES = 5 * 2**20  # the whole committed set
ORIGINS = ("sweep", "bucket", "random", "regression")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class FixtureError(Exception):
    """A fixture or manifest that cannot be used (missing, altered, corrupt, unknown)."""


@dataclass
class Fixture:
    case_id: str
    layer: str
    origin: str
    data: CaseData
    float64: dict[str, np.ndarray]  # the referee
    float32: dict[str, np.ndarray]  # tf.keras float32


def default_dir() -> Path:
    """$NNTK_FIXTURES, else `fixtures/` in the current directory."""
    return Path(os.environ.get(FIXTURES_ENV, DEFAULT_DIR))


def fixture_stem(case_id: str) -> str:
    """`dense-3f2a9c1b0e`: the layer and a hash of the case id (stable across records)."""
    layer = case_id.partition("?")[0]
    return f"{layer}-{hashlib.sha256(case_id.encode()).hexdigest()[:10]}"


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- one fixture -------------------------------------------------------------------------
def fixture_bytes(fixture: Fixture) -> bytes:
    """The `.npz` file's bytes, deterministic for the same content."""
    names = sorted(fixture.float64)
    meta = {
        "format": FORMAT,
        "case_id": fixture.case_id,
        "layer": fixture.layer,
        "origin": fixture.origin,
        "weight_names": list(fixture.data.weight_names),
        "upstream": len(fixture.data.upstream),
        "quantities": names,
    }
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta, sort_keys=True))}
    arrays["x"] = fixture.data.x
    arrays.update({f"weight_{i}": w for i, w in enumerate(fixture.data.weights)})
    arrays.update({f"upstream_{i}": u for i, u in enumerate(fixture.data.upstream)})
    for i, name in enumerate(names):
        arrays[f"float64_{i}"] = np.asarray(fixture.float64[name], dtype=np.float64)
        arrays[f"float32_{i}"] = np.asarray(fixture.float32[name])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            entry = io.BytesIO()
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
            data = CaseData(
                weight_names=list(meta["weight_names"]),
                weights=[npz[f"weight_{i}"] for i in range(len(meta["weight_names"]))],
                x=npz["x"],
                upstream=[npz[f"upstream_{i}"] for i in range(int(meta["upstream"]))],
            )
            float64 = {n: npz[f"float64_{i}"] for i, n in enumerate(names)}
            float32 = {n: npz[f"float32_{i}"] for i, n in enumerate(names)}
            extra = set(npz.files) - {"meta", "x"}
            extra -= {f"weight_{i}" for i in range(len(data.weights))}
            extra -= {f"upstream_{i}" for i in range(len(data.upstream))}
            extra -= {f"float{b}_{i}" for b in (32, 64) for i in range(len(names))}
            if extra:
                raise FixtureError(f"{path}: unexpected entries {sorted(extra)}")
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
