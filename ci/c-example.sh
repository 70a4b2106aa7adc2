#!/usr/bin/env bash
# nntk for a C consumer: configure, build and install the library with CMake (the
# portable C build) into a temporary prefix, then build the examples/c programs
# against the installed copy twice, with find_package(nntk)
# (examples/c/CMakeLists.txt) and with pkg-config. keyword_detector runs on a model
# file written by the Python binding (nntk_core, no TensorFlow): it infers, trains
# (the loss must fall), saves, reloads and checks; it then resumes from its own
# file, which nn.load also reads. keyword_detector_layers (the step composed by
# hand) runs with its own weights and with weights exported from Python.
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
for f in include/nntk/nntk.h include/nntk/optimizer.h include/nntk/model.h; do
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
for example in keyword_detector keyword_detector_layers; do
  # shellcheck disable=SC2046
  "$CC" -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 $(pkg-config --cflags nntk) \
    "examples/c/$example.c" -o "$WORK/${example}_pc" \
    $(pkg-config --libs nntk) -lm -Wl,-rpath,"$(pkg-config --variable=libdir nntk)"
done

# Runs an example into $WORK/out; passes when it exits 0 and its last loss is
# below its first.
run() {
  "$@" >"$WORK/out" || { echo "c-example: $* failed" >&2; exit 1; }
  sed 's/^/  /' "$WORK/out"
  awk '/^loss .* -> / { found = 1; if (!($4 < $2)) bad = 1 } END { exit !(found && !bad) }' \
    "$WORK/out" || { echo "c-example: the loss did not fall ($*)" >&2; exit 1; }
}

# The model file the example starts from: the keyword detector written by the
# Python binding (nntk_core, no TensorFlow), as an app's developer would ship it.
(cd / && python -c "import nntk_core" 2>/dev/null) || {
  echo "c-example: nntk_core is not importable (source ci/env.sh): it writes the model file" >&2
  exit 1; }
echo "== C example: the model file, written by Python (Sequential.save)"
(cd / && python - "$WORK/detector.nntk" "$WORK/weights.f32" <<'PY'
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
model.save(sys.argv[1])
np.concatenate([w.ravel() for w in model.get_weights()]).astype("<f4").tofile(sys.argv[2])
PY
)

echo "== C example: run on the model file (find_package build): infer, train, save, reload"
run "$WORK/example/keyword_detector" "$WORK/detector.nntk" "$WORK/trained.nntk"
cp "$WORK/out" "$WORK/out.cmake"
cp "$WORK/trained.nntk" "$WORK/trained.cmake.nntk"
echo "== C example: run (pkg-config build)"
run "$WORK/keyword_detector_pc" "$WORK/detector.nntk" "$WORK/trained.nntk" >/dev/null
cmp -s "$WORK/out" "$WORK/out.cmake" || {
  echo "c-example: the pkg-config build printed something else" >&2; exit 1; }
cmp -s "$WORK/trained.nntk" "$WORK/trained.cmake.nntk" || {
  echo "c-example: the pkg-config build saved another file" >&2; exit 1; }
echo "  (the same output and the same saved file)"
echo "== C example: resume from the file it saved (its Adam state and step count)"
run "$WORK/example/keyword_detector" "$WORK/trained.nntk" "$WORK/resumed.nntk" >/dev/null
grep -q "the file's optimizer, after its 16 steps" "$WORK/out" || {
  cat "$WORK/out" >&2; echo "c-example: the optimizer was not resumed" >&2; exit 1; }
echo "  (resumed at step 16)"
echo "== C example: nn.load reads the file C saved"
(cd / && python - "$WORK/resumed.nntk" <<'PY'
import sys

import nntk_core as nn

model = nn.load(sys.argv[1])
assert model.optimizer is not None and model.optimizer.iterations == 32, model.optimizer
print(f"  nn.load: {len(model.layers)} layers, optimizer {type(model.optimizer).__name__} "
      f"at step {model.optimizer.iterations}")
PY
)
if "$WORK/example/keyword_detector" "$WORK/weights.f32" "$WORK/x.nntk" >/dev/null 2>"$WORK/err"; then
  echo "c-example: a file that is not a model file was accepted" >&2; exit 1
fi
grep -q "not an nntk model file" "$WORK/err" || { cat "$WORK/err" >&2; exit 1; }

echo "== C example: the training step composed by hand from the layer API"
run "$WORK/example/keyword_detector_layers"
cp "$WORK/out" "$WORK/out.cmake"
run "$WORK/keyword_detector_layers_pc" >/dev/null
cmp -s "$WORK/out" "$WORK/out.cmake" || {
  echo "c-example: the pkg-config build printed something else" >&2; exit 1; }
echo "== C example (layers): weights exported from Python (tf.keras model.get_weights() order)"
run "$WORK/example/keyword_detector_layers" "$WORK/weights.f32"
head -c 100 "$WORK/weights.f32" > "$WORK/short.f32"
if "$WORK/example/keyword_detector_layers" "$WORK/short.f32" >/dev/null 2>"$WORK/err"; then
  echo "c-example: a truncated weights file was accepted" >&2; exit 1
fi
grep -q "must hold exactly" "$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
echo "c-example: passed"
