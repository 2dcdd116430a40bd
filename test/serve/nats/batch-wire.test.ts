/**
 * Batch jobs without a NATS server: the JSONL reader's typed refusals (limits checked before parsing) and
 * the stored records' decoder (every record round-trips; garbage, truncations, other versions and broken
 * limits are typed errors, never throws).
 */
import { describe, expect, it } from "vitest";
import { ApiError } from "../../../src/serve/http/errors.js";
import { parseBatchFile } from "../../../src/serve/batch/jsonl.js";
import {
  BATCH_MAGIC,
  batchNames,
  decodeBatchRecord,
  encodeBatchRecord,
  MAX_BATCH_FILE_BYTES,
  MAX_BATCH_LINE_BYTES,
  MAX_BATCH_LINES,
  modelToken,
  type BatchMessage,
} from "../../../src/serve/batch/wire.js";

const line = (id: string, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ custom_id: id, method: "POST", url: "/v1/completions", body: { model: "kjv", prompt: "In the beginning", max_tokens: 1 }, ...extra });
const file = (...lines: string[]): Uint8Array => new TextEncoder().encode(lines.join("\n"));

function refusal(bytes: Uint8Array): ApiError {
  try {
    parseBatchFile(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    return error as ApiError;
  }
  throw new Error("the file was accepted");
}

describe("batch input files (JSONL)", () => {
  it("reads lines with LF or CRLF and a final newline", () => {
    const lines = parseBatchFile(new TextEncoder().encode(`${line("a")}\r\n${line("b")}\n`));
    expect(lines.map((l) => l.customId)).toEqual(["a", "b"]);
    expect(lines[0]?.url).toBe("/v1/completions");
    expect(lines[0]?.body["prompt"]).toBe("In the beginning");
  });

  it("refuses hostile files with a typed 400 naming the line", () => {
    const cases: [Uint8Array, string, RegExp][] = [
      [file(line("a"), "{not json"), "invalid_jsonl", /line 2/],
      [file(line("a"), line("a")), "duplicate_custom_id", /line 2: custom_id 'a'/],
      [file(line("a"), "", line("b")), "invalid_jsonl", /line 2/],
      [file("[1,2]"), "invalid_jsonl", /line 1 must be a JSON object/],
      [file(line("")), "invalid_jsonl", /custom_id/],
      [file(line("x".repeat(513))), "invalid_jsonl", /custom_id/],
      [file(line("a", { method: "GET" })), "invalid_jsonl", /method/],
      [file(line("a", { url: "/v1/embeddings" })), "invalid_jsonl", /url/],
      [file(line("a", { body: "text" })), "invalid_jsonl", /body/],
      [Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d), "invalid_jsonl", /line 1/],
      [new Uint8Array(0), "invalid_jsonl", /no requests/],
      [file(line("a", { pad: "x".repeat(MAX_BATCH_LINE_BYTES) })), "line_too_long", /line 1 is \d+ bytes/],
    ];
    for (const [bytes, code, message] of cases) {
      const e = refusal(bytes);
      expect(e.status).toBe(400);
      expect(e.code).toBe(code);
      expect(e.param).toBe("file");
      expect(e.message).toMatch(message);
    }
  });

  it("checks the size and the line count before parsing", () => {
    // Over the byte limit: refused by its length alone (the bytes are not even JSON).
    expect(refusal(new Uint8Array(MAX_BATCH_FILE_BYTES + 1)).code).toBe("file_too_large");
    const many = Array.from({ length: MAX_BATCH_LINES + 1 }, (_, i) => `{"custom_id":"${i}","method":"POST","url":"/v1/completions","body":{}}`).join("\n");
    const e = refusal(new TextEncoder().encode(many));
    expect(e.code).toBe("too_many_lines");
  });
});

describe("stored batch records (BBAT frames)", () => {
  const id = `batch_${"ab".repeat(12)}`;
  const records: BatchMessage[] = [
    { type: "line", batch: id, index: 3, customId: "req-3", url: "/v1/chat/completions", body: '{"model":"kjv"}' },
    { type: "result", index: 3, customId: "req-3", failed: false, line: '{"id":"x"}' },
    {
      type: "batch",
      id,
      inputFileId: `file-${"cd".repeat(12)}`,
      endpoint: "/v1/completions",
      status: "in_progress",
      createdAt: 1,
      inProgressAt: 2,
      finalizingAt: 0,
      completedAt: 0,
      failedAt: 0,
      expiredAt: 0,
      cancellingAt: 0,
      cancelledAt: 0,
      expiresAt: 86_401,
      total: 10,
      completed: 4,
      failed: 1,
      outputFileId: "",
      errorFileId: "",
      metadata: '{"k":"v"}',
      errors: "",
    },
    { type: "file", id: `file-${"cd".repeat(12)}`, bytes: 300_000, createdAt: 5, filename: "in.jsonl", purpose: "batch", parts: 2, lines: 7 },
  ];

  it("round-trips every record and refuses another kind where one is expected", () => {
    for (const r of records) {
      const decoded = decodeBatchRecord(encodeBatchRecord(r), r.type);
      expect(decoded.ok && decoded.value).toEqual(r);
    }
    const wrong = decodeBatchRecord(encodeBatchRecord(records[0] as BatchMessage), "batch");
    expect(!wrong.ok && wrong.error.message).toMatch(/a line record where a batch was expected/);
  });

  it("refuses garbage, truncations, other versions and broken limits without throwing", () => {
    for (const r of records) {
      const bytes = encodeBatchRecord(r);
      for (let n = 0; n < bytes.length; n++) {
        expect(decodeBatchRecord(bytes.subarray(0, n), r.type).ok).toBe(false);
      }
      const other = bytes.slice();
      other[4] = 2;
      expect(!decodeBatchRecord(other, r.type).ok && decodeBatchRecord(other, r.type)).toMatchObject({ error: { code: "bad-record" } });
      expect(decodeBatchRecord(Uint8Array.of(...bytes, 0), r.type).ok).toBe(false);
    }
    let seed = 7;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 2000; i++) {
      const base = encodeBatchRecord(records[i % records.length] as BatchMessage);
      const mutated = base.slice();
      mutated[4 + Math.floor(rand() * (mutated.length - 4))] = Math.floor(rand() * 256);
      const random = Uint8Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256));
      random.set(new TextEncoder().encode(BATCH_MAGIC).subarray(0, Math.min(4, random.length)));
      for (const type of ["line", "result", "batch", "file"] as const) {
        expect(() => decodeBatchRecord(mutated, type)).not.toThrow();
        expect(() => decodeBatchRecord(random, type)).not.toThrow();
      }
    }
    // Decodes, but breaks a limit: a line index past MAX_BATCH_LINES, a file whose parts do not match its bytes.
    const far = encodeBatchRecord({ ...(records[0] as Extract<BatchMessage, { type: "line" }>), index: MAX_BATCH_LINES });
    expect(decodeBatchRecord(far, "line").ok).toBe(false);
    const parts = encodeBatchRecord({ ...(records[3] as Extract<BatchMessage, { type: "file" }>), parts: 1 });
    expect(decodeBatchRecord(parts, "file").ok).toBe(false);
  });

  it("names streams and subjects under the NATS prefix", () => {
    const n = batchNames("team.a");
    expect(n.lines).toBe("team_a_batch_lines");
    expect(n.line("kjv", id)).toBe(`team.a.batch.line.${modelToken("kjv")}.${id}`);
    expect(n.result(id, 7)).toBe(`team.a.batch.result.${id}.7`);
    expect(modelToken("a model id with spaces")).toMatch(/^m[0-9a-f]{20}$/);
    expect(() => batchNames("bad prefix")).toThrow(/prefix/);
  });
});
