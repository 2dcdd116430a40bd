/**
 * Prometheus metrics of the server (prom-client, one registry per server so that several can coexist). The
 * process metrics leave out the Node version (`nodejs_version_info`): /metrics is open to scrapers, and the
 * runtime's exact version only helps an attacker.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface ServerMetrics {
  readonly registry: Registry;
  /** Finished HTTP requests by model, endpoint and status code. */
  readonly requests: Counter<"model" | "endpoint" | "status">;
  /** Requests refused with 429. */
  readonly rejected: Counter<"model">;
  /** Prompt and completion tokens. */
  readonly tokens: Counter<"model" | "kind">;
  /** Requests admitted and not finished. */
  readonly inFlight: Gauge<"model">;
  /** Admitted requests that have not received their first token yet. */
  readonly queueDepth: Gauge<"model">;
  readonly timeToFirstToken: Histogram<"model">;
  /** Completion tokens per second of decoding (after the first token), per request. */
  readonly tokensPerSecond: Histogram<"model">;
  /** Backend failures a request survived by moving to the next backend. */
  readonly fallbacks: Counter<"model">;
  /** Requests re-sent after the model process died before streaming. */
  readonly resent: Counter<"model">;
  /** Cumulative model worker restarts, failures and escalations (read from the model actors at scrape time). */
  readonly restarts: Gauge<"model">;
  readonly crashes: Gauge<"model">;
  readonly escalations: Gauge<"model">;
  /** Requests the client abandoned (disconnect) or the timeout ended. */
  readonly cancelled: Counter<"model" | "reason">;
}

/** A model's cumulative supervision counters; undefined when its actor did not answer (the last values stand). */
export interface SupervisionCounts {
  readonly restarts: number | undefined;
  readonly crashes: number | undefined;
  readonly escalations: number | undefined;
}

const PROCESS_PREFIX = "barbell_process_";

/** Creates the metrics; the supervision gauges read every model's counters once per scrape. */
export function createMetrics(readSupervision: () => Promise<ReadonlyMap<string, SupervisionCounts>>): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PROCESS_PREFIX });
  registry.removeSingleMetric(`${PROCESS_PREFIX}nodejs_version_info`);
  const registers = [registry];
  // One read per scrape serves the three gauges (the first collect() of a scrape reads, the others reuse it).
  let pending: Promise<ReadonlyMap<string, SupervisionCounts>> | undefined;
  const read = (): Promise<ReadonlyMap<string, SupervisionCounts>> => {
    pending ??= readSupervision().finally(() => queueMicrotask(() => (pending = undefined)));
    return pending;
  };
  const supervisionGauge = (name: string, help: string, field: keyof SupervisionCounts): Gauge<"model"> =>
    new Gauge({
      name,
      help,
      labelNames: ["model"],
      registers,
      async collect() {
        for (const [model, counts] of await read()) {
          const n = counts[field];
          if (n !== undefined) {
            this.set({ model }, n);
          }
        }
      },
    });
  return {
    registry,
    requests: new Counter({ name: "barbell_http_requests_total", help: "HTTP requests by model, endpoint and status", labelNames: ["model", "endpoint", "status"], registers }),
    rejected: new Counter({ name: "barbell_rejected_requests_total", help: "Requests refused with 429 (queue full)", labelNames: ["model"], registers }),
    tokens: new Counter({ name: "barbell_tokens_total", help: "Tokens by kind (prompt, completion)", labelNames: ["model", "kind"], registers }),
    inFlight: new Gauge({ name: "barbell_requests_in_flight", help: "Admitted requests not finished", labelNames: ["model"], registers }),
    queueDepth: new Gauge({ name: "barbell_queue_depth", help: "Admitted requests waiting for their first token", labelNames: ["model"], registers }),
    timeToFirstToken: new Histogram({
      name: "barbell_time_to_first_token_seconds",
      help: "Time from admission to the first generated token",
      labelNames: ["model"],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    tokensPerSecond: new Histogram({
      name: "barbell_decode_tokens_per_second",
      help: "Decode speed of each request (tokens after the first / time after the first)",
      labelNames: ["model"],
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers,
    }),
    fallbacks: new Counter({ name: "barbell_backend_fallbacks_total", help: "Kernel failures survived on the next backend", labelNames: ["model"], registers }),
    resent: new Counter({ name: "barbell_resent_requests_total", help: "Requests re-sent after the model process died", labelNames: ["model"], registers }),
    restarts: supervisionGauge("barbell_worker_restarts", "Model worker restarts so far (cumulative, across model actor restarts)", "restarts"),
    crashes: supervisionGauge("barbell_worker_crashes", "Model worker failures the supervisor handled (cumulative)", "crashes"),
    escalations: supervisionGauge("barbell_worker_escalations", "Worker failures past the restart intensity (cumulative; the model actor was restarted)", "escalations"),
    cancelled: new Counter({ name: "barbell_cancelled_requests_total", help: "Requests ended by a disconnect, a timeout or shutdown", labelNames: ["model", "reason"], registers }),
  };
}
