import { describe, expect, it } from "vitest";
import { hostOptions, servedName, untilStopped } from "../../src/cli/host-flags.js";

describe("hostOptions", () => {
  it("maps only the flags given, so the config file's and host's defaults apply to the rest", () => {
    expect(hostOptions({ isolation: "process", shutdownTimeout: 10_000 })).toEqual({ isolation: "process" });
    expect(
      hostOptions({ isolation: "in-process", shutdownTimeout: 0, backend: ["js"], threads: 2, parallel: 4, queue: 0, ctx: 512, head: "q8_0", promptCache: 0 }),
    ).toEqual({ isolation: "in-process", backends: ["js"], threads: 2, parallel: 4, queue: 0, contextLength: 512, head: "q8_0", promptCacheMiB: 0 });
  });

  it("names a model by --name, else by its file name without .gguf", () => {
    const flags = { isolation: "process", shutdownTimeout: 0 } as const;
    expect(servedName(flags, "/m/Tiny.GGUF")).toBe("Tiny");
    expect(servedName({ ...flags, name: "x" }, "/m/Tiny.gguf")).toBe("x");
  });
});

describe("untilStopped", () => {
  it("waits for the command's signal (or SIGTERM), and leaves no SIGTERM listener behind", async () => {
    const before = process.listenerCount("SIGTERM");
    const ac = new AbortController();
    let done = false;
    const wait = untilStopped({ signal: ac.signal }).then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    ac.abort();
    await wait;
    expect(process.listenerCount("SIGTERM")).toBe(before);
    await untilStopped({ signal: AbortSignal.abort() }); // already stopped: at once
    expect(process.listenerCount("SIGTERM")).toBe(before);
  });
});
