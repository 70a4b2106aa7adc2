#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#  1. lint (ruff) and the C build with -Werror (done by the install in env.sh);
#  2. the golden fixtures replayed in a virtual environment WITHOUT TensorFlow
#     (ci/replay-no-tf.sh: proves replay needs no TensorFlow, and takes <= 5 s);
#  3. every test (live parity properties in the ci profile, fixture replay and its
#     failure modes, freshness of the fixtures against tf.keras, reports, CLI,
#     harness self-test, API and bad-input tests) against the default build (OpenBLAS);
#  4. the same tests against the portable C build (-DNNTK_BLAS=OFF), loaded
#     through NNTK_CORE_LIB.
source "$(dirname "$0")/env.sh"
ruff check .
ruff format --check .

bash ci/replay-no-tf.sh

# (from / so the installed package is imported, not ./nntk_core without its library)
echo "== tests: default build ($(cd / && python -c 'import nntk_core; print(nntk_core.BACKEND)'))"
pytest -q -n 2 --hypothesis-profile=ci "$@"

echo "== tests: portable C build"
cmake -S . -B build/portable -DNNTK_BLAS=OFF -DNNTK_WERROR=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/portable -j2 >/dev/null
NNTK_CORE_LIB="$PWD/build/portable/libnntk.so" pytest -q -n 2 --hypothesis-profile=ci "$@"
