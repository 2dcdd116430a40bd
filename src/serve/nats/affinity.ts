/**
 * Prefix-aware routing (docs/scale-out.md, "Routing"): a gateway remembers which worker it sent each prompt
 * prefix to, so that a request whose prompt starts like an earlier one (a chat client resends the whole
 * conversation) goes back to the worker whose prompt cache (src/engine/prompt-cache.ts) may still hold that
 * prefix's KV rows. The cache reuses only rows of full prefill steps from position 0, so only prefixes of
 * whole PREFILL_STEP_TOKENS steps are remembered (a hash of each, one per step, up to MAX_AFFINITY_STEPS).
 * It is a hint, kept by each gateway for itself: nothing crosses NATS, and a wrong guess costs a cold prefill.
 */
import { createHash, type Hash } from "node:crypto";
import { PREFILL_STEP_TOKENS } from "../../model/bitnet/forward.js";

/** Most prefixes a gateway remembers per model (least recently used first out). */
export const MAX_AFFINITY_ENTRIES = 4096;
/** Most prefill steps of one prompt that are hashed (longer prompts are matched on their first steps). */
export const MAX_AFFINITY_STEPS = 64;

export class PrefixAffinity {
  /** Prefix hash → worker id, in insertion (recency) order. */
  readonly #workers = new Map<string, string>();

  /** The hashes of a prompt's whole-step prefixes, shortest first. */
  static keys(tokens: readonly number[] | undefined): string[] {
    const steps = Math.min(Math.floor((tokens?.length ?? 0) / PREFILL_STEP_TOKENS), MAX_AFFINITY_STEPS);
    const keys: string[] = [];
    const hash: Hash = createHash("sha256");
    const bytes = new Uint32Array(PREFILL_STEP_TOKENS);
    for (let s = 0; s < steps && tokens !== undefined; s++) {
      for (let i = 0; i < PREFILL_STEP_TOKENS; i++) {
        bytes[i] = tokens[s * PREFILL_STEP_TOKENS + i] ?? 0;
      }
      hash.update(bytes);
      keys.push(hash.copy().digest("base64"));
    }
    return keys;
  }

  /** Notes that `worker` was sent a prompt with these prefix keys. */
  remember(keys: readonly string[], worker: string): void {
    for (const key of keys) {
      this.#workers.delete(key);
      this.#workers.set(key, worker);
    }
    for (const key of this.#workers.keys()) {
      if (this.#workers.size <= MAX_AFFINITY_ENTRIES) {
        break;
      }
      this.#workers.delete(key);
    }
  }

  /** The worker that was sent the longest of these prefixes and that `usable` accepts, if any. */
  find(keys: readonly string[], usable: (worker: string) => boolean): string | undefined {
    for (let i = keys.length - 1; i >= 0; i--) {
      const worker = this.#workers.get(keys[i] ?? "");
      if (worker !== undefined && usable(worker)) {
        return worker;
      }
    }
    return undefined;
  }

  get size(): number {
    return this.#workers.size;
  }
}
