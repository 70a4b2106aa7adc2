"""BatchNorm inference keeps its per-channel factors (1/√(moving_variance + ε) times
gamma, and the offset) from one call to the next while its weights stay the same bits
(batch_norm.c, apply_inference): every way the weights change between two inference
calls must give what a fresh layer with those weights gives, bit for bit."""

import numpy as np
import pytest

import nntk_core as nn


def fresh_output(weights, x, **config):
    """The inference output of a new BatchNorm (no kept factors) with `weights`."""
    layer = nn.BatchNorm(x.shape[-1], **config)
    layer.set_weights(weights)
    return layer(x)


def random_weights(layer, rng):
    """Weights of layer's shapes, the moving variance positive."""
    weights = [rng.standard_normal(shape).astype(np.float32) for shape in layer.weight_shapes()]
    weights[-1] = np.abs(weights[-1]) + np.float32(0.1)
    return weights


@pytest.mark.parametrize("config", [{}, {"center": False}, {"scale": False, "epsilon": 0.5}])
@pytest.mark.parametrize("channels", [1, 64, 71])
def test_inference_follows_every_weight_change(config, channels):
    rng = np.random.default_rng(channels)
    layer = nn.BatchNorm(channels, **config)
    x = rng.standard_normal((3, 5, channels)).astype(np.float32)
    first = random_weights(layer, rng)
    layer.set_weights(first)
    before = layer(x)
    assert before.tobytes() == fresh_output(first, x, **config).tobytes()
    assert layer(x).tobytes() == before.tobytes()  # the kept factors: the same bits

    # set_weights: new moving statistics (and gamma, beta)
    second = random_weights(layer, rng)
    layer.set_weights(second)
    assert layer(x).tobytes() == fresh_output(second, x, **config).tobytes()

    # one channel's moving variance, written into the native block in place
    before_edit = layer(x)
    edited = [w.copy() for w in second]
    edited[-1][channels // 2] *= np.float32(4)
    layer._weights_view()[-channels:][channels // 2] = edited[-1][channels // 2]
    after_edit = layer(x)
    assert after_edit.tobytes() == fresh_output(edited, x, **config).tobytes()
    assert after_edit.tobytes() != before_edit.tobytes()

    # a training call moves the moving statistics; the next inference call follows them
    layer(x, training=True)
    moved = layer.get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(moved, edited, strict=True))
    assert layer(x).tobytes() == fresh_output(moved, x, **config).tobytes()
