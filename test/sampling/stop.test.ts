import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValueError } from "../../src/core/errors.js";
import { createStopMatcher, MAX_STOP_LENGTH, MAX_STOP_STRINGS } from "../../src/model/sampling/stop.js";

/** Feeds the chunks in order; returns what each push emitted, whether it stopped, and the final flush. */
function run(stops: string[], chunks: string[]): { emits: string[]; stopped: boolean; text: string } {
  const matcher = createStopMatcher(stops);
  const emits = chunks.map((c) => matcher.push(c).emit);
  const tail = matcher.flush();
  return { emits, stopped: matcher.stopped, text: emits.join("") + tail };
}

/** The input truncated before the earliest occurrence of any stop string. */
function truncate(input: string, stops: readonly string[]): string {
  const found = stops.map((s) => input.indexOf(s)).filter((i) => i >= 0);
  return found.length === 0 ? input : input.slice(0, Math.min(...found));
}

/** Splits `text` at the given cut points (any numbers; taken modulo the length, deduplicated, sorted). */
function split(text: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((c) => (text.length === 0 ? 0 : c % (text.length + 1))))].sort((a, b) => a - b);
  const chunks: string[] = [];
  let last = 0;
  for (const p of [...points, text.length]) {
    chunks.push(text.slice(last, p));
    last = p;
  }
  return chunks;
}

const small = fc.string({ unit: fc.constantFrom("a", "b", "c"), maxLength: 40 });
const stopList = fc.array(fc.string({ unit: fc.constantFrom("a", "b", "c"), minLength: 1, maxLength: 4 }), {
  maxLength: 3,
});

describe("createStopMatcher", () => {
  it("ends at a stop string inside one chunk and never emits it", () => {
    const matcher = createStopMatcher(["</s>"]);
    expect(matcher.push("hello</s>world")).toEqual({ emit: "hello", stopped: true });
    expect(matcher.push("more")).toEqual({ emit: "", stopped: true });
    expect(matcher.flush()).toBe("");
  });

  it("holds back a possible start of a stop string and releases it once it cannot match", () => {
    const matcher = createStopMatcher(["STOP"]);
    expect(matcher.push("abc ST")).toEqual({ emit: "abc ", stopped: false });
    expect(matcher.push("O")).toEqual({ emit: "", stopped: false });
    expect(matcher.push("x")).toEqual({ emit: "STOx", stopped: false });
  });

  it("matches a stop string that spans several chunks", () => {
    expect(run(["<|eot|>"], ["Hi <", "|e", "ot", "|> after"])).toEqual({
      emits: ["Hi ", "", "", ""],
      stopped: true,
      text: "Hi ",
    });
  });

  it("stops at whichever of several stop strings occurs first in the text", () => {
    expect(run(["World", "lo"], ["Hello World"]).text).toBe("Hel");
    expect(run(["xyz", "ab"], ["--xy", "zab"]).text).toBe("--");
  });

  it("releases held-back text at flush when the stream ends without a stop", () => {
    const matcher = createStopMatcher(["\n\nUser:"]);
    expect(matcher.push("answer\n\nUs").emit).toBe("answer");
    expect(matcher.flush()).toBe("\n\nUs");
    expect(matcher.stopped).toBe(false);
  });

  it("finds a stop string that overlaps a false start (aab with stop ab)", () => {
    expect(run(["ab"], ["a", "a", "b"])).toEqual({ emits: ["", "a", ""], stopped: true, text: "a" });
  });

  it("waits before stopping at a short stop string while a longer one that starts earlier may still complete", () => {
    const matcher = createStopMatcher(["abcd", "c"]);
    expect(matcher.push("xabc")).toEqual({ emit: "x", stopped: false });
    expect(matcher.push("d")).toEqual({ emit: "", stopped: true });
    const other = createStopMatcher(["abcd", "c"]);
    other.push("xabc");
    expect(other.push("e")).toEqual({ emit: "ab", stopped: true });
  });

  it("cuts at a held-back stop string when the stream ends before the longer candidate resolves", () => {
    const matcher = createStopMatcher(["abcd", "c"]);
    expect(matcher.push("xabc").emit).toBe("x");
    expect(matcher.flush()).toBe("ab");
    expect(matcher.stopped).toBe(true);
  });

  it("passes text straight through when there are no stop strings", () => {
    expect(run([], ["a", "b"])).toEqual({ emits: ["a", "b"], stopped: false, text: "ab" });
  });

  it("emits exactly the input truncated before the first stop string, however it is chunked", () => {
    fc.assert(
      fc.property(small, stopList, fc.array(fc.nat(), { maxLength: 10 }), (input, stops, cuts) => {
        const result = run(stops, split(input, cuts));
        expect(result.text).toBe(truncate(input, stops));
        expect(result.stopped).toBe(stops.some((s) => input.includes(s)));
      }),
      { numRuns: 2000 },
    );
  });

  it("never emits text that a later chunk could turn into a stop string, and holds back less than a stop", () => {
    fc.assert(
      fc.property(small, stopList, fc.array(fc.nat(), { maxLength: 10 }), (input, stops, cuts) => {
        const matcher = createStopMatcher(stops);
        const expected = truncate(input, stops);
        const longest = Math.max(1, ...stops.map((s) => s.length));
        let fed = "";
        let emitted = "";
        for (const chunk of split(input, cuts)) {
          fed += chunk;
          const { emit, stopped } = matcher.push(chunk);
          emitted += emit;
          expect(expected.startsWith(emitted)).toBe(true);
          if (!stopped) {
            expect(fed.length - emitted.length).toBeLessThan(longest);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("rejects an empty or overlong stop string and too many stop strings", () => {
    expect(() => createStopMatcher(["ok", ""])).toThrow(/stop string 1/);
    expect(() => createStopMatcher(["x".repeat(MAX_STOP_LENGTH + 1)])).toThrow(ValueError);
    expect(() => createStopMatcher(Array.from({ length: MAX_STOP_STRINGS + 1 }, (_, i) => `s${i}`))).toThrow(
      ValueError,
    );
  });
});
