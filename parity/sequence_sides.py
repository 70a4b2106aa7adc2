"""One op on a layer of a call sequence and the two sides that run it (the tf.keras
twin and the nntk layer), split from parity/sequences.py, which describes the call
sequences as a whole: `Op`, `KerasSide`, `NativeSide` and `SequenceVariants` (the
on-device variants driven in lockstep)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parity import variants
from parity.compare import Comparison
from parity.reference import CaseData
from parity.runner import native_layer
from parity.spec import LayerSpec

OPS = ("set_weights", "call", "stream", "backward")
STATES = ("none", "given", "carried")


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
                with variant.setting():
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
