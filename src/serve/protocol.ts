/**
 * The model actor's messages. The worker protocol (a BARE codec, so it crosses into a child process) is
 * flat structs; the public types a server uses (`ModelRequest`, `ModelOutput`, `ModelStatus`) are the
 * same data as TypeScript unions with optional fields.
 */
import { msg, protocol, t, type Infer, type MessageOf } from "../actors/index.js";
import type { WireTensor } from "../formats/barewire/message.js";
import type { ServeErrorCode } from "./errors.js";

/**
 * What a request asks for, as code writes it. Text or token ids in → tokens out; a tensor of token ids in → logits
 * tensor out. The model actor checks it once (`checkRequest`, request.ts) into the one typed request every later
 * layer takes as it is.
 */
export interface ModelRequest {
  /** Caller's id for logs and status. Default: a generated one. */
  readonly id?: string;
  /** A text prompt (tokenized with BOS). */
  readonly prompt?: string;
  /** Or the prompt as token ids. */
  readonly tokens?: readonly number[];
  /** Or an i32 tensor [seq] of token ids: the reply is one f32 logits tensor (last position, or all with `allLogits`). */
  readonly input?: WireTensor;
  readonly allLogits?: boolean;
  /** Tokens to generate; default min(DEFAULT_MAX_TOKENS, what the context leaves after the prompt). */
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly topK?: number;
  readonly topP?: number;
  readonly minP?: number;
  readonly repetitionPenalty?: number;
  readonly seed?: number;
  readonly stop?: readonly string[];
  /** Alternatives reported with each token (0–20). */
  readonly topLogprobs?: number;
  /** Report each token's estimated entropy (for the cascade router). */
  readonly confidence?: boolean;
  /**
   * Report each token's log-probability (default true). False saves a pass over the vocabulary per token
   * (`logprob` is then NaN) unless `topLogprobs` or `confidence` need it anyway.
   */
  readonly logprobs?: boolean;
  /**
   * GBNF text the output must be a sentence of (structured output, tool calls). The worker compiles it against
   * its tokenizer (compiled grammars are cached by text); generation ends when the grammar is complete, and a
   * budget that ran out first ends it with finish reason "length" (the text so far was streamed). Not with `stop`.
   */
  readonly grammar?: string;
}

export { DEFAULT_MAX_TOKENS } from "../engine/generate.js";

/** A backend failure seen while running one request (the request went on on the next backend). */
export interface BackendFailure {
  readonly backend: string;
  readonly kernel: string;
  readonly error: string;
}

/** One item of a ProcessInput stream. The last item is always `done` or `error`. */
export type ModelOutput =
  | {
      readonly kind: "token";
      /** Undefined for a final chunk that only releases held-back text. */
      readonly token: number | undefined;
      readonly text: string;
      readonly logprob: number;
      /** Estimated entropy (nats) of the distribution the token was drawn from, when `confidence` was asked. */
      readonly entropy?: number;
      readonly topLogprobs?: readonly { readonly token: number; readonly logprob: number }[];
    }
  | { readonly kind: "tensor"; readonly tensor: WireTensor }
  | {
      readonly kind: "done";
      readonly finishReason: string;
      /** The ladder rung (model) that produced the output. */
      readonly model: string;
      readonly backend: string;
      readonly promptTokens: number;
      readonly completionTokens: number;
      /** Backend failures this request survived (it was retried on the next backend each time). */
      readonly failures: readonly BackendFailure[];
      /** Times the request was re-sent after the model process died before streaming anything. */
      readonly resent: number;
      /**
       * What the worker measured (wall-clock ms): start of the generation to its first token, first token to
       * the end, and the mean number of sequences in the decode steps meanwhile. Absent for tensor requests.
       */
      readonly timing?: { readonly prefillMs: number; readonly decodeMs: number; readonly meanBatch: number };
    }
  | {
      readonly kind: "error";
      readonly code: ServeErrorCode;
      readonly message: string;
      readonly model: string;
      readonly completionTokens: number;
      readonly failures: readonly BackendFailure[];
    };

const failure = t.struct({ backend: t.str, kernel: t.str, error: t.str });

/** The wire form of one output item (flat: `kind` says which fields are set). */
export const wireItem = t.struct({
  kind: t.literal("token", "tensor", "done", "error"),
  token: t.optional(t.uint),
  text: t.str,
  logprob: t.f64,
  entropy: t.optional(t.f64),
  topLogprobs: t.optional(t.list(t.struct({ token: t.uint, logprob: t.f64 }))),
  tensor: t.optional(t.tensor),
  finishReason: t.str,
  model: t.str,
  backend: t.str,
  promptTokens: t.uint,
  completionTokens: t.uint,
  failures: t.list(failure),
  code: t.str,
  message: t.str,
  /** Set on a generation's `done` item (0 elsewhere): see `timing` of the public item. */
  prefillMs: t.f64,
  decodeMs: t.f64,
  meanBatch: t.f64,
});
export type WireItem = Infer<typeof wireItem>;

const memory = t.struct({ liveAllocations: t.uint, liveBytes: t.uint, rss: t.uint, heapUsed: t.uint });
const capabilities = t.struct({
  arch: t.str,
  vocab: t.uint,
  contextLength: t.uint,
  layers: t.uint,
  hidden: t.uint,
  /** Whether text prompts work (the file has a tokenizer). */
  text: t.bool,
  canExpand: t.bool,
});
const degradation = t.struct({
  backend: t.str,
  failures: t.uint,
  consecutive: t.uint,
  out: t.bool,
  kernel: t.str,
  error: t.str,
  at: t.f64,
  restored: t.uint,
});

/** What the model worker says about itself. */
export const workerStatus = t.struct({
  model: t.str,
  rung: t.uint,
  rungs: t.uint,
  loaded: t.bool,
  backend: t.str,
  device: t.str,
  chain: t.list(t.str),
  out: t.list(t.str),
  memory,
  capabilities,
  queued: t.uint,
  running: t.uint,
  completed: t.uint,
  failed: t.uint,
  degradations: t.list(degradation),
  faultsInjected: t.uint,
  pid: t.uint,
  incarnation: t.uint,
  /** Requests decoded together at most (the host's `parallel`). */
  parallel: t.uint,
  /** Decode steps run so far and the sequences they carried in total (mean batch = batchRows / batchSteps). */
  batchSteps: t.uint,
  batchRows: t.uint,
  /** Sequences in the batchers now (prefilling or decoding). */
  active: t.uint,
  /** The prompt cache (src/engine/prompt-cache.ts): budget and bytes held, prefixes kept, lookups, tokens reused. */
  promptCache: t.struct({ budgetBytes: t.uint, bytes: t.uint, entries: t.uint, hits: t.uint, misses: t.uint, tokensReused: t.uint, evictions: t.uint }),
});
export type WorkerStatus = Infer<typeof workerStatus>;
export type Degradation = Infer<typeof degradation>;

/**
 * The request as the worker receives it (every optional field present, possibly undefined): the fields of the
 * checked request (request.ts). `maxTokens` 0 stands for "not given": the host makes it min(DEFAULT_MAX_TOKENS, room).
 */
export const wireRequest = {
  id: t.str,
  prompt: t.optional(t.str),
  tokens: t.optional(t.list(t.uint)),
  input: t.optional(t.tensor),
  allLogits: t.bool,
  maxTokens: t.uint,
  temperature: t.optional(t.f64),
  topK: t.optional(t.uint),
  topP: t.optional(t.f64),
  minP: t.optional(t.f64),
  repetitionPenalty: t.optional(t.f64),
  seed: t.optional(t.uint),
  stop: t.list(t.str),
  topLogprobs: t.uint,
  confidence: t.bool,
  logprobs: t.bool,
  grammar: t.optional(t.str),
};
export type WireRequest = { readonly [K in keyof typeof wireRequest]: Infer<(typeof wireRequest)[K]> };

export const expandReply = t.struct({ ok: t.bool, code: t.str, message: t.str, status: workerStatus });

/** The worker's protocol: the four messages. Append new variants at the end (wire order). */
export const modelWorkerProtocol = protocol({
  processInput: msg.stream(wireRequest, wireItem),
  expandCapability: msg.ask({ rung: t.optional(t.str), backends: t.optional(t.list(t.str)) }, expandReply),
  releaseResources: msg.ask({}, workerStatus),
  queryStatus: msg.ask({}, workerStatus),
});
export type ModelWorkerMsg = MessageOf<typeof modelWorkerProtocol>;

/** Converts a wire item to the public union. */
export function fromWireItem(item: WireItem, resent: number): ModelOutput {
  switch (item.kind) {
    case "token":
      return {
        kind: "token",
        token: item.token,
        text: item.text,
        logprob: item.logprob,
        ...(item.entropy === undefined ? {} : { entropy: item.entropy }),
        ...(item.topLogprobs === undefined ? {} : { topLogprobs: item.topLogprobs }),
      };
    case "tensor":
      if (item.tensor === undefined) {
        return { kind: "error", code: "failed", message: "[model] tensor item without a tensor", model: item.model, completionTokens: 0, failures: [] };
      }
      return { kind: "tensor", tensor: item.tensor };
    case "done":
      return {
        kind: "done",
        finishReason: item.finishReason,
        model: item.model,
        backend: item.backend,
        promptTokens: item.promptTokens,
        completionTokens: item.completionTokens,
        failures: item.failures,
        resent,
        ...(item.meanBatch > 0 ? { timing: { prefillMs: item.prefillMs, decodeMs: item.decodeMs, meanBatch: item.meanBatch } } : {}),
      };
    case "error":
      return {
        kind: "error",
        code: item.code as ServeErrorCode,
        message: item.message,
        model: item.model,
        completionTokens: item.completionTokens,
        failures: item.failures,
      };
  }
}

/** A blank item of `kind`; callers set the fields that kind uses. */
export function blankItem(kind: WireItem["kind"]): WireItem {
  return {
    kind,
    token: undefined,
    text: "",
    logprob: 0,
    entropy: undefined,
    topLogprobs: undefined,
    tensor: undefined,
    finishReason: "",
    model: "",
    backend: "",
    promptTokens: 0,
    completionTokens: 0,
    failures: [],
    code: "",
    message: "",
    prefillMs: 0,
    decodeMs: 0,
    meanBatch: 0,
  };
}
