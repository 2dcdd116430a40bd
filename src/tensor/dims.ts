/**
 * Dimension names: the "units of measure" of barbell's tensors.
 *
 * A tensor's type carries the names of its dimensions as a tuple of string literals, e.g.
 * `["seq", "embed"]`. Sizes stay runtime values: the type system checks which dimension is which,
 * the runtime checks how big each one is. Any string literal is a valid name; these are the ones
 * barbell's models use, so code that shares them can be composed (llm.c's B/T/C/V legend):
 */
export const DIM_VOCABULARY = {
  batch: "independent sequences processed together",
  seq: "positions of the tokens being processed now",
  ctx: "positions held in the KV cache (past + present)",
  embed: "model width (hidden size)",
  head: "query attention heads",
  kvHead: "key/value attention heads (grouped-query attention)",
  headDim: "width of one attention head",
  ffn: "feed-forward inner width",
  vocab: "vocabulary entries",
  layer: "transformer blocks",
} as const;

/** A conventional dimension name; see DIM_VOCABULARY. */
export type KnownDim = keyof typeof DIM_VOCABULARY;

/** The names of a tensor's dimensions, outermost first. */
export type Dims = readonly string[];

// ---- type-level helpers (no runtime code) ----

export type Last<D extends Dims> = D extends readonly [...Dims, infer L extends string] ? L : never;
export type Init<D extends Dims> = D extends readonly [...infer I extends Dims, string] ? I : never;

/** True when name N occurs in D. */
export type Has<D extends Dims, N extends string> = N extends D[number] ? true : false;

/** D with every occurrence of From replaced by To. */
export type Replace<D extends Dims, From extends string, To extends Dims> = D extends readonly [
  infer H extends string,
  ...infer T extends Dims,
]
  ? H extends From
    ? [...To, ...Replace<T, From, To>]
    : [H, ...Replace<T, From, To>]
  : [];

/** D with the adjacent pair [A, B] replaced by M, or never when A is not directly followed by B. */
export type MergePair<D extends Dims, A extends string, B extends string, M extends string> = D extends readonly [
  infer H extends string,
  ...infer T extends Dims,
]
  ? H extends A
    ? T extends readonly [B, ...infer R extends Dims]
      ? [M, ...R]
      : never
    : MergePair<T, A, B, M> extends infer Rest extends Dims
      ? [Rest] extends [never]
        ? never
        : [H, ...Rest]
      : never
  : never;

/** The first name that occurs twice in D, or never. */
export type Duplicate<D extends Dims> = D extends readonly [infer H extends string, ...infer T extends Dims]
  ? H extends T[number]
    ? H
    : Duplicate<T>
  : never;

/** The first name of B that is not in A, or never. */
export type Missing<A extends Dims, B extends Dims> = B extends readonly [infer H extends string, ...infer T extends Dims]
  ? H extends A[number]
    ? Missing<A, T>
    : H
  : never;

/** True when P is a permutation of D (same length, same names, no repeats). */
export type IsPermutation<D extends Dims, P extends Dims> = P["length"] extends D["length"]
  ? [Missing<D, P>] extends [never]
    ? [Duplicate<P>] extends [never]
      ? true
      : false
    : false
  : false;

/** True when every name of B occurs in A in the same relative order. */
export type IsOrderedSubset<A extends Dims, B extends Dims> = B extends readonly [
  infer H extends string,
  ...infer T extends Dims,
]
  ? A extends readonly [infer AH extends string, ...infer AT extends Dims]
    ? AH extends H
      ? IsOrderedSubset<AT, T>
      : IsOrderedSubset<AT, B>
    : false
  : true;

/** Quote a name list for an error message: ["seq","embed"] → "[seq, embed]". */
export type Show<D extends Dims> = `[${Join<D>}]`;
type Join<D extends Dims> = D extends readonly [infer H extends string]
  ? H
  : D extends readonly [infer H extends string, ...infer T extends Dims]
    ? `${H}, ${Join<T>}`
    : "";

/** A runtime shape paired with names: one size per name. */
export type ShapeOf<D extends Dims> = { readonly [K in keyof D]: number };
