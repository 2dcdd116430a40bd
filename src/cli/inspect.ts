/**
 * `barbell inspect`: a summary of a GGUF file (architecture, hyperparameters, tokenizer, tensors, sizes and the
 * memory needed to run it). Only the header is read. The report is plain JSON-safe data (bigints as strings).
 */
import { openGguf, type GgufFile, type GgufValue } from "../formats/gguf/index.js";

/** One row of the tensor table. */
export interface InspectTensor {
  readonly name: string;
  /** Resolved ggml type name (`i2_s`, `f16`, …). */
  readonly type: string;
  /** GGUF dims, ne0 first. */
  readonly dims: readonly number[];
  readonly bytes: number;
  /** Why an ambiguous type id (36/38/39) was read as it was. */
  readonly interpretation?: string;
}

/** Everything `inspect` reports; JSON-serializable as is. */
export interface InspectReport {
  readonly path: string;
  readonly fileSize: number;
  readonly version: number;
  readonly alignment: number;
  /** `general.architecture`, or null. */
  readonly architecture: string | null;
  /** `general.name`, or null. */
  readonly name: string | null;
  /** Every `{arch}.*` key without the prefix; 64-bit integers as strings, arrays summarized as `array<type>[n]`. */
  readonly hyperparameters: Readonly<Record<string, string | number | boolean>>;
  readonly tokenizer: {
    readonly model: string | null;
    readonly vocabSize: number | null;
    readonly mergesCount: number | null;
    readonly bosTokenId: number | null;
    readonly eosTokenId: number | null;
    readonly hasChatTemplate: boolean;
  };
  readonly metadataKeyCount: number;
  readonly tensors: readonly InspectTensor[];
  /** Sum of element counts over all tensors. */
  readonly parameterCount: number;
  /** Elements of the projection weights (attn_q/k/v/output, ffn_gate/up/down), the ones BitNet ternarizes. */
  readonly ternaryParameterCount: number;
  /** Storage bits per projection weight (including per-tensor trailers), or null when there are none. */
  readonly ternaryBitsPerWeight: number | null;
  /** Storage bits per parameter over all tensors, or null for a file without tensors. */
  readonly bitsPerWeight: number | null;
  readonly memory: {
    /** Bytes of tensor data. */
    readonly weightBytes: number;
    /** f32 KV cache at `contextLength` (2 · layers · ctx · kvHeads · headDim · 4), or null if unknown. */
    readonly kvCacheBytes: number | null;
    readonly contextLength: number | null;
    readonly totalBytes: number;
    /** Bytes per component: ternary projections, token embedding, separate output head (0 when tied), the rest. */
    readonly components: { readonly ternary: number; readonly embedding: number; readonly head: number; readonly other: number };
    /** The head (the embedding when tied) as Q8_0, what `--head q8_0` makes of a float head at load; null if not float. */
    readonly headAsQ8_0Bytes: number | null;
  };
}

const PROJECTION = /(^|\.)(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight$/;

function plain(v: GgufValue): string | number | boolean {
  if (v.type === "array") {
    return `array<${v.itemType}>[${v.items.length}]`;
  }
  if (v.type === "f32" && typeof v.value === "number") {
    return shortestF32(v.value);
  }
  return typeof v.value === "bigint" ? v.value.toString() : v.value;
}

/** The shortest decimal that reads back as the same float32 (1e-5, not 0.000009999999747378752). */
function shortestF32(x: number): number {
  for (let digits = 1; digits < 17; digits++) {
    const candidate = Number(x.toPrecision(digits));
    if (Math.fround(candidate) === x) {
      return candidate;
    }
  }
  return x;
}

function numberOrNull(file: GgufFile, key: string): number | null {
  try {
    return file.metadata.getNumber(key) ?? null;
  } catch {
    return null; // present with a non-numeric type: report it as unknown rather than failing the whole report
  }
}

/** Builds the report of an already-open file. */
export function inspectGguf(file: GgufFile, path: string): InspectReport {
  const m = file.metadata;
  const archValue = m.get("general.architecture");
  const arch = archValue?.type === "string" ? archValue.value : null;
  const nameValue = m.get("general.name");
  const hyperparameters: Record<string, string | number | boolean> = {};
  if (arch !== null) {
    for (const [key, value] of m.entries()) {
      if (key.startsWith(`${arch}.`)) {
        hyperparameters[key.slice(arch.length + 1)] = plain(value);
      }
    }
  }
  const arrayLength = (key: string): number | null => {
    const v = m.get(key);
    return v?.type === "array" ? v.items.length : null;
  };
  const tokModel = m.get("tokenizer.ggml.model");

  let parameterCount = 0;
  let weightBytes = 0;
  let ternaryCount = 0;
  let ternaryBytes = 0;
  const tensors = file.tensors.map((t): InspectTensor => {
    parameterCount += t.elementCount;
    weightBytes += t.byteSize;
    if (PROJECTION.test(t.name)) {
      ternaryCount += t.elementCount;
      ternaryBytes += t.byteSize;
    }
    const row = { name: t.name, type: t.typeName, dims: t.dims, bytes: t.byteSize };
    return t.typeInterpretation === undefined ? row : { ...row, interpretation: t.typeInterpretation };
  });

  const key = (k: string): number | null => (arch === null ? null : numberOrNull(file, `${arch}.${k}`));
  const layers = key("block_count");
  const ctx = key("context_length");
  const heads = key("attention.head_count");
  const kvHeads = key("attention.head_count_kv") ?? heads;
  const embd = key("embedding_length");
  const headDim = key("attention.key_length") ?? (embd !== null && heads ? embd / heads : null);
  const known = layers !== null && ctx !== null && kvHeads !== null && headDim !== null;
  const kvCacheBytes = known ? 2 * layers * ctx * kvHeads * headDim * 4 : null;

  const bytesOf = (name: string): number => file.tensor(name)?.byteSize ?? 0;
  const other = weightBytes - ternaryBytes - bytesOf("token_embd.weight") - bytesOf("output.weight");
  const headTensor = file.tensor("output.weight") ?? file.tensor("token_embd.weight");
  const headQ8 =
    headTensor !== undefined && ["f32", "f16", "bf16"].includes(headTensor.typeName) && (headTensor.dims[0] ?? 0) % 32 === 0
      ? (headTensor.elementCount / 32) * 34
      : null;
  return {
    path,
    fileSize: file.fileSize,
    version: file.version,
    alignment: file.alignment,
    architecture: arch,
    name: nameValue?.type === "string" ? nameValue.value : null,
    hyperparameters,
    tokenizer: {
      model: tokModel?.type === "string" ? tokModel.value : null,
      vocabSize: arrayLength("tokenizer.ggml.tokens"),
      mergesCount: arrayLength("tokenizer.ggml.merges"),
      bosTokenId: numberOrNull(file, "tokenizer.ggml.bos_token_id"),
      eosTokenId: numberOrNull(file, "tokenizer.ggml.eos_token_id"),
      hasChatTemplate: m.has("tokenizer.chat_template"),
    },
    metadataKeyCount: m.size,
    tensors,
    parameterCount,
    ternaryParameterCount: ternaryCount,
    ternaryBitsPerWeight: ternaryCount > 0 ? (ternaryBytes * 8) / ternaryCount : null,
    bitsPerWeight: parameterCount > 0 ? (weightBytes * 8) / parameterCount : null,
    memory: {
      weightBytes,
      kvCacheBytes,
      contextLength: ctx,
      totalBytes: weightBytes + (kvCacheBytes ?? 0),
      components: { ternary: ternaryBytes, embedding: bytesOf("token_embd.weight"), head: bytesOf("output.weight"), other },
      headAsQ8_0Bytes: headQ8,
    },
  };
}

/** Opens a GGUF file, reads its header and returns the report. Throws FormatError for malformed files. */
export async function inspectFile(path: string): Promise<InspectReport> {
  await using file = await openGguf(path);
  return inspectGguf(file, path);
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}

function count(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : String(n);
}

/** Renders a report as text for a terminal. `--json` callers use `JSON.stringify(report)` instead. */
export function formatInspectReport(r: InspectReport): string {
  const lines: string[] = [
    `file           ${r.path} (${mib(r.fileSize)}, GGUF v${r.version}, alignment ${r.alignment})`,
    `architecture   ${r.architecture ?? "(none)"}`,
    `name           ${r.name ?? "(none)"}`,
    `metadata keys  ${r.metadataKeyCount}`,
    "hyperparameters",
    ...Object.entries(r.hyperparameters).map(([k, v]) => `  ${k.padEnd(36)} ${String(v)}`),
    "tokenizer",
    `  model ${r.tokenizer.model ?? "(none)"}, vocab ${r.tokenizer.vocabSize ?? "?"}, ` +
      `merges ${r.tokenizer.mergesCount ?? "?"}, ` +
      `bos ${r.tokenizer.bosTokenId ?? "?"}, eos ${r.tokenizer.eosTokenId ?? "?"}, ` +
      `chat template ${r.tokenizer.hasChatTemplate ? "yes" : "no"}`,
    `tensors (${r.tensors.length})`,
  ];
  const nameWidth = Math.max(4, ...r.tensors.map((t) => t.name.length));
  for (const t of r.tensors) {
    const dims = `[${t.dims.join(", ")}]`;
    lines.push(`  ${t.name.padEnd(nameWidth)} ${t.type.padEnd(8)} ${dims.padEnd(20)} ${String(t.bytes).padStart(12)}`);
  }
  const bpw = (x: number | null): string => (x === null ? "n/a" : x.toFixed(3));
  lines.push(
    `parameters     ${count(r.parameterCount)} (ternary projections ${count(r.ternaryParameterCount)})`,
    `bits/weight    ternary ${bpw(r.ternaryBitsPerWeight)}, overall ${bpw(r.bitsPerWeight)}`,
    `memory         weights ${mib(r.memory.weightBytes)} + f32 KV cache at ctx ${r.memory.contextLength ?? "?"} ` +
      `${r.memory.kvCacheBytes === null ? "?" : mib(r.memory.kvCacheBytes)} = ${mib(r.memory.totalBytes)}`,
    `  components   ternary ${mib(r.memory.components.ternary)}, embedding ${mib(r.memory.components.embedding)}, ` +
      `${r.memory.components.head === 0 ? "head tied to the embedding" : `head ${mib(r.memory.components.head)}`}, ` +
      `other ${mib(r.memory.components.other)}`,
  );
  if (r.memory.headAsQ8_0Bytes !== null) {
    lines.push(`  head as q8_0 (load with --head q8_0): ${mib(r.memory.headAsQ8_0Bytes)}`);
  }
  return lines.join("\n");
}
