#!/usr/bin/env bash
# Builds native/cpu/check/isa_check.cc for arm64 with the Debian cross compiler and runs it under
# qemu-aarch64: the NEON kernels against the scalar ones, bit for bit, on an x86-64 machine.
# Needs: apt-get install g++-aarch64-linux-gnu qemu-user (CI installs them). Exit 0 = agreement,
# 1 = a kernel differs, 77 = the tools are missing (the test reports it as skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${CXX_AARCH64:-aarch64-linux-gnu-g++}
QEMU=${QEMU_AARCH64:-qemu-aarch64}
if ! command -v "$CXX" >/dev/null 2>&1 || ! command -v "$QEMU" >/dev/null 2>&1; then
  echo "check-isa: $CXX or $QEMU not installed (apt-get install g++-aarch64-linux-gnu qemu-user)" >&2
  exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$CXX" -std=c++17 -O2 -ffp-contract=off -static -o "$out/isa_check" \
  native/cpu/check/isa_check.cc native/cpu/kernels_scalar.cc native/cpu/kernels_neon.cc native/cpu/float_kernels.cc
"$QEMU" "$out/isa_check"
