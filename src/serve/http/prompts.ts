/**
 * Prompt → token ids for the HTTP layer without holding the event loop (issue 13: ten 1 MB prompts stalled
 * /health/live and running streams for 2 s). Two steps:
 * 1. A prompt whose UTF-8 length cannot fit the context is refused before any tokenizing: no token stands for
 *    more than `maxTokenBytes` bytes, so B bytes need at least B / maxTokenBytes tokens ({@link promptByteLimit},
 *    with a factor for normalizers that shorten text).
 * 2. Short prompts ({@link INLINE_PROMPT_BYTES}) are tokenized at once; longer ones in a worker thread per model
 *    that holds its own copy of the tokenizer (prompt-worker.ts), at most {@link MAX_QUEUED_PROMPTS} waiting.
 */
import type { Worker } from "node:worker_threads";
import { FormatError } from "../../core/errors.js";
import { siblingModule, startModuleWorker } from "../../core/worker.js";
import type { ConversationMessage, ToolDefinition } from "../../model/chat/index.js";
import { ApiError, badRequest } from "./errors.js";
import { chatTokens, type ModelInfo } from "./model-info.js";
import type { PromptAnswer, PromptJob } from "./prompt-worker.js";

/** Prompts up to this many UTF-8 bytes are tokenized on the event loop (well under a millisecond of work). */
export const INLINE_PROMPT_BYTES = 1024;
/** Most prompts waiting for one model's tokenizer worker; more get 429. */
export const MAX_QUEUED_PROMPTS = 64;
/**
 * Slack on the byte bound: a tokenizer's normalizer may shorten text before it is split (stripping, Unicode
 * composition), so a prompt is refused only past twice the bytes that `contextLength` tokens could stand for.
 */
const NORMALIZER_SLACK = 2;

/** The most UTF-8 bytes of prompt text that could fit `info`'s context (Infinity without a tokenizer bound). */
export function promptByteLimit(info: ModelInfo): number {
  return info.maxTokenBytes > 0 ? info.contextLength * info.maxTokenBytes * NORMALIZER_SLACK : Number.POSITIVE_INFINITY;
}

export type PromptText = { readonly kind: "chat"; readonly messages: readonly ConversationMessage[]; readonly tools?: readonly ToolDefinition[] } | { readonly kind: "text"; readonly text: string };

function textBytes(prompt: PromptText): number {
  if (prompt.kind === "text") {
    return Buffer.byteLength(prompt.text);
  }
  let bytes = 0;
  for (const m of prompt.messages) {
    bytes += Buffer.byteLength(m.content);
  }
  // Tools and earlier calls are prompt text too (a lower bound is all the byte check needs).
  for (const t of prompt.tools ?? []) {
    bytes += Buffer.byteLength(JSON.stringify(t));
  }
  return bytes;
}

/** One model's prompt tokenizer: inline for short prompts, its worker thread for the rest. */
export class PromptTokenizer {
  #worker: Worker | undefined;
  #ready: Promise<void> | undefined;
  readonly #pending = new Map<number, { resolve: (a: PromptAnswer) => void; reject: (e: Error) => void }>();
  #next = 0;
  #closed = false;

  constructor(
    readonly path: string,
    readonly info: ModelInfo,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  /** Waiting prompts (for tests and status). */
  get queued(): number {
    return this.#pending.size;
  }

  /**
   * The prompt's token ids; a 400 `context_length_exceeded` when its bytes cannot fit, a 400 for a model that
   * cannot take it (no tokenizer, no chat template), 429 when too many prompts wait.
   */
  async encode(prompt: PromptText): Promise<number[]> {
    const param = prompt.kind === "chat" ? "messages" : "prompt";
    const bytes = textBytes(prompt);
    const limit = promptByteLimit(this.info);
    if (bytes > limit) {
      throw badRequest(
        param,
        `the prompt is ${bytes} bytes; the context holds ${this.info.contextLength} tokens, and no token of this model stands for more than ${this.info.maxTokenBytes} bytes, so at most ${limit} bytes can fit`,
        "context_length_exceeded",
      );
    }
    if (bytes <= INLINE_PROMPT_BYTES) {
      return answerIds(param, this.#inline(prompt));
    }
    if (this.#pending.size >= MAX_QUEUED_PROMPTS) {
      throw new ApiError(429, `${MAX_QUEUED_PROMPTS} long prompts are waiting to be tokenized; retry later`, "rate_limit_error", null, "rate_limit_exceeded");
    }
    return answerIds(param, await this.#remote(prompt));
  }

  #inline(prompt: PromptText): PromptAnswer {
    return tokenizePrompt(this.info, prompt, 0);
  }

  #remote(prompt: PromptText): Promise<PromptAnswer> {
    const worker = this.#start();
    const id = this.#next++;
    const job: PromptJob = { id, ...prompt };
    // Counted as waiting at once (the queue bound holds while the worker starts), sent once it is ready.
    const answer = new Promise<PromptAnswer>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    void this.#ready?.then(() => worker.postMessage(job), () => undefined);
    return answer;
  }

  #start(): Worker {
    if (this.#closed) {
      throw new ApiError(503, "the server is shutting down", "server_error", null, "shutting_down");
    }
    if (this.#worker !== undefined) {
      return this.#worker;
    }
    const worker = startModuleWorker(siblingModule(import.meta.url, "prompt-worker"), { path: this.path, contextLength: this.info.contextLength });
    worker.unref(); // never what keeps a process alive
    this.#worker = worker;
    this.#ready = new Promise<void>((resolve, reject) => {
      worker.on("message", (m: PromptAnswer | { ready: true }) => {
        if ("ready" in m) {
          resolve();
          return;
        }
        const waiting = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        waiting?.resolve(m);
      });
      let ended = false;
      const fail = (why: string): void => {
        if (ended) {
          return;
        }
        ended = true;
        if (!this.#closed) {
          this.log(`barbell serve: the prompt tokenizer of ${this.path} stopped (${why}); ${this.#pending.size} prompts get 503`);
        }
        if (this.#worker === worker) {
          this.#worker = undefined; // the next long prompt starts a new one
        }
        const error = new ApiError(503, "the prompt tokenizer stopped; retry", "server_error", null, "unavailable");
        reject(error);
        for (const waiting of this.#pending.values()) {
          waiting.reject(error);
        }
        this.#pending.clear();
      };
      worker.on("error", (e) => fail(e.message));
      worker.on("exit", (code) => fail(`exited with code ${code}`));
    });
    this.#ready.catch(() => undefined);
    return worker;
  }

  /** Stops the worker; waiting prompts get 503. */
  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.terminate();
  }
}

/**
 * A prompt's token ids under `info`'s tokenizer (chat prompts through the engine's chat-prompt builder), or why
 * the model cannot take it; errors other than a template's FormatError are thrown. Inline and in the worker.
 */
export function tokenizePrompt(info: ModelInfo, prompt: PromptText, id: number): PromptAnswer {
  if (prompt.kind === "chat") {
    let built: number[] | string;
    try {
      built = chatTokens(info, prompt.messages, prompt.tools);
    } catch (error) {
      if (!(error instanceof FormatError)) {
        throw error;
      }
      built = `the conversation cannot be rendered with this model's chat format: ${error.message}`; // e.g. the template's raise_exception
    }
    return typeof built === "string" ? { id, refused: built } : { id, ids: Int32Array.from(built) };
  }
  const tokenizer = info.tokenizer;
  return tokenizer === undefined ? { id, refused: "this model has no tokenizer; send the prompt as token ids" } : { id, ids: tokenizer.encode(prompt.text) };
}

function answerIds(param: string, answer: PromptAnswer): number[] {
  if ("refused" in answer) {
    throw badRequest(param, answer.refused, "unsupported_model");
  }
  if ("failed" in answer) {
    throw new Error(`[serve] tokenizing a prompt failed: ${answer.failed}`); // logged by the server, a 500 to the client
  }
  return Array.from(answer.ids);
}
