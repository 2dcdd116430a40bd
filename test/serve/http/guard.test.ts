/**
 * The server's edges through raw sockets (issue 13): API keys by matched route over every URL form tried, the
 * Host header check, OpenAI-shaped answers for what fastify and Node refuse, header/body/idle timeouts and
 * connection caps against slow clients. Loopback only; every loop is bounded.
 */
import net from "node:net";
import { describe, expect, it } from "vitest";
import type { ServerOptions } from "../../../src/serve/http/index.js";
import { type Running, tinyServers, until } from "./helpers.js";

const tiny = tinyServers();
let running: Running | undefined;

async function start(options: Partial<ServerOptions> = {}): Promise<{ port: number; running: Running }> {
  running = await tiny.start({}, options);
  return { port: Number(new URL(running.url).port), running };
}

interface Raw {
  readonly status: number;
  readonly head: string;
  readonly body: string;
}

function parse(text: string): Raw {
  const split = text.indexOf("\r\n\r\n");
  const head = split < 0 ? text : text.slice(0, split);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body: split < 0 ? "" : text.slice(split + 4) };
}

/** Sends `text` on a fresh connection and reads until the server closes it (at most `ms`). */
function raw(port: number, text: string | Buffer, ms = 5_000): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(text));
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${ms} ms; got ${JSON.stringify(data.slice(0, 200))}`));
    }, ms);
    socket.on("data", (chunk) => (data += chunk.toString("utf8")));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(parse(data));
    });
  });
}

function request(method: string, target: string, port: number, headers: Record<string, string> = {}, body = ""): string {
  const lines = Object.entries({ host: `127.0.0.1:${port}`, connection: "close", ...headers }).map(([k, v]) => `${k}: ${v}`);
  if (body !== "" || method === "POST") {
    lines.push("content-type: application/json", `content-length: ${Buffer.byteLength(body)}`);
  }
  return `${method} ${target} HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n${body}`;
}

/** The body is OpenAI's error shape with this status's code, and nothing of the framework shows. */
function expectOpenAiError(r: Raw, status: number, code: string): void {
  expect(r.status).toBe(status);
  expect(r.body).not.toMatch(/FST_|statusCode|"error":"/);
  const json = JSON.parse(r.body) as { error: Record<string, unknown> };
  expect(Object.keys(json.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(json.error["code"]).toBe(code);
}

const completion = JSON.stringify({ model: "tiny", prompt: [1, 2], max_tokens: 1, temperature: 0 });
const chat = JSON.stringify({ model: "tiny", messages: [{ role: "user", content: "hi" }], max_tokens: 1 });

describe("API keys by matched route", () => {
  // Every target form tried against the key check: the ones the router maps onto a /v1 route must get 401.
  const forms: [method: string, target: (port: number) => string, body: string][] = [
    ["POST", () => "/%761/completions", completion],
    ["POST", () => "/v%31/completions", completion],
    ["POST", () => "/v%31/chat/completions", chat],
    ["POST", () => "/%76%31/chat/completions", chat],
    ["GET", () => "/%761/models", ""],
    ["GET", () => "/v1/models/%74iny", ""],
    ["GET", () => "/v1/%6dodels", ""],
    ["POST", (port) => `http://127.0.0.1:${port}/v1/completions`, completion],
    ["POST", () => "http://evil.example/v1/completions", completion],
    ["GET", (port) => `http://localhost:${port}/%761/models`, ""],
    ["POST", () => "/v1/completions?x=1", completion],
    ["POST", () => "/v1/completions#frag", completion],
    ["POST", () => "/%25761/completions", completion],
    ["POST", () => "//v1/completions", completion],
    ["POST", () => "/v1/../v1/completions", completion],
    ["POST", () => "/v1/./completions", completion],
    ["POST", () => "/V1/completions", completion],
    ["POST", () => "/v1/COMPLETIONS", completion],
    ["POST", () => "/v1/completions.", completion],
    ["POST", () => "/v1/completions/", completion],
    ["POST", () => "/v1//completions", completion],
    ["POST", () => "/v1%2fcompletions", completion],
    ["POST", () => "/v1/completions;x", completion],
    ["POST", () => "/v1/completions%00", completion],
    ["GET", () => "/v1/models/tiny/", ""],
    ["GET", () => "/v1/models", ""],
  ];

  it(`should answer none of ${forms.length} URL forms without a key, and serve the routed ones with it`, async () => {
    const { port } = await start({ apiKeys: ["sekrit"] });
    let bypasses = 0;
    let routed = 0;
    for (const [method, target, body] of forms) {
      const anonymous = await raw(port, request(method, target(port), port, {}, body));
      expect(anonymous.status, `${method} ${target(port)}`).toBeGreaterThanOrEqual(400);
      if (anonymous.status < 400) {
        bypasses++;
      }
      const keyed = await raw(port, request(method, target(port), port, { authorization: "Bearer sekrit" }, body));
      if (keyed.status === 200) {
        routed++; // this form reaches a handler: without the key it must have been refused as unauthorised
        expectOpenAiError(anonymous, 401, "invalid_api_key");
      }
    }
    expect(bypasses).toBe(0);
    expect(routed).toBeGreaterThanOrEqual(10); // the percent-encoded and absolute forms really route
  });

  it("should refuse unmatched URLs with 401 before 404 when keys are set, and keep probes and metrics open", async () => {
    const { port } = await start({ apiKeys: ["sekrit"] });
    expectOpenAiError(await raw(port, request("GET", "/nope", port)), 401, "invalid_api_key");
    expectOpenAiError(await raw(port, request("GET", "/nope", port, { authorization: "Bearer sekrit" })), 404, "not_found");
    expect((await raw(port, request("GET", "/health/live", port))).status).toBe(200);
    expect((await raw(port, request("GET", "/health/%6cive", port))).status).toBe(200);
    expect((await raw(port, request("GET", "/metrics", port))).status).toBe(200);
    expectOpenAiError(await raw(port, request("POST", "/v1/completions", port, { authorization: "Bearer wrong" }, completion)), 401, "invalid_api_key");
  });
});

describe("Host header (DNS rebinding)", () => {
  it("should accept only IP literals, localhost and configured names on a loopback server", async () => {
    const { port } = await start({ allowedHosts: ["my.box"] });
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST.:${port}`, `[::1]:${port}`, "127.0.0.1", `my.box:${port}`, "MY.BOX"]) {
      expect((await raw(port, request("GET", "/v1/models", port, { host }))).status, host).toBe(200);
    }
    for (const host of [`evil.example:${port}`, "localhost.evil.example", "127.0.0.1.nip.io", "my.box.evil.example", ""]) {
      expectOpenAiError(await raw(port, request("GET", "/v1/models", port, { host })), 403, "host_not_allowed");
    }
  });

  it("should check no names when told '*'", async () => {
    const { port } = await start({ allowedHosts: ["*"] });
    expect((await raw(port, request("GET", "/v1/models", port, { host: "anything.example" }))).status).toBe(200);
  });
});

describe("CORS", () => {
  it("should answer an allowed origin's preflight without a key, and mark streamed and refused answers", async () => {
    const { port } = await start({ apiKeys: ["sekrit"], corsOrigins: ["https://app.example"] });
    const app = { origin: "https://app.example" };
    const preflight = await raw(port, request("OPTIONS", "/v1/chat/completions", port, { ...app, "access-control-request-method": "POST" }));
    expect(preflight.status).toBe(204);
    expect(preflight.head).toMatch(/access-control-allow-methods: GET, POST, OPTIONS/i);
    expect(preflight.head).toMatch(/access-control-max-age: 600/i);
    // A streamed answer (sent by fastify from the event stream) carries the reply's CORS headers.
    const key = { authorization: "Bearer sekrit" };
    const streamed = await raw(port, request("POST", "/v1/completions", port, { ...app, ...key }, JSON.stringify({ model: "tiny", prompt: [1, 2], max_tokens: 2, stream: true })));
    expect(streamed.status).toBe(200);
    expect(streamed.head).toMatch(/content-type: text\/event-stream/i);
    expect(streamed.head).toMatch(/access-control-allow-origin: https:\/\/app\.example/i);
    expect(streamed.head).toMatch(/access-control-expose-headers: retry-after/i); // a browser may read a 429's Retry-After
    expect(streamed.body).toContain("data: [DONE]");
    const refused = await raw(port, request("GET", "/v1/models", port, app));
    expectOpenAiError(refused, 401, "invalid_api_key");
    expect(refused.head).toMatch(/access-control-allow-origin: https:\/\/app\.example/i);
    // Another origin: no CORS headers and no preflight (the key check answers), but Vary: Origin for caches.
    const evil = { origin: "https://evil.example" };
    const other = await raw(port, request("GET", "/v1/models", port, { ...evil, ...key }));
    expect(other.status).toBe(200);
    expect(other.head).not.toMatch(/access-control-/i);
    expect(other.head).toMatch(/vary: origin/i);
    expectOpenAiError(await raw(port, request("OPTIONS", "/v1/chat/completions", port, { ...evil, "access-control-request-method": "POST" })), 401, "invalid_api_key");
  });
});

describe("errors in OpenAI's shape whatever fails", () => {
  it("should answer bad escapes, long parameters, bad JSON, bad media types and big bodies in OpenAI's shape", async () => {
    const { port } = await start({ bodyLimit: 1024 });
    expectOpenAiError(await raw(port, request("GET", "/v1/models/%ZZ", port)), 400, "invalid_url");
    expectOpenAiError(await raw(port, request("GET", `/v1/models/${"a".repeat(500)}`, port)), 414, "url_too_long");
    expectOpenAiError(await raw(port, request("POST", "/v1/completions", port, {}, "{ not json")), 400, "invalid_json");
    expectOpenAiError(await raw(port, request("POST", "/v1/completions", port, {}, '{"__proto__": {"x": 1}}')), 400, "invalid_json");
    expectOpenAiError(await raw(port, request("POST", "/v1/completions", port, {}, "")), 400, "invalid_json");
    expectOpenAiError(await raw(port, request("POST", "/v1/completions", port, {}, JSON.stringify({ prompt: "x".repeat(2000) }))), 413, "request_too_large");
    const plain = `POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/xml\r\ncontent-length: 2\r\n\r\nhi`;
    expectOpenAiError(await raw(port, plain), 415, "unsupported_media_type");
    expectOpenAiError(await raw(port, request("GET", "/x", port, { "x-big": "a".repeat(20_000) })), 431, "headers_too_large");
    expectOpenAiError(await raw(port, "NOT HTTP AT ALL\r\n\r\n"), 400, "bad_request");
    const long = await raw(port, request("GET", `/${"z".repeat(5000)}`, port));
    expectOpenAiError(long, 404, "not_found");
    expect(long.body.length).toBeLessThan(600); // the URL is not echoed whole
  });
});

describe("slow clients and connection caps", () => {
  it("should close every connection that sends half a body once the body timeout passes, with a 408", async () => {
    const { port, running: r } = await start({ limits: { headersTimeoutMs: 200, bodyTimeoutMs: 400 } });
    const count = 40;
    const results = Array.from({ length: count }, () =>
      raw(port, `POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"model":`, 10_000),
    );
    const answers = await Promise.all(results);
    for (const a of answers) {
      expectOpenAiError(a, 408, "request_timeout");
    }
    const connections = (): Promise<number> => new Promise((resolve) => r.server.app.server.getConnections((_e, n) => resolve(n)));
    await until(async () => (await connections()) === 0);
    expect(await connections()).toBe(0);
  });

  it("should close a client that never finishes its headers", async () => {
    const { port } = await start({ limits: { headersTimeoutMs: 200, bodyTimeoutMs: 400 } });
    const started = performance.now();
    const r = await raw(port, "GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\n", 10_000);
    expect(performance.now() - started).toBeLessThan(9_000);
    expectOpenAiError(r, 408, "request_timeout");
  });

  it("should close an idle keep-alive connection after the idle timeout", async () => {
    const { port } = await start({ limits: { idleTimeoutMs: 200 } });
    const keepAlive = request("GET", "/v1/models", port, { connection: "keep-alive" });
    const r = await raw(port, keepAlive, 10_000); // resolves only when the server closes the idle connection
    expect(r.status).toBe(200);
  });

  it("should refuse connections past the per-address cap with 503 and take new ones when some close", async () => {
    const { port } = await start({ limits: { maxConnectionsPerIp: 4 } });
    const held = await Promise.all(
      Array.from({ length: 4 }, () => new Promise<net.Socket>((resolve) => { const s = net.connect(port, "127.0.0.1", () => resolve(s)); s.on("error", () => undefined); })),
    );
    try {
      await new Promise((r) => setTimeout(r, 50));
      expectOpenAiError(await raw(port, request("GET", "/v1/models", port)), 503, "too_many_connections");
      held.pop()?.destroy();
      await new Promise((r) => setTimeout(r, 50));
      expect((await raw(port, request("GET", "/v1/models", port))).status).toBe(200);
    } finally {
      held.forEach((s) => s.destroy());
    }
  });

  it("should refuse connections past the total cap", async () => {
    const { port } = await start({ limits: { maxConnections: 2 } });
    const held = await Promise.all(
      Array.from({ length: 2 }, () => new Promise<net.Socket>((resolve) => { const s = net.connect(port, "127.0.0.1", () => resolve(s)); s.on("error", () => undefined); })),
    );
    try {
      await new Promise((r) => setTimeout(r, 50));
      expectOpenAiError(await raw(port, request("GET", "/v1/models", port)), 503, "too_many_connections");
    } finally {
      held.forEach((s) => s.destroy());
    }
  });
});
