"""Allocation failures seen from Python (issue #15 §1; docs/reliability.md).

Needs the library's allocation-failure test build (cmake -DNNTK_ALLOC_FAULTS=ON),
loaded through NNTK_CORE_LIB: ci/alloc-faults.sh builds it and runs this file by
name (its name keeps it out of the ordinary test runs, whose library has the hook
compiled out); against another build it fails at once.

A whole training workflow (every layer class, a Sequential model trained with a
loss and an optimizer through a bigger batch and a longer sequence, inference,
streaming, the C model of its saved file: load, inference, a step, save) runs once
per allocation it makes, with that allocation failing: each
must come out as nntk_core.NNTKError with status NNTK_ERROR_OUT_OF_MEMORY (never a
crash, never another exception), and the next uninjected workflow in the same
process must give bitwise the reference results.
"""

import ctypes
import tempfile
from pathlib import Path

import numpy as np
import pytest

import nntk_core as nn
from nntk_core._native import lib
from nntk_core.c_model import CModel
from parity.specs import all_specs

try:
    fail_allocation = lib.NNTKTestFailAllocation
    allocation_count = lib.NNTKTestAllocationCount
except AttributeError:
    raise RuntimeError(
        "this library has no allocation-failure hook: run this file against the "
        "NNTK_ALLOC_FAULTS build (bash ci/alloc-faults.sh)"
    ) from None
fail_allocation.argtypes, fail_allocation.restype = [ctypes.c_int64], None
allocation_count.argtypes, allocation_count.restype = [], ctypes.c_int64


DIRECTORY = Path(tempfile.mkdtemp(prefix="nntk-alloc-faults-"))  # the model files


def build_model():
    return nn.Sequential(
        [
            nn.Conv1d(4, 3, input_dim=3, padding="same"),
            nn.BatchNorm(4),
            nn.Activation("relu"),
            nn.Bidirectional(nn.LSTM(3, input_dim=4, return_sequences=True)),
            nn.GRU(3, input_dim=6, return_sequences=True),
            nn.RNN(3, input_dim=3, return_sequences=True),
            nn.TimeDistributedDense(2, input_dim=3, activation="softmax"),
        ]
    )


# Layers the model does not use directly (Dense and LSTM run below / inside it).
IN_WORKFLOW = {"Dense", "LSTM"}


def other_specs():
    """The specs of every layer class the model lacks: each runs from its spec's base
    config (derived, so a new layer is in the workflow without an edit)."""
    in_model = {type(layer).__name__ for layer in build_model().layers} | IN_WORKFLOW
    return [spec for spec in all_specs() if spec.layer_class not in in_model]


def run_from_spec(spec) -> list[np.ndarray]:
    """A training call, its backward and an inference call of `spec`'s base layer."""
    layer = spec.build_native(nn, dict(spec.base_config))
    case = spec.base_case()
    x = spec.call_input(spec.draw_input(case, np.random.default_rng(case.seed)))
    y = layer(x, training=True)
    d_in = layer.backward(np.ones_like(y))[0]
    return [y, d_in, layer(x), *layer.get_weights()]


def batch(size, steps, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((size, steps, 3)).astype(np.float32)
    return x, np.eye(2, dtype=np.float32)[rng.integers(0, 2, size=(size, steps))]


def workflow() -> list[np.ndarray]:
    """Every public path once; returns everything it computed."""
    nn.set_random_seed(0)
    model = build_model()
    loss, optimizer = nn.losses.CategoricalCrossentropy(), nn.optimizers.Adam(0.01)
    results = []
    for size, steps in [(1, 4), (3, 4), (3, 7)]:  # growth: a bigger batch, a longer sequence
        x, y = batch(size, steps, seed=steps)
        results.append(np.array(model.train_step(x, y, loss, optimizer)))
    results.append(model(batch(2, 5, seed=1)[0]))
    dense = nn.Dense(2, input_dim=3)
    results.append(dense(batch(2, 1, seed=2)[0][:, 0], training=True))
    results.extend([dense.backward(np.ones((2, 2), np.float32))[0]])
    gru = model.layers[4]
    out, state = gru.stream(batch(2, 3, seed=3)[0].repeat(2, axis=2))
    results += [out, *gru.stream(batch(2, 6, seed=4)[0].repeat(2, axis=2), state)]
    tail = nn.Sequential(model.layers[4:])  # the layers that stream: one native chain
    out, states = tail.stream(batch(2, 3, seed=6)[0].repeat(2, axis=2))
    out2, states = tail.stream(batch(2, 3, seed=7)[0].repeat(2, axis=2), states)
    results += [out, out2, *[state for entry in states for state in entry]]
    results.extend(model.get_weights())
    # the C model of the model's file (nntk/model.h): load, inference, a step, save
    model.save(DIRECTORY / "model.nntk", optimizer=optimizer)
    with CModel(DIRECTORY / "model.nntk", 3, 7) as native:
        x, y = batch(3, 7, seed=5)
        results += [native(x), np.array(native.train_step(x, y, loss)), native.weights()]
        native.save(DIRECTORY / "from_c.nntk")
    results.append(np.frombuffer((DIRECTORY / "from_c.nntk").read_bytes(), np.uint8))
    for spec in other_specs():
        results.extend(run_from_spec(spec))
    return results


def test_every_layer_class_is_in_the_workflow():
    model_layers = {type(layer).__name__ for layer in build_model().layers}
    from_specs = {spec.layer_class for spec in other_specs()}
    assert set(nn.LAYER_CLASSES) <= model_layers | IN_WORKFLOW | from_specs


def test_every_allocation_failure_is_an_out_of_memory_error_and_recoverable():
    fail_allocation(0)
    reference = workflow()
    made = allocation_count()
    assert made > 50  # the hook counts: a workflow allocates
    for n in range(1, made + 1):
        fail_allocation(n)
        with pytest.raises(nn.NNTKError) as refused:
            workflow()
        fail_allocation(0)
        assert refused.value.status == "NNTK_ERROR_OUT_OF_MEMORY", (n, refused.value)
        assert refused.value.message.startswith("NNTK"), (n, refused.value)
        again = workflow()
        for got, want in zip(again, reference, strict=True):
            np.testing.assert_array_equal(got, want, err_msg=f"after failing allocation {n}")
