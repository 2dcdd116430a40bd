/**
 * Reading a batch input file (JSONL, OpenAI's shape): one request per line,
 * `{"custom_id": "...", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`. The file is hostile
 * input: its size, its line count and each line's length are checked before anything is parsed or sized from
 * them, the text must be UTF-8, and each line must be that shape with a custom_id no other line has. The first
 * problem is a typed 400 naming the line. What the body holds is checked later, per line, exactly as the live
 * API checks the same request (a bad body gets an error line, not a refused file).
 */
import { badRequest } from "../http/errors.js";
import { BATCH_ENDPOINTS, MAX_BATCH_FILE_BYTES, MAX_BATCH_LINE_BYTES, MAX_BATCH_LINES, MAX_CUSTOM_ID_LENGTH, type BatchEndpoint } from "./wire.js";

/** One request of a batch file. */
export interface BatchLine {
  readonly customId: string;
  readonly url: BatchEndpoint;
  readonly body: Record<string, unknown>;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses and checks a batch file; an ApiError 400 (param "file") for the first problem. */
export function parseBatchFile(bytes: Uint8Array): BatchLine[] {
  if (bytes.length > MAX_BATCH_FILE_BYTES) {
    throw badRequest("file", `the file is ${bytes.length} bytes, over ${MAX_BATCH_FILE_BYTES} (MAX_BATCH_FILE_BYTES)`, "file_too_large");
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const lines: BatchLine[] = [];
  const seen = new Set<string>();
  let start = 0;
  let n = 0;
  while (start < buf.length) {
    let end = buf.indexOf(0x0a, start);
    if (end < 0) {
      end = buf.length;
    }
    n++;
    const raw = buf.subarray(start, end > start && buf[end - 1] === 0x0d ? end - 1 : end);
    start = end + 1;
    if (raw.length === 0 && start >= buf.length) {
      break; // the file's last newline
    }
    if (lines.length >= MAX_BATCH_LINES) {
      throw badRequest("file", `the file has more than ${MAX_BATCH_LINES} lines (MAX_BATCH_LINES)`, "too_many_lines");
    }
    if (raw.length > MAX_BATCH_LINE_BYTES) {
      throw badRequest("file", `line ${n} is ${raw.length} bytes, over ${MAX_BATCH_LINE_BYTES} (MAX_BATCH_LINE_BYTES)`, "line_too_long");
    }
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(raw));
    } catch {
      throw badRequest("file", `line ${n} is not a JSON object (each line of a batch file is one request, JSONL)`, "invalid_jsonl");
    }
    lines.push(checkLine(value, n, seen));
  }
  if (lines.length === 0) {
    throw badRequest("file", "the file holds no requests", "invalid_jsonl");
  }
  return lines;
}

function checkLine(v: unknown, n: number, seen: Set<string>): BatchLine {
  const shape = `{"custom_id": "...", "method": "POST", "url": "${BATCH_ENDPOINTS.join('" or "')}", "body": {...}}`;
  if (!isObject(v)) {
    throw badRequest("file", `line ${n} must be a JSON object ${shape}`, "invalid_jsonl");
  }
  const id = v["custom_id"];
  if (typeof id !== "string" || id.length === 0 || id.length > MAX_CUSTOM_ID_LENGTH) {
    throw badRequest("file", `line ${n}: custom_id must be a string of 1..${MAX_CUSTOM_ID_LENGTH} characters`, "invalid_jsonl");
  }
  if (seen.has(id)) {
    throw badRequest("file", `line ${n}: custom_id '${id.slice(0, 64)}' is used by an earlier line; each custom_id must be unique in the file`, "duplicate_custom_id");
  }
  seen.add(id);
  if (v["method"] !== "POST") {
    throw badRequest("file", `line ${n}: method must be "POST"`, "invalid_jsonl");
  }
  const url = v["url"];
  if (typeof url !== "string" || !(BATCH_ENDPOINTS as readonly string[]).includes(url)) {
    throw badRequest("file", `line ${n}: url must be ${BATCH_ENDPOINTS.join(" or ")}`, "invalid_jsonl");
  }
  const body = v["body"];
  if (!isObject(body)) {
    throw badRequest("file", `line ${n}: body must be a JSON object (the request)`, "invalid_jsonl");
  }
  return { customId: id, url: url as BatchEndpoint, body };
}
