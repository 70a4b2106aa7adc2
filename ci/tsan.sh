#!/usr/bin/env bash
# ThreadSanitizer (issue #15 §2, docs/reliability.md): the library and
# tests/c/threads.c built with -fsanitize=thread, on the portable build and on the
# OpenBLAS build (its one-time thread setting; OpenBLAS itself is not instrumented).
# The program races the process's first calls (kernel table, OpenBLAS set-up) from
# several threads, then runs every layer, the losses, an optimizer and the model
# (nntk/model.h) of every fuzz/model_corpus file (loaded, run, trained, saved to the
# thread's own path, reloaded) on distinct handles in several threads at once and
# compares each thread's results bitwise with the main thread's; then two threads
# call one handle (a layer, an optimizer, a model) at once, and the overlapping
# calls must be refused (NNTK_ERROR_INVALID_STATE) while the accepted ones stay
# right. Any TSan report fails the run (halt_on_error, exitcode 66).
# Last, a deliberate race the library cannot see (a handle's weights written by the
# caller while another thread applies it) must be reported.
#
# Usage: bash ci/tsan.sh [rounds]   (default 2)      Needs gcc with libtsan.
source "$(dirname "$0")/env.sh"
JOBS=$(nproc 2>/dev/null || echo 2)
[ -f "$(gcc -print-file-name=libtsan.so)" ] || { echo "gcc's libtsan not found" >&2; exit 1; }
TSAN_FLAGS="-fsanitize=thread -fno-omit-frame-pointer"
export TSAN_OPTIONS=halt_on_error=1:exitcode=66:second_deadlock_stack=1

for backend in portable openblas; do
  dir=build/tsan-$backend
  cmake -S . -B "$dir" -DNNTK_WERROR=ON -DNNTK_BUILD_C_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DNNTK_BLAS=$([ "$backend" = openblas ] && echo ON || echo OFF) \
    -DCMAKE_C_FLAGS="$TSAN_FLAGS" -DCMAKE_EXE_LINKER_FLAGS="$TSAN_FLAGS" \
    -DCMAKE_SHARED_LINKER_FLAGS="$TSAN_FLAGS" -DPython_EXECUTABLE="$(command -v python)" >/dev/null
  cmake --build "$dir" -j"$JOBS" --target nntk_threads >/dev/null
  echo "== ThreadSanitizer ($backend): first calls raced, distinct handles in many threads"
  "$dir/nntk_threads" "${1:-2}" fuzz/model_corpus/*.nntk
done
# The sanitizer must be armed: a handle's weights written through GetWeights'
# pointer while another thread applies it (the caller's own access, which the
# library's call flag cannot see) has to be reported.
echo "== ThreadSanitizer: weights written during a call must be reported"
log=$(mktemp)
if TSAN_OPTIONS=exitcode=66 build/tsan-portable/nntk_threads --misuse >"$log" 2>&1 ||
  ! grep -q "WARNING: ThreadSanitizer: data race" "$log"; then
  cat "$log"
  echo "ThreadSanitizer did not report the weights written during a call" >&2
  exit 1
fi
rm -f "$log"
echo "  reported, as it must be"
