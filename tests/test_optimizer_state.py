"""The optimizer state accessors (nntk/optimizer.h: NNTKOptimizerStateSize, GetState,
SetState, SetIterations; nntk_core.optimizers get_state/set_state): what they hold
before the first step, that a restored state continues bit for bit, and that a refused
restore changes nothing. The resume through the model file is tests/test_model_file.py."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

import nntk_core as nn
from nntk_core._native import NNTKError, lib

SHAPES = [(3, 2), (2,)]
FLOAT_PTR = ctypes.POINTER(ctypes.c_float)


def steps(optimizer, variables, count, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        grads = [rng.standard_normal(v.shape).astype(np.float32) for v in variables]
        optimizer.apply_gradients(zip(grads, variables, strict=True))


def fresh_variables():
    rng = np.random.default_rng(7)
    return [rng.standard_normal(s).astype(np.float32) for s in SHAPES]


@pytest.mark.parametrize(
    ("make", "slots"),
    [
        (lambda: nn.optimizers.SGD(momentum=0.9), 1),
        (lambda: nn.optimizers.Adam(), 2),
        (lambda: nn.optimizers.Adam(amsgrad=True), 3),
    ],
)
def test_state_size_and_the_zero_slots_before_the_first_step(make, slots):
    optimizer = make()
    count = ctypes.c_int64()
    lib.NNTKOptimizerStateSize(optimizer._handle, 8, ctypes.byref(count))
    assert count.value == slots * 8
    sizes = (ctypes.c_int64 * 2)(6, 2)
    state = np.full(count.value, 5.0, np.float32)
    lib.NNTKOptimizerGetState(optimizer._handle, 2, sizes, state.ctypes.data_as(FLOAT_PTR), count)
    assert not state.any()  # the slots the first step creates, zero
    assert optimizer.get_state()["variable_shapes"] is None  # and none were created
    variables = fresh_variables()
    steps(optimizer, variables, 2)
    assert optimizer.get_state()["slots"].size == slots * 8
    assert optimizer.get_state()["slots"].any()


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
        lambda: nn.optimizers.Adam(learning_rate=0.1, amsgrad=True),
    ],
)
def test_a_restored_state_continues_bit_for_bit(make):
    straight, variables = make(), fresh_variables()
    steps(straight, variables, 2)
    saved_state, saved_variables = straight.get_state(), [v.copy() for v in variables]
    steps(straight, variables, 2, seed=1)
    restored, resumed = make(), saved_variables
    restored.set_state(saved_state)
    assert restored.iterations == 2 and restored.variable_shapes == SHAPES
    steps(restored, resumed, 2, seed=1)
    for a, b in zip(resumed, variables, strict=True):
        assert a.tobytes() == b.tobytes()
    assert restored.get_state()["slots"].tobytes() == straight.get_state()["slots"].tobytes()


def test_a_refused_restore_changes_nothing():
    optimizer, variables = nn.optimizers.Adam(), fresh_variables()
    steps(optimizer, variables, 1)
    before = optimizer.get_state()
    with pytest.raises(ValueError, match="not this optimizer's"):
        optimizer.set_state(
            {**before, "variable_shapes": [(8,)], "slots": np.zeros(16, np.float32)}
        )
    with pytest.raises(ValueError, match="holds 3 values"):
        optimizer.set_state({**before, "slots": np.zeros(3, np.float32)})
    sizes = (ctypes.c_int64 * 1)(8)
    other = np.ones(16, np.float32)
    with pytest.raises(
        NNTKError, match="n_params = 1 but the optimizer's slots were created for 2"
    ):
        lib.NNTKOptimizerSetState(optimizer._handle, 1, sizes, other.ctypes.data_as(FLOAT_PTR), 16)
    with pytest.raises(NNTKError, match="iterations must be in"):
        lib.NNTKOptimizerSetIterations(optimizer._handle, -1)
    after = optimizer.get_state()
    assert after["iterations"] == 1 and after["variable_shapes"] == before["variable_shapes"]
    assert after["slots"].tobytes() == before["slots"].tobytes()
