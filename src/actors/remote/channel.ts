/**
 * The two hosts an isolated actor can live in, behind one small channel interface. Frames are
 * Uint8Arrays in buffers of their own: to a worker they are transferred (not copied); to a child process
 * they go over Node's IPC channel with the `advanced` (structured clone) serialization.
 *
 * Entry: the host runs `entry.ts` (sources, dev/test) or `entry.js` (dist/). TypeScript needs a loader: a
 * child process gets `--import <tsx loader URL>`; a worker is started from a small JavaScript bootstrap
 * that registers tsx's ESM hooks in that thread before importing the entry (Node 20 does not apply
 * `--import` hooks to a worker's own entry module). Compiled JavaScript needs none of this.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

export interface Channel {
  send(frame: Uint8Array): void;
  /** Ends the host; resolves once it has exited. */
  close(): Promise<void>;
  /** Host process id (child processes only). */
  readonly pid: number | undefined;
}

export interface ChannelEvents {
  frame(data: unknown): void;
  /** The host ended by itself (crash, exit, kill). */
  exited(description: string): void;
}

export interface HostSpec {
  readonly kind: "worker" | "process";
  readonly module: string;
  readonly exportName: string;
  readonly execArgv: readonly string[] | undefined;
}

const TS_SOURCE = /\.(?:ts|mts|cts)$/;

/** The entry module next to this file: `.ts` when running from sources, `.js` in dist/. */
function entryUrl(): URL {
  return new URL(import.meta.url.endsWith(".ts") ? "./entry.ts" : "./entry.js", import.meta.url);
}

function needsLoader(entry: URL, module: string): boolean {
  return TS_SOURCE.test(entry.pathname) || TS_SOURCE.test(new URL(module).pathname);
}

/** Starts a worker thread or child process running `spec.module`'s actor, and connects a channel to it. */
export function openChannel(spec: HostSpec, events: ChannelEvents): Channel {
  const entry = entryUrl();
  const loader = needsLoader(entry, spec.module);
  return spec.kind === "worker" ? openWorker(spec, entry, loader, events) : openProcess(spec, entry, loader, events);
}

function openWorker(spec: HostSpec, entry: URL, loader: boolean, events: ChannelEvents): Channel {
  const load = JSON.stringify(entry.href);
  const source = loader
    ? `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((tsx) => { tsx.register(); return import(${load}); })`
    : `import(${load})`;
  const worker = new Worker(source, {
    eval: true,
    workerData: { module: spec.module, exportName: spec.exportName },
    execArgv: [...(spec.execArgv ?? [])],
  });
  let closing = false;
  let exited: Promise<void> | undefined;
  const exitPromise = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  worker.on("message", (data: unknown) => events.frame(data));
  worker.on("error", (error) => {
    if (!closing) {
      events.exited(`worker threw: ${error.message}`);
    }
  });
  worker.on("exit", (code) => {
    if (!closing) {
      events.exited(`worker exited with code ${code}`);
    }
  });
  return {
    pid: undefined,
    send(frame) {
      worker.postMessage(frame, [frame.buffer as ArrayBuffer]);
    },
    close() {
      closing = true;
      exited ??= worker.terminate().then(() => exitPromise);
      return exited;
    },
  };
}

function openProcess(spec: HostSpec, entry: URL, loader: boolean, events: ChannelEvents): Channel {
  const execArgv = [...(spec.execArgv ?? [])];
  if (loader) {
    execArgv.push("--import", import.meta.resolve("tsx"));
  }
  const child: ChildProcess = fork(fileURLToPath(entry), [spec.module, spec.exportName], {
    execArgv,
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let closing = false;
  const exitPromise = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve();
    }
    child.once("exit", () => resolve());
  });
  child.on("message", (data: unknown) => events.frame(data));
  child.on("error", (error) => {
    if (!closing) {
      events.exited(`child process error: ${error.message}`);
    }
  });
  child.on("exit", (code, signal) => {
    if (!closing) {
      events.exited(signal ? `child process ${child.pid} killed by ${signal}` : `child process ${child.pid} exited with code ${code}`);
    }
  });
  return {
    pid: child.pid,
    send(frame) {
      if (child.connected) {
        child.send(frame);
      }
    },
    close() {
      closing = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
      }
      return exitPromise;
    },
  };
}
