"""Replay's on-device variants: each layer fixture's calls run again through the C
API paths the plain binding call never takes (docs/coverage.md, part B).

The plain path (parity.runner.NativeBackend) creates a training handle with no
reserved capacity, always asks for the input gradient and, for a recurrent layer,
always for the final state. An application on a device does otherwise: it runs an
inference-only handle, reserves its training workspace at creation, skips the input
gradient of its first layer and ignores the final state. Each variant below replays
the fixture's protocol (the spec's `run_native`, unchanged) on a layer handle created
or called that way (nntk_core.Layer.set_handle_options; backward(...,
input_gradient=False); a recurrent call's final_state=False), and every quantity it
produces is

- compared with the recorded tf.keras references under the spec's tolerances, as
  the plain path's is, and
- required to be bit for bit the plain path's result: a variant changes where the
  library keeps its workspace, what it leaves out and which handle runs, never the
  arithmetic.

The recorded call sequences run the variants too, each on a layer of its own in
lockstep with the sequence's plain layer (parity.sequence_sides.SequenceVariants).

A variant's comparisons join the case's, named `<quantity> (<variant>)` (e.g.
`output:inference (inference handle)`), so a failure names the variant, the
quantity and the element like any other replay failure.

Variants run on the real library (no backend given) and on a backend that builds
the layers it runs (`build_layer`: the harness self-test's fakes); a backend that
computes the quantities its own way has no handles to vary and runs none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

import nntk_core as nn
from parity import runner
from parity.case import Case
from parity.compare import Comparison, Tolerance, compare
from parity.runner import CaseResult

# A reserved capacity larger than most fixtures' calls and smaller than the long ones
# (rows B*T up to 8*16 = 128; T up to 16 for a recurrent cache): calls inside the
# reservation and calls that grow it.
FIXED_CAPACITY = (8, 16)


def _returned(result) -> list:
    """The arrays a call returned (an array, or a list of arrays)."""
    return result if isinstance(result, list) else [result]


class _WithKeywords:
    """The layer, with keywords added to every call and to backward."""

    def __init__(self, layer, call: dict | None = None, backward: dict | None = None):
        self._layer, self._call, self._backward = layer, call or {}, backward or {}

    def __getattr__(self, name):
        return getattr(self._layer, name)

    def __call__(self, x, training=False, **kwargs):
        return self._layer(x, training=training, **kwargs, **self._call)

    def backward(self, dy):
        return self._layer.backward(dy, **self._backward)


class _InferenceTwin:
    """An inference-only handle next to a training twin (the plain path): each
    inference call runs on the inference handle, given the twin's current weights
    first (BatchNorm's moving statistics move with its training calls); the
    training calls and backward run on the twin. `produced`: the arrays the
    inference handle returned."""

    def __init__(self, twin, inference):
        self._twin, self._inference = twin, inference
        self.produced: list = []

    def __getattr__(self, name):
        return getattr(self._twin, name)

    def __call__(self, x, training=False, **kwargs):
        result = self._twin(x, training=training, **kwargs)
        if training:
            return result
        self._inference.set_weights(self._twin.get_weights())
        result = self._inference(x, training=False, **kwargs)
        self.produced += _returned(result)
        return result


@dataclass(frozen=True)
class Variant:
    """One way of creating or calling the layer handle: its name in reports,
    `make(build, case)` the layer the fixture's protocol drives (`build()` makes one
    more nntk layer of the case), the configs it applies to, whether it runs the
    recorded call sequences too. `inference`: an inference-only handle, which runs
    only the inference calls (next to a training twin, or to the sequence's plain layer)."""

    name: str
    make: Callable[[Callable[[], Any], Case], Any]
    applies: Callable[[dict], bool] = lambda config: True
    in_sequences: bool = True
    inference: bool = False
    # the library's process-wide setting the variant's calls run under
    setting: Callable[[], AbstractContextManager] = nullcontext


def _inference_layer(build, case):
    layer = build()
    layer.set_handle_options(inference_only=True)
    return layer


def _with_capacity(size: Callable[[Case], tuple[int, int]]):
    def make(build, case):
        layer = build()
        max_batch, max_steps = size(case)
        layer.set_handle_options(max_batch=max_batch, max_steps=max_steps)
        return layer

    return make


# The pool's threads in the "every split" variant: two parts per split loop.
SPLIT_THREADS = 2


@contextmanager
def _every_split() -> Iterator[None]:
    """SPLIT_THREADS threads, and every loop the pool can split split
    (NNTKSetSplitMinWork 1, docs/threads.md): the fixtures' small calls take the
    split paths a default split leaves to calls of 2^18 multiply-adds and more. The
    process's settings are restored after."""
    threads, min_work = nn.thread_count(), nn.split_min_work()
    nn.set_thread_count(SPLIT_THREADS)
    nn.set_split_min_work(1)
    try:
        # A library that accepted the settings but runs without them would pass the
        # bitwise checks trivially.
        now = (nn.thread_count(), nn.split_min_work())
        if now != (SPLIT_THREADS, 1):
            raise RuntimeError(
                f"the library reports {now[0]} threads and split_min_work {now[1]} "
                f"after being set to {SPLIT_THREADS} and 1"
            )
        yield
    finally:
        nn.set_split_min_work(min_work)
        nn.set_thread_count(threads)


VARIANTS: list[Variant] = [
    Variant("inference handle", _inference_layer, inference=True),
    Variant(
        f"capacity {FIXED_CAPACITY[0]}x{FIXED_CAPACITY[1]}",
        _with_capacity(lambda case: FIXED_CAPACITY),
    ),
    # The call's own size, for the layer fixtures (a sequence's calls change size); a
    # (batch, features) input reserves max_steps 0 (one step).
    Variant(
        "capacity BxT",
        _with_capacity(lambda case: (case.batch, case.steps if case.rank == 3 else 0)),
        in_sequences=False,
    ),
    # backward returns None for the input gradient it was not asked for
    Variant(
        "no d_in", lambda build, case: _WithKeywords(build(), backward={"input_gradient": False})
    ),
    # A recurrent call that does not return its states need not compute them.
    Variant(
        "no final state",
        lambda build, case: _WithKeywords(build(), call={"final_state": False}),
        lambda config: config.get("return_state") is False,
    ),
    # Every split loop in SPLIT_THREADS parts: the thread count never changes a bit.
    Variant(
        f"{SPLIT_THREADS} threads, every split", lambda build, case: build(), setting=_every_split
    ),
]


def _produced_by(variant: Variant, spec, case, data, build) -> dict[str, Any]:
    """The quantities `variant` produces for a layer fixture's case."""
    layer = variant.make(build, case)
    if variant.inference:
        driven = _InferenceTwin(build(), layer)
        quantities = runner.drive(spec, driven, data)
        # Only what the inference handle returned: the rest is the twin's (the plain path).
        return {k: v for k, v in quantities.items() if any(v is mine for mine in driven.produced)}
    return {k: v for k, v in runner.drive(spec, layer, data).items() if v is not None}


def runs_variants(backend) -> bool:
    """Whether `backend` has layer handles to vary: the real library (None) or a
    backend that builds the layers it runs."""
    return backend is None or hasattr(backend, "build_layer")


def check_case(spec, case, data, float64, float32, backend=None, keep_arrays=False) -> CaseResult:
    """runner.check_case (the plain path; the same arguments), then every variant that
    applies to the case (when the backend has handles to vary), each one's comparisons
    added to the case's."""
    result = runner.check_case(spec, case, data, float64, float32, backend, keep_arrays=True)
    if not result.error and runs_variants(backend):
        plain = result.arrays[2]
        for variant in VARIANTS:
            if variant.applies(case.config):
                result.comparisons += check_variant(
                    variant, spec, case, data, float64, float32, plain, backend
                )
    if not keep_arrays:
        result.arrays = None
    return result


def check_variant(
    variant: Variant, spec, case, data, float64, float32, plain, backend
) -> list[Comparison]:
    """One variant's comparisons for a case: each quantity it produced, against the
    references (spec tolerances) and bit for bit against the plain path's `plain`."""
    layers = []

    def build():
        layers.append(runner.native_layer(backend, spec, case.config))
        return layers[-1]

    try:
        with variant.setting():
            produced = _produced_by(variant, spec, case, data, build)
    except Exception as exc:  # a native error fails the variant, reported as such
        return [failed(variant, f"the native side raised: {type(exc).__name__}: {exc}")]
    finally:
        for layer in layers:
            layer.close()
    if not produced:
        return [failed(variant, "produced no quantity")]
    return compare_produced(variant, spec, case, produced, float64, float32, plain)


def compare_produced(variant: Variant, spec, case, produced, float64, float32, plain):
    """The comparisons of what a variant produced: with the references (the spec's
    tolerances) and bit for bit with the plain path's quantities `plain`."""
    comparisons = []
    for quantity, value in sorted(produced.items()):
        value = np.asarray(value)
        if quantity not in float64:
            comparisons.append(
                failed(variant, f"{quantity}: produced by the variant but not by tf.keras")
            )
            continue
        c = compare(quantity, value, float64[quantity], float32[quantity], spec.tolerance(quantity))
        if c.worst_index is not None:
            c.worst_location = spec.locate(quantity, c.worst_index, case.config)
        if c.passed:
            differs = _bit_difference(value, plain.get(quantity))
            if differs is not None:
                c.passed = False
                c.problem = (
                    differs
                    if isinstance(differs, str)
                    else f"not bit for bit the plain path's nntk result: first at "
                    f"{spec.locate(quantity, differs, case.config)}: {variant.name} "
                    f"{value[differs]!r}, plain {plain[quantity][differs]!r}"
                )
        c.quantity = f"{quantity} ({variant.name})"
        comparisons.append(c)
    return comparisons


def _bit_difference(value: np.ndarray, plain) -> tuple[int, ...] | str | None:
    """None when `value` is bit for bit `plain`; else the first element whose bits
    differ, or why they cannot be compared element by element."""
    if plain is None:
        return "the plain path did not produce this quantity"
    plain = np.asarray(plain)
    if value.dtype != plain.dtype or value.shape != plain.shape:
        return f"{value.dtype} {value.shape} where the plain path has {plain.dtype} {plain.shape}"
    # The raw bits: -0.0 is not 0.0 and NaN is NaN only if its payload matches.
    bits = f"u{value.itemsize}"
    where = np.argwhere(value.view(bits) != plain.view(bits))
    return tuple(int(i) for i in where[0]) if len(where) else None


def failed(variant: Variant, problem: str) -> Comparison:
    """A comparison that failed before any number was compared."""
    c = compare(f"({variant.name})", None, np.zeros(0), np.zeros(0), Tolerance(0.0, 0.0))
    c.problem = problem
    return c
