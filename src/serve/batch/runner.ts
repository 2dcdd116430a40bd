/**
 * A worker's side of durable batch jobs (docs/batch.md): it pulls the lines of its model from the work-queue
 * stream when it has a free decode slot (live requests first: a slot taken by a live request is not offered),
 * runs each line exactly as the live API runs the same request (validate.ts's checks, the prompt, runJson),
 * stores its one result and acknowledges the line. A worker that dies holding a line stops renewing its lease
 * (`working()` every third of LINE_ACK_WAIT_MS), so the line is redelivered to another worker; a redelivered
 * line whose result is stored already is acknowledged without running (exactly one result per line). A line
 * that fails for a transient reason (busy, restarting, shutting down) is handed back, at most
 * MAX_LINE_ATTEMPTS times; any other failure is its error line.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager, type Consumer, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { ApiError, badRequest } from "../http/errors.js";
import { Aborted, preparePrompt, runJson } from "../http/generate.js";
import { createMetrics } from "../http/metrics.js";
import { PromptTokenizer } from "../http/prompts.js";
import type { Served } from "../http/served.js";
import { checkChatRequest, checkCompletionRequest, requestedModel } from "../http/validate.js";
import { ensureStreams, jetStreamProblem, markFailed, outputLine, writeResult } from "./streams.js";
import { batchNames, decodeBatchRecord, FINAL_STATUSES, LINE_ACK_WAIT_MS, MAX_LINE_ATTEMPTS, type LineRecord } from "./wire.js";

/** Longest one batch line may run (as the live API's default request timeout). */
export const LINE_TIMEOUT_MS = 300_000;
/** How long one pull waits for a line (the client's minimum), and the pause when no slot is free. */
const PULL_EXPIRES_MS = 1_000;
const IDLE_MS = 100;
/** Pause before retrying the streams' setup (JetStream off or not reachable). */
const SETUP_RETRY_MS = 5_000;
/** Delay before a handed-back line is delivered again. */
const RETRY_DELAY_MS = 500;
/** How long a batch's state read is reused (cancellation is seen within this). */
const STATE_CACHE_MS = 1_000;
/** Lines handed out to this model's workers and not yet acknowledged, at most. */
const MAX_ACK_PENDING = 1024;

export interface BatchRunnerOptions {
  readonly prefix?: string | undefined;
  readonly served: Served;
  /** The model file (its prompt tokenizer reads it). */
  readonly modelPath: string;
  /** Decode slots not taken by live requests now; batch lines use what is left of them. */
  readonly free: () => number;
  readonly log?: (line: string) => void;
  /** Called when the number of running lines changes (the worker advertises its load). */
  readonly onLoad?: () => void;
}

/** What a runner did so far. */
export interface BatchRunnerCounts {
  /** Results stored. */
  results: number;
  /** Lines delivered again whose result was there already (acknowledged without a second result). */
  duplicates: number;
  /** Lines handed back for a transient failure. */
  retried: number;
  /** Stored lines that could not be read (refused, dropped). */
  refused: number;
}

export interface BatchRunner {
  /** Lines running now. */
  readonly running: number;
  readonly counts: BatchRunnerCounts;
  /** Stops pulling, lets running lines finish until `deadlineMs`, hands the rest back. */
  stop(deadlineMs?: number): Promise<void>;
}

const TRANSIENT = new Set([429, 500, 503]);

export function startBatchRunner(nc: NatsConnection, options: BatchRunnerOptions): BatchRunner {
  const prefix = options.prefix ?? "barbell";
  const names = batchNames(prefix);
  const { served } = options;
  const log = options.log ?? ((): void => undefined);
  const js = jetstream(nc);
  const tokenizer = new PromptTokenizer(options.modelPath, served.info, log);
  const metrics = createMetrics(() => Promise.resolve(new Map()));
  const counts: BatchRunnerCounts = { results: 0, duplicates: 0, retried: 0, refused: 0 };
  const running = new Map<JsMsg, AbortController>();
  const states = new Map<string, { at: number; over: boolean }>();
  let stopped = false;
  const halt = new AbortController(); // ends the loop's pauses at once on stop
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        halt.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      halt.signal.addEventListener("abort", done, { once: true });
    });
  let jsm: JetStreamManager | undefined;

  const setup = async (): Promise<Consumer> => {
    jsm ??= await jetstreamManager(nc, { checkAPI: false });
    await ensureStreams(jsm, names, prefix);
    const durable = names.consumer(served.name);
    await jsm.consumers.info(names.lines, durable).catch(() =>
      jsm?.consumers.add(names.lines, {
        durable_name: durable,
        filter_subject: names.modelLines(served.name),
        ack_policy: AckPolicy.Explicit,
        ack_wait: LINE_ACK_WAIT_MS * 1e6,
        max_ack_pending: MAX_ACK_PENDING,
      }),
    );
    return js.consumers.get(names.lines, durable);
  };

  /**
   * Whether the batch ended or is being cancelled (its remaining lines are dropped), or has no readable record
   * (a batch's record is stored before its lines are queued, so such a line belongs to no batch).
   */
  const over = async (batch: string): Promise<boolean> => {
    const cached = states.get(batch);
    if (cached !== undefined && Date.now() - cached.at < STATE_CACHE_MS) {
      return cached.over;
    }
    const m = await jsm?.streams.getMessage(names.state, { last_by_subj: names.batch(batch) });
    const decoded = m === null || m === undefined ? undefined : decodeBatchRecord(m.data, "batch");
    const ended = decoded?.ok !== true || decoded.value.id !== batch || FINAL_STATUSES.has(decoded.value.status) || decoded.value.status === "cancelling";
    if (states.size > 1024) {
      states.clear();
    }
    states.set(batch, { at: Date.now(), over: ended });
    return ended;
  };

  /** Runs one line as the live API would: its HTTP status and body. */
  const run = async (line: LineRecord, signal: AbortSignal): Promise<{ status: number; body: unknown }> => {
    try {
      let body: unknown;
      try {
        body = JSON.parse(line.body);
      } catch {
        throw badRequest(null, "the request body is not JSON");
      }
      const name = requestedModel(body);
      if (name !== served.name) {
        throw new ApiError(404, `model '${name}' does not exist (see GET /v1/models)`, "invalid_request_error", "model", "model_not_found");
      }
      const info = served.info;
      const params = line.url === "/v1/chat/completions" ? checkChatRequest(body, info.contextLength) : checkCompletionRequest(body, info.contextLength, info.vocabSize);
      if (params.stream) {
        throw badRequest("stream", "'stream' is not supported in a batch (each answer is one JSON object)", "unsupported_parameter");
      }
      const prompt = await preparePrompt(served, params, tokenizer);
      return { status: 200, body: await runJson({ served, metrics, signal, timeoutMs: LINE_TIMEOUT_MS, prompt }, params, performance.now()) };
    } catch (error) {
      const api = error instanceof ApiError ? error : error instanceof Aborted ? (error.error ?? new ApiError(503, "the worker is shutting down", "server_error", null, "shutting_down")) : undefined;
      if (api === undefined) {
        log(`barbell worker: [batch] line ${line.index} of ${line.batch} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      const shown = api ?? new ApiError(500, "internal server error", "server_error");
      return { status: shown.status, body: shown.body() };
    }
  };

  const handle = async (m: JsMsg): Promise<void> => {
    const controller = new AbortController();
    running.set(m, controller);
    options.onLoad?.();
    const lease = setInterval(() => m.working(), LINE_ACK_WAIT_MS / 3);
    const timeout = setTimeout(() => controller.abort("timeout"), LINE_TIMEOUT_MS);
    try {
      const decoded = decodeBatchRecord(m.data, "line");
      if (!decoded.ok) {
        counts.refused++;
        log(`barbell worker: [batch] refused a line on ${m.subject}: ${decoded.error.message}`);
        m.term();
        return;
      }
      const line = decoded.value;
      const stored = await jsm?.streams.getMessage(names.results, { last_by_subj: names.result(line.batch, line.index) });
      if (stored !== null && stored !== undefined) {
        // Delivered again after its result was stored (its worker died before acknowledging it).
        const result = decodeBatchRecord(stored.data, "result");
        if (result.ok && result.value.failed) {
          await markFailed(js, names, line.batch, line.index);
        }
        counts.duplicates++;
        m.ack();
        return;
      }
      if (await over(line.batch)) {
        m.ack();
        return;
      }
      const answer = await run(line, controller.signal);
      if (TRANSIENT.has(answer.status) && m.info.deliveryCount < MAX_LINE_ATTEMPTS) {
        counts.retried++;
        m.nak(RETRY_DELAY_MS);
        return;
      }
      const written = await writeResult(js, names, line.batch, line.index, line.customId, answer.status !== 200, outputLine(line.customId, answer));
      counts[written === "written" ? "results" : "duplicates"]++;
      m.ack();
    } catch (error) {
      log(`barbell worker: [batch] ${jetStreamProblem(error).message}`);
      counts.retried++;
      m.nak(RETRY_DELAY_MS);
    } finally {
      clearInterval(lease);
      clearTimeout(timeout);
      running.delete(m);
      options.onLoad?.();
    }
  };

  const loop = async (): Promise<void> => {
    let consumer: Consumer | undefined;
    let told = false;
    while (!stopped) {
      try {
        consumer ??= await setup();
      } catch (error) {
        if (!told) {
          log(`barbell worker: [batch] batch lines are not served for now: ${jetStreamProblem(error).message}`);
          told = true;
        }
        await sleep(SETUP_RETRY_MS);
        continue;
      }
      if (options.free() - running.size <= 0) {
        await sleep(IDLE_MS);
        continue;
      }
      let m: JsMsg | null;
      try {
        m = await consumer.next({ expires: PULL_EXPIRES_MS });
      } catch (error) {
        log(`barbell worker: [batch] pull failed: ${jetStreamProblem(error).message}`);
        consumer = undefined;
        await sleep(SETUP_RETRY_MS);
        continue;
      }
      if (m !== null) {
        if (stopped) {
          m.nak();
        } else {
          void handle(m);
        }
      }
    }
  };
  const looping = loop();

  return {
    get running() {
      return running.size;
    },
    counts,
    async stop(deadlineMs = 10_000) {
      stopped = true;
      halt.abort();
      await looping;
      const until = Date.now() + deadlineMs;
      while (running.size > 0 && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      for (const controller of running.values()) {
        controller.abort("shutdown");
      }
      while (running.size > 0) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await tokenizer.close();
      if (counts.results + counts.duplicates + counts.retried + counts.refused > 0) {
        log(`barbell worker: [batch] ${counts.results} results stored, ${counts.duplicates} redelivered lines had one already, ${counts.retried} handed back, ${counts.refused} refused`);
      }
    },
  };
}
