#!/usr/bin/env bash
# Measured C coverage of nntk_core/csrc (issue 12 §2; docs/coverage.md), by gcov + gcovr.
#
#   bash ci/coverage.sh replay [--check]   fixture replay (no TensorFlow) under each kernel
#                                          table in turn (NNTK_ISA=generic, avx2, avx512;
#                                          without AVX-512 the first two, own floors),
#                                          then the C model's tests (tests/test_c_model.py,
#                                          no TensorFlow), the thread-count tests
#                                          (the worker pool) and the tile-boundary
#                                          products; ~3 min with the build. --check:
#                                          CI's floor (below).
#   bash ci/coverage.sh ci                 the live ci profile against tf.keras (nntk-parity run
#                                          --profile ci, the CPU's own table); ~10 min: nightly.
#   bash ci/coverage.sh <mode> --report-only   the table and reports again from the counters of
#                                          that mode's last run (e.g. after editing exclusions).
#
# Builds the library with gcov counters (-DNNTK_COVERAGE=ON) into build/coverage/<mode>, loads
# it through NNTK_CORE_LIB, runs the suite, then prints the per-file line and branch table and
# writes build/coverage-report/<mode>/: index.html (every file but the kernel tables,
# uncovered lines and branches marked), kernels-<table>/index.html (core/kernels_impl.inc
# and core/vmath.h as that table ran them), table.md and summary.json.
#
# RelWithDebInfo (-O2 -g): the kernels' tile shapes are compile-time constants after
# inlining, and -O2 folds the `if (i < mr)` tests on them before gcov instruments the code,
# so the branches counted are the ones the running code has (at -O0 every tile would show
# dozens of branches that can never go the other way). kernels_impl.inc is compiled once per
# table, so it is counted once per table (each table's own .gcda): a branch taken by one
# table does not count for another.
#
# Exclusions (argument validation, API-state checks, allocation failure) are listed with
# their reasons in ci/gcovr.cfg (patterns) and in the C (GCOVR_EXCL_BR_START/STOP);
# tests/test_coverage_tool.py proves each excluded line guards an error exit.
source "$(dirname "$0")/env.sh"

# The replay floors that --check enforces, each the figure measured on the committed
# fixtures minus a margin of 0.5 (docs/coverage.md): the total branch and line coverage
# of nntk_core/csrc, and the branch coverage of the layer, kernel and training code
# (the files ci/coverage_table.py's GOAL names; issue 12 §2's goal). Raise them when
# fixtures add coverage.
# A CPU without AVX-512 (the AMD EPYC machines CI sometimes gets) cannot execute the
# avx512 table: its replay runs generic and avx2 only, whose fully covered avx512 rows
# are then missing from the totals. Its floors are that set's own figures, measured the
# same way (2026-12-07, AMD EPYC, with the tile-boundary products: branches 88.5 %, lines
# 95.05 %, layer/kernel/training branches 95.4 %), minus the same margin (the line floor
# kept at its earlier 94.6).
read -ra TABLES <<<"$(python -P -m parity.c_contract tables)" # every table this CPU executes
if [ "${TABLES[*]}" = "generic avx2 avx512" ]; then
  FLOOR_BRANCH=${NNTK_COVERAGE_FLOOR_BRANCH:-88.7}
  FLOOR_LINE=${NNTK_COVERAGE_FLOOR_LINE:-94.9}
  FLOOR_GOAL=${NNTK_COVERAGE_FLOOR_GOAL:-95.9}
else
  FLOOR_BRANCH=${NNTK_COVERAGE_FLOOR_BRANCH:-88.0}
  FLOOR_LINE=${NNTK_COVERAGE_FLOOR_LINE:-94.6}
  FLOOR_GOAL=${NNTK_COVERAGE_FLOOR_GOAL:-94.9}
fi

mode=${1:-replay}
check=0 run=1
case ${2:-} in --check) check=1 ;; --report-only) run=0 ;; "") ;; *) mode=bad ;; esac
case $mode in replay | ci) ;; *)
  echo "usage: bash ci/coverage.sh replay|ci [--check|--report-only]" >&2
  exit 2
  ;;
esac
BUILD=build/coverage/$mode
REPORT=build/coverage-report/$mode
OBJ=$BUILD/CMakeFiles/nntk.dir/nntk_core/csrc/src/core
export NNTK_CORE_LIB="$PWD/$BUILD/libnntk.so"


measure() { # builds, runs the mode's suite; writes the tables it ran to $REPORT/tables
  cmake -S . -B $BUILD -DNNTK_COVERAGE=ON -DNNTK_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPython_EXECUTABLE="$(command -v python)" >/dev/null
  cmake --build $BUILD -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
  find $BUILD -name '*.gcda' -delete # counters from an earlier run would add up
  rm -rf "$REPORT"
  mkdir -p "$REPORT"
  if [ "$mode" = ci ]; then
    local used
    used=$(python -P -m parity.c_contract table)
    echo "== coverage: nntk-parity run --profile ci ($used table)"
    nntk-parity run --profile ci >"$REPORT/run.log" || { tail -n 60 "$REPORT/run.log"; exit 1; }
    tail -n 3 "$REPORT/run.log"
    echo "$used" >"$REPORT/tables"
    return
  fi
  for table in "${TABLES[@]}"; do
    used=$(NNTK_ISA="$table" python -P -m parity.c_contract table)
    if [ "$used" != "$table" ]; then
      echo "coverage: this CPU cannot run the $table table (NNTK_ISA=$table gives $used)" >&2
      exit 1
    fi
    echo "== coverage: nntk-parity replay, $table table"
    NNTK_ISA="$table" nntk-parity replay --fixtures fixtures >"$REPORT/replay-$table.log" ||
      { cat "$REPORT/replay-$table.log"; exit 1; }
    tail -n 2 "$REPORT/replay-$table.log"
    echo "$table" >>"$REPORT/tables"
  done
  # The C model (src/model/: the model file's loader, runtime and writer) has no
  # fixtures: its own tests drive it against the Python side, without TensorFlow.
  echo "== coverage: the C model's tests (tests/test_c_model.py)"
  pytest -q -p no:cacheprovider tests/test_c_model.py >"$REPORT/c-model.log" ||
    { tail -n 40 "$REPORT/c-model.log"; exit 1; }
  tail -n 1 "$REPORT/c-model.log"
  # The worker pool (core/threads.c) runs only with a thread count above 1: replay's
  # "every split" variant splits at 2 threads; the thread-count tests drive the rest
  # (bitwise equal results for 1-5 threads, every split layer, W4's network, the pool's
  # resizing; no TensorFlow).
  echo "== coverage: the thread-count tests (tests/test_determinism.py)"
  pytest -q -p no:cacheprovider tests/test_determinism.py \
    -k "thread_count or split_layers or keyword_detector" >"$REPORT/threads.log" ||
    { tail -n 40 "$REPORT/threads.log"; exit 1; }
  tail -n 1 "$REPORT/threads.log"
  # The one-row product's forms by block width and depth (core/kernels_impl.inc: masked,
  # whole, and prefetching in a contiguous K block) under every table: the fixtures'
  # batch-1 widths do not reach them all.
  echo "== coverage: the tile-boundary products (tests/test_mutation_kills.py)"
  pytest -q -p no:cacheprovider tests/test_mutation_kills.py -k tile_boundary \
    >"$REPORT/tiles.log" || { tail -n 40 "$REPORT/tiles.log"; exit 1; }
  tail -n 1 "$REPORT/tiles.log"
}

[ $run = 1 ] && measure
mapfile -t ran <"$REPORT/tables"
# The kernel tables' units (kernels_<table>.c: kernels_impl.inc and the vmath.h it
# includes) are reported per table, from that table's own counters; every other unit
# together (its vmath.h is activations.c's).
mapfile -t others < <(find $BUILD -name '*.gcda' ! -name 'kernels_*')
gcovr --config ci/gcovr.cfg "${others[@]}" --html-details "$REPORT/index.html" \
  --json-summary "$REPORT/files.json" >/dev/null
for table in "${ran[@]}"; do
  mkdir -p "$REPORT/kernels-$table"
  gcovr --config ci/gcovr.cfg "$OBJ/kernels_$table.c.gcda" \
    --html-details "$REPORT/kernels-$table/index.html" --json-summary "$REPORT/kernels-$table.json" \
    >/dev/null
done
args=(--mode "$mode" --report "$REPORT" --tables "${ran[@]}")
[ $check = 1 ] &&
  args+=(--floor-branch "$FLOOR_BRANCH" --floor-line "$FLOOR_LINE" --floor-goal "$FLOOR_GOAL")
python ci/coverage_table.py "${args[@]}"
echo "coverage: HTML report in $REPORT/index.html (kernels per table: $REPORT/kernels-<table>/)"
