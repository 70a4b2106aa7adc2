#!/usr/bin/env bash
# nntk for a C consumer without Python: configure, build and install the library
# with CMake (the portable C build) into a temporary prefix, then build
# examples/c/keyword_detector.c against the installed copy twice, with
# find_package(nntk) (examples/c/CMakeLists.txt) and with pkg-config, run both,
# and check that the loss fell. Also runs the example on weights exported from
# Python in tf.keras order (its WEIGHTS.f32 argument), when nntk_core is importable.
# Usage: bash ci/c-example.sh        (CC and CMAKE_GENERATOR are honoured)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nntk-c-example.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PREFIX=$WORK/prefix
CC=${CC:-cc}

echo "== C example: install nntk (portable build) into $PREFIX"
cmake -S . -B "$WORK/lib" -DNNTK_BLAS=OFF -DNNTK_WERROR=ON -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$PREFIX" >/dev/null
cmake --build "$WORK/lib" -j2 >/dev/null
cmake --install "$WORK/lib" >/dev/null
PC_FILE=$(find "$PREFIX" -name nntk.pc)
for f in include/nntk/nntk.h include/nntk/optimizer.h; do
  test -f "$PREFIX/$f" || { echo "c-example: $f was not installed" >&2; exit 1; }
done
test -n "$PC_FILE" || { echo "c-example: nntk.pc was not installed" >&2; exit 1; }
test -n "$(find "$PREFIX" -name nntkConfig.cmake)" || {
  echo "c-example: nntkConfig.cmake was not installed" >&2; exit 1; }
if command -v nm >/dev/null; then
  LIB=$(find "$PREFIX" -name 'libnntk.so.*.*.*' | head -1)
  stray=$(nm -D --defined-only "$LIB" | awk '$2 ~ /^[TDBR]$/ && $3 !~ /^NNTK/ {print $3}')
  if [ -n "$stray" ]; then
    echo "c-example: the installed library exports non-NNTK symbols: $stray" >&2
    exit 1
  fi
fi

echo "== C example: build against the installed package with find_package(nntk)"
cmake -S examples/c -B "$WORK/example" -DCMAKE_PREFIX_PATH="$PREFIX" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER="$CC" >/dev/null
cmake --build "$WORK/example" >/dev/null

echo "== C example: build with pkg-config"
export PKG_CONFIG_PATH=$(dirname "$PC_FILE")
# shellcheck disable=SC2046
"$CC" -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 $(pkg-config --cflags nntk) \
  examples/c/keyword_detector.c -o "$WORK/keyword_detector_pc" \
  $(pkg-config --libs nntk) -lm -Wl,-rpath,"$(pkg-config --variable=libdir nntk)"

# Runs the example into $WORK/out; passes when it exits 0 and its last loss is
# below its first.
run() {
  "$@" >"$WORK/out" || { echo "c-example: $* failed" >&2; exit 1; }
  sed 's/^/  /' "$WORK/out"
  awk '/^loss .* -> / { found = 1; if (!($4 < $2)) bad = 1 } END { exit !(found && !bad) }' \
    "$WORK/out" || { echo "c-example: the loss did not fall ($*)" >&2; exit 1; }
}
echo "== C example: run (find_package build)"
run "$WORK/example/keyword_detector"
cp "$WORK/out" "$WORK/out.cmake"
echo "== C example: run (pkg-config build)"
run "$WORK/keyword_detector_pc" >/dev/null
cmp -s "$WORK/out" "$WORK/out.cmake" || {
  echo "c-example: the pkg-config build printed something else" >&2; exit 1; }
echo "  (the same output)"

if (cd / && python -c "import nntk_core" 2>/dev/null); then
  echo "== C example: weights exported from Python (tf.keras model.get_weights() order)"
  (cd / && python - "$WORK/weights.f32" <<'PY'
import sys

import numpy as np

import nntk_core as nn

nn.set_random_seed(0)
model = nn.Sequential([
    nn.Conv1d(64, 5, input_dim=40, padding="same"),
    nn.BatchNorm(64, momentum=0.9),
    nn.Activation("relu"),
    nn.GRU(64, input_dim=64, return_sequences=True),
    nn.BatchNorm(64, momentum=0.9),
    nn.GRU(64, input_dim=64, return_sequences=True),
    nn.TimeDistributedDense(2, input_dim=64, activation="softmax"),
])
np.concatenate([w.ravel() for w in model.get_weights()]).astype("<f4").tofile(sys.argv[1])
PY
  )
  run "$WORK/example/keyword_detector" "$WORK/weights.f32"
  head -c 100 "$WORK/weights.f32" > "$WORK/short.f32"
  if "$WORK/example/keyword_detector" "$WORK/short.f32" >/dev/null 2>"$WORK/err"; then
    echo "c-example: a truncated weights file was accepted" >&2; exit 1
  fi
  grep -q "must hold exactly" "$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
fi
echo "c-example: passed"
