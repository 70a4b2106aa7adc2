# Sourced by the ci/ scripts: a virtual environment with nntk and its test
# extras installed, built from this checkout with warnings as errors.
# Reuses .venv when it exists (set NNTK_FRESH_VENV=1 to rebuild it); a script
# sourced from another that already set the environment up skips the install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ "${NNTK_ENV_READY:-}" = "$PWD" ] && [ -x .venv/bin/python ]; then
  # shellcheck disable=SC1091
  . .venv/bin/activate
  return 0
fi
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ "${NNTK_FRESH_VENV:-0}" = 1 ] || [ ! -x .venv/bin/python ]; then
  rm -rf .venv
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
# pip runs quietly (-q): say what it is doing, as its lines would not.
echo "== set-up: .venv <- nntk built from this checkout (-Werror) and its test extras" \
  "(the first time: TensorFlow included, 2.3 GB, 3-4 min or more while pip downloads)"
python -m pip install -q --upgrade pip
# Non-editable install: the tests import the installed package and library.
python -m pip install -q ".[dev]" -Ccmake.define.NNTK_WERROR=ON
export NNTK_ENV_READY="$PWD"
