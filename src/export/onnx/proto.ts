/**
 * The ONNX messages barbell writes (field numbers of onnx/onnx.proto, ONNX 1.20: IR 12, opset 25), as plain
 * objects and their encoding through the minimal writer of protobuf.ts.
 */
import { ProtoWriter } from "./protobuf.js";

/** TensorProto.DataType values used here. */
export const DT = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
  /** 2-bit types of ONNX 1.20 (IR 12): four values per byte, the first in the low bits. */
  UINT2: 25,
  INT2: 26,
} as const;
export type DataType = (typeof DT)[keyof typeof DT];

/** Where an initializer's bytes are: inside the model, or at an offset of the external data file. */
export type TensorData = { readonly raw: Uint8Array } | { readonly location: string; readonly offset: number; readonly length: number };

export interface TensorDef {
  readonly name: string;
  readonly dataType: DataType;
  readonly dims: readonly number[];
  readonly data: TensorData;
}

export type AttrValue =
  | { readonly f: number }
  | { readonly i: number }
  | { readonly s: string }
  | { readonly ints: readonly number[] }
  | { readonly t: TensorDef };

export interface NodeDef {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly name: string;
  readonly domain?: string;
  readonly attrs?: Readonly<Record<string, AttrValue>>;
}

/** A dimension: a fixed size or a symbolic name (batch, sequence, past_sequence, …). */
export type Dim = number | string;

export interface ValueInfoDef {
  readonly name: string;
  readonly dataType: DataType;
  readonly shape: readonly Dim[];
}

export interface GraphDef {
  readonly name: string;
  readonly nodes: readonly NodeDef[];
  readonly initializers: readonly TensorDef[];
  readonly inputs: readonly ValueInfoDef[];
  readonly outputs: readonly ValueInfoDef[];
}

export interface ModelDef {
  readonly irVersion: number;
  readonly opsets: readonly { readonly domain: string; readonly version: number }[];
  readonly producer: string;
  readonly producerVersion: string;
  readonly docString: string;
  readonly metadata: readonly (readonly [string, string])[];
  readonly graph: GraphDef;
}

function entry(key: string, value: string): ProtoWriter {
  return new ProtoWriter().string(1, key).string(2, value);
}

function tensor(t: TensorDef): ProtoWriter {
  const w = new ProtoWriter().packedInts(1, t.dims).int(2, t.dataType).string(8, t.name);
  if ("raw" in t.data) {
    return w.bytes(9, t.data.raw);
  }
  // external_data (13) and data_location = EXTERNAL (14).
  w.message(13, entry("location", t.data.location));
  w.message(13, entry("offset", String(t.data.offset)));
  w.message(13, entry("length", String(t.data.length)));
  return w.int(14, 1);
}

// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_TENSOR = 4;
const ATTR_INTS = 7;

function attribute(name: string, v: AttrValue): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  if ("f" in v) {
    return w.float(2, v.f).int(20, ATTR_FLOAT);
  }
  if ("i" in v) {
    return w.int(3, v.i).int(20, ATTR_INT);
  }
  if ("s" in v) {
    return w.string(4, v.s).int(20, ATTR_STRING);
  }
  if ("t" in v) {
    return w.message(5, tensor(v.t)).int(20, ATTR_TENSOR);
  }
  // repeated int64 ints = 8 (unpacked in onnx.proto's proto2 syntax; written one by one for every reader).
  for (const i of v.ints) {
    w.int(8, i);
  }
  return w.int(20, ATTR_INTS);
}

function node(n: NodeDef): ProtoWriter {
  const w = new ProtoWriter();
  n.inputs.forEach((i) => w.string(1, i));
  n.outputs.forEach((o) => w.string(2, o));
  w.string(3, n.name).string(4, n.op);
  for (const [k, v] of Object.entries(n.attrs ?? {})) {
    w.message(5, attribute(k, v));
  }
  if (n.domain !== undefined && n.domain !== "") {
    w.string(7, n.domain);
  }
  return w;
}

function valueInfo(v: ValueInfoDef): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) {
    shape.message(1, typeof d === "number" ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  }
  const tensorType = new ProtoWriter().int(1, v.dataType).message(2, shape);
  return new ProtoWriter().string(1, v.name).message(2, new ProtoWriter().message(1, tensorType));
}

function graph(g: GraphDef): ProtoWriter {
  const w = new ProtoWriter();
  g.nodes.forEach((n) => w.message(1, node(n)));
  w.string(2, g.name);
  g.initializers.forEach((t) => w.message(5, tensor(t)));
  g.inputs.forEach((v) => w.message(11, valueInfo(v)));
  g.outputs.forEach((v) => w.message(12, valueInfo(v)));
  return w;
}

/** The serialized ModelProto. */
export function encodeModel(m: ModelDef): Uint8Array {
  const w = new ProtoWriter().int(1, m.irVersion).string(2, m.producer).string(3, m.producerVersion).string(6, m.docString);
  w.message(7, graph(m.graph));
  for (const o of m.opsets) {
    w.message(8, new ProtoWriter().string(1, o.domain).int(2, o.version));
  }
  for (const [k, v] of m.metadata) {
    w.message(14, entry(k, v));
  }
  return w.finish();
}
