/**
 * BARE primitives for actor frames (draft-devault-bare, the encoding BAREWire uses): canonical LEB128
 * `uint`, zigzag `int`, little-endian floats, length-prefixed `data` and `str`. Readers are bounded: a
 * truncated, non-canonical or oversized value throws an ActorError `protocol`, which every decoder catches
 * and returns as a Result.
 */
import { ActorError } from "./errors.js";
import { MAX_ACTOR_FRAME_BYTES, MAX_FIELD_STRING_BYTES } from "./limits.js";

const UTF8_ENCODER = new TextEncoder();
const UTF8_DECODER = new TextDecoder("utf-8", { fatal: true });

export function protocolError(message: string): ActorError {
  return new ActorError("protocol", `[actor-frame] ${message}`);
}

export class ByteWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private at = 0;

  private reserve(n: number): void {
    const need = this.at + n;
    if (need > MAX_ACTOR_FRAME_BYTES) {
      throw protocolError(`frame over ${MAX_ACTOR_FRAME_BYTES} bytes`);
    }
    if (need > this.buf.length) {
      const next = new Uint8Array(Math.min(MAX_ACTOR_FRAME_BYTES, Math.max(need, this.buf.length * 2)));
      next.set(this.buf.subarray(0, this.at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
  }

  uint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw protocolError(`uint field holds ${value}`);
    }
    this.reserve(8);
    let v = value;
    while (v >= 128) {
      this.buf[this.at++] = 0x80 | (v % 128);
      v = Math.floor(v / 128);
    }
    this.buf[this.at++] = v;
  }

  int(value: number): void {
    if (!Number.isSafeInteger(value)) {
      throw protocolError(`int field holds ${value}`);
    }
    this.uint(value < 0 ? -2 * value - 1 : 2 * value);
  }

  f64(value: number): void {
    if (typeof value !== "number") {
      throw protocolError(`f64 field holds a ${typeof value}`);
    }
    this.reserve(8);
    this.view.setFloat64(this.at, value, true);
    this.at += 8;
  }

  u8(value: number): void {
    this.reserve(1);
    this.buf[this.at++] = value;
  }

  bytes(data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) {
      throw protocolError("data field does not hold a Uint8Array");
    }
    this.uint(data.length);
    this.reserve(data.length);
    this.buf.set(data, this.at);
    this.at += data.length;
  }

  str(value: string): void {
    if (typeof value !== "string") {
      throw protocolError(`str field holds a ${typeof value}`);
    }
    const encoded = UTF8_ENCODER.encode(value);
    if (encoded.length > MAX_FIELD_STRING_BYTES) {
      throw protocolError(`string of ${encoded.length} bytes over ${MAX_FIELD_STRING_BYTES}`);
    }
    this.bytes(encoded);
  }

  /** The bytes written, in a buffer of their own (so it can be transferred). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.at);
  }
}

export class ByteReader {
  private at = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.at;
  }

  uint(): number {
    let value = 0;
    let mul = 1;
    const start = this.at;
    for (;;) {
      if (this.at >= this.bytes.length) {
        throw protocolError(`truncated uint at byte ${start}`);
      }
      const b = this.bytes[this.at++] ?? 0;
      value += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (b === 0 && this.at - start > 1) {
          throw protocolError(`non-canonical uint at byte ${start}`);
        }
        break;
      }
      mul *= 128;
      if (mul > 2 ** 56) {
        throw protocolError(`uint at byte ${start} is too long`);
      }
    }
    if (!Number.isSafeInteger(value)) {
      throw protocolError(`uint at byte ${start} over 2^53 - 1`);
    }
    return value;
  }

  int(): number {
    const z = this.uint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  f64(): number {
    this.need(8);
    const value = this.view.getFloat64(this.at, true);
    this.at += 8;
    return value;
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.at++] ?? 0;
  }

  /** A length-prefixed byte string, as a view of the input (no copy). */
  bytesView(limit = MAX_ACTOR_FRAME_BYTES): Uint8Array {
    const length = this.uint();
    if (length > limit) {
      throw protocolError(`data of ${length} bytes over ${limit}`);
    }
    this.need(length);
    const view = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return view;
  }

  str(): string {
    const view = this.bytesView(MAX_FIELD_STRING_BYTES);
    try {
      return UTF8_DECODER.decode(view);
    } catch {
      throw protocolError("string is not valid UTF-8");
    }
  }

  private need(n: number): void {
    if (this.at + n > this.bytes.length) {
      throw protocolError(`truncated: ${n} bytes needed at byte ${this.at}, ${this.remaining} left`);
    }
  }

  /** Fails unless every byte was read. */
  end(): void {
    if (this.at !== this.bytes.length) {
      throw protocolError(`${this.remaining} trailing bytes`);
    }
  }
}
