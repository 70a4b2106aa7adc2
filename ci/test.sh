#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#  1. lint (ruff) and the C build with -Werror (done by the install in env.sh);
#  2. the golden fixtures replayed in a virtual environment WITHOUT TensorFlow
#     (ci/replay-no-tf.sh: proves replay needs no TensorFlow, and takes <= 5 s);
#  3. every test (live parity properties in the ci profile, fixture replay and its
#     failure modes, freshness of the fixtures against tf.keras, reports, CLI,
#     harness self-test, API, C-API invalid-argument, bad-input and determinism
#     tests) against the default build (OpenBLAS), on both cores (pytest-xdist);
#  4. the same tests against the portable C build (-DNNTK_BLAS=OFF), loaded
#     through NNTK_CORE_LIB;
#  5. ASan+UBSan and valgrind (ci/sanitize.sh);
#  6. libFuzzer for a bounded time (ci/fuzz.sh, NNTK_FUZZ_SECONDS, default 60).
# NNTK_SKIP_HARDENING=1 skips 5 and 6 (a quick local run). Extra arguments go
# to pytest in 3 and 4.
source "$(dirname "$0")/env.sh"
stage() { echo "== [$(date +%T), ${SECONDS}s] $*"; }

stage "lint"
ruff check .
ruff format --check .

stage "replay without TensorFlow"
bash ci/replay-no-tf.sh

# -P: import the installed nntk_core, not the checkout's (which has no library)
stage "tests: default build ($(python -P -c 'import nntk_core; print(nntk_core.BACKEND)'))"
pytest -q -n 2 --hypothesis-profile=ci "$@"

stage "tests: portable C build"
cmake -S . -B build/portable -DNNTK_BLAS=OFF -DNNTK_WERROR=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/portable -j2 >/dev/null
NNTK_CORE_LIB="$PWD/build/portable/libnntk.so" pytest -q -n 2 --hypothesis-profile=ci "$@"

if [ "${NNTK_SKIP_HARDENING:-0}" != 1 ]; then
  stage "sanitizers and valgrind"
  bash ci/sanitize.sh
  stage "fuzzing"
  bash ci/fuzz.sh
fi
stage "done"
