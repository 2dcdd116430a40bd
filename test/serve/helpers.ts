import { afterAll, afterEach, beforeAll } from "vitest";
import { settle, type ActorRef, type ActorSystem } from "../../src/actors/index.js";
import { loadModel } from "../../src/engine/model.js";
import type { CheckedRequest, ModelMsg, ModelOutput, ModelRequest, ModelStatus, WorkerStatus } from "../../src/serve/index.js";
import { writeLadder, type Ladder } from "./fixtures.js";

/**
 * A serve test file's fixtures: the two-rung ladder, written once for the file and removed after it, and the
 * actor system a test creates, stopped after each test (which also kills its worker processes).
 */
export function serveFixtures(): { readonly ladder: Ladder; system: ActorSystem | undefined } {
  let ladder: Ladder | undefined;
  const env = {
    get ladder(): Ladder {
      if (ladder === undefined) {
        throw new Error("the ladder is written in beforeAll");
      }
      return ladder;
    },
    system: undefined as ActorSystem | undefined,
  };
  beforeAll(async () => {
    ladder = await writeLadder();
  });
  afterAll(async () => {
    await ladder?.remove();
  });
  afterEach(async () => {
    await env.system?.stop();
    env.system = undefined;
  });
  return env;
}

/** Every item of one request; throws the refusal when the actor does not take it. */
export async function collect(ref: ActorRef<ModelMsg>, request: ModelRequest | CheckedRequest): Promise<ModelOutput[]> {
  const opened = ref.stream({ type: "processInput", request });
  if (!opened.ok) {
    throw opened.error;
  }
  const out: ModelOutput[] = [];
  for await (const item of opened.value) {
    out.push(item);
  }
  return out;
}

export function tokensOf(items: readonly ModelOutput[]): number[] {
  return items.flatMap((i) => (i.kind === "token" && i.token !== undefined ? [i.token] : []));
}

export function lastOf(items: readonly ModelOutput[]): ModelOutput {
  const last = items[items.length - 1];
  if (last === undefined) {
    throw new Error("no items");
  }
  return last;
}

/** Asks for status until the worker's answer passes `test` (event-loop turns, no wall clock). */
export async function untilWorker(ref: ActorRef<ModelMsg>, test: (w: WorkerStatus) => boolean): Promise<ModelStatus> {
  for (let i = 0; i < 1000; i++) {
    const status = await ref.ask({ type: "queryStatus" });
    if (status.worker !== undefined && test(status.worker)) {
      return status;
    }
    await settle();
  }
  throw new Error("the worker never reached the state");
}

/** The greedy tokens the engine itself generates on the JS backend, for comparison with the actor's. */
export async function jsGreedy(path: string, tokens: number[], maxTokens: number): Promise<number[]> {
  using model = await loadModel(path, { backends: ["js"], autotune: false });
  return [...(await model.generate(tokens, { temperature: 0, maxTokens }).complete()).tokens];
}
