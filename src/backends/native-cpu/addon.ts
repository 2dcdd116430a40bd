/**
 * Finding, probing and loading `build/Release/barbell_native.node` (built by scripts/build-native.mjs).
 *
 * The addon is first loaded in a child process (`spawnSync(process.execPath, …)`) that reads its CPU
 * features and runs its self test on the chosen ISA path: an illegal instruction or a crash there kills
 * the child, not the user's process. Only after that succeeds is it loaded in-process. Both results are
 * cached per process.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Probe } from "../backend.js";
import { setLoadCodecs, type LoadCodecs } from "../../quant/load-codecs.js";
import { OP_TABLE_HASH } from "../ops.js";

/** What the addon reports about the CPU. */
export interface NativeFeatures {
  /** Best ISA path this CPU and OS support: "avx512vnni", "avx512bw", "avx2", "neon" or "scalar". */
  readonly best: string;
  /** CPUID flags seen, plus "os-ymm" / "os-zmm" when XGETBV says the OS saves that state. */
  readonly flags: readonly string[];
  readonly physicalCores: number;
  readonly logicalCores: number;
}

/** A thread pool bound to one ISA path; one method per kernel (sizes checked again in C++). */
export interface NativeContext {
  readonly isa: string;
  readonly threads: number;
  ternary(
    x: Int8Array,
    xScale: Float32Array,
    w: Uint8Array,
    gamma: number,
    m: number,
    k: number,
    n: number,
    out: Float32Array,
  ): void;
  binaryI8(
    x: Int8Array,
    xScale: Float32Array,
    w: Uint32Array,
    beta: number,
    m: number,
    k: number,
    n: number,
    out: Float32Array,
  ): void;
  binaryBinary(x: Uint32Array, w: Uint32Array, m: number, k: number, n: number, out: Int32Array): void;
  dense(x: Float32Array, w: Float32Array | Uint16Array, m: number, k: number, n: number, out: Float32Array): void;
  /** Q8_0 weights: n rows of k / 32 blocks of 34 bytes (k a multiple of 32). */
  denseQ8(x: Float32Array, w: Uint8Array, m: number, k: number, n: number, out: Float32Array): void;
  /**
   * The fused BitNet block (native/cpu/block.cc). dims: seq, embed, heads, kvHeads, headDim, ffn, pos0,
   * capacity; params: eps, theta, attnScale, relu2 (1/0). Returns −1, or the stage (0–3) whose
   * activations were not finite.
   */
  block(
    h: Float32Array,
    out: Float32Array,
    positions: Int32Array,
    kCache: Float32Array | Uint8Array,
    vCache: Float32Array | Uint8Array,
    norms: readonly Float32Array[],
    weights: readonly Uint8Array[],
    gammas: Float64Array,
    dims: Float64Array,
    params: Float64Array,
    kCaches?: readonly (Float32Array | Uint8Array)[],
    vCaches?: readonly (Float32Array | Uint8Array)[],
  ): number;
  /** The integer Q8_0 head (matmulQ8I8); returns −1, or the index of the first non-finite x (nothing written). */
  q8i8(x: Float32Array, w: Uint8Array, m: number, k: number, n: number, out: Float32Array): number;
  /** Returns −1, or the index of the first non-finite input (nothing written). */
  quantize(x: Float32Array, m: number, k: number, q: Int8Array, scales: Float32Array): number;
  /**
   * out[m, n] = x[m, k] · decode(w)[n, k]ᵀ for rows of a block format (0: Q8_0, 1: Q6_K, 2: Q4_K, 3: Q5_K; k a
   * multiple of its block; native/cpu/kquant.h).
   */
  denseBlocks(format: number, x: Float32Array, w: Uint8Array, m: number, k: number, n: number, out: Float32Array): void;
  /**
   * With `integer` true (Q6_K, Q4_K, Q5_K only): the integer k-quant head (matmulQ8I8; exact semantics in
   * src/backends/js/kernels/kquant-head.ts); returns −1, or the index of the first non-finite x (nothing written).
   */
  denseBlocks(format: number, x: Float32Array, w: Uint8Array, m: number, k: number, n: number, out: Float32Array, integer: true): number;
  /**
   * Embedding rows of a block format (codes as denseBlocks; embed a multiple of its block); returns −1, or the
   * position of the first id outside the vocabulary.
   */
  embeddingBlocks(format: number, ids: Int32Array, seq: number, table: Uint8Array, vocab: number, embed: number, out: Float32Array): number;
  /** Returns −1, or the position of the first id outside the vocabulary. */
  embedding(
    ids: Int32Array,
    seq: number,
    table: Float32Array | Uint16Array,
    vocab: number,
    embed: number,
    out: Float32Array,
  ): number;
  rmsNorm(
    x: Float32Array,
    weight: Float32Array | null,
    rows: number,
    cols: number,
    eps: number,
    out: Float32Array,
  ): void;
  rope(
    x: Float32Array,
    seq: number,
    heads: number,
    headDim: number,
    pos: Int32Array,
    theta: number,
    neox: boolean,
    out: Float32Array,
  ): void;
  softmax(x: Float32Array, rows: number, cols: number, out: Float32Array): void;
  /** k and v: Float32Arrays (kvType 0, the default) or the bytes of f16 (1) / q8_0 (2) cache rows. */
  attention(
    q: Float32Array,
    k: Float32Array | Uint8Array,
    v: Float32Array | Uint8Array,
    seqQ: number,
    seqKV: number,
    nHead: number,
    nKvHead: number,
    headDim: number,
    pos0: number,
    scale: number,
    out: Float32Array,
    kvType?: number,
  ): void;
  unary(op: number, x: Float32Array, n: number, out: Float32Array): void;
  binary(
    op: number,
    a: Float32Array,
    aStrides: Float64Array,
    b: Float32Array,
    bStrides: Float64Array,
    shape: Float64Array,
    out: Float32Array,
  ): void;
  /** binary on n contiguous elements of a and b (same op codes). */
  binaryFlat(op: number, a: Float32Array, b: Float32Array, n: number, out: Float32Array): void;
  scale(x: Float32Array, factor: number, n: number, out: Float32Array): void;
  /** Sums `words` 64-bit words of `data` over the pool (a read-bandwidth probe); returns the sum. */
  readSum(data: Uint8Array, words: number): number;
  /**
   * Every block of a layer stack (native/cpu/layers.cc), layer after layer; dims: seq, pos0, capacity, batch
   * (0: one sequence, kCaches[l] layer l's; B: kCaches[l·B + b] layer l's cache of row b). Returns −1, or
   * 4·layer + the stage (as `block`) whose activations were not finite. Caches: Float32Arrays, or the bytes of
   * f16 / q8_0 rows (the kv type the stack was captured with). Absent in builds before it.
   */
  layers?(
    stack: NativeLayerStack,
    h: Float32Array,
    out: Float32Array,
    positions: Int32Array,
    kCaches: readonly (Float32Array | Uint8Array)[],
    vCaches: readonly (Float32Array | Uint8Array)[],
    dims: Float64Array,
  ): number;
  /** Joins the pool's threads; safe to call twice. Kernel calls afterwards throw. */
  dispose(): void;
}

/** An opaque handle of native/cpu/layers.cc: each layer's `block` arguments, parsed once. */
export type NativeLayerStack = { readonly __nativeLayerStack: unique symbol };

/** The addon's exports. */
export interface NativeAddon {
  features(): NativeFeatures;
  /** Runs the integer kernels of an ISA path on a small problem against the scalar path. */
  selfTest(isa?: string): boolean;
  readonly Context: new (threads: number, isa: string) => NativeContext;
  /** The op table fingerprint the addon was built from (native/cpu/ops.generated.h). */
  readonly opTableHash?: number;
  /** The unary / binary op codes it implements (the cases of native/cpu/elementwise.h). */
  readonly unaryOps?: readonly number[];
  readonly binaryOps?: readonly number[];
  /** Load-time transcoders (native/cpu/load.cc; src/quant/load-codecs.ts documents them). */
  readonly transcodeTernary?: LoadCodecs["transcodeTernary"];
  readonly encodeQ8_0?: LoadCodecs["encodeQ8_0"];
  readonly encodeQ6_K?: LoadCodecs["encodeQ6_K"];
  readonly mapRange?: LoadCodecs["mapRange"];
  readonly releaseRange?: LoadCodecs["releaseRange"];
  readonly firstCode3?: LoadCodecs["firstCode3"];
  readonly mapFile?: LoadCodecs["mapFile"];
  readonly copyMapped?: LoadCodecs["copyMapped"];
  readonly transcodeMapped?: LoadCodecs["transcodeMapped"];
  readonly releaseMapped?: LoadCodecs["releaseMapped"];
  /**
   * Prepares a layer stack: calls `capture(l)` for each layer, which must call a Context's `block` once with
   * that layer's weights (its arguments are kept instead of run). Absent in builds before layers.cc.
   */
  readonly layerStack?: (count: number, capture: (layer: number) => void) => NativeLayerStack;
  /** Drops a stack's arguments; its later use throws. Idempotent. */
  readonly layerStackDispose?: (stack: NativeLayerStack) => void;
}

/** ISA path names accepted by BARBELL_NATIVE_ISA ("avx512" = the best AVX-512 level). */
export const NATIVE_ISAS = ["scalar", "avx2", "avx512bw", "avx512vnni", "avx512", "neon"] as const;

/**
 * Path of the addon. This file sits at src/backends/native-cpu (or dist/backends/native-cpu once compiled),
 * three levels below the package root in both cases. BARBELL_NATIVE_PATH overrides it.
 */
export function addonPath(): string {
  const fromEnv = process.env.BARBELL_NATIVE_PATH;
  if (fromEnv !== undefined && fromEnv !== "") {
    return resolve(fromEnv);
  }
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
  return join(root, "build", "Release", "barbell_native.node");
}

function notBuiltReason(path: string): string {
  const errorFile = join(dirname(dirname(path)), "native-build-error.txt");
  if (existsSync(errorFile)) {
    const first = readFileSync(errorFile, "utf8").split("\n")[0] ?? "";
    return `barbell_native.node was not built: ${first}`;
  }
  return `barbell_native.node was not built (run "node scripts/build-native.mjs"; expected at ${path})`;
}

/** The child's script: load, report features, run the self test on the ISA path that will be used. */
const CHILD_SCRIPT = [
  "const addon = require(process.argv[1]);",
  "const features = addon.features();",
  "if (!addon.selfTest(process.argv[2])) { process.stderr.write('self test failed'); process.exit(3); }",
  "process.stdout.write(JSON.stringify(features));",
].join("\n");

function firstLine(text: string): string {
  return (
    text
      .split("\n")
      .map((l) => l.trim())
      .find((l) => l !== "") ?? ""
  );
}

let probed: Probe | undefined;
let loaded: NativeAddon | undefined;

/** The ISA path requested by BARBELL_NATIVE_ISA ("" = best). */
export function requestedIsa(): string {
  return process.env.BARBELL_NATIVE_ISA ?? "";
}

function probeNow(): Probe {
  const path = addonPath();
  if (!existsSync(path)) {
    return { available: false, reason: notBuiltReason(path) };
  }
  const isa = requestedIsa();
  if (isa !== "" && !(NATIVE_ISAS as readonly string[]).includes(isa)) {
    return { available: false, reason: `BARBELL_NATIVE_ISA=${isa} is not one of ${NATIVE_ISAS.join(", ")}` };
  }
  const child = spawnSync(process.execPath, ["-e", CHILD_SCRIPT, path, isa], { encoding: "utf8", timeout: 30_000 });
  if (child.error !== undefined) {
    return { available: false, reason: `barbell_native.node probe could not run: ${child.error.message}` };
  }
  if (child.status !== 0) {
    const how = child.signal !== null ? `was killed by ${child.signal}` : `exited with ${child.status}`;
    const detail = firstLine(child.stderr);
    return { available: false, reason: `barbell_native.node probe ${how}${detail === "" ? "" : `: ${detail}`}` };
  }
  let features: NativeFeatures;
  try {
    features = JSON.parse(child.stdout) as NativeFeatures;
  } catch {
    return { available: false, reason: `barbell_native.node probe printed no features: ${firstLine(child.stdout)}` };
  }
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (error) {
    return {
      available: false,
      reason: `barbell_native.node failed to load: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
  if (addon.opTableHash !== OP_TABLE_HASH) {
    const built = addon.opTableHash === undefined ? "an older op table" : `op table ${addon.opTableHash.toString(16)}`;
    return {
      available: false,
      reason: `barbell_native.node was built from ${built}, not ${OP_TABLE_HASH.toString(16)} (run "node scripts/build-native.mjs")`,
    };
  }
  if (!Array.isArray(addon.unaryOps) || !Array.isArray(addon.binaryOps)) {
    return {
      available: false,
      reason: `barbell_native.node predates per-op capabilities (no unaryOps / binaryOps; run "node scripts/build-native.mjs")`,
    };
  }
  loaded = addon;
  if (addon.transcodeTernary !== undefined && addon.encodeQ8_0 !== undefined) {
    const { transcodeTernary, encodeQ8_0, encodeQ6_K, firstCode3, mapRange, releaseRange, mapFile, copyMapped, transcodeMapped, releaseMapped } = addon;
    setLoadCodecs({
      transcodeTernary,
      encodeQ8_0,
      ...(encodeQ6_K === undefined ? {} : { encodeQ6_K }),
      ...(firstCode3 === undefined ? {} : { firstCode3 }),
      ...(mapRange === undefined ? {} : { mapRange }),
      ...(releaseRange === undefined ? {} : { releaseRange }),
      ...(mapFile === undefined || copyMapped === undefined || transcodeMapped === undefined || releaseMapped === undefined
        ? {}
        : { mapFile, copyMapped, transcodeMapped, releaseMapped }),
    });
  }
  const score = { avx512vnni: 50, avx512bw: 40, avx2: 30, neon: 30, scalar: 5 }[features.best] ?? 5;
  return { available: true, score, features: [features.best, ...features.flags, `cores:${features.physicalCores}`] };
}

/** Probes once per process: child-process check, then in-process load. Never throws. */
export function probeNativeCpu(): Probe {
  probed ??= probeNow();
  return probed;
}

/** The loaded addon, after a successful probe; undefined otherwise. */
export function nativeAddon(): NativeAddon | undefined {
  return probeNativeCpu().available ? loaded : undefined;
}
