/** The backend a tensor is created on when the caller names none. */
import type { Backend } from "../backends/backend.js";
import { createJsBackend } from "../backends/js/index.js";

let current: Backend | undefined;

/** The process-wide default backend; the JS reference backend unless set otherwise. */
export function defaultBackend(): Backend {
  current ??= createJsBackend();
  return current;
}

/** Replaces the default backend; returns the previous one. */
export function setDefaultBackend(backend: Backend): Backend | undefined {
  const previous = current;
  current = backend;
  return previous;
}
