"""parity: the verification suite that proves, layer by layer, that nntk computes
what tf.keras computes (outputs and gradients), with a float64 referee.

Layout: `specs/` describes each layer (the only place a layer is described to the
suite); `reference.py` runs tf.keras (imported lazily: everything else works
without TensorFlow); `compare.py` holds the tolerance policy; `runner.py` runs a
case on both sides; `cli.py` is the `nntk-parity` command.
"""
