/**
 * `GgufMetadata`: an ordered key → typed value map with checked getters, and constructors for typed values.
 */
import { FormatError } from "../../core/errors.js";
import { stringList, typedNumbers, type GgufStringList } from "./array-items.js";
import { DEFAULT_ALIGNMENT, MAX_ALIGNMENT } from "./limits.js";
import type {
  GgufArrayValue,
  GgufBigIntTypeName,
  GgufNumberTypeName,
  GgufValue,
  GgufValueTypeName,
} from "./types.js";

function wrongType(key: string, want: string, got: GgufValue): FormatError {
  const shown = got.type === "array" ? `array of ${got.itemType}` : got.type;
  return new FormatError("bad-value", `[gguf] metadata "${key}" should be ${want}, but is ${shown}`);
}

/** Strings by index: a plain array or a large array's `GgufStringList`. */
export type StringList = readonly string[] | GgufStringList;

/**
 * Ordered metadata. Insertion order is file order and is what the writer emits. Getters return undefined for a
 * missing key and throw FormatError `bad-value` when the key holds the wrong type, so a file that stores a
 * hyperparameter as a string is reported, not silently ignored.
 */
export class GgufMetadata {
  readonly #entries = new Map<string, GgufValue>();

  /** Builds metadata from pairs; throws FormatError `duplicate` on a repeated key. */
  constructor(entries: Iterable<readonly [string, GgufValue]> = []) {
    for (const [key, value] of entries) {
      this.add(key, value);
    }
  }

  /** Appends a key; throws FormatError `duplicate` if it is already present. */
  add(key: string, value: GgufValue): void {
    if (this.#entries.has(key)) {
      throw new FormatError("duplicate", `[gguf] duplicate metadata key "${key}"`);
    }
    this.#entries.set(key, value);
  }

  /** Number of keys. */
  get size(): number {
    return this.#entries.size;
  }

  /** True if the key is present. */
  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** The typed value, or undefined. */
  get(key: string): GgufValue | undefined {
    return this.#entries.get(key);
  }

  /** Keys in file order. */
  keys(): IterableIterator<string> {
    return this.#entries.keys();
  }

  /** Key/value pairs in file order. */
  entries(): IterableIterator<[string, GgufValue]> {
    return this.#entries.entries();
  }

  /** A string value. */
  getString(key: string): string | undefined {
    const v = this.#entries.get(key);
    if (v === undefined) {
      return undefined;
    }
    if (v.type !== "string") {
      throw wrongType(key, "a string", v);
    }
    return v.value;
  }

  /** A bool value. */
  getBool(key: string): boolean | undefined {
    const v = this.#entries.get(key);
    if (v === undefined) {
      return undefined;
    }
    if (v.type !== "bool") {
      throw wrongType(key, "a bool", v);
    }
    return v.value;
  }

  /**
   * Any numeric scalar as a number: every integer width (writers disagree on u32 vs u64 for counts) and both
   * floats. A 64-bit integer outside ±2^53 throws `bad-value` rather than losing precision.
   */
  getNumber(key: string): number | undefined {
    const v = this.#entries.get(key);
    if (v === undefined) {
      return undefined;
    }
    if (v.type === "string" || v.type === "bool" || v.type === "array") {
      throw wrongType(key, "a number", v);
    }
    if (typeof v.value === "bigint") {
      if (v.value > BigInt(Number.MAX_SAFE_INTEGER) || v.value < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new FormatError("bad-value", `[gguf] metadata "${key}" = ${v.value} does not fit a safe integer`);
      }
      return Number(v.value);
    }
    return v.value;
  }

  /** Like `getNumber`, but also requires a non-negative integer (counts, sizes, token ids). */
  getCount(key: string): number | undefined {
    const n = this.getNumber(key);
    if (n !== undefined && !(Number.isSafeInteger(n) && n >= 0)) {
      throw new FormatError("bad-value", `[gguf] metadata "${key}" = ${n} is not a non-negative integer`);
    }
    return n;
  }

  /** An array value of any item type. */
  getArray(key: string): GgufArrayValue | undefined {
    const v = this.#entries.get(key);
    if (v === undefined) {
      return undefined;
    }
    if (v.type !== "array") {
      throw wrongType(key, "an array", v);
    }
    return v;
  }

  /** An array of strings (token lists, merges). */
  getStringArray(key: string): readonly string[] | undefined {
    const v = this.getArray(key);
    if (v === undefined) {
      return undefined;
    }
    if (v.itemType !== "string") {
      throw wrongType(key, "an array of string", v);
    }
    return v.items;
  }

  /**
   * An array of strings read one at a time: a large array's `GgufStringList` (its strings not made until all
   * are asked for), else the array itself. Same checks as `getStringArray`.
   */
  getStringList(key: string): StringList | undefined {
    const v = this.getArray(key);
    if (v === undefined) {
      return undefined;
    }
    if (v.itemType !== "string") {
      throw wrongType(key, "an array of string", v);
    }
    return stringList(v) ?? v.items;
  }

  /** Like `getNumberArray`, but a large array as its typed array (no JS array made). */
  getNumbers(key: string): ArrayLike<number> | undefined {
    const v = this.getArray(key);
    return v === undefined ? undefined : (typedNumbers(v) ?? this.getNumberArray(key));
  }

  /** An array of numbers of any ≤ 32-bit or float item type (scores, token types). */
  getNumberArray(key: string): readonly number[] | undefined {
    const v = this.getArray(key);
    if (v === undefined) {
      return undefined;
    }
    if (v.itemType === "string" || v.itemType === "bool" || v.itemType === "array" || isBigIntArray(v)) {
      throw wrongType(key, "an array of numbers", v);
    }
    return v.items;
  }
}

function isBigIntArray(v: GgufArrayValue): v is Extract<GgufArrayValue, { itemType: GgufBigIntTypeName }> {
  return v.itemType === "u64" || v.itemType === "i64";
}

function num(type: GgufNumberTypeName) {
  return (value: number): GgufValue => ({ type, value });
}

function big(type: GgufBigIntTypeName) {
  return (value: bigint | number): GgufValue => ({ type, value: BigInt(value) });
}

/**
 * Constructors for typed values, e.g. `gv.u32(4096)`, `gv.string("gpt2")`, `gv.array("string", tokens)`.
 * They do not range-check; the writer does.
 */
export const gv = {
  u8: num("u8"),
  i8: num("i8"),
  u16: num("u16"),
  i16: num("i16"),
  u32: num("u32"),
  i32: num("i32"),
  f32: num("f32"),
  f64: num("f64"),
  u64: big("u64"),
  i64: big("i64"),
  bool: (value: boolean): GgufValue => ({ type: "bool", value }),
  string: (value: string): GgufValue => ({ type: "string", value }),
  /** An array; `items` must match `itemType` (numbers, bigints, booleans, strings or arrays). */
  array<T extends GgufValueTypeName>(itemType: T, items: ArrayItems<T>): GgufArrayValue {
    return { type: "array", itemType, items } as GgufArrayValue;
  },
} as const;

/** The JS element type of an array with the given item type. */
export type ArrayItems<T extends GgufValueTypeName> = T extends GgufNumberTypeName
  ? readonly number[]
  : T extends GgufBigIntTypeName
    ? readonly bigint[]
    : T extends "bool"
      ? readonly boolean[]
      : T extends "string"
        ? readonly string[]
        : readonly GgufArrayValue[];

/**
 * The data alignment a file declares: `general.alignment` (a u32, nonzero multiple of 8, ≤ MAX_ALIGNMENT) or
 * 32 when absent. Anything else is FormatError `bad-alignment`.
 */
export function ggufAlignment(meta: GgufMetadata): number {
  const v = meta.get("general.alignment");
  if (v === undefined) {
    return DEFAULT_ALIGNMENT;
  }
  if (v.type !== "u32") {
    throw new FormatError("bad-alignment", `[gguf] general.alignment must be a u32, got ${v.type}`);
  }
  if (v.value === 0 || v.value % 8 !== 0 || v.value > MAX_ALIGNMENT) {
    throw new FormatError(
      "bad-alignment",
      `[gguf] general.alignment ${v.value} is not a multiple of 8 in [8, ${MAX_ALIGNMENT}]`,
    );
  }
  return v.value;
}
