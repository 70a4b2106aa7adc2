"""Replay's checks beyond the recorded values (issue 12 §7): the C API's invalid-call
contract (parity/c_contract.py) and the optimizer saved and restored after every step
(parity/training.py). Each must pass on the real library and fail on a planted fault,
named so, that the other checks of replay cannot see.

The same checks kill library mutants too: docs/mutation.md lists the keys
(`python tools/mutation/mutate.py --sample 700 --check KEY,...`)."""

from __future__ import annotations

import ctypes
import re
import types

import pytest
from helpers import FIXTURES
from training_fakes import FakeNN, replay_with

import nntk_core as nn
from parity import c_contract
from parity.c_contract import ALL_CASES, NO_PARAMETERS, WITH_VALID_CALL
from parity.replay import replay
from parity.training import RESTORED

PLANTED = "NNTKDenseApplyInference"


def test_the_contract_holds_on_the_real_library():
    checked, problems = c_contract.problems()
    assert problems == []
    fields, _ = c_contract.description_problems()
    kernel_constants = 1
    assert checked == fields + kernel_constants + len(NO_PARAMETERS) + len(WITH_VALID_CALL) + len(
        ALL_CASES
    )
    assert sum(case.function == PLANTED for case in ALL_CASES) >= 10


def _fake_raw(fake):
    """c_contract.raw, with PLANTED replaced by `fake` (given the real function)."""
    real_raw = c_contract.raw

    def raw(name):
        return fake(real_raw(name)) if name == PLANTED else real_raw(name)

    return raw


def fake_accepts_everything(real):
    """A fake NNTKDenseApplyInference that checks nothing and does nothing."""
    return lambda *args: 0


def fake_null_is_an_invalid_argument(real):
    """A fake NNTKDenseApplyInference that reports a NULL pointer as an invalid argument
    (status 2, not NNTK_ERROR_NULL_POINTER = 1); every message is the real one."""

    def call(*args):
        status = real(*args)
        return 2 if status == 1 else status

    return call


@pytest.mark.parametrize(
    "fake, expected",
    [
        (fake_accepts_everything, "was accepted"),
        (fake_null_is_an_invalid_argument, "status 2, expected 1"),
    ],
)
def test_the_contract_check_catches_a_planted_fault(monkeypatch, fake, expected):
    monkeypatch.setattr(c_contract, "raw", _fake_raw(fake))
    _, problems = c_contract.problems()
    assert problems, f"{fake.__name__} got through"
    assert all(p.startswith(f"{PLANTED}[") for p in problems), problems
    assert any(expected in p for p in problems), problems


def test_replay_reports_a_contract_fault_and_fails(monkeypatch):
    """The whole replay of the real library runs the contract: the planted fault fails
    it, as a problem naming the function, the bad argument and what went wrong."""
    monkeypatch.setattr(c_contract, "raw", _fake_raw(fake_accepts_everything))
    run = replay(FIXTURES)
    assert not run.passed
    assert not run.failed_cases  # the values are right: only the contract fails
    assert run.contract_calls > 0
    assert run.problems
    assert all(p.startswith(f"C API contract: {PLANTED}[") for p in run.problems)
    assert f"C API contract: {PLANTED}[batch=0] was accepted" in run.problems


def test_a_partial_replay_leaves_the_contract_out():
    assert replay(FIXTURES, layers=["sgd"]).contract_calls == 0


# -- the optimizer saved and restored -----------------------------------------------------
def _optimizers_whose_restore(change):
    """Fake optimizer classes: the real ones, whose set_state is given change(state)."""

    def fake(real):
        return type(
            f"Fake{real.__name__}",
            (real,),
            {"set_state": lambda self, s: real.set_state(self, change(s))},
        )

    return types.SimpleNamespace(SGD=fake(nn.optimizers.SGD), Adam=fake(nn.optimizers.Adam))


def forgets_the_step_count(state):
    """A restore that leaves the new optimizer at step 0 (SetIterations lost)."""
    return {**state, "iterations": 0}


def loses_the_last_slot(state):
    """A restore that zeroes the last slot (Adam's v, or v-hat; SGD's only m)."""
    slots = state["slots"].copy()
    if slots.size:
        slots[-slots.size // (3 if slots.size % 3 == 0 else 2) :] = 0.0
    return {**state, "slots": slots}


def test_the_restored_optimizer_passes_on_the_real_library():
    run = replay_with(FakeNN(optimizers=_optimizers_whose_restore(lambda s: s)), ["sgd", "adam"])
    assert run.passed, [r.failure_message() for r in run.failed_cases]
    restored = [c for r in run.results for c in r.comparisons if RESTORED in c.quantity]
    assert len(restored) >= 4 * len(run.results)  # iterations and three variables each


@pytest.mark.parametrize("change", [forgets_the_step_count, loses_the_last_slot])
@pytest.mark.parametrize("spec", ["adam", "train_step"])
def test_replay_catches_a_faulty_optimizer_restore(spec, change):
    run = replay_with(FakeNN(optimizers=_optimizers_whose_restore(change)), [spec])
    assert not run.passed
    failed = [c for r in run.results for c in r.comparisons if not c.passed]
    assert failed and all(RESTORED in c.quantity for c in failed), [c.quantity for c in failed]
    # the element is named, as for any other replay failure
    assert any(c.worst_location for c in failed)


def test_sgd_restore_without_momentum_loss_is_caught():
    """SGD keeps one slot (m); losing it shows with momentum > 0."""
    run = replay_with(FakeNN(optimizers=_optimizers_whose_restore(loses_the_last_slot)), ["sgd"])
    failing = {r.case.config["momentum"] for r in run.failed_cases}
    assert failing == {0.9}


# -- every byte given back -----------------------------------------------------------------
class FakeLeakingBackend:
    """A fake layer backend: the real library's plain path (runner.NativeBackend), plus
    one native optimizer per case that is never destroyed, its slots (one float) left
    allocated, as a layer that forgets to free its workspace would."""

    def __init__(self):
        from parity.runner import NativeBackend

        self.real = NativeBackend()

    def run(self, spec, case, data):
        lib = nn.lib
        optimizer = lib.NNTKOptimizerCreateSGD(0.01, 0.0, 0)
        param, grad = (ctypes.c_float * 1)(1.0), (ctypes.c_float * 1)(1.0)
        params = (ctypes.POINTER(ctypes.c_float) * 1)(param)
        grads = (ctypes.POINTER(ctypes.c_float) * 1)(grad)
        lib.NNTKOptimizerStep(optimizer, 1, params, grads, (ctypes.c_int64 * 1)(1))
        return self.real.run(spec, case, data)


def test_replay_catches_memory_the_library_keeps():
    from parity.replay import library_bytes

    before = library_bytes()
    run = replay(FIXTURES, layers=["dense"], backend=FakeLeakingBackend())
    assert not run.passed
    assert not run.failed_cases  # every value is right: only the leak fails
    leaks = [p for p in run.problems if "bytes after it than before" in p]
    assert len(leaks) == run.ran, run.problems  # every case, each named by its fixture
    assert all(p.startswith("dense-") for p in leaks)
    assert library_bytes() > before  # (the fake's optimizers stay: this process only)


def test_replay_gives_back_every_byte():
    from parity.replay import library_bytes

    before = library_bytes()
    assert replay(FIXTURES, layers=["dense", "adam"]).passed
    assert library_bytes() == before


# -- the layer description ------------------------------------------------------------------
def _fake_field(change, field_name=b"use_bias"):
    """c_contract.raw, with NNTKLayerTypeField's outputs for Dense's `field_name` changed by
    change(out) (out: the ctypes outputs by name) after the real call."""
    real_raw = c_contract.raw
    names = ("name", "kind", "default", "min", "max", "min_exclusive", "enum_count")

    def raw(name):
        real = real_raw(name)
        if name != "NNTKLayerTypeField":
            return real

        def fake(type_, field, *outputs):
            status = real(type_, field, *outputs)
            out = {n: o._obj for n, o in zip(names, outputs, strict=True)}
            if out["name"].value == field_name and type_ == _dense_index():
                change(out)
            return status

        return fake

    return raw


def _dense_index():
    return next(t.index for t in nn._native.LAYERS.values() if t.name == "Dense")


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda out: setattr(out["default"], "value", 2.0), "default 2.0 outside"),
        (lambda out: setattr(out["enum_count"], "value", -1), "enum_count -1"),
        (lambda out: setattr(out["max"], "value", 2.0), "BOOL is 0 or 1"),
    ],
    ids=["bool default 2", "enum_count -1", "bool max 2"],
)
def test_the_description_check_catches_a_planted_fault(monkeypatch, change, expected):
    monkeypatch.setattr(c_contract, "raw", _fake_field(change))
    checked, problems = c_contract.description_problems()
    assert checked >= len(nn._native.LAYERS)
    assert len(problems) == 1 and problems[0].startswith("NNTKLayerTypeField(Dense, ")
    assert expected in problems[0], problems


@pytest.mark.parametrize("low", [-1.0, 0.0], ids=["min -1", "min 0 without a None default"])
def test_a_size_field_below_one_is_a_description_fault(monkeypatch, low):
    """A required size (Dense's units: no default) whose range starts below 1 would let
    a config of 0 or -1 units through; only a field whose default is 0 (tf.keras's
    None, resolved by the layer) may start at 0. A mutant of activation.c's input_dim
    range (min 1 -> -1) survived replay before this rule (mutate.py --seed 9)."""
    monkeypatch.setattr(
        c_contract, "raw", _fake_field(lambda out: setattr(out["min"], "value", low), b"units")
    )
    _, problems = c_contract.description_problems()
    assert len(problems) == 1 and problems[0].startswith("NNTKLayerTypeField(Dense, ")
    assert "a size from 1" in problems[0], problems


# -- the kernel constants -------------------------------------------------------------------
@pytest.mark.parametrize(
    "edit",
    [
        lambda text, isa: re.sub(rf"{isa}\.row_cols=\d+", f"{isa}.row_cols=0", text),
        lambda text, isa: "\n".join(t for t in text.split("\n") if not t.startswith(f"{isa}.")),
    ],
    ids=["row_cols 0", "table missing"],
)
def test_the_kernel_constants_check_catches_a_planted_fault(monkeypatch, edit):
    """A fake NNTKKernelConstants (the real text, edited for the table in use)."""
    isa = c_contract.raw("NNTKKernelISA")().decode()
    text = c_contract.raw("NNTKKernelConstants")().decode()
    real_raw = c_contract.raw
    faked = edit(text, isa)
    monkeypatch.setattr(
        c_contract,
        "raw",
        lambda name: (lambda: faked.encode()) if name == "NNTKKernelConstants" else real_raw(name),
    )
    problems = c_contract.kernel_constants_problems()
    assert len(problems) == 1 and f"the {isa} table" in problems[0], problems
