/**
 * `barbell convert model.gguf -o out.gguf --head q6_k|q8_0|f16`: a GGUF's token embedding and output head
 * re-encoded (what llama-quantize's `--token-embedding-type` / `--output-tensor-type` do), every other tensor and
 * all metadata byte for byte. For a bitnet.cpp I2_S file with its F16 head this stores the head barbell runs
 * fastest (docs/heads.md) once, instead of converting it at every first use. Streamed like the folder conversion
 * (convert.ts): the header, then each tensor, the head a block of rows at a time (bounded scratch memory).
 */
import { openGguf, layoutGguf, quantTraitsFor, type GgufFile, type GgufLayout, type GgufTensorInfo } from "../../formats/gguf/index.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import type { QuantTraits } from "../../quant/types.js";
import {
  CONVERT_HEAD_TYPES,
  ConvertError,
  HEAD_TENSORS,
  reencodeRows,
  streamGguf,
  type ConvertHeadType,
  type ConvertProgress,
  type ConvertTensorPlan,
} from "./convert.js";

/** What a GGUF head conversion will write. */
export interface GgufHeadPlan {
  /** general.architecture of the file ("" when absent). */
  readonly arch: string;
  readonly headType: ConvertHeadType;
  /** The re-encoded tensors, as written; `from` is each one's stored type. */
  readonly heads: readonly (ConvertTensorPlan & { readonly from: string })[];
  /** Every tensor, in file order, as written. */
  readonly tensors: readonly ConvertTensorPlan[];
  readonly fileBytes: number;
}

export interface GgufHeadConversion extends AsyncDisposable {
  readonly plan: GgufHeadPlan;
  /** The new file's bytes, streamed once. */
  bytes(): AsyncGenerator<Uint8Array, void, undefined>;
  close(): Promise<void>;
}

export interface GgufHeadOptions {
  readonly headType: ConvertHeadType;
  readonly signal?: AbortSignal;
  readonly onTensor?: (progress: ConvertProgress) => void;
}

/**
 * Opens `path` (a GGUF file) and plans the conversion. Throws the reader's FormatError/FileError for a bad file,
 * ConvertError "bad-option" for a head type outside CONVERT_HEAD_TYPES and "unsupported" when the file has no
 * token embedding, or a head whose type barbell cannot decode or whose rows the new type cannot hold.
 */
export async function openGgufHeadConversion(path: string, options: GgufHeadOptions): Promise<GgufHeadConversion> {
  const { headType } = options;
  if (!(CONVERT_HEAD_TYPES as readonly string[]).includes(headType)) {
    throw new ConvertError("bad-option", `[convert] --head ${String(headType)}: choose one of ${CONVERT_HEAD_TYPES.join(", ")}`);
  }
  const file = await openGguf(path);
  try {
    const plan = planHead(file, headType);
    const layout = layoutGguf(file.metadata, plan.specs);
    return conversion(file, plan, layout, options);
  } catch (e) {
    await file.close();
    throw e;
  }
}

interface HeadJob {
  readonly info: GgufTensorInfo;
  /** The stored type's codec and the new one, for a re-encoded head; undefined for a tensor copied as it is. */
  readonly codecs?: { readonly from: QuantTraits; readonly to: QuantTraits };
}

function planHead(file: GgufFile, headType: ConvertHeadType): { specs: { name: string; dims: readonly number[]; typeId: number }[]; jobs: HeadJob[] } {
  if (file.tensor("token_embd.weight") === undefined) {
    throw new ConvertError("unsupported", "[convert] the file has no token_embd.weight: nothing to re-encode");
  }
  const to = QUANT_TRAITS[headType];
  const specs: { name: string; dims: readonly number[]; typeId: number }[] = [];
  const jobs: HeadJob[] = [];
  for (const info of file.tensors) {
    if (!HEAD_TENSORS.includes(info.name) || info.typeName === headType) {
      specs.push({ name: info.name, dims: info.dims, typeId: info.typeId });
      jobs.push({ info });
      continue;
    }
    const from = quantTraitsFor(info);
    const cols = info.dims[0] ?? 0;
    const rows = cols > 0 ? info.elementCount / cols : 0;
    if (from === undefined || from.ternary || info.dims.length !== 2) {
      throw new ConvertError("unsupported", `[convert] ${info.name} is ${info.typeName} [${info.dims.join(", ")}]; barbell re-encodes 2-D float or block-quantized heads`);
    }
    if (to.ggmlType === undefined || to.byteSize(rows, cols) === undefined) {
      throw new ConvertError("unsupported", `[convert] ${info.name} has rows of ${cols} values; ${headType} needs a multiple of ${to.blockSize}`);
    }
    specs.push({ name: info.name, dims: info.dims, typeId: to.ggmlType });
    jobs.push({ info, codecs: { from, to } });
  }
  return { specs, jobs };
}

function conversion(file: GgufFile, planned: { jobs: HeadJob[] }, layout: GgufLayout, options: GgufHeadOptions): GgufHeadConversion {
  const { jobs } = planned;
  const tensors: ConvertTensorPlan[] = jobs.map((j, i) => ({
    name: j.info.name,
    dims: j.info.dims,
    type: j.codecs?.to.name ?? j.info.typeName,
    byteSize: layout.tensors[i]?.byteSize ?? 0,
  }));
  const heads = jobs.flatMap((j, i) => (j.codecs === undefined ? [] : [{ ...(tensors[i] as ConvertTensorPlan), from: j.info.typeName }]));
  const archValue = file.metadata.get("general.architecture");
  const plan: GgufHeadPlan = {
    arch: archValue?.type === "string" ? archValue.value : "",
    headType: options.headType,
    heads,
    tensors,
    fileBytes: layout.header.length + layout.dataBytes,
  };
  let started = false;

  async function* tensorBytes(j: HeadJob): AsyncGenerator<Uint8Array> {
    const data = await file.tensorData(j.info);
    if (j.codecs === undefined) {
      yield data;
      return;
    }
    const cols = j.info.dims[0] ?? 1;
    yield* reencodeRows(j.codecs.from, j.codecs.to, j.info.elementCount / cols, cols, (offset, length) => data.subarray(offset, offset + length), options.signal);
  }

  async function* bytes(): AsyncGenerator<Uint8Array, void, undefined> {
    if (started) {
      throw new ConvertError("bad-option", "[convert] a conversion's bytes can be taken once");
    }
    started = true;
    yield* streamGguf(layout, jobs.map((job, i) => ({ job, tensor: tensors[i] as ConvertTensorPlan })), (j) => j.tensor, (j) => tensorBytes(j.job), options);
  }

  const close = (): Promise<void> => file.close();
  return { plan, bytes, close, [Symbol.asyncDispose]: close };
}
