#!/usr/bin/env bash
# The one script a GPU session runs (docs/cuda.md): builds the CUDA kernels and the harness for the card with
# nvcc, runs the harness's host self-check, every exported conformance case on the GPU, the model's greedy
# check (plain launches, CUDA graph, a batch of two) and the 2B-4T-shape timings, and writes everything to
# $OUT (the device tool brings $OUT back). Needs no Node and no network.
#
#   scripts/cuda/device-check.sh <vector dir>     (vectors.bin and model.bin from scripts/cuda/export-vectors.ts)
#
# Exit status: 0 when every check passed; the first failing step's status otherwise (summary.txt says which).
set -uo pipefail
cd "$(dirname "$0")/../.."
vectors="${1:?usage: scripts/cuda/device-check.sh <vector dir>}"
out="${OUT:-build/cuda-results}"
mkdir -p "$out"
build="$(mktemp -d)"
summary="$out/summary.txt"
: >"$summary"
status=0
note() { echo "$*" | tee -a "$summary"; }
step() { # step <name> <timeout s> <command…>: stdout → $out/<name>.json, stderr → $out/<name>.log
  local name="$1" limit="$2"
  shift 2
  local t0=$SECONDS rc
  timeout "$limit" "$@" >"$out/$name.json" 2>"$out/$name.log"
  rc=$?
  note "$name: exit $rc in $((SECONDS - t0)) s"
  [ "$rc" -eq 0 ] || { [ "$status" -ne 0 ] || status=$rc; }
  return 0
}

nvcc="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || true
cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
arch="${BARBELL_CUDA_ARCH:-sm_${cap:-90}}"
note "device: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1); arch $arch; $("$nvcc" --version | tail -1)"

# Build: the four CUDA sources and the harness, for this card only, in parallel.
t0=$SECONDS
flags=(-std=c++17 -O3 -arch="$arch" -Xcompiler -ffp-contract=off -Xcompiler -fPIC)
pids=()
for f in kernels_int kernels_float api model; do
  "$nvcc" "${flags[@]}" -c "native/cuda/$f.cu" -o "$build/$f.o" >"$out/build-$f.log" 2>&1 &
  pids+=($!)
done
for f in main vectors compare host_ref gpu_run model_run; do
  "$nvcc" "${flags[@]}" -DBBC_WITH_CUDA -x c++ -c "native/cuda/harness/$f.cc" -o "$build/h_$f.o" >"$out/build-h_$f.log" 2>&1 &
  pids+=($!)
done
built=0
for p in "${pids[@]}"; do wait "$p" || built=1; done
if [ "$built" -eq 0 ]; then
  "$nvcc" -arch="$arch" -o "$build/harness" "$build"/*.o >"$out/build-link.log" 2>&1 || built=1
fi
note "build: exit $built in $((SECONDS - t0)) s"
if [ "$built" -ne 0 ]; then
  cat "$out"/build-*.log >&2
  exit 1
fi

step self-check 120 "$build/harness" --self-check "$vectors/vectors.bin"
step gpu 300 "$build/harness" --gpu "$vectors/vectors.bin"
step model 300 "$build/harness" --model "$vectors/model.bin"
if command -v compute-sanitizer >/dev/null 2>&1; then
  step memcheck 300 compute-sanitizer --tool memcheck --error-exitcode 9 "$build/harness" --gpu "$vectors/vectors.bin"
fi
step bench-f16 300 "$build/harness" --bench --layers 30 --prompt 512 --steps 128 --head f16
step bench-q8 300 "$build/harness" --bench --layers 30 --prompt 512 --steps 128 --head q8_0
for f in self-check gpu model; do
  [ -s "$out/$f.json" ] && note "$f: $(head -c 300 "$out/$f.json")"
done
rm -rf "$build"
note "overall: exit $status"
exit "$status"
