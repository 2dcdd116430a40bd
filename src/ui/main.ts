/**
 * The demo page's script (bundled into app.js; index.html is its markup): choose a GGUF (the server's default
 * model, or a file from this computer), choose a backend among those this browser offers, and generate with
 * the text streamed and the token rate shown. The model runs in the page; nothing is sent to the server.
 *
 * `document.body.dataset.state` says where the page is (probing, idle, loading, generating, done, error), for
 * tests and assistive tools; the status line says it in words.
 */
import { BlobSource, type ByteSource } from "../formats/gguf/source.js";
import { DEMO_BACKENDS, demoSettings, openDemo, probeDemoBackends, runDemo, type DemoBackendName, type DemoProgress, type DemoSession } from "./demo.js";
import { byId, fetchRelative, hasNavigatorGpu, isCrossOriginIsolated, pageDocument, type UiElement } from "./dom.js";

type PageState = "probing" | "idle" | "loading" | "generating" | "done" | "error";

/** A model the user chose, not necessarily loaded yet. */
interface ModelChoice {
  readonly name: string;
  readonly source: ByteSource;
}

/** What `config.json` says (served by `barbell serve --ui`). */
interface PageConfig {
  readonly defaultModel: { readonly name: string; readonly bytes: number } | null;
}

const el = {
  body: pageDocument().body,
  defaultModel: byId("model-default"),
  file: byId("model-file"),
  modelInfo: byId("model-info"),
  progress: byId("load-progress"),
  prompt: byId("prompt"),
  maxTokens: byId("max-tokens"),
  temperature: byId("temperature"),
  generate: byId("generate"),
  stop: byId("stop"),
  output: byId("output"),
  tps: byId("tps"),
  tokens: byId("token-count"),
  status: byId("status"),
  error: byId("error"),
  radio: (name: DemoBackendName): UiElement => byId(`backend-${name}`),
  note: (name: DemoBackendName): UiElement => byId(`backend-${name}-note`),
};

let choice: ModelChoice | undefined;
let session: { readonly demo: DemoSession; readonly choice: ModelChoice } | undefined;
let running: AbortController | undefined;

function setState(state: PageState, status: string): void {
  el.body.dataset["state"] = state;
  el.status.textContent = status;
  const busy = state === "probing" || state === "loading" || state === "generating";
  el.generate.disabled = busy;
  el.stop.disabled = state !== "generating";
  el.defaultModel.disabled = busy;
  el.file.disabled = busy;
}

function showError(error: unknown): void {
  // Messages of barbell's errors name the component and the problem; nothing else is shown.
  el.error.textContent = error instanceof Error ? error.message : String(error);
  el.error.hidden = false;
  setState("error", "Failed: see the message below.");
}

function clearError(): void {
  el.error.hidden = true;
  el.error.textContent = "";
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function selectedBackend(): DemoBackendName | undefined {
  return DEMO_BACKENDS.find((name) => el.radio(name).checked && !el.radio(name).disabled);
}

function choose(next: ModelChoice, bytes: number): void {
  choice = next;
  el.modelInfo.textContent = `Model: ${next.name} (${megabytes(bytes)})`;
}

function showProgress(p: DemoProgress): void {
  el.tokens.textContent = String(p.tokens);
  el.tps.textContent = p.tokensPerSecond === undefined ? "—" : p.tokensPerSecond.toFixed(2);
}

async function probe(): Promise<void> {
  setState("probing", "Probing the backends this browser offers…");
  const offers = await probeDemoBackends(hasNavigatorGpu());
  for (const offer of offers) {
    const radio = el.radio(offer.name);
    radio.disabled = !offer.available;
    el.note(offer.name).textContent = offer.available ? `available: ${offer.detail}` : `unavailable: ${offer.detail}`;
  }
  const first = offers.find((o) => o.available);
  if (first !== undefined) {
    el.radio(first.name).checked = true;
  }
  const isolation = isCrossOriginIsolated() ? "" : " (this page is not cross-origin isolated, so WASM SIMD runs on one thread)";
  setState("idle", first === undefined ? "No backend can run in this browser." : `Ready. Choose a model, then Generate${isolation}.`);
}

async function offerDefaultModel(): Promise<void> {
  try {
    const response = await fetchRelative("config.json");
    const config = response.ok ? ((await response.json()) as PageConfig) : undefined;
    const model = config?.defaultModel;
    if (model !== null && model !== undefined) {
      el.defaultModel.textContent = `Use the default model (${model.name}, ${megabytes(model.bytes)}, from this server)`;
      el.defaultModel.hidden = false;
      el.defaultModel.addEventListener("click", () => void fetchDefault(model.name));
    }
  } catch {
    // Not served by `barbell serve --ui`: only files from this computer are offered.
  }
}

async function fetchDefault(name: string): Promise<void> {
  clearError();
  try {
    setState("loading", `Downloading ${name}…`);
    const response = await fetchRelative("model/default.gguf");
    if (!response.ok) {
      throw new Error(`[ui] the server answered ${response.status} for the default model`);
    }
    const blob = await response.blob();
    choose({ name, source: new BlobSource(blob) }, blob.size);
    setState("idle", `Downloaded ${name}. Choose a backend, then Generate.`);
  } catch (e) {
    showError(e);
  }
}

function pickFile(): void {
  clearError();
  const file = el.file.files?.item(0);
  if (file !== null && file !== undefined) {
    choose({ name: file.name, source: new BlobSource(file) }, file.size);
    setState("idle", `Chose ${file.name}. Choose a backend, then Generate.`);
  }
}

/** The session for the current choice and backend, loading it (and dropping the old one) when they changed. */
async function sessionFor(model: ModelChoice, backend: DemoBackendName): Promise<DemoSession> {
  if (session !== undefined && session.choice === model && session.demo.backend === backend) {
    return session.demo;
  }
  session?.demo[Symbol.dispose]();
  session = undefined;
  setState("loading", `Loading ${model.name} onto ${backend}…`);
  el.progress.hidden = false;
  el.progress.value = "0";
  try {
    const demo = await openDemo(model.source, model.name, backend, (done, total) => {
      el.progress.max = total;
      el.progress.value = String(done);
    });
    session = { demo, choice: model };
    return demo;
  } finally {
    el.progress.hidden = true;
  }
}

async function generate(): Promise<void> {
  clearError();
  try {
    const settings = demoSettings(el.maxTokens.value, el.temperature.value);
    const backend = selectedBackend();
    if (backend === undefined) {
      throw new Error("[ui] choose a backend first (only those this browser offers can be chosen)");
    }
    if (choice === undefined) {
      throw new Error("[ui] choose a model first: the default model, or a GGUF file from this computer");
    }
    const demo = await sessionFor(choice, backend);
    const where = demo.detail.startsWith(demo.backend) ? demo.detail : `${demo.backend}: ${demo.detail}`;
    el.output.textContent = "";
    showProgress({ tokens: 0, tokensPerSecond: undefined, firstTokenMs: undefined });
    running = new AbortController();
    setState("generating", `Generating on ${where}…`);
    const run = await runDemo(
      demo.model,
      el.prompt.value,
      settings,
      (text, progress) => {
        el.output.textContent = (el.output.textContent ?? "") + text;
        showProgress(progress);
      },
      running.signal,
    );
    showProgress(run);
    const rate = run.tokensPerSecond === undefined ? "" : `, ${run.tokensPerSecond.toFixed(2)} tokens/s`;
    const first = run.firstTokenMs === undefined ? "" : `, first token after ${Math.round(run.firstTokenMs)} ms`;
    const fallbacks = demo.fallbacks.size === 0 ? "" : ` Kernels run by the JS reference instead: ${[...demo.fallbacks].join(", ")}.`;
    setState("done", `Done on ${where}: ${run.tokens} tokens (${run.finishReason})${rate}${first}.${fallbacks}`);
  } catch (e) {
    showError(e);
  } finally {
    running = undefined;
  }
}

el.file.addEventListener("change", pickFile);
el.generate.addEventListener("click", () => void generate());
el.stop.addEventListener("click", () => running?.abort());
void offerDefaultModel();
void probe().catch(showError);
