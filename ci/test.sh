#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#  1. lint (ruff) and the C build with -Werror (done by the install in env.sh);
#  2. every test (parity properties in the ci profile, harness self-test, API,
#     C-API invalid-argument, bad-input and determinism tests) against the
#     default build (OpenBLAS);
#  3. the same tests against the portable C build (-DNNTK_BLAS=OFF), loaded
#     through NNTK_CORE_LIB;
#  4. ASan+UBSan and valgrind (ci/sanitize.sh);
#  5. libFuzzer for a bounded time (ci/fuzz.sh, NNTK_FUZZ_SECONDS, default 60).
# NNTK_SKIP_HARDENING=1 skips 4 and 5 (a quick local run). Extra arguments go
# to pytest in 2 and 3.
source "$(dirname "$0")/env.sh"
stage() { echo "== [$(date +%T), ${SECONDS}s] $*"; }

stage "lint"
ruff check .
ruff format --check .

# -P: import the installed nntk_core, not the checkout's (which has no library)
stage "tests: default build ($(python -P -c 'import nntk_core; print(nntk_core.BACKEND)'))"
pytest -q --hypothesis-profile=ci "$@"

stage "tests: portable C build"
cmake -S . -B build/portable -DNNTK_BLAS=OFF -DNNTK_WERROR=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/portable -j2 >/dev/null
NNTK_CORE_LIB="$PWD/build/portable/libnntk.so" pytest -q --hypothesis-profile=ci "$@"

if [ "${NNTK_SKIP_HARDENING:-0}" != 1 ]; then
  stage "sanitizers and valgrind"
  bash ci/sanitize.sh
  stage "fuzzing"
  bash ci/fuzz.sh
fi
stage "done"
