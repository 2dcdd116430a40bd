/** A {@link WeightSource} over a GGUF file: BitNet tensors by name, checked against the config's shapes. */
import type { DenseDType } from "../../backends/backend.js";
import { FormatError } from "../../core/errors.js";
import type { GgufFile, GgufTensorInfo } from "../../formats/gguf/index.js";
import { repackTernary, type TernaryPacked } from "../../quant/repack.js";
import { halfToF32 } from "../../quant/half.js";
import { loadCodecs, MAPPED_FILE_SHRANK, type FileMapping } from "../../quant/load-codecs.js";
import { MAP_MIN_BYTES, shrankError } from "../../formats/gguf/source.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import { DENSE_FORMATS, GGUF_PROJECTION_FORMATS } from "../../quant/dtypes.js";
import { ByteArena } from "../../backends/host-memory.js";
import type { QuantName } from "../../quant/types.js";
import type { WeightSource } from "./weights.js";

const DENSE_TYPES: readonly string[] = DENSE_FORMATS;
const TERNARY_TYPES: readonly string[] = GGUF_PROJECTION_FORMATS;
const FLOAT_TYPES: readonly string[] = ["f32", "f16", "bf16"];

export function ggufWeightSource(file: GgufFile): WeightSource {
  /** Where projections converted on first use put their codes: side by side, so their pages can be huge pages. */
  const codeArena = new ByteArena();
  /** The tensor, checked to have these GGUF dims (ne0, the contiguous one, first). */
  const need = (name: string, ...want: number[]): GgufTensorInfo => {
    const info = file.tensor(name);
    if (info === undefined) {
      throw new FormatError("bad-value", `[bitnet] tensor ${name} is missing`);
    }
    if (info.dims.length !== want.length || info.dims.some((d, i) => d !== want[i])) {
      throw new FormatError("bad-dims", `[bitnet] ${name} has dims [${info.dims.join(", ")}], the config needs [${want.join(", ")}]`);
    }
    return info;
  };
  const decode = async (info: GgufTensorInfo, rows: number, cols: number, allowed: readonly string[]): Promise<Float32Array> => {
    if (!allowed.includes(info.typeName)) {
      throw new FormatError("bad-tensor-type", `[bitnet] ${info.name} is ${info.typeName}; expected ${allowed.join(", ")}`);
    }
    return QUANT_TRAITS[info.typeName as QuantName].decode(await file.tensorData(info), rows, cols);
  };
  /** A per-tensor multiplier some converters write as `<name without .weight>.scale` (one value). */
  const multiplier = async (name: string): Promise<number> => {
    const info = name.endsWith(".weight") ? file.tensor(`${name.slice(0, -".weight".length)}.scale`) : undefined;
    if (info === undefined) {
      return 1;
    }
    if (info.elementCount !== 1) {
      throw new FormatError("bad-dims", `[bitnet] ${info.name} must hold one value, has ${info.elementCount}`);
    }
    const v = (await decode(info, 1, 1, FLOAT_TYPES))[0] ?? Number.NaN;
    if (!Number.isFinite(v)) {
      throw new FormatError("bad-value", `[bitnet] ${info.name} is ${v}`);
    }
    return v;
  };

  return {
    has: (name) => file.tensor(name) !== undefined,
    bytesOf: (name) => file.tensor(name)?.byteSize ?? 0,
    async dense(name, rows, cols): Promise<{ dtype: DenseDType; bytes: Uint8Array }> {
      const info = need(name, cols, rows);
      if (!DENSE_TYPES.includes(info.typeName)) {
        throw new FormatError(
          "bad-tensor-type",
          `[bitnet] ${name} is ${info.typeName}; barbell runs embeddings/heads in ${DENSE_TYPES.join(", ")} ` +
            `(convert with llama-quantize --token-embedding-type q8_0, or re-export as f16)`,
        );
      }
      return { dtype: info.typeName as DenseDType, bytes: await file.tensorData(info) };
    },
    async floats(name, count) {
      return decode(need(name, count), 1, count, FLOAT_TYPES);
    },
    async ternary(name, out, inp): Promise<TernaryPacked> {
      const info = need(name, inp, out);
      if (!TERNARY_TYPES.includes(info.typeName)) {
        throw new FormatError(
          "bad-tensor-type",
          `[bitnet] ${name} is ${info.typeName}; barbell runs BitNet projections stored as i2_s, tq1_0, tq2_0 ` +
            `or as floats holding ternary values (convert with llama-quantize to TQ2_0, or bitnet.cpp to I2_S)`,
        );
      }
      const packed = repackTernary(info.typeName as QuantName, await file.tensorData(info), out, inp);
      return { codes: packed.codes, scale: packed.scale * (await multiplier(name)) };
    },
    async lazyTernary(name, out, inp) {
      const info = need(name, inp, out);
      const format = info.typeName;
      const size = format === "i2_s" || format === "tq2_0" ? QUANT_TRAITS[format].byteSize(out, inp) : undefined;
      const codecs = loadCodecs();
      const { copyMapped, transcodeMapped, releaseMapped } = codecs ?? {};
      const mapped = file.source.mapping?.() as FileMapping | undefined;
      if ((format !== "i2_s" && format !== "tq2_0") || size === undefined || info.byteSize < size || mapped === undefined) {
        return undefined; // `ternary` converts it now, or names what is wrong
      }
      if (copyMapped === undefined || transcodeMapped === undefined || releaseMapped === undefined) {
        return undefined;
      }
      const at = file.dataOffset + info.offset;
      const n = out * inp;
      const read = (offset: number, length: number): Uint8Array => {
        const bytes = new Uint8Array(length);
        if (!copyMapped(mapped, at + offset, bytes)) {
          throw shrankError();
        }
        return bytes;
      };
      const gamma = format === "i2_s" ? i2sScale(read(n / 4, 4)) : tq2FirstScale(read, n / 256);
      if (gamma === undefined) {
        return undefined;
      }
      const scale = gamma * (await multiplier(name));
      let map: FileMapping | undefined = mapped;
      const materialize = (): Uint8Array => {
        if (map === undefined) {
          throw new FormatError("bad-value", `[bitnet] ${name} was already converted`);
        }
        let codes: Uint8Array = codeArena.take(n / 4);
        const r = transcodeMapped(map, at, format === "i2_s" ? 0 : 1, n, codes);
        if (r === MAPPED_FILE_SHRANK) {
          throw shrankError();
        }
        let got = format === "i2_s" ? gamma : r === -1 ? 0 : halfToF32(r);
        if (r === -2) {
          // A code 3 or block scales the fast path does not take: the reference path decides (and names the error).
          ({ codes, scale: got } = repackTernary(format, read(0, size), out, inp));
        }
        if (got !== gamma) {
          throw new FormatError("bad-value", `[repack] ${format} blocks hold the scale ${got}, the first non-zero block ${gamma}`);
        }
        releaseMapped(map, at, info.byteSize);
        map = undefined;
        return codes;
      };
      return { scale, materialize };
    },
    mappedCopy(name) {
      const info = file.tensor(name);
      const mapped = file.source.mapping?.() as FileMapping | undefined;
      const { copyMapped, releaseMapped } = loadCodecs() ?? {};
      // Reads shorter than MAP_MIN_BYTES were copies already (FileSource), only longer ones are views of the file.
      if (info === undefined || info.byteSize < MAP_MIN_BYTES || mapped === undefined || copyMapped === undefined || releaseMapped === undefined) {
        return undefined;
      }
      const at = file.dataOffset + info.offset;
      return (from, dst) => {
        if (from < 0 || from + dst.length > info.byteSize) {
          throw new RangeError(`[bitnet] ${name}: bytes ${from}..${from + dst.length} are outside the tensor`);
        }
        if (!copyMapped(mapped, at + from, dst)) {
          throw shrankError();
        }
        releaseMapped(mapped, at + from, dst.length); // the pages just read, in this mapping of the whole file
      };
    },
    release(name, from, length) {
      const info = file.tensor(name);
      if (info !== undefined) {
        file.release(info, from, length);
      }
    },
    async projectionFloats(name, out, inp) {
      const info = need(name, inp, out);
      const values = QUANT_TRAITS[info.typeName as QuantName].decode(await file.tensorData(info), out, inp);
      const m = await multiplier(name);
      return m === 1 ? values : values.map((v) => v * m);
    },
  };
}

/** γ of an I2_S tensor: the float32 after its codes (`bytes`, 4 of them), as repackTernary reads it; undefined when not finite. */
function i2sScale(bytes: Uint8Array): number | undefined {
  const v = new DataView(bytes.buffer, bytes.byteOffset, 4).getFloat32(0, true);
  return Number.isFinite(v) ? v : undefined;
}

/**
 * γ of a TQ2_0 tensor as converters write it: the fp16 d of the first block holding a code other than 1 (zero),
 * when positive and finite; undefined otherwise (an all-zero tensor, a first scale that would not be γ), for
 * `ternary` to decide. Reads block by block up to that block (normally the first).
 */
function tq2FirstScale(read: (offset: number, length: number) => Uint8Array, blocks: number): number | undefined {
  for (let b = 0; b < blocks; b++) {
    const block = read(b * 66, 66);
    if (block.subarray(0, 64).some((x) => x !== 0x55)) {
      const v = halfToF32((block[64] ?? 0) | ((block[65] ?? 0) << 8));
      return Number.isFinite(v) && v > 0 ? v : undefined;
    }
  }
  return undefined;
}
