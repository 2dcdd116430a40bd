/** Runs code twice: with the JS load path only, then with the native load codecs (src/quant/load-codecs.ts). */
import { loadCodecs, setLoadCodecs } from "../../src/quant/load-codecs.js";

/** The result (or the error message) of `run` with the JS path only, then with the native codecs. */
export function bothPaths<T>(run: () => T): { js: T | string; native: T | string } {
  const native = loadCodecs();
  const attempt = (): T | string => {
    try {
      return run();
    } catch (e) {
      return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
  };
  setLoadCodecs(undefined);
  const js = attempt();
  setLoadCodecs(native);
  return { js, native: attempt() };
}
