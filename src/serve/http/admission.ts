/**
 * Admission of one model at the HTTP level. Two bounds, both checked at once (a refused request gets HTTP 429
 * with Retry-After instead of waiting without bound):
 *
 * - count: at most `parallel + queue` requests are admitted at a time (decoding or waiting in the model actor);
 * - time (with `maxWaitMs`): a request whose predicted wait for a decode slot exceeds `maxWaitMs` is refused.
 *
 * The wait model (docs/serving.md, "Admission by predicted wait"): the model runs `parallel` requests at a time,
 * first come first served. A request's service time is its prompt at the prefill time per token plus its
 * `max_tokens` at the decode time per token, times its `n` choices (an upper bound: a request may stop early).
 * The admitted requests are kept in arrival order; the first `parallel` run, each with its service time minus
 * the time it has run so far left; each waiting request then takes the slot that frees first. A new request
 * that has to queue is predicted to wait until the first slot frees after all of them, plus its own prefill
 * (the time to its first token); one that finds a free slot is admitted (a long prompt on an idle model too).
 *
 * Times per token come from what the workers measured on finished requests, as TCP estimates its
 * retransmission timeout (RFC 6298): an exponentially weighted mean and mean deviation of the samples, and the
 * prediction uses mean + {@link DEVIATION_WEIGHT} × deviation, so a noisy machine (other processes, the
 * HTTP side itself) predicts longer waits than a quiet one. Until the first measurement, conservative defaults.
 *
 * The decode time a request sees depends on how many share the decode steps: a sample is the aggregate time
 * per token (a request's own decode time per token ÷ the mean batch it ran in), and the predictor assumes every
 * slot is busy whenever a request has to wait, so a running request decodes one token per aggregate time ×
 * `parallel`. Measured at low load (little batching gain) this overestimates waits, which errs on the side of
 * the latency bound.
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
/** Weight of the newest sample in the weighted mean (RFC 6298's alpha). */
export const RATE_EWMA_WEIGHT = 1 / 8;
/** Weight of the newest sample in the mean deviation (RFC 6298's beta). */
export const DEVIATION_EWMA_WEIGHT = 1 / 4;
/** Deviations added to the mean time per token in predictions. */
export const DEVIATION_WEIGHT = 2;
/** Shortest prefill or decode phase (ms) taken as a measurement; shorter ones are timer noise. */
export const MIN_MEASURED_MS = 1;
/** Largest wait (ms) a prediction reports: the admitted work is bounded, this only keeps Retry-After sane. */
export const MAX_PREDICTED_WAIT_MS = 24 * 3600 * 1000;

/** A quantity learnt from samples: weighted mean and mean deviation (RFC 6298's SRTT and RTTVAR). */
class Estimate {
  #mean: number;
  #deviation = 0;
  #samples = 0;

  constructor(defaultMs: number) {
    this.#mean = defaultMs;
  }

  get samples(): number {
    return this.#samples;
  }

  /** What predictions use: mean + DEVIATION_WEIGHT × deviation. */
  get predicted(): number {
    return this.#mean + DEVIATION_WEIGHT * this.#deviation;
  }

  add(ms: number): void {
    if (this.#samples === 0) {
      this.#mean = ms;
      this.#deviation = Math.abs(ms) / 2;
    } else {
      this.#deviation += DEVIATION_EWMA_WEIGHT * (Math.abs(this.#mean - ms) - this.#deviation);
      this.#mean += RATE_EWMA_WEIGHT * (ms - this.#mean);
    }
    this.#samples++;
  }
}

/** The prefill and decode times per token a model showed, and the wait they predict. */
export class WaitPredictor {
  readonly #prefill = new Estimate(1000 / DEFAULT_PREFILL_TOKENS_PER_SECOND);
  readonly #decode = new Estimate(1000 / DEFAULT_DECODE_TOKENS_PER_SECOND);
  /** How much later than predicted queued requests got their slot (ms; negative: earlier). */
  readonly #lateness = new Estimate(0);
  #measured = 0;

  constructor(readonly parallel: number) {}

  /** The rates predictions use now (prompt tokens/s; aggregate decode tokens/s), and measurements so far. */
  get rates(): { readonly prefillTokensPerSecond: number; readonly decodeTokensPerSecond: number; readonly measurements: number } {
    return { prefillTokensPerSecond: 1000 / this.#prefill.predicted, decodeTokensPerSecond: 1000 / this.#decode.predicted, measurements: this.#measured };
  }

  /**
   * What the model leaves out (the HTTP side's own delays before a finished request frees its slot, a busy
   * machine): for a request that queued, how much later than predicted it got its slot. Predictions of a
   * slot wait add mean + DEVIATION_WEIGHT × deviation of it, when positive.
   */
  observeLateness(ms: number): void {
    if (Number.isFinite(ms)) {
      this.#lateness.add(ms);
    }
  }

  /** What predicted slot waits add now (ms, ≥ 0). */
  get latenessMs(): number {
    return Math.max(0, this.#lateness.samples === 0 ? 0 : this.#lateness.predicted);
  }

  /** Folds one finished generation in. */
  observe(m: Measurement): void {
    let used = false;
    if (m.promptTokens > 0 && m.prefillMs >= MIN_MEASURED_MS && Number.isFinite(m.prefillMs)) {
      this.#prefill.add(m.prefillMs / m.promptTokens);
      used = true;
    }
    // The first token comes with the prefill; the decode phase produced the others.
    const decoded = m.completionTokens - 1;
    if (decoded > 0 && m.decodeMs >= MIN_MEASURED_MS && Number.isFinite(m.decodeMs)) {
      const batch = Number.isFinite(m.meanBatch) && m.meanBatch >= 1 ? Math.min(m.meanBatch, this.parallel) : 1;
      this.#decode.add(m.decodeMs / decoded / batch);
      used = true;
    }
    if (used) {
      this.#measured++;
    }
  }

  /** Predicted prefill time (ms) of a request's prompt (all its choices). */
  prefillMs(work: Work): number {
    return (work.choices ?? 1) * work.promptTokens * this.#prefill.predicted;
  }

  /** Predicted time (ms) one request holds a slot while every slot is busy. */
  serviceMs(work: Work): number {
    const decode = Math.max(0, work.maxTokens - 1) * this.#decode.predicted * this.parallel;
    return this.prefillMs(work) + (work.choices ?? 1) * decode;
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
  readonly admittedAt: number;
  /** The slot wait predicted when it was admitted (the model's, without lateness). */
  readonly predictedSlotMs: number;
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

  /**
   * The predicted wait (ms) of a request arriving now: until a slot frees for it (with the predictor's
   * lateness), plus, when it has to queue at all, its own prefill (`work`'s; none without `work`). 0 while a
   * slot is free.
   */
  predictedWaitMs(work?: Work): number {
    const slot = this.#slotWaitMs();
    if (slot <= 0) {
      return 0;
    }
    return Math.min(MAX_PREDICTED_WAIT_MS, slot + this.predictor.latenessMs + (work === undefined ? 0 : this.predictor.prefillMs(work)));
  }

  #slotWaitMs(): number {
    const now = this.now();
    return this.predictor.waitMs(this.#entries.map((e) => ({ work: e.work, ranMs: e.startedAt === undefined ? undefined : now - e.startedAt })));
  }

  /** Admits a request with its work, or says why not; the release function frees its place exactly once. */
  admit(work: Work): Admitted {
    const predictedSlotMs = this.#slotWaitMs();
    const waitMs = this.predictedWaitMs(work);
    if (this.#admitted >= this.capacity) {
      return { ok: false, reason: "full", waitMs };
    }
    if (this.maxWaitMs !== undefined && waitMs > this.maxWaitMs) {
      return { ok: false, reason: "wait", waitMs };
    }
    const entry: Entry = { work, admittedAt: this.now(), predictedSlotMs, startedAt: undefined };
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

  /** The first `parallel` entries run: note when each got there, and how late against its prediction if it queued. */
  #promote(): void {
    const now = this.now();
    for (const e of this.#entries.slice(0, this.parallel)) {
      if (e.startedAt === undefined) {
        e.startedAt = now;
        if (now > e.admittedAt) {
          this.predictor.observeLateness(now - e.admittedAt - e.predictedSlotMs);
        }
      }
    }
  }
}
