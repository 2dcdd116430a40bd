/**
 * The browser demo (issue 17 point 4): `barbell serve --ui` (in this process, port 0, with an API key so the
 * page's public routes are checked against a guarded /v1) serves src/ui; headless Chromium (playwright-core,
 * `--enable-unsafe-webgpu`: SwiftShader through navigator.gpu) opens it, picks the default model (the button:
 * fetched from the server) and, separately, the same file through the file input, runs greedy generations on
 * WebGPU and on WASM SIMD, and the text must equal `loadModel(...).generate(prompt, { temperature: 0 })` in
 * Node on the JS reference. The tokens/s field must show a positive number, and a screenshot must be a PNG
 * of the page's size (saved under a temp folder, its path printed).
 *
 * Without Chromium the suite is skipped and says so; BARBELL_REQUIRE_BROWSER=1 (CI) makes that a failure.
 * Without a WebGPU adapter in the page, the WebGPU case is skipped unless BARBELL_REQUIRE_WEBGPU=1.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultModelPath } from "../../src/cli/default-model.js";
import { loadModel } from "../../src/engine/model.js";
import { runCli } from "../cli/helpers.js";

const override = process.env["BARBELL_CHROMIUM"];
const CANDIDATES = override !== undefined && override !== "" ? [override] : ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const executable = CANDIDATES.find((path) => existsSync(path));
const required = process.env["BARBELL_REQUIRE_BROWSER"] === "1";
const requireWebGpu = process.env["BARBELL_REQUIRE_WEBGPU"] === "1";
const skipReason = executable === undefined ? `(skipped: Chromium is not installed at ${CANDIDATES.join(" or ")})` : "";
if (executable === undefined && !required) {
  console.warn(`demo page browser tests ${skipReason}`);
}

const PROMPT = "And God said";
/** Small: SwiftShader compiles every pipeline and runs the kernels on the CPU. */
const TOKENS = 8;
const API_KEY = "demo-test-key";

/** Width and height of a PNG from its IHDR chunk; throws when the bytes are not a PNG. */
function pngSize(png: Uint8Array): { width: number; height: number } {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (!signature.every((b, i) => png[i] === b) || Buffer.from(png.subarray(12, 16)).toString("latin1") !== "IHDR") {
    throw new Error("not a PNG");
  }
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

describe.skipIf(executable === undefined && !required)(`barbell serve --ui in Chromium ${required ? "" : skipReason}`, () => {
  const controller = new AbortController();
  let served: Promise<unknown> | undefined;
  let base = "";
  let browser: Browser | undefined;
  let expected = "";
  let shots = "";

  beforeAll(async () => {
    if (executable === undefined) {
      throw new Error(`BARBELL_REQUIRE_BROWSER=1 but Chromium is not installed at ${CANDIDATES.join(" or ")}`);
    }
    let listening: (url: string) => void = () => undefined;
    const url = new Promise<string>((resolve) => (listening = resolve));
    served = runCli(["serve", "--ui", "--port", "0", "--isolation", "in-process", "--backend", "js", "--quiet", "--api-key", API_KEY], {
      signal: controller.signal,
      onOut: (t) => {
        const m = /listening on (\S+)/.exec(t);
        if (m?.[1] !== undefined) {
          listening(m[1]);
        }
      },
    });
    base = await Promise.race([url, served.then(() => Promise.reject(new Error("barbell serve --ui ended before listening")))]);
    const model = await loadModel(defaultModelPath(), { backends: ["js"], autotune: false });
    try {
      expected = (await model.generate(PROMPT, { maxTokens: TOKENS, temperature: 0 }).complete()).text;
    } finally {
      model.dispose();
    }
    shots = await mkdtemp(join(tmpdir(), "barbell-demo-shots-"));
    browser = await chromium.launch({
      executablePath: executable,
      headless: true,
      args: ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-angle=swiftshader", "--no-sandbox", "--disable-dev-shm-usage"],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    controller.abort();
    await served;
  });

  it("should serve the page and the default model publicly (the API key guards /v1 only), from fixed routes", async () => {
    expect((await fetch(`${base}/v1/models`)).status).toBe(401);
    const page = await fetch(`${base}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("cross-origin-opener-policy")).toBe("same-origin");
    expect(page.headers.get("cross-origin-embedder-policy")).toBe("require-corp");
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self' 'wasm-unsafe-eval'");
    expect(await page.text()).toContain('<script type="module" src="app.js"></script>');
    const app = await fetch(`${base}/ui/app.js`);
    expect(app.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect((await app.text()).length).toBeGreaterThan(10_000);
    const gguf = new Uint8Array(await (await fetch(`${base}/ui/model/default.gguf`)).arrayBuffer());
    expect(Buffer.compare(Buffer.from(gguf), readFileSync(defaultModelPath()))).toBe(0);
    expect(await (await fetch(`${base}/ui/config.json`)).json()).toEqual({ defaultModel: { name: "barbell-kjv.gguf", bytes: gguf.length } });
    expect((await fetch(`${base}/ui`, { redirect: "manual" })).headers.get("location")).toBe("/ui/");
    // Nothing else under /ui/ is a route: other names, encoded traversal and POST are refused like any unknown URL.
    for (const path of ["/ui/index.html", "/ui/main.ts", "/ui/..%2f..%2fpackage.json", "/ui/model/..%2f..%2fpackage.json", "/ui/model/other.gguf"]) {
      expect([401, 404]).toContain((await fetch(`${base}${path}`)).status);
    }
    expect((await fetch(`${base}/ui/`, { method: "POST" })).status).not.toBe(200);
  });

  /** Opens the page and waits until it has probed the backends. */
  async function openPage(): Promise<{ page: Page; errors: string[] }> {
    if (browser === undefined) {
      throw new Error("the browser did not start");
    }
    const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") {
        errors.push(m.text());
      }
    });
    await page.goto(`${base}/ui/`);
    await page.waitForSelector("body[data-state=idle]", { timeout: 60_000 });
    return { page, errors };
  }

  /** Types the prompt and the token count, generates, and waits for the end. */
  async function generate(page: Page, backend: "webgpu" | "wasm-simd", tokens: string): Promise<string> {
    await page.check(`#backend-${backend}`);
    await page.fill("#prompt", PROMPT);
    await page.fill("#max-tokens", tokens);
    await page.fill("#temperature", "0");
    await page.click("#generate");
    await page.waitForSelector("body[data-state=done], body[data-state=error]", { timeout: 150_000 });
    return (await page.getAttribute("body", "data-state")) ?? "";
  }

  async function expectDone(page: Page, backend: string): Promise<void> {
    expect(await page.textContent("#error")).toBe("");
    expect(await page.textContent("#output")).toBe(expected);
    const tps = Number(await page.textContent("#tps"));
    expect(tps).toBeGreaterThan(0);
    expect(await page.textContent("#token-count")).toBe(String(TOKENS));
    const status = (await page.textContent("#status")) ?? "";
    expect(status).toContain(`Done on ${backend}`);
    const png = await page.screenshot({ fullPage: false });
    const size = pngSize(png);
    expect(size).toEqual({ width: 900, height: 1000 });
    expect(png.length).toBeGreaterThan(5_000);
    const file = join(shots, `demo-${backend}.png`);
    await writeFile(file, png);
    console.log(`[demo page] ${status} | screenshot ${file} (${png.length} bytes)`);
  }

  it("should generate on WebGPU the text Node generates, with the default model from the server", async (ctx) => {
    const { page, errors } = await openPage();
    try {
      if (await page.isDisabled("#backend-webgpu")) {
        const note = await page.textContent("#backend-webgpu-note");
        if (requireWebGpu) {
          throw new Error(`BARBELL_REQUIRE_WEBGPU=1 but the page has no WebGPU: ${note}`);
        }
        ctx.skip(`no WebGPU adapter in the page: ${note}`);
      }
      expect(await page.textContent("#backend-webgpu-note")).toMatch(/^available: /);
      await page.click("#model-default");
      await page.waitForFunction(() => (globalThis as unknown as { document: { body: { dataset: { state?: string } } } }).document.body.dataset.state === "idle");
      expect(await page.textContent("#model-info")).toContain("barbell-kjv.gguf");
      expect(await generate(page, "webgpu", String(TOKENS))).toBe("done");
      await expectDone(page, "webgpu");
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 200_000);

  it("should generate on WASM SIMD the text Node generates, with the model picked in the file input, and show bad input as text", async () => {
    const { page, errors } = await openPage();
    try {
      expect(await page.evaluate(() => (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated)).toBe(true);
      expect(await page.textContent("#backend-wasm-simd-note")).toMatch(/^available: /);
      // A bad field is refused with a message, before any model is loaded.
      await page.setInputFiles("#model-file", defaultModelPath());
      expect(await page.textContent("#model-info")).toContain("barbell-kjv.gguf");
      expect(await generate(page, "wasm-simd", "0")).toBe("error");
      expect(await page.textContent("#error")).toContain("max tokens must be a whole number from 1 to 4096");
      expect(await generate(page, "wasm-simd", String(TOKENS))).toBe("done");
      await expectDone(page, "wasm-simd");
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 200_000);
});
