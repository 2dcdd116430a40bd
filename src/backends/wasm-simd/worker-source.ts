/**
 * The source of a wasm-simd kernel worker: plain JavaScript run as a classic script, in Node (`worker_threads`,
 * `eval: true`) and in browsers (a Web Worker from a Blob URL) alike, so it needs no file and no bundler.
 *
 * The worker receives one message — the compiled module, the shared memory, the control block's offset, its
 * index and the kernel export names — instantiates the module on that memory, answers `{ ready: true }` (or
 * `{ error }`), and then never returns to its event loop: it waits on the control block for jobs. A job names
 * an export, its arguments (float64, in the control block) and how its range is cut into chunks; the worker
 * claims chunks until none is left, counting each one done and waking the main thread after the last. The
 * stop word ends the loop (and so the worker).
 *
 * The layout constants are control.ts's CONTROL and the split is the one `partRange` there computes; the
 * module's Math imports are wasm-api.ts's WASM_MATH_IMPORTS, as on the main thread.
 */
import { CONTROL } from "./control.js";
import { WASM_MATH_IMPORTS } from "./wasm-api.js";

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
  const env = { memory };
  for (const name of ${JSON.stringify(WASM_MATH_IMPORTS)}) {
    env["Math." + name] = Math[name];
  }
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
    seen = Atomics.load(ints, C.gen);
    if (Atomics.load(ints, C.stop) !== 0) {
      return;
    }
    for (;;) {
      const left = Atomics.load(ints, C.claim);
      if (left <= 0) {
        break;
      }
      if (Atomics.compareExchange(ints, C.claim, left, left - 1) !== left) {
        continue;
      }
      // Claimed chunk left − 1 of the current job: its arguments stay put until every chunk is done.
      const chunks = Atomics.load(ints, C.chunks);
      try {
        const call = Array.from(args.subarray(0, Atomics.load(ints, C.argc)));
        const scratchArg = Atomics.load(ints, C.scratchArg);
        if (scratchArg >= 0) {
          call[scratchArg] += index * Atomics.load(ints, C.scratchStride);
        }
        const mode = Atomics.load(ints, C.mode);
        const range = partRange(mode, Atomics.load(ints, C.total), Atomics.load(ints, C.align), left - 1, chunks);
        fns[Atomics.load(ints, C.op)](...call, range[0], range[1]);
      } catch (error) {
        Atomics.store(ints, C.error, index + 1);
      }
      Atomics.add(ints, C.workerChunks, 1);
      if (Atomics.add(ints, C.done, 1) + 1 === chunks) {
        Atomics.notify(ints, C.done);
      }
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
