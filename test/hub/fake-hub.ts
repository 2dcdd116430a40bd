/**
 * A loopback Hugging Face hub for the tests: answers like the real one (HEAD on /resolve/ with X-Repo-Commit,
 * X-Linked-Etag, X-Linked-Size and a 302 to a CDN on another origin for LFS files; ETag + Content-Length for
 * small files; 401/404 with X-Error-Code; /api/models listing; 307 for a renamed repo), and a CDN with Range
 * support and injectable faults (a dropped connection, a wrong byte, extra bytes, an ignored Range, a stall).
 * Both listen on 127.0.0.1 only and record every request.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface FakeFile {
  readonly content: Buffer;
  /** Served through the CDN with an LFS SHA-256 ETag (else: a small git file, ETag = git blob sha1). */
  readonly lfs: boolean;
}

export interface FakeRepo {
  readonly commit: string;
  readonly files: Record<string, FakeFile>;
  readonly gated?: boolean;
}

export interface Faults {
  /** The CDN destroys the socket after this many body bytes, for the next `dropTimes` GETs. */
  dropAfter?: number;
  dropTimes?: number;
  /** The CDN flips one byte of the file (same size: only the SHA-256 can tell). */
  corrupt?: boolean;
  /** The CDN sends this many bytes more than the file. */
  extraBytes?: number;
  /** The CDN answers a Range request with the whole file (200). */
  ignoreRange?: boolean;
  /** The CDN sends the headers and this many bytes, then nothing (the connection stays open). */
  stallAfter?: number;
  /** Overrides of the HEAD answer's headers (undefined value: header removed). */
  headHeaders?: Record<string, string | undefined>;
  /** The hub answers HEAD with a redirect to this Location (as is). */
  headLocation?: string;
  /** The hub never answers (for the time limit). */
  hang?: boolean;
}

export interface SeenRequest {
  readonly server: "hub" | "cdn";
  readonly method: string;
  readonly url: string;
  readonly range?: string;
  readonly authorization?: string;
}

export const TOKEN = "hf_loopbacktesttoken";

export function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

export function gitBlobSha1(b: Buffer): string {
  return createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
}

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  /** Old name -> new name: the hub answers 307 with a relative Location. */
  readonly renamed = new Map<string, string>();
  readonly seen: SeenRequest[] = [];
  faults: Faults = {};
  private hub?: http.Server;
  private cdn?: http.Server;
  private sockets = new Set<Socket>();
  endpoint = "";
  cdnBase = "";

  async start(): Promise<this> {
    this.hub = http.createServer((req, res) => this.onHub(req, res));
    this.cdn = http.createServer((req, res) => this.onCdn(req, res));
    for (const s of [this.hub, this.cdn]) {
      s.on("connection", (c) => {
        this.sockets.add(c);
        c.on("close", () => this.sockets.delete(c));
      });
      await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    }
    this.endpoint = `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
    this.cdnBase = `http://127.0.0.1:${(this.cdn.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const c of this.sockets) {
      c.destroy();
    }
    await Promise.all([this.hub, this.cdn].map((s) => new Promise<void>((resolve) => (s === undefined ? resolve() : s.close(() => resolve())))));
  }

  requests(server?: "hub" | "cdn"): SeenRequest[] {
    return this.seen.filter((r) => server === undefined || r.server === server);
  }

  private record(server: "hub" | "cdn", req: http.IncomingMessage): void {
    this.seen.push({
      server,
      method: req.method ?? "",
      url: req.url ?? "",
      ...(req.headers.range === undefined ? {} : { range: req.headers.range }),
      ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }),
    });
  }

  private fail(res: http.ServerResponse, status: number, code: string): void {
    res.writeHead(status, { "x-error-code": code, "x-error-message": `<script>${code}</script> /srv/secret/path`, "content-type": "application/json" });
    res.end(JSON.stringify({ error: code }));
  }

  private onHub(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.record("hub", req);
    if (this.faults.hang === true) {
      return; // never answers; stop() destroys the socket
    }
    const url = new URL(req.url ?? "/", this.endpoint);
    const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    const authorized = req.headers.authorization === `Bearer ${TOKEN}`;
    if (parts[0] === "api" && parts[1] === "models" && parts[4] === "revision") {
      const repo = this.repos.get(`${parts[2]}/${parts[3]}`);
      if (repo === undefined || (repo.gated === true && !authorized)) {
        return this.fail(res, 401, repo === undefined ? "RepoNotFound" : "GatedRepo");
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: `${parts[2]}/${parts[3]}`, sha: repo.commit, siblings: Object.keys(repo.files).map((rfilename) => ({ rfilename })) }));
      return;
    }
    const name = `${parts[0]}/${parts[1]}`;
    const renamed = this.renamed.get(name);
    if (renamed !== undefined && parts[2] === "resolve") {
      res.writeHead(307, { location: `/${renamed}/${url.pathname.split("/").slice(3).join("/")}` });
      res.end();
      return;
    }
    const repo = this.repos.get(name);
    if (parts[2] !== "resolve" || repo === undefined) {
      return this.fail(res, authorized ? 404 : 401, "RepoNotFound");
    }
    if (repo.gated === true && !authorized) {
      return this.fail(res, 401, "GatedRepo");
    }
    if (parts[3] !== "main" && parts[3] !== repo.commit) {
      return this.fail(res, 404, "RevisionNotFound");
    }
    const path = parts.slice(4).join("/");
    const file = repo.files[path];
    if (file === undefined) {
      return this.fail(res, 404, "EntryNotFound");
    }
    const headers: Record<string, string> = { "x-repo-commit": repo.commit };
    if (file.lfs) {
      const sha = sha256(file.content);
      Object.assign(headers, { "x-linked-etag": `"${sha}"`, "x-linked-size": String(file.content.length), etag: `"${gitBlobSha1(file.content)}"`, location: `${this.cdnBase}/cdn/${sha}` });
    } else {
      Object.assign(headers, { etag: `"${gitBlobSha1(file.content)}"`, "content-length": String(file.content.length) });
    }
    if (this.faults.headLocation !== undefined) {
      headers["location"] = this.faults.headLocation;
    }
    for (const [k, v] of Object.entries(this.faults.headHeaders ?? {})) {
      if (v === undefined) {
        delete headers[k];
      } else {
        headers[k] = v;
      }
    }
    const status = file.lfs || this.faults.headLocation !== undefined ? 302 : 200;
    if (req.method === "HEAD") {
      res.writeHead(status, headers);
      res.end();
    } else if (status === 302) {
      res.writeHead(302, headers);
      res.end();
    } else {
      this.sendBody(req, res, file.content, headers);
    }
  }

  private onCdn(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.record("cdn", req);
    if (this.faults.hang === true) {
      return;
    }
    const sha = /^\/cdn\/([0-9a-f]{64})$/.exec(req.url ?? "")?.[1];
    const file = [...this.repos.values()].flatMap((r) => Object.values(r.files)).find((f) => f.lfs && sha256(f.content) === sha);
    if (file === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    this.sendBody(req, res, file.content, {});
  }

  private sendBody(req: http.IncomingMessage, res: http.ServerResponse, content: Buffer, headers: Record<string, string>): void {
    let body = Buffer.from(content);
    if (this.faults.corrupt === true) {
      const at = Math.floor(body.length / 2);
      body[at] = (body[at] ?? 0) ^ 0xff;
    }
    if (this.faults.extraBytes !== undefined) {
      body = Buffer.concat([body, Buffer.alloc(this.faults.extraBytes, 7)]);
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    let status = 200;
    if (range !== null && this.faults.ignoreRange !== true) {
      const from = Number(range[1]);
      status = 206;
      headers = { ...headers, "content-range": `bytes ${from}-${content.length - 1}/${content.length}` };
      body = body.subarray(from);
    }
    const drop = this.faults.dropAfter !== undefined && (this.faults.dropTimes ?? 1) > 0;
    if (drop) {
      this.faults.dropTimes = (this.faults.dropTimes ?? 1) - 1;
    }
    res.writeHead(status, { ...headers, "content-length": String(body.length), "accept-ranges": "bytes" });
    if (drop) {
      res.write(body.subarray(0, this.faults.dropAfter), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    if (this.faults.stallAfter !== undefined) {
      res.write(body.subarray(0, this.faults.stallAfter));
      return;
    }
    res.end(body);
  }
}

/** Deterministic bytes of length n. */
export function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
