"""Reads the binary parts of a tf.keras model file, in a child process of nn.load_keras.

    python -I _keras_read.py PATH  >  an .npz on stdout

Run as a script, not imported: it needs only numpy and h5py, not nntk. The HDF5
library loops forever (or may crash) on some damaged files (HDF5 1.14.6 spins on a
corrupted attribute header), so nn.load_keras (keras_io.py) parses them here, in a
process it can time out and whose crash it survives.

The .npz holds: `format` ("keras" or "h5"), `config` (the model config JSON), `paths`
(every dataset under the layers' weights: `layers/...` in a .keras archive's
model.weights.h5, `model_weights/...` in a legacy .h5) and `a<i>` the i-th of them;
for a legacy .h5 also `names:<layer>`, each layer's weight_names attribute. On a file
it cannot read: `error` ("<exception type>: <message>"), or `missing` when h5py is
not installed.
"""

import io
import sys
import zipfile

import numpy as np


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _datasets(h5py, group, prefix: str, out: dict) -> None:
    paths = []
    group.visititems(
        lambda name, obj: paths.append(name) if isinstance(obj, h5py.Dataset) else None
    )
    for name in paths:
        out[f"{prefix}/{name}"] = np.asarray(group[name][()])


def read(path: str) -> dict[str, np.ndarray]:
    import h5py

    found: dict[str, np.ndarray] = {}
    meta: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"  # a truncated archive is no longer is_zipfile
    if is_zip:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            for member in ("config.json", "model.weights.h5"):
                if member not in members:
                    raise ValueError(f"the .keras archive has no {member}")
            meta["config"] = np.array(_text(archive.read("config.json")))
            blob = archive.read("model.weights.h5")  # checks the member's CRC
        meta["format"] = np.array("keras")
        with h5py.File(io.BytesIO(blob), "r") as h5:
            if "layers" in h5:
                _datasets(h5py, h5["layers"], "layers", found)
    else:
        with h5py.File(path, "r") as h5:
            if "model_config" not in h5.attrs:
                raise ValueError(
                    "the HDF5 file holds no model_config: a weights-only file (save_weights)? "
                    "nn.load_keras needs a file written by model.save()"
                )
            meta["format"] = np.array("h5")
            meta["config"] = np.array(_text(h5.attrs["model_config"]))
            if "model_weights" not in h5:
                raise ValueError("the HDF5 file has no model_weights group")
            weights = h5["model_weights"]
            for layer in weights:
                group = weights[layer]
                if isinstance(group, h5py.Group) and "weight_names" in group.attrs:
                    names = [_text(n) for n in group.attrs["weight_names"]]
                    meta[f"names:{layer}"] = np.array(names, dtype=str)
            _datasets(h5py, weights, "model_weights", found)
    meta["paths"] = np.array(list(found), dtype=str)
    meta.update({f"a{i}": array for i, array in enumerate(found.values())})
    return meta


def main() -> None:
    try:
        out = read(sys.argv[1])
    except ModuleNotFoundError as exc:
        out = {"missing": np.array(str(exc))}
    except Exception as exc:  # a damaged file: reported to the parent, which raises
        out = {"error": np.array(f"{type(exc).__name__}: {exc}")}
    buffer = io.BytesIO()
    np.savez(buffer, **out)
    sys.stdout.buffer.write(buffer.getvalue())


if __name__ == "__main__":
    main()
