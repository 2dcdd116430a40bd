/**
 * Hugging Face BitNet folders under mutation (issue 13 item 2): config.json values (huge, negative, fractional,
 * NaN-like, strings, missing, nested, duplicated) and safetensors headers (lengths, offsets, dtypes, shapes, names,
 * JSON garbage) and bytes. Every case must end in a typed error (BarbellError) or a valid load, quickly and with
 * bounded memory. The in-memory property runs the loader's own steps (hfBitnetConfigFromBytes, hfBitnetFromStore,
 * configFromHf, every tensor's load) on bytes; the folder property writes real folders (single file or shards with
 * an index) and loads them with loadModel, as `barbell generate -m <folder>` does.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BarbellError } from "../../src/core/errors.js";
import { loadModel } from "../../src/engine/model.js";
import { readSafetensorsBytes, SAFETENSORS_INDEX_FILE, SAFETENSORS_SINGLE_FILE } from "../../src/formats/safetensors/index.js";
import { writeHfBitnetFixture, type HfBitnetFixtureOptions } from "../../src/model/bitnet/hf-fixture.js";
import { configFromHf } from "../../src/model/bitnet/hf-source.js";
import { hfBitnetConfigFromBytes, hfBitnetFromStore } from "../../src/model/bitnet/hf.js";
import { FUZZ_RUNS, fuzzTimeout } from "./budget.js";
import { byteMutation, type Mutation } from "./safetensors-mutations.js";

const SEED = 0x4f_b17e7;
/** In-memory cases per folder case: a folder case writes files and loads a model (about 10× the cost). */
const FOLDER_SHARE = 40;
const FOLDER_RUNS = Math.max(50, Math.ceil(FUZZ_RUNS / FOLDER_SHARE));
/** Cost per case (ms) at 200,000 cases with the fuzz files in parallel, rounded up (test/fuzz/budget.ts, docs/fuzzing.md). */
const MS_PER_MEMORY_CASE = 1;
const MS_PER_FOLDER_CASE = 10;
/** No case may take longer than this (the 2^31-layer config took 89 s and 5.2 GiB before the fix). */
const MAX_CASE_MS = 5_000;
/** Nor grow the JS heap plus ArrayBuffers by more than this at any point of a run (garbage included: generous). */
const MAX_MEMORY_GROWTH = 1024 << 20;

const SIZES = { hidden: 16, heads: 2, kvHeads: 1, ffn: 32, vocab: 24, layers: 2, contextLength: 64 } as const;
const LAYOUTS: HfBitnetFixtureOptions[] = [
  { ...SIZES, seed: 1 },
  { ...SIZES, seed: 2, tied: false, linearClass: "bitlinear", scaleDtype: "F32", floatDtype: "F16" },
  { ...SIZES, seed: 3, arch: "bitnet", kvHeads: 2, layout: "master", floatDtype: "F32" },
];

interface Base {
  readonly config: Entries;
  readonly weights: Uint8Array;
}
let bases: Base[] = [];
let scratch = "";

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "barbell-hf-fuzz-"));
  bases = [];
  for (const [i, layout] of LAYOUTS.entries()) {
    const dir = join(scratch, `base-${i}`);
    await mkdir(dir);
    await writeHfBitnetFixture(dir, layout);
    const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    // A plain Uint8Array copy: Buffer#slice is a view, so the mutations' copies would write into the base.
    bases.push({ config: toEntries(config), weights: new Uint8Array(await readFile(join(dir, SAFETENSORS_SINGLE_FILE))) });
  }
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

// ---- config.json: an ordered list of entries (duplicates allowed), values as raw JSON-ish text ----

type Entries = [string, string | Entries][];

function toEntries(o: Record<string, unknown>): Entries {
  return Object.entries(o).map(([k, v]) =>
    typeof v === "object" && v !== null && !Array.isArray(v) ? [k, toEntries(v as Record<string, unknown>)] : [k, JSON.stringify(v)],
  );
}

function render(e: Entries): string {
  return `{${e.map(([k, v]) => `${JSON.stringify(k)}:${typeof v === "string" ? v : render(v)}`).join(",")}}`;
}

const CONFIG_KEYS = [
  "architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
  "num_key_value_heads", "vocab_size", "max_position_embeddings", "rms_norm_eps", "rope_theta", "hidden_act",
  "tie_word_embeddings", "quantization_config", "torch_dtype", "__proto__", "constructor", "",
];
const QUANT_KEYS = ["quant_method", "linear_class", "quantization_mode"];

/** Values as text: sizes near and far past the limits, non-integers, JSON that is not JSON (NaN), wrong kinds. */
const VALUE_TEXTS = [
  "0", "1", "2", "3", "4", "8", "12", "16", "24", "32", "48", "64", "-1", "-16", "-2147483648", "1024", "1025",
  "65536", "65537", "262145", "4194305", "1048577", "2147483648", "4294967296", "9007199254740991",
  "9007199254740993", "123456789012345678901234567890", "1e3", "1e308", "1e400", "-1e400", "5e-324", "1e-320",
  "0.5", "16.5", "16.0", "-0", "NaN", "Infinity", "-Infinity", "0x10", "016", "+16", '"NaN"', '"16"', '""', "null",
  "true", "false", "[]", "[16]", "{}", '{"a":{"b":{"c":16}}}', `${"[".repeat(20)}${"]".repeat(20)}`,
  '"relu2"', '"silu"', '"gelu"', '"bitnet"', '"llama"', '"bitlinear"', '"autobitlinear"', '"offline"',
  '["BitNetForCausalLM"]', '["BitnetForCausalLM", 1]', '["LlamaForCausalLM"]', '"\\ud800"', '"\u0000"',
];
const valueText = fc.oneof(fc.constantFrom(...VALUE_TEXTS), fc.integer({ min: -4, max: 300 }).map(String));

type ConfigEdit = (e: Entries) => Entries;

const configEdit: fc.Arbitrary<ConfigEdit> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ key: fc.constantFrom(...CONFIG_KEYS), v: valueText }).map(({ key, v }) => set(key, v)) },
  { weight: 2, arbitrary: fc.constantFrom(...CONFIG_KEYS).map((key) => (e: Entries) => e.filter(([k]) => k !== key)) },
  {
    weight: 2,
    arbitrary: fc.record({ key: fc.constantFrom(...QUANT_KEYS), v: fc.option(valueText, { nil: undefined }) }).map(
      ({ key, v }) =>
        (e: Entries) =>
          e.map(([k, q]): [string, string | Entries] =>
            k === "quantization_config" && typeof q !== "string"
              ? [k, v === undefined ? q.filter(([qk]) => qk !== key) : [...q.filter(([qk]) => qk !== key), [key, v]]]
              : [k, q],
          ),
    ),
  },
  // A size scaled or shifted: plausible configs that disagree with the tensors.
  {
    weight: 3,
    arbitrary: fc
      .record({ key: fc.constantFrom(...CONFIG_KEYS.slice(2, 9)), op: fc.constantFrom<(n: number) => number>((n) => n * 2, (n) => n / 2, (n) => n + 4, (n) => n - 1, (n) => n * 1024) })
      .map(({ key, op }) => (e: Entries) => e.map(([k, v]): [string, string | Entries] => (k === key && typeof v === "string" ? [k, String(op(Number(v)))] : [k, v]))),
  },
  { weight: 1, arbitrary: fc.record({ key: fc.constantFrom(...CONFIG_KEYS), v: valueText }).map(({ key, v }) => (e: Entries): Entries => [...e, [key, v]]) },
  { weight: 1, arbitrary: fc.constantFrom(...CONFIG_KEYS).map((key) => (e: Entries) => e.map(([k, v]): [string, string | Entries] => (k === key ? [k, [["value", v]]] : [k, v]))) },
);

function set(key: string, v: string): ConfigEdit {
  return (e) => (e.some(([k]) => k === key) ? e.map(([k, old]): [string, string | Entries] => (k === key ? [k, v] : [k, old])) : [...e, [key, v]]);
}

// ---- safetensors headers: structural edits of the JSON header, then optional byte mutations ----

type Header = Record<string, { dtype: unknown; shape: unknown; data_offsets: unknown } | Record<string, string>>;

function splitFile(b: Uint8Array): { header: Header; data: Uint8Array } {
  const n = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) as Header, data: b.subarray(8 + n) };
}

function joinFile(header: string, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const DTYPES = ["U8", "I8", "BF16", "F16", "F32", "F64", "I64", "BOOL", "F8_E4M3", "F4", "Q4", "", "bf16"];
const DIMS = [0, 1, 2, 3, 4, 8, 16, 24, 32, 64, -1, 1.5, 2 ** 31, 2 ** 32, 2 ** 53, 1e300];
const NAMES = [
  "model.layers.2.self_attn.q_proj.weight", "model.layers.999999.mlp.up_proj.weight", "model.layers.01.input_layernorm.weight",
  "model.layers.0.self_attn.q_proj.weight_scale", "lm_head.weight", "model.embed_tokens.weight", "model.norm.weight",
  "model.layers.1.mlp.down_proj.weight", "__metadata__", "__proto__", "x",
];

type HeaderEdit = (h: Header, names: string[]) => void;

const headerEdit: fc.Arbitrary<HeaderEdit> = fc.oneof(
  fc.record({ i: fc.nat(), dtype: fc.constantFrom(...DTYPES) }).map(({ i, dtype }) => (h: Header, names: string[]) => {
    const t = h[names[i % names.length] ?? ""];
    if (t !== undefined && "dtype" in t) {
      t.dtype = dtype;
    }
  }),
  fc.record({ i: fc.nat(), shape: fc.oneof(fc.array(fc.constantFrom(...DIMS), { maxLength: 4 }), fc.constantFrom<unknown>("16", null, {}, [[16]])) }).map(
    ({ i, shape }) =>
      (h: Header, names: string[]) => {
        const t = h[names[i % names.length] ?? ""];
        if (t !== undefined && "shape" in t) {
          t.shape = shape;
        }
      },
  ),
  fc.record({ i: fc.nat(), at: fc.nat(1), delta: fc.constantFrom(-64, -2, -1, 1, 2, 64, 2 ** 40, 2 ** 53) }).map(({ i, at, delta }) => (h: Header, names: string[]) => {
    const t = h[names[i % names.length] ?? ""];
    if (t !== undefined && "data_offsets" in t && Array.isArray(t.data_offsets)) {
      const offsets = t.data_offsets as number[];
      offsets[at] = (offsets[at] ?? 0) + delta;
    }
  }),
  fc.record({ i: fc.nat(), to: fc.oneof(fc.constantFrom(...NAMES), fc.string({ maxLength: 8 })) }).map(({ i, to }) => (h: Header, names: string[]) => {
    const from = names[i % names.length] ?? "";
    const t = h[from];
    if (t !== undefined) {
      delete h[from];
      h[to] = t;
    }
  }),
  fc.nat().map((i) => (h: Header, names: string[]) => {
    delete h[names[i % names.length] ?? ""];
  }),
  fc.record({ i: fc.nat(), to: fc.constantFrom(...NAMES) }).map(({ i, to }) => (h: Header, names: string[]) => {
    const t = h[names[i % names.length] ?? ""];
    if (t !== undefined) {
      h[to] = structuredClone(t);
    }
  }),
);

interface WeightsEdit {
  readonly header: HeaderEdit[];
  readonly bytes: Mutation[];
  readonly truncateData: number | undefined;
}

/** One kind of edit per case, so that most cases get past the first check they could fail. */
const weightsEdit: fc.Arbitrary<WeightsEdit> = fc.oneof(
  { weight: 4, arbitrary: fc.array(headerEdit, { minLength: 1, maxLength: 2 }).map((header) => ({ header, bytes: [], truncateData: undefined })) },
  { weight: 2, arbitrary: byteMutation.map((m) => ({ header: [], bytes: [m], truncateData: undefined })) },
  { weight: 1, arbitrary: fc.nat().map((n) => ({ header: [], bytes: [], truncateData: n })) },
);
const NO_WEIGHTS_EDIT: WeightsEdit = { header: [], bytes: [], truncateData: undefined };

function mutateWeights(base: Uint8Array, edit: WeightsEdit): Uint8Array {
  let out = base;
  if (edit.header.length > 0 || edit.truncateData !== undefined) {
    const { header, data } = splitFile(base);
    const names = Object.keys(header).filter((n) => n !== "__metadata__");
    for (const e of edit.header) {
      e(header, names);
    }
    out = joinFile(JSON.stringify(header), edit.truncateData === undefined ? data : data.subarray(0, edit.truncateData % (data.length + 1)));
  }
  return edit.bytes.reduce<Uint8Array>((b, m) => m(b), out);
}

interface ConfigCase {
  readonly edits: ConfigEdit[];
  readonly bytes: Mutation[];
}

const configCase: fc.Arbitrary<ConfigCase> = fc.oneof(
  { weight: 6, arbitrary: fc.array(configEdit, { minLength: 1, maxLength: 2 }).map((edits) => ({ edits, bytes: [] })) },
  { weight: 1, arbitrary: byteMutation.map((m) => ({ edits: [], bytes: [m] })) },
);
const NO_CONFIG_EDIT: ConfigCase = { edits: [], bytes: [] };

/** A folder with its config.json, its weights, or both mutated (never neither). */
const folderCase = fc.oneof(
  fc.record({ config: configCase, weights: fc.constant(NO_WEIGHTS_EDIT) }),
  fc.record({ config: fc.constant(NO_CONFIG_EDIT), weights: weightsEdit }),
  fc.record({ config: configCase, weights: weightsEdit }),
);

function configBytes(base: Entries, c: ConfigCase): Uint8Array {
  const text = render(c.edits.reduce((e, edit) => edit(e), base));
  return c.bytes.reduce<Uint8Array>((b, m) => m(b), new TextEncoder().encode(text));
}

// ---- running a case ----

/** "ok", or the code of the typed error it ended in; anything untyped fails the property. */
async function typed(run: () => Promise<void>): Promise<string> {
  try {
    await run();
    return "ok";
  } catch (e) {
    if (e instanceof BarbellError) {
      return `${e.name}:${e.code}`;
    }
    throw e;
  }
}

async function loadInMemory(config: Uint8Array, weights: Uint8Array): Promise<string> {
  return typed(async () => {
    const cfg = hfBitnetConfigFromBytes(config);
    await using folder = await hfBitnetFromStore(cfg, await readSafetensorsBytes(weights));
    const c = configFromHf(folder);
    expect(c.layers * c.hidden * c.heads).toBeLessThanOrEqual(1024 * 65_536 * 1024);
    for (const t of folder.tensors.values()) {
      const want = t.shape.reduce((a, d) => a * d, 1);
      if (t.kind === "ternary") {
        const { trits, scale } = await t.load();
        expect(trits.length).toBe(want);
        expect(trits.every((v) => v >= -1 && v <= 1)).toBe(true);
        expect(Number.isFinite(scale) && scale > 0, `${t.name} scale ${scale}`).toBe(true);
      } else {
        expect((await t.load()).length).toBe(want);
      }
    }
  });
}

/** Tracks the slowest case and the heap's peak growth over a property. */
function meter(): { time<T>(run: () => Promise<T>): Promise<T>; check(): void; slowest: number; peak: number } {
  const used = (): number => {
    const u = process.memoryUsage();
    return u.heapUsed + u.arrayBuffers;
  };
  const heap0 = used();
  const m = {
    slowest: 0,
    peak: 0,
    async time<T>(run: () => Promise<T>): Promise<T> {
      const t0 = performance.now();
      const out = await run();
      m.slowest = Math.max(m.slowest, performance.now() - t0);
      m.peak = Math.max(m.peak, used() - heap0);
      return out;
    },
    check(): void {
      expect(m.slowest, "slowest case (ms)").toBeLessThan(MAX_CASE_MS);
      expect(m.peak, "heap and buffer growth (bytes)").toBeLessThan(MAX_MEMORY_GROWTH);
    },
  };
  return m;
}

/** With BARBELL_FUZZ_REPORT=1: how the cases ended, the slowest case and the peak memory growth (for docs). */
function report(codes: Map<string, number>, m: { slowest: number; peak: number }): void {
  if (process.env["BARBELL_FUZZ_REPORT"] === "1") {
    const ends = [...codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`);
    console.log(`${ends.join(", ")}; slowest ${m.slowest.toFixed(1)} ms; peak growth ${(m.peak / 2 ** 20).toFixed(1)} MiB`);
  }
}

/** Writes a mutated folder: config.json and one model.safetensors, or `shards` files with a (mutated) index. */
async function writeFolder(dir: string, config: Uint8Array, weights: Uint8Array, shards: number, indexEdit: string | undefined): Promise<void> {
  await writeFile(join(dir, "config.json"), config);
  if (shards === 1) {
    await writeFile(join(dir, SAFETENSORS_SINGLE_FILE), weights);
    return;
  }
  // Split a valid base by tensor into shards, so a mutation of the single file still applies to the first shard.
  let parsed: { header: Header; data: Uint8Array };
  try {
    parsed = splitFile(weights);
  } catch {
    await writeFile(join(dir, "model-00001-of-00001.safetensors"), weights);
    await writeFile(join(dir, SAFETENSORS_INDEX_FILE), indexEdit ?? '{"weight_map":{}}');
    return;
  }
  const names = Object.keys(parsed.header).filter((n) => n !== "__metadata__");
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-0000${s + 1}-of-0000${shards}.safetensors`;
    const part: Header = {};
    let data = new Uint8Array(0);
    for (const name of names.filter((_, i) => i % shards === s)) {
      const t = parsed.header[name];
      const offsets = t !== undefined && "data_offsets" in t ? t.data_offsets : undefined;
      const [b = 0, e = 0] = Array.isArray(offsets) ? (offsets as number[]) : [];
      const bytes = Number.isSafeInteger(b) && Number.isSafeInteger(e) && b >= 0 && e >= b ? parsed.data.subarray(b, e) : new Uint8Array(0);
      part[name] = { ...(t as object), data_offsets: [data.length, data.length + bytes.length] } as Header[string];
      const grown = new Uint8Array(data.length + bytes.length);
      grown.set(data);
      grown.set(bytes, data.length);
      data = grown;
      weightMap[name] = file;
    }
    await writeFile(join(dir, file), joinFile(JSON.stringify(part), data));
  }
  await writeFile(join(dir, SAFETENSORS_INDEX_FILE), indexEdit ?? JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
}

const INDEX_EDITS = [
  "",
  "[]",
  '{"weight_map":[]}',
  '{"weight_map":{"model.embed_tokens.weight":"../escape.safetensors"}}',
  '{"weight_map":{"model.embed_tokens.weight":"missing.safetensors"}}',
  '{"weight_map":{"model.embed_tokens.weight":1}}',
  '{"weight_map":{"model.embed_tokens.weight":"/etc/passwd"}}',
  '{"weight_map":{"model.embed_tokens.weight":"config.json"}}',
  '{"weight_map":{"a":"model-00001-of-00002.safetensors","a":"x"}}',
];

describe("Hugging Face folder fuzzing", () => {
  it("should load every base folder", async () => {
    for (const base of bases) {
      expect(await loadInMemory(new TextEncoder().encode(render(base.config)), base.weights)).toBe("ok");
    }
  });

  it(
    `should end every mutated in-memory folder (${FUZZ_RUNS} cases) in a typed error or a valid load`,
    async () => {
      const codes = new Map<string, number>();
      const m = meter();
      await fc.assert(
        fc.asyncProperty(fc.nat(LAYOUTS.length - 1), folderCase, async (i, { config, weights }) => {
          const base = bases[i];
          if (base === undefined) {
            return;
          }
          const code = await m.time(() => loadInMemory(configBytes(base.config, config), mutateWeights(base.weights, weights)));
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }),
        { seed: SEED, numRuns: FUZZ_RUNS },
      );
      report(codes, m);
      m.check();
      // The mutations must reach past the first check: some cases load, and many different checks fire.
      expect(codes.get("ok") ?? 0).toBeGreaterThan(0);
      expect(codes.size).toBeGreaterThanOrEqual(Math.min(8, FUZZ_RUNS / 100));
    },
    fuzzTimeout(MS_PER_MEMORY_CASE),
  );

  it(
    `should end every mutated folder on disk (${FOLDER_RUNS} cases, single or sharded) in a typed error or a loaded model`,
    async () => {
      const codes = new Map<string, number>();
      const m = meter();
      let n = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.nat(LAYOUTS.length - 1),
          folderCase,
          fc.constantFrom(1, 1, 2, 3),
          fc.option(fc.constantFrom(...INDEX_EDITS), { nil: undefined, freq: 8 }),
          async (i, { config, weights }, shards, indexEdit) => {
            const base = bases[i];
            if (base === undefined) {
              return;
            }
            const dir = join(scratch, `case-${n++}`);
            await mkdir(dir);
            try {
              await writeFolder(dir, configBytes(base.config, config), mutateWeights(base.weights, weights), shards, indexEdit);
              const code = await m.time(() =>
                typed(async () => {
                  using model = await loadModel(dir, { autotune: false });
                  expect(model.config.vocabSize).toBeGreaterThan(0);
                }),
              );
              codes.set(code, (codes.get(code) ?? 0) + 1);
            } finally {
              await rm(dir, { recursive: true, force: true });
            }
          },
        ),
        { seed: SEED + 1, numRuns: FOLDER_RUNS },
      );
      report(codes, m);
      m.check();
      expect(codes.get("ok") ?? 0).toBeGreaterThan(0);
      expect(await readdir(scratch)).toHaveLength(LAYOUTS.length); // every case folder removed
    },
    fuzzTimeout(MS_PER_FOLDER_CASE, FOLDER_RUNS),
  );
});
