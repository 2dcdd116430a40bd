/**
 * Actor frames: what a parent and the worker thread or child process running an actor send each other.
 *
 * A frame is an `ActorFrame` of schema/barewire.bare (docs/barewire.md §10): magic "BWAC", version u16, the
 * frame kind as an `ActorMessage` union, then a `data` body holding the protocol codec's bytes (schema.ts) of a
 * message, reply or item (empty for the other kinds). The head goes through the codec generated from the
 * schema (src/formats/barewire/generated-actor.ts); the body, which may be large, is written and read with the
 * BAREWire helpers of src/formats/barewire/bare.ts and decoded as a view. Decoding returns a Result: a
 * malformed frame is an ActorError `protocol`, never an exception.
 */
import * as bare from "@bare-ts/lib";
import { err, ok, type Result } from "../../core/result.js";
import { bareErrorCode, plainBytes, readBytesView, writeBytes } from "../../formats/barewire/bare.js";
import * as gen from "../../formats/barewire/generated-actor.js";
import { ActorError, protocolError, type RemoteErrorInfo } from "../errors.js";
import { MAX_ACTOR_FRAME_BYTES, MAX_ACTOR_FRAME_HEAD_BYTES, MAX_ERROR_STRING_BYTES } from "../limits.js";
import type { DeliveryMode } from "../protocol.js";

export const FRAME_MAGIC: Uint8Array = Uint8Array.of(0x42, 0x57, 0x41, 0x43);
/** 2 since the frames are `ActorFrame` values of the BAREWire schema (1 was a hand-written layout). */
export const FRAME_VERSION = 2;

/** Frame kinds, in wire-tag order. Parent → actor: start, deliver, cancel, ack, pre-restart, post-stop. */
export type Frame =
  | { readonly kind: "start"; readonly restarts: number; readonly error: RemoteErrorInfo | undefined }
  | { readonly kind: "deliver"; readonly id: number; readonly mode: DeliveryMode; readonly body: Uint8Array }
  | { readonly kind: "cancel"; readonly id: number }
  | { readonly kind: "ack"; readonly id: number }
  | { readonly kind: "pre-restart"; readonly error: RemoteErrorInfo }
  | { readonly kind: "post-stop"; readonly error: RemoteErrorInfo | undefined }
  // actor → parent
  | { readonly kind: "started" }
  | { readonly kind: "start-failed"; readonly error: RemoteErrorInfo }
  | { readonly kind: "done"; readonly id: number; readonly body: Uint8Array }
  | { readonly kind: "failed"; readonly id: number; readonly error: RemoteErrorInfo }
  | { readonly kind: "item"; readonly id: number; readonly body: Uint8Array }
  | { readonly kind: "end"; readonly id: number }
  | { readonly kind: "self-tell"; readonly body: Uint8Array }
  | { readonly kind: "hook-done" };

/** Frame kinds in the order of the schema's `ActorMessage` tags. */
export const FRAME_KINDS = [
  "start",
  "deliver",
  "cancel",
  "ack",
  "pre-restart",
  "post-stop",
  "started",
  "start-failed",
  "done",
  "failed",
  "item",
  "end",
  "self-tell",
  "hook-done",
] as const satisfies readonly Frame["kind"][];

const MODES: Record<DeliveryMode, gen.DeliveryMode> = {
  tell: gen.DeliveryMode.Tell,
  ask: gen.DeliveryMode.Ask,
  stream: gen.DeliveryMode.Stream,
};

const EMPTY = new Uint8Array(0);

// ---- encoding ----

/** Cuts `text` to at most `limit` UTF-8 bytes on a character boundary (error strings are diagnostics). */
function clip(text: string, limit: number): string {
  if (text.length * 3 <= limit) {
    return text;
  }
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= limit) {
    return text;
  }
  let end = limit;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) {
    end--;
  }
  return new TextDecoder().decode(bytes.subarray(0, end));
}

function toRemote(e: RemoteErrorInfo): gen.RemoteError {
  return {
    name: clip(String(e.name), MAX_ERROR_STRING_BYTES),
    message: clip(String(e.message), MAX_ERROR_STRING_BYTES),
    code: clip(String(e.code), MAX_ERROR_STRING_BYTES),
  };
}

function id(value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw protocolError(`frame id ${value} is not a non-negative safe integer`);
  }
  return value;
}

/** The schema's `ActorMessage` and the body of a frame. */
function toWire(frame: Frame): { message: gen.ActorMessage; body: Uint8Array } {
  switch (frame.kind) {
    case "start":
      return {
        message: { tag: "ActorStart", val: { restarts: id(frame.restarts), error: frame.error ? toRemote(frame.error) : null } },
        body: EMPTY,
      };
    case "deliver":
      return { message: { tag: "ActorDeliver", val: { id: id(frame.id), mode: MODES[frame.mode] } }, body: frame.body };
    case "cancel":
      return { message: { tag: "ActorCancel", val: { id: id(frame.id) } }, body: EMPTY };
    case "ack":
      return { message: { tag: "ActorAck", val: { id: id(frame.id) } }, body: EMPTY };
    case "end":
      return { message: { tag: "ActorEnd", val: { id: id(frame.id) } }, body: EMPTY };
    case "pre-restart":
      return { message: { tag: "ActorPreRestart", val: { error: toRemote(frame.error) } }, body: EMPTY };
    case "start-failed":
      return { message: { tag: "ActorStartFailed", val: { error: toRemote(frame.error) } }, body: EMPTY };
    case "post-stop":
      return { message: { tag: "ActorPostStop", val: { error: frame.error ? toRemote(frame.error) : null } }, body: EMPTY };
    case "done":
      return { message: { tag: "ActorDone", val: { id: id(frame.id) } }, body: frame.body };
    case "item":
      return { message: { tag: "ActorItem", val: { id: id(frame.id) } }, body: frame.body };
    case "failed":
      return { message: { tag: "ActorFailed", val: { id: id(frame.id), error: toRemote(frame.error) } }, body: EMPTY };
    case "self-tell":
      return { message: { tag: "ActorSelfTell", val: null }, body: frame.body };
    case "started":
      return { message: { tag: "ActorStarted", val: null }, body: EMPTY };
    case "hook-done":
      return { message: { tag: "ActorHookDone", val: null }, body: EMPTY };
  }
}

/**
 * Encodes a frame into a buffer of its own (so it can be transferred). Error strings longer than
 * MAX_ERROR_STRING_BYTES are cut; a frame over MAX_ACTOR_FRAME_BYTES throws ActorError `protocol`.
 */
export function encodeFrame(frame: Frame): Uint8Array {
  const { message, body } = toWire(frame);
  if (!(body instanceof Uint8Array)) {
    throw protocolError(`the body of a '${frame.kind}' frame is not a Uint8Array`);
  }
  const bc = new bare.ByteCursor(new Uint8Array(256), bare.Config({ initialBufferLength: 256, maxBufferLength: MAX_ACTOR_FRAME_BYTES }));
  try {
    bare.writeFixedData(bc, FRAME_MAGIC.slice().buffer);
    bare.writeU16(bc, FRAME_VERSION);
    gen.writeActorMessage(bc, message);
    writeBytes(bc, body);
  } catch (error) {
    if (error instanceof bare.BareError) {
      throw protocolError(`a '${frame.kind}' frame with a ${body.length}-byte body is over ${MAX_ACTOR_FRAME_BYTES} bytes`);
    }
    throw error;
  }
  return bc.bytes.slice(0, bc.offset);
}

// ---- decoding ----

function fromRemote(e: gen.RemoteError): RemoteErrorInfo {
  for (const s of [e.name, e.message, e.code]) {
    if (new TextEncoder().encode(s).length > MAX_ERROR_STRING_BYTES) {
      throw protocolError(`an error string over ${MAX_ERROR_STRING_BYTES} bytes`);
    }
  }
  return { name: e.name, message: e.message, code: e.code };
}

function fromWire(message: gen.ActorMessage, body: Uint8Array): Frame {
  const noBody = <F extends Frame>(frame: F): F => {
    if (body.length > 0) {
      throw protocolError(`a '${frame.kind}' frame carries a ${body.length}-byte body`);
    }
    return frame;
  };
  switch (message.tag) {
    case "ActorStart":
      return noBody({ kind: "start", restarts: message.val.restarts, error: message.val.error ? fromRemote(message.val.error) : undefined });
    case "ActorDeliver": {
      const mode = (Object.keys(MODES) as DeliveryMode[]).find((m) => MODES[m] === message.val.mode) ?? "tell";
      return { kind: "deliver", id: message.val.id, mode, body };
    }
    case "ActorCancel":
      return noBody({ kind: "cancel", id: message.val.id });
    case "ActorAck":
      return noBody({ kind: "ack", id: message.val.id });
    case "ActorEnd":
      return noBody({ kind: "end", id: message.val.id });
    case "ActorPreRestart":
      return noBody({ kind: "pre-restart", error: fromRemote(message.val.error) });
    case "ActorStartFailed":
      return noBody({ kind: "start-failed", error: fromRemote(message.val.error) });
    case "ActorPostStop":
      return noBody({ kind: "post-stop", error: message.val.error ? fromRemote(message.val.error) : undefined });
    case "ActorDone":
      return { kind: "done", id: message.val.id, body };
    case "ActorItem":
      return { kind: "item", id: message.val.id, body };
    case "ActorFailed":
      return noBody({ kind: "failed", id: message.val.id, error: fromRemote(message.val.error) });
    case "ActorSelfTell":
      return { kind: "self-tell", body };
    case "ActorStarted":
      return noBody({ kind: "started" });
    case "ActorHookDone":
      return noBody({ kind: "hook-done" });
  }
}

/**
 * Decodes one frame from whatever arrived on a channel. Anything that is not a Uint8Array, a frame over
 * MAX_ACTOR_FRAME_BYTES, a bad magic or version, an unknown tag or delivery mode, a truncated or non-canonical
 * value, invalid UTF-8, an error string over MAX_ERROR_STRING_BYTES, a body on a kind without one, and trailing
 * bytes are all an ActorError `protocol`. The body is a view of `data`.
 */
export function decodeFrame(data: unknown): Result<Frame, ActorError> {
  if (!(data instanceof Uint8Array)) {
    return err(protocolError(`received a ${data === null ? "null" : typeof data}, not a frame`));
  }
  const bytes = plainBytes(data);
  if (bytes.length > MAX_ACTOR_FRAME_BYTES) {
    return err(protocolError(`a ${bytes.length}-byte frame is over ${MAX_ACTOR_FRAME_BYTES} bytes`));
  }
  for (let i = 0; i < FRAME_MAGIC.length; i++) {
    if (bytes[i] !== FRAME_MAGIC[i]) {
      return err(protocolError("bad magic (not an actor frame)"));
    }
  }
  if (bytes.length < FRAME_MAGIC.length + 2) {
    return err(protocolError(`truncated: ${bytes.length} bytes are too few for a frame`));
  }
  const version = (bytes[4] ?? 0) | ((bytes[5] ?? 0) << 8);
  if (version !== FRAME_VERSION) {
    return err(protocolError(`actor frame version ${version}, expected ${FRAME_VERSION}`));
  }
  // The head (kind and its fields) is read within a window, so its strings cannot claim the body's bytes.
  const head = new bare.ByteCursor(bytes.subarray(0, Math.min(bytes.length, MAX_ACTOR_FRAME_HEAD_BYTES)), bare.Config({}));
  head.offset = FRAME_MAGIC.length + 2;
  let message: gen.ActorMessage;
  try {
    message = gen.readActorMessage(head);
  } catch (error) {
    return err(readFailure(error, head.bytes.length < bytes.length ? "the frame head is over its limit" : "frame head"));
  }
  const rest = new bare.ByteCursor(bytes, bare.Config({ maxBufferLength: MAX_ACTOR_FRAME_BYTES }));
  rest.offset = head.offset;
  try {
    const body = readBytesView(rest, MAX_ACTOR_FRAME_BYTES);
    if (rest.offset !== bytes.length) {
      throw protocolError(`${bytes.length - rest.offset} trailing bytes`);
    }
    return ok(fromWire(message, body));
  } catch (error) {
    return err(readFailure(error, "frame body"));
  }
}

function readFailure(error: unknown, what: string): ActorError {
  if (error instanceof ActorError) {
    return error;
  }
  // Only the library's errors are expected here; anything else is reported the same way, never thrown.
  const code = bareErrorCode(error) ?? "unexpected error";
  const detail = error instanceof Error ? error.message : String(error);
  return protocolError(`${what}: ${code === "non-canonical" ? "non-canonical value" : code}: ${detail}`);
}
