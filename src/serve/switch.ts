/**
 * A backend whose compute can move between chains while its memory stays put. The model's weights, KV
 * cache and activations are allocated once from the `home` chain; kernels run on whichever chain is
 * active. Every CPU backend keeps tensors in host memory that any CPU kernel can read (host-memory.ts),
 * which is what per-kernel fallback already relies on, so switching needs no copy. A kernel that throws
 * is reported as a {@link KernelFailure} naming the kernel and the chain, so the model host can tell a
 * backend failure from a bad request.
 */
import type { Backend, BufferHandle, FusedKernels, KernelName, Kernels } from "../backends/backend.js";
import { KernelFailure } from "./errors.js";

const NO_FUSED: Partial<FusedKernels> = Object.freeze({});

export class SwitchableBackend implements Backend {
  readonly kernels: Kernels;
  #active: Backend;
  #fused: Partial<FusedKernels> = NO_FUSED;
  readonly #wrapped = new Map<Backend, Partial<FusedKernels>>();

  constructor(readonly home: Backend) {
    this.#active = home;
    this.#fused = this.#wrapFused(home);
    this.#wrapped.set(home, this.#fused);
    const route = (name: KernelName) =>
      (...args: unknown[]): void => {
        const active = this.#active;
        try {
          (active.kernels[name] as (...a: unknown[]) => void)(...args);
        } catch (error) {
          throw error instanceof KernelFailure ? error : new KernelFailure(name, active.name, error);
        }
      };
    this.kernels = Object.fromEntries((Object.keys(home.kernels) as KernelName[]).map((name) => [name, route(name)])) as unknown as Kernels;
  }

  /** The active chain's name, e.g. "native-cpu>js". */
  get name(): string {
    return this.#active.name;
  }

  get active(): Backend {
    return this.#active;
  }

  /** The active chain's fused steps (none when it has none). */
  get fused(): Partial<FusedKernels> {
    return this.#fused;
  }

  /** Runs later kernel calls on `backend` (its memory is not used). */
  use(backend: Backend): void {
    if (backend === this.#active) {
      return;
    }
    this.#active = backend;
    let fused = this.#wrapped.get(backend);
    if (fused === undefined) {
      fused = this.#wrapFused(backend);
      this.#wrapped.set(backend, fused);
    }
    this.#fused = fused;
  }

  /** The backend's fused steps (bitnetBlock, bitnetBlockBatch), each reporting a throw as a KernelFailure. */
  #wrapFused(backend: Backend): Partial<FusedKernels> {
    const steps = backend.fused;
    if (steps === undefined) {
      return NO_FUSED;
    }
    const wrap = <K extends keyof FusedKernels>(name: K): Partial<FusedKernels> => {
      const step = steps[name] as ((...args: unknown[]) => void) | undefined;
      if (step === undefined) {
        return {};
      }
      const wrapped = (...args: unknown[]): void => {
        try {
          step(...args);
        } catch (error) {
          throw error instanceof KernelFailure ? error : new KernelFailure(name, backend.name, error);
        }
      };
      return { [name]: wrapped } as unknown as Partial<FusedKernels>;
    };
    return Object.freeze({ ...wrap("bitnetBlock"), ...wrap("bitnetBlockBatch") });
  }

  alloc(bytes: number): BufferHandle {
    return this.home.alloc(bytes);
  }

  adopt(bytes: Uint8Array): BufferHandle {
    if (this.home.adopt !== undefined) {
      return this.home.adopt(bytes);
    }
    const buffer = this.home.alloc(bytes.byteLength);
    this.home.write(buffer, bytes);
    return buffer;
  }

  free(buffer: BufferHandle): boolean {
    return this.home.free(buffer);
  }

  write(buffer: BufferHandle, src: Uint8Array, byteOffset?: number): void {
    this.home.write(buffer, src, byteOffset);
  }

  read(buffer: BufferHandle, byteOffset?: number, length?: number): Uint8Array {
    return this.home.read(buffer, byteOffset, length);
  }

  liveAllocations(): number {
    return this.home.liveAllocations();
  }

  liveBytes(): number {
    return this.home.liveBytes();
  }
}
