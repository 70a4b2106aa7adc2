#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#  1. lint (ruff) and the C build with -Werror (done by the install in env.sh);
#  2. the golden fixtures replayed in a virtual environment WITHOUT TensorFlow
#     (ci/replay-no-tf.sh: proves replay needs no TensorFlow, and takes <= 5 s);
#  2b. the C library for a consumer without Python (ci/c-example.sh: CMake install,
#     examples/c/keyword_detector.c built with find_package(nntk) and with
#     pkg-config, run, its loss must fall);
#  3. every test (live parity properties in the ci profile, fixture replay and its
#     failure modes, freshness of the fixtures against tf.keras, reports, CLI,
#     harness self-test, API and bad-input tests) against the default build (OpenBLAS);
#  4. the same tests against the portable C build (-DNNTK_BLAS=OFF), loaded
#     through NNTK_CORE_LIB.
# Slow tests (full-size model parity) run too. The tf.keras side of a model-parity
# run does not depend on nntk: the first pass records it in build/model-reference-cache
# (emptied here first, so every CI run computes each reference live, once) and the
# second pass reuses it.
source "$(dirname "$0")/env.sh"
ruff check .
ruff format --check .

bash ci/replay-no-tf.sh
bash ci/c-example.sh

rm -rf build/model-reference-cache
export NNTK_MODEL_REFERENCE_CACHE="$PWD/build/model-reference-cache"

# (from / so the installed package is imported, not ./nntk_core without its library)
echo "== tests: default build ($(cd / && python -c 'import nntk_core; print(nntk_core.BACKEND)'))"
pytest -q --hypothesis-profile=ci "$@"

echo "== tests: portable C build"
cmake -S . -B build/portable -DNNTK_BLAS=OFF -DNNTK_WERROR=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/portable -j2 >/dev/null
NNTK_CORE_LIB="$PWD/build/portable/libnntk.so" pytest -q --hypothesis-profile=ci "$@"
