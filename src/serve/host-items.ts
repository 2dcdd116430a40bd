/** Helpers of the model host: output items, logits tensors, the entropy estimate. */
import type { GeneratedToken } from "../engine/generate.js";
import type { WireTensor } from "../formats/barewire/message.js";
import { blankItem, type WireItem, type WireRequest } from "./protocol.js";

/** The message of a thrown value. */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Entropy (nats) of a distribution known by its top-k log-probabilities over `vocab` tokens, the rest of the
 * mass spread evenly over the other tokens. An even tail maximizes the tail's entropy, so this is an upper
 * bound of the true entropy given the top k (exact when k covers the vocabulary).
 */
export function entropyEstimate(top: readonly { readonly logprob: number }[], vocab: number): number {
  let h = 0;
  let mass = 0;
  for (const { logprob } of top) {
    const p = Math.exp(logprob);
    mass += p;
    if (p > 0) {
      h -= p * logprob;
    }
  }
  const rest = Math.max(0, 1 - mass);
  const others = vocab - top.length;
  if (rest > 0 && others > 0) {
    h -= rest * Math.log(rest / others);
  }
  return h;
}

/** The wire item of one generated token. */
export function tokenItem(piece: GeneratedToken, r: WireRequest, vocab: number): WireItem {
  const top = piece.topLogprobs;
  return {
    ...blankItem("token"),
    token: piece.token ?? undefined,
    text: piece.text,
    logprob: piece.logprob,
    entropy: r.confidence && top !== undefined ? entropyEstimate(top, vocab) : undefined,
    topLogprobs: top === undefined || r.topLogprobs === 0 ? undefined : top.slice(0, r.topLogprobs).map((t) => ({ token: t.token, logprob: t.logprob })),
  };
}

/** One f32 logits tensor of `rows` ([vocab] for one row, else [seq, vocab]). */
export function logitsTensor(rows: readonly Float32Array[]): WireTensor {
  const vocab = rows[0]?.length ?? 0;
  const all = new Float32Array(rows.length * vocab);
  rows.forEach((row, i) => all.set(row, i * vocab));
  const dims = rows.length === 1 ? [{ name: "vocab", size: vocab }] : [{ name: "seq", size: rows.length }, { name: "vocab", size: vocab }];
  return { name: "logits", dtype: "f32", dims, scales: [], flags: 0, payload: new Uint8Array(all.buffer) };
}
