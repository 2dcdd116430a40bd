/**
 * QAT checkpoints: a safetensors file (src/formats/safetensors) holding everything a run needs to continue
 * bit for bit: the latent f32 weights (`param.<name>`), the Adam moments (`adam_m.<name>`, `adam_v.<name>`),
 * and in `__metadata__` the format tag and version, the model config and the training options (JSON), the
 * step, the data-order PRNG state, and a SHA-256 over all of that and every tensor's bytes.
 *
 * Loading refuses anything else with a `CheckpointError`: `corrupt` (not safetensors, checksum mismatch,
 * wrong or missing tensors, bad numbers), `unsupported` (another format or version), `mismatch` (a config or
 * options other than the ones the caller expects). Tensors are only allocated after the tensor list matched
 * the config, so a hostile header cannot make the loader reserve more than the file holds.
 */
import { createHash } from "node:crypto";
import { BarbellError } from "../core/errors.js";
import {
  openSafetensors,
  readSafetensorsBytes,
  writeSafetensors,
  writeSafetensorsFile,
  type SafetensorsFile,
  type SafetensorsTensorInput,
} from "../formats/safetensors/index.js";
import { checkQatConfig, paramLayout, type Param, type QatConfig } from "./model.js";
import type { TrainOptions, TrainState } from "./qat.js";

export type CheckpointErrorCode = "corrupt" | "unsupported" | "mismatch";

/** A checkpoint that cannot be resumed from. */
export class CheckpointError extends BarbellError {
  constructor(
    readonly code: CheckpointErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "CheckpointError";
  }
}

export const CHECKPOINT_FORMAT = "barbell.qat-checkpoint";
export const CHECKPOINT_VERSION = "1";
/** Most transformer blocks a checkpoint's config may claim (checked before any name list is built). */
export const MAX_CHECKPOINT_LAYERS = 1024;

const CONFIG_KEYS = [
  "vocabSize",
  "hidden",
  "layers",
  "heads",
  "kvHeads",
  "ffn",
  "rmsEps",
  "ropeTheta",
  "activation",
  "tied",
] as const satisfies readonly (keyof QatConfig)[];
const OPTION_KEYS = [
  "totalSteps",
  "warmupSteps",
  "peakLr",
  "minLr",
  "weightDecay",
  "beta1",
  "beta2",
  "eps",
  "clipNorm",
  "batchSize",
  "seqLen",
] as const satisfies readonly (keyof TrainOptions)[];

/** Every key of T is listed: a field added to the type and not to its key list fails to compile here. */
type Unlisted<T, Listed> = Exclude<keyof T, Listed>;
const listsComplete: [Unlisted<QatConfig, (typeof CONFIG_KEYS)[number]>, Unlisted<TrainOptions, (typeof OPTION_KEYS)[number]>] extends [never, never]
  ? true
  : false = true;
void listsComplete;

/** JSON with the keys in a fixed order (the checksum and the comparisons read this text). */
function canonical(o: object, keys: readonly string[]): string {
  const record = o as Record<string, unknown>;
  return JSON.stringify(Object.fromEntries(keys.map((k) => [k, record[k]])));
}

function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function digest(meta: readonly [string, string][], tensors: readonly { name: string; data: Uint8Array }[]): string {
  const h = createHash("sha256");
  for (const [k, v] of meta) {
    h.update(`${k}=${v}\n`);
  }
  for (const t of tensors) {
    h.update(`${t.name}\n`);
    h.update(t.data);
  }
  return h.digest("hex");
}

function tensorsOf(state: TrainState): SafetensorsTensorInput[] {
  return state.params.flatMap((p, i) => {
    const m = state.m[i] ?? new Float32Array(0);
    const v = state.v[i] ?? new Float32Array(0);
    return [
      { name: `param.${p.name}`, dtype: "F32" as const, shape: p.shape, data: f32Bytes(p.data) },
      { name: `adam_m.${p.name}`, dtype: "F32" as const, shape: p.shape, data: f32Bytes(m) },
      { name: `adam_v.${p.name}`, dtype: "F32" as const, shape: p.shape, data: f32Bytes(v) },
    ];
  });
}

function metaOf(state: TrainState, options: TrainOptions): [string, string][] {
  return [
    ["format", CHECKPOINT_FORMAT],
    ["version", CHECKPOINT_VERSION],
    ["config", canonical(state.config, CONFIG_KEYS)],
    ["options", canonical(options, OPTION_KEYS)],
    ["step", String(state.step)],
    ["rng", String(state.rng >>> 0)],
  ];
}

/** The checkpoint of `state` (trained with `options`) as safetensors bytes. */
export function saveCheckpoint(state: TrainState, options: TrainOptions): Uint8Array {
  const tensors = tensorsOf(state);
  const meta = metaOf(state, options);
  const metadata = new Map([...meta, ["sha256", digest(meta, tensors)]]);
  return writeSafetensors({ tensors, metadata, order: "given" });
}

/** Writes the checkpoint of `state` to `path`. */
export async function saveCheckpointFile(path: string, state: TrainState, options: TrainOptions): Promise<void> {
  const tensors = tensorsOf(state);
  const meta = metaOf(state, options);
  const metadata = new Map([...meta, ["sha256", digest(meta, tensors)]]);
  await writeSafetensorsFile(path, { tensors, metadata, order: "given" });
}

/** What the caller expects of a checkpoint; anything given must match exactly. */
export interface CheckpointExpectation {
  readonly config?: QatConfig;
  readonly options?: TrainOptions;
}

/** A loaded checkpoint: the state to continue and the options it was trained with. */
export interface LoadedCheckpoint {
  readonly state: TrainState;
  readonly options: TrainOptions;
}

const corrupt = (message: string, cause?: unknown): CheckpointError =>
  new CheckpointError("corrupt", `[checkpoint] ${message}`, cause === undefined ? undefined : { cause });

function parseObject(text: string | undefined, what: string, keys: readonly string[]): Record<string, unknown> {
  if (text === undefined) {
    throw corrupt(`metadata "${what}" is missing`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw corrupt(`metadata "${what}" is not JSON`, e);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw corrupt(`metadata "${what}" is not an object`);
  }
  const record = value as Record<string, unknown>;
  const extra = Object.keys(record).filter((k) => !keys.includes(k));
  const missing = keys.filter((k) => !(k in record));
  if (extra.length > 0 || missing.length > 0) {
    throw corrupt(`metadata "${what}": unknown [${extra.join(", ")}], missing [${missing.join(", ")}]`);
  }
  return record;
}

function parseConfig(text: string | undefined): QatConfig {
  const r = parseObject(text, "config", CONFIG_KEYS);
  const num = (k: string): number => {
    const v = r[k];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw corrupt(`config.${k} is not a finite number`);
    }
    return v;
  };
  const activation = r["activation"];
  const tied = r["tied"];
  if ((activation !== "relu2" && activation !== "silu") || typeof tied !== "boolean") {
    throw corrupt("config.activation or config.tied is invalid");
  }
  const layers = num("layers");
  if (!Number.isSafeInteger(layers) || layers < 1 || layers > MAX_CHECKPOINT_LAYERS) {
    throw corrupt(`config.layers = ${layers} is not in 1..${MAX_CHECKPOINT_LAYERS}`);
  }
  const config: QatConfig = {
    vocabSize: num("vocabSize"),
    hidden: num("hidden"),
    layers,
    heads: num("heads"),
    kvHeads: num("kvHeads"),
    ffn: num("ffn"),
    rmsEps: num("rmsEps"),
    ropeTheta: num("ropeTheta"),
    activation,
    tied,
  };
  try {
    checkQatConfig(config);
  } catch (e) {
    throw corrupt("config is invalid", e);
  }
  return config;
}

function parseOptions(text: string | undefined): TrainOptions {
  const r = parseObject(text, "options", OPTION_KEYS);
  const out: Partial<Record<keyof TrainOptions, number>> = {};
  for (const k of OPTION_KEYS) {
    const v = r[k];
    // JSON has no Infinity: an unclipped run stores clipNorm as null.
    if (k === "clipNorm" && v === null) {
      out[k] = Infinity;
    } else if (typeof v !== "number" || !Number.isFinite(v)) {
      throw corrupt(`options.${k} is not a finite number`);
    } else {
      out[k] = v;
    }
  }
  // Every key of OPTION_KEYS (all of TrainOptions, checked at compile time above) was set in the loop.
  return out as Record<keyof TrainOptions, number>;
}

function parseUint(text: string | undefined, what: string, max: number): number {
  if (text === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(text) || Number(text) > max) {
    throw corrupt(`metadata "${what}" = ${JSON.stringify(text)} is not an integer in 0..${max}`);
  }
  return Number(text);
}

async function fromFile(file: SafetensorsFile, expect: CheckpointExpectation): Promise<LoadedCheckpoint> {
  const meta = file.metadata;
  const format = meta.get("format");
  const version = meta.get("version");
  if (format !== CHECKPOINT_FORMAT || version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(
      "unsupported",
      `[checkpoint] format ${JSON.stringify(format)} version ${JSON.stringify(version)}; barbell reads ${CHECKPOINT_FORMAT} ${CHECKPOINT_VERSION}`,
    );
  }
  const config = parseConfig(meta.get("config"));
  const options = parseOptions(meta.get("options"));
  const step = parseUint(meta.get("step"), "step", Number.MAX_SAFE_INTEGER);
  const rng = parseUint(meta.get("rng"), "rng", 0xffffffff);
  if (expect.config !== undefined && canonical(expect.config, CONFIG_KEYS) !== canonical(config, CONFIG_KEYS)) {
    throw new CheckpointError("mismatch", `[checkpoint] the model config differs: file ${canonical(config, CONFIG_KEYS)}, expected ${canonical(expect.config, CONFIG_KEYS)}`);
  }
  if (expect.options !== undefined && canonical(expect.options, OPTION_KEYS) !== canonical(options, OPTION_KEYS)) {
    throw new CheckpointError("mismatch", `[checkpoint] the training options differ: file ${canonical(options, OPTION_KEYS)}, expected ${canonical(expect.options, OPTION_KEYS)}`);
  }
  const layout = paramLayout(config);
  const expected = layout.flatMap((p) => ["param", "adam_m", "adam_v"].map((kind) => ({ name: `${kind}.${p.name}`, shape: p.shape })));
  if (file.tensors.length !== expected.length) {
    throw corrupt(`${file.tensors.length} tensors; the config needs ${expected.length}`);
  }
  const tensors: { name: string; data: Uint8Array }[] = [];
  const values = new Map<string, Float32Array>();
  for (const e of expected) {
    const info = file.tensor(e.name);
    if (info?.dtype !== "F32" || info.shape.length !== e.shape.length || info.shape.some((d, i) => d !== e.shape[i])) {
      throw corrupt(`tensor ${e.name} is missing or not F32 [${e.shape.join(", ")}]`);
    }
    let data: Uint8Array;
    try {
      data = (await file.tensorData(info)).slice();
    } catch (err) {
      throw corrupt(`tensor ${e.name} cannot be read`, err);
    }
    tensors.push({ name: e.name, data });
    values.set(e.name, new Float32Array(data.buffer, 0, info.elementCount));
  }
  const metaList: [string, string][] = [
    ["format", format],
    ["version", version],
    ["config", meta.get("config") ?? ""],
    ["options", meta.get("options") ?? ""],
    ["step", meta.get("step") ?? ""],
    ["rng", meta.get("rng") ?? ""],
  ];
  if (meta.size !== metaList.length + 1 || digest(metaList, tensors) !== meta.get("sha256")) {
    throw corrupt("the checksum does not match the contents (the file was changed or damaged)");
  }
  const get = (name: string): Float32Array => {
    const v = values.get(name);
    if (v === undefined) {
      throw corrupt(`tensor ${name} is missing`);
    }
    return v;
  };
  const params: Param[] = layout.map((p) => ({ ...p, matrix: p.shape.length === 2, data: get(`param.${p.name}`) }));
  const m = layout.map((p) => get(`adam_m.${p.name}`));
  const v = layout.map((p) => get(`adam_v.${p.name}`));
  for (const [i, p] of layout.entries()) {
    const bad = [params[i]?.data, m[i], v[i]].some((a, which) => a?.some((x) => !Number.isFinite(x) || (which === 2 && x < 0)) ?? true);
    if (bad) {
      throw corrupt(`parameter ${p.name} or its moments hold non-finite (or negative second-moment) values`);
    }
  }
  return { state: { config, params, m, v, step, rng }, options };
}

/** Reads a checkpoint from bytes; throws CheckpointError when it cannot be resumed from exactly. */
export async function loadCheckpoint(bytes: Uint8Array, expect: CheckpointExpectation = {}): Promise<LoadedCheckpoint> {
  let file: SafetensorsFile;
  try {
    file = await readSafetensorsBytes(bytes);
  } catch (e) {
    throw corrupt("not a readable safetensors file", e);
  }
  return fromFile(file, expect);
}

/** Reads a checkpoint file; throws CheckpointError when it cannot be resumed from exactly. */
export async function loadCheckpointFile(path: string, expect: CheckpointExpectation = {}): Promise<LoadedCheckpoint> {
  let file: SafetensorsFile;
  try {
    file = await openSafetensors(path);
  } catch (e) {
    throw corrupt(`${path} is not a readable safetensors file`, e);
  }
  try {
    return await fromFile(file, expect);
  } finally {
    await file.close();
  }
}
