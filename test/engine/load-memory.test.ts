/**
 * Memory of a model load (issue 15 point 5), by counts, not time. With the native addon, reads of 1 MiB or more
 * are mappings of the file: the embedding a model adopts is file-backed pages shared with the page cache,
 * not a copy, so a child process loading a generated file grows its anonymous memory by much less than the
 * embedding, and its peak stays within 1.1 × file + a fixed allowance. FileSource's mapped reads hold the
 * file's bytes, and stay readable after `release`.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeNativeCpu } from "../../src/backends/native-cpu/addon.js";
import { FileSource } from "../../src/formats/gguf/file-source.js";
import { MAP_MIN_BYTES } from "../../src/formats/gguf/source.js";
import { readGguf } from "../../src/formats/gguf/reader.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";

const probe = probeNativeCpu();
const VOCAB = 32000;
const HIDDEN = 1024;
/** What a load allocates besides weights (header window, tokenizer tables, V8 heap growth), generously. */
const FIXED_ALLOWANCE = 24 * 2 ** 20;

interface Memory {
  peak: number;
  anon: number;
}

describe.skipIf(!probe.available || process.platform !== "linux")("model load memory (native addon, Linux)", () => {
  let dir = "";
  let file = "";
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "barbell-load-"));
    file = path.join(dir, "m.gguf");
    // The F16 embedding (65.5 MB, tied head) is nearly all of the file.
    fs.writeFileSync(file, makeBitnetFixture({ arch: "bitnet", hidden: HIDDEN, layers: 2, heads: 8, ffn: 1024, vocab: VOCAB, weightType: "i2_s", embeddingType: "f16", seed: 3 }));
  }, 120_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("should serve reads of MAP_MIN_BYTES or more as mappings holding the file's bytes, readable after release", async () => {
    await using source = await FileSource.open(file);
    const gguf = await readGguf(source);
    const embd = gguf.tensor("token_embd.weight");
    expect(embd?.byteSize).toBeGreaterThanOrEqual(MAP_MIN_BYTES);
    const before = source.mappedBytes;
    const data = await gguf.tensorData("token_embd.weight");
    expect(source.mappedBytes - before).toBe(embd?.byteSize);
    expect(data.byteOffset).toBe(0);
    expect(data.byteLength).toBe(data.buffer.byteLength); // a buffer of its own: a backend adopts it without a copy
    const fd = fs.openSync(file, "r");
    const want = Buffer.alloc(data.length);
    fs.readSync(fd, want, 0, want.length, gguf.dataOffset + (embd?.offset ?? 0));
    fs.closeSync(fd);
    expect(Buffer.compare(Buffer.from(data.buffer, data.byteOffset, data.byteLength), want)).toBe(0);
    if (embd !== undefined) {
      gguf.release(embd);
    }
    expect(Buffer.compare(Buffer.from(data.buffer, data.byteOffset, data.byteLength), want)).toBe(0); // paged back in from the file
    const small = await source.read(0, 64);
    expect(small.buffer.byteLength).toBe(64);
    expect(source.mappedBytes - before).toBe(embd?.byteSize); // short reads are copies
  });

  it("should load without copying the embedding: anonymous memory grows by less than it, the peak by ≤ 1.1 × file + a fixed allowance", () => {
    const out = execFileSync(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "load-child.ts"), file, "native-cpu,js"], {
      encoding: "utf8",
      timeout: 300_000,
      maxBuffer: 1 << 20,
    });
    const run = JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as { backend: string; baseline: Memory; loaded: Memory; forward: Memory; logits: number[] };
    expect(run.backend.startsWith("native-cpu")).toBe(true);
    const size = fs.statSync(file).size;
    const embedding = VOCAB * HIDDEN * 2;
    expect(run.loaded.anon - run.baseline.anon).toBeLessThan(0.75 * embedding);
    expect(run.forward.peak - run.baseline.peak).toBeLessThanOrEqual(1.1 * size + FIXED_ALLOWANCE);
    expect(run.logits.every(Number.isFinite)).toBe(true);
  }, 300_000);
});
