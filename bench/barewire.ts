/**
 * BAREWire throughput: encode and decode of f32 tensors of 1 KB, 1 MB and 256 MB, against JSON, a
 * safetensors-style header + payload, and a raw copy. Zero-copy decode time should not grow with size.
 *
 *   npx tsx bench/barewire.ts [--quick]     # alone; `npm run bench` includes it
 */
import { fileURLToPath } from "node:url";
import { decodeTensorView, encodeTensorFrame, type WireTensor } from "../src/formats/barewire/index.js";

interface Row {
  readonly size: string;
  readonly method: string;
  readonly encodeMBs: number | undefined;
  readonly decodeMBs: number | undefined;
  readonly decodeUs: number | undefined;
}

/** Median seconds per call of `fn`, over enough calls to fill about `budgetMs`. */
function time(fn: () => unknown, budgetMs: number): number {
  fn();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < 5 || (performance.now() - start < budgetMs && samples.length < 10000)) {
    const t0 = performance.now();
    fn();
    samples.push((performance.now() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1] ?? Number.NaN;
}

function safetensorsEncode(t: WireTensor): Uint8Array {
  const header = new TextEncoder().encode(
    JSON.stringify({ [t.name]: { dtype: "F32", shape: t.dims.map((d) => d.size), data_offsets: [0, t.payload.length] } }),
  );
  const pad = (8 - (header.length % 8)) % 8;
  const out = new Uint8Array(8 + header.length + pad + t.payload.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length + pad), true);
  out.set(header, 8);
  out.fill(0x20, 8 + header.length, 8 + header.length + pad);
  out.set(t.payload, 8 + header.length + pad);
  return out;
}

function safetensorsDecode(bytes: Uint8Array): Float32Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { data_offsets: [number, number] }>;
  const entry = Object.values(header)[0];
  const [a, b] = entry?.data_offsets ?? [0, 0];
  return new Float32Array(bytes.buffer, bytes.byteOffset + 8 + n + a, (b - a) / 4);
}

/** Runs the BAREWire benchmark and returns its Markdown section. */
export function barewireBench(options: { readonly quick?: boolean } = {}): string[] {
  const sizes: [string, number][] = [
    ["1 KB", 1024],
    ["1 MB", 2 ** 20],
    options.quick === true ? ["32 MB", 32 * 2 ** 20] : ["256 MB", 256 * 2 ** 20],
  ];
  const rows: Row[] = [];
  for (const [label, bytes] of sizes) {
    const n = bytes / 4;
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      values[i] = Math.sin(i);
    }
    const t: WireTensor = {
      name: "x",
      dtype: "f32",
      dims: [{ name: "seq", size: n / 256 }, { name: "embed", size: 256 }],
      scales: [],
      flags: 0,
      payload: new Uint8Array(values.buffer),
    };
    const budget = bytes >= 2 ** 26 ? 1500 : 300;
    const mbs = (s: number): number => bytes / 2 ** 20 / s;

    const frame = encodeTensorFrame(t);
    const expect = { dtype: "f32", dims: ["seq", "embed"] } as const;
    const enc = time(() => encodeTensorFrame(t), budget);
    const dec = time(() => {
      const r = decodeTensorView(frame, expect);
      if (!r.ok || r.value.copied) {
        throw new Error("decode failed or copied");
      }
    }, budget);
    rows.push({ size: label, method: "BAREWire (view)", encodeMBs: mbs(enc), decodeMBs: mbs(dec), decodeUs: dec * 1e6 });

    const st = safetensorsEncode(t);
    const stEnc = time(() => safetensorsEncode(t), budget);
    const stDec = time(() => safetensorsDecode(st), budget);
    rows.push({ size: label, method: "safetensors-style", encodeMBs: mbs(stEnc), decodeMBs: mbs(stDec), decodeUs: stDec * 1e6 });

    const copy = time(() => t.payload.slice(), budget);
    rows.push({ size: label, method: "raw copy", encodeMBs: mbs(copy), decodeMBs: mbs(copy), decodeUs: copy * 1e6 });

    if (bytes <= 2 ** 20) {
      const json = JSON.stringify({ name: t.name, shape: [n / 256, 256], data: Array.from(values) });
      const jEnc = time(() => JSON.stringify({ name: t.name, shape: [n / 256, 256], data: Array.from(values) }), budget);
      const jDec = time(() => Float32Array.from((JSON.parse(json) as { data: number[] }).data), budget);
      rows.push({ size: label, method: "JSON", encodeMBs: mbs(jEnc), decodeMBs: mbs(jDec), decodeUs: jDec * 1e6 });
    } else {
      rows.push({ size: label, method: "JSON", encodeMBs: undefined, decodeMBs: undefined, decodeUs: undefined });
    }
  }
  const f = (x: number | undefined, digits = 0): string => (x === undefined ? "–" : x.toFixed(digits));
  return [
    "## BAREWire encode/decode (f32 tensors)",
    "",
    "| size | method | encode MB/s | decode MB/s | decode µs |",
    "|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.size} | ${r.method} | ${f(r.encodeMBs)} | ${f(r.decodeMBs)} | ${f(r.decodeUs, 1)} |`),
    "",
    "Medians. BAREWire decode returns a Float32Array view of the frame (no copy), so its time is the header's and does",
    "not grow with size; encode copies the payload once. JSON is skipped above 1 MB (its text nears V8's string limit).",
    "",
  ];
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(`${barewireBench({ quick: process.argv.includes("--quick") }).join("\n")}\n`);
}
