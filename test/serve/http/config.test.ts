/** `barbell serve --config <file>`: a valid file serves its models and cascades; hostile files end in one line and status 1. */
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { buildProgram, main } from "../../../src/cli/main.js";
import { MAX_CONFIG_BYTES, MAX_CONFIG_MODELS } from "../../../src/cli/serve.js";
import { makeBitnetFixture } from "../../../src/model/bitnet/fixture.js";
import { loadModel } from "../../../src/engine/model.js";
import { ServeError } from "../../../src/serve/errors.js";
import { createServer } from "../../../src/serve/http/index.js";
import { until } from "./helpers.js";

let dir = "";
let small = "";
let large = "";
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-config-"));
  await fs.mkdir(path.join(dir, "models"));
  await fs.mkdir(path.join(dir, "conf"));
  small = path.join(dir, "models", "small.gguf");
  large = path.join(dir, "models", "large.gguf");
  await fs.writeFile(small, makeBitnetFixture({ hidden: 64, heads: 2, kvHeads: 1, layers: 1, ffn: 64, vocab: 300, contextLength: 64, seed: 11, weightType: "f32", embeddingType: "f32" }));
  await fs.writeFile(large, makeBitnetFixture({ hidden: 128, layers: 2, ffn: 256, vocab: 300, contextLength: 128, seed: 12 }));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Writes a config into conf/ (so that model paths must be resolved against the file, not the cwd). */
async function writeConfig(name: string, config: unknown): Promise<string> {
  const file = path.join(dir, "conf", name);
  await fs.writeFile(file, typeof config === "string" ? config : JSON.stringify(config));
  return file;
}

const twoModels = [
  { name: "small", path: "../models/small.gguf", parallel: 2 },
  { name: "large", path: "../models/large.gguf" },
];

/** Runs `barbell serve` in this process until its server listens; `stop` ends it as Ctrl-C does. */
async function serve(...args: string[]): Promise<{ url: string; out: () => string; stop: () => Promise<void> }> {
  const controller = new AbortController();
  let out = "";
  const io = { out: (t: string) => void (out += t), err: (t: string) => void (out += t), errIsTty: false, input: process.stdin, signal: controller.signal };
  let failure: unknown;
  const running = buildProgram(() => undefined, io)
    .parseAsync(["node", "barbell", "serve", ...args])
    .catch((e: unknown) => {
      failure = e;
    });
  await until(() => /listening on http:\S+/.test(out) || failure !== undefined);
  if (failure !== undefined) {
    throw failure;
  }
  const url = /listening on (http:\S+)/.exec(out)?.[1] ?? "";
  return {
    url,
    out: () => out,
    stop: async () => {
      controller.abort();
      await running;
    },
  };
}

/** Runs `barbell serve --config file` through main(); returns its status and what it wrote to stderr. */
async function failing(file: string): Promise<{ status: number; stderr: string }> {
  const before = new Set(process.listeners("SIGINT"));
  const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  const stdout = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
  try {
    let status: number | undefined;
    const exited = main(["node", "barbell", "serve", "--config", file, "--port", "0", "--isolation", "in-process", "--backend", "js"]).then((s) => (status = s));
    const listening = (): boolean => stdout.mock.calls.some((c) => String(c[0]).includes("listening on"));
    await until(() => status !== undefined || listening());
    if (status === undefined && listening()) {
      process.emit("SIGTERM"); // it accepted the file: stop the server (the status is then 0, and the test fails)
    }
    await exited;
    return { status: status ?? -1, stderr: stderr.mock.calls.map((c) => String(c[0])).join("") };
  } finally {
    stderr.mockRestore();
    stdout.mockRestore();
    for (const l of process.listeners("SIGINT")) {
      if (!before.has(l)) {
        process.off("SIGINT", l); // main() listens for Ctrl-C on each call
      }
    }
  }
}

describe("barbell serve --config", () => {
  it("should serve two models and a cascade, with model paths relative to the file", async () => {
    const file = await writeConfig("ok.json", { models: twoModels, cascades: [{ name: "auto", rungs: ["small", "large"], threshold: 0.2, window: 2 }] });
    const server = await serve("--config", file, "--port", "0", "--isolation", "in-process", "--backend", "js");
    try {
      const models = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string; metadata: { kind: string } }[] };
      expect(models.data.map((m) => [m.id, m.metadata.kind])).toEqual([
        ["small", "model"],
        ["large", "model"],
        ["auto", "cascade"],
      ]);
      const r = await fetch(`${server.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "auto", prompt: [1, 2, 3], max_tokens: 3, temperature: 0 }),
      });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(3);
    } finally {
      await server.stop();
    }
    expect(server.out()).toContain("barbell serve: stopped");
  });

  it("should serve a model with its head requantized to Q8_0 (config `head`), answering like the engine does", async () => {
    const file = await writeConfig("head.json", { models: [{ ...twoModels[0], head: "q8_0" }] });
    const server = await serve("--config", file, "--port", "0", "--isolation", "in-process", "--backend", "js");
    try {
      const r = await fetch(`${server.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "small", prompt: [1, 2, 3], max_tokens: 5, temperature: 0, logprobs: 1 }),
      });
      const got = (await r.json()) as { choices: { logprobs: { token_logprobs: number[] } }[] };
      using m = await loadModel(path.join(dir, "models", "small.gguf"), { backends: ["js"], autotune: false, headType: "q8_0" });
      const want: number[] = [];
      for await (const piece of m.generate([1, 2, 3], { temperature: 0, maxTokens: 5 })) {
        if (piece.token !== null) {
          want.push(piece.logprob);
        }
      }
      expect(want).toHaveLength(5);
      expect(got.choices[0]?.logprobs.token_logprobs).toEqual(want);
    } finally {
      await server.stop();
    }
  });

  it("should take command-line flags as defaults and let the file's fields win", async () => {
    const file = await writeConfig("override.json", { host: "127.0.0.1", bodyLimit: 2000, models: twoModels });
    const server = await serve("--config", file, "--port", "0", "--host", "localhost", "--isolation", "in-process", "--backend", "js", "--parallel", "3", "--queue", "5", "--body-limit", "1000000");
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/); // the file's host, not --host
      expect(server.out()).toContain("model 'small' (model, bitnet-b1.58, context 64, parallel 2, queue 5)"); // the file's parallel, --queue
      expect(server.out()).toContain("model 'large' (model, bitnet-b1.58, context 128, parallel 3, queue 5)"); // --parallel, --queue
      const body = JSON.stringify({ model: "small", prompt: "x".repeat(5000), max_tokens: 1 });
      const r = await fetch(`${server.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
      expect(r.status).toBe(413); // the file's bodyLimit, not --body-limit
    } finally {
      await server.stop();
    }
  });

  const hostile: [string, () => unknown, RegExp][] = [
    ["not JSON", () => '{ "models": [', /config .*not-JSON\.json is not valid JSON/],
    ["not an object", () => "[]", /expected an object with a 'models' array/],
    ["an unknown top-level field", () => ({ models: twoModels, prot: 80 }), /unknown field "prot"/],
    ["an unknown model field", () => ({ models: [{ ...twoModels[0], paralel: 2 }] }), /unknown field models\[0\]\."paralel"/],
    ["an unknown cascade field", () => ({ models: twoModels, cascades: [{ name: "c", rungs: ["small"], threshold: 1, treshold: 2 }] }), /unknown field cascades\[0\]\."treshold"/],
    ["a cascade naming an unknown model", () => ({ models: twoModels, cascades: [{ name: "c", rungs: ["small", "huge"], threshold: 0.2 }] }), /cascade 'c' names an unknown model 'huge'/],
    ["two models with one name", () => ({ models: [twoModels[0], { ...twoModels[1], name: "small" }] }), /models\[1\]\.name 'small' is used twice/],
    ["a cascade with a model's name", () => ({ models: twoModels, cascades: [{ name: "large", rungs: ["small"], threshold: 0.2 }] }), /cascades\[0\]\.name 'large' is used twice/],
    ["a negative parallel", () => ({ models: [{ ...twoModels[0], parallel: -1 }] }), /models\[0\]\.parallel must be an integer >= 1, got -1/],
    ["a fractional queue", () => ({ models: [{ ...twoModels[0], queue: 1.5 }] }), /models\[0\]\.queue must be an integer >= 0/],
    ["a string threshold", () => ({ models: twoModels, cascades: [{ name: "c", rungs: ["small"], threshold: "0.2" }] }), /cascades\[0\]\.threshold must be a finite number/],
    ["an unknown metric", () => ({ models: twoModels, cascades: [{ name: "c", rungs: ["small"], threshold: 0.2, metric: "vibes" }] }), /metric must be "min-prob" or "entropy"/],
    ["a port out of range", () => ({ port: 70000, models: twoModels }), /port must be an integer in 0\.\.65535/],
    ["an unknown head type", () => ({ models: [{ ...twoModels[0], head: "f16" }] }), /models\[0\]\.head must be one of auto, keep, q8_0/],
    ["an unknown backend", () => ({ models: [{ ...twoModels[0], backends: ["gpu9000"] }] }), /models\[0\]\.backends: .*unknown backend/],
    ["a missing model file", () => ({ models: [{ name: "gone", path: "../models/gone.gguf" }] }), /models\[0\]\.path: no such file or folder .*gone\.gguf/],
    ["too many models", () => ({ models: Array.from({ length: MAX_CONFIG_MODELS + 1 }, (_, i) => ({ name: `m${i}`, path: "../models/small.gguf" })) }), /at most 64 \(MAX_CONFIG_MODELS\)/],
    ["a negative prompt cache", () => ({ models: [{ ...twoModels[0], promptCacheMiB: -1 }] }), /models\[0\]\.promptCacheMiB must be an integer in 0\.\.65536, got -1/],
    ["an unknown limits field", () => ({ models: twoModels, limits: { bodyTimeout: 5 } }), /unknown field limits\."bodyTimeout"/],
    ["a zero connection cap", () => ({ models: twoModels, limits: { maxConnections: 0 } }), /limits\.maxConnections must be an integer in 1\.\.65536, got 0/],
    ["a huge body timeout", () => ({ models: twoModels, limits: { bodyTimeoutMs: 1e12 } }), /limits\.bodyTimeoutMs must be an integer in 1\.\.3600000/],
    ["limits that are not an object", () => ({ models: twoModels, limits: [1] }), /limits must be an object/],
    ["allowedHosts with an empty name", () => ({ models: twoModels, allowedHosts: [""] }), /allowedHosts must be an array of non-empty strings/],
    ["a zero maxWaitMs", () => ({ models: twoModels, maxWaitMs: 0 }), /maxWaitMs must be an integer in 1\.\.3600000, got 0/],
    ["a publicHealth that is not a boolean", () => ({ models: twoModels, publicHealth: "yes" }), /publicHealth must be true or false/],
    ["a file over MAX_CONFIG_BYTES", () => JSON.stringify({ models: twoModels }) + " ".repeat(MAX_CONFIG_BYTES), /is 1048\d+ bytes, more than the 1048576 allowed/],
  ];

  it.each(hostile)("should refuse %s with one line and status 1", async (label, config, message) => {
    const file = await writeConfig(`${label.replace(/\W+/g, "-")}.json`, config());
    const { status, stderr } = await failing(file);
    expect(status).toBe(1);
    expect(stderr).toMatch(/^barbell: ServeError \(bad-config\): \[serve\] /);
    expect(stderr).toMatch(message);
    expect(stderr.trimEnd().split("\n")).toHaveLength(1); // one line: no stack trace
  });

  it("should refuse a config file that does not exist with one line and status 1", async () => {
    const { status, stderr } = await failing(path.join(dir, "conf", "nope.json"));
    expect(status).toBe(1);
    expect(stderr).toMatch(/^barbell: ServeError \(bad-config\): \[serve\] config .*nope\.json does not exist\n$/);
  });

  it.each([
    ["--max-connections", "0", /expected an integer in 1\.\.65536, got '0'/],
    ["--prompt-cache", "70000", /expected an integer in 0\.\.65536, got '70000'/],
    ["--max-connections-per-ip", "1e9", /expected an integer in 1\.\.65536, got '1e9'/],
    ["--body-timeout", "-5", /expected an integer in 1\.\.3600000/],
    ["--header-timeout", "", /expected an integer in 1\.\.3600000/],
  ])("should refuse %s %j before starting", async (flag, value, message) => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      expect(await main(["node", "barbell", "serve", "--demo", flag, value])).not.toBe(0);
      expect(stderr.mock.calls.map((c) => String(c[0])).join("")).toMatch(message);
    } finally {
      stderr.mockRestore();
    }
  });

  it("should refuse a config that is not JSON without echoing its bytes (/etc/passwd)", async () => {
    const { status, stderr } = await failing("/etc/passwd");
    expect(status).toBe(1);
    expect(stderr).toMatch(/^barbell: ServeError \(bad-config\): \[serve\] config \/etc\/passwd is not valid JSON( \(at byte \d+\))?\n$/);
    expect(stderr).not.toMatch(/root|:x:/);
  });

  it("should refuse a FIFO as a config or model path at once instead of hanging", async () => {
    const fifo = path.join(dir, "conf", "config.fifo");
    execFileSync("mkfifo", [fifo]);
    const asConfig = await failing(fifo);
    expect(asConfig.status).toBe(1);
    expect(asConfig.stderr).toMatch(/^barbell: ServeError \(bad-config\): \[serve\] config .*config\.fifo is a FIFO, not a regular file\n$/);
    const file = await writeConfig("fifo-model.json", { models: [{ name: "f", path: "config.fifo" }] });
    const asModel = await failing(file);
    expect(asModel.status).toBe(1);
    expect(asModel.stderr).toMatch(/config\.fifo is a FIFO, not a regular file/);
    expect(asModel.stderr.trimEnd().split("\n")).toHaveLength(1);
  });

  it("should refuse duplicate names given to createServer directly with a ServeError", async () => {
    const models = [
      { name: "a", path: small, isolation: "in-process" as const, backends: ["js" as const] },
      { name: "a", path: large, isolation: "in-process" as const, backends: ["js" as const] },
    ];
    await expect(createServer({ models, log: () => undefined })).rejects.toThrow(ServeError);
    await expect(createServer({ models: models.slice(0, 1), cascades: [{ name: "c", rungs: ["b"], threshold: 1 }], log: () => undefined })).rejects.toThrow(
      /cascade 'c' names an unknown model 'b'/,
    );
  });
});
