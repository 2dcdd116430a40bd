/**
 * The little of the DOM the demo page uses, typed here: the project compiles without the DOM lib (Node code
 * must not see `document`), so the page reads browser globals through `globalThis` with these shapes.
 */
import { UsageError } from "../core/errors.js";
import type { BlobLike } from "../formats/gguf/source.js";

/** A picked file (`<input type=file>`): a Blob with a name. */
export interface PickedFile extends BlobLike {
  readonly name: string;
}

/** The element properties the page reads or sets (inputs, buttons, text, progress bars). */
export interface UiElement {
  textContent: string | null;
  hidden: boolean;
  disabled: boolean;
  value: string;
  checked: boolean;
  max: number;
  readonly files?: { readonly length: number; item(i: number): PickedFile | null } | null;
  readonly dataset: Record<string, string | undefined>;
  setAttribute(name: string, value: string): void;
  removeAttribute(name: string): void;
  addEventListener(type: string, listener: (event: { preventDefault(): void }) => void): void;
}

interface UiDocument {
  getElementById(id: string): UiElement | null;
  readonly body: UiElement;
}

/** What the page needs of `fetch`'s response. */
export interface UiResponse {
  readonly ok: boolean;
  readonly status: number;
  blob(): Promise<BlobLike>;
  json(): Promise<unknown>;
}

interface UiGlobals {
  readonly document?: UiDocument;
  readonly navigator?: { readonly gpu?: unknown; readonly hardwareConcurrency?: number };
  readonly crossOriginIsolated?: boolean;
  fetch(url: string): Promise<UiResponse>;
}

const g = globalThis as UiGlobals;

/** The page's document; a UsageError outside a page. */
export function pageDocument(): UiDocument {
  if (g.document === undefined) {
    throw new UsageError("unsupported", "[ui] the demo runs in a browser page (no document here)");
  }
  return g.document;
}

/** The element with this id; a UsageError when the page lacks it (index.html and main.ts disagree). */
export function byId(id: string): UiElement {
  const element = pageDocument().getElementById(id);
  if (element === null) {
    throw new UsageError("unsupported", `[ui] the page has no element #${id}`);
  }
  return element;
}

/** Whether the browser exposes WebGPU at all (`navigator.gpu`). */
export function hasNavigatorGpu(): boolean {
  return g.navigator?.gpu !== undefined;
}

/** Whether the page is cross-origin isolated (shared wasm memory, so wasm-simd can use Web Workers). */
export function isCrossOriginIsolated(): boolean {
  return g.crossOriginIsolated === true;
}

/** `fetch` relative to the page. */
export function fetchRelative(url: string): Promise<UiResponse> {
  return g.fetch(url);
}
