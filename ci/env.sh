# Sourced by the ci/ scripts: a virtual environment with nntk and its test
# extras installed, built from this checkout with warnings as errors.
# Reuses .venv when it exists (set NNTK_FRESH_VENV=1 to rebuild it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ "${NNTK_FRESH_VENV:-0}" = 1 ] || [ ! -x .venv/bin/python ]; then
  rm -rf .venv
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
# Non-editable install: the tests import the installed package and library.
python -m pip install -q ".[dev]" -Ccmake.define.NNTK_WERROR=ON
