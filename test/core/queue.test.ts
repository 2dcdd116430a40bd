/**
 * The one push queue (src/core/queue.ts): order, end with a result, failure, cancel (hook once, pending
 * reader released, later pushes dropped), one reader at a time, and a long stream read by index.
 */
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/core/errors.js";
import { PushQueue } from "../../src/core/queue.js";

async function readAll<T>(q: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of q) {
    out.push(item);
  }
  return out;
}

describe("PushQueue", () => {
  it("yields pushed items in order, then the result as the done value", async () => {
    const q = new PushQueue<number, string>();
    q.push(1);
    q.push(2);
    const first = await q.next();
    expect(first).toEqual({ done: false, value: 1 });
    setTimeout(() => {
      q.push(3);
      q.end("fin");
    }, 5);
    expect(await q.next()).toEqual({ done: false, value: 2 });
    expect(await q.next()).toEqual({ done: false, value: 3 }); // waited for the producer
    expect(await q.next()).toEqual({ done: true, value: "fin" });
    expect(await q.next()).toEqual({ done: true, value: "fin" });
    expect(q.push(4)).toBe(false);
    expect(q.size).toBe(0);
  });

  it("drain() returns the result to yield*, first end wins", async () => {
    const q = new PushQueue<string, number>();
    q.push("a");
    q.end(7);
    q.end(8);
    q.fail(new Error("late"));
    async function* wrap(): AsyncGenerator<string, number> {
      return yield* q.drain();
    }
    const gen = wrap();
    expect(await gen.next()).toEqual({ done: false, value: "a" });
    expect(await gen.next()).toEqual({ done: true, value: 7 });
  });

  it("throws the producer's error after the buffered items", async () => {
    const q = new PushQueue<number>();
    const boom = new RangeError("kernel");
    q.push(1);
    q.fail(boom);
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const x of q) {
          seen.push(x);
        }
      })(),
    ).rejects.toBe(boom);
    expect(seen).toEqual([1]);
    await expect(q.drain().next()).rejects.toBe(boom);
  });

  it("leaving a for-await cancels: the hook runs once, the buffer is dropped, pushes are ignored", async () => {
    let hooks = 0;
    const q = new PushQueue<number>(() => hooks++);
    q.push(1);
    q.push(2);
    q.push(3);
    for await (const x of q) {
      expect(x).toBe(1);
      break;
    }
    expect(hooks).toBe(1);
    expect(q.isCancelled).toBe(true);
    expect(q.size).toBe(0);
    expect(q.push(4)).toBe(false);
    q.cancel();
    q.end();
    expect(hooks).toBe(1);
    expect(await q.next()).toEqual({ done: true, value: undefined });
  });

  it("a cancel releases a pending reader instead of leaving it waiting forever", async () => {
    let hooks = 0;
    const q = new PushQueue<number>(() => hooks++);
    const it = q[Symbol.asyncIterator]();
    const pending = it.next();
    await it.return?.();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(hooks).toBe(1);
  });

  it("no hook when the consumer leaves after the producer ended", async () => {
    let hooks = 0;
    const q = new PushQueue<number>(() => hooks++);
    q.push(1);
    q.end();
    expect(await readAll(q)).toEqual([1]);
    q.cancel();
    expect(hooks).toBe(0);
  });

  it("drain(): leaving early cancels with the hook; a cancel from elsewhere is a UsageError, not a hang", async () => {
    let hooks = 0;
    const q = new PushQueue<number, string>(() => hooks++);
    q.push(1);
    for await (const x of q.drain()) {
      expect(x).toBe(1);
      break;
    }
    expect(hooks).toBe(1);

    const r = new PushQueue<number, string>();
    const gen = r.drain();
    const pending = gen.next();
    r.cancel();
    await expect(pending).rejects.toBeInstanceOf(UsageError);
  });

  it("one reader at a time", async () => {
    const q = new PushQueue<number>();
    const first = q.next();
    await expect(q.next()).rejects.toBeInstanceOf(UsageError);
    q.push(5);
    expect(await first).toEqual({ done: false, value: 5 });
  });

  it("streams many items in order through the index (compaction keeps the order)", async () => {
    const q = new PushQueue<number, number>();
    const n = 20_000;
    const got: number[] = [];
    // Interleave pushes and reads so the buffer is compacted while items are still queued.
    for (let i = 0; i < n; i++) {
      q.push(i);
      if (i % 3 === 2) {
        const step = await q.next();
        got.push(step.value as number);
      }
    }
    q.end(n);
    for (;;) {
      const step = await q.next();
      if (step.done === true) {
        expect(step.value).toBe(n);
        break;
      }
      got.push(step.value);
    }
    expect(got.length).toBe(n);
    expect(got.every((v, i) => v === i)).toBe(true);
  });
});
