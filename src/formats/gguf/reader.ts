/**
 * GGUF reader (versions 2 and 3, little-endian). `readGguf` parses only the header from a ByteSource, growing
 * its window as needed, and serves tensor bytes on demand. All hostile input ends in FormatError.
 */
import { BoundedBytes, type Read, WindowExceeded } from "../../core/bytes.js";
import { numberItems, stringItems } from "./array-items.js";
import { FormatError } from "../../core/errors.js";
import {
  GGML_I2_S,
  GGML_IQ4_NL_4_4,
  GGML_TYPE_I2_S,
  ggmlTensorBytes,
  isBitnetArchitecture,
  resolveGgmlType,
  type GgmlTypeInfo,
} from "./ggml-types.js";
import * as L from "./limits.js";
import { GgufMetadata, ggufAlignment } from "./metadata.js";
import { MemorySource, readExact, readTensorRange, type ByteSource } from "./source.js";
import {
  GGUF_VALUE_TYPE,
  type GgufArrayValue,
  type GgufHeader,
  type GgufTensorInfo,
  type GgufValue,
  type GgufValueTypeName,
} from "./types.js";

/** "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;

const TYPE_NAMES = new Map<number, GgufValueTypeName>(
  Object.entries(GGUF_VALUE_TYPE).map(([name, id]) => [id, name as GgufValueTypeName]),
);

/** Smallest wire size of one value of each type (an array is its item type + count). */
const MIN_VALUE_BYTES: Record<GgufValueTypeName, number> = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, string: 8, array: 12, u64: 8, i64: 8, f64: 8,
};

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function readString(b: BoundedBytes, off: number, max: number, what: string): Read<string> {
  const len = b.u64(off, `${what} length`).value;
  if (len > BigInt(max)) {
    throw new FormatError("limit", `[gguf] ${what} at byte ${off} claims ${len} bytes; the limit is ${max}`);
  }
  const raw = b.slice(off + 8, Number(len), what);
  try {
    return { value: utf8.decode(raw), length: 8 + raw.length };
  } catch {
    throw new FormatError("bad-utf8", `[gguf] ${what} at byte ${off} is not valid UTF-8`);
  }
}

function valueType(b: BoundedBytes, off: number, what: string): GgufValueTypeName {
  const id = b.u32(off, what).value;
  const name = TYPE_NAMES.get(id);
  if (name === undefined) {
    throw new FormatError("bad-value-type", `[gguf] ${what} at byte ${off} is ${id}, not a GGUF value type`);
  }
  return name;
}

function readScalar(
  b: BoundedBytes,
  off: number,
  type: Exclude<GgufValueTypeName, "array">,
  key: string,
): Read<GgufValue> {
  switch (type) {
    case "u8":
    case "i8":
    case "u16":
    case "i16":
    case "u32":
    case "i32":
    case "f32":
    case "f64": {
      const r = b[type](off, key);
      return { value: { type, value: r.value }, length: r.length };
    }
    case "u64":
    case "i64": {
      const r = b[type](off, key);
      return { value: { type, value: r.value }, length: 8 };
    }
    case "bool": {
      const r = b.u8(off, key);
      if (r.value > 1) {
        throw new FormatError("bad-value", `[gguf] bool "${key}" at byte ${off} is ${r.value}, not 0 or 1`);
      }
      return { value: { type, value: r.value === 1 }, length: 1 };
    }
    case "string": {
      const r = readString(b, off, L.MAX_STRING_BYTES, `string "${key}"`);
      return { value: { type, value: r.value }, length: r.length };
    }
  }
}

function readArray(b: BoundedBytes, off: number, depth: number, key: string, owned: boolean): Read<GgufArrayValue> {
  if (depth > L.MAX_ARRAY_DEPTH) {
    throw new FormatError("limit", `[gguf] array "${key}" nests deeper than ${L.MAX_ARRAY_DEPTH}`);
  }
  const itemType = valueType(b, off, `array item type of "${key}"`);
  const count = b.u64(off + 4, `array count of "${key}"`).value;
  if (count > BigInt(L.MAX_ARRAY_LENGTH)) {
    throw new FormatError("limit", `[gguf] array "${key}" claims ${count} items; the limit is ${L.MAX_ARRAY_LENGTH}`);
  }
  const n = Number(count);
  let pos = off + 12;
  // Reject before allocating: every item needs at least MIN_VALUE_BYTES in the rest of the file.
  if (n * MIN_VALUE_BYTES[itemType] > b.remaining(pos)) {
    throw new FormatError(
      "implausible",
      `[gguf] array "${key}" claims ${n} ${itemType} items; the file has ${b.remaining(pos)} bytes left`,
    );
  }
  const fast = itemType === "string" ? stringItems(b, pos, n, key, L.MAX_STRING_BYTES, owned) : numberItems(b, pos, n, itemType, key);
  if (fast !== undefined) {
    return { value: fast.value, length: fast.end - off };
  }
  const items: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const r = itemType === "array" ? readArray(b, pos, depth + 1, key, owned) : readScalar(b, pos, itemType, key);
    items.push(r.value.type === "array" ? r.value : r.value.value);
    pos += r.length;
  }
  // items holds exactly the JS type that itemType implies, which the union cannot express per element.
  return { value: { type: "array", itemType, items } as GgufArrayValue, length: pos - off };
}

function readValue(b: BoundedBytes, off: number, type: GgufValueTypeName, key: string, owned: boolean): Read<GgufValue> {
  return type === "array" ? readArray(b, off, 1, key, owned) : readScalar(b, off, type, key);
}

function readCount(b: BoundedBytes, off: number, what: string, max: number, minEach: number): number {
  const v = b.u64(off, what).value;
  if (v > BigInt(max)) {
    throw new FormatError("limit", `[gguf] ${what} is ${v}; the limit is ${max}`);
  }
  const n = Number(v);
  if (n * minEach > b.remaining(off + 8)) {
    throw new FormatError("implausible", `[gguf] ${what} ${n} cannot fit in the ${b.totalSize}-byte file`);
  }
  return n;
}

function readTensorInfo(
  b: BoundedBytes,
  off: number,
  alignment: number,
  arch: string | undefined,
): Read<GgufTensorInfo> {
  const nameRead = readString(b, off, L.MAX_TENSOR_NAME_BYTES, "tensor name");
  const name = nameRead.value;
  let pos = off + nameRead.length;
  const nDims = b.u32(pos, `n_dims of "${name}"`).value;
  pos += 4;
  if (nDims === 0 || nDims > L.MAX_DIMS) {
    throw new FormatError("bad-dims", `[gguf] tensor "${name}" has ${nDims} dims; 1 to ${L.MAX_DIMS} allowed`);
  }
  const dims: number[] = [];
  for (let i = 0; i < nDims; i++) {
    const d = b.u64Safe(pos, `dim ${i} of "${name}"`).value;
    // Zero-size tensors are rejected: no model uses them and they make offsets ambiguous.
    if (d === 0) {
      throw new FormatError("bad-dims", `[gguf] tensor "${name}" has a zero dim`);
    }
    dims.push(d);
    pos += 8;
  }
  const typeId = b.u32(pos, `type of "${name}"`).value;
  pos += 4;
  const resolved = resolveGgmlType(typeId, { architecture: arch });
  if (resolved === undefined) {
    throw new FormatError(
      "bad-tensor-type",
      `[gguf] tensor "${name}" has type id ${typeId}, which no known ggml writes`,
    );
  }
  const offset = b.u64Safe(pos, `offset of "${name}"`).value;
  pos += 8;
  if (offset % alignment !== 0) {
    throw new FormatError(
      "bad-alignment",
      `[gguf] tensor "${name}" offset ${offset} is not a multiple of ${alignment}`,
    );
  }
  const byteSize = ggmlTensorBytes(resolved.info, dims);
  const elementCount = dims.reduce((a, d) => a * d, 1); // ≤ 2^53: ggmlTensorBytes checked it
  const base = { name, dims, typeId, typeName: resolved.info.name, elementCount, offset, byteSize };
  const info: GgufTensorInfo =
    resolved.interpretation === undefined ? base : { ...base, typeInterpretation: resolved.interpretation };
  return { value: info, length: pos - off };
}

/** The bytes a tensor may use: up to the next tensor's offset, or to the end of the data section. */
function extents(tensors: readonly GgufTensorInfo[], dataSize: number): Map<GgufTensorInfo, number> {
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  return new Map(sorted.map((t, i) => [t, (sorted[i + 1]?.offset ?? dataSize) - t.offset]));
}

/**
 * Id 36 is I2_S in bitnet.cpp files and IQ4_NL_4_4 in mainline files of late 2024. The id alone cannot
 * tell, so each id-36 tensor is read as whichever layout its bytes fit (the space up to the next tensor,
 * or to the end of the data section, must hold it with less than one alignment to spare), and the
 * architecture breaks a tie. A tensor that fits neither is `implausible`, with both sizes in the message.
 */
function resolveId36(tensors: GgufTensorInfo[], dataSize: number, alignment: number, arch: string | undefined): void {
  const room = extents(tensors, dataSize);
  // Writers pad each tensor to the alignment, so a tensor's bytes leave less than one alignment unused.
  const fits = (t: GgufTensorInfo, bytes: number | undefined): boolean => {
    const extent = room.get(t) ?? 0;
    return bytes !== undefined && bytes <= extent && extent - bytes < alignment;
  };
  const bitnet = isBitnetArchitecture(arch);
  for (const [i, t] of tensors.entries()) {
    if (t.typeId !== GGML_TYPE_I2_S) {
      continue;
    }
    const sizeOf = (info: GgmlTypeInfo): number | undefined => {
      try {
        return ggmlTensorBytes(info, t.dims);
      } catch {
        return undefined;
      }
    };
    const i2s = sizeOf(GGML_I2_S);
    const iq4 = sizeOf(GGML_IQ4_NL_4_4);
    const fitsI2s = fits(t, i2s);
    const fitsIq4 = fits(t, iq4);
    const archText = arch === undefined ? "no architecture" : `architecture "${arch}"`;
    if (fitsI2s && (bitnet || !fitsIq4)) {
      const why = bitnet ? archText : `its ${i2s} bytes fit only I2_S (${archText})`;
      tensors[i] = { ...t, typeName: "i2_s", byteSize: i2s ?? t.byteSize, typeInterpretation: `id 36 read as bitnet.cpp I2_S: ${why}` };
    } else if (fitsIq4) {
      tensors[i] = {
        ...t,
        typeName: GGML_IQ4_NL_4_4.name,
        byteSize: iq4 ?? t.byteSize,
        typeInterpretation: `id 36 read as mainline IQ4_NL_4_4: its ${iq4} bytes fit that layout, not I2_S (${i2s ?? "n/a"} bytes)`,
      };
    } else {
      throw new FormatError(
        "implausible",
        `[gguf] tensor "${t.name}" has type id 36, but its ${room.get(t) ?? 0} bytes fit neither I2_S ` +
          `(${i2s ?? "n/a"} bytes) nor IQ4_NL_4_4 (${iq4 ?? "n/a"} bytes)`,
      );
    }
  }
}

function checkExtents(tensors: readonly GgufTensorInfo[], dataSize: number): void {
  let total = 0;
  for (const t of tensors) {
    total += t.byteSize;
  }
  if (total > dataSize) {
    throw new FormatError("implausible", `[gguf] tensors need ${total} bytes; the data section holds ${dataSize}`);
  }
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  let prev: GgufTensorInfo | undefined;
  for (const t of sorted) {
    if (t.offset + t.byteSize > dataSize) {
      throw new FormatError(
        "out-of-file",
        `[gguf] tensor "${t.name}" [${t.offset}, +${t.byteSize}) ends past the data section (${dataSize} bytes)`,
      );
    }
    if (prev !== undefined && t.offset < prev.offset + prev.byteSize) {
      throw new FormatError(
        "overlap",
        `[gguf] tensors "${prev.name}" and "${t.name}" overlap at data offset ${t.offset}`,
      );
    }
    prev = t;
  }
}

/**
 * Parses a GGUF header from a window that starts at file offset 0. Throws FormatError for bad bytes and
 * WindowExceeded when the window is too short (but the file is not).
 */
export function parseGgufHeader(b: BoundedBytes, options: { readonly ownsWindow?: boolean } = {}): GgufHeader {
  const owned = options.ownsWindow === true;
  const magic = b.u32(0, "magic").value;
  if (magic !== GGUF_MAGIC) {
    throw new FormatError("bad-magic", `[gguf] magic is 0x${magic.toString(16).padStart(8, "0")}, not "GGUF"`);
  }
  const version = b.u32(4, "version").value;
  if (version !== 2 && version !== 3) {
    const hint = version > 0xffff ? " (a big-endian file?)" : version === 1 ? " (v1 used u32 counts)" : "";
    throw new FormatError("bad-version", `[gguf] version ${version} is not supported${hint}; 2 and 3 are`);
  }
  const tensorCount = readCount(b, 8, "tensor count", L.MAX_TENSOR_COUNT, L.MIN_TENSOR_INFO_BYTES);
  const kvCount = readCount(b, 16, "metadata KV count", L.MAX_KV_COUNT, L.MIN_KV_BYTES);
  let pos = 24;
  const metadata = new GgufMetadata();
  for (let i = 0; i < kvCount; i++) {
    const key = readString(b, pos, L.MAX_KEY_BYTES, `metadata key ${i}`);
    pos += key.length;
    const type = valueType(b, pos, `value type of "${key.value}"`);
    pos += 4;
    const value = readValue(b, pos, type, key.value, owned);
    pos += value.length;
    metadata.add(key.value, value.value);
  }
  const alignment = ggufAlignment(metadata);
  const archValue = metadata.get("general.architecture");
  const arch = archValue?.type === "string" ? archValue.value : undefined;
  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const t = readTensorInfo(b, pos, alignment, arch);
    if (names.has(t.value.name)) {
      throw new FormatError("duplicate", `[gguf] duplicate tensor name "${t.value.name}"`);
    }
    names.add(t.value.name);
    tensors.push(t.value);
    pos += t.length;
  }
  const headerBytes = pos;
  const dataOffset = Math.ceil(headerBytes / alignment) * alignment;
  if (tensors.length > 0) {
    if (dataOffset > b.totalSize) {
      throw new FormatError(
        "truncated",
        `[gguf] data section starts at ${dataOffset}, after the end of the file (${b.totalSize})`,
      );
    }
    resolveId36(tensors, b.totalSize - dataOffset, alignment, arch);
    checkExtents(tensors, b.totalSize - dataOffset);
  }
  return { version, metadata, tensors, alignment, headerBytes, dataOffset, fileSize: b.totalSize };
}

/** Parses the header of a GGUF file held in memory. */
export function parseGguf(bytes: Uint8Array): GgufHeader {
  return parseGgufHeader(new BoundedBytes(bytes, bytes.length, "gguf"));
}

/** Optional byte range inside one tensor's data. */
export interface TensorDataRange {
  /** First byte, relative to the tensor's start. Default 0. */
  readonly offset?: number;
  /** Number of bytes. Default: to the end of the tensor. */
  readonly length?: number;
}

/** A parsed GGUF file: the header plus on-demand access to tensor bytes through its source. */
export class GgufFile implements GgufHeader, AsyncDisposable {
  readonly version: 2 | 3;
  readonly metadata: GgufMetadata;
  readonly tensors: readonly GgufTensorInfo[];
  readonly alignment: number;
  readonly headerBytes: number;
  readonly dataOffset: number;
  readonly fileSize: number;
  readonly #byName: Map<string, GgufTensorInfo>;

  /** Wraps a parsed header; `source` must be the bytes it was parsed from. */
  constructor(
    header: GgufHeader,
    readonly source: ByteSource,
  ) {
    ({ version: this.version, metadata: this.metadata, tensors: this.tensors } = header);
    ({ alignment: this.alignment, headerBytes: this.headerBytes, dataOffset: this.dataOffset } = header);
    this.fileSize = header.fileSize;
    this.#byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  /** The info of the named tensor, or undefined. */
  tensor(name: string): GgufTensorInfo | undefined {
    return this.#byName.get(name);
  }

  /**
   * Reads a tensor's bytes (or a slice of them) from the source. A missing name is FormatError `bad-value`; a
   * range outside the tensor is ShapeError `bounds`.
   */
  async tensorData(tensor: string | GgufTensorInfo, range: TensorDataRange = {}): Promise<Uint8Array> {
    const name = typeof tensor === "string" ? tensor : tensor.name;
    const info = this.#byName.get(name);
    if (info === undefined) {
      throw new FormatError("bad-value", `[gguf] no tensor named "${name}"`);
    }
    return readTensorRange(this.source, this.dataOffset + info.offset, info.byteSize, name, range, "gguf");
  }

  /**
   * Says a tensor's bytes (or its bytes [from, from + length)) will not be read again (converted): a mapped file
   * drops their pages.
   */
  release(tensor: GgufTensorInfo, from = 0, length = tensor.byteSize - from): void {
    this.source.release?.(this.dataOffset + tensor.offset, tensor.byteSize, from, length);
  }

  /** Closes the source if it can be closed (file sources). */
  async close(): Promise<void> {
    await this.source.close?.();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Parses the header of a GGUF source. Reads `INITIAL_HEADER_WINDOW` bytes first and doubles the window while
 * the header needs more, up to `MAX_HEADER_BYTES` (FormatError `limit` beyond that).
 */
export async function readGguf(source: ByteSource): Promise<GgufFile> {
  if (source instanceof MemorySource) {
    return new GgufFile(parseGguf(source.bytes), source);
  }
  let bytes = await readExact(source, 0, Math.min(source.size, L.INITIAL_HEADER_WINDOW), "gguf");
  const mapped = source.mapping?.() !== undefined;
  for (;;) {
    try {
      // A window in memory is the reader's own (a source's fresh read, or grown here): large string arrays keep
      // views of it. A mapped one they copy: a file cut short on disk later would make reading its pages a SIGBUS.
      return new GgufFile(parseGgufHeader(new BoundedBytes(bytes, source.size, "gguf"), { ownsWindow: !mapped }), source);
    } catch (e) {
      if (!(e instanceof WindowExceeded)) {
        throw e;
      }
      if (e.end > L.MAX_HEADER_BYTES) {
        throw new FormatError("limit", `[gguf] header is longer than ${L.MAX_HEADER_BYTES} bytes`);
      }
      const next = Math.min(source.size, L.MAX_HEADER_BYTES, Math.max(bytes.length * 2, e.end));
      if (mapped) {
        // A mapped file: the grown window read whole is a mapping too (no copy; its pages shared with the page
        // cache), instead of a new buffer the old window and the rest are copied into.
        bytes = await readExact(source, 0, next, "gguf");
        continue;
      }
      const grown = new Uint8Array(next);
      grown.set(bytes);
      grown.set(await readExact(source, bytes.length, next - bytes.length, "gguf"), bytes.length);
      bytes = grown;
    }
  }
}

/** Parses GGUF bytes held in memory; tensor data reads are zero-copy views. */
export function readGgufBytes(bytes: Uint8Array): GgufFile {
  return new GgufFile(parseGguf(bytes), new MemorySource(bytes));
}
