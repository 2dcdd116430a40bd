import { afterEach, describe, expect, it } from "vitest";
import {
  type ActorError,
  backoffDelay,
  createActorSystem,
  defineActor,
  ManualClock,
  settle,
  type ActorRef,
  type ActorSystem,
  type Directive,
  type Replies,
  type SupervisionEvent,
  type SupervisionOptions,
} from "../../src/actors/index.js";

type Child = { type: "add"; by: number } | ({ type: "get" } & Replies<number>) | { type: "fail"; kind: string };

class KindError extends Error {
  constructor(readonly kind: string) {
    super(kind);
  }
}

const ChildActor = defineActor<Child>({
  name: "child",
  create: () => {
    let n = 0;
    return {
      receive: {
        add: (m) => {
          n += m.by;
        },
        get: () => n,
        fail: (m) => {
          throw new KindError(m.kind);
        },
      },
    };
  },
});

type Parent = ({ type: "children" } & Replies<ActorRef<Child>[]>) | ({ type: "incarnation" } & Replies<number>);

let created = 0;
function parentWith(supervision: SupervisionOptions) {
  return defineActor<Parent>({
    name: "parent",
    supervision,
    create: (ctx) => {
      const incarnation = ++created;
      const kids = [ctx.spawn(ChildActor, { name: "a" }), ctx.spawn(ChildActor, { name: "b" })];
      return { receive: { children: () => kids, incarnation: () => incarnation } };
    },
  });
}

let system: ActorSystem;
let clock: ManualClock;
afterEach(async () => {
  await system.stop();
});

async function setup(supervision: SupervisionOptions, top: SupervisionOptions = {}) {
  clock = new ManualClock();
  system = createActorSystem({ clock, random: () => 0.5, supervision: top });
  const parent = system.spawn(parentWith(supervision));
  const [a, b] = await parent.ask({ type: "children" });
  if (!a || !b) {
    throw new Error("no children");
  }
  a.tell({ type: "add", by: 1 });
  b.tell({ type: "add", by: 2 });
  return { parent, a, b };
}

describe("supervision", () => {
  it("should restart only the failed child under one-for-one", async () => {
    const { a, b } = await setup({ strategy: "one-for-one" });
    a.tell({ type: "fail", kind: "x" });
    expect(await a.ask({ type: "get" })).toBe(0);
    expect(await b.ask({ type: "get" })).toBe(2);
    expect([a.restarts, b.restarts]).toEqual([1, 0]);
  });

  it("should restart every child under one-for-all", async () => {
    const { a, b } = await setup({ strategy: "one-for-all" });
    a.tell({ type: "fail", kind: "x" });
    await clock.advance(0);
    expect(await a.ask({ type: "get" })).toBe(0);
    expect(await b.ask({ type: "get" })).toBe(0);
    expect([a.restarts, b.restarts]).toEqual([1, 1]);
  });

  it("should apply the decider per failure kind: resume keeps state, stop stops, escalate fails the parent", async () => {
    const decider = (e: ActorError): Directive => {
      const kind = e.cause instanceof KindError ? e.cause.kind : "";
      return kind === "resume" ? "resume" : kind === "stop" ? "stop" : kind === "escalate" ? "escalate" : "restart";
    };
    const { parent, a, b } = await setup({ decider });
    a.tell({ type: "fail", kind: "resume" });
    expect(await a.ask({ type: "get" })).toBe(1);
    expect(a.restarts).toBe(0);
    b.tell({ type: "fail", kind: "stop" });
    const t = await b.terminated;
    expect(t.kind === "failed" && t.error.code).toBe("failed");
    const before = await parent.ask({ type: "incarnation" });
    a.tell({ type: "fail", kind: "escalate" });
    await a.terminated; // the parent's restart stops its children and create() spawns new ones
    await clock.advance(0);
    expect(await parent.ask({ type: "incarnation" })).toBe(before + 1);
    expect(parent.restarts).toBe(1);
    const [a2] = await parent.ask({ type: "children" });
    expect(a2 && (await a2.ask({ type: "get" }))).toBe(0);
  });

  it("should stop the child and escalate after more than N restarts within T", async () => {
    const { parent, a } = await setup({ maxRestarts: 2, withinMs: 1000 }, { decider: () => "stop" });
    for (let i = 0; i < 2; i++) {
      a.tell({ type: "fail", kind: "x" });
      await clock.advance(300);
      expect(a.status).toBe("running");
    }
    expect(a.restarts).toBe(2);
    a.tell({ type: "fail", kind: "x" }); // third failure within 1000 ms: intensity exceeded
    const t = await a.terminated;
    expect(t.kind === "failed" && t.error.code).toBe("escalated");
    const pt = await parent.terminated; // the system's decider stops the escalating parent
    expect(pt.kind).toBe("failed");
    expect(system.deadLetters.total).toBe(0);
  });

  it("should tell the observer of every failure and its outcome: restarts with their delay, then the escalation", async () => {
    const events: SupervisionEvent[] = [];
    const backoff = { minMs: 100, maxMs: 1000, factor: 2 };
    const { a } = await setup({ maxRestarts: 2, withinMs: 10_000, backoff, observe: (e) => events.push(e) }, { decider: () => "stop" });
    for (const delay of [100, 200]) {
      a.tell({ type: "fail", kind: "x" });
      await settle();
      await clock.advance(delay);
      expect(a.status).toBe("running");
    }
    a.tell({ type: "fail", kind: "x" }); // the third within 10 s: intensity exceeded
    await a.terminated;
    expect(events.map((e) => [e.kind, e.child, e.delayMs, e.inWindow, e.error.code])).toEqual([
      ["restart", a.path, 100, 1, "failed"],
      ["restart", a.path, 200, 2, "failed"],
      ["escalate", a.path, 0, 2, "escalated"],
    ]);
    expect(events[2]).toMatchObject({ maxRestarts: 2, withinMs: 10_000 });
  });

  it("should ignore an observer that throws", async () => {
    const { a } = await setup({
      observe: () => {
        throw new Error("observer");
      },
    });
    a.tell({ type: "fail", kind: "x" });
    expect(await a.ask({ type: "get" })).toBe(0);
    expect(a.restarts).toBe(1);
  });

  it("should keep restarting when failures are spread wider than the window", async () => {
    const { a } = await setup({ maxRestarts: 2, withinMs: 1000 });
    for (let i = 0; i < 6; i++) {
      a.tell({ type: "fail", kind: "x" });
      await clock.advance(600);
    }
    expect(a.restarts).toBe(6);
    expect(a.status).toBe("running");
  });

  it("should delay restarts with exponential backoff and jitter on the injected clock", async () => {
    const backoff = { minMs: 100, maxMs: 300, factor: 2, jitter: 0.5 };
    const { a } = await setup({ maxRestarts: 10, withinMs: 10_000, backoff });
    for (const delay of [125, 250, 375, 375]) {
      a.tell({ type: "fail", kind: "x" });
      await settle();
      expect(a.status).toBe("restarting");
      const queued = a.ask({ type: "get" }); // queued during the backoff, answered after the restart
      await clock.advance(delay - 1);
      expect(a.status).toBe("restarting");
      await clock.advance(1);
      expect(a.status).toBe("running");
      expect(await queued).toBe(0);
    }
    expect(backoffDelay({ minMs: 10, maxMs: 1000, factor: 3, jitter: 0 }, 3, () => 0)).toBe(90);
  });
});
