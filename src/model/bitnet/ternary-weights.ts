/**
 * Ternary projection weights from a GGUF file into checked `ternary` tensors, whatever the storage
 * type (I2_S, TQ1_0, TQ2_0, or floats holding γ·trits).
 */
import { FormatError } from "../../core/errors.js";
import { err, ok, type Result } from "../../core/result.js";
import type { GgufFile, GgufTensorInfo } from "../../formats/gguf/index.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import type { QuantName } from "../../quant/types.js";
import { toTernary, type PackedOptions } from "../../tensor/ops/quant.js";
import type { Tensor, UniqueDims } from "../../tensor/tensor.js";

/** Splits γ·trits back into trits and γ, or says which element is not ternary. */
export function splitTernaryScale(values: Float32Array): Result<{ trits: Float32Array; scale: number }, FormatError> {
  let gamma = 0;
  for (const v of values) {
    gamma = Math.max(gamma, Math.abs(v));
  }
  const trits = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] ?? 0;
    if (v !== 0 && v !== gamma && v !== -gamma) {
      return err(new FormatError("bad-value", `element ${i} is ${v}, not one of 0, ±${gamma}: the tensor is not ternary`));
    }
    trits[i] = gamma === 0 ? 0 : Math.sign(v);
  }
  return ok({ trits, scale: gamma });
}

/**
 * Reads a 2-D GGUF tensor ([in, out] in GGUF order) as a ternary weight [out, in] with the given
 * dimension names. Fails with FormatError when the type cannot be decoded or the values are not
 * γ·{−1, 0, +1} with one γ.
 */
export async function readTernaryWeight<const Out extends string, const In extends string>(
  file: GgufFile,
  info: GgufTensorInfo,
  dims: readonly [Out, In],
  options: Omit<PackedOptions, "scale"> = {},
): Promise<Result<Tensor<"ternary", [Out, In]>, FormatError>> {
  const where = `[ternary] ${info.name}`;
  const [cols = 0, rows = 0, ...rest] = info.dims;
  if (info.dims.length !== 2 || rest.length > 0) {
    return err(new FormatError("bad-dims", `${where}: expected 2 dims, got [${info.dims.join(", ")}]`));
  }
  const traits = (QUANT_TRAITS as Record<string, (typeof QUANT_TRAITS)[QuantName] | undefined>)[info.typeName];
  if (traits === undefined) {
    return err(new FormatError("bad-tensor-type", `${where}: barbell cannot decode type ${info.typeName}`));
  }
  const values = traits.decode(await file.tensorData(info), rows, cols);
  const split = splitTernaryScale(values);
  if (!split.ok) {
    return err(new FormatError("bad-value", `${where}: ${split.error.message}`));
  }
  // Generic names cannot be proven distinct at compile time; toTernary checks them at runtime.
  const tensor = toTernary(split.value.trits, dims as unknown as UniqueDims<readonly [Out, In]>, [rows, cols], {
    ...options,
    scale: split.value.scale,
  });
  // The trits were produced above from the same values, so the check cannot fail here.
  return tensor.ok ? ok(tensor.value as Tensor<"ternary", [Out, In]>) : err(new FormatError("bad-value", tensor.error.message));
}
