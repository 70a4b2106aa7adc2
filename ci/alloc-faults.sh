#!/usr/bin/env bash
# Allocation-failure injection (issue #15 §1, docs/reliability.md). Any failure fails the run.
#
# Builds the library with -DNNTK_ALLOC_FAULTS=ON (its malloc/calloc/realloc wrapped
# so the n-th can be made to fail) and ASan+UBSan, then:
#  1. tests/c/alloc_faults.c: every allocation of every public C path failed in
#     turn (status, message, no output, bitwise recovery, no leak: LeakSanitizer on),
#     the model (nntk/model.h) of each fuzz/model_corpus file included (load,
#     inference, steps, save, reload); it prints the number of sites tried;
#  2. tests/alloc_faults_check.py: the same from Python (NNTKError, never a crash),
#     in the uninstrumented Python with the sanitizer runtime preloaded.
# The whole loop takes seconds, so CI runs it in full on the portable build (where
# ASan sees every access). Nightly: NNTK_ALLOC_FAULTS_BACKENDS="portable openblas".
# NNTK_ALLOC_FAULTS_SEED / NNTK_ALLOC_FAULTS_PERCENT run a seeded share of the
# config variants instead (every layer's base config always runs).
#
# Usage: bash ci/alloc-faults.sh        Needs gcc with libasan/libubsan.
source "$(dirname "$0")/env.sh"
JOBS=$(nproc 2>/dev/null || echo 2)
ASAN_RT=$(gcc -print-file-name=libasan.so)
UBSAN_RT=$(gcc -print-file-name=libubsan.so)
[ -f "$ASAN_RT" ] && [ -f "$UBSAN_RT" ] || { echo "gcc's libasan/libubsan not found" >&2; exit 1; }
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

for backend in ${NNTK_ALLOC_FAULTS_BACKENDS:-portable}; do
  dir=build/alloc-faults-$backend
  cmake -S . -B "$dir" -DNNTK_WERROR=ON -DNNTK_BUILD_C_TESTS=ON -DNNTK_ALLOC_FAULTS=ON \
    -DNNTK_SANITIZE=ON -DNNTK_BLAS=$([ "$backend" = openblas ] && echo ON || echo OFF) \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython_EXECUTABLE="$(command -v python)" >/dev/null
  cmake --build "$dir" -j"$JOBS" --target nntk nntk_alloc_faults >/dev/null
  echo "== allocation failures ($backend): every public C path (LeakSanitizer on)"
  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 "$dir/nntk_alloc_faults" \
    "${NNTK_ALLOC_FAULTS_SEED:-1}" "${NNTK_ALLOC_FAULTS_PERCENT:-100}" fuzz/model_corpus/*.nntk
  echo "== allocation failures ($backend): from Python"
  LD_PRELOAD="$ASAN_RT $UBSAN_RT" ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 \
    NNTK_CORE_LIB="$PWD/$dir/libnntk.so" pytest -q -p no:cacheprovider tests/alloc_faults_check.py
done
