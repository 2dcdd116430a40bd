/** The real model shapes barbell is measured on (PEERS.md): BitNet b1.58 2B-4T and 1bitLLM 700M. */
import type { BitnetFixtureOptions } from "../src/model/bitnet/fixture.js";

export const SHAPES: Record<"2b" | "700m", BitnetFixtureOptions> = {
  "2b": {
    arch: "bitnet-b1.58",
    hidden: 2560,
    layers: 30,
    heads: 20,
    kvHeads: 5,
    ffn: 6912,
    vocab: 128256,
    contextLength: 4096,
    weightType: "i2_s",
    embeddingType: "f16",
  },
  "700m": {
    arch: "bitnet",
    hidden: 1536,
    layers: 24,
    heads: 16,
    kvHeads: 16,
    ffn: 4096,
    vocab: 32002,
    contextLength: 2048,
    weightType: "i2_s",
    embeddingType: "f16",
  },
};
