#!/usr/bin/env bash
# Fuzzing (issue #7): fuzz/fuzz_layers.c with libFuzzer + ASan + UBSan (clang),
# for a bounded time, from the seed corpus (fuzz/corpus plus fresh seeds for
# every layer of the headers); then the model file loader, fuzz/fuzz_model_file.c
# (issue 14 §4), a short seeded run from fuzz/model_corpus (valid model files of
# the project's networks, which it mutates). Fails on any crash, leak, hang,
# sanitizer report or broken contract (the harnesses trap). New inputs go to a
# scratch corpus, not the repository.
#
# Usage: bash ci/fuzz.sh [seconds]      (default $NNTK_FUZZ_SECONDS or 60)
# The model file run: $NNTK_FUZZ_MODEL_SECONDS (default 30), -seed=1; nightly: more
# seconds and -seed=0 (random), e.g. NNTK_FUZZ_MODEL_SECONDS=3600 NNTK_FUZZ_MODEL_SEED=0.
# Needs clang with libFuzzer (ci/system-packages.sh).
source "$(dirname "$0")/env.sh"
SECONDS_TO_RUN=${1:-${NNTK_FUZZ_SECONDS:-60}}
command -v clang >/dev/null || { echo "clang not installed" >&2; exit 1; }
dir=build/fuzz
CC=clang cmake -S . -B "$dir" -DNNTK_FUZZ=ON -DNNTK_BLAS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPython_EXECUTABLE="$(command -v python)" >/dev/null
cmake --build "$dir" --target fuzz_layers fuzz_model_file -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
cp fuzz/corpus/* "$corpus"/
python fuzz/make_corpus.py "$corpus"
mkdir -p "$dir/artifacts"
echo "== libFuzzer: fuzz_layers for ${SECONDS_TO_RUN}s"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  "$dir/fuzz_layers" "$corpus" -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$dir/artifacts/" 2>"$dir/fuzz.log" || {
  tail -60 "$dir/fuzz.log"
  echo "fuzzing found a crash: reproduce with $dir/fuzz_layers $dir/artifacts/<crash file>" >&2
  exit 1
}
grep -E "^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb)" \
  "$dir/fuzz.log"

MODEL_SECONDS=${NNTK_FUZZ_MODEL_SECONDS:-30}
model_corpus=$(mktemp -d)
trap 'rm -rf "$corpus" "$model_corpus"' EXIT
cp fuzz/model_corpus/* "$model_corpus"/
echo "== libFuzzer: fuzz_model_file for ${MODEL_SECONDS}s (seed ${NNTK_FUZZ_MODEL_SEED:-1})"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  "$dir/fuzz_model_file" "$model_corpus" -seed="${NNTK_FUZZ_MODEL_SEED:-1}" \
  -max_total_time="$MODEL_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
  -print_final_stats=1 -artifact_prefix="$dir/artifacts/model-" 2>"$dir/fuzz_model.log" || {
  tail -60 "$dir/fuzz_model.log"
  echo "fuzzing found a crash: reproduce with $dir/fuzz_model_file $dir/artifacts/model-<crash file>" >&2
  exit 1
}
grep -E "^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb)" \
  "$dir/fuzz_model.log"
