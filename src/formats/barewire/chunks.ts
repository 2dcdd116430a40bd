/** Reassembles a tensor sent as `TensorBegin` + `TensorChunk` frames. */
import { FormatError } from "../../core/errors.js";
import { err, ok, type Result } from "../../core/result.js";
import { MAX_CHUNKED_TENSOR_BYTES, MIN_CHUNK_BYTES } from "./limits.js";
import type { WireTensor, WireTensorHeader } from "./message.js";
import { decodeMessage } from "./wire.js";

function fail<T>(message: string, code: "bad-value" | "limit" | "truncated" = "bad-value"): Result<T, FormatError> {
  return err(new FormatError(code, `[barewire] ${message}`));
}

interface Open {
  readonly stream: number;
  readonly header: WireTensorHeader;
  readonly totalBytes: number;
  readonly chunkBytes: number;
  readonly chunks: Uint8Array[];
  received: number;
}

/**
 * Feeds frames of one chunked tensor in order; `push` returns the tensor after its last chunk.
 *
 * Memory: chunks are kept as the views `push` was given and joined once at the end, so the assembler never
 * holds more than the bytes it has received plus, at the end, the joined payload; a `TensorBegin` that
 * declares a huge tensor allocates nothing.
 */
export class ChunkAssembler {
  #open: Open | undefined;
  readonly #maxBytes: number;

  /** @param maxBytes largest tensor accepted; default and ceiling MAX_CHUNKED_TENSOR_BYTES. */
  constructor(maxBytes: number = MAX_CHUNKED_TENSOR_BYTES) {
    this.#maxBytes = Math.min(maxBytes, MAX_CHUNKED_TENSOR_BYTES);
  }

  /** True while a tensor has begun and not all of its chunks have arrived. */
  get pending(): boolean {
    return this.#open !== undefined;
  }

  /** Takes the next frame. Returns the complete tensor after the last chunk, undefined before it. */
  push(frame: Uint8Array): Result<WireTensor | undefined, FormatError> {
    const decoded = decodeMessage(frame);
    if (!decoded.ok) {
      return decoded;
    }
    const m = decoded.value;
    if (m.kind === "tensor-begin") {
      if (this.#open !== undefined) {
        return fail(`stream ${m.stream} begins while stream ${this.#open.stream} is incomplete`);
      }
      if (m.totalBytes > this.#maxBytes) {
        return fail(`a ${m.totalBytes}-byte chunked tensor exceeds the limit of ${this.#maxBytes}`, "limit");
      }
      if (m.chunkBytes < Math.min(MIN_CHUNK_BYTES, m.totalBytes)) {
        return fail(`chunks of ${m.chunkBytes} bytes are below the minimum of ${MIN_CHUNK_BYTES}`, "limit");
      }
      this.#open = { stream: m.stream, header: m.header, totalBytes: m.totalBytes, chunkBytes: m.chunkBytes, chunks: [], received: 0 };
      return this.#finishIfDone();
    }
    if (m.kind !== "tensor-chunk") {
      return fail(`a ${m.kind} frame arrived where a chunk was expected`);
    }
    const open = this.#open;
    if (open === undefined) {
      return fail(`chunk ${m.index} of stream ${m.stream} arrived before its TensorBegin`);
    }
    if (m.stream !== open.stream || m.index !== open.chunks.length) {
      return fail(`expected chunk ${open.chunks.length} of stream ${open.stream}, got chunk ${m.index} of stream ${m.stream}`);
    }
    const want = Math.min(open.chunkBytes, open.totalBytes - open.received);
    if (m.payload.length !== want) {
      return fail(`chunk ${m.index} holds ${m.payload.length} bytes, expected ${want}`);
    }
    open.chunks.push(m.payload);
    open.received += m.payload.length;
    return this.#finishIfDone();
  }

  #finishIfDone(): Result<WireTensor | undefined, FormatError> {
    const open = this.#open;
    if (open === undefined || open.received < open.totalBytes) {
      return ok(undefined);
    }
    this.#open = undefined;
    const payload = new Uint8Array(open.totalBytes);
    let at = 0;
    for (const c of open.chunks) {
      payload.set(c, at);
      at += c.length;
    }
    return ok({ ...open.header, payload });
  }
}
