"""parity: the verification suite that proves, layer by layer, that nntk computes
what tf.keras computes (outputs and gradients), with a float64 referee.

Layout: `specs/` describes each layer (the only place a layer is described to the
suite); `reference.py` runs tf.keras (imported lazily: everything else works without
TensorFlow); `compare.py` holds the tolerance policy; `runner.py` runs a case on both
sides; `fixtures.py` is the golden-fixture format, `record.py` writes fixtures from
tf.keras (`freshness.py` checks they still hold) and `replay.py` checks the native
library against them without TensorFlow; `report.py` writes JSON/Markdown/HTML/JUnit
reports (built by the `report_*.py` modules); `model_training.py` and `model_parity.py`
train whole models (the networks of nntk_models) step by step on both sides and compare
every step; `cli.py` is the `nntk-parity` command, whose subcommands live in their own
modules (`*_command.py`, sharing `terminal.py`; the benchmark and the worked examples in
the packages nntk_bench and nntk_examples).
"""
