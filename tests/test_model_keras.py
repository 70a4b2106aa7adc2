"""On-device training parity: whole models trained step by step in nntk and in
tf.keras (GradientTape + optimizer.apply_gradients), compared after every step."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parity.models import OPTIMIZERS, run_model_parity

pytestmark = pytest.mark.tf


def conv_bn_relu(input_dim: int, filters: int, kernel: int):
    return [
        (
            "conv1d",
            {
                "filters": filters,
                "input_dim": input_dim,
                "kernel_size": kernel,
                "strides": 1,
                "padding": "valid",
                "dilation_rate": 1,
                "activation": "linear",
                "use_bias": True,
            },
        ),
        (
            "batch_norm",
            {
                "input_dim": filters,
                "momentum": 0.99,
                "epsilon": 1e-3,
                "center": True,
                "scale": True,
            },
        ),
        ("activation", {"activation": "relu", "input_dim": filters}),
    ]


def softmax_head(input_dim: int, classes: int):
    return [
        (
            "time_distributed_dense",
            {"units": classes, "input_dim": input_dim, "activation": "softmax", "use_bias": True},
        )
    ]


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@settings(max_examples=4)
@given(
    input_dim=st.integers(2, 12),
    filters=st.integers(2, 16),
    kernel=st.integers(1, 5),
    classes=st.integers(2, 4),
    seed=st.integers(0, 2**16),
)
def test_conv_batchnorm_head_trains_like_keras(
    optimizer, input_dim, filters, kernel, classes, seed
):
    layers = conv_bn_relu(input_dim, filters, kernel) + softmax_head(filters, classes)
    # The conv bias feeds BatchNorm: its true gradient is zero (see NOISE_ONLY_TOLERANCE).
    result = run_model_parity(layers, optimizer, seed=seed, noise_only=frozenset({(0, "bias")}))
    assert result.passed, result.failures()
