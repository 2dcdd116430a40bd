/** Every test must release the backend memory it allocates (tensors are disposed deterministically). */
import { afterEach, beforeEach, expect } from "vitest";
import { defaultBackend } from "../src/tensor/context.js";

// Tests run on fixed kernel routes: the autotuner's choices (timings) must not make results vary.
process.env["BARBELL_AUTOTUNE"] ??= "0";

let before = 0;
beforeEach(() => {
  before = defaultBackend().liveAllocations();
});
afterEach(() => {
  expect(defaultBackend().liveAllocations(), "live tensor allocations leaked by this test").toBe(before);
});
