"""Layer-specific rules that no described range (nntk/layer.h) expresses, through the
Python API and the C API: Conv1d's strides with dilation, its kernel against the input
length and its size limits; BatchNorm's inference path, weight list and gradient
block; Bidirectional's inner-layer checks. The generic argument checks (every
described field of every layer) are tests/test_api.py's and tests/test_c_api_invalid.py's.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

import nntk_core as nn
from nntk_core import NNTKError, lib
from parity import c_api

FP = ctypes.POINTER(ctypes.c_float)


def fp(arr):
    return arr.ctypes.data_as(FP)


# -- Conv1d -----------------------------------------------------------------------------
def conv_config(**kw):
    args = dict(
        input_dim=4,
        filters=2,
        kernel_size=3,
        strides=1,
        padding=0,
        dilation_rate=1,
        activation=0,
        use_bias=1,
    )
    args.update(kw)
    return c_api.config_create("Conv1d")(*args.values())


def test_conv1d_takes_keras_tuples_and_any_case_of_padding():
    layer = nn.Conv1d(2, (3,), input_dim=4, strides=(2,), padding="SAME")
    assert (layer.kernel_size, layer.strides, layer.padding) == (3, 2, "same")
    with pytest.raises(ValueError, match="kernel_size"):
        nn.Conv1d(2, (3, 3), input_dim=4)


def test_conv1d_strides_with_dilation_names_both():
    with pytest.raises(ValueError, match="strides ?= ?2.*dilation_rate ?= ?3"):
        nn.Conv1d(2, 3, input_dim=4, strides=2, dilation_rate=3)


@pytest.mark.parametrize(
    ("kw", "word"),
    [
        (dict(strides=2, dilation_rate=2), "dilation_rate"),
        (dict(kernel_size=1 << 23, input_dim=1 << 10, filters=1 << 10), "too large"),
        (dict(kernel_size=1 << 23, dilation_rate=4), "effective kernel"),
    ],
)
def test_conv1d_c_config_rejects_combinations(kw, word):
    with pytest.raises(NNTKError, match=word) as info:
        conv_config(**kw)
    assert "NNTKConv1dConfigCreate" in str(info.value)
    assert info.value.status == "NNTK_ERROR_INVALID_ARGUMENT"


def test_conv1d_input_too_short_for_valid_padding():
    layer = nn.Conv1d(2, 3, input_dim=4, dilation_rate=2)  # effective kernel 5
    with pytest.raises(ValueError, match=r"4 steps.*effective kernel length 5"):
        layer(np.zeros((1, 4, 4), np.float32))
    assert layer(np.zeros((1, 5, 4), np.float32)).shape == (1, 1, 2)
    for padding in ("same", "causal"):  # pad any length
        short = nn.Conv1d(2, 3, input_dim=4, dilation_rate=2, padding=padding)
        assert short(np.zeros((1, 1, 4), np.float32)).shape == (1, 1, 2)


def test_conv1d_c_input_too_short_for_valid_padding():
    cfg = conv_config(dilation_rate=2)  # valid, effective kernel 5
    infer = lib.NNTKConv1dCreateForInference(cfg)
    lib.NNTKConv1dConfigDestroy(cfg)
    x, y = np.zeros(64, np.float32), np.zeros(64, np.float32)
    steps, features = ctypes.c_int64(), ctypes.c_int64()
    try:
        with pytest.raises(NNTKError, match=r"steps = 4 .*effective kernel length 5") as info:
            lib.NNTKConv1dOutputShape(infer, 1, 4, ctypes.byref(steps), ctypes.byref(features))
        assert info.value.status == "NNTK_ERROR_INVALID_ARGUMENT"
        with pytest.raises(NNTKError, match="effective kernel"):
            lib.NNTKConv1dApplyInference(infer, 1, 4, fp(x), fp(y))
        lib.NNTKConv1dOutputShape(infer, 1, 5, ctypes.byref(steps), ctypes.byref(features))
        assert (steps.value, features.value) == (1, 2)
    finally:
        lib.NNTKConv1dDestroy(infer)


# -- BatchNorm ----------------------------------------------------------------------------
def test_batch_norm_frozen_call_is_the_inference_handle():
    """training=False (the frozen pass, ApplyFrozenBatch) gives exactly an inference
    handle's ApplyInference output, with more channels than one block of its path."""
    rng = np.random.default_rng(0)
    layer = nn.BatchNorm(70)
    weights = [rng.uniform(0.5, 1.5, 70), rng.normal(size=70), rng.normal(size=70)]
    weights.append(rng.uniform(0.5, 2.0, 70))
    layer.set_weights(weights)
    x = rng.normal(size=(3, 4, 70)).astype(np.float32)
    y = layer(x)
    cfg = c_api.config_create("BatchNorm")(70, 0.99, 1e-3, 1, 1)
    handle = lib.NNTKBatchNormCreateForInference(cfg)
    lib.NNTKBatchNormConfigDestroy(cfg)
    try:
        ptr, count = FP(), ctypes.c_int64()
        lib.NNTKBatchNormGetWeights(handle, ctypes.byref(ptr), ctypes.byref(count))
        np.ctypeslib.as_array(ptr, shape=(count.value,))[:] = np.concatenate(weights)
        out = np.empty_like(x)
        lib.NNTKBatchNormApplyInference(handle, 3, 4, fp(x), fp(out))
    finally:
        lib.NNTKBatchNormDestroy(handle)
    np.testing.assert_array_equal(y, out)


@pytest.mark.parametrize(
    ("center", "scale", "trainable"),
    [
        (True, True, ["gamma", "beta"]),
        (False, True, ["gamma"]),
        (True, False, ["beta"]),
        (False, False, []),
    ],
)
def test_batch_norm_weights_follow_center_and_scale(center, scale, trainable):
    layer = nn.BatchNorm(2, center=center, scale=scale)
    assert layer.weight_names() == trainable + ["moving_mean", "moving_variance"]
    assert layer.trainable_mask() == [True] * len(trainable) + [False, False]
    x = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    layer(x, training=True)
    _, grads = layer.backward(np.ones_like(x))
    assert len(grads) == len(trainable)


def test_batch_norm_c_gradient_block():
    """The gradient block holds every weight in get_weights() order: d beta = the sum
    of dY over the B*T positions, and zeros for the moving statistics."""
    cfg = c_api.config_create("BatchNorm")(3, 0.99, 1e-3, 1, 1)
    train = lib.NNTKBatchNormCreateForTraining(cfg, None)
    lib.NNTKBatchNormConfigDestroy(cfg)
    grad = lib.NNTKBatchNormGradientCreate(train)
    x = np.random.default_rng(1).normal(size=(2, 5, 3)).astype(np.float32)
    y = np.empty_like(x)
    try:
        lib.NNTKBatchNormApplyTrainingBatch(train, 2, 5, fp(x), fp(y))
        lib.NNTKBatchNormCalculateGradient(train, grad, fp(np.ones_like(x)), fp(np.empty_like(x)))
        ptr, count = FP(), ctypes.c_int64()
        lib.NNTKBatchNormGradientGetWeights(grad, ctypes.byref(ptr), ctypes.byref(count))
        block = np.ctypeslib.as_array(ptr, shape=(count.value,)).copy()
    finally:
        lib.NNTKBatchNormGradientDestroy(grad)
        lib.NNTKBatchNormDestroy(train)
    assert block.shape == (12,)
    np.testing.assert_array_equal(block[3:6], 10.0)  # d beta = sum of dY over 2*5 positions
    np.testing.assert_array_equal(block[6:], 0.0)  # no gradient for the moving statistics


# -- Bidirectional ------------------------------------------------------------------------
def test_bidirectional_c_config_checks_its_inner_layer():
    create = c_api.config_create("Bidirectional")
    tanh, sigmoid = 6, 4
    with pytest.raises(NNTKError, match="reset_after must be 0 unless layer is GRU"):
        create(2, 3, 2, tanh, sigmoid, 1, 1, 0, 0, 0)
    # The inner layer's own check, relabelled with the wrapper's name.
    with pytest.raises(
        NNTKError, match="NNTKBidirectionalConfigCreate: NNTKLSTMConfigCreate: units must be >= 1"
    ):
        create(2, 3, 0, tanh, sigmoid, 1, 0, 0, 0, 0)


# -- DepthwiseConv1D ------------------------------------------------------------------------
def test_depthwise_conv1d_c_config_refuses_a_kernel_above_the_element_limit():
    """Each size within its own limit (2^24), the kernel's k x C x M elements not (2^31):
    kernel_size 2^16 x input_dim 2^8 x depth_multiplier 2^8 = 2^32 floats is refused."""
    create = c_api.config_create("DepthwiseConv1d")
    with pytest.raises(NNTKError, match="the kernel or the output channels are too large"):
        create(1 << 8, 1 << 16, 1, 0, 1 << 8, 1, 0, 1)
    config = create(1 << 8, 1 << 7, 1, 0, 1 << 8, 1, 0, 1)  # 2^23 elements: accepted
    lib.NNTKDepthwiseConv1dConfigDestroy(config)
