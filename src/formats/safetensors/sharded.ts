/**
 * Sharded checkpoints: `model.safetensors.index.json` maps each tensor name to the shard file holding it.
 * The index is hostile too: shard names must be plain file names in the index's folder (no path traversal),
 * every mapped tensor must exist in its shard, and no tensor may live in two shards.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { FormatError } from "../../core/errors.js";
import { describeJson, isJsonObject, jsonSafeInteger, parseJson } from "./json.js";
import * as L from "./limits.js";
import { openSafetensors, type SafetensorsFile } from "./reader.js";
import type { SafetensorsDataRange, SafetensorsTensorInfo, SafetensorsTensorStore } from "./types.js";

/** File name of a single-file checkpoint in a Hugging Face model folder. */
export const SAFETENSORS_SINGLE_FILE = "model.safetensors";

/** File name of the shard index in a Hugging Face model folder. */
export const SAFETENSORS_INDEX_FILE = "model.safetensors.index.json";

/** A parsed, checked shard index. */
export interface SafetensorsIndex {
  /** Tensor name → shard file name, in index order. */
  readonly weightMap: ReadonlyMap<string, string>;
  /** Distinct shard file names, in order of first appearance. */
  readonly shards: readonly string[];
  /** `metadata.total_size` when it is a safe integer (informational; not checked against the shards). */
  readonly totalSize?: number;
}

function fail(code: ConstructorParameters<typeof FormatError>[0], message: string): never {
  throw new FormatError(code, `[safetensors-index] ${message}`);
}

/** True for a name that can only mean a file directly inside the index's folder. */
export function isPlainFileName(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= 255 &&
    name !== "." &&
    name !== ".." &&
    !/[/\\\0:]/.test(name) &&
    !/^[a-zA-Z]:/.test(name)
  );
}

/**
 * Parses and checks the text of a `model.safetensors.index.json`: a JSON object with a `weight_map` object of
 * string values that are plain file names, at most `MAX_SHARD_COUNT` distinct shards.
 */
export function parseSafetensorsIndex(text: string): SafetensorsIndex {
  const root = parseJson(text, { maxDepth: L.MAX_INDEX_JSON_DEPTH, label: "safetensors-index" });
  if (!isJsonObject(root)) {
    fail("bad-value", `the index must be a JSON object, got ${describeJson(root)}`);
  }
  const map = root.get("weight_map");
  if (!isJsonObject(map)) {
    fail("bad-value", `weight_map must be an object, got ${describeJson(map)}`);
  }
  if (map.size > L.MAX_TENSOR_COUNT) {
    fail("limit", `weight_map has ${map.size} entries; the limit is ${L.MAX_TENSOR_COUNT}`);
  }
  const weightMap = new Map<string, string>();
  const shards = new Set<string>();
  for (const [tensor, shard] of map) {
    if (typeof shard !== "string") {
      fail("bad-value", `weight_map["${tensor}"] must be a file name, got ${describeJson(shard)}`);
    }
    if (!isPlainFileName(shard)) {
      fail("bad-value", `weight_map["${tensor}"] is ${JSON.stringify(shard)}, not a plain file name in the folder`);
    }
    shards.add(shard);
    if (shards.size > L.MAX_SHARD_COUNT) {
      fail("limit", `the index names more than ${L.MAX_SHARD_COUNT} shard files`);
    }
    weightMap.set(tensor, shard);
  }
  const meta = root.get("metadata");
  const total = isJsonObject(meta) ? meta.get("total_size") : undefined;
  const totalSize = jsonSafeInteger(total);
  return totalSize === undefined ? { weightMap, shards: [...shards] } : { weightMap, shards: [...shards], totalSize };
}

/** Tensors spread over several safetensors files, read through one name → shard map. */
export class ShardedSafetensors implements SafetensorsTensorStore {
  readonly tensors: readonly SafetensorsTensorInfo[];
  readonly #shardOf: Map<string, SafetensorsFile>;

  /** Use `openShardedSafetensors`; `files` maps shard names to opened files, checked against `index`. */
  private constructor(
    readonly index: SafetensorsIndex,
    readonly files: ReadonlyMap<string, SafetensorsFile>,
  ) {
    this.#shardOf = new Map();
    const owner = new Map<string, string>();
    for (const [shardName, file] of files) {
      for (const t of file.tensors) {
        const other = owner.get(t.name);
        if (other !== undefined) {
          fail("duplicate", `tensor "${t.name}" is in both ${other} and ${shardName}`);
        }
        owner.set(t.name, shardName);
        const mapped = index.weightMap.get(t.name);
        if (mapped !== shardName) {
          const where = mapped === undefined ? "not in weight_map" : `mapped to ${mapped}`;
          fail("bad-value", `tensor "${t.name}" is in ${shardName} but ${where}`);
        }
        this.#shardOf.set(t.name, file);
      }
    }
    for (const [tensor, shard] of index.weightMap) {
      if (!this.#shardOf.has(tensor)) {
        fail("bad-value", `weight_map maps "${tensor}" to ${shard}, which has no such tensor`);
      }
    }
    this.tensors = [...files.values()].flatMap((f) => f.tensors);
  }

  /** Opens every shard named by `index` from `dir` and checks them against it; closes all on failure. */
  static async open(dir: string, index: SafetensorsIndex): Promise<ShardedSafetensors> {
    const files = new Map<string, SafetensorsFile>();
    try {
      for (const shard of index.shards) {
        files.set(shard, await openSafetensors(join(dir, shard)));
      }
      return new ShardedSafetensors(index, files);
    } catch (e) {
      await Promise.all([...files.values()].map((f) => f.close()));
      throw e;
    }
  }

  tensor(name: string): SafetensorsTensorInfo | undefined {
    return this.#shardOf.get(name)?.tensor(name);
  }

  /** The shard file name holding `name`, or undefined. */
  shardOf(name: string): string | undefined {
    return this.index.weightMap.get(name);
  }

  tensorData(tensor: string | SafetensorsTensorInfo, range?: SafetensorsDataRange): Promise<Uint8Array> {
    const name = typeof tensor === "string" ? tensor : tensor.name;
    const file = this.#shardOf.get(name);
    if (file === undefined) {
      fail("bad-value", `no tensor named "${name}"`);
    }
    return file.tensorData(name, range);
  }

  async close(): Promise<void> {
    await Promise.all([...this.files.values()].map((f) => f.close()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Reads `dir/model.safetensors.index.json` and opens its shards. Close the result when done. */
export async function openShardedSafetensors(
  dir: string,
  indexFile = SAFETENSORS_INDEX_FILE,
): Promise<ShardedSafetensors> {
  const path = join(dir, indexFile);
  const size = (await stat(path)).size;
  if (size > L.MAX_INDEX_BYTES) {
    fail("limit", `${indexFile} is ${size} bytes; the limit is ${L.MAX_INDEX_BYTES}`);
  }
  const bytes = await readFile(path);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    fail("bad-utf8", `${indexFile} is not valid UTF-8`);
  }
  return ShardedSafetensors.open(dir, parseSafetensorsIndex(text));
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * Opens the weights of a Hugging Face model folder: `model.safetensors` when present (as transformers prefers
 * it), else the shards named by `model.safetensors.index.json`. FormatError `bad-value` when neither exists.
 */
export async function openSafetensorsFolder(dir: string): Promise<SafetensorsTensorStore> {
  if (await exists(join(dir, SAFETENSORS_SINGLE_FILE))) {
    return openSafetensors(join(dir, SAFETENSORS_SINGLE_FILE));
  }
  if (await exists(join(dir, SAFETENSORS_INDEX_FILE))) {
    return openShardedSafetensors(dir);
  }
  fail("bad-value", `${dir} has neither ${SAFETENSORS_SINGLE_FILE} nor ${SAFETENSORS_INDEX_FILE}`);
}
