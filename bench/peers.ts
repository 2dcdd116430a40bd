/**
 * The in-repo peer of `npm run bench`: node-llama-cpp (npm, prebuilt upstream llama.cpp) and barbell on the
 * same TQ2_0 files (arch `bitnet`, which mainline llama.cpp runs), pp512 and tg128 from fresh processes, so
 * every bench run carries a peer row. The side-by-side run with llama.cpp and bitnet.cpp built from source
 * (../shared/peers) stays the reference for speed claims; this row is the everyday check.
 *
 * node-llama-cpp is large (~85 MB with its CPU binaries) and is not a dependency of the project: it is
 * installed once into bench/.peers (gitignored) with npm, without its GPU variants (`--omit=optional`, then
 * the linux-x64 CPU binaries by name). `--no-peers` skips the row.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { makeBitnetFixture } from "../src/model/bitnet/fixture.js";
import { SHAPES } from "../scripts/shapes.js";

const here = path.dirname(fileURLToPath(import.meta.url));
/** The node-llama-cpp version the peer row runs (its prebuilt binaries carry the llama.cpp release named in its package). */
export const NODE_LLAMA_CPP_VERSION = "3.22.1";
const PEERS_DIR = path.join(here, ".peers");

interface PeerRun {
  promptTokens: number;
  prefillMs: number;
  decodeTokens: number;
  decodeMs: number;
}

/** The installed node-llama-cpp folder (installing it once), or a reason it is not there. */
function nodeLlamaCpp(): { dir: string; llamaCpp: string } | { missing: string } {
  const dir = path.join(PEERS_DIR, "node_modules", "node-llama-cpp");
  if (!fs.existsSync(path.join(dir, "package.json"))) {
    process.stderr.write(`bench: installing node-llama-cpp ${NODE_LLAMA_CPP_VERSION} into bench/.peers (once)…\n`);
    fs.mkdirSync(PEERS_DIR, { recursive: true });
    fs.writeFileSync(path.join(PEERS_DIR, "package.json"), `${JSON.stringify({ name: "barbell-bench-peers", private: true }, null, 2)}\n`);
    try {
      const pkgs = [`node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`, `@node-llama-cpp/linux-x64@${NODE_LLAMA_CPP_VERSION}`];
      execFileSync("npm", ["install", "--no-audit", "--no-fund", "--omit=optional", "--ignore-scripts", ...pkgs], { cwd: PEERS_DIR, stdio: ["ignore", "ignore", "inherit"] });
    } catch {
      return { missing: "npm could not install node-llama-cpp (offline?)" };
    }
  }
  let llamaCpp = "unknown";
  try {
    const info = JSON.parse(fs.readFileSync(path.join(dir, "llama", "llama.cpp.info.json"), "utf8")) as { tag?: string };
    llamaCpp = info.tag ?? llamaCpp;
  } catch {
    // an older layout: the version stays unknown, said so in the table
  }
  return { dir, llamaCpp };
}

/** A TQ2_0 model of a shape under arch `bitnet` (the 2B dimensions too: llama.cpp knows no `bitnet-b1.58`). */
function tq2File(shape: "700m" | "2b"): string {
  const dir = path.join(here, ".models");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `bitnet-${shape}-tq2_0.gguf`);
  if (!fs.existsSync(file)) {
    process.stderr.write(`bench: generating the ${shape} TQ2_0 model (once; cached in bench/.models)…\n`);
    fs.writeFileSync(file, makeBitnetFixture({ ...SHAPES[shape], arch: "bitnet", weightType: "tq2_0", seed: 1 }));
  }
  return file;
}

function child(dir: string, file: string, threads: number, prompt: number, decode: number): PeerRun {
  const out = execFileSync(process.execPath, [path.join(here, "node-llama-cpp-child.mjs"), dir, file, String(threads), String(prompt), String(decode)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as PeerRun;
}

export interface PeerBenchOptions {
  readonly quick: boolean;
  readonly reps: number;
  readonly threadCounts: readonly number[];
  /** barbell's own measure (bench/run.ts's e2e): a fresh process on the built library. */
  readonly barbell: (file: string, threads: number, prompt: number, decode: number) => PeerRun & { backend: string };
  readonly median: (xs: number[]) => number;
  readonly spread: (xs: number[]) => string;
}

/** The peer table's Markdown lines. */
export function peerBench(o: PeerBenchOptions): string[] {
  const peer = nodeLlamaCpp();
  const lines = ["## In-repo peer: node-llama-cpp on the same TQ2_0 files", ""];
  if ("missing" in peer) {
    return [...lines, `Not measured: ${peer.missing}.`];
  }
  lines.push(
    `node-llama-cpp ${NODE_LLAMA_CPP_VERSION} (prebuilt llama.cpp ${peer.llamaCpp}, CPU binaries chosen by its runtime CPU`,
    "detection, not -march=native) and barbell on one generated file per shape (TQ2_0 projections, F16 embedding/head,",
    "arch `bitnet`), each run a fresh process; pp = a 512-token prompt from an empty context, tg = 128 one-token steps",
    "after a one-token prompt, greedy. Ratio = barbell / node-llama-cpp (medians).",
    "",
    "| model | threads | node-llama-cpp pp t/s | barbell pp t/s | pp ratio | node-llama-cpp tg t/s | barbell tg t/s | tg ratio |",
    "|---|---|---|---|---|---|---|---|",
  );
  const shapes: ("700m" | "2b")[] = o.quick ? ["700m"] : ["700m", "2b"];
  const [prompt, decode] = o.quick ? [64, 32] : [512, 128];
  for (const shape of shapes) {
    const file = tq2File(shape);
    for (const threads of o.threadCounts) {
      const peerRuns: PeerRun[] = [];
      const ownPrompt: PeerRun[] = [];
      const ownDecode: PeerRun[] = [];
      // Interleaved, so drift on a shared machine touches both engines alike. The peer's child times both
      // tests in one process; barbell's e2e child times a prompt run and a decode-from-one-token run.
      for (let r = 0; r < o.reps; r++) {
        peerRuns.push(child(peer.dir, file, threads, prompt, decode));
        ownPrompt.push(o.barbell(file, threads, prompt, decode));
        ownDecode.push(o.barbell(file, threads, 1, decode));
      }
      const pp = (runs: PeerRun[]): number[] => runs.map((r) => r.promptTokens / (r.prefillMs / 1000));
      const tg = (runs: PeerRun[]): number[] => runs.map((r) => r.decodeTokens / (r.decodeMs / 1000));
      const [pPeer, pOwn, tPeer, tOwn] = [pp(peerRuns), pp(ownPrompt), tg(peerRuns), tg(ownDecode)];
      const ratio = (a: number[], b: number[]): string => (o.median(a) / o.median(b)).toFixed(2);
      lines.push(
        `| ${shape} | ${threads} | ${o.median(pPeer).toFixed(1)}${o.spread(pPeer)} | ${o.median(pOwn).toFixed(1)}${o.spread(pOwn)} | ${ratio(pOwn, pPeer)} | ` +
          `${o.median(tPeer).toFixed(2)}${o.spread(tPeer)} | ${o.median(tOwn).toFixed(2)}${o.spread(tOwn)} | ${ratio(tOwn, tPeer)} |`,
      );
    }
  }
  return lines;
}
