/**
 * `barbell pull`, `barbell models` and `-m hf:<org>/<repo>/<file>` on every command that takes `-m` (docs/hub.md).
 * The path goes to stdout; progress goes to stderr (a progress bar only when stderr is a TTY, else log lines).
 */
import type { Command } from "commander";
import cliProgress from "cli-progress";
import { hubConfig } from "../hub/config.js";
import type { DownloadEvent } from "../hub/download.js";
import { listCache, type CachedRepo } from "../hub/cache.js";
import { parseModelRef } from "../hub/names.js";
import { pull, resolveHfModel } from "../hub/pull.js";
import type { CliIo } from "./run.js";

/** The prefix that makes a `-m` value a hub model. */
export const HF_PREFIX = "hf:";

function mib(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/** Progress of one download on stderr: a cli-progress bar on a TTY, else a line per tenth and per event. */
export function downloadReporter(io: CliIo, prefix: string): { onEvent: (e: DownloadEvent) => void; stop: () => void } {
  const bar = io.errIsTty
    ? new cliProgress.SingleBar(
        { format: `{what} [{bar}] {percentage}% {done}/{size} MiB {speed} MiB/s`, stream: process.stderr, clearOnComplete: true, hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const started = performance.now();
  let from = 0;
  let tenth = -1;
  let running = false;
  let what = "";
  const payload = (done: number, total: number): Record<string, string> => {
    const secs = (performance.now() - started) / 1000;
    return { what, done: (done / 2 ** 20).toFixed(1), size: (total / 2 ** 20).toFixed(1), speed: secs > 0 ? ((done - from) / 2 ** 20 / secs).toFixed(1) : "-" };
  };
  const onEvent = (e: DownloadEvent): void => {
    switch (e.kind) {
      case "start":
        what = e.what;
        from = e.resumeFrom;
        tenth = Math.floor((e.resumeFrom / Math.max(e.total, 1)) * 10);
        io.err(`${prefix}: downloading ${what} (${mib(e.total)})${e.resumeFrom > 0 ? `, resuming at ${mib(e.resumeFrom)}` : ""}\n`);
        bar?.start(e.total, e.resumeFrom, payload(e.resumeFrom, e.total));
        running = bar !== undefined;
        break;
      case "progress": {
        bar?.update(e.done, payload(e.done, e.total));
        const t = Math.floor((e.done / Math.max(e.total, 1)) * 10);
        if (bar === undefined && t > tenth && e.done < e.total) {
          tenth = t;
          io.err(`${prefix}: ${t * 10}% (${mib(e.done)} of ${mib(e.total)})\n`);
        }
        break;
      }
      case "retry":
        bar?.stop();
        running = false;
        io.err(`${prefix}: ${e.reason}; resuming at ${mib(e.done)} (attempt ${e.attempt + 1})\n`);
        break;
      case "verify":
        bar?.stop();
        running = false;
        io.err(`${prefix}: ${e.sha256 ? "checking the SHA-256 against the hub's LFS ETag" : "checking the size (not an LFS file: no SHA-256 to check)"}\n`);
        break;
    }
  };
  return { onEvent, stop: () => (running ? bar?.stop() : undefined) };
}

/** `-m hf:…`: the cached file's path, pulled first when `fetch` is set and it is missing. */
export async function resolveHfOption(value: string, fetch: boolean, io: CliIo): Promise<string> {
  const ref = parseModelRef(value.slice(HF_PREFIX.length));
  const cfg = await hubConfig();
  const reporter = downloadReporter(io, "barbell");
  try {
    const got = await resolveHfModel(cfg, ref, fetch, { signal: io.signal, onEvent: reporter.onEvent, note: io.err });
    return got.path;
  } finally {
    reporter.stop();
  }
}

/** One line per cached file, grouped by repo and snapshot. */
export function formatCache(cacheDir: string, repos: readonly CachedRepo[]): string {
  if (repos.length === 0) {
    return `no models in the cache ${cacheDir} (barbell pull <org>/<repo>/<file> fetches one)`;
  }
  const lines = [`cache ${cacheDir}`];
  for (const r of repos) {
    const total = r.snapshots.flatMap((s) => s.files).reduce((sum, f) => sum + (f.size ?? 0), 0);
    lines.push(`${r.repo}  (${mib(total)})`);
    for (const s of r.snapshots) {
      lines.push(`  commit ${s.commit}${s.refs.length === 0 ? "" : ` (${s.refs.join(", ")})`}`);
      for (const f of s.files) {
        lines.push(`    ${f.file}  ${f.size === undefined ? "missing blob (barbell pull fetches it again)" : mib(f.size)}`);
      }
    }
    for (const p of r.incomplete) {
      lines.push(`  partial download ${p.etag}: ${mib(p.bytes)} so far (barbell pull resumes it)`);
    }
  }
  return lines.join("\n");
}

/** Registers `pull` and `models`. */
export function addHubCommands(program: Command, io: CliIo): void {
  program
    .command("pull")
    .description("download a model from a Hugging Face hub into the Hugging Face cache (HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE); prints its path")
    .argument("<model>", "<org>/<repo>/<file> (or <org>/<repo> when it holds one .gguf file)")
    .option("--revision <rev>", "branch, tag or commit", "main")
    .action(async (model: string, o: { revision: string }) => {
      const ref = parseModelRef(model.startsWith(HF_PREFIX) ? model.slice(HF_PREFIX.length) : model);
      const cfg = await hubConfig();
      const reporter = downloadReporter(io, "barbell pull");
      const started = performance.now();
      try {
        const r = await pull(cfg, ref, { revision: o.revision, signal: io.signal, onEvent: reporter.onEvent, note: io.err });
        const secs = ((performance.now() - started) / 1000).toFixed(1);
        io.err(
          r.fetched === 0
            ? `barbell pull: ${r.repo}/${r.file} at commit ${r.commit.slice(0, 12)} is in the cache (${mib(r.size)}; nothing downloaded)\n`
            : `barbell pull: ${r.repo}/${r.file} at commit ${r.commit.slice(0, 12)}: ${mib(r.fetched)} downloaded in ${secs} s, verified and linked\n`,
        );
        io.out(`${r.path}\n`);
      } finally {
        reporter.stop();
      }
    });

  program
    .command("models")
    .description("list the models in the Hugging Face cache (HF_HUB_CACHE): repos, commits, files and sizes")
    .option("--json", "print the listing as JSON")
    .action(async (o: { json?: boolean }) => {
      const cfg = await hubConfig();
      const repos = await listCache(cfg.cacheDir);
      io.out(`${o.json === true ? JSON.stringify({ cache: cfg.cacheDir, repos }) : formatCache(cfg.cacheDir, repos)}\n`);
    });
}

/**
 * Makes `-m hf:<org>/<repo>[/<file>]` work on every command registered so far that takes `-m`: adds `--pull` to
 * them, and before their action replaces the value with the cached file's path (pulling it with `--pull`).
 */
export function addHfModelSupport(program: Command, io: CliIo): void {
  for (const cmd of program.commands) {
    const model = cmd.options.find((o) => o.long === "--model");
    if (model === undefined) {
      continue;
    }
    model.description += `, or ${HF_PREFIX}<org>/<repo>/<file> from the Hugging Face cache`;
    cmd.option("--pull", `with -m ${HF_PREFIX}…: download the model when it is not in the cache`);
  }
  program.hook("preAction", async (_program, action) => {
    const value: unknown = action.getOptionValue("model");
    if (typeof value === "string" && value.startsWith(HF_PREFIX)) {
      action.setOptionValue("model", await resolveHfOption(value, action.getOptionValue("pull") === true, io));
    }
  });
}
