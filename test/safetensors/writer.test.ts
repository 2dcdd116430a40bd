import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { FormatError } from "../../src/core/errors.js";
import {
  SAFETENSORS_DTYPE_BITS,
  openShardedSafetensors,
  parseSafetensorsIndex,
  readSafetensorsBytes,
  writeSafetensors,
  writeSafetensorsFile,
  type SafetensorsDtype,
  type SafetensorsTensorInput,
} from "../../src/formats/safetensors/index.js";

/**
 * An independent reader written from the format description alone (u64 length, JSON, buffer), used to check
 * the writer's output without going through barbell's reader.
 */
function independentRead(bytes: Uint8Array): Map<string, { dtype: string; shape: number[]; data: Uint8Array }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  const out = new Map<string, { dtype: string; shape: number[]; data: Uint8Array }>();
  for (const [name, v] of Object.entries(header)) {
    if (name !== "__metadata__") {
      const e = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
      const data = bytes.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]);
      out.set(name, { dtype: e.dtype, shape: e.shape, data });
    }
  }
  return out;
}

const DTYPES = Object.keys(SAFETENSORS_DTYPE_BITS).filter(
  (d) => SAFETENSORS_DTYPE_BITS[d as SafetensorsDtype] % 8 === 0,
);

const tensorArb: fc.Arbitrary<Omit<SafetensorsTensorInput, "name">> = fc
  .record({ dtype: fc.constantFrom(...DTYPES), shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }) })
  .chain(({ dtype, shape }) => {
    const bytes = (shape.reduce((a, d) => a * d, 1) * SAFETENSORS_DTYPE_BITS[dtype as SafetensorsDtype]) / 8;
    return fc
      .uint8Array({ minLength: bytes, maxLength: bytes })
      .map((data) => ({ dtype: dtype as SafetensorsDtype, shape, data }));
  });

const nameArb = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s !== "__metadata__");
const filesArb = fc.dictionary(nameArb, tensorArb, { maxKeys: 6 });

describe("safetensors writer", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) {
      await rm(dir, { recursive: true, force: true });
      dir = undefined;
    }
  });

  it("should round-trip any set of tensors through barbell's reader in every order", async () => {
    await fc.assert(
      fc.asyncProperty(filesArb, fc.constantFrom("alignment", "name", "given" as const), async (d, order) => {
        const tensors = Object.entries(d).map(([name, t]) => ({ name, ...t }));
        const bytes = writeSafetensors({ tensors, metadata: { format: "pt", note: "é" }, order });
        const file = await readSafetensorsBytes(bytes);
        expect(file.headerBytes % 8).toBe(0);
        expect(file.metadata.get("note")).toBe("é");
        for (const t of tensors) {
          expect(file.tensor(t.name)?.shape).toEqual(t.shape);
          expect(await file.tensorData(t.name)).toEqual(t.data);
        }
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it("should produce files an independent JSON.parse-based reader reads identically", async () => {
    await fc.assert(
      fc.asyncProperty(filesArb, async (d) => {
        const tensors = Object.entries(d).map(([name, t]) => ({ name, ...t }));
        const other = independentRead(writeSafetensors({ tensors }));
        expect(other.size).toBe(tensors.length);
        for (const t of tensors) {
          expect(other.get(t.name)).toEqual({ dtype: t.dtype, shape: t.shape, data: t.data });
        }
      }),
      { seed: 43, numRuns: 200 },
    );
  });

  it("should lay tensors out like the reference: larger dtypes first, then by name, each aligned", async () => {
    const tensors: SafetensorsTensorInput[] = [
      { name: "b", dtype: "U8", shape: [3], data: new Uint8Array(3) },
      { name: "a", dtype: "F64", shape: [1], data: new Uint8Array(8) },
      { name: "c", dtype: "F32", shape: [2], data: new Uint8Array(8) },
    ];
    const file = await readSafetensorsBytes(writeSafetensors({ tensors }));
    expect(file.tensors.map((t) => [t.name, t.begin])).toEqual([["a", 0], ["c", 8], ["b", 16]]);
    const given = await readSafetensorsBytes(writeSafetensors({ tensors, order: "given" }));
    expect(given.tensors.map((t) => t.name)).toEqual(["b", "a", "c"]);
  });

  it.each([
    ["a reserved name", { name: "__metadata__", dtype: "U8", shape: [1], data: new Uint8Array(1) }, "bad-value"],
    [
      "bytes that disagree with the shape",
      { name: "x", dtype: "F32", shape: [2], data: new Uint8Array(4) },
      "bad-dims",
    ],
    ["a negative dim", { name: "x", dtype: "U8", shape: [-1], data: new Uint8Array(0) }, "bad-dims"],
    [
      "an unknown dtype",
      { name: "x", dtype: "F128" as SafetensorsDtype, shape: [], data: new Uint8Array(16) },
      "bad-tensor-type",
    ],
    ["a lone surrogate in a name", { name: "\ud800", dtype: "U8", shape: [0], data: new Uint8Array(0) }, "bad-utf8"],
  ] as const)("should refuse to write %s", (_what, tensor, expected) => {
    expect(() => writeSafetensors({ tensors: [tensor] })).toThrow(expect.objectContaining({ code: expected }) as Error);
  });

  it("should refuse duplicate tensor names", () => {
    const t = { name: "x", dtype: "U8", shape: [0], data: new Uint8Array(0) } as const;
    expect(() => writeSafetensors({ tensors: [t, t] })).toThrow(FormatError);
  });

  it("should read sharded checkpoints through the index and name the tensor of a broken index", async () => {
    dir = await mkdtemp(join(tmpdir(), "barbell-st-"));
    const t = (name: string, v: number): SafetensorsTensorInput => ({
      name,
      dtype: "U8",
      shape: [1],
      data: Uint8Array.of(v),
    });
    await writeSafetensorsFile(join(dir, "s1.safetensors"), { tensors: [t("a", 1), t("b", 2)] });
    await writeSafetensorsFile(join(dir, "s2.safetensors"), { tensors: [t("c", 3)] });
    const index = (map: Record<string, string>): string =>
      JSON.stringify({ metadata: { total_size: 3 }, weight_map: map });
    const indexPath = join(dir, "model.safetensors.index.json");
    await writeFile(indexPath, index({ a: "s1.safetensors", b: "s1.safetensors", c: "s2.safetensors" }));
    const store = await openShardedSafetensors(dir);
    expect(store.tensors.map((x) => x.name)).toEqual(["a", "b", "c"]);
    expect([...(await store.tensorData("c"))]).toEqual([3]);
    expect(store.shardOf("b")).toBe("s1.safetensors");
    await store.close();

    const broken: [Record<string, string>, RegExp][] = [
      [{ a: "s1.safetensors", b: "s2.safetensors", c: "s2.safetensors" }, /"b" is in s1.safetensors but mapped to s2/],
      [{ a: "s1.safetensors", b: "s1.safetensors", c: "s2.safetensors", d: "s2.safetensors" }, /"d" to s2.safetensors/],
      [{ a: "s1.safetensors", c: "s2.safetensors" }, /"b" is in s1.safetensors but not in weight_map/],
    ];
    for (const [map, message] of broken) {
      await writeFile(indexPath, index(map));
      await expect(openShardedSafetensors(dir)).rejects.toThrow(message);
    }
    await writeSafetensorsFile(join(dir, "s3.safetensors"), { tensors: [t("a", 9)] });
    await writeFile(indexPath, index({ a: "s3.safetensors", b: "s1.safetensors", c: "s2.safetensors" }));
    await expect(openShardedSafetensors(dir)).rejects.toThrow(expect.objectContaining({ code: "duplicate" }) as Error);
  });

  it.each(["../x.safetensors", "/etc/passwd", "a/b.safetensors", "..", "C:evil", "a\\b", ""])(
    "should reject the shard name %j as not a plain file name",
    (shard) => {
      expect(() => parseSafetensorsIndex(JSON.stringify({ weight_map: { w: shard } }))).toThrow(/plain file name/);
    },
  );
});
