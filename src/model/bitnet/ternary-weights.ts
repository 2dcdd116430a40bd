/**
 * Ternary projection weights from a GGUF file into checked `ternary` tensors, whatever the storage
 * type (I2_S, TQ1_0, TQ2_0, or floats holding γ·trits).
 */
import { FormatError } from "../../core/errors.js";
import { err, ok, type Result } from "../../core/result.js";
import type { GgufFile, GgufTensorInfo } from "../../formats/gguf/index.js";
import { repackTernary } from "../../quant/repack.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import type { QuantName } from "../../quant/types.js";
import { ternaryFromCodes, type PackedOptions } from "../../tensor/ops/quant.js";
import type { Tensor, UniqueDims } from "../../tensor/tensor.js";

export interface TernaryWeightOptions extends Omit<PackedOptions, "scale" | "adopt"> {
  /** A multiplier folded into γ (a per-tensor `.scale` tensor of the file). Default 1. */
  readonly multiplier?: number;
}

/**
 * Reads a 2-D GGUF tensor ([in, out] in GGUF order) as a ternary weight [out, in] with the given
 * dimension names. Fails with FormatError code "bad-value" when the values are not γ·{−1, 0, +1}
 * with one γ (the caller may then choose float execution), other codes for undecodable data.
 */
export async function readTernaryWeight<const Out extends string, const In extends string>(
  file: GgufFile,
  info: GgufTensorInfo,
  dims: readonly [Out, In],
  options: TernaryWeightOptions = {},
): Promise<Result<Tensor<"ternary", [Out, In]>, FormatError>> {
  const where = `[ternary] ${info.name}`;
  const [cols = 0, rows = 0] = info.dims;
  if (info.dims.length !== 2) {
    return err(new FormatError("bad-dims", `${where}: expected 2 dims, got [${info.dims.join(", ")}]`));
  }
  if (!(info.typeName in QUANT_TRAITS)) {
    return err(new FormatError("bad-tensor-type", `${where}: barbell cannot decode type ${info.typeName}`));
  }
  let packed;
  try {
    packed = repackTernary(info.typeName as QuantName, await file.tensorData(info), rows, cols);
  } catch (e) {
    if (e instanceof FormatError) {
      return err(new FormatError(e.code, `${where}: ${e.message}`));
    }
    throw e;
  }
  // Generic names cannot be proven distinct at compile time; ternaryFromCodes checks them at runtime.
  const t = ternaryFromCodes(packed.codes, dims as unknown as UniqueDims<readonly [Out, In]>, [rows, cols], {
    ...options,
    adopt: true,
    scale: packed.scale * (options.multiplier ?? 1),
  });
  return t.ok ? ok(t.value as Tensor<"ternary", [Out, In]>) : err(new FormatError("bad-value", `${where}: ${t.error.message}`));
}
