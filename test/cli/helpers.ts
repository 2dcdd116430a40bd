/** Running the CLI in tests: through buildProgram with captured output, or through main() for the exit code. */
import { Readable } from "node:stream";
import { vi } from "vitest";
import { buildProgram, main } from "../../src/cli/main.js";

export interface CliRun {
  readonly out: string;
  readonly err: string;
}

/** Runs `barbell <args>` in this process with stdin `input`; throws what the command throws. */
export async function runCli(args: readonly string[], opts: { input?: string; onOut?: (text: string) => void; signal?: AbortSignal } = {}): Promise<CliRun> {
  let out = "";
  let err = "";
  const io = {
    out: (t: string) => {
      out += t;
      opts.onOut?.(t);
    },
    err: (t: string) => void (err += t),
    errIsTty: false,
    input: Readable.from([opts.input ?? ""]),
    signal: opts.signal ?? new AbortController().signal,
  };
  await buildProgram((l) => void (out += `${l}\n`), io).parseAsync(["node", "barbell", ...args]);
  return { out, err };
}

/** Runs `barbell <args>` as the binary does (main()): its exit code and what it wrote to stdout and stderr. */
export async function mainCli(args: readonly string[]): Promise<CliRun & { code: number }> {
  const stdout = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
  const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    const code = await main(["node", "barbell", ...args]);
    const text = (spy: typeof stdout): string => spy.mock.calls.map((c) => String(c[0])).join("");
    return { code, out: text(stdout), err: text(stderr) };
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
  }
}
