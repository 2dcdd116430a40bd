/**
 * The CUDA backend (docs/cuda.md): the `cuda` provider over barbell_cuda.node. Its probe answers without a
 * GPU: "barbell_cuda.node was not built: …" when the install skipped it, "no CUDA driver …" when the runtime
 * finds no driver. Not chosen automatically (priority −1) until its kernels have passed conformance on a GPU;
 * `--backend cuda` names it.
 *
 * Kernels run on the device in call order (one stream); readAsync waits for them and reports the data
 * problems they recorded (a non-finite activation, a token id outside the vocabulary).
 */
import { UsageError } from "../../core/errors.js";
import type { BackendProvider, KernelName, Kernels, PartialBackend, Probe, TensorRef } from "../backend.js";
import { binaryCode, unaryCode } from "../ops.js";
import { storageBytes } from "../storage.js";
import { loadCudaAddon, type CudaAddon, type DevicePtr } from "./addon.js";
import { CudaError, fromAddonError } from "./errors.js";
import { CudaMemory } from "./memory.js";

export { CudaError, type CudaErrorCode } from "./errors.js";
export { CudaMemory, MAX_CUDA_BUFFER_BYTES } from "./memory.js";
export { cudaAddonPath, loadCudaAddon, CUDA_ABI_VERSION, type CudaAddon, type DevicePtr } from "./addon.js";

/** Dense weight dtypes the CUDA kernels decode (q6_k runs on another backend), with the addon's codes. */
const DENSE_CODES: Readonly<Record<string, number>> = { f32: 0, f16: 1, bf16: 2, q8_0: 3 };
/** Head dims the attention kernel is built for. */
const ATTENTION_HEAD_DIMS = new Set([32, 64, 128, 256]);
const MAX_BINARY_RANK = 4;

/** Probes without creating anything: the addon's load, then the runtime's answer. */
export function probeCuda(): Probe {
  const load = loadCudaAddon();
  if (!load.ok) {
    return { available: false, reason: load.reason };
  }
  const { devices, detail } = load.addon.probe();
  if (devices <= 0) {
    return { available: false, reason: detail === "" ? "no CUDA device" : detail };
  }
  return { available: true, score: 100, features: ["cuda", detail] };
}

const rowsOf = (t: TensorRef): number => t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
const lastDim = (t: TensorRef): number => t.shape[t.shape.length - 1] ?? 1;
const dim = (t: TensorRef, i: number): number => t.shape[i] ?? 1;

function kernelsOn(addon: CudaAddon, memory: CudaMemory): Partial<Kernels> {
  const p = (t: TensorRef): DevicePtr => memory.ptr(t.buffer);
  const call = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (error) {
      throw fromAddonError(error, what);
    }
  };
  const denseCode = (t: TensorRef): number => {
    const code = DENSE_CODES[t.dtype];
    if (code === undefined) {
      throw new UsageError("dtype", `[cuda] ${t.dtype} weights are not decoded by the CUDA kernels`);
    }
    return code;
  };
  const ternaryPtr = (w: TensorRef): DevicePtr => {
    const [n, k] = [dim(w, 0), lastDim(w)];
    return memory.derived(w.buffer, `t2:${n}:${k}`, (raw) => [addon.repackTernary(raw, n, k)])[0] as DevicePtr;
  };
  return {
    quantizeActivations: (x, q, scales) => call("quantizeActivations", () => addon.quantize(p(x), rowsOf(x), lastDim(x), p(q), p(scales))),
    matmulTernaryI8: (x, xScales, w, out) =>
      call("matmulTernaryI8", () => addon.ternary(p(x), p(xScales), ternaryPtr(w), Math.fround(w.scale ?? 1), rowsOf(x), lastDim(x), dim(w, 0), p(out))),
    matmulF32: (x, w, out) => call("matmulF32", () => addon.dense(p(x), 0, p(w), rowsOf(x), lastDim(x), dim(w, 0), p(out))),
    matmulDense: (x, w, out) => call("matmulDense", () => addon.dense(p(x), denseCode(w), p(w), rowsOf(x), lastDim(x), dim(w, 0), p(out))),
    matmulQ8I8: (x, w, out) =>
      call("matmulQ8I8", () => {
        const [n, k] = [dim(w, 0), lastDim(w)];
        const [scales, values] = memory.derived(w.buffer, `q8:${n}:${k}`, (raw) => addon.repackQ8(raw, n, k)) as [DevicePtr, DevicePtr];
        addon.q8Head(p(x), scales, values, rowsOf(x), k, n, p(out));
      }),
    embedding: (ids, table, out) =>
      call("embedding", () => addon.embedding(p(ids), dim(ids, 0), denseCode(table), p(table), dim(table, 0), lastDim(table), p(out))),
    writeRows: (src, dst, row) =>
      call("writeRows", () => {
        const rowBytes = storageBytes(dst.dtype, [1, ...dst.shape.slice(1)]);
        const bytes = storageBytes(src.dtype, src.shape);
        if (row * rowBytes + bytes > dst.buffer.bytes) {
          throw new UsageError("unsupported", `[cuda writeRows] rows ${row}… of ${bytes} bytes are outside the destination`);
        }
        addon.copy(p(dst), row * rowBytes, p(src), 0, bytes);
      }),
    rmsNorm: (x, weight, eps, out) => call("rmsNorm", () => addon.rmsNorm(p(x), weight === undefined ? null : p(weight), rowsOf(x), lastDim(x), eps, p(out))),
    rope: (x, positions, theta, mode, out) =>
      call("rope", () => addon.rope(p(x), dim(x, 0), dim(x, 1), dim(x, 2), p(positions), theta, mode === "neox" ? 1 : 0, p(out))),
    attention: (q, k, v, pos0, scale, out) =>
      call("attention", () => addon.attention(p(q), p(k), p(v), dim(q, 0), dim(q, 1), dim(k, 1), dim(q, 2), pos0, scale, p(out))),
    softmax: (x, out) => call("softmax", () => addon.softmax(p(x), rowsOf(x), lastDim(x), p(out))),
    unary: (op, x, out) => call("unary", () => addon.unary(unaryCode(op), p(x), x.shape.reduce((a, b) => a * b, 1), p(out))),
    binary: (op, a, aStrides, b, bStrides, out) =>
      call("binary", () => addon.binary(binaryCode(op), p(a), Float64Array.from(aStrides), p(b), Float64Array.from(bStrides), Float64Array.from(out.shape), p(out))),
  };
}

/** What the capabilities cannot say: the CUDA kernels' own limits on a call. */
function supports(kernel: KernelName, refs: readonly TensorRef[]): true | string {
  const dense = (t: TensorRef | undefined): true | string =>
    t === undefined || DENSE_CODES[t.dtype] !== undefined ? true : `${t.dtype} weights are not decoded by the CUDA kernels`;
  switch (kernel) {
    case "matmulDense":
      return dense(refs[1]);
    case "embedding":
      return dense(refs[1]);
    case "attention": {
      const hd = dim(refs[0] as TensorRef, 2);
      if (refs[1]?.dtype !== "f32") {
        return `the CUDA attention reads f32 KV caches, not ${refs[1]?.dtype ?? "none"}`;
      }
      return ATTENTION_HEAD_DIMS.has(hd) ? true : `head dim ${hd} is not one of 32, 64, 128, 256`;
    }
    case "binary":
      return (refs[refs.length - 1]?.shape.length ?? 0) <= MAX_BINARY_RANK ? true : `rank above ${MAX_BINARY_RANK}`;
    case "matmulQ8I8":
      return refs[1]?.dtype === "q8_0" ? true : `the CUDA integer head takes q8_0 weights, not ${refs[1]?.dtype ?? "none"}`;
    case "quantizeActivations":
    case "matmulTernaryI8":
    case "matmulF32":
    case "writeRows":
    case "rmsNorm":
    case "rope":
    case "softmax":
    case "unary":
      return true;
    default:
      return `no CUDA kernel for ${kernel}`;
  }
}

/** Creates the backend on device 0; CudaError "not-built" / "no-driver" when it cannot run here. */
export async function createCudaBackend(): Promise<PartialBackend> {
  await Promise.resolve();
  const load = loadCudaAddon();
  if (!load.ok) {
    throw new CudaError("not-built", `[cuda] ${load.reason}`);
  }
  const { addon } = load;
  const probe = addon.probe();
  if (probe.devices <= 0) {
    throw new CudaError("no-driver", `[cuda] ${probe.detail}`);
  }
  try {
    addon.init(0);
  } catch (error) {
    throw fromAddonError(error, "init");
  }
  return cudaBackendOn(addon, probe.detail);
}

/** The backend over an initialised addon (tests drive the glue through a host-memory stand-in of the addon). */
export function cudaBackendOn(addon: CudaAddon, detail: string): PartialBackend {
  const memory = new CudaMemory(addon);
  return {
    name: "cuda",
    kernels: kernelsOn(addon, memory),
    memory,
    supports,
    info: { features: ["cuda"], threads: 1, detail },
    dispose: () => {
      try {
        addon.sync();
      } catch {
        // the device's error was reported by the call that caused it
      }
    },
  };
}

export const cudaProvider: BackendProvider = {
  name: "cuda",
  basePriority: -1,
  probe: async () => {
    await Promise.resolve();
    return probeCuda();
  },
  create: () => createCudaBackend(),
};
