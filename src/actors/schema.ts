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
 * is a complete BAREWire TensorFrame (docs/barewire.md) in a `data` field.
 */
import { err, ok, type Result } from "../core/result.js";
import { encodeTensorFrame, decodeMessage as decodeWireMessage } from "../formats/barewire/wire.js";
import type { WireTensor } from "../formats/barewire/message.js";
import { ByteReader, ByteWriter, protocolError } from "./bytes.js";
import { ActorError } from "./errors.js";
import type { DeliveryMode } from "./instance.js";
import { MAX_FIELD_LIST_LENGTH } from "./limits.js";
import type { MessageBase, Replies, Streams } from "./protocol.js";

/** A field type: how one value is written and read. `read` throws ActorError `protocol` on bad bytes. */
export interface FieldType<T> {
  readonly name: string;
  write(w: ByteWriter, value: T): void;
  read(r: ByteReader): T;
}

/** The TypeScript type a field type carries. */
export type Infer<F> = F extends FieldType<infer T> ? T : never;

type FieldMap = Record<string, FieldType<never> | FieldType<unknown>>;
type Struct<F extends FieldMap> = { readonly [K in keyof F]: Infer<F[K]> };

function writeStruct(w: ByteWriter, fields: FieldMap, value: Record<string, unknown>): void {
  if (typeof value !== "object" || value === null) {
    throw protocolError("struct field does not hold an object");
  }
  for (const [key, type] of Object.entries(fields)) {
    (type as FieldType<unknown>).write(w, value[key]);
  }
}

function readStruct(r: ByteReader, fields: FieldMap, into: Record<string, unknown>): void {
  for (const [key, type] of Object.entries(fields)) {
    into[key] = (type as FieldType<unknown>).read(r);
  }
}

/** The field types. */
export const t = {
  uint: { name: "uint", write: (w, v) => w.uint(v), read: (r) => r.uint() } satisfies FieldType<number>,
  int: { name: "int", write: (w, v) => w.int(v), read: (r) => r.int() } satisfies FieldType<number>,
  f64: { name: "f64", write: (w, v) => w.f64(v), read: (r) => r.f64() } satisfies FieldType<number>,
  bool: {
    name: "bool",
    write: (w, v) => {
      if (typeof v !== "boolean") {
        throw protocolError(`bool field holds a ${typeof v}`);
      }
      w.u8(v ? 1 : 0);
    },
    read: (r) => {
      const b = r.u8();
      if (b > 1) {
        throw protocolError(`bool byte ${b}`);
      }
      return b === 1;
    },
  } satisfies FieldType<boolean>,
  str: { name: "str", write: (w, v) => w.str(v), read: (r) => r.str() } satisfies FieldType<string>,
  /** Bytes; decoded as a view of the received frame (no copy). */
  bytes: { name: "data", write: (w, v) => w.bytes(v), read: (r) => r.bytesView() } satisfies FieldType<Uint8Array>,
  /** A tensor as a BAREWire TensorFrame; decoded with every BAREWire check, payload as a view. */
  tensor: {
    name: "tensor",
    write: (w, v) => w.bytes(encodeTensorFrame(v)),
    read: (r) => {
      const decoded = decodeWireMessage(r.bytesView());
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
        w.uint(v.length);
        for (const item of v) {
          of.write(w, item);
        }
      },
      read: (r) => {
        const n = r.uint();
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
        w.u8(v === undefined ? 0 : 1);
        if (v !== undefined) {
          of.write(w, v);
        }
      },
      read: (r) => {
        const flag = r.u8();
        if (flag > 1) {
          throw protocolError(`optional flag ${flag}`);
        }
        return flag === 1 ? of.read(r) : undefined;
      },
    };
  },
  struct<F extends FieldMap>(fields: F): FieldType<Struct<F>> {
    return {
      name: "struct",
      write: (w, v) => writeStruct(w, fields, v as Record<string, unknown>),
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
        w.uint(index);
      },
      read: (r) => {
        const index = r.uint();
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

/** The codec of a protocol: what the runtime uses to move messages, replies and items across a boundary. */
export interface ProtocolCodec<M extends MessageBase> {
  /** Variant names in wire order. */
  readonly variants: readonly string[];
  /** Delivery mode of a variant, or undefined for an unknown type. */
  modeOf(type: string): DeliveryMode | undefined;
  /** Throws ActorError `protocol` when the message does not fit its variant's schema. */
  encodeMessage(message: M): Uint8Array;
  decodeMessage(bytes: Uint8Array): Result<M, ActorError>;
  /** Encodes the reply (ask) or an item (stream) of variant `type`. */
  encodeResult(type: string, value: unknown): Uint8Array;
  decodeResult(type: string, bytes: Uint8Array): Result<unknown, ActorError>;
}

function caught<T>(run: () => T): Result<T, ActorError> {
  try {
    return ok(run());
  } catch (error) {
    return err(error instanceof ActorError ? error : protocolError(String(error)));
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
      const w = new ByteWriter();
      w.uint(names.indexOf(type) < 0 ? (variant(type), 0) : names.indexOf(type));
      writeStruct(w, variant(type).fields, message as unknown as Record<string, unknown>);
      return w.finish();
    },
    decodeMessage(bytes) {
      return caught(() => {
        const r = new ByteReader(bytes);
        const tag = r.uint();
        const type = names[tag];
        if (type === undefined) {
          throw protocolError(`unknown variant tag ${tag} (protocol has ${names.length})`);
        }
        const out: Record<string, unknown> = { type };
        readStruct(r, variant(type).fields, out);
        r.end();
        return out as unknown as SpecMessage<D>;
      });
    },
    encodeResult(type, value) {
      const w = new ByteWriter();
      resultType(type).write(w, value);
      return w.finish();
    },
    decodeResult(type, bytes) {
      return caught(() => {
        const r = new ByteReader(bytes);
        const value = resultType(type).read(r);
        r.end();
        return value;
      });
    },
  };
}
