"""Self-test of the parity harness: deliberately wrong backends must be caught.

The backends here are fakes (named so): each wraps the real native backend and
corrupts one thing. The comparison runs against real tf.keras, as in the suite.
"""

import re
from dataclasses import replace

import numpy as np
import pytest
from training_fakes import (
    FakeAdamBiasCorrectionOffByOne,
    FakeLossMissingInverseBatch,
    FakeNN,
    fake_losses,
    fake_optimizers,
    replay_with,
)

import nntk_core as nn
from parity.case import Case
from parity.runner import NativeBackend, run_case
from parity.specs import get_spec

pytestmark = [pytest.mark.tf, pytest.mark.harness]


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


# -- a catalogue of planted faults (issue 12 §8) ------------------------------------------------
# Each fake wraps the real nntk layer (or loss, or optimizer) and plants one common bug.
# Each must be caught by replay (the recorded layer and call-sequence fixtures, no
# TensorFlow) and by the live gate (the spec's cases, the sequence state machine or
# the recorded plans, against tf.keras), with a message naming the quantity and
# the element.


class FakeLayer:
    """A real nntk layer behind a wrapper; a subclass corrupts one thing."""

    def __init__(self, real, config: dict):
        self._real = real
        self._config = config

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __call__(self, x, training=False, **kwargs):
        return self._real(x, training=training, **kwargs)

    def backward(self, dy, **kwargs):
        return self._real.backward(dy, **kwargs)

    def stream(self, chunk, state=None):
        return self._real.stream(chunk, state)


class FakeLayerBackend(NativeBackend):
    """The native backend with every layer wrapped in a fake (layer fixtures and live
    cases through `run`; call sequences through `build_layer`)."""

    def __init__(self, fake: type[FakeLayer]):
        self.fake = fake
        self.name = fake.__name__

    def build_layer(self, spec, config):
        import nntk_core

        return self.fake(spec.build_native(nntk_core, config), config)

    def run(self, spec, case, data):
        return super().run(_SpecBuildingFakes(spec, self), case, data)


class _SpecBuildingFakes:
    """A spec whose build_native builds the backend's fake layers (all else the spec's)."""

    def __init__(self, spec, backend: FakeLayerBackend):
        self._spec, self._backend = spec, backend

    def __getattr__(self, name):
        return getattr(self._spec, name)

    def build_native(self, nn, config):
        return self._backend.build_layer(self._spec, config)


def _outputs(result):
    """The arrays a call returned (an array or a list)."""
    return result if isinstance(result, list) else [result]


class FakeAccumulatedWeightGradients(FakeLayer):
    """Weight gradients accumulated across backward calls (a gradient buffer never zeroed)."""

    previous = None

    def backward(self, dy, **kwargs):
        result = list(self._real.backward(dy, **kwargs))
        if self.previous is not None:
            result[1] = [g + p for g, p in zip(result[1], self.previous, strict=True)]
        self.previous = result[1]
        return tuple(result)


class FakeStateCarriedBetweenCalls(FakeLayer):
    """A recurrent call without initial_state starts from the previous call's final
    state instead of zeros."""

    carried = None

    def __call__(self, x, training=False, initial_state=None, **kwargs):
        if initial_state is None and self.carried is not None:
            if self.carried[0].shape[0] == np.shape(x)[0]:
                initial_state = self.carried
        _, self.carried = self._real.stream(x, initial_state)
        return self._real(x, training=training, initial_state=initial_state, **kwargs)


class FakeWrongSoftsignDerivative(FakeLayer):
    """softsign'(x) computed as 1/(1+|x|) (the square missing); every other activation right."""

    x = None

    @staticmethod
    def triggered(config: dict) -> bool:
        return config.get("activation") == "softsign"

    def __call__(self, x, training=False, **kwargs):
        if training:
            self.x = np.asarray(x, np.float32)
        return self._real(x, training=training, **kwargs)

    def backward(self, dy, **kwargs):
        dx, weight_grads = self._real.backward(dy, **kwargs)
        if self.triggered(self._config) and dx is not None:
            dx = np.asarray(dy, np.float32) / (1 + np.abs(self.x))
        return dx, weight_grads


class FakeNaiveSoftmax(FakeLayer):
    """Softmax as exp(x) / sum(exp(x)) without subtracting the max: overflows (NaN)
    once logits exceed ~88."""

    @staticmethod
    def triggered(config: dict) -> bool:
        return config.get("activation") == "softmax"

    def __call__(self, x, training=False, **kwargs):
        y = self._real(x, training=training, **kwargs)
        if self.triggered(self._config):
            with np.errstate(over="ignore", invalid="ignore"):
                e = np.exp(np.asarray(x, np.float32))
                y = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
        return y


class FakeWrongRowStride(FakeLayer):
    """Sequence outputs written with a wrong row stride from t = 2 on: row t holds
    row t-1's values."""

    @staticmethod
    def _shift(y):
        y = np.array(y)
        if y.ndim == 3 and y.shape[1] >= 3:
            y[:, 2:] = y[:, 1:-1].copy()
        return y

    def __call__(self, x, training=False, **kwargs):
        result = self._real(x, training=training, **kwargs)
        if isinstance(result, list):
            return [self._shift(y) for y in result]
        return self._shift(result)


class FakeStaleBatchSize(FakeLayer):
    """The row count cached at the first call: a later call at a larger batch leaves
    the rows beyond it zero."""

    cached = None

    def _stale(self, y):
        y = np.array(y)
        if y.ndim >= 2 and y.shape[0] > self.cached:
            y[self.cached :] = 0.0
        return y

    def __call__(self, x, training=False, **kwargs):
        self.cached = self.cached or np.shape(x)[0]
        result = self._real(x, training=training, **kwargs)
        if isinstance(result, list):
            return [self._stale(y) for y in result]
        return self._stale(result)


class FakeWrongAbove64Units(FakeLayer):
    """A kernel wrong only in a second 64-wide block: output columns 64 and up off by
    1e-3 relative when the layer has more than 64 units or filters."""

    @staticmethod
    def triggered(config: dict) -> bool:
        return max(config.get("units", 0), config.get("filters", 0)) > 64

    def __call__(self, x, training=False, **kwargs):
        result = self._real(x, training=training, **kwargs)
        if not self.triggered(self._config):
            return result
        outputs = [np.array(y) for y in _outputs(result)]
        outputs[0][..., 64:] *= 1 + 1e-3
        return outputs if isinstance(result, list) else outputs[0]


class FakeWrongWithGoBackwards(FakeLayer):
    """A recurrent cell wrong only with go_backwards: the output of the first step
    processed off by 1e-3 relative."""

    @staticmethod
    def triggered(config: dict) -> bool:
        return bool(config.get("go_backwards"))

    def __call__(self, x, training=False, **kwargs):
        result = self._real(x, training=training, **kwargs)
        if not self.triggered(self._config):
            return result
        outputs = [np.array(y) for y in _outputs(result)]
        first = outputs[0][:, 0] if outputs[0].ndim == 3 else outputs[0]
        first *= 1 + 1e-3
        return outputs if isinstance(result, list) else outputs[0]


LAYER_FAKES = {
    # fake: (layers whose fixtures replay it, the quantity the failure must name)
    FakeAccumulatedWeightGradients: (["dense", "batch_norm"], "grad:"),
    FakeStateCarriedBetweenCalls: (["gru"], "output:training"),
    FakeWrongSoftsignDerivative: (["activation"], "grad:input"),
    FakeNaiveSoftmax: (["activation"], "output:"),
    FakeWrongRowStride: (["dense"], "output:"),
    FakeStaleBatchSize: (["dense"], "output:"),
    FakeWrongAbove64Units: (["dense"], "output:"),
    FakeWrongWithGoBackwards: (["lstm"], "output:"),
}


def located_failures(text: str) -> set[str]:
    """The quantities a failure text reports with an element: `FAIL q (...): ... worst
    <location> [axis=i, ...]`, or a non-finite mismatch `q: non-finite ... first at (i, ...)`."""
    found = set()
    for line in text.splitlines():
        m = re.search(r"FAIL (.+?) \([\d, ]*\):.*worst .*\[\w+=\d+", line) or re.search(
            r"(\S+): non-finite values differ .*first at \(\d+", line
        )
        if m:
            found.add(m.group(1))
    return found


def assert_caught(text: str, quantity: str) -> None:
    assert any(q.startswith(quantity) for q in located_failures(text)), (
        f"no failure of {quantity}* with an element location in:\n{text}"
    )


def replay_text(run) -> str:
    return "\n".join(run.problems + [r.failure_message() for r in run.failed_cases])


@pytest.mark.parametrize("fake", list(LAYER_FAKES), ids=lambda f: f.__name__)
def test_replay_catches_a_planted_layer_fault(fake):
    """TF-free replay of the recorded layer and call-sequence fixtures fails, naming
    the quantity and the element."""
    from helpers import FIXTURES

    from parity.replay import replay

    layers, quantity = LAYER_FAKES[fake]
    run = replay(FIXTURES, layers=layers, backend=FakeLayerBackend(fake))
    assert not run.passed
    assert_caught(replay_text(run), quantity)
    if hasattr(fake, "triggered"):  # a fault of one option value: blamed on no other
        assert all(fake.triggered(r.case.config) for r in run.failed_cases)


def test_layer_fixtures_alone_catch_a_fault_above_64_units():
    from helpers import FIXTURES

    from parity.fixtures import load_manifest
    from parity.replay import replay_entry

    backend = FakeLayerBackend(FakeWrongAbove64Units)
    results = [replay_entry(FIXTURES, e, backend)[0] for e in load_manifest(FIXTURES)["cases"]]
    assert any(not r.passed for r in results)


# Faults only on the C API's on-device paths, which the plain binding call never
# takes: replay meets them through its variants (parity/variants.py), each failure
# named by its variant, and the plain path of every case still passes.


class FakeWrongOnInferenceHandle(FakeLayer):
    """Outputs off by 1e-3 relative on a handle created for inference only
    (CreateForInference); right on the training handle of the plain path."""

    inference_only = False

    def set_handle_options(self, **options):
        self.inference_only = options.get("inference_only", False)
        self._real.set_handle_options(**options)

    def __call__(self, x, training=False, **kwargs):
        result = self._real(x, training=training, **kwargs)
        if not self.inference_only:
            return result
        outputs = [np.array(y) for y in _outputs(result)]
        outputs[0] *= 1 + 1e-3
        return outputs if isinstance(result, list) else outputs[0]


class FakeWrongWithCapacity(FakeLayer):
    """Weight gradients off by 1e-3 relative when training capacity was reserved at
    creation (NNTKTrainingConfig max_batch > 0)."""

    reserved = False

    def set_handle_options(self, **options):
        self.reserved = options.get("max_batch", 0) > 0
        self._real.set_handle_options(**options)

    def backward(self, dy, **kwargs):
        result = list(self._real.backward(dy, **kwargs))
        if self.reserved:
            result[1] = [g * np.float32(1 + 1e-3) for g in result[1]]
        return tuple(result)


class FakeWrongWithoutInputGradient(FakeLayer):
    """Weight gradients off by 1e-3 relative when backward is not asked for the
    input gradient (d_in NULL)."""

    def backward(self, dy, **kwargs):
        result = list(self._real.backward(dy, **kwargs))
        if not kwargs.get("input_gradient", True):
            result[1] = [g * np.float32(1 + 1e-3) for g in result[1]]
        return tuple(result)


class FakeWrongWithoutFinalState(FakeLayer):
    """A recurrent output off by 1e-3 relative when the call is not asked for the
    final state (final_state NULL)."""

    def __call__(self, x, training=False, **kwargs):
        result = self._real(x, training=training, **kwargs)
        if kwargs.get("final_state", True):
            return result
        outputs = [np.array(y) for y in _outputs(result)]
        outputs[0] *= 1 + 1e-3
        return outputs if isinstance(result, list) else outputs[0]


class FakeWrongWhenSplit(FakeLayer):
    """Outputs off by 1e-3 relative while the library splits every loop it can
    (more than one thread, split_min_work 1), as a wrong split would make them."""

    def __call__(self, x, training=False, **kwargs):
        result = self._real(x, training=training, **kwargs)
        if nn.thread_count() == 1 or nn.split_min_work() > 1:
            return result
        outputs = [np.array(y) for y in _outputs(result)]
        with np.errstate(over="ignore"):  # the fixtures at float32's range edge: inf
            outputs[0] *= 1 + 1e-3
        return outputs if isinstance(result, list) else outputs[0]


VARIANT_FAKES = {
    # fake: (layers whose fixtures replay it, the variants that must catch it, the
    # quantity their failures must name)
    FakeWrongOnInferenceHandle: (
        ["dense", "batch_norm", "lstm"],
        {"inference handle"},
        "output:",
    ),
    FakeWrongWithCapacity: (["conv1d", "gru"], {"capacity 8x16", "capacity BxT"}, "grad:"),
    FakeWrongWithoutInputGradient: (["dense", "bidirectional"], {"no d_in"}, "grad:"),
    FakeWrongWithoutFinalState: (["rnn", "bidirectional"], {"no final state"}, "output:"),
    FakeWrongWhenSplit: (["activation", "dense", "gru"], {"2 threads, every split"}, "output:"),
}


@pytest.mark.parametrize("fake", list(VARIANT_FAKES), ids=lambda f: f.__name__)
def test_replay_catches_a_fault_only_on_an_on_device_path(fake):
    """Replay fails on every layer named, each failure a quantity of the faulty
    path's variant with its element; no plain-path quantity and no other variant
    fails. The call sequences of those layers fail in that variant too."""
    from helpers import FIXTURES

    from parity.replay import replay

    layers, variants, quantity = VARIANT_FAKES[fake]
    run = replay(FIXTURES, layers=layers, backend=FakeLayerBackend(fake))
    assert not run.passed
    assert {r.case.layer for r in run.failed_cases} == set(layers)
    failing = {c.quantity for r in run.failed_cases for c in r.comparisons if not c.passed}
    assert all(q.endswith(")") for q in failing), f"a plain-path quantity failed: {failing}"
    assert {q.rsplit(" (", 1)[1][:-1] for q in failing} == variants, failing
    located = located_failures("\n".join(r.failure_message() for r in run.failed_cases))
    for variant in variants:
        assert any(q.startswith(quantity) and q.endswith(f" ({variant})") for q in located), (
            f"no failure of {quantity}* ({variant}) with an element location in {located}"
        )
    # The recorded call sequences run the variants too (all but the call-sized capacity)
    sequences = located_failures("\n".join(run.problems))
    for variant in variants - {"capacity BxT"}:
        assert any(q.endswith(f" ({variant})") for q in sequences), (
            f"no call-sequence failure of ({variant}) with an element location in {run.problems}"
        )


def _live_case(spec_name: str, extra: dict | None = None, **config) -> Case:
    """The spec's base case with some options (and draws) changed: a live case."""
    spec = get_spec(spec_name)
    base = spec.base_case()
    config = spec.adjust_sweep_config({**base.config, **config})
    return replace(base, config=config, extra={**base.extra, **(extra or {})})


def _live_machine(spec_name: str, fake) -> str:
    """The CI sample of the call-sequence state machine, without shrinking: the
    failure text ('' if it passes)."""
    from hypothesis import Phase, settings
    from hypothesis.stateful import run_state_machine_as_test
    from test_stateful import machine_for, sample_settings

    quick = settings(sample_settings(), phases=[Phase.explicit, Phase.reuse, Phase.generate])
    try:
        run_state_machine_as_test(machine_for(get_spec(spec_name), fake), settings=quick)
    except AssertionError as exc:
        return str(exc)
    return ""


def _live_plan(spec_name: str, plan_name: str, fake) -> str:
    from parity.sequences import extra_plans, plans, run_plan

    spec = get_spec(spec_name)
    plan = next(p for p in plans(spec) + extra_plans(spec) if p.name == plan_name)
    try:
        run_plan(spec, plan, fake)
    except AssertionError as exc:
        return str(exc)
    return ""


def _live_run(spec_name: str, fake, extra: dict | None = None, **config) -> str:
    result = run_case(get_spec(spec_name), _live_case(spec_name, extra, **config), fake)
    return "" if result.passed else result.failure_message()


LIVE_GATE = {
    # fake: how the live gate meets it
    FakeAccumulatedWeightGradients: lambda b: _live_machine("dense", b),
    FakeStateCarriedBetweenCalls: lambda b: _live_run("gru", b, {"initial_state": False}),
    FakeWrongSoftsignDerivative: lambda b: _live_run("activation", b, activation="softsign"),
    FakeNaiveSoftmax: lambda b: _live_plan("activation", "softmax-large-logits", b),
    FakeWrongRowStride: lambda b: _live_run("dense", b),
    FakeStaleBatchSize: lambda b: _live_machine("dense", b),
    FakeWrongAbove64Units: lambda b: _live_plan("dense", "above-64-units", b),
    FakeWrongWithGoBackwards: lambda b: _live_run("lstm", b, go_backwards=True),
}


@pytest.mark.parametrize("fake", list(LIVE_GATE), ids=lambda f: f.__name__)
def test_live_gate_catches_a_planted_layer_fault(fake):
    assert LIVE_GATE[fake](None) == "", "the real library fails the live check itself"
    text = LIVE_GATE[fake](FakeLayerBackend(fake))
    assert text, f"{fake.__name__} got through the live gate"
    assert_caught(text, LAYER_FAKES[fake][1])


# Losses and optimizers: the fakes of tests/training_fakes.py, caught by the training
# fixtures' replay and by a live check against tf.keras with the suite's comparator.
def _located(comparison, names: tuple[str, ...]) -> str:
    index = comparison.worst_index or ()
    inside = ", ".join(f"{n}={i}" for n, i in zip(names[-len(index) :], index, strict=True))
    comparison.worst_location = f"{comparison.quantity} [{inside}]"
    return comparison.describe()


def _loss_check(loss) -> str:
    """CategoricalCrossentropy's d y_pred against tf.keras's float64 (and float32) tape."""
    from parity import reference
    from parity.compare import Tolerance, compare

    tf, keras = reference.tensorflow(), reference.keras()
    rng = np.random.default_rng(3)
    y_true = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (5, 3))]
    y_pred = rng.normal(0.0, 2.0, (5, 3, 4)).astype(np.float32)
    grads = {}
    for dtype in (np.float64, np.float32):
        pred = tf.constant(y_pred.astype(dtype))
        with tf.GradientTape() as tape:
            tape.watch(pred)
            value = keras.losses.CategoricalCrossentropy(from_logits=True)(
                tf.constant(y_true.astype(dtype)), pred
            )
        grads[dtype] = tape.gradient(value, pred).numpy()
    _, d_pred = loss.gradient(y_true, y_pred)
    tolerance = Tolerance(1e-5, 1e-4, reason="tests/test_losses_keras.py's ATOL, RTOL")
    c = compare("grad:y_pred", d_pred, grads[np.float64], grads[np.float32], tolerance)
    return "" if c.passed else _located(c, ("b", "t", "class"))


def test_replay_catches_a_loss_derivative_missing_one_over_batch():
    assert replay_with(FakeNN(losses=fake_losses(faulty=False)), ["loss"]).passed
    run = replay_with(FakeNN(losses=fake_losses(faulty=True)), ["loss"])
    assert_caught(replay_text(run), "grad:y_pred")


def test_live_check_catches_a_loss_derivative_missing_one_over_batch():
    import nntk_core as nn

    real = nn.losses.CategoricalCrossentropy(from_logits=True)
    assert _loss_check(real) == ""
    text = _loss_check(FakeLossMissingInverseBatch(real, faulty=True))
    assert_caught(text, "grad:y_pred")


def _adam_check(make) -> str:
    """Three Adam steps against tf.keras's Adam (nntk matches it bit for bit:
    tests/test_optimizers_keras.py); the first differing step and element."""
    from parity import reference
    from parity.compare import Tolerance, compare

    tf, keras = reference.tensorflow(), reference.keras()
    rng = np.random.default_rng(5)
    init = rng.standard_normal((3, 4)).astype(np.float32)
    var, k_var = init.copy(), tf.Variable(init)
    optimizer, k_optimizer = make(), keras.optimizers.Adam(learning_rate=0.01)
    tolerance = Tolerance(0.0, 1e-6, k=1.0, reason="bit for bit in the real library")
    for step in range(1, 4):
        grad = rng.standard_normal(init.shape).astype(np.float32)
        optimizer.apply_gradients([(grad, var)])
        k_optimizer.apply_gradients([(tf.constant(grad), k_var)])
        expected = k_var.numpy()
        c = compare(f"variable:kernel@step{step}", var, expected, expected, tolerance)
        if not c.passed:
            return _located(c, ("in", "unit"))
    return ""


def test_replay_catches_an_adam_bias_correction_off_by_one_step():
    assert replay_with(FakeNN(optimizers=fake_optimizers(0)), ["adam"]).passed
    run = replay_with(FakeNN(optimizers=fake_optimizers(1)), ["adam"])
    assert_caught(replay_text(run), "variable")


def test_live_check_catches_an_adam_bias_correction_off_by_one_step():
    import nntk_core as nn

    assert _adam_check(lambda: nn.optimizers.Adam(learning_rate=0.01)) == ""
    assert _adam_check(lambda: FakeAdamBiasCorrectionOffByOne(0, learning_rate=0.01)) == ""
    text = _adam_check(lambda: FakeAdamBiasCorrectionOffByOne(1, learning_rate=0.01))
    assert_caught(text, "variable:kernel@step1")
