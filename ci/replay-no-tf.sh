#!/usr/bin/env bash
# The fixture gate where TensorFlow cannot be installed: builds nntk into a virtual
# environment that has NO TensorFlow (numpy, hypothesis, rich, scipy-openblas32, h5py and
# the project installed with --no-deps), proves TensorFlow is absent, then replays
# every golden fixture against the native library, and loads the recorded tf.keras
# model files with nn.load_keras (h5py installed for it). Fails if TensorFlow is
# importable, if replay fails or if a loaded model does not give tf.keras's recorded
# predictions. Prints the replay's time (the budget is 5 s: a benchmark figure,
# reported here, not a pass/fail condition on a shared CI machine).
# Usage: bash ci/replay-no-tf.sh   (NNTK_FRESH_VENV=1 rebuilds .venv-notf)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV=.venv-notf
if [ "${NNTK_FRESH_VENV:-0}" = 1 ] || [ ! -x "$VENV/bin/python" ]; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# h5py: nn.load_keras (the nntk[keras] extra), checked below on tests/keras_models/.
"$VENV/bin/python" -m pip install -q "numpy>=1.26" "hypothesis>=6.100" "rich>=13" "scipy-openblas32>=0.3.27" "h5py>=3.8"
"$VENV/bin/python" -m pip install -q --no-deps --force-reinstall . -Ccmake.define.NNTK_WERROR=ON

if ! "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('tensorflow', 'tf_keras')))"; then
  echo "replay-no-tf: TensorFlow is importable in $VENV; this check needs an environment without it" >&2
  exit 1
fi
echo "== replay without TensorFlow ($VENV has neither tensorflow nor tf_keras)"
# Run from outside the checkout so the installed package (not ./parity) is used;
# NNTK_CORE_LIB unset so the library built into the environment is the one checked.
ROOT=$PWD
start=${EPOCHREALTIME/./}
(cd / && env -u NNTK_CORE_LIB "$ROOT/$VENV/bin/nntk-parity" replay \
  --fixtures "$ROOT/fixtures" --report "$ROOT/build/replay-no-tf")
elapsed_ms=$(( (${EPOCHREALTIME/./} - start) / 1000 ))
echo "replay-no-tf: the replay command took ${elapsed_ms} ms, its report included; report in build/replay-no-tf"
echo "== tf.keras model files loaded without TensorFlow (tests/keras_models: the keyword detector,"
echo "   its bidirectional variant, a causal-conv SimpleRNN classifier; .keras and .h5)"
(cd / && env -u NNTK_CORE_LIB "$ROOT/$VENV/bin/python" -P "$ROOT/tests/keras_networks.py" check)
