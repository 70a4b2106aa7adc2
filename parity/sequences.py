"""Call sequences: one nntk layer and its tf.keras twin driven through the same
sequence of calls, every step compared (issue 12 §3).

A layer case (parity/runner.py) runs one fresh layer through a fixed protocol.
Real use is a long-lived layer: training calls at changing batch sizes and lengths,
inference calls in between, backward after either, new weights from an optimizer,
initial states, and (recurrent layers) a live input streamed chunk by chunk. A bug
that lives in what a layer keeps between calls (a cached row count, an accumulated
gradient, a carried state) passes every layer case and fails here.

An `Op` is one call on the layer:

- `set_weights`: the weights in `data.weights` (tf.keras get_weights() order);
- `call`: `layer(data.x, training=...)`, with `initial_state=data.states` when
  `state == "given"` (recurrent layers);
- `stream`: `layer.stream(data.x, state)` (RNN, GRU, LSTM) from zeros (`none`), from
  `data.states` (`given`) or from the state the previous stream call returned
  (`carried`); the tf.keras twin computes `layer(chunk, initial_state=state)`;
- `backward`: `layer.backward(data.upstream)`, the gradients of the last call that
  keeps what backward needs (nntk's rule: the last training call; BatchNorm: the
  last call, in its mode); tf.keras differentiates that call's recorded tape.

`LiveSequence` runs ops on the nntk layer and on its tf.keras twin in float64 (the
referee) and float32, and compares every step's outputs, states and gradients with
the spec's declared tolerances (parity.runner.compare_quantities, the suite's
comparator). tests/test_stateful.py drives it with hypothesis's rule-based state
machines; `record` stores representative sequences as fixtures, which
`nntk-parity replay` checks without TensorFlow (`replay_sequences`).

The fixtures live in `<fixture dir>/sequences/`, one `.npz` per step in the format
of parity/fixtures.py (the op's inputs as CaseData, the step's float64 and float32
references), with their own `manifest.json` (sha256 per file, the step's sequence
and index). A step's id is self-contained: the layer, config, input rank and
sequence name, then the step's index and op.

    python -m parity.sequences record [--out fixtures]      # TensorFlow
    python -m parity.sequences replay [--fixtures fixtures] # no TensorFlow
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import numpy as np

from parity import variants
from parity.compare import Comparison
from parity.fixtures import (
    FORMAT,
    Fixture,
    FixtureError,
    entry_problem,
    environment,
    fixture_bytes,
    fixture_stem,
    load_manifest,
    read_entry,
    sha256_file,
    write_bytes,
    write_manifest,
)
from parity.reference import CaseData
from parity.runner import compare_quantities, native_layer
from parity.spec import Case, LayerSpec, float32_range

SEQUENCES_DIR = "sequences"  # under the fixture directory
MAX_TOTAL_BYTES = 2 * 2**20  # the committed sequence set (the wide layers' gradients dominate)
OPS = ("set_weights", "call", "stream", "backward")
STATES = ("none", "given", "carried")
# Streamed chunks carried from one to the next add up to one long sequence; every
# recurrent config's tolerance covers at least 16 steps (recurrent_spec.py: the
# "wild" configs are drawn up to T = 16), so a carried stream stops there.
MAX_STREAM_STEPS = 16
_EMPTY = np.zeros(0, np.float32)


# -- what a layer can do ------------------------------------------------------------------
def is_recurrent(spec: LayerSpec) -> bool:
    from parity.recurrent_spec import RecurrentSpec

    return isinstance(spec, RecurrentSpec)


def can_stream(spec: LayerSpec) -> bool:
    """RNN, GRU and LSTM stream; Bidirectional cannot (its backward direction needs
    the whole sequence: nntk_core/bidirectional.py)."""
    import nntk_core

    cls = getattr(nntk_core, spec.layer_class)
    return (
        issubclass(cls, nntk_core.recurrent.RecurrentLayer) and cls is not nntk_core.Bidirectional
    )


def output_names(spec: LayerSpec, layer, count: int) -> list[str]:
    """Names of what a call returns (a Keras or an nntk layer)."""
    if is_recurrent(spec):
        return spec.output_names_of(layer)
    return spec.output_names({}, count)


# -- one op --------------------------------------------------------------------------------
@dataclass
class Op:
    kind: str  # one of OPS
    data: CaseData  # what the op is given (the fields it uses; the rest empty)
    training: bool = False  # call
    state: str = "none"  # call / stream: where the initial state comes from (STATES)

    def __post_init__(self):
        if self.kind not in OPS or self.state not in STATES:
            raise ValueError(f"not an op: kind={self.kind!r}, state={self.state!r}")

    def describe(self) -> str:
        if self.kind == "set_weights":
            return "set_weights(new weights)"
        if self.kind == "backward":
            return f"backward(dy {', '.join(str(u.shape) for u in self.data.upstream)})"
        state = {
            "none": "",
            "given": ", initial_state=given",
            "carried": ", state=the previous stream call's",
        }[self.state]
        if self.kind == "stream":
            return f"stream(chunk {self.data.x.shape}{state})"
        return f"layer(x {self.data.x.shape}, training={self.training}{state})"

    def given_states(self) -> list[np.ndarray] | None:
        return list(self.data.states) if self.state == "given" else None


# -- the two sides ---------------------------------------------------------------------------
class KerasSide:
    """The tf.keras twin in one dtype, kept across the ops of a sequence."""

    def __init__(self, spec: LayerSpec, config: dict, rank: int, dtype: str):
        from parity import reference

        self.tf = reference.tensorflow()
        keras = reference.keras()
        self.spec = spec
        self.dtype = np.float64 if dtype == "float64" else np.float32
        input_shape = (None,) * (rank - 1) + (spec.input_features(config),)
        self.layer = spec.build_keras(keras, config, dtype, input_shape)
        # A stream call returns the state whatever the layer's return_state: its twin
        # returns it too (the weights are copied over at each stream call).
        self.streamer = (
            spec.build_keras(keras, {**config, "return_state": True}, dtype, input_shape)
            if can_stream(spec)
            else None
        )
        self.pending = None  # (tape, sources, outputs) of the call backward refers to
        self.stream_state = None

    def _const(self, a):
        return self.tf.constant(np.asarray(a, self.dtype))

    def apply(self, op: Op, keeps: bool) -> dict[str, np.ndarray]:
        tf, spec = self.tf, self.spec
        if op.kind == "set_weights":
            self.layer.set_weights([np.asarray(w, self.dtype) for w in op.data.weights])
            return {}
        if op.kind == "backward":
            tape, sources, outputs = self.pending
            trainable = list(self.layer.trainable_weights)
            grads = tape.gradient(
                outputs,
                sources + trainable,
                output_gradients=[self._const(u) for u in op.data.upstream],
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
            n_init = len(sources) - 1
            quantities = {"grad:input": grads[0]}
            if n_init:
                names = spec.state_names_of(self.layer, "initial")
                quantities.update(
                    {f"grad:{n}": g for n, g in zip(names, grads[1 : 1 + n_init], strict=True)}
                )
            names = spec.weight_names_of(trainable)
            quantities.update(
                {f"grad:{n}": g for n, g in zip(names, grads[1 + n_init :], strict=True)}
            )
            return {k: np.asarray(v) for k, v in quantities.items()}
        x = self._const(op.data.x)
        if op.kind == "stream":
            initial = {
                "none": None,
                "given": [self._const(s) for s in op.data.states],
                "carried": self.stream_state,
            }[op.state]
            self.streamer.set_weights(self.layer.get_weights())
            outputs = tf.nest.flatten(self.streamer(x, initial_state=initial, training=False))
            self.stream_state = outputs[-len(spec.state_names_of(self.streamer, "state")) :]
            names = spec.output_names_of(self.streamer)
            return {f"{n}:stream": np.asarray(y) for n, y in zip(names, outputs, strict=True)}
        initial = [self._const(s) for s in op.given_states() or []]
        kwargs = {"initial_state": initial or None} if is_recurrent(spec) else {}
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            for s in initial:
                tape.watch(s)
            outputs = tf.nest.flatten(self.layer(x, training=op.training, **kwargs))
        if keeps:
            self.pending = (tape, [x, *initial], outputs)
        mode = "training" if op.training else "inference"
        names = output_names(spec, self.layer, len(outputs))
        quantities = {f"{n}:{mode}": np.asarray(y) for n, y in zip(names, outputs, strict=False)}
        variables = self.layer.non_trainable_weights
        for name, var in zip(spec.weight_names_of(variables), variables, strict=True):
            # Stored as float32 between calls, as nntk and Keras float32 store them
            # (BatchNormSpec._store_state_as_float32 gives the reason).
            var.assign(tf.cast(tf.cast(var, tf.float32), var.dtype))
            quantities[f"state:{name}"] = var.numpy()
        return quantities


class NativeSide:
    """The nntk layer (or a fake wrapping it), kept across the ops of a sequence."""

    def __init__(self, spec: LayerSpec, layer):
        self.spec = spec
        self.layer = layer
        # Keras names, from the set_weights op; before one (a sequence that starts from
        # the layer's initial weights), the layer's own names (Keras's too).
        names = getattr(layer, "weight_names", None)
        self.weight_names: list[str] = list(names()) if callable(names) else []
        self.stream_state = None

    def keeps_for_backward(self, op: Op) -> bool:
        """Whether backward will refer to this call (nntk's documented rule)."""
        return op.kind == "call" and self.layer._keeps_for_backward(op.training)

    def apply(self, op: Op) -> dict[str, np.ndarray]:
        spec, layer = self.spec, self.layer
        if op.kind == "set_weights":
            layer.set_weights(op.data.weights)
            self.weight_names = list(op.data.weight_names)
            return {}
        if op.kind == "backward":
            upstream = list(op.data.upstream)
            result = layer.backward(upstream if len(upstream) > 1 else upstream[0])
            quantities = {"grad:input": result[0]}
            mask = layer.trainable_mask()
            trainable = [n for n, t in zip(self.weight_names, mask, strict=True) if t]
            quantities.update({f"grad:{n}": g for n, g in zip(trainable, result[1], strict=True)})
            if len(result) > 2:  # the call had an initial state
                names = spec.state_names_of(layer, "initial")
                quantities.update({f"grad:{n}": g for n, g in zip(names, result[2], strict=True)})
            return quantities
        if op.kind == "stream":
            state = self.stream_state if op.state == "carried" else op.given_states()
            out, self.stream_state = layer.stream(op.data.x, state)
            outputs = [*(out if isinstance(out, list) else [out]), *self.stream_state]
            names = spec.output_names_of(layer)
            return {f"{n}:stream": y for n, y in zip(names, outputs, strict=True)}
        kwargs = {"initial_state": op.given_states()} if is_recurrent(spec) else {}
        out = layer(op.data.x, training=op.training, **kwargs)
        outputs = out if isinstance(out, list) else [out]
        mode = "training" if op.training else "inference"
        names = output_names(spec, layer, len(outputs))
        quantities = {f"{n}:{mode}": y for n, y in zip(names, outputs, strict=False)}
        weights = layer.get_weights()
        for name, value, t in zip(self.weight_names, weights, layer.trainable_mask(), strict=True):
            if not t:
                quantities[f"state:{name}"] = value
        return quantities


class SequenceVariants:
    """The on-device variants of one recorded call sequence (parity/variants.py), each a
    layer of its own driven in lockstep with the sequence's plain layer: every op on
    every variant (an inference handle: the set_weights, inference calls and streams,
    each call given the plain layer's current weights first), what it returns
    compared like a layer fixture's variant."""

    def __init__(self, spec, config: dict, backend, plain_layer):
        self.spec, self.plain = spec, plain_layer
        self.layers: list = []
        self.sides: list[tuple[variants.Variant, NativeSide]] = []
        if not variants.runs_variants(backend):
            return

        def build():
            self.layers.append(native_layer(backend, spec, config))
            return self.layers[-1]

        for variant in variants.VARIANTS:
            if variant.in_sequences and variant.applies(config):
                self.sides.append((variant, NativeSide(spec, variant.make(build, None))))

    def check(self, op, case, float64, float32, plain) -> list[Comparison]:
        """Runs `op` on every variant; the comparisons of what each returned."""
        comparisons = []
        for variant, side in self.sides:
            if variant.inference:
                if op.kind == "backward" or (op.kind == "call" and op.training):
                    continue
                if op.kind != "set_weights":
                    side.layer.set_weights(self.plain.get_weights())
            try:
                produced = {k: v for k, v in side.apply(op).items() if v is not None}
            except Exception as exc:  # a native error fails the variant, reported as such
                comparisons.append(
                    variants.failed(variant, f"the native side raised: {type(exc).__name__}: {exc}")
                )
                continue
            if produced:
                comparisons += variants.compare_produced(
                    variant, self.spec, case, produced, float64, float32, plain
                )
        return comparisons

    def close(self) -> None:
        for layer in self.layers:
            if hasattr(layer, "close"):
                layer.close()


# -- one step's verdict ----------------------------------------------------------------------
@dataclass
class StepResult:
    sequence: str  # the sequence's description
    index: int  # 1-based
    op: Op
    comparisons: list[Comparison] = field(default_factory=list)
    error: str = ""  # the native side raised
    history: list[str] = field(default_factory=list)  # the ops before this one
    native: dict = field(default_factory=dict, repr=False)  # what the native side returned
    case: Case | None = None  # the op's shape, for locating an element

    @property
    def passed(self) -> bool:
        return not self.error and all(c.passed for c in self.comparisons)

    def failure_message(self) -> str:
        lines = [
            f"call-sequence failure: {self.sequence}",
            f"  step {self.index}: {self.op.describe()}",
        ]
        if self.history:
            lines.append("  after: " + "; ".join(self.history))
        if self.error:
            lines.append(f"  the native side raised: {self.error}")
        lines += ["  " + c.describe() for c in self.comparisons if not c.passed]
        return "\n".join(lines)


def check_step(
    spec: LayerSpec,
    config: dict,
    description: str,
    index: int,
    op: Op,
    native: NativeSide,
    float64: dict[str, np.ndarray],
    float32: dict[str, np.ndarray],
    history: list[str],
) -> StepResult:
    """Runs `op` on the native side and compares with the step's references."""
    result = StepResult(description, index, op, history=list(history))
    try:
        quantities = {k: np.asarray(v) for k, v in native.apply(op).items()}
    except Exception as exc:  # a native error fails the step, reported as such
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    batch = op.data.x.shape[0] if op.data.x.size else 1
    steps = op.data.x.shape[1] if op.data.x.ndim == 3 else 1
    case = Case(spec.name, config, batch, steps, max(op.data.x.ndim, 2), 0)  # for locate()
    result.comparisons = compare_quantities(spec, case, float64, float32, quantities)
    result.native, result.case = quantities, case
    return result


# -- identities ------------------------------------------------------------------------------
SEQUENCE_FIELDS = ("rank", "name", "step", "op", "training", "state")  # not config options


def sequence_id(layer: str, config: dict, rank: int, name: str) -> str:
    """`gru?activation=%22tanh%22&...&rank=3&name=batch-change`, like a Case id."""
    fields = {k: json.dumps(v) for k, v in sorted(config.items())}
    fields.update(rank=rank, name=name)
    return f"{layer}?{urlencode(fields, safe=':,[]')}"


def step_id(seq_id: str, index: int, op: Op) -> str:
    fields = {"step": index, "op": op.kind, "training": int(op.training), "state": op.state}
    return f"{seq_id}&{urlencode(fields)}"


def parse_step_id(step: str) -> tuple[str, dict, int, str, int, Op]:
    """(layer, config, rank, sequence name, step index, op without data) of a step id."""
    layer, _, query = step.partition("?")
    try:
        f = dict(parse_qsl(query, strict_parsing=True))
        config = {k: json.loads(v) for k, v in f.items() if k not in SEQUENCE_FIELDS}
        op = Op(f["op"], CaseData([], [], _EMPTY, []), bool(int(f["training"])), f["state"])
        return layer, config, int(f["rank"]), f["name"], int(f["step"]), op
    except (KeyError, ValueError) as exc:
        raise ValueError(f"not a call-sequence step id: {step!r} ({exc})") from None


# -- the live run ----------------------------------------------------------------------------
@dataclass
class Step:
    op: Op
    float64: dict[str, np.ndarray]
    float32: dict[str, np.ndarray]


class SequenceFailure(AssertionError):
    """A step of a live sequence failed (the message names the step, quantity and element)."""


class LiveSequence:
    """An nntk layer and its tf.keras twin (float64 referee and float32) driven
    through the same ops; `run` compares every step and raises SequenceFailure on
    the first that fails. The draw helpers make ops from seeds, with the spec's own
    data draws (parity.reference.draw_case_data)."""

    def __init__(
        self, spec: LayerSpec, config: dict, rank: int, scale: str, name: str = "", backend=None
    ):
        self.spec, self.config, self.rank, self.scale = spec, config, rank, scale
        self.name = name
        self.keras64 = KerasSide(spec, config, rank, "float64")
        self.keras32 = KerasSide(spec, config, rank, "float32")
        self.native = NativeSide(spec, native_layer(backend, spec, config))
        self.steps: list[Step] = []
        self.pending_shapes: list[tuple[int, ...]] | None = None  # backward's dy shapes
        self.stream_batch = 0  # batch of the carried stream state (0: none)
        self.streamed = 0  # steps streamed since the stream state was last reset
        self.input_scale = 1.0  # multiplies every call's drawn input

    @property
    def description(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"{self.spec.name}{name} {self.config} (rank {self.rank}, {self.scale} weights)"

    def close(self) -> None:
        close = getattr(self.native.layer, "close", None)
        if close is not None:
            close()

    # -- running -----------------------------------------------------------------------------
    def run(self, op: Op) -> StepResult:
        keeps = self.native.keeps_for_backward(op)
        float64 = float32_range(self.keras64.apply(op, keeps))
        float32 = self.keras32.apply(op, keeps)
        history = [s.op.describe() for s in self.steps]
        result = check_step(
            self.spec,
            self.config,
            self.description,
            len(self.steps) + 1,
            op,
            self.native,
            float64,
            float32,
            history,
        )
        self.steps.append(Step(op, float64, float32))
        if keeps:
            mode = "training" if op.training else "inference"
            self.pending_shapes = [v.shape for k, v in float64.items() if k.endswith(f":{mode}")]
            # (state:* quantities are not outputs; none of them ends in the mode)
        if op.kind == "set_weights":
            # tf.keras differentiates a call at the weights it ran with; nntk's backward
            # after set_weights is not defined by the API: a new call comes first.
            self.pending_shapes = None
        if op.kind == "stream":
            self.stream_batch = op.data.x.shape[0]
            self.streamed = (self.streamed if op.state == "carried" else 0) + op.data.x.shape[1]
        if not result.passed:
            raise SequenceFailure(result.failure_message())
        return result

    # -- drawing ops -------------------------------------------------------------------------
    def _case(self, seed: int, batch: int = 1, steps: int = 1, extra: dict | None = None) -> Case:
        steps = steps if self.rank == 3 else 1
        return Case(
            self.spec.name, self.config, batch, steps, self.rank, seed, self.scale, extra or {}
        )

    def set_weights(self, seed: int) -> StepResult:
        from parity import reference

        # (the input drawn with the weights is not used: any valid length will do)
        case = self._case(seed, steps=self.spec.sweep_steps(self.config))
        data = reference.draw_case_data(self.spec, case)
        op = Op("set_weights", CaseData(data.weight_names, data.weights, _EMPTY, []))
        return self.run(op)

    def _inputs(self, seed, batch, steps, with_state, input_scale, extra):
        from parity import reference

        extra = {**(extra or {}), "initial_state": with_state} if is_recurrent(self.spec) else extra
        data = reference.draw_case_data(self.spec, self._case(seed, batch, steps, extra))
        x = self.spec.call_input(data.x) * np.float32(input_scale)
        states = data.states if with_state and is_recurrent(self.spec) else []
        return x, states

    def call(
        self,
        seed: int,
        batch: int,
        steps: int,
        training: bool,
        with_state: bool = False,
        extra: dict | None = None,
    ) -> StepResult:
        x, states = self._inputs(seed, batch, steps, with_state, self.input_scale, extra)
        data = CaseData([], [], x, [], states)
        return self.run(Op("call", data, training, "given" if states else "none"))

    def can_carry(self, batch: int, steps: int) -> bool:
        return self.stream_batch == batch and self.streamed + steps <= MAX_STREAM_STEPS

    def stream(
        self, seed: int, batch: int, steps: int, state: str, extra: dict | None = None
    ) -> StepResult:
        if state == "carried" and not self.can_carry(batch, steps):
            raise ValueError(f"cannot carry the stream state into a chunk ({batch}, {steps})")
        x, states = self._inputs(seed, batch, steps, state == "given", 1.0, extra)
        return self.run(Op("stream", CaseData([], [], x, [], states), False, state))

    def backward(self, seed: int) -> StepResult:
        if self.pending_shapes is None:
            raise ValueError("no call for backward to refer to")
        rng = np.random.default_rng(seed)
        upstream = [rng.standard_normal(s).astype(np.float32) for s in self.pending_shapes]
        return self.run(Op("backward", CaseData([], [], _EMPTY, upstream)))


# -- representative sequences (recorded as fixtures) -------------------------------------------
def _first_length(spec: LayerSpec, config: dict) -> int:
    """A valid sequence length for every call of a plan: the spec's sweep length."""
    return spec.sweep_steps(config)


def plan_batch_change(seq: LiveSequence) -> None:
    """Training calls at batch 3, 1 (long: the batch-1 paths), 4, 2 with backward after
    each, a second backward of the same call (accumulation), an inference call at
    another batch and then backward (a stale cached row count; backward after
    inference), and a call with an initial state (recurrent)."""
    t = _first_length(seq.spec, seq.config)
    seq.set_weights(11)
    seq.call(12, batch=3, steps=t, training=True)
    seq.backward(13)
    seq.call(14, batch=1, steps=t + 4, training=True)
    seq.backward(15)
    seq.backward(16)
    seq.call(17, batch=4, steps=t + 1, training=False)
    seq.backward(18)
    seq.call(19, batch=2, steps=t + 2, training=True, with_state=True)
    seq.backward(20)
    seq.call(21, batch=2, steps=t, training=False)


def plan_weights_and_streams(seq: LiveSequence) -> None:
    """New weights between calls (an optimizer's step), inference with and without an
    initial state, and (RNN, GRU, LSTM) a stream in chunks, a training call between
    two chunks and backward after a chunk."""
    t = _first_length(seq.spec, seq.config)
    seq.set_weights(31)
    seq.call(32, batch=2, steps=t, training=False)
    seq.set_weights(33)
    seq.call(34, batch=1, steps=t + 4, training=True)
    seq.backward(35)
    if can_stream(seq.spec):
        seq.stream(36, batch=2, steps=3, state="none")
        seq.stream(37, batch=2, steps=1, state="carried")
        seq.call(38, batch=3, steps=t, training=True, with_state=True)
        seq.stream(39, batch=2, steps=4, state="carried")
        seq.backward(40)
        seq.stream(41, batch=1, steps=2, state="given")
        seq.stream(42, batch=1, steps=5, state="carried")
    seq.call(43, batch=3, steps=t + 1, training=False, with_state=True)


def plan_wide(seq: LiveSequence) -> None:
    """A short plan for wide layers (their fixtures are large): a training call and
    backward, then inference at batch 1 (long) and at batch 3 with an initial state."""
    t = _first_length(seq.spec, seq.config)
    seq.set_weights(51)
    seq.call(52, batch=2, steps=t, training=True)
    seq.backward(53)
    seq.call(54, batch=1, steps=t + 4, training=False)
    seq.call(55, batch=3, steps=t, training=False, with_state=True)


@dataclass(frozen=True)
class Plan:
    name: str
    run: Callable[[LiveSequence], None]
    config: dict = field(default_factory=dict)  # overrides of the spec's base config
    input_scale: float = 1.0


def plans(spec: LayerSpec) -> list[Plan]:
    """The recorded sequences of a spec: both plans on its base config; recurrent
    layers also without bias, going backwards and returning states; and one above
    64 units or filters (65: the first column of a second 64-wide block), where a
    layer has them."""
    out = [
        Plan("batch-change", plan_batch_change),
        Plan("weights-streams", plan_weights_and_streams),
    ]
    if is_recurrent(spec):
        variant = {"use_bias": False, "go_backwards": True, "return_state": True}
        out.append(Plan("weights-streams-backwards", plan_weights_and_streams, variant))
    width = next((k for k in ("units", "filters") if k in spec.base_config), None)
    if width and spec.name != "bidirectional":  # (its inner layers are the recurrent specs')
        out.append(Plan("above-64-units", plan_wide, {width: 65, "input_dim": 3}))
    return out


def plan_initial_weights(seq: LiveSequence) -> None:
    """The layer as created, no set_weights: inference, a training call (which moves
    the moving statistics) and backward, inference again."""
    t = _first_length(seq.spec, seq.config)
    seq.call(61, batch=2, steps=t, training=False)
    seq.call(62, batch=3, steps=t, training=True)
    seq.backward(63)
    seq.call(64, batch=2, steps=t, training=False)


def extra_plans(spec: LayerSpec) -> list[Plan]:
    """Sequences for faults the other plans miss: softmax on logits spread far beyond
    exp's float32 range (a formula without the max subtracted overflows); BatchNorm's
    initial weights, which the C library sets (tf.keras's fixed gamma 1, beta 0,
    moving mean 0, moving variance 1; every other plan replaces them first)."""
    if spec.name == "batch_norm":
        return [Plan("initial-weights", plan_initial_weights)]
    if spec.name == "activation":
        return [
            Plan(
                "softmax-large-logits",
                plan_batch_change,
                {"activation": "softmax", "input_dim": 5},
                input_scale=30.0,
            )
        ]
    return []


def run_plan(spec: LayerSpec, plan: Plan, backend=None) -> LiveSequence:
    config = spec.adjust_sweep_config({**spec.base_config, **plan.config})
    seq = LiveSequence(spec, config, spec.ranks[-1], "realistic", plan.name, backend)
    seq.input_scale = plan.input_scale
    try:
        plan.run(seq)
    finally:
        seq.close()
    return seq


# -- fixtures --------------------------------------------------------------------------------
def record(directory: Path, specs: list[LayerSpec] | None = None, on_sequence=None) -> dict:
    """Records every spec's plans into `directory`/sequences (TensorFlow); a step that
    fails live is an error (fix the library first, then record)."""
    from parity.record import versions
    from parity.settings import apply
    from parity.specs import all_specs

    out = Path(directory) / SEQUENCES_DIR
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for spec in specs or all_specs():
        for plan in plans(spec) + extra_plans(spec):
            seq = run_plan(spec, plan)
            seq_id = sequence_id(spec.name, seq.config, seq.rank, plan.name)
            for index, step in enumerate(seq.steps, start=1):
                case_id = step_id(seq_id, index, step.op)
                fixture = Fixture(
                    case_id, spec.name, "sequence", step.op.data, step.float64, step.float32
                )
                content = fixture_bytes(fixture)
                name = fixture_stem(case_id) + ".npz"
                write_bytes(out / name, content)
                entries.append(
                    {
                        "file": name,
                        "id": case_id,
                        "layer": spec.name,
                        "origin": "sequence",
                        "sha256": sha256_file(out / name),
                        "bytes": len(content),
                        "sequence": seq_id,
                        "step": index,
                    }
                )
            if on_sequence:
                on_sequence(seq_id)
    manifest = {
        "format": FORMAT,
        "generated_by": "python -m parity.sequences record",
        "versions": versions(),
        "reference_settings": apply(),
        **environment(),
        "total_bytes": sum(e["bytes"] for e in entries),
        "cases": entries,
    }
    write_manifest(out, manifest)
    listed = {e["file"] for e in entries}
    for path in sorted(out.glob("*.npz")):
        if path.name not in listed:
            path.unlink()
    return manifest


def check_freshness(directory: Path, seq: LiveSequence) -> list[str]:
    """The recorded steps of a plan that `seq` ran live, against what it computed now:
    the same op inputs (data drift: the spec now draws differently) and the same
    references within the spec's tolerance (reference drift: TensorFlow changed).
    Returns the drift messages."""
    from parity.compare import compare

    where = Path(directory) / SEQUENCES_DIR
    seq_id = sequence_id(seq.spec.name, seq.config, seq.rank, seq.name)
    entries = [e for e in load_manifest(where)["cases"] if e.get("sequence") == seq_id]
    if len(entries) != len(seq.steps):
        return [f"{seq_id}: {len(entries)} recorded steps, the plan now has {len(seq.steps)}"]
    messages = []
    for entry, step in zip(sorted(entries, key=lambda e: e["step"]), seq.steps, strict=True):
        fixture = _read_step(where, entry)
        old, new = fixture.data, step.op.data
        arrays = [(old.x, new.x), *zip(old.weights, new.weights, strict=False)]
        arrays += [*zip(old.upstream, new.upstream, strict=False)]
        arrays += [*zip(old.states, new.states, strict=False)]
        if step_id(seq_id, entry["step"], step.op) != entry["id"] or not all(
            np.array_equal(a, b) for a, b in arrays
        ):
            messages.append(f"data drift in {entry['file']} ({entry['id']})")
            continue
        if set(fixture.float64) != set(step.float64):
            messages.append(f"reference drift in {entry['file']}: other quantities now")
            continue
        for quantity, recorded in fixture.float64.items():
            tolerance = seq.spec.tolerance(quantity)
            c = compare(
                quantity, step.float64[quantity], recorded, fixture.float32[quantity], tolerance
            )
            if not c.passed:
                messages.append(
                    f"reference drift in {entry['file']} ({entry['id']}): the float64 referee's "
                    f"{quantity} now differs from the recorded one by {c.max_error:.3g}"
                )
    return messages


@dataclass
class SequenceReplay:
    problems: list[str] = field(default_factory=list)
    sequences: int = 0
    steps: int = 0
    by_layer: dict[str, int] = field(default_factory=dict)  # sequences replayed per layer


def _read_step(directory: Path, entry: dict) -> Fixture:
    problem = entry_problem(entry)
    if problem:
        raise FixtureError(problem)
    return read_entry(directory, entry, entry["file"])


def replay_sequences(
    directory: Path, layers: list[str] | None = None, backend=None, required: bool = True
) -> SequenceReplay:
    """Replays the recorded call sequences under `directory`/sequences on the native
    library (no TensorFlow). A sequence stops at its first failing step (the later
    steps depend on the layer's state). With `required`, a missing sequence set, or a
    selected layer spec without a sequence, is a problem too."""
    from parity.specs import all_specs, get_spec

    out = SequenceReplay()
    where = Path(directory) / SEQUENCES_DIR
    if not where.is_dir():
        if required:
            out.problems.append(
                f"no call-sequence fixtures in {where} (record them with "
                "`python -m parity.sequences record`)"
            )
        return out
    try:
        manifest = load_manifest(where)
    except FixtureError as exc:
        out.problems.append(str(exc))
        return out
    sequences: dict[str, list[dict]] = {}
    for entry in manifest["cases"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("sequence"), str):
            out.problems.append(f"{where / 'manifest.json'}: entry {entry!r} names no sequence")
            continue
        if layers and entry.get("layer") not in layers:
            continue
        sequences.setdefault(entry["sequence"], []).append(entry)
    for seq_id, entries in sequences.items():
        problem = _replay_one(
            where, seq_id, sorted(entries, key=lambda e: e.get("step", 0)), backend, out
        )
        if problem:
            out.problems.append(problem)
    if required:
        for spec in [get_spec(n) for n in layers] if layers else all_specs():
            if not out.by_layer.get(spec.name):
                out.problems.append(
                    f"layer spec {spec.name!r} has no recorded call sequence in {where}"
                )
    return out


def _replay_one(where: Path, seq_id: str, entries: list[dict], backend, out: SequenceReplay) -> str:
    from parity.specs import get_spec

    native = on_device = None
    history: list[str] = []
    try:
        for expected, entry in enumerate(entries, start=1):
            fixture = _read_step(where, entry)
            layer, config, rank, name, index, op = parse_step_id(fixture.case_id)
            if index != expected:
                raise FixtureError(f"{seq_id}: step {expected} is missing (found step {index})")
            try:
                spec = get_spec(layer)
            except KeyError as exc:
                raise FixtureError(f"{entry['file']}: {exc}") from None
            if native is None:
                native = NativeSide(spec, native_layer(backend, spec, config))
                # The on-device variants of the sequence, in lockstep (parity/variants.py)
                on_device = SequenceVariants(spec, config, backend, native.layer)
            op.data = fixture.data
            description = f"{layer} {name!r} {config} (rank {rank}) [{where}]"
            result = check_step(
                spec,
                config,
                description,
                index,
                op,
                native,
                fixture.float64,
                fixture.float32,
                history,
            )
            if result.passed:
                result.comparisons += on_device.check(
                    op, result.case, fixture.float64, fixture.float32, result.native
                )
            out.steps += 1
            history.append(op.describe())
            if not result.passed:
                return (
                    result.failure_message()
                    + f"\n  replay: python -m parity.sequences replay --layer {layer}"
                )
        out.sequences += 1
        out.by_layer[entries[0]["layer"]] = out.by_layer.get(entries[0]["layer"], 0) + 1
        return ""
    except (FixtureError, ValueError) as exc:
        return f"call sequence {seq_id}: {exc}"
    finally:
        if native is not None and hasattr(native.layer, "close"):
            native.layer.close()
        if on_device is not None:
            on_device.close()


# -- command line ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    import argparse

    from parity.fixtures import default_dir

    parser = argparse.ArgumentParser(
        prog="python -m parity.sequences", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="record the call-sequence fixtures (TensorFlow)")
    rec.add_argument("--out", metavar="DIR", help="fixture directory (default: fixtures/)")
    rec.add_argument("--layer", action="append", help="only this layer spec (repeatable)")
    rep = sub.add_parser("replay", help="replay them on the native library (no TensorFlow)")
    rep.add_argument("--fixtures", metavar="DIR", help="fixture directory (default: fixtures/)")
    rep.add_argument("--layer", action="append", help="only this layer spec (repeatable)")
    args = parser.parse_args(argv)
    from parity.specs import get_spec

    if args.command == "record":
        directory = Path(args.out) if args.out else default_dir(writing=True)
        if args.layer:
            raise SystemExit("record rewrites the whole sequence set: --layer is for replay")
        manifest = record(directory, on_sequence=lambda s: print(f"recorded {s}"))
        print(f"{len(manifest['cases'])} steps, {manifest['total_bytes'] / 2**10:.0f} KiB")
        return 0
    directory = Path(args.fixtures) if args.fixtures else default_dir()
    for name in args.layer or []:
        get_spec(name)
    start = time.perf_counter()
    result = replay_sequences(directory, args.layer)
    for problem in result.problems:
        print(problem)
    verdict = "FAILED" if result.problems else "passed"
    print(
        f"replayed {result.sequences} call sequences ({result.steps} steps) from "
        f"{directory / SEQUENCES_DIR} in {time.perf_counter() - start:.2f} s: {verdict}"
    )
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
