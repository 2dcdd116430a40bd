/**
 * The server-sent-event writer of streamed answers (generate.ts): events go into the byte stream fastify sends,
 * the first one is signalled (the route answers 200 only then), and a full stream holds the writer back until
 * it drains, closes or the request is aborted.
 */
import { describe, expect, it } from "vitest";
import { SseWriter } from "../../../src/serve/http/generate.js";

/** Whether `p` has settled after the pending callbacks ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

const big = "x".repeat(64 * 1024); // over the stream's 16 KiB high-water mark

describe("SseWriter", () => {
  it("should frame events, signal the first one and end the stream", async () => {
    const sse = new SseWriter(new AbortController().signal);
    expect(sse.started).toBe(false);
    const first = sse.firstEvent();
    expect(await settled(first)).toBe(false);
    await sse.send({ a: 1 });
    await sse.send("[DONE]");
    expect(sse.started).toBe(true);
    expect(await settled(first)).toBe(true);
    sse.end();
    const chunks: Buffer[] = [];
    for await (const chunk of sse.body) {
      chunks.push(chunk as Buffer);
    }
    expect(Buffer.concat(chunks).toString("utf8")).toBe('data: {"a":1}\n\ndata: [DONE]\n\n');
  });

  it("should wait while the stream is full and go on when the reader drains it", async () => {
    const sse = new SseWriter(new AbortController().signal);
    const sending = sse.send(big);
    expect(await settled(sending)).toBe(false);
    sse.body.resume(); // the client reads
    expect(await settled(sending)).toBe(true);
  });

  it("should stop waiting when the request is aborted or the stream is destroyed, and drop later events", async () => {
    const controller = new AbortController();
    const aborted = new SseWriter(controller.signal);
    const sending = aborted.send(big);
    expect(await settled(sending)).toBe(false);
    controller.abort("timeout");
    expect(await settled(sending)).toBe(true);
    expect(await settled(aborted.send(big))).toBe(true); // aborted: writes no longer wait

    const closed = new SseWriter(new AbortController().signal);
    const held = closed.send(big);
    expect(await settled(held)).toBe(false);
    closed.body.destroy(); // fastify destroys it when the client goes away
    expect(await settled(held)).toBe(true);
    await closed.send({ after: true });
    closed.end();
    expect(closed.body.destroyed).toBe(true);
  });
});
