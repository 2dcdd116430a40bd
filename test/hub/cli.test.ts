/** `barbell pull`, `barbell models` and `-m hf:` through the CLI, against the loopback hub. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { buildProgram } from "../../src/cli/main.js";
import { HubError } from "../../src/hub/errors.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { FakeHub, sha256 } from "./fake-hub.js";

const COMMIT = "89abcdef0123456789abcdef0123456789abcdef";
const MODEL = Buffer.from(makeBitnetFixture({ seed: 21 }));

let hub: FakeHub;
let tmp: string;

async function run(args: string[]): Promise<{ out: string; err: string }> {
  let out = "";
  let err = "";
  const io = {
    out: (t: string) => void (out += t),
    err: (t: string) => void (err += t),
    errIsTty: false,
    input: Readable.from([""]),
    signal: new AbortController().signal,
  };
  await buildProgram((l) => void (out += `${l}\n`), io).parseAsync(["node", "barbell", ...args]);
  return { out, err };
}

beforeAll(async () => {
  hub = await new FakeHub().start();
  hub.repos.set("bitnet/tiny-gguf", { commit: COMMIT, files: { "tiny-i2_s.gguf": { content: MODEL, lfs: true } } });
});
afterAll(async () => {
  await hub.stop();
  vi.unstubAllEnvs();
});
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "barbell-hub-cli-"));
  vi.stubEnv("HF_ENDPOINT", hub.endpoint);
  vi.stubEnv("HF_HOME", path.join(tmp, "hf"));
  vi.stubEnv("HF_HUB_CACHE", path.join(tmp, "hf", "hub"));
  vi.stubEnv("HF_TOKEN", "");
  vi.stubEnv("HUGGING_FACE_HUB_TOKEN", "");
  vi.stubEnv("HF_HUB_OFFLINE", "");
  hub.seen.length = 0;
  hub.faults = {};
  return () => fs.rmSync(tmp, { recursive: true, force: true });
});

describe("barbell pull and barbell models", () => {
  it("should print the cached path on stdout and progress lines on stderr, then find it cached", async () => {
    const first = await run(["pull", "bitnet/tiny-gguf/tiny-i2_s.gguf"]);
    const file = path.join(tmp, "hf", "hub", "models--bitnet--tiny-gguf", "snapshots", COMMIT, "tiny-i2_s.gguf");
    expect(first.out).toBe(`${file}\n`);
    expect(first.err).toMatch(/^barbell pull: downloading bitnet\/tiny-gguf\/tiny-i2_s.gguf \(\d+\.\d MiB\)\n/);
    expect(first.err).toContain("barbell pull: checking the SHA-256 against the hub's LFS ETag\n");
    expect(first.err).toMatch(/barbell pull: bitnet\/tiny-gguf\/tiny-i2_s.gguf at commit 89abcdef0123: \d+\.\d MiB downloaded in \d+\.\d s, verified and linked\n$/);
    expect(fs.readFileSync(file).equals(MODEL)).toBe(true);
    const second = await run(["pull", "bitnet/tiny-gguf/tiny-i2_s.gguf"]);
    expect(second.out).toBe(`${file}\n`);
    expect(second.err).toMatch(/is in the cache \(\d+\.\d MiB; nothing downloaded\)\n$/);
  });

  it("should list the cache: repo, commit with its ref, files and sizes; and as JSON", async () => {
    expect((await run(["models"])).out).toBe(`no models in the cache ${path.join(tmp, "hf", "hub")} (barbell pull <org>/<repo>/<file> fetches one)\n`);
    await run(["pull", "bitnet/tiny-gguf"]);
    const mib = `${(MODEL.length / 2 ** 20).toFixed(1)} MiB`;
    expect((await run(["models"])).out).toBe(
      [`cache ${path.join(tmp, "hf", "hub")}`, `bitnet/tiny-gguf  (${mib})`, `  commit ${COMMIT} (main)`, `    tiny-i2_s.gguf  ${mib}`, ""].join("\n"),
    );
    const json = JSON.parse((await run(["models", "--json"])).out) as { repos: { repo: string; snapshots: { refs: string[]; files: { file: string; size: number }[] }[] }[] };
    expect(json.repos[0]?.snapshots[0]?.files).toEqual([{ file: "tiny-i2_s.gguf", size: MODEL.length }]);
  });

  it("should show a partial download in the listing, and pull resume it", async () => {
    // What a pull stopped by a dropped connection leaves (test/hub/pull.test.ts makes one through the hub).
    const blobs = path.join(tmp, "hf", "hub", "models--bitnet--tiny-gguf", "blobs");
    fs.mkdirSync(blobs, { recursive: true });
    fs.writeFileSync(path.join(blobs, `${sha256(MODEL)}.incomplete`), MODEL.subarray(0, 100_000));
    expect((await run(["models"])).out).toContain(`  partial download ${sha256(MODEL)}: 0.1 MiB so far (barbell pull resumes it)\n`);
    const resumed = await run(["pull", "bitnet/tiny-gguf/tiny-i2_s.gguf"]);
    expect(resumed.err).toContain(", resuming at 0.1 MiB\n");
    expect(hub.requests("cdn").map((q) => q.range)).toEqual(["bytes=100000-"]);
    expect((await run(["models"])).out).not.toContain("partial");
  });
});

describe("-m hf:<org>/<repo>/<file>", () => {
  it("should refuse a model that is not cached, naming the pull command, and make no request", async () => {
    const e = await run(["logits", "-m", "hf:bitnet/tiny-gguf/tiny-i2_s.gguf", "--tokens", "1,2"]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HubError);
    expect((e as HubError).message).toContain("run `barbell pull bitnet/tiny-gguf/tiny-i2_s.gguf` first, or add --pull");
    expect(hub.seen).toEqual([]);
  });

  it("should pull with --pull, then run from the cache with no request", async () => {
    const pulled = await run(["logits", "-m", "hf:bitnet/tiny-gguf/tiny-i2_s.gguf", "--pull", "--tokens", "1,2", "--json"]);
    expect(pulled.err).toContain("barbell: downloading bitnet/tiny-gguf/tiny-i2_s.gguf");
    const logits = (JSON.parse(pulled.out) as { logits: number[][] }).logits;
    expect(logits).toHaveLength(1);
    hub.seen.length = 0;
    const cached = await run(["logits", "-m", "hf:bitnet/tiny-gguf", "--tokens", "1,2", "--json"]);
    expect((JSON.parse(cached.out) as { logits: number[][] }).logits).toEqual(logits);
    expect(hub.seen).toEqual([]);
  });

  it("should offer --pull and the hf: form on every command that takes -m", () => {
    const program = buildProgram(() => undefined);
    const withModel = program.commands.filter((c) => c.options.some((o) => o.long === "--model"));
    expect(withModel.map((c) => c.name()).sort()).toEqual(expect.arrayContaining(["chat", "dump", "generate", "logits", "serve"]));
    for (const c of withModel) {
      expect(c.options.some((o) => o.long === "--pull"), c.name()).toBe(true);
      expect(c.options.find((o) => o.long === "--model")?.description).toContain("hf:<org>/<repo>/<file>");
    }
  });
});
