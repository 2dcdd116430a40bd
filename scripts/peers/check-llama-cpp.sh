#!/usr/bin/env bash
# Does mainline llama.cpp read `barbell convert` output (arch bitnet, TQ2_0 and TQ1_0) as barbell does?
# Not run in CI: it needs a llama.cpp build, made outside the repository (docs/convert.md, "llama.cpp itself").
#
#   scripts/peers/check-llama-cpp.sh LLAMA_BUILD_DIR [WORK_DIR]
#
# LLAMA_BUILD_DIR is a CMake build of llama.cpp (static libraries, targets llama-simple and llama-tokenize built;
# ../shared/peers/build_all.sh makes one). WORK_DIR (default a temp folder) receives the HF folder, the GGUF files
# and llama.cpp's outputs. Steps: a seeded 1bitLLM-style HF folder with Llama-3's tokenizer → `barbell convert`
# to TQ2_0 and TQ1_0 (F16 tied head) → scripts/peers/llama-logits.cpp, compiled against the build, tokenizes the
# prompts, runs 16 greedy steps and dumps the logits → llama-cpp-check.ts compares with barbell → llama-simple
# generates from each file (the stock tool loads it). Exit 0 only when every file passes.
set -euo pipefail
BUILD="$(cd "${1:?usage: check-llama-cpp.sh LLAMA_BUILD_DIR [WORK_DIR]}" && pwd)"
WORK="${2:-$(mktemp -d)}"
mkdir -p "$WORK"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/../.."
N_GEN=16
CHECK=(npx tsx scripts/peers/llama-cpp-check.ts)

cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
SRC="$(cache CMAKE_HOME_DIRECTORY)"
CXX="$(cache CMAKE_CXX_COMPILER)"
[ -n "$SRC" ] && [ -x "$CXX" ] || { echo "check-llama-cpp: $BUILD is not a CMake build of llama.cpp" >&2; exit 2; }
echo "llama.cpp: $SRC ($(git -C "$SRC" rev-parse HEAD 2>/dev/null || cat "$SRC/COMMIT" 2>/dev/null || echo "commit unknown")); $("$CXX" --version | head -1)"

# llama-logits: this repository's C++ file, linked against the build's static libraries.
LIBS=("$BUILD/src/libllama.a" "$BUILD/ggml/src/libggml.a")
mapfile -t BACKENDS < <(find "$BUILD/ggml/src" -maxdepth 2 -name 'libggml-*.a' | sort -r)
OMP=()
[ "$(cache GGML_OPENMP)" = "OFF" ] || OMP=(-fopenmp)
"$CXX" -O2 -std=c++17 "${OMP[@]}" -I"$SRC/include" -I"$SRC/ggml/include" "$HERE/llama-logits.cpp" \
  -Wl,--start-group "${LIBS[@]}" "${BACKENDS[@]}" -Wl,--end-group -lpthread -ldl -lm -o "$WORK/llama-logits"

[ -f "$WORK/hf/config.json" ] || "${CHECK[@]}" folder "$WORK/hf"
"${CHECK[@]}" prompts "$WORK/prompts.bin"
status=0
for type in tq2_0 tq1_0; do
  gguf="$WORK/bb-$type.gguf"
  echo "== $type"
  "${CHECK[@]}" convert "$WORK/hf" "$gguf" "$type" 2>/dev/null
  out="$WORK/llama-$type"
  mkdir -p "$out"
  "$WORK/llama-logits" "$gguf" "$WORK/prompts.bin" "$out" "$N_GEN"
  "${CHECK[@]}" compare "$gguf" "$out" "$N_GEN" || status=1
  # The stock tool: load and generate (greedy) without error.
  if "$BUILD/bin/llama-simple" -m "$gguf" -n "$N_GEN" "And God said, Let there be light" >"$out/simple.txt" 2>"$out/simple.err"; then
    echo "llama-simple: $(tr '\n' ' ' <"$out/simple.txt" | cut -c1-160)"
  else
    echo "llama-simple FAILED on $gguf:"; tail -5 "$out/simple.err"; status=1
  fi
done
# Arch bitnet-b1.58 (2B-4T: ReLU², GQA): mainline llama.cpp has no such arch; print what it answers.
echo "== bitnet-b1.58 (expected: llama.cpp refuses the arch)"
[ -f "$WORK/hf-b158/config.json" ] || "${CHECK[@]}" folder "$WORK/hf-b158" bitnet-b1.58
"${CHECK[@]}" convert "$WORK/hf-b158" "$WORK/bb-b158-tq2_0.gguf" tq2_0 >/dev/null 2>&1
if "$BUILD/bin/llama-simple" -m "$WORK/bb-b158-tq2_0.gguf" -n 1 "hi" >/dev/null 2>"$WORK/b158.err"; then
  echo "llama.cpp loaded a bitnet-b1.58 file: docs/convert.md needs updating"
else
  grep -m2 -iE "unknown model architecture|error loading model" "$WORK/b158.err" || tail -2 "$WORK/b158.err"
fi
echo "check-llama-cpp: $([ $status = 0 ] && echo PASS || echo FAIL) (files in $WORK)"
exit $status
