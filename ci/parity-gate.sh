#!/usr/bin/env bash
# The parity gate: every layer spec, live against tf.keras, ci profile, its cases
# spread over every core (`-j N` sets the worker processes; docs/gate.md).
# Usage: bash ci/parity-gate.sh [nntk-parity run options, e.g. --report reports/]
source "$(dirname "$0")/env.sh"
nntk-parity run --profile ci "$@"
