/**
 * Framed protocol messages: BAREWire's layout (a 4-byte ASCII magic, a u16 version, then the BARE union of a
 * `protocol()` message) with a size limit checked before anything else and an optional per-message rule check.
 * The one framing of the messages barbell sends between processes over something other than an actor link: the
 * NATS frames ("BNAT", src/serve/nats/wire.ts) and the durable batch records ("BBAT", src/serve/batch/wire.ts).
 * Decoding never throws: every problem is a {@link FrameProblem} that the caller turns into its own typed error.
 */
import { err, ok, type Result } from "../core/result.js";
import type { ProtocolCodec } from "./schema.js";

/** Why a frame was refused. */
export type FrameProblemCode =
  | "oversized" // over the frame limit (refused before decoding)
  | "bad-magic" // not this kind of frame
  | "bad-version" // another frame version
  | "malformed" // the BARE value does not decode (truncated, trailing bytes, unknown tag, bad UTF-8, …)
  | "bad-value"; // decodes, but breaks a limit or rule of its message

export interface FrameProblem {
  readonly code: FrameProblemCode;
  readonly message: string;
}

export interface FramedCodec<M extends { readonly type: string }> {
  /** The encoded frame, or `oversized` when it is over the limit (the message is never cut). */
  encode(message: M): Result<Uint8Array, FrameProblem>;
  /** The message of a frame: size, magic, version, BARE value and the message's own rules, in that order. */
  decode(data: Uint8Array): Result<M, FrameProblem>;
}

const PREAMBLE = 6;

/**
 * A codec of `protocol`'s messages framed with `magic` (four ASCII characters) and `version`, at most
 * `maxBytes` per frame; `check` names what a decoded message breaks, or returns undefined. `label` starts every
 * problem's message ("[nats]").
 */
export function framedProtocol<M extends { readonly type: string }>(options: {
  readonly magic: string;
  readonly version: number;
  readonly maxBytes: number;
  readonly label: string;
  readonly protocol: ProtocolCodec<M>;
  readonly check?: (message: M) => string | undefined;
}): FramedCodec<M> {
  const { version, maxBytes, label } = options;
  const magic = Uint8Array.from(options.magic, (c) => c.charCodeAt(0) & 0xff);
  if (magic.length !== 4 || version < 0 || version > 0xffff) {
    throw new RangeError(`${label} a frame magic is 4 ASCII characters and its version a u16`);
  }
  return {
    encode(message) {
      const body = options.protocol.encodeMessage(message);
      const size = PREAMBLE + body.length;
      if (size > maxBytes) {
        return err({ code: "oversized", message: `${label} a ${message.type} frame of ${size} bytes is over the ${maxBytes}-byte limit` });
      }
      const out = new Uint8Array(size);
      out.set(magic, 0);
      out[4] = version & 0xff;
      out[5] = version >> 8;
      out.set(body, PREAMBLE);
      return ok(out);
    },
    decode(data) {
      if (data.length > maxBytes) {
        return err({ code: "oversized", message: `${label} a frame of ${data.length} bytes is over the ${maxBytes}-byte limit` });
      }
      if (data.length < PREAMBLE || magic.some((b, i) => data[i] !== b)) {
        return err({ code: "bad-magic", message: `${label} not a ${options.magic} frame` });
      }
      const got = (data[4] ?? 0) | ((data[5] ?? 0) << 8);
      if (got !== version) {
        return err({ code: "bad-version", message: `${label} frame version ${got}; this barbell reads ${version}` });
      }
      const decoded = options.protocol.decodeMessage(data.subarray(PREAMBLE));
      if (!decoded.ok) {
        return err({ code: "malformed", message: `${label} malformed frame: ${decoded.error.message}` });
      }
      const why = options.check?.(decoded.value);
      return why === undefined ? ok(decoded.value) : err({ code: "bad-value", message: `${label} ${decoded.value.type}: ${why}` });
    },
  };
}
