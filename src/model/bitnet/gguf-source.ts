/** A {@link WeightSource} over a GGUF file: BitNet tensors by name, checked against the config's shapes. */
import type { DenseDType } from "../../backends/backend.js";
import { FormatError } from "../../core/errors.js";
import type { GgufFile, GgufTensorInfo } from "../../formats/gguf/index.js";
import { repackTernary, type TernaryPacked } from "../../quant/repack.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import { DENSE_FORMATS, type QuantName } from "../../quant/types.js";
import type { WeightSource } from "./weights.js";

const DENSE_TYPES: readonly string[] = DENSE_FORMATS;
const TERNARY_TYPES: readonly string[] = ["i2_s", "tq1_0", "tq2_0", "f32", "f16", "bf16"];
const FLOAT_TYPES: readonly string[] = ["f32", "f16", "bf16"];

export function ggufWeightSource(file: GgufFile): WeightSource {
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
    release(name) {
      const info = file.tensor(name);
      if (info !== undefined) {
        file.release(info);
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
