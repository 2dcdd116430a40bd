/** Counting and reading the messages of a stream under a subject filter (the batch store's queries). */
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";

/** Messages read per pull. */
const PULL = 256;
/** Longest wait for one pull of messages that the count says are there. */
const PULL_EXPIRES_MS = 5_000;

/** How many messages of `stream` match `filter` (with `lastPerSubject`, how many subjects). */
export async function countMatching(jsm: JetStreamManager, stream: string, filter: string, lastPerSubject = false): Promise<number> {
  const info = await jsm.consumers.add(stream, {
    filter_subject: filter,
    ack_policy: AckPolicy.None,
    deliver_policy: lastPerSubject ? DeliverPolicy.LastPerSubject : DeliverPolicy.All,
    inactive_threshold: 30e9,
    mem_storage: true,
  });
  await jsm.consumers.delete(stream, info.name).catch(() => undefined);
  return info.num_pending;
}

/**
 * Calls `each` for every message of `stream` matching `filter` (in stream order; the last one per subject
 * with `lastPerSubject`), at most `max`; returns how many were read. Messages stored meanwhile may be missed.
 */
export async function readMatching(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  filter: string,
  max: number,
  each: (m: JsMsg) => void | Promise<void>,
  lastPerSubject = false,
): Promise<number> {
  const total = Math.min(max, await countMatching(jsm, stream, filter, lastPerSubject));
  if (total === 0) {
    return 0;
  }
  const consumer = await js.consumers.get(stream, { filter_subjects: filter, deliver_policy: lastPerSubject ? DeliverPolicy.LastPerSubject : DeliverPolicy.All });
  let read = 0;
  let done = false;
  try {
    while (!done && read < total) {
      const got = read;
      const messages = await consumer.fetch({ max_messages: Math.min(PULL, total - read), expires: PULL_EXPIRES_MS });
      for await (const m of messages) {
        await each(m);
        read++;
        if (read >= total || m.info.pending === 0) {
          done = true;
          break;
        }
      }
      done ||= read === got; // nothing came within the pull's wait (the messages went meanwhile)
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
  return read;
}
