/**
 * A test-only device backend: the JS reference kernels over a memory whose buffers are opaque handles (no
 * `view()`), written synchronously and read back only asynchronously, like a GPU's. It exists to exercise
 * the contract's device side without a GPU: placement, host → device copies at the boundary, async reads at
 * the engine's edges, and the errors for what cannot cross the boundary. Not part of src/.
 *
 * It lacks `matmulBinaryBinary` and `concat`, and its embedding takes f32, f16 and q8_0 tables only, so
 * those calls cannot run on device buffers.
 */
import { UsageError } from "../../src/core/errors.js";
import type { BackendName, BufferHandle, BufferMemory, Kernels, PartialBackend, TensorRef } from "../../src/backends/backend.js";
import { KERNEL_NAMES, OPERANDS, type Capabilities } from "../../src/backends/capabilities.js";
import type { HostBuffer } from "../../src/backends/host-memory.js";
import { createJsBackend } from "../../src/backends/js/index.js";

/** An opaque device buffer: an id and a size, nothing to read. */
class OpaqueBuffer implements BufferHandle {
  constructor(
    readonly id: number,
    readonly bytes: number,
  ) {}
}

export class TestDeviceMemory implements BufferMemory {
  readonly kind = "device" as const;
  readonly #live = new Map<BufferHandle, Uint8Array>();
  #nextId = 1;
  #liveBytes = 0;
  /** Writes (uploads) so far. */
  uploads = 0;

  alloc(bytes: number): BufferHandle {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new UsageError("unsupported", `[test-device] cannot allocate ${bytes} bytes`);
    }
    const buffer = new OpaqueBuffer(this.#nextId++, bytes);
    this.#live.set(buffer, new Uint8Array(bytes));
    this.#liveBytes += bytes;
    return buffer;
  }

  adopt(bytes: Uint8Array): BufferHandle {
    const buffer = this.alloc(bytes.byteLength);
    this.write(buffer, bytes);
    return buffer;
  }

  free(buffer: BufferHandle): boolean {
    const bytes = this.#live.get(buffer);
    if (bytes === undefined) {
      return false;
    }
    this.#live.delete(buffer);
    this.#liveBytes -= bytes.byteLength;
    return true;
  }

  write(buffer: BufferHandle, src: Uint8Array, byteOffset = 0): void {
    this.#bytes(buffer).set(src, byteOffset);
    this.uploads++;
  }

  read(): Uint8Array {
    throw new UsageError("unsupported", "[test-device] device memory is read back with readAsync");
  }

  async readAsync(buffer: BufferHandle, byteOffset = 0, length?: number): Promise<Uint8Array> {
    const bytes = this.#bytes(buffer);
    await new Promise<void>((resolve) => setImmediate(resolve)); // a real readback completes later
    return bytes.slice(byteOffset, length === undefined ? undefined : byteOffset + length);
  }

  holds(buffer: BufferHandle): boolean {
    return this.#live.has(buffer);
  }

  liveAllocations(): number {
    return this.#live.size;
  }

  liveBytes(): number {
    return this.#liveBytes;
  }

  /** For this device's own kernels only: the tensor with a host view of its device bytes. */
  deviceView(ref: TensorRef): TensorRef {
    const bytes = this.#bytes(ref.buffer);
    const buffer: HostBuffer = { id: ref.buffer.id, bytes: bytes.byteLength, view: () => bytes };
    return { ...ref, buffer };
  }

  #bytes(buffer: BufferHandle): Uint8Array {
    const bytes = this.#live.get(buffer);
    if (bytes === undefined) {
      throw new UsageError("unsupported", `[test-device] buffer ${buffer.id} is not a live buffer of this device`);
    }
    return bytes;
  }
}

const MISSING: readonly string[] = ["matmulBinaryBinary", "concat"];

export interface TestDevice extends PartialBackend {
  readonly memory: TestDeviceMemory;
  /** Kernel calls per kernel, as run on the device. */
  readonly calls: Map<string, number>;
}

/** Creates a test device backend (see the module comment). */
export function createTestDevice(): TestDevice {
  const memory = new TestDeviceMemory();
  const reference = createJsBackend();
  const calls = new Map<string, number>();
  const kernels: Partial<Record<string, (...args: unknown[]) => void>> = {};
  const capabilities: Partial<Record<string, true | { dtypes: Record<string, string[]> }>> = {};
  for (const name of KERNEL_NAMES.filter((k) => !MISSING.includes(k))) {
    const run = reference.kernels[name] as (...args: unknown[]) => void;
    kernels[name] = (...args: unknown[]) => {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      const device = [...args];
      for (const operand of OPERANDS[name]) {
        const arg = args[operand.index];
        if (arg !== undefined && operand.kind === "tensor") {
          device[operand.index] = memory.deviceView(arg as TensorRef);
        } else if (arg !== undefined && operand.kind === "tensors") {
          device[operand.index] = (arg as TensorRef[]).map((r) => memory.deviceView(r));
        }
      }
      run(...device);
    };
    capabilities[name] = name === "embedding" ? { dtypes: { table: ["f32", "f16", "q8_0"] } } : true;
  }
  return {
    name: "test-device" as BackendName,
    kernels: kernels as Partial<Kernels>,
    capabilities: capabilities as Capabilities,
    memory,
    calls,
    info: { features: ["test"], threads: 1, detail: "test-only device backend (JS kernels, opaque memory)" },
    dispose: () => undefined,
  };
}
