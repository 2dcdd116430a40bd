/**
 * The demo page's parts that need no browser: its bundle builds for browsers with no Node built-in (and a
 * page entry that imports one is refused with UiError "build"), the server's page files come from a built
 * bundle when there is one, the /ui/ routes (fastify inject), and `loadGgufModel` (the page's loader: GGUF
 * bytes, a Blob) giving the model `loadModel` gives.
 */
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDispatcher } from "../../src/backends/dispatch.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { defaultModelPath } from "../../src/cli/default-model.js";
import { UsageError } from "../../src/core/errors.js";
import type { Backend } from "../../src/backends/backend.js";
import { loadGgufModel, loadModel } from "../../src/engine/model.js";
import { BlobSource } from "../../src/formats/gguf/source.js";
import { bundleUi, loadUiAssets, registerUi, UiError } from "../../src/serve/http/ui.js";
import { demoSettings } from "../../src/ui/demo.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "barbell-demo-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("the demo page's bundle", () => {
  it("should bundle src/ui for browsers (no Node built-in anywhere in its imports)", async () => {
    const js = await bundleUi();
    expect(js.length).toBeGreaterThan(100_000);
    expect(js).toContain("navigator.gpu");
    expect(js).not.toMatch(/from\s*"node:/);
  }, 60_000);

  it("should refuse a page entry that imports a Node built-in, and say when the page's files are missing", async () => {
    const page = join(dir, "node-import");
    await mkdir(page);
    await expect(loadUiAssets(page)).rejects.toMatchObject({ name: "UiError", code: "missing" });
    await writeFile(join(page, "index.html"), "<!doctype html>");
    await writeFile(join(page, "style.css"), "");
    await expect(loadUiAssets(page)).rejects.toMatchObject({ name: "UiError", code: "missing" });
    await writeFile(join(page, "main.ts"), 'import { readFileSync } from "node:fs";\nconsole.log(readFileSync);\n');
    const refused = await loadUiAssets(page).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UiError);
    expect((refused as UiError).code).toBe("build");
    expect((refused as UiError).message).toContain('Could not resolve "node:fs"');
    // A built bundle next to the page is used as it is (dist/ui after npm run build).
    await writeFile(join(page, "app.js"), "/* built */");
    expect(await loadUiAssets(page)).toEqual({ html: "<!doctype html>", css: "", js: "/* built */" });
  });

  it("should check the max-tokens and temperature fields", () => {
    expect(demoSettings("16", "0")).toEqual({ maxTokens: 16, temperature: 0 });
    for (const [n, t] of [["0", "0"], ["4097", "0"], ["1.5", "0"], ["", "0"], ["8", "-1"], ["8", "2.5"], ["8", "x"], ["8", ""]] as const) {
      expect(() => demoSettings(n, t)).toThrow(/max tokens|temperature/);
    }
  });
});

describe("the /ui/ routes", () => {
  const assets = { html: "<p>page</p>", css: "p{}", js: "void 0;" };

  it("should serve the fixed files with isolation and CSP headers, and stream the default model", async () => {
    const app = Fastify();
    registerUi(app, { defaultModel: defaultModelPath() }, assets);
    const page = await app.inject({ method: "GET", url: "/ui/" });
    expect(page.statusCode).toBe(200);
    expect(page.body).toBe(assets.html);
    expect(page.headers["cross-origin-embedder-policy"]).toBe("require-corp");
    expect(String(page.headers["content-security-policy"])).toContain("worker-src 'self' blob:");
    expect((await app.inject({ method: "GET", url: "/ui/app.js" })).body).toBe(assets.js);
    expect((await app.inject({ method: "GET", url: "/ui/style.css" })).headers["content-type"]).toBe("text/css; charset=utf-8");
    const model = await app.inject({ method: "GET", url: "/ui/model/default.gguf" });
    expect(model.headers["content-type"]).toBe("application/octet-stream");
    expect(Buffer.compare(model.rawPayload, readFileSync(defaultModelPath()))).toBe(0);
    expect(Number(model.headers["content-length"])).toBe(model.rawPayload.length);
    // Only those names are routes: no URL reaches the file system (an encoded slash stays part of one name).
    for (const url of ["/ui/index.html", "/ui/main.ts", "/ui/model/", "/ui/model/other.gguf", "/ui/..%2f..%2fpackage.json", "/ui/model/..%2f..%2f..%2fpackage.json"]) {
      expect((await app.inject({ method: "GET", url })).statusCode).toBe(404);
    }
    expect((await app.inject({ method: "POST", url: "/ui/" })).statusCode).toBe(404);
    await app.close();
  });

  it("should offer no default model when given none, and say so in config.json without a path", async () => {
    const app = Fastify();
    registerUi(app, {}, assets);
    expect(JSON.parse((await app.inject({ method: "GET", url: "/ui/config.json" })).body)).toEqual({ defaultModel: null });
    const missing = await app.inject({ method: "GET", url: "/ui/model/default.gguf" });
    expect(missing.statusCode).toBe(404);
    await app.close();
    const gone = Fastify();
    registerUi(gone, { defaultModel: join(dir, "no-such-model.gguf") }, assets);
    expect(JSON.parse((await gone.inject({ method: "GET", url: "/ui/config.json" })).body)).toEqual({ defaultModel: null });
    const body = (await gone.inject({ method: "GET", url: "/ui/model/default.gguf" })).body;
    expect(body).not.toContain(dir);
    await gone.close();
  });
});

describe("loadGgufModel (the page's loader)", () => {
  it("should give loadModel's greedy text from GGUF bytes and from a Blob, on the backend given", async () => {
    const path = defaultModelPath();
    const bytes = new Uint8Array(readFileSync(path));
    const settings = { maxTokens: 10, temperature: 0 };
    const prompt = "In the beginning";
    const fromFile = await loadModel(path, { backends: ["js"], autotune: false });
    const want = await fromFile.generate(prompt, settings).complete();
    fromFile.dispose();
    const backend: Backend = createDispatcher([], createJsBackend());
    for (const source of [bytes, new Blob([bytes]), new BlobSource(new Blob([bytes]))]) {
      const model = await loadGgufModel(source, { backend, name: "barbell-kjv.gguf" });
      try {
        expect(model.contextLength).toBe(fromFile.contextLength);
        const got = await model.generate(prompt, settings).complete();
        expect(got.tokens).toEqual(want.tokens);
        expect(got.text).toBe(want.text);
      } finally {
        model.dispose();
      }
    }
  }, 60_000);

  it("should refuse a call without a backend and bytes that are not GGUF", async () => {
    await expect(loadGgufModel(new Uint8Array(8), {} as { backend: Backend })).rejects.toBeInstanceOf(UsageError);
    await expect(loadGgufModel(new Uint8Array(64), { backend: createJsBackend() })).rejects.toMatchObject({ name: "FormatError" });
  });
});
