/** Prometheus metrics of the server (prom-client, one registry per server so that several can coexist). */
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
  /** Model worker restarts (read from the model actor at scrape time). */
  readonly restarts: Gauge<"model">;
  /** Requests the client abandoned (disconnect) or the timeout ended. */
  readonly cancelled: Counter<"model" | "reason">;
}

/** Creates the metrics; `restarts` reads each model's restart count when scraped. */
export function createMetrics(readRestarts: () => Promise<ReadonlyMap<string, number>>): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "barbell_process_" });
  const registers = [registry];
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
    restarts: new Gauge({
      name: "barbell_worker_restarts",
      help: "Model worker restarts (crashes included)",
      labelNames: ["model"],
      registers,
      async collect() {
        for (const [model, n] of await readRestarts()) {
          this.set({ model }, n);
        }
      },
    }),
    cancelled: new Counter({ name: "barbell_cancelled_requests_total", help: "Requests ended by a disconnect, a timeout or shutdown", labelNames: ["model", "reason"], registers }),
  };
}
