import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import {
  ActorError,
  createActorSystem,
  defineActor,
  ManualClock,
  settle,
  type ActorSystem,
  type Replies,
  type Streams,
  type Termination,
} from "../../src/actors/index.js";

type Counter =
  | { type: "add"; by: number }
  | ({ type: "get" } & Replies<number>)
  | ({ type: "countTo"; n: number } & Streams<number>)
  | ({ type: "wait" } & Replies<string>)
  | { type: "boom" };

/** A counter whose `wait` handler blocks until `release()` is called (to hold the mailbox). */
function counter(log: string[] = []) {
  let release: () => void = () => {};
  const gate = () => new Promise<void>((r) => (release = r));
  const definition = defineActor<Counter>({
    name: "counter",
    mailboxCapacity: 3,
    create: () => {
      let n = 0;
      log.push("create");
      return {
        receive: {
          add: (m) => {
            n += m.by;
          },
          get: () => n,
          countTo: async function* (m) {
            for (let i = 1; i <= m.n; i++) {
              yield i;
            }
          },
          wait: async () => {
            await gate();
            return "released";
          },
          boom: () => {
            throw new Error("boom");
          },
        },
        postStop: (t) => void log.push(`postStop:${t.kind}`),
        preRestart: (e) => void log.push(`preRestart:${e.code}`),
        postRestart: (e) => void log.push(`postRestart:${e.code}`),
      };
    },
  });
  return { definition, release: () => release() };
}

let system: ActorSystem;
afterEach(async () => {
  await system.stop();
});

describe("actor runtime (in-process)", () => {
  it("should answer tell, ask and stream with typed results", async () => {
    system = createActorSystem();
    const ref = system.spawn(counter().definition);
    expect(ref.tell({ type: "add", by: 2 })).toEqual({ ok: true, value: undefined });
    ref.tell({ type: "add", by: 3 });
    const n: number = await ref.ask({ type: "get" });
    expect(n).toBe(5);
    const stream = ref.stream({ type: "countTo", n: 4 });
    expect(stream.ok).toBe(true);
    const items: number[] = [];
    for await (const i of stream.ok ? stream.value : []) {
      items.push(i);
    }
    expect(items).toEqual([1, 2, 3, 4]);
    expect(ref.path).toBe("/user/counter");
  });

  it("should refuse a message when the mailbox is full and say so to the sender", async () => {
    system = createActorSystem();
    const { definition, release } = counter();
    const ref = system.spawn(definition);
    await settle();
    const waiting = ref.ask({ type: "wait" });
    await settle(); // `wait` is now running, the mailbox is empty
    expect(ref.tell({ type: "add", by: 1 }).ok).toBe(true);
    expect(ref.tell({ type: "add", by: 1 }).ok).toBe(true);
    expect(ref.tell({ type: "add", by: 1 }).ok).toBe(true);
    const refused = ref.tell({ type: "add", by: 100 });
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.error.code).toBe("mailbox-full");
    await expect(ref.ask({ type: "get" })).rejects.toMatchObject({ code: "mailbox-full" });
    const s = ref.stream({ type: "countTo", n: 1 });
    expect(!s.ok && s.error.code).toBe("mailbox-full");
    release();
    expect(await waiting).toBe("released");
    expect(await ref.ask({ type: "get" })).toBe(3);
  });

  it("should record messages sent to a stopped actor as dead letters", async () => {
    system = createActorSystem();
    const ref = system.spawn(counter().definition);
    await ref.stop();
    const sent = ref.tell({ type: "add", by: 1 });
    expect(!sent.ok && sent.error.code).toBe("stopped");
    await expect(ref.ask({ type: "get" })).rejects.toMatchObject({ code: "stopped" });
    expect(system.deadLetters.total).toBe(2);
    expect(system.deadLetters.recent().map((d) => [d.to, d.type, d.reason])).toEqual([
      ["/user/counter", "add", "stopped"],
      ["/user/counter", "get", "stopped"],
    ]);
  });

  it("should reject queued messages on a plain stop and finish them on a draining stop", async () => {
    system = createActorSystem();
    const a = counter();
    const ref = system.spawn(a.definition);
    await settle();
    const waiting = ref.ask({ type: "wait" });
    await settle();
    const queued = ref.ask({ type: "get" });
    const stopped = ref.stop();
    a.release();
    await expect(queued).rejects.toMatchObject({ code: "stopped" });
    expect(await waiting).toBe("released");
    await stopped;
    expect(system.deadLetters.recent().map((d) => d.reason)).toEqual(["rejected-on-stop"]);

    const b = counter();
    const drained = system.spawn(b.definition, { name: "drained" });
    await settle();
    const w2 = drained.ask({ type: "wait" });
    await settle();
    drained.tell({ type: "add", by: 7 });
    const got = drained.ask({ type: "get" });
    const stopping = drained.stop({ mode: "drain" });
    expect(drained.tell({ type: "add", by: 1 }).ok).toBe(false);
    b.release();
    expect(await w2).toBe("released");
    expect(await got).toBe(7);
    await stopping;
    expect(drained.status).toBe("stopped");
  });

  it("should run lifecycle hooks in order across a restart and a stop", async () => {
    system = createActorSystem();
    const log: string[] = [];
    const ref = system.spawn(counter(log).definition);
    ref.tell({ type: "add", by: 5 });
    ref.tell({ type: "boom" });
    expect(await ref.ask({ type: "get" })).toBe(0); // state is fresh after the restart; the queued ask survived
    expect(ref.restarts).toBe(1);
    await ref.stop();
    expect(log).toEqual(["create", "preRestart:failed", "create", "postRestart:failed", "postStop:stopped"]);
    expect(await ref.terminated).toEqual({ kind: "stopped" });
  });

  it("should reject the ask whose handler threw with a typed error naming the cause", async () => {
    system = createActorSystem();
    const Failing = defineActor<{ type: "q" } & Replies<number>>({
      name: "failing",
      create: () => ({
        receive: {
          q: () => {
            throw new RangeError("bad input");
          },
        },
      }),
    });
    const ref = system.spawn(Failing);
    const error = await ref.ask({ type: "q" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActorError);
    expect((error as ActorError).code).toBe("failed");
    expect((error as ActorError).cause).toBeInstanceOf(RangeError);
  });

  it("should time out an ask on the injected clock and skip the message if it is still queued", async () => {
    const clock = new ManualClock();
    system = createActorSystem({ clock });
    const a = counter();
    const ref = system.spawn(a.definition);
    await settle();
    const waiting = ref.ask({ type: "wait" }, { timeoutMs: 100 }).catch((e: unknown) => e);
    await settle();
    const queued = ref.ask({ type: "get" }, { timeoutMs: 50 });
    let settled = false;
    void queued.catch(() => (settled = true));
    await clock.advance(49);
    expect(settled).toBe(false);
    await clock.advance(1);
    await expect(queued).rejects.toMatchObject({ code: "timeout" });
    await clock.advance(50);
    expect(await waiting).toMatchObject({ code: "timeout" });
    a.release();
    expect(ref.queued).toBe(1); // the timed-out `get` is still queued but will be skipped
    expect(await ref.ask({ type: "get" })).toBe(0);
    expect(ref.queued).toBe(0);
  });

  it("should cancel an ask and a stream through an AbortSignal", async () => {
    system = createActorSystem();
    const a = counter();
    const ref = system.spawn(a.definition);
    const controller = new AbortController();
    const asked = ref.ask({ type: "wait" }, { signal: controller.signal });
    controller.abort();
    await expect(asked).rejects.toMatchObject({ code: "cancelled" });
    const c2 = new AbortController();
    const s = ref.stream({ type: "countTo", n: 1000 }, { signal: c2.signal });
    if (!s.ok) {
      throw s.error;
    }
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const i of s.value) {
          got.push(i);
          if (i === 3) {
            c2.abort();
          }
        }
      })(),
    ).rejects.toMatchObject({ code: "cancelled" });
    expect(got).toEqual([1, 2, 3]);
  });

  it("should let a stream run while later messages are handled, and end it with an idle timeout", async () => {
    const clock = new ManualClock();
    system = createActorSystem({ clock });
    type Tokens = ({ type: "gen" } & Streams<string>) | { type: "push"; token: string } | ({ type: "status" } & Replies<number>);
    const Gen = defineActor<Tokens>({
      name: "gen",
      create: () => {
        // Items pushed from elsewhere: any AsyncIterable does, here a Node object stream.
        const channel = new PassThrough({ objectMode: true });
        return {
          receive: {
            gen: () => channel as AsyncIterable<string>,
            push: (m) => void channel.write(m.token),
            status: () => channel.readableLength,
          },
        };
      },
    });
    const ref = system.spawn(Gen);
    const s = ref.stream({ type: "gen" }, { idleTimeoutMs: 1000 });
    if (!s.ok) {
      throw s.error;
    }
    const it = s.value[Symbol.asyncIterator]();
    ref.tell({ type: "push", token: "a" });
    expect(await ref.ask({ type: "status" })).toBe(1); // answered while the stream is open
    expect(await it.next()).toEqual({ done: false, value: "a" });
    const next = it.next().catch((e: unknown) => e);
    await clock.advance(999);
    await clock.advance(1);
    expect(await next).toMatchObject({ code: "timeout" });
  });

  it("should tell a watcher when the watched actor terminates and fail a linked actor", async () => {
    system = createActorSystem({ supervision: { decider: () => "stop" } });
    type W = { type: "terminated"; kind: string } | ({ type: "seen" } & Replies<string[]>);
    const target = system.spawn(counter().definition, { name: "target" });
    const Watcher = defineActor<W>({
      name: "watcher",
      create: (ctx) => {
        const seen: string[] = [];
        ctx.watch(target, (t: Termination) => ({ type: "terminated", kind: t.kind }));
        return { receive: { terminated: (m) => void seen.push(m.kind), seen: () => seen } };
      },
    });
    const watcher = system.spawn(Watcher);
    await settle();
    await target.stop();
    await settle();
    expect(await watcher.ask({ type: "seen" })).toEqual(["stopped"]);

    const a = system.spawn(counter().definition, { name: "a" });
    const Linker = defineActor<{ type: "noop" }>({
      name: "linker",
      create: (ctx) => {
        ctx.link(a);
        return { receive: { noop: () => {} } };
      },
    });
    const linker = system.spawn(Linker);
    await settle();
    a.tell({ type: "boom" }); // the system's decider stops a: its termination is a failure
    const t = await linker.terminated;
    expect(t.kind).toBe("failed");
    expect(t.kind === "failed" && t.error.code).toBe("linked");
  });
});
