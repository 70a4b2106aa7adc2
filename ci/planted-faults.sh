#!/usr/bin/env bash
# Diagnosis with several planted faults (issue #12 §6): the live gate, run on a
# library with three small faults planted in three different layer files
# (ci/planted/three-faults.patch), must exit 1, name every fault with its option value,
# its quantity and an element location, and report no failure in any other layer.
#
#   activation.c  elu's input gradient 1% off in row 1       -> activation grad:input, activation='elu'
#   batch_norm.c  scale=False takes gamma as 1.01 in dx      -> batch_norm grad:input, scale=False
#   conv1d.c      causal padding one step short              -> conv1d outputs and grads, padding='causal'
#
# It copies the C sources to a temporary directory, applies the patch, builds that
# library with cmake and runs `nntk-parity run` on it (NNTK_CORE_LIB), then checks the
# console output and report.json. A nightly job: about 10 min on 2 cores with the ci
# profile (the planted faults' shrinking included). Usage:
#   bash ci/planted-faults.sh [PROFILE]      (default ci; dev for a quicker look)
source "$(dirname "$0")/env.sh"
PROFILE=${1:-ci}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cp -r CMakeLists.txt cmake nntk_core "$WORK"/
patch -s -d "$WORK" -p1 <ci/planted/three-faults.patch
cmake -S "$WORK" -B "$WORK/build" -DNNTK_WERROR=ON -DCMAKE_BUILD_TYPE=Release \
  -DPython_EXECUTABLE="$(command -v python)" >/dev/null
cmake --build "$WORK/build" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
LIB=$(find "$WORK/build" -name 'libnntk.so' | head -n 1)
[ -n "$LIB" ] || { echo "planted-faults: the faulty library was not built" >&2; exit 1; }

echo "== nntk-parity run --profile $PROFILE on $LIB (3 planted faults)"
start=$SECONDS
set +e
NNTK_CORE_LIB="$LIB" nntk-parity run --profile "$PROFILE" --report "$WORK/report" \
  | tee "$WORK/console.txt"
status=${PIPESTATUS[0]}
set -e
echo "== run took $((SECONDS - start)) s, exit status $status"
[ "$status" = 1 ] || { echo "planted-faults: expected exit status 1, got $status" >&2; exit 1; }

python - "$WORK/report/report.json" "$WORK/console.txt" <<'EOF'
import json
import sys

report = json.load(open(sys.argv[1]))
console = open(sys.argv[2]).read()
# layer -> (a quantity that must fail, the option value that must be named)
expected = {
    "activation": ("grad:input", "activation='elu'"),
    "batch_norm": ("grad:input", "scale=False"),
    "conv1d": ("output:training", "padding='causal'"),
}
problems = []
failing = {layer["layer"]: layer for layer in report["layers"] if not layer["passed"]}
if set(failing) != set(expected):
    problems.append(f"failing layers {sorted(failing)}, expected exactly {sorted(expected)}")
for name, (quantity, option) in expected.items():
    layer = failing.get(name)
    if layer is None:
        continue
    titles = [f["title"] for f in layer["findings"] if f["kind"] == "numeric"]
    named = [f for f in layer["findings"] if option in f["title"] and quantity in f["columns"]]
    if not named:
        problems.append(f"{name}: no finding names {quantity} with {option}: {titles}")
        continue
    where = named[0]["worst"].get(quantity, {}).get("location", "")
    if "[" not in where:
        problems.append(f"{name}: no element location for {quantity}: {where!r}")
    elif where not in console:
        problems.append(f"{name}: the console lacks the location {where!r}")
    if named[0]["repro"] not in console:
        problems.append(f"{name}: the console lacks the repro command {named[0]['repro']}")
    print(f"found {name}: {named[0]['title']}; worst {where}; {named[0]['repro']}")
    stray = [t for t in titles if option not in t]
    if stray:
        problems.append(f"{name}: findings that do not name {option}: {stray}")
for problem in problems:
    print(f"planted-faults: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
echo "planted-faults: every planted fault named, no other layer failed"
