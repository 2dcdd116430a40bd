/**
 * The conformance-vector file of the CUDA harness ("BBCV", native/cuda/harness/vectors.h has the layout and
 * the reader): cases of named input tensors, the JS reference's expected outputs, numeric attributes and a
 * tolerance. Written by scripts/cuda/export-vectors.ts; the GPU machine has no Node, so the files carry
 * everything the harness compares against.
 */
import { ShapeError } from "../../src/core/errors.js";

/** The harness's limits (vectors.h): one file and one tensor at most 64 MiB, the device tool's per-call cap. */
export const MAX_VECTOR_FILE_BYTES = 64 * 1024 * 1024;
export const MAX_CASES = 4096;
export const MAX_TENSORS = 256;
export const MAX_ATTRS = 64;

export type VectorDType = "f32" | "i8" | "i32" | "raw";
const DTYPE_CODE: Record<VectorDType, number> = { f32: 0, i8: 1, i32: 2, raw: 3 };

export interface VectorTensor {
  readonly name: string;
  readonly dtype: VectorDType;
  readonly role: "in" | "expect";
  readonly dims: readonly number[];
  readonly data: ArrayBufferView;
}

export interface VectorCase {
  readonly name: string;
  readonly kernel: string;
  readonly attrs: Readonly<Record<string, number>>;
  readonly tensors: readonly VectorTensor[];
  /** Both 0: bit for bit. Otherwise |got − want| ≤ atol + rtol·|want| element-wise. */
  readonly rtol: number;
  readonly atol: number;
}

export const tensor = (name: string, dtype: VectorDType, dims: readonly number[], data: ArrayBufferView, role: "in" | "expect" = "in"): VectorTensor => ({
  name,
  dtype,
  role,
  dims,
  data,
});

class Writer {
  private chunks: Uint8Array[] = [];
  size = 0;
  bytes(b: Uint8Array): void {
    this.chunks.push(b);
    this.size += b.byteLength;
    if (this.size > MAX_VECTOR_FILE_BYTES) {
      throw new ShapeError("size", `[cuda vectors] the file would exceed ${MAX_VECTOR_FILE_BYTES} bytes`);
    }
  }
  private num(bytes: number, set: (v: DataView) => void): void {
    const b = new Uint8Array(bytes);
    set(new DataView(b.buffer));
    this.bytes(b);
  }
  u8(v: number): void {
    this.num(1, (d) => d.setUint8(0, v));
  }
  u16(v: number): void {
    this.num(2, (d) => d.setUint16(0, v, true));
  }
  u32(v: number): void {
    this.num(4, (d) => d.setUint32(0, v, true));
  }
  u64(v: number): void {
    this.num(8, (d) => d.setBigUint64(0, BigInt(v), true));
  }
  f64(v: number): void {
    this.num(8, (d) => d.setFloat64(0, v, true));
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    if (b.byteLength > 0xffff) {
      throw new ShapeError("size", "[cuda vectors] a name longer than 65535 bytes");
    }
    this.u16(b.byteLength);
    this.bytes(b);
  }
  result(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}

const ELEMENT_BYTES: Record<VectorDType, number> = { f32: 4, i8: 1, i32: 4, raw: 1 };

/** Serializes cases; throws ShapeError when a count, a size or the whole file exceeds the harness's limits. */
export function encodeVectors(cases: readonly VectorCase[]): Uint8Array {
  if (cases.length > MAX_CASES) {
    throw new ShapeError("size", `[cuda vectors] ${cases.length} cases exceed ${MAX_CASES}`);
  }
  const w = new Writer();
  w.bytes(new TextEncoder().encode("BBCV"));
  w.u32(1);
  w.u32(cases.length);
  for (const c of cases) {
    const attrs = Object.entries(c.attrs);
    if (attrs.length > MAX_ATTRS || c.tensors.length > MAX_TENSORS) {
      throw new ShapeError("size", `[cuda vectors] case ${c.name} has too many attributes or tensors`);
    }
    w.str(c.name);
    w.str(c.kernel);
    w.u32(attrs.length);
    for (const [k, v] of attrs) {
      w.str(k);
      w.f64(v);
    }
    w.u32(c.tensors.length);
    for (const t of c.tensors) {
      const elements = t.dims.reduce((a, b) => a * b, 1);
      if (t.dims.length > 4 || (t.dtype !== "raw" && elements * ELEMENT_BYTES[t.dtype] !== t.data.byteLength)) {
        throw new ShapeError("size", `[cuda vectors] ${c.name}/${t.name}: dims [${t.dims.join(", ")}] do not match ${t.data.byteLength} bytes`);
      }
      w.str(t.name);
      w.u8(DTYPE_CODE[t.dtype]);
      w.u8(t.role === "in" ? 0 : 1);
      w.u8(t.dims.length);
      t.dims.forEach((d) => w.u32(d));
      w.u64(t.data.byteLength);
      w.bytes(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice());
    }
    w.f64(c.rtol);
    w.f64(c.atol);
  }
  return w.result();
}
