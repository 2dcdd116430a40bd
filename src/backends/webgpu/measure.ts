/**
 * A quick speed measurement of a device backend's ternary×int8 matmul, for `barbell backends` and the bench.
 * A device kernel call only records work, so the synchronous timer of backends/measure.ts would time the
 * recording: here batches of calls are timed up to the read that waits for them (readAsync).
 */
import type { BufferMemory, Kernels, TensorRef } from "../backend.js";
import type { GemvSpeed } from "../measure.js";

/** Most calls per timed batch (enough that one readback's latency is a small part of a fast GPU's batch). */
const MAX_CALLS_PER_BATCH = 32;

/**
 * Times `matmulTernaryI8` on x[m, k] · w[n, k] in `memory` (a device's) for about `budgetMs` (at least 3
 * batches, median per call). Undefined when the kernel is absent.
 */
export async function measureDeviceTernaryMatmul(
  kernels: Partial<Kernels>,
  shape: { readonly m: number; readonly k: number; readonly n: number },
  budgetMs: number,
  memory: BufferMemory,
): Promise<GemvSpeed | undefined> {
  const kernel = kernels.matmulTernaryI8;
  if (kernel === undefined) {
    return undefined;
  }
  const { m, k, n } = shape;
  const refs: TensorRef[] = [];
  const make = (dtype: TensorRef["dtype"], dims: number[], bytes: Uint8Array, scale?: number): TensorRef => {
    const buffer = memory.alloc(bytes.byteLength);
    memory.write(buffer, bytes);
    const ref = scale === undefined ? { buffer, dtype, shape: dims } : { buffer, dtype, shape: dims, scale };
    refs.push(ref);
    return ref;
  };
  try {
    const x = make("i8", [m, k], Uint8Array.from({ length: m * k }, (_, i) => (i * 37) & 0x7f));
    const s = make("f32", [m], new Uint8Array(new Float32Array(m).fill(1).buffer));
    const w = make("ternary", [n, k], Uint8Array.from({ length: (n * k) / 4 }, (_, i) => [0b00011000, 0b10010001, 0b01100110][i % 3] ?? 0), 0.5);
    const out = make("f32", [m, n], new Uint8Array(m * n * 4));
    kernel(x, s, w, out); // warm-up: pipeline compilation, first upload
    await memory.readAsync(out.buffer, 0, 4);
    // Batches grow (1, 2, 4, …) while a batch takes under an eighth of the budget: a software adapter
    // (SwiftShader) runs one call in tens of milliseconds, a GPU in microseconds.
    const times: number[] = [];
    let calls = 1;
    const t0 = performance.now();
    while (performance.now() - t0 < budgetMs || times.length < 3) {
      const t = performance.now();
      for (let i = 0; i < calls; i++) {
        kernel(x, s, w, out);
      }
      await memory.readAsync(out.buffer, 0, 4);
      const elapsed = performance.now() - t;
      times.push(elapsed / calls);
      if (elapsed < budgetMs / 8 && calls < MAX_CALLS_PER_BATCH) {
        calls *= 2;
      }
    }
    times.sort((a, b) => a - b);
    const seconds = (times[times.length >> 1] ?? 1) / 1000;
    return { gops: (2 * m * n * k) / seconds / 1e9, gbps: (n * k) / 4 / seconds / 1e9 };
  } finally {
    for (const r of refs) {
      memory.free(r.buffer);
    }
  }
}
