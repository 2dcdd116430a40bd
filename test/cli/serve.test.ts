/**
 * `barbell serve` edges: it exits (status 1, one line, worker processes gone) when it cannot listen, and it
 * writes one log line per request (--log-format text|json, --quiet).
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { runCli } from "./helpers.js";

const root = path.resolve(import.meta.dirname, "..", "..");
let dir = "";
let model = "";
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), "barbell-serve-cli-"));
  model = path.join(dir, "tiny.gguf");
  await fsp.writeFile(model, makeBitnetFixture({ hidden: 128, layers: 1, ffn: 256, vocab: 300, contextLength: 64, seed: 4 }));
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** Pids of live processes whose environment holds `marker` (Linux /proc; the processes this test started). */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    try {
      if (fs.readFileSync(`/proc/${entry}/environ`).includes(marker)) {
        found.push(Number(entry));
      }
    } catch {
      // gone, or not ours
    }
  }
  return found;
}

describe("barbell serve when it cannot listen", () => {
  it.skipIf(process.platform !== "linux")(
    "should exit with status 1 and one line naming the port, its model worker processes ended (it hung before)",
    async () => {
      const busy = net.createServer();
      await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
      const port = (busy.address() as net.AddressInfo).port;
      const marker = `BARBELL_TEST_MARKER=${randomUUID()}`;
      const env = { ...process.env, [marker.split("=")[0] ?? ""]: marker.split("=")[1] ?? "" };
      // The scan finds a process started with the marker (so an empty scan below means something).
      const sleeper = spawn("sleep", ["30"], { env, stdio: "ignore" });
      await new Promise((r) => setTimeout(r, 200));
      expect(processesWith(marker)).toContain(sleeper.pid);
      sleeper.kill();
      await new Promise((r) => sleeper.once("exit", r));

      const runner = path.join(dir, "barbell.mts");
      await fsp.writeFile(runner, `import { main } from ${JSON.stringify(pathToFileURL(path.join(root, "src/cli/main.ts")).href)};\nprocess.exitCode = await main(process.argv);\n`);
      // The default isolation: each model in its own child process, which kept the command alive.
      const child = spawn(process.execPath, ["--import", "tsx", runner, "serve", "-m", model, "--port", String(port), "--backend", "js"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const killer = setTimeout(() => child.kill("SIGKILL"), 90_000);
      // Its model worker: a process with the marker besides the command itself, seen while the command runs.
      const workers = new Set<number>();
      const watch = setInterval(() => processesWith(marker).forEach((pid) => pid !== child.pid && workers.add(pid)), 50);
      const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
      clearTimeout(killer);
      clearInterval(watch);
      expect(workers.size).toBeGreaterThan(0);
      await new Promise((resolve) => busy.close(resolve));
      expect(code).toBe(1);
      expect(stderr).toBe(`barbell: CliError (listen): [serve] port ${port} on 127.0.0.1 is in use; pass --port N, or --port 0 for any free port\n`);
      await new Promise((r) => setTimeout(r, 500));
      expect(processesWith(marker)).toEqual([]);
    },
    120_000,
  );
});

describe("barbell serve's request log", () => {
  /** Serves the fixture with `flags`, sends a completion, a streamed one, a model list and a 404; returns stdout. */
  async function serveAndAsk(flags: string[]): Promise<string> {
    const controller = new AbortController();
    let out = "";
    let listening: (url: string) => void = () => undefined;
    const url = new Promise<string>((resolve) => (listening = resolve));
    const served = runCli(["serve", "-m", model, "--name", "tiny", "--port", "0", "--isolation", "in-process", "--backend", "js", ...flags], {
      signal: controller.signal,
      onOut: (t) => {
        out += t;
        const m = /listening on (\S+)/.exec(t);
        if (m?.[1] !== undefined) {
          listening(m[1]);
        }
      },
    });
    try {
      const base = await url;
      const body = (extra: object): RequestInit => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "tiny", prompt: "hello", max_tokens: 3, temperature: 0, ...extra }) });
      expect((await fetch(`${base}/v1/completions`, body({}))).status).toBe(200);
      expect(await (await fetch(`${base}/v1/completions`, body({ stream: true }))).text()).toContain("[DONE]");
      expect((await fetch(`${base}/v1/models?x=1`)).status).toBe(200);
      expect((await fetch(`${base}/nowhere`)).status).toBe(404);
      // The last line is written when its connection is done with it.
      for (let i = 0; i < 400 && !out.includes("/nowhere") && !flags.includes("--quiet"); i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      controller.abort();
    }
    await served;
    return out;
  }

  it("should write one text line per request: method, path, status, model, prompt/completion tokens, ms", async () => {
    const lines = (await serveAndAsk([])).split("\n").filter((l) => / \d+(\.\d+)? ms$/.test(l));
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^barbell serve: POST \/v1\/completions 200 model=tiny prompt_tokens=\d+ completion_tokens=3 \d+(\.\d)? ms$/);
    expect(lines[1]).toMatch(/^barbell serve: POST \/v1\/completions 200 model=tiny prompt_tokens=\d+ completion_tokens=3 \d+(\.\d)? ms$/);
    expect(lines[2]).toMatch(/^barbell serve: GET \/v1\/models 200 \d+(\.\d)? ms$/);
    expect(lines[3]).toMatch(/^barbell serve: GET \/nowhere 404 \d+(\.\d)? ms$/);
  });

  it("should write JSON lines with --log-format json, and none with --quiet", async () => {
    const json = (await serveAndAsk(["--log-format", "json"]))
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(json).toHaveLength(4);
    expect(json[0]).toMatchObject({ method: "POST", path: "/v1/completions", status: 200, model: "tiny", completion_tokens: 3 });
    expect(json[0]?.["prompt_tokens"]).toBeGreaterThan(0);
    expect(json[3]).toMatchObject({ method: "GET", path: "/nowhere", status: 404, model: null, prompt_tokens: null, completion_tokens: null });
    expect(typeof json[0]?.["ms"]).toBe("number");
    expect(Number.isNaN(Date.parse(String(json[0]?.["time"])))).toBe(false);
    const quiet = await serveAndAsk(["--quiet"]);
    expect(quiet).toContain("listening on");
    expect(quiet).not.toMatch(/\/v1\/completions|^\{/m);
  });
});
