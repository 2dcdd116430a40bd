/**
 * The one typed request of the serving path (docs/architecture.md, "From route to kernel"). A request is checked
 * once, at its edge, and every layer after that takes the {@link CheckedRequest} as it is:
 *
 * - HTTP and batch lines: `validate.ts` checks the body and `preparePrompt` (http/generate.ts) tokenizes it and
 *   fits it to the context; {@link edgeRequest} then makes the checked request from those fields (no second check).
 * - Code that sends the model actor a {@link ModelRequest} (library users of `barbell/serve`), and requests decoded
 *   from a NATS frame (hostile input: the frame's codec bounds sizes, this bounds values): {@link checkRequest}.
 *
 * A checked request is frozen and recorded here, so the model actor, the cascade router and the NATS gateway
 * recognise one made in this process and check anything else (a copy, a plain object) with `checkRequest`.
 * What only the loaded model can tell — the prompt's tokens under its tokenizer, ids inside its vocabulary,
 * prompt + budget inside its context, a grammar compiled against its tokenizer — is checked by the model host
 * (host.ts), because the model that runs a request is not always the one its edge read (another rung after
 * `expandCapability`, a NATS worker's own file, a code caller that read none).
 */
import { MAX_GRAMMAR_LENGTH } from "../model/grammar/index.js";
import { MAX_TOP_LOGPROBS, resolveSamplingOptions, type SamplingOptions } from "../model/sampling/index.js";
import type { ModelRequest, WireRequest } from "./protocol.js";

declare const CHECKED: unique symbol;
/** A request whose fields were checked at its edge (made only by {@link checkRequest} and {@link edgeRequest}). */
export type CheckedRequest = WireRequest & { readonly [CHECKED]: true };

const checked = new WeakSet<object>();
let requestCounter = 0;

function trust(request: WireRequest): CheckedRequest {
  checked.add(Object.freeze(request));
  return request as CheckedRequest;
}

/** Whether `request` is a checked request made in this process. */
export function isChecked(request: ModelRequest | CheckedRequest): request is CheckedRequest {
  return typeof request === "object" && request !== null && checked.has(request);
}

function problemOf(r: ModelRequest): string | undefined {
  const uint = (name: string, v: unknown): string | undefined =>
    v === undefined || (Number.isSafeInteger(v) && (v as number) >= 0) ? undefined : `[model] ${name} must be an integer >= 0, got ${String(v)}`;
  const num = (name: string, v: unknown): string | undefined =>
    v === undefined || (typeof v === "number" && Number.isFinite(v)) ? undefined : `[model] ${name} must be a finite number, got ${String(v)}`;
  const sources = [r.prompt !== undefined, r.tokens !== undefined, r.input !== undefined].filter(Boolean).length;
  const problem =
    uint("maxTokens", r.maxTokens) ??
    uint("topK", r.topK) ??
    uint("seed", r.seed) ??
    uint("topLogprobs", r.topLogprobs) ??
    num("temperature", r.temperature) ??
    num("topP", r.topP) ??
    num("minP", r.minP) ??
    num("repetitionPenalty", r.repetitionPenalty) ??
    (sources !== 1 ? "[model] a request needs exactly one of prompt, tokens or input" : undefined) ??
    (r.prompt !== undefined && typeof r.prompt !== "string" ? "[model] prompt must be a string" : undefined) ??
    (r.tokens !== undefined && !(Array.isArray(r.tokens) && r.tokens.every((x) => Number.isSafeInteger(x) && x >= 0))
      ? "[model] tokens must be non-negative integers"
      : undefined) ??
    (r.tokens !== undefined && r.tokens.length === 0 ? "[model] the prompt has no tokens" : undefined) ??
    (r.input !== undefined && (r.input.dtype !== "i32" || r.input.dims.length !== 1)
      ? `[model] input must be an i32 tensor [seq] of token ids, got ${r.input.dtype} of rank ${r.input.dims.length}`
      : undefined) ??
    (r.maxTokens !== undefined && r.maxTokens < 1 ? `[model] maxTokens must be at least 1, got ${r.maxTokens}` : undefined) ??
    ((r.topLogprobs ?? 0) > MAX_TOP_LOGPROBS ? `[model] topLogprobs must be at most ${MAX_TOP_LOGPROBS}, got ${r.topLogprobs}` : undefined) ??
    (r.stop !== undefined && !(Array.isArray(r.stop) && r.stop.every((s) => typeof s === "string")) ? "[model] stop must be strings" : undefined) ??
    (r.logprobs !== undefined && typeof r.logprobs !== "boolean" ? "[model] logprobs must be true or false" : undefined) ??
    (r.grammar !== undefined && !(typeof r.grammar === "string" && r.grammar.length <= MAX_GRAMMAR_LENGTH)
      ? `[model] grammar must be GBNF text of at most ${MAX_GRAMMAR_LENGTH} characters`
      : undefined) ??
    (r.grammar !== undefined && (r.stop?.length ?? 0) > 0 ? "[model] stop strings cannot be used with a grammar" : undefined);
  if (problem !== undefined) {
    return problem;
  }
  const sampling: SamplingOptions = { seed: r.seed ?? 0 };
  for (const key of ["temperature", "topK", "topP", "minP", "repetitionPenalty"] as const) {
    const v = r[key];
    if (v !== undefined) {
      sampling[key] = v;
    }
  }
  try {
    resolveSamplingOptions(sampling);
  } catch (error) {
    return `[model] ${error instanceof Error ? error.message : String(error)}`;
  }
  return undefined;
}

/**
 * Checks a request given by code or decoded from a frame (every field's type and range, one prompt source, a
 * grammar without stop strings) and makes it the checked request; a checked request is returned as it is.
 * Returns a message saying what is wrong instead (the model actor answers it with an error item `bad-request`).
 * `maxTokens` absent becomes 0 on the wire: the model host gives it the default, min(DEFAULT_MAX_TOKENS, room left).
 */
export function checkRequest(r: ModelRequest | CheckedRequest): CheckedRequest | string {
  if (typeof r !== "object" || r === null) {
    return "[model] a request must be an object";
  }
  if (isChecked(r)) {
    return r;
  }
  const problem = problemOf(r as ModelRequest);
  if (problem !== undefined) {
    return problem;
  }
  const m = r as ModelRequest;
  return trust({
    id: m.id ?? `req-${++requestCounter}`,
    prompt: m.prompt,
    tokens: m.tokens,
    input: m.input,
    allLogits: m.allLogits === true,
    maxTokens: m.maxTokens ?? 0,
    temperature: m.temperature,
    topK: m.topK,
    topP: m.topP,
    minP: m.minP,
    repetitionPenalty: m.repetitionPenalty,
    seed: m.seed,
    stop: m.stop ?? [],
    topLogprobs: m.topLogprobs ?? 0,
    confidence: m.confidence === true,
    logprobs: m.logprobs !== false,
    grammar: m.grammar,
  });
}

/**
 * Checks a request decoded from a frame (a NATS `generate`: hostile input) as {@link checkRequest} checks one from
 * code; its `maxTokens` 0 is the wire's "not given".
 */
export function checkWireRequest(w: WireRequest): CheckedRequest | string {
  if (typeof w !== "object" || w === null) {
    return "[model] a request must be an object";
  }
  // Every field of a wire request is one of a ModelRequest's, present or undefined (read as absent by the checks).
  const given = w as ModelRequest;
  const { maxTokens: _notGiven, ...rest } = given;
  return checkRequest(w.maxTokens === 0 ? rest : given);
}

/** What an edge that checked every field itself gives {@link edgeRequest}: the request's fields but its id. */
export type EdgeFields = Omit<WireRequest, "id" | "prompt" | "input" | "allLogits" | "confidence">;

/**
 * The checked request of an edge that validated every field itself (validate.ts and preparePrompt: token ids of
 * the model's vocabulary, a budget of 1..room, sampling in range, a grammar without stop strings). No check here.
 */
export function edgeRequest(fields: EdgeFields): CheckedRequest {
  return trust({ ...fields, id: `req-${++requestCounter}`, prompt: undefined, input: undefined, allLogits: false, confidence: false });
}

/** The same checked request, asking for each token's entropy (the cascade router's rungs). */
export function withConfidence(r: CheckedRequest): CheckedRequest {
  return r.confidence ? r : trust({ ...r, confidence: true });
}
