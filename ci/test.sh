#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#  1. lint (ruff) and the C build with -Werror (done by the install in env.sh);
#  2. the golden fixtures replayed in a virtual environment WITHOUT TensorFlow
#     (ci/replay-no-tf.sh: proves replay needs no TensorFlow), then under each
#     kernel table this CPU executes in turn, forced with NNTK_ISA (ci/kernel-tables.sh, 6-20 s a
#     table); then mutation testing of the C library on a small seeded sample,
#     replay only, against its floor (ci/mutation.sh, ~3 min; the full run is the
#     nightly job in docs/mutation.md);
#  2b. the C library for a consumer without Python (ci/c-example.sh: CMake install,
#     examples/c/keyword_detector.c built with find_package(nntk) and with
#     pkg-config, run, its loss must fall);
#  3. every test (live parity properties in the ci profile, fixture replay and its
#     failure modes, freshness of the fixtures against tf.keras, reports, CLI,
#     harness self-test, API, C-API invalid-argument, bad-input and determinism
#     tests) against the default build (OpenBLAS), on both cores (pytest-xdist);
#  4. C coverage of the fixture replay under every kernel table, against its floor
#     (ci/coverage.sh replay --check, ~1 min; docs/coverage.md);
#  5. ASan+UBSan and valgrind (ci/sanitize.sh): the same tests, the harness's own
#     apart, against the portable C build (-DNNTK_BLAS=OFF -DNNTK_SIMD=OFF: plain C,
#     no BLAS, no intrinsics) under ASan+UBSan, loaded through NNTK_CORE_LIB (CI's
#     pass over the portable build; NNTK_SKIP_HARDENING=1 runs them on its plain
#     build instead), a seeded sample against the OpenBLAS build; every allocation
#     failed in turn (ci/alloc-faults.sh) and ThreadSanitizer (ci/tsan.sh;
#     docs/reliability.md);
#  6. libFuzzer for a bounded time (ci/fuzz.sh, NNTK_FUZZ_SECONDS, default 60);
#  7. the plain-C kernels cross-compiled for aarch64 (NEON) and run under qemu: the
#     smoke test, and recurrent outputs bitwise equal to x86-64's (ci/aarch64.sh).
# NNTK_SKIP_HARDENING=1 skips 5 to 7 (a quick local run) and runs the tests against
# the plain portable build instead. Extra arguments go to pytest in 3 (and in that
# portable pass).
# Slow tests (full-size model parity) run in 3 and 5. The tf.keras side of a
# model-parity run does not depend on nntk: pass 3 records it in
# build/model-reference-cache (emptied first, so every CI run computes each
# reference live, once) and the later passes reuse it.
source "$(dirname "$0")/env.sh"
stage() { echo "== [$(date +%T), ${SECONDS}s] $*"; }

stage "lint"
ruff check .
ruff format --check .

stage "replay without TensorFlow"
bash ci/replay-no-tf.sh

stage "replay under every kernel table this CPU executes (generic, avx2, avx512)"
bash ci/kernel-tables.sh

stage "mutation testing: seeded sample, replay (docs/mutation.md)"
bash ci/mutation.sh

stage "C example against the installed library"
bash ci/c-example.sh

rm -rf build/model-reference-cache
export NNTK_MODEL_REFERENCE_CACHE="$PWD/build/model-reference-cache"

# -P: import the installed nntk_core, not the checkout's (which has no library)
stage "tests: default build ($(python -P -c 'import nntk_core; print(nntk_core.BACKEND)'))"
pytest -q -n 2 --hypothesis-profile=ci "$@"

stage "C coverage of the fixture replay (every kernel table) against its floor"
bash ci/coverage.sh replay --check

if [ "${NNTK_SKIP_HARDENING:-0}" != 1 ]; then
  stage "system tools for the hardening gates (installs only what is missing)"
  bash ci/system-packages.sh
  stage "sanitizers and valgrind"
  bash ci/sanitize.sh
  stage "allocation-failure injection (every allocation failed in turn)"
  bash ci/alloc-faults.sh
  stage "ThreadSanitizer"
  bash ci/tsan.sh
  stage "fuzzing"
  bash ci/fuzz.sh
  stage "aarch64 (NEON) build under qemu"
  bash ci/aarch64.sh
else
  stage "tests: portable C build (CI runs them under ASan+UBSan in ci/sanitize.sh)"
  cmake -S . -B build/portable -DNNTK_BLAS=OFF -DNNTK_SIMD=OFF -DNNTK_WERROR=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/portable -j2 >/dev/null
  NNTK_CORE_LIB="$PWD/build/portable/libnntk.so" pytest -q -n 2 --hypothesis-profile=ci "$@"
fi
stage "done"
