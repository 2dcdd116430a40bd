/** Allocation accounting for tests: every test can assert that backend memory returns to zero. */
import { expect } from "vitest";
import { defaultBackend } from "../../src/tensor/context.js";
import type { Backend } from "../../src/backends/backend.js";

/** Runs fn and asserts that it leaves no more live allocations on the backend than before. */
export function expectNoLeaks<T>(fn: () => T, backend: Backend = defaultBackend()): T {
  const before = backend.liveAllocations();
  const result = fn();
  expect(backend.liveAllocations(), "live allocations after the block").toBe(before);
  return result;
}

export function liveAllocations(backend: Backend = defaultBackend()): number {
  return backend.liveAllocations();
}
