/**
 * The cascade router: dynamic scaling by input difficulty. A request goes to the smallest model of the
 * ladder first; the router holds back its first `window` tokens and measures the model's confidence on
 * them (the chosen tokens' probabilities, or the estimated entropy of the distributions they were drawn
 * from). When the model is out of its depth the router cancels it and asks the next rung; otherwise it
 * releases the held tokens and streams the rest. The last rung is always accepted. The final `done` item
 * says which model produced the output and what each rung scored.
 *
 * Each rung is a model actor (its own supervised worker process by default), a child of the router.
 */
import { defineActor, type ActorDefinition, type ActorRef, type Replies, type Streams } from "../actors/index.js";
import { ServeError } from "./errors.js";
import type { ModelRung } from "./host.js";
import { modelActor, type ModelActorOptions, type ModelMsg, type ModelStatus } from "./model-actor.js";
import type { ModelOutput, ModelRequest } from "./protocol.js";
import { checkRequest, withConfidence, type CheckedRequest } from "./request.js";

export type ConfidenceMetric =
  | "min-prob" // the smallest probability of a chosen token in the window; out of depth when below the threshold
  | "entropy"; // the mean estimated entropy (nats) over the window; out of depth when above the threshold

export interface CascadeOptions {
  /** Models, smallest first (at least one). */
  readonly ladder: readonly ModelRung[];
  /** Default "min-prob". */
  readonly metric?: ConfidenceMetric;
  readonly threshold: number;
  /** Tokens judged before the router commits to a rung. Default 4. */
  readonly window?: number;
  /** Options of every rung's model actor (isolation, backends, supervision, …). */
  readonly model?: Omit<ModelActorOptions, "ladder" | "rung">;
  /**
   * Model actors the caller already runs for the rungs (one per ladder entry, same order), shared with other
   * users such as the server's plain model ids: the router then spawns none and loads no model itself. They
   * stay the caller's: stopping the router does not stop them.
   */
  readonly rungRefs?: readonly ActorRef<ModelMsg>[];
}

/** What one rung scored for a request. */
export interface CascadeStep {
  readonly model: string;
  /** The window's confidence score (NaN when the rung produced no tokens). */
  readonly score: number;
  readonly escalated: boolean;
}

type Streamed = Exclude<ModelOutput, { kind: "done" }>;

export type CascadeOutput =
  | Exclude<ModelOutput, { kind: "done" }>
  | (Extract<ModelOutput, { kind: "done" }> & { readonly cascade: readonly CascadeStep[] });

export interface RouterStatus {
  readonly requests: number;
  /** Requests answered by each rung, by name. */
  readonly answeredBy: Readonly<Record<string, number>>;
  readonly escalations: number;
  readonly rungs: readonly ModelStatus[];
}

export type RouterMsg =
  | ({ readonly type: "processInput"; readonly request: ModelRequest | CheckedRequest } & Streams<CascadeOutput>)
  | ({ readonly type: "queryStatus" } & Replies<RouterStatus>);

/** The window's score under `metric`. */
export function confidenceScore(metric: ConfidenceMetric, tokens: readonly { readonly logprob: number; readonly entropy?: number }[]): number {
  if (tokens.length === 0) {
    return Number.NaN;
  }
  if (metric === "min-prob") {
    return Math.min(...tokens.map((t) => Math.exp(t.logprob)));
  }
  return tokens.reduce((sum, t) => sum + (t.entropy ?? 0), 0) / tokens.length;
}

function outOfDepth(metric: ConfidenceMetric, score: number, threshold: number): boolean {
  if (Number.isNaN(score)) {
    return false;
  }
  return metric === "min-prob" ? score < threshold : score > threshold;
}

/** The router's definition; throws ServeError "bad-config" for options that cannot work. */
export function cascadeRouter(options: CascadeOptions): ActorDefinition<RouterMsg> {
  const metric = options.metric ?? "min-prob";
  const window = options.window ?? 4;
  if (!Array.isArray(options.ladder) || options.ladder.length === 0) {
    throw new ServeError("bad-config", "[router] the ladder needs at least one model");
  }
  if (metric !== "min-prob" && metric !== "entropy") {
    throw new ServeError("bad-config", `[router] unknown metric '${String(metric)}'`);
  }
  if (!Number.isFinite(options.threshold)) {
    throw new ServeError("bad-config", `[router] threshold must be a finite number, got ${options.threshold}`);
  }
  if (!(Number.isSafeInteger(window) && window >= 1)) {
    throw new ServeError("bad-config", `[router] window must be an integer >= 1, got ${window}`);
  }
  const shared = options.rungRefs;
  if (shared !== undefined && shared.length !== options.ladder.length) {
    throw new ServeError("bad-config", `[router] ${shared.length} rung actors for a ladder of ${options.ladder.length}`);
  }
  const definitions = shared === undefined ? options.ladder.map((rung) => modelActor({ ...options.model, ladder: [rung] })) : [];
  return defineActor<RouterMsg>({
    name: "router",
    create: (ctx) => {
      const rungs: readonly ActorRef<ModelMsg>[] = shared ?? definitions.map((d, i) => ctx.spawn(d, { name: options.ladder[i]?.name ?? `rung-${i}` }));
      const names = options.ladder.map((r) => r.name);
      let requests = 0;
      let escalations = 0;
      const answeredBy: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));

      const strip = (item: Streamed, keepEntropy: boolean): Streamed => {
        if (item.kind !== "token" || keepEntropy || item.entropy === undefined) {
          return item;
        }
        const { entropy: _e, ...rest } = item;
        return rest;
      };

      async function* route(given: ModelRequest | CheckedRequest): AsyncGenerator<CascadeOutput> {
        requests++;
        const request = checkRequest(given);
        if (typeof request === "string") {
          yield { kind: "error", code: "bad-request", message: request, model: "", completionTokens: 0, failures: [] };
          return;
        }
        const asked = withConfidence(request); // each rung reports entropies for the confidence score
        const steps: CascadeStep[] = [];
        const keep = request.confidence;
        for (let i = 0; i < rungs.length; i++) {
          const ref = rungs[i] as ActorRef<ModelMsg>;
          const name = names[i] ?? "";
          const last = i === rungs.length - 1 || request.input !== undefined;
          const opened = ref.stream({ type: "processInput", request: asked });
          if (!opened.ok) {
            yield { kind: "error", code: "unavailable", message: `[router] ${name} refused the request: ${opened.error.message}`, model: name, completionTokens: 0, failures: [] };
            return;
          }
          const held: Streamed[] = [];
          const judged: { logprob: number; entropy?: number }[] = [];
          let committed = last;
          let escalate = false;
          for await (const item of opened.value) {
            if (item.kind === "token" && !committed) {
              held.push(item);
              if (item.token !== undefined) {
                judged.push(item);
              }
              if (judged.length < window) {
                continue;
              }
              const score = confidenceScore(metric, judged);
              escalate = outOfDepth(metric, score, options.threshold);
              steps.push({ model: name, score, escalated: escalate });
              if (escalate) {
                break; // leaving the loop cancels this rung's request
              }
              committed = true;
              for (const h of held) {
                yield strip(h, keep);
              }
              continue;
            }
            if (item.kind === "done") {
              if (!committed) {
                const score = confidenceScore(metric, judged);
                escalate = outOfDepth(metric, score, options.threshold);
                steps.push({ model: name, score, escalated: escalate });
                if (escalate) {
                  break;
                }
                for (const h of held) {
                  yield strip(h, keep);
                }
              } else if (steps.length === i) {
                steps.push({ model: name, score: confidenceScore(metric, judged), escalated: false });
              }
              answeredBy[name] = (answeredBy[name] ?? 0) + 1;
              yield { ...item, cascade: steps };
              return;
            }
            if (item.kind === "error") {
              for (const h of held) {
                yield strip(h, keep);
              }
              yield item;
              return;
            }
            yield strip(item, keep);
          }
          if (!escalate) {
            yield { kind: "error", code: "failed", message: `[router] ${name} ended without a result`, model: name, completionTokens: 0, failures: [] };
            return;
          }
          escalations++;
        }
      }

      return {
        receive: {
          processInput: (m) => route(m.request),
          queryStatus: async () => ({
            requests,
            answeredBy: { ...answeredBy },
            escalations,
            rungs: await Promise.all(rungs.map((r) => r.ask({ type: "queryStatus" }))),
          }),
        },
      };
    },
  });
}
