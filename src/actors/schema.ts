/**
 * Protocols that cross a thread or process boundary. A protocol lists its variants with a schema of
 * fields (a subset of BARE types) and, for asks and streams, the type of the reply or item. From it the
 * compiler derives the message union (the same shape as a hand-written one, see protocol.ts) and the
 * runtime derives a codec:
 *
 * ```ts
 * const counter = protocol({
 *   add: msg.tell({ by: t.int }),
 *   get: msg.ask({}, t.int),
 *   countTo: msg.stream({ n: t.uint }, t.uint),
 * });
 * type Counter = MessageOf<typeof counter>;
 * ```
 *
 * Wire form of a message: the variant's index as a BARE union tag (`uint`), then its fields in
 * declaration order (a BARE struct). Replies and items are the bare value of their type. A `tensor` field
 * is a complete BAREWire TensorFrame (docs/barewire.md) in a `data` field. Every value is written and read
 * with @bare-ts/lib, the library of the generated BAREWire codecs; this file only adds the declaration
 * language, which a static .bare file cannot give (docs/architecture.md, "One of each").
 */
import * as bare from "@bare-ts/lib";
import { err, ok, type Result } from "../core/result.js";
import { bareErrorCode, plainBytes, readBytesView, readText, writeBytes, writeText } from "../formats/barewire/bare.js";
import { encodeTensorFrame, decodeMessage as decodeWireMessage } from "../formats/barewire/wire.js";
import type { WireTensor } from "../formats/barewire/message.js";
import { ActorError, protocolError } from "./errors.js";
import { MAX_ACTOR_FRAME_BYTES, MAX_FIELD_LIST_LENGTH, MAX_FIELD_STRING_BYTES } from "./limits.js";
import type { DeliveryMode, MessageBase, ProtocolCodec, Replies, Streams } from "./protocol.js";

export type { ProtocolCodec } from "./protocol.js";

type Writer = bare.ByteCursor;
type Reader = bare.ByteCursor;

/** A field type: how one value is written and read. `write` throws ActorError `protocol` for a value that does not fit; `read` throws on bad bytes. */
export interface FieldType<T> {
  readonly name: string;
  write(w: Writer, value: T): void;
  read(r: Reader): T;
}

/** The TypeScript type a field type carries. */
export type Infer<F> = F extends FieldType<infer T> ? T : never;

type FieldMap = Record<string, FieldType<never> | FieldType<unknown>>;
type Struct<F extends FieldMap> = { readonly [K in keyof F]: Infer<F[K]> };

function writeStruct(w: Writer, fields: FieldMap, value: unknown): void {
  if (typeof value !== "object" || value === null) {
    throw protocolError("struct field does not hold an object");
  }
  for (const [key, type] of Object.entries(fields)) {
    (type as FieldType<unknown>).write(w, Reflect.get(value, key));
  }
}

function readStruct(r: Reader, fields: FieldMap, into: Record<string, unknown>): void {
  for (const [key, type] of Object.entries(fields)) {
    into[key] = (type as FieldType<unknown>).read(r);
  }
}

function writeUint(w: Writer, value: number, what = "uint"): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw protocolError(`${what} field holds ${value}`);
  }
  bare.writeUintSafe(w, value);
}

/** The field types. */
export const t = {
  uint: { name: "uint", write: (w, v) => writeUint(w, v), read: (r) => bare.readUintSafe(r) } satisfies FieldType<number>,
  int: {
    name: "int",
    write: (w, v) => {
      if (!Number.isSafeInteger(v)) {
        throw protocolError(`int field holds ${v}`);
      }
      bare.writeIntSafe(w, v);
    },
    read: (r) => bare.readIntSafe(r),
  } satisfies FieldType<number>,
  f64: {
    name: "f64",
    write: (w, v) => {
      if (typeof v !== "number") {
        throw protocolError(`f64 field holds a ${typeof v}`);
      }
      bare.writeF64(w, v);
    },
    read: (r) => bare.readF64(r),
  } satisfies FieldType<number>,
  bool: {
    name: "bool",
    write: (w, v) => {
      if (typeof v !== "boolean") {
        throw protocolError(`bool field holds a ${typeof v}`);
      }
      bare.writeBool(w, v);
    },
    read: (r) => bare.readBool(r),
  } satisfies FieldType<boolean>,
  str: {
    name: "str",
    write: (w, v) => {
      if (typeof v !== "string") {
        throw protocolError(`str field holds a ${typeof v}`);
      }
      if (!writeText(w, v, MAX_FIELD_STRING_BYTES)) {
        throw protocolError(`string over ${MAX_FIELD_STRING_BYTES} bytes`);
      }
    },
    read: (r) => readText(r, MAX_FIELD_STRING_BYTES),
  } satisfies FieldType<string>,
  /** Bytes; decoded as a view of the received frame (no copy). */
  bytes: {
    name: "data",
    write: (w, v) => {
      if (!(v instanceof Uint8Array)) {
        throw protocolError("data field does not hold a Uint8Array");
      }
      writeBytes(w, v);
    },
    read: (r) => readBytesView(r, MAX_ACTOR_FRAME_BYTES),
  } satisfies FieldType<Uint8Array>,
  /** A tensor as a BAREWire TensorFrame; decoded with every BAREWire check, payload as a view. */
  tensor: {
    name: "tensor",
    write: (w, v) => writeBytes(w, encodeTensorFrame(v)),
    read: (r) => {
      const decoded = decodeWireMessage(readBytesView(r, MAX_ACTOR_FRAME_BYTES));
      if (!decoded.ok) {
        throw protocolError(`tensor field: ${decoded.error.message}`);
      }
      if (decoded.value.kind !== "tensor") {
        throw protocolError(`tensor field holds a '${decoded.value.kind}' frame`);
      }
      return decoded.value.tensor;
    },
  } satisfies FieldType<WireTensor>,
  list<T>(of: FieldType<T>): FieldType<readonly T[]> {
    return {
      name: `list<${of.name}>`,
      write: (w, v) => {
        if (!Array.isArray(v)) {
          throw protocolError("list field does not hold an array");
        }
        writeUint(w, v.length, "list length");
        for (const item of v) {
          of.write(w, item);
        }
      },
      read: (r) => {
        const n = bare.readUintSafe(r);
        if (n > MAX_FIELD_LIST_LENGTH) {
          throw protocolError(`list of ${n} items over ${MAX_FIELD_LIST_LENGTH}`);
        }
        const out: T[] = [];
        for (let i = 0; i < n; i++) {
          out.push(of.read(r));
        }
        return out;
      },
    };
  },
  optional<T>(of: FieldType<T>): FieldType<T | undefined> {
    return {
      name: `optional<${of.name}>`,
      write: (w, v) => {
        bare.writeBool(w, v !== undefined);
        if (v !== undefined) {
          of.write(w, v);
        }
      },
      read: (r) => (bare.readBool(r) ? of.read(r) : undefined),
    };
  },
  struct<F extends FieldMap>(fields: F): FieldType<Struct<F>> {
    return {
      name: "struct",
      write: (w, v) => writeStruct(w, fields, v),
      read: (r) => {
        const out: Record<string, unknown> = {};
        readStruct(r, fields, out);
        return out as Struct<F>;
      },
    };
  },
  /** One of a fixed set of strings (a BARE enum: the index as a `uint`). */
  literal<const V extends readonly string[]>(...values: V): FieldType<V[number]> {
    return {
      name: `enum(${values.join("|")})`,
      write: (w, v) => {
        const index = values.indexOf(v);
        if (index < 0) {
          throw protocolError(`enum value '${String(v)}' is not one of ${values.join(", ")}`);
        }
        bare.writeUintSafe(w, index);
      },
      read: (r) => {
        const index = bare.readUintSafe(r);
        const value = values[index];
        if (value === undefined) {
          throw protocolError(`enum index ${index} of ${values.length}`);
        }
        return value;
      },
    };
  },
};

/** One variant of a protocol: its delivery mode, fields and (ask, stream) result type. */
export interface VariantSpec<Mode extends DeliveryMode = DeliveryMode, F extends FieldMap = FieldMap, R = unknown> {
  readonly mode: Mode;
  readonly fields: F;
  readonly result: FieldType<R> | undefined;
}

/** Variant constructors. */
export const msg = {
  tell: <const F extends FieldMap>(fields: F): VariantSpec<"tell", F, never> => ({ mode: "tell", fields, result: undefined }),
  ask: <const F extends FieldMap, R>(fields: F, reply: FieldType<R>): VariantSpec<"ask", F, R> => ({
    mode: "ask",
    fields,
    result: reply,
  }),
  stream: <const F extends FieldMap, T>(fields: F, item: FieldType<T>): VariantSpec<"stream", F, T> => ({
    mode: "stream",
    fields,
    result: item,
  }),
};

type VariantMessage<K extends string, S> =
  S extends VariantSpec<infer Mode, infer F, infer R>
    ? { readonly type: K } & Struct<F> & (Mode extends "ask" ? Replies<R> : Mode extends "stream" ? Streams<R> : unknown)
    : never;

/** The message union of a protocol spec. */
export type MessageOf<P> =
  P extends ProtocolCodec<infer M> ? M : never;

type SpecMessage<D extends Record<string, VariantSpec>> = { [K in keyof D & string]: VariantMessage<K, D[K]> }[keyof D &
  string];

/** A cursor that grows up to the largest frame; writing past it throws a BareError. */
function writer(): Writer {
  return new bare.ByteCursor(new Uint8Array(256), bare.Config({ initialBufferLength: 256, maxBufferLength: MAX_ACTOR_FRAME_BYTES }));
}

/** Runs an encoder; the bytes written, in a buffer of their own (so it can be transferred). */
function encoded(write: (w: Writer) => void): Uint8Array {
  const w = writer();
  try {
    write(w);
  } catch (error) {
    if (error instanceof bare.BareError) {
      throw protocolError(`an encoded message over ${MAX_ACTOR_FRAME_BYTES} bytes`);
    }
    throw error;
  }
  return w.bytes.slice(0, w.offset);
}

/** Runs a decoder over all of `bytes`; every failure, trailing bytes included, is an ActorError `protocol`. */
function decoded<T>(bytes: Uint8Array, read: (r: Reader) => T): Result<T, ActorError> {
  try {
    const r = new bare.ByteCursor(plainBytes(bytes), bare.Config({ maxBufferLength: MAX_ACTOR_FRAME_BYTES }));
    const value = read(r);
    if (r.offset !== r.bytes.length) {
      throw protocolError(`${r.bytes.length - r.offset} trailing bytes`);
    }
    return ok(value);
  } catch (error) {
    if (error instanceof ActorError) {
      return err(error);
    }
    const code = bareErrorCode(error) ?? "unexpected error";
    return err(protocolError(`${code}: ${error instanceof Error ? error.message : String(error)}`));
  }
}

/** Builds the codec of a protocol spec (variant order is wire order: append new variants at the end). */
export function protocol<const D extends Record<string, VariantSpec>>(spec: D): ProtocolCodec<SpecMessage<D>> {
  const names = Object.keys(spec);
  const variant = (type: string): VariantSpec => {
    const found = Object.hasOwn(spec, type) ? spec[type] : undefined;
    if (!found) {
      throw protocolError(`unknown message type '${type}'`);
    }
    return found;
  };
  const resultType = (type: string): FieldType<unknown> => {
    const result = variant(type).result;
    if (!result) {
      throw protocolError(`'${type}' is a tell; it has no reply`);
    }
    return result as FieldType<unknown>;
  };
  return {
    variants: names,
    modeOf: (type) => (Object.hasOwn(spec, type) ? spec[type]?.mode : undefined),
    encodeMessage(message) {
      const type = (message as MessageBase | undefined)?.type;
      if (typeof type !== "string") {
        throw protocolError("message has no string 'type'");
      }
      const fields = variant(type).fields;
      return encoded((w) => {
        bare.writeUintSafe(w, names.indexOf(type));
        writeStruct(w, fields, message);
      });
    },
    decodeMessage(bytes) {
      return decoded(bytes, (r) => {
        const tag = bare.readUintSafe(r);
        const type = names[tag];
        if (type === undefined) {
          throw protocolError(`unknown variant tag ${tag} (protocol has ${names.length})`);
        }
        const out: Record<string, unknown> = { type };
        readStruct(r, variant(type).fields, out);
        return out as SpecMessage<D>;
      });
    },
    encodeResult(type, value) {
      const result = resultType(type);
      return encoded((w) => result.write(w, value));
    },
    decodeResult(type, bytes) {
      return decoded(bytes, (r) => resultType(type).read(r));
    },
  };
}
