#!/usr/bin/env bash
# Every kernel table replays every fixture: the library compiles one table per
# instruction set (core/kernels.h: generic, avx2, avx512) and picks the best the
# CPU has, so an ordinary run exercises one of them. NNTK_ISA forces a lower one;
# this replays the whole fixture set under each table in turn and checks, through
# NNTKKernelISA(), that the forced table is the one that ran. Fails if replay fails
# under any table.
# The tables are, by default, every one this CPU can execute: all three on a CPU with
# AVX-512; a CPU without it (the AMD EPYC machines CI sometimes gets) cannot execute the
# avx512 table at all, and the script says which tables it did not replay.
# NNTK_KERNEL_TABLES names the tables instead; a named table the CPU cannot run fails.
# 6-7 s per table on idle cores, 17 s under a load of 3. No report: its plots would
# take twice the replay's time, and ci/replay-no-tf.sh writes one already.
# Usage: bash ci/kernel-tables.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 || true)
if [ -n "${NNTK_KERNEL_TABLES:-}" ]; then
  TABLES=$NNTK_KERNEL_TABLES
else
  TABLES=$(python -P -m parity.c_contract tables) # every table this CPU executes
  [ "$TABLES" = "generic avx2 avx512" ] ||
    echo "kernel-tables: this CPU ($cpu) cannot execute every table: replaying $TABLES only, not the tables above them"
fi
for table in $TABLES; do
  ran=$(NNTK_ISA="$table" python -P -m parity.c_contract table)
  if [ "$ran" != "$table" ]; then
    echo "kernel-tables: NNTK_ISA=$table runs the $ran table on this CPU ($cpu); name only the tables it has in NNTK_KERNEL_TABLES" >&2
    exit 1
  fi
  echo "== replay, $table kernel table"
  start=${EPOCHREALTIME/./}
  NNTK_ISA=$table nntk-parity replay
  echo "kernel-tables: $table replay took $(( (${EPOCHREALTIME/./} - start) / 1000 )) ms"
done
