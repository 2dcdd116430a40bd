/**
 * The schema, the spec, the generated codec and the TypeScript message tables agree: the committed
 * generated.ts and generated-actor.ts are what the generator makes from schema/barewire.bare today, docs/barewire.md embeds
 * the schema verbatim, and the union tags and dtype values of message.ts are the schema's.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { MESSAGE_TAGS, WIRE_DTYPES } from "../../src/formats/barewire/message.js";
// @ts-expect-error -- a plain .mjs build script without declarations
import { generate, OUTPUTS } from "../../scripts/gen-barewire.mjs";

const root = path.resolve(import.meta.dirname, "../..");
const schema = fs.readFileSync(path.join(root, "schema/barewire.bare"), "utf8");

describe("BAREWire schema", () => {
  it("should match the committed generated codecs (run node scripts/gen-barewire.mjs after a schema change)", () => {
    const generated = (generate as (s: string) => Record<string, string>)(schema);
    for (const [section, rel] of Object.entries(OUTPUTS as Record<string, string>)) {
      expect(generated[section], rel).toBe(fs.readFileSync(path.join(root, rel), "utf8"));
    }
  });

  it("should appear verbatim in the normative spec", () => {
    const doc = fs.readFileSync(path.join(root, "docs/barewire.md"), "utf8");
    expect(doc).toContain(schema.trim());
  });

  it("should give the message union the tags of MESSAGE_TAGS", () => {
    const union = /type Message union \{([^}]*)\}/.exec(schema)?.[1] ?? "";
    const tags = Object.fromEntries([...union.matchAll(/(\w+) = (\d+)/g)].map((m) => [m[1], Number(m[2])]));
    expect(tags).toEqual(MESSAGE_TAGS);
  });

  it("should give the DType enum the values of WIRE_DTYPES in order", () => {
    const body = /type DType enum \{([^}]*)\}/.exec(schema)?.[1] ?? "";
    const values = [...body.matchAll(/(\w+) = (\d+)/g)].map((m) => [(m[1] ?? "").toLowerCase(), Number(m[2])]);
    expect(values).toEqual(WIRE_DTYPES.map((d, i) => [d, i]));
  });
});
