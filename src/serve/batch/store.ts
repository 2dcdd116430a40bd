/**
 * The gateway's side of durable batch jobs (docs/batch.md): files and batches kept in JetStream, never in a
 * gateway's memory or disk, so every barbell process may restart without losing a job. Any gateway of the
 * deployment answers for any batch; each request reads the state from JetStream and moves the batch on:
 *
 * - `validating`: its lines are being queued on the work-queue stream (a gateway that finds one left behind
 *   by a stopped gateway queues its lines again; duplicates are harmless, results are exactly once);
 * - `in_progress`: workers pull the lines and store one result per line; when every line has its result, the
 *   first gateway that looks writes the output and error files and marks the batch `completed` (a
 *   compare-and-set on the record: two gateways cannot both finish it; the loser deletes its files);
 * - `cancelling` / past `expires_at`: the lines not run yet are removed and get error lines.
 */
import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { ApiError, badRequest } from "../http/errors.js";
import { requestedModel } from "../http/validate.js";
import { parseBatchFile, type BatchLine } from "./jsonl.js";
import { countMatching, readMatching } from "./read.js";
import { ensureStreams, JS_WRONG_LAST_SEQUENCE, jetStreamProblem, outputLine, writeResult } from "./streams.js";
import {
  BATCH_ID,
  batchNames,
  COMPLETION_WINDOW_S,
  decodeBatchRecord,
  encodeBatchRecord,
  FILE_ID,
  FILE_PART_BYTES,
  FINAL_STATUSES,
  LINE_ACK_WAIT_MS,
  MAX_ACTIVE_BATCHES,
  MAX_BATCH_LINE_BYTES,
  MAX_BATCH_LINES,
  MAX_STORED_BATCHES,
  MAX_STORED_FILES,
  type BatchNames,
  type BatchRecord,
  type BatchStatus,
  type FileRecord,
} from "./wire.js";

/** Lines published at once while a batch is queued. */
const PUBLISH_WINDOW = 64;
/** A batch left `validating` this long is queued again by whichever gateway looks at it. */
export const VALIDATING_STALL_S = 30;
/** How long a starting gateway waits before it moves unfinished batches on (workers advertise every second). */
export const RESUME_DELAY_MS = 3_000;
/** Tries of a compare-and-set on a batch record before giving up. */
const CAS_TRIES = 8;

const now = (): number => Math.floor(Date.now() / 1000);

export interface BatchStoreOptions {
  readonly prefix?: string;
  readonly log?: (line: string) => void;
  /**
   * Whether a worker serves `model` now: a line for a model nobody serves gets its 404 error line when the
   * batch is queued (as the live API answers), rather than waiting for the batch to expire.
   */
  readonly serves?: (model: string) => boolean;
}

export type BatchEvent =
  | { kind: "file" }
  | { kind: "batch" }
  | { kind: "queued"; lines: number }
  | { kind: "finished"; status: BatchStatus; completed: number; failed: number }
  | { kind: "refused-record" };

/** A batch as stored, with the sequence of its record (for compare-and-set). */
interface Stored {
  readonly record: BatchRecord;
  readonly seq: number;
}

export class BatchStore {
  readonly names: BatchNames;
  readonly #prefix: string;
  readonly #js: JetStreamClient;
  readonly #jsm: Promise<JetStreamManager>;
  readonly #log: (line: string) => void;
  #event: (event: BatchEvent) => void;
  readonly #serves: (model: string) => boolean;
  #ready: Promise<void> | undefined;
  /** Work this gateway does for a batch (queueing its lines, finishing it), so it is done once here. */
  readonly #busy = new Map<string, Promise<void>>();

  constructor(nc: NatsConnection, options: BatchStoreOptions = {}) {
    this.#prefix = options.prefix ?? "barbell";
    this.names = batchNames(this.#prefix);
    this.#js = jetstream(nc);
    this.#jsm = jetstreamManager(nc, { checkAPI: false });
    this.#jsm.catch(() => undefined);
    this.#log = options.log ?? ((): void => undefined);
    this.#event = (): void => undefined;
    this.#serves = options.serves ?? ((): boolean => true);
  }

  /** Where events go from now on (the HTTP layer's counters). */
  observe(onEvent: (event: BatchEvent) => void): void {
    this.#event = onEvent;
  }

  /** The streams, created on first use (retried on the next request when JetStream was not reachable). */
  async #ensure(): Promise<JetStreamManager> {
    const jsm = await this.#jsm.catch((e: unknown) => {
      throw jetStreamProblem(e);
    });
    this.#ready ??= ensureStreams(jsm, this.names, this.#prefix).catch((e: unknown) => {
      this.#ready = undefined;
      throw e;
    });
    await this.#ready;
    return jsm;
  }

  /**
   * Finishes (or resumes queueing) every unfinished batch; the CLI calls it once at startup. It waits
   * RESUME_DELAY_MS first, so that the workers' adverts have arrived (a line is queued for a served model only).
   */
  async resume(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, RESUME_DELAY_MS).unref());
    for (const { record } of await this.#all()) {
      if (!FINAL_STATUSES.has(record.status)) {
        await this.getBatch(record.id).catch((e: unknown) => this.#log(`barbell serve: [batch] cannot resume ${record.id}: ${e instanceof Error ? e.message : String(e)}`));
      }
    }
  }

  // ---- files ----

  /** Stores an uploaded batch file (checked: jsonl.ts) and returns its record. */
  async putFile(bytes: Uint8Array, filename: string, purpose: string): Promise<FileRecord> {
    if (purpose !== "batch") {
      throw badRequest("purpose", `purpose must be "batch" (barbell keeps batch input files only), got ${JSON.stringify(purpose.slice(0, 40))}`);
    }
    const lines = parseBatchFile(bytes);
    const jsm = await this.#ensure();
    if ((await countMatching(jsm, this.names.files, `${this.#prefix}.batch.file.*.meta`)) >= MAX_STORED_FILES) {
      throw new ApiError(429, `${MAX_STORED_FILES} files are stored (MAX_STORED_FILES); delete some first`, "rate_limit_error", null, "file_limit_reached");
    }
    return this.#writeFile(newFileId(), bytes, filename.slice(0, 256), lines.length);
  }

  async #writeFile(id: string, bytes: Uint8Array, filename: string, lines: number): Promise<FileRecord> {
    const parts = Math.ceil(bytes.length / FILE_PART_BYTES);
    for (let n = 0; n < parts; n++) {
      await this.#create(this.names.filePart(id, n), bytes.subarray(n * FILE_PART_BYTES, (n + 1) * FILE_PART_BYTES));
    }
    const record: FileRecord = { type: "file", id, bytes: bytes.length, createdAt: now(), filename, purpose: "batch", parts, lines };
    await this.#create(this.names.fileMeta(id), encodeBatchRecord(record));
    this.#event({ kind: "file" });
    return record;
  }

  /** Publishes to an empty subject; a subject already written (by another gateway finishing the same batch) is left as it is. */
  async #create(subject: string, data: Uint8Array): Promise<void> {
    try {
      await this.#js.publish(subject, data, { expect: { lastSubjectSequence: 0 } });
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JS_WRONG_LAST_SEQUENCE)) {
        throw jetStreamProblem(error);
      }
    }
  }

  async getFile(id: string): Promise<FileRecord | undefined> {
    if (!FILE_ID.test(id)) {
      return undefined;
    }
    const jsm = await this.#ensure();
    const m = await jsm.streams.getMessage(this.names.files, { last_by_subj: this.names.fileMeta(id) });
    if (m === null) {
      return undefined;
    }
    const decoded = decodeBatchRecord(m.data, "file");
    if (!decoded.ok || decoded.value.id !== id) {
      this.#refused(decoded.ok ? `file record ${id} names another file` : decoded.error.message);
      return undefined;
    }
    return decoded.value;
  }

  /** A file's bytes, part by part (each checked against the file's record). */
  async *fileContent(file: FileRecord): AsyncGenerator<Uint8Array> {
    const jsm = await this.#ensure();
    let total = 0;
    for (let n = 0; n < file.parts; n++) {
      const m = await jsm.streams.getMessage(this.names.files, { last_by_subj: this.names.filePart(file.id, n) });
      const expected = Math.min(FILE_PART_BYTES, file.bytes - total);
      if (m === null || m.data.length !== expected) {
        this.#refused(`file ${file.id}: part ${n} is missing or has the wrong length`);
        throw new ApiError(500, `file ${file.id} is damaged in the store`, "server_error", null, "file_damaged");
      }
      total += m.data.length;
      yield m.data;
    }
  }

  async #fileBytes(file: FileRecord): Promise<Uint8Array> {
    if (file.purpose !== "batch") {
      throw badRequest("input_file_id", `file ${file.id} is a batch's ${file.purpose}, not a batch input file`);
    }
    const out = new Uint8Array(file.bytes); // a batch input file: file.bytes <= MAX_BATCH_FILE_BYTES (checked when the record was decoded)
    let at = 0;
    for await (const part of this.fileContent(file)) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  async deleteFile(id: string): Promise<boolean> {
    const file = await this.getFile(id);
    if (file === undefined) {
      return false;
    }
    const jsm = await this.#ensure();
    await jsm.streams.purge(this.names.files, { filter: this.names.fileAll(id) });
    return true;
  }

  async listFiles(limit: number): Promise<FileRecord[]> {
    const jsm = await this.#ensure();
    const files: FileRecord[] = [];
    await readMatching(this.#js, jsm, this.names.files, `${this.#prefix}.batch.file.*.meta`, MAX_STORED_FILES, (m) => {
      const decoded = decodeBatchRecord(m.data, "file");
      if (decoded.ok) {
        files.push(decoded.value);
      } else {
        this.#refused(decoded.error.message);
      }
    });
    return files.sort((a, b) => b.createdAt - a.createdAt).slice(0, limit);
  }

  // ---- batches ----

  async createBatch(inputFileId: string, endpoint: string, metadata: string): Promise<BatchRecord> {
    const file = await this.getFile(inputFileId);
    if (file === undefined) {
      throw new ApiError(404, `no file '${inputFileId.slice(0, 64)}' (upload it with POST /v1/files, purpose "batch")`, "invalid_request_error", "input_file_id", "not_found");
    }
    const lines = parseBatchFile(await this.#fileBytes(file));
    const other = lines.findIndex((l) => l.url !== endpoint);
    if (other >= 0) {
      throw badRequest("input_file_id", `line ${other + 1} of the file asks for ${lines[other]?.url}, but the batch's endpoint is ${endpoint}; one batch runs one endpoint`, "mismatched_endpoint");
    }
    const active = (await this.#all()).filter((s) => !FINAL_STATUSES.has(s.record.status)).length;
    if (active >= MAX_ACTIVE_BATCHES) {
      throw new ApiError(429, `${MAX_ACTIVE_BATCHES} batches are running (MAX_ACTIVE_BATCHES); retry when one has finished`, "rate_limit_error", null, "batch_limit_reached");
    }
    const t = now();
    const record: BatchRecord = {
      type: "batch",
      id: `batch_${randomBytes(12).toString("hex")}`,
      inputFileId,
      endpoint,
      status: "validating",
      createdAt: t,
      inProgressAt: 0,
      finalizingAt: 0,
      completedAt: 0,
      failedAt: 0,
      expiredAt: 0,
      cancellingAt: 0,
      cancelledAt: 0,
      expiresAt: t + COMPLETION_WINDOW_S,
      total: lines.length,
      completed: 0,
      failed: 0,
      outputFileId: "",
      errorFileId: "",
      metadata,
      errors: "",
    };
    try {
      await this.#js.publish(this.names.batch(record.id), encodeBatchRecord(record), { expect: { lastSubjectSequence: 0 } });
    } catch (error) {
      throw error instanceof JetStreamApiError && /maximum messages/i.test(error.message)
        ? new ApiError(429, `${MAX_STORED_BATCHES} batches are stored (MAX_STORED_BATCHES)`, "rate_limit_error", null, "batch_limit_reached")
        : jetStreamProblem(error);
    }
    this.#event({ kind: "batch" });
    this.#once(record.id, () => this.#queue(record.id, lines));
    return record;
  }

  /** A batch, moved on as far as it can go now (its counts read from the results). */
  async getBatch(id: string): Promise<BatchRecord | undefined> {
    if (!BATCH_ID.test(id)) {
      return undefined;
    }
    const stored = await this.#get(id);
    if (stored === undefined) {
      return undefined;
    }
    return this.#advance(stored);
  }

  async listBatches(limit: number, after: string | undefined): Promise<{ data: BatchRecord[]; hasMore: boolean }> {
    const all = (await this.#all()).map((s) => s.record).sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
    const from = after === undefined ? 0 : all.findIndex((r) => r.id === after) + 1;
    const page = all.slice(from, from + limit);
    const data = await Promise.all(page.map(async (r) => (FINAL_STATUSES.has(r.status) ? r : ((await this.getBatch(r.id)) ?? r))));
    return { data, hasMore: from + limit < all.length };
  }

  async cancelBatch(id: string): Promise<BatchRecord | undefined> {
    const updated = await this.#update(id, (r) => {
      if (FINAL_STATUSES.has(r.status) || r.status === "cancelling") {
        throw new ApiError(409, `batch ${id} is ${r.status}; only an unfinished batch can be cancelled`, "invalid_request_error", null, "invalid_state");
      }
      return { ...r, status: "cancelling", cancellingAt: now() };
    });
    if (updated !== undefined) {
      const jsm = await this.#ensure();
      await jsm.streams.purge(this.names.lines, { filter: `${this.#prefix}.batch.line.*.${id}` }).catch((e: unknown) => this.#log(`barbell serve: [batch] ${jetStreamProblem(e).message}`));
      return this.#advance(updated);
    }
    return undefined;
  }

  async #get(id: string): Promise<Stored | undefined> {
    const jsm = await this.#ensure();
    const m = await jsm.streams.getMessage(this.names.state, { last_by_subj: this.names.batch(id) });
    if (m === null) {
      return undefined;
    }
    const decoded = decodeBatchRecord(m.data, "batch");
    if (!decoded.ok || decoded.value.id !== id) {
      this.#refused(decoded.ok ? `batch record ${id} names another batch` : decoded.error.message);
      return undefined;
    }
    return { record: decoded.value, seq: m.seq };
  }

  async #all(): Promise<Stored[]> {
    const jsm = await this.#ensure();
    const out: Stored[] = [];
    await readMatching(this.#js, jsm, this.names.state, `${this.#prefix}.batch.state.*`, MAX_STORED_BATCHES, (m) => {
      const decoded = decodeBatchRecord(m.data, "batch");
      if (decoded.ok) {
        out.push({ record: decoded.value, seq: m.seq });
      } else {
        this.#refused(decoded.error.message);
      }
    });
    return out;
  }

  /** Compare-and-set on a batch record: `change` sees the latest record (retried when another gateway wrote meanwhile). */
  async #update(id: string, change: (r: BatchRecord) => BatchRecord | undefined): Promise<Stored | undefined> {
    for (let i = 0; i < CAS_TRIES; i++) {
      const stored = await this.#get(id);
      if (stored === undefined) {
        return undefined;
      }
      const next = change(stored.record);
      if (next === undefined) {
        return stored;
      }
      try {
        const ack = await this.#js.publish(this.names.batch(id), encodeBatchRecord(next), { expect: { lastSubjectSequence: stored.seq } });
        return { record: next, seq: ack.seq };
      } catch (error) {
        if (!(error instanceof JetStreamApiError && error.code === JS_WRONG_LAST_SEQUENCE)) {
          throw jetStreamProblem(error);
        }
      }
    }
    throw new ApiError(503, `batch ${id} is being changed by other gateways; retry`, "server_error", null, "unavailable");
  }

  #refused(why: string): void {
    this.#event({ kind: "refused-record" });
    this.#log(`barbell serve: [batch] refused a stored record: ${why.slice(0, 300)}`);
  }

  /** Runs `work` for batch `id` unless this gateway is already doing something for it. */
  #once(id: string, work: () => Promise<void>): Promise<void> {
    let running = this.#busy.get(id);
    if (running === undefined) {
      running = work()
        .catch((e: unknown) => this.#log(`barbell serve: [batch] ${id}: ${e instanceof Error ? e.message : String(e)}`))
        .finally(() => this.#busy.delete(id));
      this.#busy.set(id, running);
    }
    return running;
  }

  /** Queues a batch's lines for the workers of each line's model (lines whose body names no model get error lines now). */
  async #queue(id: string, lines: readonly BatchLine[]): Promise<void> {
    let index = 0;
    // Asked once per model and batch: a worker missing a heartbeat while the lines are queued changes nothing.
    const served = new Map<string, boolean>();
    const one = async (i: number, line: BatchLine): Promise<void> => {
      let model: string;
      try {
        model = requestedModel(line.body);
        if (!served.has(model)) {
          served.set(model, this.#serves(model));
        }
        if (served.get(model) !== true) {
          throw new ApiError(404, `model '${model}' does not exist (see GET /v1/models)`, "invalid_request_error", "model", "model_not_found");
        }
      } catch (error) {
        const api = error instanceof ApiError ? error : badRequest("model", "'model' is missing");
        await writeResult(this.#js, this.names, id, i, line.customId, true, outputLine(line.customId, { status: api.status, body: api.body() }));
        return;
      }
      const body = JSON.stringify(line.body);
      if (Buffer.byteLength(body) > MAX_BATCH_LINE_BYTES) {
        const api = badRequest(null, `the request body is over ${MAX_BATCH_LINE_BYTES} bytes written as JSON (MAX_BATCH_LINE_BYTES)`, "line_too_long");
        await writeResult(this.#js, this.names, id, i, line.customId, true, outputLine(line.customId, { status: api.status, body: api.body() }));
        return;
      }
      const record = encodeBatchRecord({ type: "line", batch: id, index: i, customId: line.customId, url: line.url, body });
      await this.#js.publish(this.names.line(model, id), record, { msgID: `${id}.${i}` });
    };
    const lane = async (): Promise<void> => {
      while (index < lines.length) {
        const i = index++;
        await one(i, lines[i] as BatchLine);
      }
    };
    try {
      await Promise.all(Array.from({ length: PUBLISH_WINDOW }, lane));
    } catch (error) {
      throw jetStreamProblem(error);
    }
    this.#event({ kind: "queued", lines: lines.length });
    await this.#update(id, (r) => (r.status === "validating" ? { ...r, status: "in_progress", inProgressAt: now() } : undefined));
  }

  async #advance(stored: Stored): Promise<BatchRecord> {
    const r = stored.record;
    if (FINAL_STATUSES.has(r.status)) {
      return r;
    }
    if (r.status === "validating") {
      if (now() - r.createdAt >= VALIDATING_STALL_S && !this.#busy.has(r.id)) {
        void this.#once(r.id, async () => {
          const file = await this.getFile(r.inputFileId);
          if (file === undefined) {
            await this.#update(r.id, (x) => ({ ...x, status: "failed", failedAt: now(), errors: JSON.stringify([{ code: "file_not_found", message: "the input file was deleted", param: "input_file_id", line: null }]) }));
            return;
          }
          await this.#queue(r.id, parseBatchFile(await this.#fileBytes(file)));
        });
      }
      return r;
    }
    const jsm = await this.#ensure();
    const done = await countMatching(jsm, this.names.results, this.names.resultsOf(r.id));
    const failed = await countMatching(jsm, this.names.results, this.names.failuresOf(r.id));
    const counted: BatchRecord = { ...r, completed: Math.max(0, Math.min(done, r.total) - failed), failed: Math.min(failed, r.total) };
    const end: BatchStatus | undefined =
      done >= r.total
        ? r.status === "cancelling"
          ? "cancelled"
          : "completed"
        : r.status === "cancelling"
          ? now() - r.cancellingAt >= LINE_ACK_WAIT_MS / 1000
            ? "cancelled"
            : undefined
          : now() >= r.expiresAt
            ? "expired"
            : undefined;
    if (end === undefined) {
      return counted;
    }
    await this.#once(r.id, () => this.#finish(r, end));
    return (await this.#get(r.id))?.record ?? counted;
  }

  /** Writes the output and error files from the results and marks the batch `end` (once, by compare-and-set). */
  async #finish(r: BatchRecord, end: BatchStatus): Promise<void> {
    const jsm = await this.#ensure();
    if (end !== "completed") {
      await jsm.streams.purge(this.names.lines, { filter: `${this.#prefix}.batch.line.*.${r.id}` });
    }
    const output = new FileWriter(this, newFileId());
    const errors = new FileWriter(this, newFileId());
    const have = new Uint8Array(r.total);
    await readMatching(this.#js, jsm, this.names.results, this.names.resultsOf(r.id), MAX_BATCH_LINES, async (m) => {
      const decoded = decodeBatchRecord(m.data, "result");
      if (!decoded.ok || decoded.value.index >= r.total || have[decoded.value.index] === 1) {
        this.#refused(decoded.ok ? `a result for line ${decoded.value.index} of ${r.id}, which has ${r.total} lines or has one already` : decoded.error.message);
        return;
      }
      have[decoded.value.index] = 1;
      await (decoded.value.failed ? errors : output).add(decoded.value.line);
    });
    if (have.includes(0)) {
      // Lines that never ran (cancelled or expired) get an error line each, so every custom_id has one.
      const file = await this.getFile(r.inputFileId);
      const lines = file === undefined ? [] : parseBatchFile(await this.#fileBytes(file));
      const code = end === "cancelled" ? "batch_cancelled" : end === "expired" ? "batch_expired" : "batch_failed";
      for (let i = 0; i < r.total; i++) {
        const line = lines[i];
        if (have[i] === 0 && line !== undefined) {
          await errors.add(outputLine(line.customId, { code, message: `the batch was ${end === "cancelled" ? "cancelled" : end} before this request ran` }));
        }
      }
    }
    const outputId = await output.close();
    const errorId = await errors.close();
    const t = now();
    const finished = await this.#update(r.id, (x) =>
      FINAL_STATUSES.has(x.status)
        ? undefined
        : {
            ...x,
            status: end,
            finalizingAt: t,
            ...(end === "completed" ? { completedAt: t } : end === "cancelled" ? { cancelledAt: t } : end === "expired" ? { expiredAt: t } : { failedAt: t }),
            completed: output.lines,
            failed: errors.lines,
            outputFileId: outputId ?? "",
            errorFileId: errorId ?? "",
          },
    );
    const mine = finished !== undefined && finished.record.status === end && finished.record.finalizingAt === t && finished.record.outputFileId === (outputId ?? "");
    if (!mine) {
      // Another gateway finished the batch first: its files are the batch's; this gateway's go.
      for (const id of [outputId, errorId]) {
        if (id !== undefined) {
          await jsm.streams.purge(this.names.files, { filter: this.names.fileAll(id) }).catch(() => undefined);
        }
      }
    } else {
      this.#event({ kind: "finished", status: end, completed: output.lines, failed: errors.lines });
      this.#log(`barbell serve: [batch] ${r.id} ${end}: ${output.lines} completed, ${errors.lines} failed`);
    }
  }

  /** For FileWriter: one part, written once. */
  async writePart(id: string, n: number, bytes: Uint8Array): Promise<void> {
    await this.#create(this.names.filePart(id, n), bytes);
  }

  async writeMeta(record: FileRecord): Promise<void> {
    await this.#create(this.names.fileMeta(record.id), encodeBatchRecord(record));
  }
}

const newFileId = (): string => `file-${randomBytes(12).toString("hex")}`;

/** Writes a file line by line in FILE_PART_BYTES parts (memory: one part). */
class FileWriter {
  #buf = Buffer.alloc(FILE_PART_BYTES);
  #at = 0;
  #parts = 0;
  #bytes = 0;
  lines = 0;

  constructor(
    private readonly store: BatchStore,
    readonly id: string,
  ) {}

  async add(line: string): Promise<void> {
    const bytes = Buffer.from(`${line}\n`);
    this.lines++;
    let from = 0;
    while (from < bytes.length) {
      const n = bytes.copy(this.#buf, this.#at, from);
      this.#at += n;
      from += n;
      if (this.#at === FILE_PART_BYTES) {
        await this.#flush();
      }
    }
  }

  async #flush(): Promise<void> {
    if (this.#at > 0) {
      await this.store.writePart(this.id, this.#parts++, this.#buf.subarray(0, this.#at));
      this.#bytes += this.#at;
      this.#buf = Buffer.alloc(FILE_PART_BYTES);
      this.#at = 0;
    }
  }

  /** The file's id, or undefined when it holds no lines (OpenAI's null file id). */
  async close(): Promise<string | undefined> {
    if (this.lines === 0) {
      return undefined;
    }
    await this.#flush();
    await this.store.writeMeta({ type: "file", id: this.id, bytes: this.#bytes, createdAt: now(), filename: `${this.id}.jsonl`, purpose: "batch_output", parts: this.#parts, lines: this.lines });
    return this.id;
  }
}

