/**
 * Token sampling from a row of logits.
 *
 * Order of operations (llama.cpp's default chain):
 *   1. repetition penalty over the distinct tokens among the last `repetitionWindow` history entries;
 *   2. top-k; 3. top-p (on the softmax of the survivors at temperature 1); 4. min-p (relative to the top token);
 *   5. temperature; 6. a draw from the seeded stream.
 * With temperature 0 steps 2–6 are replaced by argmax over the penalized logits (ties to the lowest id), which is
 * what any filter chain followed by a zero temperature would pick, since every filter keeps the top token.
 *
 * All arithmetic after reading the logits is float64. -Infinity logits are never sampled; NaN or +Infinity logits
 * are errors. Every accepted option value is handled (subnormal or huge penalties and temperatures included): a
 * penalized logit is clamped to ±Number.MAX_VALUE, so at least one candidate survives and the token returned is
 * always an id in [0, vocab) (test/sampling/sampler-total.test.ts). Reported log-probabilities are those of the raw logits (no penalty, filter or temperature), which is
 * what the model itself assigns: the same convention as vLLM's and llama.cpp's default logprobs.
 */
import { ValueError } from "../../core/errors.js";
import { resolveSamplingOptions } from "./options.js";
import type { ResolvedSamplingOptions, SamplingOptions } from "./options.js";
import { createRng } from "./rng.js";
import { argmax, logNormalizer, sortByValue, topIndices } from "./select.js";

/** A token and its log-probability under the raw logits. */
export interface TokenLogprob {
  /** Token id. */
  token: number;
  /** Natural-log probability under the softmax of the raw logits. */
  logprob: number;
}

/** The outcome of one draw. */
export interface SampleResult {
  /** The chosen token id. */
  token: number;
  /** Its log-probability under the raw logits. */
  logprob: number;
  /** The `topLogprobs` most likely tokens of the raw logits, best first (ties to the lower id); only when asked for. */
  topLogprobs?: TokenLogprob[];
}

/** A stateful sampler: its random stream advances by one draw per non-greedy `sample` call. */
export interface Sampler {
  /** The options in force, defaults filled in (including the seed actually used). */
  readonly options: Readonly<ResolvedSamplingOptions>;
  /**
   * Chooses the next token. `history` is the token sequence so far (prompt and generated), oldest first; only its
   * last `repetitionWindow` entries are read, and only when a repetition penalty is set.
   *
   * @throws ValueError code "non-finite" for a NaN or +Infinity logit, or when every logit is -Infinity;
   *   code "out-of-range" for empty logits or a history token outside [0, logits.length).
   */
  sample(logits: Float32Array, history: readonly number[]): SampleResult;
}

/**
 * The error for a NaN or +Infinity logit. Built out of line: a `new ValueError(\`…${v}\`)` inside the hot loops
 * below made V8 run them ~10× slower (measured on Node 20), even though it never executes.
 */
function nonFinite(i: number, v: number): ValueError {
  return new ValueError("non-finite", `[sampling] logit ${i} is ${v}`, i, v);
}

/** Checks the logits and copies them into `work` (float64). */
function loadLogits(logits: Float32Array, work: Float64Array): void {
  if (logits.length === 0) {
    throw new ValueError("out-of-range", "[sampling] logits must not be empty");
  }
  let finite = 0;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] ?? Number.NaN;
    if (Number.isNaN(v) || v === Number.POSITIVE_INFINITY) {
      throw nonFinite(i, v);
    }
    if (v !== Number.NEGATIVE_INFINITY) {
      finite++;
    }
    work[i] = v;
  }
  if (finite === 0) {
    throw new ValueError("non-finite", "[sampling] every logit is -Infinity; there is no token to sample");
  }
}

/** Applies the llama.cpp repetition penalty in place: once per distinct token in the window. */
function penalize(work: Float64Array, vocab: number, history: readonly number[], o: ResolvedSamplingOptions): void {
  if (o.repetitionPenalty === 1 || o.repetitionWindow === 0) {
    return;
  }
  const start = Math.max(0, history.length - o.repetitionWindow);
  const seen = new Set<number>();
  for (let i = start; i < history.length; i++) {
    const token = history[i];
    if (token === undefined || !Number.isInteger(token) || token < 0 || token >= vocab) {
      throw new ValueError(
        "out-of-range",
        `[sampling] history[${i}] = ${String(token)} is not a token id in [0, ${vocab})`,
        i,
        token,
      );
    }
    if (seen.has(token)) {
      continue;
    }
    seen.add(token);
    work[token] = penalized(work[token] ?? 0, o.repetitionPenalty);
  }
}

/**
 * One logit under the penalty, kept finite: a subnormal penalty divides a positive logit into +Infinity and a huge
 * one multiplies a negative logit into -Infinity, so the result is clamped to ±Number.MAX_VALUE (the token stays
 * the most, or least, likely one, ties to the lowest id). An infinite result would poison the softmax (∞ − ∞ = NaN)
 * or remove every candidate. A -Infinity logit stays -Infinity: it was never a candidate.
 */
function penalized(v: number, penalty: number): number {
  if (v > 0) {
    return Math.min(v / penalty, Number.MAX_VALUE);
  }
  return v === Number.NEGATIVE_INFINITY ? v : Math.max(v * penalty, -Number.MAX_VALUE);
}

/** Indices of the logits that can be sampled (not -Infinity), in id order; in `out` when given (≥ vocab long). */
function finiteCandidates(work: Float64Array, vocab: number, out = new Int32Array(vocab)): Int32Array {
  let n = 0;
  for (let i = 0; i < vocab; i++) {
    if ((work[i] ?? Number.NEGATIVE_INFINITY) !== Number.NEGATIVE_INFINITY) {
      out[n++] = i;
    }
  }
  return out.subarray(0, n);
}

/** argmax over every finite value (ties to the lowest id), without building a candidate list. */
function greedy(work: Float64Array): number {
  let best = -1;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < work.length; i++) {
    const v = work[i] ?? Number.NEGATIVE_INFINITY;
    if (v > bestValue) {
      best = i;
      bestValue = v;
    }
  }
  return best;
}

/** Candidate counts tried, in turn, when top-p must rank an unsorted list: most nuclei fit in the first. */
const NUCLEUS_STEPS = [256, 4096];

/**
 * Top-p: the shortest best-first prefix of the candidates whose softmax mass (temperature 1) reaches p.
 * Unsorted candidates are ranked partially (the best 256, then 4096) and fully only when the nucleus is larger,
 * because a full sort of a 128k vocabulary costs several times a partial one.
 */
function nucleus(work: Float64Array, candidates: Int32Array, sorted: boolean, p: number): Int32Array {
  const max = work[argmax(work, candidates)] ?? 0;
  let total = 0;
  for (const index of candidates) {
    total += Math.exp((work[index] ?? 0) - max);
  }
  const target = p * total;
  const steps = sorted ? [] : NUCLEUS_STEPS.filter((k) => k < candidates.length);
  for (const k of [...steps, candidates.length]) {
    const partial = k < candidates.length;
    const ranked = sorted ? candidates : partial ? topIndices(work, candidates, k) : sortByValue(work, candidates);
    let cumulative = 0;
    for (let n = 0; n < ranked.length; n++) {
      cumulative += Math.exp((work[ranked[n] ?? 0] ?? 0) - max);
      if (cumulative >= target) {
        return ranked.subarray(0, n + 1);
      }
    }
    if (!partial) {
      return ranked;
    }
  }
  return candidates;
}

/** Min-p: keeps candidates whose probability is at least p times the top one's (a ratio, so no normalization). */
function minProbability(work: Float64Array, candidates: Int32Array, p: number): Int32Array {
  const top = work[argmax(work, candidates)] ?? 0;
  return candidates.filter((index) => Math.exp((work[index] ?? 0) - top) >= p);
}

/** Draws one candidate with probability ∝ exp(logit / temperature); `weights` is scratch (≥ candidates long). */
function draw(work: Float64Array, candidates: Int32Array, temperature: number, u: number, weights: Float64Array): number {
  const top = work[argmax(work, candidates)] ?? 0;
  let total = 0;
  for (let n = 0; n < candidates.length; n++) {
    const w = Math.exp(((work[candidates[n] ?? 0] ?? 0) - top) / temperature);
    weights[n] = w;
    total += w;
  }
  const target = u * total;
  let cumulative = 0;
  let last = -1;
  for (let n = 0; n < candidates.length; n++) {
    const w = weights[n] ?? 0;
    if (w > 0) {
      last = candidates[n] ?? 0;
      cumulative += w;
      if (target < cumulative) {
        return last;
      }
    }
  }
  // Rounding can leave the target just past the final sum; the last token with weight takes it.
  return last;
}

/** Log-probabilities of the raw logits for the chosen token and, if asked, the top alternatives. */
function report(logits: Float32Array, token: number, k: number, logprobs: boolean, knownMax?: number): SampleResult {
  if (!logprobs && k === 0) {
    return { token, logprob: Number.NaN }; // nobody reads it: skip the pass of exp over the vocabulary
  }
  const { max, logSum } = logNormalizer(logits, knownMax);
  const logprobOf = (t: number): number => (logits[t] ?? 0) - max - logSum;
  const logprob = logprobOf(token);
  if (k === 0) {
    return { token, logprob };
  }
  // Tokens at -Infinity have probability 0 and are never offered as alternatives.
  const possible = finiteCandidates(Float64Array.from(logits), logits.length);
  const top = topIndices(logits, possible, k);
  return { token, logprob, topLogprobs: Array.from(top, (t) => ({ token: t, logprob: logprobOf(t) })) };
}

/**
 * Greedy decoding without a penalty, in two passes over the raw logits instead of five: one that checks them
 * and finds the best token (ties to the lowest id), one for the normalizer. Same results as the general path.
 */
function greedyReport(logits: Float32Array, k: number, logprobs: boolean): SampleResult {
  if (logits.length === 0) {
    throw new ValueError("out-of-range", "[sampling] logits must not be empty");
  }
  let best = -1;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] as number;
    if (v > max) {
      if (v === Number.POSITIVE_INFINITY) {
        throw nonFinite(i, v);
      }
      best = i;
      max = v;
    } else if (!(v <= max)) {
      throw nonFinite(i, v); // NaN
    }
  }
  if (best < 0) {
    throw new ValueError("non-finite", "[sampling] every logit is -Infinity; there is no token to sample");
  }
  return report(logits, best, k, logprobs, max);
}

/**
 * Creates a sampler with validated options (see the module comment for the order of operations).
 *
 * @throws ValueError code "out-of-range" naming the first option outside its range.
 */
export function createSampler(options: SamplingOptions = {}): Sampler {
  const o = resolveSamplingOptions(options);
  const rng = createRng(o.seed);
  // Vocabulary-sized scratch kept across calls (one sampler per sequence, a call per token): fresh arrays per
  // token cost their page faults and zeroing every time (~2 MB a token on a 128k vocabulary).
  let work = new Float64Array(0);
  let ids = new Int32Array(0);
  let weights = new Float64Array(0);
  return {
    options: Object.freeze({ ...o }),
    sample(logits: Float32Array, history: readonly number[]): SampleResult {
      const vocab = logits.length;
      if (o.temperature === 0 && (o.repetitionPenalty === 1 || o.repetitionWindow === 0)) {
        return greedyReport(logits, o.topLogprobs, o.logprobs);
      }
      if (work.length !== vocab) {
        work = new Float64Array(vocab);
        ids = new Int32Array(vocab);
        weights = new Float64Array(vocab);
      }
      loadLogits(logits, work);
      penalize(work, vocab, history, o);
      if (o.temperature === 0) {
        return report(logits, greedy(work), o.topLogprobs, o.logprobs);
      }
      let candidates = finiteCandidates(work, vocab, ids);
      let sorted = false;
      if (o.topK > 0 && o.topK < candidates.length) {
        candidates = topIndices(work, candidates, o.topK);
        sorted = true;
      }
      if (o.topP < 1) {
        candidates = nucleus(work, candidates, sorted, o.topP);
      }
      if (o.minP > 0) {
        candidates = minProbability(work, candidates, o.minP);
      }
      return report(logits, draw(work, candidates, o.temperature, rng.next(), weights), o.topLogprobs, o.logprobs);
    },
  };
}

/**
 * The `k` most likely tokens of a row of logits with their log-probabilities, best first (ties to the lower id).
 *
 * @throws ValueError code "out-of-range" when k is not an integer in [0, MAX_TOP_LOGPROBS];
 *   code "non-finite" for NaN or +Infinity logits.
 */
export function topLogprobs(logits: Float32Array, k: number): TokenLogprob[] {
  const o = resolveSamplingOptions({ topLogprobs: k, seed: 0 });
  loadLogits(logits, new Float64Array(logits.length));
  if (o.topLogprobs === 0) {
    return [];
  }
  return report(logits, 0, o.topLogprobs, true).topLogprobs ?? [];
}
