#!/bin/bash
# In-process A/B of attention_decode.inc at a git revision (A) against the working tree (B): see harness.cc.
#   bench/attention-ab/run.sh [REV=HEAD] [avx2|vnni] [-- harness args: layers T kv_heads head_dim group kv_type iters]
# Default cases: the 2B shape (5 KV heads × 128, GQA 4) and the 700M shape (16 × 96) at 4,096 positions, q8_0 and
# f16, every layer its own cache (cold) and one layer (hot, in the L3). Prints medians and p10 of µs per call (all
# chunks of one query row, one thread) and new/old.
set -euo pipefail
cd "$(dirname "$0")/../.."
REV=${1:-HEAD}
ISA=${2:-vnni}
shift $(( $# > 2 ? 2 : $# )) || true
[ "${1:-}" = "--" ] && shift
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
git show "$REV:native/cpu/attention_decode.inc" > "$out/old.inc"
FL="-mavx2 -mfma -mf16c -mpopcnt"
[ "$ISA" = vnni ] && FL="$FL -mavx512f -mavx512bw -mavx512vl -mavx512vnni"
g++ -std=c++17 -O3 -ffp-contract=off -fno-math-errno $FL -Inative/cpu -DOLD_INC="\"$out/old.inc\"" \
  -DNEW_INC="\"$PWD/native/cpu/attention_decode.inc\"" bench/attention-ab/harness.cc -o "$out/ab"
if [ $# -gt 0 ]; then
  "$out/ab" "$@"
  exit
fi
for c in "30 4096 5 128 4 2 300" "1 4096 5 128 4 2 300" "30 4096 5 128 4 1 200" "24 4096 16 96 1 2 200" "2 77 5 128 4 2 100"; do
  printf '%-24s ' "$c"
  "$out/ab" $c
done
