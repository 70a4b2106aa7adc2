"""`nntk-parity example personalize`: on-device personalisation of the keyword detector.

A phone re-learns its wake word from a few utterances of its user. Here the
utterances are synthetic: 40 features per 10 ms frame of background noise, and in
half of them the user's "word" (a formant-like sweep across the features, a little
different each time it is said) inserted at a random time; every frame is labelled
word / not word. The keyword detector (Conv1d 40->64 k5, BatchNorm, relu, GRU(64),
BatchNorm, GRU(64), TimeDistributedDense(2, softmax); BatchNorm momentum 0.9) is
trained on them with nntk (Adam, learning rate 0.01),
and the same run (same initial weights, same batches) in tf.keras beside it.

It starts from a model file tf.keras writes and ends with the personalised weights
back in tf.keras (nntk_examples/model_files.py): tf.keras saves the detector; the file
is verified against tf.keras (nntk-parity verify's check); nn.load_keras reads it and
nntk trains it (the table); the nntk model file is saved and read back; the C library's
model runs it and trains one more step (bitwise Python's); save_keras_weights gives the
weights back to tf.keras. Each step is checked and printed.

    nntk-parity example personalize            # ~30 s, most of it tf.keras
    nntk-parity example personalize --out DIR  # keep the files it writes in DIR
    nntk-parity example personalize --no-keras # nntk alone, no TensorFlow needed
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from nntk_models import keyword_detector


@dataclass(frozen=True)
class Config:
    features: int = 40
    filters: int = 64
    kernel: int = 5
    units: int = 64
    frames: int = 50  # 0.5 s of 10 ms frames
    word_frames: int = 12
    train_utterances: int = 64
    test_utterances: int = 32
    batch: int = 8
    epochs: int = 6
    learning_rate: float = 0.01
    # BatchNorm momentum 0.9, not Keras's 0.99: with a few dozen steps the moving
    # statistics (what inference uses) would otherwise still be far from the data's.
    momentum: float = 0.9
    noise: float = 1.0
    seed: int = 0


# What the test runs (a few seconds, most of it tf.keras): the same program, small.
TINY = Config(
    features=8,
    filters=8,
    units=6,
    frames=20,
    word_frames=5,
    train_utterances=24,
    test_utterances=8,
    batch=4,
    epochs=4,
)


@dataclass
class Epoch:
    epoch: int
    loss: dict[str, float]  # mean training loss over the epoch's steps, per side
    frame_accuracy: dict[str, float]  # on the held-out utterances
    detection_accuracy: dict[str, float]  # utterance has the word <=> any frame says so


@dataclass
class Result:
    config: Config
    epochs: list[Epoch] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    initial_loss: dict[str, float] = field(default_factory=dict)  # before training (test set)
    # run(keep=True): the trained nntk model and its optimizer (the caller closes them)
    model: object = None
    optimizer: object = None

    @property
    def sides(self) -> list[str]:
        return list(self.seconds)

    def loss_fell(self, side: str = "nntk") -> bool:
        return self.epochs[-1].loss[side] < self.epochs[0].loss[side]

    def largest_loss_difference(self) -> float:
        """max over epochs of |nntk - keras| / |keras| of the epoch loss (0 without Keras)."""
        if "tf.keras" not in self.seconds:
            return 0.0
        return max(
            abs(e.loss["nntk"] - e.loss["tf.keras"]) / abs(e.loss["tf.keras"]) for e in self.epochs
        )


# -- the data ---------------------------------------------------------------------------
def word_template(config: Config) -> np.ndarray:
    """The user's word: (word_frames, features), a bump sweeping up across the features
    (like a rising formant), strongest in the middle of the word."""
    t = np.linspace(0.0, 1.0, config.word_frames)[:, None]
    f = np.arange(config.features)[None, :]
    center = config.features * (0.2 + 0.6 * t)
    width = max(1.0, config.features / 10)
    envelope = np.sin(np.pi * (0.15 + 0.7 * t))
    return (2.5 * envelope * np.exp(-(((f - center) / width) ** 2))).astype(np.float32)


def utterances(config: Config, count: int, rng: np.random.Generator):
    """(x (count, frames, features), one-hot labels (count, frames, 2), has_word (count,)).
    Half the utterances hold the word, at a random time, each time a little louder or
    softer and shifted by up to one feature."""
    template = word_template(config)
    x = config.noise * rng.standard_normal((count, config.frames, config.features))
    labels = np.zeros((count, config.frames), np.int64)
    has_word = np.arange(count) % 2 == 0
    rng.shuffle(has_word)
    for i in np.flatnonzero(has_word):
        start = rng.integers(0, config.frames - config.word_frames + 1)
        said = np.roll(template, rng.integers(-1, 2), axis=1) * rng.uniform(0.8, 1.2)
        x[i, start : start + config.word_frames] += said
        labels[i, start : start + config.word_frames] = 1
    return x.astype(np.float32), np.eye(2, dtype=np.float32)[labels], has_word


def accuracies(probabilities: np.ndarray, y: np.ndarray, has_word: np.ndarray):
    """(per-frame accuracy, per-utterance detection accuracy)."""
    said = probabilities.argmax(-1)
    frame = float(np.mean(said == y.argmax(-1)))
    detected = said.max(axis=1) == 1
    return frame, float(np.mean(detected == has_word))


# -- the two sides ----------------------------------------------------------------------
class _NntkSide:
    name = "nntk"

    def __init__(self, layers, initial, config: Config, model=None):
        import nntk_core as nn
        from parity.model_training import build_native_model

        self.model = model if model is not None else build_native_model(layers)
        if initial is not None:
            self.model.set_weights(initial)
        self.loss = nn.losses.CategoricalCrossentropy()
        self.optimizer = nn.optimizers.Adam(learning_rate=config.learning_rate)

    def train_step(self, x, y) -> float:
        return self.model.train_step(x, y, self.loss, self.optimizer)

    def predict(self, x) -> np.ndarray:
        return self.model(x, training=False)


class _KerasSide:
    """tf.keras's custom training loop (GradientTape + apply_gradients), eager."""

    name = "tf.keras"

    def __init__(self, model, config: Config):
        from parity import reference

        self.tf, keras = reference.tensorflow(), reference.keras()
        self.model = model
        self.loss = keras.losses.CategoricalCrossentropy()
        self.optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)

    def train_step(self, x, y) -> float:
        tf = self.tf
        with tf.GradientTape() as tape:
            loss = self.loss(tf.constant(y), self.model(tf.constant(x), training=True))
        variables = self.model.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        return float(loss)

    def predict(self, x) -> np.ndarray:
        return self.model(self.tf.constant(x), training=False).numpy()


def data(config: Config):
    """(x_train, y_train, x_test, y_test, word_test): the synthetic utterances."""
    rng = np.random.default_rng(config.seed)
    x_train, y_train, _ = utterances(config, config.train_utterances, rng)
    x_test, y_test, word_test = utterances(config, config.test_utterances, rng)
    return x_train, y_train, x_test, y_test, word_test


def layer_specs(config: Config) -> list:
    """The keyword detector as (spec name, config) pairs (nntk_models)."""
    return keyword_detector(
        config.features, config.filters, config.kernel, config.units, 2, "same", config.momentum
    )


def run(
    config: Config, keras: bool = True, progress=None, keras_file=None, keep: bool = False
) -> Result:
    """Trains the keyword detector on the synthetic utterances with nntk and (unless
    keras=False) with tf.keras from the same initial weights on the same batches.
    `keras_file`: both sides start from that tf.keras model file (nn.load_keras and
    tf.keras's load_model) instead of tf.keras's initializers. `keep`: the trained nntk
    model and its optimizer are left open in the result (else closed).
    `progress`: a rich Progress to advance (one task per side, its field `seconds` the
    side's time inside train_step so far)."""
    import nntk_core as nn
    from parity.model_training import build_keras_model

    x_train, y_train, x_test, y_test, word_test = data(config)
    layers = layer_specs(config)
    sides = []
    if keras_file is not None:
        from parity import reference

        start = nn.load_keras(keras_file)
        sides = [_NntkSide(layers, None, config, model=start)]
        if keras:
            model = reference.keras().models.load_model(keras_file, compile=False)
            sides.append(_KerasSide(model, config))
    elif keras:
        from parity import reference

        reference.keras().utils.set_random_seed(config.seed)
        keras_model = build_keras_model(layers, "float32", config.features)
        initial = keras_model.get_weights()  # both start from Keras's initializers
        sides = [_NntkSide(layers, initial, config), _KerasSide(keras_model, config)]
    else:
        nn.set_random_seed(config.seed)
        sides = [_NntkSide(layers, None, config)]

    steps_per_epoch = -(-config.train_utterances // config.batch)
    tasks = {}
    if progress is not None:
        for side in sides:
            tasks[side.name] = progress.add_task(
                f"training {side.name:8s}", total=config.epochs * steps_per_epoch, seconds=0.0
            )
    result = Result(config, seconds={side.name: 0.0 for side in sides})
    cce = nn.losses.CategoricalCrossentropy()
    for side in sides:
        result.initial_loss[side.name] = cce(y_test, side.predict(x_test))
    order_rng = np.random.default_rng(config.seed + 1)
    for epoch in range(1, config.epochs + 1):
        order = order_rng.permutation(config.train_utterances)
        losses: dict[str, list[float]] = {side.name: [] for side in sides}
        for step in range(steps_per_epoch):
            batch = order[step * config.batch : (step + 1) * config.batch]
            for side in sides:
                start = time.perf_counter()
                losses[side.name].append(side.train_step(x_train[batch], y_train[batch]))
                result.seconds[side.name] += time.perf_counter() - start
                if progress is not None:  # the side's own training time, as the summary
                    progress.update(tasks[side.name], advance=1, seconds=result.seconds[side.name])
        frame, detection = {}, {}
        for side in sides:
            frame[side.name], detection[side.name] = accuracies(
                side.predict(x_test), y_test, word_test
            )
        result.epochs.append(
            Epoch(
                epoch,
                {name: float(np.mean(v)) for name, v in losses.items()},
                frame,
                detection,
            )
        )
    for side in sides:
        if side.name == "nntk" and keep:
            result.model, result.optimizer = side.model, side.optimizer
        elif side.name == "nntk":
            side.model.close()
            side.optimizer.close()
    return result


# -- printing ---------------------------------------------------------------------------
def table(result: Result):
    from rich.table import Table

    c = result.config
    table = Table(
        title=f"keyword detector ({c.features}->{c.filters} k{c.kernel}, GRU({c.units}) x2, "
        f"Dense(2)): {c.train_utterances} utterances x {c.epochs} epochs, Adam({c.learning_rate})"
    )
    table.add_column("epoch", justify="right")
    sides = result.sides
    for label in ("loss", "frame acc.", "word detected"):
        for side in sides:
            table.add_column(f"{label}\n{side}", justify="right")
    if len(sides) > 1:
        table.add_column("|loss diff|\n/ loss", justify="right")
    for e in result.epochs:
        row = [str(e.epoch)]
        row += [f"{e.loss[s]:.5f}" for s in sides]
        row += [f"{100 * e.frame_accuracy[s]:.1f}%" for s in sides]
        row += [f"{100 * e.detection_accuracy[s]:.1f}%" for s in sides]
        if len(sides) > 1:
            diff = abs(e.loss["nntk"] - e.loss["tf.keras"]) / abs(e.loss["tf.keras"])
            row.append(f"{diff:.1e}")
        table.add_row(*row)
    return table


# Agreement of the two columns: after dozens of Adam steps the float32 runs drift
# apart by rounding noise only (see nntk-parity model for the per-step bound).
AGREEMENT = 1e-3


def _print_step(console, number: int, step) -> None:
    mark = "[green]ok[/green]" if step.ok else "[red]FAILED[/red]"
    console.print(f"[{number}/6] {step.title}: {step.detail} ... {mark}", highlight=False)


def main(args) -> int:
    import tempfile
    from contextlib import nullcontext
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from nntk_examples import model_files
    from parity.terminal import EXIT_FAILED, EXIT_OK, UsageError
    from parity.terminal import console as _console

    config = TINY if args.tiny else Config()
    overrides = {"seed": args.seed}
    if args.epochs is not None:
        if args.epochs < 1:
            raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
        overrides["epochs"] = args.epochs
    config = Config(**{**config.__dict__, **overrides})
    out = getattr(args, "out", None)
    if out is not None and not Path(out).is_dir():
        raise UsageError(f"--out {out}: no such directory")
    console = _console()
    sides = "nntk" if args.no_keras else "nntk and tf.keras (same initial weights and batches)"
    start = "tf.keras's initializers" if args.no_keras else "a model file tf.keras writes"
    console.print(
        f"Personalising the keyword detector on {config.train_utterances} synthetic "
        f"utterances of {config.frames} frames x {config.features} features "
        f"(half of them hold the word), with {sides}, starting from {start}."
    )
    failed = False
    with tempfile.TemporaryDirectory() if out is None else nullcontext(out) as work:
        work = Path(work)
        keras_path = None
        if not args.no_keras:
            keras_path = model_files.keras_file(work, config, layer_specs(config))
            for number, step in (
                (1, model_files.written(keras_path)),
                (2, model_files.verified(keras_path, config)),
            ):
                _print_step(console, number, step)
                failed |= not step.ok
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            # Each side's own time inside its training steps (the summary's figure), not
            # the wall time: the two sides take turns, and evaluation between epochs is
            # not training.
            TextColumn("{task.fields[seconds]:.2f} s in train_step"),
            console=console,
        ) as progress:
            result = run(
                config,
                keras=not args.no_keras,
                progress=progress,
                keras_file=keras_path,
                keep=True,
            )
        failed |= _print_training(console, result)
        try:
            for number, step in enumerate(
                model_files.after_training(work, config, result, keras_path, data(config)), start=4
            ):
                _print_step(console, number, step)
                failed |= not step.ok
        finally:
            result.model.close()
            result.optimizer.close()
        if out is not None:
            console.print(f"the files are in {out}", highlight=False)
    return EXIT_FAILED if failed else EXIT_OK


def _print_training(console, result: Result) -> bool:
    """Step 3's table and checks; True when it failed."""
    before = ", ".join(f"{name} {value:.4f}" for name, value in result.initial_loss.items())
    console.print(f"held-out loss before training: {before}")
    console.print(table(result))
    times = ", ".join(f"{name} {sec:.2f} s" for name, sec in result.seconds.items())
    console.print(
        f"time inside the training steps (the bars' figure; wall time is longer): {times}"
    )
    failed = False
    for side in result.sides:
        if not result.loss_fell(side):
            failed = True
            console.print(f"[red]{side}: the loss did not fall[/red]")
    difference = result.largest_loss_difference()
    trained = f"{result.config.epochs} epochs on device"
    if difference > AGREEMENT:
        failed = True
        console.print(
            f"[red]nntk and tf.keras disagree: epoch losses differ by {difference:.2e} "
            f"(relative; allowed {AGREEMENT:g})[/red]"
        )
    elif len(result.sides) > 1:
        trained += f", tf.keras beside it within {difference:.1e} (relative) of the epoch losses"
    mark = "[red]FAILED[/red]" if failed else "[green]ok[/green]"
    console.print(f"[3/6] trained with nntk: {trained} ... {mark}", highlight=False)
    return failed
