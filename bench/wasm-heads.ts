/**
 * The integer output head (matmulQ8I8 over Q8_0, Q4_K, Q5_K, Q6_K) on wasm-simd against the path it replaced,
 * the JS reference's integer kernel, on the 700M head shape (k = 1536, vocab 32002) or `--shape 2b`
 * (2560 × 128256). Not a test:
 *
 *   npx tsx bench/wasm-heads.ts [--rounds 5] [--rows 1,8] [--threads 1,2] [--formats q6_k,q4_k] [--shape 2b]
 *
 * Random block bytes with finite fp16 scales (every code pattern). Each round runs every variant once, in
 * turn (interleaved, so load changes hit them alike); the table gives medians over rounds and each wasm
 * median's ratio to the JS reference's.
 */
import type { BufferMemory, Kernels, StorageDType, TensorRef } from "../src/backends/backend.js";
import { ArrayBufferMemory } from "../src/backends/host-memory.js";
import { createJsBackend } from "../src/backends/js/index.js";
import { storageBytes } from "../src/backends/storage.js";
import { createWasmSimdBackend, probeWasmSimd } from "../src/backends/wasm-simd/index.js";
import { mulberry32 as rng } from "../src/model/bitnet/fixture.js";
import { f32ToHalf } from "../src/quant/half.js";
import { QUANT_TRAITS } from "../src/quant/table.js";

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const list = (s: string): number[] => s.split(",").map(Number).filter((v) => Number.isInteger(v) && v > 0);

const ROUNDS = Math.max(1, Number(arg("--rounds", "5")));
const ROWS = list(arg("--rows", "1,8"));
const THREADS = list(arg("--threads", "1,2"));
const FORMATS = arg("--formats", "q8_0,q4_k,q5_k,q6_k").split(",") as ("q8_0" | "q4_k" | "q5_k" | "q6_k")[];
const [K, N] = arg("--shape", "700m") === "2b" ? [2560, 128256] : [1536, 32002];
/** Byte offsets of the fp16 scales in a block. */
const SCALES = { q8_0: [0], q4_k: [0, 2], q5_k: [0, 2], q6_k: [208] } as const;

function blocks(format: keyof typeof SCALES, r: () => number): Uint8Array {
  const t = QUANT_TRAITS[format];
  const bytes = new Uint8Array(storageBytes(format, [N, K]));
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = (r() * 256) | 0;
  }
  for (let at = 0; at < bytes.length; at += t.blockBytes) {
    for (const s of SCALES[format]) {
      const h = f32ToHalf(2 ** -8 * (0.5 + r()));
      bytes[at + s] = h & 0xff;
      bytes[at + s + 1] = h >>> 8;
    }
  }
  return bytes;
}

interface Variant {
  readonly name: string;
  readonly memory: BufferMemory;
  readonly kernels: Partial<Kernels>;
}

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1] ?? Number.NaN;

const probe = await probeWasmSimd();
if (!probe.available) {
  console.log(`wasm-simd unavailable: ${probe.reason}`);
  process.exit(0);
}
const js = createJsBackend();
const variants: Variant[] = [{ name: "JS reference", memory: new ArrayBufferMemory("bench-js"), kernels: js.kernels }];
const wasms = [];
for (const threads of THREADS) {
  const w = await createWasmSimdBackend({ threads });
  wasms.push(w);
  variants.push({ name: `wasm-simd ${w.info.threads}T`, memory: w.memory, kernels: w.kernels });
}

console.log(`integer head ${K} × ${N}, ${ROUNDS} interleaved rounds, medians in ms (ratio: wasm / JS reference)\n`);
console.log(`| head | rows | ${variants.map((v) => v.name).join(" | ")} |`);
console.log(`|---|---:|${variants.map(() => "---:|").join("")}`);
const r = rng(42);
for (const format of FORMATS) {
  const w = blocks(format, r);
  for (const m of ROWS) {
    const x = Float32Array.from({ length: m * K }, () => r() * 2 - 1);
    const refs = variants.map((v) => {
      const t = (dtype: StorageDType, shape: number[], bytes: Uint8Array): TensorRef => ({ buffer: v.memory.adopt(bytes), dtype, shape });
      return {
        x: t("f32", [m, K], new Uint8Array(x.buffer.slice(0))),
        w: t(format, [N, K], w.slice()),
        out: t("f32", [m, N], new Uint8Array(4 * m * N)),
      };
    });
    const times: number[][] = variants.map(() => []);
    for (let round = -1; round < ROUNDS; round++) {
      variants.forEach((v, i) => {
        const a = refs[i];
        const kernel = v.kernels.matmulQ8I8;
        if (a === undefined || kernel === undefined) {
          return;
        }
        const t0 = performance.now();
        kernel(a.x, a.w, a.out);
        if (round >= 0) {
          times[i]?.push(performance.now() - t0); // round −1 warms up
        }
      });
    }
    const ref = median(times[0] ?? []);
    const cells = times.map((t, i) => {
      const ms = median(t);
      return i === 0 ? ms.toFixed(1) : `${ms.toFixed(2)} (${(ms / ref).toFixed(3)}×)`;
    });
    console.log(`| ${format} | ${m} | ${cells.join(" | ")} |`);
    variants.forEach((v, i) => {
      const a = refs[i];
      if (a !== undefined) {
        for (const t of [a.x, a.w, a.out]) {
          v.memory.free(t.buffer);
        }
      }
    });
  }
}
for (const w of wasms) {
  w.dispose();
}
