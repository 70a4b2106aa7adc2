"""The binding's access to the C API's on-device paths (the variants replay runs,
parity/variants.py): Layer.set_handle_options (CreateForInference, a reserved
NNTKTrainingConfig capacity), backward(input_gradient=False) (d_in NULL) and a
recurrent call's final_state=False (final_state NULL). Their numbers are checked
against tf.keras by replay; here: the argument checks, the errors and what each
returns."""

import numpy as np
import pytest

import nntk_core as nn


def _dense(**options) -> nn.Dense:
    layer = nn.Dense(3, input_dim=4)
    if options:
        layer.set_handle_options(**options)
    layer.set_weights([np.full((4, 3), 0.25, np.float32), np.arange(3, dtype=np.float32)])
    return layer


X = np.linspace(-1, 1, 2 * 5 * 4, dtype=np.float32).reshape(2, 5, 4)


def test_options_are_set_before_the_handle_exists():
    layer = _dense()
    with pytest.raises(RuntimeError, match="before the first set_weights"):
        layer.set_handle_options(inference_only=True)
    layer = nn.Dense(3, input_dim=4)
    layer.set_handle_options(max_batch=2)  # creates the handle
    with pytest.raises(RuntimeError, match="exists already"):
        layer.set_handle_options(max_batch=4)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"inference_only": 1}, TypeError, "inference_only"),
        ({"max_batch": -1}, ValueError, "max_batch"),
        ({"max_batch": 2**64}, ValueError, "max_batch"),  # ctypes would wrap it to 0
        ({"max_batch": 2.0}, TypeError, "max_batch"),
        ({"max_batch": 4, "max_steps": True}, TypeError, "max_steps"),
        ({"inference_only": True, "max_batch": 4}, ValueError, "not with inference_only"),
        # the library's own checks, at once
        ({"max_steps": 8}, nn.NNTKError, "training_config.max_batch"),
        ({"max_batch": 2**40}, nn.NNTKError, "training_config.max_batch"),
        ({"max_batch": 1, "max_steps": 2**40}, nn.NNTKError, "training_config.max_steps"),
    ],
)
def test_bad_options_are_refused_naming_the_argument(options, error, match):
    layer = nn.Dense(3, input_dim=4)
    with pytest.raises(error, match=match):
        layer.set_handle_options(**options)
    layer(X, training=True)  # the layer keeps its defaults


def test_an_inference_handle_runs_inference_only():
    inference, plain = _dense(inference_only=True), _dense()
    np.testing.assert_array_equal(inference(X), plain(X))
    with pytest.raises(RuntimeError, match="inference only"):
        inference(X, training=True)
    with pytest.raises(RuntimeError, match="inference only"):
        inference.backward(np.ones((2, 5, 3), np.float32))


def test_a_batch_norm_inference_handle_keeps_nothing_for_backward():
    layer = nn.BatchNorm(4)
    layer.set_handle_options(inference_only=True)
    y = layer(X)
    assert y.shape == X.shape
    with pytest.raises(RuntimeError, match="inference only"):
        layer.backward(np.ones_like(X))


def test_an_adapting_activation_keeps_its_options_when_recreated():
    layer = nn.Activation("tanh")
    layer.set_handle_options(inference_only=True)
    layer(X)
    layer(X[..., :2])  # another feature size: a new native handle
    with pytest.raises(RuntimeError, match="inference only"):
        layer(X[..., :2], training=True)


def test_a_reserved_capacity_gives_the_same_numbers_at_any_size():
    dy = np.ones((2, 5, 3), np.float32)
    for max_batch, max_steps in ((1, 1), (2, 5), (10, 0), (64, 64)):
        layer, plain = _dense(max_batch=max_batch, max_steps=max_steps), _dense()
        np.testing.assert_array_equal(layer(X, training=True), plain(X, training=True))
        for got, want in zip(layer.backward(dy)[1], plain.backward(dy)[1], strict=True):
            np.testing.assert_array_equal(got, want)


def test_backward_without_the_input_gradient_returns_none_for_it():
    layer = _dense()
    layer(X, training=True)
    dx, grads = layer.backward(np.ones((2, 5, 3), np.float32), input_gradient=False)
    assert dx is None and [g.shape for g in grads] == [(4, 3), (3,)]
    with pytest.raises(TypeError, match="input_gradient"):
        layer.backward(np.ones((2, 5, 3), np.float32), input_gradient="no")


def test_recurrent_backward_without_the_input_gradient_keeps_the_state_gradient():
    gru = nn.GRU(3, input_dim=4)
    h0 = np.full((2, 3), 0.5, np.float32)
    gru(X, training=True, initial_state=h0)
    dx, grads, (d_h0,) = gru.backward(np.ones((2, 3), np.float32), input_gradient=False)
    assert dx is None and len(grads) == 3 and d_h0.shape == (2, 3)


@pytest.mark.parametrize("initial_state", [None, [np.full((2, 3), 0.5, np.float32)] * 2])
def test_a_recurrent_call_without_the_final_state(initial_state):
    """With an initial state: the WithState entry points given final_state NULL;
    without: the stateless ApplyInference / ApplyTrainingBatch / CalculateGradient."""
    lstm = nn.LSTM(3, input_dim=4, return_sequences=True)
    dy = np.ones((2, 5, 3), np.float32)
    results = []
    for final_state in (False, True):
        kwargs = {"initial_state": initial_state, "final_state": final_state}
        outputs = [lstm(X, **kwargs), lstm(X, training=True, **kwargs)]
        dx, weight_grads, *d_initial = lstm.backward(dy)
        results.append([*outputs, dx, *weight_grads, *(d_initial[0] if d_initial else [])])
    assert len(results[0]) == len(results[1]) == (6 if initial_state is None else 8)
    for got, want in zip(results[0], results[1], strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="return_state=True"):
        nn.LSTM(3, input_dim=4, return_state=True)(X, final_state=False)


def test_a_model_backward_without_the_input_gradient():
    """Sequential.backward(input_gradient=False): the first layer skips d_in (as
    train_step does), the weight gradients bit for bit those of the full backward."""
    model = nn.Sequential([nn.GRU(3, input_dim=4, return_sequences=True), nn.Dense(2, input_dim=3)])
    dy = np.ones((2, 5, 2), np.float32)
    model(X, training=True)
    dx, full = model.backward(dy)
    model(X, training=True)
    none, skipped = model.backward(dy, input_gradient=False)
    assert dx.shape == X.shape and none is None
    for got, want in zip(skipped, full, strict=True):
        np.testing.assert_array_equal(got, want)
