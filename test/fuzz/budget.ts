/**
 * Run counts and time limits of the fuzz suites (issue 13 item 11). Fuzz runs are sized by count, never by time:
 * `BARBELL_FUZZ_RUNS` sets the cases per property (default {@link CI_FUZZ_RUNS}, what `npm test` runs), and each
 * property's timeout is derived from that count and the cost per case measured for it on the project's machine
 * kind, with a {@link TIMEOUT_MARGIN}× margin. So `npm run test:fuzz` (200,000 cases) holds on a machine up to 3×
 * slower instead of failing at vitest's fixed 60 s, and the default counts keep each fuzz file a few seconds long.
 */

/** Cases per property when BARBELL_FUZZ_RUNS is not set (CI). */
export const CI_FUZZ_RUNS = 3000;

/** How much slower than the measurement a machine may be before a fuzz property times out. */
export const TIMEOUT_MARGIN = 3;

/** vitest's own per-test timeout (vitest.config.ts); no fuzz property gets less. */
const FLOOR_MS = 60_000;

function runsFromEnv(): number {
  const text = process.env["BARBELL_FUZZ_RUNS"];
  if (text === undefined || text === "") {
    return CI_FUZZ_RUNS;
  }
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Error(`BARBELL_FUZZ_RUNS must be a positive integer, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** Cases per fuzz property. */
export const FUZZ_RUNS = runsFromEnv();

/**
 * The timeout of a fuzz property that runs `runs` cases costing `msPerCase` each: margin × the expected time, and
 * never under 60 s. `msPerCase` is measured on the project's machine kind (2-vCPU AMD EPYC VM) at 200,000 cases with
 * the fuzz files running in parallel, as `npm run test:fuzz` runs them, and rounded up (docs/fuzzing.md).
 */
export function fuzzTimeout(msPerCase: number, runs: number = FUZZ_RUNS): number {
  return Math.max(FLOOR_MS, Math.ceil(TIMEOUT_MARGIN * msPerCase * runs));
}
