/**
 * The WebGPU fused block (src/backends/webgpu/block.ts) does less work per decode step than the composed
 * kernels: 9 dispatches fewer per layer (26 → 17: the two residual adds, the up projection, the activation
 * and the product fold into the projections, and each of the 4 RMSNorms computes its quantizer's scales),
 * with the same logits bit for bit and still one readback per step. Exactness against the op
 * table's decomposition is test/conformance/fused.test.ts's.
 */
import { describe, expect, it } from "vitest";
import type { Backend } from "../../src/backends/backend.js";
import { createDispatcher } from "../../src/backends/dispatch.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { createWebGpuBackend, probeWebGpuBackend, type WebGpuBackend } from "../../src/backends/webgpu/backend.js";
import { readGgufBytes } from "../../src/formats/gguf/index.js";
import { configFromGguf } from "../../src/model/bitnet/config.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { forward } from "../../src/model/bitnet/forward.js";
import { ggufWeightSource } from "../../src/model/bitnet/gguf-source.js";
import { KvCache } from "../../src/model/bitnet/kv-cache.js";
import { loadWeights } from "../../src/model/bitnet/weights.js";

const REQUIRED = process.env["BARBELL_REQUIRE_WEBGPU"] === "1";
const probe = await probeWebGpuBackend();
if (!probe.available && REQUIRED) {
  throw new Error(`BARBELL_REQUIRE_WEBGPU=1 but WebGPU is unavailable: ${probe.reason}`);
}

describe.skipIf(!probe.available)("the webgpu fused block", () => {
  it.each(["i2_s", "tq2_0"] as const)("should record 9 dispatches fewer per layer and decode step than the composed kernels, same logits (%s)", async (weightType) => {
    const gpu: WebGpuBackend = await createWebGpuBackend();
    try {
      const fusedChain = createDispatcher([gpu], createJsBackend(), { strict: true });
      const { fused: _unused, ...composed } = fusedChain;
      expect(fusedChain.fused?.bitnetBlock).toBeDefined();
      const file = readGgufBytes(makeBitnetFixture(weightType === "i2_s" ? { arch: "bitnet-b1.58", weightType, seed: 21 } : { arch: "bitnet", weightType, hidden: 256, heads: 4, seed: 22 }));
      const config = configFromGguf(file.metadata);
      const step = async (backend: Backend): Promise<{ dispatches: number; readbacks: number; logits: Float32Array }> => {
        using weights = await loadWeights(ggufWeightSource(file), config, { backend });
        using cache = new KvCache(config, 8, backend);
        using prefill = forward(config, weights, cache, [3, 1, 4]); // uploads the weights
        await prefill.toFloat32Async();
        const before = gpu.stats();
        using out = forward(config, weights, cache, [15]);
        const logits = await out.toFloat32Async();
        const after = gpu.stats();
        return { dispatches: after.dispatches - before.dispatches, readbacks: after.readbacks - before.readbacks, logits };
      };
      const a = await step(fusedChain);
      const b = await step(composed);
      console.log(`${weightType}: ${config.layers} layers, decode step dispatches fused ${a.dispatches}, composed ${b.dispatches}`);
      // Per layer: 2 residual adds, the up projection, activation and product, and 4 quantizer scale passes.
      expect(b.dispatches - a.dispatches).toBe(9 * config.layers);
      expect(a.readbacks).toBe(1);
      expect(b.readbacks).toBe(1);
      expect(Buffer.from(a.logits.buffer).equals(Buffer.from(b.logits.buffer))).toBe(true);
      expect(fusedChain.liveAllocations()).toBe(0);
    } finally {
      gpu.dispose();
    }
  });
});
