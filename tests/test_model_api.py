"""Sequential and train_step: the API and its bad-input behaviour (no TensorFlow).

Every error names the argument and, for a model, the layer (`layers[3] (GRU)`);
a refused train_step changes nothing: no weight, no BatchNorm moving statistic,
no optimizer slot or iteration."""

import numpy as np
import pytest

import nntk_core as nn


def keyword_detector(input_dim=6, filters=5, units=4, classes=2, padding="same"):
    return nn.Sequential(
        [
            nn.Conv1d(filters, 3, input_dim=input_dim, padding=padding),
            nn.BatchNorm(filters),
            nn.Activation("relu"),
            nn.GRU(units, input_dim=filters, return_sequences=True),
            nn.BatchNorm(units),
            nn.GRU(units, input_dim=units, return_sequences=True),
            nn.TimeDistributedDense(classes, input_dim=units, activation="softmax"),
        ]
    )


def data(batch=3, steps=8, input_dim=6, classes=2, out_steps=None, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, steps, input_dim)).astype(np.float32)
    labels = rng.integers(0, classes, size=(batch, out_steps or steps))
    return x, np.eye(classes, dtype=np.float32)[labels]


def snapshot(model, optimizer=None):
    state = [w.copy() for w in model.get_weights()]
    if optimizer is not None:
        state.append(np.array(optimizer.iterations))
    return state


def assert_unchanged(before, after):
    assert len(before) == len(after)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


# -- a working model -----------------------------------------------------------------------
def test_train_step_lowers_the_loss_and_updates_weights_and_moving_statistics():
    nn.set_random_seed(0)
    model = keyword_detector()
    x, y = data()
    loss, opt = nn.losses.CategoricalCrossentropy(), nn.optimizers.Adam(0.01)
    before = model.get_weights()
    values = [model.train_step(x, y, loss, opt) for _ in range(30)]
    assert values[-1] < values[0]
    after = model.get_weights()
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert opt.iterations == 30
    assert model(x).shape == y.shape
    # Trainable variables: no moving statistics (BatchNorm has 4 weights, 2 trainable).
    assert len(model.trainable_variables()) == len(before) - 4


def test_compute_output_shape_follows_the_layers():
    model = keyword_detector(padding="valid")
    assert model.compute_output_shape((3, 8, 6)) == (3, 6, 2)
    last = nn.Sequential([nn.GRU(4, input_dim=6), nn.Dense(3, input_dim=4)])
    assert last.compute_output_shape((2, 5, 6)) == (2, 3)
    bi = nn.Bidirectional(nn.LSTM(4, input_dim=6, return_sequences=True))
    assert nn.Sequential([bi]).compute_output_shape((2, 5, 6)) == (2, 5, 8)


def test_which_cross_entropy_path_train_step_takes():
    """Keras computes CategoricalCrossentropy() from the logits after an
    Activation("softmax") or Dense(softmax), but not after TimeDistributed(Dense(softmax))
    (docs/KERAS_SEMANTICS.md §9; checked against tf.keras in test_model_keras.py)."""
    cce, logits, mse = (
        nn.losses.CategoricalCrossentropy(),
        nn.losses.CategoricalCrossentropy(from_logits=True),
        nn.losses.MeanSquaredError(),
    )
    time_distributed = keyword_detector()
    dense = nn.Sequential([nn.Dense(2, input_dim=3, activation="softmax")])
    activation = nn.Sequential([nn.Dense(2, input_dim=3), nn.Activation("softmax")])
    assert not time_distributed.uses_logits(cce)
    assert dense.uses_logits(cce) and activation.uses_logits(cce)
    assert not dense.uses_logits(logits) and not dense.uses_logits(mse)


def test_logits_path_gradient_is_softmax_minus_target():
    """After a Dense(softmax) the step uses d loss / d logits = (softmax - y) / N:
    with SGD(lr) the bias moves by -lr * mean(softmax - y)."""
    nn.set_random_seed(1)
    model = nn.Sequential([nn.Dense(3, input_dim=4, activation="softmax")])
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 5)]
    kernel, bias = model.get_weights()
    p = model(x)
    value = model.train_step(x, y, nn.losses.CategoricalCrossentropy(), nn.optimizers.SGD(0.5))
    z = x.astype(np.float64) @ kernel + bias
    expected = np.mean(np.log(np.exp(z).sum(-1)) - (z * y).sum(-1))
    assert value == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(model.get_weights()[1], bias - 0.5 * (p - y).mean(0), atol=1e-6)


# -- constructing: layers that do not chain --------------------------------------------------
@pytest.mark.parametrize(
    ("layers", "match"),
    [
        (
            lambda: [nn.Conv1d(5, 3, input_dim=6), nn.BatchNorm(4)],
            r"layers\[1\] \(BatchNorm\) expects input_dim=4 but layers\[0\] \(Conv1d\) "
            r"produces 5 features",
        ),
        (
            lambda: [
                nn.Conv1d(5, 3, input_dim=6),
                nn.Activation("relu"),
                nn.GRU(4, input_dim=6, return_sequences=True),
            ],
            r"layers\[2\] \(GRU\) expects input_dim=6 but layers\[0\] \(Conv1d\) produces 5",
        ),
        (
            lambda: [
                nn.Bidirectional(nn.LSTM(4, input_dim=6, return_sequences=True)),
                nn.TimeDistributedDense(2, input_dim=4),
            ],
            r"layers\[1\] \(TimeDistributedDense\) expects input_dim=4 but "
            r"layers\[0\] \(Bidirectional\) produces 8",
        ),
        (
            lambda: [nn.GRU(4, input_dim=6), nn.GRU(3, input_dim=4)],
            r"layers\[1\] \(GRU\) takes \(batch, steps, features\) inputs but layers\[0\] "
            r"\(GRU\) returns \(batch, features\)",
        ),
        (
            lambda: [nn.GRU(4, input_dim=6, return_state=True)],
            r"layers\[0\] \(GRU\) has return_state=True",
        ),
        (
            lambda: [nn.Bidirectional(nn.GRU(4, input_dim=6), merge_mode=None)],
            r"layers\[0\] \(Bidirectional\) has merge_mode=None",
        ),
    ],
)
def test_layers_that_do_not_chain_are_refused_naming_both(layers, match):
    with pytest.raises(ValueError, match=match):
        nn.Sequential(layers())


def test_bad_layer_lists_are_refused():
    with pytest.raises(TypeError, match="non-empty list"):
        nn.Sequential([])
    with pytest.raises(TypeError, match="non-empty list"):
        nn.Sequential(nn.Dense(2, input_dim=3))
    with pytest.raises(TypeError, match=r"layers\[1\] is not an nntk layer"):
        nn.Sequential([nn.Dense(2, input_dim=3), "relu"])
    dense = nn.Dense(3, input_dim=3)
    with pytest.raises(
        ValueError, match=r"layers\[1\] \(Dense\) is the same object as layers\[0\]"
    ):
        nn.Sequential([dense, dense])


# -- weights -----------------------------------------------------------------------------------
def test_set_weights_with_the_wrong_count_names_each_layers_count():
    model = keyword_detector()
    weights = model.get_weights()
    with pytest.raises(ValueError, match=r"expected 18 arrays \(layers\[0\] \(Conv1d\): 2, "):
        model.set_weights(weights[:-1])
    with pytest.raises(ValueError, match=r"layers\[6\] \(TimeDistributedDense\): 2\), got 19"):
        model.set_weights([*weights, weights[-1]])
    with pytest.raises(TypeError, match="list of arrays"):
        model.set_weights(np.zeros(3))


def test_set_weights_with_a_wrong_shape_names_the_layer_and_weight_and_changes_nothing():
    model = keyword_detector()
    before = snapshot(model)
    weights = model.get_weights()
    weights[0] = weights[0] + 1.0  # a change that must not be applied
    weights[13] = np.zeros((4, 13))
    with pytest.raises(
        ValueError,
        match=r"weights\[13\] \(layers\[5\] \(GRU\) kernel\) must have shape \(4, 12\), "
        r"got \(4, 13\)",
    ):
        model.set_weights(weights)
    weights[13] = np.array([["a"] * 12] * 4)
    with pytest.raises(TypeError, match=r"weights\[13\] \(layers\[5\] \(GRU\) kernel\) must hold"):
        model.set_weights(weights)
    assert_unchanged(before, snapshot(model))


# -- inputs and targets ---------------------------------------------------------------------
def test_input_problems_name_the_layer():
    model = keyword_detector(padding="valid")
    x, _ = data()
    with pytest.raises(ValueError, match=r"layers\[0\] \(Conv1d\) has input_dim=6 but x has 5"):
        model(x[..., :5])
    with pytest.raises(
        ValueError, match=r"layers\[0\] \(Conv1d\) takes \(batch, steps, features\)"
    ):
        model(x[:, 0])
    with pytest.raises(ValueError, match=r"layers\[0\] \(Conv1d\) cannot take x: .*steps"):
        model(x[:, :2])
    with pytest.raises(TypeError, match="x must hold real numbers"):
        model(x.astype(complex))
    with pytest.raises(ValueError, match="empty"):
        model(x[:0])


@pytest.mark.parametrize(
    ("make_y", "match"),
    [
        (
            lambda y: y[:, :-1],
            r"y \(the target\) has shape \(3, 7, 2\) but the model's output "
            r"\(layers\[6\] \(TimeDistributedDense\)\) has shape \(3, 8, 2\)",
        ),
        (lambda y: y[..., :1], r"has shape \(3, 8, 1\) but the model's output"),
        (lambda y: y[:2], r"has shape \(2, 8, 2\) but the model's output"),
        (
            lambda y: y[:, 0],
            r"y \(the target\) must have the rank of the model's output, 3: "
            r"\(batch, steps, classes\) = \(3, 8, 2\)",
        ),
        (lambda y: y[..., None], r"must have the rank of the model's output"),
        (lambda y: y.astype(object), "y must hold real numbers"),
    ],
)
def test_bad_targets_are_refused_before_anything_changes(make_y, match):
    model = keyword_detector()
    x, y = data()
    opt = nn.optimizers.Adam()
    model.train_step(x, y, nn.losses.CategoricalCrossentropy(), opt)  # slots exist
    before = snapshot(model, opt)
    with pytest.raises((ValueError, TypeError), match=match):
        model.train_step(x, make_y(y), nn.losses.CategoricalCrossentropy(), opt)
    assert_unchanged(before, snapshot(model, opt))


def test_a_valid_convolution_shortening_the_sequence_is_named():
    model = keyword_detector(padding="valid")
    x, y = data()
    with pytest.raises(
        ValueError, match=r"\(layers\[0\] \(Conv1d\) changes the number of steps: 8 in, 6 out\)"
    ):
        model.train_step(x, y, nn.losses.CategoricalCrossentropy(), nn.optimizers.SGD())
    _, y = data(out_steps=6)
    model.train_step(x, y, nn.losses.CategoricalCrossentropy(), nn.optimizers.SGD())


def test_bad_loss_or_optimizer_objects_are_refused():
    model = keyword_detector()
    x, y = data()
    with pytest.raises(TypeError, match="loss must be an nntk loss"):
        model.train_step(x, y, "categorical_crossentropy", nn.optimizers.SGD())
    with pytest.raises(TypeError, match="optimizer must be an nntk optimizer"):
        model.train_step(x, y, nn.losses.MeanSquaredError(), "adam")


def test_an_optimizer_bound_to_another_model_is_refused_before_anything_changes():
    first, second = keyword_detector(), keyword_detector(units=3)
    x, y = data()
    opt = nn.optimizers.Adam()
    first.train_step(x, y, nn.losses.CategoricalCrossentropy(), opt)
    before = snapshot(second, opt)
    with pytest.raises(ValueError, match="optimizer: .* create one optimizer per model"):
        second.train_step(x, y, nn.losses.CategoricalCrossentropy(), opt)
    assert_unchanged(before, snapshot(second, opt))


# -- optimizer arguments --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: nn.optimizers.SGD(learning_rate=0.0), ValueError, "learning_rate must be > 0"),
        (lambda: nn.optimizers.SGD(learning_rate=-0.1), ValueError, "learning_rate must be > 0"),
        (lambda: nn.optimizers.Adam(learning_rate=-1e-3), ValueError, "learning_rate must be > 0"),
        (lambda: nn.optimizers.Adam(learning_rate=1e-50), ValueError, "learning_rate = 1e-50"),
        (lambda: nn.optimizers.Adam(learning_rate=1e40), ValueError, "learning_rate = 1e"),
        (lambda: nn.optimizers.Adam(learning_rate=np.inf), ValueError, "learning_rate must be fin"),
        (lambda: nn.optimizers.Adam(learning_rate=None), TypeError, "learning_rate must be a real"),
        (lambda: nn.optimizers.Adam(beta_1=1.0), ValueError, r"beta_1 must be in \[0, 1\)"),
        (lambda: nn.optimizers.Adam(beta_1=-0.01), ValueError, r"beta_1 must be in \[0, 1\)"),
        (lambda: nn.optimizers.Adam(beta_2=1.5), ValueError, r"beta_2 must be in \[0, 1\)"),
        (lambda: nn.optimizers.Adam(beta_2=0.99999999), ValueError, "beta_2 = .* rounds to 1"),
        (lambda: nn.optimizers.Adam(beta_1=float("nan")), ValueError, "beta_1 must be finite"),
        (lambda: nn.optimizers.Adam(beta_2="0.9"), TypeError, "beta_2 must be a real number"),
        (lambda: nn.optimizers.Adam(epsilon=-1e-7), ValueError, "epsilon must be >= 0"),
        (lambda: nn.optimizers.SGD(momentum=1.5), ValueError, r"momentum must be in \[0, 1\]"),
        (lambda: nn.optimizers.SGD(momentum=-0.1), ValueError, r"momentum must be in \[0, 1\]"),
        (lambda: nn.optimizers.SGD(nesterov="yes"), TypeError, "nesterov"),
    ],
)
def test_bad_optimizer_arguments_name_the_argument(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_setting_a_bad_learning_rate_keeps_the_old_one():
    opt = nn.optimizers.SGD(0.1)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="learning_rate"):
            opt.learning_rate = bad
    assert opt.learning_rate == 0.1
