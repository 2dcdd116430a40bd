/**
 * Model-based tests (fast-check commands) of the mailbox and supervisor invariants: every accepted message
 * is handled exactly once or becomes a dead letter, refusals are reported, restarts follow the intensity.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createActorSystem, defineActor, ManualClock, settle, type ActorRef, type ActorSystem } from "../../src/actors/index.js";

const CAPACITY = 3;
const RUNS = Number(process.env["BARBELL_FUZZ_RUNS"] ?? 60);

type Work = { type: "work"; id: number; fail: boolean };

interface Real {
  system: ActorSystem;
  ref: ActorRef<Work>;
  gates: (() => void)[];
  handled: number[];
}

interface Model {
  inflight: number | undefined;
  queue: number[];
  handled: number[];
  dead: number;
  stopped: boolean;
  nextId: number;
}

function check(m: Model, r: Real): void {
  expect(r.handled).toEqual(m.handled);
  expect(r.ref.queued).toBe(m.queue.length);
  expect(r.system.deadLetters.total).toBe(m.dead);
}

class Tell implements fc.AsyncCommand<Model, Real> {
  constructor(readonly fail: boolean) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const id = m.nextId++;
    const sent = r.ref.tell({ type: "work", id, fail: this.fail });
    if (m.stopped) {
      expect(!sent.ok && sent.error.code).toBe("stopped");
      m.dead++;
    } else if (m.inflight === undefined) {
      expect(sent.ok).toBe(true);
      m.inflight = id;
    } else if (m.queue.length < CAPACITY) {
      expect(sent.ok).toBe(true);
      m.queue.push(id);
    } else {
      expect(!sent.ok && sent.error.code).toBe("mailbox-full");
    }
    await settle();
    check(m, r);
  }
  toString = (): string => `tell(${this.fail ? "fail" : "ok"})`;
}

class Step implements fc.AsyncCommand<Model, Real> {
  check = (m: Readonly<Model>): boolean => m.inflight !== undefined;
  async run(m: Model, r: Real): Promise<void> {
    r.gates.shift()?.();
    await settle();
    await settle();
    m.handled.push(m.inflight ?? -1);
    m.inflight = m.stopped ? undefined : m.queue.shift();
    check(m, r);
  }
  toString = (): string => "step";
}

class Stop implements fc.AsyncCommand<Model, Real> {
  check = (m: Readonly<Model>): boolean => !m.stopped;
  async run(m: Model, r: Real): Promise<void> {
    void r.ref.stop();
    await settle();
    m.dead += m.queue.length;
    m.queue = [];
    m.stopped = true;
    check(m, r);
  }
  toString = (): string => "stop";
}

describe("mailbox invariants (model-based)", () => {
  it("should handle every accepted message exactly once or dead-letter it, and report every refusal", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.commands([fc.boolean().map((f) => new Tell(f)), fc.constant(new Step()), fc.constant(new Stop())], {
          size: "+1",
        }),
        async (commands) => {
          const gates: (() => void)[] = [];
          const handled: number[] = [];
          const system = createActorSystem({ clock: new ManualClock(), supervision: { maxRestarts: 1000 } });
          const def = defineActor<Work>({
            name: "w",
            mailboxCapacity: CAPACITY,
            create: () => ({
              receive: {
                work: async (m) => {
                  await new Promise<void>((resolve) => gates.push(resolve));
                  handled.push(m.id);
                  if (m.fail) {
                    throw new Error("planned");
                  }
                },
              },
            }),
          });
          const real: Real = { system, ref: system.spawn(def), gates, handled };
          await settle();
          const model: Model = { inflight: undefined, queue: [], handled: [], dead: 0, stopped: false, nextId: 0 };
          try {
            await fc.asyncModelRun(() => ({ model, real }), commands);
            // no message lost or duplicated: every accepted id is handled, queued, in flight or a dead letter
            const seen = [...model.handled, ...model.queue, ...(model.inflight === undefined ? [] : [model.inflight])];
            expect(new Set(seen).size).toBe(seen.length);
          } finally {
            for (const gate of gates.splice(0)) {
              gate();
            }
            const stopping = system.stop();
            for (let i = 0; i < 20 && gates.length > 0; i++) {
              gates.shift()?.();
              await settle();
            }
            await stopping;
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe("restart intensity (model-based)", () => {
  it("should restart while at most N restarts fall in T and escalate on the next failure", async () => {
    const N = 3;
    const T = 1000;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.constant("fail" as const), fc.integer({ min: 1, max: 700 })), { maxLength: 25 }),
        async (steps) => {
          const clock = new ManualClock();
          const system = createActorSystem({ clock, supervision: { maxRestarts: N, withinMs: T } });
          const def = defineActor<{ type: "fail" }>({
            name: "f",
            create: () => ({
              receive: {
                fail: () => {
                  throw new Error("planned");
                },
              },
            }),
          });
          const ref = system.spawn(def);
          await settle();
          const restarts: number[] = [];
          let escalated = false;
          for (const step of steps) {
            if (step === "fail") {
              const sent = ref.tell({ type: "fail" });
              await settle();
              await settle();
              if (escalated) {
                expect(!sent.ok && sent.error.code).toBe("stopped");
                continue;
              }
              const now = clock.now();
              if (restarts.filter((t) => now - t < T).length >= N) {
                escalated = true;
              } else {
                restarts.push(now);
              }
            } else {
              await clock.advance(step);
            }
            expect(ref.restarts).toBe(restarts.length);
            expect(ref.status).toBe(escalated ? "stopped" : "running");
            expect(system.escalations.length).toBe(escalated ? 1 : 0);
          }
          await system.stop();
        },
      ),
      { numRuns: RUNS },
    );
  });
});
