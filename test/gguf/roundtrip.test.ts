import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gguf as hfGguf } from "@huggingface/gguf";
import {
  FileSource,
  INITIAL_HEADER_WINDOW,
  gv,
  openGguf,
  readGguf,
  readGgufBytes,
  writeGguf,
  type GgufFile,
  type GgufTensorInput,
} from "../../src/formats/gguf/index.js";
import { everyValueMetadata, sampleFile, sampleTensors } from "./craft.js";

async function rewrite(file: GgufFile): Promise<Uint8Array> {
  const tensors: GgufTensorInput[] = [];
  for (const t of file.tensors) {
    tensors.push({ name: t.name, dims: t.dims, typeId: t.typeId, data: await file.tensorData(t) });
  }
  return writeGguf({ metadata: file.metadata, tensors });
}

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "barbell-gguf-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("GGUF writer and reader round trip", () => {
  it("should read back every metadata value with its wire type", () => {
    const file = readGgufBytes(sampleFile());
    expect([...file.metadata.entries()]).toEqual(everyValueMetadata());
    expect(file.version).toBe(3);
    expect(file.alignment).toBe(32);
  });

  it("should read back tensor infos and bytes at aligned offsets", async () => {
    for (const alignment of [8, 32, 64, 4096]) {
      const bytes = sampleFile(alignment);
      const file = readGgufBytes(bytes);
      expect(file.dataOffset % alignment).toBe(0);
      expect(bytes.length % alignment).toBe(0);
      const inputs = sampleTensors();
      expect(file.tensors.map((t) => [t.name, t.dims, t.typeId, t.byteSize])).toEqual(
        inputs.map((t) => [t.name, t.dims, t.typeId, t.data.length]),
      );
      for (const [i, t] of file.tensors.entries()) {
        expect(t.offset % alignment).toBe(0);
        expect(await file.tensorData(t.name)).toEqual(inputs[i]?.data);
      }
    }
  });

  it("should write a byte-identical file when rewriting a file it wrote", async () => {
    for (const alignment of [undefined, 8, 64]) {
      const bytes = sampleFile(alignment);
      expect(await rewrite(readGgufBytes(bytes))).toEqual(bytes);
    }
  });

  it("should return a byte slice of a tensor on request", async () => {
    const file = readGgufBytes(sampleFile());
    const whole = await file.tensorData("token_embd.weight");
    expect(await file.tensorData("token_embd.weight", { offset: 10, length: 5 })).toEqual(whole.subarray(10, 15));
    expect(await file.tensorData("token_embd.weight", { offset: whole.length })).toEqual(new Uint8Array(0));
    await expect(file.tensorData("token_embd.weight", { offset: 1, length: whole.length })).rejects.toMatchObject({
      code: "bounds",
    });
    await expect(file.tensorData("nope")).rejects.toMatchObject({ code: "bad-value" });
  });

  it("should record why type 36 was read as I2_S", () => {
    const info = readGgufBytes(sampleFile()).tensor("blk.0.attn_q.weight");
    expect(info?.typeName).toBe("i2_s");
    expect(info?.typeInterpretation).toMatch(/bitnet-b1\.58/);
    expect(info?.byteSize).toBe((128 * 2) / 4 + 32);
  });

  it("should read a file through a file source, growing the header window past its first read", async () => {
    const tokens = Array.from({ length: 40_000 }, (_, i) => `token-${i}-${"x".repeat(20)}`);
    const bytes = writeGguf({
      metadata: [
        ["general.architecture", gv.string("bitnet")],
        ["tokenizer.ggml.tokens", gv.array("string", tokens)],
      ],
      tensors: sampleTensors(),
    });
    expect(bytes.length).toBeGreaterThan(INITIAL_HEADER_WINDOW);
    const path = join(dir, "big-header.gguf");
    await writeFile(path, bytes);
    const reads: [number, number][] = [];
    const source = await FileSource.open(path);
    const counting = {
      size: source.size,
      read: (offset: number, length: number) => {
        reads.push([offset, length]);
        return source.read(offset, length);
      },
    };
    const file = await readGguf(counting);
    expect(file.metadata.getStringArray("tokenizer.ggml.tokens")).toEqual(tokens);
    expect(reads[0]).toEqual([0, INITIAL_HEADER_WINDOW]);
    expect(reads.length).toBeGreaterThan(1);
    const readBytes = reads.reduce((n, [, len]) => n + len, 0);
    expect(readBytes).toBeLessThanOrEqual(bytes.length);
    expect(await file.tensorData("output_norm.weight")).toEqual(sampleTensors()[0]?.data);
    await source.close();
  });

  it("should open a file by path and close it with await using", async () => {
    const path = join(dir, "sample.gguf");
    await writeFile(path, sampleFile());
    let source: FileSource | undefined;
    {
      await using file = await openGguf(path);
      expect(file.tensors).toHaveLength(3);
      expect(file.source).toBeInstanceOf(FileSource);
      source = file.source as FileSource;
    }
    await expect(source.read(0, 4)).rejects.toMatchObject({ code: "disposed" });
  });

  it("should agree with @huggingface/gguf on metadata and tensor infos", async () => {
    const path = join(dir, "hf.gguf");
    const bytes = sampleFile(64);
    await writeFile(path, bytes);
    const hf = await hfGguf(path, { allowLocalFile: true });
    const ours = readGgufBytes(bytes);
    for (const [key, value] of ours.metadata.entries()) {
      if (key === "test.string.bom") {
        continue; // @huggingface/gguf's TextDecoder strips a leading BOM; barbell keeps it for exact round trips
      }
      const theirs = (hf.metadata as Record<string, unknown>)[key];
      const plain = (v: typeof value): unknown =>
        v.type === "array" ? v.items.map((x) => (typeof x === "object" ? plain(x) : x)) : v.value;
      expect(theirs, key).toEqual(plain(value));
    }
    expect(hf.metadata.version).toBe(3);
    expect(hf.metadata.tensor_count).toBe(3n);
    expect(hf.tensorDataOffset).toBe(BigInt(ours.dataOffset));
    expect(hf.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype, Number(t.offset)])).toEqual(
      ours.tensors.map((t) => [t.name, t.dims, t.typeId, t.offset]),
    );
  });
});
