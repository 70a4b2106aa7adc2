#!/usr/bin/env bash
# The plain-C kernels on aarch64, where the compiler vectorises them to NEON with
# fused multiply-adds: cross-compile the library and the C test programs with
# aarch64-linux-gnu-gcc and run them under qemu-aarch64 (user-mode emulation):
#  - the C smoke test (every layer's standard functions, tests/c/smoke.c);
#  - tests/c/recurrent_outputs.c, whose RNN/GRU/LSTM outputs must equal those of
#    the x86-64 build bit for bit when that build runs an FMA kernel table (AVX2 or
#    AVX-512): every product element is the same chain of fused multiply-adds and
#    the elementwise code has no contraction, so the CPUs must agree exactly. On an
#    x86-64 CPU without FMA the generic table rounds a*b+c twice; then the outputs
#    must agree within 1e-6.
# Needs: aarch64-linux-gnu-gcc, libc6-dev-arm64-cross, qemu-user (ci/system-packages.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
arm=build/aarch64
x86=build/x86-outputs
cmake -S . -B "$arm" -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
  -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DNNTK_BLAS=OFF -DNNTK_WERROR=ON \
  -DNNTK_BUILD_C_TESTS=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$arm" -j2 >/dev/null
cmake -S . -B "$x86" -DNNTK_BLAS=OFF -DNNTK_WERROR=ON -DNNTK_BUILD_C_TESTS=ON \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$x86" -j2 >/dev/null

export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
echo "== aarch64 (qemu): C smoke test"
qemu-aarch64 "$arm/nntk_smoke"
echo "== aarch64 (qemu) vs x86-64: recurrent outputs"
qemu-aarch64 "$arm/nntk_recurrent_outputs" >"$arm/outputs.txt"
"$x86/nntk_recurrent_outputs" >"$x86/outputs.txt"
python - "$arm/outputs.txt" "$x86/outputs.txt" "$x86/libnntk.so" <<'PY'
import ctypes
import sys

arm, x86 = ([float.fromhex(line) for line in open(p)] for p in sys.argv[1:3])
lib = ctypes.CDLL(sys.argv[3])
lib.NNTKKernelISA.restype = ctypes.c_char_p
isa = lib.NNTKKernelISA().decode()
assert len(arm) == len(x86) > 0, (len(arm), len(x86))
differing = sum(a != b for a, b in zip(arm, x86, strict=True))
worst = max(abs(a - b) for a, b in zip(arm, x86, strict=True))
print(f"{len(arm)} outputs; x86-64 table {isa}: {differing} differ, max |diff| {worst:.3g}")
if isa in ("avx2", "avx512"):
    assert differing == 0, "aarch64 and x86-64 FMA tables must give the same bits"
else:
    assert worst <= 1e-6, "aarch64 and the x86-64 generic table differ beyond rounding"
print("aarch64: passed")
PY
