/**
 * Every frame is valid BARE: a decoder generated afresh from the published schema (JavaScript output of
 * @bare-ts/tools, decoding whole frames, payload included, with its own generic `data` reader) reads each
 * frame barbell writes to the same values barbell's decoder returns.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { transform } from "@bare-ts/tools";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  decodeMessage,
  encodeManifest,
  encodeTensorChunks,
  encodeTensorFrame,
  type WireMessage,
} from "../../src/formats/barewire/index.js";
import { encodeFrame, FRAME_VERSION, type Frame } from "../../src/actors/remote/frames.js";
import { MANIFEST, everyDType, sampleTensor } from "./helpers.js";

interface GenericFrame {
  magic: ArrayBuffer;
  version: number;
  message: { tag: string; val: Record<string, unknown> };
}

let dir = "";
let decodeFrame: (bytes: Uint8Array) => GenericFrame = () => {
  throw new Error("not loaded");
};
let decodeActorFrame: (bytes: Uint8Array) => GenericFrame & { body: ArrayBuffer } = () => {
  throw new Error("not loaded");
};

beforeAll(async () => {
  const root = path.resolve(import.meta.dirname, "../..");
  const schema = fs.readFileSync(path.join(root, "schema/barewire.bare"), "utf8");
  const lib = pathToFileURL(path.join(root, "node_modules/@bare-ts/lib/dist/index.js")).href;
  const js = transform(schema, { generator: "js", useSafeInt: true, schema: "barewire.bare" }).replace(
    /from "@bare-ts\/lib"/g,
    `from ${JSON.stringify(lib)}`,
  );
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "barewire-interop-"));
  const file = path.join(dir, "codec.mjs");
  fs.writeFileSync(file, js);
  const mod = (await import(pathToFileURL(file).href)) as { decodeFrame: typeof decodeFrame; decodeActorFrame: typeof decodeActorFrame };
  decodeFrame = mod.decodeFrame;
  decodeActorFrame = mod.decodeActorFrame;
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const bytesOf = (b: ArrayBuffer | Uint8Array): number[] => Array.from(b instanceof Uint8Array ? b : new Uint8Array(b));

function frames(): [string, Uint8Array][] {
  const out: [string, Uint8Array][] = everyDType().map((t) => [t.dtype, encodeTensorFrame(t)]);
  out.push(["manifest", encodeManifest(MANIFEST)]);
  encodeTensorChunks(sampleTensor("f32", 3, 1000), { chunkBytes: 5000 }).forEach((f, i) => out.push([`chunked ${i}`, f]));
  return out;
}

function expectSame(ours: WireMessage, theirs: GenericFrame): void {
  const v = theirs.message.val;
  switch (ours.kind) {
    case "tensor": {
      expect(theirs.message.tag).toBe("TensorFrame");
      const h = v["header"] as { name: string; dims: unknown[]; scales: Float32Array; flags: number };
      expect(h.name).toBe(ours.tensor.name);
      expect(h.dims).toEqual(ours.tensor.dims);
      expect(Array.from(h.scales)).toEqual(ours.tensor.scales);
      expect(bytesOf(v["payload"] as ArrayBuffer)).toEqual(bytesOf(ours.tensor.payload));
      expect(bytesOf(v["pad"] as ArrayBuffer).every((b) => b === 0)).toBe(true);
      return;
    }
    case "tensor-begin":
      expect(theirs.message.tag).toBe("TensorBegin");
      expect(v["totalBytes"]).toBe(ours.totalBytes);
      expect(v["chunkBytes"]).toBe(ours.chunkBytes);
      return;
    case "tensor-chunk":
      expect(theirs.message.tag).toBe("TensorChunk");
      expect(v["index"]).toBe(ours.index);
      expect(bytesOf(v["payload"] as ArrayBuffer)).toEqual(bytesOf(ours.payload));
      return;
    case "dump-manifest":
      expect(theirs.message.tag).toBe("DumpManifest");
      expect(Array.from(v["tokens"] as Uint32Array)).toEqual(ours.manifest.tokens);
      expect(v["entries"]).toEqual(ours.manifest.entries);
      return;
  }
}

describe("BAREWire interop with a decoder generated from the published schema", () => {
  it.each(frames())("should decode the %s frame to the same values as barbell's decoder", (_, frame) => {
    const ours = decodeMessage(frame);
    expect(ours.ok).toBe(true);
    const theirs = decodeFrame(frame);
    expect(bytesOf(theirs.magic)).toEqual([0x42, 0x57, 0x49, 0x52]);
    expect(theirs.version).toBe(1);
    if (ours.ok) {
      expectSame(ours.value, theirs);
    }
  });

  it("should read the published test vectors as valid BARE", () => {
    const file = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, "../vectors/barewire.json"), "utf8")) as {
      valid: { hex: string }[];
    };
    for (const v of file.valid) {
      expect(() => decodeFrame(new Uint8Array(Buffer.from(v.hex, "hex")))).not.toThrow();
    }
  });
});

describe("actor frames are ActorFrame values of the same schema", () => {
  const body = Uint8Array.from({ length: 20_000 }, (_, i) => i % 251);
  const frames: [Frame, string, Record<string, unknown>][] = [
    [{ kind: "start", restarts: 3, error: { name: "E", message: "m", code: "c" } }, "ActorStart", { restarts: 3, error: { name: "E", message: "m", code: "c" } }],
    [{ kind: "deliver", id: 9, mode: "stream", body }, "ActorDeliver", { id: 9, mode: "Stream" }],
    [{ kind: "failed", id: 2, error: { name: "TypeError", message: "x", code: "" } }, "ActorFailed", { id: 2, error: { name: "TypeError", message: "x", code: "" } }],
    [{ kind: "item", id: 2 ** 40, body }, "ActorItem", { id: 2 ** 40 }],
    [{ kind: "post-stop", error: undefined }, "ActorPostStop", { error: null }],
  ];

  it.each(frames)("should decode a %o frame with the generic decoder", (frame, tag, val) => {
    const theirs = decodeActorFrame(encodeFrame(frame));
    expect(bytesOf(theirs.magic)).toEqual([0x42, 0x57, 0x41, 0x43]);
    expect(theirs.version).toBe(FRAME_VERSION);
    expect(theirs.message.tag).toBe(tag);
    expect(theirs.message.val).toEqual(val);
    expect(bytesOf(theirs.body)).toEqual("body" in frame ? bytesOf(frame.body) : []);
  });
});
