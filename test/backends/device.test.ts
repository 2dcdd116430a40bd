/**
 * The device side of the backend contract, exercised with the test-only device backend (device-backend.ts:
 * JS kernels over opaque memory that is read back asynchronously only): placement of weights, host → device
 * copies at the boundary (once per weight), reads awaited at the engine's edges, and clear errors for what
 * cannot cross the boundary synchronously.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tracing } from "../../src/backends/decorators/trace.js";
import { createDispatcher, decorate, type OpName } from "../../src/backends/dispatch.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { UsageError } from "../../src/core/errors.js";
import { loadModel } from "../../src/engine/model.js";
import { readGgufBytes } from "../../src/formats/gguf/index.js";
import { configFromGguf } from "../../src/model/bitnet/config.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { forward } from "../../src/model/bitnet/forward.js";
import { ggufWeightSource } from "../../src/model/bitnet/gguf-source.js";
import { KvCache } from "../../src/model/bitnet/kv-cache.js";
import { loadWeights } from "../../src/model/bitnet/weights.js";
import { toBinary, matmulBinary, tensor } from "../../src/index.js";
import { createTestDevice } from "./device-backend.js";

const FIXTURE = { arch: "bitnet-b1.58" as const, weightType: "i2_s" as const, seed: 21 };

let dir = "";
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-device-"));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe("a device backend at the head of the order", () => {
  it("should place each weight on the device once, compute there, and be read back only asynchronously", async () => {
    const device = createTestDevice();
    const dispatcher = createDispatcher([device], createJsBackend(), { strict: true });
    expect(dispatcher.memoryKind).toBe("device");
    const file = readGgufBytes(makeBitnetFixture(FIXTURE));
    const config = configFromGguf(file.metadata);
    const js = createJsBackend();
    using weights = await loadWeights(ggufWeightSource(file), config, { backend: dispatcher });
    using jsWeights = await loadWeights(ggufWeightSource(file), config, { backend: js });
    // Adopted weights wait in host memory: nothing was copied yet.
    expect(dispatcher.copies()).toBe(0);
    using cache = new KvCache(config, 8, dispatcher);
    using jsCache = new KvCache(config, 8, js);
    using logits = forward(config, weights, cache, [1, 2, 3]);
    using want = forward(config, jsWeights, jsCache, [1, 2, 3]);
    const placed = dispatcher.copies();
    // Every adopted weight (the file's bytes, kept in host memory until used) went over once: the embedding
    // (tied head) and the 7 projections per layer. The f32 norms were written into device memory at load.
    expect(placed).toBe(1 + config.layers * 7);
    expect(device.memory.liveAllocations()).toBeGreaterThan(placed); // the copies, the cache, the logits
    // A device buffer is not readable synchronously; asynchronously it is, and equals the reference bit for bit.
    expect(() => logits.toFloat32()).toThrow(UsageError);
    const got = await logits.toFloat32Async();
    expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.toFloat32().buffer))).toBe(true);
    // The next step copies nothing: the weights stay placed.
    using next = forward(config, weights, cache, [4]);
    using nextWant = forward(config, jsWeights, jsCache, [4]);
    expect(dispatcher.copies()).toBe(placed);
    expect(Array.from(await next.toFloat32Async())).toEqual(Array.from(nextWant.toFloat32()));
    expect(device.calls.get("matmulTernaryI8")).toBe(2 * 7 * config.layers);
    expect(dispatcher.fallbacks().size).toBe(0);
  });

  it("should free the device copies with their weights", async () => {
    const device = createTestDevice();
    const dispatcher = createDispatcher([device], createJsBackend());
    const file = readGgufBytes(makeBitnetFixture(FIXTURE));
    const config = configFromGguf(file.metadata);
    const weights = await loadWeights(ggufWeightSource(file), config, { backend: dispatcher });
    const cache = new KvCache(config, 4, dispatcher);
    forward(config, weights, cache, [5]).dispose();
    expect(dispatcher.copies()).toBeGreaterThan(0);
    weights.dispose();
    cache.dispose();
    expect(dispatcher.liveAllocations()).toBe(0);
    expect(device.memory.liveAllocations()).toBe(0);
  });

  it("should refuse, with the reason, a kernel the device lacks on device buffers (a host kernel cannot read them)", () => {
    const device = createTestDevice();
    const dispatcher = createDispatcher([device], createJsBackend());
    const signs = toBinary(new Float32Array(64).fill(1), ["seq", "embed"], [1, 64], { backend: dispatcher });
    const w = toBinary(new Float32Array(128).fill(-1), ["ffn", "embed"], [2, 64], { backend: dispatcher });
    if (!signs.ok || !w.ok) {
      throw new Error("fixture");
    }
    using x = signs.value;
    using weights = w.value;
    expect(() => matmulBinary(x, weights)).toThrow(UsageError);
    expect(() => matmulBinary(x, weights)).toThrow(/no backend can run matmulBinaryBinary: test-device has no matmulBinaryBinary kernel; js: buffer \d+ is in device memory/);
    expect(dispatcher.liveAllocations()).toBe(2); // the failed op freed its output
  });

  it("should generate through loadModel with the reads awaited at the edges, as the JS reference does", async () => {
    const file = path.join(dir, "device.gguf");
    await fs.writeFile(file, makeBitnetFixture(FIXTURE));
    const device = createTestDevice();
    const ops = new Map<OpName, number>();
    const traced = decorate(
      createDispatcher([device], createJsBackend(), { strict: true }),
      tracing((op) => ops.set(op, (ops.get(op) ?? 0) + 1)),
    );
    using onDevice = await loadModel(file, { backend: traced, contextLength: 32 });
    using onJs = await loadModel(file, { backend: createJsBackend(), contextLength: 32 });
    const a = await onDevice.generate([1, 2, 3], { maxTokens: 6, temperature: 0, stopTokens: [] }).complete();
    const b = await onJs.generate([1, 2, 3], { maxTokens: 6, temperature: 0, stopTokens: [] }).complete();
    expect(a.tokens).toEqual(b.tokens);
    expect(a.tokens).toHaveLength(6);
    // Batched decode on the device too: two sequences sharing steps give each one's own greedy tokens.
    using batcher = onDevice.batcher({ maxSequences: 2, contextLength: 32 });
    const [c, d] = await Promise.all([
      batcher.generate([1, 2, 3], { maxTokens: 6, temperature: 0, stopTokens: [] }).complete(),
      batcher.generate([7, 8], { maxTokens: 4, temperature: 0, stopTokens: [] }).complete(),
    ]);
    const e = await onJs.generate([7, 8], { maxTokens: 4, temperature: 0, stopTokens: [] }).complete();
    expect(c?.tokens).toEqual(b.tokens);
    expect(d?.tokens).toEqual(e.tokens);
    expect(ops.get("matmulTernaryI8")).toBeGreaterThan(0);
    expect((await onDevice.logits([1, 2])).length).toBe(1);
  });
});

describe("a device backend after a host one", () => {
  it("should not be used for calls whose outputs are in host memory (a device result cannot come back synchronously)", () => {
    const device = createTestDevice();
    const js = createJsBackend();
    const host = createDispatcher([], js, { memoryFrom: js });
    using x = tensor([1, 2, 3], ["embed"], [3], { backend: host });
    const out = { buffer: js.alloc(12), dtype: "f32" as const, shape: [3] };
    expect(host.accepts(device, "scale", [x.ref(), 2, out])).toMatch(/would write host buffer \d+/);
    // An input alone in host memory is fine: it is copied to the device.
    const deviceOut = { buffer: device.memory.alloc(12), dtype: "f32" as const, shape: [3] };
    expect(host.accepts(device, "scale", [x.ref(), 2, deviceOut])).toBe("copy");
    host.runOn(device, "scale", [x.ref(), 2, deviceOut]);
    host.runOn(device, "scale", [x.ref(), 3, deviceOut]);
    expect(host.copies()).toBe(1); // copied once, then reused
    expect(() => host.runOn(device, "scale", [x.ref(), 2, out])).toThrow(/cannot run on test-device/);
    js.free(out.buffer);
    device.memory.free(deviceOut.buffer);
    x.dispose();
    expect(device.memory.liveAllocations()).toBe(0); // the copy went with its host buffer
  });
});
