/**
 * Byte-level mutations of safetensors files shared by the safetensors and Hugging Face folder fuzz suites: bit
 * flips, JSON-significant bytes, a rewritten header length, a rewritten decimal number in the header (offsets and
 * dims are where the validation lives), truncation and insertion.
 */
import fc from "fast-check";

/** A file from a raw header string, a buffer length and an optional false length claim. */
export function raw(header: string | Uint8Array, bufferBytes: number, claim?: bigint): Uint8Array {
  const json = typeof header === "string" ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + json.length + bufferBytes);
  new DataView(out.buffer).setBigUint64(0, claim ?? BigInt(json.length), true);
  out.set(json, 8);
  return out.fill(0x3c, 8 + json.length);
}

export const INTERESTING_U64 = [0n, 1n, 7n, 0xffn, 1n << 31n, 1n << 32n, 100_000_001n, (1n << 53n) + 1n, (1n << 64n) - 1n];
const INTERESTING_BYTES = [0x00, 0x20, 0x22, 0x2c, 0x30, 0x39, 0x5b, 0x5d, 0x7b, 0x7d, 0x80, 0xc0, 0xff];

const NUMBER_TEXTS = ["0", "1", "2", "4", "9007199254740993", "-1", "1e3", "1".repeat(21)];

export type Mutation = (b: Uint8Array) => Uint8Array;

export const byteMutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }).map(({ at, bit }) => (b: Uint8Array) => {
    const out = b.slice();
    const i = at % Math.max(1, out.length);
    out[i] = (out[i] ?? 0) ^ (1 << bit);
    return out;
  }),
  fc.record({ at: fc.nat(), v: fc.constantFrom(...INTERESTING_BYTES) }).map(({ at, v }) => (b: Uint8Array) => {
    const out = b.slice();
    out[at % Math.max(1, out.length)] = v;
    return out;
  }),
  fc.constantFrom(...INTERESTING_U64).map((v) => (b: Uint8Array) => {
    const out = b.slice();
    if (out.length >= 8) {
      new DataView(out.buffer).setBigUint64(0, v, true);
    }
    return out;
  }),
  // Rewrite one decimal number in the header: offsets and dims are where the validation lives.
  fc.record({ which: fc.nat(), v: fc.constantFrom(...NUMBER_TEXTS) })
    .map(({ which, v }) => (b: Uint8Array) => {
      const text = new TextDecoder("latin1").decode(b); // one character per byte, so indices are byte offsets
      const numbers = [...text.matchAll(/[0-9]+/g)].filter((m) => (m.index ?? 0) > 8);
      const m = numbers[which % Math.max(1, numbers.length)];
      if (m === undefined) {
        return b;
      }
      const start = m.index ?? 0;
      const out = new Uint8Array(b.length - m[0].length + v.length);
      out.set(b.subarray(0, start));
      out.set(new TextEncoder().encode(v), start);
      out.set(b.subarray(start + m[0].length), start + v.length);
      return out;
    }),
  fc.nat().map((at) => (b: Uint8Array) => b.slice(0, at % (b.length + 1))),
  fc.record({ at: fc.nat(), ins: fc.uint8Array({ minLength: 1, maxLength: 16 }) })
    .map(({ at, ins }) => (b: Uint8Array) => {
    const i = at % (b.length + 1);
    const out = new Uint8Array(b.length + ins.length);
    out.set(b.subarray(0, i));
    out.set(ins, i);
    out.set(b.subarray(i), i + ins.length);
    return out;
  }),
);

