"""The model catalogue: the networks of the project (the keyword detector, its
bidirectional variant, a conv head), each a list of (layer spec name, config) pairs
with its full and small sizes. The parity suite builds and trains them on both sides
(parity/model_parity.py, `nntk-parity model`); the worked example trains the keyword
detector (nntk_examples/personalize.py)."""

from nntk_models.catalogue import (
    NETWORKS,
    Network,
    batch_norm,
    bidirectional_detector,
    bidirectional_lstm,
    conv_bn_relu,
    conv_head,
    gru,
    keyword_detector,
    softmax_head,
)

__all__ = [
    "NETWORKS",
    "Network",
    "batch_norm",
    "bidirectional_detector",
    "bidirectional_lstm",
    "conv_bn_relu",
    "conv_head",
    "gru",
    "keyword_detector",
    "softmax_head",
]
