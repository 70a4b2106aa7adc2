"""The Python API contract and its bad-input behaviour (no TensorFlow needed)."""

import ctypes
import math

import numpy as np
import pytest

import nntk_core as nn
from nntk_core import _native
from nntk_core._native import NNTKError
from parity import c_api
from parity.specs import all_specs

lib = nn.lib


def config_create(layer: str):
    """The typed NNTK<layer>ConfigCreate (declared from its header; errors raise NNTKError)."""
    return c_api.typed_config_create(lib, layer, _native._check_handle)


def dense(**kw):
    args = {"units": 3, "input_dim": 4}
    args.update(kw)
    return nn.Dense(**args)


# -- constructor arguments --------------------------------------------------------------
def bad_values(field: _native.Field) -> list[tuple[object, type]]:
    """Values the described field must refuse, each with the exception it raises: the
    wrong type, and every side of its described range (a required field and an enum
    included)."""
    if field.kind == _native.FIELD_BOOL:
        return [("yes", TypeError), (1, TypeError), (None, TypeError)]
    if field.kind == _native.FIELD_ENUM:
        return [("nope", ValueError), (1, TypeError)]
    if field.kind == _native.FIELD_INT:
        values = [(2.5, TypeError), ("3", TypeError), (int(field.min) - 1, ValueError)]
        if field.min == 1:
            values.append((-2, ValueError))
        if math.isfinite(field.max):
            values.append((int(field.max) + 1, ValueError))
        return values
    values = [("1e-3", TypeError), (None, TypeError), (math.nan, ValueError)]
    values += [(math.inf, ValueError), (-math.inf, ValueError)]
    # the first value past each end of the range (past DBL_MAX is inf, above)
    values.append(
        (field.min if field.min_exclusive else math.nextafter(field.min, -math.inf), ValueError)
    )
    if math.isfinite(math.nextafter(field.max, math.inf)):
        values.append((math.nextafter(field.max, math.inf), ValueError))
    return values


SPECS = {spec.layer_class: spec for spec in all_specs()}
ARGUMENT_CASES = [
    (layer_type.name, field.name, value, exc)
    for layer_type in _native.LAYERS.values()
    if not layer_type.wraps
    for field in layer_type.fields
    for value, exc in bad_values(field)
]


@pytest.mark.parametrize(("layer", "argument", "value", "exc"), ARGUMENT_CASES)
def test_bad_constructor_arguments_name_the_argument(layer, argument, value, exc):
    """Every described argument of every layer refuses a wrong type and every value out
    of its described range, naming itself (the rest from the spec's base config)."""
    args = {**SPECS[layer].base_config, argument: value}
    with pytest.raises(exc, match=rf"\b{argument}\b"):
        nn.LAYER_CLASSES[layer](**args)


def test_unknown_activation_layer_name():
    with pytest.raises(ValueError, match="activation='gelu2'"):
        nn.Activation("gelu2")


def test_aliases_and_none():
    assert nn.Activation("silu").activation == "swish"
    assert dense(activation=None).activation == "linear"


# -- weights ----------------------------------------------------------------------------
def test_weights_round_trip_in_keras_order_and_shapes():
    layer = dense()
    kernel = np.arange(12, dtype=np.float32).reshape(4, 3)
    bias = np.array([1, 2, 3], np.float32)
    layer.set_weights([kernel, bias])
    got = layer.get_weights()
    assert [w.shape for w in got] == [(4, 3), (3,)]
    np.testing.assert_array_equal(got[0], kernel)
    np.testing.assert_array_equal(got[1], bias)
    assert [w.shape for w in dense(use_bias=False).get_weights()] == [(4, 3)]


def test_wrong_weights_are_rejected():
    layer = dense()
    with pytest.raises(ValueError, match="expected 2 arrays"):
        layer.set_weights([np.zeros((4, 3))])
    with pytest.raises(ValueError, match="kernel must have shape"):
        layer.set_weights([np.zeros((3, 4)), np.zeros(3)])
    with pytest.raises(ValueError, match="bias must have shape"):
        layer.set_weights([np.zeros((4, 3)), np.zeros(4)])
    with pytest.raises(TypeError, match="list of arrays"):
        layer.set_weights(np.zeros((4, 3)))
    with pytest.raises(TypeError, match=r"weights\[kernel\]"):
        layer.set_weights([np.zeros((4, 3), dtype=complex), np.zeros(3)])


# -- inputs -----------------------------------------------------------------------------
def test_forward_matches_numpy_for_2d_and_3d_input():
    rng = np.random.default_rng(1)
    layer = dense(activation="relu")
    kernel, bias = rng.standard_normal((4, 3)), rng.standard_normal(3)
    layer.set_weights([kernel, bias])
    for shape in [(5, 4), (2, 6, 4)]:
        x = rng.standard_normal(shape).astype(np.float32)
        expected = np.maximum(x @ kernel.astype(np.float32) + bias.astype(np.float32), 0)
        np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_inputs_are_converted_to_contiguous_float32():
    rng = np.random.default_rng(2)
    layer = dense()
    layer.set_weights([rng.standard_normal((4, 3)), rng.standard_normal(3)])
    x64 = rng.standard_normal((6, 4))
    expected = layer(x64.astype(np.float32))
    np.testing.assert_array_equal(layer(x64), expected)  # float64 converted
    wide = np.zeros((6, 8))
    wide[:, ::2] = x64
    np.testing.assert_array_equal(layer(wide[:, ::2]), expected)  # non-contiguous converted
    np.testing.assert_array_equal(layer(x64.tolist()), expected)  # nested lists
    assert layer(np.ones((2, 4), dtype=np.int32)).dtype == np.float32


@pytest.mark.parametrize(
    ("x", "exc", "match"),
    [
        (np.zeros((2, 5)), ValueError, "5 features"),
        (np.zeros((2, 3, 5)), ValueError, "input_dim is 4"),
        (np.zeros(4), ValueError, "shape"),
        (np.zeros((1, 2, 3, 4)), ValueError, "shape"),
        (np.zeros((0, 4)), ValueError, "empty"),
        (np.zeros((2, 0, 4)), ValueError, "empty"),
        (np.zeros((2, 4), dtype=complex), TypeError, "x must hold real numbers"),
        (np.array([["a"] * 4]), TypeError, "x must hold real numbers"),
    ],
)
def test_bad_inputs_name_the_argument(x, exc, match):
    with pytest.raises(exc, match=match):
        dense()(x)


def test_time_distributed_dense_needs_a_time_axis():
    with pytest.raises(ValueError, match="steps"):
        nn.TimeDistributedDense(2, input_dim=4)(np.zeros((3, 4)))


def test_training_flag_must_be_a_bool():
    with pytest.raises(TypeError, match="training"):
        dense()(np.zeros((1, 4)), training="yes")


# -- backward ---------------------------------------------------------------------------
def test_backward_before_any_training_call_is_an_error():
    layer = dense()
    layer(np.zeros((2, 4)))  # inference only
    with pytest.raises(RuntimeError, match="no training call"):
        layer.backward(np.zeros((2, 3)))


def test_backward_checks_the_upstream_gradient_shape():
    layer = dense()
    layer(np.zeros((2, 4)), training=True)
    with pytest.raises(ValueError, match="dy must have the shape"):
        layer.backward(np.zeros((2, 4)))


def test_backward_returns_gradients_of_the_last_training_call():
    rng = np.random.default_rng(3)
    layer = dense()
    layer.set_weights([rng.standard_normal((4, 3)), rng.standard_normal(3)])
    x1, x2 = rng.standard_normal((2, 4)), rng.standard_normal((5, 4))
    dy2 = rng.standard_normal((5, 3))
    layer(x1, training=True)
    layer(x2, training=True)
    layer(x1)  # an inference call does not replace the training batch
    dx, (dk, db) = layer.backward(dy2)
    kernel = layer.get_weights()[0]
    np.testing.assert_allclose(dx, dy2 @ kernel.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dk, x2.T @ dy2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(db, dy2.sum(0), rtol=1e-5, atol=1e-6)


def test_activation_layer_has_no_weights_and_adapts_to_the_feature_size():
    layer = nn.Activation("softmax")
    assert layer.get_weights() == []
    y = layer(np.zeros((2, 3, 5)))
    np.testing.assert_allclose(y, np.full((2, 3, 5), 0.2), rtol=1e-6)
    assert layer(np.zeros((2, 7))).shape == (2, 7)


def test_closed_layer_refuses_calls():
    layer = dense()
    layer.close()
    with pytest.raises(RuntimeError, match="closed"):
        layer(np.zeros((1, 4)))
    layer.close()  # idempotent


# -- the C API through the binding ------------------------------------------------------
def test_c_errors_name_the_function_and_argument():
    with pytest.raises(NNTKError, match="NNTKDenseConfigCreate: input_dim must be >= 1"):
        config_create("Dense")(0, 3, 0, 1)
    with pytest.raises(NNTKError, match="NNTKDenseConfigCreate: activation = 99"):
        config_create("Dense")(2, 3, 99, 1)
    with pytest.raises(NNTKError, match="NNTKDenseConfigCreate: use_bias must be 0 or 1"):
        config_create("Dense")(2, 3, 0, 7)
    with pytest.raises(NNTKError, match="NNTKActivationConfigCreate: features must be >= 1"):
        config_create("Activation")(0, 0)
    with pytest.raises(NNTKError, match="NNTKDenseCreateForInference: config is NULL"):
        lib.NNTKDenseCreateForInference(None)


def _dense_handles(training=True):
    config = config_create("Dense")(4, 3, 0, 1)
    try:
        if training:
            handle = lib.NNTKDenseCreateForTraining(config, None)
        else:
            handle = lib.NNTKDenseCreateForInference(config)
    finally:
        lib.NNTKDenseConfigDestroy(config)
    return handle


def test_c_apply_checks_pointers_and_sizes():
    handle = _dense_handles()
    x = np.zeros((2, 4), np.float32)
    y = np.zeros((2, 3), np.float32)
    xp = x.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    yp = y.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    try:
        with pytest.raises(NNTKError, match="NNTKDenseApplyInference: in is NULL"):
            lib.NNTKDenseApplyInference(handle, 2, 1, None, yp)
        with pytest.raises(NNTKError, match="NNTKDenseApplyInference: out is NULL"):
            lib.NNTKDenseApplyInference(handle, 2, 1, xp, None)
        with pytest.raises(NNTKError, match="NNTKDenseApplyInference: batch must be >= 1"):
            lib.NNTKDenseApplyInference(handle, 0, 1, xp, yp)
        with pytest.raises(NNTKError, match="NNTKDenseApplyTrainingBatch: steps must be >= 1"):
            lib.NNTKDenseApplyTrainingBatch(handle, 2, -1, xp, yp)
        with pytest.raises(NNTKError, match="NNTKDenseApplyInference: filter is NULL"):
            lib.NNTKDenseApplyInference(None, 2, 1, xp, yp)
        gradient = lib.NNTKDenseGradientCreate(handle)
        with pytest.raises(NNTKError, match="no training batch yet"):
            lib.NNTKDenseCalculateGradient(handle, gradient, yp, xp)
        lib.NNTKDenseGradientDestroy(gradient)
    finally:
        lib.NNTKDenseDestroy(handle)


def test_c_refuses_handles_of_the_wrong_kind_or_mode():
    inference = _dense_handles(training=False)
    training = _dense_handles()
    other = _dense_handles()
    x = np.zeros((1, 4), np.float32).ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    y = np.zeros((1, 3), np.float32).ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    try:
        with pytest.raises(NNTKError, match="created for inference"):
            lib.NNTKDenseApplyTrainingBatch(inference, 1, 1, x, y)
        with pytest.raises(NNTKError, match="created for inference"):
            lib.NNTKDenseGradientCreate(inference)
        gradient = lib.NNTKDenseGradientCreate(training)
        lib.NNTKDenseApplyTrainingBatch(other, 1, 1, x, y)
        with pytest.raises(NNTKError, match="gradient was created for another filter"):
            lib.NNTKDenseCalculateGradient(other, gradient, y, x)
        # a Dense handle where a TimeDistributedDense one is expected
        with pytest.raises(NNTKError, match="not a handle of the expected kind"):
            lib.NNTKTimeDistributedDenseApplyInference(training, 1, 1, x, y)
        lib.NNTKDenseGradientDestroy(gradient)
    finally:
        for h in (inference, training, other):
            lib.NNTKDenseDestroy(h)


def test_destroy_functions_accept_null():
    for functions in _native.LAYER_FUNCTIONS.values():
        for name in functions:
            if name.endswith("Destroy"):
                getattr(lib, name)(None)


def test_last_error_is_empty_after_clear():
    lib.NNTKClearError()
    assert lib.NNTKLastError() == b""
    assert lib.NNTKLastStatus() == 0
