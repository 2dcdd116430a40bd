/**
 * A real nats-server on a loopback random port per test file, and `barbell worker` child processes. Without
 * the nats-server binary the suites skip and say so; BARBELL_REQUIRE_NATS=1 (CI) makes that a failure.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { runCli } from "../../cli/helpers.js";

export const ROOT = path.resolve(import.meta.dirname, "../../..");
export const MODEL = path.join(ROOT, "models/barbell-kjv.gguf");

const found = spawnSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" }).stdout.trim();
export const NATS_BIN = found === "" ? undefined : found;
export const NATS_REQUIRED = process.env["BARBELL_REQUIRE_NATS"] === "1";
export const NATS_SKIP = NATS_BIN === undefined && !NATS_REQUIRED;
export const NATS_NOTE = NATS_BIN === undefined ? "(skipped: no nats-server binary; apt-get install nats-server, or BARBELL_REQUIRE_NATS=1 to fail instead)" : "";
if (NATS_SKIP) {
  console.warn(`NATS scale-out tests ${NATS_NOTE}`);
}

export interface NatsServer {
  readonly url: string;
  /** Stops the server and starts a new one on the same port (clients reconnect to it). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts nats-server on 127.0.0.1 and a random port (`extra` config lines, e.g. max_payload). */
export async function startNats(extra = ""): Promise<NatsServer> {
  if (NATS_BIN === undefined) {
    throw new Error("BARBELL_REQUIRE_NATS=1 but nats-server is not installed (apt-get install nats-server)");
  }
  const bin = NATS_BIN;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-nats-"));
  const conf = path.join(dir, "nats.conf");
  const launch = async (port: string): Promise<{ child: ChildProcess; url: string }> => {
    await fs.writeFile(conf, `listen: "127.0.0.1:${port}"\n${extra}\n`);
    const child = spawn(bin, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server did not start: ${log}`)), 20_000);
      const read = (d: Buffer): void => {
        log += d.toString();
        const m = /Listening for client connections on (127\.0\.0\.1:\d+)/.exec(log);
        if (m?.[1] !== undefined) {
          clearTimeout(timer);
          resolve(`nats://${m[1]}`);
        }
      };
      child.stdout?.on("data", read);
      child.stderr?.on("data", read);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited ${code}: ${log}`));
      });
    }).catch(async (error: unknown) => {
      await stopChild(child, 1000);
      throw error;
    });
    return { child, url };
  };
  let current = await launch("-1");
  const url = current.url;
  return {
    url,
    async restart() {
      await stopChild(current.child);
      current = await launch(url.slice(url.lastIndexOf(":") + 1));
    },
    async stop() {
      await stopChild(current.child);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const gone = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await gone;
  clearTimeout(timer);
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  /** Resolves with the ready line, or rejects with the process's output when it exits first. */
  readonly ready: Promise<string>;
  readonly exited: Promise<{ code: number | null; stderr: string }>;
  output(): string;
}

let runner: string | undefined;

/** Starts `barbell worker <args>` (from the sources, through tsx) as a child process. */
export async function startWorker(args: readonly string[]): Promise<WorkerProcess> {
  if (runner === undefined) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-worker-"));
    runner = path.join(dir, "barbell.mts");
    await fs.writeFile(runner, `import { main } from ${JSON.stringify(pathToFileURL(path.join(ROOT, "src/cli/main.ts")).href)};\nprocess.exitCode = await main(process.argv);\n`);
  }
  const child = spawn(process.execPath, ["--import", "tsx", runner, "worker", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => child.once("exit", (code) => resolve({ code, stderr: err })));
  const ready = new Promise<string>((resolve, reject) => {
    const check = setInterval(() => {
      const m = /barbell worker: '[^']+' ready[^\n]*/.exec(out);
      if (m !== null) {
        clearInterval(check);
        resolve(m[0]);
      }
    }, 50);
    void exited.then(({ code }) => {
      clearInterval(check);
      reject(new Error(`barbell worker exited ${code}: ${out}${err}`));
    });
  });
  ready.catch(() => undefined);
  return { child, ready, exited, output: () => out + err };
}

/** A `barbell serve --nats …` gateway run in this process (runCli), listening on a random loopback port. */
export interface GatewayRun {
  readonly base: string;
  /** Stops the gateway and waits for its command to end. */
  stop(): Promise<void>;
}

/**
 * Starts `barbell serve --nats <url> --nats-prefix <prefix> --port 0 --quiet` plus `extra` and resolves with its
 * address once it prints "listening on"; rejects if the command ends first.
 */
export async function startGateway(natsUrl: string, prefix: string, extra: readonly string[] = []): Promise<GatewayRun> {
  const stop = new AbortController();
  let out = "";
  let listening: (url: string) => void = () => undefined;
  const url = new Promise<string>((resolve) => (listening = resolve));
  const run = runCli(["serve", "--nats", natsUrl, "--nats-prefix", prefix, "--port", "0", ...extra, "--quiet"], {
    signal: stop.signal,
    onOut: (t) => {
      out += t;
      const m = /listening on (\S+)/.exec(out);
      if (m?.[1] !== undefined) {
        listening(m[1]);
      }
    },
  });
  const base = await Promise.race([url, run.then((r) => Promise.reject(new Error(`the gateway exited: ${JSON.stringify(r)}`)))]);
  return {
    base,
    async stop() {
      stop.abort();
      await run;
    },
  };
}
