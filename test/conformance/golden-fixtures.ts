/**
 * The golden fixtures of the end-to-end conformance checks: fixture options and the greedy ids the JS
 * reference decodes from the prompt [1, 2, 3, 4] (test/engine/golden.test.ts checks them against the float64
 * oracle). Shared by greedy.test.ts (Node) and the WebGPU page of test/browser (Chromium), so it imports
 * nothing that a browser bundle cannot hold.
 */
import type { BitnetFixtureOptions } from "../../src/model/bitnet/fixture.js";

export const GOLDEN_PROMPT: readonly number[] = [1, 2, 3, 4];

/**
 * Fixture options, the golden ids, and for a k-quant head the ids of a device backend (WebGPU, CUDA): host
 * backends run a Q4_K / Q5_K / Q6_K head on integer products (activations per 256-element block), a device backend
 * in float (docs/heads.md), and a random fixture's near-tied logits can pick other tokens. None needs them now: the
 * Q6_K fixture's head, re-encoded with five fit candidates instead of nineteen (q6-k.ts), decodes to the same ids
 * both ways (with the nineteen, integer products had picked other tokens from the third on).
 */
export const GOLDEN_FIXTURES: readonly (readonly [BitnetFixtureOptions, readonly number[], (readonly number[])?])[] = [
  [{ arch: "bitnet-b1.58", weightType: "i2_s", tied: false, seed: 101 }, [291, 89, 284, 14, 191, 50, 71, 113, 146, 14, 191, 50]],
  [{ arch: "bitnet", weightType: "i2_s", tied: false, seed: 107 }, [50, 150, 240, 244, 192, 224, 159, 250, 159, 262, 159, 262]],
  [
    { arch: "bitnet-b1.58", weightType: "tq2_0", hidden: 256, embeddingType: "q6_k", tied: false, seed: 102 },
    [155, 139, 138, 90, 235, 170, 65, 19, 136, 196, 136, 90],
  ],
];
