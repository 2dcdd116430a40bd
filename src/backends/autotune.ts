/**
 * The autotuner: the first time a kernel runs on a new shape, it times every candidate (backend ×
 * thread count) on the real arguments and keeps the fastest; the choice is cached on disk, keyed by
 * the machine's fingerprint (CPU model and features, backend binaries), so new hardware or a new
 * build is tuned again without a code change and a known machine starts fast.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/** One way to run a kernel: an id stable across runs (e.g. "native-cpu×2") and the call itself. */
export interface TuneCandidate {
  readonly id: string;
  run(): void;
}

export interface AutotunerOptions {
  /** Where the cache lives; default `$XDG_CACHE_HOME/barbell/autotune.json` (or ~/.cache/…). Null: memory only. */
  readonly file?: string | null;
  /** What invalidates the cache: CPU and binaries. Default {@link machineFingerprint}(). */
  readonly fingerprint?: string;
  /** Timed runs per candidate (the median counts). Default 5. */
  readonly runs?: number;
  /** Clock in milliseconds; tests inject one. Default performance.now. */
  readonly now?: () => number;
}

interface CacheFile {
  readonly version: 1;
  readonly fingerprint: string;
  readonly choices: Record<string, string>;
}

/** CPU model, flags and the given binary identities, as one string. */
export function machineFingerprint(binaries: readonly string[] = []): string {
  const cpus = os.cpus();
  let flags = "";
  try {
    flags = /^flags\s*:\s*(.*)$/m.exec(fs.readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "";
  } catch {
    // Not Linux: the model name and core count have to do.
  }
  return JSON.stringify({ cpu: cpus[0]?.model ?? "?", cores: cpus.length, arch: process.arch, flags, binaries });
}

export function defaultCacheFile(): string {
  const base = process.env["XDG_CACHE_HOME"] ?? path.join(os.homedir(), ".cache");
  return path.join(base, "barbell", "autotune.json");
}

export class Autotuner {
  readonly #file: string | null;
  readonly #fingerprint: string;
  readonly #runs: number;
  readonly #now: () => number;
  readonly #choices = new Map<string, string>();
  /** Candidate timings of this process, for reports. */
  readonly measurements = new Map<string, ReadonlyMap<string, number>>();

  constructor(options: AutotunerOptions = {}) {
    this.#file = options.file === undefined ? defaultCacheFile() : options.file;
    this.#fingerprint = options.fingerprint ?? machineFingerprint();
    this.#runs = options.runs ?? 5;
    this.#now = options.now ?? (() => performance.now());
    this.#load();
  }

  /** The cached choice for a key, if any. */
  cached(key: string): string | undefined {
    return this.#choices.get(key);
  }

  /**
   * Returns the id of the fastest candidate for `key`: the cached one when it is still among the
   * candidates, else measured now (each candidate runs once to warm up, then `runs` timed times).
   */
  choose(key: string, candidates: readonly TuneCandidate[]): string {
    const known = this.#choices.get(key);
    if (known !== undefined && candidates.some((c) => c.id === known)) {
      return known;
    }
    const only = candidates[0];
    if (candidates.length === 1 && only !== undefined) {
      return only.id;
    }
    const timings = new Map<string, number>();
    for (const c of candidates) {
      c.run();
      const times: number[] = [];
      for (let i = 0; i < this.#runs; i++) {
        const t0 = this.#now();
        c.run();
        times.push(this.#now() - t0);
      }
      times.sort((a, b) => a - b);
      timings.set(c.id, times[times.length >> 1] ?? Infinity);
    }
    this.measurements.set(key, timings);
    let best = candidates[0]?.id ?? "";
    for (const [id, t] of timings) {
      if (t < (timings.get(best) ?? Infinity)) {
        best = id;
      }
    }
    this.#choices.set(key, best);
    this.#save();
    return best;
  }

  #load(): void {
    if (this.#file === null) {
      return;
    }
    try {
      const data = JSON.parse(fs.readFileSync(this.#file, "utf8")) as Partial<CacheFile>;
      if (data.version === 1 && data.fingerprint === this.#fingerprint && typeof data.choices === "object" && data.choices !== null) {
        for (const [k, v] of Object.entries(data.choices)) {
          if (typeof v === "string") {
            this.#choices.set(k, v);
          }
        }
      }
    } catch {
      // No cache yet, or an unreadable one: start empty (it is rewritten on the next choice).
    }
  }

  #save(): void {
    if (this.#file === null) {
      return;
    }
    const data: CacheFile = { version: 1, fingerprint: this.#fingerprint, choices: Object.fromEntries(this.#choices) };
    try {
      fs.mkdirSync(path.dirname(this.#file), { recursive: true });
      const tmp = `${this.#file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(data));
      fs.renameSync(tmp, this.#file);
    } catch {
      // A read-only home is not an error: the choice still holds for this process.
    }
  }
}
