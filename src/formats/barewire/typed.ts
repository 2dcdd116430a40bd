/**
 * Typed tensors over BAREWire: encode a barbell `Tensor`, and decode bytes into a tensor whose dtype
 * and dimension names are checked against what the caller expects (the seed's `deserializeTensor`).
 */
import { isHostBuffer } from "../../backends/host-memory.js";
import type { StorageDType } from "../../backends/backend.js";
import { FormatError } from "../../core/errors.js";
import { err, ok, type Result } from "../../core/result.js";
import { defaultBackend } from "../../tensor/context.js";
import type { Dims, ShapeOf } from "../../tensor/dims.js";
import { dimsArg, tensorFromBytes, type Tensor, type TensorOptions } from "../../tensor/tensor.js";
import { ternaryFromCodes } from "../../tensor/ops/quant.js";
import { viewPayload, type PayloadArray } from "./dtypes.js";
import type { WireDType, WireTensor } from "./message.js";
import { decodeMessage, encodeTensorFrame, encodeTensorFrameParts, type FrameParts } from "./wire.js";

/** What a typed decode expects: a dtype, the dimension names in order, and optionally some sizes. */
export interface TensorExpect<DT extends WireDType, D extends Dims> {
  readonly dtype: DT;
  readonly dims: D;
  /** Sizes that must match, by dimension name; names left out accept any size. */
  readonly sizes?: { readonly [K in D[number]]?: number };
}

/** Which part of a tensor's type differed from the expected one. */
export type MismatchField = "dtype" | "rank" | "dim-name" | "size";

/**
 * A well-formed tensor of another type than the expected one. The message reads
 * `Type mismatch: expected … but got …`, and the fields say what differed.
 */
export class TensorTypeMismatch extends FormatError {
  constructor(
    readonly field: MismatchField,
    readonly expected: string,
    readonly actual: string,
    /** The dimension index, for dim-name and size mismatches. */
    readonly dimIndex?: number,
  ) {
    super("type-mismatch", `[barewire] Type mismatch: expected ${expected} but got ${actual}`);
  }
}

/** A decoded tensor whose payload is a view into the decoded bytes. */
export interface TensorView<DT extends WireDType, D extends Dims> {
  readonly name: string;
  readonly dtype: DT;
  readonly dims: D;
  readonly shape: ShapeOf<D>;
  /** One per-tensor scale for ternary and binary, none otherwise. */
  readonly scales: readonly number[];
  readonly flags: number;
  /** The payload bytes, a view into the input. */
  readonly payload: Uint8Array;
  /** The payload as the dtype's typed array (`Float32Array` for f32, bytes for block formats). */
  readonly data: PayloadArray<DT>;
  /** True when `data` had to be copied because the input was not aligned for the element type. */
  readonly copied: boolean;
}

/** Reads the frame as a tensor and checks it against `expect`; the payload stays a view of `bytes`. */
export function decodeTensorView<const DT extends WireDType, const D extends Dims>(
  bytes: Uint8Array,
  expect: TensorExpect<DT, D>,
): Result<TensorView<DT, D>, FormatError> {
  const decoded = decodeMessage(bytes);
  if (!decoded.ok) {
    return decoded;
  }
  if (decoded.value.kind !== "tensor") {
    return err(new FormatError("bad-tag", `[barewire] expected a TensorFrame, got a ${decoded.value.kind} message`));
  }
  const t = decoded.value.tensor;
  const mismatch = compare(t, expect);
  if (mismatch !== undefined) {
    return err(mismatch);
  }
  const { array, copied } = viewPayload(expect.dtype, t.payload);
  return ok({
    name: t.name,
    dtype: expect.dtype,
    dims: expect.dims,
    shape: t.dims.map((d) => d.size) as ShapeOf<D>,
    scales: t.scales,
    flags: t.flags,
    payload: t.payload,
    data: array,
    copied,
  });
}

function compare(t: WireTensor, expect: TensorExpect<WireDType, Dims>): TensorTypeMismatch | undefined {
  if (t.dtype !== expect.dtype) {
    return new TensorTypeMismatch("dtype", `dtype ${expect.dtype}`, `dtype ${t.dtype}`);
  }
  const got = t.dims.map((d) => d.name);
  if (got.length !== expect.dims.length) {
    return new TensorTypeMismatch("rank", `dims [${expect.dims.join(", ")}]`, `dims [${got.join(", ")}]`);
  }
  for (const [i, name] of expect.dims.entries()) {
    if (got[i] !== name) {
      return new TensorTypeMismatch("dim-name", `dimension ${i} named "${name}"`, `"${got[i] ?? ""}"`, i);
    }
  }
  const sizes = (expect.sizes ?? {}) as Readonly<Record<string, number | undefined>>;
  for (const [i, d] of t.dims.entries()) {
    const want = sizes[d.name];
    if (want !== undefined && want !== d.size) {
      return new TensorTypeMismatch("size", `${d.name}=${want}`, `${d.name}=${d.size}`, i);
    }
  }
  return undefined;
}

/** The storage dtypes a decoded frame can become a barbell `Tensor` of. */
export type DecodableDType = Extract<WireDType, StorageDType>;

/**
 * `deserializeTensor`: decodes one `TensorFrame` into a typed tensor on a backend, or a typed error
 * (FormatError for bad bytes, TensorTypeMismatch when dtype, a dimension name or a size differs).
 * The payload is copied once, into the backend's memory; use decodeTensorView for no copy at all.
 */
export function decodeTensor<const DT extends DecodableDType, const D extends Dims>(
  bytes: Uint8Array,
  expect: TensorExpect<DT, D>,
  options: TensorOptions = {},
): Result<Tensor<DT, [...D]>, FormatError> {
  const view = decodeTensorView(bytes, expect);
  if (!view.ok) {
    return view;
  }
  const v = view.value;
  const backend = options.backend ?? defaultBackend();
  const dims = dimsArg<[...D]>("decodeTensor", v.dims);
  const shape = v.shape as ShapeOf<[...D]>;
  if (v.dtype === "ternary") {
    // As plain Dims: UniqueDims<D> cannot be decided for a generic D; the names were compared with `expect` above.
    const made = ternaryFromCodes<Dims>(v.payload, dims, shape, { backend, scale: v.scales[0] ?? 1 });
    if (!made.ok) {
      return err(new FormatError("bad-value", `[barewire] tensor "${v.name}": ${made.error.message}`));
    }
    return ok(made.value as Tensor<DT, [...D]>);
  }
  const scale = v.dtype === "binary" ? v.scales[0] : undefined;
  return ok(tensorFromBytes(backend, v.dtype, dims, shape, v.payload, scale));
}

/**
 * The wire form of a barbell tensor. Host-memory storage (every CPU backend) is viewed in place, not
 * copied; other backends' storage is read out once.
 */
export function wireTensorOf(t: Tensor, name: string, flags = 0): WireTensor {
  const buffer = t.ref().buffer;
  const payload = isHostBuffer(buffer) ? buffer.view().subarray(0, buffer.bytes) : t.backend.read(buffer);
  const dims = t.dims.map((n, i) => ({ name: n, size: t.shape[i] ?? 0 }));
  const scales = t.dtype === "ternary" || t.dtype === "binary" ? [t.scale ?? 1] : [];
  return { name, dtype: t.dtype, dims, scales, flags, payload };
}

/**
 * `serializeTensor`: one `TensorFrame` holding a barbell tensor. The payload is copied once, into the
 * frame (host-memory tensors are viewed in place); encodeTensorParts avoids even that copy.
 */
export function encodeTensor(t: Tensor, name = ""): Uint8Array {
  return encodeTensorFrame(wireTensorOf(t, name));
}

/** A tensor's frame as head + payload parts for a gathering write: only the backend's read copies. */
export function encodeTensorParts(t: Tensor, name = ""): FrameParts {
  return encodeTensorFrameParts(wireTensorOf(t, name));
}
