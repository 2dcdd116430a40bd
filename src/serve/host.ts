/**
 * The model host: what a model worker runs, with no actor in sight. It owns the loaded model of one ladder
 * rung, runs up to `parallel` requests at a time from a bounded FIFO (continuous batching: their decode
 * steps are shared through one {@link Batcher} per backend chain), and turns backend failures into
 * degradation instead of errors:
 *
 * - weights live in the memory of the rung's first dispatcher; ops run through a switch (the fallback-switch
 *   decorator, serve/switch.ts) that can move to the dispatcher without the failing backend (`backends` minus
 *   its first member, and so on);
 * - a kernel failure re-runs the request on the next chain; tokens already streamed are kept and the new
 *   chain continues from prompt + those tokens (recompute, as vLLM does after preemption);
 * - `maxBackendFailures` consecutive failures take a backend out; a re-probe timer (on the injected clock)
 *   runs a one-token canary on it every `reprobeMs` and puts it back when that works.
 */
import type { BackendName } from "../backends/backend.js";
import { disposeBackends, parseBackendList, resolveBackend } from "../backends/registry.js";
import type { Dispatcher } from "../backends/dispatch.js";
import type { Clock, Timer } from "../actors/index.js";
import { systemClock } from "../actors/index.js";
import type { Batcher } from "../engine/batch.js";
import { loadModel, type BitnetModel } from "../engine/model.js";
import { DEFAULT_PROMPT_CACHE_MIB, PromptCache, type PromptCacheStats } from "../engine/prompt-cache.js";
import { resolveGrammar } from "../engine/structured.js";
import { GrammarIncompleteError } from "../model/grammar/index.js";
import { DEFAULT_MAX_TOKENS } from "../engine/generate.js";
import { MAX_TOP_LOGPROBS, type SamplingOptions } from "../model/sampling/index.js";
import { KernelFailure, ServeError } from "./errors.js";
import { planApplies, withFaults } from "./faults.js";
import { checkHostConfig, HOST_DEFAULTS as DEFAULTS, type ExpandResult, type ExpandTarget, type ModelHostOptions } from "./host-config.js";
import { logitsTensor, message, tokenItem } from "./host-items.js";
import { PushQueue } from "../core/queue.js";
import { blankItem, type BackendFailure, type Degradation, type WireItem, type WireRequest, type WorkerStatus } from "./protocol.js";
import { serveSwitch, type BackendSwitch } from "./switch.js";

export { checkHostConfig, HOST_DEFAULTS, type ExpandResult, type ExpandTarget, type ModelHostConfig, type ModelHostOptions, type ModelRung } from "./host-config.js";
export { entropyEstimate } from "./host-items.js";


interface Chain {
  readonly head: string;
  readonly backend: Dispatcher;
}

interface Loaded {
  readonly rung: number;
  readonly name: string;
  readonly model: BitnetModel;
  readonly facade: BackendSwitch;
  readonly chains: readonly Chain[];
  /** One batcher per chain (by index), created on first use; its steps point the facade at that chain. */
  readonly batchers: (Batcher | undefined)[];
  /** KV rows of earlier prompts, shared by the batchers (each under its chain's namespace). */
  readonly promptCache: PromptCache;
  users: number;
  retired: boolean;
  faultStats: (() => number)[];
}

interface Health {
  failures: number;
  consecutive: number;
  out: boolean;
  kernel: string;
  error: string;
  at: number;
  restored: number;
  timer: Timer | undefined;
}

interface Job {
  readonly request: WireRequest;
  readonly out: PushQueue<WireItem>;
  readonly abort: AbortController;
  cancelled: boolean;
  released: boolean;
  /** Wall-clock timing of its generation (performance.now ms), over every attempt: the done item reports it. */
  readonly timing: { started: number | undefined; first: number | undefined; steps: number; rows: number };
}


export class ModelHost {
  readonly #config: ModelHostOptions;
  readonly #clock: Clock;
  readonly #health = new Map<string, Health>();
  readonly #queue: Job[] = [];
  #loaded: Loaded | undefined;
  #loading: Promise<Loaded> | undefined;
  #rung: number;
  #backends: readonly BackendName[] | undefined;
  readonly #parallel: number;
  readonly #running = new Set<Job>();
  #idle: (() => void)[] = [];
  /** Kernel failures already counted against their backend (a failed batched step fails several requests). */
  readonly #counted = new WeakSet<object>();
  /** Decode steps and the rows they carried, of batchers already disposed. */
  #steps = 0;
  #rows = 0;
  #completed = 0;
  #failed = 0;
  /** Prompt-cache counters of models already released (status counts every load). */
  #promptCacheDone = { hits: 0, misses: 0, tokensReused: 0, evictions: 0 };
  #faultsInjected = 0;
  /** The memory the last released model lived in, so status can show it went back to zero. */
  #lastHome: Dispatcher | undefined;
  #disposed = false;

  constructor(config: ModelHostOptions) {
    checkHostConfig(config);
    this.#config = config;
    this.#clock = config.clock ?? systemClock;
    this.#rung = config.rung ?? 0;
    this.#backends = undefined;
    this.#parallel = config.parallel ?? DEFAULTS.parallel;
  }

  /** Loads the current rung now (a no-op when loaded). Throws what loading threw. */
  async load(): Promise<void> {
    await this.#ensureLoaded();
  }

  /** Queues a request; the iterable yields its items and ends after `done` or `error`. Leaving it cancels. */
  submit(request: WireRequest): AsyncIterable<WireItem> {
    const abort = new AbortController();
    const job: Job = {
      request,
      abort,
      cancelled: false,
      released: false,
      timing: { started: undefined, first: undefined, steps: 0, rows: 0 },
      out: new PushQueue<WireItem>(() => {
        job.cancelled = true;
        abort.abort(); // a running request leaves its batch at the next step
        const waiting = this.#queue.indexOf(job);
        if (waiting >= 0) {
          this.#queue.splice(waiting, 1);
        }
      }),
    };
    if (this.#disposed) {
      job.out.push(this.#error("released", "[model] the model host was released for good", 0, []));
      job.out.end();
    } else if (this.#queue.length >= (this.#config.maxQueue ?? DEFAULTS.maxQueue)) {
      job.out.push(this.#error("overloaded", `[model] queue full (${this.#queue.length} waiting, ${this.#running.size} running)`, 0, []));
      job.out.end();
    } else {
      this.#queue.push(job);
      this.#pump();
    }
    return job.out;
  }

  // ---- the runner ----

  /** Starts queued requests while fewer than `parallel` run. */
  #pump(): void {
    while (this.#running.size < this.#parallel) {
      const job = this.#queue.shift();
      if (job === undefined) {
        break;
      }
      if (job.cancelled) {
        continue;
      }
      this.#running.add(job);
      void this.#runJob(job);
    }
    if (this.#running.size === 0 && this.#queue.length === 0) {
      for (const wake of this.#idle.splice(0)) {
        wake();
      }
    }
  }

  async #runJob(job: Job): Promise<void> {
    try {
      await this.#run(job, job.request);
    } catch (error) {
      job.out.push(this.#error("failed", `[model] ${message(error)}`, 0, []));
      this.#failed++;
    } finally {
      job.out.end();
      this.#running.delete(job);
      this.#pump();
    }
  }

  #error(code: string, text: string, completionTokens: number, failures: readonly BackendFailure[]): WireItem {
    return { ...blankItem("error"), code, message: text, model: this.#config.ladder[this.#rung]?.name ?? "", completionTokens, failures };
  }

  async #run(job: Job, request: WireRequest): Promise<void> {
    let loaded: Loaded;
    try {
      loaded = await this.#ensureLoaded();
    } catch (error) {
      this.#failed++;
      job.out.push(this.#error("unavailable", `[model] cannot load ${this.#config.ladder[this.#rung]?.name}: ${message(error)}`, 0, []));
      return;
    }
    loaded.users++;
    try {
      const checked = this.#fit(loaded, request);
      if (typeof checked === "string") {
        this.#failed++;
        job.out.push({ ...this.#error("bad-request", checked, 0, []), model: loaded.name });
        return;
      }
      await this.#attempts(job, loaded, { ...request, maxTokens: checked.maxTokens }, checked.ids);
    } finally {
      loaded.users--;
      this.#retireIfIdle(loaded);
    }
  }

  /**
   * Fits a checked request (request.ts: its fields' types and ranges were checked at its edge) to the loaded model:
   * its prompt's ids (a text prompt tokenized here), inside the vocabulary, and the budget (0: the default,
   * min(DEFAULT_MAX_TOKENS, room)) inside the context; its grammar compiled against this tokenizer. Only this
   * model can tell: the edge may have read another (a rung before expandCapability, a NATS worker's own file) or
   * none (code callers). Returns a message for a request this model cannot run.
   */
  #fit(loaded: Loaded, r: WireRequest): { ids: number[]; maxTokens: number } | string {
    const config = loaded.model.config;
    let ids: number[];
    if (r.input !== undefined) {
      ids = Array.from(new Int32Array(r.input.payload.slice().buffer));
    } else if (r.tokens !== undefined) {
      ids = [...r.tokens];
    } else {
      if (loaded.model.tokenizer === undefined) {
        return `[model] ${loaded.name} has no tokenizer; send token ids`;
      }
      ids = loaded.model.tokenize(r.prompt ?? "");
    }
    if (ids.length === 0) {
      return "[model] the prompt has no tokens";
    }
    const badId = ids.find((id) => !(Number.isSafeInteger(id) && id >= 0 && id < config.vocabSize));
    if (badId !== undefined) {
      return `[model] token id ${badId} is outside the vocabulary (${config.vocabSize})`;
    }
    const context = loaded.model.contextLength;
    const maxTokens = r.input !== undefined ? 0 : r.maxTokens === 0 ? Math.min(DEFAULT_MAX_TOKENS, context - ids.length) : r.maxTokens;
    if (r.input === undefined && !(maxTokens >= 1 && maxTokens <= context)) {
      return r.maxTokens === 0 ? `[model] the prompt (${ids.length}) leaves no room in the context (${context})` : `[model] maxTokens must be in 1..${context}, got ${r.maxTokens}`;
    }
    if (ids.length + maxTokens > context) {
      return `[model] prompt (${ids.length}) + maxTokens (${maxTokens}) exceed the context (${context})`;
    }
    try {
      // Compiled once per text and kept warm in the engine's cache (masks learnt by one request serve the next).
      resolveGrammar(r.grammar === undefined ? {} : { grammar: r.grammar });
    } catch (error) {
      return `[model] ${message(error)}`;
    }
    return { ids, maxTokens };
  }

  /** The request's sampling as the engine takes it (the one translation from the request to the engine's options). */
  #sampling(r: WireRequest): SamplingOptions {
    const options: SamplingOptions = {};
    for (const key of ["temperature", "topK", "topP", "minP", "repetitionPenalty", "seed"] as const) {
      const v = r[key];
      if (v !== undefined) {
        options[key] = v;
      }
    }
    options.topLogprobs = r.confidence ? MAX_TOP_LOGPROBS : r.topLogprobs;
    options.logprobs = r.logprobs || r.confidence;
    return options;
  }

  /** Runs a checked request, moving down the chains on kernel failures. */
  async #attempts(job: Job, loaded: Loaded, request: WireRequest, ids: readonly number[]): Promise<void> {
    const failures: BackendFailure[] = [];
    const emitted: number[] = [];
    let index = this.#firstUsable(loaded, 0);
    for (;;) {
      const chain = loaded.chains[index];
      if (chain === undefined) {
        this.#failed++;
        const tried = failures.map((f) => `${f.backend}: ${f.error}`).join("; ");
        job.out.push({ ...this.#error("kernel", `[model] every backend failed (${tried})`, emitted.length, failures), model: loaded.name });
        return;
      }
      try {
        if (request.input !== undefined) {
          // A logits request runs in one synchronous forward pass, so pointing the shared facade at its chain
          // right before is enough (batchers point it at theirs before each of their steps).
          loaded.facade.use(chain.backend);
          const rows = await loaded.model.logits(ids, { all: request.allLogits });
          job.out.push({ ...blankItem("tensor"), tensor: logitsTensor(rows) });
        } else {
          const finish = await this.#generate(job, loaded, index, request, ids, emitted);
          if (job.released) {
            this.#failed++;
            job.out.push({ ...this.#error("released", "[model] ReleaseResources ended the request", emitted.length, failures), model: loaded.name });
            return;
          }
          if (job.cancelled) {
            return;
          }
          job.out.push({
            ...blankItem("done"),
            finishReason: finish,
            model: loaded.name,
            backend: chain.backend.name,
            promptTokens: ids.length,
            completionTokens: emitted.length,
            failures,
            ...timingOf(job),
          });
          this.#succeeded(chain.head);
          this.#completed++;
          return;
        }
        job.out.push({ ...blankItem("done"), finishReason: "stop", model: loaded.name, backend: chain.backend.name, promptTokens: ids.length, failures });
        this.#succeeded(chain.head);
        this.#completed++;
        return;
      } catch (error) {
        if (!(error instanceof KernelFailure)) {
          throw error;
        }
        failures.push({ backend: chain.head, kernel: error.kernel, error: message(error.cause) });
        if (!this.#counted.has(error)) {
          // A failed batched step fails each of its requests with the same error: the backend failed once.
          this.#counted.add(error);
          this.#backendFailed(chain.head, error);
        }
        index = this.#firstUsable(loaded, index + 1);
      }
    }
  }

  /** One generation attempt; returns the finish reason. Tokens go to the job's queue as they come. */
  async #generate(job: Job, loaded: Loaded, chain: number, r: WireRequest, ids: readonly number[], emitted: number[]): Promise<string> {
    if (emitted.length >= r.maxTokens) {
      return "length";
    }
    if (r.grammar !== undefined && emitted.length > 0) {
      // A new matcher would start the grammar over after the tokens already sent: fail rather than emit invalid text.
      throw new ServeError("failed", "[model] a backend failed during a constrained generation after it streamed tokens; it cannot resume on the next backend");
    }
    const batcher = this.#batcher(loaded, chain);
    const before = batcher.stats();
    job.timing.started ??= performance.now();
    const generation = batcher.generate([...ids, ...emitted], {
      ...this.#sampling(r),
      maxTokens: r.maxTokens - emitted.length,
      // A grammar continues from the tokens emitted before a backend failure (the matcher replays them).
      ...(r.grammar === undefined ? { stop: r.stop } : { grammar: r.grammar }),
      signal: job.abort.signal,
    });
    const vocab = loaded.model.config.vocabSize;
    try {
      for await (const piece of generation) {
        if (job.cancelled) {
          return "abort";
        }
        job.timing.first ??= performance.now();
        job.out.push(tokenItem(piece, r, vocab));
        if (piece.token !== null) {
          emitted.push(piece.token);
        }
      }
      return (await generation.complete()).finishReason;
    } catch (error) {
      // The budget ran out before the grammar was complete: the text so far went out; OpenAI calls this "length".
      if (error instanceof GrammarIncompleteError) {
        return error.reason === "no-room" ? "length" : error.reason;
      }
      throw error;
    } finally {
      const after = batcher.stats();
      job.timing.steps += after.steps - before.steps;
      job.timing.rows += after.rows - before.rows;
    }
  }

  /** The batcher of chain `index` of `loaded` (created on first use). */
  #batcher(loaded: Loaded, index: number): Batcher {
    let batcher = loaded.batchers[index];
    const chain = loaded.chains[index];
    if (batcher === undefined && chain !== undefined) {
      batcher = loaded.model.batcher({
        maxSequences: this.#parallel,
        contextLength: loaded.model.contextLength,
        beforeStep: () => loaded.facade.use(chain.backend),
        promptCache: { cache: loaded.promptCache, namespace: `chain ${index}` },
      });
      loaded.batchers[index] = batcher;
    }
    if (batcher === undefined) {
      throw new ServeError("failed", `[model] no backend chain ${index}`);
    }
    return batcher;
  }

  // ---- backend health ----

  #healthOf(backend: string): Health {
    let h = this.#health.get(backend);
    if (h === undefined) {
      h = { failures: 0, consecutive: 0, out: false, kernel: "", error: "", at: 0, restored: 0, timer: undefined };
      this.#health.set(backend, h);
    }
    return h;
  }

  /** The first chain at or after `from` whose head is not out (the last chain is never out). */
  #firstUsable(loaded: Loaded, from: number): number {
    let i = from;
    while (i < loaded.chains.length - 1 && this.#health.get(loaded.chains[i]?.head ?? "")?.out === true) {
      i++;
    }
    return i;
  }

  #succeeded(backend: string): void {
    const h = this.#health.get(backend);
    if (h !== undefined) {
      h.consecutive = 0;
    }
  }

  #backendFailed(backend: string, error: KernelFailure): void {
    const h = this.#healthOf(backend);
    h.failures++;
    h.consecutive++;
    h.kernel = error.kernel;
    h.error = message(error.cause);
    h.at = this.#clock.now();
    const loaded = this.#loaded;
    const last = loaded?.chains[loaded.chains.length - 1]?.head;
    if (!h.out && backend !== last && h.consecutive >= (this.#config.maxBackendFailures ?? DEFAULTS.maxBackendFailures)) {
      h.out = true;
      this.#scheduleReprobe(backend);
    }
  }

  #scheduleReprobe(backend: string): void {
    const h = this.#healthOf(backend);
    h.timer?.cancel();
    h.timer = this.#clock.setTimer(() => {
      h.timer = undefined;
      if (h.out && !this.#disposed) {
        this.#enqueueCanary(backend);
      }
    }, this.#config.reprobeMs ?? DEFAULTS.reprobeMs);
  }

  #enqueueCanary(backend: string): void {
    void this.#canary(backend);
  }

  /**
   * A one-token generation on the chain headed by `backend` (a prefill of one token and a sample, through
   * that chain's batcher, beside the requests running meanwhile); success puts it back.
   */
  async #canary(backend: string): Promise<void> {
    const h = this.#healthOf(backend);
    const loaded = this.#loaded;
    const index = loaded?.chains.findIndex((c) => c.head === backend) ?? -1;
    if (loaded === undefined || index < 0) {
      return; // released meanwhile: the next load re-arms the probe
    }
    loaded.users++;
    try {
      const probe = this.#batcher(loaded, index).generate([loaded.model.tokenizer?.bos ?? 0], { temperature: 0, maxTokens: 1, stopTokens: [] });
      await probe.complete();
      h.out = false;
      h.consecutive = 0;
      h.restored++;
    } catch (error) {
      h.failures++;
      h.error = message(error instanceof KernelFailure ? error.cause : error);
      h.kernel = error instanceof KernelFailure ? error.kernel : "";
      h.at = this.#clock.now();
      if (!this.#disposed && this.#loaded === loaded) {
        this.#scheduleReprobe(backend);
      }
    } finally {
      loaded.users--;
      this.#retireIfIdle(loaded);
    }
  }

  // ---- loading, expansion, release ----

  async #ensureLoaded(): Promise<Loaded> {
    if (this.#loaded !== undefined) {
      return this.#loaded;
    }
    this.#loading ??= this.#load(this.#rung, this.#backends).finally(() => (this.#loading = undefined));
    const loaded = await this.#loading;
    this.#loaded = loaded;
    for (const [backend, h] of this.#health) {
      if (h.out && h.timer === undefined) {
        this.#scheduleReprobe(backend);
      }
    }
    return loaded;
  }

  async #load(rung: number, override: readonly BackendName[] | undefined): Promise<Loaded> {
    const spec = this.#config.ladder[rung];
    if (spec === undefined) {
      throw new ServeError("bad-config", `[model] no rung ${rung}`);
    }
    const requested = override ?? spec.backends ?? this.#config.backends;
    const common = {
      autotune: this.#config.autotune ?? false,
      ...(this.#config.threads === undefined ? {} : { threads: this.#config.threads }),
    };
    const primary = await resolveBackend({ ...common, ...(requested === undefined ? {} : { backends: requested }) });
    const heads: string[] = requested === undefined ? [...primary.members] : [...requested];
    const chains: Chain[] = [];
    const faultStats: (() => number)[] = [];
    for (let i = 0; i < heads.length; i++) {
      const list = heads.slice(i) as BackendName[];
      const head = list[0] ?? "js";
      let backend: Dispatcher = i === 0 ? primary : await resolveBackend({ ...common, backends: list });
      const plans = (this.#config.faults ?? []).filter((p) => planApplies(p, head, this.#config.incarnation ?? 0));
      if (plans.length > 0) {
        const faulty = withFaults(backend, plans, {
          allowProcessFaults: this.#config.isolated === true,
          salt: this.#config.incarnation ?? 0,
        });
        faultStats.push(() => faulty.stats().injected);
        backend = faulty;
      }
      chains.push({ head, backend });
    }
    const home = chains[0]?.backend ?? primary;
    const facade = serveSwitch(home);
    const contextLength = spec.contextLength ?? this.#config.contextLength;
    const model = await loadModel(spec.path, {
      backend: facade.backend,
      ...(contextLength === undefined ? {} : { contextLength }),
      ...(spec.headType === undefined ? {} : { headType: spec.headType }),
      ...(spec.kvCacheType === undefined ? {} : { kvCacheType: spec.kvCacheType }),
    });
    let promptCache: PromptCache;
    try {
      promptCache = new PromptCache(model.config, this.#config.promptCacheMiB ?? DEFAULT_PROMPT_CACHE_MIB);
    } catch (error) {
      model.dispose();
      throw error;
    }
    return { rung, name: spec.name, model, facade, chains, batchers: [], promptCache, users: 0, retired: false, faultStats };
  }

  /**
   * Moves to a more capable configuration: another rung of the ladder (default the next), or other backends.
   * The new model is loaded while the old one keeps serving; requests that started on the old one finish
   * there, later ones run on the new one, and the old one is freed when its last request ends.
   */
  async expand(target: ExpandTarget): Promise<ExpandResult> {
    const ladder = this.#config.ladder;
    let rung = this.#rung;
    if (target.rung !== undefined) {
      rung = ladder.findIndex((r) => r.name === target.rung);
      if (rung < 0) {
        return { ok: false, code: "bad-request", message: `[model] no rung named '${target.rung}' (ladder: ${ladder.map((r) => r.name).join(", ")})` };
      }
    } else if (target.backends === undefined) {
      rung = this.#rung + 1;
      if (rung >= ladder.length) {
        return { ok: false, code: "bad-request", message: `[model] ${ladder[this.#rung]?.name} is already the top of the ladder` };
      }
    }
    let backends: readonly BackendName[] | undefined;
    try {
      backends = target.backends === undefined ? undefined : parseBackendList(target.backends.join(","));
    } catch (error) {
      return { ok: false, code: "bad-request", message: message(error) };
    }
    if (this.#disposed) {
      return { ok: false, code: "released", message: "[model] the model host was released for good" };
    }
    let next: Loaded;
    try {
      next = await this.#load(rung, backends);
    } catch (error) {
      return { ok: false, code: "unavailable", message: `[model] cannot load ${ladder[rung]?.name}: ${message(error)}` };
    }
    const old = this.#loaded;
    this.#loaded = next;
    this.#rung = rung;
    this.#backends = backends;
    if (old !== undefined) {
      old.retired = true;
      this.#retireIfIdle(old);
    }
    return { ok: true, code: "", message: `[model] now ${next.name} on ${next.chains[0]?.backend.name ?? ""}` };
  }

  #retireIfIdle(loaded: Loaded): void {
    if (loaded.retired && loaded.users === 0) {
      this.#dispose(loaded);
    }
  }

  #dispose(loaded: Loaded): void {
    for (const batcher of loaded.batchers.splice(0)) {
      if (batcher !== undefined) {
        const stats = batcher.stats();
        this.#steps += stats.steps;
        this.#rows += stats.rows;
        batcher.dispose(); // before the model: ends what is left of its generations, frees their caches
      }
    }
    this.#faultsInjected += loaded.faultStats.reduce((sum, f) => sum + f(), 0);
    loaded.faultStats = [];
    const pc = loaded.promptCache.stats();
    const done = this.#promptCacheDone;
    this.#promptCacheDone = { hits: done.hits + pc.hits, misses: done.misses + pc.misses, tokensReused: done.tokensReused + pc.tokensReused, evictions: done.evictions + pc.evictions };
    loaded.promptCache.dispose(); // after the batchers (a retiring sequence offers its rows), before the model
    loaded.model.dispose();
    this.#lastHome = loaded.facade.home;
  }

  /**
   * Frees the weights, the KV cache and (in a worker's own process) the process-wide backends. Queued and
   * running requests end with a `released` error. The next request loads the model again.
   */
  async release(): Promise<void> {
    for (const job of this.#queue.splice(0)) {
      if (!job.cancelled) {
        this.#failed++;
        job.out.push(this.#error("released", "[model] ReleaseResources ended the request before it ran", 0, []));
      }
      job.out.end();
    }
    if (this.#running.size > 0) {
      for (const running of this.#running) {
        running.released = true;
        running.abort.abort(); // each leaves its batch at the next step
      }
      await new Promise<void>((resolve) => this.#idle.push(resolve));
    }
    await this.#loading?.catch(() => undefined);
    for (const h of this.#health.values()) {
      h.timer?.cancel();
      h.timer = undefined;
    }
    const loaded = this.#loaded;
    this.#loaded = undefined;
    if (loaded !== undefined) {
      this.#dispose(loaded);
    }
    if (this.#config.isolated === true) {
      await disposeBackends();
    }
  }

  /** Releases for good: later requests end with `released`. */
  async dispose(): Promise<void> {
    await this.release();
    this.#disposed = true;
  }

  /** Decode steps and the rows (sequences) they carried, over every batcher so far: mean batch = rows / steps. */
  #batchStats(loaded: Loaded | undefined): { batchSteps: number; batchRows: number; active: number } {
    let batchSteps = this.#steps;
    let batchRows = this.#rows;
    let active = 0;
    for (const batcher of loaded?.batchers ?? []) {
      const stats = batcher?.stats();
      batchSteps += stats?.steps ?? 0;
      batchRows += stats?.rows ?? 0;
      active += stats?.active ?? 0;
    }
    return { batchSteps, batchRows, active };
  }

  /** The loaded model's prompt cache, with the counters of models released before it. */
  #promptCacheStats(loaded: Loaded | undefined): PromptCacheStats {
    const now = loaded?.promptCache.stats();
    const done = this.#promptCacheDone;
    return {
      budgetBytes: now?.budgetBytes ?? (this.#config.promptCacheMiB ?? DEFAULT_PROMPT_CACHE_MIB) * 1024 * 1024,
      bytes: now?.bytes ?? 0,
      entries: now?.entries ?? 0,
      hits: done.hits + (now?.hits ?? 0),
      misses: done.misses + (now?.misses ?? 0),
      tokensReused: done.tokensReused + (now?.tokensReused ?? 0),
      evictions: done.evictions + (now?.evictions ?? 0),
    };
  }

  status(): WorkerStatus {
    const loaded = this.#loaded;
    const rung = loaded?.rung ?? this.#rung;
    const memoryOf = loaded?.facade.backend ?? this.#lastHome;
    const usage = process.memoryUsage();
    const config = loaded?.model.config;
    const usable = loaded === undefined ? undefined : loaded.chains[this.#firstUsable(loaded, 0)];
    const degradations: Degradation[] = [...this.#health].map(([backend, h]) => ({
      backend,
      failures: h.failures,
      consecutive: h.consecutive,
      out: h.out,
      kernel: h.kernel,
      error: h.error,
      at: h.at,
      restored: h.restored,
    }));
    return {
      model: this.#config.ladder[rung]?.name ?? "",
      rung,
      rungs: this.#config.ladder.length,
      loaded: loaded !== undefined,
      backend: usable?.backend.name ?? "",
      device: `cpu (${process.arch})`,
      chain: loaded?.chains.map((c) => c.head) ?? [],
      out: degradations.filter((d) => d.out).map((d) => d.backend),
      memory: {
        liveAllocations: memoryOf?.liveAllocations() ?? 0,
        liveBytes: memoryOf?.liveBytes() ?? 0,
        rss: usage.rss,
        heapUsed: usage.heapUsed,
      },
      capabilities: {
        arch: config?.arch ?? "",
        vocab: config?.vocabSize ?? 0,
        contextLength: loaded?.model.contextLength ?? 0,
        layers: config?.layers ?? 0,
        hidden: config?.hidden ?? 0,
        text: loaded?.model.tokenizer !== undefined,
        canExpand: rung + 1 < this.#config.ladder.length,
      },
      queued: this.#queue.filter((j) => !j.cancelled).length,
      running: this.#running.size,
      parallel: this.#parallel,
      ...this.#batchStats(loaded),
      promptCache: this.#promptCacheStats(loaded),
      completed: this.#completed,
      failed: this.#failed,
      degradations,
      faultsInjected: this.#faultsInjected + (loaded?.faultStats.reduce((sum, f) => sum + f(), 0) ?? 0),
      pid: process.pid,
      incarnation: this.#config.incarnation ?? 0,
    };
  }
}

/**
 * What a finished generation measured, for the server's admission by predicted wait: prefill (start of its
 * generation to its first token), decode (first token to now) and the mean batch of the decode steps run
 * meanwhile (every sequence of the batcher shares them, so rows / steps).
 */
function timingOf(job: Job): Pick<WireItem, "prefillMs" | "decodeMs" | "meanBatch"> {
  const { started, first, steps, rows } = job.timing;
  const now = performance.now();
  return {
    prefillMs: started === undefined || first === undefined ? 0 : first - started,
    decodeMs: first === undefined ? 0 : now - first,
    meanBatch: steps > 0 ? rows / steps : 1,
  };
}
