/**
 * Sampling options, their neutral defaults and their validation. The defaults switch every filter off
 * (temperature 1, no top-k/top-p/min-p, no repetition penalty), so omitted options never change the distribution.
 */
import { ValueError } from "../../core/errors.js";

/** The most alternatives `topLogprobs` may ask for (the OpenAI API's limit). */
export const MAX_TOP_LOGPROBS = 20;

/** How the next token is chosen from a row of logits. Every field is optional; see {@link DEFAULT_SAMPLING}. */
export interface SamplingOptions {
  /** Softmax temperature, ≥ 0. 0 means greedy: the highest (penalized) logit, ties to the lowest token id. */
  temperature?: number;
  /** Keep only the k highest logits; an integer ≥ 0, 0 = off. */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of most likely tokens whose mass is ≥ topP; in (0, 1], 1 = off. */
  topP?: number;
  /** Drop tokens whose probability is below minP × the top token's probability; in [0, 1], 0 = off. */
  minP?: number;
  /**
   * Repetition penalty (llama.cpp style), > 0, 1 = off: a recent token's positive logit is divided by it,
   * a negative one multiplied by it.
   */
  repetitionPenalty?: number;
  /** How many of the most recent history tokens the penalty looks at: an integer ≥ 0 or Infinity (all). */
  repetitionWindow?: number;
  /** Seed of the random stream: a non-negative safe integer. Omitted: a seed drawn from `Math.random`. */
  seed?: number;
  /** How many most likely alternatives to report with each token, 0 to {@link MAX_TOP_LOGPROBS}; 0 = none. */
  topLogprobs?: number;
  /**
   * Report each token's log-probability (default true). False skips the softmax normalizer over the whole
   * vocabulary (one exp per logit per token) when no alternatives are asked for either; `logprob` is then NaN.
   */
  logprobs?: boolean;
}

/** Options with every field filled in. */
export type ResolvedSamplingOptions = Required<SamplingOptions>;

/** The defaults for all but the seed: plain softmax sampling at temperature 1; penalty window 64 (llama.cpp's). */
export const DEFAULT_SAMPLING: Readonly<Omit<ResolvedSamplingOptions, "seed">> = Object.freeze({
  temperature: 1,
  topK: 0,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
  repetitionWindow: 64,
  topLogprobs: 0,
  logprobs: true,
});

function reject(name: string, rule: string, value: unknown): never {
  const shown = typeof value === "number" ? String(value) : JSON.stringify(value) ?? String(value);
  throw new ValueError(
    "out-of-range",
    `[sampling] ${name} must be ${rule}, got ${shown}`,
    undefined,
    typeof value === "number" ? value : undefined,
  );
}

function isNumber(value: unknown): value is number {
  return typeof value === "number" && !Number.isNaN(value);
}

/**
 * Fills in defaults and checks every option's range.
 *
 * @throws ValueError code "out-of-range" naming the first bad option and its value.
 */
export function resolveSamplingOptions(options: SamplingOptions = {}): ResolvedSamplingOptions {
  const o = { ...DEFAULT_SAMPLING, ...stripUndefined(options) };
  if (!isNumber(o.temperature) || !Number.isFinite(o.temperature) || o.temperature < 0) {
    reject("temperature", "a finite number ≥ 0", o.temperature);
  }
  if (!Number.isSafeInteger(o.topK) || o.topK < 0) {
    reject("topK", "an integer ≥ 0", o.topK);
  }
  if (!isNumber(o.topP) || !(o.topP > 0 && o.topP <= 1)) {
    reject("topP", "in (0, 1]", o.topP);
  }
  if (!isNumber(o.minP) || !(o.minP >= 0 && o.minP <= 1)) {
    reject("minP", "in [0, 1]", o.minP);
  }
  if (!isNumber(o.repetitionPenalty) || !Number.isFinite(o.repetitionPenalty) || o.repetitionPenalty <= 0) {
    reject("repetitionPenalty", "a finite number > 0", o.repetitionPenalty);
  }
  const window = o.repetitionWindow;
  if (!(window === Number.POSITIVE_INFINITY || (Number.isSafeInteger(window) && window >= 0))) {
    reject("repetitionWindow", "an integer ≥ 0 or Infinity", window);
  }
  if (typeof o.logprobs !== "boolean") {
    reject("logprobs", "true or false", o.logprobs);
  }
  if (!Number.isSafeInteger(o.topLogprobs) || o.topLogprobs < 0 || o.topLogprobs > MAX_TOP_LOGPROBS) {
    reject("topLogprobs", `an integer in [0, ${MAX_TOP_LOGPROBS}]`, o.topLogprobs);
  }
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
  if (!Number.isSafeInteger(seed) || seed < 0) {
    reject("seed", "a non-negative safe integer", seed);
  }
  return { ...o, seed };
}

/** Drops keys whose value is undefined so that spreading over the defaults keeps the default. */
function stripUndefined(options: SamplingOptions): SamplingOptions {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) {
      out[key] = value;
    }
  }
  return out as SamplingOptions;
}
