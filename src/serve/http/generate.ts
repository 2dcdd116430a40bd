/**
 * Runs one validated completion or chat request on a served model, answered as one JSON object or as
 * server-sent events. Its `n` choices are model-actor streams that run side by side (so they share decode
 * steps under continuous batching) as far as free admission slots allow: a request holds one slot, takes up
 * to n − 1 more when they are free, and runs the rest of its choices as its own finish. The request's
 * AbortSignal (client disconnect, timeout, shutdown) cancels the running streams, which cancels the
 * generations in the worker and frees their slots; a choice that fails cancels its siblings.
 */
import { randomUUID } from "node:crypto";
import { PassThrough } from "node:stream";
import { DEFAULT_MAX_TOKENS } from "../../engine/generate.js";
import type { ModelOutput } from "../protocol.js";
import { edgeRequest, type CheckedRequest } from "../request.js";
import type { CascadeStep } from "../router.js";
import { ApiError, badRequest, fromServeError } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";
import { chatLogprobs, CompletionLogprobs, finishReason, usage } from "./openai.js";
import { toolFormatOf } from "./model-info.js";
import type { PromptTokenizer } from "./prompts.js";
import type { Served } from "./served.js";
import { planOutput, type OutputPlan } from "./structured.js";
import { toolCallId, ToolCallReader, type ToolEvent } from "./tool-calls.js";
import type { ChatParams, CompletionParams } from "./validate.js";


/** Why a request's signal was aborted. */
export type AbortReason = "disconnect" | "timeout" | "shutdown";

export interface RunContext {
  readonly served: Served;
  readonly metrics: ServerMetrics;
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /** The request's prompt as token ids, its completion budget and echo text ({@link preparePrompt}). */
  readonly prompt: PreparedPrompt;
  /**
   * Takes up to `max` more admission slots if they are free now, held until the request ends; returns how
   * many it took. Absent: choices run one at a time.
   */
  readonly extraSlots?: (max: number) => number;
  /** The request's usage so far (prompt tokens, completion tokens over its choices), for the request log. */
  readonly tally?: { prompt: number; completion: number };
}

/**
 * Runs `run(index)` for every choice index, at most 1 + ctx.extraSlots(n − 1) at a time, in index order of
 * starting. The first failure aborts the siblings (their streams are cancelled) and is rethrown.
 */
async function eachChoice(ctx: RunContext, n: number, run: (index: number, ctx: RunContext) => Promise<void>): Promise<void> {
  if (n === 1) {
    return run(0, ctx);
  }
  const local = new AbortController();
  const follow = (): void => local.abort(ctx.signal.reason);
  if (ctx.signal.aborted) {
    follow();
  } else {
    ctx.signal.addEventListener("abort", follow, { once: true });
  }
  const inner: RunContext = { ...ctx, signal: local.signal };
  const width = 1 + (ctx.extraSlots?.(n - 1) ?? 0);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < n) {
      const index = next++;
      try {
        await run(index, inner);
      } catch (error) {
        failure ??= { error };
        local.abort("sibling");
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(width, n) }, worker));
  } finally {
    ctx.signal.removeEventListener("abort", follow);
  }
  if (failure !== undefined) {
    // A sibling's cancellation is not the cause: report the request's own abort, else the first real error.
    throw ctx.signal.aborted ? new Aborted(abortError(ctx)) : failure.error;
  }
}

type TokenItem = Extract<ModelOutput, { kind: "token" }>;
type DoneItem = Extract<ModelOutput, { kind: "done" }>;

export interface PreparedPrompt {
  readonly ids: readonly number[];
  readonly maxTokens: number;
  readonly echo: string;
  /** How the answer is constrained and read (structured output, tools); undefined for plain text. */
  readonly plan?: OutputPlan;
}

/**
 * The prompt's token ids and the completion budget, tokenized once per request (off the event loop when
 * long: prompts.ts); a 400 when they do not fit the model.
 */
export async function preparePrompt(served: Served, params: ChatParams | CompletionParams, tokenizer: PromptTokenizer): Promise<PreparedPrompt> {
  const info = served.info;
  let ids: readonly number[];
  let echo = "";
  let plan: OutputPlan | undefined;
  if (params.kind === "chat") {
    // The schema and tools first: a 400 for them before any tokenizing.
    plan = planOutput(params.responseFormat, params.tools, toolFormatOf(info));
    if (plan.grammar !== undefined && params.stop.length > 0) {
      throw badRequest("stop", "'stop' cannot be used with response_format json_object/json_schema or tool calls (the grammar decides where the answer ends)", "unsupported_parameter");
    }
    ids = await tokenizer.encode({ kind: "chat", messages: params.messages, ...(plan.promptTools === undefined ? {} : { tools: plan.promptTools }) });
  } else if (typeof params.prompt === "string") {
    ids = await tokenizer.encode({ kind: "text", text: params.prompt });
    echo = params.echo ? params.prompt : "";
  } else {
    ids = params.prompt;
    echo = params.echo && info.tokenizer !== undefined ? info.tokenizer.decode(ids) : "";
  }
  const param = params.kind === "chat" ? "messages" : "prompt";
  if (ids.length === 0) {
    throw badRequest(param, "the prompt has no tokens");
  }
  const room = info.contextLength - ids.length;
  if (room < 1) {
    throw badRequest(param, `the prompt is ${ids.length} tokens; the context holds ${info.contextLength}, with at least one for the answer; shorten the ${param === "messages" ? "conversation" : "prompt"}`, "context_length_exceeded");
  }
  if (params.maxTokens !== undefined && params.maxTokens > room) {
    throw badRequest(
      "max_tokens",
      `prompt (${ids.length} tokens) + max_tokens (${params.maxTokens}) exceed the context (${info.contextLength}); pass max_tokens ${room} or less, or a shorter prompt`,
      "context_length_exceeded",
    );
  }
  return { ids, maxTokens: params.maxTokens ?? Math.min(DEFAULT_MAX_TOKENS, room), echo, ...(plan?.grammar === undefined && plan?.tools === undefined ? {} : { plan }) };
}

function abortError(ctx: RunContext): ApiError | undefined {
  const reason = ctx.signal.reason as AbortReason | undefined;
  if (reason === "timeout") {
    return new ApiError(504, `the request did not finish within ${ctx.timeoutMs} ms`, "server_error", null, "timeout");
  }
  if (reason === "shutdown") {
    return new ApiError(503, "the server is shutting down", "server_error", null, "shutting_down");
  }
  return undefined; // a disconnect: nobody to answer
}

/** Thrown when the request was aborted; `error` is what to tell the client, if it is still there. */
export class Aborted extends Error {
  constructor(readonly error: ApiError | undefined) {
    super("aborted");
  }
}

/** The items of one choice, ending with `done` (an `error` item becomes an ApiError). */
async function* choiceItems(ctx: RunContext, request: CheckedRequest, admittedAt: number): AsyncGenerator<TokenItem, DoneItem> {
  const { served, metrics, signal } = ctx;
  const model = served.name;
  metrics.queueDepth.inc({ model });
  let first: number | undefined;
  let cancel: (() => void) | undefined;
  try {
    if (signal.aborted) {
      throw new Aborted(abortError(ctx));
    }
    const opened = served.open(request, signal);
    if (!opened.ok) {
      if (opened.error.code === "mailbox-full") {
        throw new ApiError(429, `model '${model}' is busy; retry later`, "rate_limit_error", null, "rate_limit_exceeded");
      }
      throw new ApiError(503, `model '${model}' is not available (${opened.error.code})`, "server_error", null, "unavailable");
    }
    cancel = () => opened.value.cancel();
    for await (const item of opened.value) {
      if (item.kind === "token") {
        if (first === undefined && item.token !== undefined) {
          first = performance.now();
          metrics.timeToFirstToken.observe({ model }, (first - admittedAt) / 1000);
          metrics.queueDepth.dec({ model });
        }
        yield item;
      } else if (item.kind === "done") {
        if (ctx.tally !== undefined) {
          ctx.tally.prompt = item.promptTokens;
          ctx.tally.completion += item.completionTokens;
        }
        metrics.tokens.inc({ model, kind: "prompt" }, item.promptTokens);
        metrics.tokens.inc({ model, kind: "completion" }, item.completionTokens);
        metrics.fallbacks.inc({ model }, item.failures.length);
        metrics.resent.inc({ model }, item.resent);
        const seconds = first === undefined ? 0 : (performance.now() - first) / 1000;
        if (item.completionTokens > 1 && seconds > 0) {
          metrics.tokensPerSecond.observe({ model }, (item.completionTokens - 1) / seconds);
        }
        return item;
      } else if (item.kind === "error") {
        throw signal.aborted ? new Aborted(abortError(ctx)) : fromServeError(item.code, item.message);
      }
    }
  } catch (error) {
    if (error instanceof Aborted || error instanceof ApiError) {
      throw error;
    }
    if (signal.aborted) {
      throw new Aborted(abortError(ctx));
    }
    throw new ApiError(500, `model '${model}' failed: ${error instanceof Error ? error.message : String(error)}`, "server_error");
  } finally {
    if (first === undefined) {
      metrics.queueDepth.dec({ model });
    }
    cancel?.();
  }
  throw new ApiError(500, `model '${model}' ended the stream without a result`, "server_error");
}

/** What a cascade's rungs did for one choice: the `barbell` field of responses to a cascade id (docs/serving.md). */
export interface CascadeReport {
  /** The rung (configured model) that produced the choice. */
  readonly model: string;
  /** Each rung tried, in order: its window's confidence score (null when it produced no tokens) and whether it escalated. */
  readonly cascade: readonly { readonly model: string; readonly score: number | null; readonly escalated: boolean }[];
}

/** The cascade report of a choice's `done` item; undefined for a plain model. */
function cascadeReport(served: Served, done: DoneItem): CascadeReport | undefined {
  if (served.kind !== "cascade") {
    return undefined;
  }
  const steps = (done as DoneItem & { readonly cascade?: readonly CascadeStep[] }).cascade ?? [];
  return { model: done.model, cascade: steps.map((st) => ({ model: st.model, score: Number.isFinite(st.score) ? st.score : null, escalated: st.escalated })) };
}

/**
 * The checked request of choice `index`: the one translation of the validated body (validate.ts) and its prepared
 * prompt into the request every later layer takes as it is (request.ts).
 */
function modelRequest(params: ChatParams | CompletionParams, prompt: PreparedPrompt, index: number): CheckedRequest {
  const { seed, temperature, topK, topP, minP, repetitionPenalty } = params.sampling;
  const grammar = prompt.plan?.grammar;
  return edgeRequest({
    tokens: prompt.ids,
    maxTokens: prompt.maxTokens,
    stop: grammar === undefined ? params.stop : [],
    grammar,
    topLogprobs: params.topLogprobs,
    logprobs: params.logprobs, // without it, the worker skips the softmax normalizer per token
    temperature,
    topK,
    topP,
    minP,
    repetitionPenalty,
    // Choices of a seeded request differ from each other and are each reproducible.
    seed: seed === undefined ? undefined : (seed + index) >>> 0,
  });
}

/** The tool call in a whole answer (read as a stream would read it), or undefined for a text answer. */
function toolCall(plan: OutputPlan | undefined, text: string): { name: string; arguments: string } | undefined {
  if (plan?.tools === undefined) {
    return undefined;
  }
  const reader = new ToolCallReader(plan.tools.format, plan.tools.mode);
  reader.push(text);
  reader.end();
  return reader.name === undefined ? undefined : { name: reader.name, arguments: reader.arguments };
}

/** Runs the request and returns the response body (non-streaming). */
export async function runJson(ctx: RunContext, params: ChatParams | CompletionParams, admittedAt: number): Promise<Record<string, unknown>> {
  const { ids, echo } = ctx.prompt;
  const info = ctx.served.info;
  const choices: Record<string, unknown>[] = new Array(params.n);
  let promptTokens = ids.length;
  let completionTokens = 0;
  const byIndex: (CascadeReport | undefined)[] = new Array(params.n);
  await eachChoice(ctx, params.n, async (index, inner) => {
    const items = choiceItems(inner, modelRequest(params, ctx.prompt, index), admittedAt);
    let text = echo;
    const chatLp: ReturnType<typeof chatLogprobs> = [];
    const completionLp = new CompletionLogprobs();
    let next = await items.next();
    while (next.done !== true) {
      if (params.logprobs) {
        chatLp.push(...chatLogprobs(info, next.value));
        completionLp.add(info, next.value, text.length);
      }
      text += next.value.text;
      next = await items.next();
    }
    const done = next.value;
    promptTokens = done.promptTokens;
    completionTokens += done.completionTokens;
    byIndex[index] = cascadeReport(ctx.served, done);
    const finish = finishReason(done.finishReason);
    const call = toolCall(ctx.prompt.plan, text);
    choices[index] =
      call !== undefined
        ? {
            index,
            message: { role: "assistant", content: null, tool_calls: [{ id: toolCallId(), type: "function", function: call }], refusal: null },
            logprobs: null,
            finish_reason: finish === "length" ? "length" : "tool_calls",
          }
        : params.kind === "chat"
          ? { index, message: { role: "assistant", content: text, refusal: null }, logprobs: params.logprobs ? { content: chatLp, refusal: null } : null, finish_reason: finish }
          : { index, text, logprobs: params.logprobs ? completionLp.toJSON() : null, finish_reason: finish };
  });
  const reports = byIndex.filter((r): r is CascadeReport => r !== undefined);
  return {
    id: `${params.kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID()}`,
    object: params.kind === "chat" ? "chat.completion" : "text_completion",
    created: Math.floor(Date.now() / 1000),
    model: ctx.served.name,
    system_fingerprint: null,
    choices,
    usage: usage(promptTokens, completionTokens),
    // A cascade says which rung produced the output (choice 0; with n > 1, every choice under `choices`).
    ...(reports[0] === undefined ? {} : { barbell: { ...reports[0], ...(reports.length > 1 ? { choices: reports.map((r, index) => ({ index, ...r })) } : {}) } }),
  };
}

/**
 * Server-sent events written into `body`, a byte stream the route hands to fastify (`reply.send(body)`, which
 * pipes it into the response, sets the reply's headers and destroys it when the client goes away). The route
 * waits for {@link firstEvent} before it answers, so an error before the first event keeps its status.
 * `send` waits while the stream is full (a client that reads slowly holds the generation back instead of
 * making the server buffer its whole answer), until the stream drains, closes, or the request is aborted
 * (a timeout or shutdown then still ends the generation and frees its slots).
 */
export class SseWriter {
  readonly body = new PassThrough();
  #started = false;
  #onFirst: () => void = () => undefined;
  readonly #first = new Promise<void>((resolve) => (this.#onFirst = resolve));

  constructor(private readonly signal: AbortSignal) {}

  get started(): boolean {
    return this.#started;
  }

  /** Resolves when the first event is written. */
  firstEvent(): Promise<void> {
    return this.#first;
  }

  async send(data: unknown): Promise<void> {
    if (!this.#started) {
      this.#started = true;
      this.#onFirst();
    }
    if (this.body.destroyed || this.body.writableEnded) {
      return;
    }
    if (!this.body.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`) && !this.signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.body.off("drain", done).off("close", done);
          this.signal.removeEventListener("abort", done);
          resolve();
        };
        this.body.on("drain", done).on("close", done);
        this.signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  /** Ends the stream (after its buffered events). */
  end(): void {
    if (!this.body.destroyed && !this.body.writableEnded) {
      this.body.end();
    }
  }
}

/**
 * Streams one chat choice whose answer is read for a tool call: the role goes with the first delta, which is the
 * call's id, type and name (then `function.arguments` fragments) or content text; the last chunk has
 * finish_reason "tool_calls" ("length" when the budget ran out first).
 */
async function streamToolChoice(
  index: number,
  tools: NonNullable<OutputPlan["tools"]>,
  items: AsyncGenerator<TokenItem, DoneItem>,
  first: IteratorResult<TokenItem, DoneItem>,
  chunk: (choices: unknown[], extra?: Record<string, unknown>) => Record<string, unknown>,
  sse: SseWriter,
  onDone: (done: DoneItem) => Record<string, unknown>,
): Promise<void> {
  const reader = new ToolCallReader(tools.format, tools.mode);
  let role = false;
  const send = async (delta: Record<string, unknown>): Promise<void> => {
    await sse.send(chunk([{ index, delta: role ? delta : { role: "assistant", ...delta }, logprobs: null, finish_reason: null }]));
    role = true;
  };
  const emit = async (events: readonly ToolEvent[]): Promise<void> => {
    for (const e of events) {
      if (e.kind === "content") {
        await send({ content: e.text });
      } else if (e.kind === "call") {
        await send({ content: null, tool_calls: [{ index: 0, id: toolCallId(), type: "function", function: { name: e.name, arguments: "" } }] });
      } else {
        await send({ tool_calls: [{ index: 0, function: { arguments: e.text } }] });
      }
    }
  };
  let next = first;
  while (next.done !== true) {
    await emit(reader.push(next.value.text));
    next = await items.next();
  }
  await emit(reader.end());
  if (!role) {
    await send({ content: "" });
  }
  const done = next.value;
  const extra = onDone(done);
  const finish = finishReason(done.finishReason);
  await sse.send(chunk([{ index, delta: {}, logprobs: null, finish_reason: reader.name !== undefined && finish !== "length" ? "tool_calls" : finish }], extra));
}

/**
 * Runs the request as server-sent events. An error before the first event is thrown (the caller answers it
 * with its status); one after that is sent as an `error` event and ends the stream without `[DONE]`.
 */
export async function runStream(ctx: RunContext, params: ChatParams | CompletionParams, admittedAt: number, sse: SseWriter): Promise<void> {
  const { ids, echo } = ctx.prompt;
  const info = ctx.served.info;
  const id = `${params.kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    id,
    object: params.kind === "chat" ? "chat.completion.chunk" : "text_completion",
    created,
    model: ctx.served.name,
    system_fingerprint: null,
    choices,
    ...(params.includeUsage ? { usage: null } : {}),
    ...extra,
  });
  let promptTokens = ids.length;
  let completionTokens = 0;
  try {
    await eachChoice(ctx, params.n, async (index, inner) => {
      const items = choiceItems(inner, modelRequest(params, ctx.prompt, index), admittedAt);
      let next = await items.next(); // the first item before any byte: early errors keep their status
      const tools = ctx.prompt.plan?.tools;
      if (tools !== undefined) {
        await streamToolChoice(index, tools, items, next, chunk, sse, (done) => {
          promptTokens = done.promptTokens;
          completionTokens += done.completionTokens;
          const report = cascadeReport(ctx.served, done);
          return report === undefined ? {} : { barbell: report }; // a cascade: the rung that produced this choice
        });
        return;
      }
      if (params.kind === "chat") {
        await sse.send(chunk([{ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]));
      } else if (echo !== "") {
        await sse.send(chunk([{ index, text: echo, logprobs: null, finish_reason: null }]));
      }
      let offset = echo.length;
      while (next.done !== true) {
        const item = next.value;
        if (item.text !== "" || params.logprobs) {
          if (params.kind === "chat") {
            const logprobs = params.logprobs ? { content: chatLogprobs(info, item), refusal: null } : null;
            await sse.send(chunk([{ index, delta: { content: item.text }, logprobs, finish_reason: null }]));
          } else {
            const lp = new CompletionLogprobs();
            lp.add(info, item, offset);
            await sse.send(chunk([{ index, text: item.text, logprobs: params.logprobs ? lp.toJSON() : null, finish_reason: null }]));
          }
        }
        offset += item.text.length;
        next = await items.next();
      }
      const done = next.value;
      promptTokens = done.promptTokens;
      completionTokens += done.completionTokens;
      const finish = finishReason(done.finishReason);
      const report = cascadeReport(ctx.served, done);
      await sse.send(
        chunk(
          [params.kind === "chat" ? { index, delta: {}, logprobs: null, finish_reason: finish } : { index, text: "", logprobs: null, finish_reason: finish }],
          report === undefined ? {} : { barbell: report }, // a cascade: the rung that produced this choice
        ),
      );
    });
  } catch (error) {
    const apiError = error instanceof Aborted ? error.error : error instanceof ApiError ? error : new ApiError(500, "internal error", "server_error");
    if (!sse.started) {
      throw error;
    }
    if (apiError !== undefined) {
      await sse.send(apiError.body());
    }
    return;
  }
  if (params.includeUsage) {
    await sse.send(chunk([], { usage: usage(promptTokens, completionTokens) }));
  }
  await sse.send("[DONE]");
}
