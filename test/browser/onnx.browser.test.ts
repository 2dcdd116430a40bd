/**
 * The ONNX export in onnxruntime-web's WASM backend in Chromium (playwright-core, Debian's /usr/bin/chromium): each
 * form of the default model is exported, served with its external data file from a loopback server, and run in the
 * page (prompt, then 32 greedy decode steps through the KV cache); the logits are compared in Node with barbell's
 * JS reference. onnxruntime-web comes from the optional prefix .optional/onnx (scripts/install-onnxruntime.sh).
 *
 * Skipped, saying why, without Chromium or onnxruntime-web; BARBELL_REQUIRE_BROWSER=1 / BARBELL_REQUIRE_ONNX=1 (CI)
 * turn either into a failure.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ONNX_FORMS, exportOnnx, type OnnxForm } from "../../src/export/onnx/export.js";
import { openExportSource } from "../../src/export/onnx/sources.js";
import { ORT_PREFIX, ROOT, argmax, maxDiff, runBarbell, type RunResult } from "../export/onnx-harness.js";

const override = process.env["BARBELL_CHROMIUM"];
const CANDIDATES = override !== undefined && override !== "" ? [override] : ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const executable = CANDIDATES.find((p) => existsSync(p));
const ORT_DIST = path.join(ORT_PREFIX, "node_modules/onnxruntime-web/dist");
const missing = [
  ...(executable === undefined ? [`Chromium is not installed at ${CANDIDATES.join(" or ")}`] : []),
  ...(existsSync(path.join(ORT_DIST, "ort.wasm.min.js")) ? [] : ["onnxruntime-web is not in .optional/onnx (run scripts/install-onnxruntime.sh)"]),
];
const required = process.env["BARBELL_REQUIRE_BROWSER"] === "1" || process.env["BARBELL_REQUIRE_ONNX"] === "1";
if (missing.length > 0 && !required) {
  console.warn(`onnx browser tests (skipped: ${missing.join("; ")})`);
}
const suite = missing.length === 0 || required ? describe : describe.skip;

const MODEL = path.join(ROOT, "models/barbell-kjv.gguf");
const PROMPT = [1, 2, 3, 4, 5, 6, 7, 8];
const STEPS = 32;
/** The Node tolerance of test/export/onnx.test.ts: the WASM build runs the same CPU kernels. */
const TOLERANCE = 2e-4;

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>barbell onnx</title>
<script src="/ort/ort.wasm.min.js"></script></head><body></body></html>`;

/** Runs in the page: loads the model and its data file, prompt + greedy steps, returns the logits rows. */
async function pageRun(args: { form: string; layers: number; kvHeads: number; headDim: number; vocab: number; prompt: number[]; steps: number }): Promise<{ prompt: number[][]; steps: number[][]; error?: string }> {
  /* eslint-disable @typescript-eslint/no-explicit-any -- the page's global onnxruntime-web */
  const ort = (globalThis as any).ort;
  ort.env.wasm.wasmPaths = "/ort/";
  ort.env.wasm.numThreads = 1;
  const model = new Uint8Array(await (await fetch(`/model/${args.form}.onnx`)).arrayBuffer());
  const data = new Uint8Array(await (await fetch(`/model/${args.form}.onnx.data`)).arrayBuffer());
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ["wasm"],
    externalData: [{ path: `${args.form}.onnx.data`, data }],
  });
  const past = new Map<string, any>();
  for (let l = 0; l < args.layers; l++) {
    for (const kind of ["key", "value"]) {
      past.set(`past_key_values.${l}.${kind}`, new ort.Tensor("float32", new Float32Array(0), [1, args.kvHeads, 0, args.headDim]));
    }
  }
  let length = 0;
  const step = async (tokens: number[]): Promise<number[][]> => {
    const n = tokens.length;
    const feeds: Record<string, any> = {
      input_ids: new ort.Tensor("int64", BigInt64Array.from(tokens.map(BigInt)), [1, n]),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(length + n).fill(1n), [1, length + n]),
      position_ids: new ort.Tensor("int64", BigInt64Array.from(tokens.map((_, i) => BigInt(length + i))), [1, n]),
    };
    past.forEach((t, name) => (feeds[name] = t));
    const out = await session.run(feeds);
    for (let l = 0; l < args.layers; l++) {
      for (const kind of ["key", "value"]) {
        past.set(`past_key_values.${l}.${kind}`, out[`present.${l}.${kind}`]);
      }
    }
    length += n;
    const logits = out.logits.data as Float32Array;
    return Array.from({ length: n }, (_, i) => Array.from(logits.subarray(i * args.vocab, (i + 1) * args.vocab)));
  };
  const best = (row: number[]): number => row.reduce((b, v, i) => (v > (row[b] ?? -Infinity) ? i : b), 0);
  const prompt = await step(args.prompt);
  let next = best(prompt[prompt.length - 1] ?? []);
  const steps: number[][] = [];
  for (let s = 0; s < args.steps; s++) {
    const row = (await step([next]))[0] ?? [];
    steps.push(row);
    next = best(row);
  }
  await session.release();
  return { prompt, steps };
}

suite("ONNX export in onnxruntime-web (WASM) in Chromium", () => {
  let dir = "";
  let server: Server | undefined;
  let browser: Browser | undefined;
  /** One page for the three forms: onnxruntime's WASM module is compiled once. */
  let page: Page | undefined;
  let base = "";
  let ref: RunResult;
  let config: { layers: number; kvHeads: number; headDim: number; vocabSize: number };

  beforeAll(async () => {
    if (missing.length > 0) {
      throw new Error(`required by BARBELL_REQUIRE_BROWSER/BARBELL_REQUIRE_ONNX, but ${missing.join("; ")}`);
    }
    dir = await mkdtemp(path.join(os.tmpdir(), "barbell-onnx-web-"));
    await using source = await openExportSource(MODEL);
    config = source.config;
    for (const form of ONNX_FORMS) {
      await exportOnnx(source.config, source.weights, path.join(dir, `${form}.onnx`), { form });
    }
    ref = await runBarbell(source.config, source.weights, PROMPT, STEPS);
    server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
      const ort = /^\/ort\/([\w.-]+\.(?:js|mjs|wasm))$/.exec(url);
      const model = /^\/model\/([\w.-]+\.onnx(?:\.data)?)$/.exec(url);
      const file = ort?.[1] !== undefined ? path.join(ORT_DIST, ort[1]) : model?.[1] !== undefined ? path.join(dir, model[1]) : undefined;
      if (url === "/") {
        res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(PAGE);
        return;
      }
      if (file === undefined) {
        res.writeHead(404).end();
        return;
      }
      const type = file.endsWith(".wasm") ? "application/wasm" : file.endsWith("js") ? "text/javascript" : "application/octet-stream";
      readFile(file).then(
        (bytes) => res.writeHead(200, { "Content-Type": type }).end(bytes),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await chromium.launch({ executablePath: executable as string, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
    page = await browser.newPage();
    await page.goto(base);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server?.close(() => resolve()));
    }
    if (dir !== "") {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each(ONNX_FORMS)("%s: prompt logits and 32 greedy decode steps agree with barbell", async (form: OnnxForm) => {
    {
      const got = await (page as Page).evaluate(pageRun, { form, layers: config.layers, kvHeads: config.kvHeads, headDim: config.headDim, vocab: config.vocabSize, prompt: PROMPT, steps: STEPS });
      const prompt = got.prompt.map((r) => Float32Array.from(r));
      const steps = got.steps.map((r) => Float32Array.from(r));
      expect(prompt).toHaveLength(PROMPT.length);
      expect(steps).toHaveLength(STEPS);
      expect(maxDiff(ref.prompt, prompt).max).toBeLessThan(TOLERANCE);
      expect(maxDiff(ref.steps, steps).max).toBeLessThan(TOLERANCE);
      const ids = [argmax(prompt[prompt.length - 1] as Float32Array), ...steps.map(argmax)];
      expect(ids).toEqual(ref.ids);
    }
  }, 180_000);
});
