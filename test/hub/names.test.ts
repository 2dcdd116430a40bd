/** Names from users and from the hub, and the configuration from the environment. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hubCacheDir, hubConfig, parseEndpoint } from "../../src/hub/config.js";
import { HubError } from "../../src/hub/errors.js";
import {
  apiRevisionUrl,
  checkRevision,
  MAX_FILE_PATH_LENGTH,
  MAX_PATH_SEGMENT_LENGTH,
  MAX_REPO_PART_LENGTH,
  MAX_REVISION_LENGTH,
  normalizeEtag,
  parseModelRef,
  repoFromFolderName,
  resolveUrl,
} from "../../src/hub/names.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "barbell-hub-names-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(HubError);
    return (e as HubError).code;
  }
  return "no error";
}

describe("model references", () => {
  it("should split <org>/<repo>[/<file path>]", () => {
    expect(parseModelRef("microsoft/bitnet-b1.58-2B-4T-gguf")).toEqual({ repo: { org: "microsoft", name: "bitnet-b1.58-2B-4T-gguf" } });
    expect(parseModelRef("org/repo/sub dir/m.gguf")).toEqual({ repo: { org: "org", name: "repo" }, file: "sub dir/m.gguf" });
  });

  it("should refuse names that could leave the cache folder or break its layout", () => {
    for (const bad of [
      "org",
      "org/../x",
      "../org/repo",
      "org/repo/../../etc/passwd",
      "org/repo/a/./b",
      "org/repo//x",
      "org/repo/",
      "org/repo/a\\b.gguf",
      "org/repo/a\u0000b",
      "org/repo/a\nb",
      "or--g/repo",
      "org/re..po",
      "org/repo.git",
      "-org/repo",
      `org/${"r".repeat(MAX_REPO_PART_LENGTH + 1)}`,
      `org/repo/${"a/".repeat(40)}x`,
      `org/repo/${"x".repeat(256)}`,
      `org/repo/${"ab/".repeat(MAX_FILE_PATH_LENGTH / 3)}x`,
    ]) {
      expect(code(() => parseModelRef(bad)), bad).toBe("bad-name");
    }
    expect(code(() => parseModelRef(`org/repo/${"x".repeat(MAX_PATH_SEGMENT_LENGTH)}`))).toBe("no error");
  });

  it("should check revisions and encode them as one URL segment", () => {
    expect(checkRevision("refs/pr/1")).toBe("refs/pr/1");
    for (const bad of ["", "../main", "a//b", "main branch", "x".repeat(MAX_REVISION_LENGTH + 1)]) {
      expect(code(() => checkRevision(bad)), bad).toBe("bad-name");
    }
    const repo = { org: "o", name: "r" };
    expect(resolveUrl("https://hub.example/mirror", repo, "refs/pr/1", "a b/c#.gguf")).toBe("https://hub.example/mirror/o/r/resolve/refs%2Fpr%2F1/a%20b/c%23.gguf");
    expect(apiRevisionUrl("https://hub.example", repo, "main")).toBe("https://hub.example/api/models/o/r/revision/main");
  });

  it("should normalize ETags like the Hugging Face clients and refuse ones that are not file names", () => {
    expect(normalizeEtag('W/"abc123"')).toBe("abc123");
    expect(normalizeEtag(`"${"a".repeat(64)}"`)).toBe("a".repeat(64));
    for (const bad of ['""', '"../x"', '"a/b"', '".hidden"', `"${"a".repeat(129)}"`]) {
      expect(code(() => normalizeEtag(bad)), bad).toBe("bad-response");
    }
  });

  it("should read repo ids back from cache folder names, skipping datasets and stray folders", () => {
    expect(repoFromFolderName("models--microsoft--bitnet-b1.58-2B-4T")).toEqual({ org: "microsoft", name: "bitnet-b1.58-2B-4T" });
    expect(repoFromFolderName("datasets--a--b")).toBeUndefined();
    expect(repoFromFolderName("models--a")).toBeUndefined();
    expect(repoFromFolderName(".locks")).toBeUndefined();
  });
});

describe("configuration from the environment", () => {
  it("should find the cache where huggingface_hub does", () => {
    expect(hubCacheDir({ HF_HUB_CACHE: "/c/hub", HF_HOME: "/h" }, "/home/u")).toBe("/c/hub");
    expect(hubCacheDir({ HUGGINGFACE_HUB_CACHE: "~/legacy" }, "/home/u")).toBe("/home/u/legacy");
    expect(hubCacheDir({ HF_HOME: "/h" }, "/home/u")).toBe("/h/hub");
    expect(hubCacheDir({ XDG_CACHE_HOME: "/x" }, "/home/u")).toBe("/x/huggingface/hub");
    expect(hubCacheDir({}, "/home/u")).toBe("/home/u/.cache/huggingface/hub");
  });

  it("should accept only http(s) endpoints without credentials", () => {
    expect(parseEndpoint("https://hf-mirror.example/")).toBe("https://hf-mirror.example");
    for (const bad of ["ftp://x", "not a url", "https://user:pw@hub.example", "https://hub.example/?q=1", `https://${"a".repeat(3000)}.example`]) {
      expect(() => parseEndpoint(bad), bad).toThrow(HubError);
    }
  });

  it("should take the token from HF_TOKEN or the login file, never show it, and send none offline", async () => {
    const home = path.join(tmp, "hfhome");
    fs.mkdirSync(home, { recursive: true });
    expect((await hubConfig({ HF_HOME: home }, tmp)).token).toBeUndefined();
    fs.writeFileSync(path.join(home, "token"), "hf_fromfile\n");
    expect((await hubConfig({ HF_HOME: home }, tmp)).token).toBe("hf_fromfile");
    expect((await hubConfig({ HF_HOME: home, HF_TOKEN: "hf_env" }, tmp)).token).toBe("hf_env");
    expect((await hubConfig({ HF_HOME: home, HF_TOKEN: "hf_env", HF_HUB_OFFLINE: "1" }, tmp))).toMatchObject({ offline: true });
    expect((await hubConfig({ HF_HOME: home, HF_HUB_OFFLINE: "1" }, tmp)).token).toBeUndefined();
    const bad = await hubConfig({ HF_TOKEN: "hf_secret with space" }, tmp).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(HubError);
    expect((bad as HubError).message).not.toContain("secret");
    const cfg = await hubConfig({ HF_HOME: home }, tmp);
    expect(cfg.endpoint).toBe("https://huggingface.co");
    expect(cfg.cacheDir).toBe(path.join(home, "hub"));
  });
});
