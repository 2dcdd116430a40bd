/**
 * The source of a wasm-simd kernel worker: plain JavaScript run as a classic script, in Node (`worker_threads`,
 * `eval: true`) and in browsers (a Web Worker from a Blob URL) alike, so it needs no file and no bundler.
 *
 * The worker receives one message — the compiled module, the shared memory, the control block's offset, its
 * index and the kernel export names — instantiates the module on that memory, answers `{ ready: true }` (or
 * `{ error }`), and then never returns to its event loop: it waits on the control block for jobs. A job names
 * an export, its arguments (float64, in the control block) and how the range is split; the worker runs its
 * part and decrements the pending count, waking the main thread when it reaches zero. Operation −1 stops it.
 *
 * The layout constants are control.ts's CONTROL; the split is the one `partRange` there computes.
 */
import { CONTROL } from "./control.js";

/** The worker script. */
export const WORKER_SOURCE = `"use strict";
const C = ${JSON.stringify(CONTROL)};
const nodePort = typeof require === "function" ? require("node:worker_threads").parentPort : null;
const post = (message) => (nodePort !== null ? nodePort.postMessage(message) : self.postMessage(message));

function partRange(mode, total, align, part, parts) {
  if (mode === 1) {
    return [part, parts];
  }
  const units = Math.ceil(total / align);
  const lo = Math.floor((units * part) / parts) * align;
  const hi = Math.min(total, Math.floor((units * (part + 1)) / parts) * align);
  return [Math.min(lo, total), hi];
}

async function start(init) {
  const { module, memory, control, index, names, spin } = init;
  const env = {
    memory,
    "Math.exp": Math.exp,
    "Math.tanh": Math.tanh,
    "Math.sin": Math.sin,
    "Math.cos": Math.cos,
    "Math.pow": Math.pow,
  };
  const instance = await WebAssembly.instantiate(module, { env });
  const fns = names.map((name) => instance.exports[name]);
  const ints = new Int32Array(memory.buffer, control, C.ints);
  const args = new Float64Array(memory.buffer, control + C.argsOffset, C.maxArgs);
  let seen = Atomics.load(ints, C.gen);
  post({ ready: true });
  for (;;) {
    for (let s = spin; s > 0 && Atomics.load(ints, C.gen) === seen; s--) {
      // Spin briefly: the next job of a decode step usually follows within microseconds.
    }
    if (Atomics.load(ints, C.gen) === seen) {
      Atomics.wait(ints, C.gen, seen);
    }
    const gen = Atomics.load(ints, C.gen);
    if (gen === seen) {
      continue;
    }
    seen = gen;
    const op = Atomics.load(ints, C.op);
    if (op < 0) {
      return;
    }
    const parts = Atomics.load(ints, C.parts);
    if (index < parts) {
      try {
        const argc = Atomics.load(ints, C.argc);
        const call = Array.from(args.subarray(0, argc));
        const scratchArg = Atomics.load(ints, C.scratchArg);
        if (scratchArg >= 0) {
          call[scratchArg] += index * Atomics.load(ints, C.scratchStride);
        }
        const range = partRange(
          Atomics.load(ints, C.mode),
          Atomics.load(ints, C.total),
          Atomics.load(ints, C.align),
          index,
          parts,
        );
        fns[op](...call, range[0], range[1]);
      } catch (error) {
        Atomics.store(ints, C.error, index + 1);
      }
    }
    if (Atomics.sub(ints, C.pending, 1) === 1) {
      Atomics.notify(ints, C.pending);
    }
  }
}

function onInit(init) {
  start(init).catch((error) => post({ error: String(error && error.message ? error.message : error) }));
}

if (nodePort !== null) {
  nodePort.once("message", onInit);
} else {
  self.onmessage = (event) => {
    self.onmessage = null;
    onInit(event.data);
  };
}
`;
