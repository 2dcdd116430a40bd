/**
 * Actor frames: what a parent and the worker thread or child process running an actor send each other.
 *
 * Layout (BARE, like BAREWire): magic "BWAC" (4 bytes), version u16 = 1, the frame kind as a union tag
 * (`uint`), then the kind's fields. Message bodies, replies and items are `data` fields holding the
 * protocol codec's bytes (schema.ts), so a tensor inside a message is a BAREWire TensorFrame. Decoding
 * returns a Result: a malformed frame is an ActorError `protocol`, never an exception.
 */
import { err, ok, type Result } from "../../core/result.js";
import { ByteReader, ByteWriter, protocolError } from "../bytes.js";
import { ActorError, type RemoteErrorInfo } from "../errors.js";
import type { DeliveryMode } from "../instance.js";

export const FRAME_MAGIC: Uint8Array = Uint8Array.of(0x42, 0x57, 0x41, 0x43);
export const FRAME_VERSION = 1;

const MODES: readonly DeliveryMode[] = ["tell", "ask", "stream"];

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

function writeError(w: ByteWriter, e: RemoteErrorInfo): void {
  w.str(e.name);
  w.str(e.message);
  w.str(e.code);
}

function readError(r: ByteReader): RemoteErrorInfo {
  return { name: r.str(), message: r.str(), code: r.str() };
}

function writeOptionalError(w: ByteWriter, e: RemoteErrorInfo | undefined): void {
  w.u8(e ? 1 : 0);
  if (e) {
    writeError(w, e);
  }
}

function readOptionalError(r: ByteReader): RemoteErrorInfo | undefined {
  const flag = r.u8();
  if (flag > 1) {
    throw protocolError(`optional flag ${flag}`);
  }
  return flag === 1 ? readError(r) : undefined;
}

export function encodeFrame(frame: Frame): Uint8Array {
  const w = new ByteWriter();
  for (const b of FRAME_MAGIC) {
    w.u8(b);
  }
  w.u8(FRAME_VERSION & 0xff);
  w.u8(FRAME_VERSION >> 8);
  w.uint(FRAME_KINDS.indexOf(frame.kind));
  switch (frame.kind) {
    case "start":
      w.uint(frame.restarts);
      writeOptionalError(w, frame.error);
      break;
    case "deliver":
      w.uint(frame.id);
      w.uint(MODES.indexOf(frame.mode));
      w.bytes(frame.body);
      break;
    case "cancel":
    case "ack":
    case "end":
      w.uint(frame.id);
      break;
    case "pre-restart":
    case "start-failed":
      writeError(w, frame.error);
      break;
    case "post-stop":
      writeOptionalError(w, frame.error);
      break;
    case "done":
    case "item":
      w.uint(frame.id);
      w.bytes(frame.body);
      break;
    case "failed":
      w.uint(frame.id);
      writeError(w, frame.error);
      break;
    case "self-tell":
      w.bytes(frame.body);
      break;
    case "started":
    case "hook-done":
      break;
  }
  return w.finish();
}

function readFrame(r: ByteReader): Frame {
  for (const b of FRAME_MAGIC) {
    if (r.u8() !== b) {
      throw protocolError("bad magic (not an actor frame)");
    }
  }
  const version = r.u8() | (r.u8() << 8);
  if (version !== FRAME_VERSION) {
    throw protocolError(`actor frame version ${version}, expected ${FRAME_VERSION}`);
  }
  const tag = r.uint();
  const kind = FRAME_KINDS[tag];
  switch (kind) {
    case "start":
      return { kind, restarts: r.uint(), error: readOptionalError(r) };
    case "deliver": {
      const id = r.uint();
      const modeIndex = r.uint();
      const mode = MODES[modeIndex];
      if (!mode) {
        throw protocolError(`delivery mode ${modeIndex}`);
      }
      return { kind, id, mode, body: r.bytesView() };
    }
    case "cancel":
    case "ack":
    case "end":
      return { kind, id: r.uint() };
    case "pre-restart":
    case "start-failed":
      return { kind, error: readError(r) };
    case "post-stop":
      return { kind, error: readOptionalError(r) };
    case "done":
    case "item":
      return { kind, id: r.uint(), body: r.bytesView() };
    case "failed":
      return { kind, id: r.uint(), error: readError(r) };
    case "self-tell":
      return { kind, body: r.bytesView() };
    case "started":
    case "hook-done":
      return { kind };
    default:
      throw protocolError(`unknown frame tag ${tag}`);
  }
}

/** Decodes one frame from whatever arrived on a channel (anything that is not a Uint8Array is refused). */
export function decodeFrame(data: unknown): Result<Frame, ActorError> {
  if (!(data instanceof Uint8Array)) {
    return err(protocolError(`received a ${data === null ? "null" : typeof data}, not a frame`));
  }
  try {
    const r = new ByteReader(data);
    const frame = readFrame(r);
    r.end();
    return ok(frame);
  } catch (error) {
    return err(error instanceof ActorError ? error : protocolError(String(error)));
  }
}
