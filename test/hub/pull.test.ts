/** Pulling from a loopback hub into a Hugging Face-layout cache: layout, resume, verification, errors. */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { HubConfig } from "../../src/hub/config.js";
import { lockBlob } from "../../src/hub/cache.js";
import { HubError } from "../../src/hub/errors.js";
import { parseModelRef } from "../../src/hub/names.js";
import { pull, resolveHfModel, type PullOptions } from "../../src/hub/pull.js";
import { bytes, FakeHub, gitBlobSha1, sha256, TOKEN } from "./fake-hub.js";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const MODEL = bytes(300_000, 3);
const OTHER = bytes(40_000, 5);
const CONFIG = Buffer.from('{"architectures":["BitnetForCausalLM"]}\n');

let hub: FakeHub;
let tmp: string;
let cache: string;
let cfg: HubConfig;
const fast: PullOptions = { retryDelayMs: 0, timeoutMs: 10_000, idleTimeoutMs: 10_000 };

async function failure(p: Promise<unknown>): Promise<HubError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(HubError);
  return e as HubError;
}

function ls(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String).sort() : [];
}

beforeAll(async () => {
  hub = await new FakeHub().start();
});
afterAll(async () => {
  await hub.stop();
});
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "barbell-hub-"));
  cache = path.join(tmp, "hub");
  cfg = { endpoint: hub.endpoint, cacheDir: cache, offline: false };
  hub.repos.clear();
  hub.renamed.clear();
  hub.seen.length = 0;
  hub.faults = {};
  hub.repos.set("bitnet/tiny-gguf", { commit: COMMIT, files: { "tiny-i2_s.gguf": { content: MODEL, lfs: true }, "config.json": { content: CONFIG, lfs: false } } });
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const repoDir = (): string => path.join(cache, "models--bitnet--tiny-gguf");

describe("pull: the Hugging Face cache layout", () => {
  it("should put an LFS file in blobs/{sha256}, link it from snapshots/{commit} relatively, and write refs/main", async () => {
    const r = await pull({ ...cfg, token: TOKEN }, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), fast);
    const sha = sha256(MODEL);
    expect(r).toMatchObject({ repo: "bitnet/tiny-gguf", file: "tiny-i2_s.gguf", commit: COMMIT, size: MODEL.length, fetched: MODEL.length });
    expect(r.path).toBe(path.join(repoDir(), "snapshots", COMMIT, "tiny-i2_s.gguf"));
    expect(fs.readlinkSync(r.path)).toBe(`../../blobs/${sha}`);
    expect(fs.readFileSync(r.path).equals(MODEL)).toBe(true);
    expect(fs.readFileSync(path.join(repoDir(), "refs", "main"), "utf8")).toBe(COMMIT);
    expect(ls(path.join(repoDir(), "blobs"))).toEqual([sha]);
    // One HEAD to the hub (its 302 not followed), one GET to the CDN; the token goes to the hub only.
    expect(hub.requests().map((q) => `${q.server} ${q.method}`)).toEqual(["hub HEAD", "cdn GET"]);
    expect(hub.requests("hub")[0]?.authorization).toBe(`Bearer ${TOKEN}`);
    expect(hub.requests("cdn")[0]?.authorization).toBeUndefined();
  });

  it("should not follow (nor send the token along) a HEAD redirect that only looks relative but leaves the origin", async () => {
    const cdn = new URL(hub.cdnBase);
    hub.faults = { headLocation: `/\\${cdn.host}/cdn/${sha256(MODEL)}` };
    const r = await pull({ ...cfg, token: TOKEN }, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), fast);
    expect(fs.readFileSync(r.path).equals(MODEL)).toBe(true);
    expect(hub.requests().map((q) => `${q.server} ${q.method} ${q.authorization ?? "-"}`)).toEqual([`hub HEAD Bearer ${TOKEN}`, "cdn GET -"]);
  });

  it("should name a small (non-LFS) file's blob by its ETag and check its size", async () => {
    const r = await pull(cfg, parseModelRef("bitnet/tiny-gguf/config.json"), fast);
    expect(fs.readlinkSync(r.path)).toBe(`../../blobs/${gitBlobSha1(CONFIG)}`);
    expect(fs.readFileSync(r.path).equals(CONFIG)).toBe(true);
    expect(hub.requests().map((q) => `${q.server} ${q.method}`)).toEqual(["hub HEAD", "hub GET"]);
  });

  it("should pick the repo's only .gguf file from the API listing, and make no new download on a second pull", async () => {
    const first = await pull(cfg, parseModelRef("bitnet/tiny-gguf"), fast);
    expect(first.file).toBe("tiny-i2_s.gguf");
    expect(hub.requests("hub")[0]?.url).toBe("/api/models/bitnet/tiny-gguf/revision/main");
    hub.seen.length = 0;
    const again = await pull(cfg, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), fast);
    expect(again.fetched).toBe(0);
    expect(hub.requests().map((q) => `${q.server} ${q.method}`)).toEqual(["hub HEAD"]);
  });

  it("should list the .gguf files when there are several, and the files when there is none", async () => {
    hub.repos.set("bitnet/many", { commit: COMMIT, files: { "a-q.gguf": { content: OTHER, lfs: true }, "b-q.gguf": { content: MODEL, lfs: true } } });
    const many = await failure(pull(cfg, parseModelRef("bitnet/many"), fast));
    expect(many.code).toBe("ambiguous");
    expect(many.message).toContain("a-q.gguf, b-q.gguf");
    expect(many.message).toContain("barbell pull bitnet/many/a-q.gguf");
    hub.repos.set("bitnet/none", { commit: COMMIT, files: { "config.json": { content: CONFIG, lfs: false } } });
    const none = await failure(pull(cfg, parseModelRef("bitnet/none"), fast));
    expect(none.code).toBe("no-gguf");
    expect(none.message).toContain("config.json");
    expect(ls(cache).filter((f) => f.includes("snapshots"))).toEqual([]);
  });

  it("should follow a renamed repo's relative 307 and pull a commit-hash revision without writing a ref", async () => {
    hub.renamed.set("old/name", "bitnet/tiny-gguf");
    const r = await pull(cfg, parseModelRef("old/name/tiny-i2_s.gguf"), { ...fast, revision: COMMIT });
    expect(fs.readFileSync(r.path).equals(MODEL)).toBe(true);
    expect(hub.requests("hub").map((q) => q.url)).toEqual([`/old/name/resolve/${COMMIT}/tiny-i2_s.gguf`, `/bitnet/tiny-gguf/resolve/${COMMIT}/tiny-i2_s.gguf`]);
    expect(fs.existsSync(path.join(cache, "models--old--name", "refs"))).toBe(false);
  });
});

describe("pull: errors that say what to do", () => {
  it("should answer a gated repo's 401 with 'set HF_TOKEN', and pull it with the token", async () => {
    hub.repos.set("meta/gated", { commit: COMMIT, gated: true, files: { "m.gguf": { content: OTHER, lfs: true } } });
    const e = await failure(pull(cfg, parseModelRef("meta/gated/m.gguf"), fast));
    expect(e.code).toBe("unauthorized");
    expect(e.message).toContain("set HF_TOKEN");
    expect(e.message).not.toContain("script"); // the hub's own error text is not echoed
    const r = await pull({ ...cfg, token: TOKEN }, parseModelRef("meta/gated/m.gguf"), fast);
    expect(fs.readFileSync(r.path).equals(OTHER)).toBe(true);
  });

  it("should answer 404s with the repo, file or revision to check", async () => {
    const file = await failure(pull(cfg, parseModelRef("bitnet/tiny-gguf/nope.gguf"), fast));
    expect([file.code, file.message]).toEqual(["not-found", expect.stringContaining("has no file nope.gguf at revision main")]);
    const rev = await failure(pull(cfg, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), { ...fast, revision: "v9" }));
    expect(rev.message).toContain("no revision v9");
    const repo = await failure(pull({ ...cfg, token: TOKEN }, parseModelRef("bitnet/missing/x.gguf"), fast));
    expect([repo.code, repo.message]).toEqual(["not-found", expect.stringContaining("check the repo name")]);
    expect(ls(cache).filter((f) => f.includes("snapshots"))).toEqual([]);
  });

  it("should refuse hostile metadata: no commit, an ETag that climbs out, a huge size, a non-http redirect", async () => {
    const ref = parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf");
    hub.faults = { headHeaders: { "x-repo-commit": undefined } };
    expect((await failure(pull(cfg, ref, fast))).message).toContain("X-Repo-Commit");
    hub.faults = { headHeaders: { "x-linked-etag": '"../../../etc/passwd"' } };
    expect((await failure(pull(cfg, ref, fast))).code).toBe("bad-response");
    hub.faults = { headHeaders: { "x-linked-size": String(2 ** 41) } };
    expect((await failure(pull(cfg, ref, fast))).message).toContain("more than the");
    hub.faults = { headLocation: "file:///etc/passwd" };
    expect((await failure(pull(cfg, ref, fast))).code).toBe("redirect");
    hub.faults = { headLocation: `${hub.endpoint}/bitnet/tiny-gguf/resolve/main/tiny-i2_s.gguf` }; // an absolute loop: GET follows it
    expect((await failure(pull(cfg, ref, fast))).message).toContain("more than 5 redirects");
    expect(ls(cache).filter((f) => f.includes("snapshots") || /blobs.+[0-9a-f]{64}$/.test(f))).toEqual([]);
  });

  it("should say the hub cannot be reached, and time out a hub that never answers", async () => {
    const closed = await failure(pull({ ...cfg, endpoint: "http://127.0.0.1:9" }, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), fast));
    expect(closed.code).toBe("network");
    expect(closed.message).toContain("HF_HUB_OFFLINE=1");
    hub.faults = { hang: true };
    const slow = await failure(pull(cfg, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), { ...fast, timeoutMs: 300 }));
    expect(slow.code).toBe("timeout");
  });
});

describe("pull: resume and verification", () => {
  it("should keep a dropped download as .incomplete, link nothing, and resume it with a Range request", async () => {
    hub.faults = { dropAfter: 100_000, dropTimes: 1 };
    const ref = parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf");
    const e = await failure(pull(cfg, ref, { ...fast, maxAttempts: 1 }));
    expect(e.code).toBe("network");
    expect(e.message).toMatch(/100000 of 300000 bytes kept; run the same command again to resume/);
    const incomplete = path.join(repoDir(), "blobs", `${sha256(MODEL)}.incomplete`);
    expect(fs.statSync(incomplete).size).toBe(100_000);
    expect(fs.existsSync(path.join(repoDir(), "snapshots"))).toBe(false);
    hub.seen.length = 0;
    const r = await pull(cfg, ref, fast);
    expect(hub.requests("cdn").map((q) => q.range)).toEqual(["bytes=100000-"]);
    expect(r.fetched).toBe(200_000);
    expect(fs.readFileSync(r.path).equals(MODEL)).toBe(true);
    expect(fs.existsSync(incomplete)).toBe(false);
  });

  it("should resume by itself within one pull after dropped connections", async () => {
    hub.faults = { dropAfter: 70_000, dropTimes: 2 };
    const events: string[] = [];
    const r = await pull(cfg, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), { ...fast, onEvent: (e) => void (e.kind === "retry" ? events.push(`retry at ${e.done}`) : undefined) });
    expect(hub.requests("cdn").map((q) => q.range)).toEqual([undefined, "bytes=70000-", "bytes=140000-"]);
    expect(events).toEqual(["retry at 70000", "retry at 140000"]);
    expect(fs.readFileSync(r.path).equals(MODEL)).toBe(true);
  });

  it("should restart from byte 0 when the server ignores the Range", async () => {
    hub.faults = { dropAfter: 50_000, dropTimes: 1, ignoreRange: true };
    const r = await pull(cfg, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), fast);
    expect(hub.requests("cdn").map((q) => q.range)).toEqual([undefined, "bytes=50000-"]);
    expect(fs.readFileSync(r.path).equals(MODEL)).toBe(true);
  });

  it("should refuse a file whose SHA-256 is not the LFS ETag: deleted, nothing in blobs/ or snapshots/", async () => {
    hub.faults = { corrupt: true };
    const e = await failure(pull(cfg, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), fast));
    expect(e.code).toBe("checksum");
    expect(e.message).toContain(sha256(MODEL));
    expect(ls(path.join(repoDir(), "blobs"))).toEqual([]);
    expect(fs.existsSync(path.join(repoDir(), "snapshots"))).toBe(false);
    expect(fs.existsSync(path.join(repoDir(), "refs"))).toBe(false);
  });

  it("should stop at the announced size when the server sends more, and delete the partial file", async () => {
    hub.faults = { extraBytes: 1000 };
    const e = await failure(pull(cfg, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), fast));
    expect(e.code).toBe("size-mismatch");
    expect(ls(path.join(repoDir(), "blobs"))).toEqual([]);
  });

  it("should give up on a stalled body after the idle time limit, keeping its bytes", async () => {
    // Each attempt gets 30,000 bytes, then nothing: two attempts keep 60,000.
    hub.faults = { stallAfter: 30_000 };
    const e = await failure(pull(cfg, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), { ...fast, idleTimeoutMs: 300, maxAttempts: 2 }));
    expect(e.code).toBe("timeout");
    expect(fs.statSync(path.join(repoDir(), "blobs", `${sha256(MODEL)}.incomplete`)).size).toBe(60_000);
    expect(hub.requests("cdn").map((q) => q.range)).toEqual([undefined, "bytes=30000-"]);
  });

  it("should stop at once on the abort signal (Ctrl-C), keeping the bytes so far and retrying nothing", async () => {
    hub.faults = { stallAfter: 20_000 };
    const controller = new AbortController();
    const e = await failure(
      pull(cfg, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), {
        ...fast,
        signal: controller.signal,
        onEvent: (ev) => void (ev.kind === "progress" && ev.done >= 20_000 ? controller.abort() : undefined),
      }),
    );
    expect([e.code, e.message]).toEqual(["interrupted", expect.stringContaining("20000 of 300000 bytes kept")]);
    expect(hub.requests("cdn")).toHaveLength(1);
    expect(fs.statSync(path.join(repoDir(), "blobs", `${sha256(MODEL)}.incomplete`)).size).toBe(20_000);
    expect(fs.existsSync(path.join(repoDir(), "snapshots"))).toBe(false);
  });

  it("should refuse to download a blob another live barbell process holds, and take over a dead one's lock", async () => {
    const etag = sha256(MODEL);
    const lockFile = path.join(cache, ".locks", "models--bitnet--tiny-gguf", `${etag}.barbell.lock`);
    fs.mkdirSync(path.dirname(lockFile), { recursive: true });
    fs.writeFileSync(lockFile, String(process.ppid));
    const e = await failure(pull(cfg, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), fast));
    expect([e.code, e.message]).toEqual(["busy", expect.stringContaining(`pid ${process.ppid}`)]);
    const dead = spawnSync(process.execPath, ["-e", ""]).pid ?? 0;
    fs.writeFileSync(lockFile, String(dead));
    const release = await lockBlob(cache, { org: "bitnet", name: "tiny-gguf" }, etag);
    expect(fs.readFileSync(lockFile, "utf8")).toBe(String(process.pid));
    await release();
    expect(fs.existsSync(lockFile)).toBe(false);
  });
});

describe("a cache made by Python's huggingface_hub", () => {
  function pythonCache(): string {
    // The layout hf_hub_download leaves: blobs/{sha256}, snapshots/{commit}/{file} -> ../../blobs/{sha256}, refs/main.
    const root = repoDir();
    fs.mkdirSync(path.join(root, "blobs"), { recursive: true });
    fs.mkdirSync(path.join(root, "snapshots", COMMIT), { recursive: true });
    fs.mkdirSync(path.join(root, "refs"), { recursive: true });
    fs.writeFileSync(path.join(root, "blobs", sha256(MODEL)), MODEL);
    fs.symlinkSync(`../../blobs/${sha256(MODEL)}`, path.join(root, "snapshots", COMMIT, "tiny-i2_s.gguf"));
    fs.writeFileSync(path.join(root, "refs", "main"), COMMIT);
    return path.join(root, "snapshots", COMMIT, "tiny-i2_s.gguf");
  }

  it("should be used by -m hf: with no request at all, with or without --pull, and offline", async () => {
    const expected = pythonCache();
    for (const fetch of [false, true]) {
      expect((await resolveHfModel(cfg, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), fetch)).path).toBe(expected);
      expect((await resolveHfModel(cfg, parseModelRef("bitnet/tiny-gguf"), fetch)).path).toBe(expected);
    }
    expect((await pull({ ...cfg, offline: true }, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"))).path).toBe(expected);
    expect(hub.seen).toEqual([]);
  });

  it("should make barbell pull ask the hub once (HEAD) and download nothing", async () => {
    const expected = pythonCache();
    const r = await pull(cfg, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), fast);
    expect([r.path, r.fetched]).toEqual([expected, 0]);
    expect(hub.requests().map((q) => `${q.server} ${q.method}`)).toEqual(["hub HEAD"]);
  });

  it("should fall back to the cached copy when the hub cannot be reached, saying so", async () => {
    const expected = pythonCache();
    let note = "";
    const r = await pull({ ...cfg, endpoint: "http://127.0.0.1:9" }, parseModelRef("bitnet/tiny-gguf/tiny-i2_s.gguf"), { ...fast, note: (t) => (note += t) });
    expect(r.path).toBe(expected);
    expect(note).toMatch(/cannot reach .* using the cached bitnet\/tiny-gguf\/tiny-i2_s.gguf/);
  });

  it("should not resolve -m hf: for a file that is not cached, naming the barbell pull command", async () => {
    pythonCache();
    const e = await failure(resolveHfModel(cfg, parseModelRef("bitnet/tiny-gguf/config.json"), false));
    expect([e.code, e.message]).toEqual(["not-cached", expect.stringContaining("run `barbell pull bitnet/tiny-gguf/config.json` first, or add --pull")]);
    const off = await failure(pull({ ...cfg, offline: true }, parseModelRef("bitnet/tiny-gguf/config.json")));
    expect(off.code).toBe("offline");
    expect(hub.seen).toEqual([]);
  });
});
