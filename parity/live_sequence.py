"""A live call sequence (parity/sequences.py describes them): the ops of one sequence
run on the nntk layer and its tf.keras twins, every step checked (`LiveSequence`,
`check_step`), the step ids the fixtures are stored under, and the representative
plans that are recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import numpy as np

from parity.case import Case
from parity.compare import Comparison
from parity.reference import CaseData
from parity.runner import compare_quantities, native_layer
from parity.sequence_sides import KerasSide, NativeSide, Op, can_stream, is_recurrent
from parity.spec import LayerSpec, float32_range

# Streamed chunks carried from one to the next add up to one long sequence; every
# recurrent config's tolerance covers at least 16 steps (recurrent_spec.py: the
# "wild" configs are drawn up to T = 16), so a carried stream stops there.
MAX_STREAM_STEPS = 16
_EMPTY = np.zeros(0, np.float32)


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
