/**
 * WebGPU in a browser: bundled for the browser with esbuild (the shaders are TS string modules, so nothing
 * else is fetched), run in headless Chromium with `--enable-unsafe-webgpu` through `navigator.gpu`
 * (SwiftShader without a GPU):
 * - the kernel library against the JS reference kernels in the page: activation quantization + ternary
 *   matmul and the Q8_0 head bit for bit, RMSNorm within rel L2 2e-6;
 * - the WebGPU backend end to end (test/browser/webgpu-entry.ts): every golden fixture decodes into its
 *   golden greedy ids, with one readback per decode step and nothing left allocated.
 *
 * The page is served by playwright's request interception at http://localhost/ (a secure context, which
 * WebGPU requires), so no server is started. Without Chromium the test is skipped and says why, unless
 * BARBELL_REQUIRE_WEBGPU=1.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import { describe, expect, it } from "vitest";

const override = process.env["BARBELL_CHROMIUM"];
const CANDIDATES = override !== undefined && override !== "" ? [override] : ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const executable = CANDIDATES.find((path) => existsSync(path));
const REQUIRED = process.env["BARBELL_REQUIRE_WEBGPU"] === "1";
if (executable === undefined && !REQUIRED) {
  console.warn(`webgpu browser test skipped: Chromium is not installed at ${CANDIDATES.join(" or ")}`);
}
const root = fileURLToPath(new URL("../..", import.meta.url));

/** The page's check, bundled with the library and the reference kernels. */
const ENTRY = `
import "./test/browser/webgpu-entry.ts";
import { WebGpuContext } from "./src/backends/webgpu/index.ts";
import { packTernary } from "./src/quant/layouts.ts";
import { quantizeActivations } from "./src/quant/values.ts";
import { QUANT_TRAITS } from "./src/quant/table.ts";
import { matmulTernaryI8 } from "./src/backends/js/kernels/matmul.ts";
import { matmulQ8I8 } from "./src/backends/js/kernels/dense.ts";
import { rmsNorm } from "./src/backends/js/kernels/norm.ts";

const same = (a, b) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

globalThis.runCheck = async () => {
  const ctx = await WebGpuContext.create();
  try {
    const [m, k, n] = [3, 300, 33];
    const x = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 1.7) * 3);
    const q = quantizeActivations(x, m, k);
    const w = packTernary(Int8Array.from({ length: n * k }, (_, i) => ((i * 7919) % 3) - 1), n, k);
    const want = new Float32Array(m * n);
    matmulTernaryI8(q.value.values, q.value.scales, w, 0.3, m, k, n, want);
    const xq = ctx.alloc("i8", [m, k]);
    const xs = ctx.alloc("f32", [m]);
    const out = ctx.alloc("f32", [m, n]);
    ctx.kernels.quantizeActivations(ctx.upload("f32", [m, k], x), xq, xs);
    ctx.kernels.matmulTernaryI8(xq, xs, ctx.upload("ternary", [n, k], w, 0.3), out);
    const ternary = same(await ctx.readF32(out), want);

    const [hm, hk, hn] = [2, 128, 40];
    const hx = Float32Array.from({ length: hm * hk }, (_, i) => Math.cos(i * 0.37) * 2);
    const hw = QUANT_TRAITS.q8_0.encode(Float32Array.from({ length: hn * hk }, (_, i) => Math.sin(i * 0.11) * 0.2), hn, hk);
    const hwant = new Float32Array(hm * hn);
    matmulQ8I8(hx, hw, hm, hk, hn, hwant);
    const hout = ctx.alloc("f32", [hm, hn]);
    ctx.kernels.matmulQ8I8(ctx.upload("f32", [hm, hk], hx), ctx.upload("q8_0", [hn, hk], hw), hout);
    const q8i8 = same(await ctx.readF32(hout), hwant);

    const nx = Float32Array.from({ length: 2 * 2560 }, (_, i) => Math.sin(i) * 4);
    const nw = Float32Array.from({ length: 2560 }, (_, i) => 1 + Math.cos(i) / 2);
    const nwant = new Float32Array(nx.length);
    rmsNorm(nx, nw, 2, 2560, 1e-5, nwant);
    const nout = ctx.alloc("f32", [2, 2560]);
    ctx.kernels.rmsNorm(ctx.upload("f32", [2, 2560], nx), ctx.upload("f32", [2560], nw), 1e-5, nout);
    const ngot = await ctx.readF32(nout);
    let num = 0;
    let den = 0;
    nwant.forEach((v, i) => { num += (ngot[i] - v) ** 2; den += v * v; });
    return { adapter: ctx.adapter, ternary, q8i8, rmsNormRelL2: Math.sqrt(num / den) };
  } finally {
    ctx.dispose();
  }
};
`;

/**
 * The GGUF byte-source module imports node:fs (and core/files node:path) for its FileSource, which a page never
 * uses; the bundle gets a stub for those built-ins that throws if anything calls into it.
 */
const nodeStub = {
  name: "node-builtins-stub",
  setup(b: { onResolve: (o: { filter: RegExp }, f: (a: { path: string }) => { path: string; namespace: string }) => void; onLoad: (o: { filter: RegExp; namespace: string }, f: () => { contents: string; loader: "js" }) => void }) {
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: "node-stub" }));
    b.onLoad({ filter: /.*/, namespace: "node-stub" }, () => ({
      contents: "module.exports = new Proxy({}, { get: (_, name) => name === '__esModule' ? false : () => { throw new Error('a Node built-in is not available in the browser'); } });",
      loader: "js",
    }));
  },
};

interface GoldenPage {
  adapter: { runtime: string; vendor: string; architecture: string };
  results: { ids: number[]; golden: number[]; live: number }[];
  readbacks: number;
  submissions: number;
  steps: number;
}

interface PageResult {
  adapter: { runtime: string; architecture: string; vendor: string };
  ternary: boolean;
  q8i8: boolean;
  rmsNormRelL2: number;
}

describe("webgpu kernels in headless Chromium", () => {
  if (executable === undefined && !REQUIRED) {
    it.skip(`skipped: Chromium is not installed at ${CANDIDATES.join(" or ")} (scripts/install-webgpu.sh installs it)`, () => undefined);
    return;
  }

  it("should match the JS reference through navigator.gpu, and decode every golden fixture into its greedy ids", async () => {
    if (executable === undefined) {
      throw new Error(`Chromium is required (BARBELL_REQUIRE_WEBGPU=1) but is not at ${CANDIDATES.join(" or ")}`);
    }
    const bundle = await build({
      stdin: { contents: ENTRY, resolveDir: root, loader: "ts", sourcefile: "webgpu-entry.ts" },
      bundle: true,
      format: "esm",
      platform: "browser",
      write: false,
      logLevel: "silent",
      plugins: [nodeStub],
    });
    const code = bundle.outputFiles[0]?.text ?? "";
    const browser = await chromium.launch({
      executablePath: executable,
      args: ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-angle=swiftshader", "--no-sandbox"],
    });
    try {
      const page = await browser.newPage();
      await page.route("http://localhost/**", (route) =>
        route.fulfill({ contentType: "text/html", body: "<!doctype html><html><head><meta charset='utf-8'></head><body></body></html>" }),
      );
      await page.goto("http://localhost/");
      await page.addScriptTag({ content: code, type: "module" });
      await page.waitForFunction(() => typeof (globalThis as { runCheck?: unknown }).runCheck === "function");
      const result = (await page.evaluate(() => (globalThis as unknown as { runCheck: () => Promise<unknown> }).runCheck())) as PageResult;
      console.log(`[webgpu browser test] adapter: ${result.adapter.vendor} ${result.adapter.architecture} via ${result.adapter.runtime}`);
      expect(result.adapter.runtime).toBe("navigator.gpu");
      expect(result.ternary).toBe(true);
      expect(result.q8i8).toBe(true);
      expect(result.rmsNormRelL2).toBeLessThanOrEqual(2e-6);

      const t0 = performance.now();
      const golden = (await page.evaluate(() => (globalThis as unknown as { runGolden: () => Promise<unknown> }).runGolden())) as GoldenPage;
      console.log(`[webgpu browser test] golden ids: ${golden.results.length} fixtures, ${golden.steps} steps, ${golden.readbacks} readbacks, ${golden.submissions} submissions, ${Math.round(performance.now() - t0)} ms`);
      expect(golden.adapter.runtime).toBe("navigator.gpu");
      expect(golden.results.length).toBe(3);
      for (const r of golden.results) {
        expect(r.ids).toEqual(r.golden);
        expect(r.live).toBe(0);
      }
      // No host round trip but the logits read of each step (the sampling).
      expect(golden.readbacks).toBe(golden.steps);
    } finally {
      await browser.close();
    }
  }, 240_000);
});
