/**
 * Ternary × int8 GEMV (the decode hot path) on the native CPU backend, per ISA path and thread count,
 * against the JS reference kernel. Run: `npx tsx bench/native-gemv.ts [--runs N] [--m M]`. Not a test.
 * `--m 512` times the prefill GEMM instead (M activation rows; hot only: the weights are reused M times; no JS
 * reference row, which would take minutes).
 *
 * GOPS = 2·N·K / time (a multiply and an add per weight). Two regimes:
 * - "hot": one weight matrix over and over (it stays in L2/L3), the compute ceiling;
 * - "cold": a ring of matrices of ≥ 96 MiB in total, so weights come from DRAM as in real decoding.
 * Each figure is the median of several timed rounds.
 */
import { ArrayBufferMemory, views } from "../src/backends/host-memory.js";
import type { PartialBackend, TensorRef } from "../src/backends/backend.js";
import { createJsBackend } from "../src/backends/js/index.js";
import { nativeAddon } from "../src/backends/native-cpu/addon.js";
import { createNativeCpuBackend, probeNativeCpu } from "../src/backends/native-cpu/index.js";
import { packTernary } from "../src/quant/layouts.js";

const runsArg = process.argv.indexOf("--runs");
const ROUNDS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 7;
// --isa NAME: only that native path (and no JS reference row); --shapes 700M: only those shapes.
const isaArg = process.argv.indexOf("--isa");
const ONLY_ISA = isaArg > 0 ? process.argv[isaArg + 1] : undefined;
const shapesArg = process.argv.indexOf("--shapes");
const ONLY_MODEL = shapesArg > 0 ? process.argv[shapesArg + 1] : undefined;
const mArg = process.argv.indexOf("--m");
const M = mArg > 0 ? Number(process.argv[mArg + 1]) : 1;

const SHAPES = [
  { model: "2B-4T", name: "gate/up", k: 2560, n: 6912 },
  { model: "2B-4T", name: "down", k: 6912, n: 2560 },
  { model: "2B-4T", name: "attn o", k: 2560, n: 2560 },
  { model: "700M", name: "gate/up", k: 1536, n: 4096 },
  { model: "700M", name: "down", k: 4096, n: 1536 },
];

const memory = new ArrayBufferMemory("bench");

function tensor(dtype: TensorRef["dtype"], shape: number[], data: ArrayBufferView, scale?: number): TensorRef {
  const buffer = memory.alloc(data.byteLength);
  memory.write(buffer, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return scale === undefined ? { buffer, dtype, shape } : { buffer, dtype, shape, scale };
}

type Gemv = (x: TensorRef, s: TensorRef, w: TensorRef, out: TensorRef) => void;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

/** Median GOPS of `gemv` over ROUNDS rounds; each round runs ≥ 30 ms (≥ 1 call) over the weight ring. */
function measure(
  gemv: Gemv,
  ring: TensorRef[],
  x: TensorRef,
  s: TensorRef,
  out: TensorRef,
  k: number,
  n: number,
): number {
  let calls = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 20 || calls < 2) {
    gemv(x, s, ring[calls % ring.length] as TensorRef, out); // warm-up
    calls++;
  }
  const perCall = (performance.now() - t0) / calls;
  const reps = Math.max(1, Math.ceil(30 / perCall));
  const gops: number[] = [];
  let w = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const start = performance.now();
    for (let i = 0; i < reps; i++) {
      gemv(x, s, ring[w++ % ring.length] as TensorRef, out);
    }
    const seconds = (performance.now() - start) / 1000 / reps;
    gops.push((2 * M * n * k) / seconds / 1e9);
  }
  return median(gops);
}

function main(): void {
  const probe = probeNativeCpu();
  if (!probe.available) {
    console.log(`native-cpu unavailable: ${probe.reason}`);
  }
  const best = nativeAddon()?.features().best ?? "none";
  const paths = probe.available
    ? (best === "neon" ? ["scalar", "neon"] : ["scalar", "avx2", "avx512bw", "avx512vnni"]).filter(
        (_, i, all) => i <= all.indexOf(best),
      )
    : [];
  const js = createJsBackend();
  const rows: string[][] = [];
  for (const { model, name, k, n } of SHAPES.filter((s) => ONLY_MODEL === undefined || s.model === ONLY_MODEL)) {
    const bytes = n * Math.ceil(k / 4);
    // The cold ring only for M = 1 (a GEMM reuses its weights M times, so only the hot figure is timed).
    const ringSize = M === 1 ? Math.max(1, Math.ceil((96 * 2 ** 20) / bytes)) : 1;
    const trits = Int8Array.from({ length: n * k }, (_, i) => (((i * 2654435761) >>> 7) % 3) - 1);
    const packed = packTernary(trits, n, k);
    const ring = Array.from({ length: ringSize }, () => tensor("ternary", [n, k], packed, 0.8));
    const x = tensor(
      "i8",
      [M, k],
      Int8Array.from({ length: M * k }, (_, i) => ((i * 37) % 255) - 127),
    );
    const s = tensor("f32", [M], new Float32Array(M).fill(12.5));
    const out = tensor("f32", [M, n], new Float32Array(M * n));
    const shape = `${model} ${name} ${n}×${k}`;
    if (ONLY_ISA === undefined && M === 1) {
      const jsGops = measure(js.kernels.matmulTernaryI8, ring.slice(0, 1), x, s, out, k, n);
      rows.push([shape, "js reference", "1", jsGops.toFixed(2), "–"]);
    }
    for (const isa of paths.filter((p) => ONLY_ISA === undefined || p === ONLY_ISA)) {
      for (const threads of [1, 2]) {
        const backend: PartialBackend = createNativeCpuBackend({ isa, threads });
        const gemv = backend.kernels.matmulTernaryI8;
        if (gemv !== undefined) {
          const hot = measure(gemv, ring.slice(0, 1), x, s, out, k, n);
          const cold = M === 1 ? measure(gemv, ring, x, s, out, k, n).toFixed(1) : "–";
          rows.push([shape, `native ${isa}`, String(threads), hot.toFixed(1), cold]);
        }
        backend.dispose();
      }
    }
    void views;
    for (const t of ring) {
      memory.free(t.buffer);
    }
  }
  // GB/s of packed weights = GOPS / 8 (2 ops per weight, 4 weights per byte).
  for (const r of rows) {
    const cold = Number(r[4]);
    r.push(Number.isFinite(cold) ? (cold / 8).toFixed(1) : "–");
  }
  const header = ["shape (N×K)", "kernel", "threads", "GOPS hot (in cache)", "GOPS cold (DRAM)", "cold GB/s"];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: string[]): string => `| ${cells.map((v, c) => v.padEnd(widths[c] ?? 0)).join(" | ")} |`;
  console.log(`ternary × int8 ${M === 1 ? "GEMV" : "GEMM"} (M = ${M}), median of ${ROUNDS} rounds; best ISA here: ${best}`);
  console.log(line(header));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const r of rows) {
    console.log(line(r));
  }
}

main();
