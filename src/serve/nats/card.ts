/**
 * The model card: what a gateway needs to serve a model it does not hold (chat prompts, tokenizing, logprob
 * texts, validation), exactly as a local `barbell serve` reads it from the file's header (http/model-info.ts).
 * It is a GGUF file with the model's metadata and no tensors (plus `<arch>.vocab_size` when the file only
 * implies it through its embedding rows). A worker builds it once; a gateway fetches it in chunks, checks its
 * sha256 against the advert, recomputes the tokenizer hash, and keeps it in a private temporary folder, so the
 * HTTP layer's prompt tokenizer (and its worker thread) open it like any model file.
 */
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { openGguf, parseGguf, writeGguf, type GgufMetadata, type GgufValue } from "../../formats/gguf/index.js";
import { ServeError } from "../errors.js";
import { readModelInfo, type ModelInfo } from "../http/model-info.js";
import { MAX_CARD_BYTES } from "./wire.js";

export interface ModelCard {
  readonly bytes: Uint8Array;
  /** sha256 (hex) of `bytes`. */
  readonly sha256: string;
  /** sha256 (hex) of a GGUF holding only the `tokenizer.*` keys: equal for workers that tokenize alike. */
  readonly tokenizer: string;
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** The tokenizer hash of metadata (see {@link ModelCard.tokenizer}). */
export function tokenizerHash(metadata: GgufMetadata): string {
  const keys = [...metadata.entries()].filter(([key]) => key.startsWith("tokenizer."));
  return sha256(writeGguf({ metadata: keys }));
}

/** Builds the card of a GGUF model file (a Hugging Face folder is refused: convert it first). */
export async function buildCard(file: string): Promise<ModelCard> {
  if ((await fs.stat(file)).isDirectory()) {
    throw new ServeError("bad-config", `[nats] ${file} is a folder; barbell worker serves GGUF files (barbell convert makes one)`);
  }
  await using gguf = await openGguf(file);
  const entries: [string, GgufValue][] = [...gguf.metadata.entries()];
  const arch = gguf.metadata.getString("general.architecture") ?? "";
  const rows = gguf.tensor("token_embd.weight")?.dims[1];
  if (!gguf.metadata.has(`${arch}.vocab_size`) && rows !== undefined) {
    entries.push([`${arch}.vocab_size`, { type: "u32", value: rows }]);
  }
  const bytes = writeGguf({ metadata: entries });
  if (bytes.length > MAX_CARD_BYTES) {
    throw new ServeError("bad-config", `[nats] the model's metadata is ${bytes.length} bytes, over MAX_CARD_BYTES (${MAX_CARD_BYTES})`);
  }
  return { bytes, sha256: sha256(bytes), tokenizer: tokenizerHash(gguf.metadata) };
}

/** A checked card on disk and what the HTTP layer reads from it. */
export interface StoredCard {
  readonly path: string;
  readonly info: ModelInfo;
}

/** The gateway's cards, by sha256, in one private temporary folder (removed by `close`). */
export class CardStore {
  #dir: string | undefined;
  readonly #cards = new Map<string, Promise<StoredCard>>();

  /**
   * Checks `bytes` against the advertised digests and stores them; the ModelInfo uses `context` (the worker's).
   * A ServeError "bad-request" names what does not match (the card is then forgotten, so a later advert retries).
   */
  store(bytes: Uint8Array, expected: { readonly sha256: string; readonly tokenizer: string; readonly context: number }): Promise<StoredCard> {
    const key = `${expected.sha256}/${expected.context}`;
    let stored = this.#cards.get(key);
    if (stored === undefined) {
      stored = this.#store(bytes, expected);
      this.#cards.set(key, stored);
      stored.catch(() => this.#cards.delete(key));
    }
    return stored;
  }

  /** A card already stored (or being stored) under these digests. */
  find(sha: string, context: number): Promise<StoredCard> | undefined {
    return this.#cards.get(`${sha}/${context}`);
  }

  async #store(bytes: Uint8Array, expected: { readonly sha256: string; readonly tokenizer: string; readonly context: number }): Promise<StoredCard> {
    if (sha256(bytes) !== expected.sha256) {
      throw new ServeError("bad-request", "[nats] the model card does not match the sha256 its worker advertised");
    }
    let hash: string;
    try {
      const header = parseGguf(bytes);
      if (header.tensors.length > 0) {
        throw new ServeError("bad-request", "[nats] a model card must hold no tensors");
      }
      hash = tokenizerHash(header.metadata);
    } catch (error) {
      throw new ServeError("bad-request", `[nats] the model card is not a valid GGUF header: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (hash !== expected.tokenizer) {
      throw new ServeError("bad-request", "[nats] the model card's tokenizer does not match the tokenizer hash its worker advertised");
    }
    this.#dir ??= await fs.mkdtemp(path.join(os.tmpdir(), "barbell-gateway-"));
    const file = path.join(this.#dir, `${expected.sha256}.gguf`);
    await fs.writeFile(file, bytes, { mode: 0o600 });
    return { path: file, info: await readModelInfo(file, expected.context) };
  }

  async close(): Promise<void> {
    const dir = this.#dir;
    this.#dir = undefined;
    this.#cards.clear();
    if (dir !== undefined) {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }
}
