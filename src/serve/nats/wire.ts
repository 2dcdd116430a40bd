/**
 * What barbell sends over NATS (docs/scale-out.md): one frame per NATS message, in BAREWire's layout (a 4-byte
 * magic, a u16 version, then a BARE union: a one-byte tag and the message's fields; docs/barewire.md), with its
 * own magic "BNAT" so that no BAREWire v1 reader mistakes it for a tensor frame. The messages are declared with
 * the actor runtime's schema language (the model worker's request and item types are reused as they are: a
 * `tensor` field is a complete BAREWire TensorFrame).
 *
 * Everything that arrives from NATS is hostile input: {@link decodeNatsFrame} checks the size before anything
 * else, then the magic, the version, the BARE value (no trailing bytes, bounded strings and lists) and the
 * semantic limits below, and returns a typed {@link NatsFrameError}; it never throws.
 */
import { framedProtocol } from "../../actors/framed.js";
import { msg, protocol, t, type MessageOf } from "../../actors/index.js";
import { BarbellError } from "../../core/errors.js";
import { err, ok, type Result } from "../../core/result.js";
import { MAX_GRAMMAR_LENGTH } from "../../model/grammar/index.js";
import { wireItem, wireRequest } from "../protocol.js";

/** The first four bytes of every NATS frame. */
export const NATS_MAGIC = "BNAT";
/** The frame version this module reads and writes. */
export const NATS_VERSION = 1;

/** Largest frame read or written: NATS's default max_payload (1 MiB); a larger one is refused before decoding. */
export const MAX_NATS_FRAME_BYTES = 1024 * 1024;
/** Longest worker id, model id, request id or backend name (bytes). */
export const MAX_NATS_NAME_BYTES = 256;
/** Most backends a worker may list. */
export const MAX_NATS_BACKENDS = 16;
/** Most prompt tokens (and stop strings) a generate request may carry. */
export const MAX_NATS_PROMPT_TOKENS = 1 << 20;
export const MAX_NATS_STOP = 16;
/** Largest `parallel`, `queue` or load figure a worker may advertise. */
export const MAX_NATS_SLOTS = 1 << 16;
/** Largest model card (a tensor-free GGUF of the model's metadata, card.ts). */
export const MAX_CARD_BYTES = 64 * 1024 * 1024;
/** Bytes of the card per chunk (well under MAX_NATS_FRAME_BYTES). */
export const CARD_CHUNK_BYTES = 256 * 1024;

const advert = {
  /** The worker's id (unique per deployment) and the model id it serves. */
  worker: t.str,
  model: t.str,
  /** sha256 (hex) of the tokenizer's metadata, and of the whole model card, and the card's length. */
  tokenizer: t.str,
  card: t.str,
  cardBytes: t.uint,
  /** The KV-cache capacity the worker runs with: the most prompt + completion tokens of one request. */
  context: t.uint,
  arch: t.str,
  vocab: t.uint,
  /** Requests decoded together, and requests that may wait beyond them. */
  parallel: t.uint,
  queue: t.uint,
  /** Load now: requests running and waiting in the worker. */
  running: t.uint,
  queued: t.uint,
  backends: t.list(t.str),
  state: t.literal("ready", "leaving"),
  /** Increases with every advert of this worker (a gateway ignores an older one). */
  seq: t.uint,
  /** The worker's heartbeat period: a gateway takes it out after three missed ones. */
  heartbeatMs: t.uint,
  completed: t.uint,
  /** Frames the worker refused as malformed so far. */
  rejected: t.uint,
};

/** The messages, in wire order (append new ones at the end). */
export const natsProtocol = protocol({
  /** A worker's self-description and load, published on `<prefix>.adverts` every heartbeat and on changes. */
  advert: msg.tell(advert),
  /** Anyone asks every worker to advertise now (the reply subject gets each advert). */
  discover: msg.tell({ from: t.str }),
  /** A gateway asks a worker to run a request; the items go to the message's reply subject. */
  generate: msg.tell({ id: t.str, request: t.struct(wireRequest) }),
  /** One output item of request `id`, in order (`seq` from 0). */
  item: msg.tell({ id: t.str, seq: t.uint, resent: t.uint, item: wireItem }),
  /** The gateway no longer wants request `id` (client gone, timeout, shutdown). */
  cancel: msg.tell({ id: t.str }),
  /** A piece of the worker's model card, answered with `cardChunk` (or `refusal`). */
  cardRequest: msg.tell({ offset: t.uint }),
  cardChunk: msg.tell({ total: t.uint, offset: t.uint, bytes: t.bytes }),
  /** A request that cannot be served or a frame that could not be read, answered with its reason. */
  refusal: msg.tell({ code: t.str, message: t.str }),
});
export type NatsMessage = MessageOf<typeof natsProtocol>;
export type NatsAdvert = Extract<NatsMessage, { type: "advert" }>;
export type NatsGenerate = Extract<NatsMessage, { type: "generate" }>;

export type NatsFrameErrorCode =
  | "oversized" // over MAX_NATS_FRAME_BYTES (refused before decoding)
  | "bad-magic" // not a barbell NATS frame
  | "bad-version" // another frame version
  | "malformed" // the BARE value does not decode (truncated, trailing bytes, unknown tag, bad UTF-8, …)
  | "bad-value" // decodes, but breaks a limit or rule of its message
  | "unexpected"; // a well-formed message of a kind this subject does not take

/** A frame from NATS that was refused. Counted by the receiver (`FrameCounters`), never fatal. */
export class NatsFrameError extends BarbellError {
  constructor(
    readonly code: NatsFrameErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "NatsFrameError";
  }
}

/** Encodes a message as one frame; throws ActorError `protocol` when a field does not fit its type. */
export function encodeNatsFrame(message: NatsMessage): Uint8Array {
  const framed = natsFrames.encode(message);
  if (!framed.ok) {
    throw new NatsFrameError(framed.error.code, `${framed.error.message} (MAX_NATS_FRAME_BYTES)`);
  }
  return framed.value;
}

const bytesOf = (s: string): number => Buffer.byteLength(s);

/** Why a decoded message breaks a limit, or undefined. */
function problem(m: NatsMessage): string | undefined {
  const name = (what: string, v: string, empty = false): string | undefined =>
    (!empty && v === "") || bytesOf(v) > MAX_NATS_NAME_BYTES ? `${what} must be 1..${MAX_NATS_NAME_BYTES} bytes` : undefined;
  switch (m.type) {
    case "advert": {
      const slots = [m.parallel, m.queue, m.running, m.queued].some((n) => n > MAX_NATS_SLOTS);
      return (
        name("worker", m.worker) ??
        name("model", m.model) ??
        name("arch", m.arch) ??
        (/^[0-9a-f]{64}$/.test(m.tokenizer) && /^[0-9a-f]{64}$/.test(m.card) ? undefined : "tokenizer and card must be sha256 hex digests") ??
        (m.cardBytes >= 1 && m.cardBytes <= MAX_CARD_BYTES ? undefined : `cardBytes must be 1..${MAX_CARD_BYTES}`) ??
        (m.parallel >= 1 && !slots ? undefined : `parallel must be >= 1 and the slot figures at most ${MAX_NATS_SLOTS}`) ??
        (m.context >= 1 && m.vocab >= 1 ? undefined : "context and vocab must be >= 1") ??
        (m.heartbeatMs >= 10 && m.heartbeatMs <= 60_000 ? undefined : "heartbeatMs must be 10..60000") ??
        (m.backends.length <= MAX_NATS_BACKENDS && m.backends.every((b) => name("backend", b) === undefined) ? undefined : `at most ${MAX_NATS_BACKENDS} backend names`)
      );
    }
    case "discover":
      return name("from", m.from);
    case "generate": {
      const r = m.request;
      return (
        name("id", m.id) ??
        ((r.tokens?.length ?? 0) <= MAX_NATS_PROMPT_TOKENS ? undefined : `at most ${MAX_NATS_PROMPT_TOKENS} prompt tokens`) ??
        (r.stop.length <= MAX_NATS_STOP && r.stop.every((s) => bytesOf(s) <= 1024) ? undefined : `at most ${MAX_NATS_STOP} stop strings of 1 KiB`) ??
        (r.grammar === undefined || r.grammar.length <= MAX_GRAMMAR_LENGTH ? undefined : `grammar over ${MAX_GRAMMAR_LENGTH} characters`) ??
        (r.input === undefined ? undefined : "tensor (logits) requests are not served over NATS")
      );
    }
    case "item":
    case "cancel":
      return name("id", m.id);
    case "cardRequest":
      return m.offset < MAX_CARD_BYTES ? undefined : "offset past MAX_CARD_BYTES";
    case "cardChunk":
      return m.total <= MAX_CARD_BYTES && m.offset + m.bytes.length <= m.total && m.bytes.length <= CARD_CHUNK_BYTES ? undefined : "chunk outside the card";
    case "refusal":
      return bytesOf(m.code) <= 64 && bytesOf(m.message) <= 4096 ? undefined : "refusal text too long";
  }
}

/** The BNAT framing of natsProtocol with its limits (src/actors/framed.ts). */
const natsFrames = framedProtocol({ magic: NATS_MAGIC, version: NATS_VERSION, maxBytes: MAX_NATS_FRAME_BYTES, label: "[nats]", protocol: natsProtocol, check: problem });

/** Reads one frame from NATS; every problem is a NatsFrameError (never a throw). */
export function decodeNatsFrame(data: Uint8Array): Result<NatsMessage, NatsFrameError> {
  const decoded = natsFrames.decode(data);
  return decoded.ok ? decoded : err(new NatsFrameError(decoded.error.code, decoded.error.message));
}

/** Decodes a frame that must be one of `types` (a well-formed frame of another kind is `unexpected`). */
export function expectNatsFrame<const K extends NatsMessage["type"]>(data: Uint8Array, ...types: K[]): Result<Extract<NatsMessage, { type: K }>, NatsFrameError> {
  const decoded = decodeNatsFrame(data);
  if (!decoded.ok) {
    return decoded;
  }
  if (!(types as string[]).includes(decoded.value.type)) {
    return err(new NatsFrameError("unexpected", `[nats] a ${decoded.value.type} frame where ${types.join(" or ")} was expected`));
  }
  return ok(decoded.value as Extract<NatsMessage, { type: K }>);
}

/** Refused frames by code: what a worker advertises and a gateway shows on /metrics. */
export class FrameCounters {
  readonly byCode = new Map<NatsFrameErrorCode, number>();
  #total = 0;

  count(error: NatsFrameError): void {
    this.byCode.set(error.code, (this.byCode.get(error.code) ?? 0) + 1);
    this.#total++;
  }

  get total(): number {
    return this.#total;
  }
}
