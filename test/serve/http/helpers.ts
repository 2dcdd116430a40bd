/** A tiny generated model on disk and servers over it, bound to ephemeral ports. */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll } from "vitest";
import { makeBitnetFixture } from "../../../src/model/bitnet/fixture.js";
import { createServer, type BarbellServer, type ServerOptions } from "../../../src/serve/http/index.js";
import type { ServedModelConfig } from "../../../src/serve/http/served.js";

export async function writeModel(): Promise<{ dir: string; file: string; remove: () => Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-http-"));
  const file = path.join(dir, "tiny.gguf");
  await fs.writeFile(file, makeBitnetFixture({ layers: 2, hidden: 128, ffn: 256, vocab: 300, contextLength: 256, seed: 3 }));
  return { dir, file, remove: () => fs.rm(dir, { recursive: true, force: true }) };
}

export interface Running {
  readonly server: BarbellServer;
  readonly url: string;
}

export async function startServer(file: string, model: Partial<ServedModelConfig> = {}, options: Partial<ServerOptions> = {}): Promise<Running> {
  const server = await createServer({
    models: [{ name: "tiny", path: file, isolation: "in-process", backends: ["js"], ...model }],
    log: () => undefined,
    ...options,
  });
  const url = await server.listen(0);
  return { server, url };
}

export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown; headers: Headers }> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
  return { status: res.status, json: await res.json(), headers: res.headers };
}

export async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2000 && !(await check()); i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
}

export type TinyModel = Awaited<ReturnType<typeof writeModel>>;

export interface TinyServers {
  /** The file's tiny model (written in beforeAll). */
  readonly model: TinyModel;
  /** Starts a server over the tiny model; every server started in a test is shut down after it. */
  start(model?: Partial<ServedModelConfig>, options?: Partial<ServerOptions>): Promise<Running>;
}

/** Registers a test file's hooks: one tiny model for the file, each test's servers shut down after it. */
export function tinyServers(): TinyServers {
  let model: TinyModel | undefined;
  const started: Running[] = [];
  beforeAll(async () => {
    model = await writeModel();
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((r) => r.server.shutdown(100)));
  });
  afterAll(async () => {
    await model?.remove();
  });
  const fixture: TinyServers = {
    get model(): TinyModel {
      if (model === undefined) {
        throw new Error("tinyServers(): the model is written in beforeAll");
      }
      return model;
    },
    async start(m = {}, o = {}) {
      const running = await startServer(fixture.model.file, m, o);
      started.push(running);
      return running;
    },
  };
  return fixture;
}
