/**
 * A minimal protocol-buffers **writer** for the few ONNX messages barbell emits (proto.ts).
 *
 * Why not a library: the export only encodes (never decodes) about ten message types, and the encoded graph is
 * small because every weight goes to an external data file (export.ts). protobufjs with the official onnx.proto
 * would add a runtime dependency and a schema file to load for ~100 lines of varint and length-prefix code; the
 * tests decode what this writes with protobufjs's generated ONNX code (shipped inside onnxruntime-web) and load it
 * in onnxruntime, which is the real check. Only the wire types ONNX needs: varint (0), 32-bit (5),
 * length-delimited (2); packed repeated int64.
 */

/** Bytes of one message under construction; fields are appended in the order they are written. */
export class ProtoWriter {
  #buf = new Uint8Array(256);
  #len = 0;

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) {
      return;
    }
    let size = this.#buf.length * 2;
    while (size < this.#len + n) {
      size *= 2;
    }
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  #byte(b: number): void {
    this.#reserve(1);
    this.#buf[this.#len++] = b;
  }

  /** An unsigned or two's-complement varint (int32/int64/enum/bool); safe integers only. */
  #varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.#byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.#byte(Number(v));
  }

  #tag(field: number, wire: 0 | 2 | 5): void {
    this.#varint((field << 3) | wire);
  }

  /** int32, int64 or enum field (varint). */
  int(field: number, value: number | bigint): this {
    if (typeof value === "number" && !Number.isSafeInteger(value)) {
      throw new RangeError(`[protobuf] field ${field}: ${value} is not a safe integer`);
    }
    this.#tag(field, 0);
    this.#varint(value);
    return this;
  }

  /** float field (32-bit, little-endian). */
  float(field: number, value: number): this {
    this.#tag(field, 5);
    this.#reserve(4);
    new DataView(this.#buf.buffer).setFloat32(this.#len, value, true);
    this.#len += 4;
    return this;
  }

  /** bytes field, or an embedded message's encoding. */
  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, 2);
    this.#varint(value.length);
    this.#reserve(value.length);
    this.#buf.set(value, this.#len);
    this.#len += value.length;
    return this;
  }

  /** string field (UTF-8). */
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** An embedded message. */
  message(field: number, value: ProtoWriter): this {
    return this.bytes(field, value.finish());
  }

  /** packed repeated int64 (proto3 default for repeated scalars; proto2 readers accept it too). */
  packedInts(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) {
      inner.#varint(v);
    }
    return this.bytes(field, inner.finish());
  }

  /** The message's bytes (a copy of the written part). */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}
