/** The NATS frames (src/serve/nats/wire.ts): round trips, and hostile bytes refused with typed errors, never thrown. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { blankItem } from "../../../src/serve/protocol.js";
import { checkId, checkPrefix, subjects } from "../../../src/serve/nats/connection.js";
import { joinProblem } from "../../../src/serve/nats/worker.js";
import { decodeNatsFrame, encodeNatsFrame, expectNatsFrame, MAX_NATS_FRAME_BYTES, NatsFrameError, type NatsAdvert } from "../../../src/serve/nats/wire.js";

const advert: NatsAdvert = {
  type: "advert",
  worker: "w1",
  model: "kjv",
  tokenizer: "a".repeat(64),
  card: "b".repeat(64),
  cardBytes: 1000,
  context: 2048,
  arch: "bitnet-b1.58",
  vocab: 4096,
  parallel: 2,
  queue: 16,
  running: 1,
  queued: 0,
  backends: ["native-cpu", "js"],
  state: "ready",
  seq: 7,
  heartbeatMs: 1000,
  completed: 3,
  rejected: 0,
};

const code = (bytes: Uint8Array): string => {
  const d = decodeNatsFrame(bytes);
  return d.ok ? "ok" : d.error.code;
};

describe("NATS frames", () => {
  it("should round-trip every message kind", () => {
    const item = { ...blankItem("token"), token: 42, text: " God", logprob: -0.5, topLogprobs: [{ token: 1, logprob: -2 }] };
    const messages = [
      advert,
      { type: "discover", from: "gw-1" },
      { type: "generate", id: "gw-1-1", request: { id: "r", prompt: undefined, tokens: [1, 2, 3], input: undefined, allLogits: false, maxTokens: 8, temperature: 0, topK: undefined, topP: undefined, minP: undefined, repetitionPenalty: undefined, seed: 5, stop: ["\n"], topLogprobs: 0, confidence: false, logprobs: true, grammar: undefined } },
      { type: "item", id: "gw-1-1", seq: 0, resent: 0, item },
      { type: "cancel", id: "gw-1-1" },
      { type: "cardRequest", offset: 0 },
      { type: "cardChunk", total: 3, offset: 0, bytes: Uint8Array.of(1, 2, 3) },
      { type: "refusal", code: "malformed", message: "x" },
    ] as const;
    for (const m of messages) {
      const bytes = encodeNatsFrame(m);
      expect(Buffer.from(bytes.subarray(0, 4)).toString("latin1")).toBe("BNAT");
      const back = decodeNatsFrame(bytes);
      expect(back.ok && back.value).toEqual(m);
    }
  });

  it("should refuse garbage, truncation, trailing bytes, other versions, oversized frames and broken limits by code", () => {
    const good = encodeNatsFrame(advert);
    expect(code(Uint8Array.of(1, 2, 3))).toBe("bad-magic");
    expect(code(new Uint8Array(0))).toBe("bad-magic");
    expect(code(Uint8Array.of(...good.subarray(0, 4), 2, 0, ...good.subarray(6)))).toBe("bad-version");
    for (let cut = 6; cut < good.length; cut += 7) {
      expect(code(good.subarray(0, cut))).toBe("malformed");
    }
    expect(code(Uint8Array.of(...good, 0))).toBe("malformed");
    expect(code(Uint8Array.of(...good.subarray(0, 6), 99))).toBe("malformed"); // unknown message tag
    expect(code(new Uint8Array(MAX_NATS_FRAME_BYTES + 1))).toBe("oversized");
    expect(code(encodeNatsFrame({ ...advert, parallel: 0 }))).toBe("bad-value");
    expect(code(encodeNatsFrame({ ...advert, tokenizer: "not hex" }))).toBe("bad-value");
    expect(code(encodeNatsFrame({ ...advert, cardBytes: 2 ** 40 }))).toBe("bad-value");
    expect(code(encodeNatsFrame({ ...advert, worker: "w".repeat(300) }))).toBe("bad-value");
    expect(code(encodeNatsFrame({ type: "cardChunk", total: 2, offset: 1, bytes: Uint8Array.of(1, 2) }))).toBe("bad-value");
    const wrong = expectNatsFrame(encodeNatsFrame({ type: "cancel", id: "x" }), "advert");
    expect(!wrong.ok && wrong.error).toBeInstanceOf(NatsFrameError);
    expect(!wrong.ok && wrong.error.code).toBe("unexpected");
    expect(() => encodeNatsFrame({ type: "cardChunk", total: 0, offset: 0, bytes: new Uint8Array(MAX_NATS_FRAME_BYTES) })).toThrow(NatsFrameError);
  });

  it("should never throw on random bytes or random mutations of a valid frame", () => {
    const good = encodeNatsFrame(advert);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(["bad-magic", "bad-version", "malformed", "bad-value", "ok"]).toContain(code(bytes));
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 }), (at, byte) => {
        const copy = Uint8Array.from(good);
        copy[at] = byte;
        expect(typeof code(copy)).toBe("string");
      }),
      { numRuns: 2000 },
    );
  });

  it("should check prefixes and ids as subject tokens, and name both sides of a join refusal", () => {
    expect(subjects("acme.prod").work("w-1")).toBe("acme.prod.work.w-1");
    for (const bad of ["", "a..b", "a.*", "a.>", "a b", "x".repeat(200)]) {
      expect(() => checkPrefix(bad)).toThrow(/prefix/);
    }
    for (const bad of ["", "a.b", "*", ">", "x".repeat(65)]) {
      expect(() => checkId("worker", bad)).toThrow(/worker id/);
    }
    const mine = { worker: "w2", model: "kjv", tokenizer: "c".repeat(64), context: 512 };
    expect(joinProblem(mine, advert)).toBe(
      "[nats] model 'kjv': worker 'w2' has tokenizer cccccccccccc and context 512, but worker 'w1' serves it with tokenizer aaaaaaaaaaaa and context 2048; every worker of one model id must share its tokenizer and context (pass another --name, or the same file and -c)",
    );
    expect(joinProblem({ ...mine, worker: "w1" }, advert)).toMatch(/worker id 'w1' is already in use/);
    expect(joinProblem({ ...mine, model: "other" }, advert)).toBeUndefined();
    expect(joinProblem({ ...mine, tokenizer: advert.tokenizer, context: 2048 }, advert)).toBeUndefined();
  });
});
