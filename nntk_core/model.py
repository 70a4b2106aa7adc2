"""Sequential: a stack of nntk layers trained step by step, as a tf.keras Sequential
model trained with GradientTape + optimizer.apply_gradients.

    model = nn.Sequential([nn.Conv1d(64, 5, input_dim=40), nn.BatchNorm(64), ...])
    model.set_weights(keras_model.get_weights())          # Keras model order
    loss = model.train_step(x, y, nn.losses.CategoricalCrossentropy(), nn.optimizers.Adam())

Every argument is checked before anything runs: a wrong input or target shape, a
layer whose sizes do not chain, an optimizer already bound to another model raise
an exception naming the argument and the layer (`layers[3] (GRU)`), and a failed
train_step changes nothing (no weight, no BatchNorm moving statistic, no
optimizer slot).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nntk_core._native import NNTKError
from nntk_core.layer import _FLOAT32, Layer, _ndarray, as_float32, check_bool
from nntk_core.layer_chain import LayerChain
from nntk_core.layer_chain import layer_name as _name
from nntk_core.layers import LAYER_CLASSES
from nntk_core.losses import CategoricalCrossentropy
from nntk_core.recurrent import RecurrentLayer
from nntk_core.streamer import Streamer

Activation, Dense = LAYER_CLASSES["Activation"], LAYER_CLASSES["Dense"]

_RANK_FORMS = {2: "(batch, features)", 3: "(batch, steps, features)"}


class Sequential:
    """Layers applied in order. Weights are the layers' weights concatenated in layer
    order (tf.keras Model.get_weights() order); trainable variables likewise.

    The loss in train_step follows tf.keras, including its implicit switch
    (docs/KERAS_SEMANTICS.md §9): when the last layer is an Activation("softmax") or a
    Dense(activation="softmax"), Keras's CategoricalCrossentropy() computes the loss
    from that softmax's logits (no renormalisation, no clipping) and so does
    train_step; a TimeDistributedDense(softmax) output is a reshape in Keras, carries
    no logits, and takes the probability path (renormalise, clip to [1e-7, 1 - 1e-7]),
    in both. `uses_logits(loss)` says which path a loss takes."""

    def __init__(self, layers: Sequence):
        if isinstance(layers, Layer) or not isinstance(layers, Sequence) or not layers:
            raise TypeError("layers must be a non-empty list of nntk layers")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] is not an nntk layer: {layer!r}")
            for j in range(i):
                if layers[j] is layer:
                    raise ValueError(
                        f"{_name(i, layer)} is the same object as layers[{j}]: a layer keeps "
                        "only its last training call, so it cannot appear twice (create "
                        "another layer)"
                    )
            if isinstance(layer, RecurrentLayer):
                if layer.return_state:
                    raise ValueError(
                        f"{_name(i, layer)} has return_state=True: a layer in a Sequential "
                        "must return a single tensor"
                    )
                if layer.output_dim is None:
                    raise ValueError(
                        f"{_name(i, layer)} has merge_mode=None (two outputs): a layer in a "
                        "Sequential must return a single tensor"
                    )
        # Sizes must chain: each layer's input_dim is the size the layers before it
        # produce (an Activation without input_dim passes its input's size through),
        # and a (batch, features) output (return_sequences=False) can only feed a layer
        # that takes one.
        produced, producer, rank = None, None, 3
        for i, layer in enumerate(layers):
            wanted = None if getattr(layer, "adapts_input_dim", False) else layer.input_dim
            if produced is not None and wanted is not None and produced != wanted:
                raise ValueError(
                    f"{_name(i, layer)} expects input_dim={wanted} but "
                    f"{_name(producer, layers[producer])} produces {produced} features: "
                    f"layers {producer} and {i} do not chain ({layers[producer]!r} -> {layer!r})"
                )
            if i > 0 and rank not in layer.input_ranks:
                raise ValueError(
                    f"{_name(i, layer)} takes {_RANK_FORMS[layer.input_ranks[0]]} inputs but "
                    f"{_name(i - 1, layers[i - 1])} returns {_RANK_FORMS[rank]} "
                    "(return_sequences=False drops the time axis)"
                )
            if layer.output_dim is not None:
                produced, producer = layer.output_dim, i
            if layer.drops_steps:
                rank = 2
        self.layers = list(layers)
        # The optimizer nn.load restored from a model file saved with one (else None).
        self.optimizer = None
        self._logits_twin: Layer | None = None  # see _logits_head
        self._chains: dict[tuple[int, ...], LayerChain] = {}  # stream(): by chunk shape

    # -- weights -----------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: Sequence) -> None:
        """Sets every layer's weights from one list in tf.keras Model.get_weights() order
        (BatchNorm's moving statistics included). Nothing changes on an error."""
        counts = [len(layer.weight_shapes()) for layer in self.layers]
        if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence):
            raise TypeError(
                "Sequential.set_weights: weights must be a list of arrays in tf.keras model "
                f"order, got {type(weights).__name__}"
            )
        if len(weights) != sum(counts):
            per_layer = ", ".join(
                f"{_name(i, layer)}: {c}"
                for i, (layer, c) in enumerate(zip(self.layers, counts, strict=True))
                if c
            )
            raise ValueError(
                f"Sequential.set_weights: expected {sum(counts)} arrays ({per_layer}), "
                f"got {len(weights)}"
            )
        # Check every array first, so that a bad one leaves all layers unchanged.
        start = 0
        for i, (layer, count) in enumerate(zip(self.layers, counts, strict=True)):
            described = zip(layer.weight_names(), layer.weight_shapes(), strict=True)
            for j, (name, shape) in enumerate(described):
                arr = np.asarray(weights[start + j])
                where = f"weights[{start + j}] ({_name(i, layer)} {name})"
                if arr.dtype.kind not in "fiu":
                    raise TypeError(
                        f"Sequential.set_weights: {where} must hold real numbers, got {arr.dtype}"
                    )
                if arr.shape != tuple(shape):
                    raise ValueError(
                        f"Sequential.set_weights: {where} must have shape {tuple(shape)}, "
                        f"got {arr.shape}"
                    )
            start += count
        start = 0
        for layer, count in zip(self.layers, counts, strict=True):
            layer.set_weights(list(weights[start : start + count]))
            start += count

    def trainable_variables(self) -> list[np.ndarray]:
        """Views onto the layers' native trainable weights (updated in place by an optimizer).
        BatchNorm's moving statistics are weights but not trainable: they are not here."""
        return [v for layer in self.layers for v in layer.trainable_weight_views()]

    # -- shapes ------------------------------------------------------------------------
    def compute_output_shape(self, input_shape) -> tuple[int, ...]:
        """The output shape for an input of `input_shape`, layer by layer, without
        running anything; raises naming the layer that cannot take its input."""
        shape = tuple(int(d) for d in input_shape)
        for i, layer in enumerate(self.layers):
            shape = self._layer_output_shape(i, layer, shape)
        return shape

    def _layer_output_shape(self, i: int, layer, shape: tuple[int, ...]) -> tuple[int, ...]:
        where = "x" if i == 0 else f"the output of {_name(i - 1, self.layers[i - 1])}"
        if len(shape) not in layer.input_ranks:
            forms = " or ".join(_RANK_FORMS[r] for r in layer.input_ranks)
            raise ValueError(f"{_name(i, layer)} takes {forms}; {where} has shape {shape}")
        if getattr(layer, "adapts_input_dim", False):
            return shape
        if shape[-1] != layer.input_dim:
            raise ValueError(
                f"{_name(i, layer)} has input_dim={layer.input_dim} but {where} has "
                f"{shape[-1]} features (shape {shape})"
            )
        if min(shape) < 1:
            raise ValueError(f"{where} is empty (shape {shape}): batch and steps must be >= 1")
        batch, steps = shape[0], shape[1] if len(shape) == 3 else 1
        if isinstance(layer, RecurrentLayer):
            features = layer.output_dim
            return (batch, steps, features) if layer.return_sequences else (batch, features)
        try:
            return tuple(layer._output_shape(shape, batch, steps))
        except NNTKError as exc:  # e.g. a sequence shorter than a "valid" convolution's kernel
            if exc.status == "NNTK_ERROR_OUT_OF_MEMORY":  # not a shape problem: as it came
                raise
            raise ValueError(f"{_name(i, layer)} cannot take {where}: {exc.message}") from None

    # -- forward / backward ------------------------------------------------------------
    def __call__(self, x, training: bool = False):
        """The model's output for x (batch, steps, features); training=True runs
        every layer in training mode (BatchNorm: batch statistics, moving statistics
        updated) and keeps what backward() needs."""
        training = check_bool(training, "training")
        x = as_float32(x, "x")
        self.compute_output_shape(x.shape)
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    def backward(
        self, dy, input_gradient: bool = True
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """(dx, gradients of the trainable variables in model order) of the last
        training call, for the upstream gradient dy. `input_gradient=False`: dx is not
        computed (the first layer's d_in NULL) and is returned as None."""
        input_gradient = check_bool(input_gradient, "input_gradient")
        return self._backward(self.layers, dy, input_gradient)

    @staticmethod
    def _backward(layers, dy, input_gradient: bool):
        grads_per_layer = []
        for i in reversed(range(len(layers))):
            dy, grads = layers[i].backward(dy, input_gradient=input_gradient or i > 0)
            grads_per_layer.append(grads)
        return dy, [g for grads in reversed(grads_per_layer) for g in grads]

    def uses_logits(self, loss) -> bool:
        """Whether tf.keras computes `loss` from the logits of the last layer's softmax
        rather than from its output: CategoricalCrossentropy(from_logits=False) after
        an Activation("softmax") or a Dense(activation="softmax") (not a
        TimeDistributedDense, whose Keras output is a reshape). docs/KERAS_SEMANTICS.md §9."""
        last = self.layers[-1]
        return (
            isinstance(loss, CategoricalCrossentropy)
            and not loss.from_logits
            and isinstance(last, (Activation, Dense))
            and last.activation == "softmax"
        )

    def _logits_head(self) -> Layer:
        """The last Dense(softmax) as a linear Dense with the same weights: its output
        is the softmax's logits (the same products, the activation left out)."""
        last = self.layers[-1]
        twin = self._logits_twin
        if twin is None:
            twin = Dense(
                last.units, input_dim=last.input_dim, activation=None, use_bias=last.use_bias
            )
            self._logits_twin = twin
        twin.set_weights(last.get_weights())
        return twin

    def train_step(self, x, y, loss, optimizer) -> float:
        """One step: forward (training=True), loss, backward, optimizer update, as a
        tf.keras custom training step (GradientTape + apply_gradients). Returns the
        loss value before the update, as Keras does. x (batch, steps, features); y the
        target, with the model output's shape. Everything is checked before any layer
        runs, so an error leaves the model and the optimizer unchanged."""
        if not hasattr(loss, "gradient"):
            raise TypeError(
                f"loss must be an nntk loss (nntk_core.losses, with .gradient), got {loss!r}"
            )
        if not hasattr(optimizer, "apply_gradients"):
            raise TypeError(
                "optimizer must be an nntk optimizer (nntk_core.optimizers, with "
                f".apply_gradients), got {optimizer!r}"
            )
        x = as_float32(x, "x")
        target = as_float32(y, "y")
        out_shape = self.compute_output_shape(x.shape)
        self._check_target(x.shape, target.shape, out_shape)
        variables = self.trainable_variables()
        if not variables:
            raise ValueError("Sequential.train_step: the model has no trainable weights")
        bound = getattr(optimizer, "variable_shapes", None)
        shapes = [v.shape for v in variables]
        if bound is not None and bound != shapes:
            raise ValueError(
                f"optimizer: {optimizer!r} already updates {len(bound)} variables of other "
                f"shapes (its slots are keyed by position); this model has {len(shapes)}: "
                "create one optimizer per model"
            )

        if self.uses_logits(loss):
            return self._train_step_from_logits(x, target, optimizer, variables)
        prediction = self(x, training=True)
        value, d_prediction = loss.gradient(target, prediction)
        # A training step needs no gradient of its input: the first layer skips it (d_in NULL).
        _, grads = self.backward(d_prediction, input_gradient=False)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return value

    def _train_step_from_logits(self, x, target, optimizer, variables) -> float:
        """Keras's implicit logits path: the cross-entropy of the last softmax's logits
        (softmax_cross_entropy_with_logits), the gradient flowing into the logits."""
        body, last = self.layers[:-1], self.layers[-1]
        for layer in body:
            x = layer(x, training=True)
        logits_loss = CategoricalCrossentropy(from_logits=True)
        if isinstance(last, Activation):
            value, d_logits = logits_loss.gradient(target, x)
            head_grads: list[np.ndarray] = []
        else:
            head = self._logits_head()
            logits = head(x, training=True)
            value, d_logits = logits_loss.gradient(target, logits)
            d_logits, head_grads = head.backward(d_logits, input_gradient=bool(body))
        _, grads = self._backward(body, d_logits, input_gradient=False)
        grads += head_grads
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return value

    def _check_target(self, x_shape, y_shape, out_shape) -> None:
        last = _name(len(self.layers) - 1, self.layers[-1])
        if len(y_shape) != len(out_shape):
            form = "(batch, steps, classes)" if len(out_shape) == 3 else "(batch, classes)"
            raise ValueError(
                f"y (the target) must have the rank of the model's output, {len(out_shape)}: "
                f"{form} = {out_shape} for x of shape {x_shape}; got y of shape {y_shape}"
            )
        if y_shape != out_shape:
            hint = ""
            if len(out_shape) == 3 and out_shape[1] != x_shape[1]:
                changed = [
                    _name(i, layer)
                    for i, layer in enumerate(self.layers)
                    if getattr(layer, "padding", "same") == "valid"
                    or getattr(layer, "strides", 1) != 1
                ]
                if changed:
                    hint = (
                        f" ({', '.join(changed)} changes the number of steps: "
                        f"{x_shape[1]} in, {out_shape[1]} out)"
                    )
            raise ValueError(
                f"y (the target) has shape {y_shape} but the model's output ({last}) has "
                f"shape {out_shape} for x of shape {x_shape}{hint}"
            )

    def save(self, path, optimizer=None) -> None:
        """Writes the model (layer configs and every weight, BatchNorm's moving statistics
        included) to exactly `path`, atomically: the nntk model file, read back by
        nn.load(path) (nntk_core/model_file.py, docs/MODEL_FILE.md). With `optimizer`
        (the one training this model) the file also holds its type, hyperparameters,
        step and slots; nn.load restores it as the loaded model's `optimizer`."""
        from nntk_core import model_file  # it builds Sequentials: imported on use

        model_file.save(self, path, optimizer)

    def save_keras_weights(self, path) -> None:
        """Writes the weights to `path` (ending in .weights.h5), atomically, for
        tf.keras's `keras_model.load_weights(path)` (nntk_core/keras_io.py; h5py)."""
        from nntk_core import keras_io  # it builds Sequentials: imported on use

        keras_io.save_keras_weights(self, path)

    # -- streaming -------------------------------------------------------------------
    def stream(self, chunk, states=None):
        """Inference on one chunk of a sequence, chunk (batch, t, features), from
        `states`, in one native call (NNTKLayerChainStream, nntk/layer.h): (output, new
        states). `states`: None (zeros: a sequence's start) or what the previous call
        returned, a list with one entry per layer with states (RNN, GRU, LSTM), in
        model order, each that layer's state list as its own stream() takes and
        returns it ([h] or [h, c]; an entry None = zeros).

        The same as each layer in turn on the chunk (a layer with states through its
        stream(), from its entry of `states`), bit for bit; fed a sequence chunk by
        chunk it gives the whole sequence's output. So every layer must stream:
        per-step layers (Dense, TimeDistributedDense, Activation, BatchNorm (moving
        statistics), LayerNorm, Conv1d / DepthwiseConv1d with kernel_size 1 and
        strides 1), layers with states, and, before the first layer with states only,
        a Conv1d / DepthwiseConv1d with padding "valid", whose windows the chunk must
        hold whole (for one output step per call, the kernel's newest input frames,
        which the caller keeps: the library keeps no input history). Any other layer
        (padding at the chunk's edges, a pooling, Bidirectional) raises ValueError
        naming it. A call with a new chunk shape makes the native chain for it (its
        buffers reserved); later calls with that shape allocate only the output and
        the new states, and pass what the previous call returned without a copy. For
        live input one frame per call, `streamer()` keeps the states itself and writes
        into the caller's output array: the same native call, less Python per call."""
        # A float32 ndarray goes as it is (the chain copies one the library cannot read
        # in place), anything else is converted or refused naming the chunk.
        x = chunk
        if type(chunk) is not _ndarray or chunk.dtype is not _FLOAT32:
            x = as_float32(chunk, "chunk")
        chain = self._chains.get(x.shape)
        if chain is None or not chain.current(self.layers):
            chain = self._chain_for(x.shape)
        return chain.stream(x, states)

    def streamer(self, batch: int = 1, steps: int = 1, *, features: int | None = None):
        """A stateful streaming object for live input (nntk_core/streamer.py): the model
        fed chunks of (batch, steps, features) (features: the model's input_dim unless
        given), one call per chunk, its layers' states kept in the object between calls,
        as tf.keras's `stateful=True`; `reset_states()` starts a new sequence.

            s = model.streamer(batch=1, steps=5)  # a front Conv1d(kernel 5, "valid")
            y = np.empty(s.output_shape, np.float32)
            for i in range(x.shape[1] - 4):
                s(x[:, i : i + 5], out=y)  # == model.stream(...)'s output, bitwise

        The same chunks, layers and checks as stream() (a layer that cannot stream is
        refused naming it), the same native call, the same bits; per call it makes no
        state array or list, and with `out=` no output array: the per-frame call for a
        caller who counts microseconds. `s.states`, `s.reset_states(states)` in
        stream()'s states format; `close()` or `with` frees its native chain."""
        return Streamer(self, batch, steps, features)

    def _chain_for(self, shape: tuple[int, ...]) -> LayerChain:
        """A native chain for chunks of `shape` over the layers' current handles, kept
        for stream() (the chains of other shapes destroyed)."""
        if len(shape) != 3:
            raise ValueError(
                f"Sequential.stream: chunk must be (batch, steps, features), got shape {shape}"
            )
        chain = self._new_chain(shape, "Sequential.stream")
        for old in self._chains.values():
            old.close()
        self._chains = {shape: chain}
        return chain

    def _new_chain(self, shape: tuple[int, int, int], caller: str) -> LayerChain:
        """A native chain for chunks of `shape` over the layers' current handles, the
        caller's to keep (stream()'s, or a Streamer's); errors name `caller`."""
        out_shape = self.compute_output_shape(shape)
        # An adaptive Activation's handle is for the size of its last input: give it
        # this chunk's (each layer's input, as a call would).
        size = shape
        for i, layer in enumerate(self.layers):
            if getattr(layer, "adapts_input_dim", False):
                layer._prepare_input(np.empty(size, np.float32))
            size = self._layer_output_shape(i, layer, size)
        handles = tuple(layer._live_handle() for layer in self.layers)
        chain = LayerChain(self.layers, handles, shape, out_shape, caller)
        chain.made_for = tuple(layer.input_dim for layer in self.layers)
        return chain

    def close(self) -> None:
        for chain in self._chains.values():
            chain.close()
        self._chains.clear()
        for layer in self.layers:
            layer.close()
        if self._logits_twin is not None:
            self._logits_twin.close()

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n])"
