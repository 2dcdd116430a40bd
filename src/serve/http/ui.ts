/**
 * The browser demo's routes (`barbell serve --ui`, docs/webgpu.md "Browser demo"): a static page that runs a
 * GGUF in the browser (src/ui), served from a fixed in-memory map of four files, and the packaged default model.
 *
 * - `GET /ui/` (index.html), `/ui/app.js` (src/ui/main.ts bundled), `/ui/style.css`, `/ui/config.json` (whether
 *   a default model is offered, its name and size), and `GET /ui/model/default.gguf` (that model's bytes,
 *   streamed). Each is its own route: no path reaches the file system from a URL.
 * - Public (no API key, `config: PUBLIC`), even when the server requires keys: the page is static and runs
 *   the model in the browser, and the default model is the file barbell ships. Neither calls /v1. The Host
 *   check (DNS rebinding) still applies.
 * - Served cross-origin isolated (COOP + COEP, so WASM SIMD can share memory with Web Workers) under a strict
 *   Content-Security-Policy: scripts and styles from the page's origin only, WebAssembly compilation, and
 *   workers from blob: URLs (the kernel threads).
 *
 * The bundle: `npm run build` writes it to dist/ui/ with the page's files (scripts/build-ui.mjs); run from the
 * sources (tsx, tests), it is bundled here with esbuild when the server starts.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import type * as Esbuild from "esbuild";
import type { FastifyInstance, FastifyReply } from "fastify";
import { BarbellError } from "../../core/errors.js";
import { openRegularFile } from "../../core/files.js";
import { ApiError } from "./errors.js";
import { PUBLIC } from "./guard.js";

export interface UiOptions {
  /** The GGUF offered as the page's one-click model (`/ui/model/default.gguf`); none: only the file picker. */
  readonly defaultModel?: string;
}

export type UiErrorCode =
  | "missing" // neither a built bundle nor the page's sources are there
  | "build"; // bundling the page failed

/** The demo page cannot be served (a build problem, found when the server starts). */
export class UiError extends BarbellError {
  constructor(
    readonly code: UiErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "UiError";
  }
}

/** The page's files, as served. */
export interface UiAssets {
  readonly html: string;
  readonly css: string;
  readonly js: string;
}

/** The page's folder: dist/ui from dist/serve/http (built bundle), src/ui from src/serve/http (sources). */
const UI_DIR = fileURLToPath(new URL("../../ui/", import.meta.url));

/** The page's entry, bundled into app.js. */
export const UI_ENTRY = "main.ts";
/** The bundle's file name, next to index.html and style.css. */
export const UI_BUNDLE = "app.js";

/**
 * Headers of every page file. COOP + COEP make the page cross-origin isolated (shared wasm memory, threads);
 * the policy allows only the page's own scripts, styles and fetches, WebAssembly, and blob: workers.
 */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "cache-control": "no-cache",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
  "content-security-policy":
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; connect-src 'self'; " +
    "worker-src 'self' blob:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

/** Bundles the page's entry (`dir`/main.ts) for browsers: one ES module, no Node built-ins (the build fails on one). */
export async function bundleUi(dir: string = UI_DIR): Promise<string> {
  let esbuild: typeof Esbuild;
  try {
    esbuild = await import("esbuild");
  } catch {
    throw new UiError("missing", "[ui] the demo page is not built and esbuild is not installed to build it; run npm run build in barbell's folder");
  }
  try {
    const built = await esbuild.build({
      entryPoints: [join(dir, UI_ENTRY)],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      minify: true,
      legalComments: "none",
      write: false,
      logLevel: "silent",
    });
    const js = built.outputFiles[0]?.text;
    if (js === undefined) {
      throw new UiError("build", "[ui] bundling the demo page produced no output");
    }
    return js;
  } catch (e) {
    if (e instanceof UiError) {
      throw e;
    }
    const errors = (e as { errors?: { text?: string; location?: { file?: string } | null }[] }).errors ?? [];
    const first = errors[0];
    const where = first?.location?.file === undefined ? "" : ` (${first.location.file})`;
    throw new UiError("build", `[ui] bundling the demo page failed: ${first?.text ?? (e instanceof Error ? e.message : String(e))}${where}`);
  }
}

/** The page's files from `dir`: the built bundle when there is one (dist/ui), else bundled now (src/ui). */
export async function loadUiAssets(dir: string = UI_DIR): Promise<UiAssets> {
  const read = (name: string): Promise<string> => readFile(join(dir, name), "utf8");
  if (!existsSync(join(dir, "index.html"))) {
    throw new UiError("missing", "[ui] the demo page's files are missing; run npm run build in barbell's folder");
  }
  const js = existsSync(join(dir, UI_BUNDLE)) ? await read(UI_BUNDLE) : existsSync(join(dir, UI_ENTRY)) ? await bundleUi(dir) : undefined;
  if (js === undefined) {
    throw new UiError("missing", `[ui] the demo page's bundle (${UI_BUNDLE}) is missing; run npm run build in barbell's folder`);
  }
  return { html: await read("index.html"), css: await read("style.css"), js };
}

function page(reply: FastifyReply, type: string, body: string): FastifyReply {
  return reply.headers(PAGE_HEADERS).type(type).send(body);
}

const noDefault = (): ApiError => new ApiError(404, "this server offers no default model for the demo page", "invalid_request_error", null, "not_found");

/** Mounts the demo page (`files`, from loadUiAssets) at /ui/: GET routes, public. */
export function registerUi(app: FastifyInstance, options: UiOptions, files: UiAssets): void {
  const model = options.defaultModel;
  app.get("/ui", { config: PUBLIC }, async (_request, reply) => reply.redirect("/ui/", 308));
  app.get("/ui/", { config: PUBLIC }, async (_request, reply) => page(reply, "text/html; charset=utf-8", files.html));
  app.get("/ui/app.js", { config: PUBLIC }, async (_request, reply) => page(reply, "text/javascript; charset=utf-8", files.js));
  app.get("/ui/style.css", { config: PUBLIC }, async (_request, reply) => page(reply, "text/css; charset=utf-8", files.css));
  app.get("/ui/config.json", { config: PUBLIC }, async (_request, reply) => {
    let defaultModel: { name: string; bytes: number } | null = null;
    if (model !== undefined) {
      try {
        const { handle, size } = await openRegularFile(model, "[ui] default model");
        await handle.close();
        defaultModel = { name: basename(model), bytes: size };
      } catch {
        // Gone since the server started: offer none.
      }
    }
    return page(reply, "application/json; charset=utf-8", JSON.stringify({ defaultModel }));
  });
  app.get("/ui/model/default.gguf", { config: PUBLIC }, async (_request, reply) => {
    if (model === undefined) {
      throw noDefault();
    }
    let opened;
    try {
      opened = await openRegularFile(model, "[ui] default model");
    } catch {
      throw noDefault(); // the path is not shown to clients
    }
    const stream = opened.handle.createReadStream(); // closes the file when done or destroyed
    return reply
      .headers({ ...PAGE_HEADERS, "content-length": String(opened.size) })
      .type("application/octet-stream")
      .send(stream);
  });
}
