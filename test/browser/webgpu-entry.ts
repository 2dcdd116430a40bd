/**
 * The page side of the WebGPU golden-ids test (test/backends/webgpu.browser.test.ts), bundled by esbuild for
 * the browser: the WebGPU backend (navigator.gpu) at the head of a strict dispatcher, each golden fixture
 * built in memory, loaded from its GGUF bytes (readGgufBytes: a MemorySource, no file system), decoded
 * greedily with the engine's own pieces (prefill / forward, the KV cache on the device, the sampler at
 * temperature 0) and read back once per step with readAsync.
 *
 * The engine's `loadModel` is not used: it opens files and resolves backends with Node built-ins. The pieces
 * used here import none at run time (the GGUF source module imports node:fs for its FileSource, which the
 * test's bundle stubs; see the test).
 */
import { createDispatcher } from "../../src/backends/dispatch.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { createWebGpuBackend } from "../../src/backends/webgpu/backend.js";
import type { AdapterSummary } from "../../src/backends/webgpu/device.js";
import { readGgufBytes } from "../../src/formats/gguf/index.js";
import { configFromGguf } from "../../src/model/bitnet/config.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { forward, prefill } from "../../src/model/bitnet/forward.js";
import { ggufWeightSource } from "../../src/model/bitnet/gguf-source.js";
import { KvCache } from "../../src/model/bitnet/kv-cache.js";
import { loadWeights } from "../../src/model/bitnet/weights.js";
import { createSampler } from "../../src/model/sampling/index.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { GOLDEN_FIXTURES, GOLDEN_PROMPT } from "../conformance/golden-fixtures.js";

/** One fixture's outcome. */
export interface GoldenResult {
  readonly ids: number[];
  readonly golden: readonly number[];
  /** Live device allocations after the fixture's weights and cache were freed (0 expected). */
  readonly live: number;
}

export interface GoldenReport {
  readonly adapter: AdapterSummary;
  readonly results: GoldenResult[];
  /** Readbacks and kernel submissions for all fixtures together. */
  readonly readbacks: number;
  readonly submissions: number;
  /** Decode steps (one logits read each) for all fixtures together. */
  readonly steps: number;
}

async function runGolden(): Promise<GoldenReport> {
  const device = await createWebGpuBackend();
  try {
    const dispatcher = createDispatcher([device], createJsBackend(), { strict: true });
    const before = device.stats();
    const results: GoldenResult[] = [];
    let steps = 0;
    for (const [opts, hostGolden, deviceGolden] of GOLDEN_FIXTURES) {
      const golden = deviceGolden ?? hostGolden; // a k-quant head runs in float on a device
      const file = readGgufBytes(makeBitnetFixture(opts));
      const config = configFromGguf(file.metadata);
      const weights = await loadWeights(ggufWeightSource(file), config, { backend: dispatcher });
      const cache = new KvCache(config, 32, dispatcher);
      const sampler = createSampler({ temperature: 0 });
      const history = [...GOLDEN_PROMPT];
      const ids: number[] = [];
      let logits: Tensor<"f32", ["seq", "vocab"]> | undefined;
      try {
        logits = prefill(config, weights, cache, GOLDEN_PROMPT);
        for (;;) {
          const row = await logits.toFloat32Async();
          steps++;
          logits.dispose();
          logits = undefined;
          const { token } = sampler.sample(row, history);
          ids.push(token);
          history.push(token);
          if (ids.length === golden.length) {
            break;
          }
          logits = forward(config, weights, cache, [token]);
        }
      } finally {
        logits?.dispose();
        cache.dispose();
        weights.dispose();
      }
      results.push({ ids, golden, live: dispatcher.liveAllocations() });
    }
    const after = device.stats();
    return { adapter: device.adapter, results, steps, readbacks: after.readbacks - before.readbacks, submissions: after.submissions - before.submissions };
  } finally {
    device.dispose();
  }
}

(globalThis as { runGolden?: () => Promise<GoldenReport> }).runGolden = runGolden;
