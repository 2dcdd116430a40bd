/**
 * OpenAI's Files and Batch API over the JetStream batch store (src/serve/batch, docs/batch.md), mounted by a
 * NATS gateway: `POST /v1/files` (multipart as OpenAI's clients send it, or the raw JSONL with
 * `?purpose=batch`), `GET /v1/files`, `GET /v1/files/{id}`, `GET /v1/files/{id}/content`,
 * `DELETE /v1/files/{id}`, `POST /v1/batches`, `GET /v1/batches`, `GET /v1/batches/{id}`,
 * `POST /v1/batches/{id}/cancel`. Errors in OpenAI's shape; counters on /metrics.
 */
import { Readable } from "node:stream";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Counter, type Registry } from "prom-client";
import type { BatchStore } from "../batch/store.js";
import { BATCH_ENDPOINTS, COMPLETION_WINDOW, MAX_BATCH_FILE_BYTES, MAX_FILENAME_LENGTH, MAX_METADATA_PAIRS, type BatchRecord, type FileRecord } from "../batch/wire.js";
import { ServeError } from "../errors.js";
import { ApiError, badRequest } from "./errors.js";

export type { BatchStore } from "../batch/store.js";

/** Room for the multipart framing around an uploaded file. */
const MULTIPART_SLACK_BYTES = 64 * 1024;
/** Most items a list returns (OpenAI's `limit`), and the default. */
export const MAX_LIST_LIMIT = 100;
const DEFAULT_LIST_LIMIT = 20;

type Body = Record<string, unknown>;
const isObject = (v: unknown): v is Body => typeof v === "object" && v !== null && !Array.isArray(v);

function fileObject(f: FileRecord): Body {
  return { id: f.id, object: "file", bytes: f.bytes, created_at: f.createdAt, filename: f.filename, purpose: f.purpose, status: "processed", status_details: null };
}

/** JSON text from a stored record (checked when read, but still never trusted to parse). */
function parsed(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const orNull = (n: number): number | null => (n === 0 ? null : n);

function batchObject(r: BatchRecord): Body {
  return {
    id: r.id,
    object: "batch",
    endpoint: r.endpoint,
    errors: r.errors === "" ? null : { object: "list", data: parsed(r.errors) ?? [] },
    input_file_id: r.inputFileId,
    completion_window: COMPLETION_WINDOW,
    status: r.status,
    output_file_id: r.outputFileId === "" ? null : r.outputFileId,
    error_file_id: r.errorFileId === "" ? null : r.errorFileId,
    created_at: r.createdAt,
    in_progress_at: orNull(r.inProgressAt),
    expires_at: r.expiresAt,
    finalizing_at: orNull(r.finalizingAt),
    completed_at: orNull(r.completedAt),
    failed_at: orNull(r.failedAt),
    expired_at: orNull(r.expiredAt),
    cancelling_at: orNull(r.cancellingAt),
    cancelled_at: orNull(r.cancelledAt),
    request_counts: { total: r.total, completed: r.completed, failed: r.failed },
    metadata: r.metadata === "" ? null : (parsed(r.metadata) ?? null),
  };
}

function listLimit(query: unknown): number {
  const raw = isObject(query) ? query["limit"] : undefined;
  if (raw === undefined) {
    return DEFAULT_LIST_LIMIT;
  }
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_LIST_LIMIT) {
    throw badRequest("limit", `'limit' must be an integer in 1..${MAX_LIST_LIMIT}`);
  }
  return n;
}

function checkMetadata(v: unknown): string {
  if (v === undefined || v === null) {
    return "";
  }
  if (!isObject(v) || Object.keys(v).length > MAX_METADATA_PAIRS || !Object.entries(v).every(([k, x]) => k.length <= 64 && typeof x === "string" && x.length <= 512)) {
    throw badRequest("metadata", `'metadata' must be an object of at most ${MAX_METADATA_PAIRS} string values (keys up to 64 characters, values up to 512)`);
  }
  return JSON.stringify(v);
}

/** The uploaded file of a `POST /v1/files`: multipart (`file`, `purpose`) or the raw bytes with `?purpose=`. */
async function uploaded(request: FastifyRequest): Promise<{ bytes: Uint8Array; filename: string; purpose: string }> {
  const type = request.headers["content-type"] ?? "";
  const body = request.body;
  if (!Buffer.isBuffer(body)) {
    throw badRequest("file", "send the file as multipart/form-data (fields 'file' and 'purpose'), or as the raw JSONL with ?purpose=batch");
  }
  if (!type.startsWith("multipart/form-data")) {
    const q = isObject(request.query) ? request.query : {};
    return { bytes: body, filename: typeof q["filename"] === "string" ? q["filename"] : "batch.jsonl", purpose: typeof q["purpose"] === "string" ? q["purpose"] : "" };
  }
  let form: FormData;
  try {
    form = await new Response(body, { headers: { "content-type": type } }).formData();
  } catch {
    throw badRequest("file", "the multipart body could not be read", "invalid_multipart");
  }
  const file = form.get("file");
  const purpose = form.get("purpose");
  if (file === null || typeof file === "string") {
    throw badRequest("file", "the multipart body has no 'file' part");
  }
  if (file.size > MAX_BATCH_FILE_BYTES) {
    throw badRequest("file", `the file is ${file.size} bytes, over ${MAX_BATCH_FILE_BYTES} (MAX_BATCH_FILE_BYTES)`, "file_too_large");
  }
  return { bytes: new Uint8Array(await file.arrayBuffer()), filename: file.name.slice(0, MAX_FILENAME_LENGTH), purpose: typeof purpose === "string" ? purpose : "" };
}

/** Mounts the Files and Batch routes on `app`, backed by `store`, with counters in `registry`. */
export function registerBatches(app: FastifyInstance, store: BatchStore, registry: Registry, log: (line: string) => void): void {
  const registers = [registry];
  const files = new Counter({ name: "barbell_batch_files_total", help: "Batch input files stored", registers });
  const refused = new Counter({ name: "barbell_batch_refused_total", help: "Batch uploads and creations refused (4xx) by code", labelNames: ["code"], registers });
  const batches = new Counter({ name: "barbell_batches_total", help: "Batches created (status created) and finished by this gateway, by status", labelNames: ["status"], registers });
  const lines = new Counter({ name: "barbell_batch_lines_total", help: "Batch lines queued, and lines of finished batches by outcome (completed, failed)", labelNames: ["outcome"], registers });
  const records = new Counter({ name: "barbell_batch_refused_records_total", help: "Records read back from JetStream that were refused as malformed", registers });
  store.observe((e) => {
    switch (e.kind) {
      case "file":
        return files.inc();
      case "batch":
        return batches.inc({ status: "created" });
      case "queued":
        return lines.inc({ outcome: "queued" }, e.lines);
      case "finished":
        batches.inc({ status: e.status });
        lines.inc({ outcome: "completed" }, e.completed);
        return lines.inc({ outcome: "failed" }, e.failed);
      case "refused-record":
        return records.inc();
    }
  });
  // JetStream's failures (off, unreachable, no permission) are a 503; refusals are counted by code.
  const counted = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) {
        refused.inc({ code: error.code ?? String(error.status) });
      }
      if (error instanceof ServeError) {
        log(`barbell serve: ${error.message}`);
        throw new ApiError(503, "batch jobs are unavailable now: the NATS server's JetStream is not reachable or not enabled", "server_error", null, "unavailable");
      }
      throw error;
    }
  };
  const notFound = (what: string, id: string): ApiError => new ApiError(404, `no ${what} '${id.slice(0, 64)}'`, "invalid_request_error", null, "not_found");

  void app.register(async (scope) => {
    const raw = (_request: FastifyRequest, body: Buffer, done: (err: Error | null, body?: Buffer) => void): void => done(null, body);
    for (const type of ["multipart/form-data", "application/jsonl", "application/x-ndjson", "application/octet-stream", "text/plain"]) {
      scope.addContentTypeParser(type, { parseAs: "buffer", bodyLimit: MAX_BATCH_FILE_BYTES + MULTIPART_SLACK_BYTES }, raw);
    }
    scope.post("/v1/files", { bodyLimit: MAX_BATCH_FILE_BYTES + MULTIPART_SLACK_BYTES }, async (request) =>
      counted(async () => {
        const { bytes, filename, purpose } = await uploaded(request);
        return fileObject(await store.putFile(bytes, filename, purpose));
      }),
    );
    scope.get("/v1/files", async (request) => counted(async () => ({ object: "list", data: (await store.listFiles(listLimit(request.query))).map(fileObject), has_more: false })));
    scope.get<{ Params: { id: string } }>("/v1/files/:id", async (request) =>
      counted(async () => {
        const f = await store.getFile(request.params.id);
        if (f === undefined) {
          throw notFound("file", request.params.id);
        }
        return fileObject(f);
      }),
    );
    scope.get<{ Params: { id: string } }>("/v1/files/:id/content", async (request, reply: FastifyReply) =>
      counted(async () => {
        const f = await store.getFile(request.params.id);
        if (f === undefined) {
          throw notFound("file", request.params.id);
        }
        return reply.type("application/jsonl").header("content-length", String(f.bytes)).send(Readable.from(store.fileContent(f)));
      }),
    );
    scope.delete<{ Params: { id: string } }>("/v1/files/:id", async (request) =>
      counted(async () => {
        if (!(await store.deleteFile(request.params.id))) {
          throw notFound("file", request.params.id);
        }
        return { id: request.params.id, object: "file", deleted: true };
      }),
    );
    scope.post("/v1/batches", async (request) =>
      counted(async () => {
        const b = request.body;
        if (!isObject(b)) {
          throw badRequest(null, "the request body must be a JSON object");
        }
        const input = b["input_file_id"];
        if (typeof input !== "string" || input.length === 0 || input.length > 64) {
          throw badRequest("input_file_id", "'input_file_id' must be the id of an uploaded file (POST /v1/files, purpose \"batch\")");
        }
        const endpoint = b["endpoint"];
        if (typeof endpoint !== "string" || !(BATCH_ENDPOINTS as readonly string[]).includes(endpoint)) {
          throw badRequest("endpoint", `'endpoint' must be ${BATCH_ENDPOINTS.join(" or ")}`);
        }
        if (b["completion_window"] !== COMPLETION_WINDOW) {
          throw badRequest("completion_window", `'completion_window' must be "${COMPLETION_WINDOW}"`);
        }
        return batchObject(await store.createBatch(input, endpoint, checkMetadata(b["metadata"])));
      }),
    );
    scope.get("/v1/batches", async (request) =>
      counted(async () => {
        const q = isObject(request.query) ? request.query : {};
        const after = typeof q["after"] === "string" ? q["after"] : undefined;
        const page = await store.listBatches(listLimit(q), after);
        const data = page.data.map(batchObject);
        return { object: "list", data, first_id: page.data[0]?.id ?? null, last_id: page.data.at(-1)?.id ?? null, has_more: page.hasMore };
      }),
    );
    scope.get<{ Params: { id: string } }>("/v1/batches/:id", async (request) =>
      counted(async () => {
        const r = await store.getBatch(request.params.id);
        if (r === undefined) {
          throw notFound("batch", request.params.id);
        }
        return batchObject(r);
      }),
    );
    scope.post<{ Params: { id: string } }>("/v1/batches/:id/cancel", async (request) =>
      counted(async () => {
        const r = await store.cancelBatch(request.params.id);
        if (r === undefined) {
          throw notFound("batch", request.params.id);
        }
        return batchObject(r);
      }),
    );
  });
}
