import type { ActorRef } from "../../src/actors/index.js";
import type { ModelMsg, ModelOutput, ModelRequest } from "../../src/serve/index.js";

/** Every item of one request; throws the refusal when the actor does not take it. */
export async function collect(ref: ActorRef<ModelMsg>, request: ModelRequest): Promise<ModelOutput[]> {
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
