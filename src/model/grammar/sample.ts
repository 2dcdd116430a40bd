/**
 * The sampler side of constrained decoding: a token mask applied to a row of logits before the ordinary
 * sampler runs (llama.cpp applies its grammar the same way, first in the chain). Masked tokens become
 * −Infinity, which the sampler never draws; temperature, top-k/p and min-p then act on the allowed tokens only,
 * and reported log-probabilities are those of the masked row.
 */
import type { Sampler, SampleResult } from "../sampling/sampler.js";
import { GrammarError } from "./errors.js";
import type { GrammarMatcher, MaskOptions } from "./matcher.js";

/**
 * Sets every logit whose token is not in the mask to −Infinity, in place. Logits beyond the mask (padding rows
 * of an embedding larger than the vocabulary) are masked too. Returns how many tokens remain allowed.
 */
export function applyTokenMask(logits: Float32Array, mask: Uint32Array): number {
  let allowed = 0;
  const n = logits.length;
  for (let w = 0; w * 32 < n; w++) {
    const word = w < mask.length ? (mask[w] ?? 0) : 0;
    const base = w * 32;
    const end = Math.min(32, n - base);
    if (word === 0xffffffff && end === 32) {
      allowed += 32;
      continue;
    }
    for (let b = 0; b < end; b++) {
      if (((word >>> b) & 1) === 0) {
        logits[base + b] = Number.NEGATIVE_INFINITY;
      } else {
        allowed++;
      }
    }
  }
  return allowed;
}

/** Reusable scratch for `sampleConstrained`, one per generation. */
export interface ConstrainedScratch {
  mask?: Uint32Array;
}

/**
 * One constrained step: masks `logits` (in place) with the matcher's allowed tokens, samples, and advances the
 * matcher by the chosen token. Pass `remainingTokens` (this token included) to make the grammar finish within
 * the generation's budget (see MaskOptions).
 *
 * @throws GrammarError "rejected" when the grammar allows no token here (it finished: the caller should stop on
 *   `matcher.isFinished()` first).
 */
export function sampleConstrained(
  sampler: Sampler,
  logits: Float32Array,
  history: readonly number[],
  matcher: GrammarMatcher,
  options: MaskOptions & { scratch?: ConstrainedScratch } = {},
): SampleResult {
  const scratch = options.scratch ?? {};
  if (scratch.mask === undefined || scratch.mask.length !== matcher.maskWords) {
    scratch.mask = new Uint32Array(matcher.maskWords);
  }
  matcher.mask(scratch.mask, options);
  if (applyTokenMask(logits, scratch.mask) === 0) {
    throw new GrammarError("rejected", "[grammar] the grammar allows no token here");
  }
  const pick = sampler.sample(logits, history);
  matcher.accept(pick.token);
  return pick;
}
