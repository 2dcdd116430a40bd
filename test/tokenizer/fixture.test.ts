import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { describe, expect, it } from "vitest";
import { GgufMetadata, gv, readGgufBytes } from "../../src/formats/gguf/index.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import {
  GPT2_ONIGURUMA_PATTERN,
  LLAMA3_ONIGURUMA_PATTERN,
  tokenizerFromGguf,
  tokenizerFromJson,
} from "../../src/model/tokenizer/index.js";
import { HANDPICKED, WITH_SPECIALS, generatedCorpus } from "./corpus.js";

const meta = readGgufBytes(makeBitnetFixture()).metadata;
const tokens = meta.getStringArray("tokenizer.ggml.tokens") ?? [];
const types = meta.getNumberArray("tokenizer.ggml.token_type") ?? [];
const merges = meta.getStringArray("tokenizer.ggml.merges") ?? [];
const corpus = [...HANDPICKED, ...WITH_SPECIALS, ...generatedCorpus(200, 23)];

/** The fixture's arrays as tokenizer.json with an explicit Split pattern (the library maps its `\s` like Oniguruma). */
function toTokenizerJson(pattern: string, ignoreMerges: boolean): Record<string, unknown> {
  const special = tokens.flatMap((content, id) => (types[id] === 3 ? [{ id, content, special: true }] : []));
  return {
    added_tokens: special,
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: pattern }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      ignore_merges: ignoreMerges,
      vocab: Object.fromEntries(tokens.flatMap((t, id) => (types[id] === 3 ? [] : [[t, id]]))),
      merges,
    },
  };
}

function withPre(pre: string, arch: string): GgufMetadata {
  const entries = [...meta.entries()].filter(([k]) => k.startsWith("tokenizer."));
  return new GgufMetadata([
    ...entries,
    ["tokenizer.ggml.pre", gv.string(pre)],
    ["general.architecture", gv.string(arch)],
  ]);
}

describe("the fixture GGUF's toy tokenizer", () => {
  const tok = tokenizerFromGguf(meta);

  it("should load as Llama-3-style byte-level BPE with BOS, EOS and EOT", () => {
    expect(tok.kind).toBe("byte-bpe");
    expect(tok.preTokenizer).toBe("llama3");
    expect(tok.vocabSize).toBe(300);
    expect([tok.bos, tok.eos, tok.eot]).toEqual([296, 297, 298]);
    expect(tok.addBosDefault).toBe(true);
    expect(tok.tokenText(298)).toBe("<|eot_id|>");
  });

  it("should apply its merges", () => {
    expect(Array.from(tok.encode(" the", { addBos: false })).map((id) => tok.tokenText(id))).toEqual(["Ġthe"]);
    expect(Array.from(tok.encode("and the", { addBos: false })).map((id) => tok.tokenText(id))).toEqual([
      "an",
      "d",
      "Ġthe",
    ]);
  });

  it("should match the library given the same arrays as tokenizer.json", () => {
    const oracle = new HfTokenizer(toTokenizerJson(LLAMA3_ONIGURUMA_PATTERN, true), {});
    for (const t of corpus) {
      expect(Array.from(tok.encode(t, { addBos: false })), JSON.stringify(t)).toEqual(
        oracle.encode(t, { add_special_tokens: false }).ids,
      );
    }
  });

  it("should use GPT-2's split for pre = gpt2 and match the library", () => {
    const gpt2 = tokenizerFromGguf(withPre("gpt2", "gpt2"));
    expect(gpt2.preTokenizer).toBe("gpt2");
    const oracle = new HfTokenizer(toTokenizerJson(GPT2_ONIGURUMA_PATTERN, false), {});
    for (const t of corpus) {
      expect(Array.from(gpt2.encode(t, { addBos: false })), JSON.stringify(t)).toEqual(
        oracle.encode(t, { add_special_tokens: false }).ids,
      );
    }
  });

  it("should read the same tokenizer back from tokenizer.json, including ByteLevel's built-in GPT-2 split", () => {
    const fromJson = tokenizerFromJson(toTokenizerJson(LLAMA3_ONIGURUMA_PATTERN, true), {});
    const json = toTokenizerJson(GPT2_ONIGURUMA_PATTERN, false);
    json.pre_tokenizer = { type: "ByteLevel", add_prefix_space: false, use_regex: true };
    const builtIn = tokenizerFromJson(json, {});
    const gpt2 = tokenizerFromGguf(withPre("gpt2", "gpt2"));
    expect(builtIn.preTokenizer).toBe("gpt2");
    for (const t of corpus) {
      expect(Array.from(fromJson.encode(t, { addBos: false }))).toEqual(Array.from(tok.encode(t, { addBos: false })));
      expect(Array.from(builtIn.encode(t))).toEqual(Array.from(gpt2.encode(t, { addBos: false })));
    }
  });

  it("should pick the Llama-3 split for unknown or missing pre values only for Llama-3 vocabularies", () => {
    expect(tokenizerFromGguf(withPre("qwen2", "llama")).preTokenizer).toBe("llama3");
    expect(tokenizerFromGguf(withPre("default", "llama")).preTokenizer).toBe("llama3");
    expect(tokenizerFromGguf(withPre("llama-bpe", "gpt2")).preTokenizer).toBe("llama3");
    const renamedTokens = gv.array("string", tokens.map((t) => t.replace("begin_of_text", "bot")));
    const renamed = [...meta.entries()].map(([k, v]): [string, typeof v] =>
      k === "tokenizer.ggml.tokens" ? [k, renamedTokens] : [k, v],
    );
    const plain = tokenizerFromGguf(new GgufMetadata(renamed), "gpt2");
    expect(plain.preTokenizer).toBe("gpt2");
    expect(plain.addBosDefault).toBe(true);
  });

  it("should round-trip text and stream it without splitting characters", () => {
    for (const t of corpus) {
      const ids = tok.encode(t, { addBos: false });
      expect(tok.decode(ids)).toBe(t);
      const stream = tok.createStreamDecoder();
      let out = "";
      for (const id of ids) {
        out += stream.push(id);
      }
      expect(out + stream.flush()).toBe(t);
    }
  });
});
