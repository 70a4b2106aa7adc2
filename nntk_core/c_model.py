"""The C model (nntk/model.h) from Python, through ctypes: a model file run by the
C library's own model code (NNTKModelLoad, ApplyInference, TrainStep, Save), as an
app on a device runs it. For checking that path against nn.Sequential
(tests/test_c_model.py, the worked example); a Python program trains with
nn.Sequential. Errors raise NNTKError with the library's message.

    with CModel("personal.nntk", max_batch=8, max_steps=50) as model:
        probabilities = model(x)
        loss = model.train_step(x, y, nn.losses.CategoricalCrossentropy())
        model.save("personal.nntk")
        y, states = model.stream(window)          # live frames: NNTKModelStream
        y, states = model.stream(next_window, states)
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from nntk_core._native import lib

_FLOAT_PTR = ctypes.POINTER(ctypes.c_float)


def _ptr(array: np.ndarray | None):
    return None if array is None else array.ctypes.data_as(_FLOAT_PTR)


class CModel:
    """An NNTKModel loaded from `path` with the capacity (max_batch, max_steps)."""

    def __init__(self, path, max_batch: int, max_steps: int):
        self.handle = lib.NNTKModelLoad(os.fsencode(path), max_batch, max_steps)

    def describe(self) -> tuple[int, int, int]:
        """(layer_count, input_features, weight_count)."""
        values = [ctypes.c_int64() for _ in range(3)]
        lib.NNTKModelDescribe(self.handle, *[ctypes.byref(v) for v in values])
        return tuple(v.value for v in values)

    def output_shape(self, batch: int, steps: int) -> tuple[int, int]:
        out_steps, out_features = ctypes.c_int64(), ctypes.c_int64()
        lib.NNTKModelOutputShape(
            self.handle, batch, steps, ctypes.byref(out_steps), ctypes.byref(out_features)
        )
        return out_steps.value, out_features.value

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Inference on x (batch, steps, features); the output (batch, out_steps, features)."""
        x = np.ascontiguousarray(x, np.float32)
        out = np.empty((x.shape[0], *self.output_shape(*x.shape[:2])), np.float32)
        lib.NNTKModelApplyInference(self.handle, x.shape[0], x.shape[1], _ptr(x), _ptr(out))
        return out

    def train_step(self, x: np.ndarray, y: np.ndarray, loss) -> float:
        x = np.ascontiguousarray(x, np.float32)
        y = np.ascontiguousarray(y, np.float32)
        value = ctypes.c_float()
        lib.NNTKModelTrainStep(
            self.handle,
            loss._kind,  # NNTKLossKind (nntk/loss.h), as the loss's own calls pass it
            loss._from_logits(),
            x.shape[0],
            x.shape[1],
            _ptr(x),
            _ptr(y),
            ctypes.byref(value),
        )
        return value.value

    def state_width(self) -> int:
        """NNTKModelStreamStates: the floats of the stream states per sequence."""
        value = ctypes.c_int64()
        lib.NNTKModelStreamStates(self.handle, ctypes.byref(value))
        return value.value

    def stream(self, x: np.ndarray, states: np.ndarray | None = None):
        """NNTKModelStream on one chunk x (batch, steps, features) from `states` (a flat
        buffer of batch * state_width floats, None = zeros): (output, new states)."""
        x = np.ascontiguousarray(x, np.float32)
        out = np.empty((x.shape[0], *self.output_shape(*x.shape[:2])), np.float32)
        final = np.empty(x.shape[0] * self.state_width(), np.float32)
        initial = None if states is None else np.ascontiguousarray(states, np.float32)
        lib.NNTKModelStream(
            self.handle, x.shape[0], x.shape[1], _ptr(x), _ptr(initial), _ptr(out), _ptr(final)
        )
        return out, final

    def weights(self) -> np.ndarray:
        """Every weight, flat, in the model file's order."""
        flat = np.empty(self.describe()[2], np.float32)
        lib.NNTKModelGetWeights(self.handle, _ptr(flat), flat.size)
        return flat

    def iterations(self) -> int:
        value = ctypes.c_int64()
        lib.NNTKModelIterations(self.handle, ctypes.byref(value))
        return value.value

    def save(self, path) -> None:
        lib.NNTKModelSave(self.handle, os.fsencode(path))

    def close(self) -> None:
        if self.handle:
            lib.NNTKModelDestroy(self.handle)
            self.handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
