/**
 * Starting a worker thread on one of barbell's own modules, from dist/ (`.js`) or from TypeScript sources
 * (`.ts`, under vitest or tsx: the worker registers tsx's loader before importing the module, since a worker
 * does not inherit the parent's loader hooks).
 */
import { Worker } from "node:worker_threads";

const TS_SOURCE = /\.(?:ts|mts|cts)$/;

/** The sibling module `name` (without extension) of `base` (an import.meta.url), with the extension `base` has. */
export function siblingModule(base: string, name: string): URL {
  return new URL(`./${name}${base.endsWith(".ts") ? ".ts" : ".js"}`, base);
}

/** A worker thread that imports `module` (a file URL) with `workerData`. */
export function startModuleWorker(module: URL, workerData: unknown, options: { execArgv?: readonly string[] } = {}): Worker {
  const load = JSON.stringify(module.href);
  const source = TS_SOURCE.test(module.pathname)
    ? `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((tsx) => { tsx.register(); return import(${load}); })`
    : `import(${load})`;
  return new Worker(source, { eval: true, workerData, execArgv: [...(options.execArgv ?? [])] });
}
