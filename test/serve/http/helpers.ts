/** A tiny generated model on disk and servers over it, bound to ephemeral ports. */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
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
