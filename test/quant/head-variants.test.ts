/**
 * barbell's own embedding/head encoders on a trained model (issue 15 point 4; docs/heads.md): the shipped KJV
 * model with its tied F32 embedding/head re-encoded as F16, Q8_0 and Q6_K by scripts/head-eval.ts loads and
 * scores held-out verses (Revelation 21, in the card's validation split) within a stated tolerance of the F32
 * head, so an encoder that silently degrades fails here. The full measurement (8,192 held-out tokens) is in
 * docs/heads.md.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tokenizerEntries, tokenizerFromEntries } from "../../src/cli/train.js";
import { openGguf } from "../../src/formats/gguf/index.js";
import { HEAD_TENSORS } from "../../src/model/bitnet/convert.js";
import { headBytes, headVariant, scoreHeads, type HeadResult } from "../../scripts/head-eval.js";

const MODEL = path.resolve(import.meta.dirname, "../../models/barbell-kjv.gguf");

/** Revelation 21:1–6 (KJV, public domain): held out from training (the last 5 % of the corpus lines). */
const TEXT = `And I saw a new heaven and a new earth: for the first heaven and the first earth were passed away; and there was no more sea.
And I John saw the holy city, new Jerusalem, coming down from God out of heaven, prepared as a bride adorned for her husband.
And I heard a great voice out of heaven saying, Behold, the tabernacle of God is with men, and he will dwell with them, and they shall be his people, and God himself shall be with them, and be their God.
And God shall wipe away all tears from their eyes; and there shall be no more death, neither sorrow, nor crying, neither shall there be any more pain: for the former things are passed away.
And he that sat upon the throne said, Behold, I make all things new. And he said unto me, Write: for these words are true and faithful.
And he said unto me, It is done. I am Alpha and Omega, the beginning and the end. I will give unto him that is athirst of the fountain of the water of life freely.
`;

/**
 * Most a re-encoded head may move the loss (nats/token) and the logits on this slice (243 tokens), per storage
 * type. Measured (AMD EPYC, native-cpu): |Δ loss| 0.0007 / 0.0008 / 0.0036 (F16 / Q8_0 / Q6_K), rel. L2 0.0057 /
 * 0.0090 / 0.0167, top-1 agreement 99.6 / 98.8 / 98.8 %. The rel. L2 bounds are 1.5× those: an encoder one bit
 * coarser (twice the step) doubles its rel. L2 and fails.
 */
const TOLERANCE = {
  f16: { loss: 0.01, relL2: 0.009, top1: 0.95 },
  q8_0: { loss: 0.015, relL2: 0.014, top1: 0.93 },
  q6_k: { loss: 0.025, relL2: 0.025, top1: 0.9 },
} as const;

const SEQ_LEN = 128;

let dir = "";
let results: HeadResult[] = [];
const files: Record<string, string> = {};

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-head-variants-"));
  for (const to of ["f16", "q8_0", "q6_k"] as const) {
    files[to] = path.join(dir, `${to}.gguf`);
    await fs.writeFile(files[to], await headVariant(MODEL, to));
  }
  const tok = tokenizerFromEntries(await tokenizerEntries(MODEL));
  const ids = tok.encode(TEXT, { addBos: false });
  const val = new Uint32Array([tok.bos ?? 0, ...ids, tok.eos ?? 0]);
  const c = async (name: string, file: string, headType?: "q8_0"): Promise<Parameters<typeof scoreHeads>[0][number]> => ({
    name,
    file,
    headBytes: await headBytes(file),
    ...(headType === undefined ? {} : { headType }),
  });
  results = await scoreHeads(
    [
      await c("f32", MODEL),
      await c("f16", files.f16 ?? ""),
      await c("q8_0", files.q8_0 ?? ""),
      await c("q6_k", files.q6_k ?? ""),
      await c("f32+q8_0", MODEL, "q8_0"),
    ],
    val,
    SEQ_LEN,
    val.length,
  );
}, 120_000);

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const result = (name: string): HeadResult => {
  const r = results.find((x) => x.name === name);
  expect(r, name).toBeDefined();
  return r as HeadResult;
};

describe("embedding/head variants of the KJV model", () => {
  it("re-encode only the head tensors: the other tensors' bytes and all metadata are unchanged", async () => {
    await using ref = await openGguf(MODEL);
    for (const [to, typeName] of [["f16", "f16"], ["q8_0", "q8_0"], ["q6_k", "q6_k"]] as const) {
      await using v = await openGguf(files[to] ?? "");
      expect([...v.metadata.keys()]).toEqual([...ref.metadata.keys()]);
      expect(v.tensors.map((t) => t.name)).toEqual(ref.tensors.map((t) => t.name));
      for (const t of ref.tensors) {
        const vt = v.tensor(t.name);
        expect(vt?.dims).toEqual(t.dims);
        if (HEAD_TENSORS.includes(t.name)) {
          expect(t.typeName).toBe("f32");
          expect(vt?.typeName).toBe(typeName);
        } else {
          expect(vt?.typeId, t.name).toBe(t.typeId);
          expect(Buffer.from(await v.tensorData(t.name)).equals(Buffer.from(await ref.tensorData(t))), t.name).toBe(true);
        }
      }
    }
  });

  it("score the held-out slice within the stated tolerance of the F32 head", () => {
    const base = result("f32");
    expect(base.tokens).toBeGreaterThan(200);
    expect(base.loss).toBeGreaterThan(1);
    expect(base.loss).toBeLessThan(6);
    for (const name of ["f16", "q8_0", "q6_k"] as const) {
      const r = result(name);
      const tol = TOLERANCE[name];
      expect(r.tokens).toBe(base.tokens);
      expect(Math.abs(r.loss - base.loss), `${name} Δ loss`).toBeLessThan(tol.loss);
      expect(r.diff.relL2, `${name} rel. L2`).toBeLessThan(tol.relL2);
      expect(r.diff.relL2, `${name} must differ from F32`).toBeGreaterThan(0);
      expect(r.diff.top1, `${name} top-1 agreement`).toBeGreaterThanOrEqual(tol.top1);
    }
    // Smaller storage, larger error: the order of the encoders' precision shows in the logits.
    expect(result("f16").diff.relL2).toBeLessThan(result("q6_k").diff.relL2);
    expect(result("f16").headBytes).toBeGreaterThan(result("q8_0").headBytes);
    expect(result("q8_0").headBytes).toBeGreaterThan(result("q6_k").headBytes);
  });

  it("requantizing at load (headType q8_0) gives the logits of a file that stores the same Q8_0 head", () => {
    const atLoad = result("f32+q8_0");
    const inFile = result("q8_0");
    expect(atLoad.loss).toBe(inFile.loss);
    expect(atLoad.diff.maxAbs).toBe(inFile.diff.maxAbs);
    expect(atLoad.diff.relL2).toBe(inFile.diff.relL2);
  });
});
