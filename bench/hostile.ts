/**
 * `npx tsx bench/hostile.ts`: the server attacked as a hostile or careless client would (issue 13), on
 * loopback only, every loop bounded in count and time. Prints a Markdown report of:
 * - URL forms against the API-key check (percent-encodings of every character of each /v1 route, double
 *   encodings, dot segments, slashes, case, trailing characters, absolute-form targets): bypasses must be 0;
 * - slow clients: connections that send half a body (held, refused, closed, file descriptors after);
 * - large prompts: 1 MB prompts and long in-bound prompts sent together, and the worst /health/live latency
 *   meanwhile;
 * - a soak of short requests (errors, RSS before/after);
 * - worker kills under load (SIGKILL to the model's child process): requests left hanging must be 0.
 *
 *   npx tsx bench/hostile.ts [--soak 10000] [--slow 3000] [--kills 7]
 */
import { fork } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "../src/serve/http/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const count = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  const n = i < 0 ? fallback : Number(args[i + 1]);
  if (!Number.isSafeInteger(n) || n < 0 || n > 1_000_000) {
    throw new Error(`--${name} must be an integer in 0..1000000`);
  }
  return n;
};
const SOAK = count("soak", 10_000);
const SLOW = count("slow", 3_000);
const KILLS = count("kills", 7);
const KEY = "hostile-bench-key";
const MODEL = path.join(here, "..", "models", "barbell-kjv.gguf");


if (args.includes("--serve-child")) {
  // The server runs in a process of its own, so the client's work does not count against its event loop.
  const server = await createServer({
    models: [{ name: "kjv", path: MODEL, backends: ["native-cpu", "js"], parallel: 4, queue: 64, isolation: "process", threads: 1 }],
    apiKeys: [KEY],
    log: () => undefined,
  });
  process.send?.({ url: await server.listen(0) });
  process.once("message", () => void server.shutdown(2_000).then(() => process.exit(0)));
} else {
  await attack();
}

async function attack(): Promise<void> {
const child = fork(fileURLToPath(import.meta.url), ["--serve-child"], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
const base = await new Promise<string>((resolve) => child.once("message", (m: { url: string }) => resolve(m.url)));
const port = Number(new URL(base).port);
const serverPid = child.pid ?? 0;
const rssMiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${serverPid}/status`, "utf8"))?.[1] ?? 0) / 1024;
const auth = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
const lines: string[] = [`# Hostile-client run (${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model ?? "?"}, ${os.cpus().length} CPUs, Node ${process.version})`, ""];
const say = (line: string): void => {
  lines.push(line);
  process.stderr.write(`${line}\n`);
};

/** One request on a fresh connection; resolves with the status when the server closes it (0: none in `ms`). */
function raw(text: string, ms = 10_000): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(text));
    let data = "";
    const timer = setTimeout(() => socket.destroy(), ms);
    socket.on("data", (c) => (data += c.toString("latin1")));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0));
    });
  });
}

// ---- URL forms ----
const routes: [method: string, route: string, body: string][] = [
  ["POST", "/v1/completions", JSON.stringify({ model: "kjv", prompt: [1, 2], max_tokens: 1 })],
  ["POST", "/v1/chat/completions", JSON.stringify({ model: "kjv", messages: [{ role: "user", content: "hi" }], max_tokens: 1 })],
  ["GET", "/v1/models", ""],
  ["GET", "/v1/models/kjv", ""],
];
const enc = (c: string): string => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
function forms(route: string): string[] {
  const out = new Set<string>();
  for (let i = 1; i < route.length; i++) {
    const c = route[i] ?? "";
    out.add(route.slice(0, i) + enc(c) + route.slice(i + 1)); // one character percent-encoded
    out.add(route.slice(0, i) + enc(c).toUpperCase() + route.slice(i + 1));
    out.add(route.slice(0, i) + `%25${enc(c).slice(1)}` + route.slice(i + 1)); // double-encoded
  }
  out.add(route.split("").map((c) => (c === "/" ? c : enc(c))).join("")); // every letter encoded
  for (const host of ["127.0.0.1", `127.0.0.1:${port}`, "localhost", "evil.example"]) {
    out.add(`http://${host}${route}`);
    out.add(`HTTP://${host}${route}`);
  }
  const segments = route.split("/").filter((s) => s !== "");
  out.add(`/${segments.join("//")}`);
  out.add(`//${segments.join("/")}`);
  out.add(`/${segments[0]}/../${segments.join("/")}`);
  out.add(`/${segments[0]}/./${segments.slice(1).join("/")}`);
  out.add(route.toUpperCase());
  out.add(route.replace("/v1/", "/V1/"));
  for (const tail of [".", "/", "%00", ";", ";x=1", "#x", "?x=1", "%20", "%2f", "..", "/."]) {
    out.add(route + tail);
  }
  out.add(route.replace(/\//g, "%2f").replace(/^%2f/, "/"));
  return [...out];
}
let tried = 0;
let bypasses = 0;
let routed = 0;
for (const [method, route, body] of routes) {
  for (const target of forms(route)) {
    const head = (extra: string): string =>
      `${method} ${target} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: close\r\n${extra}content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    tried++;
    const anonymous = await raw(head(""));
    if (anonymous > 0 && anonymous < 400) {
      bypasses++;
      say(`- BYPASS: ${method} ${target} answered ${anonymous} without a key`);
    }
    if ((await raw(head(`authorization: Bearer ${KEY}\r\n`))) === 200) {
      routed++;
    }
  }
}
say(`## URL forms\n\n${tried} forms of ${routes.length} routes tried without a key: **${bypasses} bypasses**; ${routed} of them reach a handler with the key (so the router really maps them).`);

// ---- slow clients ----
const fds = (): number => readdirSync(`/proc/${serverPid}/fd`).length;
const fdBefore = fds();
const slowStarted = performance.now();
const slow = await Promise.all(
  Array.from({ length: SLOW }, () =>
    raw(`POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"model":`, 120_000),
  ),
);
const byStatus = new Map<number, number>();
for (const s of slow) {
  byStatus.set(s, (byStatus.get(s) ?? 0) + 1);
}
await new Promise((r) => setTimeout(r, 500));
say(
  `\n## Slow clients\n\n${SLOW} connections sent half a body: answers ${[...byStatus].map(([s, n]) => `${n}× ${s === 0 ? "closed" : s}`).join(", ")}; all closed after ${((performance.now() - slowStarted) / 1000).toFixed(1)} s; file descriptors ${fdBefore} before, ${fds()} after.`,
);

// ---- large prompts ----
async function liveLatency(during: Promise<unknown>): Promise<number> {
  let worst = 0;
  let done = false;
  void during.finally(() => (done = true));
  while (!done) {
    const t = performance.now();
    await fetch(`${base}/health/live`);
    worst = Math.max(worst, performance.now() - t);
    await new Promise((r) => setTimeout(r, 5));
  }
  return worst;
}
const post = async (route: string, body: unknown): Promise<number> => (await fetch(`${base}${route}`, { method: "POST", headers: auth, body: JSON.stringify(body) })).status;
const huge = "x".repeat(1_000_000);
const hugeStatuses = post("/v1/completions", { model: "kjv", prompt: huge, max_tokens: 1 });
const tenHuge = Promise.all(Array.from({ length: 10 }, () => post("/v1/completions", { model: "kjv", prompt: huge, max_tokens: 1 })));
const hugeLive = await liveLatency(tenHuge);
const longText = "In the beginning God created the heaven and the earth. ".repeat(60);
const tenLong = Promise.all(Array.from({ length: 10 }, (_, i) => post("/v1/completions", { model: "kjv", prompt: `${i} ${longText}`, max_tokens: 1 })));
const longLive = await liveLatency(tenLong);
say(
  `\n## Large prompts\n\n10 × 1 MB prompts: statuses ${[...new Set([await hugeStatuses, ...(await tenHuge)])].join(", ")}, worst /health/live ${hugeLive.toFixed(1)} ms meanwhile; 10 × ${longText.length}-byte prompts (tokenized in the worker): statuses ${[...new Set(await tenLong)].join(", ")}, worst /health/live ${longLive.toFixed(1)} ms.`,
);

// ---- soak ----
const rssBefore = rssMiB();
let soakErrors = 0;
let next = 0;
const soakStarted = performance.now();
await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (next < SOAK) {
      next++;
      const status = await post("/v1/completions", { model: "kjv", prompt: "And God said", max_tokens: 4, temperature: 0 }).catch(() => 0);
      if (status !== 200) {
        soakErrors++;
      }
    }
  }),
);
say(
  `\n## Soak\n\n${SOAK} requests (8 at a time, 4 tokens each) in ${((performance.now() - soakStarted) / 1000).toFixed(1)} s: **${soakErrors} errors**; server RSS ${rssBefore.toFixed(0)} → ${rssMiB().toFixed(0)} MiB (the model's worker process not included).`,
);

// ---- worker kills under load ----
const workerPid = async (): Promise<number> => {
  const ready = (await (await fetch(`${base}/health/ready`, { headers: auth })).json()) as { models: Record<string, { pid?: number }> };
  return ready.models["kjv"]?.pid ?? 0;
};
let hung = 0;
let killed = 0;
const outcomes = new Map<number, number>();
for (let k = 0; k < KILLS; k++) {
  const pid = await workerPid();
  const load = Array.from({ length: 6 }, () =>
    Promise.race([
      post("/v1/completions", { model: "kjv", prompt: "And God said", max_tokens: 64, temperature: 0 }).catch(() => -1),
      new Promise<number>((r) => setTimeout(() => r(0), 60_000)),
    ]),
  );
  await new Promise((r) => setTimeout(r, 50));
  if (pid > 0) {
    try {
      process.kill(pid, "SIGKILL");
      killed++;
    } catch {
      // already gone
    }
  }
  for (const status of await Promise.all(load)) {
    outcomes.set(status, (outcomes.get(status) ?? 0) + 1);
    hung += status === 0 ? 1 : 0;
  }
  for (let i = 0; i < 200 && (await workerPid()) === pid; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
}
const ready = (await (await fetch(`${base}/health/ready`, { headers: auth })).json()) as { status: string };
say(
  `\n## Worker kills\n\n${killed} SIGKILLs to the model's process, 6 requests in flight each: **${hung} hung** (no answer in 60 s); answers ${[...outcomes].map(([s, n]) => `${n}× ${s}`).join(", ")}; readiness after: ${ready.status}.`,
);

child.send("stop");
await new Promise((resolve) => child.once("exit", resolve));
process.stdout.write(`${lines.join("\n")}\n`);
}
