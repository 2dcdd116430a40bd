/**
 * The wasm-simd backend in a real browser (Debian's Chromium, driven by playwright-core): the backend and
 * the JS reference are bundled for the browser (esbuild, entry.ts), served by a small local HTTP server, and
 * checked against each other in the page.
 *
 * Served with COOP/COEP the page is cross-origin isolated: the backend must share its memory with Web
 * Workers and the workers must compute part of the calls. Served without them it must fall back to one
 * thread and say why. Results equal the reference either way.
 *
 * Without Chromium the suite is skipped and says so; CI (.ci/run) installs it and sets BARBELL_REQUIRE_BROWSER=1,
 * which turns a missing Chromium into a failure.
 */
import { existsSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BrowserReport, PageOptions } from "./entry.js";

/** Where Chromium may be: BARBELL_CHROMIUM alone when set, else Debian's and Ubuntu's paths. */
const override = process.env["BARBELL_CHROMIUM"];
const CANDIDATES = override !== undefined && override !== "" ? [override] : ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const executable = CANDIDATES.find((path) => existsSync(path));
const skipReason =
  executable === undefined
    ? `(skipped: Chromium is not installed at ${CANDIDATES.join(" or ")}; ` +
      "install it with apt-get install chromium or set BARBELL_CHROMIUM)"
    : "";
/** CI sets this: a missing Chromium is then a failure, not a skip. */
const required = process.env["BARBELL_REQUIRE_BROWSER"] === "1";
if (executable === undefined && !required) {
  // The default reporter does not list the names of skipped tests: say why once on stderr as well.
  console.warn(`wasm-simd browser tests ${skipReason}`);
}

const ISOLATION_HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>barbell wasm-simd</title></head>
<body><script src="bundle.js"></script></body></html>
`;

/** A dedicated worker that loads the same bundle and runs the checks on what it is sent. */
const WORKER = `importScripts("bundle.js");
self.onmessage = (event) => {
  self.runWasmSimdChecks(event.data).then(
    (report) => self.postMessage({ report }),
    (error) => self.postMessage({ error: String(error && error.stack ? error.stack : error) }),
  );
};
`;

/** The note a page that is not cross-origin isolated must give (threads.ts). */
const NOT_ISOLATED_NOTE =
  "single-threaded: the page is not cross-origin isolated (serve it with COOP: same-origin and COEP: require-corp)";

/** Serves the page and the bundle under /isolated/ (with COOP + COEP) and /plain/ (without). */
function serve(bundle: string): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    const match = /^\/(isolated|plain|no-workers|csp-blob)\/(bundle\.js|worker\.js)?$/.exec(path);
    if (req.method !== "GET" || match === null) {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found");
      return;
    }
    const headers: Record<string, string> = {
      "Content-Type": match[2] === undefined ? "text/html; charset=utf-8" : "text/javascript; charset=utf-8",
      "Cache-Control": "no-store",
      ...(match[1] === "plain" ? {} : ISOLATION_HEADERS),
      // Isolated, but a Content-Security-Policy that allows same-origin worker scripts and not blob: URLs, which
      // the kernel workers come from: starting the threads must fail.
      ...(match[1] === "no-workers" ? { "Content-Security-Policy": "worker-src 'self'" } : {}),
      // Isolated, with a policy that allows both.
      ...(match[1] === "csp-blob" ? { "Content-Security-Policy": "worker-src 'self' blob:" } : {}),
    };
    res.writeHead(200, headers).end(match[2] === undefined ? PAGE : match[2] === "worker.js" ? WORKER : bundle);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

describe.skipIf(executable === undefined && !required)(`wasm-simd backend in Chromium ${required ? "" : skipReason}`, () => {
  let browser: Browser | undefined;
  let server: Server | undefined;
  let origin = "";

  beforeAll(async () => {
    if (executable === undefined) {
      throw new Error(`BARBELL_REQUIRE_BROWSER=1 but Chromium is not installed at ${CANDIDATES.join(" or ")}`);
    }
    const built = await build({
      entryPoints: [fileURLToPath(new URL("./entry.ts", import.meta.url))],
      bundle: true,
      format: "iife",
      platform: "browser",
      target: "es2022",
      write: false,
      logLevel: "silent",
    });
    const bundle = built.outputFiles[0]?.text ?? "";
    server = await serve(bundle);
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: executable,
      headless: true,
      // The tests run as root in CI containers, where Chromium's sandbox cannot start.
      args: ["--no-sandbox", "--disable-dev-shm-usage"],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => {
      if (server === undefined) {
        resolve();
      } else {
        server.closeAllConnections();
        server.close(() => resolve());
      }
    });
  });

  /**
   * Opens the page in a fresh context, runs the checks on the page's thread (or in a dedicated worker the
   * page starts, `inWorker`), and returns the report and the page's errors.
   */
  async function runPage(
    mode: "isolated" | "plain" | "no-workers" | "csp-blob",
    options: PageOptions,
    inWorker = false,
  ): Promise<{ report: BrowserReport; errors: string[] }> {
    if (browser === undefined) {
      throw new Error("the browser did not start");
    }
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(error.message));
      page.on("console", (message) => {
        if (message.type() === "error") {
          errors.push(message.text());
        }
      });
      await page.goto(`${origin}/${mode}/`);
      const report = inWorker
        ? await page.evaluate(
            (opts) =>
              new Promise<BrowserReport>((resolve, reject) => {
                interface PageWorker {
                  onmessage: ((event: { data: { report?: BrowserReport; error?: string } }) => void) | null;
                  onerror: ((event: { message?: string }) => void) | null;
                  postMessage(message: unknown): void;
                }
                const g = globalThis as unknown as { Worker: new (url: string) => PageWorker };
                const worker = new g.Worker("worker.js");
                worker.onmessage = (event) =>
                  event.data.report === undefined ? reject(new Error(event.data.error)) : resolve(event.data.report);
                worker.onerror = (event) => reject(new Error(event.message ?? "the worker failed"));
                worker.postMessage(opts);
              }),
            options,
          )
        : await page.evaluate(
            (opts) => (globalThis as unknown as { runWasmSimdChecks(o: PageOptions): Promise<BrowserReport> }).runWasmSimdChecks(opts),
            options,
          );
      if (process.env["BARBELL_BROWSER_REPORT"] === "1") {
        console.log(JSON.stringify({ mode, options, report }, null, 1));
      }
      return { report, errors };
    } finally {
      await context.close();
    }
  }

  function expectAllExact(report: BrowserReport): void {
    expect(report.probe).toEqual({ available: true });
    // ternary shapes + quantization (codes and scales) + dense shapes, and any extra worker rounds.
    expect(report.checks.length).toBeGreaterThanOrEqual(8 + 10 + 3);
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
  }

  it("should use Web Workers over shared memory on a cross-origin isolated page, with exact results", async () => {
    const { report, errors } = await runPage("isolated", { threads: 3 });
    expect(errors).toEqual([]);
    expect(report.inWorker).toBe(false);
    expect(report.crossOriginIsolated).toBe(true);
    expect(report.threadNote).toBeUndefined();
    expect(report.threads).toBe(3);
    expect(report.features).toContain("threads");
    expect(report.detail).toContain("3 threads (shared memory, Web Workers)");
    expect(report.sharedMemory).toBe(true);
    expect(report.workersCreated).toBe(2);
    expect(report.workerChunks).toBeGreaterThan(0);
    expectAllExact(report);
  });

  it("should run threaded inside a dedicated worker of an isolated page (CSP worker-src 'self' blob:), with exact results", async () => {
    const { report, errors } = await runPage("csp-blob", { threads: 3 }, true);
    expect(errors).toEqual([]);
    expect(report.inWorker).toBe(true);
    expect(report.crossOriginIsolated).toBe(true);
    expect(report.threadNote).toBeUndefined();
    expect(report.threads).toBe(3);
    expect(report.detail).toContain("3 threads (shared memory, Web Workers)");
    expect(report.sharedMemory).toBe(true);
    expect(report.workersCreated).toBe(2);
    expect(report.workerChunks).toBeGreaterThan(0);
    expectAllExact(report);
  });

  it("should default to navigator.hardwareConcurrency threads on an isolated page", async () => {
    const { report, errors } = await runPage("isolated", {});
    expect(errors).toEqual([]);
    const expected = Math.max(1, Math.min(64, report.hardwareConcurrency ?? 1));
    expect(report.threads).toBe(expected);
    expect(report.workersCreated).toBe(expected - 1);
    if (expected > 1) {
      expect(report.threadNote).toBeUndefined();
      expect(report.workerChunks).toBeGreaterThan(0);
    }
    expectAllExact(report);
  });

  it("should fall back to one thread, saying why, on a page that is not cross-origin isolated", async () => {
    const { report, errors } = await runPage("plain", { threads: 3 });
    expect(errors).toEqual([]);
    expect(report.crossOriginIsolated).toBe(false);
    expect(report.threads).toBe(1);
    expect(report.features).not.toContain("threads");
    expect(report.threadNote).toBe(NOT_ISOLATED_NOTE);
    expect(report.detail).toContain(NOT_ISOLATED_NOTE);
    expect(report.sharedMemory).toBe(false);
    expect(report.workersCreated).toBe(0);
    expect(report.workerChunks).toBe(0);
    expectAllExact(report);
  });

  it("should fall back to one thread, saying why, where the page may not start workers", async () => {
    const { report } = await runPage("no-workers", { threads: 3 });
    expect(report.crossOriginIsolated).toBe(true);
    expect(report.threads).toBe(1);
    expect(report.threadNote).toBe(
      "single-threaded: [wasm-simd] kernel workers failed to start: a Web Worker from a blob: URL failed to load " +
        "(a Content-Security-Policy must allow worker-src blob:)",
    );
    expect(report.workersCreated).toBe(2);
    expect(report.workerChunks).toBe(0);
    expect(report.sharedMemory).toBe(false);
    expectAllExact(report);
  });
});
