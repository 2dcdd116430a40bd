/** Token sampling, seeded random numbers and streaming stop strings. */
export { createRng } from "./rng.js";
export type { Rng } from "./rng.js";
export { DEFAULT_SAMPLING, MAX_TOP_LOGPROBS, resolveSamplingOptions } from "./options.js";
export type { ResolvedSamplingOptions, SamplingOptions } from "./options.js";
export { createSampler, topLogprobs } from "./sampler.js";
export type { SampleResult, Sampler, TokenLogprob } from "./sampler.js";
export { createStopMatcher, MAX_STOP_LENGTH, MAX_STOP_STRINGS } from "./stop.js";
export type { StopMatcher, StopResult } from "./stop.js";
