import { afterEach, describe, expect, it } from "vitest";
import { ActorError, actorModule, createActorSystem, type ActorRef, type ActorSystem, type Isolation } from "../../src/actors/index.js";
import echo, { type Echo } from "./fixtures/echo-actor.js";

const module = actorModule(import.meta.url, "./fixtures/echo-actor.js");

let system: ActorSystem | undefined;
afterEach(async () => {
  await system?.stop(); // terminates every worker and child process
  system = undefined;
});

async function collect(ref: ActorRef<Echo>, n: number): Promise<number[]> {
  const s = ref.stream({ type: "count", n });
  if (!s.ok) {
    throw s.error;
  }
  const out: number[] = [];
  for await (const i of s.value) {
    out.push(i);
  }
  return out;
}

describe.each<Isolation["kind"]>(["worker", "process"])("an actor in a %s", (kind) => {
  it("should answer tell, ask and stream through the same ActorRef API", async () => {
    system = createActorSystem();
    const ref = system.spawn(echo, { isolation: { kind, module } });
    ref.tell({ type: "add", by: 40 });
    ref.tell({ type: "add", by: 2 });
    expect(await ref.ask({ type: "get" })).toBe(42);
    const data = Uint8Array.from({ length: 1000 }, (_, i) => i % 7);
    expect(await ref.ask({ type: "echo", text: "héllo", data })).toEqual({ text: "HÉLLO", sum: 2997 });
    expect(await collect(ref, 200)).toEqual(Array.from({ length: 200 }, (_, i) => i)); // > STREAM_WINDOW
    ref.tell({ type: "ping" }); // the actor tells itself through its parent's mailbox
    await expect.poll(() => ref.ask({ type: "get" })).toBe(142);
    const where = await ref.ask({ type: "where" });
    expect(where.pid === process.pid).toBe(kind === "worker");
  });

  it("should restart after a handler failure and report it as a typed error", async () => {
    system = createActorSystem();
    const ref = system.spawn(echo, { isolation: { kind, module } });
    ref.tell({ type: "add", by: 5 });
    const error = await ref.ask({ type: "fail", why: "no" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActorError);
    expect(error).toMatchObject({ code: "failed", remote: { name: "TypeError", message: "no" } });
    expect(await ref.ask({ type: "get" })).toBe(0);
    expect((await ref.ask({ type: "where" })).restarts).toBe(1);
  });

  it("should treat a malformed frame from its host as a protocol failure and restart it", async () => {
    system = createActorSystem();
    const ref = system.spawn(echo, { isolation: { kind, module } });
    const before = await ref.ask({ type: "where" });
    ref.tell({ type: "garbage" });
    const after = await ref.ask({ type: "where" });
    expect(after.restarts).toBe(1);
    expect(kind === "worker" || after.pid !== before.pid).toBe(true);
  });
});

describe("an actor in a child process that crashes", () => {
  it("should end an in-flight ask with `crashed` and be restarted by its supervisor", async () => {
    system = createActorSystem();
    const ref = system.spawn(echo, { isolation: { kind: "process", module } });
    const first = await ref.ask({ type: "where" });
    const inFlight = ref.ask({ type: "hang" });
    const queued = ref.ask({ type: "get" });
    process.kill(first.pid, "SIGSEGV");
    const error = await inFlight.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActorError);
    expect((error as ActorError).code).toBe("crashed");
    expect((error as ActorError).message).toMatch(/SIGSEGV/);
    expect(await queued).toBe(0); // the queued ask survived and went to the new incarnation
    const second = await ref.ask({ type: "where" });
    expect(second.pid).not.toBe(first.pid);
    expect(second.restarts).toBe(1);
  });

  it("should survive the actor aborting its own process and end an open stream with `crashed`", async () => {
    system = createActorSystem();
    const ref = system.spawn(echo, { isolation: { kind: "process", module } });
    const s = ref.stream({ type: "count", n: 1_000_000 });
    if (!s.ok) {
      throw s.error;
    }
    const it = s.value[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ done: false, value: 0 });
    ref.tell({ type: "crash", how: "abort" });
    let error: unknown;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) {
          break;
        }
      }
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: "crashed" });
    expect((await ref.ask({ type: "where" })).restarts).toBe(1);
  });
});

describe("isolation errors", () => {
  it("should fail to start with `start-failed` when the module has no such export, then escalate", async () => {
    system = createActorSystem({ supervision: { maxRestarts: 1 } });
    const ref = system.spawn(echo, { isolation: { kind: "worker", module, export: "missing" } });
    const t = await ref.terminated;
    expect(t.kind).toBe("failed");
    expect(t.kind === "failed" && t.error.code).toBe("escalated");
    expect((t.kind === "failed" && (t.error.cause as ActorError).code) || "").toBe("start-failed");
  });

  it("should refuse worker isolation for a definition without a protocol", () => {
    system = createActorSystem();
    const { protocol: _p, ...bare } = echo;
    expect(() => system?.spawn(bare, { isolation: { kind: "worker", module } })).toThrow(/no protocol/);
  });
});
