/**
 * The JetStream side of batch jobs that gateways and workers share: creating the four streams (idempotent),
 * writing a line's one result (exactly once: the result subject must be empty, so a second writer is told
 * the result exists), and an OpenAI batch output line.
 */
import { randomBytes } from "node:crypto";
import { DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { ServeError } from "../errors.js";
import { MAX_RESULT_LINE_BYTES, MAX_STORED_BATCHES, encodeBatchRecord, type BatchNames } from "./wire.js";

/** JetStream's API error codes that barbell reads. */
export const JS_STREAM_NOT_FOUND = 10059;
export const JS_WRONG_LAST_SEQUENCE = 10071;

/** Creates the streams of `names` when they are not there yet (a stream that exists is used as it is). */
export async function ensureStreams(jsm: JetStreamManager, names: BatchNames, prefix: string): Promise<void> {
  const wanted: (Partial<StreamConfig> & { name: string })[] = [
    { name: names.files, subjects: [`${prefix}.batch.file.>`], max_msgs_per_subject: 1 },
    { name: names.state, subjects: [`${prefix}.batch.state.>`], max_msgs_per_subject: 1, max_msgs: MAX_STORED_BATCHES, discard: DiscardPolicy.New },
    { name: names.lines, subjects: [`${prefix}.batch.line.>`], retention: RetentionPolicy.Workqueue },
    { name: names.results, subjects: [`${prefix}.batch.result.>`, `${prefix}.batch.failed.>`], max_msgs_per_subject: 1 },
  ];
  for (const config of wanted) {
    try {
      await jsm.streams.info(config.name);
    } catch (error) {
      if (!(error instanceof JetStreamApiError) || error.code !== JS_STREAM_NOT_FOUND) {
        throw jetStreamProblem(error);
      }
      await jsm.streams.add({ ...config, storage: StorageType.File }).catch((e: unknown) => {
        throw jetStreamProblem(e);
      });
    }
  }
}

/** A JetStream failure as a ServeError "unavailable" (JetStream off, a timeout, no permission). */
export function jetStreamProblem(error: unknown): ServeError {
  const why = error instanceof Error ? error.message : String(error);
  return new ServeError("unavailable", `[batch] JetStream: ${why.slice(0, 300)} (batch jobs need a NATS server with JetStream: nats-server -js)`);
}

/** An OpenAI batch output line: `response` for an HTTP answer, `error` for a line that never ran. */
export function outputLine(customId: string, answer: { status: number; body: unknown } | { code: string; message: string }): string {
  const id = `batch_req_${randomBytes(12).toString("hex")}`;
  return "status" in answer
    ? JSON.stringify({ id, custom_id: customId, response: { status_code: answer.status, request_id: randomBytes(12).toString("hex"), body: answer.body }, error: null })
    : JSON.stringify({ id, custom_id: customId, response: null, error: answer });
}

/**
 * Stores the one result of line `index` of `batch`; "exists" when a result is there already (nothing is
 * written then). A line longer than MAX_RESULT_LINE_BYTES is replaced by an error line saying so.
 */
export async function writeResult(
  js: JetStreamClient,
  names: BatchNames,
  batch: string,
  index: number,
  customId: string,
  failed: boolean,
  line: string,
): Promise<"written" | "exists"> {
  let stored = line;
  let isError = failed;
  if (Buffer.byteLength(line) > MAX_RESULT_LINE_BYTES) {
    stored = outputLine(customId, { code: "result_too_large", message: `the answer is over ${MAX_RESULT_LINE_BYTES} bytes (MAX_RESULT_LINE_BYTES); ask for fewer tokens` });
    isError = true;
  }
  try {
    await js.publish(names.result(batch, index), encodeBatchRecord({ type: "result", index, customId, failed: isError, line: stored }), { expect: { lastSubjectSequence: 0 } });
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JS_WRONG_LAST_SEQUENCE) {
      return "exists";
    }
    throw error;
  }
  if (isError) {
    // The failure mark counts failed lines; written after the result, so a crash in between is healed by the
    // line's redelivery (which finds the result and writes the mark again).
    await markFailed(js, names, batch, index);
  }
  return "written";
}

/** The failure mark of a line (idempotent). */
export async function markFailed(js: JetStreamClient, names: BatchNames, batch: string, index: number): Promise<void> {
  try {
    await js.publish(names.failed(batch, index), new Uint8Array(0), { expect: { lastSubjectSequence: 0 } });
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === JS_WRONG_LAST_SEQUENCE)) {
      throw error;
    }
  }
}
