/**
 * Admission of one model at the HTTP level. Two bounds, both checked at once (a refused request gets HTTP 429
 * with Retry-After instead of waiting without bound):
 *
 * - count: at most `parallel + queue` requests are admitted at a time (decoding or waiting in the model actor);
 * - time (with `maxWaitMs`): a request whose predicted wait for a decode slot exceeds `maxWaitMs` is refused.
 *
 * The wait model (docs/serving.md, "Admission by predicted wait"): the model runs `parallel` requests at a time,
 * first come first served. A request's service time is its prompt at the prefill rate plus its `max_tokens` at
 * the per-request decode rate, times its `n` choices (an upper bound: a request may stop early). The admitted
 * requests are kept in arrival order; the first `parallel` run, each with its service time minus the time it
 * has run so far left; each waiting request then takes the slot that frees first. The new request's wait is
 * when the first slot frees after all of them. Rates come from what the workers measured on finished requests
 * (an exponentially weighted mean); until the first measurement, conservative defaults.
 *
 * The decode rate a request sees depends on how many share the decode steps: the predictor keeps the
 * aggregate decode rate (tokens/s over all sequences of a step: a request's own rate × the mean batch it ran
 * in) and assumes every slot is busy whenever a request has to wait, so a running request decodes at
 * aggregate / `parallel`. Measured at low load (little batching gain) this overestimates waits, which errs on
 * the side of the latency bound.
 */
import { ServeError } from "../errors.js";

/** What one request asks of the model. */
export interface Work {
  readonly promptTokens: number;
  readonly maxTokens: number;
  /** Choices (`n`): each is a prompt and up to `maxTokens`. Default 1. */
  readonly choices?: number;
}

/** What a worker measured on one finished generation (the `timing` of its `done` item). */
export interface Measurement {
  readonly promptTokens: number;
  readonly prefillMs: number;
  readonly completionTokens: number;
  readonly decodeMs: number;
  /** Mean sequences per decode step while it ran (≥ 1). */
  readonly meanBatch: number;
}

/** Largest `maxWaitMs` accepted (one hour): beyond it, the request timeout is the bound that matters. */
export const MAX_WAIT_LIMIT_MS = 3_600_000;
/** Prompt tokens per second assumed before any measurement (conservative: a real model prefills faster). */
export const DEFAULT_PREFILL_TOKENS_PER_SECOND = 100;
/** Aggregate decode tokens per second assumed before any measurement (conservative). */
export const DEFAULT_DECODE_TOKENS_PER_SECOND = 10;
/** Weight of the newest measurement in the exponentially weighted means. */
export const RATE_EWMA_WEIGHT = 0.2;
/** Shortest prefill or decode phase (ms) taken as a measurement; shorter ones are timer noise. */
export const MIN_MEASURED_MS = 1;
/** Largest wait (ms) a prediction reports: the admitted work is bounded, this only keeps Retry-After sane. */
export const MAX_PREDICTED_WAIT_MS = 24 * 3600 * 1000;

/** The prefill and decode rates a model showed, and the wait they predict. */
export class WaitPredictor {
  #prefill = DEFAULT_PREFILL_TOKENS_PER_SECOND;
  #decode = DEFAULT_DECODE_TOKENS_PER_SECOND;
  #measured = 0;

  constructor(readonly parallel: number) {}

  /** Prompt tokens per second and aggregate decode tokens per second now assumed; measurements so far. */
  get rates(): { readonly prefillTokensPerSecond: number; readonly decodeTokensPerSecond: number; readonly measurements: number } {
    return { prefillTokensPerSecond: this.#prefill, decodeTokensPerSecond: this.#decode, measurements: this.#measured };
  }

  /** Folds one finished generation into the rates (the first measurement replaces the defaults). */
  observe(m: Measurement): void {
    const mix = (old: number, sample: number): number => (this.#measured === 0 ? sample : old + RATE_EWMA_WEIGHT * (sample - old));
    let used = false;
    if (m.promptTokens > 0 && m.prefillMs >= MIN_MEASURED_MS && Number.isFinite(m.prefillMs)) {
      this.#prefill = mix(this.#prefill, (m.promptTokens * 1000) / m.prefillMs);
      used = true;
    }
    // The first token comes with the prefill; the decode phase produced the others.
    const decoded = m.completionTokens - 1;
    if (decoded > 0 && m.decodeMs >= MIN_MEASURED_MS && Number.isFinite(m.decodeMs)) {
      const batch = Number.isFinite(m.meanBatch) && m.meanBatch >= 1 ? Math.min(m.meanBatch, this.parallel) : 1;
      this.#decode = mix(this.#decode, ((decoded * 1000) / m.decodeMs) * batch);
      used = true;
    }
    if (used) {
      this.#measured++;
    }
  }

  /** Predicted time (ms) one request holds a slot while every slot is busy. */
  serviceMs(work: Work): number {
    const choices = work.choices ?? 1;
    const prefill = (work.promptTokens * 1000) / this.#prefill;
    const decode = (Math.max(0, work.maxTokens - 1) * 1000 * this.parallel) / this.#decode;
    return choices * (prefill + decode);
  }

  /**
   * Predicted wait (ms) for a slot of a request arriving now behind `admitted` (arrival order; `ranMs` is how
   * long each has held a slot, undefined while it waits). 0 when a slot is free.
   */
  waitMs(admitted: readonly { readonly work: Work; readonly ranMs: number | undefined }[]): number {
    if (admitted.length < this.parallel) {
      return 0;
    }
    const slots: number[] = [];
    for (const a of admitted.slice(0, this.parallel)) {
      slots.push(Math.max(0, this.serviceMs(a.work) - (a.ranMs ?? 0)));
    }
    for (const a of admitted.slice(this.parallel)) {
      let first = 0;
      for (let i = 1; i < slots.length; i++) {
        if ((slots[i] as number) < (slots[first] as number)) {
          first = i;
        }
      }
      slots[first] = (slots[first] as number) + this.serviceMs(a.work);
    }
    return Math.min(MAX_PREDICTED_WAIT_MS, ...slots);
  }
}

/** Admitted, or refused: `full` (the count bound) or `wait` (the predicted wait, in ms, exceeds the bound). */
export type Admitted =
  | { readonly ok: true; readonly release: () => void }
  | { readonly ok: false; readonly reason: "full"; readonly waitMs: number }
  | { readonly ok: false; readonly reason: "wait"; readonly waitMs: number };

interface Entry {
  readonly work: Work;
  /** When it took one of the first `parallel` places (performance.now ms). */
  startedAt: number | undefined;
}

export class Admission {
  #admitted = 0;
  readonly #entries: Entry[] = [];
  readonly predictor: WaitPredictor;

  constructor(
    /** Requests decoded together by the model. */
    readonly parallel: number,
    /** Requests that may wait beyond `parallel`. */
    readonly queue: number,
    /** Longest predicted wait for a slot (ms) a request is admitted with; undefined: no bound by time. */
    readonly maxWaitMs?: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (maxWaitMs !== undefined && !(Number.isSafeInteger(maxWaitMs) && maxWaitMs >= 1 && maxWaitMs <= MAX_WAIT_LIMIT_MS)) {
      throw new ServeError("bad-config", `[serve] maxWaitMs must be an integer in 1..${MAX_WAIT_LIMIT_MS} (MAX_WAIT_LIMIT_MS), got ${String(maxWaitMs)}`);
    }
    this.predictor = new WaitPredictor(parallel);
  }

  get capacity(): number {
    return this.parallel + this.queue;
  }

  /** Requests admitted and not released (extra slots of multi-choice requests included). */
  get admitted(): number {
    return this.#admitted;
  }

  /** The predicted wait (ms) of a request arriving now. */
  predictedWaitMs(): number {
    const now = this.now();
    return this.predictor.waitMs(this.#entries.map((e) => ({ work: e.work, ranMs: e.startedAt === undefined ? undefined : now - e.startedAt })));
  }

  /** Admits a request with its work, or says why not; the release function frees its place exactly once. */
  admit(work: Work): Admitted {
    const waitMs = this.predictedWaitMs();
    if (this.#admitted >= this.capacity) {
      return { ok: false, reason: "full", waitMs };
    }
    if (this.maxWaitMs !== undefined && waitMs > this.maxWaitMs) {
      return { ok: false, reason: "wait", waitMs };
    }
    const entry: Entry = { work, startedAt: undefined };
    this.#entries.push(entry);
    this.#promote();
    const slot = this.#slot();
    return {
      ok: true,
      release: () => {
        slot();
        const i = this.#entries.indexOf(entry);
        if (i >= 0) {
          this.#entries.splice(i, 1);
          this.#promote();
        }
      },
    };
  }

  /**
   * One more slot for a request already admitted (its other choices), counted against `parallel + queue` only
   * (its work already counts its choices); undefined when the model is full.
   */
  tryAcquire(): (() => void) | undefined {
    return this.#admitted >= this.capacity ? undefined : this.#slot();
  }

  /** What a worker measured on a finished generation. */
  observe(m: Measurement): void {
    this.predictor.observe(m);
  }

  #slot(): () => void {
    this.#admitted++;
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.#admitted--;
      }
    };
  }

  /** The first `parallel` entries run: note when each got there. */
  #promote(): void {
    const now = this.now();
    for (const e of this.#entries.slice(0, this.parallel)) {
      e.startedAt ??= now;
    }
  }
}
