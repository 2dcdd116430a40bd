/**
 * Streaming stop strings. Text arrives in chunks (decoded tokens); the matcher passes it on as soon as it can be
 * sure the text is not part of a stop string, holds back a tail that could still grow into one, and ends the stream
 * at the earliest occurrence of any stop string, which itself is never emitted.
 *
 * Invariant: after each `push`, what is held back starts at the earliest position from which the text could still
 * grow into a stop string, so it is shorter than the longest stop string. A complete match ends the stream only once
 * no earlier-starting stop string can still complete (with stops "abcd" and "c", input "abc" waits for the next
 * chunk). So the concatenation of everything emitted (plus `flush()` at the end) is the whole input truncated
 * before the earliest occurrence of any stop string.
 */
import { ValueError } from "../../core/errors.js";

/** The most stop strings one matcher accepts. */
export const MAX_STOP_STRINGS = 64;
/** The longest stop string accepted, in UTF-16 code units. */
export const MAX_STOP_LENGTH = 1024;

/** What one `push` releases. */
export interface StopResult {
  /** Text that is now safe to show; never contains (any part of) a stop string that matched. */
  emit: string;
  /** True once a stop string has been seen; from then on every push emits "" and stays stopped. */
  stopped: boolean;
}

/** A stateful matcher over one generated stream. */
export interface StopMatcher {
  /** Feeds the next chunk of text. */
  push(chunk: string): StopResult;
  /**
   * Ends the stream: returns the held-back text up to the first stop string it holds (it can no longer grow), or
   * "" once stopped. `stopped` is true afterwards if the held-back text contained a stop string.
   */
  flush(): string;
  /** True once a stop string has been seen. */
  readonly stopped: boolean;
}

/**
 * Creates a matcher for the given stop strings (duplicates are fine; an empty list never stops).
 *
 * @throws ValueError code "out-of-range" for an empty stop string, one longer than {@link MAX_STOP_LENGTH},
 *   or more than {@link MAX_STOP_STRINGS} of them.
 */
export function createStopMatcher(stops: readonly string[]): StopMatcher {
  if (stops.length > MAX_STOP_STRINGS) {
    throw new ValueError("out-of-range", `[stop] at most ${MAX_STOP_STRINGS} stop strings, got ${stops.length}`);
  }
  for (const [i, stop] of stops.entries()) {
    if (typeof stop !== "string" || stop.length === 0 || stop.length > MAX_STOP_LENGTH) {
      throw new ValueError(
        "out-of-range",
        `[stop] stop string ${i} must be a non-empty string of at most ${MAX_STOP_LENGTH} characters`,
        i,
      );
    }
  }
  const unique = [...new Set(stops)];
  const longest = Math.max(1, ...unique.map((stop) => stop.length));
  let held = "";
  let stopped = false;

  /** Start of the earliest complete stop string in `text`, or -1. */
  const firstMatch = (text: string): number => {
    let first = -1;
    for (const stop of unique) {
      const at = text.indexOf(stop);
      if (at >= 0 && (first < 0 || at < first)) {
        first = at;
      }
    }
    return first;
  };

  /**
   * Start of the earliest suffix of `text`, before `limit`, that is a proper prefix of some stop string: text from
   * there on may still become a stop string once more arrives. `limit` when there is none.
   */
  const pendingStart = (text: string, limit: number): number => {
    const from = Math.max(0, text.length - longest + 1);
    for (let j = from; j < limit; j++) {
      const tail = text.slice(j);
      if (unique.some((stop) => stop.length > tail.length && stop.startsWith(tail))) {
        return j;
      }
    }
    return limit;
  };

  /** Emits what is settled and holds the rest; `final` means no more text will come. */
  const settle = (text: string, final: boolean): StopResult => {
    const at = firstMatch(text);
    // A complete match is final only when no stop string starting earlier could still complete.
    const limit = at >= 0 ? at : text.length;
    const pending = final ? limit : pendingStart(text, limit);
    if (pending < limit || at < 0) {
      held = text.slice(pending);
      return { emit: text.slice(0, pending), stopped };
    }
    stopped = true;
    held = "";
    return { emit: text.slice(0, at), stopped };
  };

  return {
    push(chunk: string): StopResult {
      if (stopped) {
        return { emit: "", stopped };
      }
      return settle(held + chunk, false);
    },
    flush(): string {
      if (stopped) {
        return "";
      }
      const { emit } = settle(held, true);
      held = "";
      return emit;
    },
    get stopped(): boolean {
      return stopped;
    },
  };
}
