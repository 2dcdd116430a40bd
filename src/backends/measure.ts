/** A quick speed measurement of a backend's ternary×int8 matmul, for `barbell backends` and the bench. */
import type { BufferMemory, Kernels, TensorRef } from "./backend.js";
import { ArrayBufferMemory } from "./host-memory.js";

/** Most calls per timed batch on a device (enough that one readback's latency is a small part of a fast GPU's batch). */
const MAX_DEVICE_CALLS_PER_BATCH = 32;

export interface GemvSpeed {
  /** Giga-operations per second (a multiply-add counts 2). */
  readonly gops: number;
  /** Packed weight bytes read per second, in GB/s. */
  readonly gbps: number;
}

/** The GEMV's operands (x, scales, w, out) in `memory`, for `run`; freed after it. */
async function withOperands<T>(memory: BufferMemory, shape: { readonly m: number; readonly k: number; readonly n: number }, run: (args: [TensorRef, TensorRef, TensorRef, TensorRef]) => T | Promise<T>): Promise<T> {
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
    // Codes 0, 1, 2 in a varied pattern (never 3, which no layout writes).
    const w = make("ternary", [n, k], Uint8Array.from({ length: (n * k) / 4 }, (_, i) => [0b00011000, 0b10010001, 0b01100110][i % 3] ?? 0), 0.5);
    const out = make("f32", [m, n], new Uint8Array(m * n * 4));
    return await run([x, s, w, out]);
  } finally {
    for (const r of refs) {
      memory.free(r.buffer);
    }
  }
}

function speed(shape: { readonly m: number; readonly k: number; readonly n: number }, times: number[]): GemvSpeed {
  const { m, k, n } = shape;
  times.sort((a, b) => a - b);
  const seconds = (times[times.length >> 1] ?? 1) / 1000;
  return { gops: (2 * m * n * k) / seconds / 1e9, gbps: (n * k) / 4 / seconds / 1e9 };
}

/**
 * Times `matmulTernaryI8` on x[m, k] · w[n, k] for about `budgetMs` (at least 3 runs, median), with
 * every buffer in `memory` (the backend's own, where it has one). Undefined when the kernel is absent.
 * For a device memory the calls are timed up to the read that waits for them (a device call only records
 * work, so timing the call alone would time the recording): batches of calls, each ended by a readAsync.
 */
export async function measureTernaryMatmul(
  kernels: Partial<Kernels>,
  shape: { readonly m: number; readonly k: number; readonly n: number },
  budgetMs: number,
  memory: BufferMemory = new ArrayBufferMemory("measure"),
): Promise<GemvSpeed | undefined> {
  const kernel = kernels.matmulTernaryI8;
  if (kernel === undefined) {
    return undefined;
  }
  return withOperands(memory, shape, async (args) => {
    const device = memory.kind === "device";
    const out = args[3];
    kernel(...args); // warm-up (one-time weight repacking, pipeline compilation, first upload)
    if (device) {
      await memory.readAsync(out.buffer, 0, 4);
    }
    // Device batches grow (1, 2, 4, …) while a batch takes under an eighth of the budget: a software adapter
    // (SwiftShader) runs one call in tens of milliseconds, a GPU in microseconds.
    const times: number[] = [];
    let calls = 1;
    const t0 = performance.now();
    while (performance.now() - t0 < budgetMs || times.length < 3) {
      const t = performance.now();
      for (let i = 0; i < calls; i++) {
        kernel(...args);
      }
      if (device) {
        await memory.readAsync(out.buffer, 0, 4);
      }
      const elapsed = performance.now() - t;
      times.push(elapsed / calls);
      if (device && elapsed < budgetMs / 8 && calls < MAX_DEVICE_CALLS_PER_BATCH) {
        calls *= 2;
      }
    }
    return speed(shape, times);
  });
}
