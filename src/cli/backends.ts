/**
 * `barbell backends`: every backend with its probe result (available, or why not), features,
 * threads and a quick measured speed of the ternary GEMV. Probe noise goes to stderr; `--json`
 * output is only the report.
 */
import type { Command } from "commander";
import type { BackendName, BufferMemory, Kernels, PartialBackend } from "../backends/backend.js";
import { measureTernaryMatmul } from "../backends/measure.js";
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

async function measureGemv(kernels: Partial<Kernels>, budgetMs: number, memory?: BufferMemory): Promise<number | undefined> {
  const shape = { m: 1, k: 2048, n: 2048 };
  // A device kernel call only records work: time it up to the read that waits for it.
  return (await measureTernaryMatmul(kernels, shape, budgetMs, memory))?.gops;
}

export async function backendReports(measureMs = 200): Promise<BackendReport[]> {
  const reports: BackendReport[] = [];
  for (const probe of await probeAll()) {
    if (probe.name === "js") {
      const gops = await measureGemv(createJsBackend().kernels, measureMs);
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
      const gops = backend === undefined ? undefined : await measureGemv(backend.kernels, measureMs, backend.memory);
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
    const speed = r.gemvGops === undefined ? "" : `  ternary GEMV ${r.gemvGops < 1 ? r.gemvGops.toPrecision(2) : r.gemvGops.toFixed(1)} GOPS`;
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
