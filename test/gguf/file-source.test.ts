// FileSource short reads (under MAP_MIN_BYTES): copies from the whole-file mapping where the native addon is
// loaded, positional reads elsewhere; the file's bytes either way, and a range past the end is `truncated`.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { resolveBackend } from "../../src/backends/registry.js";
import { FileSource, openGguf } from "../../src/formats/gguf/file-source.js";
import { MAP_MIN_BYTES } from "../../src/formats/gguf/source.js";
import { LAZY_STRING_ITEMS } from "../../src/formats/gguf/array-items.js";
import { gv, writeGguf } from "../../src/formats/gguf/index.js";
import { loadCodecs, setLoadCodecs, type LoadCodecs } from "../../src/quant/load-codecs.js";
import { ramp } from "./craft.js";

describe("FileSource short reads", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "barbell-fs-"));
  let native: LoadCodecs | undefined;
  beforeAll(async () => {
    await resolveBackend({ backends: ["native-cpu", "js"] }); // registers the addon's codecs where it loads (shared, kept)
    native = loadCodecs();
  });
  afterEach(() => setLoadCodecs(native));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each(["native", "js"] as const)("should give the file's bytes at any offset, and refuse a range past the end as truncated (%s)", async (path_) => {
    setLoadCodecs(path_ === "native" ? native : undefined);
    const bytes = ramp(3 * 4096 + 17, 5);
    const file = path.join(dir, `f-${path_}.bin`);
    fs.writeFileSync(file, bytes);
    const source = await FileSource.open(file);
    try {
      expect(source.mapping() !== undefined).toBe(loadCodecs()?.mapFile !== undefined && process.platform !== "win32");
      for (const [offset, length] of [[0, 1], [1, 64], [4095, 2], [4096 * 3, 17], [7, bytes.length - 7]] as const) {
        expect(await source.read(offset, length)).toEqual(bytes.subarray(offset, offset + length));
      }
      expect(source.mappedBytes).toBe(0); // all under MAP_MIN_BYTES: copies
      expect(bytes.length).toBeLessThan(MAP_MIN_BYTES);
      await expect(source.read(bytes.length - 4, 8)).rejects.toMatchObject({ code: "truncated" });
    } finally {
      await source.close();
    }
    await expect(source.read(0, 4)).rejects.toMatchObject({ code: "disposed" });
  });
  it("should keep a large string array readable after its file is cut short on disk (copied out of a mapped header window)", async () => {
    const items = Array.from({ length: LAZY_STRING_ITEMS + 8 }, (_, i) => `${i}:${"é".repeat(600)}`);
    const file = path.join(dir, "vocab.gguf");
    fs.writeFileSync(file, writeGguf({ metadata: [["k", gv.array("string", items)]], tensors: [] }));
    expect(fs.statSync(file).size).toBeGreaterThan(MAP_MIN_BYTES); // the first header window is a mapping where the addon loads
    const gguf = await openGguf(file);
    try {
      fs.truncateSync(file, 0); // pages of a mapping past the new end would now fault (SIGBUS) if read
      expect(gguf.metadata.getStringList("k")?.at(3)).toBe(items[3]);
      expect(gguf.metadata.getStringArray("k")).toEqual(items);
    } finally {
      await gguf.close();
    }
  });
});
