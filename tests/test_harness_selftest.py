"""Self-test of the parity harness: deliberately wrong backends must be caught.

The backends here are fakes (named so): each wraps the real native backend and
corrupts one thing. The comparison runs against real tf.keras, as in the suite.
"""

import numpy as np
import pytest

from parity.runner import NativeBackend, run_case
from parity.spec import Case
from parity.specs import get_spec

pytestmark = pytest.mark.tf


class FakePerturbOneGradientElement(NativeBackend):
    """(a) one element of one weight gradient off by 1e-3 relative."""

    def __init__(self, quantity: str):
        self.quantity = quantity

    def run(self, spec, case, data):
        q = super().run(spec, case, data)
        g = q[self.quantity].copy()
        i = np.unravel_index(np.argmax(np.abs(g)), g.shape)
        g[i] *= 1 + 1e-3
        q[self.quantity] = g
        return q


class FakeZeroGradient(NativeBackend):
    """(b) a gradient returned as zeros."""

    def __init__(self, quantity: str):
        self.quantity = quantity

    def run(self, spec, case, data):
        q = super().run(spec, case, data)
        q[self.quantity] = np.zeros_like(q[self.quantity])
        return q


class FakeStaleOutput(NativeBackend):
    """(c) returns the previous call's outputs."""

    def __init__(self):
        self.previous = None

    def run(self, spec, case, data):
        q = super().run(spec, case, data)
        current = {k: v for k, v in q.items() if k.startswith("output")}
        if self.previous is not None:
            q.update(self.previous)
        self.previous = current
        return q


class FakeSwapGradients(NativeBackend):
    """(d) two gradients of equal shape swapped."""

    def __init__(self, first: str, second: str):
        self.first, self.second = first, second

    def run(self, spec, case, data):
        q = super().run(spec, case, data)
        q[self.first], q[self.second] = q[self.second], q[self.first]
        return q


class FakeIdentity(NativeBackend):
    """(e) returns the input unchanged as the output."""

    def run(self, spec, case, data):
        q = super().run(spec, case, data)
        for k in q:
            if k.startswith("output"):
                q[k] = data.x.copy()
        return q


def dense_case(**overrides) -> Case:
    config = {"units": 4, "input_dim": 4, "activation": "tanh", "use_bias": True}
    config.update(overrides.pop("config", {}))
    fields = {"batch": 3, "steps": 5, "rank": 3, "seed": 7}
    fields.update(overrides)
    return Case("dense", config, **fields)


def failing_quantities(result) -> set[str]:
    return {c.quantity for c in result.comparisons if not c.passed}


def test_real_backend_passes_the_cases_used_below():
    """The fakes below fail because of their corruption, not because the case is hard."""
    spec = get_spec("dense")
    for case in (dense_case(), dense_case(seed=8), dense_case(batch=4, rank=2, steps=1)):
        result = run_case(spec, case)
        assert result.passed, result.failure_message()


@pytest.mark.parametrize("quantity", ["grad:kernel", "grad:bias"])
def test_catches_one_gradient_element_off_by_1e_3_relative(quantity):
    result = run_case(get_spec("dense"), dense_case(), FakePerturbOneGradientElement(quantity))
    assert not result.passed
    assert failing_quantities(result) == {quantity}
    message = result.failure_message()
    assert f"{quantity[5:]} grad [" in message and "nntk-parity repro" in message


@pytest.mark.parametrize("quantity", ["grad:kernel", "grad:bias", "grad:input"])
def test_catches_a_zero_gradient(quantity):
    result = run_case(get_spec("dense"), dense_case(), FakeZeroGradient(quantity))
    assert failing_quantities(result) == {quantity}


def test_catches_the_previous_calls_output():
    spec, fake = get_spec("dense"), FakeStaleOutput()
    first = run_case(spec, dense_case(seed=7), fake)
    assert first.passed, first.failure_message()  # nothing stale yet
    second = run_case(spec, dense_case(seed=8), fake)
    assert failing_quantities(second) == {"output:inference", "output:training"}


def test_catches_two_swapped_gradients_of_equal_shape():
    # (B, D) input with B = D = U: the input and kernel gradients are both (4, 4).
    case = dense_case(batch=4, rank=2, steps=1)
    result = run_case(get_spec("dense"), case, FakeSwapGradients("grad:input", "grad:kernel"))
    assert failing_quantities(result) == {"grad:input", "grad:kernel"}


def test_catches_an_output_equal_to_the_input():
    case = Case("activation", {"activation": "tanh", "input_dim": 5}, 3, 4, 3, 11)
    result = run_case(get_spec("activation"), case, FakeIdentity())
    assert failing_quantities(result) == {"output:inference", "output:training"}


def test_a_native_exception_fails_the_case():
    class FakeRaises(NativeBackend):
        def run(self, spec, case, data):
            raise RuntimeError("boom")

    result = run_case(get_spec("dense"), dense_case(), FakeRaises())
    assert not result.passed and "boom" in result.failure_message()


def test_catches_two_swapped_weight_gradients_of_equal_shape():
    # BatchNorm's gamma and beta gradients are both (C,).
    case = Case(
        "batch_norm",
        {"input_dim": 5, "momentum": 0.9, "epsilon": 1e-3, "center": True, "scale": True},
        3,
        4,
        3,
        5,
        extra={"calls": 1, "inputs": "normal"},
    )
    spec = get_spec("batch_norm")
    assert run_case(spec, case).passed
    result = run_case(spec, case, FakeSwapGradients("grad:gamma", "grad:beta"))
    assert failing_quantities(result) == {"grad:gamma", "grad:beta"}
