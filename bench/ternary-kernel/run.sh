#!/bin/bash
# Builds bench/ternary-kernel/harness.cc against one ISA unit and runs it (see the harness).
#   bench/ternary-kernel/run.sh [avx2|vnni] [m n k iters offset]   (default: the 2B FFN shape, m = 512, +16)
set -euo pipefail
cd "$(dirname "$0")/../.."
ISA=${1:-avx2}
shift || true
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
FL="-mavx2 -mfma -mf16c -mpopcnt"
UNIT=kernels_avx2.cc
EXTRA=""
if [ "$ISA" = vnni ]; then
  FL="$FL -mavx512f -mavx512bw -mavx512vl -mavx512vnni"
  UNIT=kernels_avx512vnni.cc
  EXTRA=native/cpu/kernels_avx2.cc
fi
g++ -std=c++17 -O3 -ffp-contract=off -fno-math-errno $FL -Inative/cpu -DKERNELS_UNIT="\"$UNIT\"" \
  bench/ternary-kernel/harness.cc native/cpu/kernels_scalar.cc native/cpu/float_kernels.cc native/cpu/kv_cache.cc $EXTRA \
  -o "$out/tk"
"$out/tk" "$@"
