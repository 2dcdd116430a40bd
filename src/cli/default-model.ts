/**
 * The model barbell ships: `models/barbell-kjv.gguf` in the package (trained by `npm run train:default`, card in
 * `models/barbell-kjv.md`). `barbell generate`, `chat` and `serve` run it when no `-m` is given. It is found
 * relative to the package root (the folder whose package.json names "barbell"), so it works from a clone, from
 * dist/ after a build, and from an installed package (`models` is in package.json "files").
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BarbellError } from "../core/errors.js";

/** The default model's path inside the package. */
export const DEFAULT_MODEL = "models/barbell-kjv.gguf";
/** Its card (how it was trained, validation loss, samples). */
export const DEFAULT_MODEL_CARD = "models/barbell-kjv.md";
/** The command that (re)trains it. */
export const DEFAULT_MODEL_RETRAIN = "npm run train:default";

/** No `-m` given and the packaged default model is not there. */
export class DefaultModelError extends BarbellError {
  readonly code = "missing-default-model";
  constructor(message: string) {
    super(message);
    this.name = "DefaultModelError";
  }
}

/** The package root: the nearest folder above this module whose package.json is barbell's. */
export function packageRoot(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: unknown };
      if (pkg.name === "barbell") {
        return dir;
      }
    } catch {
      // no (readable) package.json here: keep going up
    }
    if (path.dirname(dir) === dir) {
      throw new DefaultModelError(`[barbell] cannot find barbell's package root (a package.json named "barbell") above ${from}; reinstall barbell`);
    }
  }
}

/**
 * The absolute path of the model barbell ships (`models/barbell-kjv.gguf`, a 5 MB model trained on the KJV Bible),
 * for trying the library without downloading anything: `await loadModel(defaultModelPath())`. A DefaultModelError
 * when it is missing (a package built without `models/`).
 */
export function defaultModelPath(root: string = packageRoot()): string {
  const file = path.join(root, DEFAULT_MODEL);
  if (!fs.existsSync(file)) {
    throw new DefaultModelError(`[barbell] the default model ${file} is missing (reinstall barbell, or train it: ${DEFAULT_MODEL_RETRAIN})`);
  }
  return file;
}

/** `model` when given; otherwise the default model, saying so through `note` (stderr in the CLI). */
export function modelOrDefault(model: string | undefined, note: (line: string) => void, root?: string): string {
  if (model !== undefined) {
    return model;
  }
  let file: string;
  try {
    file = defaultModelPath(root);
  } catch (error) {
    throw error instanceof DefaultModelError
      ? new DefaultModelError(`[cli] no -m given and ${error.message.replace(/^\[barbell\] the default/, "the default")}; or give -m <model.gguf>`)
      : error;
  }
  const show = (p: string): string => {
    const rel = path.relative(process.cwd(), p);
    return rel.startsWith("..") || path.isAbsolute(rel) ? p : rel;
  };
  const card = path.join(path.dirname(file), path.basename(DEFAULT_MODEL_CARD));
  note(`barbell: no -m given; using the default model ${show(file)} (a small model trained on the KJV Bible; card: ${show(card)})\n`);
  return file;
}
