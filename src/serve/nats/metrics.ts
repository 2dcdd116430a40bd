/**
 * A NATS gateway's Prometheus metrics (docs/scale-out.md): faults across machines and refused frames. They are
 * made unregistered and added to the HTTP server's registry by `barbell serve --nats`
 * ({@link NatsGatewayMetrics.register}), so that `/metrics` shows them next to the server's own.
 */
import { Counter, Gauge, type Metric, type Registry } from "prom-client";
import type { NatsFrameErrorCode } from "./wire.js";

/** Why a gateway stopped routing to a worker: its heartbeats stopped, or NATS said nobody listens on its subject. */
export type WorkerLossCause = "heartbeat" | "gone";
/** What became of a request whose worker was lost (or whose gateway lost NATS): sent to another worker, or ended. */
export type FaultOutcome = "resent" | "crashed" | "unavailable";
export type FaultCause = WorkerLossCause | "disconnect";

export class NatsGatewayMetrics {
  readonly workersLost = new Counter({
    name: "barbell_nats_workers_lost_total",
    help: "Workers taken out by this gateway: missed heartbeats, or gone from NATS (no responders)",
    labelNames: ["model", "cause"] as const,
    registers: [],
  });
  readonly requestFaults = new Counter({
    name: "barbell_nats_request_faults_total",
    help: "Requests whose worker was lost (or whose gateway lost NATS): resent to another worker (nothing streamed), crashed (streamed), unavailable (no worker took it)",
    labelNames: ["model", "outcome", "cause"] as const,
    registers: [],
  });
  readonly connection = new Counter({
    name: "barbell_nats_connection_events_total",
    help: "NATS connection events of this gateway (disconnect, reconnect)",
    labelNames: ["event"] as const,
    registers: [],
  });
  readonly refusedFrames = new Counter({
    name: "barbell_nats_refused_frames_total",
    help: "Frames this gateway refused (hostile or undecodable), by NatsFrameError code",
    labelNames: ["code"] as const,
    registers: [],
  });
  readonly prefixRouted = new Counter({
    name: "barbell_nats_prefix_routed_total",
    help: "Requests sent to the worker that was sent their prompt's prefix before (prefix-aware routing)",
    labelNames: ["model"] as const,
    registers: [],
  });
  readonly workers: Gauge<"model">;
  readonly workerRefusedFrames: Gauge<"model" | "worker">;

  /** `read` gives, at scrape time, each model's live workers and the refused-frame count each worker advertises. */
  constructor(read: () => Iterable<{ model: string; worker: string; refused: number }>) {
    this.workers = new Gauge({
      name: "barbell_nats_workers",
      help: "Workers this gateway routes to, by model",
      labelNames: ["model"] as const,
      registers: [],
      collect() {
        this.reset();
        for (const w of read()) {
          this.inc({ model: w.model });
        }
      },
    });
    this.workerRefusedFrames = new Gauge({
      name: "barbell_nats_worker_refused_frames",
      help: "Frames each live worker says it refused (from its latest advert)",
      labelNames: ["model", "worker"] as const,
      registers: [],
      collect() {
        this.reset();
        for (const w of read()) {
          this.set({ model: w.model, worker: w.worker }, w.refused);
        }
      },
    });
  }

  refused(code: NatsFrameErrorCode): void {
    this.refusedFrames.inc({ code });
  }

  /** Adds these metrics to a registry (the HTTP server's). */
  register(registry: Registry): void {
    const all: Metric<string>[] = [this.workersLost, this.requestFaults, this.connection, this.refusedFrames, this.prefixRouted, this.workers, this.workerRefusedFrames];
    for (const m of all) {
      registry.registerMetric(m);
    }
  }
}
