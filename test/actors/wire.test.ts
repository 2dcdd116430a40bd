import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ActorError,
  decodeFrame,
  encodeFrame,
  FRAME_VERSION,
  MAX_ACTOR_FRAME_BYTES,
  MAX_ERROR_STRING_BYTES,
  MAX_FIELD_STRING_BYTES,
  msg,
  protocol,
  t,
  type ActorRef,
  type Frame,
  type MessageOf,
  type Replies,
} from "../../src/actors/index.js";

const demo = protocol({
  put: msg.tell({ key: t.str, value: t.bytes, tags: t.list(t.str), ttl: t.optional(t.uint), mode: t.literal("a", "b") }),
  get: msg.ask({ key: t.str }, t.optional(t.bytes)),
  scan: msg.stream({ from: t.int, pos: t.struct({ x: t.f64, ok: t.bool }) }, t.str),
  load: msg.ask({ w: t.tensor }, t.uint),
});
type Demo = MessageOf<typeof demo>;

describe("protocol codec", () => {
  it("should round-trip every variant", () => {
    const messages: Demo[] = [
      { type: "put", key: "k", value: Uint8Array.of(1, 2, 3), tags: ["x", "ü"], ttl: undefined, mode: "b" },
      { type: "put", key: "", value: new Uint8Array(), tags: [], ttl: 2 ** 40, mode: "a" },
      { type: "get", key: "k" },
      { type: "scan", from: -12345, pos: { x: 1.5, ok: true } },
    ];
    for (const m of messages) {
      const decoded = demo.decodeMessage(demo.encodeMessage(m));
      expect(decoded).toEqual({ ok: true, value: m });
    }
    expect(demo.decodeResult("scan", demo.encodeResult("scan", "item"))).toEqual({ ok: true, value: "item" });
    expect(demo.modeOf("scan")).toBe("stream");
    expect(demo.modeOf("nope")).toBeUndefined();
  });

  it("should carry a tensor field as a BAREWire TensorFrame", () => {
    const payload = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
    const w = { name: "w", dtype: "f32" as const, dims: [{ name: "seq", size: 2 }, { name: "embed", size: 3 }], scales: [], flags: 0, payload };
    const decoded = demo.decodeMessage(demo.encodeMessage({ type: "load", w }));
    expect(decoded.ok && decoded.value.type === "load" && decoded.value.w.dims).toEqual(w.dims);
    expect(decoded.ok && decoded.value.type === "load" && [...decoded.value.w.payload]).toEqual([...payload]);
  });

  it("should refuse values that do not fit the schema when encoding", () => {
    expect(() => demo.encodeMessage({ type: "get", key: 3 } as unknown as Demo)).toThrow(ActorError);
    expect(() => demo.encodeMessage({ type: "scan", from: 1.5, pos: { x: 0, ok: true } })).toThrow(/int field/);
    expect(() => demo.encodeMessage({ type: "nope" } as unknown as Demo)).toThrow(/unknown message type/);
  });

  it("should return a typed error, never throw, for any malformed message bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const decoded = demo.decodeMessage(bytes);
        if (!decoded.ok) {
          expect(decoded.error).toBeInstanceOf(ActorError);
          expect(decoded.error.code).toBe("protocol");
        }
      }),
      { numRuns: 2000 },
    );
    expect(demo.decodeMessage(Uint8Array.of(9))).toMatchObject({ ok: false, error: { code: "protocol" } });
    expect(demo.decodeMessage(Uint8Array.of(2, 0x80, 0x00))).toMatchObject({ ok: false, error: { message: /non-canonical/ } });
  });

  it("should carry strings and bytes of 16384 bytes and more (lengths of two and more LEB128 bytes)", () => {
    for (const n of [127, 128, 16383, 16384, 70_000]) {
      const key = "é".repeat(n >> 1) + "x".repeat(n & 1);
      const value = Uint8Array.from({ length: n }, (_, i) => i * 7);
      const m: Demo = { type: "put", key, value, tags: [key], ttl: n, mode: "a" };
      const bytes = demo.encodeMessage(m);
      expect(demo.decodeMessage(bytes)).toEqual({ ok: true, value: m });
      // A truncation anywhere is a protocol error, never a throw.
      for (const cut of [1, 3, bytes.length >> 1, bytes.length - 1]) {
        expect(demo.decodeMessage(bytes.subarray(0, cut))).toMatchObject({ ok: false, error: { code: "protocol" } });
      }
    }
  });

  it("should refuse declared lengths over their limits before sizing anything from them", () => {
    const uint = (v: number): number[] => {
      const out: number[] = [];
      for (; v >= 128; v = Math.floor(v / 128)) {
        out.push(0x80 | (v % 128));
      }
      return [...out, v];
    };
    // get (tag 1) with a key that claims more than MAX_FIELD_STRING_BYTES
    expect(demo.decodeMessage(Uint8Array.of(1, ...uint(MAX_FIELD_STRING_BYTES + 1)))).toMatchObject({
      ok: false,
      error: { code: "protocol", message: /over its limit/ },
    });
    // put (tag 0): key "", value claiming 2^53 - 1 bytes
    expect(demo.decodeMessage(Uint8Array.of(0, 0, ...uint(Number.MAX_SAFE_INTEGER)))).toMatchObject({ ok: false, error: { code: "protocol" } });
    // put: key "", value empty, a tag list of 2^40 items
    expect(demo.decodeMessage(Uint8Array.of(0, 0, 0, ...uint(2 ** 40)))).toMatchObject({ ok: false, error: { message: /list of/ } });
    // a uint over 2^53 - 1 and one of ten bytes
    expect(demo.decodeResult("load", Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f))).toMatchObject({ ok: false, error: { code: "protocol" } });
    expect(demo.decodeResult("load", Uint8Array.of(...Array<number>(9).fill(0x80), 1))).toMatchObject({ ok: false, error: { code: "protocol" } });
    // invalid UTF-8, a bool byte of 2, an enum index past the end, a trailing byte
    expect(demo.decodeMessage(Uint8Array.of(1, 2, 0xc3, 0x28))).toMatchObject({ ok: false, error: { message: /bad-utf8/ } });
    expect(demo.decodeMessage(Uint8Array.of(2, 0, ...new Array<number>(8).fill(0), 2))).toMatchObject({ ok: false, error: { code: "protocol" } });
    expect(demo.decodeMessage(Uint8Array.of(0, 0, 0, 0, 0, 2))).toMatchObject({ ok: false, error: { message: /enum index 2/ } });
    expect(demo.decodeMessage(Uint8Array.of(1, 0, 0))).toMatchObject({ ok: false, error: { message: /trailing/ } });
  });
});

describe("actor frames", () => {
  const frames: Frame[] = [
    { kind: "start", restarts: 2, error: { name: "E", message: "m", code: "c" } },
    { kind: "deliver", id: 7, mode: "stream", body: Uint8Array.of(1, 2) },
    { kind: "done", id: 7, body: new Uint8Array() },
    { kind: "failed", id: 0, error: { name: "TypeError", message: "x", code: "" } },
    { kind: "post-stop", error: undefined },
    { kind: "hook-done" },
  ];

  it("should round-trip every frame kind used here", () => {
    for (const frame of frames) {
      expect(decodeFrame(encodeFrame(frame))).toEqual({ ok: true, value: frame });
    }
  });

  it("should refuse non-frames, bad magic, versions, tags and truncations with a protocol error", () => {
    const good = encodeFrame({ kind: "ack", id: 1 });
    const cases: unknown[] = ["text", null, { kind: "ack" }, good.subarray(0, 5), Uint8Array.of(...good, 0)];
    const badMagic = good.slice();
    badMagic[0] = 0;
    const badVersion = good.slice();
    badVersion[4] = 1; // the hand-written layout before actor frames were ActorFrame values of the schema
    const badTag = good.slice();
    badTag[6] = 99;
    for (const data of [...cases, badMagic, badVersion, badTag]) {
      const decoded = decodeFrame(data);
      expect(decoded.ok).toBe(false);
      expect(!decoded.ok && decoded.error.code).toBe("protocol");
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const decoded = decodeFrame(Uint8Array.of(0x42, 0x57, 0x41, 0x43, FRAME_VERSION, 0, ...bytes));
        expect(decoded.ok || decoded.error.code === "protocol").toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("message types (compile time)", () => {
  it("should accept only the right messages for tell, ask and stream", () => {
    type M = { type: "add"; by: number } | ({ type: "get" } & Replies<number>);
    const check = (ref: ActorRef<M>) => {
      ref.tell({ type: "add", by: 1 });
      // @ts-expect-error a message that expects a reply cannot be told
      ref.tell({ type: "get" });
      // @ts-expect-error a tell-only message cannot be asked
      void ref.ask({ type: "add", by: 1 });
      // @ts-expect-error unknown variant
      ref.tell({ type: "nope" });
      // @ts-expect-error wrong field type
      ref.tell({ type: "add", by: "1" });
      const reply: Promise<number> = ref.ask({ type: "get" });
      // @ts-expect-error the reply is a number
      const wrong: Promise<string> = ref.ask({ type: "get" });
      return [reply, wrong];
    };
    expect(typeof check).toBe("function");
  });
});
