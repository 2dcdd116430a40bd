#!/bin/bash
# In-process A/B of the integer k-quant head kernel file at a git revision (A) against the working tree (B): see
# harness.cc. One thread, one activation row, outputs compared bit for bit.
#   bench/kquant-ab/run.sh [REV=HEAD] [avx2|vnni] [-- harness args: format n k iterations copies]
# Default cases: the 2B head shape (128256 x 2560) and the 700M one (32002 x 1536), Q6_K from memory; Q4_K and Q5_K
# on the 2B shape.
set -euo pipefail
cd "$(dirname "$0")/../.."
REV=${1:-HEAD}
ISA=${2:-avx2}
shift $(( $# > 2 ? 2 : $# )) || true
[ "${1:-}" = "--" ] && shift
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
FL="-std=c++17 -O3 -ffp-contract=off -fno-math-errno -mavx2 -mfma -mf16c -mpopcnt -Ibench/kquant-ab/stub -Inative/cpu"
UNIT=kquant_avx2.cc
ENTRY=kquant_i8_avx2
if [ "$ISA" = vnni ]; then
  FL="$FL -mavx512f -mavx512bw -mavx512vl -mavx512vnni"
  UNIT=kquant_avx512vnni.cc
  ENTRY=kquant_i8_avx512vnni
fi
# The revision's unit with the headers and fragments it includes (quoted includes resolve next to it first).
mkdir "$out/old"
for f in "$UNIT" kquant.h kquant_simd.inc kquant_i8_rows.inc sums8_avx2.inc; do
  git show "$REV:native/cpu/$f" > "$out/old/$f" 2>/dev/null || true
done
g++ $FL -c "$out/old/$UNIT" -o "$out/old.o" -D$ENTRY=kq_old_entry -Ddense_kquant_avx2=dense_kquant_avx2_old
g++ $FL -c "native/cpu/$UNIT" -o "$out/new.o"
g++ $FL -DKQ_OLD=kq_old_entry -DKQ_NEW=$ENTRY bench/kquant-ab/harness.cc "$out/old.o" "$out/new.o" -o "$out/ab"
if [ $# -gt 0 ]; then
  "$out/ab" "$@"
  exit
fi
for c in "1 128256 2560 7 1" "1 32002 1536 9 8" "2 128256 2560 7 1" "3 128256 2560 7 1"; do
  "$out/ab" $c
done
