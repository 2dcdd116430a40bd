/**
 * BAREWire frames: encode and decode every message of schema/barewire.bare.
 *
 * Headers and manifests go through the codec generated from the schema (generated.ts); tensor payloads
 * are written and read here, so an encoder copies a payload once and a decoder returns a view of it.
 */
import * as bare from "@bare-ts/lib";
import { FormatError, type FormatErrorCode } from "../../core/errors.js";
import { err, ok, type Result } from "../../core/result.js";
import { bareErrorCode, plainBytes } from "./bare.js";
import { payloadBytes, scaleCount } from "./dtypes.js";
import * as gen from "./generated.js";
import {
  MAX_DIM_NAME_BYTES,
  MAX_DUMP_ENTRIES,
  MAX_DUMP_TOKENS,
  MAX_FRAME_BYTES,
  MAX_HEADER_BYTES,
  MAX_MANIFEST_BYTES,
  MAX_NAME_BYTES,
  MAX_RANK,
  MAX_SCALES,
  MAX_WIRE_ELEMENTS,
  PAYLOAD_ALIGNMENT,
} from "./limits.js";
import {
  KNOWN_FLAGS,
  MAGIC,
  MESSAGE_TAGS,
  PREAMBLE_BYTES,
  VERSION,
  WIRE_DTYPES,
  type DumpManifest,
  type WireMessage,
  type WireTensor,
  type WireTensorHeader,
} from "./message.js";

const UTF8 = new TextEncoder();

function fail<T>(code: FormatErrorCode, message: string): Result<T, FormatError> {
  return err(new FormatError(code, `[barewire] ${message}`));
}

// ---- uint varints (LEB128) of the fields that can be large, through @bare-ts/lib ----

/** Bytes of the canonical (shortest) LEB128 encoding of a uint (for the padding arithmetic). */
export function uintBytes(value: number): number {
  let n = 1;
  let v = value;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes a canonical uint into `out` (sized by the caller) at `at`; returns the offset after it. */
function writeUint(out: Uint8Array, at: number, value: number): number {
  const bc = new bare.ByteCursor(out, WRITE_CONFIG);
  bc.offset = at;
  bare.writeUintSafe(bc, value);
  return bc.offset;
}

/** Reads a canonical uint at `at`; returns the value and the offset after it. */
function readUint(bytes: Uint8Array, at: number, what: string): Result<{ value: number; next: number }, FormatError> {
  const bc = new bare.ByteCursor(bytes, DECODE_CONFIG);
  bc.offset = at;
  try {
    const value = bare.readUintSafe(bc);
    return ok({ value, next: bc.offset });
  } catch (e) {
    const code = bareErrorCode(e);
    if (code === undefined) {
      throw e;
    }
    return fail(code, `${what}: uint at byte ${at}: ${(e as Error).message}`);
  }
}

// ---- header validation (shared by encode and decode) ----

/** UTF-8 byte length, or a cheap upper bound (3 bytes per UTF-16 unit) when that already settles a limit check. */
function utf8Bytes(s: string): number {
  return s.length * 3 <= MAX_DIM_NAME_BYTES ? s.length : UTF8.encode(s).length;
}

/** The generated enum's values in schema order (index = wire value). */
const GEN_DTYPES: readonly gen.DType[] = Object.values(gen.DType);

/** Cursor configuration for decoding: the frame limit bounds any buffer the library would allocate. */
const DECODE_CONFIG = bare.Config({ maxBufferLength: MAX_FRAME_BYTES });

/** Cursor configuration for writing a uint into a frame buffer that is already sized (at most the frame limit). */
const WRITE_CONFIG = bare.Config({ initialBufferLength: 0, maxBufferLength: MAX_FRAME_BYTES });

/** Checks a header against the spec's rules and limits; returns the payload byte count it implies. */
export function checkHeader(h: WireTensorHeader): Result<number, FormatError> {
  if (!(WIRE_DTYPES as readonly string[]).includes(h.dtype)) {
    return fail("bad-tensor-type", `unknown dtype ${String(h.dtype)}`);
  }
  if (utf8Bytes(h.name) > MAX_NAME_BYTES) {
    return fail("limit", `tensor name longer than ${MAX_NAME_BYTES} bytes`);
  }
  if (h.dims.length > MAX_RANK) {
    return fail("limit", `${h.dims.length} dimensions exceed the limit of ${MAX_RANK}`);
  }
  const seen = new Set<string>();
  let count = 1;
  for (const [i, d] of h.dims.entries()) {
    if (d.name.length === 0) {
      return fail("bad-dims", `dimension ${i} has no name`);
    }
    if (utf8Bytes(d.name) > MAX_DIM_NAME_BYTES) {
      return fail("limit", `dimension ${i} has a name longer than ${MAX_DIM_NAME_BYTES} bytes`);
    }
    if (seen.has(d.name)) {
      return fail("bad-dims", `dimension name "${d.name}" is used twice`);
    }
    seen.add(d.name);
    if (!Number.isSafeInteger(d.size) || d.size < 1) {
      return fail("bad-dims", `dimension "${d.name}" has size ${d.size}, not a positive integer`);
    }
    count *= d.size;
    if (count > MAX_WIRE_ELEMENTS) {
      return fail("limit", `more than ${MAX_WIRE_ELEMENTS} elements`);
    }
  }
  if (h.scales.length > MAX_SCALES) {
    return fail("limit", `${h.scales.length} scales exceed the limit of ${MAX_SCALES}`);
  }
  const wantScales = scaleCount(h.dtype);
  if (h.scales.length !== wantScales) {
    return fail("bad-value", `dtype ${h.dtype} carries ${wantScales} scale(s), the header has ${h.scales.length}`);
  }
  for (const s of h.scales) {
    if (!Number.isFinite(s)) {
      return fail("bad-value", `scale ${s} is not finite`);
    }
  }
  if (!Number.isSafeInteger(h.flags) || h.flags < 0 || (h.flags & ~KNOWN_FLAGS) !== 0 || h.flags > KNOWN_FLAGS) {
    return fail("bad-value", `flags ${h.flags} set bits the spec does not define`);
  }
  const bytes = payloadBytes(
    h.dtype,
    h.dims.map((d) => d.size),
  );
  if (bytes === undefined) {
    return fail("bad-dims", `dtype ${h.dtype} cannot store shape [${h.dims.map((d) => d.size).join(", ")}]`);
  }
  return ok(bytes);
}

function toGenHeader(h: WireTensorHeader): gen.TensorHeader {
  const dtype = GEN_DTYPES[WIRE_DTYPES.indexOf(h.dtype)];
  return {
    name: h.name,
    dtype: dtype as gen.DType,
    dims: h.dims.map((d) => ({ name: d.name, size: d.size })),
    scales: Float32Array.from(h.scales),
    flags: h.flags,
  };
}

function fromGenHeader(h: gen.TensorHeader): WireTensorHeader {
  const index = GEN_DTYPES.indexOf(h.dtype);
  return {
    name: h.name,
    dtype: WIRE_DTYPES[index] ?? "f32",
    dims: h.dims.map((d) => ({ name: d.name, size: d.size })),
    scales: Array.from(h.scales),
    flags: h.flags,
  };
}

// ---- encoding ----

/** A cursor for the small, generated-codec parts of a frame (preamble, tag, header fields). */
function headCursor(limit: number): bare.ByteCursor {
  return new bare.ByteCursor(new Uint8Array(256), bare.Config({ initialBufferLength: 256, maxBufferLength: limit }));
}

function writePreamble(bc: bare.ByteCursor, tag: number): void {
  bare.writeFixedData(bc, MAGIC.slice().buffer);
  bare.writeU16(bc, VERSION);
  bare.writeU8(bc, tag);
}

/** Padding that puts the payload of `payloadLen` bytes on a 64-byte boundary after a head of `headLen` bytes. */
function padFor(headLen: number, payloadLen: number): number {
  const before = headLen + 1 + uintBytes(payloadLen);
  return (PAYLOAD_ALIGNMENT - (before % PAYLOAD_ALIGNMENT)) % PAYLOAD_ALIGNMENT;
}

/** Lays out head + pad + payload length + payload into one buffer; the payload is copied once. */
function assemble(head: Uint8Array, payload: Uint8Array): Uint8Array {
  const pad = padFor(head.length, payload.length);
  const start = head.length + 1 + pad + uintBytes(payload.length);
  const total = start + payload.length;
  if (total > MAX_FRAME_BYTES) {
    throw new FormatError("limit", `[barewire] a ${total}-byte frame exceeds the limit of ${MAX_FRAME_BYTES}; send it chunked`);
  }
  const out = new Uint8Array(total);
  out.set(head, 0);
  let at = writeUint(out, head.length, pad);
  at += pad;
  at = writeUint(out, at, payload.length);
  out.set(payload, at);
  return out;
}

/** The frame bytes before the pad field, and the pad/payload-length bytes: the part a writer sends before a payload. */
export interface FrameParts {
  /** Everything up to the payload's first byte. */
  readonly head: Uint8Array;
  /** The payload, not copied. `head` followed by `payload` is the frame. */
  readonly payload: Uint8Array;
}

function headParts(prefix: Uint8Array, payload: Uint8Array): FrameParts {
  const pad = padFor(prefix.length, payload.length);
  const head = new Uint8Array(prefix.length + 1 + pad + uintBytes(payload.length));
  head.set(prefix, 0);
  writeUint(head, writeUint(head, prefix.length, pad) + pad, payload.length);
  if (head.length + payload.length > MAX_FRAME_BYTES) {
    throw new FormatError("limit", `[barewire] frame exceeds the limit of ${MAX_FRAME_BYTES} bytes; send it chunked`);
  }
  return { head, payload };
}

function tensorPrefix(t: WireTensor): Uint8Array {
  const expected = checkHeader(t);
  if (!expected.ok) {
    throw expected.error;
  }
  if (t.payload.length !== expected.value) {
    throw new FormatError(
      "bad-dims",
      `[barewire] ${t.dtype} [${t.dims.map((d) => d.size).join(", ")}] needs ${expected.value} payload bytes, got ${t.payload.length}`,
    );
  }
  const bc = headCursor(MAX_HEADER_BYTES);
  writePreamble(bc, MESSAGE_TAGS.TensorFrame);
  gen.writeTensorHeader(bc, toGenHeader(t));
  return bc.bytes.slice(0, bc.offset);
}

/**
 * Encodes a whole tensor as one `TensorFrame`. The payload is copied once, into the returned frame.
 * Throws FormatError when the header breaks a rule or limit or the payload length is not the one
 * the dtype and shape imply (an encoder bug, not hostile input).
 */
export function encodeTensorFrame(t: WireTensor): Uint8Array {
  return assemble(tensorPrefix(t), t.payload);
}

/** Encodes a `TensorFrame` as two parts for a gathering write (`fs.writev`): the payload is not copied at all. */
export function encodeTensorFrameParts(t: WireTensor): FrameParts {
  return headParts(tensorPrefix(t), t.payload);
}

/** Options of {@link encodeTensorChunks}. */
export interface ChunkOptions {
  /** Identifies the tensor among interleaved streams. Default 0. */
  readonly stream?: number;
  /** Payload bytes per chunk (the last may be shorter). Default 64 MiB. */
  readonly chunkBytes?: number;
}

/** Default chunk payload size: 64 MiB. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;

/**
 * Encodes a tensor as a `TensorBegin` frame followed by `TensorChunk` frames, for tensors larger than
 * one frame may be. Each chunk copies its slice of the payload once.
 */
export function encodeTensorChunks(t: WireTensor, options: ChunkOptions = {}): Uint8Array[] {
  const stream = options.stream ?? 0;
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || !Number.isSafeInteger(stream) || stream < 0) {
    throw new FormatError("bad-value", `[barewire] chunkBytes ${chunkBytes} or stream ${stream} is not valid`);
  }
  const expected = checkHeader(t);
  if (!expected.ok) {
    throw expected.error;
  }
  if (t.payload.length !== expected.value) {
    throw new FormatError("bad-dims", `[barewire] payload is ${t.payload.length} bytes, the header implies ${expected.value}`);
  }
  const bc = headCursor(MAX_HEADER_BYTES);
  writePreamble(bc, MESSAGE_TAGS.TensorBegin);
  gen.writeTensorBegin(bc, { stream, header: toGenHeader(t), totalBytes: t.payload.length, chunkBytes });
  const frames: Uint8Array[] = [bc.bytes.slice(0, bc.offset)];
  const chunks = Math.ceil(t.payload.length / chunkBytes);
  for (let index = 0; index < chunks; index++) {
    const c = headCursor(MAX_HEADER_BYTES);
    writePreamble(c, MESSAGE_TAGS.TensorChunk);
    bare.writeUintSafe(c, stream);
    bare.writeUintSafe(c, index);
    const slice = t.payload.subarray(index * chunkBytes, Math.min(t.payload.length, (index + 1) * chunkBytes));
    frames.push(assemble(c.bytes.slice(0, c.offset), slice));
  }
  return frames;
}

function checkManifest(m: DumpManifest): Result<void, FormatError> {
  if (utf8Bytes(m.model) > MAX_NAME_BYTES || utf8Bytes(m.backend) > MAX_NAME_BYTES) {
    return fail("limit", `model or backend name longer than ${MAX_NAME_BYTES} bytes`);
  }
  if (m.tokens.length > MAX_DUMP_TOKENS) {
    return fail("limit", `${m.tokens.length} tokens exceed the limit of ${MAX_DUMP_TOKENS}`);
  }
  if (m.entries.length > MAX_DUMP_ENTRIES) {
    return fail("limit", `${m.entries.length} entries exceed the limit of ${MAX_DUMP_ENTRIES}`);
  }
  for (const t of m.tokens) {
    if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) {
      return fail("bad-value", `token ${t} is not a u32`);
    }
  }
  for (const e of m.entries) {
    if (e.length === 0 || utf8Bytes(e) > MAX_NAME_BYTES) {
      return fail("limit", `entry name is empty or longer than ${MAX_NAME_BYTES} bytes`);
    }
  }
  return ok(undefined);
}

/** Encodes a dump manifest frame. Throws FormatError when it breaks a limit. */
export function encodeManifest(m: DumpManifest): Uint8Array {
  const checked = checkManifest(m);
  if (!checked.ok) {
    throw checked.error;
  }
  const bc = headCursor(MAX_MANIFEST_BYTES);
  writePreamble(bc, MESSAGE_TAGS.DumpManifest);
  gen.writeDumpManifest(bc, {
    model: m.model,
    backend: m.backend,
    tokens: Uint32Array.from(m.tokens),
    entries: [...m.entries],
  });
  return bc.bytes.slice(0, bc.offset);
}

// ---- decoding ----

/** Runs a generated reader over a window of at most `limit` bytes; maps its errors to FormatError. */
function readWindow<T>(
  bytes: Uint8Array,
  start: number,
  limit: number,
  what: string,
  read: (bc: bare.ByteCursor) => T,
): Result<{ value: T; next: number }, FormatError> {
  const window = bytes.subarray(0, Math.min(bytes.length, limit));
  const bc = new bare.ByteCursor(window, DECODE_CONFIG);
  bc.offset = start;
  try {
    const value = read(bc);
    return ok({ value, next: bc.offset });
  } catch (e) {
    const code = bareErrorCode(e);
    if (code === undefined) {
      throw e;
    }
    if (code === "truncated" && window.length < bytes.length) {
      return fail("limit", `${what} is longer than its limit of ${limit} bytes`);
    }
    return fail(code, `${what}: ${e instanceof bare.BareError ? e.message : "a declared length is too large"}`);
  }
}

/** Reads pad and payload after a header ending at `at`; the payload must end the frame. */
function readPayload(bytes: Uint8Array, at: number, what: string): Result<Uint8Array, FormatError> {
  const padLen = readUint(bytes, at, `${what} pad`);
  if (!padLen.ok) {
    return padLen;
  }
  const pad = padLen.value.value;
  if (pad >= PAYLOAD_ALIGNMENT) {
    return fail("non-canonical", `${what}: ${pad} pad bytes, at most ${PAYLOAD_ALIGNMENT - 1} are allowed`);
  }
  const padEnd = padLen.value.next + pad;
  if (padEnd > bytes.length) {
    return fail("truncated", `${what}: the pad runs past the end of the frame`);
  }
  for (let i = padLen.value.next; i < padEnd; i++) {
    if (bytes[i] !== 0) {
      return fail("non-canonical", `${what}: pad byte ${i} is not zero`);
    }
  }
  const len = readUint(bytes, padEnd, `${what} payload length`);
  if (!len.ok) {
    return len;
  }
  const start = len.value.next;
  if (start % PAYLOAD_ALIGNMENT !== 0) {
    return fail("non-canonical", `${what}: the payload starts at byte ${start}, not on a ${PAYLOAD_ALIGNMENT}-byte boundary`);
  }
  const end = start + len.value.value;
  if (end > bytes.length) {
    return fail("truncated", `${what}: a ${len.value.value}-byte payload runs past the end of the frame`);
  }
  if (end < bytes.length) {
    return fail("trailing", `${what}: ${bytes.length - end} bytes after the payload`);
  }
  return ok(bytes.subarray(start, end));
}

function checkPreamble(bytes: Uint8Array): Result<number, FormatError> {
  if (bytes.length > MAX_FRAME_BYTES) {
    return fail("limit", `a ${bytes.length}-byte frame exceeds the limit of ${MAX_FRAME_BYTES}`);
  }
  if (bytes.length < PREAMBLE_BYTES + 1) {
    return fail("truncated", `${bytes.length} bytes are too few for a frame`);
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) {
      return fail("bad-magic", "the frame does not start with BWIR");
    }
  }
  const version = (bytes[4] ?? 0) | ((bytes[5] ?? 0) << 8);
  if (version !== VERSION) {
    return fail("bad-version", `version ${version}; this reader knows version ${VERSION}`);
  }
  const tag = bytes[PREAMBLE_BYTES] ?? 0;
  // The tags are below 128, so their canonical uint encoding is one byte; a byte ≥ 128 is another tag.
  if (!(Object.values(MESSAGE_TAGS) as number[]).includes(tag)) {
    return fail("bad-tag", `unknown message tag ${tag}`);
  }
  return ok(tag);
}

/**
 * Decodes one frame (the bytes must hold exactly one). Payloads are views into `bytes`, never copies.
 * Every failure is a FormatError: bad magic or version, unknown tags, truncation, trailing bytes,
 * non-canonical integers or padding, and anything over a limit of limits.ts.
 */
export function decodeMessage(input: Uint8Array): Result<WireMessage, FormatError> {
  // A plain view of the same memory: @bare-ts/lib copies fields with `slice()`, which on a Node Buffer
  // is a view of its whole pool (the generated f32/u32 list readers would then read the wrong bytes).
  const bytes = plainBytes(input);
  const tag = checkPreamble(bytes);
  if (!tag.ok) {
    return tag;
  }
  const body = PREAMBLE_BYTES + 1;
  switch (tag.value) {
    case MESSAGE_TAGS.TensorFrame: {
      const head = readWindow(bytes, body, MAX_HEADER_BYTES, "tensor header", gen.readTensorHeader);
      if (!head.ok) {
        return head;
      }
      const header = fromGenHeader(head.value.value);
      const expected = checkHeader(header);
      if (!expected.ok) {
        return expected;
      }
      const payload = readPayload(bytes, head.value.next, `tensor "${header.name}"`);
      if (!payload.ok) {
        return payload;
      }
      if (payload.value.length !== expected.value) {
        return fail("bad-dims", `tensor "${header.name}": ${payload.value.length} payload bytes, the header implies ${expected.value}`);
      }
      return ok({ kind: "tensor", tensor: { ...header, payload: payload.value } });
    }
    case MESSAGE_TAGS.TensorBegin: {
      const head = readWindow(bytes, body, MAX_HEADER_BYTES, "tensor begin", gen.readTensorBegin);
      if (!head.ok) {
        return head;
      }
      if (head.value.next !== bytes.length) {
        return fail("trailing", `tensor begin: ${bytes.length - head.value.next} bytes after the message`);
      }
      const v = head.value.value;
      const header = fromGenHeader(v.header);
      const expected = checkHeader(header);
      if (!expected.ok) {
        return expected;
      }
      if (v.totalBytes !== expected.value) {
        return fail("bad-dims", `tensor begin: totalBytes ${v.totalBytes}, the header implies ${expected.value}`);
      }
      if (v.chunkBytes < 1) {
        return fail("bad-value", "tensor begin: chunkBytes is 0");
      }
      return ok({ kind: "tensor-begin", stream: v.stream, header, totalBytes: v.totalBytes, chunkBytes: v.chunkBytes });
    }
    case MESSAGE_TAGS.TensorChunk: {
      const head = readWindow(bytes, body, MAX_HEADER_BYTES, "tensor chunk", (bc) => ({
        stream: bare.readUintSafe(bc),
        index: bare.readUintSafe(bc),
      }));
      if (!head.ok) {
        return head;
      }
      const payload = readPayload(bytes, head.value.next, "tensor chunk");
      if (!payload.ok) {
        return payload;
      }
      return ok({ kind: "tensor-chunk", ...head.value.value, payload: payload.value });
    }
    default: {
      if (bytes.length > MAX_MANIFEST_BYTES) {
        return fail("limit", `a ${bytes.length}-byte manifest exceeds the limit of ${MAX_MANIFEST_BYTES}`);
      }
      const read = readWindow(bytes, body, MAX_MANIFEST_BYTES, "dump manifest", gen.readDumpManifest);
      if (!read.ok) {
        return read;
      }
      if (read.value.next !== bytes.length) {
        return fail("trailing", `dump manifest: ${bytes.length - read.value.next} bytes after the message`);
      }
      const v = read.value.value;
      const manifest: DumpManifest = {
        model: v.model,
        backend: v.backend,
        tokens: Array.from(v.tokens),
        entries: [...v.entries],
      };
      const checked = checkManifest(manifest);
      return checked.ok ? ok({ kind: "dump-manifest", manifest }) : checked;
    }
  }
}
