import { describe, expect, it } from "vitest";
import { hostOptions, servedName } from "../../src/cli/host-flags.js";

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
