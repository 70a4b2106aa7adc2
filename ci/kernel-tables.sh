#!/usr/bin/env bash
# Every kernel table replays every fixture: the library compiles one table per
# instruction set (core/kernels.h: generic, avx2, avx512) and picks the best the
# CPU has, so an ordinary run exercises one of them. NNTK_ISA forces a lower one;
# this replays the whole fixture set under each table in turn and checks, through
# NNTKKernelISA(), that the forced table is the one that ran. Fails if replay fails
# under any table, or if a table cannot run on this CPU (the CI machine has
# AVX-512; elsewhere name the tables to run: NNTK_KERNEL_TABLES="generic avx2").
# 6-7 s per table on idle cores, 17 s under a load of 3. No report: its plots would
# take twice the replay's time, and ci/replay-no-tf.sh writes one already.
# Usage: bash ci/kernel-tables.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
TABLES=${NNTK_KERNEL_TABLES:-"generic avx2 avx512"}
for table in $TABLES; do
  ran=$(NNTK_ISA=$table python -P -c "import nntk_core; print(nntk_core.lib.NNTKKernelISA().decode())")
  if [ "$ran" != "$table" ]; then
    echo "kernel-tables: NNTK_ISA=$table runs the $ran table on this CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)); set NNTK_KERNEL_TABLES to the tables it has" >&2
    exit 1
  fi
  echo "== replay, $table kernel table"
  start=${EPOCHREALTIME/./}
  NNTK_ISA=$table nntk-parity replay
  echo "kernel-tables: $table replay took $(( (${EPOCHREALTIME/./} - start) / 1000 )) ms"
done
