#!/usr/bin/env bash
# Nightly (issue #15 §3, docs/reliability.md §3): every randomized parity and model
# test run NNTK_SEED_RUNS times (default 20), each with a different hypothesis seed,
# in the nightly profile (randomized, 2000 examples per layer; the drawn model, loss
# and optimizer tests fix their own counts). Zero failures are
# expected; the figures go to docs/reliability.md §3.
#
#   bash ci/nightly-seeds.sh                  # the nightly job (hours: spread with -n auto)
#   NNTK_SEED_PROFILE=dev NNTK_SEED_RUNS=20 bash ci/nightly-seeds.sh tests/test_model_keras.py
#
# Arguments: the test files (default: every file with hypothesis-drawn parity or model
# cases). NNTK_SEED_FIRST: the first seed (default 1). Prints one line per seed and a
# summary (a failing seed's log kept in build/nightly-seeds/); exits 1 if any run
# failed. A failing seed is reproduced with (tests/test_parity.py derives each layer's
# search seed from it)
#   pytest --hypothesis-profile=nightly --hypothesis-seed=SEED FILE
source "$(dirname "$0")/env.sh"
RUNS=${NNTK_SEED_RUNS:-20}
FIRST=${NNTK_SEED_FIRST:-1}
PROFILE=${NNTK_SEED_PROFILE:-nightly}
WORKERS=${NNTK_SEED_WORKERS:-auto}
FILES=("$@")
[ ${#FILES[@]} -gt 0 ] || FILES=(tests/test_parity.py tests/test_model_keras.py tests/test_losses_keras.py
  tests/test_optimizers_keras.py)
failed=0
TIMEFORMAT='%R %U %S' # a seed's wall, user and system seconds (CPU time: what a shared machine cannot inflate)
for ((seed = FIRST; seed < FIRST + RUNS; seed++)); do
  log=$(mktemp)
  if { time pytest -q -p no:cacheprovider -n "$WORKERS" --hypothesis-profile="$PROFILE" \
    --hypothesis-seed="$seed" "${FILES[@]}" >"$log" 2>&1; } 2>"$log.time"; then
    status=passed
  else
    status=FAILED
    failed=$((failed + 1))
    grep -E "^(FAILED|ERROR)" "$log" | sed 's/^/    /'
    mkdir -p build/nightly-seeds # the whole log kept: the findings, their minimal cases
    cp "$log" "build/nightly-seeds/seed-$seed.log"
    echo "    log: build/nightly-seeds/seed-$seed.log"
  fi
  read -r wall user system <"$log.time"
  echo "seed $seed: $status, $(tail -1 "$log" | tr -d '=') (${wall%.*} s, CPU $(awk "BEGIN {printf \"%.0f\", $user + $system}") s)"
  rm -f "$log" "$log.time"
done
echo "nightly-seeds: $RUNS runs (seeds $FIRST-$((FIRST + RUNS - 1)), profile $PROFILE) of ${FILES[*]}: $failed failed"
[ "$failed" -eq 0 ]
