/**
 * The ggml tensor type table: every type id a GGUF file may carry, with enough layout facts to size a
 * tensor even when barbell cannot decode it. Sources (facts only): ggml `include/ggml.h` and
 * `src/ggml-common.h` @d99724f2, the bitnet.cpp llama.cpp fork `ggml.h` / `ggml.c` `ggml_nbytes`
 * @406a5036 (docs/BITNET.md §3.2, §3.6, §3.7).
 */
import { FormatError } from "../../core/errors.js";
import { quantByGgmlType } from "../../quant/table.js";
import type { QuantTraits } from "../../quant/types.js";

/**
 * How a type's byte size follows from its dims.
 * - `blocks`: rows of `ne0` elements cut into blocks of `blockSize`; `ne0 % blockSize === 0`;
 *   bytes = ne0 / blockSize · blockBytes · ne1 · ne2 · ne3 (ggml `ggml_row_size`).
 * - `i2_s` and `tl1`: bitnet.cpp's patched `ggml_nbytes`: elements / 4 + 32 (2-bit codes + a 32-byte scale trailer).
 * - `tl2`: bitnet.cpp: ((ne0 − 256) · ne1 / 3 · 5 / 8 + 64 · ne1) rounded up to 32, + 32
 *   (integer division, left to right).
 */
export type GgmlSizeRule = "blocks" | "i2_s" | "tl1" | "tl2";

/** Who defines a type id, which matters where the forks disagree (ids 36–39). */
export type GgmlTypeOrigin = "ggml" | "ggml-removed" | "bitnet.cpp";

/** Layout facts for one ggml tensor type. */
export interface GgmlTypeInfo {
  /** Numeric id stored in the tensor info. */
  readonly id: number;
  /** Lower-case ggml spelling (`f32`, `q4_k`, `tq2_0`, `i2_s`); matches `QuantName` where barbell has a codec. */
  readonly name: string;
  /** Elements per block along ne0 (1 for plain scalars and the bitnet.cpp whole-tensor types). */
  readonly blockSize: number;
  /** Bytes per block (for `i2_s`/`tl1`/`tl2`, see `sizeRule`). */
  readonly blockBytes: number;
  /** How dims become a byte count. */
  readonly sizeRule: GgmlSizeRule;
  /** Which code base defines this meaning of the id. */
  readonly origin: GgmlTypeOrigin;
  /**
   * False for types barbell knows how to size but will never run: the bitnet.cpp lookup-table layouts TL1/TL2
   * depend on per-shape, code-generated kernel tiling that no file records (BITNET.md §3.7).
   */
  readonly portable: boolean;
}

function t(
  id: number,
  name: string,
  blockSize: number,
  blockBytes: number,
  origin: GgmlTypeOrigin = "ggml",
  sizeRule: GgmlSizeRule = "blocks",
): GgmlTypeInfo {
  return { id, name, blockSize, blockBytes, sizeRule, origin, portable: sizeRule !== "tl1" && sizeRule !== "tl2" };
}

const GGML_I2_S_INFO = t(36, "i2_s", 1, 1, "bitnet.cpp", "i2_s");

/** Id 36 in bitnet.cpp: I2_S (2-bit codes + a per-tensor scale; the official BitNet 2B-4T GGUF). */
export const GGML_I2_S: GgmlTypeInfo = GGML_I2_S_INFO;

/**
 * Every id with a single meaning. Ids 4, 5 (Q4_2, Q4_3, removed before GGUF existed) and 37 are absent on purpose.
 * This list stays apart from barbell's dtype table (src/quant/dtypes.ts): it means something else, every id a file
 * may carry, decodable or not, transcribed from ggml's sources. Where barbell has a codec the two must agree
 * (test/gguf/ggml-types.test.ts sizes every codec both ways).
 */
const UNAMBIGUOUS: readonly GgmlTypeInfo[] = [
  t(0, "f32", 1, 4),
  t(1, "f16", 1, 2),
  t(2, "q4_0", 32, 18),
  t(3, "q4_1", 32, 20),
  t(6, "q5_0", 32, 22),
  t(7, "q5_1", 32, 24),
  t(8, "q8_0", 32, 34),
  t(9, "q8_1", 32, 36),
  t(10, "q2_k", 256, 84),
  t(11, "q3_k", 256, 110),
  t(12, "q4_k", 256, 144),
  t(13, "q5_k", 256, 176),
  t(14, "q6_k", 256, 210),
  t(15, "q8_k", 256, 292),
  t(16, "iq2_xxs", 256, 66),
  t(17, "iq2_xs", 256, 74),
  t(18, "iq3_xxs", 256, 98),
  t(19, "iq1_s", 256, 50),
  t(20, "iq4_nl", 32, 18),
  t(21, "iq3_s", 256, 110),
  t(22, "iq2_s", 256, 82),
  t(23, "iq4_xs", 256, 136),
  t(24, "i8", 1, 1),
  t(25, "i16", 1, 2),
  t(26, "i32", 1, 4),
  t(27, "i64", 1, 8),
  t(28, "f64", 1, 8),
  t(29, "iq1_m", 256, 56),
  t(30, "bf16", 1, 2),
  // Repacked Q4_0 variants: removed from ggml in late 2024, but files written with them were published.
  t(31, "q4_0_4_4", 32, 18, "ggml-removed"),
  t(32, "q4_0_4_8", 32, 18, "ggml-removed"),
  t(33, "q4_0_8_8", 32, 18, "ggml-removed"),
  t(34, "tq1_0", 256, 54),
  t(35, "tq2_0", 256, 66),
  // 36 and 38 were IQ4_NL_4_4 / IQ4_NL_4_8 in mainline for a few weeks and never shipped in files; only
  // bitnet.cpp writes them, as I2_S and TL1.
  GGML_I2_S_INFO,
  t(38, "tl1", 1, 1, "bitnet.cpp", "tl1"),
  t(40, "nvfp4", 64, 36),
  t(41, "q1_0", 128, 18),
  t(42, "q2_0", 64, 18),
];

/** Id 36 in mainline ggml for a few weeks of late 2024: IQ4_NL_4_4 (IQ4_NL repacked 4 rows at a time). */
export const GGML_IQ4_NL_4_4: GgmlTypeInfo = t(36, "iq4_nl_4_4", 32, 18, "ggml-removed");

/** Id 39 in mainline ggml: MXFP4 (one E8M0 exponent + 16 bytes of E2M1 nibbles per 32 elements). */
export const GGML_MXFP4: GgmlTypeInfo = t(39, "mxfp4", 32, 17);

/** Id 39 in bitnet.cpp: TL2 (x86 lookup-table layout; known but not runnable). */
export const GGML_TL2: GgmlTypeInfo = t(39, "tl2", 1, 1, "bitnet.cpp", "tl2");

const BY_ID = new Map<number, GgmlTypeInfo>(UNAMBIGUOUS.map((info) => [info.id, info]));

/** Type id of bitnet.cpp's I2_S (official BitNet b1.58 2B-4T GGUF). */
export const GGML_TYPE_I2_S = 36;

/** Type id shared by mainline MXFP4 and bitnet.cpp TL2. */
export const GGML_TYPE_ID_39 = 39;

/** Context a reader uses to resolve the ids whose meaning depends on the producer. */
export interface GgmlTypeContext {
  /** `general.architecture`, if present. */
  readonly architecture: string | undefined;
}

/** A resolved type plus, for ambiguous ids, the reason for the choice. */
export interface ResolvedGgmlType {
  readonly info: GgmlTypeInfo;
  /** Why this meaning was chosen; present only for ids whose meaning differs between ggml forks (36, 38, 39). */
  readonly interpretation?: string;
}

/** True for `general.architecture` values produced by BitNet converters (`bitnet`, `bitnet-25`, `bitnet-b1.58`). */
export function isBitnetArchitecture(arch: string | undefined): boolean {
  return arch !== undefined && arch.startsWith("bitnet");
}

/**
 * Resolves a tensor type id, or returns undefined for ids no known producer writes to files (4, 5, 37, ≥ 43).
 * Id 39 is TL2 when the architecture is a BitNet one (only bitnet.cpp writes BitNet archs with its own ids),
 * else MXFP4. Ids 36 and 38 are always the bitnet.cpp types: mainline retired them without shipping files.
 */
export function resolveGgmlType(id: number, ctx: GgmlTypeContext): ResolvedGgmlType | undefined {
  const bitnetArch = isBitnetArchitecture(ctx.architecture);
  const archText = ctx.architecture === undefined ? "no general.architecture" : `architecture "${ctx.architecture}"`;
  if (id === GGML_TYPE_ID_39) {
    return bitnetArch
      ? { info: GGML_TL2, interpretation: `id 39 read as bitnet.cpp TL2 because of ${archText}` }
      : { info: GGML_MXFP4, interpretation: `id 39 read as mainline MXFP4 because of ${archText}` };
  }
  const info = BY_ID.get(id);
  if (info === undefined) {
    return undefined;
  }
  if (info.origin === "bitnet.cpp") {
    const why = bitnetArch ? archText : `${archText}, but only bitnet.cpp writes id ${id} to files`;
    return { info, interpretation: `id ${id} read as bitnet.cpp ${info.name.toUpperCase()} (${why})` };
  }
  return { info };
}

/** Looks up an unambiguous type id (ids 36/38 give the bitnet.cpp meaning, 39 is not included). */
export function ggmlTypeById(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

/** All types in the table, including both meanings of id 39. */
export function allGgmlTypes(): readonly GgmlTypeInfo[] {
  return [...UNAMBIGUOUS, GGML_MXFP4, GGML_TL2];
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Bytes a tensor of type `info` with GGUF dims (ne0 first) occupies. Dims must already be positive safe integers.
 * Throws FormatError `bad-dims` when the shape cannot be stored in the type, `overflow` when the size passes 2^53.
 */
export function ggmlTensorBytes(info: GgmlTypeInfo, dims: readonly number[]): number {
  let elements = 1n;
  for (const d of dims) {
    elements *= BigInt(d);
  }
  const ne0 = BigInt(dims[0] ?? 1);
  const ne1 = BigInt(dims[1] ?? 1);
  let bytes: bigint;
  switch (info.sizeRule) {
    case "blocks": {
      const block = BigInt(info.blockSize);
      if (ne0 % block !== 0n) {
        throw new FormatError("bad-dims", `[gguf] ${info.name} needs ne0 to be a multiple of ${block}, got ${ne0}`);
      }
      bytes = (elements / block) * BigInt(info.blockBytes);
      break;
    }
    case "i2_s":
    case "tl1":
      if (elements % 4n !== 0n) {
        throw new FormatError("bad-dims", `[gguf] ${info.name} needs an element count divisible by 4, got ${elements}`);
      }
      bytes = elements / 4n + 32n;
      break;
    case "tl2": {
      if (ne0 < 256n || dims.length > 2) {
        throw new FormatError("bad-dims", `[gguf] tl2 needs a 2-D tensor with ne0 ≥ 256, got [${dims.join(", ")}]`);
      }
      const raw = (((ne0 - 256n) * ne1) / 3n) * 5n / 8n + 64n * ne1;
      bytes = ((raw + 31n) / 32n) * 32n + 32n;
      break;
    }
  }
  if (bytes > MAX_SAFE || elements > MAX_SAFE) {
    throw new FormatError("overflow", `[gguf] tensor of ${elements} ${info.name} elements needs more than 2^53 bytes`);
  }
  return Number(bytes);
}

/**
 * The codec barbell has for a tensor's resolved type, or undefined when it can size but not decode it
 * (k-quants, iq-quants, MXFP4, TL1/TL2). Uses the resolved name so id 39 read as TL2 never maps to a codec.
 */
export function quantTraitsFor(tensor: {
  readonly typeId: number;
  readonly typeName: string;
}): QuantTraits | undefined {
  const traits = quantByGgmlType(tensor.typeId);
  return traits !== undefined && traits.name === tensor.typeName ? traits : undefined;
}
