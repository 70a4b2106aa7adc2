#!/usr/bin/env bash
# Mutation testing of the C library: how many faults planted by universalmutator do the
# suite's checks catch? (docs/mutation.md; the driver is tools/mutation/mutate.py.)
#
#   bash ci/mutation.sh            CI: the head of the documented sample (seed 20261206,
#                                  the first NNTK_MUTATION_SAMPLE=30 mutants, about 15 that
#                                  compile), replay only; fails when the sample's replay
#                                  kill rate over non-equivalent mutants is below
#                                  NNTK_MUTATION_FLOOR (90: the measured 90.0%, 9 of 10, on
#                                  the sources with the chain/model stream; its survivor is
#                                  an allocation-failure path, which replay never makes and
#                                  the live stage's allocation-failure loop kills,
#                                  docs/mutation.md).
#                                  About 2 min on 2 cores.
#   NNTK_MUTATION_FULL=1 bash ci/mutation.sh
#                                  nightly: the documented sample, 700 mutants (219
#                                  non-equivalent today) with the live stage for replay
#                                  survivors; fails below 95% by replay and 98% by replay
#                                  + live (the issue's goal; measured 95.4% and 100%,
#                                  docs/mutation.md). The live stage runs the
#                                  allocation-failure loop and the C thread test too.
#                                  ~45 min replay on an idle machine, ~1-2 h live.
#                                  Resumes an interrupted run of the same sources and
#                                  fixtures.
# Builds in build/mutation/ (a private copy of the sources: the checkout is never
# modified); the figures go to build/mutation/*.md and the per-mutant results to
# build/mutation/*.json.
source "$(dirname "$0")/env.sh"
# The `mutation` extra's requirements, read from pyproject.toml (installing the extra
# itself would rebuild the library). --no-deps: the driver uses only universalmutator's
# regular-expression mutator (no comby, Levenshtein or tabulate), and its comby
# dependency pulls in the obsolete `typing` backport, which shadows the standard
# library's in subprocesses of this environment.
python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["mutation"]))' \
  | xargs python -m pip install -q --no-deps
SEED=20261206
if [ "${NNTK_MUTATION_FULL:-0}" = 1 ]; then
  python tools/mutation/mutate.py --seed "$SEED" --sample 700 --resume \
    --results build/mutation/full.json --table build/mutation/full.md \
    --floor-replay 95 --floor-total 98
else
  python tools/mutation/mutate.py --seed "$SEED" --sample "${NNTK_MUTATION_SAMPLE:-30}" \
    --replay-only --results build/mutation/ci.json --table build/mutation/ci.md \
    --floor-replay "${NNTK_MUTATION_FLOOR:-90}"
fi
