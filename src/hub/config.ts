/**
 * Where the hub is, who we are to it, and where its files are cached, read from the same environment variables
 * as Python's huggingface_hub, so a cache it filled is the cache barbell reads (docs/hub.md).
 */
import os from "node:os";
import path from "node:path";
import { FileError } from "../core/errors.js";
import { readRegularFile } from "../core/files.js";
import { HubError } from "./errors.js";

/** The public hub, used when HF_ENDPOINT is not set. */
export const DEFAULT_ENDPOINT = "https://huggingface.co";
/** Longest HF_ENDPOINT accepted. */
export const MAX_ENDPOINT_LENGTH = 2048;
/** Longest token accepted (hub tokens are about 40 characters); a token file is read only up to this size. */
export const MAX_TOKEN_LENGTH = 1024;

export interface HubConfig {
  /** The hub's base URL, http(s), no trailing '/'. */
  readonly endpoint: string;
  /** Sent as `Authorization: Bearer …` to the endpoint's origin only; never printed. */
  readonly token?: string;
  /** The hub cache root (`models--org--name/…` folders). */
  readonly cacheDir: string;
  /** HF_HUB_OFFLINE: the cache only, no request. */
  readonly offline: boolean;
}

type Env = Readonly<Record<string, string | undefined>>;

function nonEmpty(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function expandHome(p: string, home: string): string {
  return p === "~" ? home : p.startsWith("~/") ? path.join(home, p.slice(2)) : p;
}

/** Checks HF_ENDPOINT: an http(s) URL without credentials, query or fragment. */
export function parseEndpoint(text: string): string {
  let url: URL;
  try {
    if (text.length > MAX_ENDPOINT_LENGTH) {
      throw new Error("too long");
    }
    url = new URL(text);
  } catch {
    throw new HubError("bad-config", `[hub] HF_ENDPOINT must be an http(s) URL of at most ${MAX_ENDPOINT_LENGTH} characters, like ${DEFAULT_ENDPOINT}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new HubError("bad-config", `[hub] HF_ENDPOINT must use http or https, not ${url.protocol.replace(/:$/, "")}`);
  }
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
    throw new HubError("bad-config", "[hub] HF_ENDPOINT may not hold credentials, a query or a fragment (give the token in HF_TOKEN)");
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** Checks a token: printable ASCII without spaces, at most MAX_TOKEN_LENGTH characters. The message never shows it. */
export function checkToken(token: string, from: string): string {
  if (token.length > MAX_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token)) {
    throw new HubError("bad-config", `[hub] the token in ${from} must be 1..${MAX_TOKEN_LENGTH} printable ASCII characters without spaces`);
  }
  return token;
}

/** The hub cache root: HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(env: Env = process.env, home: string = os.homedir()): string {
  const direct = nonEmpty(env, "HF_HUB_CACHE") ?? nonEmpty(env, "HUGGINGFACE_HUB_CACHE");
  if (direct !== undefined) {
    return path.resolve(expandHome(direct, home));
  }
  return path.resolve(path.join(hfHome(env, home), "hub"));
}

function hfHome(env: Env, home: string): string {
  const hf = nonEmpty(env, "HF_HOME");
  if (hf !== undefined) {
    return expandHome(hf, home);
  }
  return path.join(expandHome(nonEmpty(env, "XDG_CACHE_HOME") ?? path.join(home, ".cache"), home), "huggingface");
}

/** Whether HF_HUB_OFFLINE asks for no network (1, true, yes, on). */
export function isOffline(env: Env = process.env): boolean {
  return ["1", "true", "yes", "on"].includes((env["HF_HUB_OFFLINE"] ?? "").trim().toLowerCase());
}

/**
 * The token: HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the file `huggingface-cli login` writes
 * (HF_TOKEN_PATH, else $HF_HOME/token); none is fine (public repos).
 */
async function findToken(env: Env, home: string): Promise<string | undefined> {
  for (const name of ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]) {
    const v = nonEmpty(env, name);
    if (v !== undefined) {
      return checkToken(v, name);
    }
  }
  const file = expandHome(nonEmpty(env, "HF_TOKEN_PATH") ?? path.join(hfHome(env, home), "token"), home);
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(file, MAX_TOKEN_LENGTH + 2, "token file");
  } catch (e) {
    if (e instanceof FileError && e.code === "missing") {
      return undefined;
    }
    throw new HubError("bad-config", `[hub] the token file ${file} cannot be used (${e instanceof FileError ? e.code : "unreadable"}); fix or delete it, or set HF_TOKEN`);
  }
  const text = bytes.toString("utf8").trim();
  return text === "" ? undefined : checkToken(text, file);
}

/** The configuration from the environment (`process.env` by default; the tests pass their own). */
export async function hubConfig(env: Env = process.env, home: string = os.homedir()): Promise<HubConfig> {
  const endpoint = parseEndpoint(nonEmpty(env, "HF_ENDPOINT") ?? DEFAULT_ENDPOINT);
  const offline = isOffline(env);
  const token = offline ? undefined : await findToken(env, home);
  return { endpoint, cacheDir: hubCacheDir(env, home), offline, ...(token === undefined ? {} : { token }) };
}
