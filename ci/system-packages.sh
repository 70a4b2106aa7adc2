#!/usr/bin/env bash
# System tools the hardening gates need beyond Python and a C compiler
# (Debian/Ubuntu): clang with libFuzzer (ci/fuzz.sh), valgrind and readelf/nm
# (ci/sanitize.sh, tests/test_determinism.py, tests/test_c_api_invalid.py), and
# gcc's sanitizer runtimes, an aarch64 cross compiler and qemu-user (ci/aarch64.sh).
# Installs only what is missing; a no-op when all is there.
set -euo pipefail
missing=()
command -v clang >/dev/null || missing+=(clang)
command -v valgrind >/dev/null || missing+=(valgrind)
command -v readelf >/dev/null || missing+=(binutils)
command -v cmake >/dev/null || missing+=(cmake)
command -v gcc >/dev/null || missing+=(gcc)
# libFuzzer's runtime (Debian ships it in libclang-rt-<version>-dev)
if command -v clang >/dev/null; then
  rt=$(clang -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a
  [ -f "$rt" ] || missing+=("libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev")
else
  missing+=(libclang-rt-14-dev)
fi
# gcc's ASan/UBSan runtimes come with libgcc-<version>-dev
if command -v gcc >/dev/null && { [ ! -f "$(gcc -print-file-name=libasan.so)" ] ||
  [ ! -f "$(gcc -print-file-name=libubsan.so)" ]; }; then
  missing+=("libgcc-$(gcc -dumpversion | cut -d. -f1)-dev")
fi
# the aarch64 cross compiler and qemu user-mode emulation (ci/aarch64.sh)
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
