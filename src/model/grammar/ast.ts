/** The parsed form of a grammar, before it is lowered to bytes: what the GBNF parser and the schema compiler share. */
import type { Range } from "./utf8.js";

/** One grammar expression. Characters are Unicode code points; lowering turns them into UTF-8 byte sets. */
export type Expr =
  | { readonly kind: "seq"; readonly items: readonly Expr[] }
  | { readonly kind: "alt"; readonly options: readonly Expr[] }
  /** A character class over code points: `[a-z]`, `[^"\\]`, `.` (negated: the complement). */
  | { readonly kind: "chars"; readonly ranges: readonly Range[]; readonly negated: boolean }
  /** A literal string (`"abc"`), as code points. */
  | { readonly kind: "literal"; readonly codePoints: readonly number[] }
  | { readonly kind: "ref"; readonly name: string; readonly line: number }
  /** `x*` (0, Infinity), `x+` (1, Infinity), `x?` (0, 1), `x{m}`, `x{m,}`, `x{m,n}`. */
  | { readonly kind: "repeat"; readonly item: Expr; readonly min: number; readonly max: number };

/** A parsed grammar: rules in definition order and the start symbol. */
export interface GrammarAst {
  readonly rules: ReadonlyMap<string, Expr>;
  readonly root: string;
}
