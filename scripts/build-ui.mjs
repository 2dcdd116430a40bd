#!/usr/bin/env node
// Builds the browser demo page (`barbell serve --ui`) into dist/ui/ after `tsc`: src/ui/main.ts bundled for
// browsers into app.js (with the bundler settings of dist/serve/http/ui.js), and the page's index.html and
// style.css copied next to it. The server uses dist/ui/app.js when it is there; run from the sources, it
// bundles src/ui itself. Part of `npm run build` (and so of `npm install` in a clone).
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const src = join(root, "src", "ui");
const out = join(root, "dist", "ui");
const { bundleUi, UI_BUNDLE } = await import(pathToFileURL(join(root, "dist", "serve", "http", "ui.js")).href);
const js = await bundleUi(src);
await mkdir(out, { recursive: true });
await writeFile(join(out, UI_BUNDLE), js);
for (const name of ["index.html", "style.css"]) {
  await copyFile(join(src, name), join(out, name));
}
console.log(`build-ui: dist/ui/${UI_BUNDLE} (${Math.round(js.length / 1024)} KiB), index.html, style.css`);
