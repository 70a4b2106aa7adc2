#!/usr/bin/env bash
# Nightly (not part of ci/test.sh): `nntk-parity bench --quick` with every peer
# installed, as README "Benchmark" tells a user to install them: PyTorch's CPU build on
# its own first, then the bench extra. Fails if any framework is skipped, fails its
# output check or crashes, or if the CUDA stack came along with torch.
# A few minutes on 2 cores (5m53s measured on a busy machine, the wheels cached: the
# installs, +~1 GB in .venv, then the bench).
#   NNTK_TORCH_INSTALL: what `pip install` gets for PyTorch's CPU build (default
#   torch==2.13.0, a local CPU wheel on the project's machines; elsewhere e.g.
#   "torch --index-url https://download.pytorch.org/whl/cpu").
source "$(dirname "$0")/env.sh"
# shellcheck disable=SC2086 # the variable holds pip arguments
python -m pip install -q ${NNTK_TORCH_INSTALL:-torch==2.13.0}
python -m pip install -q ".[bench]" -Ccmake.define.NNTK_WERROR=ON
if python -m pip list 2>/dev/null | grep -i -E "^(nvidia-|triton)"; then
  echo "the CUDA stack was installed with torch: install its CPU build (NNTK_TORCH_INSTALL)" >&2
  exit 1
fi
out=build/bench-smoke
rm -rf "$out"
nntk-parity bench --quick --out "$out"
python - "$out/bench.json" <<'PY'
import json
import sys

from nntk_bench.frameworks import FRAMEWORKS

report = json.load(open(sys.argv[1]))
# A framework either builds all its workloads or is skipped with a note.
problems = [f"{fw}: {note}" for fw, note in report["notes"].items()]
ran = set()
for wl, entry in report["workloads"].items():
    for fw, info in entry["frameworks"].items():
        ran.add(fw)
        if info["check"] != "ok":
            problems.append(f"{wl} {fw}: {info['check']} ({info['check_detail']})")
problems += [f"{fw} did not run" for fw in FRAMEWORKS if fw not in ran]
print("bench smoke: " + ("; ".join(problems) or f"{', '.join(FRAMEWORKS)} ran and agreed"))
sys.exit(1 if problems else 0)
PY
