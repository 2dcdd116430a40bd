/**
 * `barbell dump` writes a model's per-layer activations as BAREWire frames; `barbell diff` compares two
 * dumps layer by layer and names the first tensor where they diverge. Together they find where two
 * backends (or barbell and another engine, through a converter) stop agreeing.
 *
 * A dump directory holds `manifest.bw` (a DumpManifest frame) and one TensorFrame per entry, `<i>.bw`.
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { CommanderError, InvalidArgumentError } from "commander";
import type { BackendName } from "../backends/backend.js";
import { backendList, tokenIds } from "./args.js";
import { checkModel, contextFlag, threadsFlag } from "./flags.js";
import { readRegularFile } from "../core/files.js";
import { FileError, FormatError } from "../core/errors.js";
import { loadModel } from "../engine/model.js";
import { isHostBuffer } from "../backends/host-memory.js";
import type { Tensor } from "../tensor/tensor.js";
import {
  FLAGS,
  decodeMessage,
  encodeManifest,
  encodeTensorFrame,
  viewPayload,
  wireTensorOf,
  type DumpManifest,
  type WireTensor,
} from "../formats/barewire/index.js";
import type { CliIo } from "./run.js";

/** File name of a dump's manifest. */
export const MANIFEST_FILE = "manifest.bw";

/** Default relative L2 error above which diff calls a tensor divergent. */
export const DEFAULT_TOLERANCE = 1e-3;

/** Largest dump file diff reads (the frame limit) — stops a hostile dump from exhausting memory. */
const MAX_DUMP_FILE_BYTES = 2 ** 30;

/** Options of {@link dumpActivations}. */
export interface DumpOptions {
  readonly backends?: readonly BackendName[];
  readonly contextLength?: number;
  readonly allowFloatWeights?: boolean;
  readonly threads?: number;
  readonly strict?: boolean;
}

/** Runs `tokens` through the model and writes every traced activation as a frame; returns the manifest. */
export async function dumpActivations(
  modelPath: string,
  tokens: readonly number[],
  outDir: string,
  options: DumpOptions = {},
): Promise<DumpManifest> {
  using model = await loadModel(modelPath, {
    ...(options.backends === undefined ? {} : { backends: options.backends }),
    ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
    ...(options.allowFloatWeights === true ? { allowFloatWeights: true } : {}),
    ...(options.threads === undefined ? {} : { threads: options.threads }),
    ...(options.strict === true ? { strict: true } : {}),
    autotune: false,
  });
  const frames: Promise<Uint8Array>[] = [];
  const entries: string[] = [];
  await model.trace(tokens, (name, t) => {
    entries.push(name);
    frames.push(traceFrame(name, t));
  });
  // A device's reads were queued in trace order; awaiting them all also surfaces a kernel's data error.
  const encoded = await Promise.all(frames);
  const manifest: DumpManifest = { model: path.basename(modelPath), backend: model.backend, tokens, entries };
  await fs.mkdir(outDir, { recursive: true });
  await Promise.all(encoded.map((f, i) => fs.writeFile(path.join(outDir, `${i}.bw`), f)));
  await fs.writeFile(path.join(outDir, MANIFEST_FILE), encodeManifest(manifest));
  return manifest;
}

/**
 * One traced activation as a frame. The tensor is disposed when the trace callback returns: a host tensor is
 * encoded now (its bytes are viewed in place); a device tensor's readback is queued now, behind the kernels that
 * wrote it and before any later reuse of its buffer (a device read is asynchronous: `Backend.read` throws).
 */
function traceFrame(name: string, t: Tensor): Promise<Uint8Array> {
  const buffer = t.ref().buffer;
  if (isHostBuffer(buffer)) {
    return Promise.resolve(encodeTensorFrame(wireTensorOf(t, name, FLAGS.activation)));
  }
  // wireTensorOf's fields, with the payload read back asynchronously.
  const dims = t.dims.map((n, i) => ({ name: n, size: t.shape[i] ?? 0 }));
  const scales = t.dtype === "ternary" || t.dtype === "binary" ? [t.scale ?? 1] : [];
  const { dtype } = t;
  return t.backend.readAsync(buffer).then((payload) => encodeTensorFrame({ name, dtype, dims, scales, flags: FLAGS.activation, payload }));
}

async function readFrame(file: string): Promise<Uint8Array> {
  return readRegularFile(file, MAX_DUMP_FILE_BYTES, "[dump] frame");
}

/** Reads a dump's manifest. Throws FormatError when it is not a valid manifest frame. */
export async function readManifest(dir: string): Promise<DumpManifest> {
  let bytes: Uint8Array;
  try {
    bytes = await readFrame(path.join(dir, MANIFEST_FILE));
  } catch (error) {
    if (error instanceof FileError && error.code === "missing") {
      throw new FileError("missing", `[dump] ${dir} is not a dump folder (no ${MANIFEST_FILE}); write one with barbell dump -m <model> --tokens <ids> --out ${dir}`);
    }
    throw error;
  }
  const m = decodeMessage(bytes);
  if (!m.ok) {
    throw m.error;
  }
  if (m.value.kind !== "dump-manifest") {
    throw new FormatError("bad-tag", `[dump] ${dir}/${MANIFEST_FILE} holds a ${m.value.kind} message`);
  }
  return m.value.manifest;
}

/** Reads entry i of a dump. Throws FormatError for a bad frame or one whose name is not the manifest's. */
export async function readEntry(dir: string, manifest: DumpManifest, i: number): Promise<WireTensor> {
  const m = decodeMessage(await readFrame(path.join(dir, `${i}.bw`)));
  if (!m.ok) {
    throw m.error;
  }
  if (m.value.kind !== "tensor" || m.value.tensor.name !== manifest.entries[i]) {
    throw new FormatError("bad-value", `[dump] ${dir}/${i}.bw is not the tensor ${manifest.entries[i] ?? "?"}`);
  }
  return m.value.tensor;
}

/** How one traced tensor compares between two dumps. */
export interface EntryDiff {
  readonly name: string;
  /** False when dtype, dimension names or sizes differ; the norms are then absent. */
  readonly comparable: boolean;
  readonly maxAbs?: number;
  /** Root-mean-square of a − b. */
  readonly rms?: number;
  /** ‖a − b‖₂ / ‖a‖₂ (or ‖a − b‖₂ when a is all zeros). */
  readonly relL2?: number;
  readonly diverged: boolean;
  readonly note?: string;
}

/** The comparison of two dumps. */
export interface DiffReport {
  readonly a: DumpManifest;
  readonly b: DumpManifest;
  readonly tolerance: number;
  readonly entries: readonly EntryDiff[];
  /** The first entry (in forward order) that diverged, if any. */
  readonly firstDivergence: EntryDiff | undefined;
  /** Entry names in only one of the dumps. */
  readonly onlyInA: readonly string[];
  readonly onlyInB: readonly string[];
}

function values(t: WireTensor): Float32Array | undefined {
  if (t.dtype === "f32") {
    return viewPayload("f32", t.payload).array;
  }
  if (t.dtype === "i32") {
    return Float32Array.from(viewPayload("i32", t.payload).array);
  }
  return undefined;
}

/** Compares two tensors element by element. */
export function compareTensors(a: WireTensor, b: WireTensor, tolerance: number): EntryDiff {
  const sig = (t: WireTensor): string => `${t.dtype} [${t.dims.map((d) => `${d.name}=${d.size}`).join(", ")}]`;
  if (sig(a) !== sig(b)) {
    return { name: a.name, comparable: false, diverged: true, note: `${sig(a)} vs ${sig(b)}` };
  }
  const va = values(a);
  const vb = values(b);
  if (va === undefined || vb === undefined) {
    const same = Buffer.compare(a.payload, b.payload) === 0;
    return { name: a.name, comparable: false, diverged: !same, note: `${a.dtype} compared byte for byte` };
  }
  let maxAbs = 0;
  let sq = 0;
  let ref = 0;
  for (let i = 0; i < va.length; i++) {
    const x = va[i] ?? 0;
    const d = x - (vb[i] ?? 0);
    const ad = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.abs(d);
    maxAbs = Math.max(maxAbs, ad);
    sq += d * d;
    ref += x * x;
  }
  const rms = Math.sqrt(sq / Math.max(1, va.length));
  const relL2 = ref > 0 ? Math.sqrt(sq / ref) : Math.sqrt(sq);
  const diverged = !(relL2 <= tolerance);
  return { name: a.name, comparable: true, maxAbs, rms, relL2, diverged };
}

/** Compares two dumps entry by entry, by name, in the forward order of the first one. */
export async function diffDumps(dirA: string, dirB: string, tolerance = DEFAULT_TOLERANCE): Promise<DiffReport> {
  const a = await readManifest(dirA);
  const b = await readManifest(dirB);
  const indexB = new Map(b.entries.map((name, i) => [name, i]));
  const entries: EntryDiff[] = [];
  for (const [i, name] of a.entries.entries()) {
    const j = indexB.get(name);
    if (j === undefined) {
      continue;
    }
    entries.push(compareTensors(await readEntry(dirA, a, i), await readEntry(dirB, b, j), tolerance));
  }
  const inA = new Set(a.entries);
  return {
    a,
    b,
    tolerance,
    entries,
    firstDivergence: entries.find((e) => e.diverged),
    onlyInA: a.entries.filter((n) => !indexB.has(n)),
    onlyInB: b.entries.filter((n) => !inA.has(n)),
  };
}

function fmt(x: number | undefined): string {
  return x === undefined ? "-" : x.toExponential(3);
}

/** The report as text: one line per entry, then the verdict. */
export function formatDiff(r: DiffReport): string[] {
  const lines = [
    `a: ${r.a.model} on ${r.a.backend}, b: ${r.b.model} on ${r.b.backend}, ${r.a.tokens.length} tokens`,
    "tensor                     max|a-b|    rms(a-b)    rel L2",
  ];
  for (const e of r.entries) {
    const mark = e.diverged ? "  <- diverges" : "";
    const note = e.note === undefined ? "" : `  (${e.note})`;
    lines.push(`${e.name.padEnd(26)} ${fmt(e.maxAbs).padStart(10)}  ${fmt(e.rms).padStart(10)}  ${fmt(e.relL2).padStart(10)}${mark}${note}`);
  }
  if (r.a.tokens.join(",") !== r.b.tokens.join(",")) {
    lines.push("warning: the dumps ran different tokens");
  }
  for (const n of r.onlyInA) {
    lines.push(`only in a: ${n}`);
  }
  for (const n of r.onlyInB) {
    lines.push(`only in b: ${n}`);
  }
  const f = r.firstDivergence;
  lines.push(
    f === undefined
      ? `no divergence: every tensor within rel L2 ${r.tolerance}`
      : `first divergence: ${f.name} (rel L2 ${fmt(f.relL2)}, max|a-b| ${fmt(f.maxAbs)}${f.note === undefined ? "" : `, ${f.note}`})`,
  );
  return lines;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a number > 0, got '${value}'`);
  }
  return n;
}

/** Registers `barbell dump` and `barbell diff`. */
export function addDumpCommands(program: Command, io: CliIo): void {
  program
    .command("dump")
    .description("run tokens through a model and write per-layer activations as BAREWire frames")
    .requiredOption("-m, --model <path>", "a BitNet .gguf file or Hugging Face model folder (required)")
    .requiredOption("--tokens <ids>", "comma-separated token ids (required)", tokenIds)
    .requiredOption("--out <dir>", "output directory (required)")
    .option("--backend <list>", "backends to use, preferred first (e.g. native-cpu,js) (default: BARBELL_BACKENDS, else every one that works here)", backendList)
    .addOption(contextFlag())
    .addOption(threadsFlag())
    .option("--strict", "make any kernel fallback to a later backend an error (default: fall back)")
    .option("--allow-float-weights", "run projections that are not ternary as float matmuls (default: refuse them)")
    .action(
      async (o: {
        model: string;
        tokens: number[];
        out: string;
        backend?: BackendName[];
        ctx?: number;
        threads?: number;
        strict?: boolean;
        allowFloatWeights?: boolean;
      }) => {
        await checkModel(o.model, o.ctx);
        const m = await dumpActivations(o.model, o.tokens, o.out, {
          ...(o.backend === undefined ? {} : { backends: o.backend }),
          ...(o.ctx === undefined ? {} : { contextLength: o.ctx }),
          ...(o.threads === undefined ? {} : { threads: o.threads }),
          ...(o.strict === true ? { strict: true } : {}),
          ...(o.allowFloatWeights === true ? { allowFloatWeights: true } : {}),
        });
        io.out(`wrote ${m.entries.length} tensors from ${m.backend} to ${o.out}\n`);
      },
    );

  program
    .command("diff")
    .description("compare two dumps layer by layer and name the first tensor that diverges")
    .argument("<a>", "a dump directory")
    .argument("<b>", "another dump directory")
    .option("--tolerance <x>", "relative L2 error that counts as divergence", positiveNumber, DEFAULT_TOLERANCE)
    .option("--json", "print the report as JSON (default: text)")
    .action(async (a: string, b: string, o: { tolerance: number; json?: boolean }) => {
      const report = await diffDumps(a, b, o.tolerance);
      if (o.json === true) {
        io.out(`${JSON.stringify(report)}\n`);
      } else {
        io.out(`${formatDiff(report).join("\n")}\n`);
      }
      // Like diff(1): status 1 when the dumps differ (a divergence, or tensors in only one of them).
      if (report.firstDivergence !== undefined || report.onlyInA.length > 0 || report.onlyInB.length > 0) {
        throw new CommanderError(1, "barbell.diverged", "the dumps diverge");
      }
    });
}
