/** Command-line argument parsers shared by the commands (commander turns their InvalidArgumentError into a usage error). */
import { InvalidArgumentError } from "commander";
import type { BackendName } from "../backends/backend.js";
import { parseBackendList } from "../backends/registry.js";

/** `--backend native-cpu,js`: known backend names, preferred first. */
export function backendList(value: string): BackendName[] {
  try {
    return parseBackendList(value);
  } catch (e) {
    throw new InvalidArgumentError(e instanceof Error ? e.message : String(e));
  }
}

/** An integer option of at least `min`. */
export function intAtLeast(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected an integer >= ${min}, got '${value}'`);
    }
    return n;
  };
}

/** An integer option in [min, max] (the range is named in the error). */
export function intInRange(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer in ${min}..${max}, got '${value}'`);
    }
    return n;
  };
}
