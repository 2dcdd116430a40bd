/**
 * SentencePiece-style BPE (Llama-2, 1bitLLM): spaces become "▁", a "▁" dummy prefix is prepended, characters are
 * merged pairwise by the best score (GGUF) or merge rank (tokenizer.json), and characters left outside the
 * vocabulary fall back to `<0xNN>` byte tokens.
 */
import { FormatError } from "../../core/errors.js";
import { VocabTokenizer, idsOfTypes, type VocabTables, type WithTokenStrings } from "./base.js";
import { mergePieces, type PairRank } from "./merge.js";
import { TokenType } from "./types.js";

/** Where the "▁" dummy prefix goes: every text segment (llama.cpp, legacy HF), the input start only, or nowhere. */
export type SpacePrefix = "always" | "first" | "never";

/** How pairs are ranked: by the score of the merged token (GGUF) or by a merge list (tokenizer.json). */
export type SpmRanking =
  | { readonly kind: "scores"; readonly scores: readonly number[] }
  | { readonly kind: "merges"; readonly merges: readonly string[] };

/** Everything a SentencePiece tokenizer is built from. */
export interface SpmTables extends VocabTables {
  readonly ranking: SpmRanking;
  readonly spacePrefix: SpacePrefix;
  readonly unk: number | undefined;
}

/** As SpmTables, the tokens possibly a lazy list and scores any array-like (a GGUF's typed array). */
export type SpmSource = Omit<WithTokenStrings<SpmTables>, "ranking"> & {
  readonly ranking: Exclude<SpmRanking, { kind: "scores" }> | { readonly kind: "scores"; readonly scores: ArrayLike<number> };
};

const SPACE = "\u2581";
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();

/** SentencePiece BPE tokenizer; see `tokenizerFromGguf` / `tokenizerFromJson` to build one. */
export class SpmTokenizer extends VocabTokenizer {
  readonly kind = "spm" as const;
  readonly preTokenizer = "none";
  readonly #rank: PairRank;
  readonly #spacePrefix: SpacePrefix;
  readonly #unk: number | undefined;
  /** Id of `<0xNN>` by byte, or -1; all 256 present or none used. */
  readonly #byteIds = new Int32Array(256).fill(-1);
  readonly #hasAllBytes: boolean;

  /** Throws FormatError `bad-value` when neither byte tokens nor an unknown token can represent unseen text. */
  constructor(tables: SpmTables | SpmSource) {
    super(tables);
    this.#spacePrefix = tables.spacePrefix;
    this.#unk = tables.unk;
    // Byte tokens by type first: only their texts are read (a lazy list decodes only them).
    for (const id of idsOfTypes(tables.types, [TokenType.byte])) {
      const m = BYTE_TOKEN.exec(tables.tokens.at(id) ?? "");
      if (m !== null) {
        const b = parseInt(m[1] ?? "0", 16);
        if ((this.#byteIds[b] ?? -1) < 0) {
          this.#byteIds[b] = id;
        }
      }
    }
    this.#hasAllBytes = this.#byteIds.every((id) => id >= 0);
    if (!this.#hasAllBytes && this.#unk === undefined) {
      throw new FormatError(
        "bad-value",
        "[tokenizer] SentencePiece vocabulary has neither all 256 byte tokens nor an unknown token",
      );
    }
    this.#rank = this.#makeRank(tables.ranking);
  }

  #makeRank(ranking: SpmSource["ranking"]): PairRank {
    if (ranking.kind === "merges") {
      const ranks = new Map<string, number>();
      ranking.merges.forEach((m, rank) => {
        if (!ranks.has(m)) {
          ranks.set(m, rank);
        }
      });
      return (l, r) => ranks.get(l + " " + r);
    }
    const { scores } = ranking;
    return (l, r) => {
      const id = this.ids.get(l + r);
      if (id === undefined) {
        return undefined;
      }
      const type = this.types[id];
      // Control, unknown and byte tokens are never produced by merging text.
      if (type === TokenType.control || type === TokenType.unknown || type === TokenType.byte) {
        return undefined;
      }
      return -(scores[id] ?? 0);
    };
  }

  protected encodeSegment(segment: string, start: number, out: number[]): void {
    const prefix = this.#spacePrefix === "always" || (this.#spacePrefix === "first" && start === 0);
    const text = (prefix ? SPACE : "") + segment.replaceAll(" ", SPACE);
    for (const piece of mergePieces(Array.from(text), this.#rank)) {
      const id = this.ids.get(piece);
      const type = id === undefined ? undefined : this.types[id];
      if (id !== undefined && type !== TokenType.control && type !== TokenType.unknown && type !== TokenType.byte) {
        out.push(id);
      } else if (this.#hasAllBytes) {
        for (const b of utf8.encode(piece)) {
          out.push(this.#byteIds[b] ?? 0);
        }
      } else {
        for (let i = 0; i < Array.from(piece).length; i++) {
          out.push(this.#unk ?? 0);
        }
      }
    }
  }

  protected computeBytes(id: number): Uint8Array {
    const text = this.tokenAt(id);
    const type = this.types[id];
    if (type === TokenType.byte) {
      const m = BYTE_TOKEN.exec(text);
      if (m !== null) {
        return Uint8Array.of(parseInt(m[1] ?? "0", 16));
      }
    }
    if (type === TokenType.control || type === TokenType.unknown) {
      return utf8.encode(text);
    }
    return utf8.encode(text.replaceAll(SPACE, " "));
  }

  protected override finishDecoded(text: string): string {
    return this.#spacePrefix !== "never" && text.startsWith(" ") ? text.slice(1) : text;
  }
}
