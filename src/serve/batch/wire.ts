/**
 * Durable batch jobs on JetStream (docs/batch.md): the streams, their subjects, the limits, and the records
 * stored in them. Every record is one frame in BAREWire's layout (a 4-byte magic, a u16 version, a BARE union
 * declared with the actor runtime's schema language, like the NATS frames of ../nats/wire.ts), with its own
 * magic "BBAT". What is read back from JetStream is hostile input: {@link decodeBatchRecord} checks the size
 * first, then the magic, the version, the BARE value and each record's limits, and never throws.
 */
import { createHash } from "node:crypto";
import { framedProtocol } from "../../actors/framed.js";
import { msg, protocol, t, type MessageOf } from "../../actors/index.js";
import { BarbellError } from "../../core/errors.js";
import { err, ok, type Result } from "../../core/result.js";
import { checkPrefix, DEFAULT_NATS_PREFIX } from "../nats/connection.js";
import { MAX_NATS_FRAME_BYTES } from "../nats/wire.js";

/** Largest uploaded file (bytes); checked before the body is read (the route's body limit) and again after. */
export const MAX_BATCH_FILE_BYTES = 64 * 1024 * 1024;
/** Most lines (requests) in one batch file (OpenAI's limit). */
export const MAX_BATCH_LINES = 50_000;
/** Longest line of a batch file (bytes): a line travels as one NATS message, under NATS's 1 MiB max_payload. */
export const MAX_BATCH_LINE_BYTES = 512 * 1024;
/** Longest result line a worker stores (bytes); a longer answer becomes an error line. */
export const MAX_RESULT_LINE_BYTES = 768 * 1024;
/** Longest custom_id (characters). */
export const MAX_CUSTOM_ID_LENGTH = 512;
/** Batches not yet finished (validating, in_progress, finalizing, cancelling) at once; more get 429. */
export const MAX_ACTIVE_BATCHES = 64;
/** Batch records and files kept (the streams refuse more; delete files to make room). */
export const MAX_STORED_BATCHES = 10_000;
export const MAX_STORED_FILES = 10_000;
/** Bytes of a file per stored part. */
export const FILE_PART_BYTES = 256 * 1024;
/** Longest filename and metadata kept (characters / pairs, as OpenAI: 16 pairs of 64 and 512 characters). */
export const MAX_FILENAME_LENGTH = 256;
export const MAX_METADATA_PAIRS = 16;
/** A line's lease: a worker that holds a line this long without a sign of life loses it (it is redelivered). */
export const LINE_ACK_WAIT_MS = 10_000;
/** Deliveries of one line that fail for a transient reason (worker busy or restarting) before it gets an error line. */
export const MAX_LINE_ATTEMPTS = 5;
/** The one completion window OpenAI accepts, and how long it is. */
export const COMPLETION_WINDOW = "24h";
export const COMPLETION_WINDOW_S = 24 * 3600;
/** The endpoints a batch may run. */
export const BATCH_ENDPOINTS = ["/v1/chat/completions", "/v1/completions"] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

/** The first four bytes of every stored batch record. */
export const BATCH_MAGIC = "BBAT";
export const BATCH_VERSION = 1;

export const BATCH_STATUSES = ["validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled"] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];
/** The statuses a batch ends in. */
export const FINAL_STATUSES: ReadonlySet<BatchStatus> = new Set(["completed", "failed", "expired", "cancelled"]);

/** The records, in wire order (append new ones at the end). Times are Unix seconds, 0 for "not yet". */
export const batchProtocol = protocol({
  /** One request of a batch, queued on the work-queue stream for the workers of its model. */
  line: msg.tell({ batch: t.str, index: t.uint, customId: t.str, url: t.str, body: t.str }),
  /** The one result of line `index`: its output line (JSON text) and whether it goes to the error file. */
  result: msg.tell({ index: t.uint, customId: t.str, failed: t.bool, line: t.str }),
  /** A batch's state (one record per batch, replaced on every change). */
  batch: msg.tell({
    id: t.str,
    inputFileId: t.str,
    endpoint: t.str,
    status: t.literal(...BATCH_STATUSES),
    createdAt: t.uint,
    inProgressAt: t.uint,
    finalizingAt: t.uint,
    completedAt: t.uint,
    failedAt: t.uint,
    expiredAt: t.uint,
    cancellingAt: t.uint,
    cancelledAt: t.uint,
    expiresAt: t.uint,
    total: t.uint,
    completed: t.uint,
    failed: t.uint,
    outputFileId: t.str,
    errorFileId: t.str,
    /** JSON texts: the metadata object and the validation errors list ("" for none). */
    metadata: t.str,
    errors: t.str,
  }),
  /** A file's description; its bytes are in `parts` part messages. */
  file: msg.tell({ id: t.str, bytes: t.uint, createdAt: t.uint, filename: t.str, purpose: t.str, parts: t.uint, lines: t.uint }),
});
export type BatchMessage = MessageOf<typeof batchProtocol>;
export type LineRecord = Extract<BatchMessage, { type: "line" }>;
export type ResultRecord = Extract<BatchMessage, { type: "result" }>;
export type BatchRecord = Extract<BatchMessage, { type: "batch" }>;
export type FileRecord = Extract<BatchMessage, { type: "file" }>;

/** A stored batch record that was refused (counted by the reader, never fatal). */
export class BatchRecordError extends BarbellError {
  readonly code = "bad-record";
  constructor(message: string) {
    super(message);
    this.name = "BatchRecordError";
  }
}

export function encodeBatchRecord(record: BatchMessage): Uint8Array {
  const framed = batchFrames.encode(record);
  if (!framed.ok) {
    throw new BatchRecordError(`${framed.error.message} (MAX_NATS_FRAME_BYTES)`);
  }
  return framed.value;
}

export const FILE_ID = /^file-[0-9a-f]{24}$/;
export const BATCH_ID = /^batch_[0-9a-f]{24}$/;
const len = (s: string): number => Buffer.byteLength(s);

function problem(m: BatchMessage): string | undefined {
  switch (m.type) {
    case "line":
      return BATCH_ID.test(m.batch) && m.index < MAX_BATCH_LINES && m.customId.length > 0 && m.customId.length <= MAX_CUSTOM_ID_LENGTH && len(m.body) <= MAX_BATCH_LINE_BYTES && (BATCH_ENDPOINTS as readonly string[]).includes(m.url)
        ? undefined
        : "a line outside the limits";
    case "result":
      return m.index < MAX_BATCH_LINES && m.customId.length <= MAX_CUSTOM_ID_LENGTH && len(m.line) <= MAX_RESULT_LINE_BYTES ? undefined : "a result outside the limits";
    case "batch":
      return BATCH_ID.test(m.id) &&
        FILE_ID.test(m.inputFileId) &&
        (BATCH_ENDPOINTS as readonly string[]).includes(m.endpoint) &&
        m.total <= MAX_BATCH_LINES &&
        m.completed + m.failed <= m.total &&
        (m.outputFileId === "" || FILE_ID.test(m.outputFileId)) &&
        (m.errorFileId === "" || FILE_ID.test(m.errorFileId)) &&
        len(m.metadata) <= 64 * 1024 &&
        len(m.errors) <= 256 * 1024
        ? undefined
        : "a batch record outside the limits";
    case "file":
      return FILE_ID.test(m.id) &&
        ((m.purpose === "batch" && m.bytes <= MAX_BATCH_FILE_BYTES) || (m.purpose === "batch_output" && m.bytes <= MAX_BATCH_LINES * (MAX_RESULT_LINE_BYTES + 1))) && m.parts === Math.ceil(m.bytes / FILE_PART_BYTES) && m.lines <= MAX_BATCH_LINES && m.filename.length <= MAX_FILENAME_LENGTH
        ? undefined
        : "a file record outside the limits";
  }
}

/** The BBAT framing of batchProtocol with its limits (src/actors/framed.ts). */
const batchFrames = framedProtocol({ magic: BATCH_MAGIC, version: BATCH_VERSION, maxBytes: MAX_NATS_FRAME_BYTES, label: "[batch]", protocol: batchProtocol, check: problem });

/** Reads one stored record that must be of kind `type`; every problem is a BatchRecordError (never a throw). */
export function decodeBatchRecord<const K extends BatchMessage["type"]>(data: Uint8Array, type: K): Result<Extract<BatchMessage, { type: K }>, BatchRecordError> {
  const decoded = batchFrames.decode(data);
  if (!decoded.ok) {
    return err(new BatchRecordError(decoded.error.message));
  }
  if (decoded.value.type !== type) {
    return err(new BatchRecordError(`[batch] a ${decoded.value.type} record where a ${type} was expected`));
  }
  return ok(decoded.value as Extract<BatchMessage, { type: K }>);
}

/** The JetStream streams and subjects of one deployment (its NATS prefix). */
export interface BatchNames {
  readonly files: string;
  readonly state: string;
  readonly lines: string;
  readonly results: string;
  fileMeta(id: string): string;
  filePart(id: string, n: number): string;
  /** Every subject of one file (to delete it). */
  fileAll(id: string): string;
  batch(id: string): string;
  /** Lines of one batch for one model, and the filter of a model's lines. */
  line(model: string, batch: string): string;
  modelLines(model: string): string;
  /** The durable consumer that a model's workers share. */
  consumer(model: string): string;
  result(batch: string, index: number): string;
  failed(batch: string, index: number): string;
  resultsOf(batch: string): string;
  failuresOf(batch: string): string;
}

/** A model id as one subject token (model ids are free text). */
export function modelToken(model: string): string {
  return `m${createHash("sha256").update(model).digest("hex").slice(0, 20)}`;
}

/**
 * The names for a NATS prefix. Stream names cannot hold dots, so the prefix's dots become underscores in them
 * (prefixes "a.b" and "a_b" would share streams: give deployments prefixes that differ otherwise).
 */
export function batchNames(prefix = DEFAULT_NATS_PREFIX): BatchNames {
  const p = checkPrefix(prefix);
  const s = p.replace(/\./g, "_");
  return {
    files: `${s}_batch_files`,
    state: `${s}_batch_state`,
    lines: `${s}_batch_lines`,
    results: `${s}_batch_results`,
    fileMeta: (id) => `${p}.batch.file.${id}.meta`,
    filePart: (id, n) => `${p}.batch.file.${id}.part.${n}`,
    fileAll: (id) => `${p}.batch.file.${id}.>`,
    batch: (id) => `${p}.batch.state.${id}`,
    line: (model, batch) => `${p}.batch.line.${modelToken(model)}.${batch}`,
    modelLines: (model) => `${p}.batch.line.${modelToken(model)}.>`,
    consumer: (model) => `lines-${modelToken(model)}`,
    result: (batch, index) => `${p}.batch.result.${batch}.${index}`,
    failed: (batch, index) => `${p}.batch.failed.${batch}.${index}`,
    resultsOf: (batch) => `${p}.batch.result.${batch}.*`,
    failuresOf: (batch) => `${p}.batch.failed.${batch}.*`,
  };
}
