import { describe, expect, it } from "vitest";
import { nativeAddon, probeNativeCpu } from "../../src/backends/native-cpu/addon.js";
import { measureReadBandwidth } from "../../src/backends/native-cpu/index.js";

const probe = probeNativeCpu();

describe.skipIf(!probe.available)(`native read-bandwidth probe${probe.available ? "" : ` (skipped: ${probe.reason})`}`, () => {
  it("should read every word it is given, split over threads", () => {
    const addon = nativeAddon();
    if (addon === undefined) {
      throw new Error("probe said available");
    }
    const context = new addon.Context(2, "scalar");
    try {
      const words = (3 << 20) / 8 + 5; // several 1 MiB slices and a tail
      const data = new Uint8Array(words * 8);
      const view = new DataView(data.buffer);
      let expected = 0;
      for (let i = 0; i < words; i++) {
        view.setUint32(i * 8, i % 1000, true);
        expected += i % 1000;
      }
      expect(context.readSum(data, words)).toBe(expected);
      expect(() => context.readSum(data, words + 1)).toThrow();
    } finally {
      context.dispose();
    }
  });

  it("should report a positive bandwidth", () => {
    expect(measureReadBandwidth(1, 8 << 20)).toBeGreaterThan(0);
  });
});
