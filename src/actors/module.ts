/**
 * `actorModule(import.meta.url, "./model-actor.js")`: the URL of an actor module next to the caller, for
 * worker and process isolation. When the caller itself runs from TypeScript sources (vitest, tsx), the
 * `.js` extension is swapped for `.ts`, so the same line works in sources and in the compiled dist/.
 */
export function actorModule(callerUrl: string, relative: string): URL {
  const fromSources = /\.(?:ts|mts|cts)$/.test(new URL(callerUrl).pathname);
  const target = fromSources ? relative.replace(/\.js$/, ".ts").replace(/\.mjs$/, ".mts") : relative;
  return new URL(target, callerUrl);
}
