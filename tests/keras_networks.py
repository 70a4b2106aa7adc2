"""The issue's networks as compiled, pre-trained tf.keras models (tests/test_verify.py),
and their recorded files in tests/keras_models/ (each network in .keras and .h5, with
tf.keras's predictions in float32 and from the float64 twin), which nn.load_keras is
checked against where TensorFlow is not installed (ci/replay-no-tf.sh) and in
tests/test_keras_io.py.

    python tests/keras_networks.py record   # re-record the files (TensorFlow)
    python -P tests/keras_networks.py check # load each file and compare (no TensorFlow)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

NETWORKS = ("keyword", "bidirectional", "causal_rnn")
FORMATS = ("keras", "h5")
RECORDED = Path(__file__).resolve().with_name("keras_models")


def keyword_detector(L, bidirectional: bool = False):
    """Conv1D -> BN -> ReLU -> GRU -> BN -> GRU -> TimeDistributed(Dense); the variant:
    Conv1D -> BN -> ReLU -> Bidirectional(LSTM) -> TimeDistributed(Dense)."""
    head = [L.Conv1D(6, 3, padding="same"), L.BatchNormalization(), L.ReLU()]
    if bidirectional:
        body = [L.Bidirectional(L.LSTM(4, return_sequences=True))]
    else:
        body = [
            L.GRU(5, return_sequences=True),
            L.BatchNormalization(),
            L.GRU(5, return_sequences=True),
        ]
    return [*head, *body, L.TimeDistributed(L.Dense(3, activation="softmax"))]


def causal_rnn_classifier(L):
    """Conv1D(causal, dilated) -> SimpleRNN -> Dense(softmax)."""
    return [
        L.Conv1D(5, 3, padding="causal", dilation_rate=2, activation="relu"),
        L.SimpleRNN(4),
        L.Dense(3, activation="softmax"),
    ]


def build(network: str, optimizer: str = "adam", loss: str = "categorical_crossentropy"):
    """The network compiled with `optimizer` and `loss`, trained one epoch on random data
    (weights and moving statistics of a trained model, not the initializers')."""
    from parity import reference

    k = reference.keras()
    k.utils.set_random_seed(7)
    L = k.layers
    layers = {
        "keyword": lambda: keyword_detector(L),
        "bidirectional": lambda: keyword_detector(L, bidirectional=True),
        "causal_rnn": lambda: causal_rnn_classifier(L),
    }[network]()
    model = k.Sequential([k.Input((None, 4)), *layers])
    opt = k.optimizers.Adam(3e-3) if optimizer == "adam" else k.optimizers.SGD(0.05, momentum=0.9)
    model.compile(optimizer=opt, loss=loss)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 10, 4)).astype(np.float32)
    out = model.compute_output_shape(x.shape)
    y = np.eye(out[-1], dtype=np.float32)[rng.integers(0, out[-1], out[:-1])]
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    return model


def record(directory: Path = RECORDED) -> None:
    from parity.verify_sides import keras_twin

    directory.mkdir(exist_ok=True)
    predictions = {}
    for network in NETWORKS:
        model = build(network)
        for fmt in FORMATS:
            model.save(directory / f"{network}.{fmt}")
        x = np.random.default_rng(2).standard_normal((2, 12, 4)).astype(np.float32)
        predictions[f"{network}:x"] = x
        predictions[f"{network}:keras32"] = model.predict(x, verbose=0)
        twin = keras_twin(model, "float64")
        predictions[f"{network}:float64"] = twin(x.astype(np.float64), training=False).numpy()
    np.savez(directory / "predictions.npz", **predictions)


def check(directory: Path = RECORDED) -> list[str]:
    """Loads every recorded file with nn.load_keras and compares its output with the
    recorded tf.keras predictions (parity.compare, the whole-model tolerance); returns
    one line per file, each starting with "ok" or "FAIL"."""
    import nntk_core as nn
    from parity.compare import compare
    from parity.model_parity import STEP_TOLERANCE

    lines = []
    with np.load(directory / "predictions.npz") as recorded:
        for network in NETWORKS:
            x = recorded[f"{network}:x"]
            for fmt in FORMATS:
                model = nn.load_keras(directory / f"{network}.{fmt}")
                result = compare(
                    f"{network}.{fmt} output",
                    model(x),
                    recorded[f"{network}:float64"],
                    recorded[f"{network}:keras32"],
                    STEP_TOLERANCE,
                )
                model.close()
                lines.append(result.describe())
    return lines


if __name__ == "__main__":
    if sys.argv[1:] == ["record"]:
        record()
    elif sys.argv[1:] == ["check"]:
        results = check()
        print("\n".join(results))
        sys.exit(0 if all(line.startswith("ok") for line in results) else 1)
    else:
        sys.exit(__doc__)
