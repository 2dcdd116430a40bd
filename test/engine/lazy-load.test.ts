/**
 * Ternary projections converted on first use (issue 15 point 5): a GGUF file loaded with the native addon maps
 * the file and converts each I2_S / TQ2_0 projection to t2 codes the first time a kernel reads it. The logits are
 * those of the eager path (a copy of the same bytes loaded through MemorySource, converted at load), nothing is
 * converted by loading itself, and a hostile file is still refused with the eager path's typed error before any
 * of its bytes is used. Also the native whole-file mapping functions against transcodeTernary.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { probeNativeCpu } from "../../src/backends/native-cpu/addon.js";
import { resolveBackend } from "../../src/backends/registry.js";
import { FormatError } from "../../src/core/errors.js";
import { loadGgufModel } from "../../src/engine/load-gguf.js";
import { loadModel } from "../../src/engine/model.js";
import { readGguf } from "../../src/formats/gguf/reader.js";
import { MAP_MIN_BYTES, MemorySource } from "../../src/formats/gguf/source.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { loadCodecs, MAPPED_FILE_SHRANK, setLoadCodecs, type LoadCodecs } from "../../src/quant/load-codecs.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { ternaryFromCodes } from "../../src/tensor/ops/quant.js";
import { AUTO_HEAD_WEIGHTS, headTarget } from "../../src/model/bitnet/weights.js";
import { bothPaths } from "../helpers/load-codecs.js";
import { ByteArena } from "../../src/backends/host-memory.js";

const jsBackend = createJsBackend();

const probe = probeNativeCpu();
const BACKENDS = ["native-cpu", "js"] as const;
const TOKENS = [1, 5, 9, 2];

/** Where a tensor's bytes start in a GGUF file's bytes, and how many there are. */
async function tensorAt(bytes: Uint8Array, name: string): Promise<{ at: number; size: number }> {
  const file = await readGguf(new MemorySource(bytes));
  const info = file.tensor(name);
  if (info === undefined) {
    throw new Error(`no ${name}`);
  }
  return { at: file.dataOffset + info.offset, size: info.byteSize };
}

describe.skipIf(!probe.available)("lazy ternary conversion", () => {
  const registered = loadCodecs() as LoadCodecs;
  let dir = "";
  let calls = 0;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "barbell-lazy-"));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  afterEach(() => setLoadCodecs(registered));

  /** The registered codecs, counting transcodeMapped calls. */
  const counting = (): void => {
    calls = 0;
    const transcodeMapped = registered.transcodeMapped;
    expect(transcodeMapped).toBeDefined();
    setLoadCodecs({
      ...registered,
      transcodeMapped: (...args) => {
        calls++;
        return (transcodeMapped as NonNullable<LoadCodecs["transcodeMapped"]>)(...args);
      },
    });
  };

  const write = (name: string, bytes: Uint8Array): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, bytes);
    return file;
  };

  for (const weightType of ["i2_s", "tq2_0"] as const) {
    it(`should convert ${weightType} projections on first use, to the logits of converting at load`, async () => {
      const bytes = makeBitnetFixture({ weightType, hidden: 256, ffn: 512, layers: 2, seed: 31 });
      counting();
      const lazy = await loadModel(write(`m-${weightType}.gguf`, bytes), { backends: [...BACKENDS], contextLength: 8 });
      const backend = await resolveBackend({ backends: [...BACKENDS] });
      const eager = await loadGgufModel(bytes, { backend, contextLength: 8 });
      try {
        expect(calls).toBe(0); // loading converted nothing
        const got = await lazy.logits(TOKENS);
        expect(calls).toBe(2 * 7); // each projection of both layers once
        const want = await eager.logits(TOKENS);
        expect(got.length).toBe(want.length);
        got.forEach((row, i) => expect(Array.from(row)).toEqual(Array.from(want[i] ?? [])));
        await lazy.logits(TOKENS);
        expect(calls).toBe(2 * 7); // converted once
      } finally {
        lazy.dispose();
        eager.dispose();
      }
    });
  }

  for (const [headType, codec] of [
    ["q8_0", "encodeQ8_0"],
    ["q6_k", "encodeQ6_K"],
  ] as const) {
    it(`should requantize a float head (headType ${headType}) on first use, once, to the logits of requantizing at load`, async () => {
      const bytes = makeBitnetFixture({ embeddingType: "f16", tied: false, hidden: 256, ffn: 512, layers: 2, seed: 33 });
      let encodes = 0;
      const encode = registered[codec];
      expect(encode).toBeDefined();
      setLoadCodecs({
        ...registered,
        [codec]: (...args: Parameters<LoadCodecs["encodeQ8_0"]>) => {
          encodes++;
          return (encode as LoadCodecs["encodeQ8_0"])(...args);
        },
      });
      const backend = await resolveBackend({ backends: [...BACKENDS] });
      const lazy = await loadModel(write(`head-f16-${headType}.gguf`, bytes), { backends: [...BACKENDS], contextLength: 8, headType });
      // The eager conversion: weights on a backend without lazily made bytes are requantized while loading.
      const { adoptLazy: _omitted, ...eagerBackend } = backend;
      const eager = await loadGgufModel(bytes, { backend: eagerBackend, contextLength: 8, headType });
      try {
        expect(encodes).toBe(1); // the eager model's head only
        const got = await lazy.logits(TOKENS);
        expect(encodes).toBe(2);
        await lazy.logits(TOKENS);
        expect(encodes).toBe(2); // converted once
        const want = await eager.logits(TOKENS);
        got.forEach((row, i) => expect(Array.from(row)).toEqual(Array.from(want[i] ?? [])));
        // And the head really is the requantized one: the file's F16 head gives other logits.
        const kept = await loadGgufModel(bytes, { backend: eagerBackend, contextLength: 8, headType: "keep" });
        try {
          const file = await kept.logits(TOKENS);
          expect(Array.from(file[0] ?? [])).not.toEqual(Array.from(got[0] ?? []));
        } finally {
          kept.dispose();
        }
      } finally {
        lazy.dispose();
        eager.dispose();
      }
    });
  }

  it("should requantize a float head by default (auto) only when it is large and can be made on first use", async () => {
    const backend = await resolveBackend({ backends: [...BACKENDS] });
    const { adoptLazy: _omitted, ...device } = backend;
    const rows = Math.ceil(AUTO_HEAD_WEIGHTS / 2560);
    expect(headTarget({ backend }, rows, 2560)).toBe("q6_k"); // the native encoder is loaded, rows of whole 256-blocks
    expect(headTarget({ backend }, Math.ceil(AUTO_HEAD_WEIGHTS / 2592), 2592)).toBe("q8_0"); // 2592 = 81 · 32: no 256-blocks
    expect(headTarget({ backend }, 2 ** 20, 2600)).toBeUndefined(); // neither divides the rows: the file's
    expect(headTarget({ backend }, rows - 1, 2560)).toBeUndefined();
    expect(headTarget({ backend, lazy: false }, rows, 2560)).toBeUndefined(); // would cost the load
    expect(headTarget({ backend: device }, 2 ** 20, 2 ** 10)).toBeUndefined(); // no bytes made on first use (device memory)
    expect(headTarget({ backend, headType: "keep" }, 2 ** 20, 2 ** 10)).toBeUndefined();
    expect(headTarget({ backend: device, headType: "q8_0" }, 1, 32)).toBe("q8_0");
    expect(headTarget({ backend: device, headType: "q6_k" }, 1, 256)).toBe("q6_k");
    // Without the native Q6_K encoder (an addon built before it, or none), auto takes Q8_0.
    const { encodeQ6_K: _absent, ...older } = registered;
    setLoadCodecs(older);
    expect(headTarget({ backend }, rows, 2560)).toBe("q8_0");
    setLoadCodecs(registered);
    // A small model's head under the default: the file's, nothing requantized.
    let encodes = 0;
    setLoadCodecs({ ...registered, encodeQ8_0: (...args) => (encodes++, registered.encodeQ8_0(...args)) });
    const model = await loadModel(write("head-small.gguf", makeBitnetFixture({ embeddingType: "f16", seed: 34 })), { backends: [...BACKENDS], contextLength: 8 });
    try {
      await model.logits(TOKENS);
      expect(encodes).toBe(0);
    } finally {
      model.dispose();
    }
  });

  it("should refuse an I2_S code 3 at first use with the load-time error, every time", async () => {
    const bytes = makeBitnetFixture({ weightType: "i2_s", hidden: 256, ffn: 512, layers: 2, seed: 32 });
    const { at } = await tensorAt(bytes, "blk.1.ffn_down.weight");
    bytes[at + 100] = 0xff;
    const backend = await resolveBackend({ backends: [...BACKENDS] });
    const eagerError = await loadGgufModel(bytes, { backend }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(eagerError).toBeInstanceOf(FormatError);
    const model = await loadModel(write("code3.gguf", bytes), { backends: [...BACKENDS], contextLength: 8 });
    try {
      for (let i = 0; i < 2; i++) {
        const e = await model.logits(TOKENS).then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(e).toBeInstanceOf(FormatError);
        expect((e as FormatError).code).toBe((eagerError as FormatError).code);
        expect((e as FormatError).message).toBe((eagerError as FormatError).message);
      }
    } finally {
      model.dispose();
    }
  });

  it("should refuse TQ2_0 blocks whose scale differs from the first block's at first use, as loading does", async () => {
    const bytes = makeBitnetFixture({ weightType: "tq2_0", hidden: 256, ffn: 512, layers: 2, seed: 33 });
    const { at, size } = await tensorAt(bytes, "blk.0.ffn_up.weight");
    const last = at + size - 66;
    bytes[last + 65] = (bytes[last + 65] ?? 0) ^ 0x04; // another positive fp16 d in the last block
    const backend = await resolveBackend({ backends: [...BACKENDS] });
    await expect(loadGgufModel(bytes, { backend })).rejects.toThrow(/ffn_up.*allowFloatWeights/);
    const model = await loadModel(write("scales.gguf", bytes), { backends: [...BACKENDS], contextLength: 8 });
    try {
      const e = await model.logits(TOKENS).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(FormatError);
      expect((e as FormatError).code).toBe("bad-value");
      expect((e as FormatError).message).toMatch(/ffn_up.*allowFloatWeights/);
    } finally {
      model.dispose();
    }
  });

  it("should refuse with FormatError truncated, not end the process, when the file shrinks on disk before first use", async () => {
    const bytes = makeBitnetFixture({ weightType: "i2_s", embeddingType: "f16", tied: false, hidden: 256, ffn: 512, layers: 2, seed: 35 });
    const file = write("shrinks.gguf", bytes);
    const model = await loadModel(file, { backends: [...BACKENDS], contextLength: 8, headType: "q8_0" });
    try {
      fs.truncateSync(file, 4096);
      const e = await model.logits(TOKENS).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(FormatError);
      expect((e as FormatError).code).toBe("truncated");
      expect((e as FormatError).message).not.toContain(dir);
    } finally {
      model.dispose();
    }
    // The native readers on their own: a mapping of a file that shrank afterwards reads as false / −3, not SIGBUS.
    const { mapFile, mapRange, copyMapped, transcodeMapped } = registered;
    const big = write("shrinks.bin", new Uint8Array(1 << 20).fill(0x55));
    const fd = fs.openSync(big, "r");
    try {
      const map = mapFile?.(fd, 1 << 20);
      const view = mapRange?.(fd, 0, 1 << 20);
      expect(map).toBeDefined();
      expect(view).toBeDefined();
      fs.truncateSync(big, 4096);
      const out = new Uint8Array(1 << 16);
      expect(copyMapped?.(map as NonNullable<typeof map>, 0, out.subarray(0, 4096))).toBe(true);
      expect(copyMapped?.(map as NonNullable<typeof map>, 1 << 19, out)).toBe(false);
      expect(transcodeMapped?.(map as NonNullable<typeof map>, 0, 0, 1 << 22, new Uint8Array(1 << 20))).toBe(MAPPED_FILE_SHRANK);
      expect(registered.encodeQ8_0(1, new Uint8Array(view as ArrayBuffer), 1 << 14, 32, new Uint8Array((1 << 14) * 34))).toBe(false);
    } finally {
      fs.closeSync(fd);
    }
  });

  it("should copy a head kept as stored on first use, guarded, and read nothing of the file after first use", async () => {
    // A tied Q6_K head of 4.2 MB: reads of 1 MiB or more are views of the file (MAP_MIN_BYTES), shorter ones copies.
    const bytes = makeBitnetFixture({ weightType: "i2_s", embeddingType: "q6_k", hidden: 256, ffn: 512, layers: 2, vocab: 20000, seed: 36 });
    const { size } = await tensorAt(bytes, "token_embd.weight");
    expect(size).toBeGreaterThanOrEqual(MAP_MIN_BYTES);
    let headCopies = 0;
    const copyMapped = registered.copyMapped as NonNullable<LoadCodecs["copyMapped"]>;
    setLoadCodecs({ ...registered, copyMapped: (map, offset, dst) => ((headCopies += dst.length === size ? 1 : 0), copyMapped(map, offset, dst)) });
    const file = write("head-q6k.gguf", bytes);
    const backend = await resolveBackend({ backends: [...BACKENDS] });
    const lazy = await loadModel(file, { backends: [...BACKENDS], contextLength: 8 });
    const eager = await loadGgufModel(bytes, { backend, contextLength: 8 }); // bytes in memory: nothing mapped, nothing copied
    try {
      expect(headCopies).toBe(0); // loading copies nothing
      const got = await lazy.logits(TOKENS);
      expect(headCopies).toBe(1);
      const want = await eager.logits(TOKENS);
      got.forEach((row, i) => expect(Array.from(row)).toEqual(Array.from(want[i] ?? [])));
      // Every weight was converted or copied by the first use: the file shrinking on disk now changes nothing.
      fs.truncateSync(file, 4096);
      const again = await lazy.logits(TOKENS);
      again.forEach((row, i) => expect(Array.from(row)).toEqual(Array.from(want[i] ?? [])));
      expect(headCopies).toBe(1);
    } finally {
      lazy.dispose();
      eager.dispose();
    }
    // Shrunk before first use: the typed error, not a SIGBUS at the first token.
    const early = write("head-q6k-early.gguf", bytes);
    const model = await loadModel(early, { backends: [...BACKENDS], contextLength: 8, headType: "keep" });
    try {
      fs.truncateSync(early, 4096);
      const e = await model.logits(TOKENS).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(FormatError);
      expect((e as FormatError).code).toBe("truncated");
    } finally {
      model.dispose();
    }
  });

  it("should find the first code 3 natively where the JS check finds it", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const n = 1 + ((seed * 7919) % 300);
      const codes = new Uint8Array(n).fill(0x55);
      if (seed % 5 !== 0) {
        const at = (seed * 104729) % n;
        codes[at] = 0x03 << (2 * (seed % 4));
      }
      const view = codes.subarray(seed % 3); // unaligned starts too
      const { js, native } = bothPaths(() => {
        const r = ternaryFromCodes(view, ["r", "c"], [1, view.length * 4], { backend: jsBackend });
        return r.ok ? (r.value.dispose(), -1) : r.error.message;
      });
      expect(native).toEqual(js);
    }
  });

  it("should transcode from a file mapping as transcodeTernary does, split over threads, and refuse bad handles and ranges", () => {
    const { mapFile, copyMapped, transcodeMapped } = registered;
    if (mapFile === undefined || copyMapped === undefined || transcodeMapped === undefined) {
      throw new Error("the addon has no file mapping");
    }
    // 2^23 codes: more than one thread's share, so the parallel split runs where there are several cores.
    const rows = 2048;
    const cols = 4096;
    const values = Float32Array.from({ length: rows * cols }, (_, i) => (((i * 2654435761) >>> 7) % 3) - 1);
    for (const format of ["i2_s", "tq2_0"] as const) {
      const src = QUANT_TRAITS[format].encode(values, rows, cols);
      const cases: [string, Uint8Array][] = [["clean", src]];
      const code3 = src.slice();
      code3[src.length - 200] = 0xff; // in the last thread's share
      cases.push(["code 3 late", code3]);
      if (format === "tq2_0") {
        const scale = src.slice();
        scale[src.length - 1] = (scale[src.length - 1] ?? 0) ^ 0x04; // the last block's d
        cases.push(["scale late", scale]);
      }
      for (const [what, bytes] of cases) {
        const file = write(`raw-${format}-${what}.bin`, Uint8Array.of(7));
        fs.appendFileSync(file, bytes);
        const fd = fs.openSync(file, "r");
        const map = mapFile(fd, fs.fstatSync(fd).size);
        fs.closeSync(fd); // the mapping outlives the descriptor
        expect(map).toBeDefined();
        if (map === undefined) {
          continue;
        }
        const want = new Uint8Array((rows * cols) / 4);
        const got = new Uint8Array((rows * cols) / 4);
        const r1 = registered.transcodeTernary(format === "i2_s" ? 0 : 1, bytes, rows * cols, want);
        const r2 = transcodeMapped(map, 1, format === "i2_s" ? 0 : 1, rows * cols, got);
        expect([what, r2]).toEqual([what, r1]);
        if (r1 !== -2) {
          expect(Buffer.compare(got, want)).toBe(0);
        }
        const head = new Uint8Array(1);
        copyMapped(map, 0, head);
        expect(head[0]).toBe(7);
        expect(() => copyMapped(map, bytes.length, new Uint8Array(2))).toThrow(RangeError);
        expect(() => transcodeMapped(map, bytes.length, format === "i2_s" ? 0 : 1, rows * cols, got)).toThrow(RangeError);
      }
    }
    expect(() => copyMapped({} as never, 0, new Uint8Array(1))).toThrow(TypeError);
  });

  // Linux with transparent huge pages on request: codes converted into an arena's ranges (as a GGUF source's lazy
  // projections are) fill whole 2 MiB windows of the arena's ArrayBuffer as huge pages (native/cpu/load.cc
  // prefault_destination), projections smaller than 2 MiB included.
  it.skipIf(!hugePagesOnRequest())("should fill an arena's pages as huge pages when projections convert into it", () => {
    const { mapFile, transcodeMapped } = registered;
    if (mapFile === undefined || transcodeMapped === undefined) {
      throw new Error("the addon has no file mapping");
    }
    const rows = 1024;
    const cols = 3072; // 768 KiB of codes a projection: none spans 2 MiB alone
    const values = Float32Array.from({ length: rows * cols }, (_, i) => (((i * 2654435761) >>> 7) % 3) - 1);
    const src = QUANT_TRAITS.i2_s.encode(values, rows, cols);
    const file = write("arena-i2_s.bin", src);
    const fd = fs.openSync(file, "r");
    const map = mapFile(fd, fs.fstatSync(fd).size);
    fs.closeSync(fd);
    expect(map).toBeDefined();
    const want = new Uint8Array((rows * cols) / 4);
    const r = registered.transcodeTernary(0, src, rows * cols, want);
    const arena = new ByteArena();
    const before = anonHugeKiB();
    const parts = Array.from({ length: 8 }, () => arena.take((rows * cols) / 4));
    for (const part of parts) {
      expect(transcodeMapped(map as NonNullable<typeof map>, 0, 0, rows * cols, part)).toBe(r);
      expect(Buffer.compare(part, want)).toBe(0);
    }
    // 6 MiB of codes from the arena's start: at least the two whole windows after the first are huge pages.
    expect(anonHugeKiB() - before).toBeGreaterThanOrEqual(2 * 2048);
  });
});

function hugePagesOnRequest(): boolean {
  try {
    return /\[(always|madvise)\]/.test(fs.readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8")) && anonHugeKiB() >= 0;
  } catch {
    return false;
  }
}

/** This process's anonymous memory in transparent huge pages, in KiB (Linux). */
function anonHugeKiB(): number {
  const m = /AnonHugePages:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/smaps_rollup", "utf8"));
  return m === null ? -1 : Number(m[1]);
}
