/** Shared builders for the BAREWire tests. */
import { payloadBytes } from "../../src/formats/barewire/dtypes.js";
import { WIRE_DTYPES, type DumpManifest, type WireDType, type WireMessage, type WireTensor } from "../../src/formats/barewire/message.js";

/** Columns that are a whole number of blocks for every block format (256 covers q6_k and the ternary blocks). */
export const BLOCK_COLS = 256;

/** A deterministic, valid tensor of a dtype: payload bytes from a seed (ternary bytes avoid the invalid code 3). */
export function sampleTensor(dtype: WireDType, rows = 2, cols = BLOCK_COLS, seed = 1, name = `t.${dtype}`): WireTensor {
  const shape = [rows, cols];
  const n = payloadBytes(dtype, shape);
  if (n === undefined) {
    throw new Error(`no size for ${dtype} [${shape.join(", ")}]`);
  }
  const payload = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    payload[i] = dtype === "ternary" ? 0x55 ^ (s >>> 24 & 0x15) : s >>> 24;
  }
  if (dtype === "f32") {
    new Float32Array(payload.buffer).forEach((_, i, a) => (a[i] = (i % 13) - 6.5));
  }
  const scales = dtype === "ternary" || dtype === "binary" ? [0.5] : [];
  return { name, dtype, dims: [{ name: "rows", size: rows }, { name: "cols", size: cols }], scales, flags: 0, payload };
}

/** One sample of every wire dtype. */
export function everyDType(): WireTensor[] {
  return WIRE_DTYPES.map((d, i) => sampleTensor(d, 2, BLOCK_COLS, i + 1));
}

/** A small manifest. */
export const MANIFEST: DumpManifest = {
  model: "m.gguf",
  backend: "js",
  tokens: [1, 5, 9, 3],
  entries: ["token_embd", "blk.0.out", "logits"],
};

/** A message as plain JSON (payload as hex), the form test vectors use. */
export function messageJson(m: WireMessage): unknown {
  const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
  switch (m.kind) {
    case "tensor": {
      const { payload, ...header } = m.tensor;
      return { kind: m.kind, ...header, dims: header.dims.map((d) => ({ ...d })), payload: hex(payload) };
    }
    case "tensor-begin":
      return { ...m, header: { ...m.header } };
    case "tensor-chunk":
      return { kind: m.kind, stream: m.stream, index: m.index, payload: hex(m.payload) };
    case "dump-manifest":
      return { kind: m.kind, ...m.manifest };
  }
}

/** Hex of bytes. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

/** Bytes of hex, in a fresh 64-byte-aligned buffer. */
export function fromHex(h: string): Uint8Array {
  return new Uint8Array(Buffer.from(h, "hex"));
}
