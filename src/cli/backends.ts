/**
 * `barbell backends`: every backend with its probe result (available, or why not), features,
 * threads and a quick measured speed of the ternary GEMV. Probe noise goes to stderr; `--json`
 * output is only the report.
 */
import type { Command } from "commander";
import type { BackendName, BufferMemory, Kernels, PartialBackend, TensorRef } from "../backends/backend.js";
import { ArrayBufferMemory } from "../backends/host-memory.js";
import { createJsBackend } from "../backends/js/index.js";
import { PROVIDERS } from "../backends/providers.js";
import { probeAll } from "../backends/registry.js";
import type { CliIo } from "./run.js";

export interface BackendReport {
  readonly name: BackendName;
  readonly available: boolean;
  readonly reason?: string;
  readonly features: readonly string[];
  readonly threads?: number;
  readonly detail?: string;
  /** Ternary×int8 GEMV, 2048×2048, giga-operations (multiply-adds × 2) per second. */
  readonly gemvGops?: number;
}

/** Times `kernels.matmulTernaryI8` on a 2048×2048 GEMV for about `budgetMs`, in the backend's own memory. */
function measureGemv(kernels: Partial<Kernels>, budgetMs: number, memory?: BufferMemory): number | undefined {
  const kernel = kernels.matmulTernaryI8;
  if (kernel === undefined) {
    return undefined;
  }
  const [n, k] = [2048, 2048];
  const mem = memory ?? new ArrayBufferMemory("bench");
  const ref = (dtype: TensorRef["dtype"], shape: number[], bytes: number, scale?: number): TensorRef => {
    const buffer = mem.alloc(bytes);
    return scale === undefined ? { buffer, dtype, shape } : { buffer, dtype, shape, scale };
  };
  const x = ref("i8", [1, k], k);
  const s = ref("f32", [1], 4);
  const w = ref("ternary", [n, k], (n * k) / 4, 0.5);
  const out = ref("f32", [1, n], n * 4);
  mem.write(w.buffer, new Uint8Array((n * k) / 4).fill(0b01100110));
  mem.write(x.buffer, Uint8Array.from({ length: k }, (_, i) => (i * 37) & 0xff));
  mem.write(s.buffer, new Uint8Array(Float32Array.of(1).buffer));
  kernel(x, s, w, out); // warm-up
  let runs = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < budgetMs || runs < 3) {
    kernel(x, s, w, out);
    runs++;
  }
  const seconds = (performance.now() - t0) / 1000;
  for (const r of [x, s, w, out]) {
    mem.free(r.buffer);
  }
  return (runs * 2 * n * k) / seconds / 1e9;
}

export async function backendReports(measureMs = 200): Promise<BackendReport[]> {
  const reports: BackendReport[] = [];
  for (const probe of await probeAll()) {
    if (probe.name === "js") {
      const gops = measureGemv(createJsBackend().kernels, measureMs);
      reports.push({ name: "js", available: true, features: ["reference"], threads: 1, ...(gops === undefined ? {} : { gemvGops: gops }) });
      continue;
    }
    if (!probe.probe.available) {
      reports.push({ name: probe.name, available: false, reason: probe.probe.reason, features: [] });
      continue;
    }
    const provider = PROVIDERS.find((p) => p.name === probe.name);
    let backend: PartialBackend | undefined;
    try {
      backend = await provider?.create({});
      const gops = backend === undefined ? undefined : measureGemv(backend.kernels, measureMs, backend.memory);
      reports.push({
        name: probe.name,
        available: true,
        features: backend?.info.features ?? probe.probe.features,
        ...(backend === undefined ? {} : { threads: backend.info.threads }),
        ...(backend?.info.detail === undefined ? {} : { detail: backend.info.detail }),
        ...(gops === undefined ? {} : { gemvGops: gops }),
      });
    } catch (e) {
      reports.push({ name: probe.name, available: false, reason: `failed to start: ${e instanceof Error ? e.message : String(e)}`, features: [] });
    } finally {
      backend?.dispose();
    }
  }
  return reports;
}

export function formatBackendReports(reports: readonly BackendReport[]): string {
  const rows = reports.map((r) => {
    const status = r.available ? "available" : `unavailable: ${r.reason ?? "?"}`;
    const speed = r.gemvGops === undefined ? "" : `  ternary GEMV ${r.gemvGops.toFixed(1)} GOPS`;
    const threads = r.threads === undefined ? "" : `  threads ${r.threads}`;
    const features = r.features.length === 0 ? "" : `  [${r.features.join(", ")}]`;
    return `${r.name.padEnd(11)} ${status}${features}${threads}${speed}`;
  });
  return rows.join("\n");
}

export function addBackendsCommand(program: Command, io: CliIo): void {
  program
    .command("backends")
    .description("list the compute backends: available or why not, features, threads, a quick GEMV speed")
    .option("--json", "print the report as JSON")
    .action(async (flags: { json?: boolean }) => {
      const reports = await backendReports();
      io.out(flags.json === true ? `${JSON.stringify(reports, null, 2)}\n` : `${formatBackendReports(reports)}\n`);
    });
}
